//! The real clients the end-to-end tests drive besides the `rdkafka` crate,
//! installed or resolved on first use, so `cargo test --release` needs no
//! set-up step of its own:
//!
//! - kcat (librdkafka's CLI): from `PATH`, else Debian's `kcat` package;
//! - kafka-python, confluent-kafka (Python over its own librdkafka) and
//!   Prometheus's Python client (its text-format parser): a virtualenv under
//!   `target/clients/`, from PyPI;
//! - Chromium (headless, for the web console): from `PATH`, else Debian's `chromium` package;
//! - the Java client (kafka-clients): resolved by Maven from `tests/clients/java/pom.xml`;
//! - Go, which builds the franz-go checks (`tests/clients/go`): from `PATH` or
//!   `/usr/local/go/bin`, else Debian's `golang-go` package; the Go module
//!   proxy serves franz-go (and a newer Go, should the found one be older
//!   than `go.mod` asks).
//!
//! A prerequisite that is missing and cannot be installed fails the test that
//! needs it with a message naming it and how to install it; nothing is skipped.
//! Installs are serialised across test processes by a lock file.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The kafka-python release the tests are written against.
const KAFKA_PYTHON_VERSION: &str = "3.0.12";
/// The confluent-kafka (Python) release the tests are written against; its wheel carries librdkafka.
const CONFLUENT_KAFKA_VERSION: &str = "2.16.1";
/// Prometheus's Python client, whose text-format parser reads `/metrics` in the tests.
const PROMETHEUS_CLIENT_VERSION: &str = "0.26.0";
/// What confluent-kafka's schema registry serializers need (Avro, JSON Schema, Protobuf).
const FASTAVRO_VERSION: &str = "1.13.1";
const JSONSCHEMA_VERSION: &str = "4.26.0";
const PROTOBUF_VERSION: &str = "7.36.2";
/// The codec packages kafka-python compresses snappy, lz4 and zstd batches with.
const PYTHON_SNAPPY_VERSION: &str = "0.7.3";
const LZ4_VERSION: &str = "4.4.5";
const ZSTANDARD_VERSION: &str = "0.25.0";

fn clients_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().expect("target dir").join("clients");
    std::fs::create_dir_all(&dir).expect("create target/clients");
    dir
}

/// Holds an exclusive `flock` on `target/clients/install.lock` while alive.
struct InstallLock(std::fs::File);

impl InstallLock {
    fn take() -> InstallLock {
        use std::os::fd::AsRawFd;
        let file = std::fs::File::create(clients_dir().join("install.lock")).expect("create install lock");
        // SAFETY: flock on a descriptor this struct owns; released when it closes.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "lock target/clients/install.lock: {}", std::io::Error::last_os_error());
        InstallLock(file)
    }
}

fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|p| p.is_file())
}

fn succeeds(command: &mut Command) -> bool {
    command.stdout(Stdio::null()).stderr(Stdio::inherit()).status().map(|s| s.success()).unwrap_or(false)
}

/// Installs Debian packages with apt-get, as root or through passwordless sudo.
fn apt_install(packages: &[&str]) -> Result<(), String> {
    let root = unsafe { libc::geteuid() } == 0;
    let runner = |args: &[&str]| -> Command {
        let mut c = if root {
            Command::new("apt-get")
        } else {
            let mut c = Command::new("sudo");
            c.args(["-n", "apt-get"]);
            c
        };
        c.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        c
    };
    if on_path("apt-get").is_none() || (!root && !succeeds(Command::new("sudo").args(["-n", "true"]))) {
        return Err(format!("apt-get is not usable here (needs root or passwordless sudo) to install {packages:?}"));
    }
    let install = |c: &mut Command| succeeds(c.args(["install", "-y", "-qq"]).args(packages));
    if install(&mut runner(&[])) {
        return Ok(());
    }
    // A fresh machine may have no package lists yet.
    if succeeds(&mut runner(&["update", "-qq"])) && install(&mut runner(&[])) {
        return Ok(());
    }
    Err(format!("apt-get install {packages:?} failed"))
}

/// The `kcat` executable, installed from Debian's packages if it is not on `PATH`.
pub fn kcat() -> PathBuf {
    static KCAT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = KCAT.get_or_init(|| {
        if let Some(p) = on_path("kcat") {
            return Ok(p);
        }
        let _lock = InstallLock::take();
        if let Some(p) = on_path("kcat") {
            return Ok(p);
        }
        apt_install(&["kcat"])?;
        on_path("kcat").ok_or_else(|| "apt-get installed kcat but it is not on PATH".to_string())
    });
    match found {
        Ok(p) => p.clone(),
        Err(e) => {
            panic!("kcat is required by this test and could not be installed ({e}); install it: apt-get install kcat")
        }
    }
}

