//! The vendored crates are exactly the crates published on crates.io plus the
//! patch files in `vendor/patches/` (see `vendor/README.md`): any other edit
//! under `vendor/` fails this test.

use std::process::Command;

#[test]
fn vendored_crates_are_published_crates_plus_patches() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/vendor/sync.sh");
    let output = Command::new("bash").arg(script).arg("check").output().expect("run vendor/sync.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "vendor/sync.sh check failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for name in ["glommio", "kafka-protocol"] {
        assert!(stdout.contains(&format!("vendor/{name} is {name} ")), "{name} was not checked:\n{stdout}");
    }
}
