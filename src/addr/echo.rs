//! Echo URLs: HTTP(S) services that answer with the caller's address, asked over a
//! connection of the wanted family. An answer counts only when it is a 200 whose
//! trimmed body is one public address of that family: captive portals, error pages
//! and transparent proxies answer too, and must never end up in DNS.

use super::classify::{ipv4_non_public, ipv6_non_global};
use super::{Candidate, Detection, Standing, family_name};
use crate::error::{Error, Result};
use crate::http::{self, Family, HttpOptions};
use std::net::IpAddr;

/// IPv4 echo services used when `ip_urls` is empty. Each answers a bare address over
/// HTTPS; mainland-China services first (that is where most AliDNS users are, and
/// where foreign ones are slow or filtered), then global ones that also work from
/// China. ipw.cn and ip.3322.net are in ddns-go's default list; ipify and icanhazip
/// document a plain-text answer.
pub const DEFAULT_IPV4_URLS: &[&str] =
    &["https://4.ipw.cn", "https://ip.3322.net", "https://api.ipify.org", "https://ipv4.icanhazip.com"];

/// IPv6 echo services used when `ipv6_urls` is empty; same reasoning as
/// [`DEFAULT_IPV4_URLS`] (6.ipw.cn and v6.ident.me are in ddns-go's default list).
pub const DEFAULT_IPV6_URLS: &[&str] =
    &["https://6.ipw.cn", "https://api6.ipify.org", "https://ipv6.icanhazip.com", "https://v6.ident.me"];

/// The most an echo answer may weigh: a bare address with a newline is under 64 bytes,
/// so anything bigger is an HTML page (captive portal, error page) and is rejected
/// without reading it all into a small router's memory.
pub const ECHO_BODY_LIMIT: u64 = 256;

/// The built-in list for `family`, used when none is configured.
pub(super) fn default_urls(family: Family) -> Vec<String> {
    let urls = match family {
        Family::V4 => DEFAULT_IPV4_URLS,
        Family::V6 => DEFAULT_IPV6_URLS,
    };
    urls.iter().map(|s| (*s).to_string()).collect()
}

/// Asks each URL in order, over a connection of `family`, and returns the first answer
/// that is 200 with a body that, trimmed, is one public address of that family. Proxy
/// variables are ignored for these requests: through a proxy the answer would be the
/// proxy's address (honwen/luci-app-aliddns#31). Fails with every URL's reason.
pub fn from_urls(urls: &[String], family: Family, http: &HttpOptions) -> Result<Detection> {
    let fam = family_name(family);
    if urls.is_empty() {
        return Err(Error::Config(format!("no echo URL configured for {fam}")));
    }
    let opts = HttpOptions { family: Some(family), ..http.clone() };
    // Index 0: plain-HTTP agent, 1: TLS agent (built on first use: loading CAs costs).
    let mut agents: [Option<ureq::Agent>; 2] = [None, None];
    let mut failures = Vec::new();
    let mut candidates = Vec::new();
    let mut transient = false;
    for url in urls {
        let tls = url.get(..8).is_some_and(|p| p.eq_ignore_ascii_case("https://"));
        let agent = if let Some(a) = &agents[usize::from(tls)] {
            a.clone()
        } else {
            match http::agent(&opts, tls) {
                Ok(a) => agents[usize::from(tls)].insert(a).clone(),
                Err(e) => {
                    failures.push(format!("{url}: {e}"));
                    continue;
                }
            }
        };
        match echo_once(&agent, url, family) {
            Ok(addr) => {
                let how = format!("answered over an {fam} connection");
                candidates.insert(0, Candidate::new(addr, url.clone(), Standing::Chosen, how));
                let warnings = failures.iter().map(|f| format!("echo URL {f}")).collect();
                return Ok(Detection { addr, source: url.clone(), candidates, warnings });
            }
            Err(f) => {
                transient |= f.transient;
                if let Some(addr) = f.addr {
                    candidates.push(Candidate::new(addr, url.clone(), Standing::Dropped, f.why.clone()));
                }
                failures.push(format!("{url}: {}", f.why));
            }
        }
    }
    Err(Error::Network {
        message: format!("no echo URL gave a public {fam} address: {}", failures.join("; ")),
        transient,
        timed_out: false,
    })
}

