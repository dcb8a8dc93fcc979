//! The plan: a [`Spec`] becomes an ordered list of kernel changes. Pure.
//!
//! Each [`Step`] names its side (host or container namespace) and prints in
//! `ip`-like words, for `--trace`, logs and error messages. Only one step
//! needs an undo: creating the pair (undo: delete the host end, which
//! removes both ends with every address, route, neighbour and sysctl on
//! them). The other effect that outlives the pair, the container's `lo`
//! coming up, is the last step, so no failure has to undo it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use crate::naming::{self, format_mac};
use crate::spec::Spec;

/// Which network namespace a step acts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Host,
    Container,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Host => "host",
            Side::Container => "container",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

/// One kernel change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Create the veth pair; the peer is created directly inside the
    /// container namespace under its final name. Both ends: ARP off, down.
    CreateVeth {
        host: String,
        container: String,
        netns: PathBuf,
        host_mac: [u8; 6],
        container_mac: [u8; 6],
        mtu: Option<u32>,
    },
    /// Mark the host end as narwhal's.
    SetAlias {
        ifname: String,
        alias: String,
    },
    /// The `--paranoid` filter on ingress of the host end: only IPv4/IPv6
    /// from `mac` with the container's own source addresses pass.
    AddFilter {
        ifname: String,
        mac: [u8; 6],
        ipv4: Option<Ipv4Addr>,
        ipv6: Option<Ipv6Addr>,
    },
    /// Remove a filter left by an earlier container of the same host
    /// interface name (it would attach to the new interface). Not part of
    /// any plan: the engine adds it when such a filter is marked.
    DelStaleFilter {
        ifname: String,
    },
    /// `/proc/sys/net/ipv{4,6}/conf/IFNAME/NAME = VALUE`.
    Sysctl {
        side: Side,
        family: Family,
        ifname: String,
        name: &'static str,
        value: &'static str,
    },
    LinkUp {
        side: Side,
        ifname: String,
    },
    /// `local peer PEER/{32,128}`, no duplicate address detection;
    /// `noprefixroute`: without the kernel's route to the peer.
    AddAddr {
        side: Side,
        ifname: String,
        local: IpAddr,
        peer: IpAddr,
        scope_link: bool,
        noprefixroute: bool,
    },
    /// Permanent neighbour entry (ARP/NDP are off).
    AddNeigh {
        side: Side,
        ifname: String,
        ip: IpAddr,
        mac: [u8; 6],
    },
    /// Route to `dst` (None: default route), optionally via a gateway and
    /// with a preferred source; always route protocol `narwhal`
    /// ([`naming::RTPROT_NARWHAL`]).
    AddRoute {
        side: Side,
        ifname: String,
        dst: Option<IpAddr>,
        via: Option<IpAddr>,
        src: Option<IpAddr>,
    },
}

impl Step {
    pub fn side(&self) -> Side {
        match self {
            Step::CreateVeth { .. }
            | Step::SetAlias { .. }
            | Step::AddFilter { .. }
            | Step::DelStaleFilter { .. } => Side::Host,
            Step::Sysctl { side, .. }
            | Step::LinkUp { side, .. }
            | Step::AddAddr { side, .. }
            | Step::AddNeigh { side, .. }
            | Step::AddRoute { side, .. } => *side,
        }
    }
}

