//! A test client that behaves like GoEdge's API node (EdgeAPI v1.4.1
//! `internal/dnsclients/provider_custom_http.go`; docs/protocol-notes.md, "GoEdge
//! / FlexCDN custom HTTP DNS"): POST to the URL as configured, compact JSON with
//! sorted top-level keys and records in struct order, Go's `<>&` escaping, the `Timestamp`/`Token`/`User-Agent`/
//! `Content-Type` headers, a reused keep-alive connection, success only on
//! exactly 200, and decoding as strict as Go's `json.Unmarshal` into
//! `dnstypes.Record` (`id` a string, `ttl` an int32).
//!
//! It also carries the parts of GoEdge's DNS task executor that the tests replay:
//! a cluster sync (`doCluster`), one website (`doServer`) and the ACME DNS-01
//! `Present` flow.
#![allow(dead_code)]

use serde_json::Value;
use sha1::{Digest, Sha1};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `dnstypes.Record`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    pub id: String,
    pub name: String,
    pub rtype: String,
    pub value: String,
    pub route: String,
    pub ttl: i32,
}

impl Record {
    /// A record as GoEdge builds one for AddRecord (`id` empty).
    pub fn new(name: &str, rtype: &str, value: &str, route: &str, ttl: i32) -> Record {
        Record {
            id: String::new(),
            name: name.into(),
            rtype: rtype.into(),
            value: value.into(),
            route: route.into(),
            ttl,
        }
    }
}

/// `dnstypes.Route`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub name: String,
    pub code: String,
}

/// Go's `json.Marshal` of a string: `<`, `>`, `&`, U+2028 and U+2029 escaped.
pub fn go_str(s: &str) -> String {
    serde_json::to_string(s)
        .unwrap()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// A record in struct order, as Go encodes `*dnstypes.Record`.
pub fn go_record(r: &Record) -> String {
    format!(
        "{{\"id\":{},\"name\":{},\"type\":{},\"value\":{},\"route\":{},\"ttl\":{}}}",
        go_str(&r.id),
        go_str(&r.name),
        go_str(&r.rtype),
        go_str(&r.value),
        go_str(&r.route),
        r.ttl
    )
}

/// A `maps.Map` body: keys sorted, values already encoded.
pub fn go_map(mut entries: Vec<(&str, String)>) -> String {
    entries.sort_by(|a, b| a.0.cmp(b.0));
    let inner: Vec<String> = entries.iter().map(|(k, v)| format!("{}:{}", go_str(k), v)).collect();
    format!("{{{}}}", inner.join(","))
}

/// Decodes one record the way Go's `json.Unmarshal` into `Record` would accept it.
pub fn decode_record(v: &Value) -> Result<Record, String> {
    let Value::Object(m) = v else { return Err(format!("cannot unmarshal {v} into Go value of type Record")) };
    let s = |k: &str| -> Result<String, String> {
        match m.get(k) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(format!("cannot unmarshal {other} into Go struct field Record.{k} of type string")),
        }
    };
    let ttl = match m.get("ttl") {
        None | Some(Value::Null) => 0,
        Some(Value::Number(n)) => n
            .as_i64()
            .filter(|t| i32::try_from(*t).is_ok())
            .ok_or_else(|| format!("cannot unmarshal number {n} into Go struct field Record.ttl of type int32"))?
            as i32,
        Some(other) => return Err(format!("cannot unmarshal {other} into Go struct field Record.ttl of type int32")),
    };
    Ok(Record { id: s("id")?, name: s("name")?, rtype: s("type")?, value: s("value")?, route: s("route")?, ttl })
}

fn decode_records(body: &[u8]) -> Result<Vec<Record>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items.iter().map(decode_record).collect(),
        other => Err(format!("cannot unmarshal {other} into Go value of type []*dnstypes.Record")),
    }
}

/// Go's `time.Now().Unix()` as the header string.
pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// `fmt.Sprintf("%x", sha1.Sum([]byte(secret+"@"+timestamp)))`.
pub fn token(secret: &str, ts: &str) -> String {
    use std::fmt::Write as _;
    Sha1::digest(format!("{secret}@{ts}").as_bytes()).iter().fold(String::new(), |mut hex, b| {
        let _ = write!(hex, "{b:02x}");
        hex
    })
}

/// The HTTP answer as the client saw it.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }
}