/// Why one echo URL gave no usable address.
struct EchoFailure {
    /// The address it answered, when it answered one (shown as a dropped candidate).
    addr: Option<IpAddr>,
    why: String,
    transient: bool,
}

impl EchoFailure {
    fn new(addr: Option<IpAddr>, why: String, transient: bool) -> Self {
        EchoFailure { addr, why, transient }
    }
}

/// Why a transport error happened, for one URL asked over `fam`.
fn network_failure(e: ureq::Error, url: &str, fam: &str) -> EchoFailure {
    if matches!(e, ureq::Error::HostNotFound) {
        // ureq's resolver found the name but no address of the family it may use.
        let host = url.parse::<ureq::http::Uri>().ok().and_then(|u| u.host().map(str::to_string));
        let host = host.unwrap_or_else(|| url.to_string());
        return EchoFailure::new(None, format!("no {fam} address for host {host}"), false);
    }
    let e = http::network_error(e);
    let transient = e.retryable();
    let why = match e {
        Error::Network { message, .. } => message,
        other => other.to_string(),
    };
    EchoFailure::new(None, why, transient)
}

fn echo_once(agent: &ureq::Agent, url: &str, family: Family) -> std::result::Result<IpAddr, EchoFailure> {
    let fam = family_name(family);
    // No proxy: the agent is family-bound, which makes it direct (http::agent).
    let resp = agent.get(url).call().map_err(|e| network_failure(e, url, fam))?;
    let status = resp.status().as_u16();
    if status != 200 {
        return Err(EchoFailure::new(None, format!("HTTP {status}"), status >= 500));
    }
    let body = resp.into_body().with_config().limit(ECHO_BODY_LIMIT).read_to_string().map_err(|e| match e {
        ureq::Error::BodyExceedsLimit(_) => {
            EchoFailure::new(None, format!("answer longer than {ECHO_BODY_LIMIT} bytes: not a bare address"), false)
        }
        e => network_failure(e, url, fam),
    })?;
    let text = body.trim();
    let Ok(addr) = text.parse::<IpAddr>() else {
        let shown: String = text.chars().take(40).collect();
        return Err(EchoFailure::new(None, format!("answer is not an address: {}", crate::log::quoted(&shown)), false));
    };
    let addr = match (family, addr) {
        (Family::V4, IpAddr::V6(a)) => match a.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => return Err(EchoFailure::new(Some(addr), format!("answered an IPv6 address, wanted {fam}"), false)),
        },
        (Family::V6, IpAddr::V4(_)) => {
            return Err(EchoFailure::new(Some(addr), format!("answered an IPv4 address, wanted {fam}"), false));
        }
        _ => addr,
    };
    let non_public = match addr {
        IpAddr::V4(a) => ipv4_non_public(a),
        IpAddr::V6(a) => ipv6_non_global(a),
    };
    if let Some(why) = non_public {
        // A private answer comes from something local (a transparent proxy, a captive
        // portal, the ISP's NAT), never from the Internet side: not worth publishing.
        let why = format!("not a public address ({why}): a proxy or portal answered?");
        return Err(EchoFailure::new(Some(addr), why, false));
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{dead_url, http, serve, v6};
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn an_ipv6_echo_url_whose_host_has_no_ipv6_address_says_so() {
        // An IPv4-only host (here a literal, so no resolver is needed) over IPv6.
        let url = dead_url();
        let err = from_urls(std::slice::from_ref(&url), Family::V6, &http()).unwrap_err().to_string();
        assert!(err.contains("no IPv6 address for host 127.0.0.1"), "{err}");
        assert!(!err.contains("host not found"), "{err}");
        let err = from_urls(&["http://[::1]:9/".to_string()], Family::V4, &http()).unwrap_err().to_string();
        assert!(err.contains("no IPv4 address for host [::1]"), "{err}");
    }

    #[test]
    fn echo_v4_trims_and_accepts() {
        let s = serve("127.0.0.1:0", 200, "203.0.113.7\n").unwrap();
        let got = from_urls(std::slice::from_ref(&s.url), Family::V4, &http()).unwrap();
        assert_eq!(got.addr, IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)));
        assert_eq!(got.source, s.url);
        assert!(got.warnings.is_empty());
        // An IPv4-mapped answer from a dual-stack socket is the IPv4 address.
        let s = serve("127.0.0.1:0", 200, "::ffff:183.14.22.9").unwrap();
        let got = from_urls(&[s.url], Family::V4, &http()).unwrap();
        assert_eq!(got.addr, IpAddr::V4(Ipv4Addr::new(183, 14, 22, 9)));
    }

    #[test]
    fn echo_rejections_fall_through_and_all_failing_lists_each() {
        let html = serve("127.0.0.1:0", 200, "<html><body>blocked by portal</body></html>").unwrap();
        let six = serve("127.0.0.1:0", 200, "2409:8a00::1\n").unwrap();
        let private = serve("127.0.0.1:0", 200, "192.168.1.1").unwrap();
        let e503 = serve("127.0.0.1:0", 503, "203.0.113.9").unwrap();
        let big = serve("127.0.0.1:0", 200, &"9".repeat(1000)).unwrap();
        let dead = dead_url();
        let good = serve("127.0.0.1:0", 200, "203.0.113.8\r\n").unwrap();
        let urls = vec![
            dead.clone(),
            html.url.clone(),
            six.url.clone(),
            private.url.clone(),
            e503.url.clone(),
            big.url.clone(),
            good.url.clone(),
        ];
        let got = from_urls(&urls, Family::V4, &http()).unwrap();
        assert_eq!(got.addr, IpAddr::V4(Ipv4Addr::new(203, 0, 113, 8)));
        assert_eq!(got.source, good.url);
        assert_eq!(got.warnings.len(), 6, "{:?}", got.warnings);
        // Addresses that were seen but rejected are candidates too.
        assert!(got.candidates.iter().any(|c| c.addr == v6("2409:8a00::1") && !c.kept()));
        assert!(got.candidates.iter().any(|c| c.addr.to_string() == "192.168.1.1" && !c.kept()));
        assert!(got.candidates[0].kept());

        let err = from_urls(&urls[..6], Family::V4, &http()).unwrap_err();
        let msg = err.to_string();
        assert!(err.retryable(), "a refused connection is transient: {msg}");
        assert!(msg.contains(&format!("{dead}: ")), "{msg}");
        assert!(msg.contains(&format!("{}: answer is not an address: \"<html><body>", html.url)), "{msg}");
        assert!(msg.contains(&format!("{}: answered an IPv6 address, wanted IPv4", six.url)), "{msg}");
        assert!(msg.contains(&format!("{}: not a public address (private, RFC 1918)", private.url)), "{msg}");
        assert!(msg.contains(&format!("{}: HTTP 503", e503.url)), "{msg}");
        assert!(msg.contains(&format!("{}: answer longer than 256 bytes", big.url)), "{msg}");
        assert!(from_urls(&[], Family::V4, &http()).is_err());
    }

    #[test]
    fn echo_v6_over_loopback_when_available() {
        let Some(s) = serve("[::1]:0", 200, "2409:8a00:1234:5678::1a2b\n") else {
            return eprintln!("no IPv6 loopback here; skipped");
        };
        let got = match from_urls(std::slice::from_ref(&s.url), Family::V6, &http()) {
            Ok(g) => g,
            Err(e) => return eprintln!("IPv6 loopback not connectable here ({e}); skipped"),
        };
        assert_eq!(got.addr, v6("2409:8a00:1234:5678::1a2b"));
        // Wrong family in the answer, and non-global answers, are rejected.
        let four = serve("[::1]:0", 200, "203.0.113.7").unwrap();
        let ula = serve("[::1]:0", 200, "fd00::1").unwrap();
        let msg = from_urls(&[four.url.clone(), ula.url.clone()], Family::V6, &http()).unwrap_err().to_string();
        assert!(msg.contains("answered an IPv4 address, wanted IPv6"), "{msg}");
        assert!(msg.contains("unique local (ULA)"), "{msg}");
        // An IPv4-only URL cannot be reached over an IPv6-only connection.
        let v4only = serve("127.0.0.1:0", 200, "2409:8a00::1").unwrap();
        assert!(from_urls(&[v4only.url], Family::V6, &http()).is_err());
    }

    #[test]
    fn ipv4_connection_family_is_enforced() {
        // Over IPv4-only, a [::1] URL cannot connect even if it would answer nicely.
        let Some(s) = serve("[::1]:0", 200, "203.0.113.7") else {
            return eprintln!("no IPv6 loopback here; skipped");
        };
        assert!(from_urls(&[s.url], Family::V4, &http()).is_err());
    }
}
