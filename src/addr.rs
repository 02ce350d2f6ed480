//! Where a record's address comes from: the kernel (IPv6 from `/proc/net/if_inet6`,
//! IPv4 from `getifaddrs(3)`, `auto` from the default routes in `/proc/net/route` and
//! `/proc/net/ipv6_route`) or echo URLs that answer with the caller's address. No child
//! process is spawned: routers lack `ip -j`, and parsing tool output is what made other
//! clients publish link-local, ULA, deprecated or `<?xml` values (anchors.md §2.1).
//!
//! IPv6 choice, in order (first difference wins):
//! 1. dropped: anything but global unicast (link-local, ULA, site-local, loopback,
//!    multicast, unspecified, IPv4-mapped/compatible, documentation 2001:db8::/32 and
//!    3fff::/20, anything outside 2000::/3), and tentative or DAD-failed addresses;
//! 2. non-deprecated before deprecated (the old prefix lingers after a PPPoE redial);
//! 3. stable before temporary (RFC 4941 privacy) addresses, or the reverse with
//!    `ipv6_prefer=temporary`;
//! 4. static (`IFA_F_PERMANENT`: configured without lifetimes, an explicit choice of the
//!    admin) before autoconfigured/DHCPv6 ones;
//! 5. the numerically lowest address. Lifetimes are not in `if_inet6` (they need
//!    netlink), so "newest prefix" cannot be told apart from "old prefix not yet
//!    deprecated"; lowest address is arbitrary but stable from run to run, so the record
//!    does not flap, and within one prefix it prefers short DHCPv6/static interface IDs
//!    (`::1a2b`) over EUI-64 and random ones, which is what people put in DNS by hand.
//!    EUI-64 is not penalised otherwise: on a router's WAN it is the stable address.
//!
//! Everything read is memoized per [`Detector`], i.e. per DDNS pass: twenty records on
//! one interface read `/proc` once and ask an echo URL once.

use crate::config::Ipv6Prefer;
use crate::error::{Error, Result};
use crate::http::{self, Family, HttpOptions};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

/// Environment variable overriding the proc root (`/proc`): a testing aid that lets
/// tests feed captured `net/if_inet6`, `net/route` and `net/ipv6_route` files to the
/// real binary.
pub const PROC_ROOT_ENV: &str = "ALIDDNS_PROC_ROOT";

/// Environment variable naming a file of `IFNAME ADDRESS` lines read instead of
/// `getifaddrs(3)`: the IPv4 counterpart of [`PROC_ROOT_ENV`] for tests, since no
/// `/proc` file lists IPv4 addresses by interface.
pub const IPV4_ADDRS_ENV: &str = "ALIDDNS_IPV4_ADDRS";

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

// Address flags, linux/if_addr.h. if_inet6 prints the low 8 bits on most kernels; we
// accept any width.
const IFA_F_TEMPORARY: u32 = 0x01;
const IFA_F_DADFAILED: u32 = 0x08;
const IFA_F_DEPRECATED: u32 = 0x20;
const IFA_F_TENTATIVE: u32 = 0x40;
const IFA_F_PERMANENT: u32 = 0x80;

// Route flags, linux/route.h and linux/ipv6_route.h.
const RTF_UP: u32 = 0x0001;
const RTF_REJECT: u32 = 0x0200;

/// What a caller wants an address for; one per record (or per `aliddns ip`).
#[derive(Debug, Clone, Copy)]
pub struct AddrRequest<'a> {
    /// A or AAAA.
    pub family: Family,
    /// The record's `interface`, else the `[feature_public_ip_from_nic]` one (the
    /// caller resolves that); `auto` = the default route's. None = no kernel source
    /// for IPv4, the default route's interface first for IPv6.
    pub interface: Option<&'a str>,
    /// Interface ID for a LAN host: the AAAA value is the interface address's /64
    /// prefix plus these low 64 bits.
    pub ipv6_suffix: Option<Ipv6Addr>,
    /// Stable or temporary first among otherwise equal IPv6 addresses.
    pub prefer: Ipv6Prefer,
    /// The configured echo URLs for this family; empty = not configured (the
    /// built-in list is used where echo URLs are the primary source).
    pub urls: &'a [String],
}

/// One address that was looked at, so `aliddns ip -v` can show why it won or lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The address.
    pub addr: IpAddr,
    /// The interface name or echo URL it came from.
    pub source: String,
    /// Whether it was usable (the chosen one is the first kept candidate).
    pub kept: bool,
    /// Why it was kept (and how it ranked) or dropped.
    pub reason: String,
}

/// The outcome of a successful detection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection {
    /// The address to publish.
    pub addr: IpAddr,
    /// Where it came from: interface (with how it was found) or echo URL.
    pub source: String,
    /// Every address looked at, the chosen one first.
    pub candidates: Vec<Candidate>,
    /// Things the user should know although an address was found (a private NIC
    /// address, echo URLs that failed before one answered).
    pub warnings: Vec<String>,
}

/// Finds addresses for one DDNS pass (or one `aliddns ip`), remembering every file
/// read, echo answer and result — failures included — so records sharing a source
/// cost one read and one request, and all see the same answer.
pub struct Detector {
    http: HttpOptions,
    proc_root: PathBuf,
    ipv4_file: Option<PathBuf>,
    memo: Mutex<Memo>,
}

#[derive(Default)]
struct Memo {
    files: HashMap<&'static str, std::result::Result<String, String>>,
    ipv4: Option<std::result::Result<IfAddrs, String>>,
    echo: Vec<(EchoKey, Result<Detection>)>,
    detections: Vec<(DetectKey, Result<Detection>)>,
}

#[derive(PartialEq)]
struct EchoKey {
    family: Family,
    urls: Vec<String>,
}

#[derive(PartialEq)]
struct DetectKey {
    family: Family,
    interface: Option<String>,
    suffix: Option<Ipv6Addr>,
    prefer: Ipv6Prefer,
    urls: Vec<String>,
}

impl Detector {
    /// A detector reading the real `/proc` (or `$ALIDDNS_PROC_ROOT`) and, for IPv4,
    /// `getifaddrs` (or the `$ALIDDNS_IPV4_ADDRS` file); both variables are testing aids.
    pub fn new(http: HttpOptions) -> Self {
        let env_path = |name| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let root = env_path(PROC_ROOT_ENV).unwrap_or_else(|| PathBuf::from("/proc"));
        let mut d = Self::with_proc_root(http, root);
        d.ipv4_file = env_path(IPV4_ADDRS_ENV);
        d
    }

    /// A detector reading `ROOT/net/...` instead of `/proc/net/...`: for tests.
    #[cfg_attr(not(test), allow(dead_code))] // the binary uses new(); tests use this
    pub fn with_proc_root(http: HttpOptions, root: PathBuf) -> Self {
        Detector { http, proc_root: root, ipv4_file: None, memo: Mutex::new(Memo::default()) }
    }

