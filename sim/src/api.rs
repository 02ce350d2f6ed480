//! The AliDNS data model and request handling: authentication, faults, the
//! actions aliddns calls, JSON bodies (what the real service does:
//! docs/protocol-notes.md).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::http::Request;
use crate::{
    API_VERSION, Call, DEFAULT_KEY_ID, DEFAULT_KEY_SECRET, DEFAULT_MIN_TTL, Fault, Inner, Quirks, SimRecord, sign, time,
};

type Params = BTreeMap<String, String>;
type Json = Map<String, Value>;

const HOST_ID: &str = "alidns.aliyuncs.com";
const MAX_TTL: u32 = 86_400;
const DEFAULT_TTL: u32 = 600;
const MAX_CALLS_KEPT: usize = 20_000;
/// Above this many remembered nonces, those whose timestamp is out of the window are forgotten.
const MAX_NONCES: usize = 50_000;
/// First RecordId handed out: above 2^53 so a client that parses ids as f64 breaks.
const FIRST_RECORD_ID: u64 = 1_900_000_000_000_000_001;
const TIMESTAMP_WINDOW: i64 = 15 * 60;
const JSON_CT: &str = "application/json;charset=utf-8";

const ACTIONS: &[&str] = &[
    "DescribeDomains",
    "DescribeDomainRecords",
    "DescribeSubDomainRecords",
    "DescribeDomainRecordInfo",
    "AddDomainRecord",
    "UpdateDomainRecord",
    "DeleteDomainRecord",
    "DeleteSubDomainRecords",
    "SetDomainRecordStatus",
    "DescribeSupportLines",
    "DescribeDomainInfo",
    "GetMainDomainName",
];

const TYPES: &[&str] = &["A", "AAAA", "CNAME", "MX", "TXT", "NS", "SRV", "CAA", "REDIRECT_URL", "FORWARD_URL"];

/// (LineCode, LineName, LineDisplayName, FatherCode): the free-edition lines.
const LINES: &[(&str, &str, &str, Option<&str>)] = &[
    ("default", "默认", "默认", None),
    ("telecom", "电信", "电信", None),
    ("unicom", "联通", "联通", None),
    ("mobile", "移动", "移动", None),
    ("oversea", "境外", "境外", None),
    ("edu", "教育网", "教育网", None),
    ("cn_telecom_beijing", "北京", "电信_北京", Some("telecom")),
    ("cn_unicom_shanxi", "山西", "联通_山西", Some("unicom")),
    ("cn_mobile_guangdong", "广东", "移动_广东", Some("mobile")),
    ("cn_edu_beijing", "北京", "教育网_北京", Some("edu")),
];

const TTL_CHOICES: &[u32] = &[1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 43_200, 86_400];
const DNS_SERVERS: &[&str] = &["dns1.hichina.com", "dns2.hichina.com"];

pub(crate) struct Key {
    secret: String,
    token: Option<String>,
}

pub(crate) struct Domain {
    pub(crate) name: String,
    id: String,
    pub(crate) min_ttl: u32,
    created: i64,
}

pub(crate) struct Rec {
    id: u64,
    domain: String,
    rr: String,
    rtype: String,
    value: String,
    ttl: u32,
    line: String,
    priority: Option<u32>,
    enabled: bool,
    pub(crate) locked: bool,
    created_ms: i64,
    updated_ms: i64,
}

/// Everything the simulator knows, behind one mutex.
pub(crate) struct State {
    pub(crate) keys: BTreeMap<String, Key>,
    domains: Vec<Domain>,
    records: Vec<Rec>,
    next_id: u64,
    /// (AccessKeyId, SignatureNonce) → the request's Timestamp.
    nonces: HashMap<(String, String), i64>,
    pub(crate) calls: VecDeque<Call>,
    pub(crate) total: usize,
    pub(crate) by_action: BTreeMap<String, usize>,
    pub(crate) faults: VecDeque<Fault>,
    pub(crate) quirks: Quirks,
    pub(crate) clock_offset: i64,
    seq: u64,
    salt: u64,
}

/// An API error: HTTP status, `Code`, `Message`.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: u16,
    code: String,
    message: String,
}

fn err(status: u16, code: &str, message: impl Into<String>) -> ApiError {
    ApiError { status, code: code.to_string(), message: message.into() }
}

fn missing(name: &str) -> ApiError {
    err(
        400,
        "MissingParameter",
        format!("The input parameter \"{name}\" that is mandatory for processing this request is not supplied."),
    )
}

fn invalid(name: &str, why: &str) -> ApiError {
    let sep = if why.is_empty() { "" } else { " " };
    err(400, "InvalidParameter", format!("Specified parameter {name} is not valid.{sep}{why}"))
}

fn no_domain() -> ApiError {
    err(400, "InvalidDomainName.NoExist", "The specified domain name does not exist. Refresh the page and try again.")
}

fn bad_domain() -> ApiError {
    err(400, "InvalidDomainName.Format", "Invalid domain name.")
}

fn not_mine() -> ApiError {
    err(400, "DomainRecordNotBelongToUser", "The domain record does not belong to this user.")
}

fn duplicate() -> ApiError {
    err(400, "DomainRecordDuplicate", "The DNS record already exists.")
}

fn conflict() -> ApiError {
    err(400, "DomainRecordConflict", "The DNS record conflicts with other records.")
}

fn locked() -> ApiError {
    err(400, "DomainRecordLocked", "The domain record has been locked.")
}

/// A required parameter; empty counts as missing.
fn need<'a>(p: &'a Params, name: &str) -> Result<&'a str, ApiError> {
    match p.get(name) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(missing(name)),
    }
}

/// An optional parameter; empty counts as absent.
fn opt<'a>(p: &'a Params, name: &str) -> Option<&'a str> {
    p.get(name).map(String::as_str).filter(|v| !v.is_empty())
}

