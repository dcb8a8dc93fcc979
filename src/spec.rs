//! Validation: [`Request`] in, one trusted [`Spec`] out. Pure; no I/O.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use crate::naming;
use crate::settings::Settings;

pub const DEFAULT_HOST_IPV4: Ipv4Addr = Ipv4Addr::new(169, 254, 0, 1);
pub const DEFAULT_HOST_IPV6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
pub const DEFAULT_INTERFACE: &str = "eth0";
/// Kernel limits for an Ethernet-like device (veth: 68..=65535).
pub const MIN_MTU: u32 = 68;
pub const MAX_MTU: u32 = 65535;
/// IPv6 needs at least this MTU (RFC 8200); the kernel disables IPv6 below it.
pub const MIN_MTU_IPV6: u32 = 1280;

/// One address family's pair of addresses: the container's and the host's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair<A> {
    pub container: A,
    pub host: A,
}

/// Validated settings, before the target is known. Checking these first
/// means a bad value is refused before any lookup (Docker, /proc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub ipv4: Option<Pair<Ipv4Addr>>,
    pub ipv6: Option<Pair<Ipv6Addr>>,
    pub container_if: String,
    /// `None`: derived from the key (`nw-KEY`).
    pub host_if: Option<String>,
    pub mtu: Option<u32>,
    pub forwarding: bool,
    pub paranoid: bool,
}

/// A validated configuration for one container namespace: the only input
/// of the planner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// The namespace file to configure (`/proc/PID/ns/net`, `/run/netns/X`).
    pub netns: PathBuf,
    /// The key the host interface and its ownership mark derive from.
    pub key: String,
    /// The container in words (`Docker container web`, `process 42`).
    pub label: String,
    pub host_if: String,
    pub container_if: String,
    pub ipv4: Option<Pair<Ipv4Addr>>,
    pub ipv6: Option<Pair<Ipv6Addr>>,
    pub mtu: Option<u32>,
    pub forwarding: bool,
    /// Install the anti-spoofing filter on the host interface.
    pub paranoid: bool,
}

/// A validation failure: which setting, what value, why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} '{value}': {why}")]
pub struct SpecError {
    pub what: &'static str,
    pub value: String,
    pub why: String,
}

fn bad(what: &'static str, value: &str, why: impl Into<String>) -> SpecError {
    SpecError {
        what,
        value: value.escape_debug().to_string(),
        why: why.into(),
    }
}