    /// The address for `req`, by the policy below; memoized per request for the life
    /// of the detector (one pass).
    ///
    /// - Interface given (`auto` resolved from the default route first): the kernel's
    ///   address on it. A non-public IPv4 there (RFC 1918, CGNAT, link-local...) means
    ///   the public address is upstream: the configured `ip_urls` are asked, with a
    ///   warning, and without them it is an error that says so.
    /// - No interface, A: echo URLs (configured, else [`DEFAULT_IPV4_URLS`]).
    /// - No interface, AAAA: the default route's interface (the router's own global
    ///   address), else echo URLs (configured, else [`DEFAULT_IPV6_URLS`]).
    /// - `ipv6_suffix` without an interface is an error: the prefix must come from one.
    pub fn detect(&self, req: &AddrRequest) -> Result<Detection> {
        let key = DetectKey {
            family: req.family,
            interface: req.interface.map(str::to_string),
            suffix: req.ipv6_suffix,
            prefer: req.prefer,
            urls: req.urls.to_vec(),
        };
        if let Some((_, r)) = self.memo().detections.iter().find(|(k, _)| *k == key) {
            return dup_result(r);
        }
        let r = self.detect_fresh(req);
        self.memo().detections.push((key, dup_result(&r)));
        r
    }

    fn memo(&self) -> MutexGuard<'_, Memo> {
        // A poisoned lock only means another thread panicked mid-insert; the map is
        // still consistent for our purposes.
        self.memo.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn detect_fresh(&self, req: &AddrRequest) -> Result<Detection> {
        match (req.family, req.interface) {
            (Family::V4, Some(iface)) => self.ipv4_from_interface(iface, req.urls),
            (Family::V4, None) => self.echo(Family::V4, req.urls),
            (Family::V6, Some(iface)) => self.ipv6_from_interface(iface, req.ipv6_suffix, req.prefer),
            (Family::V6, None) => {
                if let Some(s) = req.ipv6_suffix {
                    return Err(Error::Config(format!(
                        "ipv6_suffix {s} needs an interface to take the /64 prefix from: set interface= \
                         on the record (usually the LAN bridge carrying the delegated prefix, e.g. br-lan)"
                    )));
                }
                match self.ipv6_from_interface("auto", None, req.prefer) {
                    Ok(d) => Ok(d),
                    Err(kernel) => match self.echo(Family::V6, req.urls) {
                        Ok(mut d) => {
                            d.source = format!("{} (kernel: {kernel})", d.source);
                            Ok(d)
                        }
                        Err(echo) => Err(Error::Other(format!("no IPv6 address: {kernel}; then {echo}"))),
                    },
                }
            }
        }
    }

    /// Reads `ROOT/rel` once per detector.
    fn proc_file(&self, rel: &'static str) -> std::result::Result<String, String> {
        if let Some(r) = self.memo().files.get(rel) {
            return r.clone();
        }
        let path = self.proc_root.join(rel);
        let r = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()));
        self.memo().files.insert(rel, r.clone());
        r
    }

    /// Resolves `auto` to the default route's interface; returns (name, label for messages).
    fn resolve(&self, iface: &str, family: Family) -> Result<(String, String)> {
        if iface != "auto" {
            return Ok((iface.to_string(), iface.to_string()));
        }
        let (rel, parse, fam): (_, fn(&str) -> Option<String>, _) = match family {
            Family::V4 => ("net/route", default_route_v4, "IPv4"),
            Family::V6 => ("net/ipv6_route", default_route_v6, "IPv6"),
        };
        let text = self.proc_file(rel).map_err(|e| {
            // Without IPv6 in the kernel the file is missing: say so rather than only ENOENT.
            let hint = if matches!(family, Family::V6) { " (is IPv6 enabled?)" } else { "" };
            Error::Other(format!("interface=auto: {e}{hint}"))
        })?;
        match parse(&text) {
            Some(name) => {
                let label = format!("{name} (the {fam} default route's interface)");
                Ok((name, label))
            }
            None => Err(Error::Other(format!(
                "interface=auto: no usable {fam} default route in {} (none that is up and not unreachable/via lo)",
                self.proc_root.join(rel).display()
            ))),
        }
    }

    fn ipv6_from_interface(&self, iface: &str, suffix: Option<Ipv6Addr>, prefer: Ipv6Prefer) -> Result<Detection> {
        let (name, label) = self.resolve(iface, Family::V6)?;
        let text = self
            .proc_file("net/if_inet6")
            .map_err(|e| Error::Other(format!("cannot list IPv6 addresses of {label} (is IPv6 enabled?): {e}")))?;
        let entries = parse_if_inet6(&text);
        let (candidates, chosen) = select_ipv6(&entries, &name, prefer);
        let Some(chosen) = chosen else {
            if candidates.is_empty() {
                let mut names: Vec<&str> = entries.iter().map(|e| e.ifname.as_str()).collect();
                names.dedup();
                names.sort_unstable();
                names.dedup();
                return Err(Error::Other(format!(
                    "no IPv6 address on {label} (interfaces with IPv6 addresses: {})",
                    if names.is_empty() { "none".to_string() } else { names.join(", ") }
                )));
            }
            return Err(Error::Other(format!(
                "no usable global IPv6 address on {label}: found {}",
                list_candidates(&candidates)
            )));
        };
        let mut d = Detection { addr: IpAddr::V6(chosen.addr), source: label, candidates, warnings: Vec::new() };
        if let Some(s) = suffix {
            let addr = with_suffix(chosen.addr, s);
            if u128::from(s) >> 64 != 0 {
                d.warnings.push(format!(
                    "ipv6_suffix {s} has bits in its upper 64; only the interface ID (low 64 bits) is used"
                ));
            }
            if chosen.prefix_len != 64 {
                d.warnings.push(format!(
                    "{}/{} on {name} is not a /64: {addr} (its first 64 bits + suffix {s}) may not be on that link",
                    chosen.addr, chosen.prefix_len
                ));
            }
            d.source = format!("{} /64 prefix of {} + ipv6_suffix {s}", d.source, chosen.addr);
            d.addr = IpAddr::V6(addr);
        }
        Ok(d)
    }

    fn ipv4_addrs(&self) -> std::result::Result<IfAddrs, String> {
        if let Some(r) = &self.memo().ipv4 {
            return r.clone();
        }
        let r = match &self.ipv4_file {
            Some(p) => {
                std::fs::read_to_string(p).map(|t| parse_ipv4_file(&t)).map_err(|e| format!("{}: {e}", p.display()))
            }
            None => getifaddrs_v4().map_err(|e| format!("getifaddrs: {e}")),
        };
        self.memo().ipv4 = Some(r.clone());
        r
    }

    fn ipv4_from_interface(&self, iface: &str, urls: &[String]) -> Result<Detection> {
        let (name, label) = self.resolve(iface, Family::V4)?;
        let all = self.ipv4_addrs().map_err(|e| Error::Other(format!("cannot list IPv4 addresses: {e}")))?;
        let (candidates, chosen) = select_ipv4(&all.addrs, &name);
        if let Some(a) = chosen {
            return Ok(Detection { addr: IpAddr::V4(a), source: label, candidates, warnings: Vec::new() });
        }
        if candidates.is_empty() {
            let exists = all.names.contains(&name);
            return Err(Error::Other(if exists {
                format!("no IPv4 address on {label} (is the link up?)")
            } else {
                format!("no interface {name} (interfaces: {})", all.names.join(", "))
            }));
        }
        let found = list_candidates(&candidates);
        let cgnat = candidates.iter().any(|c| matches!(c.addr, IpAddr::V4(a) if is_shared(a)));
        if urls.is_empty() {
            return Err(Error::Other(format!(
                "{label} has only a non-public IPv4 address: {found}; the public address belongs to a device \
                 upstream (modem or the ISP's NAT): set ip_urls to learn it from an echo service, or use \
                 the interface that carries the public address"
            )));
        }
        match self.echo(Family::V4, urls) {
            Ok(mut d) => {
                let mut w = format!(
                    "{label} has only a non-public IPv4 address ({found}); publishing {} from {} instead",
                    d.addr, d.source
                );
                if cgnat {
                    w.push_str(
                        " (behind carrier-grade NAT that address is shared and usually not reachable from outside)",
                    );
                }
                d.warnings.insert(0, w);
                let mut all_c = candidates;
                all_c.append(&mut d.candidates);
                // Keep the chosen (echo) candidate first.
                if let Some(pos) = all_c.iter().position(|c| c.kept) {
                    let c = all_c.remove(pos);
                    all_c.insert(0, c);
                }
                d.candidates = all_c;
                Ok(d)
            }
            Err(e) => Err(Error::Other(format!(
                "{label} has only a non-public IPv4 address ({found}), and the ip_urls failed: {e}"
            ))),
        }
    }

    /// Echo URLs for `family` (configured, else the built-in list), memoized.
    fn echo(&self, family: Family, configured: &[String]) -> Result<Detection> {
        let urls: Vec<String> = if configured.is_empty() {
            let d = match family {
                Family::V4 => DEFAULT_IPV4_URLS,
                Family::V6 => DEFAULT_IPV6_URLS,
            };
            d.iter().map(|s| s.to_string()).collect()
        } else {
            configured.to_vec()
        };
        let key = EchoKey { family, urls };
        if let Some((_, r)) = self.memo().echo.iter().find(|(k, _)| *k == key) {
            return dup_result(r);
        }
        let r = from_urls(&key.urls, family, &self.http);
        self.memo().echo.push((key, dup_result(&r)));
        r
    }
}

