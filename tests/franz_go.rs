//! A third independent client: franz-go (pure Go, its own protocol code)
//! through `tests/clients/go`, a program that checks a running broker with
//! franz-go's client and admin client (kgo and kadm): produce and consume
//! with every compression codec; consumer groups with the cooperative-sticky
//! and the eager range balancers, static members, and the KIP-848 protocol;
//! exactly-once consume-transform-produce with GroupTransactSession and
//! transactions V2; the admin calls kadm makes (and DescribeQuorum,
//! ApiVersions' features, UpdateFeatures); KIP-714 metrics pushes; the
//! schema registry through franz-go's `sr` client and Serde, and broker-side
//! schema id validation seen from kgo. The same
//! broker is then killed with SIGKILL and started again on its data, and the
//! program checks that what was acknowledged and committed before is there.
//! A second broker with SASL, TLS and ACLs is checked with franz-go's PLAIN,
//! SCRAM and OAUTHBEARER logins, mutual TLS, and kadm's ACL calls. Go is
//! found or installed on first use (`common::clients::go`), franz-go comes
//! from the Go module proxy at the versions `tests/clients/go/go.mod` pins.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::secure::Secure;
use common::Broker;

/// The checks the program runs, each of which must print `ok <check>`.
const CHECKS: &[&str] = &[
    "roundtrip/none",
    "roundtrip/gzip",
    "roundtrip/snappy",
    "roundtrip/lz4",
    "roundtrip/zstd",
    "group/cooperative-sticky",
    "group/eager-range",
    "group/static-membership",
    "group/consumer-protocol",
    "group/online-migration",
    "txn/group-transact-session",
    "txn/v2",
    "kadm/list-describe-transactions",
    "telemetry/push",
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
    "kadm/describe-quorum",
    "kadm/describe-update-features",
    "sr/rest-api",
    "sr/serde-and-validation",
    "restart/produce-and-commit-before-kill",
    "restart/acked-records-survive-kill-9",
    "restart/committed-offsets-survive-kill-9",
    "sasl/plain",
    "sasl/scram",
    "sasl/oauthbearer",
    "tls/mutual",
    "acl/create-list-enforce",
];

/// Whether a check runs against the secured broker.
fn is_secure(check: &str) -> bool {
    ["sasl/", "tls/", "acl/"].iter().any(|p| check.starts_with(p))
}

/// Builds `tests/clients/go` into the target's tmp dir (a file of this
/// process's own, so concurrent runs do not trip over each other); modules
/// and build results are cached where Go keeps them (GOMODCACHE, GOCACHE).
fn build_checks(tag: &str) -> PathBuf {
    let go = common::clients::go();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/go");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("franz-go");
    std::fs::create_dir_all(&dir).unwrap();
    let binary = dir.join(format!("franzgo-{}-{tag}", std::process::id()));
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

/// Runs one suite of the program against `bootstrap`; its stdout, or a
/// failure with everything it and the broker said.
fn run_suite(binary: &Path, suite: &str, bootstrap: &str, args: &[&str], broker: &Broker) -> String {
    let started = Instant::now();
    let output = Command::new(binary)
        .args(["-suite", suite, "-timeout", "15m"])
        .args(args)
        .arg(bootstrap)
        .output()
        .expect("run the franz-go checks");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "after {:.1?}: {}",
        started.elapsed(),
        broker.client_failure(&format!("the franz-go {suite} checks"), &output)
    );
    eprintln!("franz-go {suite} checks passed in {:.1?}:\n{stdout}{stderr}", started.elapsed());
    stdout
}

/// The checks of `CHECKS` selected by `which` that printed no ok line.
fn missing(stdout: &str, which: impl Fn(&str) -> bool) -> Vec<&'static str> {
    let passed = |check: &str| {
        stdout.lines().any(|line| line == format!("ok {check}") || line.starts_with(&format!("ok {check} (")))
    };
    CHECKS.iter().copied().filter(|c| which(c) && !passed(c)).collect()
}

/// Everything but the security checks on one broker, which is then killed
/// with SIGKILL and started again on the same data for the restart checks.
#[test]
fn franz_go_checks() {
    let binary = build_checks("main");
    let broker = Broker::start("franz-go", 2, &[]);
    let (admin, registry) = (broker.admin_url(), broker.schema_registry_url());
    let mut stdout =
        run_suite(&binary, "main", &broker.bootstrap(), &["-admin", &admin, "-registry", &registry], &broker);
    let state = broker.data_dir.with_extension("franzgo-state.json");
    let state_arg = state.to_str().unwrap();
    stdout += &run_suite(&binary, "before-kill", &broker.bootstrap(), &["-state", state_arg], &broker);
    let dir = broker.kill();
    let broker = Broker::start_in(dir, 2, &[]);
    stdout += &run_suite(&binary, "after-kill", &broker.bootstrap(), &["-state", state_arg], &broker);
    let _ = std::fs::remove_file(&binary);
    let missing = missing(&stdout, |c| !is_secure(c));
    assert!(missing.is_empty(), "no ok line for {missing:?}:\n{stdout}");
    broker.stop();
}

/// SASL (PLAIN, SCRAM, OAUTHBEARER), TLS and mutual TLS, and ACLs, against a
/// broker with Kafka's StandardAuthorizer and `User:admin` as super user.
#[test]
fn franz_go_security_checks() {
    let binary = build_checks("secure");
    let servers = Secure::start("franz-go-secure");
    let (broker, pki, dir) = (&servers.broker, &servers.pki, &servers.dir);
    // CN=Franz-mTLS,OU=eng,... maps to User:franz-mtls by the rule.
    let cert = pki.client("Franz-mTLS", false);
    let secure = serde_json::json!({
        "sasl_plaintext": broker.listener("SASL_PLAINTEXT"),
        "sasl_ssl": broker.listener("SASL_SSL"),
        "ssl": broker.listener("SSL"),
        "oauth": broker.listener("OAUTH"),
        "ca": pki.ca,
        "client_cert": cert.cert,
        "client_key": cert.key,
        "client_cert_user": "franz-mtls",
        "admin_user": "admin",
        "admin_password": "admin-secret",
        "plain_user": "eve",
        "plain_password": "eve-secret",
        "oauth_user": "svc-franz",
        "oauth_token": servers.token("svc-franz", "sluice", 600),
        "expired_token": servers.token("svc-franz", "sluice", -300),
    });
    let secure_file = dir.with_extension("franzgo-secure.json");
    std::fs::write(&secure_file, secure.to_string()).unwrap();
    let stdout = run_suite(
        &binary,
        "secure",
        &broker.listener("SASL_PLAINTEXT"),
        &["-secure", secure_file.to_str().unwrap()],
        broker,
    );
    let _ = std::fs::remove_file(&binary);
    let missing = missing(&stdout, is_secure);
    assert!(missing.is_empty(), "no ok line for {missing:?}:\n{stdout}");
    servers.broker.stop();
}