/// `(PageNumber, PageSize)` with the action's default and maximum page size.
fn paging(p: &Params, default_size: u64, max_size: u64) -> Result<(u64, u64), ApiError> {
    let number = match opt(p, "PageNumber") {
        None => 1,
        Some(v) => v.parse::<u64>().ok().filter(|n| *n >= 1).ok_or_else(|| invalid("PageNumber", ""))?,
    };
    let size = match opt(p, "PageSize") {
        None => default_size,
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=max_size).contains(n))
            .ok_or_else(|| invalid("PageSize", &format!("PageSize must be between 1 and {max_size}.")))?,
    };
    Ok((number, size))
}

fn page<T>(items: Vec<T>, number: u64, size: u64) -> Vec<T> {
    let skip = (number - 1).saturating_mul(size);
    items.into_iter().skip(usize::try_from(skip).unwrap_or(usize::MAX)).take(size as usize).collect()
}

fn valid_domain_syntax(name: &str) -> bool {
    let labels: Vec<&str> = name.split('.').collect();
    name.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
}

/// Validates and lower-cases an RR (`@`, `*`, `www`, `*.a`, `_acme-challenge.b`, ...).
fn normalize_rr(rr: &str) -> Result<String, ApiError> {
    let bad = || err(400, "InvalidRR.Format", "The format of the host record (RR) is invalid.");
    let rr = rr.to_ascii_lowercase();
    if rr == "@" {
        return Ok(rr);
    }
    if rr.len() > 253 || rr.starts_with('-') || rr.ends_with('-') {
        return Err(bad());
    }
    for (i, label) in rr.split('.').enumerate() {
        let ok = !label.is_empty()
            && label.len() <= 63
            && (label == "*" && i == 0 || label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        if !ok {
            return Err(bad());
        }
    }
    Ok(rr)
}

fn normalize_type(t: &str) -> Result<String, ApiError> {
    let t = t.to_ascii_uppercase();
    if TYPES.contains(&t.as_str()) { Ok(t) } else { Err(invalid("Type", "Unsupported record type.")) }
}

fn valid_hostname(v: &str) -> bool {
    let v = v.strip_suffix('.').unwrap_or(v);
    v.parse::<IpAddr>().is_err()
        && !v.is_empty()
        && v.len() <= 253
        && v.split('.').all(|l| {
            !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_alphanumeric() || c == '-' || c == '_' || c == '*')
        })
}

fn validate_value(rtype: &str, value: &str) -> Result<(), ApiError> {
    let ok = match rtype {
        "A" => value.parse::<Ipv4Addr>().is_ok(),
        "AAAA" => value.parse::<Ipv6Addr>().is_ok(),
        "CNAME" | "NS" | "MX" => valid_hostname(value),
        "TXT" => value.chars().count() <= 512,
        "SRV" => {
            let f: Vec<&str> = value.split_whitespace().collect();
            f.len() == 4 && f[..3].iter().all(|n| n.parse::<u16>().is_ok())
        }
        "CAA" => value.split_whitespace().count() >= 3,
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        let why = match rtype {
            "A" => "The value of an A record must be an IPv4 address.",
            "AAAA" => "The value of an AAAA record must be an IPv6 address.",
            _ => "The record value does not match the record type.",
        };
        Err(invalid("Value", why))
    }
}

/// Whether two values of the same type are the same record data.
fn same_value(rtype: &str, a: &str, b: &str) -> bool {
    match rtype {
        "A" | "AAAA" => match (a.parse::<IpAddr>(), b.parse::<IpAddr>()) {
            (Ok(x), Ok(y)) => x == y,
            _ => a == b,
        },
        "CNAME" | "NS" | "MX" => a.trim_end_matches('.').eq_ignore_ascii_case(b.trim_end_matches('.')),
        _ => a == b,
    }
}

fn validate_line(line: &str) -> Result<(), ApiError> {
    if LINES.iter().any(|(code, ..)| *code == line) { Ok(()) } else { Err(invalid("Line", "Unsupported line.")) }
}

fn parse_status(s: &str) -> Result<bool, ApiError> {
    match s.to_ascii_lowercase().as_str() {
        "enable" => Ok(true),
        "disable" => Ok(false),
        _ => Err(invalid("Status", "Valid values: Enable, Disable.")),
    }
}

fn contains_ci(hay: &str, needle: &str) -> bool {
    hay.to_lowercase().contains(&needle.to_lowercase())
}

/// The outcome of one HTTP exchange.
pub(crate) enum Outcome {
    Respond(Response),
    Drop,
}

/// A response ready to be written.
pub(crate) struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub request_id: String,
    pub date: String,
}

/// A non-API response (malformed HTTP): plain text, still with Date and request id.
pub(crate) fn plain_response(inner: &Inner, status: u16, text: &str) -> Response {
    let mut st = inner.lock();
    let now = st.now();
    Response {
        status,
        content_type: "text/plain;charset=utf-8",
        body: text.as_bytes().to_vec(),
        request_id: st.request_id(),
        date: time::http_date(now),
    }
}

/// What a matched fault turns into.
enum Injected {
    Drop,
    Delay(u64),
    Answer(u16, Option<(String, String)>),
}

