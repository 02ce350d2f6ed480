//! One-line log messages on stderr: procd and systemd add timestamps and tags, so
//! a line carries only its level and text. Debug lines appear only with `-v`.

use std::fmt::Display;
use std::sync::atomic::{AtomicBool, Ordering};

static VERBOSE: AtomicBool = AtomicBool::new(false);

/// Turns debug output on (`-v` or `debug=true`).
pub fn set_verbose(on: bool) {
    VERBOSE.store(on, Ordering::Relaxed);
}

/// Whether debug output is on.
pub fn verbose() -> bool {
    VERBOSE.load(Ordering::Relaxed)
}

/// Progress a user wants to see in the log.
pub fn info(msg: impl Display) {
    eprintln!("{msg}");
}

/// Something is off but the run goes on.
pub fn warn(msg: impl Display) {
    eprintln!("warning: {msg}");
}

/// A failure.
pub fn error(msg: impl Display) {
    eprintln!("error: {msg}");
}

/// Detail for troubleshooting, only with `-v`.
pub fn debug(msg: impl Display) {
    if verbose() {
        eprintln!("debug: {msg}");
    }
}

/// Warnings per reason and window before they are counted instead of printed.
const LIMITED_BURST: u32 = 5;
/// The window of [`warn_limited`].
const LIMITED_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);
/// Distinct reasons tracked; more share one bucket, so a client cannot grow the table.
const LIMITED_KEYS: usize = 32;

struct Window {
    start: std::time::Instant,
    printed: u32,
    suppressed: u64,
}

static LIMITED: std::sync::Mutex<Vec<(String, Window)>> = std::sync::Mutex::new(Vec::new());

/// A warning a client can trigger at will (a refused request): the first few
/// per `reason` and minute are printed, the rest counted and reported in one
/// "N more suppressed" line, so a flood cannot push the `audit:` lines of real
/// changes out of a router's small log buffer. Audit lines use [`info`] and are
/// never limited.
pub fn warn_limited(reason: &str, msg: impl Display) {
    let now = std::time::Instant::now();
    let mut table = LIMITED.lock().unwrap_or_else(|p| p.into_inner());
    let key = if table.len() < LIMITED_KEYS || table.iter().any(|(k, _)| k == reason) { reason } else { "other" };
    let i = match table.iter().position(|(k, _)| k == key) {
        Some(i) => i,
        None => {
            table.push((key.to_string(), Window { start: now, printed: 0, suppressed: 0 }));
            table.len() - 1
        }
    };
    let (k, w) = &mut table[i];
    if now.duration_since(w.start) >= LIMITED_WINDOW {
        report_suppressed(k, w);
        *w = Window { start: now, printed: 0, suppressed: 0 };
    }
    if w.printed < LIMITED_BURST {
        w.printed += 1;
        warn(msg);
    } else {
        w.suppressed += 1;
    }
}

/// Prints the "N more suppressed" lines of windows that have ended; cheap
/// enough to call on every turn of a server loop.
pub fn flush_suppressed() {
    let now = std::time::Instant::now();
    let mut table = LIMITED.lock().unwrap_or_else(|p| p.into_inner());
    table.retain_mut(|(k, w)| {
        if now.duration_since(w.start) < LIMITED_WINDOW {
            return true;
        }
        report_suppressed(k, w);
        false
    });
}

fn report_suppressed(key: &str, w: &Window) {
    if w.suppressed > 0 {
        warn(format_args!(
            "{} more warnings like '{key}' suppressed in the last {} s",
            w.suppressed,
            LIMITED_WINDOW.as_secs()
        ));
    }
}
