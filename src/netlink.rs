//! The only module that talks to the kernel: rtnetlink requests and
//! `/proc/sys` writes, one method per verb, in one network namespace.
//!
//! Every request asks for an ACK; kernel errors come back as `io::Error`
//! carrying the errno, so callers print the OS text. Links are addressed by
//! name and looked up one at a time (never a dump), with the index cached.
//!
//! A verb returns when its effect is complete, not merely accepted: the
//! kernel finishes two of them later, in work queues, which a loaded host
//! can delay by tens of milliseconds, past narwhal's exit.
//! - An IPv6 address (even `nodad`) gets its local route (and, if the link
//!   is up by then, a route to its peer) only when the address work runs.
//!   Until then nothing addressed to it is received. [`NetOps::add_addr`]
//!   waits for the local route; as the plan adds addresses while the link
//!   is down, the kernel's peer route is then never added (it needs the
//!   link up), whatever the timing: the routes are always the same.
//! - A carrier change (a veth end coming up turns the carrier on at both
//!   ends) takes effect when the link-watch work runs: until then the link
//!   drops what it should send, its operational state stays down and IPv6
//!   has not seen it come up. [`NetOps::set_up`] has the kernel run that
//!   work for both ends of the pair.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage, AddressScope};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::packet_core::{
    NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST,
};
use rtnetlink::{Handle, RouteMessageBuilder};

use crate::naming::RTPROT_NARWHAL;
use crate::netns::{Netns, NetnsError};
use crate::plan::Family;

/// What narwhal needs to know about an existing link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkState {
    pub index: u32,
    pub up: bool,
    pub alias: Option<String>,
    pub mac: Option<Vec<u8>>,
    pub kind: Option<String>,
}

/// Kernel verbs in one network namespace. Implemented by [`Nl`] for the
/// real kernel and by recording fakes in tests.
#[allow(async_fn_in_trait)]
pub trait NetOps {
    /// Create a veth pair whose peer is created inside `peer_ns`.
    async fn create_veth(&self, veth: &VethSpec<'_>, peer_ns: BorrowedFd<'_>) -> io::Result<()>;
    /// Look up one link by name (not a dump). `None`: no such link.
    async fn link(&self, name: &str) -> io::Result<Option<LinkState>>;
    async fn set_alias(&self, name: &str, alias: &str) -> io::Result<()>;
    /// Set the link up or down. Up: returns once the carrier change this
    /// causes has taken effect at both ends of a veth pair.
    async fn set_up(&self, name: &str, up: bool) -> io::Result<()>;
    async fn del_link(&self, name: &str) -> io::Result<()>;
    /// Add `local peer PEER/{32,128}`, no duplicate address detection;
    /// `noprefixroute`: the kernel adds no route to the peer. Returns once
    /// the kernel receives packets for `local` on `name`.
    async fn add_addr(
        &self,
        name: &str,
        local: IpAddr,
        peer: IpAddr,
        scope_link: bool,
        noprefixroute: bool,
    ) -> io::Result<()>;
    async fn add_neigh(&self, name: &str, ip: IpAddr, mac: &[u8; 6]) -> io::Result<()>;
    /// Add a route with protocol [`RTPROT_NARWHAL`], preferred source
    /// `src` if given.
    async fn add_route(
        &self,
        name: &str,
        dst: Option<IpAddr>,
        via: Option<IpAddr>,
        src: Option<IpAddr>,
    ) -> io::Result<()>;
    /// Install the `--paranoid` filter on host interface `ifname`.
    fn add_filter(
        &self,
        ifname: &str,
        mac: &[u8; 6],
        v4: Option<Ipv4Addr>,
        v6: Option<Ipv6Addr>,
    ) -> io::Result<()>;
    /// Remove narwhal's filter of `ifname`; `Ok(false)`: there was none.
    fn del_filter(&self, ifname: &str) -> io::Result<bool>;
    /// Write `/proc/sys/net/ipv{4,6}/conf/IFNAME/NAME`.
    fn sysctl(&self, family: Family, ifname: &str, name: &str, value: &str) -> io::Result<()>;
}