/// One-line-per-candidate report for `aliddns ip -v`: address, source, kept or
/// dropped and why, then the warnings.
pub fn describe(d: &Detection) -> String {
    let mut out = String::new();
    for c in &d.candidates {
        let verdict = if c.kept { "kept" } else { "dropped" };
        out.push_str(&format!("{} {} {verdict}: {}\n", c.addr, c.source, c.reason));
    }
    out.push_str(&format!("=> {} from {}\n", d.addr, d.source));
    for w in &d.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    out
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
        let agent = match &agents[usize::from(tls)] {
            Some(a) => a.clone(),
            None => match http::agent(&opts, tls) {
                Ok(a) => {
                    agents[usize::from(tls)] = Some(a.clone());
                    a
                }
                Err(e) => {
                    failures.push(format!("{url}: {e}"));
                    continue;
                }
            },
        };
        match echo_once(&agent, url, family) {
            Ok(addr) => {
                candidates.insert(
                    0,
                    Candidate {
                        addr,
                        source: url.clone(),
                        kept: true,
                        reason: format!("chosen: answered over an {fam} connection"),
                    },
                );
                let warnings = failures.iter().map(|f| format!("echo URL {f}")).collect();
                return Ok(Detection { addr, source: url.clone(), candidates, warnings });
            }
            Err(f) => {
                transient |= f.transient;
                if let Some(addr) = f.addr {
                    candidates.push(Candidate { addr, source: url.clone(), kept: false, reason: f.why.clone() });
                }
                failures.push(format!("{url}: {}", f.why));
            }
        }
    }
    Err(Error::Network {
        message: format!("no echo URL gave a public {fam} address: {}", failures.join("; ")),
        transient,
    })
}

struct EchoFailure {
    addr: Option<IpAddr>,
    why: String,
    transient: bool,
}

fn echo_once(agent: &ureq::Agent, url: &str, family: Family) -> std::result::Result<IpAddr, EchoFailure> {
    let fail = |addr, why: String, transient| EchoFailure { addr, why, transient };
    let fam = family_name(family);
    let net = |e: ureq::Error| {
        if matches!(e, ureq::Error::HostNotFound) {
            // ureq's resolver found the name but no address of the family it may use.
            let host = url.parse::<ureq::http::Uri>().ok().and_then(|u| u.host().map(str::to_string));
            let host = host.unwrap_or_else(|| url.to_string());
            return fail(None, format!("no {fam} address for host {host}"), false);
        }
        let e = http::network_error(e);
        let transient = e.retryable();
        let why = match e {
            Error::Network { message, .. } => message,
            other => other.to_string(),
        };
        fail(None, why, transient)
    };
    let resp = agent.get(url).config().proxy(None).build().call().map_err(net)?;
    let status = resp.status().as_u16();
    if status != 200 {
        return Err(fail(None, format!("HTTP {status}"), status >= 500));
    }
    let body = resp.into_body().with_config().limit(ECHO_BODY_LIMIT).read_to_string().map_err(|e| match e {
        ureq::Error::BodyExceedsLimit(_) => {
            fail(None, format!("answer longer than {ECHO_BODY_LIMIT} bytes: not a bare address"), false)
        }
        e => net(e),
    })?;
    let text = body.trim();
    let Ok(addr) = text.parse::<IpAddr>() else {
        let shown: String = text.chars().take(40).collect();
        return Err(fail(None, format!("answer is not an address: {shown:?}"), false));
    };
    let addr = match (family, addr) {
        (Family::V4, IpAddr::V6(a)) => match a.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => return Err(fail(Some(addr), format!("answered an IPv6 address, wanted {fam}"), false)),
        },
        (Family::V6, IpAddr::V4(_)) => {
            return Err(fail(Some(addr), format!("answered an IPv4 address, wanted {fam}"), false));
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
        return Err(fail(Some(addr), format!("not a public address ({why}): a proxy or portal answered?"), false));
    }
    Ok(addr)
}

fn family_name(f: Family) -> &'static str {
    match f {
        Family::V4 => "IPv4",
        Family::V6 => "IPv6",
    }
}

fn list_candidates(c: &[Candidate]) -> String {
    c.iter().map(|c| format!("{} ({})", c.addr, c.reason)).collect::<Vec<_>>().join(", ")
}

/// `Error` is not `Clone`; memoized failures are handed out as copies.
fn dup_result(r: &Result<Detection>) -> Result<Detection> {
    match r {
        Ok(d) => Ok(d.clone()),
        Err(e) => Err(match e {
            Error::Api(a) => Error::Api(a.clone()),
            Error::Network { message, transient } => Error::Network { message: message.clone(), transient: *transient },
            Error::Config(m) => Error::Config(m.clone()),
            Error::Usage(m) => Error::Usage(m.clone()),
            Error::Other(m) => Error::Other(m.clone()),
        }),
    }
}

// ---------------------------------------------------------------- classification

/// Why an IPv4 address is not a public one, or None when it is. RFC 5737 documentation
/// ranges count as public: they never appear on a real WAN, and tests and examples
/// (this project's included) publish them.
pub fn ipv4_non_public(a: Ipv4Addr) -> Option<&'static str> {
    let o = a.octets();
    Some(match o {
        [0, ..] => "\"this network\" 0.0.0.0/8",
        [10, ..] => "private, RFC 1918",
        [172, b, ..] if (16..32).contains(&b) => "private, RFC 1918",
        [192, 168, ..] => "private, RFC 1918",
        [100, b, ..] if (64..128).contains(&b) => "shared address space (carrier-grade NAT), RFC 6598",
        [127, ..] => "loopback",
        [169, 254, ..] => "link-local",
        [192, 0, 0, _] => "IETF protocol assignment 192.0.0.0/24 (e.g. DS-Lite)",
        [198, b, ..] if b == 18 || b == 19 => "benchmarking, RFC 2544",
        [255, 255, 255, 255] => "broadcast",
        [224..=239, ..] => "multicast",
        [240..=255, ..] => "reserved 240.0.0.0/4",
        _ => return None,
    })
}

