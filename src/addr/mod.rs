//! Where a record's address comes from: the kernel (IPv6 from `/proc/net/if_inet6`,
//! IPv4 from `getifaddrs(3)`, `auto` from the default routes in `/proc/net/route` and
//! `/proc/net/ipv6_route`; see [`kernel`]) or echo URLs that answer with the caller's
//! address ([`echo`]). No child process is spawned: routers lack `ip -j`, and parsing
//! tool output is how DDNS clients end up publishing link-local, ULA, deprecated or
//! `<?xml` values.
//!
//! IPv6 choice, in order (first difference wins; the rules live in [`classify`]):
//! 1. dropped: anything but global unicast (link-local, ULA, site-local, loopback,
//!    multicast, unspecified, IPv4-mapped/compatible, documentation `2001:db8::/32` and
//!    `3fff::/20`, anything outside `2000::/3`), and addresses still in duplicate address
//!    detection or that failed it;
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

mod classify;
mod echo;
mod kernel;

use crate::config::Ipv6Prefer;
use crate::error::{Error, Result};
use crate::http::{Family, HttpOptions};
use classify::{is_shared, select_ipv4, select_ipv6, with_suffix};
use kernel::IfAddrs;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv6Addr};
use std::path::PathBuf;

/// Environment variable overriding the proc root (`/proc`): a testing aid that lets
/// tests feed captured `net/if_inet6`, `net/route` and `net/ipv6_route` files to the
/// real binary.
pub const PROC_ROOT_ENV: &str = "ALIDDNS_PROC_ROOT";

/// Environment variable naming a file of `IFNAME ADDRESS` lines read instead of
/// `getifaddrs(3)`: the IPv4 counterpart of [`PROC_ROOT_ENV`] for tests, since no
/// `/proc` file lists IPv4 addresses by interface.
pub const IPV4_ADDRS_ENV: &str = "ALIDDNS_IPV4_ADDRS";

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

/// Where a candidate stands after ranking. Ordering and the report are decided on
/// this, never on the text of the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// The address to publish.
    Chosen,
    /// Usable, but ranked below the chosen one.
    Usable,
    /// Not usable; the reason says why.
    Dropped,
}

/// One address that was looked at, so `aliddns ip -v` can show why it won or lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The address.
    pub addr: IpAddr,
    /// The interface name or echo URL it came from.
    pub source: String,
    /// Chosen, usable or dropped.
    pub standing: Standing,
    /// Why it was kept (and how it ranked) or dropped, as `aliddns ip -v` shows it.
    pub reason: String,
}

impl Candidate {
    /// A candidate whose reason starts with its standing (`chosen: `, `usable, ranked
    /// lower: `) followed by `detail`; a dropped one's reason is `detail` alone.
    fn new(addr: IpAddr, source: String, standing: Standing, detail: String) -> Self {
        let reason = match standing {
            Standing::Chosen => format!("chosen: {detail}"),
            Standing::Usable => format!("usable, ranked lower: {detail}"),
            Standing::Dropped => detail,
        };
        Candidate { addr, source, standing, reason }
    }

    /// Whether it was usable (the chosen one is the first kept candidate).
    pub fn kept(&self) -> bool {
        self.standing != Standing::Dropped
    }
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
/// cost one read and one request, and all see the same answer. Owned by the one
/// thread that runs the pass, hence `&mut self` and no lock.
pub struct Detector {
    http: HttpOptions,
    proc_root: PathBuf,
    ipv4_file: Option<PathBuf>,
    memo: Memo,
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
        Detector { http, proc_root: root, ipv4_file: None, memo: Memo::default() }
    }

    /// The address for `req`, by the policy below; memoized per request for the life
    /// of the detector (one pass).
    ///
    /// - Interface given (`auto` resolved from the default route first): the kernel's
    ///   address on it. A non-public IPv4 there (RFC 1918, CGNAT, link-local...) means
    ///   the public address is upstream: the configured `ip_urls` are asked, with a
    ///   warning, and without them it is an error that says so.
    /// - No interface, A: echo URLs (configured, else [`echo::DEFAULT_IPV4_URLS`]).
    /// - No interface, AAAA: the default route's interface (the router's own global
    ///   address), else echo URLs (configured, else [`echo::DEFAULT_IPV6_URLS`]).
    /// - `ipv6_suffix` without an interface is an error: the prefix must come from one.
    pub fn detect(&mut self, req: &AddrRequest) -> Result<Detection> {
        let key = DetectKey {
            family: req.family,
            interface: req.interface.map(str::to_string),
            suffix: req.ipv6_suffix,
            prefer: req.prefer,
            urls: req.urls.to_vec(),
        };
        if let Some((_, r)) = self.memo.detections.iter().find(|(k, _)| *k == key) {
            return r.clone();
        }
        let r = self.detect_fresh(req);
        self.memo.detections.push((key, r.clone()));
        r
    }

