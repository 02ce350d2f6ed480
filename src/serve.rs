//! `aliddns serve`: the GoEdge/FlexCDN "custom HTTP DNS" provider, bridged to
//! AliDNS, so the AccessKey stays on the router and the CDN manages its records
//! through a shared secret.
//!
//! The wire format (token, actions, record JSON, value and route mapping) is in
//! `goedge.rs`; the facts it relies on are in docs/protocol-notes.md, "GoEdge /
//! FlexCDN custom HTTP DNS". This module checks the request, maps each action onto
//! AliDNS calls and audits every change.

use crate::alidns::{Client, Domain, DomainInfo, LineInfo, Record, RecordFilter, RecordSpec, UpdateOutcome};
use crate::config::{Config, Secret};
use crate::error::{Error, Result};
use crate::goedge::{self, Action, DEFAULT_ROUTE, Fail, GoRecord, fail, record_field, rr_of, str_field, token_for};
use crate::httpd::{self, Handler, Limits, Request, Response, Service};
use crate::json::{self, Object, Value};
use crate::log;
use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Port used when neither `--listen` nor `listen` says otherwise (53 for DNS, 80
/// for HTTP: easy to remember, unprivileged, and unused by OpenWrt's services).
pub const DEFAULT_PORT: u16 = 8053;
/// Allowed difference between GoEdge's `Timestamp` and our clock, seconds
/// (what the published servers of this protocol use).
pub const DEFAULT_MAX_SKEW: u64 = 300;
/// Shortest secret accepted: GoEdge generates 32 hex characters; anything much
/// shorter can be brute-forced from one captured Timestamp/Token pair.
pub const MIN_SECRET_LEN: usize = 16;
/// How long DescribeSupportLines and DescribeDomainInfo answers are reused: the
/// lines of a domain change only with its edition.
pub const CACHE_TTL: Duration = Duration::from_secs(3600);
const JSON: &str = "application/json";

/// Serves the GoEdge custom HTTP DNS protocol until the process is stopped.
pub fn run(cfg: &Config, client: Arc<Client>, listen: Option<String>) -> Result<()> {
    let settings = Settings::from_config(cfg, listen)?;
    let tls = load_tls(cfg)?;
    let addr = listen_addr(&settings.listen)?;
    let listener = TcpListener::bind(addr)
        .map_err(|e| Error::Other(format!("serve: cannot listen on {}: {e}", settings.listen)))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let allow = if settings.domains.is_empty() {
        "every domain of the account".to_string()
    } else {
        settings.domains.join(", ")
    };
    let handler: Handler = Arc::new(App::new(settings, client));
    let limits = Limits::default();
    let (workers, max_conns) = (limits.workers, limits.max_conns);
    crate::signal::install();
    let running = httpd::start(listener, tls, limits, handler).map_err(|e| Error::Other(format!("serve: {e}")))?;
    let bound = running.addr;
    log::info(format!(
        "serve: listening on {scheme}://{bound}/ ({workers} workers, {max_conns} connections; domains: {allow})"
    ));
    if scheme == "http" && !bound.ip().is_loopback() {
        log::info(
            "serve: plain HTTP: bind to a LAN address or set tls_cert/tls_key if GoEdge reaches this over the Internet",
        );
    }
    // SIGTERM/SIGINT: stop accepting, let the workers finish what they started.
    while !crate::signal::stop_requested() {
        crate::signal::wait(None);
    }
    log::info("serve: stopping");
    running.stop();
    Ok(())
}

/// What `serve` needs from the `[httpdns]` section, checked once at startup.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `ADDR:PORT` to bind.
    pub listen: String,
    /// The shared secret (never logged).
    pub secret: Secret,
    /// Allowed zones, lower case; empty = every zone of the account.
    pub domains: Vec<String>,
    /// Allowed clock difference, seconds.
    pub max_skew: u64,
}

impl Settings {
    /// Validates the section: a missing or short secret is a config error (exit 2).
    pub fn from_config(cfg: &Config, listen: Option<String>) -> Result<Settings> {
        let Some(h) = &cfg.httpdns else {
            return Err(Error::Config(
                "serve needs an [httpdns] section with at least `secret=` (the secret shown on GoEdge's DNS provider page)"
                    .into(),
            ));
        };
        if !h.enabled {
            return Err(Error::Config("serve: the [httpdns] section is disabled (enabled=false)".into()));
        }
        let at = match &cfg.path {
            Some(p) => format!("{}:{}: ", p.display(), h.line),
            None => String::new(),
        };
        let secret = match &h.secret {
            Some(s) if !s.is_empty() && !s.expose().trim().is_empty() => s.clone(),
            _ => {
                return Err(Error::Config(format!(
                    "{at}[httpdns] secret is required: copy the secret GoEdge/FlexCDN shows for the custom HTTP DNS provider"
                )));
            }
        };
        if secret.expose().chars().count() < MIN_SECRET_LEN {
            return Err(Error::Config(format!(
                "{at}[httpdns] secret is too short: use at least {MIN_SECRET_LEN} characters (GoEdge generates 32)"
            )));
        }
        let listen = listen.or_else(|| h.listen.clone()).unwrap_or_else(|| format!("0.0.0.0:{DEFAULT_PORT}"));
        // Fail closed: dropping an entry could leave an empty list, which means every zone.
        let mut domains = Vec::with_capacity(h.domains.len());
        for d in &h.domains {
            match normalize_domain(d) {
                Some(d) => domains.push(d),
                None => {
                    return Err(Error::Config(format!("{at}[httpdns] domains: '{d}' is not a domain name")));
                }
            }
        }
        Ok(Settings { listen, secret, domains, max_skew: h.max_skew.unwrap_or(DEFAULT_MAX_SKEW) })
    }
}

