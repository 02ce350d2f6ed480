//! A blocking AliDNS (Alibaba Cloud DNS, API version 2015-01-09) client: signs each
//! attempt afresh, retries what is transient, corrects a wrong local clock from the
//! server's `Date`, and decodes answers leniently where the wire is inconsistent
//! (what the wire does, and which errors are worth a retry: docs/protocol-notes.md).

use crate::clock::Clock;
use crate::config::{Global, Secret};
use crate::error::{ApiError, Error, Result};
use crate::http::{self, HttpOptions};
use crate::json::{self, Number, Value, ValueExt};
use crate::log;
use crate::sign;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// API version every call is made against.
pub const API_VERSION: &str = "2015-01-09";
const ENV_ID: &str = "ALIBABA_CLOUD_ACCESS_KEY_ID";
const ENV_SECRET: &str = "ALIBABA_CLOUD_ACCESS_KEY_SECRET";
const ENV_TOKEN: &str = "ALIBABA_CLOUD_SECURITY_TOKEN";

/// An AccessKey pair, optionally with an STS token.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// AccessKey ID (not secret, but shown only abbreviated).
    pub access_key_id: String,
    /// AccessKey secret.
    pub access_key_secret: Secret,
    /// STS security token for temporary credentials.
    pub security_token: Option<Secret>,
}

impl Credentials {
    /// From the config's `access_id`/`access_key`, else from the standard
    /// `ALIBABA_CLOUD_*` variables; never from the command line.
    pub fn resolve(g: &Global) -> Result<Credentials> {
        Self::find(g).ok_or_else(Self::missing)
    }

    fn missing() -> Error {
        Error::Config(format!(
            "no AliDNS credentials: set access_id and access_key in the config file's [DEFAULT] section, \
             or the environment variables {ENV_ID} and {ENV_SECRET}"
        ))
    }

    /// The same lookup, None when neither place has them (a dry run can go on without).
    pub fn find(g: &Global) -> Option<Credentials> {
        Self::find_with(g, |k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    fn find_with(g: &Global, env: impl Fn(&str) -> Option<String>) -> Option<Credentials> {
        if let (Some(id), Some(secret)) = (&g.access_id, &g.access_key) {
            return Some(Credentials {
                access_key_id: id.clone(),
                access_key_secret: secret.clone(),
                security_token: g.security_token.clone().or_else(|| env(ENV_TOKEN).map(Secret::new)),
            });
        }
        Some(Credentials {
            access_key_id: env(ENV_ID)?,
            access_key_secret: Secret::new(env(ENV_SECRET)?),
            security_token: env(ENV_TOKEN).map(Secret::new),
        })
    }

    /// The ID shortened for logs: `LTAI****abcd`.
    pub fn masked_id(&self) -> String {
        mask(&self.access_key_id)
    }
}

fn mask(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= 8 {
        return "****".into();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}****{tail}")
}

/// Replaces the AccessKey ID in a string to sign (where it appears percent-encoded
/// twice, or once, or as is) with its masked form `LTAI****abcd`.
fn redact_id(s: &str, id: &str) -> String {
    if id.is_empty() {
        return s.to_string();
    }
    let once = sign::percent_encode(id);
    let twice = sign::percent_encode(&once);
    s.replace(&twice, &mask(id)).replace(&once, &mask(id)).replace(id, &mask(id))
}

/// How the client talks to AliDNS.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Endpoint URL (`https://alidns.aliyuncs.com/`, or `http://127.0.0.1:PORT/` in tests).
    pub endpoint: String,
    /// Timeouts and trust.
    pub http: HttpOptions,
    /// Retries after the first attempt for transient failures.
    pub retries: u32,
    /// First backoff delay; doubles each retry, with jitter.
    pub retry_delay: Duration,
    /// When set, no retry starts after this much time has passed since the first
    /// attempt (serve must answer GoEdge within its 10 s timeout).
    pub budget: Option<Duration>,
}

impl ClientOptions {
    /// From the config, with `--endpoint` taking precedence over the `endpoint` key.
    pub fn from_global(g: &Global, endpoint_override: Option<&str>) -> ClientOptions {
        ClientOptions {
            endpoint: endpoint_override
                .map(str::to_string)
                .or_else(|| g.endpoint.clone())
                .unwrap_or_else(|| crate::config::DEFAULT_ENDPOINT.to_string()),
            http: HttpOptions::from_global(g),
            retries: g.retries,
            retry_delay: Duration::from_millis(g.retry_delay_ms),
            budget: None,
        }
    }
}

/// A DNS record as AliDNS reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// `RecordId`.
    pub id: String,
    /// The zone.
    pub domain: String,
    /// Host record (`@` for the apex).
    pub rr: String,
    /// `A`, `AAAA`, `CNAME`, ...
    pub rtype: String,
    /// Record value as AliDNS stores it.
    pub value: String,
    /// TTL in seconds.
    pub ttl: u32,
    /// Line code (`default`, `telecom`, ...).
    pub line: String,
    /// `Enable` / `Disable` (casing varies on the wire).
    pub status: String,
    /// MX priority.
    pub priority: Option<u32>,
    /// Locked records cannot be changed.
    pub locked: bool,
}