/// The veth pair to create.
#[derive(Debug, Clone, Copy)]
pub struct VethSpec<'a> {
    pub host: &'a str,
    pub host_mac: &'a [u8; 6],
    pub peer: &'a str,
    pub peer_mac: &'a [u8; 6],
    pub mtu: Option<u32>,
}

/// An rtnetlink socket bound to one network namespace.
pub struct Nl {
    handle: Handle,
    /// Set for a foreign namespace: `/proc/sys` writes must enter it.
    netns: Option<Arc<Netns>>,
    index: RefCell<HashMap<String, u32>>,
    /// `/proc/sys/net` of this namespace, opened once: each absolute
    /// `/proc/sys/net/...` lookup walks a list with one entry per network
    /// namespace on the machine, which grows with the number of containers.
    sysctl_dir: std::cell::OnceCell<std::os::fd::OwnedFd>,
}

/// How long narwhal waits for the kernel to finish a change in its work
/// queues (see the module documentation) before it gives up.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Ask `done` until it answers `Some`, pausing 50 µs, then twice as long
/// each time up to 5 ms; after [`SETTLE_TIMEOUT`], fail naming `what`.
async fn settle<T, F, Fut>(what: &str, mut done: F) -> io::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = io::Result<Option<T>>>,
{
    let start = Instant::now();
    let mut pause = Duration::from_micros(50);
    loop {
        if let Some(v) = done().await? {
            return Ok(v);
        }
        if start.elapsed() >= SETTLE_TIMEOUT {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the kernel did not finish {what} within {} s",
                    SETTLE_TIMEOUT.as_secs()
                ),
            ));
        }
        // Blocking is fine: this runtime runs nothing else meanwhile.
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}

/// Carrier on, but the link-watch work has not run yet for the link: its
/// operational state is still down (`RUNNING` follows the operational state,
/// `LOWER_UP` the carrier).
fn carrier_pending(l: &LinkMessage) -> bool {
    let f = l.header.flags;
    f.contains(LinkFlags::Up | LinkFlags::LowerUp) && !f.contains(LinkFlags::Running)
}

fn kernel_err(e: rtnetlink::Error) -> io::Error {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.to_io(),
        other => io::Error::other(other.to_string()),
    }
}

impl Nl {
    /// A socket in this thread's namespace. Must be called inside a tokio
    /// runtime; the connection task is spawned on it.
    pub fn current() -> io::Result<Nl> {
        Ok(Self::start(rtnetlink::new_connection()?, None))
    }

    /// A socket inside `ns`, opened while this thread is in `ns`; the
    /// socket keeps that namespace for its whole life.
    pub fn open_in(ns: Arc<Netns>) -> Result<io::Result<Nl>, NetnsError> {
        let opened = ns.run(rtnetlink::new_connection)?;
        Ok(opened.map(|c| Self::start(c, Some(ns))))
    }

    /// Spawn the connection task on this thread's runtime.
    fn start<M>(
        (conn, handle, _): (rtnetlink::proto::Connection<RouteNetlinkMessage>, Handle, M),
        netns: Option<Arc<Netns>>,
    ) -> Nl {
        tokio::spawn(conn);
        Nl {
            handle,
            netns,
            index: RefCell::default(),
            sysctl_dir: Default::default(),
        }
    }

    /// Run `f` in this socket's namespace: `/proc/sys` and nftables act in
    /// the calling thread's.
    fn in_ns<T>(&self, f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
        match &self.netns {
            None => f(),
            Some(ns) => ns.run(f).map_err(|e| io::Error::other(e.to_string()))?,
        }
    }

    async fn ack(&self, msg: RouteNetlinkMessage, flags: u16) -> io::Result<()> {
        let mut req = NetlinkMessage::from(msg);
        req.header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        let mut handle = self.handle.clone();
        let mut replies = handle.request(req).map_err(kernel_err)?;
        while let Some(reply) = replies.next().await {
            if let NetlinkPayload::Error(e) = reply.payload {
                if e.code.is_some() {
                    return Err(e.to_io());
                }
            }
        }
        Ok(())
    }

