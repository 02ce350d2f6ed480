//! What the kernel says about addresses and routes: `/proc/net/if_inet6` (IPv6
//! addresses with their flags), `/proc/net/route` and `/proc/net/ipv6_route` (default
//! routes, for `interface=auto`), and `getifaddrs(3)` for IPv4 — no `/proc` file lists
//! IPv4 addresses by interface. Parsers skip malformed lines instead of failing, since
//! a line the kernel added in a newer format must not cost the lines we understand.
//! The file formats and flag values: docs/protocol-notes.md, "Linux address sources".

use std::net::{Ipv4Addr, Ipv6Addr};

// Address flags, linux/if_addr.h. if_inet6 prints the low 8 bits on most kernels; we
// accept any width.
pub(super) const IFA_F_TEMPORARY: u32 = 0x01;
pub(super) const IFA_F_DADFAILED: u32 = 0x08;
pub(super) const IFA_F_DEPRECATED: u32 = 0x20;
pub(super) const IFA_F_TENTATIVE: u32 = 0x40;
pub(super) const IFA_F_PERMANENT: u32 = 0x80;

// Route flags, linux/route.h and linux/ipv6_route.h.
const RTF_UP: u32 = 0x0001;
const RTF_REJECT: u32 = 0x0200;

/// One line of `/proc/net/if_inet6`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Inet6 {
    pub(super) addr: Ipv6Addr,
    pub(super) prefix_len: u8,
    pub(super) flags: u32,
    pub(super) ifname: String,
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
pub(super) fn parse_if_inet6(text: &str) -> Vec<Inet6> {
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
pub(super) fn default_route_v4(text: &str) -> Option<String> {
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

/// The interface of the lowest-metric IPv6 default route (`::/0`, any source prefix —
/// OpenWrt installs source-specific defaults — up, not unreachable, not via `lo`) in
/// `/proc/net/ipv6_route`; the first such in file order on a tie.
pub(super) fn default_route_v6(text: &str) -> Option<String> {
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

/// IPv4 addresses by interface, in kernel order, plus every interface name seen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct IfAddrs {
    pub(super) addrs: Vec<(String, Ipv4Addr)>,
    pub(super) names: Vec<String>,
}

impl IfAddrs {
    fn add_name(&mut self, n: &str) {
        if !self.names.iter().any(|x| x == n) {
            self.names.push(n.to_string());
        }
    }
}

/// The `ALIDDNS_IPV4_ADDRS` test file: `IFNAME [ADDRESS]` per line, `#` comments.
pub(super) fn parse_ipv4_file(text: &str) -> IfAddrs {
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

/// The list `getifaddrs(3)` allocated, released by `Drop` with `freeifaddrs(3)`
/// exactly once, whichever way the reader leaves.
struct IfAddrsList(*mut libc::ifaddrs);

impl IfAddrsList {
    fn new() -> std::io::Result<Self> {
        let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
        // SAFETY: getifaddrs either stores a list it allocated in `head` and returns
        // 0, or fails and leaves `head` untouched (null, which Drop skips).
        if unsafe { libc::getifaddrs(&raw mut head) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(IfAddrsList(head))
    }

    /// The nodes of the list, borrowed for as long as the list lives.
    fn iter(&self) -> impl Iterator<Item = &libc::ifaddrs> {
        // SAFETY: every `ifa_next` is null or points to the next node of the list we
        // own, which is neither changed nor freed while `self` is borrowed.
        std::iter::successors(unsafe { self.0.as_ref() }, |ifa| unsafe { ifa.ifa_next.as_ref() })
    }
}

impl Drop for IfAddrsList {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the pointer came from a successful getifaddrs and is freed only here.
            unsafe { libc::freeifaddrs(self.0) };
        }
    }
}

/// The IPv4 address of an `ifaddrs` node, when it has one.
fn ipv4_of(ifa: &libc::ifaddrs) -> Option<Ipv4Addr> {
    if ifa.ifa_addr.is_null() {
        return None;
    }
    // SAFETY: `ifa_addr` is non-null and points to a sockaddr of the node; fields are
    // read unaligned and without forming references, and `sockaddr_in` is read only
    // when the family says AF_INET, i.e. the kernel stored one there.
    unsafe {
        let family = (&raw const (*ifa.ifa_addr).sa_family).read_unaligned();
        if i32::from(family) != libc::AF_INET {
            return None;
        }
        let sin = ifa.ifa_addr.cast::<libc::sockaddr_in>().read_unaligned();
        Some(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)))
    }
}

/// Lists IPv4 addresses with `getifaddrs(3)` (musl and glibc both implement it with
/// netlink): no child process, no ioctl per interface.
pub(super) fn getifaddrs_v4() -> std::io::Result<IfAddrs> {
    let list = IfAddrsList::new()?;
    let mut out = IfAddrs::default();
    for ifa in list.iter().filter(|ifa| !ifa.ifa_name.is_null()) {
        // SAFETY: a non-null `ifa_name` is a NUL-terminated string owned by the list.
        let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) }.to_string_lossy().into_owned();
        out.add_name(name.split(':').next().unwrap_or(&name));
        if let Some(a) = ipv4_of(ifa) {
            out.addrs.push((name, a));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{PROC_ROUTER, http, read, req};
    use super::super::{Detector, Family};
    use super::*;
    use std::path::Path;

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
        // The router capture that tests/ddns.rs and the benchmark use, too.
        let router = Path::new(PROC_ROUTER).join("net");
        let r4 = std::fs::read_to_string(router.join("route")).unwrap();
        let r6 = std::fs::read_to_string(router.join("ipv6_route")).unwrap();
        assert_eq!(default_route_v4(&r4).as_deref(), Some("pppoe-wan"));
        assert_eq!(default_route_v6(&r6).as_deref(), Some("pppoe-wan"));
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
    fn getifaddrs_sees_loopback() {
        let all = match getifaddrs_v4() {
            Ok(a) => a,
            Err(e) => return eprintln!("getifaddrs unavailable here: {e}"),
        };
        if !all.names.iter().any(|n| n == "lo") {
            return eprintln!("no lo in this sandbox");
        }
        // Through the real path: lo has only 127.0.0.1, which is not public.
        let mut d = Detector::with_proc_root(http(), super::super::tests::fixture("pppoe"));
        if let Some((_, a)) = all.addrs.iter().find(|(n, _)| n == "lo") {
            assert_eq!(*a, Ipv4Addr::LOCALHOST);
            let err = d.detect(&req(Family::V4, Some("lo"), &[])).unwrap_err().to_string();
            assert!(err.contains("127.0.0.1 (not public: loopback)"), "{err}");
        }
    }
}