/// Handles one HTTP request end to end.
pub(crate) fn handle(inner: &Inner, req: &Request) -> Outcome {
    if req.path.starts_with("/_sim/") {
        return Outcome::Respond(admin(inner, req));
    }
    let mut params = Params::new();
    for (k, v) in sign::parse_form(&req.query) {
        params.insert(k, v);
    }
    let is_form = req
        .header("Content-Type")
        .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    if is_form {
        for (k, v) in sign::parse_form(&String::from_utf8_lossy(&req.body)) {
            params.insert(k, v);
        }
    }
    let action = params.get("Action").cloned().unwrap_or_default();
    let mut logged = params.clone();
    logged.remove("Signature");
    let mut call = Call { action: action.clone(), params: logged, method: req.method.clone(), status: 0, code: None };

    let injected = inner.lock().take_fault(&action);
    match injected {
        Some(Injected::Drop) => {
            inner.lock().record_call(call);
            return Outcome::Drop;
        }
        Some(Injected::Delay(ms)) => {
            let until = std::time::Instant::now() + Duration::from_millis(ms);
            while std::time::Instant::now() < until && !inner.shutdown.load(Ordering::SeqCst) {
                std::thread::sleep((until - std::time::Instant::now()).min(Duration::from_millis(50)));
            }
        }
        Some(Injected::Answer(status, error)) => {
            let mut st = inner.lock();
            let now = st.now();
            let request_id = st.request_id();
            let (content_type, body) = match &error {
                Some((code, message)) => (JSON_CT, error_body(&request_id, code, message)),
                None => ("text/html;charset=utf-8", b"<html><body><h1>alidns-sim garbage</h1>".to_vec()),
            };
            call.status = status;
            call.code = error.map(|(code, _)| code);
            st.record_call(call);
            return Outcome::Respond(Response { status, content_type, body, request_id, date: time::http_date(now) });
        }
        None => {}
    }

    let mut st = inner.lock();
    let now = st.now();
    let request_id = st.request_id();
    let (status, body) = match st.process(&req.method, &req.path, &params, now) {
        Ok(mut obj) => {
            obj.insert("RequestId".into(), Value::String(request_id.clone()));
            (200, serde_json::to_vec(&Value::Object(obj)).expect("serialize JSON"))
        }
        Err(e) => {
            call.code = Some(e.code.clone());
            (e.status, error_body(&request_id, &e.code, &e.message))
        }
    };
    call.status = status;
    st.record_call(call);
    Outcome::Respond(Response { status, content_type: JSON_CT, body, request_id, date: time::http_date(now) })
}

fn error_body(request_id: &str, code: &str, message: &str) -> Vec<u8> {
    let body = json!({
        "RequestId": request_id,
        "HostId": HOST_ID,
        "Code": code,
        "Message": message,
        "Recommend": format!("https://api.aliyun.com/troubleshoot?q={code}&product=Alidns&requestId={request_id}"),
    });
    serde_json::to_vec(&body).expect("serialize JSON")
}

/// `GET /_sim/calls` and `POST /_sim/reset` (not counted as calls).
fn admin(inner: &Inner, req: &Request) -> Response {
    let mut st = inner.lock();
    let now = st.now();
    let request_id = st.request_id();
    let (status, body) = match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/_sim/calls") => (200, json!({ "total": st.total, "by_action": st.by_action })),
        ("POST", "/_sim/reset") => {
            st.reset_calls();
            (200, json!({ "ok": true }))
        }
        _ => (404, json!({ "error": "unknown admin path" })),
    };
    Response {
        status,
        content_type: JSON_CT,
        body: serde_json::to_vec(&body).expect("serialize JSON"),
        request_id,
        date: time::http_date(now),
    }
}

impl State {
    pub(crate) fn new() -> State {
        let salt = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ u64::from(std::process::id()).rotate_left(32);
        let mut st = State {
            keys: BTreeMap::new(),
            domains: Vec::new(),
            records: Vec::new(),
            next_id: FIRST_RECORD_ID,
            nonces: HashMap::new(),
            calls: VecDeque::new(),
            total: 0,
            by_action: BTreeMap::new(),
            faults: VecDeque::new(),
            quirks: Quirks::default(),
            clock_offset: 0,
            seq: 0,
            salt,
        };
        st.add_key(DEFAULT_KEY_ID, DEFAULT_KEY_SECRET, None);
        st
    }

    pub(crate) fn now(&self) -> i64 {
        time::now(self.clock_offset)
    }

    fn now_ms(&self, now: i64) -> i64 {
        now * 1000
    }

    /// A fresh UUID-shaped upper-case request id.
    pub(crate) fn request_id(&mut self) -> String {
        self.seq += 1;
        let mut x = self.salt ^ self.seq.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x ^= x >> 31;
        x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x ^= x >> 29;
        format!(
            "{:08X}-{:04X}-4{:03X}-A{:03X}-{:012X}",
            (x >> 32) as u32,
            (x >> 16) as u16,
            x & 0xFFF,
            self.seq & 0xFFF,
            (x.rotate_left(17) ^ self.seq) & 0xFFFF_FFFF_FFFF
        )
    }

    pub(crate) fn add_key(&mut self, id: &str, secret: &str, token: Option<&str>) {
        self.keys.insert(id.to_string(), Key { secret: secret.to_string(), token: token.map(str::to_string) });
    }

    pub(crate) fn add_domain(&mut self, name: &str) {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if self.domains.iter().any(|d| d.name == name) {
            return;
        }
        let n = self.domains.len() as u64 + 1;
        let id = format!("{:08x}-5157-4d4e-8000-{:012x}", n, self.salt & 0xFFFF_FFFF_FFFF);
        let created = self.now();
        self.domains.push(Domain { name, id, min_ttl: DEFAULT_MIN_TTL, created });
    }

    pub(crate) fn domain_mut(&mut self, name: &str) -> &mut Domain {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        self.domains.iter_mut().find(|d| d.name == name).unwrap_or_else(|| panic!("domain {name} is not hosted"))
    }

    pub(crate) fn record_mut(&mut self, id: &str) -> &mut Rec {
        self.records.iter_mut().find(|r| r.id.to_string() == id).unwrap_or_else(|| panic!("record {id} does not exist"))
    }

