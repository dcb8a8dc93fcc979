//! The plan: what to change, as an ordered list of [`Step`]s. Pure: no
//! I/O and no kernel types.
//!
//! - [`plan_up`]: a [`Spec`] becomes the steps that configure it.
//! - [`plan_down`]: the steps that remove a container's link and filter.
//! - A check is [`plan_up`] read back: the applier verifies each step's
//!   effect instead of making it ([`crate::apply::Applier::check`]).
//!
//! Each step names its side (host or container namespace) and prints in
//! `ip`-like words, for `--trace`, logs and error messages: the one place
//! a step's text is defined.

use std::fmt;
use std::net::IpAddr;

use crate::naming::{self, filter_table};
use crate::net::{format_mac, Addr, Family, Filter, Neigh, Route, Side, Sysctl, Veth, LINK_GROUP};
use crate::spec::Spec;

/// Whose link a teardown may delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// narwhal's link for this key: its alias `narwhal:KEY`, or (setup
    /// killed before the alias was written) its key-derived MAC.
    Key(String),
    /// Any link with a `narwhal:` alias (`remove --host-interface`).
    AnyNarwhal,
    /// The link this very run created (the undo of [`Step::CreateVeth`]).
    ThisRun,
}

/// One kernel change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Create the veth pair, the peer directly inside the container
    /// namespace under its final name. Undo: delete the host end.
    CreateVeth {
        veth: Veth,
        netns: String,
    },
    /// Mark the host end as narwhal's.
    SetAlias {
        ifname: String,
        alias: String,
    },
    /// Remove a `--paranoid` filter left by an earlier container of the
    /// same host interface name (it would attach to this link). Runs right
    /// after the link is created, so a run that fails to create it (the
    /// name is taken) never touches another container's filter. Does
    /// nothing, and prints nothing, when there is no such filter.
    DelStaleFilter {
        ifname: String,
    },
    /// The host-wide source check (nftables table `inet narwhal`), shared
    /// by every narwhal link: made by the first setup on a host, and again
    /// if it was flushed; does nothing, and prints nothing, when it is
    /// there. Undo (only if this run made it): remove it again unless a
    /// narwhal link other than `ifname` (this run's) has appeared meanwhile.
    EnsureSourceCheck {
        ifname: String,
    },
    /// Remove the shared source check unless a narwhal link other than
    /// `except` uses it (the undo of [`Step::EnsureSourceCheck`]).
    ReleaseSourceCheck {
        except: String,
    },
    /// The `--paranoid` filter. Undo: delete it (it outlives the link).
    AddFilter(Filter),
    Sysctl {
        side: Side,
        sysctl: Sysctl,
    },
    LinkUp {
        side: Side,
        ifname: String,
    },
    AddAddr {
        side: Side,
        addr: Addr,
    },
    AddNeigh {
        side: Side,
        neigh: Neigh,
    },
    AddRoute {
        side: Side,
        route: Route,
    },
    /// Teardown: delete the host link if it is `owner`'s (both ends go,
    /// with everything on them). Absent: nothing to do. `netns_ends`: the
    /// container's namespace ends with the container, and Linux removes the
    /// pair with it: narwhal leaves the pair to its namespace (after the
    /// ownership check) and deletes nothing. Deleting it instead costs
    /// ~20-40 ms of RCU waits, and waiting for the namespace to end costs
    /// up to an RCU grace period (BENCHMARKS.md, "Fourth round").
    DelLink {
        ifname: String,
        owner: Owner,
        netns_ends: bool,
    },
    /// Teardown: delete narwhal's filter of `ifname`. Absent: nothing to do.
    DelFilter {
        ifname: String,
    },
}

impl Step {
    pub fn side(&self) -> Side {
        match self {
            Step::Sysctl { side, .. }
            | Step::LinkUp { side, .. }
            | Step::AddAddr { side, .. }
            | Step::AddNeigh { side, .. }
            | Step::AddRoute { side, .. } => *side,
            _ => Side::Host,
        }
    }

