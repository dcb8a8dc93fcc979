//! The vocabulary shared by the planner and the kernel layer: sides,
//! address families and the objects narwhal creates. Plain data, no I/O.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A MAC address.
pub type Mac = [u8; 6];

/// The route protocol number on every route narwhal adds (`ip route` shows
/// `proto narwhal` once `/etc/iproute2/rt_protos.d/narwhal.conf` names it).
/// Stable: routing daemons select narwhal's routes by it. Not used by any
/// common routing daemon (see rt_protos(5) and docs/multi-host.md).
pub const RTPROT_NARWHAL: u8 = 77;

/// The interface group of every narwhal host link (`ip link` shows
/// `group 77`): the host-wide source check matches it.
pub const LINK_GROUP: u32 = 77;

/// Which network namespace an object lives in.
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(ip: &IpAddr) -> Family {
        if ip.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }

    /// The prefix length of one address: 32 or 128.
    pub fn host_len(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }

    /// `4` or `6`, as in `net.ipv4` / `ip -4`.
    pub fn number(self) -> u8 {
        match self {
            Family::V4 => 4,
            Family::V6 => 6,
        }
    }
}

/// A veth pair: the host end in the host namespace, the peer created
/// directly inside the container namespace. Both ends ARP off, down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Veth {
    pub host: String,
    pub host_mac: Mac,
    /// The host end's interface group ([`LINK_GROUP`]).
    pub host_group: u32,
    pub peer: String,
    pub peer_mac: Mac,
    pub mtu: Option<u32>,
}

/// `local peer PEER/{32,128}` on `ifname`, no duplicate address detection.
/// `prefix_route: false`: the kernel adds no route to the peer of its own
/// (`noprefixroute`); narwhal adds it explicitly, with its own protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addr {
    pub ifname: String,
    pub local: IpAddr,
    pub peer: IpAddr,
    pub scope_link: bool,
    pub prefix_route: bool,
}

/// A permanent neighbour entry (ARP/NDP are off on narwhal's links).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neigh {
    pub ifname: String,
    pub ip: IpAddr,
    pub mac: Mac,
}

/// A route out of `ifname` to `dst` (`None`: default route), optionally
/// via a gateway and with a preferred source; protocol [`RTPROT_NARWHAL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub ifname: String,
    pub family: Family,
    pub dst: Option<IpAddr>,
    pub via: Option<IpAddr>,
    pub src: Option<IpAddr>,
}

/// A per-interface setting, `net.ipv{4,6}.conf.IFNAME.NAME = VALUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sysctl {
    pub family: Family,
    pub ifname: String,
    pub name: &'static str,
    pub value: &'static str,
}

impl fmt::Display for Sysctl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "net.ipv{}.conf.{}.{}={}",
            self.family.number(),
            self.ifname,
            self.name,
            self.value
        )
    }
}

/// The `--paranoid` filter of a host interface: only IPv4/IPv6 from `mac`
/// with the container's own source addresses go in, only IPv4/IPv6 to them
/// go out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub ifname: String,
    /// Who it is for, in words (`Docker container web`): kept with the
    /// filter's mark, so it can be found by name after the container is gone.
    pub label: String,
    pub mac: Mac,
    pub ipv4: Option<Ipv4Addr>,
    pub ipv6: Option<Ipv6Addr>,
}

/// What narwhal knows about an existing link.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Link {
    pub name: String,
    pub index: u32,
    pub up: bool,
    pub noarp: bool,
    pub alias: Option<String>,
    pub mac: Option<Vec<u8>>,
    pub kind: Option<String>,
    pub mtu: Option<u32>,
    /// A veth's other end (`IFLA_LINK`): its index, in the namespace that
    /// has id `peer_netnsid` here. `None`: no other end (any more).
    pub peer: Option<u32>,
    /// `IFLA_LINK_NETNSID`: `None` when the other end is in this namespace;
    /// `Some(-1)` once that namespace has ended (its id is gone).
    pub peer_netnsid: Option<i32>,
    /// The interface group.
    pub group: u32,
}

pub fn format_mac(m: &[u8]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Who holds an address on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// A local address of the host itself (on `lo` or any interface).
    Host,
    /// A narwhal link's host route: its host interface and alias.
    Link { name: String, alias: String },
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Holder::Host => f.write_str("this host"),
            Holder::Link { name, alias } => write!(f, "host interface {name} ({alias})"),
        }
    }
}
