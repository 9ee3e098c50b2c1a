//! `sluice tune check` against the real binary: it reports on the data
//! directory's file system and O_DIRECT, and leaves the directory as it found it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A fresh, empty directory under the system temp directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("sluice-tune-check-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tune_check(data_dir: &Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["tune", "check", "--data-dir"])
        .arg(data_dir)
        .env_remove("SLUICE_DATA_DIR")
        .env_remove("SLUICE_SHARDS")
        .output()
        .expect("run sluice tune check");
    let stdout = String::from_utf8(output.stdout).expect("utf-8 report");
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The `current:` value of the report's `[verdict] name` block.
fn current<'a>(report: &'a str, name: &str) -> (&'a str, &'a str) {
    let mut lines = report.lines();
    while let Some(line) = lines.next() {
        let Some(rest) = line.strip_prefix('[') else { continue };
        let Some((verdict, row)) = rest.split_once("] ") else { continue };
        if row == name {
            let value = lines.next().and_then(|l| l.trim().strip_prefix("current:")).expect("current: line");
            return (verdict, value.trim());
        }
    }
    panic!("no {name:?} row in the report:\n{report}");
}

/// The file system type as coreutils' `stat -f` sees it, in hex.
fn statfs_type_hex(dir: &Path) -> String {
    let output = Command::new("stat").args(["-f", "-c", "%t"]).arg(dir).output().expect("run stat -f");
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

#[test]
fn reports_filesystem_and_o_direct_of_the_data_dir() {
    let dir = TempDir::new("data");
    let report = tune_check(&dir.0);

    let (_, filesystem) = current(&report, "filesystem");
    let magic = format!("(magic 0x{})", statfs_type_hex(&dir.0));
    assert!(filesystem.ends_with(&magic), "filesystem {filesystem:?} should end with {magic:?}");
    assert!(!filesystem.starts_with("unknown"), "{filesystem}");

    let (verdict, o_direct) = current(&report, "O_DIRECT write");
    let name = filesystem.split(' ').next().unwrap();
    if name == "ext4" || name == "xfs" {
        assert_eq!(verdict, "ok", "O_DIRECT on {name}: {o_direct}");
        assert!(o_direct.starts_with("works"), "O_DIRECT on {name}: {o_direct}");
    } else {
        assert!(o_direct.starts_with("works") || o_direct.starts_with("fails: "), "{o_direct}");
    }

    // The probe file is gone: the check changed nothing in the data directory.
    let left: Vec<_> = std::fs::read_dir(&dir.0).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "tune check left {left:?} in the data directory");
    assert!(report.contains("Nothing was changed"), "{report}");
}

#[test]
fn a_data_dir_that_does_not_exist_yet_is_checked_through_its_parent_and_not_created() {
    let parent = TempDir::new("parent");
    let data_dir = parent.0.join("not-yet").join("data");
    let report = tune_check(&data_dir);

    assert!(report.contains("does not exist yet"), "{report}");
    let (_, filesystem) = current(&report, "filesystem");
    assert!(filesystem.ends_with(&format!("(magic 0x{})", statfs_type_hex(&parent.0))), "{filesystem}");
    assert!(!parent.0.join("not-yet").exists(), "tune check created the data directory");
    let left: Vec<_> = std::fs::read_dir(&parent.0).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "tune check left {left:?} behind");
}