/// `ADDR:PORT`, `[v6]:PORT`, or a bare port (all addresses).
fn listen_addr(s: &str) -> Result<SocketAddr> {
    let s = s.trim();
    if let Ok(port) = s.trim_start_matches(':').parse::<u16>() {
        return Ok(SocketAddr::from(([0, 0, 0, 0], port)));
    }
    s.parse::<SocketAddr>().map_err(|_| {
        Error::Config(format!(
            "[httpdns] listen: '{s}' is not ADDR:PORT (e.g. 192.168.1.1:{DEFAULT_PORT} or [::]:{DEFAULT_PORT})"
        ))
    })
}

#[cfg(feature = "tls")]
fn load_tls(cfg: &Config) -> Result<Option<httpd::TlsConfig>> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let Some(h) = &cfg.httpdns else { return Ok(None) };
    let (cert, key) = match (&h.tls_cert, &h.tls_key) {
        (None, None) => return Ok(None),
        (Some(c), Some(k)) => (c, k),
        _ => return Err(Error::Config("[httpdns] tls_cert and tls_key go together".into())),
    };
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(cert).and_then(|it| it.collect::<std::result::Result<_, _>>()).map_err(|e| {
            Error::Config(format!("[httpdns] tls_cert {}: {}", cert.display(), crate::tls::describe_pem(&e)))
        })?;
    if certs.is_empty() {
        return Err(Error::Config(format!("[httpdns] tls_cert {}: no certificate in the file", cert.display())));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| Error::Config(format!("[httpdns] tls_key {}: {}", key.display(), crate::tls::describe_pem(&e))))?;
    let provider = Arc::new(crate::tls::server_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| Error::Config(format!("[httpdns] tls_cert/tls_key: {}", crate::tls::describe(&e))))?;
    Ok(Some(Arc::new(config)))
}

#[cfg(not(feature = "tls"))]
fn load_tls(cfg: &Config) -> Result<Option<httpd::TlsConfig>> {
    match cfg.httpdns.as_ref().map(|h| (h.tls_cert.is_some(), h.tls_key.is_some())) {
        Some((false, false)) | None => Ok(None),
        _ => Err(Error::Config("[httpdns] tls_cert/tls_key: this build has no TLS support".into())),
    }
}

// ---------------------------------------------------------------------------
// Upstream: the AliDNS calls serve makes, as a trait so the handler can be
// tested without a server.

/// The AliDNS operations the bridge needs (implemented by [`Client`]).
pub trait Upstream: Send + Sync {
    /// Every zone of the account.
    fn domains(&self) -> Result<Vec<Domain>>;
    /// Records of a zone (all pages), optionally filtered.
    fn records(&self, domain: &str, filter: &RecordFilter) -> Result<Vec<Record>>;
    /// One record by id.
    fn record(&self, id: &str) -> Result<Record>;
    /// Adds a record, returns its id.
    fn add(&self, domain: &str, spec: &RecordSpec) -> Result<String>;
    /// Updates a record.
    fn update(&self, id: &str, spec: &RecordSpec) -> Result<UpdateOutcome>;
    /// Deletes a record.
    fn delete(&self, id: &str) -> Result<()>;
    /// Lines of a zone.
    fn lines(&self, domain: &str) -> Result<Vec<LineInfo>>;
    /// TTL limits of a zone.
    fn info(&self, domain: &str) -> Result<DomainInfo>;
    /// Now, in Unix seconds, corrected by what AliDNS taught the client.
    fn now(&self) -> i64 {
        crate::clock::system_now()
    }
}

impl Upstream for Client {
    fn domains(&self) -> Result<Vec<Domain>> {
        self.describe_domains()
    }
    fn records(&self, domain: &str, filter: &RecordFilter) -> Result<Vec<Record>> {
        self.describe_domain_records(domain, filter)
    }
    fn record(&self, id: &str) -> Result<Record> {
        self.describe_domain_record_info(id)
    }
    fn add(&self, domain: &str, spec: &RecordSpec) -> Result<String> {
        self.add_domain_record(domain, spec)
    }
    fn update(&self, id: &str, spec: &RecordSpec) -> Result<UpdateOutcome> {
        self.update_domain_record(id, spec)
    }
    fn delete(&self, id: &str) -> Result<()> {
        self.delete_domain_record(id)
    }
    fn lines(&self, domain: &str) -> Result<Vec<LineInfo>> {
        self.describe_support_lines(Some(domain))
    }
    fn info(&self, domain: &str) -> Result<DomainInfo> {
        self.describe_domain_info(domain)
    }
    fn now(&self) -> i64 {
        self.clock().now()
    }
}

// ---------------------------------------------------------------------------
// The application.

type Answer = std::result::Result<Response, Fail>;

/// Answers reused per domain for [`CACHE_TTL`]: the route list and the minimum TTL.
struct TtlCache<T> {
    entries: Mutex<HashMap<String, (Instant, T)>>,
}

impl<T: Clone> TtlCache<T> {
    fn new() -> TtlCache<T> {
        TtlCache { entries: Mutex::new(HashMap::new()) }
    }

    /// The value stored for `key`, unless it is older than [`CACHE_TTL`].
    fn get(&self, key: &str) -> Option<T> {
        self.lock().get(key).filter(|(at, _)| at.elapsed() < CACHE_TTL).map(|(_, v)| v.clone())
    }