fn plen(a: &IpAddr) -> u8 {
    if a.is_ipv4() {
        32
    } else {
        128
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.side())?;
        match self {
            Step::CreateVeth {
                host,
                container,
                netns,
                host_mac,
                container_mac,
                mtu,
            } => {
                write!(f, "link add {host} address {}", format_mac(host_mac))?;
                if let Some(m) = mtu {
                    write!(f, " mtu {m}")?;
                }
                write!(
                    f,
                    " arp off type veth peer name {container} address {}",
                    format_mac(container_mac)
                )?;
                if let Some(m) = mtu {
                    write!(f, " mtu {m}")?;
                }
                write!(f, " arp off netns {}", netns.display())
            }
            Step::SetAlias { ifname, alias } => write!(f, "link set {ifname} alias {alias}"),
            Step::DelStaleFilter { ifname } => write!(
                f,
                "nft delete table netdev {} (left by an earlier container)",
                crate::nft::table_name(ifname)
            ),
            Step::AddFilter {
                ifname,
                mac,
                ipv4,
                ipv6,
            } => {
                write!(
                    f,
                    "nft add table netdev {} (ingress {ifname}: accept ether saddr {}",
                    crate::nft::table_name(ifname),
                    format_mac(mac)
                )?;
                if let Some(a) = ipv4 {
                    write!(f, " ip saddr {a}")?;
                }
                if let Some(a) = ipv6 {
                    write!(f, " ip6 saddr {a}")?;
                }
                f.write_str("; drop the rest; egress: only to those addresses and MAC)")
            }
            Step::Sysctl {
                family,
                ifname,
                name,
                value,
                ..
            } => {
                let v = if *family == Family::V4 { 4 } else { 6 };
                write!(f, "sysctl net.ipv{v}.conf.{ifname}.{name}={value}")
            }
            Step::LinkUp { ifname, .. } => write!(f, "link set {ifname} up"),
            Step::AddAddr {
                ifname,
                local,
                peer,
                scope_link,
                noprefixroute,
                ..
            } => {
                write!(f, "addr add {local} peer {peer}/{}", plen(peer))?;
                if *scope_link {
                    f.write_str(" scope link")?;
                }
                f.write_str(" nodad")?;
                if *noprefixroute {
                    f.write_str(" noprefixroute")?;
                }
                write!(f, " dev {ifname}")
            }
            Step::AddNeigh {
                ifname, ip, mac, ..
            } => {
                write!(
                    f,
                    "neigh add {ip} lladdr {} nud permanent dev {ifname}",
                    format_mac(mac)
                )
            }
            Step::AddRoute {
                ifname,
                dst,
                via,
                src,
                ..
            } => {
                f.write_str("route add ")?;
                match dst {
                    None => f.write_str("default")?,
                    Some(d) => write!(f, "{d}/{}", plen(d))?,
                }
                if let Some(g) = via {
                    write!(f, " via {g}")?;
                }
                write!(f, " dev {ifname} proto narwhal")?;
                if let Some(a) = src {
                    write!(f, " src {a}")?;
                }
                Ok(())
            }
        }
    }
}

fn sysctl(
    side: Side,
    family: Family,
    ifname: &str,
    name: &'static str,
    value: &'static str,
) -> Step {
    Step::Sysctl {
        side,
        family,
        ifname: ifname.to_string(),
        name,
        value,
    }
}

