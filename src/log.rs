//! One-line log messages, on stderr by default: procd and systemd add timestamps
//! and tags, so a line carries only its level and text. Debug lines appear only
//! with `-v`.
//!
//! With `--syslog` every line goes to the local syslog socket instead, facility
//! daemon, with a priority per level: procd would log all of stderr as
//! `daemon.err`, so on OpenWrt the binary says itself which lines are routine.

use std::fmt::Display;
use std::io::ErrorKind;
use std::os::unix::net::UnixDatagram;
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

/// How much a line matters; each maps to one syslog priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Detail for troubleshooting (`-v`).
    Debug,
    /// Routine progress.
    Info,
    /// A change the user wants to find later (a record updated, an audit line).
    Notice,
    /// Something is off but the run goes on.
    Warning,
    /// A failure.
    Error,
}

/// Facility `daemon` (3), shifted as in `<PRI>` = facility * 8 + severity.
const LOG_DAEMON: u8 = 3 << 3;

impl Level {
    /// The `<PRI>` value of a line at this level: facility daemon, RFC 3164/5424 severity.
    pub fn syslog_priority(self) -> u8 {
        LOG_DAEMON
            | match self {
                Level::Error => 3,
                Level::Warning => 4,
                Level::Notice => 5,
                Level::Info => 6,
                Level::Debug => 7,
            }
    }

    /// What starts the line on stderr (syslog has the priority instead).
    fn prefix(self) -> &'static str {
        match self {
            Level::Error => "error: ",
            Level::Warning => "warning: ",
            Level::Debug => "debug: ",
            Level::Info | Level::Notice => "",
        }
    }
}

/// The open syslog socket once `--syslog` asked for one.
static SYSLOG: Mutex<Option<Syslog>> = Mutex::new(None);

/// Where the syslog daemon listens. `ALIDDNS_SYSLOG_SOCKET` replaces it for the
/// integration tests only (undocumented: /dev/log is what every router has).
fn socket_path() -> std::path::PathBuf {
    std::env::var_os("ALIDDNS_SYSLOG_SOCKET").map(Into::into).unwrap_or_else(|| "/dev/log".into())
}

/// A datagram connection to the local syslog daemon, as libc's `syslog(3)` keeps one.
struct Syslog {
    sock: Option<UnixDatagram>,
    /// `aliddns[PID]: `, the tag of every line.
    tag: String,
}

impl Syslog {
    fn connect() -> Option<UnixDatagram> {
        let sock = UnixDatagram::unbound().ok()?;
        sock.connect(socket_path()).ok()?;
        // A syslog daemon that stops reading must not stop the daemon: after a
        // second the line goes to stderr instead.
        sock.set_write_timeout(Some(std::time::Duration::from_secs(1))).ok()?;
        Some(sock)
    }

    /// Sends one line; reconnects once when the daemon was restarted (logd after
    /// an upgrade). False when syslog cannot take it.
    fn send(&mut self, level: Level, msg: &str) -> bool {
        let datagram = format!("<{}>{}{}{}", level.syslog_priority(), timestamp(), self.tag, clip(msg, 1024));
        for _ in 0..2 {
            if self.sock.is_none() {
                self.sock = Self::connect();
            }
            let Some(s) = &self.sock else { return false };
            match s.send(datagram.as_bytes()) {
                Ok(_) => return true,
                // Busy, not gone: keep the socket for the next line.
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return false,
                Err(_) => self.sock = None,
            }
        }
        false
    }
}

/// At most `max` bytes of `msg`, cut at a character boundary: a datagram that big
/// would be dropped whole by some daemons.
fn clip(msg: &str, max: usize) -> &str {
    if msg.len() <= max {
        return msg;
    }
    let mut end = max;
    while !msg.is_char_boundary(end) {
        end -= 1;
    }
    &msg[..end]
}