trait Io: Read + Write + Send {}
impl<T: Read + Write + Send> Io for T {}

/// The provider, as EdgeAPI holds it: URL, secret and one HTTP client.
pub struct GoEdge {
    pub url: String,
    pub secret: String,
    host: String,
    path: String,
    /// PEM CA to trust for https:// URLs (GoEdge skips verification; we verify).
    ca_pem: Option<Vec<u8>>,
    conn: Option<BufReader<Box<dyn Io>>>,
    /// Connections opened so far (keep-alive checks).
    pub connects: usize,
    /// Override of the timestamp (stale-timestamp tests).
    pub clock_offset: i64,
}

impl GoEdge {
    pub fn new(url: &str, secret: &str) -> GoEdge {
        let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
        let (host, path) = match rest.find('/') {
            Some(i) => (rest[..i].to_string(), rest[i..].to_string()),
            None => (rest.to_string(), "/".to_string()),
        };
        GoEdge {
            url: url.into(),
            secret: secret.into(),
            host,
            path,
            ca_pem: None,
            conn: None,
            connects: 0,
            clock_offset: 0,
        }
    }

    pub fn with_ca(mut self, ca_pem: &[u8]) -> GoEdge {
        self.ca_pem = Some(ca_pem.to_vec());
        self
    }

    fn connect(&mut self) -> std::io::Result<BufReader<Box<dyn Io>>> {
        let tcp = TcpStream::connect(&self.host)?;
        tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
        tcp.set_write_timeout(Some(Duration::from_secs(10)))?;
        self.connects += 1;
        let io: Box<dyn Io> = if self.url.starts_with("https://") {
            Box::new(tls_stream(tcp, self.ca_pem.as_deref().expect("CA for https"))?)
        } else {
            Box::new(tcp)
        };
        Ok(BufReader::new(io))
    }

    /// One raw POST with GoEdge's headers; `headers` replaces them when given.
    pub fn raw(&mut self, body: &str, headers: Option<Vec<(String, String)>>) -> Result<Reply, String> {
        let ts = (now() + self.clock_offset).to_string();
        let headers = headers.unwrap_or_else(|| {
            vec![
                ("User-Agent".into(), "Edge API/1.4.1".into()),
                ("Content-Length".into(), body.len().to_string()),
                ("Content-Type".into(), "application/json".into()),
                ("Timestamp".into(), ts.clone()),
                ("Token".into(), token(&self.secret, &ts)),
                ("Accept-Encoding".into(), "gzip".into()),
            ]
        });
        let mut req = format!("POST {} HTTP/1.1\r\nHost: {}\r\n", self.path, self.host);
        for (k, v) in &headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        // Like Go's transport: a reused connection that turns out closed is
        // retried once on a fresh one.
        for attempt in 0..2 {
            let reused = self.conn.is_some();
            let mut c = match self.conn.take() {
                Some(c) => c,
                None => self.connect().map_err(|e| format!("Post \"{}\": {e}", self.url))?,
            };
            let sent = c.get_mut().write_all(req.as_bytes()).and_then(|_| c.get_mut().flush());
            let reply = sent.map_err(|e| e.to_string()).and_then(|_| read_reply(&mut c));
            match reply {
                Ok((r, keep)) => {
                    if keep {
                        self.conn = Some(c);
                    }
                    return Ok(r);
                }
                Err(e) if reused && attempt == 0 && e.contains("closed") => continue,
                Err(e) => return Err(format!("Post \"{}\": {e}", self.url)),
            }
        }
        Err("unreachable".into())
    }

    /// `post()`: anything but exactly 200 is an error and the body is not read.
    pub fn post(&mut self, body: &str) -> Result<Vec<u8>, String> {
        let r = self.raw(body, None)?;
        if r.status != 200 {
            return Err(format!("status should be 200, but got '{}'", r.status));
        }
        Ok(r.body)
    }

    pub fn get_domains(&mut self) -> Result<Vec<String>, String> {
        let body = self.post(&go_map(vec![("action", go_str("GetDomains"))]))?;
        let v: Option<Vec<String>> = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        Ok(v.unwrap_or_default())
    }

    /// The pre-2023 client's GetDomains: an empty map.
    pub fn get_domains_old(&mut self) -> Result<Vec<String>, String> {
        let body = self.post("{}")?;
        let v: Option<Vec<String>> = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        Ok(v.unwrap_or_default())
    }

