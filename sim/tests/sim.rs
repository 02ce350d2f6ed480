//! Black-box tests of the simulator over real sockets. The signing helper here is
//! a separate, table-driven implementation (not `alidns_sim::sign`), checked
//! against the published vectors of the API notes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use alidns_sim::{Fault, Quirks, Sim};
use base64::Engine as _;
use hmac::{Hmac, KeyInit as _, Mac as _};
use serde_json::Value;

// ---------------------------------------------------------------- test client

/// Percent-encoding per RFC 3986 via an explicit table of unreserved bytes.
fn pct(s: &str) -> String {
    const UNRESERVED: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~";
    s.bytes()
        .map(|b| if UNRESERVED.contains(b as char) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

fn sts_of(method: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().filter(|(k, _)| k != "Signature").collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let canon = sorted.iter().map(|(k, v)| format!("{}={}", pct(k), pct(v))).collect::<Vec<_>>().join("&");
    [method.to_string(), pct("/"), pct(&canon)].join("&")
}

fn hmac_b64(secret: &str, msg: &str) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(format!("{secret}&").as_bytes()).unwrap();
    mac.update(msg.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// `yyyy-MM-ddTHH:mm:ssZ` for Unix seconds (civil-from-days).
fn iso(t: i64) -> String {
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60)
}

fn nonce() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!("n{}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed), Instant::now().elapsed().as_nanos())
}

/// A parsed HTTP response.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    fn code(&self) -> String {
        self.json()["Code"].as_str().unwrap_or("").to_string()
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

fn parse_response(raw: &[u8]) -> Option<(Resp, usize)> {
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..head_end]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect();
    let len: usize = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("content-length"))?.1.parse().ok()?;
    let start = head_end + 4;
    if raw.len() < start + len {
        return None;
    }
    let body = String::from_utf8(raw[start..start + len].to_vec()).unwrap();
    Some((Resp { status, headers, body }, start + len))
}

/// Sends raw bytes on a fresh connection and reads until EOF. `None` if the
/// server closed without a (complete) response.
fn send_raw(port: u16, raw: &[u8]) -> Option<Resp> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(raw).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    parse_response(&buf).map(|(r, _)| r)
}

/// A client with one key: signs with the helper above.
struct Client {
    port: u16,
    id: String,
    secret: String,
    token: Option<String>,
    clock: i64,
}

impl Client {
    fn new(sim: &Sim) -> Client {
        Client { port: sim.port(), id: "testid".into(), secret: "testsecret".into(), token: None, clock: 0 }
    }

    /// Common parameters + `extra`, signed for `method`.
    fn sign(&self, method: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        let mut p: Vec<(String, String)> = vec![
            ("Format".into(), "JSON".into()),
            ("Version".into(), "2015-01-09".into()),
            ("AccessKeyId".into(), self.id.clone()),
            ("SignatureMethod".into(), "HMAC-SHA1".into()),
            ("SignatureVersion".into(), "1.0".into()),
            ("SignatureNonce".into(), nonce()),
            ("Timestamp".into(), iso(now + self.clock)),
        ];
        if let Some(t) = &self.token {
            p.push(("SecurityToken".into(), t.clone()));
        }
        for (k, v) in extra {
            p.retain(|(name, _)| name != k);
            p.push((k.to_string(), v.to_string()));
        }
        let sig = hmac_b64(&self.secret, &sts_of(method, &p));
        p.push(("Signature".into(), sig));
        p
    }

    fn get(&self, action: &str, extra: &[(&str, &str)]) -> Resp {
        let mut all = vec![("Action", action)];
        all.extend_from_slice(extra);
        let p = self.sign("GET", &all);
        send_params(self.port, "GET", &p, false)
    }

    fn post_form(&self, action: &str, extra: &[(&str, &str)]) -> Resp {
        let mut all = vec![("Action", action)];
        all.extend_from_slice(extra);
        let p = self.sign("POST", &all);
        send_params(self.port, "POST", &p, true)
    }
}

fn encode_pairs(p: &[(String, String)]) -> String {
    p.iter().map(|(k, v)| format!("{}={}", pct(k), pct(v))).collect::<Vec<_>>().join("&")
}