/// The steps that configure `spec`, in order. Everything up to the last
/// step happens while both ends are down, except the container end, which
/// must be up for its gateway routes; the host end comes up last, so no
/// packet flows before the configuration is complete.
pub fn plan_up(spec: &Spec) -> Vec<Step> {
    let (h, c) = (spec.host_if.as_str(), spec.container_if.as_str());
    let host_mac = naming::host_mac(&spec.key);
    let container_mac = naming::container_mac(&spec.key);
    let mut steps = vec![
        Step::CreateVeth {
            host: h.to_string(),
            container: c.to_string(),
            netns: spec.netns.clone(),
            host_mac,
            container_mac,
            mtu: spec.mtu,
        },
        Step::SetAlias {
            ifname: h.to_string(),
            alias: naming::alias(&spec.key),
        },
    ];
    if spec.paranoid {
        // before anything can come up
        steps.push(Step::AddFilter {
            ifname: h.to_string(),
            mac: container_mac,
            ipv4: spec.ipv4.map(|p| p.container),
            ipv6: spec.ipv6.map(|p| p.container),
        });
    }
    use Family::{V4, V6};
    use Side::{Container as C, Host as H};

    // sysctls first: nothing may autoconfigure or answer before they hold
    steps.push(sysctl(H, V4, h, "rp_filter", "1"));
    if spec.ipv6.is_some() {
        for (side, ifname) in [(H, h), (C, c)] {
            // no kernel-generated link-local address: the peer could only
            // reach it through a NOARP neighbour entry (i.e. its own MAC)
            steps.push(sysctl(side, V6, ifname, "addr_gen_mode", "1"));
            steps.push(sysctl(side, V6, ifname, "disable_ipv6", "0"));
            steps.push(sysctl(side, V6, ifname, "autoconf", "0"));
            steps.push(sysctl(side, V6, ifname, "accept_ra", "0"));
        }
    } else {
        steps.push(sysctl(H, V6, h, "disable_ipv6", "1"));
        steps.push(sysctl(C, V6, c, "disable_ipv6", "1"));
    }
    if spec.forwarding {
        if spec.ipv4.is_some() {
            steps.push(sysctl(H, V4, h, "forwarding", "1"));
        }
        if spec.ipv6.is_some() {
            steps.push(sysctl(H, V6, h, "forwarding", "1"));
        }
    }

    // (container address, host address) per configured family, IPv4 first
    let pairs: Vec<(IpAddr, IpAddr)> = spec
        .ipv4
        .map(|p| (p.container.into(), p.host.into()))
        .into_iter()
        .chain(spec.ipv6.map(|p| (p.container.into(), p.host.into())))
        .collect();

    // container side. Addresses go on while the link is down: IPv6
    // finishes adding one (its local route) in a work queue, which
    // `NetOps::add_addr` waits for; with the link down by then, the kernel
    // adds no route to the peer of its own, so the IPv6 peer routes below
    // are the only ones, however the host's scheduling goes.
    let mut routes = Vec::new();
    for &(ctr, host) in &pairs {
        let ifname = || c.to_string();
        steps.push(Step::AddAddr {
            side: C,
            ifname: ifname(),
            local: ctr,
            peer: host,
            scope_link: false,
            noprefixroute: false,
        });
        steps.push(Step::AddNeigh {
            side: C,
            ifname: ifname(),
            ip: host,
            mac: host_mac,
        });
        if host.is_ipv6() {
            // IPv4 has this route already: the kernel adds one for a peer
            routes.push(Step::AddRoute {
                side: C,
                ifname: ifname(),
                dst: Some(host),
                via: None,
                src: None,
            });
        }
        routes.push(Step::AddRoute {
            side: C,
            ifname: ifname(),
            dst: None,
            via: Some(host),
            src: None,
        });
    }
    steps.push(Step::LinkUp {
        side: C,
        ifname: c.into(),
    });
    steps.extend(routes);

    // host side; IPv6 derives an address's scope from the address itself.
    // The routes to the container are narwhal's own (below), not the
    // kernel's: IPv4 would add one for the peer, as `proto kernel`.
    for &(ctr, host) in &pairs {
        let ifname = || h.to_string();
        let scope_link = host.is_ipv4();
        steps.push(Step::AddAddr {
            side: H,
            ifname: ifname(),
            local: host,
            peer: ctr,
            scope_link,
            noprefixroute: host.is_ipv4(),
        });
        steps.push(Step::AddNeigh {
            side: H,
            ifname: ifname(),
            ip: ctr,
            mac: container_mac,
        });
    }
    steps.push(Step::LinkUp {
        side: H,
        ifname: h.into(),
    });
    // both families refuse routes over a link that is down
    for &(ctr, host) in &pairs {
        steps.push(Step::AddRoute {
            side: H,
            ifname: h.into(),
            dst: Some(ctr),
            via: None,
            src: host.is_ipv4().then_some(host),
        });
    }
    // Last, so that no failure ever needs to undo it: lo outlives the veth.
    steps.push(Step::LinkUp {
        side: C,
        ifname: "lo".to_string(),
    });
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Settings;

    fn render(v4: Option<&str>, v6: Option<&str>, forwarding: bool, mtu: Option<&str>) -> String {
        let s = Settings {
            ipv4: v4.map(Into::into),
            ipv6: v6.map(Into::into),
            forwarding: forwarding.then(|| "true".into()),
            mtu: mtu.map(Into::into),
            ..Default::default()
        };
        let spec = Spec::new("/proc/42/ns/net".into(), "42", &s).unwrap();
        plan_up(&spec).iter().map(|s| format!("{s}\n")).collect()
    }

    #[test]
    fn dual_stack_plan() {
        let hm = format_mac(&naming::host_mac("42"));
        let cm = format_mac(&naming::container_mac("42"));
        let want = format!(
            "\
host: link add nw-42 address {hm} mtu 1500 arp off type veth peer name eth0 address {cm} mtu 1500 arp off netns /proc/42/ns/net
host: link set nw-42 alias narwhal:42
host: sysctl net.ipv4.conf.nw-42.rp_filter=1
host: sysctl net.ipv6.conf.nw-42.addr_gen_mode=1
host: sysctl net.ipv6.conf.nw-42.disable_ipv6=0
host: sysctl net.ipv6.conf.nw-42.autoconf=0
host: sysctl net.ipv6.conf.nw-42.accept_ra=0
container: sysctl net.ipv6.conf.eth0.addr_gen_mode=1
container: sysctl net.ipv6.conf.eth0.disable_ipv6=0
container: sysctl net.ipv6.conf.eth0.autoconf=0
container: sysctl net.ipv6.conf.eth0.accept_ra=0
host: sysctl net.ipv4.conf.nw-42.forwarding=1
host: sysctl net.ipv6.conf.nw-42.forwarding=1
container: addr add 198.51.100.2 peer 169.254.0.1/32 nodad dev eth0
container: neigh add 169.254.0.1 lladdr {hm} nud permanent dev eth0
container: addr add 2001:db8::2 peer fe80::1/128 nodad dev eth0
container: neigh add fe80::1 lladdr {hm} nud permanent dev eth0
container: link set eth0 up
container: route add default via 169.254.0.1 dev eth0 proto narwhal
container: route add fe80::1/128 dev eth0 proto narwhal
container: route add default via fe80::1 dev eth0 proto narwhal
host: addr add 169.254.0.1 peer 198.51.100.2/32 scope link nodad noprefixroute dev nw-42
host: neigh add 198.51.100.2 lladdr {cm} nud permanent dev nw-42
host: addr add fe80::1 peer 2001:db8::2/128 nodad dev nw-42
host: neigh add 2001:db8::2 lladdr {cm} nud permanent dev nw-42
host: link set nw-42 up
host: route add 198.51.100.2/32 dev nw-42 proto narwhal src 169.254.0.1
host: route add 2001:db8::2/128 dev nw-42 proto narwhal
container: link set lo up
"
        );
        assert_eq!(
            render(
                Some("198.51.100.2"),
                Some("2001:db8::2"),
                true,
                Some("1500")
            ),
            want
        );
    }

    #[test]
    fn paranoid_filter_comes_right_after_the_link() {
        let s = Settings {
            ipv4: Some("198.51.100.2".into()),
            paranoid: Some("true".into()),
            ..Default::default()
        };
        let spec = Spec::new("/proc/42/ns/net".into(), "42", &s).unwrap();
        let steps = plan_up(&spec);
        assert!(matches!(steps[2], Step::AddFilter { ipv6: None, .. }));
        let cm = format_mac(&naming::container_mac("42"));
        assert_eq!(
            steps[2].to_string(),
            format!("host: nft add table netdev narwhal-nw-42 (ingress nw-42: accept ether saddr {cm} ip saddr 198.51.100.2; drop the rest; egress: only to those addresses and MAC)")
        );
        let without = Spec {
            paranoid: false,
            ..spec
        };
        assert!(!plan_up(&without)
            .iter()
            .any(|s| matches!(s, Step::AddFilter { .. })));
    }

    #[test]
    fn ipv4_only_disables_ipv6_on_both_ends() {
        let p = render(Some("198.51.100.2"), None, false, None);
        assert!(p.contains("host: sysctl net.ipv6.conf.nw-42.disable_ipv6=1\n"));
        assert!(p.contains("container: sysctl net.ipv6.conf.eth0.disable_ipv6=1\n"));
        assert!(!p.contains("fe80::1"));
        assert!(!p.contains("forwarding"));
        assert!(!p.contains(" mtu "));
    }

    #[test]
    fn ipv6_only_has_no_ipv4_address() {
        let p = render(None, Some("2001:db8::2"), true, None);
        assert!(!p.contains("169.254.0.1"));
        assert!(!p.contains("net.ipv4.conf.nw-42.forwarding"));
        assert!(p.contains("net.ipv6.conf.nw-42.forwarding=1"));
        assert!(p.contains("host: sysctl net.ipv4.conf.nw-42.rp_filter=1"));
    }
}
