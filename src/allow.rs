//! The operator's allow-list: the prefixes container addresses must lie in.
//!
//! Container addresses can come from inputs the host's operator does not
//! control (an image's own `ENV NARWHAL_IPV4=…`, annotations chosen by
//! whoever starts the container). `--allow 198.51.100.0/24,2001:db8::/48`
//! on `narwhal runtime` and `narwhal hook` bounds them. Pure; no I/O.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::spec::{Spec, DEFAULT_HOST_IPV4, DEFAULT_HOST_IPV6};

/// One prefix: an address with its host bits clear, and a length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    addr: IpAddr,
    len: u8,
}

impl Prefix {
    /// Whether `ip` lies in this prefix (never across families).
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.addr.is_ipv4() && network(ip, self.len) == self.addr
    }
}

/// `addr` with all but its first `len` bits cleared.
fn network(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            IpAddr::from((u32::from(v) & mask).to_be_bytes())
        }
        IpAddr::V6(v) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            IpAddr::from((u128::from(v) & mask).to_be_bytes())
        }
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for Prefix {
    type Err = AllowError;

    /// `ADDR/LEN`; a bare address is a single-address prefix (/32, /128).
    fn from_str(s: &str) -> Result<Prefix, AllowError> {
        let bad = |why: &str| AllowError::Invalid {
            value: crate::log::one_line(s).into_owned(),
            why: why.to_string(),
        };
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().map_err(|_| bad("not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let above = || bad(&format!("prefix length above {max}"));
        let len = match l {
            None => max,
            Some(l) if !l.is_empty() && l.len() <= 3 && l.bytes().all(|b| b.is_ascii_digit()) => {
                l.parse::<u8>().map_err(|_| above())?
            }
            Some(_) => return Err(bad("prefix length is not a number")),
        };
        if len > max {
            return Err(above());
        }
        let net = network(addr, len);
        if net != addr {
            return Err(bad(&format!("host bits set (did you mean {net}/{len}?)")));
        }
        Ok(Prefix { addr, len })
    }
}

/// The prefixes container addresses must lie in: at least one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowList(Vec<Prefix>);

/// A bad allow-list, or an address outside it. One line each.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllowError {
    #[error("invalid allowed prefix '{value}': {why}")]
    Invalid { value: String, why: String },
    #[error("empty allow-list (give prefixes such as 198.51.100.0/24,2001:db8::/48)")]
    Empty,
    #[error("address {addr} is not allowed (allowed prefixes: {allowed})")]
    NotAllowed { addr: IpAddr, allowed: AllowList },
    #[error("host address {addr} is not allowed (the default or the allowed prefixes: {allowed})")]
    HostNotAllowed { addr: IpAddr, allowed: AllowList },
}

impl AllowList {
    /// `Ok` if every address of `spec` is allowed: the container's must lie
    /// in the prefixes; a host-side address is a local address of the host,
    /// so it must be the default (169.254.0.1, fe80::1) or lie in them too.
    pub fn check_spec(&self, spec: &Spec) -> Result<(), AllowError> {
        if let Some(p) = spec.ipv4 {
            self.check(p.container.into())?;
            if p.host != DEFAULT_HOST_IPV4 {
                self.check_host(p.host.into())?;
            }
        }
        if let Some(p) = spec.ipv6 {
            self.check(p.container.into())?;
            if p.host != DEFAULT_HOST_IPV6 {
                self.check_host(p.host.into())?;
            }
        }
        Ok(())
    }

    fn check_host(&self, ip: IpAddr) -> Result<(), AllowError> {
        self.check(ip).map_err(|_| AllowError::HostNotAllowed {
            addr: ip,
            allowed: self.clone(),
        })
    }

    /// `Ok` if `ip` lies in one of the prefixes.
    pub fn check(&self, ip: IpAddr) -> Result<(), AllowError> {
        if self.0.iter().any(|p| p.contains(ip)) {
            Ok(())
        } else {
            Err(AllowError::NotAllowed {
                addr: ip,
                allowed: self.clone(),
            })
        }
    }
}

impl FromStr for AllowList {
    type Err = AllowError;

    /// Comma-separated prefixes; blanks around each are ignored.
    fn from_str(s: &str) -> Result<AllowList, AllowError> {
        if s.trim().is_empty() {
            return Err(AllowError::Empty);
        }
        s.split(',')
            .map(|p| p.trim().parse())
            .collect::<Result<Vec<_>, _>>()
            .map(AllowList)
    }
}

impl fmt::Display for AllowList {
    /// The form [`FromStr`] reads back: `198.51.100.0/24,2001:db8::/48`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(s: &str) -> AllowList {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn contains_table() {
        let l = list("198.51.100.0/24, 2001:db8::/48,198.18.0.7");
        for (addr, ok) in [
            ("198.51.100.0", true),
            ("198.51.100.255", true),
            ("198.51.101.0", false),
            ("198.51.99.255", false),
            ("198.18.0.7", true),
            ("198.18.0.8", false),
            ("2001:db8::1", true),
            ("2001:db8:0:ffff::1", true),
            ("2001:db8:1::1", false),
            ("::ffff:198.51.100.1", false), // families never mix
        ] {
            assert_eq!(l.check(ip(addr)).is_ok(), ok, "{addr}");
        }
        assert!(list("0.0.0.0/0").check(ip("1.2.3.4")).is_ok());
        assert!(list("0.0.0.0/0").check(ip("2001:db8::1")).is_err());
        assert!(list("::/0").check(ip("2001:db8::1")).is_ok());
        assert!(list("2001:db8::1/128").check(ip("2001:db8::1")).is_ok());
        assert!(list("2001:db8::1/128").check(ip("2001:db8::2")).is_err());
    }

    #[test]
    fn display_round_trips() {
        let l = list(" 198.51.100.0/24 ,2001:DB8::/48,198.18.0.7");
        assert_eq!(l.to_string(), "198.51.100.0/24,2001:db8::/48,198.18.0.7/32");
        assert_eq!(list(&l.to_string()), l);
    }

    #[test]
    fn refusal_names_address_and_prefixes() {
        let e = list("198.51.100.0/24,2001:db8::/48")
            .check(ip("198.18.0.1"))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "address 198.18.0.1 is not allowed (allowed prefixes: 198.51.100.0/24,2001:db8::/48)"
        );
    }

    #[test]
    fn spec_addresses() {
        use crate::request::Settings;
        let l = list("198.51.100.0/24,2001:db8::/48");
        let check = |v4: &str, v6: &str, h4: Option<&str>, h6: Option<&str>| {
            let s = Settings {
                ipv4: Some(v4.into()),
                ipv6: Some(v6.into()),
                host_ipv4: h4.map(Into::into),
                host_ipv6: h6.map(Into::into),
                ..Settings::default()
            };
            let spec = Spec::new("/proc/self/ns/net".into(), "k", &s).unwrap();
            l.check_spec(&spec).map_err(|e| e.to_string())
        };
        assert_eq!(check("198.51.100.2", "2001:db8::2", None, None), Ok(()));
        assert_eq!(
            check(
                "198.51.100.2",
                "2001:db8::2",
                Some("169.254.0.1"),
                Some("fe80::1")
            ),
            Ok(())
        );
        assert_eq!(
            check(
                "198.51.100.2",
                "2001:db8::2",
                Some("198.51.100.1"),
                Some("2001:db8::1")
            ),
            Ok(())
        );
        assert!(check("198.51.99.2", "2001:db8::2", None, None)
            .unwrap_err()
            .starts_with("address 198.51.99.2 is not allowed"));
        assert!(check("198.51.100.2", "2001:db9::2", None, None)
            .unwrap_err()
            .starts_with("address 2001:db9::2 is not allowed"));
        // a host-side address is the host's own: an image must not pick one
        assert_eq!(
            check("198.51.100.2", "2001:db8::2", Some("169.254.169.254"), None),
            Err(
                "host address 169.254.169.254 is not allowed (the default or the allowed \
                 prefixes: 198.51.100.0/24,2001:db8::/48)"
                    .into()
            )
        );
        assert!(check("198.51.100.2", "2001:db8::2", None, Some("fe80::2"))
            .unwrap_err()
            .starts_with("host address fe80::2 is not allowed"));
    }

    #[test]
    fn bad_lists() {
        for (s, want) in [
            ("", "empty allow-list"),
            (" ", "empty allow-list"),
            (
                "198.51.100.0/24,",
                "invalid allowed prefix '': not an IP address",
            ),
            (
                "198.51.100.0/33",
                "'198.51.100.0/33': prefix length above 32",
            ),
            ("2001:db8::/129", "prefix length above 128"),
            ("198.51.100.0/", "prefix length is not a number"),
            ("198.51.100.0/+8", "prefix length is not a number"),
            ("198.51.100.0/2555", "prefix length is not a number"),
            ("198.51.100.0/255", "prefix length above 32"),
            ("2001:db8::/999", "prefix length above 128"),
            ("example.org/24", "not an IP address"),
            ("fe80::1%eth0/64", "not an IP address"),
            (
                "198.51.100.7/24",
                "host bits set (did you mean 198.51.100.0/24?)",
            ),
            (
                "2001:db8::1/48",
                "host bits set (did you mean 2001:db8::/48?)",
            ),
            ("a\nb", "'a\\nb'"),
        ] {
            let e = s.parse::<AllowList>().unwrap_err().to_string();
            assert!(e.contains(want), "{s:?}: {e}");
            assert_eq!(e.lines().count(), 1, "{s:?}: {e}");
        }
    }
}
