//! Which addresses are worth publishing, and in what order: the address-range rules
//! (never publish a private, link-local or documentation address) and the ranking of
//! an interface's addresses described in the parent module. Pure functions over
//! parsed kernel data, so every rule is tested without a network.

use super::kernel::{IFA_F_DADFAILED, IFA_F_DEPRECATED, IFA_F_PERMANENT, IFA_F_TEMPORARY, IFA_F_TENTATIVE, Inet6};
use super::{Candidate, Standing};
use crate::config::Ipv6Prefer;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an IPv4 address is not a public one, or None when it is. RFC 5737 documentation
/// ranges count as public: they never appear on a real WAN, and tests and examples
/// (this project's included) publish them.
pub(super) fn ipv4_non_public(a: Ipv4Addr) -> Option<&'static str> {
    let o = a.octets();
    Some(match o {
        [0, ..] => "\"this network\" 0.0.0.0/8",
        [10, ..] | [192, 168, ..] => "private, RFC 1918",
        [172, b, ..] if (16..32).contains(&b) => "private, RFC 1918",
        [100, b, ..] if (64..128).contains(&b) => "shared address space (carrier-grade NAT), RFC 6598",
        [127, ..] => "loopback",
        [169, 254, ..] => "link-local",
        [192, 0, 0, _] => "IETF protocol assignment 192.0.0.0/24 (e.g. DS-Lite)",
        [198, 18 | 19, ..] => "benchmarking, RFC 2544",
        [255, 255, 255, 255] => "broadcast",
        [224..=239, ..] => "multicast",
        [240..=255, ..] => "reserved 240.0.0.0/4",
        _ => return None,
    })
}

/// Whether `a` is in the carrier-grade NAT range 100.64.0.0/10 (RFC 6598).
pub(super) fn is_shared(a: Ipv4Addr) -> bool {
    let o = a.octets();
    o[0] == 100 && (64..128).contains(&o[1])
}

/// Why an IPv6 address is not global unicast worth publishing, or None when it is.
pub(super) fn ipv6_non_global(a: Ipv6Addr) -> Option<&'static str> {
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

/// The winner of [`select_ipv6`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Chosen6 {
    pub(super) addr: Ipv6Addr,
    pub(super) prefix_len: u8,
}

/// Sort key of a usable IPv6 address, compared field by field, `false` first: the
/// module's rules 2 to 5 in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Rank6 {
    deprecated: bool,
    unwanted_kind: bool,
    dynamic: bool,
    addr: u128,
}

/// Why a kernel-listed IPv6 address cannot be published, or None when it can.
fn ipv6_dropped(e: &Inet6) -> Option<String> {
    if let Some(why) = ipv6_non_global(e.addr) {
        Some(why.to_string())
    } else if e.flags & IFA_F_DADFAILED != 0 {
        Some("duplicate address detection failed".to_string())
    } else if e.flags & IFA_F_TENTATIVE != 0 {
        Some("tentative: duplicate address detection not finished".to_string())
    } else {
        None
    }
}

/// What `aliddns ip -v` says about a usable IPv6 address: prefix length, deprecated,
/// stable or temporary, static.
fn ipv6_traits(e: &Inet6) -> String {
    let mut traits = vec![format!("global /{}", e.prefix_len)];
    if e.flags & IFA_F_DEPRECATED != 0 {
        traits.push("deprecated (preferred lifetime over: an old prefix?)".into());
    }
    traits.push(if e.flags & IFA_F_TEMPORARY != 0 { "temporary (privacy)" } else { "stable" }.into());
    if e.flags & IFA_F_PERMANENT != 0 {
        traits.push("static".into());
    }
    traits.join(", ")
}

/// Applies the module's IPv6 rules to the addresses of `ifname`: candidates with the
/// chosen one first, then the other usable ones in rank order, then the dropped ones.
pub(super) fn select_ipv6(entries: &[Inet6], ifname: &str, prefer: Ipv6Prefer) -> (Vec<Candidate>, Option<Chosen6>) {
    let mut kept: Vec<(&Inet6, Rank6)> = Vec::new();
    let mut dropped = Vec::new();
    for e in entries.iter().filter(|e| e.ifname == ifname) {
        if let Some(reason) = ipv6_dropped(e) {
            dropped.push(Candidate::new(IpAddr::V6(e.addr), e.ifname.clone(), Standing::Dropped, reason));
            continue;
        }
        let temporary = e.flags & IFA_F_TEMPORARY != 0;
        let rank = Rank6 {
            deprecated: e.flags & IFA_F_DEPRECATED != 0,
            unwanted_kind: match prefer {
                Ipv6Prefer::Stable => temporary,
                Ipv6Prefer::Temporary => !temporary,
            },
            dynamic: e.flags & IFA_F_PERMANENT == 0,
            addr: u128::from(e.addr),
        };
        kept.push((e, rank));
    }
    kept.sort_by_key(|(_, rank)| *rank);
    let chosen = kept.first().map(|(e, _)| Chosen6 { addr: e.addr, prefix_len: e.prefix_len });
    let mut out: Vec<Candidate> = kept
        .iter()
        .enumerate()
        .map(|(i, (e, _))| {
            let standing = if i == 0 { Standing::Chosen } else { Standing::Usable };
            Candidate::new(IpAddr::V6(e.addr), e.ifname.clone(), standing, ipv6_traits(e))
        })
        .collect();
    out.append(&mut dropped);
    (out, chosen)
}

