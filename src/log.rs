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