    /// The step that undoes this one, for effects that outlive the veth
    /// (everything else goes with the link).
    pub fn undo(&self) -> Option<Step> {
        match self {
            Step::CreateVeth { veth, .. } => Some(Step::DelLink {
                netns_ends: false,
                ifname: veth.host.clone(),
                owner: Owner::ThisRun,
            }),
            Step::AddFilter(f) => Some(Step::DelFilter {
                ifname: f.ifname.clone(),
            }),
            // a conditional step: undone only if it made its change
            Step::EnsureSourceCheck { ifname } => Some(Step::ReleaseSourceCheck {
                except: ifname.clone(),
            }),
            _ => None,
        }
    }

    /// Steps that may find nothing to do; they are not counted by failure
    /// injection and print only when they change something.
    pub fn is_conditional(&self) -> bool {
        matches!(
            self,
            Step::DelStaleFilter { .. } | Step::EnsureSourceCheck { .. }
        )
    }
}

fn plen(a: &IpAddr) -> u8 {
    Family::of(a).host_len()
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.side())?;
        match self {
            Step::CreateVeth { veth: v, netns } => {
                let mtu = v.mtu.map(|m| format!(" mtu {m}")).unwrap_or_default();
                write!(
                    f,
                    "link add {} address {}{mtu} group {} arp off type veth peer name {} address {}{mtu} arp off netns {netns}",
                    v.host,
                    format_mac(&v.host_mac),
                    v.host_group,
                    v.peer,
                    format_mac(&v.peer_mac),
                )
            }
            Step::SetAlias { ifname, alias } => write!(f, "link set {ifname} alias {alias}"),
            Step::DelStaleFilter { ifname } => write!(
                f,
                "nft delete table netdev {} (left by an earlier container)",
                filter_table(ifname)
            ),
            Step::EnsureSourceCheck { .. } => write!(
                f,
                "nft add table inet narwhal (shared source check: a packet from interface group {LINK_GROUP} must come from an address routed back out of that interface)"
            ),
            Step::ReleaseSourceCheck { .. } => {
                f.write_str("nft delete table inet narwhal (unless another narwhal link uses it)")
            }
            Step::AddFilter(flt) => {
                write!(
                    f,
                    "nft add table netdev {} (ingress {}: accept ether saddr {}",
                    filter_table(&flt.ifname),
                    flt.ifname,
                    format_mac(&flt.mac)
                )?;
                if let Some(a) = flt.ipv4 {
                    write!(f, " ip saddr {a}")?;
                }
                if let Some(a) = flt.ipv6 {
                    write!(f, " ip6 saddr {a}")?;
                }
                f.write_str("; drop the rest; egress: only to those addresses and MAC)")
            }
            Step::Sysctl { sysctl, .. } => write!(f, "sysctl {sysctl}"),
            Step::LinkUp { ifname, .. } => write!(f, "link set {ifname} up"),
            Step::AddAddr { addr: a, .. } => {
                write!(f, "addr add {} peer {}/{}", a.local, a.peer, plen(&a.peer))?;
                if a.scope_link {
                    f.write_str(" scope link")?;
                }
                if !a.prefix_route {
                    f.write_str(" noprefixroute")?;
                }
                write!(f, " nodad dev {}", a.ifname)
            }
            Step::AddNeigh { neigh: n, .. } => write!(
                f,
                "neigh add {} lladdr {} nud permanent dev {}",
                n.ip,
                format_mac(&n.mac),
                n.ifname
            ),
            Step::AddRoute { route: r, .. } => {
                f.write_str("route add ")?;
                match r.dst {
                    None => f.write_str("default")?,
                    Some(d) => write!(f, "{d}/{}", plen(&d))?,
                }
                if let Some(g) = r.via {
                    write!(f, " via {g}")?;
                }
                write!(f, " dev {}", r.ifname)?;
                if let Some(s) = r.src {
                    write!(f, " src {s}")?;
                }
                Ok(())
            }
            Step::DelLink { ifname, .. } => write!(f, "link del {ifname}"),
            Step::DelFilter { ifname } => {
                write!(f, "nft delete table netdev {}", filter_table(ifname))
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
        sysctl: Sysctl {
            family,
            ifname: ifname.to_string(),
            name,
            value,
        },
    }
}

