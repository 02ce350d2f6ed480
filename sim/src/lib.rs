//! Test-only simulator of the AliDNS OpenAPI (version 2015-01-09, RPC style,
//! signature V1) on 127.0.0.1, so the `aliddns` integration tests can run the
//! real binary without network access.
//!
//! It is strict like the real service: every request must carry valid common
//! parameters and a correct HMAC-SHA1 signature (checked by this crate's own
//! implementation in [`sign`], not the client's), the timestamp must be within
//! 15 minutes of the simulator's clock and nonces cannot be reused. Records are
//! kept per hosted zone with the duplicate/conflict/TTL rules clients trip over.
//! Faults ([`Fault`]) and wire quirks ([`Quirks`]) can be injected, and every
//! request is recorded ([`Call`]).
//!
//! Behaviour choices where the real service is undocumented are listed on [`Sim`].

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod api;
mod http;
pub mod sign;
mod time;

use std::collections::BTreeMap;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// AccessKey id every simulator accepts from the start (tests need no setup).
pub const DEFAULT_KEY_ID: &str = "testid";
/// Secret of [`DEFAULT_KEY_ID`] (the value used by the published signature vectors).
pub const DEFAULT_KEY_SECRET: &str = "testsecret";
/// Minimum TTL of a new hosted zone (free edition), changeable with [`Sim::set_min_ttl`].
pub const DEFAULT_MIN_TTL: u32 = 600;
/// The only API version the simulator (and AliDNS) accepts.
pub const API_VERSION: &str = "2015-01-09";

/// A DNS record as the simulator stores it, so tests can assert on server state
/// without going through the API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimRecord {
    /// `RecordId` as sent on the wire (a decimal integer larger than 2^53, as a string).
    pub id: String,
    /// The hosted zone, lower case.
    pub domain: String,
    /// Host record, lower case; `@` is the apex.
    pub rr: String,
    /// Record type, upper case (`A`, `AAAA`, `TXT`, ...).
    pub rtype: String,
    /// Record value exactly as last written.
    pub value: String,
    /// TTL in seconds.
    pub ttl: u32,
    /// Line code (`default`, `telecom`, ...).
    pub line: String,
    /// MX priority; `None` for every other type.
    pub priority: Option<u32>,
    /// `Enable` or `Disable` (always this casing here, whatever [`Quirks`] say).
    pub status: String,
    /// Locked records refuse update/delete with `DomainRecordLocked` ([`Sim::set_locked`]).
    pub locked: bool,
}

/// One request the simulator received, including rejected ones, so tests can
/// count API calls and inspect what the client sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// The `Action` parameter (empty if missing).
    pub action: String,
    /// All query and form parameters after decoding, except `Signature`.
    pub params: BTreeMap<String, String>,
    /// HTTP method as received (`GET`, `POST`).
    pub method: String,
    /// HTTP status answered; 0 when a [`Fault::Drop`] closed the connection instead.
    pub status: u16,
    /// Error `Code` of the response, `None` on success (and for drops/garbage).
    pub code: Option<String>,
}

/// A failure injected with [`Sim::inject`]. Faults are queued; each request takes
/// one unit of `count` from the first queued fault whose `action` matches
/// (`None` matches every API request, admin paths never match). Faults are applied
/// before authentication, like a gateway would.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 400 `Throttling.User` "Request was denied due to user flow control."
    Throttle {
        /// How many requests get this answer.
        count: u32,
        /// Only requests with this `Action` (all if `None`).
        action: Option<String>,
    },
    /// A server-side failure: 503 answers `ServiceUnavailable`, any other status
    /// `InternalError`, both with the usual JSON error body.
    ServerError {
        /// How many requests get this answer.
        count: u32,
        /// HTTP status to answer with (e.g. 500, 502, 503).
        status: u16,
        /// Only requests with this `Action` (all if `None`).
        action: Option<String>,
    },
    /// Sleep `ms` before handling the request normally (the request is still
    /// executed after the sleep even if the client gave up — like a real timeout).
    Delay {
        /// How many requests are delayed.
        count: u32,
        /// Delay in milliseconds.
        ms: u64,
        /// Only requests with this `Action` (all if `None`).
        action: Option<String>,
    },
    /// Read the whole request, then close the connection without a byte of response.
    /// The request is not executed.
    Drop {
        /// How many requests are dropped.
        count: u32,
        /// Only requests with this `Action` (all if `None`).
        action: Option<String>,
    },
    /// Answer HTTP 200 with a `text/html` body that is not JSON. Not executed.
    Garbage {
        /// How many requests get garbage.
        count: u32,
        /// Only requests with this `Action` (all if `None`).
        action: Option<String>,
    },
    /// Any error answer: the standard JSON error body with this status, code and message.
    /// Not executed. Use it for codes the other variants do not cover (e.g. a 429
    /// `Throttling`, or `LastOperationNotFinished`).
    Error {
        /// How many requests get this answer.
        count: u32,
        /// HTTP status.
        status: u16,
        /// Error `Code`.
        code: String,
        /// Error `Message`.
        message: String,
        /// Only requests with this `Action` (all if `None`).
        action: Option<String>,
    },
}