/// A hosted zone.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Domain {
    /// Zone name.
    pub name: String,
    /// `DomainId`.
    pub id: String,
    /// Number of records, when reported.
    pub record_count: Option<u64>,
}

/// A resolution line (线路) a domain may use.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LineInfo {
    /// `LineCode`, what `Line` parameters take.
    pub code: String,
    /// `LineName`.
    pub name: String,
    /// `LineDisplayName`.
    pub display_name: String,
    /// Parent line, when reported.
    pub father_code: Option<String>,
}

/// What `DescribeDomainInfo` says about TTL limits.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DomainInfo {
    /// Zone name.
    pub name: String,
    /// Smallest TTL the edition allows.
    pub min_ttl: Option<u32>,
    /// The TTLs the console offers.
    pub available_ttls: Vec<u32>,
    /// Edition code (`mianfei`, ...).
    pub version_code: String,
}

/// Fields of a record to add or update.
#[derive(Debug, Clone, Default)]
pub struct RecordSpec {
    /// Host record (`@` for the apex).
    pub rr: String,
    /// Record type.
    pub rtype: String,
    /// Value.
    pub value: String,
    /// TTL; None = AliDNS default.
    pub ttl: Option<u32>,
    /// Line code; None = `default`.
    pub line: Option<String>,
    /// MX priority.
    pub priority: Option<u32>,
}

/// Result of an update: AliDNS refuses no-op updates, which we report as unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// The record now has the new values.
    Updated,
    /// It already had them.
    Unchanged,
}

/// Filters for listing a zone's records.
#[derive(Debug, Clone, Default)]
pub struct RecordFilter {
    /// Exact host record.
    pub rr: Option<String>,
    /// Exact type.
    pub rtype: Option<String>,
    /// Exact line code.
    pub line: Option<String>,
}

/// The client. Cheap to share between threads (`serve` uses one for all workers).
pub struct Client {
    /// Built on the first call: a pass that needs no API call (nothing changed)
    /// never loads the CA bundle nor builds the TLS configuration.
    agent: OnceLock<ureq::Agent>,
    tls: bool,
    url: String,
    creds: Credentials,
    opts: ClientOptions,
    clock: Arc<Clock>,
    calls: AtomicU32,
}

impl Client {
    /// Builds a client; the CA bundle is loaded on the first call, and only for an
    /// https:// endpoint (a missing `ca_file` is reported here already).
    pub fn new(creds: Credentials, opts: ClientOptions) -> Result<Client> {
        let tls = opts.endpoint.starts_with("https://");
        if !tls && !opts.endpoint.starts_with("http://") {
            return Err(Error::Config(format!("endpoint '{}' must start with https:// or http://", opts.endpoint)));
        }
        http::check(&opts.http, tls)?;
        let mut url = opts.endpoint.clone();
        if !url[url.find("//").map_or(0, |i| i + 2)..].contains('/') {
            url.push('/');
        }
        let calls = AtomicU32::new(0);
        Ok(Client { agent: OnceLock::new(), tls, url, creds, opts, clock: Arc::new(Clock::new()), calls })
    }