/// The Chromium executable (headless, for the console), installed from Debian's packages if missing.
pub fn chromium() -> PathBuf {
    static CHROMIUM: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = CHROMIUM.get_or_init(|| {
        let find = || ["chromium", "chromium-browser"].iter().find_map(|p| on_path(p));
        if let Some(p) = find() {
            return Ok(p);
        }
        let _lock = InstallLock::take();
        if let Some(p) = find() {
            return Ok(p);
        }
        apt_install(&["chromium"])?;
        find().ok_or_else(|| "apt-get installed chromium but it is not on PATH".to_string())
    });
    match found {
        Ok(p) => p.clone(),
        Err(e) => panic!(
            "Chromium is required by this test and could not be installed ({e}); install it: apt-get install chromium"
        ),
    }
}

/// A Python interpreter that has kafka-python (with python-snappy, lz4 and
/// zstandard, its snappy, lz4 and zstd codecs), confluent-kafka (with its
/// schema registry serializers' packages) and prometheus-client: a
/// virtualenv in `target/clients/`.
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = PYTHON.get_or_init(|| {
        let venv = clients_dir().join("python-venv");
        let python = venv.join("bin").join("python");
        let ready = || {
            succeeds(Command::new(&python).args([
                "-c",
                &format!(
                    "import kafka, confluent_kafka, prometheus_client, importlib.metadata as m, sys; \
                         import confluent_kafka.schema_registry.avro, confluent_kafka.schema_registry.json_schema; \
                         import confluent_kafka.schema_registry.protobuf; \
                         sys.exit(kafka.__version__ != '{KAFKA_PYTHON_VERSION}' \
                         or m.version('confluent-kafka') != '{CONFLUENT_KAFKA_VERSION}' \
                         or m.version('prometheus-client') != '{PROMETHEUS_CLIENT_VERSION}' \
                         or m.version('python-snappy') != '{PYTHON_SNAPPY_VERSION}' \
                         or m.version('lz4') != '{LZ4_VERSION}' \
                         or m.version('zstandard') != '{ZSTANDARD_VERSION}' \
                         or m.version('fastavro') != '{FASTAVRO_VERSION}' \
                         or m.version('jsonschema') != '{JSONSCHEMA_VERSION}' \
                         or m.version('protobuf') != '{PROTOBUF_VERSION}')"
                ),
            ]))
        };
        if python.is_file() && ready() {
            return Ok(python);
        }
        let _lock = InstallLock::take();
        if python.is_file() && ready() {
            return Ok(python);
        }
        let system = on_path("python3").ok_or("python3 is not on PATH")?;
        let make_venv = || succeeds(Command::new(&system).args(["-m", "venv", "--clear"]).arg(&venv));
        if !make_venv() {
            // Debian's python3 keeps venv in a package of its own.
            apt_install(&["python3-venv"])?;
            if !make_venv() {
                return Err("python3 -m venv failed".into());
            }
        }
        let pip = Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
            .arg(format!("kafka-python=={KAFKA_PYTHON_VERSION}"))
            .arg(format!("confluent-kafka[avro,json,protobuf,schemaregistry]=={CONFLUENT_KAFKA_VERSION}"))
            .arg(format!("fastavro=={FASTAVRO_VERSION}"))
            .arg(format!("jsonschema=={JSONSCHEMA_VERSION}"))
            .arg(format!("protobuf=={PROTOBUF_VERSION}"))
            .arg(format!("prometheus-client=={PROMETHEUS_CLIENT_VERSION}"))
            .arg(format!("python-snappy=={PYTHON_SNAPPY_VERSION}"))
            .arg(format!("lz4=={LZ4_VERSION}"))
            .arg(format!("zstandard=={ZSTANDARD_VERSION}"))
            .stderr(Stdio::inherit())
            .status();
        if !matches!(pip, Ok(s) if s.success()) || !ready() {
            return Err(format!(
                "pip could not install kafka-python=={KAFKA_PYTHON_VERSION}, \
                 confluent-kafka=={CONFLUENT_KAFKA_VERSION}, \
                 prometheus-client=={PROMETHEUS_CLIENT_VERSION}, python-snappy=={PYTHON_SNAPPY_VERSION}, \
                 lz4=={LZ4_VERSION}, zstandard=={ZSTANDARD_VERSION}, and fastavro=={FASTAVRO_VERSION}, \
                 jsonschema=={JSONSCHEMA_VERSION} and protobuf=={PROTOBUF_VERSION} for confluent-kafka's \
                 schema registry serializers, from PyPI"
            ));
        }
        Ok(python)
    });
    match found {
        Ok(p) => p.clone(),
        Err(e) => panic!(
            "the Python clients are required by this test and could not be installed ({e}); \
             it needs python3 with venv and access to PyPI"
        ),
    }
}