/// The /64 prefix of `addr` with the low 64 bits of `suffix`.
pub(super) fn with_suffix(addr: Ipv6Addr, suffix: Ipv6Addr) -> Ipv6Addr {
    const LOW: u128 = u64::MAX as u128;
    Ipv6Addr::from((u128::from(addr) & !LOW) | (u128::from(suffix) & LOW))
}

/// The first public IPv4 address of `ifname` (or its `ifname:label` aliases); every
/// address of it as a candidate, the chosen one first and the others in kernel
/// order, non-public ones dropped with the reason.
pub(super) fn select_ipv4(addrs: &[(String, Ipv4Addr)], ifname: &str) -> (Vec<Candidate>, Option<Ipv4Addr>) {
    let mut out = Vec::new();
    let mut chosen = None;
    let ours = |n: &str| n == ifname || n.strip_prefix(ifname).is_some_and(|rest| rest.starts_with(':'));
    for (name, a) in addrs.iter().filter(|(n, _)| ours(n)) {
        let (standing, reason) = match ipv4_non_public(*a) {
            Some(why) => (Standing::Dropped, format!("not public: {why}")),
            None if chosen.is_none() => {
                chosen = Some(*a);
                (Standing::Chosen, "public".to_string())
            }
            None => (Standing::Usable, "public, listed after the chosen one".to_string()),
        };
        out.push(Candidate::new(IpAddr::V4(*a), name.clone(), standing, reason));
    }
    // Stable sort: the chosen one moves to the front, the rest keep kernel order.
    out.sort_by_key(|c| c.standing != Standing::Chosen);
    (out, chosen)
}

#[cfg(test)]
mod tests {
    use super::super::kernel::{parse_if_inet6, parse_ipv4_file};
    use super::super::tests::{read, v6};
    use super::*;

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

    #[test]
    fn pppoe_wan_stable_global_wins() {
        let e = parse_if_inet6(&read("pppoe", "net/if_inet6"));
        let (c, chosen) = select_ipv6(&e, "pppoe-wan", Ipv6Prefer::Stable);
        assert_eq!(chosen.unwrap().addr, "240e:38a:6c1b:2e00:b9c2:a3f4:e5d6:1728".parse::<Ipv6Addr>().unwrap());
        let order: Vec<String> = c.iter().map(|c| format!("{} {}", c.addr, c.kept())).collect();
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
    fn ties_break_on_static_then_lowest_address_and_documentation_is_dropped() {
        let e = parse_if_inet6(&read("dualwan", "net/if_inet6"));
        let (c, chosen) = select_ipv6(&e, "eth0.2", Ipv6Prefer::Stable);
        // Two stable dynamic addresses in one /64: the DHCPv6 ::1a2b is lower than EUI-64.
        let chosen = chosen.unwrap();
        assert_eq!(chosen.addr, "2409:8a00:1234:5678::1a2b".parse::<Ipv6Addr>().unwrap());
        assert_eq!(chosen.prefix_len, 128);
        assert!(c.iter().any(|c| c.addr == v6("2001:db8::1") && !c.kept() && c.reason.contains("documentation")));
        assert!(c.iter().any(|c| c.addr == v6("fdab:1234:5678:a::2") && !c.kept() && c.reason.contains("ULA")));
        // Static beats dynamic even when higher.
        let lines = "24098a00123456780000000000000001 05 40 00 00 x\n24098a0012345678000000000000ffff 05 40 00 80 x\n";
        let (_, chosen) = select_ipv6(&parse_if_inet6(lines), "x", Ipv6Prefer::Stable);
        assert_eq!(chosen.unwrap().addr, "2409:8a00:1234:5678::ffff".parse::<Ipv6Addr>().unwrap());
        // Deterministic whatever the file order.
        let mut rev: Vec<Inet6> = e.clone();
        rev.reverse();
        let kept = |c: &[Candidate]| c.iter().filter(|c| c.kept()).cloned().collect::<Vec<_>>();
        assert_eq!(kept(&select_ipv6(&rev, "eth0.2", Ipv6Prefer::Stable).0), kept(&c));
    }

    #[test]
    fn ipv4_selection_and_classification() {
        let all = parse_ipv4_file(&read("dualwan", "ipv4-addrs"));
        assert!(all.names.contains(&"6in4-henet".to_string()));
        let (c, chosen) = select_ipv4(&all.addrs, "br-lan");
        assert_eq!(chosen, None);
        assert_eq!(c.len(), 2, "alias labels belong to their interface: {c:?}");
        let (c, chosen) = select_ipv4(&all.addrs, "eth0.2");
        assert_eq!(chosen, None);
        assert!(!c[0].kept() && c[0].reason.contains("carrier-grade NAT"));
        // The public address wins over a link-local listed after it, and is listed first.
        let p = parse_ipv4_file(&read("pppoe", "ipv4-addrs"));
        let (c, chosen) = select_ipv4(&p.addrs, "pppoe-wan");
        assert_eq!(chosen, Some(Ipv4Addr::new(183, 14, 22, 9)));
        assert!(c[0].kept() && !c[1].kept() && c[1].reason.contains("link-local"));
        // eth0 must not match eth0.2, nor br-lan match br-lan2.
        let (c, _) = select_ipv4(&[("eth0.2".into(), Ipv4Addr::new(1, 2, 3, 4))], "eth0");
        assert!(c.is_empty());
    }
}