    fn insert(&self, key: &str, value: T) {
        self.lock().insert(key.to_string(), (Instant::now(), value));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, T)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The request handler: authentication, the nine actions, caches.
pub struct App<U: Upstream> {
    settings: Settings,
    up: Arc<U>,
    routes: TtlCache<Arc<Vec<u8>>>,
    min_ttl: TtlCache<u32>,
}

impl<U: Upstream> App<U> {
    /// A handler for these settings, calling `up` for AliDNS.
    pub fn new(settings: Settings, up: Arc<U>) -> App<U> {
        App { settings, up, routes: TtlCache::new(), min_ttl: TtlCache::new() }
    }

    /// Answers one HTTP request; logs every failure with the peer and reason.
    pub fn handle(&self, req: &Request) -> Response {
        let started = Instant::now();
        let mut action = String::from("?");
        let answer = self.answer(req, &mut action);
        match answer {
            Ok(resp) => {
                log::debug(format!(
                    "serve: {} {} {action}: 200 ({} bytes, {} ms)",
                    req.peer,
                    req.target,
                    resp.body.len(),
                    started.elapsed().as_millis()
                ));
                resp
            }
            Err(f) => refusal(req, &action, &f),
        }
    }

    /// The checks that need only the head: the method and the signature.
    fn admit_head(&self, req: &Request) -> std::result::Result<(), Fail> {
        if req.method != "POST" {
            return Err(fail(405, format!("method {} not allowed: GoEdge always POSTs", req.method)));
        }
        self.authenticate(req)
    }

    fn answer(&self, req: &Request, action_out: &mut String) -> Answer {
        self.admit_head(req)?;
        let body = json::parse_bytes(&req.body).ok_or_else(|| fail(400, "body is not valid JSON"))?;
        let Value::Object(obj) = &body else {
            return Err(fail(400, "body must be a JSON object"));
        };
        let name = goedge::action_name(obj)?;
        *action_out = name.chars().filter(|c| !c.is_control()).take(40).collect();
        let Some(action) = Action::from_name(name) else {
            return Err(fail(400, "unknown action"));
        };
        let domain = if action.needs_domain() {
            let d = self.domain_of(obj)?;
            action_out.push(' ');
            action_out.push_str(&d);
            d
        } else {
            String::new()
        };
        match action {
            Action::GetDomains => self.get_domains(),
            Action::DefaultRoute => Ok(Response::new(200, "text/plain; charset=utf-8", DEFAULT_ROUTE)),
            Action::GetRecords => self.get_records(&domain),
            Action::GetRoutes => self.get_routes(&domain),
            Action::QueryRecord => self.query(&domain, obj, true),
            Action::QueryRecords => self.query(&domain, obj, false),
            Action::AddRecord => self.add_record(req, &domain, obj),
            Action::UpdateRecord => self.update_record(req, &domain, obj),
            Action::DeleteRecord => self.delete_record(req, &domain, obj),
        }
    }

    /// `Token` must be sha1hex(secret + "@" + Timestamp), and the timestamp recent.
    fn authenticate(&self, req: &Request) -> std::result::Result<(), Fail> {
        let (Some(ts), Some(token)) = (req.header("Timestamp"), req.header("Token")) else {
            return Err(fail(401, "missing Timestamp or Token header"));
        };
        let ts = ts.trim();
        if ts.is_empty() || ts.len() > 12 || !ts.bytes().all(|b| b.is_ascii_digit()) {
            return Err(fail(401, "malformed Timestamp header"));
        }
        let expected = token_for(&self.settings.secret, ts);
        if !constant_time_eq(expected.as_bytes(), token.trim().as_bytes()) {
            return Err(fail(401, "wrong token (check the secret on both sides)"));
        }
        let ts: i64 = ts.parse().map_err(|_| fail(401, "malformed Timestamp header"))?;
        let skew = (self.up.now() - ts).abs();
        if skew as u64 > self.settings.max_skew {
            return Err(fail(
                403,
                format!(
                    "stale Timestamp: {skew}s from our clock (max_skew {}); check NTP on both sides",
                    self.settings.max_skew
                ),
            ));
        }
        Ok(())
    }

    fn domain_of(&self, obj: &Object) -> std::result::Result<String, Fail> {
        let raw = match obj.get("domain") {
            Some(Value::String(s)) => s,
            Some(Value::Null) | None => return Err(fail(400, "domain is missing")),
            Some(_) => return Err(fail(400, "domain must be a string")),
        };
        let d = normalize_domain(raw).ok_or_else(|| fail(400, "domain is not a valid domain name"))?;
        if !self.allowed(&d) {
            return Err(fail(403, format!("domain {d} is not in [httpdns] domains")));
        }
        Ok(d)
    }

    fn allowed(&self, domain: &str) -> bool {
        self.settings.domains.is_empty() || self.settings.domains.iter().any(|d| d == domain)
    }

    fn get_domains(&self) -> Answer {
        let all = self.up.domains().map_err(upstream)?;
        let mut names: Vec<String> = Vec::new();
        for d in all {
            if let Some(n) = normalize_domain(&d.name)
                && self.allowed(&n)
                && !names.contains(&n)
            {
                names.push(n);
            }
        }
        Ok(Response::new(
            200,
            JSON,
            json::to_string(&Value::Array(names.into_iter().map(Value::String).collect())).into_bytes(),
        ))
    }

    fn get_records(&self, domain: &str) -> Answer {
        let recs = self.up.records(domain, &RecordFilter::default()).map_err(upstream)?;
        Ok(Response::new(200, JSON, goedge::records_json(recs.iter())))
    }

    fn get_routes(&self, domain: &str) -> Answer {
        if let Some(body) = self.routes.get(domain) {
            return Ok(Response::new(200, JSON, body.to_vec()));
        }
        let lines = self.up.lines(domain).map_err(upstream)?;
        let body = Arc::new(goedge::routes_json(&lines));
        self.routes.insert(domain, body.clone());
        Ok(Response::new(200, JSON, body.to_vec()))
    }