/// Wire-format variations the real service has been seen (or suspected) to use,
/// so clients can be tested for lenient parsing. All off by default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Quirks {
    /// Every numeric field (`TTL`, `Priority`, `TotalCount`, `PageNumber`, `PageSize`,
    /// `MinTtl`, `RecordCount`, timestamps, `DomainLevel`) is emitted as a JSON string.
    pub numbers_as_strings: bool,
    /// Record `Status` is emitted as `ENABLE`/`DISABLE` instead of `Enable`/`Disable`.
    pub status_upper: bool,
}

/// Shared state of one simulator: the data model behind a mutex, plus what the
/// server threads need.
pub(crate) struct Inner {
    pub(crate) state: Mutex<api::State>,
    pub(crate) shutdown: AtomicBool,
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
}

impl Inner {
    pub(crate) fn lock(&self) -> MutexGuard<'_, api::State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Stops the server when the last [`Sim`] clone is dropped.
struct Guard {
    inner: Arc<Inner>,
    addr: SocketAddr,
    accept: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.inner.shutdown.store(true, Ordering::SeqCst);
        // Wake the accept loop; connection threads notice within 100 ms.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(handle) = self.accept.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = handle.join();
        }
    }
}

/// A running simulator. Cheap to clone and share across threads (an `Arc`
/// inside); the server stops when the last clone is dropped.
///
/// Behaviour choices (where the real service is undocumented):
/// - Check order: `Version` (missing → `MissingParameter`, wrong → `InvalidVersion`),
///   `Action` (missing → `MissingParameter`, unknown action / path other than `/` /
///   method other than GET/POST → 404 `InvalidAction.NotFound`), then `Format` (must be
///   JSON, any case), `AccessKeyId`, `SignatureMethod`, `SignatureVersion`,
///   `SignatureNonce`, `Timestamp` (format), `Signature` presence, unknown key (404),
///   signature, timestamp window (±15 min), security token, nonce reuse.
///   Missing/empty parameters → 400 `MissingParameter`; bad values → 400 `InvalidParameter`.
/// - Nonces are remembered per AccessKeyId for the life of the simulator, only for
///   requests that passed authentication.
/// - `DescribeDomainRecords`, `DescribeSubDomainRecords` list newest first (highest
///   `RecordId` first); `Direction=ASC` reverses for DescribeDomainRecords.
///   `DescribeDomains` also lists the newest zone first. [`Sim::records`] is oldest first.
/// - `UpdateDomainRecord`: omitted `TTL` → 600, omitted `Line` → `default`, omitted
///   `Priority` keeps the old MX priority. Status and lock are kept.
/// - `DomainName` that is a subdomain of a hosted zone → `InvalidDomainName.Format`;
///   not under any hosted zone → `InvalidDomainName.NoExist` (also for
///   `DescribeSubDomainRecords` without `DomainName`).
/// - RR is stored lower case, Type upper case; A/AAAA values compare as addresses,
///   host-name values case-insensitively, others byte for byte.
#[derive(Clone)]
pub struct Sim {
    inner: Arc<Inner>,
    addr: SocketAddr,
    _guard: Arc<Guard>,
}

impl Sim {
    /// Starts a plain-HTTP simulator on an ephemeral port of 127.0.0.1 with the key
    /// `testid`/`testsecret` and no zones. Panics if it cannot bind.
    pub fn start() -> Sim {
        Sim::start_on("127.0.0.1:0").expect("bind 127.0.0.1:0")
    }

    /// Like [`Sim::start`] but on a chosen address (for the `alidns-sim` binary).
    pub fn start_on(listen: impl ToSocketAddrs) -> io::Result<Sim> {
        Sim::spawn(TcpListener::bind(listen)?, None)
    }

    /// Starts an HTTPS simulator on 127.0.0.1 with this PEM certificate chain and
    /// PEM private key (e.g. `tests/fixtures/server.pem` / `server.key`). Panics on
    /// bad PEM or a bind failure.
    pub fn start_tls(cert_pem: &[u8], key_pem: &[u8]) -> Sim {
        Sim::start_tls_versions(cert_pem, key_pem, rustls::DEFAULT_VERSIONS)
    }