/// `Mmm dd hh:mm:ss ` in local time, the RFC 3164 header that logd, busybox
/// syslogd and journald all expect (they replace it with their own time anyway).
fn timestamp() -> String {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    // SAFETY: time(NULL) and localtime_r with valid pointers to locals.
    let tm = unsafe {
        let now = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&now, &mut tm).is_null() {
            return String::new();
        }
        tm
    };
    let month = MONTHS.get(tm.tm_mon as usize).copied().unwrap_or("Jan");
    format!("{month} {:2} {:02}:{:02}:{:02} ", tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec)
}

/// Sends every later line to syslog (`--syslog`). Lines still go to stderr while
/// no syslog daemon answers, so nothing is lost at early boot.
pub fn use_syslog() {
    let mut guard = SYSLOG.lock().unwrap_or_else(|e| e.into_inner());
    *guard = Some(Syslog { sock: Syslog::connect(), tag: format!("aliddns[{}]: ", std::process::id()) });
}

/// Whether `--syslog` is on: commands then log their results instead of printing them.
pub fn to_syslog() -> bool {
    SYSLOG.lock().unwrap_or_else(|e| e.into_inner()).is_some()
}

/// Writes one line at `level`.
pub fn log(level: Level, msg: impl Display) {
    if level == Level::Debug && !verbose() {
        return;
    }
    let msg = msg.to_string();
    let mut guard = SYSLOG.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = guard.as_mut()
        && s.send(level, &msg)
    {
        return;
    }
    drop(guard);
    eprintln!("{}{msg}", level.prefix());
}

/// Progress a user wants to see in the log.
pub fn info(msg: impl Display) {
    log(Level::Info, msg);
}

/// A change worth finding later: a record set, an audit line.
pub fn notice(msg: impl Display) {
    log(Level::Notice, msg);
}

/// Something is off but the run goes on.
pub fn warn(msg: impl Display) {
    log(Level::Warning, msg);
}

/// A failure.
pub fn error(msg: impl Display) {
    log(Level::Error, msg);
}

/// Detail for troubleshooting, only with `-v`.
pub fn debug(msg: impl Display) {
    log(Level::Debug, msg);
}

/// `s` in double quotes with quotes, backslashes and control characters escaped, as
/// `{:?}` prints text (printable Unicode is left as it is): spelled out because the
/// router builds compile `{:?}` to nothing (`-Z fmt-debug=none`).
pub fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    // Not `char::escape_debug`: its Unicode tables cost flash, and only quotes,
    // backslashes and control characters could be mistaken for more of a log line.
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
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
/// changes out of a router's small log buffer. Audit lines use [`notice`] and are
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
    fn priorities_are_facility_daemon_with_the_level_severity() {
        // daemon.err = 27, daemon.warning = 28, daemon.notice = 29, daemon.info = 30, daemon.debug = 31
        assert_eq!(Level::Error.syslog_priority(), 27);
        assert_eq!(Level::Warning.syslog_priority(), 28);
        assert_eq!(Level::Notice.syslog_priority(), 29);
        assert_eq!(Level::Info.syslog_priority(), 30);
        assert_eq!(Level::Debug.syslog_priority(), 31);
    }

    #[test]
    fn stderr_prefixes_name_the_level() {
        assert_eq!(Level::Error.prefix(), "error: ");
        assert_eq!(Level::Warning.prefix(), "warning: ");
        assert_eq!(Level::Notice.prefix(), "");
    }

    #[test]
    fn clip_keeps_whole_characters() {
        assert_eq!(clip("abc", 10), "abc");
        assert_eq!(clip("ab线路", 4), "ab");
        assert_eq!(clip("ab线路", 5), "ab线");
    }

    #[test]
    fn timestamp_has_the_rfc3164_shape() {
        let t = timestamp();
        let b = t.as_bytes();
        assert_eq!(t.len(), 16, "{t:?}");
        assert_eq!((b[3], b[6], b[9], b[12], b[15]), (b' ', b' ', b':', b':', b' '), "{t:?}");
    }

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

    #[test]
    fn quoted_matches_debug() {
        for s in ["", "a b", "say \"hi\"", "it's", "back\\slash", "tab\there\n", "caf\u{e9}", "bell\u{7}"] {
            assert_eq!(quoted(s), format!("{s:?}"));
        }
    }
}