    pub fn get_records(&mut self, domain: &str) -> Result<Vec<Record>, String> {
        let body = self.post(&go_map(vec![("action", go_str("GetRecords")), ("domain", go_str(domain))]))?;
        decode_records(&body)
    }

    pub fn get_routes(&mut self, domain: &str) -> Result<Vec<Route>, String> {
        let body = self.post(&go_map(vec![("action", go_str("GetRoutes")), ("domain", go_str(domain))]))?;
        let v: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        let items = match v {
            Value::Null => return Ok(Vec::new()),
            Value::Array(a) => a,
            other => return Err(format!("cannot unmarshal {other} into []*Route")),
        };
        items
            .iter()
            .map(|r| match (r.get("name"), r.get("code")) {
                (Some(Value::String(n)), Some(Value::String(c))) => Ok(Route { name: n.clone(), code: c.clone() }),
                _ => Err(format!("bad route {r}")),
            })
            .collect()
    }

    fn query_body(action: &str, domain: &str, name: &str, rtype: &str) -> String {
        go_map(vec![
            ("action", go_str(action)),
            ("domain", go_str(domain)),
            ("name", go_str(name)),
            ("recordType", go_str(rtype)),
        ])
    }

    /// L111-121: empty or `null` is "not found", and so is an empty value.
    pub fn query_record(&mut self, domain: &str, name: &str, rtype: &str) -> Result<Option<Record>, String> {
        let body = self.post(&Self::query_body("QueryRecord", domain, name, rtype))?;
        if body.is_empty() || body == b"null" {
            return Ok(None);
        }
        let v: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        let r = decode_record(&v)?;
        Ok(if r.value.is_empty() { None } else { Some(r) })
    }

    pub fn query_records(&mut self, domain: &str, name: &str, rtype: &str) -> Result<Vec<Record>, String> {
        let body = self.post(&Self::query_body("QueryRecords", domain, name, rtype))?;
        if body.is_empty() || body == b"null" {
            return Ok(Vec::new());
        }
        decode_records(&body)
    }

    pub fn add_record(&mut self, domain: &str, r: &Record) -> Result<(), String> {
        self.post(&go_map(vec![
            ("action", go_str("AddRecord")),
            ("domain", go_str(domain)),
            ("newRecord", go_record(r)),
        ]))
        .map(|_| ())
    }

    pub fn update_record(&mut self, domain: &str, old: &Record, new: &Record) -> Result<(), String> {
        self.post(&go_map(vec![
            ("action", go_str("UpdateRecord")),
            ("domain", go_str(domain)),
            ("newRecord", go_record(new)),
            ("record", go_record(old)),
        ]))
        .map(|_| ())
    }

    pub fn delete_record(&mut self, domain: &str, r: &Record) -> Result<(), String> {
        self.post(&go_map(vec![
            ("action", go_str("DeleteRecord")),
            ("domain", go_str(domain)),
            ("record", go_record(r)),
        ]))
        .map(|_| ())
    }

    /// Raw bytes, no decoding, no trimming; any failure is "" (L179-187).
    pub fn default_route(&mut self) -> String {
        match self.post(&go_map(vec![("action", go_str("DefaultRoute"))])) {
            Ok(b) => String::from_utf8_lossy(&b).to_string(),
            Err(_) => String::new(),
        }
    }
}

fn read_reply(c: &mut BufReader<Box<dyn Io>>) -> Result<(Reply, bool), String> {
    let mut line = String::new();
    let n = c.read_line(&mut line).map_err(|e| e.to_string())?;
    if n == 0 {
        return Err("connection closed before a response".into());
    }
    let status: u16 =
        line.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| format!("malformed status line {line:?}"))?;
    let mut headers = Vec::new();
    loop {
        let mut l = String::new();
        c.read_line(&mut l).map_err(|e| e.to_string())?;
        let l = l.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .ok_or("no Content-Length")?;
    let mut body = vec![0u8; len];
    c.read_exact(&mut body).map_err(|e| e.to_string())?;
    let close = headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case("close"));
    if status == 100 {
        return read_reply(c);
    }
    Ok((Reply { status, headers, body }, !close))
}