fn route(
    side: Side,
    ifname: &str,
    dst: Option<IpAddr>,
    via: Option<IpAddr>,
    src: Option<IpAddr>,
) -> Step {
    let family = Family::of(&dst.or(via).expect("a route has a destination or a gateway"));
    Step::AddRoute {
        side,
        route: Route {
            ifname: ifname.to_string(),
            family,
            dst,
            via,
            src,
        },
    }
}

/// The steps that configure `spec`, in order. Everything happens while
/// both ends are down, except the container end, which must be up for its
/// gateway routes; the host end comes up, and its routes to the container
/// are added, last, so no packet flows before the configuration is
/// complete. The container's `lo` comes up at the very end: it outlives
/// the veth, so no failure ever has to undo it.
pub fn plan_up(spec: &Spec) -> Vec<Step> {
    use Family::{V4, V6};
    use Side::{Container as C, Host as H};
    let (h, c) = (spec.host_if.as_str(), spec.container_if.as_str());
    let host_mac = naming::host_mac(&spec.key);
    let container_mac = naming::container_mac(&spec.key);
    let mut steps = vec![
        Step::CreateVeth {
            veth: Veth {
                host: h.to_string(),
                host_mac,
                host_group: LINK_GROUP,
                peer: c.to_string(),
                peer_mac: container_mac,
                mtu: spec.mtu,
            },
            netns: spec.netns.display().to_string(),
        },
        Step::SetAlias {
            ifname: h.to_string(),
            alias: naming::alias(&spec.key),
        },
        Step::EnsureSourceCheck {
            ifname: h.to_string(),
        },
    ];
    if spec.paranoid {
        // before anything can come up; replaces any stale table atomically
        steps.push(Step::AddFilter(Filter {
            ifname: h.to_string(),
            label: spec.label.clone(),
            mac: container_mac,
            ipv4: spec.ipv4.map(|p| p.container),
            ipv6: spec.ipv6.map(|p| p.container),
        }));
    } else {
        steps.push(Step::DelStaleFilter {
            ifname: h.to_string(),
        });
    }

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
            // per-interface IPv6 forwarding (Linux 6.17+); `forwarding`
            // alone would need net.ipv6.conf.all.forwarding=1
            steps.push(sysctl(H, V6, h, "force_forwarding", "1"));
        }
    }

    // (container address, host address) per configured family, IPv4 first;
    // addresses are added IPv6 first: the kernel finishes adding an IPv6
    // address (its local route) in a work queue, which then runs while
    // the IPv4 steps are made
    let pairs: Vec<(IpAddr, IpAddr)> = spec
        .ipv4
        .map(|p| (p.container.into(), p.host.into()))
        .into_iter()
        .chain(spec.ipv6.map(|p| (p.container.into(), p.host.into())))
        .collect();

    // Container side. Addresses go on while the link is down: the kernel
    // layer waits for IPv6's work queue before the link comes up; with the
    // link down by then, the kernel adds no route to the peer of its own,
    // so the IPv6 peer routes below are the only ones, however the host's
    // scheduling goes.
    for &(ctr, host) in pairs.iter().rev() {
        steps.push(Step::AddAddr {
            side: C,
            addr: Addr {
                ifname: c.to_string(),
                local: ctr,
                peer: host,
                scope_link: false,
                prefix_route: true,
            },
        });
        steps.push(Step::AddNeigh {
            side: C,
            neigh: Neigh {
                ifname: c.to_string(),
                ip: host,
                mac: host_mac,
            },
        });
    }
    let mut routes = Vec::new();
    for &(_, host) in &pairs {
        if host.is_ipv6() {
            // IPv4 has this route already: the kernel adds one for a peer
            routes.push(route(C, c, Some(host), None, None));
        }
        routes.push(route(C, c, None, Some(host), None));
    }
    steps.push(Step::LinkUp {
        side: C,
        ifname: c.into(),
    });
    steps.extend(routes);

    // Host side: the route to the container is narwhal's own (protocol
    // narwhal), never one the kernel derives from the peer address.
    // Addresses go on while the link is down, except IPv4's: Linux re-adds
    // the local route of every IPv4 address of a link when it comes up,
    // and 169.254.0.1's is one entry in a list shared by every narwhal link
    // (a walk of the whole list per insert), so it goes on after.
    let host_addr = |ctr: IpAddr, host: IpAddr| Step::AddAddr {
        side: H,
        addr: Addr {
            ifname: h.to_string(),
            local: host,
            peer: ctr,
            // IPv6 derives an address's scope from the address itself
            scope_link: host.is_ipv4(),
            prefix_route: false,
        },
    };
    for &(ctr, host) in pairs.iter().rev() {
        if host.is_ipv6() {
            steps.push(host_addr(ctr, host));
        }
        steps.push(Step::AddNeigh {
            side: H,
            neigh: Neigh {
                ifname: h.to_string(),
                ip: ctr,
                mac: container_mac,
            },
        });
    }
    steps.push(Step::LinkUp {
        side: H,
        ifname: h.into(),
    });
    for &(ctr, host) in &pairs {
        if host.is_ipv4() {
            steps.push(host_addr(ctr, host));
        }
    }
    // routes need the link up (and IPv4's, its source address)
    for &(ctr, host) in &pairs {
        let src = host.is_ipv4().then_some(host);
        steps.push(route(H, h, Some(ctr), None, src));
    }
    steps.push(Step::LinkUp {
        side: C,
        ifname: "lo".to_string(),
    });
    steps
}

