//! One-line log messages on stderr: procd and systemd add timestamps and tags, so
//! a line carries only its level and text. Debug lines appear only with `-v`.

use std::fmt::Display;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

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
const LIMITED_WINDOW: Duration = Duration::from_secs(60);
/// Distinct reasons tracked; more share one bucket, so a client cannot grow the table.
const LIMITED_KEYS: usize = 32;

/// Counts warnings per reason in fixed windows (the logic of [`warn_limited`]).
struct Limiter {
    /// Reason, window start, printed, suppressed.
    table: Vec<(String, Instant, u32, u64)>,
}

impl Limiter {
    /// Whether this warning is printed; pushes onto `reports` the lines saying
    /// how many were suppressed in windows that have ended.
    fn admit(&mut self, reason: &str, now: Instant, reports: &mut Vec<String>) -> bool {
        self.expire(now, reports);
        let known = self.table.iter().any(|(k, ..)| k == reason);
        let key = if known || self.table.len() < LIMITED_KEYS { reason } else { "other" };
        let i = match self.table.iter().position(|(k, ..)| k == key) {
            Some(i) => i,
            None => {
                self.table.push((key.to_string(), now, 0, 0));
                self.table.len() - 1
            }
        };
        let (_, _, printed, suppressed) = &mut self.table[i];
        if *printed < LIMITED_BURST {
            *printed += 1;
            true
        } else {
            *suppressed += 1;
            false
        }
    }

    /// Ends the windows older than [`LIMITED_WINDOW`].
    fn expire(&mut self, now: Instant, reports: &mut Vec<String>) {
        self.table.retain(|(key, start, _, suppressed)| {
            if now.duration_since(*start) < LIMITED_WINDOW {
                return true;
            }
            if *suppressed > 0 {
                reports.push(format!(
                    "{suppressed} more warnings like '{key}' suppressed in the last {} s",
                    LIMITED_WINDOW.as_secs()
                ));
            }
            false
        });
    }
}

static LIMITED: Mutex<Limiter> = Mutex::new(Limiter { table: Vec::new() });

/// A warning a client can trigger at will (a refused request): the first few
/// per `reason` and minute are printed, the rest counted and reported in one
/// "N more suppressed" line, so a flood cannot push the `audit:` lines of real
/// changes out of a router's small log buffer. Audit lines use [`info`] and are
/// never limited.
pub fn warn_limited(reason: &str, msg: impl Display) {
    let mut reports = Vec::new();
    let print = LIMITED.lock().unwrap_or_else(|p| p.into_inner()).admit(reason, Instant::now(), &mut reports);
    for r in reports {
        warn(r);
    }
    if print {
        warn(msg);
    }
}

/// Prints the "N more suppressed" lines of windows that have ended; cheap
/// enough to call on every turn of a server loop.
pub fn flush_suppressed() {
    let mut reports = Vec::new();
    LIMITED.lock().unwrap_or_else(|p| p.into_inner()).expire(Instant::now(), &mut reports);
    for r in reports {
        warn(r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_limited_per_reason_and_window() {
        let mut l = Limiter { table: Vec::new() };
        let t0 = Instant::now();
        let mut reports = Vec::new();
        let printed = (0..100).filter(|_| l.admit("401 wrong token", t0, &mut reports)).count();
        assert_eq!(printed, LIMITED_BURST as usize);
        // Another reason has its own budget.
        assert!(l.admit("403 stale Timestamp", t0, &mut reports));
        assert!(reports.is_empty());
        // The window ends: one line says how many were dropped, and printing resumes.
        let t1 = t0 + LIMITED_WINDOW;
        assert!(l.admit("401 wrong token", t1, &mut reports));
        assert_eq!(reports, vec!["95 more warnings like '401 wrong token' suppressed in the last 60 s"]);
        // Many distinct reasons cannot grow the table without bound.
        for i in 0..1000 {
            l.admit(&format!("reason {i}"), t1, &mut reports);
        }
        assert!(l.table.len() <= LIMITED_KEYS + 1);
    }
}