fn is_shared(a: Ipv4Addr) -> bool {
    let o = a.octets();
    o[0] == 100 && (64..128).contains(&o[1])
}

/// Why an IPv6 address is not global unicast worth publishing, or None when it is.
pub fn ipv6_non_global(a: Ipv6Addr) -> Option<&'static str> {
    let v = u128::from(a);
    let s = a.segments();
    Some(if a.is_unspecified() {
        "unspecified"
    } else if a.is_loopback() {
        "loopback"
    } else if a.to_ipv4_mapped().is_some() {
        "IPv4-mapped"
    } else if v >> 32 == 0 {
        "IPv4-compatible (deprecated)"
    } else if s[0] & 0xff00 == 0xff00 {
        "multicast"
    } else if s[0] & 0xffc0 == 0xfe80 {
        "link-local, fe80::/10"
    } else if s[0] & 0xffc0 == 0xfec0 {
        "site-local (deprecated), fec0::/10"
    } else if s[0] & 0xfe00 == 0xfc00 {
        "unique local (ULA), fc00::/7"
    } else if s[0] == 0x2001 && s[1] == 0x0db8 {
        "documentation, 2001:db8::/32"
    } else if s[0] == 0x3fff && s[1] & 0xf000 == 0 {
        "documentation, 3fff::/20"
    } else if s[0] & 0xe000 != 0x2000 {
        "not global unicast (outside 2000::/3)"
    } else {
        return None;
    })
}

// ---------------------------------------------------------------- /proc parsing

/// One line of `/proc/net/if_inet6`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Inet6 {
    addr: Ipv6Addr,
    prefix_len: u8,
    flags: u32,
    ifname: String,
}

fn hex_u32(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 8 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

fn hex_addr6(s: &str) -> Option<Ipv6Addr> {
    if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u128::from_str_radix(s, 16).ok().map(Ipv6Addr::from)
}

/// `ADDR IFINDEX PLEN SCOPE FLAGS IFNAME` per line, hex; malformed lines are skipped.
fn parse_if_inet6(text: &str) -> Vec<Inet6> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let [addr, ifindex, plen, scope, flags, ifname] = f[..] else { return None };
            hex_u32(ifindex)?;
            hex_u32(scope)?;
            let prefix_len = u8::try_from(hex_u32(plen)?).ok().filter(|p| *p <= 128)?;
            Some(Inet6 { addr: hex_addr6(addr)?, prefix_len, flags: hex_u32(flags)?, ifname: ifname.to_string() })
        })
        .collect()
}

/// The interface of the lowest-metric IPv4 default route (0.0.0.0/0, up, not a
/// reject route, not `lo`) in `/proc/net/route`; the first such in file order on a
/// tie. A gateway is not required: point-to-point links (PPP, tunnels) route without.
fn default_route_v4(text: &str) -> Option<String> {
    let mut best: Option<(u32, &str)> = None;
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 {
            continue;
        }
        let (iface, dest, flags, metric, mask) =
            (f[0], hex_u32(f[1]), hex_u32(f[3]), f[6].parse::<u32>(), hex_u32(f[7]));
        let (Some(0), Some(flags), Ok(metric), Some(0)) = (dest, flags, metric, mask) else { continue };
        if flags & RTF_UP == 0 || flags & RTF_REJECT != 0 || iface == "lo" || iface == "*" {
            continue;
        }
        if best.is_none_or(|(m, _)| metric < m) {
            best = Some((metric, iface));
        }
    }
    best.map(|(_, i)| i.to_string())
}

/// The interface of the lowest-metric IPv6 default route (::/0, any source prefix —
/// OpenWrt installs source-specific defaults — up, not unreachable, not via `lo`) in
/// `/proc/net/ipv6_route`; the first such in file order on a tie.
fn default_route_v6(text: &str) -> Option<String> {
    let mut best: Option<(u32, &str)> = None;
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [dest, plen, _src, _splen, _via, metric, _refcnt, _use, flags, iface] = f[..] else { continue };
        let (Some(dest), Some(0), Some(metric), Some(flags)) =
            (hex_addr6(dest), hex_u32(plen), hex_u32(metric), hex_u32(flags))
        else {
            continue;
        };
        if !dest.is_unspecified() || flags & RTF_UP == 0 || flags & RTF_REJECT != 0 || iface == "lo" {
            continue;
        }
        if best.is_none_or(|(m, _)| metric < m) {
            best = Some((metric, iface));
        }
    }
    best.map(|(_, i)| i.to_string())
}

/// The winner of [`select_ipv6`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Chosen6 {
    addr: Ipv6Addr,
    prefix_len: u8,
}

/// Applies the module's IPv6 rules to the addresses of `ifname`: candidates with the
/// chosen one first, then the other usable ones in rank order, then the dropped ones.
fn select_ipv6(entries: &[Inet6], ifname: &str, prefer: Ipv6Prefer) -> (Vec<Candidate>, Option<Chosen6>) {
    // Sort key: deprecated, not the preferred kind, not static, address (false first).
    type Rank = (bool, bool, bool, u128);
    let mut kept: Vec<(&Inet6, Rank)> = Vec::new();
    let mut dropped = Vec::new();
    for e in entries.iter().filter(|e| e.ifname == ifname) {
        let why = ipv6_non_global(e.addr).map(str::to_string).or_else(|| {
            if e.flags & IFA_F_DADFAILED != 0 {
                Some("duplicate address detection failed".to_string())
            } else if e.flags & IFA_F_TENTATIVE != 0 {
                Some("tentative: duplicate address detection not finished".to_string())
            } else {
                None
            }
        });
        match why {
            Some(reason) => {
                dropped.push(Candidate { addr: IpAddr::V6(e.addr), source: e.ifname.clone(), kept: false, reason })
            }
            None => {
                let temporary = e.flags & IFA_F_TEMPORARY != 0;
                let unwanted_kind = match prefer {
                    Ipv6Prefer::Stable => temporary,
                    Ipv6Prefer::Temporary => !temporary,
                };
                let rank = (
                    e.flags & IFA_F_DEPRECATED != 0,
                    unwanted_kind,
                    e.flags & IFA_F_PERMANENT == 0,
                    u128::from(e.addr),
                );
                kept.push((e, rank));
            }
        }
    }
    kept.sort_by_key(|(_, rank)| *rank);
    let chosen = kept.first().map(|(e, _)| Chosen6 { addr: e.addr, prefix_len: e.prefix_len });
    let mut out: Vec<Candidate> = kept
        .iter()
        .enumerate()
        .map(|(i, (e, _))| {
            let mut traits = vec![format!("global /{}", e.prefix_len)];
            if e.flags & IFA_F_DEPRECATED != 0 {
                traits.push("deprecated (preferred lifetime over: an old prefix?)".into());
            }
            traits.push(if e.flags & IFA_F_TEMPORARY != 0 { "temporary (privacy)" } else { "stable" }.into());
            if e.flags & IFA_F_PERMANENT != 0 {
                traits.push("static".into());
            }
            let head = if i == 0 { "chosen" } else { "usable, ranked lower" };
            Candidate {
                addr: IpAddr::V6(e.addr),
                source: e.ifname.clone(),
                kept: true,
                reason: format!("{head}: {}", traits.join(", ")),
            }
        })
        .collect();
    out.append(&mut dropped);
    (out, chosen)
}

/// The /64 prefix of `addr` with the low 64 bits of `suffix`.
fn with_suffix(addr: Ipv6Addr, suffix: Ipv6Addr) -> Ipv6Addr {
    const LOW: u128 = u64::MAX as u128;
    Ipv6Addr::from((u128::from(addr) & !LOW) | (u128::from(suffix) & LOW))
}

