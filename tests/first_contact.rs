//! What a new user does first: the README's run command exactly as written,
//! from a fresh copy of the repository, on its defaults (port 9092, data in
//! `./data`), then a real client producing and consuming, then a clean stop.
//! And relative data directories given every way a user can give one.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::kafka::{self, assigned, consumer_config, poll_n, produce, value, watermarks, Record};
use common::Broker;
use rdkafka::Offset;

/// `sluice serve` on ports the system picks, two shards: the rest as a user gives it.
const SERVE_ON_FREE_PORTS: [&str; 9] = [
    "serve",
    "--listen",
    "127.0.0.1:0",
    "--admin-listen",
    "127.0.0.1:0",
    "--schema-registry-listen",
    "127.0.0.1:0",
    "--shards",
    "2",
];

/// The broker's default listener (README: "listens on `127.0.0.1:9092`").
const DEFAULT_PORT: u16 = 9092;
/// The admin listener's default port (metrics, health, console).
const DEFAULT_ADMIN_PORT: u16 = 9644;

/// The first fenced command under "## The two commands" in README.md.
fn readme_run_command() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme.split("## The two commands").nth(1).expect("README has '## The two commands'");
    let block = section.split("```sh\n").nth(1).expect("a ```sh block").split("```").next().unwrap();
    let line = block.lines().find(|l| !l.trim().is_empty()).expect("a command");
    line.split_whitespace().map(str::to_string).collect()
}

/// The repository as a fresh clone has it (tracked and new, not ignored,
/// files), copied into `target/fresh-clone/`. Its own `target/` is kept
/// between runs so only the first run builds everything; nothing else is.
fn fresh_clone() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let clone = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().join("fresh-clone");
    std::fs::create_dir_all(&clone).unwrap();
    for entry in std::fs::read_dir(&clone).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "target" {
            let path = entry.path();
            if path.is_dir() {
                std::fs::remove_dir_all(&path).unwrap();
            } else {
                std::fs::remove_file(&path).unwrap();
            }
        }
    }
    let listed = Command::new("git")
        .args(["ls-files", "-z", "--cached", "--others", "--exclude-standard"])
        .current_dir(root)
        .output()
        .expect("git ls-files (the test copies the repository as a clone has it)");
    assert!(listed.status.success(), "git ls-files failed: {}", String::from_utf8_lossy(&listed.stderr));
    for name in listed.stdout.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let name = std::str::from_utf8(name).unwrap();
        let from = root.join(name);
        if !from.exists() {
            continue; // deleted in the working tree, not yet committed
        }
        let to = clone.join(name);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&from, &to).unwrap();
    }
    clone
}

fn port_is_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// Produces `count` records to `topic` with librdkafka (acks=all) and reads
/// them back from the beginning.
async fn produce_and_consume(bootstrap: &str, topic: &str, count: usize) {
    let expected: Vec<String> = (0..count).map(|i| format!("{topic}-{i}")).collect();
    let records = expected.iter().map(|value| Record::new(value).key("k"));
    produce(&kafka::producer(bootstrap, &[("acks", "all")]), topic, records).await;
    let consumer = assigned(&consumer_config(bootstrap, "first-contact"), topic, [0], Offset::Beginning);
    let values: Vec<String> = poll_n(&consumer, count, Duration::from_secs(60)).iter().map(value).collect();
    assert_eq!(values, expected);
}

/// A command with no `SLUICE_*` variables from the environment, run in `dir`.
fn clean_command(program: impl AsRef<std::ffi::OsStr>, dir: &Path) -> Command {
    let mut command = Command::new(program);
    command.current_dir(dir);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SLUICE_") {
            command.env_remove(key);
        }
    }
    command
}

#[tokio::test(flavor = "multi_thread")]
async fn readme_run_command_works_as_written_from_a_fresh_clone() {
    let words = readme_run_command();
    assert_eq!(words[..2], ["cargo", "run"], "the README's first command is no longer `cargo run ...`: {words:?}");
    for port in [DEFAULT_PORT, DEFAULT_ADMIN_PORT] {
        assert!(
            port_is_free(port),
            "port {port} is taken: this test runs the README's command on its default ports; stop what listens there"
        );
    }
    let clone = fresh_clone();
    let mut command = clean_command(&words[0], &clone);
    command.args(&words[1..]);
    // A fresh clone builds into its own target/, as a user's does.
    command.env_remove("CARGO_TARGET_DIR");
    // The build shares the machine with the other tests of this binary: at a
    // lower priority, it takes the time they leave and does not slow them.
    // SAFETY: setpriority on the child itself, between fork and exec; async-signal-safe.
    unsafe {
        use std::os::unix::process::CommandExt;
        command.pre_exec(|| {
            libc::setpriority(libc::PRIO_PROCESS, 0, 10);
            Ok(())
        });
    }
    let log = clone.join("target").join("readme-run.log");
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    // The first run in a fresh clone compiles the broker.
    let broker = Broker::launch(command, Some(DEFAULT_PORT), clone.join("data"), log, Duration::from_secs(1200));
    produce_and_consume(&broker.bootstrap(), "first-contact", 10).await;
    // The console and metrics on their default address, as the README says.
    let admin = format!("http://127.0.0.1:{DEFAULT_ADMIN_PORT}");
    assert_eq!(common::http::get(&admin, "/ready").status, 200);
    let console = common::http::get(&admin, "/");
    assert!(console.status == 200 && console.body.contains("<title>"), "no console at {admin}/");
    let metrics = common::http::parse_metrics(&common::http::get(&admin, "/metrics").body);
    assert_eq!(common::http::sum(&metrics, "sluice_messages_in_total", &[]), 10.0);
    broker.stop();
    assert!(clone.join("data").join("first-contact-0").is_dir(), "no ./data/first-contact-0 in the clone");
}