/// Check one family's pair: the container address must be neither the
/// host's address on this link nor narwhal's default gateway address,
/// which is local on every other narwhal link of the host.
fn pair<A: Copy + PartialEq + std::fmt::Display>(
    what: &'static str,
    host_what: &'static str,
    container: Option<&str>,
    host: Option<&str>,
    parse: fn(&'static str, &str) -> Result<A, SpecError>,
    default_host: A,
) -> Result<Option<Pair<A>>, SpecError> {
    let Some(c) = container else {
        return match host {
            None => Ok(None),
            Some(h) => Err(bad(
                host_what,
                h,
                format!("given without a container {}", &what[..4]),
            )),
        };
    };
    let container = parse(what, c)?;
    if container == default_host {
        return Err(bad(
            what,
            c,
            "is narwhal's gateway address, local on every narwhal host link",
        ));
    }
    let host = match host {
        Some(h) => parse(host_what, h)?,
        None => default_host,
    };
    if host == container {
        return Err(bad(
            host_what,
            &host.to_string(),
            "equals the container address",
        ));
    }
    Ok(Some(Pair { container, host }))
}

impl Config {
    /// Validate raw settings. Pure.
    pub fn new(s: &Settings) -> Result<Config, SpecError> {
        if !s.wants_network() {
            return Err(bad(
                "request",
                "",
                "give an IPv4 address, an IPv6 address or both",
            ));
        }
        let ipv4 = pair(
            "IPv4 address",
            "host IPv4 address",
            s.ipv4.as_deref(),
            s.host_ipv4.as_deref(),
            parse_v4,
            DEFAULT_HOST_IPV4,
        )?;
        let ipv6 = pair(
            "IPv6 address",
            "host IPv6 address",
            s.ipv6.as_deref(),
            s.host_ipv6.as_deref(),
            parse_v6,
            DEFAULT_HOST_IPV6,
        )?;
        let container_if = match &s.interface {
            Some(n) => ifname("interface name", n)?,
            None => DEFAULT_INTERFACE.to_string(),
        };
        let host_if = match &s.host_interface {
            Some(n) => Some(ifname("host interface name", n)?),
            None => None,
        };
        let mtu = match &s.mtu {
            None => None,
            Some(m) => Some(parse_mtu(m, ipv6.is_some())?),
        };
        Ok(Config {
            ipv4,
            ipv6,
            container_if,
            host_if,
            mtu,
            forwarding: parse_bool("forwarding value", s.forwarding.as_deref())?,
            paranoid: parse_bool("paranoid value", s.paranoid.as_deref())?,
        })
    }

    /// The spec for the namespace `netns` of the container keyed `key`.
    pub fn for_target(self, netns: PathBuf, key: &str) -> Spec {
        Spec {
            host_if: self.host_if.unwrap_or_else(|| naming::host_ifname(key)),
            label: format!("container {key}"),
            netns,
            key: key.to_string(),
            container_if: self.container_if,
            ipv4: self.ipv4,
            ipv6: self.ipv6,
            mtu: self.mtu,
            forwarding: self.forwarding,
            paranoid: self.paranoid,
        }
    }
}

impl Spec {
    /// Validate settings for configuring `netns`, keyed by `key`.
    pub fn new(netns: PathBuf, key: &str, s: &Settings) -> Result<Spec, SpecError> {
        Ok(Config::new(s)?.for_target(netns, key))
    }

    /// The container's addresses, IPv4 first.
    pub fn container_addrs(&self) -> Vec<IpAddr> {
        let v4 = self.ipv4.map(|p| IpAddr::V4(p.container));
        let v6 = self.ipv6.map(|p| IpAddr::V6(p.container));
        v4.into_iter().chain(v6).collect()
    }
}

fn parse_bool(what: &'static str, v: Option<&str>) -> Result<bool, SpecError> {
    match v {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(bad(what, other, "expected 'true' or 'false'")),
    }
}

/// Parse a bare address (no prefix, no zone, no brackets).
fn parse_ip(what: &'static str, v: &str) -> Result<IpAddr, SpecError> {
    if v.contains('/') {
        return Err(bad(what, v, "give a bare address without a prefix length"));
    }
    if v.contains('%') {
        return Err(bad(what, v, "give an address without a zone index"));
    }
    v.parse::<IpAddr>()
        .map_err(|_| bad(what, v, "not an IP address"))
}

fn parse_v4(what: &'static str, v: &str) -> Result<Ipv4Addr, SpecError> {
    let a = match parse_ip(what, v)? {
        IpAddr::V4(a) => a,
        IpAddr::V6(_) => return Err(bad(what, v, "is an IPv6 address, expected IPv4")),
    };
    let why = if a.is_unspecified() {
        "unspecified address"
    } else if a.is_loopback() {
        "loopback address"
    } else if a.is_multicast() {
        "multicast address"
    } else if a.is_broadcast() {
        "broadcast address"
    } else if a.octets()[0] == 0 {
        "address in 0.0.0.0/8 (this network)"
    } else if a.octets()[0] >= 240 {
        "reserved address (240.0.0.0/4)"
    } else {
        return Ok(a);
    };
    Err(bad(what, v, why))
}

fn parse_v6(what: &'static str, v: &str) -> Result<Ipv6Addr, SpecError> {
    let a = match parse_ip(what, v)? {
        IpAddr::V6(a) => a,
        IpAddr::V4(_) => return Err(bad(what, v, "is an IPv4 address, expected IPv6")),
    };
    let why = if a.is_unspecified() {
        "unspecified address"
    } else if a.is_loopback() {
        "loopback address"
    } else if a.is_multicast() {
        "multicast address"
    } else if a.to_ipv4_mapped().is_some() {
        "IPv4-mapped address"
    } else {
        return Ok(a);
    };
    Err(bad(what, v, why))
}

/// Check an interface name narwhal may create: the kernel's rules
/// (`dev_valid_name`), and only letters, digits, `_`, `.` and `-`, so the
/// name is never a kernel pattern (`x%d`), never needs quoting in nftables
/// or a shell, and is not a sysctl directory (`all`, `default`).
pub fn ifname(what: &'static str, n: &str) -> Result<String, SpecError> {
    let why = if n.is_empty() {
        "empty"
    } else if n.len() > 15 {
        "longer than 15 bytes"
    } else if n == "." || n == ".." {
        "reserved name"
    } else if n == "all" || n == "default" {
        "reserved name (a sysctl directory: net.ipv4.conf.all, .default)"
    } else if n.contains('/') {
        "contains '/'"
    } else if n.contains(':') {
        "contains ':'"
    } else if n.contains('%') {
        "contains '%' (the kernel would pick a name from the pattern)"
    } else if n.chars().any(|c| c.is_whitespace()) {
        "contains whitespace"
    } else if n.chars().any(|c| c.is_control()) {
        "contains a control character"
    } else if n.starts_with('-') {
        "starts with '-'"
    } else if let Some(c) = n
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(bad(
            what,
            n,
            format!("contains '{c}' (use letters, digits, '_', '.' and '-')"),
        ));
    } else {
        return Ok(n.to_string());
    };
    Err(bad(what, n, why))
}

