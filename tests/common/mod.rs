//! Shared helpers for the integration tests: every test runs the real `aliddns`
//! binary. `ALIDDNS_BIN` points the tests at another build of it (e.g. a mipsel
//! binary) and `ALIDDNS_RUNNER` runs it through an emulator (e.g. `qemu-mipsel`).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// The binary under test.
pub fn bin() -> PathBuf {
    std::env::var_os("ALIDDNS_BIN").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_aliddns")))
}

/// A `Command` that runs the binary under test (through `ALIDDNS_RUNNER` if set),
/// with a clean environment: no proxy, no credentials inherited from the developer.
pub fn aliddns() -> Command {
    let mut cmd = match std::env::var("ALIDDNS_RUNNER") {
        Ok(runner) if !runner.trim().is_empty() => {
            let mut parts = runner.split_whitespace();
            let mut c = Command::new(parts.next().expect("non-empty runner"));
            c.args(parts);
            c.arg(bin());
            c
        }
        _ => Command::new(bin()),
    };
    for var in [
        "ALIBABA_CLOUD_ACCESS_KEY_ID",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        "ALIBABA_CLOUD_SECURITY_TOKEN",
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "all_proxy",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// A fresh temporary directory, removed by nothing (the OS tmp cleaner does it);
/// unique per test so tests can run in parallel.
pub fn tempdir(tag: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "aliddns-test-{}-{}-{}",
        tag,
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}
