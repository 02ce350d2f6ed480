//! One error type for the whole binary, so every failure carries what a user needs
//! to act on it (AliDNS's Code and Message, the file and line of a bad config key)
//! and maps onto the documented exit status.

use std::fmt;

/// A failure answered by AliDNS (or anything speaking its error shape).
#[derive(Debug, Clone, Default)]
pub struct ApiError {
    /// HTTP status of the response.
    pub status: u16,
    /// AliDNS `Code`, e.g. `DomainRecordDuplicate`; `HTTP<status>` when the body had none.
    pub code: String,
    /// AliDNS `Message` (for `SignatureDoesNotMatch` without the server's string-to-sign).
    pub message: String,
    /// AliDNS `RequestId`, for a support ticket.
    pub request_id: String,
    /// The server's string-to-sign, split off a `SignatureDoesNotMatch` message.
    pub server_string_to_sign: Option<Box<str>>,
    /// Seconds the server asked us to wait (`x-acs-retry-after`); u32, like the boxed
    /// string-to-sign, keeps every `Result` of the crate small.
    pub retry_after: Option<u32>,
    /// The response's `Date` header in seconds since the epoch: the server's clock,
    /// from which `InvalidTimeStamp.Expired` is corrected.
    pub date: Option<i64>,
}

impl ApiError {
    /// Whether a fresh attempt (new nonce and timestamp) can succeed: throttling,
    /// server-side trouble and nonce reuse are transient, everything else is not
    /// (the codes and why: docs/protocol-notes.md, "Errors and retries").
    pub fn retryable(&self) -> bool {
        let c = self.code.as_str();
        // `contains`, not `starts_with`: `Rejected.Throttling` is throttling too.
        self.status >= 500
            || c.contains("Throttling")
            || matches!(
                c,
                "ServiceUnavailable"
                    | "InternalError"
                    | "UnknownError"
                    | "UnKnownError"
                    | "SignatureNonceUsed"
                    | "LastOperationNotFinished"
                    | "RecordForbidden.DNSChange"
            )
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        if self.request_id.is_empty() {
            write!(f, " (HTTP {})", self.status)
        } else {
            write!(f, " (HTTP {}, RequestId {})", self.status, self.request_id)
        }
    }
}

/// Everything that can go wrong, grouped by what the user has to do about it.
/// `Clone` so a memoized failure (one address lookup shared by many records) can be
/// handed to each of them.
#[derive(Debug, Clone)]
pub enum Error {
    /// AliDNS answered with an error.
    Api(ApiError),
    /// No usable answer: DNS, connect, TLS, timeout, dropped connection, bad body.
    Network {
        /// What happened, never containing a secret.
        message: String,
        /// Whether trying again later may help (timeouts, resets) or not (bad certificate).
        transient: bool,
    },
    /// The config file or the environment is wrong; names file, line and key.
    Config(String),
    /// The command line is wrong.
    Usage(String),
    /// Anything else (local I/O, e.g. the state file's directory).
    Other(String),
}

impl Error {
    /// Whether a retry with a fresh signature may succeed.
    pub fn retryable(&self) -> bool {
        match self {
            Error::Api(e) => e.retryable(),
            Error::Network { transient, .. } => *transient,
            _ => false,
        }
    }

    /// The AliDNS code, when AliDNS answered.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api(e) => Some(&e.code),
            _ => None,
        }
    }

    /// The documented exit status: 1 for API and network failures, 2 for usage and config.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) | Error::Usage(_) => 2,
            _ => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Api(e) => e.fmt(f),
            Error::Network { message, .. } => write!(f, "network: {message}"),
            Error::Config(m) => write!(f, "config: {m}"),
            Error::Usage(m) => write!(f, "usage: {m}"),
            Error::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

impl From<ApiError> for Error {
    fn from(e: ApiError) -> Self {
        Error::Api(e)
    }
}

/// Shorthand used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: &str) -> ApiError {
        ApiError { status, code: code.into(), ..Default::default() }
    }

    #[test]
    fn retryable_codes() {
        assert!(api(400, "Throttling.User").retryable());
        assert!(api(503, "ServiceUnavailable").retryable());
        assert!(api(500, "Whatever").retryable());
        assert!(api(400, "SignatureNonceUsed").retryable());
        assert!(!api(400, "SignatureDoesNotMatch").retryable());
        assert!(!api(400, "InvalidTimeStamp.Expired").retryable());
        assert!(!api(404, "InvalidAccessKeyId.NotFound").retryable());
        assert!(!api(400, "DomainRecordDuplicate").retryable());
    }

    #[test]
    fn exit_codes_and_display() {
        let e = Error::Api(ApiError {
            status: 400,
            code: "IncorrectDomainUser".into(),
            message: "The domain name does not belong to this user.".into(),
            request_id: "R1".into(),
            ..Default::default()
        });
        assert_eq!(e.exit_code(), 1);
        assert_eq!(
            e.to_string(),
            "IncorrectDomainUser: The domain name does not belong to this user. (HTTP 400, RequestId R1)"
        );
        assert_eq!(Error::Config("x".into()).exit_code(), 2);
        assert_eq!(Error::Usage("x".into()).exit_code(), 2);
    }
}