/// The oldest Go that builds `tests/clients/go`: from Go 1.21 on, the `go`
/// command fetches the Go release that `go.mod` asks for (`GOTOOLCHAIN=auto`).
const GO_MIN_MINOR: u32 = 21;

/// The `go` command: from `PATH` or `/usr/local/go/bin`, else installed from
/// Debian's packages; Go 1.21 or newer.
pub fn go() -> PathBuf {
    static GO: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = GO.get_or_init(|| {
        let candidates = || on_path("go").into_iter().chain([PathBuf::from("/usr/local/go/bin/go")]);
        let usable = || candidates().filter(|p| p.is_file()).find(|p| go_minor(p).is_some_and(|m| m >= GO_MIN_MINOR));
        if let Some(p) = usable() {
            return Ok(p);
        }
        let _lock = InstallLock::take();
        if let Some(p) = usable() {
            return Ok(p);
        }
        apt_install(&["golang-go"])?;
        usable().ok_or_else(|| {
            let versions: Vec<String> = candidates()
                .filter(|p| p.is_file())
                .map(|p| format!("{} is go1.{}", p.display(), go_minor(&p).map_or("?".into(), |m| m.to_string())))
                .collect();
            format!("no Go 1.{GO_MIN_MINOR} or newer after apt-get install golang-go ({})", versions.join(", "))
        })
    });
    match found {
        Ok(p) => p.clone(),
        Err(e) => panic!(
            "Go 1.{GO_MIN_MINOR} or newer is required by this test and could not be installed ({e}); \
             install Go 1.{GO_MIN_MINOR} or newer on PATH or in /usr/local/go"
        ),
    }
}

/// The minor version of the Go release `go` is (`go version go1.26.8 linux/amd64` is 26).
fn go_minor(go: &Path) -> Option<u32> {
    let out = Command::new(go).arg("version").env("GOTOOLCHAIN", "local").stderr(Stdio::null()).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text.split_whitespace().find_map(|w| w.strip_prefix("go1."))?;
    version.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// The Java client's classpath (kafka-clients and its dependencies), resolved by Maven.
pub fn java_classpath() -> String {
    static CLASSPATH: OnceLock<Result<String, String>> = OnceLock::new();
    maven_classpath(&CLASSPATH, "java", "kafka-clients")
}

/// The classpath of Kafka's own command-line tools (`kafka-acls.sh` runs
/// `org.apache.kafka.tools.AclCommand`, `kafka-configs.sh` runs
/// `org.apache.kafka.tools.ConfigCommand`), resolved by Maven.
pub fn kafka_tools_classpath() -> String {
    static CLASSPATH: OnceLock<Result<String, String>> = OnceLock::new();
    maven_classpath(&CLASSPATH, "kafka-tools", "Kafka's tools")
}

/// Resolves `tests/clients/<project>/pom.xml`'s dependencies once per test process.
fn maven_classpath(cell: &'static OnceLock<Result<String, String>>, project: &str, what: &str) -> String {
    let found = cell.get_or_init(|| {
        if on_path("java").is_none() {
            return Err("java (JDK 17 or newer) is not on PATH".into());
        }
        if on_path("mvn").is_none() {
            let _lock = InstallLock::take();
            if on_path("mvn").is_none() {
                apt_install(&["maven"])?;
            }
        }
        let pom = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/clients/{project}/pom.xml"));
        let out = clients_dir().join(format!("{project}.classpath"));
        let _lock = InstallLock::take();
        let resolve = |offline: bool| {
            let mut c = Command::new("mvn");
            c.arg("-q");
            if offline {
                c.arg("-o");
            }
            c.arg("-f").arg(&pom).arg("dependency:build-classpath").arg(format!("-Dmdep.outputFile={}", out.display()));
            if offline {
                c.stderr(Stdio::null());
            }
            c.stdout(Stdio::null()).status().map(|s| s.success()).unwrap_or(false)
        };
        // Offline first: after the first run everything is in ~/.m2.
        if !resolve(true) && !resolve(false) {
            return Err(format!("mvn could not resolve {what} from Maven Central"));
        }
        std::fs::read_to_string(&out).map(|s| s.trim().to_string()).map_err(|e| format!("read {}: {e}", out.display()))
    });
    match found {
        Ok(cp) => cp.clone(),
        Err(e) => panic!("{what} (Java) is required by this test and could not be resolved ({e})"),
    }
}