fn parse_mtu(m: &str, ipv6: bool) -> Result<u32, SpecError> {
    let v: u32 = m.parse().map_err(|_| bad("MTU", m, "not a whole number"))?;
    if !(MIN_MTU..=MAX_MTU).contains(&v) {
        return Err(bad("MTU", m, format!("outside {MIN_MTU}..{MAX_MTU}")));
    }
    if ipv6 && v < MIN_MTU_IPV6 {
        return Err(bad("MTU", m, format!("IPv6 needs at least {MIN_MTU_IPV6}")));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(v4: Option<&str>, v6: Option<&str>) -> Settings {
        Settings {
            ipv4: v4.map(Into::into),
            ipv6: v6.map(Into::into),
            ..Default::default()
        }
    }

    fn spec(s: &Settings) -> Result<Spec, SpecError> {
        Spec::new("/run/netns/x".into(), "x", s)
    }

    #[test]
    fn dual_stack_defaults() {
        let s = spec(&settings(Some("198.51.100.2"), Some("2001:db8::2"))).unwrap();
        assert_eq!(s.ipv4.unwrap().host, DEFAULT_HOST_IPV4);
        assert_eq!(s.ipv6.unwrap().host, DEFAULT_HOST_IPV6);
        assert_eq!(s.container_if, "eth0");
        assert_eq!(s.host_if, "nw-x");
        assert_eq!(s.mtu, None);
        assert!(!s.forwarding);
    }

    #[test]
    fn rejects_bad_input() {
        let cases: &[(Settings, &str)] = &[
            (settings(None, None), "give an IPv4 address"),
            (settings(Some("2001:db8::2"), None), "expected IPv4"),
            (settings(None, Some("198.51.100.2")), "expected IPv6"),
            (settings(Some("198.51.100.2/24"), None), "prefix length"),
            (settings(None, Some("fe80::2%eth0")), "zone index"),
            (settings(Some("0.0.0.0"), None), "unspecified"),
            (settings(Some("127.0.0.2"), None), "loopback"),
            (settings(Some("224.0.0.1"), None), "multicast"),
            (settings(Some("255.255.255.255"), None), "broadcast"),
            (settings(Some("0.1.2.3"), None), "this network"),
            (settings(Some("240.0.0.1"), None), "reserved"),
            (settings(None, Some("::")), "unspecified"),
            (settings(None, Some("::1")), "loopback"),
            (settings(None, Some("ff02::1")), "multicast"),
            (settings(None, Some("::ffff:198.51.100.2")), "IPv4-mapped"),
            (settings(Some("198.51.100.256"), None), "not an IP address"),
            (settings(Some(""), None), "not an IP address"),
            (settings(Some(" 198.51.100.2"), None), "not an IP address"),
            (
                settings(Some("169.254.0.1"), None),
                "invalid IPv4 address '169.254.0.1': is narwhal's gateway",
            ),
            (
                settings(None, Some("fe80::1")),
                "invalid IPv6 address 'fe80::1': is narwhal's gateway",
            ),
            (
                Settings {
                    host_ipv4: Some("198.51.100.1".into()),
                    ..settings(Some("169.254.0.1"), None)
                },
                "invalid IPv4 address '169.254.0.1': is narwhal's gateway",
            ),
            (
                Settings {
                    host_ipv4: Some("198.51.100.2".into()),
                    ..settings(Some("198.51.100.2"), None)
                },
                "equals the container address",
            ),
            (
                Settings {
                    host_ipv6: Some("fe80::1".into()),
                    ..settings(Some("198.51.100.2"), None)
                },
                "without a container IPv6",
            ),
            (
                Settings {
                    interface: Some("a/b".into()),
                    ..settings(Some("198.51.100.2"), None)
                },
                "'/'",
            ),
            (
                Settings {
                    interface: Some("a b".into()),
                    ..settings(Some("198.51.100.2"), None)
                },
                "whitespace",
            ),
            (
                Settings {
                    interface: Some("a:b".into()),
                    ..settings(Some("198.51.100.2"), None)
                },
                "':'",
            ),
            (
                Settings {
                    interface: Some("a\u{1}".into()),
                    ..settings(Some("198.51.100.2"), None)
                },
                "control",
            ),
            (
                Settings {
                    interface: Some("..".into()),
                    ..settings(Some("198.51.100.2"), None)
                },
                "reserved",
            ),
            (
                Settings {
                    interface: Some("".into()),
                    ..settings(Some("198.51.100.2"), None)
                },
                "empty",
            ),
            (
                Settings {
                    host_interface: Some("0123456789abcdef".into()),
                    ..settings(Some("198.51.100.2"), None)
                },
                "longer than 15",
            ),
            (
                Settings {
                    mtu: Some("0".into()),
                    ..settings(Some("198.51.100.2"), None)
                },
                "outside",
            ),
            (
                Settings {
                    mtu: Some("70000".into()),
                    ..settings(Some("198.51.100.2"), None)
                },
                "outside",
            ),
            (
                Settings {
                    mtu: Some("-1".into()),
                    ..settings(Some("198.51.100.2"), None)
                },
                "whole number",
            ),
            (
                Settings {
                    mtu: Some("1279".into()),
                    ..settings(None, Some("2001:db8::2"))
                },
                "IPv6 needs",
            ),
            (
                Settings {
                    forwarding: Some("maybe".into()),
                    ..settings(Some("198.51.100.2"), None)
                },
                "'true' or 'false'",
            ),
            (
                Settings {
                    paranoid: Some("yes".into()),
                    ..settings(Some("198.51.100.2"), None)
                },
                "invalid paranoid value",
            ),
        ];
        for (s, want) in cases {
            let err = spec(s)
                .expect_err(&format!("{s:?} must be rejected"))
                .to_string();
            assert!(err.contains(want), "{s:?}: '{err}' lacks '{want}'");
        }
    }

    #[test]
    fn refuses_names_the_kernel_rewrites_or_nftables_cannot_parse() {
        for (n, want) in [
            ("x%d", "'%'"),
            ("nw+1", "'+'"),
            ("nw\"x", "'\"'"),
            ("nw;x", "';'"),
            ("all", "sysctl directory"),
            ("default", "sysctl directory"),
            ("-x", "starts with '-'"),
        ] {
            for field in ["interface", "host-interface"] {
                let mut s = settings(Some("198.51.100.2"), None);
                crate::settings::find(field).unwrap().set(&mut s, n.into());
                let err = spec(&s).expect_err(n).to_string();
                assert!(err.contains(want), "{field} {n}: '{err}' lacks '{want}'");
            }
        }
    }

    #[test]
    fn accepts_options() {
        let s = Settings {
            host_ipv4: Some("198.18.0.1".into()),
            host_ipv6: Some("2001:db8::1".into()),
            interface: Some("net0".into()),
            host_interface: Some("veth-web".into()),
            mtu: Some("1280".into()),
            forwarding: Some("true".into()),
            ..settings(Some("198.51.100.2"), Some("2001:db8::2"))
        };
        let s = spec(&s).unwrap();
        assert_eq!(s.ipv4.unwrap().host, Ipv4Addr::new(198, 18, 0, 1));
        assert_eq!(s.container_if, "net0");
        assert_eq!(s.host_if, "veth-web");
        assert_eq!(s.mtu, Some(1280));
        assert!(s.forwarding);
        // 1279 is fine without IPv6
        let v4 = Settings {
            mtu: Some("576".into()),
            ..settings(Some("198.51.100.2"), None)
        };
        assert_eq!(spec(&v4).unwrap().mtu, Some(576));
    }
}