    /// Send a request answered by messages (a get of one object, not a
    /// dump) and collect them.
    async fn query(&self, msg: RouteNetlinkMessage) -> io::Result<Vec<RouteNetlinkMessage>> {
        let mut req = NetlinkMessage::from(msg);
        req.header.flags = NLM_F_REQUEST;
        let mut handle = self.handle.clone();
        let mut replies = handle.request(req).map_err(kernel_err)?;
        let mut out = Vec::new();
        while let Some(reply) = replies.next().await {
            match reply.payload {
                NetlinkPayload::InnerMessage(m) => out.push(m),
                NetlinkPayload::Error(e) if e.code.is_some() => return Err(e.to_io()),
                _ => {}
            }
        }
        Ok(out)
    }

    /// `RTM_GETLINK` of one link: by index, in the namespace that has id
    /// `netnsid` here if given. Since Linux 6.8 this also runs the
    /// link-watch work still pending for that link.
    async fn get_link(&self, index: u32, netnsid: Option<i32>) -> io::Result<LinkMessage> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        if let Some(id) = netnsid {
            m.attributes.push(LinkAttribute::IfNetnsId(id));
        }
        self.query(RouteNetlinkMessage::GetLink(m))
            .await?
            .into_iter()
            .find_map(|r| match r {
                RouteNetlinkMessage::NewLink(l) => Some(l),
                _ => None,
            })
            .ok_or_else(|| io::Error::from_raw_os_error(nix::libc::ENODEV))
    }

    /// Wait until no carrier change is pending for link `index` (see
    /// [`carrier_pending`]); returns its last state.
    async fn settle_link(
        &self,
        index: u32,
        netnsid: Option<i32>,
        what: &str,
    ) -> io::Result<LinkMessage> {
        settle(what, || async {
            let l = self.get_link(index, netnsid).await?;
            Ok((!carrier_pending(&l)).then_some(l))
        })
        .await
    }

    /// Whether the lookup of `addr` out of link `index` ends in the
    /// kernel's local route for it: the address is in use.
    async fn has_local_route(&self, index: u32, addr: Ipv6Addr) -> io::Result<bool> {
        let mut m = RouteMessage::default();
        m.header.address_family = AddressFamily::Inet6;
        m.header.destination_prefix_length = 128;
        m.header.flags = RouteFlags::FibMatch;
        m.attributes
            .push(RouteAttribute::Destination(RouteAddress::Inet6(addr)));
        m.attributes.push(RouteAttribute::Oif(index));
        // an error: no route yet (ENETUNREACH), or one that refuses
        let found = match self.query(RouteNetlinkMessage::GetRoute(m)).await {
            Ok(replies) => replies.iter().any(|r| match r {
                RouteNetlinkMessage::NewRoute(r) => {
                    r.header.kind == RouteType::Local
                        && r.attributes.contains(&RouteAttribute::Oif(index))
                }
                _ => false,
            }),
            Err(_) => false,
        };
        if !found {
            // a link that is gone never gets there: fail with ENODEV now
            self.get_link(index, None).await?;
        }
        Ok(found)
    }

    async fn index(&self, name: &str) -> io::Result<u32> {
        if let Some(i) = self.index.borrow().get(name) {
            return Ok(*i);
        }
        match self.link(name).await? {
            Some(l) => Ok(l.index),
            None => Err(io::Error::from_raw_os_error(nix::libc::ENODEV)),
        }
    }
}

fn veth_end(name: &str, mac: &[u8; 6], mtu: Option<u32>) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.header.flags = LinkFlags::Noarp;
    m.header.change_mask = LinkFlags::Noarp;
    m.attributes.push(LinkAttribute::IfName(name.to_string()));
    m.attributes.push(LinkAttribute::Address(mac.to_vec()));
    if let Some(mtu) = mtu {
        m.attributes.push(LinkAttribute::Mtu(mtu));
    }
    m
}

fn family(ip: &IpAddr) -> AddressFamily {
    if ip.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    }
}

fn host_len(ip: &IpAddr) -> u8 {
    if ip.is_ipv4() {
        32
    } else {
        128
    }
}