/// How long a setup waits for a narwhal pair in its way (its host
/// interface name or one of its addresses) to go with its namespace: first
/// for the namespace to end, then for Linux to remove the pair. A stopped
/// container's namespace ends within an RCU grace period (~20 ms here) of
/// the container (see [`Step::DelLink`]).
pub const NETNS_GRACE: std::time::Duration = std::time::Duration::from_millis(200);

/// The steps that remove host interface `ifname` (if it is `owner`'s) and
/// its `--paranoid` filter. Teardown runs every step, whatever fails.
/// `netns_ends`: see [`Step::DelLink`].
pub fn plan_down(ifname: &str, owner: Owner, netns_ends: bool) -> Vec<Step> {
    vec![
        Step::DelLink {
            ifname: ifname.to_string(),
            owner,
            netns_ends,
        },
        Step::DelFilter {
            ifname: ifname.to_string(),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;

    fn spec(v4: Option<&str>, v6: Option<&str>, forwarding: bool, mtu: Option<&str>) -> Spec {
        let s = Settings {
            ipv4: v4.map(Into::into),
            ipv6: v6.map(Into::into),
            forwarding: forwarding.then(|| "true".into()),
            mtu: mtu.map(Into::into),
            ..Default::default()
        };
        Spec::new("/proc/42/ns/net".into(), "42", &s).unwrap()
    }

    fn render(steps: &[Step]) -> String {
        steps.iter().map(|s| format!("{s}\n")).collect()
    }

    #[test]
    fn dual_stack_plan() {
        let hm = format_mac(&naming::host_mac("42"));
        let cm = format_mac(&naming::container_mac("42"));
        let want = format!(
            "\
host: link add nw-42 address {hm} mtu 1500 group 77 arp off type veth peer name eth0 address {cm} mtu 1500 arp off netns /proc/42/ns/net
host: link set nw-42 alias narwhal:42
host: nft add table inet narwhal (shared source check: a packet from interface group 77 must come from an address routed back out of that interface)
host: nft delete table netdev narwhal-nw-42 (left by an earlier container)
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
host: sysctl net.ipv6.conf.nw-42.force_forwarding=1
container: addr add 2001:db8::2 peer fe80::1/128 nodad dev eth0
container: neigh add fe80::1 lladdr {hm} nud permanent dev eth0
container: addr add 198.51.100.2 peer 169.254.0.1/32 nodad dev eth0
container: neigh add 169.254.0.1 lladdr {hm} nud permanent dev eth0
container: link set eth0 up
container: route add default via 169.254.0.1 dev eth0
container: route add fe80::1/128 dev eth0
container: route add default via fe80::1 dev eth0
host: addr add fe80::1 peer 2001:db8::2/128 noprefixroute nodad dev nw-42
host: neigh add 2001:db8::2 lladdr {cm} nud permanent dev nw-42
host: neigh add 198.51.100.2 lladdr {cm} nud permanent dev nw-42
host: link set nw-42 up
host: addr add 169.254.0.1 peer 198.51.100.2/32 scope link noprefixroute nodad dev nw-42
host: route add 198.51.100.2/32 dev nw-42 src 169.254.0.1
host: route add 2001:db8::2/128 dev nw-42
container: link set lo up
"
        );
        let s = spec(
            Some("198.51.100.2"),
            Some("2001:db8::2"),
            true,
            Some("1500"),
        );
        assert_eq!(render(&plan_up(&s)), want);
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
        assert!(matches!(&steps[3], Step::AddFilter(f) if f.ipv6.is_none()));
        let cm = format_mac(&naming::container_mac("42"));
        assert_eq!(
            steps[3].to_string(),
            format!("host: nft add table netdev narwhal-nw-42 (ingress nw-42: accept ether saddr {cm} ip saddr 198.51.100.2; drop the rest; egress: only to those addresses and MAC)")
        );
        assert_eq!(
            steps[3].undo().unwrap().to_string(),
            "host: nft delete table netdev narwhal-nw-42"
        );
        let without = Spec {
            paranoid: false,
            ..spec
        };
        let plain = plan_up(&without);
        assert!(!plain.iter().any(|s| matches!(s, Step::AddFilter(_))));
        // the stale filter is removed only once the name is ours
        assert!(matches!(&plain[3], Step::DelStaleFilter { .. }));
    }

    #[test]
    fn only_the_link_and_the_filter_need_an_undo() {
        let s = spec(Some("198.51.100.2"), Some("2001:db8::2"), true, None);
        let undos: Vec<String> = plan_up(&s)
            .iter()
            .filter(|s| !s.is_conditional())
            .filter_map(Step::undo)
            .map(|u| u.to_string())
            .collect();
        assert_eq!(undos, ["host: link del nw-42"]);
    }

    #[test]
    fn ipv4_only_disables_ipv6_on_both_ends() {
        let p = render(&plan_up(&spec(Some("198.51.100.2"), None, false, None)));
        assert!(p.contains("host: sysctl net.ipv6.conf.nw-42.disable_ipv6=1\n"));
        assert!(p.contains("container: sysctl net.ipv6.conf.eth0.disable_ipv6=1\n"));
        assert!(!p.contains("fe80::1"));
        assert!(!p.contains("forwarding"));
        assert!(!p.contains(" mtu "));
    }

    #[test]
    fn ipv6_only_has_no_ipv4_address() {
        let p = render(&plan_up(&spec(None, Some("2001:db8::2"), true, None)));
        assert!(!p.contains("169.254.0.1"));
        assert!(!p.contains("net.ipv4.conf.nw-42.forwarding"));
        assert!(p.contains("net.ipv6.conf.nw-42.force_forwarding=1"));
        assert!(p.contains("host: sysctl net.ipv4.conf.nw-42.rp_filter=1"));
    }

    #[test]
    fn teardown_plan() {
        let p = render(&plan_down("nw-42", Owner::Key("42".into()), false));
        assert_eq!(
            p,
            "host: link del nw-42\nhost: nft delete table netdev narwhal-nw-42\n"
        );
    }
}