    fn query(&self, domain: &str, obj: &Object, one: bool) -> Answer {
        let name = str_field(obj, "name")?;
        let rtype = str_field(obj, "recordType")?.to_ascii_uppercase();
        let rr = rr_of(&name);
        let filter =
            RecordFilter { rr: Some(rr.clone()), rtype: Some(rtype.clone()).filter(|t| !t.is_empty()), line: None };
        let mut recs = self.up.records(domain, &filter).map_err(upstream)?;
        // Exact matches only (AliDNS stores RR in lower case; GoEdge compares exactly).
        recs.retain(|r| r.rr.eq_ignore_ascii_case(&rr) && (rtype.is_empty() || r.rtype.eq_ignore_ascii_case(&rtype)));
        if one {
            // Prefer the default line: that is the record GoEdge's doServer means.
            let pick = recs.iter().find(|r| r.line == DEFAULT_ROUTE).or_else(|| recs.first());
            return Ok(match pick {
                Some(r) => Response::new(200, JSON, goedge::record_json(r)),
                None => Response::new(200, JSON, "null"),
            });
        }
        Ok(Response::new(200, JSON, goedge::records_json(recs.iter())))
    }

    /// The TTL to send: 0 = the zone's default (omit it); below the edition's
    /// minimum or above a day is raised/lowered to the limit instead of failing.
    fn ttl_for(&self, domain: &str, ttl: i64) -> Option<u32> {
        if ttl <= 0 {
            return None;
        }
        let ttl = ttl.min(86_400) as u32;
        if ttl >= 600 {
            return Some(ttl); // allowed by every edition
        }
        let min = self.min_ttl(domain).unwrap_or(1);
        if ttl < min {
            log::warn(format!("serve: {domain}: TTL {ttl} is below the edition's minimum {min}; using {min}"));
            return Some(min);
        }
        Some(ttl)
    }

    fn min_ttl(&self, domain: &str) -> Option<u32> {
        if let Some(min) = self.min_ttl.get(domain) {
            return Some(min);
        }
        match self.up.info(domain) {
            Ok(info) => {
                let min = info.min_ttl.or_else(|| info.available_ttls.first().copied()).unwrap_or(600);
                self.min_ttl.insert(domain, min);
                Some(min)
            }
            Err(e) => {
                log::warn(format!("serve: {domain}: cannot read the minimum TTL ({e}); sending the TTL as asked"));
                None
            }
        }
    }

    fn spec_for(&self, domain: &str, r: &GoRecord, old_type: Option<&str>) -> RecordSpec {
        let rtype = r.rtype.to_ascii_uppercase();
        let priority = (rtype == "MX" && old_type.is_none_or(|t| !t.eq_ignore_ascii_case("MX"))).then_some(10);
        RecordSpec {
            rr: rr_of(&r.name),
            value: goedge::upstream_value(&rtype, &r.value),
            ttl: self.ttl_for(domain, r.ttl),
            line: Some(if r.route.is_empty() { DEFAULT_ROUTE.to_string() } else { r.route.clone() }),
            rtype,
            priority,
        }
    }

    fn add_record(&self, req: &Request, domain: &str, obj: &Object) -> Answer {
        let r = record_field(obj, "newRecord")?;
        r.check_writable()?;
        let spec = self.spec_for(domain, &r, None);
        let outcome = match self.up.add(domain, &spec) {
            Ok(id) => {
                let shown = GoRecord { id: id.clone(), ..r.clone() };
                Ok((format!("ok id={id}"), shown.to_json()))
            }
            // The record is already there exactly: the desired state holds, and a
            // failure would only make GoEdge's task retry forever.
            Err(e) if e.code() == Some("DomainRecordDuplicate") => Ok(("ok (already existed)".into(), r.to_json())),
            Err(e) => Err(upstream(e)),
        };
        audited(req, Action::AddRecord, domain, &r, outcome)
    }

    /// The record `id` of `domain`, or None if it no longer exists; a record of
    /// another zone is refused, so the allowlist cannot be bypassed by id.
    fn owned_record(&self, domain: &str, id: &str) -> std::result::Result<Option<Record>, Fail> {
        match self.up.record(id) {
            Ok(rec) => {
                let zone = normalize_domain(&rec.domain).unwrap_or_default();
                if !zone.is_empty() && zone != domain {
                    return Err(fail(403, format!("record {id} belongs to another domain")));
                }
                Ok(Some(rec))
            }
            Err(e) if is_gone(&e) => Ok(None),
            Err(e) => Err(upstream(e)),
        }
    }

    fn update_record(&self, req: &Request, domain: &str, obj: &Object) -> Answer {
        let old = record_field(obj, "record")?;
        let new = record_field(obj, "newRecord")?;
        if old.id.is_empty() {
            return Err(fail(400, "record.id is missing"));
        }
        new.check_writable()?;
        let shown = GoRecord { id: old.id.clone(), ..new.clone() };
        let outcome =
            self.replace(domain, &old.id, &new).map(|what| (format!("{what} id={}", old.id), shown.to_json()));
        audited(req, Action::UpdateRecord, domain, &shown, outcome)
    }

    /// Overwrites record `id` of `domain` with `new`; says whether anything changed.
    fn replace(&self, domain: &str, id: &str, new: &GoRecord) -> std::result::Result<&'static str, Fail> {
        let Some(cur) = self.owned_record(domain, id)? else {
            return Err(fail(404, format!("record {id} does not exist")));
        };
        let spec = self.spec_for(domain, new, Some(&cur.rtype));
        match self.up.update(id, &spec) {
            Ok(UpdateOutcome::Updated) => Ok("ok"),
            Ok(UpdateOutcome::Unchanged) => Ok("ok (unchanged)"),
            Err(e) if is_gone(&e) => Err(fail(404, format!("record {id} does not exist"))),
            Err(e) => Err(upstream(e)),
        }
    }