    /// The clock whose offset this client corrects.
    pub fn clock(&self) -> &Arc<Clock> {
        &self.clock
    }

    /// HTTP requests sent so far, retries included.
    pub fn calls(&self) -> u32 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Calls `action` with `params`, retrying transient failures with a fresh nonce
    /// and timestamp each time, and correcting the clock once on
    /// `InvalidTimeStamp.Expired`.
    pub fn call(&self, action: &str, params: &[(&str, &str)]) -> Result<Value> {
        let mut attempt = 0u32;
        let mut clock_fixed = false;
        let started = Instant::now();
        loop {
            match self.call_once(action, params) {
                Ok(v) => return Ok(v),
                Err(Error::Api(ApiError { code, date: Some(server_now), .. }))
                    if code == "InvalidTimeStamp.Expired" && !clock_fixed =>
                {
                    clock_fixed = true;
                    let before = self.clock.offset();
                    let off = self.clock.set_server_time(server_now);
                    log::warn(format!(
                        "local clock is off by {off}s (AliDNS answered InvalidTimeStamp.Expired); \
                         using the server's time for the rest of this run (was offset {before}s)"
                    ));
                }
                Err(e) if e.retryable() && attempt < self.opts.retries => {
                    let wait = self.backoff(attempt, &e);
                    if self.opts.budget.is_some_and(|b| started.elapsed() + wait >= b) {
                        log::warn(format!("{action}: {e}; no time left for a retry"));
                        return Err(e);
                    }
                    log::warn(format!(
                        "{action}: {e}; retry {}/{} in {} ms",
                        attempt + 1,
                        self.opts.retries,
                        wait.as_millis()
                    ));
                    std::thread::sleep(wait);
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn backoff(&self, attempt: u32, e: &Error) -> Duration {
        let base = u64::try_from(self.opts.retry_delay.as_millis()).unwrap_or(u64::MAX);
        let exp = base.saturating_mul(1u64 << attempt.min(10)).min(30_000);
        let mut r = [0u8; 2];
        let _ = getrandom::getrandom(&mut r);
        // Jitter: 50%..150% of the exponential step, so clients hitting the same
        // throttle do not retry in lockstep.
        let jitter = u64::from(u16::from_le_bytes(r)) % 1001;
        let mut ms = exp / 2 + exp * jitter / 1000;
        if let Error::Api(ApiError { retry_after: Some(s), .. }) = e {
            ms = ms.max(u64::from(*s).saturating_mul(1000)).min(60_000);
        }
        Duration::from_millis(ms)
    }

    fn signed_query(&self, action: &str, params: &[(&str, &str)]) -> (String, Vec<(String, String)>) {
        let mut all: Vec<(String, String)> = vec![
            ("Action".into(), action.into()),
            ("Version".into(), API_VERSION.into()),
            ("Format".into(), "JSON".into()),
            ("AccessKeyId".into(), self.creds.access_key_id.clone()),
            ("SignatureMethod".into(), "HMAC-SHA1".into()),
            ("SignatureVersion".into(), "1.0".into()),
            ("SignatureNonce".into(), sign::nonce()),
            ("Timestamp".into(), self.clock.timestamp()),
        ];
        if let Some(t) = &self.creds.security_token {
            all.push(("SecurityToken".into(), t.expose().into()));
        }
        all.extend(params.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let signature = sign::signature("POST", &all, self.creds.access_key_secret.expose());
        let mut q = sign::canonical_query(&all);
        q.push_str("&Signature=");
        q.push_str(&sign::percent_encode(&signature));
        (q, all)
    }

    /// One signed attempt. An AliDNS error carries the server's `Date`, from which
    /// [`Client::call`] corrects the clock.
    fn call_once(&self, action: &str, params: &[(&str, &str)]) -> Result<Value> {
        let (query, signed) = self.signed_query(action, params);
        if log::verbose() {
            let shown: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
            log::debug(format!("-> {action} {} (key {})", shown.join(" "), self.creds.masked_id()));
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let url = format!("{}?{}", self.url, query);
        let agent = match self.agent.get() {
            Some(a) => a,
            None => {
                let a = http::agent(&self.opts.http, self.tls)?;
                self.agent.get_or_init(|| a)
            }
        };
        let resp = http::post(agent, &url)?;
        let parsed: Option<Value> = json::parse(&resp.body);
        log::debug(format!(
            "<- {action} HTTP {} in {} ms{}",
            resp.status,
            started.elapsed().as_millis(),
            parsed
                .as_ref()
                .and_then(|v| v.get("RequestId"))
                .and_then(ValueExt::as_str)
                .map(|r| format!(" RequestId {r}"))
                .unwrap_or_default()
        ));
        let retry_after = resp.retry_after.map(|s| u32::try_from(s).unwrap_or(u32::MAX));
        let mut err = match (&parsed, resp.status) {
            (Some(v), 200..=299) if !is_error_body(v) => return Ok(parsed.unwrap_or(Value::Null)),
            (Some(v), _) => api_error(resp.status, v, retry_after),
            (None, 200..=299) => {
                return Err(Error::Network {
                    message: format!("{action}: AliDNS answered HTTP {} with a body that is not JSON", resp.status),
                    transient: true,
                    timed_out: false,
                });
            }
            (None, status) => ApiError {
                status,
                code: format!("HTTP{status}"),
                message: snippet(&resp.body),
                retry_after,
                ..Default::default()
            },
        };
        err.date = resp.date;
        if err.code == "SignatureDoesNotMatch" {
            let ours = sign::string_to_sign("POST", &signed);
            let token = self.creds.security_token.as_ref().map(|t| t.expose().to_string());
            let redact = |s: &str| {
                let s = redact_id(s, &self.creds.access_key_id);
                match &token {
                    Some(t) if !t.is_empty() => {
                        s.replace(&sign::percent_encode(&sign::percent_encode(t)), "***").replace(t, "***")
                    }
                    _ => s,
                }
            };
            log::debug(format!("our    string to sign: {}", redact(&ours)));
            if let Some(theirs) = &err.server_string_to_sign {
                log::debug(format!("server string to sign: {}", redact(theirs)));
                if **theirs == *ours {
                    log::debug("the strings match, so the AccessKey secret is wrong");
                }
            }
        }
        Err(Error::Api(err))
    }

    fn pages<T>(
        &self,
        action: &str,
        params: &[(&str, &str)],
        page_size: u32,
        outer: &str,
        inner: &str,
        decode: impl Fn(&Value) -> T,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        let size = page_size.to_string();
        for page in 1u32..=10_000 {
            let page_s = page.to_string();
            let mut p: Vec<(&str, &str)> = params.to_vec();
            p.push(("PageNumber", &page_s));
            p.push(("PageSize", &size));
            let v = self.call(action, &p)?;
            let items = list(&v, outer, inner);
            let n = items.len();
            out.extend(items.into_iter().map(&decode));
            let total = usize::try_from(num(&v, "TotalCount").unwrap_or(0).max(0)).unwrap_or(usize::MAX);
            if n == 0 || out.len() >= total {
                break;
            }
        }
        Ok(out)
    }

    /// Every domain of the account (all pages).
    pub fn describe_domains(&self) -> Result<Vec<Domain>> {
        self.pages("DescribeDomains", &[], 100, "Domains", "Domain", |d| Domain {
            name: string(d, "DomainName"),
            id: string(d, "DomainId"),
            record_count: num(d, "RecordCount").map(|n| n.max(0).unsigned_abs()),
        })
    }

    /// Every record of a zone matching the filter (all pages, 500 a page).
    pub fn describe_domain_records(&self, domain: &str, f: &RecordFilter) -> Result<Vec<Record>> {
        let mut p: Vec<(&str, &str)> = vec![("DomainName", domain)];
        if let Some(rr) = &f.rr {
            p.push(("RRKeyWord", rr));
        }
        if let Some(t) = &f.rtype {
            p.push(("TypeKeyWord", t));
        }
        if let Some(l) = &f.line {
            p.push(("Line", l));
        }
        if f.rr.is_some() || f.rtype.is_some() || f.line.is_some() {
            p.push(("SearchMode", "COMBINATION"));
        }
        let all = self.pages("DescribeDomainRecords", &p, 500, "DomainRecords", "Record", record)?;
        // The server's keyword matching is fuzzy in some modes: keep exact matches only.
        Ok(all.into_iter().filter(|r| matches_filter(r, f)).collect())
    }

    /// The records of one name, e.g. `www.example.com` (optionally of one type and line).
    pub fn describe_sub_domain_records(
        &self,
        sub_domain: &str,
        domain: Option<&str>,
        rtype: Option<&str>,
        line: Option<&str>,
    ) -> Result<Vec<Record>> {
        let mut p: Vec<(&str, &str)> = vec![("SubDomain", sub_domain)];
        if let Some(d) = domain {
            p.push(("DomainName", d));
        }
        if let Some(t) = rtype {
            p.push(("Type", t));
        }
        if let Some(l) = line {
            p.push(("Line", l));
        }
        let all = self.pages("DescribeSubDomainRecords", &p, 100, "DomainRecords", "Record", record)?;
        let f = RecordFilter { rr: None, rtype: rtype.map(str::to_string), line: line.map(str::to_string) };
        Ok(all.into_iter().filter(|r| matches_filter(r, &f)).collect())
    }

    /// One record by id.
    pub fn describe_domain_record_info(&self, id: &str) -> Result<Record> {
        let v = self.call("DescribeDomainRecordInfo", &[("RecordId", id)])?;
        Ok(record(&v))
    }

    /// Adds a record; returns its id.
    pub fn add_domain_record(&self, domain: &str, spec: &RecordSpec) -> Result<String> {
        let v = self.call_with_spec("AddDomainRecord", ("DomainName", domain), spec)?;
        Ok(string(&v, "RecordId"))
    }

    /// Add and Update take the same record fields after their own key parameter.
    fn call_with_spec(&self, action: &str, key: (&str, &str), spec: &RecordSpec) -> Result<Value> {
        let ttl = spec.ttl.map(|t| t.to_string());
        let prio = spec.priority.map(|t| t.to_string());
        let mut p: Vec<(&str, &str)> = vec![key, ("RR", &spec.rr), ("Type", &spec.rtype), ("Value", &spec.value)];
        push_opt(&mut p, "TTL", ttl.as_deref());
        push_opt(&mut p, "Line", spec.line.as_deref());
        push_opt(&mut p, "Priority", prio.as_deref());
        self.call(action, &p)
    }

    /// Updates a record. AliDNS rejects an update to identical values with
    /// `DomainRecordDuplicate`; when the record indeed already has them, that is
    /// [`UpdateOutcome::Unchanged`], not an error.
    pub fn update_domain_record(&self, id: &str, spec: &RecordSpec) -> Result<UpdateOutcome> {
        match self.call_with_spec("UpdateDomainRecord", ("RecordId", id), spec) {
            Ok(_) => Ok(UpdateOutcome::Updated),
            Err(e) if e.code() == Some("DomainRecordDuplicate") => {
                let cur = self.describe_domain_record_info(id)?;
                if spec_matches(&cur, spec) { Ok(UpdateOutcome::Unchanged) } else { Err(e) }
            }
            Err(e) => Err(e),
        }
    }

    /// Deletes a record by id.
    pub fn delete_domain_record(&self, id: &str) -> Result<()> {
        self.call("DeleteDomainRecord", &[("RecordId", id)]).map(|_| ())
    }

    /// The lines a domain may use (or all lines, without a domain).
    pub fn describe_support_lines(&self, domain: Option<&str>) -> Result<Vec<LineInfo>> {
        let mut p: Vec<(&str, &str)> = vec![];
        push_opt(&mut p, "DomainName", domain);
        let v = self.call("DescribeSupportLines", &p)?;
        Ok(list(&v, "RecordLines", "RecordLine")
            .into_iter()
            .map(|l| LineInfo {
                code: string(l, "LineCode"),
                name: string(l, "LineName"),
                display_name: string(l, "LineDisplayName"),
                father_code: Some(string(l, "FatherCode")).filter(|s| !s.is_empty()),
            })
            .collect())
    }

    /// TTL limits and edition of a domain.
    pub fn describe_domain_info(&self, domain: &str) -> Result<DomainInfo> {
        let v = self.call("DescribeDomainInfo", &[("DomainName", domain), ("NeedDetailAttributes", "true")])?;
        let mut available: Vec<u32> = list(&v, "AvailableTtls", "AvailableTtl")
            .into_iter()
            .filter_map(|t| match t {
                Value::Number(_) => t.as_u64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            })
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
            .collect();
        available.sort_unstable();
        Ok(DomainInfo {
            name: string(&v, "DomainName"),
            min_ttl: num(&v, "MinTtl").map(clamp_u32),
            available_ttls: available,
            version_code: string(&v, "VersionCode"),
        })
    }
}

fn push_opt<'a>(p: &mut Vec<(&'a str, &'a str)>, k: &'a str, v: Option<&'a str>) {
    if let Some(v) = v {
        p.push((k, v));
    }
}

/// Whether a record already has the values of `spec` (type, line and status
/// casing vary on the wire, so those compare case-insensitively).
pub fn spec_matches(r: &Record, spec: &RecordSpec) -> bool {
    r.rr.eq_ignore_ascii_case(&spec.rr)
        && r.rtype.eq_ignore_ascii_case(&spec.rtype)
        && values_equal(&r.rtype, &r.value, &spec.value)
        && spec.ttl.is_none_or(|t| t == r.ttl)
        && spec.line.as_deref().is_none_or(|l| l == r.line)
        && spec.priority.is_none_or(|p| Some(p) == r.priority)
}

/// Compares record values the way DNS does: addresses by value (so `2001:DB8::1`
/// equals `2001:db8::1`), host names without case and trailing dot.
pub fn values_equal(rtype: &str, a: &str, b: &str) -> bool {
    match rtype.to_ascii_uppercase().as_str() {
        "A" | "AAAA" => match (a.trim().parse::<std::net::IpAddr>(), b.trim().parse::<std::net::IpAddr>()) {
            (Ok(x), Ok(y)) => x == y,
            _ => a.trim() == b.trim(),
        },
        "CNAME" | "NS" | "MX" => a.trim_end_matches('.').eq_ignore_ascii_case(b.trim_end_matches('.')),
        _ => a == b,
    }
}

fn matches_filter(r: &Record, f: &RecordFilter) -> bool {
    f.rr.as_deref().is_none_or(|x| r.rr.eq_ignore_ascii_case(x))
        && f.rtype.as_deref().is_none_or(|x| r.rtype.eq_ignore_ascii_case(x))
        && f.line.as_deref().is_none_or(|x| r.line == x)
}

fn is_error_body(v: &Value) -> bool {
    // A 2xx body carrying Code+Message and no RequestId-bearing success shape is an error.
    v.get("Code").is_some() && v.get("Message").is_some() && v.get("RecordId").is_none()
}

fn snippet(body: &str) -> String {
    let t: String = body.trim().chars().take(200).collect();
    if t.is_empty() { "(empty body)".into() } else { t }
}

fn api_error(status: u16, v: &Value, retry_after: Option<u32>) -> ApiError {
    // Where a `SignatureDoesNotMatch` message appends the server's string to sign.
    const MARK: &str = "server string to sign is:";
    let pick = |a: &str, b: &str| {
        let s = string(v, a);
        if s.is_empty() { string(v, b) } else { s }
    };
    let mut code = pick("Code", "code");
    let mut message = pick("Message", "message");
    if code.is_empty() {
        code = format!("HTTP{status}");
    }
    if message.is_empty() {
        message = "(no message)".into();
    }
    let mut server_sts = None;
    if let Some(i) = message.find(MARK) {
        server_sts = Some(message[i + MARK.len()..].trim().into());
        message = message[..i].trim().to_string();
    }
    ApiError {
        status,
        code,
        message,
        request_id: pick("RequestId", "requestId"),
        server_string_to_sign: server_sts,
        retry_after,
        date: None,
    }
}

/// A field as a string, whether the wire sent a string, a number or a bool.
fn string(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

/// A field as a number, whether sent as a number or a numeric string.
fn num(v: &Value, key: &str) -> Option<i64> {
    match v.get(key)? {
        Value::Number(Number::I64(n)) => Some(*n),
        Value::Number(Number::U64(n)) => Some(i64::try_from(*n).unwrap_or(i64::MAX)),
        Value::Number(Number::F64(f)) => Some(*f as i64),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `n` limited to the range of u32 (a TTL or priority the wire got wrong).
fn clamp_u32(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

/// A field as a bool, whether sent as a bool or as "true"/"false".
fn boolean(v: &Value, key: &str) -> bool {
    match v.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// The XML-heritage list nesting `{"Outer":{"Inner":[...]}}`, tolerating a missing
/// list and a single object where an array was expected.
fn list<'a>(v: &'a Value, outer: &str, inner: &str) -> Vec<&'a Value> {
    match v.get(outer).and_then(|o| o.get(inner)) {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(o @ Value::Object(_)) => vec![o],
        _ => vec![],
    }
}

fn record(r: &Value) -> Record {
    Record {
        id: string(r, "RecordId"),
        domain: string(r, "DomainName"),
        rr: string(r, "RR"),
        rtype: string(r, "Type"),
        value: string(r, "Value"),
        ttl: num(r, "TTL").map_or(600, clamp_u32),
        line: Some(string(r, "Line")).filter(|s| !s.is_empty()).unwrap_or_else(|| "default".into()),
        status: string(r, "Status"),
        priority: num(r, "Priority").filter(|n| *n > 0).map(clamp_u32),
        locked: boolean(r, "Locked"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A JSON value from its text, as the wire would bring it.
    fn j(text: &str) -> Value {
        json::parse(text).unwrap()
    }

    #[test]
    fn decodes_doc_example_records() {
        let v: Value = json::parse(r#"{"PageNumber":1,"TotalCount":2,"PageSize":2,"RequestId":"536E9CAD",
 "DomainRecords":{"Record":[
  {"RR":"www","Status":"Enable","Value":"mail1.hichina.com","RecordId":"9999985","Type":"MX","DomainName":"example.com","Locked":false,"Line":"default","TTL":600,"Priority":5},
  {"RR":"www","Status":"Enable","Value":"mail2.hichina.com","RecordId":"9999986","Type":"MX","DomainName":"example.com","Locked":false,"Line":"default","TTL":600,"Priority":10}]}}"#).unwrap();
        let recs: Vec<Record> = list(&v, "DomainRecords", "Record").into_iter().map(record).collect();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].id, "9999985");
        assert_eq!(recs[0].priority, Some(5));
        assert_eq!(recs[1].ttl, 600);
    }

    #[test]
    fn lenient_number_or_string_and_missing_keys() {
        let r = record(&j(r#"{"RecordId": 42, "TTL": "120", "Locked": "true"}"#));
        assert_eq!(r.id, "42");
        assert_eq!(r.ttl, 120);
        assert!(r.locked);
        assert_eq!(r.line, "default");
        assert_eq!(r.priority, None);
        let empty = j(r#"{}"#);
        assert!(list(&empty, "DomainRecords", "Record").is_empty());
        let single = j(r#"{"DomainRecords": {"Record": {"RecordId": "1"}}}"#);
        assert_eq!(list(&single, "DomainRecords", "Record").len(), 1);
        assert_eq!(num(&j(r#"{"TotalCount": "7"}"#), "TotalCount"), Some(7));
    }

    #[test]
    fn error_bodies() {
        let e = api_error(
            400,
            &j(
                r#"{"RequestId":"R","Code":"SignatureDoesNotMatch","Message":"Specified signature is not matched with our calculation. server string to sign is:POST&%2F&A%3Db"}"#,
            ),
            None,
        );
        assert_eq!(e.code, "SignatureDoesNotMatch");
        assert_eq!(e.message, "Specified signature is not matched with our calculation.");
        assert_eq!(e.server_string_to_sign.as_deref(), Some("POST&%2F&A%3Db"));
        assert_eq!(e.request_id, "R");
        let e = api_error(503, &j(r#"{"code": "ServiceUnavailable", "message": "busy"}"#), Some(2));
        assert_eq!((e.code.as_str(), e.message.as_str(), e.retry_after), ("ServiceUnavailable", "busy", Some(2)));
        assert!(e.retryable());
        let e = api_error(502, &j(r#"[]"#), None);
        assert_eq!(e.code, "HTTP502");
        assert!(is_error_body(&j(r#"{"Code":"X","Message":"y"}"#)));
        assert!(!is_error_body(&j(r#"{"RecordId":"1","RequestId":"r"}"#)));
    }

    #[test]
    fn credentials_from_config_then_env() {
        let env = |k: &str| match k {
            ENV_ID => Some("envid".to_string()),
            ENV_SECRET => Some("envsecret".to_string()),
            _ => None,
        };
        let mut g = Global::default();
        let c = Credentials::find_with(&g, env).unwrap();
        assert_eq!(c.access_key_id, "envid");
        g.access_id = Some("cfgid".into());
        g.access_key = Some(Secret::new("cfgsecret"));
        let c = Credentials::find_with(&g, env).unwrap();
        assert_eq!(c.access_key_id, "cfgid");
        assert!(!format!("{c:?}").contains("cfgsecret"));
        assert!(Credentials::find_with(&Global::default(), |_| None).is_none());
        let e = Credentials::missing();
        let msg = e.to_string();
        assert!(msg.contains("access_id") && msg.contains(ENV_ID) && msg.contains(ENV_SECRET), "{msg}");
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn masks_ids() {
        assert_eq!(mask("LTAI5tExampleKeyId1234"), "LTAI****1234");
        assert_eq!(mask("short"), "****");
        let sts = "POST&%2F&AccessKeyId%3DLTAI5tExampleKeyId1234%26Action%3DDescribeDomains";
        assert_eq!(
            redact_id(sts, "LTAI5tExampleKeyId1234"),
            "POST&%2F&AccessKeyId%3DLTAI****1234%26Action%3DDescribeDomains"
        );
    }

    #[test]
    fn value_comparison() {
        assert!(values_equal("AAAA", "2001:DB8::1", "2001:db8:0::1"));
        assert!(!values_equal("A", "1.2.3.4", "1.2.3.5"));
        assert!(values_equal("CNAME", "a.example.com.", "A.example.com"));
        assert!(!values_equal("TXT", "a", "A"));
    }

    #[test]
    fn retries_stop_at_the_budget() {
        let opts = |budget| ClientOptions {
            endpoint: "http://127.0.0.1:9/".into(),
            http: HttpOptions::default(),
            retries: 3,
            retry_delay: Duration::from_millis(400),
            budget,
        };
        let creds =
            Credentials { access_key_id: "id".into(), access_key_secret: Secret::new("s"), security_token: None };
        // Connection refused is transient, but the first backoff (>= 200 ms) would
        // already overrun a 100 ms budget: one attempt only.
        let c = Client::new(creds.clone(), opts(Some(Duration::from_millis(100)))).unwrap();
        assert!(c.call("DescribeDomains", &[]).unwrap_err().retryable());
        assert_eq!(c.calls(), 1);
        let c = Client::new(creds, ClientOptions { retry_delay: Duration::from_millis(1), ..opts(None) }).unwrap();
        assert!(c.call("DescribeDomains", &[]).is_err());
        assert_eq!(c.calls(), 4, "without a budget: the first attempt and 3 retries");
    }

    #[test]
    fn backoff_is_bounded_and_jittered() {
        let c = Client::new(
            Credentials { access_key_id: "id".into(), access_key_secret: Secret::new("s"), security_token: None },
            ClientOptions {
                endpoint: "http://127.0.0.1:9".into(),
                http: HttpOptions::default(),
                retries: 3,
                retry_delay: Duration::from_secs(1),
                budget: None,
            },
        )
        .unwrap();
        assert_eq!(c.url, "http://127.0.0.1:9/");
        let e = Error::Network { message: "x".into(), transient: true, timed_out: false };
        for attempt in 0..20 {
            let d = c.backoff(attempt, &e).as_millis() as u64;
            let exp = (1000u64 << attempt.min(10)).min(30_000);
            assert!(d >= exp / 2 && d <= exp * 3 / 2, "attempt {attempt}: {d}");
        }
        let throttled = Error::Api(ApiError { retry_after: Some(5), ..Default::default() });
        assert!(c.backoff(0, &throttled).as_millis() >= 5000);
    }
}
