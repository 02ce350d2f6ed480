//! Wall-clock time with a learned correction: routers often boot with a clock in
//! 1970, and AliDNS rejects timestamps more than 15 minutes off. The offset learned
//! from a server's `Date` header is kept for the rest of the process
//! (docs/protocol-notes.md, "AliDNS: clock skew").

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the epoch as the local clock says (negative before 1970).
pub fn system_now() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// The local clock plus a correction learned from the server.
#[derive(Debug, Default)]
pub struct Clock {
    // Mutex rather than AtomicI64: 32-bit MIPS has no 64-bit atomics.
    offset: Mutex<i64>,
}

impl Clock {
    /// A clock that trusts the system time until told otherwise.
    pub fn new() -> Self {
        Self::default()
    }

    /// The corrected time, in seconds since the epoch.
    pub fn now(&self) -> i64 {
        system_now() + self.offset()
    }

    /// Seconds added to the system time (positive: the local clock is behind).
    pub fn offset(&self) -> i64 {
        *self.offset.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Learns the offset from a server's idea of now.
    pub fn set_server_time(&self, server_now: i64) -> i64 {
        let off = server_now - system_now();
        *self.offset.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = off;
        off
    }

    /// `yyyy-MM-ddTHH:mm:ssZ` of the corrected time, as the `Timestamp` parameter wants.
    pub fn timestamp(&self) -> String {
        iso8601(self.now())
    }
}

/// Formats seconds since the epoch as `yyyy-MM-ddTHH:mm:ssZ` (UTC).
pub fn iso8601(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60)
}

/// Parses an HTTP `Date` header (RFC 7231 IMF-fixdate and the obsolete forms).
pub fn parse_http_date(s: &str) -> Option<i64> {
    let t = httpdate::parse_http_date(s.trim()).ok()?;
    Some(t.duration_since(UNIX_EPOCH).ok()?.as_secs() as i64)
}

/// Formats seconds since the epoch as an HTTP `Date` header value.
pub fn http_date(unix: i64) -> String {
    let t = UNIX_EPOCH + std::time::Duration::from_secs(unix.max(0) as u64);
    httpdate::fmt_http_date(t)
}

// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_timestamps() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(1_704_164_645), "2024-01-02T03:04:05Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601(-1), "1969-12-31T23:59:59Z");
        assert_eq!(iso8601(4_102_444_800), "2100-01-01T00:00:00Z");
    }

    #[test]
    fn parses_http_dates() {
        assert_eq!(parse_http_date("Tue, 02 Jan 2024 03:04:05 GMT"), Some(1_704_164_645));
        assert_eq!(parse_http_date(" Tue, 02 Jan 2024 03:04:05 GMT\r\n"), Some(1_704_164_645));
        assert_eq!(parse_http_date("yesterday"), None);
        assert_eq!(http_date(1_704_164_645), "Tue, 02 Jan 2024 03:04:05 GMT");
    }

    #[test]
    fn learns_an_offset() {
        let c = Clock::new();
        assert_eq!(c.offset(), 0);
        let off = c.set_server_time(system_now() + 3600);
        assert!((3599..=3601).contains(&off));
        assert!((c.now() - system_now() - 3600).abs() <= 1);
    }
}