// ---------------------------------------------------------------- IPv4 from interfaces

/// IPv4 addresses by interface, in kernel order, plus every interface name seen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct IfAddrs {
    addrs: Vec<(String, Ipv4Addr)>,
    names: Vec<String>,
}

impl IfAddrs {
    fn add_name(&mut self, n: &str) {
        if !self.names.iter().any(|x| x == n) {
            self.names.push(n.to_string());
        }
    }
}

/// The `ALIDDNS_IPV4_ADDRS` test file: `IFNAME [ADDRESS]` per line, `#` comments.
fn parse_ipv4_file(text: &str) -> IfAddrs {
    let mut out = IfAddrs::default();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let mut f = line.split_whitespace();
        let Some(name) = f.next() else { continue };
        out.add_name(name.split(':').next().unwrap_or(name));
        if let Some(Ok(a)) = f.next().map(str::parse::<Ipv4Addr>) {
            out.addrs.push((name.to_string(), a));
        }
    }
    out
}

/// Lists IPv4 addresses with `getifaddrs(3)` (musl and glibc both implement it with
/// netlink): no child process, no ioctl per interface.
fn getifaddrs_v4() -> std::io::Result<IfAddrs> {
    let mut out = IfAddrs::default();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list it allocated, or fails and leaves it
    // untouched. We only read nodes of that list, checking every pointer for null and
    // reading `ifa_addr` as sockaddr_in only when its family says AF_INET; names are
    // NUL-terminated C strings owned by the list. Everything is copied out before the
    // list is released, exactly once, with freeifaddrs.
    unsafe {
        if libc::getifaddrs(&mut head) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut cur = head;
        while !cur.is_null() {
            let ifa = &*cur;
            if !ifa.ifa_name.is_null() {
                let name = std::ffi::CStr::from_ptr(ifa.ifa_name).to_string_lossy().into_owned();
                out.add_name(name.split(':').next().unwrap_or(&name));
                if !ifa.ifa_addr.is_null() && i32::from((*ifa.ifa_addr).sa_family) == libc::AF_INET {
                    let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                    out.addrs.push((name, Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))));
                }
            }
            cur = ifa.ifa_next;
        }
        libc::freeifaddrs(head);
    }
    Ok(out)
}