    fn delete_record(&self, req: &Request, domain: &str, obj: &Object) -> Answer {
        let r = record_field(obj, "record")?;
        if r.id.is_empty() {
            return Err(fail(400, "record.id is missing"));
        }
        let outcome = self.remove(domain, &r.id).map(|what| (format!("{what} id={}", r.id), "{}".to_string()));
        audited(req, Action::DeleteRecord, domain, &r, outcome)
    }

    /// Deletes record `id` of `domain`; a record already gone is success (the
    /// desired state holds).
    fn remove(&self, domain: &str, id: &str) -> std::result::Result<&'static str, Fail> {
        if self.owned_record(domain, id)?.is_none() {
            return Ok("ok (already gone)");
        }
        match self.up.delete(id) {
            Ok(()) => Ok("ok"),
            Err(e) if is_gone(&e) => Ok("ok (already gone)"),
            Err(e) => Err(upstream(e)),
        }
    }
}

/// Writes the audit line of a mutating action, whatever its outcome, and turns
/// `Ok((result, body))` into the 200 answer.
fn audited(
    req: &Request,
    action: Action,
    domain: &str,
    r: &GoRecord,
    outcome: std::result::Result<(String, String), Fail>,
) -> Answer {
    match outcome {
        Ok((result, body)) => {
            audit(req, action, domain, r, &result);
            Ok(Response::new(200, JSON, body))
        }
        Err(f) => {
            audit(req, action, domain, r, &format!("failed {} {}", f.status, f.reason));
            Err(f)
        }
    }
}

impl<U: Upstream + 'static> Service for App<U> {
    /// Refuses a wrong method, token or timestamp before the body is read.
    fn admit(&self, head: &Request) -> std::result::Result<(), Response> {
        self.admit_head(head).map_err(|f| refusal(head, "?", &f))
    }

    fn handle(&self, req: &Request) -> Response {
        App::handle(self, req)
    }
}

/// Logs a failed request (rate-limited per reason: anyone can cause these) and
/// builds its answer.
fn refusal(req: &Request, action: &str, f: &Fail) -> Response {
    // The reason up to its first variable part (a number, a name after ':').
    let kind: String =
        f.reason.chars().take_while(|c| !c.is_ascii_digit() && !matches!(c, ':' | '(')).take(40).collect();
    log::warn_limited(
        &format!("serve {} {}", f.status, kind.trim()),
        format_args!("serve: {} {action}: {} {}", req.peer, f.status, f.reason),
    );
    let mut r = Response::text(f.status, &f.reason);
    if f.status == 405 {
        r = r.with_header("Allow", "POST");
    }
    r
}

/// Compares without an early exit, so timing does not reveal how much matched
/// (`subtle`, already linked through rustls).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

/// Lower case, no trailing dot, and only characters a zone name can have.
pub fn normalize_domain(s: &str) -> Option<String> {
    let d = s.trim().trim_end_matches('.').to_lowercase();
    let ok = !d.is_empty()
        && d.len() <= 253
        && !d.starts_with('.')
        && !d.contains("..")
        && d.chars().all(|c| c.is_alphanumeric() || c == '-' || c == '.' || c == '_');
    ok.then_some(d)
}

/// AliDNS's ways of saying "no such record".
fn is_gone(e: &Error) -> bool {
    matches!(
        e.code(),
        Some("DomainRecordNotBelongToUser" | "InvalidRecordId.NotFound" | "InvalidRecordId" | "RecordNotExist")
    )
}

/// Maps an upstream failure to a status (GoEdge only sees "not 200") and a reason for the log.
fn upstream(e: Error) -> Fail {
    let status = match &e {
        Error::Network { timed_out: true, .. } => 504,
        Error::Api(a) if a.retryable() => 503,
        Error::Api(a) if a.code == "DomainRecordConflict" || a.code == "DomainRecordDuplicate" => 409,
        // Any other network failure, and everything else AliDNS refused.
        _ => 502,
    };
    fail(status, format!("AliDNS: {e}"))
}

/// One line per mutating action, for "who changed my DNS".
fn audit(req: &Request, action: Action, domain: &str, r: &GoRecord, result: &str) {
    log::notice(format!(
        "audit: peer={} action={} domain={domain} name={} type={} value={} route={} ttl={} result={}",
        req.peer,
        action.name(),
        q(&r.name),
        q(&r.rtype),
        q(&r.value),
        q(&r.route),
        r.ttl,
        q(result)
    ));
}