fn tls_stream(
    tcp: TcpStream,
    ca_pem: &[u8],
) -> std::io::Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(c.map_err(std::io::Error::other)?).map_err(std::io::Error::other)?;
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("127.0.0.1").map_err(std::io::Error::other)?;
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(cfg), name).map_err(std::io::Error::other)?;
    Ok(rustls::StreamOwned::new(conn, tcp))
}

// ---------------------------------------------------------------------------
// The DNS task executor, reduced to what the tests replay.

/// A node of the cluster: its IP and the route codes chosen for it.
#[derive(Debug, Clone)]
pub struct Node {
    pub ip: String,
    pub routes: Vec<String>,
}

/// What one sync changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncResult {
    pub added: Vec<Record>,
    pub deleted: Vec<Record>,
}

/// `doCluster` (dns_task_executor.go L327-540): node A/AAAA records keyed by
/// `route@value`, website CNAMEs matched by value with the trailing dot, stale
/// ones deleted, nothing ever updated in place.
pub fn sync_cluster(
    ge: &mut GoEdge,
    domain: &str,
    dns_name: &str,
    nodes: &[Node],
    servers: &[&str],
    ttl: i32,
) -> Result<SyncResult, String> {
    let records = ge.get_records(domain)?;
    let mut result = SyncResult::default();
    let default_route = ge.default_route();

    // Node records.
    let mut wanted: Vec<(String, Record)> = Vec::new();
    for n in nodes {
        let mut routes = n.routes.clone();
        routes.sort();
        if routes.is_empty() {
            routes.push(default_route.clone());
        }
        let rtype = if n.ip.contains(':') { "AAAA" } else { "A" };
        for route in routes {
            wanted.push((format!("{route}@{}", n.ip), Record::new(dns_name, rtype, &n.ip, &route, ttl)));
        }
    }
    let existing: Vec<&Record> =
        records.iter().filter(|r| r.name == dns_name && (r.rtype == "A" || r.rtype == "AAAA")).collect();
    for (key, rec) in &wanted {
        if !existing.iter().any(|r| format!("{}@{}", r.route, r.value) == *key) {
            ge.add_record(domain, rec)?;
            result.added.push(rec.clone());
        }
    }
    for r in &existing {
        let key = format!("{}@{}", r.route, r.value);
        if !wanted.iter().any(|(k, _)| *k == key) {
            ge.delete_record(domain, r)?;
            result.deleted.push((*r).clone());
        }
    }

    // Website CNAMEs: `Route: ""` ("注意这里为空，需要在执行过程中获取默认值").
    let cluster_domain = format!("{dns_name}.{domain}.");
    let cnames: Vec<&Record> = records.iter().filter(|r| r.rtype == "CNAME" && r.value == cluster_domain).collect();
    for s in servers {
        if !cnames.iter().any(|r| r.name == *s) {
            let rec = Record::new(s, "CNAME", &cluster_domain, "", ttl);
            ge.add_record(domain, &rec)?;
            result.added.push(rec);
        }
    }
    for r in &cnames {
        if !servers.contains(&r.name.as_str()) {
            ge.delete_record(domain, r)?;
            result.deleted.push((*r).clone());
        }
    }
    Ok(result)
}

/// `doServer`: QueryRecord of the website's CNAME; fix it if it is missing or wrong.
pub fn sync_server(ge: &mut GoEdge, domain: &str, dns_name: &str, server: &str, ttl: i32) -> Result<bool, String> {
    let want = format!("{dns_name}.{domain}.");
    let route = ge.default_route();
    if let Some(r) = ge.query_record(domain, server, "CNAME")? {
        if r.value == want || r.value == want.trim_end_matches('.') {
            return Ok(false);
        }
        ge.delete_record(domain, &r)?;
    }
    ge.add_record(domain, &Record::new(server, "CNAME", &want, &route, ttl))?;
    Ok(true)
}

/// ACME DNS-01 `Present`: delete every TXT of the name, then add the new one.
pub fn acme_present(ge: &mut GoEdge, domain: &str, name: &str, value: &str) -> Result<usize, String> {
    let old = ge.query_records(domain, name, "TXT")?;
    for r in &old {
        ge.delete_record(domain, r)?;
    }
    let route = ge.default_route();
    ge.add_record(domain, &Record::new(name, "TXT", value, &route, 0))?;
    Ok(old.len())
}
