//! Smoke tests that also run against the router builds under qemu-user
//! (`.ci/steps/50-router.sh` sets `ALIDDNS_BIN` and `ALIDDNS_RUNNER`): the binary
//! starts, prints its version line with the right target triple, and its help.

mod common;

use std::path::Path;

/// The target triple the binary under test must report: `ALIDDNS_EXPECT_TARGET`,
/// else the `<target>` of a `dist/aliddns-<target>` file in `ALIDDNS_BIN`, else
/// (testing the binary cargo just built) the host build's own target.
fn expected_target() -> Option<String> {
    if let Ok(t) = std::env::var("ALIDDNS_EXPECT_TARGET")
        && !t.trim().is_empty()
    {
        return Some(t.trim().to_string());
    }
    match std::env::var_os("ALIDDNS_BIN") {
        Some(bin) => Path::new(&bin)
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("aliddns-"))
            .filter(|t| t.contains("-linux-"))
            .map(String::from),
        None => Some(env!("ALIDDNS_TARGET").to_string()),
    }
}

fn run(arg: &str) -> (String, String) {
    let out = common::aliddns().arg(arg).output().unwrap_or_else(|e| panic!("cannot run {:?}: {e}", common::bin()));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "aliddns {arg} failed: {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    (stdout, stderr)
}

#[test]
fn version_names_version_target_and_features() {
    let (stdout, stderr) = run("--version");
    let mut lines = stdout.lines();
    let first = lines.next().unwrap_or_default();
    assert!(
        first.starts_with("aliddns "),
        "first line of --version should start with 'aliddns ': {stdout:?} {stderr:?}"
    );
    assert!(
        first.contains(env!("CARGO_PKG_VERSION")),
        "--version should name version {}: {first:?}",
        env!("CARGO_PKG_VERSION")
    );
    if let Some(target) = expected_target() {
        assert!(first.contains(&format!("({target})")), "--version should name the target ({target}): {first:?}");
    }
    let features = stdout.lines().find(|l| l.starts_with("features:"));
    let features = features.unwrap_or_else(|| panic!("--version should have a 'features:' line: {stdout:?}"));
    let words: Vec<&str> = features["features:".len()..].split_whitespace().collect();
    if words == ["none"] {
        // A build without any optional feature (HTTP only) says so in one word.
    } else {
        for word in &words {
            assert!(["tls", "embedded-roots"].contains(word), "unknown feature {word:?} in {features:?}");
        }
    }
    if std::env::var_os("ALIDDNS_BIN").is_none() {
        // The binary cargo built for this test run has the same features as the test.
        assert_eq!(words.contains(&"tls"), cfg!(feature = "tls"), "{features:?}");
        assert_eq!(words.contains(&"embedded-roots"), cfg!(feature = "embedded-roots"), "{features:?}");
    }
}

#[test]
fn help_runs_and_names_the_program() {
    let (stdout, _) = run("--help");
    assert!(stdout.contains("aliddns"), "--help should print usage naming aliddns: {stdout:?}");
}