    pub(crate) fn seed_record(
        &mut self,
        domain: &str,
        rr: &str,
        rtype: &str,
        value: &str,
        ttl: u32,
        line: &str,
    ) -> String {
        let domain = self.domain_mut(domain).name.clone();
        let rtype = rtype.to_ascii_uppercase();
        let priority = (rtype == "MX").then_some(10);
        let now = self.now();
        self.insert_record(
            domain,
            rr.to_ascii_lowercase(),
            rtype,
            value.to_string(),
            ttl,
            line.to_string(),
            priority,
            now,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn insert_record(
        &mut self,
        domain: String,
        rr: String,
        rtype: String,
        value: String,
        ttl: u32,
        line: String,
        priority: Option<u32>,
        now: i64,
    ) -> String {
        let id = self.next_id;
        self.next_id += 1;
        let ms = self.now_ms(now);
        self.records.push(Rec {
            id,
            domain,
            rr,
            rtype,
            value,
            ttl,
            line,
            priority,
            enabled: true,
            locked: false,
            created_ms: ms,
            updated_ms: ms,
        });
        id.to_string()
    }

    pub(crate) fn sim_records(&self, domain: &str) -> Vec<SimRecord> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        self.records
            .iter()
            .filter(|r| domain.is_empty() || domain == "*" || r.domain == domain)
            .map(|r| SimRecord {
                id: r.id.to_string(),
                domain: r.domain.clone(),
                rr: r.rr.clone(),
                rtype: r.rtype.clone(),
                value: r.value.clone(),
                ttl: r.ttl,
                line: r.line.clone(),
                priority: r.priority,
                status: if r.enabled { "Enable" } else { "Disable" }.to_string(),
                locked: r.locked,
            })
            .collect()
    }

    pub(crate) fn inject(&mut self, fault: Fault) {
        let count = match &fault {
            Fault::Throttle { count, .. }
            | Fault::ServerError { count, .. }
            | Fault::Delay { count, .. }
            | Fault::Drop { count, .. }
            | Fault::Garbage { count, .. }
            | Fault::Error { count, .. } => *count,
        };
        if count > 0 {
            self.faults.push_back(fault);
        }
    }

    /// Consumes one unit of the first queued fault matching `action`.
    fn take_fault(&mut self, action: &str) -> Option<Injected> {
        let idx = self.faults.iter().position(|f| {
            let filter = match f {
                Fault::Throttle { action, .. }
                | Fault::ServerError { action, .. }
                | Fault::Delay { action, .. }
                | Fault::Drop { action, .. }
                | Fault::Garbage { action, .. }
                | Fault::Error { action, .. } => action,
            };
            filter.as_deref().is_none_or(|a| a == action)
        })?;
        let fault = &mut self.faults[idx];
        let (count, injected) = match fault {
            Fault::Throttle { count, .. } => (
                count,
                Injected::Answer(
                    400,
                    Some(("Throttling.User".into(), "Request was denied due to user flow control.".into())),
                ),
            ),
            Fault::ServerError { count, status, .. } => {
                let error = if *status == 503 {
                    (
                        "ServiceUnavailable".into(),
                        "The request has failed due to a temporary failure of the server.".into(),
                    )
                } else {
                    (
                        "InternalError".into(),
                        "The request processing has failed due to some unknown error, exception or failure.".into(),
                    )
                };
                (count, Injected::Answer(*status, Some(error)))
            }
            Fault::Delay { count, ms, .. } => (count, Injected::Delay(*ms)),
            Fault::Drop { count, .. } => (count, Injected::Drop),
            Fault::Garbage { count, .. } => (count, Injected::Answer(200, None)),
            Fault::Error { count, status, code, message, .. } => {
                (count, Injected::Answer(*status, Some((code.clone(), message.clone()))))
            }
        };
        *count -= 1;
        if *count == 0 {
            self.faults.remove(idx);
        }
        Some(injected)
    }

    pub(crate) fn record_call(&mut self, call: Call) {
        self.total += 1;
        *self.by_action.entry(call.action.clone()).or_insert(0) += 1;
        if self.calls.len() >= MAX_CALLS_KEPT {
            self.calls.pop_front();
        }
        self.calls.push_back(call);
    }

    pub(crate) fn reset_calls(&mut self) {
        self.calls.clear();
        self.total = 0;
        self.by_action.clear();
    }

    fn num(&self, n: u64) -> Value {
        if self.quirks.numbers_as_strings { Value::String(n.to_string()) } else { Value::from(n) }
    }

    fn status_str(&self, enabled: bool) -> &'static str {
        match (enabled, self.quirks.status_upper) {
            (true, false) => "Enable",
            (false, false) => "Disable",
            (true, true) => "ENABLE",
            (false, true) => "DISABLE",
        }
    }