    fn detect_fresh(&mut self, req: &AddrRequest) -> Result<Detection> {
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
                let kernel = match self.ipv6_from_interface("auto", None, req.prefer) {
                    Ok(d) => return Ok(d),
                    Err(kernel) => kernel,
                };
                match self.echo(Family::V6, req.urls) {
                    Ok(mut d) => {
                        d.source = format!("{} (kernel: {kernel})", d.source);
                        Ok(d)
                    }
                    Err(echo) => Err(Error::Other(format!("no IPv6 address: {kernel}; then {echo}"))),
                }
            }
        }
    }

    /// Reads `ROOT/rel` once per detector.
    fn proc_file(&mut self, rel: &'static str) -> std::result::Result<String, String> {
        if let Some(r) = self.memo.files.get(rel) {
            return r.clone();
        }
        let path = self.proc_root.join(rel);
        let r = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()));
        self.memo.files.insert(rel, r.clone());
        r
    }

    /// Resolves `auto` to the default route's interface; returns (name, label for messages).
    fn resolve(&mut self, iface: &str, family: Family) -> Result<(String, String)> {
        if iface != "auto" {
            return Ok((iface.to_string(), iface.to_string()));
        }
        let (rel, parse, fam): (_, fn(&str) -> Option<String>, _) = match family {
            Family::V4 => ("net/route", kernel::default_route_v4, "IPv4"),
            Family::V6 => ("net/ipv6_route", kernel::default_route_v6, "IPv6"),
        };
        let text = self.proc_file(rel).map_err(|e| {
            // Without IPv6 in the kernel the file is missing: say so rather than only ENOENT.
            let hint = if matches!(family, Family::V6) { " (is IPv6 enabled?)" } else { "" };
            Error::Other(format!("interface=auto: {e}{hint}"))
        })?;
        if let Some(name) = parse(&text) {
            let label = format!("{name} (the {fam} default route's interface)");
            return Ok((name, label));
        }
        Err(Error::Other(format!(
            "interface=auto: no usable {fam} default route in {} (none that is up and not unreachable/via lo)",
            self.proc_root.join(rel).display()
        )))
    }

    fn ipv6_from_interface(&mut self, iface: &str, suffix: Option<Ipv6Addr>, prefer: Ipv6Prefer) -> Result<Detection> {
        let (name, label) = self.resolve(iface, Family::V6)?;
        let text = self
            .proc_file("net/if_inet6")
            .map_err(|e| Error::Other(format!("cannot list IPv6 addresses of {label} (is IPv6 enabled?): {e}")))?;
        let entries = kernel::parse_if_inet6(&text);
        let (candidates, chosen) = select_ipv6(&entries, &name, prefer);
        let Some(chosen) = chosen else {
            if candidates.is_empty() {
                let mut names: Vec<&str> = entries.iter().map(|e| e.ifname.as_str()).collect();
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

    fn ipv4_addrs(&mut self) -> std::result::Result<IfAddrs, String> {
        if let Some(r) = &self.memo.ipv4 {
            return r.clone();
        }
        let r = match &self.ipv4_file {
            Some(p) => std::fs::read_to_string(p)
                .map(|t| kernel::parse_ipv4_file(&t))
                .map_err(|e| format!("{}: {e}", p.display())),
            None => kernel::getifaddrs_v4().map_err(|e| format!("getifaddrs: {e}")),
        };
        self.memo.ipv4 = Some(r.clone());
        r
    }

    fn ipv4_from_interface(&mut self, iface: &str, urls: &[String]) -> Result<Detection> {
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
        if urls.is_empty() {
            return Err(Error::Other(format!(
                "{label} has only a non-public IPv4 address: {found}; the public address belongs to a device \
                 upstream (modem or the ISP's NAT): set ip_urls to learn it from an echo service, or use \
                 the interface that carries the public address"
            )));
        }
        let mut d = self.echo(Family::V4, urls).map_err(|e| {
            Error::Other(format!("{label} has only a non-public IPv4 address ({found}), and the ip_urls failed: {e}"))
        })?;
        let mut w = format!(
            "{label} has only a non-public IPv4 address ({found}); publishing {} from {} instead",
            d.addr, d.source
        );
        if candidates.iter().any(|c| matches!(c.addr, IpAddr::V4(a) if is_shared(a))) {
            w.push_str(" (behind carrier-grade NAT that address is shared and usually not reachable from outside)");
        }
        d.warnings.insert(0, w);
        let mut all_c = candidates;
        all_c.append(&mut d.candidates);
        // Keep the chosen (echo) candidate first.
        if let Some(pos) = all_c.iter().position(|c| c.standing == Standing::Chosen) {
            let c = all_c.remove(pos);
            all_c.insert(0, c);
        }
        d.candidates = all_c;
        Ok(d)
    }

    /// Echo URLs for `family` (configured, else the built-in list), memoized.
    fn echo(&mut self, family: Family, configured: &[String]) -> Result<Detection> {
        let urls = if configured.is_empty() { echo::default_urls(family) } else { configured.to_vec() };
        let key = EchoKey { family, urls };
        if let Some((_, r)) = self.memo.echo.iter().find(|(k, _)| *k == key) {
            return r.clone();
        }
        let r = echo::from_urls(&key.urls, family, &self.http);
        self.memo.echo.push((key, r.clone()));
        r
    }
}

/// One-line-per-candidate report for `aliddns ip -v`: address, source, kept or
/// dropped and why, then the warnings.
pub fn describe(d: &Detection) -> String {
    let mut out = String::new();
    for c in &d.candidates {
        let verdict = if c.kept() { "kept" } else { "dropped" };
        let _ = writeln!(out, "{} {} {verdict}: {}", c.addr, c.source, c.reason);
    }
    let _ = writeln!(out, "=> {} from {}", d.addr, d.source);
    for w in &d.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    out
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::Ipv4Addr;
    use std::path::Path;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// The captured router `/proc` that tests/ddns.rs and the benchmark also use.
    pub(super) const PROC_ROUTER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/proc-router");

    pub(super) fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proc").join(name)
    }

    pub(super) fn http() -> HttpOptions {
        HttpOptions { timeout: Duration::from_secs(3), ..Default::default() }
    }

    fn detector(name: &str) -> Detector {
        let mut d = Detector::with_proc_root(http(), fixture(name));
        d.ipv4_file = Some(fixture(name).join("ipv4-addrs"));
        d
    }

    pub(super) fn req<'a>(family: Family, interface: Option<&'a str>, urls: &'a [String]) -> AddrRequest<'a> {
        AddrRequest { family, interface, ipv6_suffix: None, prefer: Ipv6Prefer::Stable, urls }
    }

    pub(super) fn v6(s: &str) -> IpAddr {
        IpAddr::V6(s.parse().unwrap())
    }

    pub(super) fn read(name: &str, rel: &str) -> String {
        std::fs::read_to_string(fixture(name).join(rel)).unwrap()
    }

    #[test]
    fn tentative_and_dadfailed_are_dropped_with_reasons() {
        let mut d = detector("pppoe");
        let err = d.detect(&req(Family::V6, Some("br-guest"), &[])).unwrap_err().to_string();
        assert!(err.contains("br-guest"), "{err}");
        assert!(err.contains("240e:38a:6c1b:2e11::1 (tentative"), "{err}");
        assert!(err.contains("240e:38a:6c1b:2e11::abcd (duplicate address detection failed"), "{err}");
        assert!(err.contains("fe80::5254:ff:fe12:3458 (link-local"), "{err}");
    }

    #[test]
    fn interface_and_auto_detection() {
        let mut d = detector("pppoe");
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
        let mut d2 = detector("dualwan");
        let a2 = d2.detect(&req(Family::V6, Some("auto"), &[])).unwrap();
        assert_eq!(a2.addr, v6("2409:8a00:1234:5678::1a2b"));
        let he = d2.detect(&req(Family::V6, Some("6in4-henet"), &[])).unwrap();
        assert_eq!(he.addr, v6("2001:470:1f04:ab::2"));
    }

    #[test]
    fn unknown_interface_and_missing_files_are_specific() {
        let mut d = detector("pppoe");
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
        let mut d = Detector::with_proc_root(http(), empty.clone());
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
        let mut d = detector("pppoe");
        let r = AddrRequest {
            ipv6_suffix: Some("::11:22ff:fe33:4455".parse().unwrap()),
            ..req(Family::V6, Some("br-lan"), &[])
        };
        let got = d.detect(&r).unwrap();
        assert_eq!(got.addr, v6("240e:38a:6c1b:2e10:11:22ff:fe33:4455"));
        assert!(got.source.contains("ipv6_suffix ::11:22ff:fe33:4455"), "{}", got.source);
        assert!(got.warnings.is_empty(), "{:?}", got.warnings);
        // The router capture, as tests/ddns.rs expects it.
        let mut router = Detector::with_proc_root(http(), PathBuf::from(PROC_ROUTER));
        let r = AddrRequest {
            ipv6_suffix: Some("::11:22ff:fe33:4455".parse().unwrap()),
            ..req(Family::V6, Some("br-lan"), &[])
        };
        assert_eq!(router.detect(&r).unwrap().addr, v6("240e:38a:6c1b:2e01:11:22ff:fe33:4455"));
        let w = router.detect(&req(Family::V6, Some("pppoe-wan"), &[])).unwrap();
        assert_eq!(w.addr, v6("240e:38a:6c1b:2e00:211:22ff:fe33:4455"));
        // Upper bits in the suffix and a non-/64 source are warned about.
        let mut d2 = detector("dualwan");
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

    #[test]
    fn ipv4_nic_public_address_and_auto() {
        let mut d = detector("pppoe");
        let got = d.detect(&req(Family::V4, Some("pppoe-wan"), &[])).unwrap();
        assert_eq!(got.addr, IpAddr::V4(Ipv4Addr::new(183, 14, 22, 9)));
        let auto = d.detect(&req(Family::V4, Some("auto"), &[])).unwrap();
        assert_eq!(auto.addr, got.addr);
        assert!(auto.source.contains("IPv4 default route"));
    }

    #[test]
    fn private_nic_without_ip_urls_fails_clearly() {
        let mut d = detector("dualwan");
        let err = d.detect(&req(Family::V4, Some("auto"), &[])).unwrap_err().to_string();
        assert!(err.contains("eth0.2") && err.contains("only a non-public IPv4 address"), "{err}");
        assert!(
            err.contains("100.64.12.34") && err.contains("carrier-grade NAT") && err.contains("set ip_urls"),
            "{err}"
        );
    }

    // ------------------------------------------------------------ echo URLs

    /// A loopback HTTP server answering every request with `status` and `body`;
    /// counts requests. None when `bind` is unavailable (no IPv6 in the sandbox).
    pub(super) struct Server {
        pub(super) url: String,
        pub(super) hits: Arc<AtomicUsize>,
    }

    pub(super) fn serve(bind: &str, status: u16, body: &str) -> Option<Server> {
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
    pub(super) fn dead_url() -> String {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", l.local_addr().unwrap());
        drop(l);
        url
    }

    #[test]
    fn detector_memoizes_echo_and_failures() {
        let s = serve("127.0.0.1:0", 200, "203.0.113.7\n").unwrap();
        let urls = vec![s.url.clone()];
        let mut d = detector("pppoe");
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
        let mut d2 = detector("pppoe");
        d2.detect(&req(Family::V4, None, &urls)).unwrap();
        assert_eq!(s.hits.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn private_nic_falls_back_to_ip_urls_with_warning() {
        let s = serve("127.0.0.1:0", 200, "203.0.113.7").unwrap();
        let urls = vec![s.url.clone()];
        let mut d = detector("dualwan");
        let got = d.detect(&req(Family::V4, Some("eth0.2"), &urls)).unwrap();
        assert_eq!(got.addr.to_string(), "203.0.113.7");
        assert_eq!(got.source, s.url);
        assert!(
            got.warnings[0].contains("eth0.2 has only a non-public IPv4 address (100.64.12.34"),
            "{:?}",
            got.warnings
        );
        assert!(got.warnings[0].contains("carrier-grade NAT"));
        assert!(got.candidates[0].kept() && got.candidates[0].source == s.url);
        assert!(got.candidates.iter().any(|c| c.addr.to_string() == "100.64.12.34" && !c.kept()));
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
        let mut d = Detector::with_proc_root(http(), dir.clone());
        // Echo over IPv6 needs [::1]; an IPv4-only sandbox still shows the combined error.
        let dead = dead_url();
        let err = d.detect(&req(Family::V6, None, std::slice::from_ref(&dead))).unwrap_err().to_string();
        assert!(err.contains("no usable global IPv6 address on pppoe-wan") && err.contains(&dead), "{err}");
        // The same over a working IPv6 echo, where this sandbox has IPv6 loopback.
        if let Some(s) = serve("[::1]:0", 200, "240e:38a:6c1b:2e10::1") {
            let mut d = Detector::with_proc_root(http(), dir.clone());
            match d.detect(&req(Family::V6, None, std::slice::from_ref(&s.url))) {
                Ok(got) => {
                    assert_eq!(got.addr, v6("240e:38a:6c1b:2e10::1"));
                    let source = &got.source;
                    assert!(source.contains("kernel: no usable global IPv6 address on pppoe-wan"), "{source}");
                }
                Err(e) => eprintln!("IPv6 loopback not connectable here ({e}); echo part skipped"),
            }
        } else {
            eprintln!("no IPv6 loopback here; echo part skipped");
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