/// Starts the built binary in `cwd` with `args` and `envs`, and returns it
/// once it listens.
fn start_in_cwd(cwd: &Path, args: &[&str], envs: &[(&str, &str)], data_dir: PathBuf) -> Broker {
    let mut command = clean_command(common::sluice_bin(), cwd);
    command.args(SERVE_ON_FREE_PORTS).args(args).envs(envs.iter().copied());
    let log = cwd.join(format!("broker-{}.log", data_dir.file_name().unwrap().to_string_lossy()));
    Broker::launch(command, None, data_dir, log, Duration::from_secs(20))
}

#[tokio::test(flavor = "multi_thread")]
async fn relative_data_dirs_from_flag_environment_and_file() {
    let cwd = common::fresh_data_dir("relative-cwd");
    std::fs::write(cwd.join("server.properties"), "log.dirs=from-file/logs\n").unwrap();
    /// One way of giving the broker a relative data directory.
    struct Way {
        how: &'static str,
        args: &'static [&'static str],
        envs: &'static [(&'static str, &'static str)],
        dir: &'static str,
    }
    let ways = [
        Way { how: "flag", args: &["--data-dir", "from-flag"], envs: &[], dir: "from-flag" },
        Way { how: "flag-dot", args: &["--data-dir", "./nested/../from-dot"], envs: &[], dir: "from-dot" },
        Way { how: "env", args: &[], envs: &[("SLUICE_DATA_DIR", "from-env")], dir: "from-env" },
        Way { how: "file", args: &["--config", "server.properties"], envs: &[], dir: "from-file/logs" },
    ];
    for Way { how, args, envs, dir } in ways {
        let data_dir = cwd.join(dir);
        let topic = format!("relative-{how}");
        // Twice: the second start recovers what the first wrote, through the same relative path.
        let broker = start_in_cwd(&cwd, args, envs, data_dir.clone());
        produce_and_consume(&broker.bootstrap(), &topic, 3).await;
        broker.stop();
        assert!(data_dir.join(format!("{topic}-0")).is_dir(), "{how}: no {topic}-0 in {}", data_dir.display());
        let broker = start_in_cwd(&cwd, args, envs, data_dir.clone());
        produce_and_consume(&broker.bootstrap(), &format!("{topic}-again"), 2).await;
        let (low, high) = watermarks(&broker.bootstrap(), &topic, 0);
        assert_eq!((low, high), (0, 3), "{how}: the records written before the restart");
        broker.stop();
    }
}

/// A shell's common soft limit of 1024 open files would refuse the
/// thousand-and-first partition or connection: the broker raises its soft
/// limit to the hard one at start, as the JVM does for Kafka.
#[test]
fn a_low_open_files_soft_limit_is_raised_to_the_hard_limit() {
    use std::os::unix::process::CommandExt;
    let dir = common::fresh_data_dir("nofile");
    let mut command = clean_command(common::sluice_bin(), &dir);
    command.args(SERVE_ON_FREE_PORTS);
    command.arg("--data-dir").arg(dir.join("data"));
    // SAFETY: only setrlimit, async-signal-safe, between fork and exec.
    unsafe {
        command.pre_exec(|| {
            let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
            limit.rlim_cur = limit.rlim_max.min(256);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
            Ok(())
        });
    }
    let broker = Broker::launch(command, None, dir.join("data"), dir.join("broker.log"), Duration::from_secs(20));
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", broker.pid())).unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).expect("a Max open files line");
    let fields: Vec<&str> = line.split_whitespace().collect();
    // "Max open files  SOFT  HARD  files"
    let (soft, hard) = (fields[3], fields[4]);
    assert_eq!(soft, hard, "the soft limit was not raised: {line}");
    assert!(common::strip_ansi(&broker.log()).contains(&format!("open_files_max={hard}")), "{}", broker.log());
    broker.stop();
}
