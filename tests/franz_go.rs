//! A third independent client: franz-go (pure Go, its own protocol code)
//! through `tests/clients/go`, a program that checks a running broker with
//! franz-go's client and admin client (kgo and kadm): produce and consume
//! with every compression codec, a cooperative-sticky consumer group through
//! rebalances, exactly-once consume-transform-produce with
//! GroupTransactSession, and the admin calls kadm makes. Go is found or
//! installed on first use (`common::clients::go`), franz-go comes from the Go
//! module proxy at the versions `tests/clients/go/go.mod` pins.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::Broker;

/// The checks the program runs, each of which must print `ok <check>`.
const CHECKS: &[&str] = &[
    "roundtrip/none",
    "roundtrip/gzip",
    "roundtrip/snappy",
    "roundtrip/lz4",
    "roundtrip/zstd",
    "group/cooperative-sticky",
    "txn/group-transact-session",
    "kadm/create-topics",
    "kadm/list-describe-topics",
    "kadm/describe-configs",
    "kadm/alter-configs",
    "kadm/create-partitions",
    "kadm/list-offsets",
    "kadm/delete-records",
    "kadm/list-describe-groups",
    "kadm/offset-fetch",
    "kadm/delete-topics",
];

/// Builds `tests/clients/go` into the target's tmp dir (a file of this
/// process's own, so concurrent runs do not trip over each other); modules
/// and build results are cached where Go keeps them (GOMODCACHE, GOCACHE).
fn build_checks() -> PathBuf {
    let go = common::clients::go();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/go");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("franz-go");
    std::fs::create_dir_all(&dir).unwrap();
    let binary = dir.join(format!("franzgo-{}", std::process::id()));
    let mut build = Command::new(&go);
    // A Go older than go.mod asks for fetches that release from the module
    // proxy (some distributions' go.env turns that off).
    if std::env::var_os("GOTOOLCHAIN").is_none() {
        build.env("GOTOOLCHAIN", "auto");
    }
    let output = build
        .args(["build", "-buildvcs=false", "-o"])
        .arg(&binary)
        .arg(".")
        .current_dir(&source)
        .output()
        .expect("run go build");
    assert!(
        output.status.success(),
        "go build of {} failed (franz-go comes from the Go module proxy on first use):\n{}{}",
        source.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    binary
}

#[test]
fn franz_go_checks() {
    let binary = build_checks();
    let broker = Broker::start("franz-go", 2, &[]);
    let started = Instant::now();
    let output = Command::new(&binary)
        .args(["-timeout", "15m"])
        .arg(broker.bootstrap())
        .output()
        .expect("run the franz-go checks");
    let _ = std::fs::remove_file(&binary);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let passed = |check: &str| {
        stdout.lines().any(|line| line == format!("ok {check}") || line.starts_with(&format!("ok {check} (")))
    };
    let missing: Vec<&str> = CHECKS.iter().copied().filter(|c| !passed(c)).collect();
    assert!(
        output.status.success() && missing.is_empty(),
        "the franz-go checks failed ({}; no ok line for {missing:?}) after {:.1?}:\n\
         stdout:\n{stdout}\nstderr:\n{stderr}\nbroker log:\n{}",
        output.status,
        started.elapsed(),
        broker.log()
    );
    eprintln!("franz-go checks passed in {:.1?}:\n{stdout}{stderr}", started.elapsed());
    broker.stop();
}
