//! Shared helpers for the integration tests: every test runs the real `aliddns`
//! binary. `ALIDDNS_BIN` points the tests at another build of it (e.g. a mipsel
//! binary) and `ALIDDNS_RUNNER` runs it through an emulator (e.g. `qemu-mipsel`).
#![allow(dead_code)]

pub mod dos;

use std::path::{Path, PathBuf};
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

/// A temporary directory, removed with everything in it when dropped (also when the
/// test panics), so the suite leaves nothing behind in /tmp.
pub struct TempDir(PathBuf);

impl TempDir {
    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh temporary directory, unique per test so tests can run in parallel; keep
/// the guard alive as long as the directory is used.
pub fn tempdir(tag: &str) -> TempDir {
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
    TempDir(dir)
}

/// A loopback "what is my IP" echo server answering every request with a body
/// the test controls, so the DDNS tests need no network.
pub struct Echo {
    /// `http://127.0.0.1:PORT/`.
    pub url: String,
    body: std::sync::Arc<std::sync::Mutex<String>>,
    hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Echo {
    /// Starts a server answering `body` (trailing newline and all, as real echo services do).
    pub fn start(body: &str) -> Echo {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind echo server");
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let body = std::sync::Arc::new(std::sync::Mutex::new(body.to_string()));
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (b, h) = (body.clone(), hits.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { continue };
                let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(5)));
                let mut buf = [0u8; 4096];
                let mut req = Vec::new();
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let body = b.lock().unwrap().clone();
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                    body.len(),
                    body
                );
            }
        });
        Echo { url, body, hits }
    }

    /// Changes what the server answers (the "new address" after a redial).
    pub fn set(&self, body: &str) {
        *self.body.lock().unwrap() = body.to_string();
    }

    /// Requests served so far.
    pub fn hits(&self) -> usize {
        self.hits.load(std::sync::atomic::Ordering::SeqCst)
    }
}