    /// Authentication, then the action.
    fn process(&mut self, method: &str, path: &str, p: &Params, now: i64) -> Result<Json, ApiError> {
        let version = need(p, "Version")?;
        if version != API_VERSION {
            return Err(err(400, "InvalidVersion", "Specified parameter Version is not valid."));
        }
        let action = need(p, "Action")?;
        if !ACTIONS.contains(&action) || path != "/" || !(method == "GET" || method == "POST") {
            return Err(err(
                404,
                "InvalidAction.NotFound",
                "Specified api is not found, please check your url and method.",
            ));
        }
        if !need(p, "Format")?.eq_ignore_ascii_case("JSON") {
            return Err(invalid("Format", "This simulator only answers JSON."));
        }
        let key_id = need(p, "AccessKeyId")?;
        if need(p, "SignatureMethod")? != "HMAC-SHA1" {
            return Err(err(400, "InvalidSignatureMethod", "Specified signature method is not supported."));
        }
        if need(p, "SignatureVersion")? != "1.0" {
            return Err(err(400, "InvalidSignatureVersion", "Specified signature version is not supported."));
        }
        let nonce = need(p, "SignatureNonce")?;
        let ts = time::parse_timestamp(need(p, "Timestamp")?).ok_or_else(|| {
            err(400, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted.")
        })?;
        let sig = need(p, "Signature")?;
        let key = self
            .keys
            .get(key_id)
            .ok_or_else(|| err(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found."))?;
        let sts = sign::string_to_sign(method, p);
        if sig != sign::signature(&key.secret, &sts) {
            return Err(err(
                400,
                "SignatureDoesNotMatch",
                format!("Specified signature is not matched with our calculation. server string to sign is:{sts}"),
            ));
        }
        if (now - ts).abs() > TIMESTAMP_WINDOW {
            return Err(err(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired."));
        }
        match (&key.token, opt(p, "SecurityToken")) {
            (Some(_), None) => {
                return Err(err(400, "MissingSecurityToken", "SecurityToken is mandatory for this action."));
            }
            (Some(want), Some(got)) if want != got => {
                return Err(err(400, "InvalidSecurityToken.Malformed", "Specified SecurityToken is malformed."));
            }
            (None, Some(_)) => {
                return Err(err(
                    400,
                    "InvalidSecurityToken.MismatchWithAccessKey",
                    "Specified SecurityToken mismatch with the AccessKey.",
                ));
            }
            _ => {}
        }
        if self.nonces.len() >= MAX_NONCES {
            // Replays of these would fail the timestamp check anyway.
            self.nonces.retain(|_, t| (now - *t).abs() <= TIMESTAMP_WINDOW + 60);
        }
        if self.nonces.insert((key_id.to_string(), nonce.to_string()), ts).is_some() {
            return Err(err(400, "SignatureNonceUsed", "Specified signature nonce was used already."));
        }
        match action {
            "DescribeDomains" => self.describe_domains(p),
            "DescribeDomainRecords" => self.describe_domain_records(p),
            "DescribeSubDomainRecords" => self.describe_sub_domain_records(p),
            "DescribeDomainRecordInfo" => self.describe_domain_record_info(p),
            "AddDomainRecord" => self.add_domain_record(p, now),
            "UpdateDomainRecord" => self.update_domain_record(p, now),
            "DeleteDomainRecord" => self.delete_domain_record(p),
            "DeleteSubDomainRecords" => self.delete_sub_domain_records(p),
            "SetDomainRecordStatus" => self.set_domain_record_status(p, now),
            "DescribeSupportLines" => self.describe_support_lines(p),
            "DescribeDomainInfo" => self.describe_domain_info(p),
            "GetMainDomainName" => self.get_main_domain_name(p),
            _ => unreachable!("checked against ACTIONS"),
        }
    }

    /// The hosted zone named exactly `name` (case-insensitive).
    fn find_domain(&self, name: &str) -> Result<usize, ApiError> {
        let name = name.to_ascii_lowercase();
        if let Some(i) = self.domains.iter().position(|d| d.name == name) {
            return Ok(i);
        }
        if !valid_domain_syntax(&name) || self.domains.iter().any(|d| name.ends_with(&format!(".{}", d.name))) {
            return Err(bad_domain());
        }
        Err(no_domain())
    }

    /// The hosted zone with the longest suffix match of `fqdn`, and the RR left.
    fn split_fqdn(&self, fqdn: &str) -> Option<(usize, String)> {
        let fqdn = fqdn.trim_end_matches('.').to_ascii_lowercase();
        let mut best: Option<(usize, String)> = None;
        for (i, d) in self.domains.iter().enumerate() {
            let rr = if fqdn == d.name {
                "@".to_string()
            } else if let Some(prefix) = fqdn.strip_suffix(&format!(".{}", d.name)) {
                prefix.to_string()
            } else {
                continue;
            };
            if best.as_ref().is_none_or(|(j, _)| self.domains[*j].name.len() < d.name.len()) {
                best = Some((i, rr));
            }
        }
        best
    }

    fn record_json(&self, r: &Rec, timestamps: bool) -> Value {
        let mut m = Json::new();
        m.insert("DomainName".into(), r.domain.clone().into());
        m.insert("RecordId".into(), r.id.to_string().into());
        m.insert("RR".into(), r.rr.clone().into());
        m.insert("Type".into(), r.rtype.clone().into());
        m.insert("Value".into(), r.value.clone().into());
        m.insert("TTL".into(), self.num(u64::from(r.ttl)));
        if let Some(prio) = r.priority {
            m.insert("Priority".into(), self.num(u64::from(prio)));
        }
        m.insert("Line".into(), r.line.clone().into());
        m.insert("Status".into(), self.status_str(r.enabled).into());
        m.insert("Locked".into(), r.locked.into());
        if timestamps {
            m.insert("CreateTimestamp".into(), self.num(r.created_ms as u64));
            m.insert("UpdateTimestamp".into(), self.num(r.updated_ms as u64));
        }
        Value::Object(m)
    }

    fn record_list(&self, list: Vec<&Rec>, number: u64, size: u64, timestamps: bool) -> Json {
        let total = list.len() as u64;
        let items: Vec<Value> = page(list, number, size).into_iter().map(|r| self.record_json(r, timestamps)).collect();
        let mut m = Json::new();
        m.insert("TotalCount".into(), self.num(total));
        m.insert("PageNumber".into(), self.num(number));
        m.insert("PageSize".into(), self.num(size));
        m.insert("DomainRecords".into(), json!({ "Record": items }));
        m
    }

    fn version(min_ttl: u32) -> (&'static str, &'static str) {
        match min_ttl {
            600.. => ("mianfei", "Alibaba Cloud DNS"),
            60.. => ("version_enterprise_basic", "Enterprise Standard Edition"),
            _ => ("version_enterprise_advanced", "Enterprise Ultimate Edition"),
        }
    }

    fn describe_domains(&self, p: &Params) -> Result<Json, ApiError> {
        let (number, size) = paging(p, 20, 100)?;
        let exact = match opt(p, "SearchMode").map(str::to_ascii_uppercase).as_deref() {
            None | Some("LIKE") => false,
            Some("EXACT") => true,
            Some(_) => return Err(invalid("SearchMode", "Valid values: LIKE, EXACT.")),
        };
        let kw = opt(p, "KeyWord").map(str::to_lowercase);
        let list: Vec<&Domain> = self
            .domains
            .iter()
            .rev()
            .filter(|d| match &kw {
                None => true,
                Some(k) if exact => d.name == *k,
                Some(k) => d.name.contains(k.as_str()),
            })
            .collect();
        let total = list.len() as u64;
        let items: Vec<Value> = page(list, number, size)
            .into_iter()
            .map(|d| {
                let (code, name) = Self::version(d.min_ttl);
                let count = self.records.iter().filter(|r| r.domain == d.name).count() as u64;
                let mut m = Json::new();
                m.insert("DomainId".into(), d.id.clone().into());
                m.insert("DomainName".into(), d.name.clone().into());
                m.insert("PunyCode".into(), d.name.clone().into());
                m.insert("AliDomain".into(), false.into());
                m.insert("GroupId".into(), "".into());
                m.insert("InstanceId".into(), "".into());
                m.insert("VersionCode".into(), code.into());
                m.insert("VersionName".into(), name.into());
                m.insert("RecordCount".into(), self.num(count));
                m.insert("Starmark".into(), false.into());
                m.insert("CreateTime".into(), time::iso_minutes(d.created).into());
                m.insert("CreateTimestamp".into(), self.num((d.created * 1000) as u64));
                m.insert("DnsServers".into(), json!({ "DnsServer": DNS_SERVERS }));
                Value::Object(m)
            })
            .collect();
        let mut m = Json::new();
        m.insert("TotalCount".into(), self.num(total));
        m.insert("PageNumber".into(), self.num(number));
        m.insert("PageSize".into(), self.num(size));
        m.insert("Domains".into(), json!({ "Domain": items }));
        Ok(m)
    }

    fn describe_domain_records(&self, p: &Params) -> Result<Json, ApiError> {
        let domain = &self.domains[self.find_domain(need(p, "DomainName")?)?].name;
        let (number, size) = paging(p, 20, 500)?;
        let kw = opt(p, "KeyWord").map(str::to_lowercase);
        let mode = match opt(p, "SearchMode").map(str::to_ascii_uppercase).as_deref() {
            None if kw.is_some() => "LIKE",
            None => "DEFAULT",
            Some("LIKE") => "LIKE",
            Some("EXACT") => "EXACT",
            Some("ADVANCED") => "ADVANCED",
            Some("COMBINATION") => "COMBINATION",
            Some(_) => return Err(invalid("SearchMode", "Valid values: LIKE, EXACT, ADVANCED, COMBINATION.")),
        };
        let status = opt(p, "Status").map(parse_status).transpose()?;
        let asc = match opt(p, "Direction").map(str::to_ascii_uppercase).as_deref() {
            None | Some("DESC") => false,
            Some("ASC") => true,
            Some(_) => return Err(invalid("Direction", "Valid values: ASC, DESC.")),
        };
        let rr_kw = opt(p, "RRKeyWord").map(str::to_lowercase);
        let value_kw = opt(p, "ValueKeyWord").map(str::to_lowercase);
        let type_kw = opt(p, "TypeKeyWord");
        let type_filter = opt(p, "Type");
        let line = opt(p, "Line");
        let fuzzy = mode != "COMBINATION";
        let text_match = |field: &str, kw: &Option<String>| match kw {
            None => true,
            Some(k) if fuzzy => contains_ci(field, k),
            Some(k) => field.to_lowercase() == *k,
        };
        let mut list: Vec<&Rec> = self
            .records
            .iter()
            .filter(|r| r.domain == *domain)
            .filter(|r| match mode {
                "LIKE" => kw.as_ref().is_none_or(|k| contains_ci(&r.rr, k) || contains_ci(&r.value, k)),
                "EXACT" => kw.as_ref().is_none_or(|k| r.rr == *k || r.value.to_lowercase() == *k),
                _ => {
                    text_match(&r.rr, &rr_kw)
                        && text_match(&r.value, &value_kw)
                        && type_kw.is_none_or(|t| r.rtype.eq_ignore_ascii_case(t))
                        && type_filter.is_none_or(|t| r.rtype.eq_ignore_ascii_case(t))
                        && line.is_none_or(|l| r.line == l)
                        && status.is_none_or(|s| r.enabled == s)
                }
            })
            .collect();
        if !asc {
            list.reverse();
        }
        Ok(self.record_list(list, number, size, true))
    }

    fn describe_sub_domain_records(&self, p: &Params) -> Result<Json, ApiError> {
        let sub = need(p, "SubDomain")?.trim_end_matches('.').to_ascii_lowercase();
        let (zone, rr) = match opt(p, "DomainName") {
            Some(dn) => {
                let zone = self.find_domain(dn)?;
                let name = &self.domains[zone].name;
                let rr = if sub == *name {
                    "@".to_string()
                } else {
                    sub.strip_suffix(&format!(".{name}"))
                        .ok_or_else(|| invalid("SubDomain", "SubDomain is not under DomainName."))?
                        .to_string()
                };
                (zone, rr)
            }
            None => self.split_fqdn(&sub).ok_or_else(no_domain)?,
        };
        let (number, size) = paging(p, 20, 500)?;
        let type_filter = opt(p, "Type");
        let line = opt(p, "Line");
        let domain = &self.domains[zone].name;
        let list: Vec<&Rec> = self
            .records
            .iter()
            .rev()
            .filter(|r| r.domain == *domain && r.rr == rr)
            .filter(|r| type_filter.is_none_or(|t| r.rtype.eq_ignore_ascii_case(t)))
            .filter(|r| line.is_none_or(|l| r.line == l))
            .collect();
        Ok(self.record_list(list, number, size, false))
    }

    fn find_record(&self, id: &str) -> Result<usize, ApiError> {
        let id = id.parse::<u64>().map_err(|_| not_mine())?;
        self.records.iter().position(|r| r.id == id).ok_or_else(not_mine)
    }

    fn describe_domain_record_info(&self, p: &Params) -> Result<Json, ApiError> {
        let r = &self.records[self.find_record(need(p, "RecordId")?)?];
        let Value::Object(mut m) = self.record_json(r, false) else { unreachable!() };
        let d = self.domains.iter().find(|d| d.name == r.domain).expect("record's zone exists");
        m.insert("DomainId".into(), d.id.clone().into());
        m.insert("PunyCode".into(), d.name.clone().into());
        m.insert("GroupId".into(), "".into());
        Ok(m)
    }

    /// Parses and range-checks TTL against the zone's minimum.
    fn ttl(&self, p: &Params, zone: usize) -> Result<u32, ApiError> {
        let min = self.domains[zone].min_ttl;
        let ttl = match opt(p, "TTL") {
            None => return Ok(DEFAULT_TTL.max(min)),
            Some(v) => v.parse::<u32>().map_err(|_| invalid("TTL", "TTL must be an integer."))?,
        };
        if ttl < min || ttl > MAX_TTL {
            return Err(err(
                400,
                "QuotaExceeded.TTL",
                format!("The specified TTL is invalid. A valid TTL must be in the range of {min} to {MAX_TTL}."),
            ));
        }
        Ok(ttl)
    }

    fn priority(p: &Params, rtype: &str, old: Option<u32>) -> Result<Option<u32>, ApiError> {
        if rtype != "MX" {
            return Ok(None);
        }
        match opt(p, "Priority") {
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=50).contains(n))
                .map(Some)
                .ok_or_else(|| invalid("Priority", "Priority must be between 1 and 50.")),
            None => old.map(Some).ok_or_else(|| missing("Priority")),
        }
    }

    /// Duplicate and CNAME-conflict checks for a record about to be written;
    /// `skip` is the record being updated.
    fn check_clash(
        &self,
        domain: &str,
        rr: &str,
        rtype: &str,
        value: &str,
        line: &str,
        skip: Option<u64>,
    ) -> Result<(), ApiError> {
        let same_place = || {
            self.records
                .iter()
                .filter(move |r| Some(r.id) != skip && r.domain == domain && r.rr == rr && r.line == line)
        };
        if same_place().any(|r| r.rtype == rtype && same_value(rtype, &r.value, value)) {
            return Err(duplicate());
        }
        let clash = same_place().any(|r| rtype == "CNAME" || r.rtype == "CNAME");
        if clash { Err(conflict()) } else { Ok(()) }
    }

    fn add_domain_record(&mut self, p: &Params, now: i64) -> Result<Json, ApiError> {
        let zone = self.find_domain(need(p, "DomainName")?)?;
        let rr = normalize_rr(need(p, "RR")?)?;
        let rtype = normalize_type(need(p, "Type")?)?;
        let value = need(p, "Value")?;
        validate_value(&rtype, value)?;
        let ttl = self.ttl(p, zone)?;
        let line = opt(p, "Line").unwrap_or("default");
        validate_line(line)?;
        let priority = Self::priority(p, &rtype, None)?;
        let domain = self.domains[zone].name.clone();
        self.check_clash(&domain, &rr, &rtype, value, line, None)?;
        let id = self.insert_record(domain, rr, rtype, value.to_string(), ttl, line.to_string(), priority, now);
        let mut m = Json::new();
        m.insert("RecordId".into(), id.into());
        Ok(m)
    }

    fn update_domain_record(&mut self, p: &Params, now: i64) -> Result<Json, ApiError> {
        let idx = self.find_record(need(p, "RecordId")?)?;
        let rr = normalize_rr(need(p, "RR")?)?;
        let rtype = normalize_type(need(p, "Type")?)?;
        let value = need(p, "Value")?;
        validate_value(&rtype, value)?;
        let zone = self.domains.iter().position(|d| d.name == self.records[idx].domain).expect("record's zone exists");
        let ttl = self.ttl(p, zone)?;
        let line = opt(p, "Line").unwrap_or("default");
        validate_line(line)?;
        let old = &self.records[idx];
        let priority = Self::priority(p, &rtype, if old.rtype == "MX" { old.priority } else { None })?;
        if old.locked {
            return Err(locked());
        }
        if old.rr == rr
            && old.rtype == rtype
            && same_value(&rtype, &old.value, value)
            && old.line == line
            && old.ttl == ttl
            && old.priority == priority
        {
            return Err(duplicate());
        }
        let (id, domain) = (old.id, old.domain.clone());
        self.check_clash(&domain, &rr, &rtype, value, line, Some(id))?;
        let ms = self.now_ms(now);
        let r = &mut self.records[idx];
        r.rr = rr;
        r.rtype = rtype;
        r.value = value.to_string();
        r.ttl = ttl;
        r.line = line.to_string();
        r.priority = priority;
        r.updated_ms = ms;
        let mut m = Json::new();
        m.insert("RecordId".into(), id.to_string().into());
        Ok(m)
    }

    fn delete_domain_record(&mut self, p: &Params) -> Result<Json, ApiError> {
        let idx = self.find_record(need(p, "RecordId")?)?;
        if self.records[idx].locked {
            return Err(locked());
        }
        let r = self.records.remove(idx);
        let mut m = Json::new();
        m.insert("RecordId".into(), r.id.to_string().into());
        Ok(m)
    }

    fn delete_sub_domain_records(&mut self, p: &Params) -> Result<Json, ApiError> {
        let zone = self.find_domain(need(p, "DomainName")?)?;
        let rr = need(p, "RR")?.to_ascii_lowercase();
        let type_filter = opt(p, "Type").map(str::to_ascii_uppercase);
        let domain = self.domains[zone].name.clone();
        let before = self.records.len();
        self.records.retain(|r| {
            !(r.domain == domain && r.rr == rr && !r.locked && type_filter.as_ref().is_none_or(|t| r.rtype == *t))
        });
        let deleted = before - self.records.len();
        let mut m = Json::new();
        m.insert("RR".into(), rr.into());
        // A string on the real wire too (doc example and SDK model).
        m.insert("TotalCount".into(), deleted.to_string().into());
        Ok(m)
    }

    fn set_domain_record_status(&mut self, p: &Params, now: i64) -> Result<Json, ApiError> {
        let idx = self.find_record(need(p, "RecordId")?)?;
        let enabled = parse_status(need(p, "Status")?)?;
        if self.records[idx].locked {
            return Err(locked());
        }
        let ms = self.now_ms(now);
        let r = &mut self.records[idx];
        r.enabled = enabled;
        r.updated_ms = ms;
        let id = r.id;
        let mut m = Json::new();
        m.insert("RecordId".into(), id.to_string().into());
        m.insert("Status".into(), if enabled { "Enable" } else { "Disable" }.into());
        Ok(m)
    }

    fn lines_json() -> Value {
        let lines: Vec<Value> = LINES
            .iter()
            .map(|(code, name, display, father)| {
                let mut m = Json::new();
                m.insert("LineCode".into(), (*code).into());
                m.insert("LineName".into(), (*name).into());
                m.insert("LineDisplayName".into(), (*display).into());
                if let Some(f) = father {
                    m.insert("FatherCode".into(), (*f).into());
                }
                Value::Object(m)
            })
            .collect();
        json!({ "RecordLine": lines })
    }

    fn describe_support_lines(&self, p: &Params) -> Result<Json, ApiError> {
        if let Some(dn) = opt(p, "DomainName") {
            self.find_domain(dn)?;
        }
        let mut m = Json::new();
        m.insert("RecordLines".into(), Self::lines_json());
        Ok(m)
    }

    fn describe_domain_info(&self, p: &Params) -> Result<Json, ApiError> {
        let d = &self.domains[self.find_domain(need(p, "DomainName")?)?];
        let (code, name) = Self::version(d.min_ttl);
        let mut m = Json::new();
        m.insert("DomainId".into(), d.id.clone().into());
        m.insert("DomainName".into(), d.name.clone().into());
        m.insert("PunyCode".into(), d.name.clone().into());
        m.insert("AliDomain".into(), false.into());
        m.insert("GroupId".into(), "".into());
        m.insert("InstanceId".into(), "".into());
        m.insert("VersionCode".into(), code.into());
        m.insert("VersionName".into(), name.into());
        m.insert("CreateTime".into(), time::iso_minutes(d.created).into());
        m.insert("InBlackHole".into(), false.into());
        m.insert("InClean".into(), false.into());
        m.insert("SubDomain".into(), false.into());
        m.insert("DnsServers".into(), json!({ "DnsServer": DNS_SERVERS }));
        if opt(p, "NeedDetailAttributes").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            let mut ttls: Vec<u32> = TTL_CHOICES.iter().copied().filter(|t| *t >= d.min_ttl).collect();
            if !ttls.contains(&d.min_ttl) {
                ttls.insert(0, d.min_ttl);
            }
            let ttls: Vec<String> = ttls.iter().map(u32::to_string).collect();
            let mut tree = Json::new();
            for (code, _, _, father) in LINES {
                match father {
                    None => {
                        tree.entry(code.to_string()).or_insert_with(|| json!({}));
                    }
                    Some(f) => {
                        if let Some(Value::Object(children)) = tree.get_mut(*f) {
                            children.insert(code.to_string(), json!({}));
                        }
                    }
                }
            }
            m.insert("MinTtl".into(), self.num(u64::from(d.min_ttl)));
            m.insert("AvailableTtls".into(), json!({ "AvailableTtl": ttls }));
            m.insert("LineType".into(), "isp".into());
            m.insert("RegionLines".into(), false.into());
            m.insert("SlaveDns".into(), false.into());
            m.insert("RecordLines".into(), Self::lines_json());
            m.insert("RecordLineTreeJson".into(), Value::Object(tree).to_string().into());
        }
        Ok(m)
    }

    fn get_main_domain_name(&self, p: &Params) -> Result<Json, ApiError> {
        const TWO_LEVEL: &[&str] = &[
            "com.cn", "net.cn", "org.cn", "gov.cn", "edu.cn", "ac.cn", "co.uk", "org.uk", "com.hk", "com.tw", "co.jp",
        ];
        let input = need(p, "InputString")?.trim_end_matches('.').to_ascii_lowercase();
        if !valid_domain_syntax(&input.replace(['*', '_'], "x")) {
            return Err(bad_domain());
        }
        let labels: Vec<&str> = input.split('.').collect();
        let main = match self.split_fqdn(&input) {
            Some((zone, _)) => self.domains[zone].name.clone(),
            None => {
                let last2 = labels[labels.len() - 2..].join(".");
                let n = if TWO_LEVEL.contains(&last2.as_str()) { 3 } else { 2 };
                if labels.len() < n {
                    return Err(bad_domain());
                }
                labels[labels.len() - n..].join(".")
            }
        };
        let rr = if input == main { "@".to_string() } else { input[..input.len() - main.len() - 1].to_string() };
        let level = labels.len() - main.split('.').count() + 1;
        let mut m = Json::new();
        m.insert("DomainName".into(), main.into());
        m.insert("RR".into(), rr.into());
        m.insert("DomainLevel".into(), self.num(level as u64));
        Ok(m)
    }
}