fn send_params(port: u16, method: &str, p: &[(String, String)], in_body: bool) -> Resp {
    let q = encode_pairs(p);
    let raw = if in_body {
        format!(
            "{method} / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{q}",
            q.len()
        )
    } else {
        format!("{method} /?{q} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    };
    send_raw(port, raw.as_bytes()).expect("a response")
}

fn sim_with_zone() -> (Sim, Client) {
    let sim = Sim::start();
    sim.add_domain("example.com");
    let c = Client::new(&sim);
    (sim, c)
}

// ---------------------------------------------------------------- signatures

/// Parameters of an `AddDomainRecord` vector computed with the official SDKs' signing
/// code (the same one as `src/sign.rs`'s `v6a_add_apex_a_record`).
fn v6a() -> Vec<(String, String)> {
    [
        ("AccessKeyId", "testid"),
        ("Format", "JSON"),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureNonce", "5f4dcc3b5aa765d61d8327deb882cf99"),
        ("SignatureVersion", "1.0"),
        ("Timestamp", "2024-01-02T03:04:05Z"),
        ("Version", "2015-01-09"),
        ("Action", "AddDomainRecord"),
        ("DomainName", "example.com"),
        ("RR", "@"),
        ("Type", "A"),
        ("Value", "203.0.113.7"),
        ("TTL", "600"),
        ("Line", "default"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

const V6A_STS: &str = "POST&%2F&AccessKeyId%3Dtestid%26Action%3DAddDomainRecord%26DomainName%3Dexample.com%26Format%3DJSON%26Line%3Ddefault%26RR%3D%2540%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D5f4dcc3b5aa765d61d8327deb882cf99%26SignatureVersion%3D1.0%26TTL%3D600%26Timestamp%3D2024-01-02T03%253A04%253A05Z%26Type%3DA%26Value%3D203.0.113.7%26Version%3D2015-01-09";
const V6A_SIG: &str = "pqPiuFyOHb+oiHlbLPQ7velfri0=";
const V6A_TIME: i64 = 1_704_164_645; // 2024-01-02T03:04:05Z

fn pin_clock(sim: &Sim, at: i64) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    sim.set_clock_offset(at - now);
}

#[test]
fn helper_matches_published_vectors() {
    assert_eq!(sts_of("POST", &v6a()), V6A_STS);
    assert_eq!(hmac_b64("testsecret", V6A_STS), V6A_SIG);
    assert_eq!(alidns_sim::sign::string_to_sign("POST", &v6a().into_iter().collect()), V6A_STS);
    assert_eq!(iso(V6A_TIME), "2024-01-02T03:04:05Z");
}

#[test]
fn accepts_published_vector_v6a_in_query_and_in_form_body() {
    let (sim, _) = sim_with_zone();
    pin_clock(&sim, V6A_TIME + 30);
    let mut p = v6a();
    p.push(("Signature".into(), V6A_SIG.into()));
    let r = send_params(sim.port(), "POST", &p, false);
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.json()["RecordId"].as_str().expect("RecordId is a string").to_string();
    assert!(r.json()["RequestId"].is_string());
    assert_eq!(r.header("Content-Type"), Some("application/json;charset=utf-8"));
    assert!(r.header("x-acs-request-id").is_some());
    let date = r.header("Date").unwrap();
    assert!(date.starts_with("Tue, 02 Jan 2024 03:0"), "{date}");
    assert!(date.ends_with(" GMT"));
    let recs = sim.records("example.com");
    assert_eq!(recs.len(), 1);
    assert_eq!((recs[0].id.as_str(), recs[0].rr.as_str(), recs[0].rtype.as_str()), (id.as_str(), "@", "A"));
    assert_eq!((recs[0].value.as_str(), recs[0].ttl, recs[0].line.as_str()), ("203.0.113.7", 600, "default"));

    // Same vector as a form body on a fresh simulator (the nonce is spent here).
    let (sim2, _) = sim_with_zone();
    pin_clock(&sim2, V6A_TIME - 30);
    let r = send_params(sim2.port(), "POST", &p, true);
    assert_eq!(r.status, 200, "{}", r.body);
    let call = &sim2.calls()[0];
    assert_eq!(call.action, "AddDomainRecord");
    assert_eq!(call.method, "POST");
    assert_eq!(call.params.get("RR").map(String::as_str), Some("@"));
    assert!(!call.params.contains_key("Signature"));
    assert_eq!((call.status, call.code.clone()), (200, None));

    // ... and signed for POST but sent as GET: the method is part of the string to sign.
    let (sim3, _) = sim_with_zone();
    pin_clock(&sim3, V6A_TIME);
    let r = send_params(sim3.port(), "GET", &p, false);
    assert_eq!((r.status, r.code()), (400, "SignatureDoesNotMatch".to_string()));
}

#[test]
fn bad_signature_quotes_server_string_to_sign() {
    let (sim, _) = sim_with_zone();
    pin_clock(&sim, V6A_TIME);
    let mut p = v6a();
    p.push(("Signature".into(), hmac_b64("wrongsecret", V6A_STS)));
    let r = send_params(sim.port(), "POST", &p, false);
    assert_eq!(r.status, 400);
    let j = r.json();
    assert_eq!(j["Code"], "SignatureDoesNotMatch");
    assert_eq!(
        j["Message"].as_str().unwrap(),
        format!("Specified signature is not matched with our calculation. server string to sign is:{V6A_STS}")
    );
    assert_eq!(j["HostId"], "alidns.aliyuncs.com");
    assert!(j["RequestId"].is_string() && j["Recommend"].is_string());
    assert_eq!(r.header("x-acs-request-id"), j["RequestId"].as_str());
    assert!(sim.records("example.com").is_empty());
    assert_eq!(sim.calls()[0].code.as_deref(), Some("SignatureDoesNotMatch"));

    // A raw `+` in the Signature is decoded as a space: rejected, like the real service.
    let (p, sig) = (0..)
        .map(|i| {
            let mut p = v6a();
            p.retain(|(k, _)| k != "SignatureNonce");
            p.push(("SignatureNonce".into(), format!("plus-{i}")));
            let sig = hmac_b64("testsecret", &sts_of("GET", &p));
            (p, sig)
        })
        .find(|(_, sig)| sig.contains('+'))
        .unwrap();
    let q = format!("{}&Signature={}", encode_pairs(&p), sig.replace('/', "%2F").replace('=', "%3D"));
    let r =
        send_raw(sim.port(), format!("GET /?{q} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).unwrap();
    assert_eq!(r.code(), "SignatureDoesNotMatch");
    // Properly encoded, the same signature passes.
    let q = format!("{}&Signature={}", encode_pairs(&p), pct(&sig));
    let r =
        send_raw(sim.port(), format!("GET /?{q} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn nonce_reuse_is_rejected() {
    let (sim, c) = sim_with_zone();
    let p = c.sign("GET", &[("Action", "DescribeDomains")]);
    assert_eq!(send_params(sim.port(), "GET", &p, false).status, 200);
    let r = send_params(sim.port(), "GET", &p, false);
    assert_eq!((r.status, r.code()), (400, "SignatureNonceUsed".to_string()));
    assert_eq!(c.get("DescribeDomains", &[]).status, 200);
    // A rejected request does not burn its nonce.
    let mut bad = c.sign("GET", &[("Action", "DescribeDomains")]);
    let good = bad.clone();
    bad.last_mut().unwrap().1 = "AAAA".into();
    assert_eq!(send_params(sim.port(), "GET", &bad, false).code(), "SignatureDoesNotMatch");
    assert_eq!(send_params(sim.port(), "GET", &good, false).status, 200);
    assert_eq!(sim.count("DescribeDomains"), 5);
    assert_eq!(sim.count("*"), 5);
}

#[test]
fn timestamp_window_follows_the_clock_offset() {
    let (sim, mut c) = sim_with_zone();
    assert_eq!(c.get("DescribeDomains", &[]).status, 200);
    for (skew, ok) in [(16 * 60, false), (-16 * 60, false), (14 * 60, true), (-14 * 60, true)] {
        sim.set_clock_offset(skew);
        let r = c.get("DescribeDomains", &[]);
        if ok {
            assert_eq!(r.status, 200, "skew {skew}: {}", r.body);
        } else {
            assert_eq!((r.status, r.code()), (400, "InvalidTimeStamp.Expired".to_string()), "skew {skew}");
            assert_eq!(r.json()["Message"], "Specified time stamp or date value is expired.");
        }
        let date = r.header("Date").unwrap().to_string();
        let want = iso(sim.now());
        let day: i64 = want[8..10].parse().unwrap();
        assert!(date.contains(&format!(" {day:02} ")), "Date {date} vs server clock {want}");
    }
    // The client following the server clock is fine again.
    sim.set_clock_offset(3600);
    c.clock = 3600;
    assert_eq!(c.get("DescribeDomains", &[]).status, 200);
    let r = c.get("DescribeDomains", &[("Timestamp", "2024-01-02 03:04:05")]);
    assert_eq!((r.status, r.code()), (400, "InvalidTimeStamp.Format".to_string()));
}

#[test]
fn common_parameter_errors() {
    let (sim, c) = sim_with_zone();
    for name in ["Format", "AccessKeyId", "SignatureMethod", "SignatureVersion", "SignatureNonce", "Timestamp"] {
        let mut p = c.sign("GET", &[("Action", "DescribeDomains")]);
        p.retain(|(k, _)| k != name);
        let r = send_params(sim.port(), "GET", &p, false);
        assert_eq!((r.status, r.code()), (400, "MissingParameter".to_string()), "{name}");
        assert!(r.json()["Message"].as_str().unwrap().contains(&format!("\"{name}\"")));
    }
    let mut p = c.sign("GET", &[("Action", "DescribeDomains")]);
    p.pop();
    assert_eq!(send_params(sim.port(), "GET", &p, false).code(), "MissingParameter");

    let r = c.get("DescribeDomains", &[("Version", "2014-05-26")]);
    assert_eq!((r.status, r.code()), (400, "InvalidVersion".to_string()));
    let r = c.get("NoSuchAction", &[]);
    assert_eq!((r.status, r.code()), (404, "InvalidAction.NotFound".to_string()));
    let r = c.get("DescribeDomains", &[("SignatureMethod", "HMAC-SHA256")]);
    assert_eq!(r.status, 400);
    let r = c.get("DescribeDomains", &[("Format", "json")]);
    assert_eq!(r.status, 200, "Format is case-insensitive: {}", r.body);

    let mut other = Client::new(&sim);
    other.id = "nobody".into();
    let r = other.get("DescribeDomains", &[]);
    assert_eq!((r.status, r.code()), (404, "InvalidAccessKeyId.NotFound".to_string()));
    assert_eq!(r.json()["Message"], "Specified access key is not found.");

    sim.add_key("second", "s3cr3t");
    other.id = "second".into();
    other.secret = "s3cr3t".into();
    assert_eq!(other.get("DescribeDomains", &[]).status, 200);

    // Every request is recorded, including rejected ones.
    assert_eq!(sim.count(""), 13);
    assert_eq!(sim.count("NoSuchAction"), 1);
    sim.reset_calls();
    assert_eq!((sim.count("*"), sim.calls().len()), (0, 0));
}

#[test]
fn sts_keys_need_the_matching_token() {
    let (sim, mut c) = sim_with_zone();
    sim.add_key_with_token("STS.abc", "stssecret", "CAIS+token/with=chars");
    c.id = "STS.abc".into();
    c.secret = "stssecret".into();
    assert_eq!(c.get("DescribeDomains", &[]).code(), "MissingSecurityToken");
    c.token = Some("other".into());
    assert_eq!(c.get("DescribeDomains", &[]).code(), "InvalidSecurityToken.Malformed");
    c.token = Some("CAIS+token/with=chars".into());
    let r = c.post_form("DescribeDomains", &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(sim.calls().last().unwrap().params["SecurityToken"], "CAIS+token/with=chars");
}

// ---------------------------------------------------------------- records

#[test]
fn describe_domain_records_json_shape_and_quirks() {
    let (sim, c) = sim_with_zone();
    let id = sim.add_record("example.com", "www", "a", "192.0.2.1", 600, "default");
    sim.add_record("example.com", "@", "MX", "mx.example.com", 600, "default");
    let r = c.get("DescribeDomainRecords", &[("DomainName", "example.com")]);
    assert_eq!(r.status, 200, "{}", r.body);
    let j = r.json();
    assert_eq!(
        (j["TotalCount"].as_u64(), j["PageNumber"].as_u64(), j["PageSize"].as_u64()),
        (Some(2), Some(1), Some(20))
    );
    let recs = j["DomainRecords"]["Record"].as_array().unwrap();
    assert_eq!(recs.len(), 2);
    // Newest first.
    assert_eq!(recs[0]["Type"], "MX");
    assert_eq!(recs[0]["Priority"], 10);
    let a = &recs[1];
    assert_eq!(a["RecordId"], Value::String(id.clone()));
    assert!(id.parse::<u64>().unwrap() > 1 << 53);
    assert_eq!(a["DomainName"], "example.com");
    assert_eq!(
        (a["RR"].as_str(), a["Type"].as_str(), a["Value"].as_str()),
        (Some("www"), Some("A"), Some("192.0.2.1"))
    );
    assert_eq!(a["TTL"], 600);
    assert_eq!(a["Line"], "default");
    assert_eq!(a["Status"], "Enable");
    assert_eq!(a["Locked"], false);
    assert!(a.get("Priority").is_none());
    assert!(a["CreateTimestamp"].is_u64());

    sim.set_quirks(Quirks { numbers_as_strings: true, status_upper: true });
    let j = c.get("DescribeDomainRecords", &[("DomainName", "example.com"), ("Direction", "ASC")]).json();
    assert_eq!(j["TotalCount"], "2");
    assert_eq!(j["PageSize"], "20");
    let a = &j["DomainRecords"]["Record"][0];
    assert_eq!((a["TTL"].as_str(), a["Status"].as_str()), (Some("600"), Some("ENABLE")));
    assert_eq!(j["DomainRecords"]["Record"][1]["Priority"], "10");
}

#[test]
fn paging_limits() {
    let (sim, c) = sim_with_zone();
    for i in 0..25 {
        sim.add_record("example.com", &format!("h{i:02}"), "A", "192.0.2.1", 600, "default");
    }
    let mut seen = Vec::new();
    for page in 1..=3 {
        let j = c
            .get(
                "DescribeDomainRecords",
                &[("DomainName", "example.com"), ("PageSize", "10"), ("PageNumber", &page.to_string())],
            )
            .json();
        assert_eq!(j["TotalCount"], 25);
        assert_eq!(j["PageNumber"], page);
        for r in j["DomainRecords"]["Record"].as_array().unwrap() {
            seen.push(r["RR"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(seen.len(), 25);
    assert_eq!(seen[0], "h24");
    let j = c.get("DescribeDomainRecords", &[("DomainName", "example.com"), ("PageNumber", "9")]).json();
    assert_eq!(j["DomainRecords"]["Record"].as_array().unwrap().len(), 0);
    assert_eq!(j["TotalCount"], 25);
    assert_eq!(c.get("DescribeDomainRecords", &[("DomainName", "example.com"), ("PageSize", "500")]).status, 200);
    let r = c.get("DescribeDomainRecords", &[("DomainName", "example.com"), ("PageSize", "501")]);
    assert_eq!((r.status, r.code()), (400, "InvalidParameter".to_string()));
    assert_eq!(c.get("DescribeSubDomainRecords", &[("SubDomain", "h01.example.com"), ("PageSize", "500")]).status, 200);
    assert_eq!(c.get("DescribeDomains", &[("PageSize", "100")]).status, 200);
    assert_eq!(c.get("DescribeDomains", &[("PageSize", "101")]).code(), "InvalidParameter");
    assert_eq!(c.get("DescribeDomains", &[("PageNumber", "0")]).code(), "InvalidParameter");
}

#[test]
fn add_update_delete_rules() {
    let (sim, c) = sim_with_zone();
    let add = |extra: &[(&str, &str)]| {
        let mut p = vec![("DomainName", "example.com"), ("RR", "home"), ("Type", "A"), ("Value", "192.0.2.1")];
        for e in extra {
            p.retain(|(k, _)| *k != e.0);
            p.push(*e);
        }
        c.post_form("AddDomainRecord", &p)
    };
    let r = add(&[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.json()["RecordId"].as_str().unwrap().to_string();
    let rec = sim.record(&id).unwrap();
    assert_eq!((rec.ttl, rec.line.as_str(), rec.status.as_str()), (600, "default", "Enable"));

    let r = add(&[]);
    assert_eq!((r.status, r.code()), (400, "DomainRecordDuplicate".to_string()));
    assert_eq!(r.json()["Message"], "The DNS record already exists.");
    assert_eq!(add(&[("RR", "HOME"), ("Type", "a")]).code(), "DomainRecordDuplicate");
    assert_eq!(add(&[("Line", "telecom")]).status, 200, "another line is another record");
    assert_eq!(add(&[("Type", "CNAME"), ("Value", "target.example.net")]).code(), "DomainRecordConflict");
    assert_eq!(add(&[("Value", "192.0.2.300")]).code(), "InvalidParameter");
    assert_eq!(add(&[("Type", "AAAA"), ("Value", "192.0.2.1")]).code(), "InvalidParameter");
    assert_eq!(add(&[("RR", "bad rr")]).code(), "InvalidRR.Format");
    assert_eq!(add(&[("Line", "mars")]).code(), "InvalidParameter");
    assert_eq!(add(&[("DomainName", "example.org")]).code(), "InvalidDomainName.NoExist");
    assert_eq!(add(&[("DomainName", "sub.example.com")]).code(), "InvalidDomainName.Format");
    let r = add(&[("RR", "ttl"), ("TTL", "60")]);
    assert_eq!((r.status, r.code()), (400, "QuotaExceeded.TTL".to_string()));
    assert_eq!(r.json()["Message"], "The specified TTL is invalid. A valid TTL must be in the range of 600 to 86400.");
    assert_eq!(add(&[("RR", "ttl"), ("TTL", "86401")]).code(), "QuotaExceeded.TTL");
    sim.set_min_ttl("example.com", 60);
    assert_eq!(add(&[("RR", "ttl"), ("TTL", "60")]).status, 200);
    let r = add(&[("RR", "ttl2"), ("TTL", "59")]);
    assert!(r.json()["Message"].as_str().unwrap().contains("range of 60 to 86400"));
    assert_eq!(add(&[("RR", "mx"), ("Type", "MX"), ("Value", "mail.example.com")]).code(), "MissingParameter");
    assert_eq!(add(&[("RR", "mx"), ("Type", "MX"), ("Value", "mail.example.com"), ("Priority", "5")]).status, 200);

    let update = |extra: &[(&str, &str)]| {
        let mut p = vec![("RecordId", id.as_str()), ("RR", "home"), ("Type", "A"), ("Value", "192.0.2.1")];
        for e in extra {
            p.retain(|(k, _)| *k != e.0);
            p.push(*e);
        }
        c.get("UpdateDomainRecord", &p)
    };
    let r = update(&[]);
    assert_eq!((r.status, r.code()), (400, "DomainRecordDuplicate".to_string()), "no-op update");
    assert_eq!(update(&[("TTL", "600"), ("Line", "default")]).code(), "DomainRecordDuplicate");
    assert_eq!(update(&[("Line", "telecom")]).code(), "DomainRecordDuplicate", "would duplicate the telecom record");
    let r = update(&[("Value", "192.0.2.2"), ("TTL", "1200")]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["RecordId"], Value::String(id.clone()));
    assert_eq!((sim.record(&id).unwrap().value.as_str(), sim.record(&id).unwrap().ttl), ("192.0.2.2", 1200));
    // Omitted TTL resets to 600 (documented choice), so this is a change, not a no-op.
    assert_eq!(update(&[("Value", "192.0.2.2")]).status, 200);
    assert_eq!(sim.record(&id).unwrap().ttl, 600);
    let r = c.get("UpdateDomainRecord", &[("RecordId", "123"), ("RR", "x"), ("Type", "A"), ("Value", "192.0.2.9")]);
    assert_eq!((r.status, r.code()), (400, "DomainRecordNotBelongToUser".to_string()));
    assert_eq!(r.json()["Message"], "The domain record does not belong to this user.");

    let r = c.get("DescribeDomainRecordInfo", &[("RecordId", &id)]);
    let j = r.json();
    assert_eq!(
        (j["RecordId"].as_str(), j["Value"].as_str(), j["TTL"].as_u64()),
        (Some(id.as_str()), Some("192.0.2.2"), Some(600))
    );
    assert_eq!(j["DomainName"], "example.com");

    let r = c.get("SetDomainRecordStatus", &[("RecordId", &id), ("Status", "DISABLE")]);
    assert_eq!(r.json()["Status"], "Disable");
    assert_eq!(sim.record(&id).unwrap().status, "Disable");
    let j = c.get("DescribeDomainRecords", &[("DomainName", "example.com"), ("Status", "Disable")]).json();
    assert_eq!(j["TotalCount"], 1);

    sim.set_locked(&id, true);
    assert_eq!(c.get("DeleteDomainRecord", &[("RecordId", &id)]).code(), "DomainRecordLocked");
    sim.set_locked(&id, false);
    assert_eq!(c.get("DeleteDomainRecord", &[("RecordId", &id)]).json()["RecordId"], Value::String(id.clone()));
    assert_eq!(c.get("DeleteDomainRecord", &[("RecordId", &id)]).code(), "DomainRecordNotBelongToUser");
    assert_eq!(c.get("DescribeDomainRecordInfo", &[("RecordId", &id)]).code(), "DomainRecordNotBelongToUser");

    sim.add_record("example.com", "multi", "A", "192.0.2.1", 600, "default");
    sim.add_record("example.com", "multi", "A", "192.0.2.2", 600, "default");
    sim.add_record("example.com", "multi", "TXT", "hello", 600, "default");
    let j = c.get("DeleteSubDomainRecords", &[("DomainName", "example.com"), ("RR", "multi"), ("Type", "a")]).json();
    assert_eq!((j["RR"].as_str(), j["TotalCount"].as_str()), (Some("multi"), Some("2")));
    assert_eq!(sim.records("example.com").iter().filter(|r| r.rr == "multi").count(), 1);
}

#[test]
fn sub_domain_lookup_uses_the_longest_hosted_zone() {
    let (sim, c) = sim_with_zone();
    sim.add_domain("sub.example.com");
    sim.add_record("example.com", "@", "A", "192.0.2.1", 600, "default");
    sim.add_record("example.com", "a.sub", "A", "192.0.2.2", 600, "default");
    sim.add_record("sub.example.com", "a", "A", "192.0.2.3", 600, "default");
    sim.add_record("sub.example.com", "a", "AAAA", "2001:db8::1", 600, "default");
    let j = c.get("DescribeSubDomainRecords", &[("SubDomain", "a.sub.example.com")]).json();
    assert_eq!(j["TotalCount"], 2);
    assert_eq!(j["DomainRecords"]["Record"][0]["DomainName"], "sub.example.com");
    let j = c.get("DescribeSubDomainRecords", &[("SubDomain", "a.sub.example.com"), ("Type", "aaaa")]).json();
    assert_eq!(j["TotalCount"], 1);
    assert_eq!(j["DomainRecords"]["Record"][0]["Value"], "2001:db8::1");
    let j =
        c.get("DescribeSubDomainRecords", &[("SubDomain", "a.sub.example.com"), ("DomainName", "example.com")]).json();
    assert_eq!(j["DomainRecords"]["Record"][0]["Value"], "192.0.2.2");
    let j = c.get("DescribeSubDomainRecords", &[("SubDomain", "example.com")]).json();
    assert_eq!((j["TotalCount"].as_u64(), j["DomainRecords"]["Record"][0]["RR"].as_str()), (Some(1), Some("@")));
    let j = c.get("DescribeSubDomainRecords", &[("SubDomain", "nothing.example.com")]).json();
    assert_eq!(j["TotalCount"], 0);
    assert_eq!(
        c.get("DescribeSubDomainRecords", &[("SubDomain", "www.example.org")]).code(),
        "InvalidDomainName.NoExist"
    );
    assert_eq!(c.get("DescribeSubDomainRecords", &[]).code(), "MissingParameter");
}

#[test]
fn search_modes() {
    let (sim, c) = sim_with_zone();
    sim.add_record("example.com", "www", "A", "192.0.2.1", 600, "default");
    sim.add_record("example.com", "www2", "A", "192.0.2.2", 600, "telecom");
    sim.add_record("example.com", "mail", "TXT", "www here", 600, "default");
    let total = |extra: &[(&str, &str)]| {
        let mut p = vec![("DomainName", "example.com")];
        p.extend_from_slice(extra);
        c.get("DescribeDomainRecords", &p).json()["TotalCount"].as_u64().unwrap()
    };
    assert_eq!(total(&[]), 3);
    assert_eq!(total(&[("KeyWord", "www")]), 3);
    assert_eq!(total(&[("KeyWord", "www"), ("SearchMode", "EXACT")]), 1);
    assert_eq!(total(&[("RRKeyWord", "WW")]), 2);
    assert_eq!(total(&[("RRKeyWord", "www"), ("SearchMode", "COMBINATION")]), 1);
    assert_eq!(total(&[("TypeKeyWord", "txt"), ("SearchMode", "ADVANCED")]), 1);
    assert_eq!(total(&[("ValueKeyWord", "192.0.2")]), 2);
    assert_eq!(total(&[("Type", "A"), ("Line", "telecom")]), 1);
    assert_eq!(total(&[("KeyWord", "www"), ("SearchMode", "LIKE"), ("Type", "TXT")]), 3, "LIKE ignores Type");
}

#[test]
fn domain_info_lines_and_main_domain() {
    let (sim, c) = sim_with_zone();
    sim.add_domain("other.cn");
    let j = c.get("DescribeDomains", &[]).json();
    assert_eq!(j["TotalCount"], 2);
    let d = &j["Domains"]["Domain"][1];
    assert_eq!(d["DomainName"], "example.com");
    assert!(d["DomainId"].is_string());
    assert_eq!(c.get("DescribeDomains", &[("KeyWord", "EXAMPLE")]).json()["TotalCount"], 1);

    let j = c.get("DescribeDomainInfo", &[("DomainName", "example.com")]).json();
    assert_eq!(j["VersionCode"], "mianfei");
    assert!(j.get("MinTtl").is_none());
    sim.set_min_ttl("example.com", 60);
    let j = c.get("DescribeDomainInfo", &[("DomainName", "example.com"), ("NeedDetailAttributes", "true")]).json();
    assert_eq!(j["MinTtl"], 60);
    let ttls = j["AvailableTtls"]["AvailableTtl"].as_array().unwrap();
    assert_eq!(ttls[0], "60");
    assert!(ttls.iter().all(Value::is_string));
    assert!(j["RecordLineTreeJson"].as_str().unwrap().starts_with('{'));
    assert_eq!(c.get("DescribeDomainInfo", &[("DomainName", "nope.com")]).code(), "InvalidDomainName.NoExist");

    let j = c.get("DescribeSupportLines", &[]).json();
    let lines = j["RecordLines"]["RecordLine"].as_array().unwrap();
    let find = |code: &str| lines.iter().find(|l| l["LineCode"] == code).cloned().unwrap();
    assert_eq!(find("default")["LineName"], "默认");
    assert_eq!(find("telecom")["LineDisplayName"], "电信");
    assert_eq!(find("cn_unicom_shanxi")["FatherCode"], "unicom");
    assert!(find("oversea").get("FatherCode").is_none());

    let j = c.get("GetMainDomainName", &[("InputString", "www.a.example.com")]).json();
    assert_eq!(
        (j["DomainName"].as_str(), j["RR"].as_str(), j["DomainLevel"].as_u64()),
        (Some("example.com"), Some("www.a"), Some(3))
    );
    let j = c.get("GetMainDomainName", &[("InputString", "x.example.com.cn")]).json();
    assert_eq!((j["DomainName"].as_str(), j["RR"].as_str()), (Some("example.com.cn"), Some("x")));
}

// ---------------------------------------------------------------- faults & transport

#[test]
fn faults_are_consumed_in_order_and_filtered_by_action() {
    let (sim, c) = sim_with_zone();
    sim.inject(Fault::Throttle { count: 2, action: Some("DescribeSubDomainRecords".into()) });
    sim.inject(Fault::ServerError { count: 1, status: 503, action: None });
    let r = c.get("DescribeDomains", &[]);
    assert_eq!((r.status, r.code()), (503, "ServiceUnavailable".to_string()));
    assert_eq!(c.get("DescribeDomains", &[]).status, 200);
    for _ in 0..2 {
        let r = c.get("DescribeSubDomainRecords", &[("SubDomain", "www.example.com")]);
        assert_eq!((r.status, r.code()), (400, "Throttling.User".to_string()));
        assert_eq!(r.json()["Message"], "Request was denied due to user flow control.");
    }
    assert_eq!(c.get("DescribeSubDomainRecords", &[("SubDomain", "www.example.com")]).status, 200);

    sim.inject(Fault::ServerError { count: 1, status: 500, action: None });
    assert_eq!(c.get("DescribeDomains", &[]).code(), "InternalError");
    sim.inject(Fault::Error {
        count: 1,
        status: 429,
        code: "Throttling".into(),
        message: "slow down".into(),
        action: None,
    });
    assert_eq!(
        (c.get("DescribeDomains", &[]).status, sim.calls().last().unwrap().code.as_deref()),
        (429, Some("Throttling"))
    );

    sim.inject(Fault::Garbage { count: 1, action: None });
    let r = c.get("DescribeDomains", &[]);
    assert_eq!(r.status, 200);
    assert!(serde_json::from_str::<Value>(&r.body).is_err());

    // Faulted requests are not executed.
    sim.inject(Fault::Throttle { count: 1, action: None });
    c.get("AddDomainRecord", &[("DomainName", "example.com"), ("RR", "x"), ("Type", "A"), ("Value", "192.0.2.1")]);
    assert!(sim.records("example.com").is_empty());
    sim.inject(Fault::Throttle { count: 5, action: None });
    sim.clear_faults();
    assert_eq!(c.get("DescribeDomains", &[]).status, 200);
}

#[test]
fn drop_fault_closes_without_a_response() {
    let (sim, c) = sim_with_zone();
    sim.inject(Fault::Drop { count: 1, action: Some("AddDomainRecord".into()) });
    let p = c.sign(
        "POST",
        &[
            ("Action", "AddDomainRecord"),
            ("DomainName", "example.com"),
            ("RR", "x"),
            ("Type", "A"),
            ("Value", "192.0.2.1"),
        ],
    );
    let q = encode_pairs(&p);
    let mut s = TcpStream::connect(("127.0.0.1", sim.port())).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // Keep-alive request: only the drop can end the connection.
    s.write_all(format!("POST /?{q} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").as_bytes()).unwrap();
    let mut buf = Vec::new();
    let n = s.read_to_end(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "got {:?}", String::from_utf8_lossy(&buf));
    let call = sim.calls().pop().unwrap();
    assert_eq!((call.action.as_str(), call.status, call.code), ("AddDomainRecord", 0, None));
    assert!(sim.records("example.com").is_empty(), "dropped requests are not executed");
    // The next one goes through.
    let r =
        c.get("AddDomainRecord", &[("DomainName", "example.com"), ("RR", "x"), ("Type", "A"), ("Value", "192.0.2.1")]);
    assert_eq!(r.status, 200);
}

#[test]
fn delay_fault_delays_then_answers() {
    let (sim, c) = sim_with_zone();
    sim.inject(Fault::Delay { count: 1, ms: 600, action: None });
    let t = Instant::now();
    assert_eq!(c.get("DescribeDomains", &[]).status, 200);
    assert!(t.elapsed() >= Duration::from_millis(600));
    // The fault is used up: the next request is not delayed (a wide margin, so a
    // loaded machine cannot make an undelayed answer look delayed).
    let t = Instant::now();
    assert_eq!(c.get("DescribeDomains", &[]).status, 200);
    assert!(t.elapsed() < Duration::from_millis(600));
}

#[test]
fn keep_alive_and_pipelining() {
    let (sim, c) = sim_with_zone();
    let mut s = TcpStream::connect(("127.0.0.1", sim.port())).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let one = |s: &mut TcpStream, extra_header: &str| {
        let q = encode_pairs(&c.sign("GET", &[("Action", "DescribeDomains")]));
        s.write_all(format!("GET /?{q} HTTP/1.1\r\nHost: x\r\n{extra_header}\r\n").as_bytes()).unwrap();
    };
    one(&mut s, "");
    one(&mut s, "");
    one(&mut s, "Connection: close\r\n");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let mut rest = &buf[..];
    let mut statuses = Vec::new();
    while let Some((r, used)) = parse_response(rest) {
        statuses.push((r.status, r.header("Connection").unwrap().to_string()));
        rest = &rest[used..];
    }
    assert_eq!(statuses, vec![(200, "keep-alive".into()), (200, "keep-alive".into()), (200, "close".into())]);

    // Chunked form body.
    let body = encode_pairs(&c.sign("POST", &[("Action", "DescribeDomains")]));
    let (a, b) = body.split_at(body.len() / 2);
    let raw = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
        a.len(),
        b.len()
    );
    assert_eq!(send_raw(sim.port(), raw.as_bytes()).unwrap().status, 200);

    // Admin endpoints are not counted.
    let calls = send_raw(sim.port(), b"GET /_sim/calls HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let j = calls.json();
    assert_eq!((j["total"].as_u64(), j["by_action"]["DescribeDomains"].as_u64()), (Some(4), Some(4)));
    let r =
        send_raw(sim.port(), b"POST /_sim/reset HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(sim.count("*"), 0);
    assert_eq!(send_raw(sim.port(), b"garbage\r\n\r\n").unwrap().status, 400);
}

#[test]
fn concurrent_clients_get_unique_ids() {
    let (sim, _) = sim_with_zone();
    let sim = Arc::new(sim);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let sim = sim.clone();
            std::thread::spawn(move || {
                let c = Client::new(&sim);
                (0..10)
                    .map(|i| {
                        let rr = format!("t{t}-{i}");
                        let r = c.get(
                            "AddDomainRecord",
                            &[("DomainName", "example.com"), ("RR", &rr), ("Type", "A"), ("Value", "192.0.2.1")],
                        );
                        assert_eq!(r.status, 200, "{}", r.body);
                        r.json()["RecordId"].as_str().unwrap().parse::<u64>().unwrap()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut ids: Vec<u64> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 40);
    assert_eq!(sim.records("example.com").len(), 40);
}

#[test]
fn drop_stops_the_server() {
    let sim = Sim::start();
    let port = sim.port();
    let clone = sim.clone();
    drop(sim);
    assert!(TcpStream::connect(("127.0.0.1", port)).is_ok(), "a clone keeps it alive");
    drop(clone);
    std::thread::sleep(Duration::from_millis(50));
    let refused = match TcpStream::connect(("127.0.0.1", port)) {
        Err(_) => true,
        Ok(mut s) => {
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let _ = s.write_all(b"GET /_sim/calls HTTP/1.1\r\n\r\n");
            let mut buf = [0u8; 16];
            matches!(s.read(&mut buf), Ok(0) | Err(_))
        }
    };
    assert!(refused);
}

#[test]
fn tls_round_trip() {
    use rustls_pki_types::pem::PemObject as _;
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/");
    let read = |name: &str| std::fs::read(format!("{fixtures}{name}")).unwrap();
    let sim = Sim::start_tls(&read("server.pem"), &read("server.key"));
    sim.add_domain("example.com");
    assert!(sim.endpoint().starts_with("https://127.0.0.1:"));

    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&read("ca.pem")) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let c = Client::new(&sim);
    for host in ["127.0.0.1", "localhost"] {
        let name = rustls_pki_types::ServerName::try_from(host.to_string()).unwrap();
        let conn = rustls::ClientConnection::new(Arc::new(config.clone()), name).unwrap();
        let tcp = TcpStream::connect(("127.0.0.1", sim.port())).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let q = encode_pairs(&c.sign("GET", &[("Action", "DescribeDomainInfo"), ("DomainName", "example.com")]));
        tls.write_all(format!("GET /?{q} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes()).unwrap();
        let mut buf = Vec::new();
        let _ = tls.read_to_end(&mut buf);
        let (r, _) = parse_response(&buf).expect("complete response over TLS");
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json()["DomainName"], "example.com");
    }
    assert_eq!(sim.count("DescribeDomainInfo"), 2);
}