/// The first public IPv4 address of `ifname` (or its `ifname:label` aliases); every
/// address of it as a candidate, non-public ones dropped with the reason.
fn select_ipv4(addrs: &[(String, Ipv4Addr)], ifname: &str) -> (Vec<Candidate>, Option<Ipv4Addr>) {
    let mut out = Vec::new();
    let mut chosen = None;
    let ours = |n: &str| n == ifname || n.strip_prefix(ifname).is_some_and(|rest| rest.starts_with(':'));
    for (name, a) in addrs.iter().filter(|(n, _)| ours(n)) {
        let (kept, reason) = match ipv4_non_public(*a) {
            Some(why) => (false, format!("not public: {why}")),
            None if chosen.is_none() => {
                chosen = Some(*a);
                (true, "chosen: public".to_string())
            }
            None => (true, "usable, ranked lower: public, listed after the chosen one".to_string()),
        };
        out.push(Candidate { addr: IpAddr::V4(*a), source: name.clone(), kept, reason });
    }
    out.sort_by_key(|c| !(c.kept && c.reason.starts_with("chosen")));
    (out, chosen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::path::Path;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proc").join(name)
    }

    fn http() -> HttpOptions {
        HttpOptions { timeout: Duration::from_secs(3), ..Default::default() }
    }

    fn detector(name: &str) -> Detector {
        let mut d = Detector::with_proc_root(http(), fixture(name));
        d.ipv4_file = Some(fixture(name).join("ipv4-addrs"));
        d
    }

    fn req<'a>(family: Family, interface: Option<&'a str>, urls: &'a [String]) -> AddrRequest<'a> {
        AddrRequest { family, interface, ipv6_suffix: None, prefer: Ipv6Prefer::Stable, urls }
    }

    fn v6(s: &str) -> IpAddr {
        IpAddr::V6(s.parse().unwrap())
    }

    fn read(name: &str, rel: &str) -> String {
        std::fs::read_to_string(fixture(name).join(rel)).unwrap()
    }

    // ------------------------------------------------------------ parsing

    #[test]
    fn if_inet6_parses_and_skips_malformed_lines() {
        let text = "\
00000000000000000000000000000001 01 80 10 80       lo
garbage
240e038a6c1b2e00b9c2a3f4e5d61728 0b 40 00 00
240e038a6c1b2e00b9c2a3f4e5d6172 0b 40 00 00 short-addr
+40e038a6c1b2e00b9c2a3f4e5d61728 0b 40 00 00 sign
240e038a6c1b2e00b9c2a3f4e5d61728 0b 81 00 00 plen-too-big
240e038a6c1b2e00b9c2a3f4e5d61728 0b 40 00 zz bad-flags
240e038a6c1b2e00b9c2a3f4e5d61728 10b 40 00 00000321 wide
\u{0}\u{ffff} 0b 40 00 00 x

";
        let e = parse_if_inet6(text);
        assert_eq!(e.len(), 2, "{e:?}");
        assert_eq!(e[0].ifname, "lo");
        assert_eq!(e[1].ifname, "wide");
        // Flags wider than 8 bits (newer kernels, IFA_F_MANAGETEMPADDR) are kept whole.
        assert_eq!(e[1].flags, 0x321);
        assert_eq!(e[1].addr, "240e:38a:6c1b:2e00:b9c2:a3f4:e5d6:1728".parse::<Ipv6Addr>().unwrap());
    }

    #[test]
    fn default_routes_from_captures() {
        assert_eq!(default_route_v4(&read("pppoe", "net/route")).as_deref(), Some("pppoe-wan"));
        // Lowest metric wins over file order; the metric-0 unreachable route (Iface "*",
        // RTF_REJECT) is skipped.
        assert_eq!(default_route_v4(&read("dualwan", "net/route")).as_deref(), Some("eth0.2"));
        // Source-specific defaults count; the kernel's unreachable default via lo does not.
        assert_eq!(default_route_v6(&read("pppoe", "net/ipv6_route")).as_deref(), Some("pppoe-wan"));
        // An unreachable default at metric 1 via lo is skipped, then metric 512 beats 1024.
        assert_eq!(default_route_v6(&read("dualwan", "net/ipv6_route")).as_deref(), Some("eth0.2"));
        // The lead's fixture too.
        let lead = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proc-router/net");
        if let (Ok(r4), Ok(r6)) =
            (std::fs::read_to_string(lead.join("route")), std::fs::read_to_string(lead.join("ipv6_route")))
        {
            assert_eq!(default_route_v4(&r4).as_deref(), Some("pppoe-wan"));
            assert_eq!(default_route_v6(&r6).as_deref(), Some("pppoe-wan"));
        }
    }

    #[test]
    fn default_routes_tolerate_garbage() {
        assert_eq!(default_route_v4(""), None);
        assert_eq!(default_route_v4("Iface\tDestination\nonly-header"), None);
        assert_eq!(default_route_v4("h\neth0 00000000 00000000 00zz 0 0 0 00000000 0 0 0"), None);
        assert_eq!(default_route_v4("h\neth0 00000000 01010101 0003 0 0 -1 00000000 0 0 0"), None);
        // Not a default: mask is not zero.
        assert_eq!(default_route_v4("h\neth0 00000000 01010101 0003 0 0 0 00FFFFFF 0 0 0"), None);
        // Point-to-point default without a gateway is fine.
        assert_eq!(default_route_v4("h\nwg0 00000000 00000000 0001 0 0 5 00000000 0 0 0").as_deref(), Some("wg0"));
        assert_eq!(default_route_v6("x y z\n\n00 00"), None);
        let z = "00000000000000000000000000000000";
        // Not up.
        assert_eq!(default_route_v6(&format!("{z} 00 {z} 00 {z} 00000001 0 0 00000000 eth0")), None);
        // A /64 is not a default route.
        assert_eq!(default_route_v6(&format!("{z} 40 {z} 00 {z} 00000001 0 0 00000001 eth0")), None);
    }

    #[test]
    fn address_classification() {
        let np = |s: &str| ipv4_non_public(s.parse().unwrap());
        assert_eq!(np("192.168.1.1"), Some("private, RFC 1918"));
        assert_eq!(np("10.0.0.2"), Some("private, RFC 1918"));
        assert_eq!(np("172.16.0.1"), Some("private, RFC 1918"));
        assert_eq!(np("172.31.255.255"), Some("private, RFC 1918"));
        assert_eq!(np("172.32.0.1"), None);
        assert!(np("100.64.0.1").unwrap().contains("carrier-grade NAT"));
        assert!(np("100.127.255.254").unwrap().contains("carrier-grade NAT"));
        assert_eq!(np("100.128.0.1"), None);
        assert_eq!(np("100.63.255.255"), None);
        assert_eq!(np("127.0.0.1"), Some("loopback"));
        assert_eq!(np("169.254.7.7"), Some("link-local"));
        assert!(np("192.0.0.2").unwrap().contains("DS-Lite"));
        assert!(np("0.0.0.0").is_some());
        assert!(np("224.0.0.1").is_some() && np("255.255.255.255").is_some() && np("240.0.0.1").is_some());
        assert_eq!(np("183.14.22.9"), None);
        assert_eq!(np("203.0.113.7"), None, "documentation ranges are accepted (tests publish them)");

        let ng = |s: &str| ipv6_non_global(s.parse().unwrap());
        for (a, want) in [
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("::ffff:1.2.3.4", "IPv4-mapped"),
            ("::1.2.3.4", "IPv4-compatible"),
            ("ff02::1", "multicast"),
            ("fe80::1", "link-local"),
            ("febf::1", "link-local"),
            ("fec0::1", "site-local"),
            ("fd00::1", "ULA"),
            ("fc00::1", "ULA"),
            ("2001:db8::1", "documentation"),
            ("3fff::1", "documentation"),
            ("64:ff9b::1.2.3.4", "outside 2000::/3"),
            ("4000::1", "outside 2000::/3"),
        ] {
            assert!(ng(a).is_some_and(|r| r.contains(want)), "{a}: {:?}", ng(a));
        }
        for a in ["2409:8a00::1", "240e:38a::1", "2001:470:1f04:ab::2", "2002:c000:204::1", "3ffe::1", "3fff:1000::1"] {
            assert_eq!(ng(a), None, "{a}");
        }
    }

    // ------------------------------------------------------------ IPv6 selection

    #[test]
    fn pppoe_wan_stable_global_wins() {
        let e = parse_if_inet6(&read("pppoe", "net/if_inet6"));
        let (c, chosen) = select_ipv6(&e, "pppoe-wan", Ipv6Prefer::Stable);
        assert_eq!(chosen.unwrap().addr, "240e:38a:6c1b:2e00:b9c2:a3f4:e5d6:1728".parse::<Ipv6Addr>().unwrap());
        let order: Vec<String> = c.iter().map(|c| format!("{} {}", c.addr, c.kept)).collect();
        assert_eq!(
            order,
            [
                "240e:38a:6c1b:2e00:b9c2:a3f4:e5d6:1728 true", // current prefix, stable
                "240e:38a:6c1b:2e00:4d2e:9f1a:83c6:b5e0 true", // current prefix, temporary
                "240e:38a:6c0d:9f00:b9c2:a3f4:e5d6:1728 true", // old prefix, deprecated stable
                "240e:38a:6c0d:9f00:e1f2:a3b4:c5d6:e7f8 true", // old prefix, deprecated temporary
                "fe80::b9c2:a3f4:e5d6:1728 false",
            ]
        );
        assert!(c[0].reason.starts_with("chosen") && c[0].reason.contains("stable"), "{}", c[0].reason);
        assert!(c[2].reason.contains("deprecated"), "{}", c[2].reason);
        assert!(c[4].reason.contains("link-local"));
    }

    #[test]
    fn prefer_temporary_flips_stable_but_not_deprecated() {
        let e = parse_if_inet6(&read("pppoe", "net/if_inet6"));
        let (_, chosen) = select_ipv6(&e, "pppoe-wan", Ipv6Prefer::Temporary);
        assert_eq!(chosen.unwrap().addr, "240e:38a:6c1b:2e00:4d2e:9f1a:83c6:b5e0".parse::<Ipv6Addr>().unwrap());
        // Only a deprecated temporary and a fresh stable: fresh beats the kind preference.
        let lines = "\
240e038a6c0d9f00e1f2a3b4c5d6e7f8 0b 40 00 21 ppp0
240e038a6c1b2e00b9c2a3f4e5d61728 0b 40 00 00 ppp0
";
        let (_, chosen) = select_ipv6(&parse_if_inet6(lines), "ppp0", Ipv6Prefer::Temporary);
        assert_eq!(chosen.unwrap().addr, "240e:38a:6c1b:2e00:b9c2:a3f4:e5d6:1728".parse::<Ipv6Addr>().unwrap());
    }

    #[test]
    fn only_deprecated_left_is_still_used() {
        let lines =
            "240e038a6c0d9f00b9c2a3f4e5d61728 0b 40 00 20 ppp0\nfe80000000000000b9c2a3f4e5d61728 0b 0a 20 80 ppp0\n";
        let (c, chosen) = select_ipv6(&parse_if_inet6(lines), "ppp0", Ipv6Prefer::Stable);
        assert!(chosen.is_some());
        assert!(c[0].reason.contains("deprecated"));
    }

    #[test]
    fn tentative_and_dadfailed_are_dropped_with_reasons() {
        let d = detector("pppoe");
        let err = d.detect(&req(Family::V6, Some("br-guest"), &[])).unwrap_err().to_string();
        assert!(err.contains("br-guest"), "{err}");
        assert!(err.contains("240e:38a:6c1b:2e11::1 (tentative"), "{err}");
        assert!(err.contains("240e:38a:6c1b:2e11::abcd (duplicate address detection failed"), "{err}");
        assert!(err.contains("fe80::5254:ff:fe12:3458 (link-local"), "{err}");
    }

    #[test]
    fn ties_break_on_static_then_lowest_address_and_documentation_is_dropped() {
        let e = parse_if_inet6(&read("dualwan", "net/if_inet6"));
        let (c, chosen) = select_ipv6(&e, "eth0.2", Ipv6Prefer::Stable);
        // Two stable dynamic addresses in one /64: the DHCPv6 ::1a2b is lower than EUI-64.
        let chosen = chosen.unwrap();
        assert_eq!(chosen.addr, "2409:8a00:1234:5678::1a2b".parse::<Ipv6Addr>().unwrap());
        assert_eq!(chosen.prefix_len, 128);
        assert!(c.iter().any(|c| c.addr == v6("2001:db8::1") && !c.kept && c.reason.contains("documentation")));
        assert!(c.iter().any(|c| c.addr == v6("fdab:1234:5678:a::2") && !c.kept && c.reason.contains("ULA")));
        // Static beats dynamic even when higher.
        let lines = "24098a00123456780000000000000001 05 40 00 00 x\n24098a0012345678000000000000ffff 05 40 00 80 x\n";
        let (_, chosen) = select_ipv6(&parse_if_inet6(lines), "x", Ipv6Prefer::Stable);
        assert_eq!(chosen.unwrap().addr, "2409:8a00:1234:5678::ffff".parse::<Ipv6Addr>().unwrap());
        // Deterministic whatever the file order.
        let mut rev: Vec<Inet6> = e.clone();
        rev.reverse();
        let kept = |c: &[Candidate]| c.iter().filter(|c| c.kept).cloned().collect::<Vec<_>>();
        assert_eq!(kept(&select_ipv6(&rev, "eth0.2", Ipv6Prefer::Stable).0), kept(&c));
    }

    #[test]
    fn interface_and_auto_detection() {
        let d = detector("pppoe");
        let got = d.detect(&req(Family::V6, Some("pppoe-wan"), &[])).unwrap();
        assert_eq!(got.addr, v6("240e:38a:6c1b:2e00:b9c2:a3f4:e5d6:1728"));
        assert_eq!(got.source, "pppoe-wan");
        let auto = d.detect(&req(Family::V6, Some("auto"), &[])).unwrap();
        assert_eq!(auto.addr, got.addr);
        assert!(auto.source.starts_with("pppoe-wan (the IPv6 default route"), "{}", auto.source);
        // No interface: AAAA takes the default route's interface, no echo needed.
        let none = d.detect(&req(Family::V6, None, &[])).unwrap();
        assert_eq!(none.addr, got.addr);
        // br-lan carries the delegated prefix; its deprecated old prefix and ULA lose.
        let lan = d.detect(&req(Family::V6, Some("br-lan"), &[])).unwrap();
        assert_eq!(lan.addr, v6("240e:38a:6c1b:2e10::1"));
        // dualwan: auto skips the unreachable metric-1 default.
        let d2 = detector("dualwan");
        let a2 = d2.detect(&req(Family::V6, Some("auto"), &[])).unwrap();
        assert_eq!(a2.addr, v6("2409:8a00:1234:5678::1a2b"));
        let he = d2.detect(&req(Family::V6, Some("6in4-henet"), &[])).unwrap();
        assert_eq!(he.addr, v6("2001:470:1f04:ab::2"));
    }

    #[test]
    fn unknown_interface_and_missing_files_are_specific() {
        let d = detector("pppoe");
        let err = d.detect(&req(Family::V6, Some("nosuch0"), &[])).unwrap_err().to_string();
        assert!(
            err.contains("no IPv6 address on nosuch0") && err.contains("br-guest, br-lan, eth0, eth0.2, lo, pppoe-wan"),
            "{err}"
        );
        let err = d.detect(&req(Family::V4, Some("nosuch0"), &[])).unwrap_err().to_string();
        assert!(err.contains("no interface nosuch0") && err.contains("pppoe-wan"), "{err}");
        let err = d.detect(&req(Family::V4, Some("eth0"), &[])).unwrap_err().to_string();
        assert!(err.contains("no IPv4 address on eth0"), "{err}");
        let empty = std::env::temp_dir().join(format!("aliddns-addr-empty-{}", std::process::id()));
        let d = Detector::with_proc_root(http(), empty.clone());
        let err = d.detect(&req(Family::V6, Some("eth0"), &[])).unwrap_err().to_string();
        assert!(err.contains("is IPv6 enabled?") && err.contains("if_inet6"), "{err}");
        let err = d.detect(&req(Family::V6, Some("auto"), &[])).unwrap_err().to_string();
        assert!(err.contains("interface=auto") && err.contains("ipv6_route"), "{err}");
        let err = d.detect(&req(Family::V4, Some("auto"), &[])).unwrap_err().to_string();
        assert!(err.contains("interface=auto") && err.contains("route"), "{err}");
    }

    #[test]
    fn ipv6_suffix_combines_prefix_and_interface_id() {
        assert_eq!(
            with_suffix("240e:38a:6c1b:2e10::1".parse().unwrap(), "::11:22ff:fe33:4455".parse().unwrap()),
            "240e:38a:6c1b:2e10:11:22ff:fe33:4455".parse::<Ipv6Addr>().unwrap()
        );
        let d = detector("pppoe");
        let r = AddrRequest {
            ipv6_suffix: Some("::11:22ff:fe33:4455".parse().unwrap()),
            ..req(Family::V6, Some("br-lan"), &[])
        };
        let got = d.detect(&r).unwrap();
        assert_eq!(got.addr, v6("240e:38a:6c1b:2e10:11:22ff:fe33:4455"));
        assert!(got.source.contains("ipv6_suffix ::11:22ff:fe33:4455"), "{}", got.source);
        assert!(got.warnings.is_empty(), "{:?}", got.warnings);
        // The lead's fixture, as tests/ddns.rs expects it.
        let lead =
            Detector::with_proc_root(http(), Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proc-router"));
        if lead.proc_file("net/if_inet6").is_ok() {
            let r = AddrRequest {
                ipv6_suffix: Some("::11:22ff:fe33:4455".parse().unwrap()),
                ..req(Family::V6, Some("br-lan"), &[])
            };
            assert_eq!(lead.detect(&r).unwrap().addr, v6("240e:38a:6c1b:2e01:11:22ff:fe33:4455"));
            let w = lead.detect(&req(Family::V6, Some("pppoe-wan"), &[])).unwrap();
            assert_eq!(w.addr, v6("240e:38a:6c1b:2e00:211:22ff:fe33:4455"));
        }
        // Upper bits in the suffix and a non-/64 source are warned about.
        let d2 = detector("dualwan");
        let r = AddrRequest { ipv6_suffix: Some("1::5".parse().unwrap()), ..req(Family::V6, Some("eth0.2"), &[]) };
        let got = d2.detect(&r).unwrap();
        assert_eq!(got.addr, v6("2409:8a00:1234:5678::5"));
        assert_eq!(got.warnings.len(), 2, "{:?}", got.warnings);
        // A suffix needs an interface.
        let r = AddrRequest { ipv6_suffix: Some("::5".parse().unwrap()), ..req(Family::V6, None, &[]) };
        let err = d.detect(&r).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("needs an interface"), "{err}");
    }

    // ------------------------------------------------------------ IPv4

    #[test]
    fn ipv4_selection_and_classification() {
        let all = parse_ipv4_file(&read("dualwan", "ipv4-addrs"));
        assert!(all.names.contains(&"6in4-henet".to_string()));
        let (c, chosen) = select_ipv4(&all.addrs, "br-lan");
        assert_eq!(chosen, None);
        assert_eq!(c.len(), 2, "alias labels belong to their interface: {c:?}");
        let (c, chosen) = select_ipv4(&all.addrs, "eth0.2");
        assert_eq!(chosen, None);
        assert!(!c[0].kept && c[0].reason.contains("carrier-grade NAT"));
        // The public address wins over a link-local listed after it, and is listed first.
        let p = parse_ipv4_file(&read("pppoe", "ipv4-addrs"));
        let (c, chosen) = select_ipv4(&p.addrs, "pppoe-wan");
        assert_eq!(chosen, Some(Ipv4Addr::new(183, 14, 22, 9)));
        assert!(c[0].kept && !c[1].kept && c[1].reason.contains("link-local"));
        // eth0 must not match eth0.2, nor br-lan match br-lan2.
        let (c, _) = select_ipv4(&[("eth0.2".into(), Ipv4Addr::new(1, 2, 3, 4))], "eth0");
        assert!(c.is_empty());
    }

    #[test]
    fn ipv4_nic_public_address_and_auto() {
        let d = detector("pppoe");
        let got = d.detect(&req(Family::V4, Some("pppoe-wan"), &[])).unwrap();
        assert_eq!(got.addr, IpAddr::V4(Ipv4Addr::new(183, 14, 22, 9)));
        let auto = d.detect(&req(Family::V4, Some("auto"), &[])).unwrap();
        assert_eq!(auto.addr, got.addr);
        assert!(auto.source.contains("IPv4 default route"));
    }

    #[test]
    fn private_nic_without_ip_urls_fails_clearly() {
        let d = detector("dualwan");
        let err = d.detect(&req(Family::V4, Some("auto"), &[])).unwrap_err().to_string();
        assert!(err.contains("eth0.2") && err.contains("only a non-public IPv4 address"), "{err}");
        assert!(
            err.contains("100.64.12.34") && err.contains("carrier-grade NAT") && err.contains("set ip_urls"),
            "{err}"
        );
    }

    #[test]
    fn getifaddrs_sees_loopback() {
        let all = match getifaddrs_v4() {
            Ok(a) => a,
            Err(e) => return eprintln!("getifaddrs unavailable here: {e}"),
        };
        if !all.names.iter().any(|n| n == "lo") {
            return eprintln!("no lo in this sandbox");
        }
        // Through the real path: lo has only 127.0.0.1, which is not public.
        let d = Detector::with_proc_root(http(), fixture("pppoe"));
        if let Some((_, a)) = all.addrs.iter().find(|(n, _)| n == "lo") {
            assert_eq!(*a, Ipv4Addr::LOCALHOST);
            let err = d.detect(&req(Family::V4, Some("lo"), &[])).unwrap_err().to_string();
            assert!(err.contains("127.0.0.1 (not public: loopback)"), "{err}");
        }
    }

    // ------------------------------------------------------------ echo URLs

    /// A loopback HTTP server answering every request with `status` and `body`;
    /// counts requests. None when `bind` is unavailable (no IPv6 in the sandbox).
    struct Server {
        url: String,
        hits: Arc<AtomicUsize>,
    }

    fn serve(bind: &str, status: u16, body: &str) -> Option<Server> {
        let listener = std::net::TcpListener::bind(bind).ok()?;
        let addr = listener.local_addr().ok()?;
        let url = format!("http://{addr}/");
        let hits = Arc::new(AtomicUsize::new(0));
        let (h, body) = (hits.clone(), body.to_string());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { continue };
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 2048];
                let mut req = Vec::new();
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                h.fetch_add(1, Ordering::SeqCst);
                let _ = write!(
                    s,
                    "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Some(Server { url, hits })
    }

    /// A URL on which nothing listens (connection refused at once).
    fn dead_url() -> String {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", l.local_addr().unwrap());
        drop(l);
        url
    }

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
        assert!(got.candidates.iter().any(|c| c.addr == v6("2409:8a00::1") && !c.kept));
        assert!(got.candidates.iter().any(|c| c.addr.to_string() == "192.168.1.1" && !c.kept));
        assert!(got.candidates[0].kept);

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

    #[test]
    fn detector_memoizes_echo_and_failures() {
        let s = serve("127.0.0.1:0", 200, "203.0.113.7\n").unwrap();
        let urls = vec![s.url.clone()];
        let d = detector("pppoe");
        for _ in 0..20 {
            assert_eq!(d.detect(&req(Family::V4, None, &urls)).unwrap().addr.to_string(), "203.0.113.7");
        }
        assert_eq!(s.hits.load(Ordering::SeqCst), 1);
        // A failure is remembered too: the dead URL is not asked again in this pass.
        let bad = serve("127.0.0.1:0", 200, "nope").unwrap();
        let bad_urls = vec![bad.url.clone()];
        for _ in 0..3 {
            assert!(d.detect(&req(Family::V4, None, &bad_urls)).is_err());
        }
        assert_eq!(bad.hits.load(Ordering::SeqCst), 1);
        // A new detector (next pass) asks again.
        let d2 = detector("pppoe");
        d2.detect(&req(Family::V4, None, &urls)).unwrap();
        assert_eq!(s.hits.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn private_nic_falls_back_to_ip_urls_with_warning() {
        let s = serve("127.0.0.1:0", 200, "203.0.113.7").unwrap();
        let urls = vec![s.url.clone()];
        let d = detector("dualwan");
        let got = d.detect(&req(Family::V4, Some("eth0.2"), &urls)).unwrap();
        assert_eq!(got.addr.to_string(), "203.0.113.7");
        assert_eq!(got.source, s.url);
        assert!(
            got.warnings[0].contains("eth0.2 has only a non-public IPv4 address (100.64.12.34"),
            "{:?}",
            got.warnings
        );
        assert!(got.warnings[0].contains("carrier-grade NAT"));
        assert!(got.candidates[0].kept && got.candidates[0].source == s.url);
        assert!(got.candidates.iter().any(|c| c.addr.to_string() == "100.64.12.34" && !c.kept));
        let text = describe(&got);
        assert!(text.contains("100.64.12.34 eth0.2 dropped: not public"), "{text}");
        assert!(text.contains(&format!("203.0.113.7 {} kept: chosen", s.url)), "{text}");
        assert!(text.contains("warning: eth0.2 has only"), "{text}");
        // The same NIC, when the echo fails too: both reasons in one message.
        let bad = vec![dead_url()];
        let err = d.detect(&req(Family::V4, Some("eth0.2"), &bad)).unwrap_err().to_string();
        assert!(err.contains("100.64.12.34") && err.contains("ip_urls failed") && err.contains(&bad[0]), "{err}");
    }

    #[test]
    fn aaaa_without_global_address_falls_back_to_echo() {
        // A root whose default route interface has only link-local (PD-only ISP).
        let dir = std::env::temp_dir().join(format!("aliddns-addr-pdonly-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("net")).unwrap();
        std::fs::write(dir.join("net/if_inet6"), "fe80000000000000b9c2a3f4e5d61728 0b 0a 20 80 pppoe-wan\n").unwrap();
        std::fs::write(dir.join("net/ipv6_route"), read("pppoe", "net/ipv6_route")).unwrap();
        let d = Detector::with_proc_root(http(), dir.clone());
        // Echo over IPv6 needs [::1]; an IPv4-only sandbox still shows the combined error.
        let dead = dead_url();
        let err = d.detect(&req(Family::V6, None, std::slice::from_ref(&dead))).unwrap_err().to_string();
        assert!(err.contains("no usable global IPv6 address on pppoe-wan") && err.contains(&dead), "{err}");
        if let Some(s) = serve("[::1]:0", 200, "240e:38a:6c1b:2e10::1") {
            let d = Detector::with_proc_root(http(), dir.clone());
            if let Ok(got) = d.detect(&req(Family::V6, None, std::slice::from_ref(&s.url))) {
                assert_eq!(got.addr, v6("240e:38a:6c1b:2e10::1"));
                assert!(got.source.contains("kernel: no usable global IPv6 address on pppoe-wan"), "{}", got.source);
            }
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