/// Quotes a log value when it is empty or could be mistaken for more fields.
fn q(s: &str) -> String {
    if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '=') {
        crate::log::quoted(s)
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ApiError;

    #[derive(Default)]
    struct Fake {
        fail_domains: bool,
        recs: Mutex<Vec<Record>>,
        calls: Mutex<Vec<String>>,
    }

    impl Fake {
        fn called(&self, what: &str) {
            self.calls.lock().unwrap().push(what.to_string());
        }
    }

    impl Upstream for Fake {
        fn domains(&self) -> Result<Vec<Domain>> {
            self.called("domains");
            if self.fail_domains {
                return Err(Error::Api(ApiError {
                    status: 503,
                    code: "ServiceUnavailable".into(),
                    ..Default::default()
                }));
            }
            Ok(["Example.com", "other.org", "example.net."]
                .iter()
                .map(|n| Domain { name: n.to_string(), ..Default::default() })
                .collect())
        }
        fn records(&self, domain: &str, _: &RecordFilter) -> Result<Vec<Record>> {
            self.called("records");
            Ok(self.recs.lock().unwrap().iter().filter(|r| r.domain == domain).cloned().collect())
        }
        fn record(&self, id: &str) -> Result<Record> {
            self.called("record");
            self.recs.lock().unwrap().iter().find(|r| r.id == id).cloned().ok_or_else(|| {
                Error::Api(ApiError { status: 400, code: "DomainRecordNotBelongToUser".into(), ..Default::default() })
            })
        }
        fn add(&self, _: &str, _: &RecordSpec) -> Result<String> {
            self.called("add");
            Ok("1".into())
        }
        fn update(&self, _: &str, _: &RecordSpec) -> Result<UpdateOutcome> {
            self.called("update");
            Ok(UpdateOutcome::Updated)
        }
        fn delete(&self, _: &str) -> Result<()> {
            self.called("delete");
            Ok(())
        }
        fn lines(&self, _: &str) -> Result<Vec<LineInfo>> {
            self.called("lines");
            Ok(vec![LineInfo { code: "telecom".into(), display_name: "电信".into(), ..Default::default() }])
        }
        fn info(&self, _: &str) -> Result<DomainInfo> {
            self.called("info");
            Ok(DomainInfo { min_ttl: Some(600), ..Default::default() })
        }
        fn now(&self) -> i64 {
            1_700_000_000
        }
    }

    const SECRET: &str = "0123456789abcdef0123";

    fn app(domains: &[&str], fake: Fake) -> App<Fake> {
        let settings = Settings {
            listen: "127.0.0.1:0".into(),
            secret: Secret::new(SECRET),
            domains: domains.iter().map(|s| s.to_string()).collect(),
            max_skew: 300,
        };
        App::new(settings, Arc::new(fake))
    }

    fn req_at(ts: i64, body: &str) -> Request {
        let ts = ts.to_string();
        Request {
            method: "POST".into(),
            target: "/".into(),
            headers: vec![("Timestamp".into(), ts.clone()), ("Token".into(), token_for(&Secret::new(SECRET), &ts))],
            body: body.as_bytes().to_vec(),
            peer: "127.0.0.1:1".parse().unwrap(),
        }
    }

    fn req(body: &str) -> Request {
        req_at(1_700_000_000, body)
    }

    fn text(r: &Response) -> String {
        String::from_utf8_lossy(&r.body).to_string()
    }

    #[test]
    fn token_matches_goedge() {
        // sha1("0123456789abcdef0123@1700000000"), computed with Python's hashlib.
        let t = token_for(&Secret::new(SECRET), "1700000000");
        assert_eq!(t, "0a5b71e16b720dc998fb441606678560a57a7937");
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }

    #[test]
    fn authentication() {
        let a = app(&[], Fake::default());
        assert_eq!(a.handle(&req(r#"{"action":"DefaultRoute"}"#)).status, 200);
        let mut r = req(r#"{"action":"DefaultRoute"}"#);
        r.headers[1].1 = "0".repeat(40);
        assert_eq!(a.handle(&r).status, 401);
        r.headers.pop();
        assert_eq!(a.handle(&r).status, 401);
        let mut r = req(r#"{}"#);
        r.headers[0].1 = "17e8".into();
        assert_eq!(a.handle(&r).status, 401);
        assert_eq!(a.handle(&req_at(1_700_000_000 - 301, "{}")).status, 403);
        assert_eq!(a.handle(&req_at(1_700_000_000 + 300, r#"{"action":"DefaultRoute"}"#)).status, 200);
        let mut r = req("{}");
        r.method = "GET".into();
        let resp = a.handle(&r);
        assert_eq!(resp.status, 405);
        assert!(resp.headers.iter().any(|(k, v)| *k == "Allow" && v == "POST"));
    }

    #[test]
    fn default_route_is_bare() {
        let a = app(&[], Fake::default());
        let r = a.handle(&req(r#"{"action":"DefaultRoute"}"#));
        assert_eq!((r.status, text(&r).as_str()), (200, "default"));
        assert!(r.content_type.starts_with("text/plain"));
        assert!(a.up.calls.lock().unwrap().is_empty());
    }

    #[test]
    fn get_domains_filters_and_fails_loudly() {
        let a = app(&[], Fake::default());
        for body in ["{}", r#"{"action":"GetDomains"}"#, r#"{"action":""}"#, r#"{"action":null}"#] {
            let r = a.handle(&req(body));
            assert_eq!((r.status, text(&r).as_str()), (200, r#"["example.com","other.org","example.net"]"#), "{body}");
        }
        let a = app(&["example.com"], Fake::default());
        assert_eq!(text(&a.handle(&req("{}"))), r#"["example.com"]"#);
        let a = app(&[], Fake { fail_domains: true, ..Default::default() });
        let r = a.handle(&req("{}"));
        assert_eq!(r.status, 503);
        assert_ne!(text(&r), "[]");
    }

    #[test]
    fn bad_bodies_are_400() {
        let a = app(&["example.com"], Fake::default());
        for body in [
            "",
            "nope",
            "[]",
            "\u{feff}{}",
            r#"{"action":5}"#,
            r#"{"action":"Frobnicate","domain":"example.com"}"#,
            r#"{"action":"GetRecords"}"#,
            r#"{"action":"GetRecords","domain":7}"#,
            r#"{"action":"GetRecords","domain":"a b"}"#,
            r#"{"action":"AddRecord","domain":"example.com"}"#,
            r#"{"action":"AddRecord","domain":"example.com","newRecord":[]}"#,
            r#"{"action":"AddRecord","domain":"example.com","newRecord":{"name":"x","type":"A","value":"1.2.3.4","ttl":"600"}}"#,
            r#"{"action":"AddRecord","domain":"example.com","newRecord":{"name":"x","type":"A","value":"1.2.3.4","ttl":600.5}}"#,
            r#"{"action":"AddRecord","domain":"example.com","newRecord":{"name":"x","type":"A","value":"1.2.3.4","ttl":-1}}"#,
            r#"{"action":"AddRecord","domain":"example.com","newRecord":{"name":"x","type":"A","value":"1.2.3.4","ttl":4294967296}}"#,
            r#"{"action":"AddRecord","domain":"example.com","newRecord":{"id":1,"name":"x","type":"A","value":"1.2.3.4","ttl":0}}"#,
            r#"{"action":"AddRecord","domain":"example.com","newRecord":{"name":"x","type":"","value":"1.2.3.4","ttl":0}}"#,
            r#"{"action":"AddRecord","domain":"example.com","newRecord":{"name":"x","type":"A","value":"","ttl":0}}"#,
            r#"{"action":"DeleteRecord","domain":"example.com","record":{"id":""}}"#,
            r#"{"action":"UpdateRecord","domain":"example.com","record":{"id":""},"newRecord":{"type":"A","value":"1.1.1.1"}}"#,
            r#"{"action":"QueryRecord","domain":"example.com","name":1}"#,
        ] {
            assert_eq!(a.handle(&req(body)).status, 400, "{body}");
        }
        // Nesting as deep as a body may be is refused before it is built (the parser
        // has no limit of its own); within json::MAX_DEPTH a body is read as usual.
        let deep = format!("{}{}", "[".repeat(16 * 1024), "]".repeat(16 * 1024));
        assert_eq!(text(&a.handle(&req(&deep))), "body is not valid JSON\n");
        let n = crate::json::MAX_DEPTH - 1;
        let deep = format!(r#"{{"action":"Nope","x":{}1{}}}"#, "{\"a\":".repeat(n), "}".repeat(n));
        assert_eq!(text(&a.handle(&req(&deep))), "unknown action\n");
        assert!(a.up.calls.lock().unwrap().is_empty());
    }

    #[test]
    fn allowlist_is_403_for_every_action() {
        let a = app(&["example.com"], Fake::default());
        for action in
            ["GetRecords", "GetRoutes", "QueryRecord", "QueryRecords", "AddRecord", "UpdateRecord", "DeleteRecord"]
        {
            let body = format!(
                r#"{{"action":"{action}","domain":"evil.com","name":"x","recordType":"A","record":{{"id":"1"}},"newRecord":{{"type":"A","value":"1.1.1.1"}}}}"#
            );
            assert_eq!(a.handle(&req(&body)).status, 403, "{action}");
        }
        assert!(a.up.calls.lock().unwrap().is_empty());
        // The domain is compared after normalising case and the trailing dot.
        assert_eq!(a.handle(&req(r#"{"action":"GetRoutes","domain":"Example.COM."}"#)).status, 200);
    }

    fn rec(id: &str, domain: &str, rr: &str, t: &str, v: &str, line: &str) -> Record {
        Record {
            id: id.into(),
            domain: domain.into(),
            rr: rr.into(),
            rtype: t.into(),
            value: v.into(),
            ttl: 600,
            line: line.into(),
            ..Default::default()
        }
    }

    #[test]
    fn records_are_shaped_for_goedge() {
        let fake = Fake::default();
        *fake.recs.lock().unwrap() = vec![
            rec("1900000000000000001", "example.com", "@", "A", "192.0.2.1", "default"),
            rec("2", "example.com", "www", "CNAME", "cdn.example.com", "default"),
            rec("3", "example.com", "@", "MX", "mx.example.com", "default"),
            rec("4", "example.com", "_sip._tcp", "SRV", "5 0 5060 sip.example.com", "telecom"),
            rec("5", "example.com", "t", "TXT", "a \"quoted\" <txt>", "default"),
            rec("6", "other.org", "x", "A", "192.0.2.9", "default"),
        ];
        let a = app(&[], fake);
        let r = a.handle(&req(r#"{"action":"GetRecords","domain":"example.com"}"#));
        assert_eq!(r.status, 200);
        let v: Vec<serde_json::Value> = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v.len(), 5);
        assert_eq!(
            text(&r).split("},{").next().unwrap(),
            r#"[{"id":"1900000000000000001","name":"@","type":"A","value":"192.0.2.1","route":"default","ttl":600"#
        );
        assert_eq!(v[1]["value"], "cdn.example.com.");
        assert_eq!(v[2]["value"], "mx.example.com.");
        assert_eq!(v[3]["value"], "5 0 5060 sip.example.com.");
        assert_eq!(v[3]["route"], "telecom");
        assert_eq!(v[4]["value"], "a \"quoted\" <txt>");
        let r = a.handle(&req(r#"{"action":"QueryRecord","domain":"example.com","name":"www","recordType":"CNAME"}"#));
        assert_eq!(serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["id"], "2");
        let r = a.handle(&req(r#"{"action":"QueryRecord","domain":"example.com","name":"nope","recordType":"CNAME"}"#));
        assert_eq!((r.status, text(&r).as_str()), (200, "null"));
        let r = a.handle(&req(r#"{"action":"QueryRecords","domain":"example.com","name":"nope","recordType":"TXT"}"#));
        assert_eq!((r.status, text(&r).as_str()), (200, "[]"));
        let r = a.handle(&req(r#"{"action":"QueryRecords","domain":"example.com","name":"","recordType":"A"}"#));
        assert_eq!(serde_json::from_slice::<Vec<serde_json::Value>>(&r.body).unwrap().len(), 1);
    }

    #[test]
    fn routes_are_cached_and_include_default() {
        let a = app(&[], Fake::default());
        for _ in 0..3 {
            let r = a.handle(&req(r#"{"action":"GetRoutes","domain":"example.com"}"#));
            assert_eq!(text(&r), r#"[{"code":"default","name":"默认"},{"code":"telecom","name":"电信"}]"#);
        }
        assert_eq!(a.up.calls.lock().unwrap().iter().filter(|c| *c == "lines").count(), 1);
    }

    #[test]
    fn writes_map_to_alidns_specs() {
        let a = app(&[], Fake::default());
        let g = GoRecord {
            name: "".into(),
            rtype: "cname".into(),
            value: "cdn.example.com.".into(),
            route: "".into(),
            ttl: 0,
            ..Default::default()
        };
        let s = a.spec_for("example.com", &g, None);
        assert_eq!((s.rr.as_str(), s.rtype.as_str(), s.value.as_str()), ("@", "CNAME", "cdn.example.com"));
        assert_eq!((s.ttl, s.line.as_deref(), s.priority), (None, Some("default"), None));
        let g = GoRecord { rtype: "TXT".into(), value: "v.".into(), ttl: 60, route: "telecom".into(), ..g };
        let s = a.spec_for("example.com", &g, None);
        assert_eq!((s.value.as_str(), s.ttl, s.line.as_deref()), ("v.", Some(600), Some("telecom")));
        let g = GoRecord { rtype: "MX".into(), value: "mx.example.com.".into(), ttl: 100_000, ..g };
        let s = a.spec_for("example.com", &g, None);
        assert_eq!((s.value.as_str(), s.ttl, s.priority), ("mx.example.com", Some(86_400), Some(10)));
        assert_eq!(a.spec_for("example.com", &g, Some("MX")).priority, None);
    }

    #[test]
    fn delete_is_idempotent_and_scoped() {
        let fake = Fake::default();
        *fake.recs.lock().unwrap() = vec![rec("6", "other.org", "x", "A", "192.0.2.9", "default")];
        let a = app(&[], fake);
        let gone = r#"{"action":"DeleteRecord","domain":"example.com","record":{"id":"99","name":"x","type":"A","value":"1.1.1.1","route":"default","ttl":600}}"#;
        assert_eq!(a.handle(&req(gone)).status, 200);
        let foreign = r#"{"action":"DeleteRecord","domain":"example.com","record":{"id":"6","name":"x","type":"A","value":"1.1.1.1","route":"default","ttl":600}}"#;
        assert_eq!(a.handle(&req(foreign)).status, 403);
        assert!(!a.up.calls.lock().unwrap().iter().any(|c| c == "delete"));
        let upd = r#"{"action":"UpdateRecord","domain":"example.com","record":{"id":"99"},"newRecord":{"name":"x","type":"A","value":"1.1.1.1","route":"","ttl":0}}"#;
        assert_eq!(a.handle(&req(upd)).status, 404);
    }

    #[test]
    fn settings_are_checked() {
        let mut cfg = Config::default();
        assert!(matches!(Settings::from_config(&cfg, None), Err(Error::Config(_))));
        cfg.httpdns = Some(crate::config::HttpDnsConf { enabled: true, ..Default::default() });
        let e = Settings::from_config(&cfg, None).unwrap_err();
        assert!(e.to_string().contains("secret is required") && e.exit_code() == 2, "{e}");
        cfg.httpdns.as_mut().unwrap().secret = Some(Secret::new("short"));
        let e = Settings::from_config(&cfg, None).unwrap_err();
        assert!(e.to_string().contains("too short") && e.exit_code() == 2, "{e}");
        assert!(!e.to_string().contains("short\""));
        cfg.httpdns.as_mut().unwrap().secret = Some(Secret::new(SECRET));
        let s = Settings::from_config(&cfg, None).unwrap();
        assert_eq!((s.listen.as_str(), s.max_skew), ("0.0.0.0:8053", 300));
        assert_eq!(Settings::from_config(&cfg, Some("127.0.0.1:9".into())).unwrap().listen, "127.0.0.1:9");
        cfg.httpdns.as_mut().unwrap().domains = vec!["example.com".into(), "\"x.org\"".into()];
        let e = Settings::from_config(&cfg, None).unwrap_err();
        assert!(e.to_string().contains("domains: '\"x.org\"'") && e.exit_code() == 2, "{e}");
        cfg.httpdns.as_mut().unwrap().domains.clear();
        assert_eq!(listen_addr("8053").unwrap(), "0.0.0.0:8053".parse().unwrap());
        assert_eq!(listen_addr("[::1]:80").unwrap(), "[::1]:80".parse().unwrap());
        assert!(listen_addr("localhost").is_err());
    }

    #[test]
    fn upstream_statuses_come_from_the_error_kind() {
        let net = |timed_out, message: &str| Error::Network { message: message.into(), transient: true, timed_out };
        assert_eq!(upstream(net(true, "connection lost")).status, 504);
        assert_eq!(upstream(net(false, "timed out in a word of the message")).status, 502);
        let api = |code: &str, status| Error::Api(ApiError { status, code: code.into(), ..Default::default() });
        assert_eq!(upstream(api("ServiceUnavailable", 503)).status, 503);
        assert_eq!(upstream(api("DomainRecordDuplicate", 400)).status, 409);
        assert_eq!(upstream(api("InvalidRR.Format", 400)).status, 502);
    }

    #[test]
    fn domains_normalise() {
        assert_eq!(normalize_domain(" Example.COM. ").as_deref(), Some("example.com"));
        assert_eq!(normalize_domain("中文.com").as_deref(), Some("中文.com"));
        for bad in ["", ".", "a..b", "a b", "a/b", ".a"] {
            assert_eq!(normalize_domain(bad), None, "{bad}");
        }
    }
}