impl NetOps for Nl {
    async fn create_veth(&self, v: &VethSpec<'_>, peer_ns: BorrowedFd<'_>) -> io::Result<()> {
        let mut peer = veth_end(v.peer, v.peer_mac, v.mtu);
        peer.attributes
            .push(LinkAttribute::NetNsFd(peer_ns.as_raw_fd()));
        let mut m = veth_end(v.host, v.host_mac, v.mtu);
        m.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ]));
        self.ack(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL)
            .await
    }

    async fn link(&self, name: &str) -> io::Result<Option<LinkState>> {
        let mut req = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        match req.next().await {
            None => Ok(None),
            Some(Err(e)) => {
                let e = kernel_err(e);
                if e.raw_os_error() == Some(nix::libc::ENODEV) {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
            Some(Ok(msg)) => {
                let mut st = LinkState {
                    index: msg.header.index,
                    up: msg.header.flags.contains(LinkFlags::Up),
                    alias: None,
                    mac: None,
                    kind: None,
                };
                for a in msg.attributes {
                    match a {
                        LinkAttribute::IfAlias(s) => st.alias = Some(s),
                        LinkAttribute::Address(m) => st.mac = Some(m),
                        LinkAttribute::LinkInfo(infos) => {
                            for i in infos {
                                if let LinkInfo::Kind(k) = i {
                                    st.kind = Some(k.to_string());
                                }
                            }
                        }
                        _ => {}
                    }
                }
                self.index.borrow_mut().insert(name.to_string(), st.index);
                Ok(Some(st))
            }
        }
    }

    async fn set_alias(&self, name: &str, alias: &str) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = self.index(name).await?;
        m.attributes.push(LinkAttribute::IfAlias(alias.to_string()));
        self.ack(RouteNetlinkMessage::SetLink(m), 0).await
    }

    async fn set_up(&self, name: &str, up: bool) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = self.index(name).await?;
        m.header.flags = if up {
            LinkFlags::Up
        } else {
            LinkFlags::empty()
        };
        m.header.change_mask = LinkFlags::Up;
        let index = m.header.index;
        self.ack(RouteNetlinkMessage::SetLink(m), 0).await?;
        if !up {
            return Ok(());
        }
        // Up turns the carrier on at both ends of a veth pair whose other
        // end is up; make the kernel finish that change at both ends.
        let l = self
            .settle_link(index, None, &format!("bringing {name} up"))
            .await?;
        if !l.header.flags.contains(LinkFlags::LowerUp) {
            return Ok(()); // no carrier here: none at the peer either
        }
        // IFLA_LINK: the peer's index, in the namespace of IFLA_LINK_NETNSID
        // if that is given (so it may equal `index`); absent without a peer
        let peer = l.attributes.iter().find_map(|a| match a {
            LinkAttribute::Link(p) => Some(*p),
            _ => None,
        });
        let netnsid = l.attributes.iter().find_map(|a| match a {
            LinkAttribute::LinkNetNsId(id) => Some(*id),
            _ => None,
        });
        let Some(peer) = peer else {
            return Ok(());
        };
        // A failed lookup is no failure of this step: this end is up. Only
        // the other end of this pair is waited for (a kernel older than
        // 4.15 ignores the namespace id and looks up `peer` here).
        let what = format!("bringing up the carrier of {name}'s peer");
        match self.get_link(peer, netnsid).await {
            Ok(p)
                if p.header.index == peer
                    && p.attributes.contains(&LinkAttribute::Link(index))
                    && carrier_pending(&p) =>
            {
                self.settle_link(peer, netnsid, &what).await.map(|_| ())
            }
            _ => Ok(()),
        }
    }

    async fn del_link(&self, name: &str) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = self.index(name).await?;
        self.index.borrow_mut().remove(name);
        self.ack(RouteNetlinkMessage::DelLink(m), 0).await
    }

    async fn add_addr(
        &self,
        name: &str,
        local: IpAddr,
        peer: IpAddr,
        scope_link: bool,
        noprefixroute: bool,
    ) -> io::Result<()> {
        let mut m = AddressMessage::default();
        m.header.family = family(&local);
        m.header.prefix_len = host_len(&peer);
        m.header.index = self.index(name).await?;
        m.header.scope = if scope_link {
            AddressScope::Link
        } else {
            AddressScope::Universe
        };
        m.attributes.push(AddressAttribute::Local(local));
        m.attributes.push(AddressAttribute::Address(peer));
        let mut flags = AddressFlags::Nodad;
        if noprefixroute {
            flags |= AddressFlags::Noprefixroute;
        }
        m.attributes.push(AddressAttribute::Flags(flags));
        let index = m.header.index;
        self.ack(
            RouteNetlinkMessage::NewAddress(m),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .await?;
        match local {
            // IPv4 installs its routes within the request
            IpAddr::V4(_) => Ok(()),
            IpAddr::V6(a) => {
                settle("adding the address (its local route)", || async {
                    Ok(self.has_local_route(index, a).await?.then_some(()))
                })
                .await
            }
        }
    }

    async fn add_neigh(&self, name: &str, ip: IpAddr, mac: &[u8; 6]) -> io::Result<()> {
        let mut m = NeighbourMessage::default();
        m.header.family = family(&ip);
        m.header.ifindex = self.index(name).await?;
        m.header.state = NeighbourState::Permanent;
        m.header.kind = RouteType::Unspec;
        m.attributes.push(NeighbourAttribute::Destination(match ip {
            IpAddr::V4(a) => NeighbourAddress::Inet(a),
            IpAddr::V6(a) => NeighbourAddress::Inet6(a),
        }));
        m.attributes
            .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
        self.ack(
            RouteNetlinkMessage::NewNeighbour(m),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .await
    }

    async fn add_route(
        &self,
        name: &str,
        dst: Option<IpAddr>,
        via: Option<IpAddr>,
        src: Option<IpAddr>,
    ) -> io::Result<()> {
        let index = self.index(name).await?;
        let proto = RouteProtocol::Other(RTPROT_NARWHAL);
        let scope = if via.is_some() {
            RouteScope::Universe
        } else {
            RouteScope::Link
        };
        let m: RouteMessage = match (dst, via) {
            (Some(IpAddr::V4(_)), _) | (None, Some(IpAddr::V4(_))) => {
                let mut b = RouteMessageBuilder::<std::net::Ipv4Addr>::new()
                    .output_interface(index)
                    .protocol(proto)
                    .scope(scope);
                if let Some(IpAddr::V4(d)) = dst {
                    b = b.destination_prefix(d, 32);
                }
                if let Some(IpAddr::V4(g)) = via {
                    b = b.gateway(g);
                }
                if let Some(IpAddr::V4(a)) = src {
                    b = b.pref_source(a);
                }
                b.build()
            }
            (Some(IpAddr::V6(_)), _) | (None, Some(IpAddr::V6(_))) => {
                let mut b = RouteMessageBuilder::<std::net::Ipv6Addr>::new()
                    .output_interface(index)
                    .protocol(proto)
                    .scope(scope);
                if let Some(IpAddr::V6(d)) = dst {
                    b = b.destination_prefix(d, 128);
                }
                if let Some(IpAddr::V6(g)) = via {
                    b = b.gateway(g);
                }
                if let Some(IpAddr::V6(a)) = src {
                    b = b.pref_source(a);
                }
                b.build()
            }
            (None, None) => return Err(io::Error::from_raw_os_error(nix::libc::EINVAL)),
        };
        self.ack(RouteNetlinkMessage::NewRoute(m), NLM_F_CREATE | NLM_F_EXCL)
            .await
    }

    fn add_filter(
        &self,
        ifname: &str,
        mac: &[u8; 6],
        v4: Option<Ipv4Addr>,
        v6: Option<Ipv6Addr>,
    ) -> io::Result<()> {
        self.in_ns(|| crate::nft::install(ifname, mac, v4, v6))
    }

    fn del_filter(&self, ifname: &str) -> io::Result<bool> {
        self.in_ns(|| crate::nft::remove(ifname))
    }

    fn sysctl(&self, family: Family, ifname: &str, name: &str, value: &str) -> io::Result<()> {
        use nix::fcntl::{openat, OFlag};
        use nix::sys::stat::Mode;
        let v = if family == Family::V4 { 4 } else { 6 };
        let path = format!("ipv{v}/conf/{ifname}/{name}");
        self.in_ns(|| {
            let dir = match self.sysctl_dir.get() {
                Some(d) => d,
                None => {
                    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
                    let d = nix::fcntl::open("/proc/sys/net", flags, Mode::empty())?;
                    self.sysctl_dir.get_or_init(|| d)
                }
            };
            let fd = openat(
                dir,
                path.as_str(),
                OFlag::O_WRONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            std::io::Write::write_all(&mut std::fs::File::from(fd), value.as_bytes())
        })
    }
}