    /// Like [`Sim::start_tls`] but speaking only these TLS versions (e.g.
    /// `&[&rustls::version::TLS12]` for a TLS 1.2-only server, as some middleboxes are).
    pub fn start_tls_versions(
        cert_pem: &[u8],
        key_pem: &[u8],
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Sim {
        use rustls_pki_types::pem::PemObject as _;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(cert_pem).collect::<Result<_, _>>().expect("certificate PEM");
        assert!(!certs.is_empty(), "no certificate in cert_pem");
        let key = PrivateKeyDer::from_pem_slice(key_pem).expect("private key PEM");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("certificate and key match");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        Sim::spawn(listener, Some(Arc::new(config))).expect("start TLS simulator")
    }

    fn spawn(listener: TcpListener, tls: Option<Arc<rustls::ServerConfig>>) -> io::Result<Sim> {
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner { state: Mutex::new(api::State::new()), shutdown: AtomicBool::new(false), tls });
        let accept = {
            let inner = inner.clone();
            std::thread::Builder::new()
                .name("alidns-sim-accept".into())
                .spawn(move || http::accept_loop(inner, listener))?
        };
        let guard = Arc::new(Guard { inner: inner.clone(), addr, accept: Mutex::new(Some(accept)) });
        Ok(Sim { inner, addr, _guard: guard })
    }

    /// Base URL to give the client: `http://127.0.0.1:PORT/` (`https://` with TLS).
    pub fn endpoint(&self) -> String {
        let scheme = if self.inner.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}/", self.addr)
    }

    /// The TCP port the simulator listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Accepts another AccessKey (or replaces the secret of an existing one).
    pub fn add_key(&self, id: &str, secret: &str) {
        self.inner.lock().add_key(id, secret, None);
    }

    /// Accepts an STS AccessKey: requests must carry `SecurityToken` equal to
    /// `security_token` (missing → `MissingSecurityToken`, different →
    /// `InvalidSecurityToken.Malformed`).
    pub fn add_key_with_token(&self, id: &str, secret: &str, security_token: &str) {
        self.inner.lock().add_key(id, secret, Some(security_token));
    }

    /// Removes an AccessKey, e.g. to test `InvalidAccessKeyId.NotFound` for `testid`.
    pub fn remove_key(&self, id: &str) {
        self.inner.lock().keys.remove(id);
    }

    /// Hosts a zone (free edition: min TTL 600, basic lines). Idempotent.
    pub fn add_domain(&self, name: &str) {
        self.inner.lock().add_domain(name);
    }

    /// Changes a hosted zone's minimum TTL (e.g. 1 or 60 for enterprise editions).
    /// Panics if the zone is not hosted.
    pub fn set_min_ttl(&self, domain: &str, ttl: u32) {
        self.inner.lock().domain_mut(domain).min_ttl = ttl;
    }

    /// Seeds a record without any API call or validation and returns its `RecordId`.
    /// `rr` is lower-cased and `rtype` upper-cased; MX records get priority 10.
    /// Panics if the zone is not hosted.
    pub fn add_record(&self, domain: &str, rr: &str, rtype: &str, value: &str, ttl: u32, line: &str) -> String {
        self.inner.lock().seed_record(domain, rr, rtype, value, ttl, line)
    }

    /// Current records of a zone, oldest first (`""` or `"*"`: every zone).
    pub fn records(&self, domain: &str) -> Vec<SimRecord> {
        self.inner.lock().sim_records(domain)
    }

    /// One record by id, if it exists.
    pub fn record(&self, id: &str) -> Option<SimRecord> {
        self.inner.lock().sim_records("").into_iter().find(|r| r.id == id)
    }

    /// Locks or unlocks a record (locked records answer `DomainRecordLocked`).
    /// Panics if the record does not exist.
    pub fn set_locked(&self, record_id: &str, locked: bool) {
        self.inner.lock().record_mut(record_id).locked = locked;
    }

    /// Every request received since the start or the last [`Sim::reset_calls`],
    /// oldest first (only the last 20 000 are kept; [`Sim::count`] has no limit).
    pub fn calls(&self) -> Vec<Call> {
        self.inner.lock().calls.iter().cloned().collect()
    }

    /// Number of requests with this `Action` (`""` or `"*"`: all requests).
    pub fn count(&self, action: &str) -> usize {
        let st = self.inner.lock();
        if action.is_empty() || action == "*" { st.total } else { st.by_action.get(action).copied().unwrap_or(0) }
    }

    /// Forgets recorded calls and counts (not nonces, records or faults).
    pub fn reset_calls(&self) {
        self.inner.lock().reset_calls();
    }

    /// Skews the simulator's clock: it becomes system time + `secs`. Affects the
    /// `Date` header, the `Timestamp` window and record timestamps.
    pub fn set_clock_offset(&self, secs: i64) {
        self.inner.lock().clock_offset = secs;
    }

    /// The simulator's current time in Unix seconds (system clock + offset).
    pub fn now(&self) -> i64 {
        time::now(self.inner.lock().clock_offset)
    }

    /// Queues a fault (see [`Fault`]); faults with `count: 0` are ignored.
    pub fn inject(&self, fault: Fault) {
        self.inner.lock().inject(fault);
    }

    /// Drops every queued fault that was not consumed yet.
    pub fn clear_faults(&self) {
        self.inner.lock().faults.clear();
    }

    /// Replaces the wire quirks (see [`Quirks`]).
    pub fn set_quirks(&self, q: Quirks) {
        self.inner.lock().quirks = q;
    }
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim").field("endpoint", &self.endpoint()).finish()
    }
}
