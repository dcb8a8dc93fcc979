//! rtnetlink, one method per verb, in one network namespace: the only
//! module that imports rtnetlink.
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
//!   Until then nothing addressed to it is received. narwhal waits for the
//!   local route before the link comes up: [`Nl::add_addr`] on a link that
//!   is up, [`Nl::set_up`] for addresses added while it was down (the work
//!   runs while narwhal makes its other changes). The plan adds addresses
//!   while the link is down, so the kernel's peer route is never added (it
//!   needs the link up), whatever the timing: the routes are always the
//!   same.
//! - A carrier change (a veth end coming up turns the carrier on at both
//!   ends) takes effect when the link-watch work runs: until then the link
//!   drops what it should send, its operational state stays down and IPv6
//!   has not seen it come up. [`Nl::set_up`] has the kernel run that
//!   work for both ends of the pair.
//!
//! Both waits sleep on the kernel's notifications ([`Events`], a socket of
//! its own per namespace) rather than asking: the kernel's workers do that
//! work holding the RTNL lock, for as long as lists shared by all of the
//! host's links take to walk, and a request meanwhile spins on the lock.
//! Asking is the fallback when notifications were lost.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage, AddressScope};
use netlink_packet_route::link::{
    AfSpecInet, AfSpecInet6, AfSpecUnspec, In6AddrGenMode, Inet6DevConf, InetDevConf, InfoData,
    InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
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

use super::netns::{Netns, NetnsError};
use crate::naming::ALIAS_PREFIX;
use crate::net::{Addr, Family, Holder, Link, Neigh, Route, Sysctl, Veth, RTPROT_NARWHAL};

/// An rtnetlink socket bound to one network namespace.
pub struct Nl {
    handle: Handle,
    /// Notifications waited on (`None`: the kernel refused the socket;
    /// then narwhal asks instead).
    events: Option<Events>,
    index: RefCell<HashMap<String, u32>>,
    /// Links seen down (by their index): an IPv6 address added to one is
    /// waited for when it comes up, not at once (see [`Nl::add_addr`]).
    down: RefCell<std::collections::HashSet<u32>>,
    /// IPv6 addresses added to a link that is down, whose local route the
    /// kernel has not been seen to add yet: `(link index, address)`.
    pending: RefCell<Vec<(u32, Ipv6Addr)>>,
    /// Each looked-up link's per-interface settings, as its RTM_GETLINK
    /// reported them, updated with what narwhal sets afterwards.
    conf: RefCell<HashMap<String, Conf>>,
}

/// A link's IPv4 and IPv6 settings from `IFLA_AF_SPEC` of an RTM_GETLINK
/// reply (`IFLA_INET_CONF`, `IFLA_INET6_CONF`, `IFLA_INET6_ADDR_GEN_MODE`).
#[derive(Debug, Clone, Default)]
struct Conf {
    v4: Option<InetDevConf>,
    v6: Option<Inet6DevConf>,
    addr_gen_mode: Option<i32>,
}

impl Conf {
    fn of(msg: &LinkMessage) -> Conf {
        let mut c = Conf::default();
        for a in &msg.attributes {
            let LinkAttribute::AfSpecUnspec(families) = a else {
                continue;
            };
            for f in families {
                match f {
                    AfSpecUnspec::Inet(v) => {
                        for x in v {
                            if let AfSpecInet::DevConf(d) = x {
                                c.v4 = Some(*d);
                            }
                        }
                    }
                    AfSpecUnspec::Inet6(v) => {
                        for x in v {
                            match x {
                                AfSpecInet6::DevConf(d) => c.v6 = Some(*d),
                                AfSpecInet6::AddrGenMode(m) => {
                                    c.addr_gen_mode = Some(i32::from(u8::from(m)))
                                }
                                _ => {}
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        c
    }

    /// Where the value of the setting `s` names is kept, if the reply
    /// carried it.
    fn slot(&mut self, s: &Sysctl) -> Option<&mut i32> {
        match (s.family, s.name) {
            (Family::V4, "rp_filter") => self.v4.as_mut().map(|c| &mut c.rp_filter),
            (Family::V4, "forwarding") => self.v4.as_mut().map(|c| &mut c.forwarding),
            (Family::V6, "addr_gen_mode") => self.addr_gen_mode.as_mut(),
            (Family::V6, "disable_ipv6") => self.v6.as_mut().map(|c| &mut c.disable_ipv6),
            (Family::V6, "autoconf") => self.v6.as_mut().map(|c| &mut c.autoconf),
            (Family::V6, "accept_ra") => self.v6.as_mut().map(|c| &mut c.accept_ra),
            (Family::V6, "forwarding") => self.v6.as_mut().map(|c| &mut c.forwarding),
            _ => None,
        }
    }
}

/// The loopback device has index 1 in every network namespace (Linux
/// registers it first, `LOOPBACK_IFINDEX`): no lookup needed.
const LOOPBACK: &str = "lo";
const LOOPBACK_INDEX: u32 = 1;

/// How long narwhal waits for the kernel to finish a change in its work
/// queues (see the module documentation) before it gives up.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long [`Nl::set_up`] sleeps for the kernel's report that a carrier
/// change took effect before it asks (and so has the kernel finish it).
const CARRIER_GRACE: Duration = Duration::from_millis(100);
/// How often [`Nl::netns_ended`] asks whether a namespace has ended (Linux
/// announces only the removal of its id, which comes later).
const NETNS_ASK_EVERY: Duration = Duration::from_millis(1);

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
            return Err(timed_out(what));
        }
        // Blocking is fine: this runtime runs nothing else meanwhile.
        precise_sleeps();
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!(
            "the kernel did not finish {what} within {} s",
            SETTLE_TIMEOUT.as_secs()
        ),
    )
}

/// Make this thread's sleeps end when asked: the default timer slack (50
/// µs) would add up to 50 µs to every pause of [`settle`], which waits for
/// kernel work that usually takes less. Once per thread.
fn precise_sleeps() {
    thread_local!(static DONE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });
    DONE.with(|d| {
        if !d.replace(true) {
            // SAFETY: prctl with integer arguments; the result is not needed
            // (a kernel that refuses keeps the default slack)
            unsafe { nix::libc::prctl(nix::libc::PR_SET_TIMERSLACK, 1000u64) };
        }
    });
}

/// Kernel notifications of one namespace that narwhal waits on instead of
/// asking: link changes, IPv6 routes and namespace ids going, on a socket
/// of its own,
/// subscribed when the namespace's [`Nl`] is opened, so nothing after that
/// is missed. Waiting here sleeps. Asking takes the RTNL lock, and while a
/// kernel worker holds it (the IPv6 address work, a carrier change, each
/// walking lists as long as the host has links) narwhal would spin on it;
/// and each lookup of the shared `fe80::1` walks every link's route for it.
/// Only the fixed headers are parsed (and two route attributes): the
/// host's every link and route change comes by.
pub struct Events {
    sock: rtnetlink::sys::Socket,
    seen: RefCell<Seen>,
    /// One datagram; allocated once.
    buf: RefCell<Vec<u8>>,
}

#[derive(Default)]
struct Seen {
    /// IPv6 local routes added: (link, address).
    local6: std::collections::HashSet<(u32, Ipv6Addr)>,
    /// The flags last reported per link since [`Events::forget`];
    /// `None`: the link was deleted.
    links: HashMap<u32, Option<LinkFlags>>,
    /// Ids of other namespaces removed (`RTM_DELNSID`: they ended).
    ids_gone: std::collections::HashSet<i32>,
    /// The socket overran: notifications were lost.
    lost: bool,
}

impl Events {
    /// In this thread's namespace.
    pub fn open() -> io::Result<Events> {
        use nix::libc::{RTNLGRP_IPV6_ROUTE, RTNLGRP_LINK, RTNLGRP_NSID};
        let mut sock = rtnetlink::sys::Socket::new(rtnetlink::sys::protocols::NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.add_membership(RTNLGRP_LINK)?;
        sock.add_membership(RTNLGRP_IPV6_ROUTE)?;
        sock.add_membership(RTNLGRP_NSID)?;
        Ok(Events {
            sock,
            seen: RefCell::default(),
            buf: RefCell::new(vec![0u8; 1 << 16]),
        })
    }

    /// Read notifications until `done` holds for what was seen
    /// (`Ok(true)`), `deadline` passes, or notifications were lost
    /// (`Ok(false)`: the caller asks the kernel instead).
    fn wait(&self, deadline: Instant, done: impl Fn(&Seen) -> bool) -> io::Result<bool> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        loop {
            {
                let seen = self.seen.borrow();
                if done(&seen) {
                    return Ok(true);
                }
                if seen.lost {
                    return Ok(false);
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            // whole milliseconds, rounded up: no busy loop near the end
            let ms = u16::try_from(left.as_micros().div_ceil(1000)).unwrap_or(u16::MAX);
            if ms == 0 {
                return Ok(false);
            }
            let mut fds = [PollFd::new(self.sock.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
            self.read_ready()?;
        }
    }

    /// Record what has arrived, without blocking.
    fn read_ready(&self) -> io::Result<()> {
        let mut buf = self.buf.borrow_mut();
        loop {
            let n = match self.sock.recv(&mut &mut buf[..], nix::libc::MSG_DONTWAIT) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.raw_os_error() == Some(nix::libc::ENOBUFS) => {
                    self.seen.borrow_mut().lost = true;
                    continue;
                }
                Err(e) => return Err(e),
            };
            self.seen.borrow_mut().record_all(&buf[..n]);
        }
    }

    /// Drop what is known of link `index` (after reading what has
    /// arrived): [`Events::settled`] then waits for news of a change made
    /// after this.
    pub fn forget(&self, index: u32) -> io::Result<()> {
        self.read_ready()?;
        self.seen.borrow_mut().links.remove(&index);
        Ok(())
    }

    /// Wait for the local route of IPv6 address `addr` on link `index`.
    pub fn local_route(&self, index: u32, addr: Ipv6Addr, deadline: Instant) -> io::Result<bool> {
        self.wait(deadline, |s| s.local6.contains(&(index, addr)))
    }

    /// Wait for news of link `index` since [`Events::forget`] with no
    /// carrier change pending (see [`carrier_pending`]).
    pub fn settled(&self, index: u32, deadline: Instant) -> io::Result<bool> {
        self.wait(
            deadline,
            |s| matches!(s.links.get(&index), Some(Some(f)) if !pending_flags(*f)),
        )
    }

    /// Whether notifications were lost (the socket overran).
    pub fn lost(&self) -> bool {
        self.seen.borrow().lost
    }

    /// Wait until link `index` is deleted.
    pub fn deleted(&self, index: u32, deadline: Instant) -> io::Result<bool> {
        self.wait(deadline, |s| matches!(s.links.get(&index), Some(None)))
    }

    /// Drop the news of namespace id `id` having gone (after reading what
    /// has arrived): the id may have been another namespace's.
    pub fn forget_id(&self, id: i32) -> io::Result<()> {
        self.read_ready()?;
        self.seen.borrow_mut().ids_gone.remove(&id);
        Ok(())
    }

    /// Wait until link `index` is deleted or the namespace id `id` goes
    /// (since [`Events::forget_id`]).
    pub fn deleted_or_gone(&self, index: u32, id: i32, deadline: Instant) -> io::Result<bool> {
        self.wait(deadline, |s| {
            matches!(s.links.get(&index), Some(None)) || s.ids_gone.contains(&id)
        })
    }
}

impl Seen {
    /// The notifications in one datagram.
    fn record_all(&mut self, mut rest: &[u8]) {
        use rtnetlink::packet_core::{NetlinkBuffer, NLMSG_ALIGNTO};
        while let Ok(m) = NetlinkBuffer::new_checked(rest) {
            self.record(m.message_type(), m.payload());
            let next = (m.length() as usize).next_multiple_of(usize::from(NLMSG_ALIGNTO));
            rest = rest.get(next..).unwrap_or_default();
        }
    }

    /// One notification: `kind` (`RTM_*`) and its body. Only the fixed
    /// headers are parsed, and of a route two attributes.
    fn record(&mut self, kind: u16, body: &[u8]) {
        use netlink_packet_route::link::LinkHeader;
        use netlink_packet_route::nsid::{NsidAttribute, NsidMessage};
        use netlink_packet_route::route::RouteHeader;
        use nix::libc::{RTA_DST, RTA_OIF, RTM_DELLINK, RTM_DELNSID, RTM_NEWLINK, RTM_NEWROUTE};
        use rtnetlink::packet_core::{parse_ipv6, parse_u32, Emitable, NlasIterator, Parseable};
        match kind {
            RTM_NEWLINK | RTM_DELLINK => {
                if let Ok(h) = LinkHeader::parse(body) {
                    self.links
                        .insert(h.index, (kind == RTM_NEWLINK).then_some(h.flags));
                }
            }
            RTM_DELNSID => {
                let ids = NsidMessage::parse(body).map(|m| m.attributes);
                for a in ids.unwrap_or_default() {
                    if let NsidAttribute::Id(id) = a {
                        self.ids_gone.insert(id);
                    }
                }
            }
            RTM_NEWROUTE => {
                let Ok(h) = RouteHeader::parse(body) else {
                    return;
                };
                if h.address_family != AddressFamily::Inet6
                    || h.destination_prefix_length != 128
                    || h.kind != RouteType::Local
                {
                    return;
                }
                let (mut dst, mut oif) = (None, None);
                for nla in NlasIterator::new(&body[h.buffer_len()..]).flatten() {
                    match nla.kind() {
                        RTA_DST => dst = parse_ipv6(nla.value()).ok().map(Ipv6Addr::from),
                        RTA_OIF => oif = parse_u32(nla.value()).ok(),
                        _ => {}
                    }
                }
                if let (Some(d), Some(i)) = (dst, oif) {
                    self.local6.insert((i, d));
                }
            }
            _ => {}
        }
    }
}

/// Carrier on, but the link-watch work has not run yet for the link: its
/// operational state is still down (`RUNNING` follows the operational state,
/// `LOWER_UP` the carrier).
fn carrier_pending(l: &LinkMessage) -> bool {
    pending_flags(l.header.flags)
}

fn pending_flags(f: LinkFlags) -> bool {
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
        Ok(Self::start(
            rtnetlink::new_connection()?,
            Events::open().ok(),
        ))
    }

    /// A socket inside `ns`, opened while this thread is in `ns`; the
    /// socket keeps that namespace for its whole life.
    pub fn open_in(ns: &Arc<Netns>) -> Result<io::Result<Nl>, NetnsError> {
        let (opened, events) = ns.run(|| (rtnetlink::new_connection(), Events::open()))?;
        Ok(opened.map(|c| Self::start(c, events.ok())))
    }

    /// Spawn the connection task on this thread's runtime.
    fn start<M>(
        (conn, handle, _): (rtnetlink::proto::Connection<RouteNetlinkMessage>, Handle, M),
        events: Option<Events>,
    ) -> Nl {
        tokio::spawn(conn);
        Nl {
            handle,
            events,
            index: RefCell::default(),
            down: RefCell::default(),
            pending: RefCell::default(),
            conf: RefCell::default(),
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

    /// Wait up to `within` for link `index` to be deleted by someone else
    /// (Linux, with its peer's namespace); `Ok(true)`: it is gone. The
    /// notifications are subscribed since this socket was opened, before
    /// the link was looked up.
    pub async fn await_removal(&self, index: u32, within: Duration) -> io::Result<bool> {
        let deadline = Instant::now() + within;
        if let Some(ev) = &self.events {
            if ev.deleted(index, deadline)? {
                return Ok(true);
            }
        }
        // no notifications (or lost ones): one look
        Ok(!self.has_index(index).await?)
    }

    /// Wait up to `within` for the namespace of the peer of link `index`
    /// to end (`peer`, `netnsid`: the link's `IFLA_LINK` and
    /// `IFLA_LINK_NETNSID`); `Ok(true)`: it has, or the link is gone. A
    /// namespace has ended once nothing holds it: from then on a request
    /// naming its id fails with EINVAL, and Linux removes its links. Linux
    /// announces only the removal of the id, which comes later (its
    /// namespace cleanup work, queued behind any other); so narwhal asks
    /// every [`NETNS_ASK_EVERY`] and sleeps on the notifications between.
    pub async fn netns_ended(
        &self,
        index: u32,
        peer: Option<u32>,
        netnsid: Option<i32>,
        within: Duration,
    ) -> io::Result<bool> {
        let (Some(peer), Some(id)) = (peer, netnsid) else {
            // no peer, or one in this namespace: only the removal tells
            return self.await_removal(index, within).await;
        };
        if id < 0 {
            return Ok(true); // its id here is gone: the namespace ended
        }
        let deadline = Instant::now() + within;
        if let Some(ev) = &self.events {
            ev.forget_id(id)?; // asked first below: nothing is missed
        }
        loop {
            match self.get_link(peer, Some(id)).await {
                Err(e) if e.raw_os_error() == Some(nix::libc::EINVAL) => return Ok(true),
                // the peer, pointing back at this link: alive
                Ok(p) if p.attributes.contains(&LinkAttribute::Link(index)) => {}
                // anything else (a kernel that ignores the id, say): only
                // the removal of this link tells
                Ok(_) | Err(_) => {
                    if !self.has_index(index).await? {
                        return Ok(true);
                    }
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            let next = deadline.min(now + NETNS_ASK_EVERY);
            if let Some(ev) = &self.events {
                if ev.deleted_or_gone(index, id, next)? {
                    return Ok(true);
                }
            }
            // no notifications, or lost ones: pause before asking again
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
    }

    /// Whether link `index` exists.
    async fn has_index(&self, index: u32) -> io::Result<bool> {
        match self.get_link(index, None).await {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(nix::libc::ENODEV) => Ok(false),
            Err(e) => Err(e),
        }
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
        if name == LOOPBACK {
            return Ok(LOOPBACK_INDEX);
        }
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
    match Family::of(ip) {
        Family::V4 => AddressFamily::Inet,
        Family::V6 => AddressFamily::Inet6,
    }
}

fn link_state(msg: LinkMessage) -> Link {
    let mut st = Link {
        index: msg.header.index,
        up: msg.header.flags.contains(LinkFlags::Up),
        noarp: msg.header.flags.contains(LinkFlags::Noarp),
        ..Link::default()
    };
    for a in msg.attributes {
        match a {
            LinkAttribute::IfAlias(s) => st.alias = Some(s),
            LinkAttribute::Address(m) => st.mac = Some(m),
            LinkAttribute::Mtu(m) => st.mtu = Some(m),
            LinkAttribute::IfName(n) => st.name = n,
            LinkAttribute::Link(p) => st.peer = Some(p),
            LinkAttribute::LinkNetNsId(id) => st.peer_netnsid = Some(id),
            LinkAttribute::Group(g) => st.group = g,
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
    st
}

impl Nl {
    /// Create a veth pair whose peer is created inside `peer_ns`.
    pub async fn create_veth(&self, v: &Veth, peer_ns: BorrowedFd<'_>) -> io::Result<()> {
        // a link of that name seen before (and gone since) is not this one
        self.forget(&v.host);
        let mut peer = veth_end(&v.peer, &v.peer_mac, v.mtu);
        peer.attributes
            .push(LinkAttribute::NetNsFd(peer_ns.as_raw_fd()));
        let mut m = veth_end(&v.host, &v.host_mac, v.mtu);
        m.attributes.push(LinkAttribute::Group(v.host_group));
        m.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ]));
        self.ack(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL)
            .await
    }

    /// Look up one link by name (not a dump). `None`: no such link.
    pub async fn link(&self, name: &str) -> io::Result<Option<Link>> {
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
                self.conf
                    .borrow_mut()
                    .insert(name.to_string(), Conf::of(&msg));
                let st = link_state(msg);
                self.index.borrow_mut().insert(name.to_string(), st.index);
                if st.up {
                    self.down.borrow_mut().remove(&st.index);
                } else {
                    self.down.borrow_mut().insert(st.index);
                }
                Ok(Some(st))
            }
        }
    }

    /// Every link of this namespace (a dump: `narwhal list` only).
    pub async fn links(&self) -> io::Result<Vec<Link>> {
        let mut req = self.handle.link().get().execute();
        let mut out = Vec::new();
        while let Some(m) = req.next().await {
            out.push(link_state(m.map_err(kernel_err)?));
        }
        Ok(out)
    }

    /// Apply setting `s` where netlink can, without `/proc/sys`: nothing to
    /// do if the link's RTM_GETLINK (made anyway, to find its index)
    /// reported the value already; IPv4 `rp_filter` and IPv6
    /// `addr_gen_mode` over RTM_SETLINK (`IFLA_AF_SPEC`, flat however many
    /// namespaces the host has, unlike a `/proc/sys` lookup). `Ok(false)`:
    /// write it to `/proc/sys` (then [`Nl::noted`]). IPv4 `forwarding`
    /// stays a `/proc/sys` write: only that path also turns LRO off.
    pub async fn set_conf(&self, s: &Sysctl) -> io::Result<bool> {
        let Ok(value) = s.value.parse::<i32>() else {
            return Ok(false);
        };
        let index = self.index(&s.ifname).await?;
        let now = (self.conf.borrow_mut().get_mut(&s.ifname)).and_then(|c| c.slot(s).copied());
        if now == Some(value) {
            return Ok(true);
        }
        let af = match (s.family, s.name, u8::try_from(value)) {
            (Family::V4, "rp_filter", _) if value > 0 => {
                let mut conf = InetDevConf::default();
                conf.rp_filter = value;
                // only the non-zero fields are sent
                AfSpecUnspec::Inet(vec![AfSpecInet::DevConfRequest(conf)])
            }
            (Family::V6, "addr_gen_mode", Ok(mode)) => {
                AfSpecUnspec::Inet6(vec![AfSpecInet6::AddrGenMode(In6AddrGenMode::from(mode))])
            }
            _ => return Ok(false),
        };
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.attributes.push(LinkAttribute::AfSpecUnspec(vec![af]));
        self.ack(RouteNetlinkMessage::SetLink(m), 0).await?;
        self.noted(s);
        Ok(true)
    }

    /// Setting `s` now has its value (written to `/proc/sys`).
    pub fn noted(&self, s: &Sysctl) {
        let mut conf = self.conf.borrow_mut();
        let slot = conf.get_mut(&s.ifname).and_then(|c| c.slot(s));
        if let (Ok(v), Some(slot)) = (s.value.parse::<i32>(), slot) {
            *slot = v;
        }
    }

    pub async fn set_alias(&self, name: &str, alias: &str) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = self.index(name).await?;
        m.attributes.push(LinkAttribute::IfAlias(alias.to_string()));
        self.ack(RouteNetlinkMessage::SetLink(m), 0).await
    }

    /// Set the link up or down. Up: first waits for the IPv6 addresses
    /// added while it was down (see [`Nl::add_addr`]); returns once the
    /// carrier change this causes has taken effect at both ends of a veth
    /// pair.
    pub async fn set_up(&self, name: &str, up: bool) -> io::Result<()> {
        let index = self.index(name).await?;
        if up {
            let mine: Vec<Ipv6Addr> = {
                let mut p = self.pending.borrow_mut();
                let (mine, rest) = p.drain(..).partition(|(i, _)| *i == index);
                *p = rest;
                mine.into_iter().map(|(_, a)| a).collect()
            };
            for a in mine {
                self.settle_local_route(index, a).await?;
            }
        }
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.header.flags = if up {
            LinkFlags::Up
        } else {
            LinkFlags::empty()
        };
        m.header.change_mask = LinkFlags::Up;
        if let Some(ev) = &self.events {
            ev.forget(index)?;
        }
        self.ack(RouteNetlinkMessage::SetLink(m), 0).await?;
        if up {
            self.down.borrow_mut().remove(&index);
        } else {
            self.down.borrow_mut().insert(index);
        }
        if !up || index == LOOPBACK_INDEX {
            return Ok(()); // a loopback has no carrier to wait for
        }
        // Up turns the carrier on at both ends of a veth pair whose other
        // end is up; make the kernel finish that change at both ends. The
        // link-watch worker usually does it at once: sleep until it reports
        // (the change itself sent the first report), then ask.
        if let Some(ev) = &self.events {
            ev.settled(index, Instant::now() + CARRIER_GRACE)?;
        }
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

    pub async fn del_link(&self, name: &str) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = self.index(name).await?;
        self.forget(name);
        self.ack(RouteNetlinkMessage::DelLink(m), 0).await
    }

    /// Drop what is known of link `name` (its index, settings, pending
    /// addresses): it is deleted, or a new link takes the name.
    fn forget(&self, name: &str) {
        self.conf.borrow_mut().remove(name);
        if let Some(index) = self.index.borrow_mut().remove(name) {
            self.pending.borrow_mut().retain(|(i, _)| *i != index);
        }
    }

    /// Add `local peer PEER/{32,128}`, no duplicate address detection.
    /// Once the kernel receives packets for `local` on the link, this
    /// returns; for IPv6 on a link that is down, [`Nl::set_up`] waits for
    /// that before it brings the link up, so the kernel's address work runs
    /// while narwhal makes its other changes (and, the link being down when
    /// it runs, adds no route to the peer).
    pub async fn add_addr(&self, a: &Addr) -> io::Result<()> {
        let m = self.addr_message(a).await?;
        let (index, local) = (m.header.index, a.local);
        self.ack(
            RouteNetlinkMessage::NewAddress(m),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .await?;
        match local {
            // IPv4 installs its routes within the request
            IpAddr::V4(_) => Ok(()),
            IpAddr::V6(a) if self.down.borrow().contains(&index) => {
                self.pending.borrow_mut().push((index, a));
                Ok(())
            }
            IpAddr::V6(a) => self.settle_local_route(index, a).await,
        }
    }

    async fn settle_local_route(&self, index: u32, a: Ipv6Addr) -> io::Result<()> {
        let what = format!("adding address {a} (its local route)");
        if let Some(ev) = &self.events {
            if ev.local_route(index, a, Instant::now() + SETTLE_TIMEOUT)? {
                return Ok(());
            }
            if !ev.lost() {
                return Err(timed_out(&what));
            }
            // notifications were lost: ask instead
        }
        settle(&what, || async {
            Ok(self.has_local_route(index, a).await?.then_some(()))
        })
        .await
    }

    async fn addr_message(&self, a: &Addr) -> io::Result<AddressMessage> {
        let mut m = AddressMessage::default();
        m.header.family = family(&a.local);
        m.header.prefix_len = Family::of(&a.peer).host_len();
        m.header.index = self.index(&a.ifname).await?;
        m.header.scope = if a.scope_link {
            AddressScope::Link
        } else {
            AddressScope::Universe
        };
        m.attributes.push(AddressAttribute::Local(a.local));
        m.attributes.push(AddressAttribute::Address(a.peer));
        let mut flags = AddressFlags::Nodad;
        if !a.prefix_route {
            flags |= AddressFlags::Noprefixroute;
        }
        m.attributes.push(AddressAttribute::Flags(flags));
        Ok(m)
    }

    /// Whether link `a.ifname` has address `a.local` with peer `a.peer`.
    pub async fn has_addr(&self, a: &Addr) -> io::Result<bool> {
        Ok(self.addrs(&a.ifname).await?.contains(&(a.local, a.peer)))
    }

    /// The `(local, peer)` addresses of link `name`.
    pub async fn addrs(&self, name: &str) -> io::Result<Vec<(IpAddr, IpAddr)>> {
        let index = self.index(name).await?;
        let mut req = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute();
        let mut out = Vec::new();
        while let Some(m) = req.next().await {
            let m = m.map_err(kernel_err)?;
            if m.header.index != index {
                continue;
            }
            let (mut local, mut peer) = (None, None);
            for a in m.attributes {
                match a {
                    AddressAttribute::Local(l) => local = Some(l),
                    AddressAttribute::Address(p) => peer = Some(p),
                    _ => {}
                }
            }
            if let Some(p) = peer {
                out.push((local.unwrap_or(p), p));
            }
        }
        Ok(out)
    }

    /// A neighbour message for `n`; `state`: for a new entry (a get
    /// request must leave it empty).
    fn neigh_message(index: u32, n: &Neigh, state: NeighbourState) -> NeighbourMessage {
        let mut m = NeighbourMessage::default();
        m.header.family = family(&n.ip);
        m.header.ifindex = index;
        m.header.state = state;
        m.header.kind = RouteType::Unspec;
        m.attributes
            .push(NeighbourAttribute::Destination(match n.ip {
                IpAddr::V4(a) => NeighbourAddress::Inet(a),
                IpAddr::V6(a) => NeighbourAddress::Inet6(a),
            }));
        m
    }

    /// Add a permanent neighbour entry.
    pub async fn add_neigh(&self, n: &Neigh) -> io::Result<()> {
        let mut m = Self::neigh_message(self.index(&n.ifname).await?, n, NeighbourState::Permanent);
        m.attributes
            .push(NeighbourAttribute::LinkLayerAddress(n.mac.to_vec()));
        self.ack(
            RouteNetlinkMessage::NewNeighbour(m),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .await
    }

    /// Whether the permanent neighbour entry `n` is there, with its MAC.
    pub async fn has_neigh(&self, n: &Neigh) -> io::Result<bool> {
        let index = self.index(&n.ifname).await?;
        let m = Self::neigh_message(index, n, NeighbourState::Other(0));
        let replies = match self.query(RouteNetlinkMessage::GetNeighbour(m)).await {
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOENT) => return Ok(false),
            r => r?,
        };
        Ok(replies.iter().any(|r| match r {
            RouteNetlinkMessage::NewNeighbour(m) => {
                m.header.state == NeighbourState::Permanent
                    && m.attributes
                        .contains(&NeighbourAttribute::LinkLayerAddress(n.mac.to_vec()))
            }
            _ => false,
        }))
    }

    async fn route_message(&self, r: &Route) -> io::Result<RouteMessage> {
        let (index, dst, via) = (self.index(&r.ifname).await?, r.dst, r.via);
        let scope = if via.is_some() {
            RouteScope::Universe
        } else {
            RouteScope::Link
        };
        let first = dst
            .or(via)
            .ok_or_else(|| io::Error::from_raw_os_error(nix::libc::EINVAL))?;
        // the builder refuses addresses of mixed families (its error type
        // is not exported)
        fn invalid(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
            io::Error::new(io::ErrorKind::InvalidInput, e)
        }
        let mut b = RouteMessageBuilder::<IpAddr>::new()
            .output_interface(index)
            .scope(scope);
        b.get_mut().header.address_family = family(&first);
        if let Some(d) = dst {
            b = b
                .destination_prefix(d, Family::of(&d).host_len())
                .map_err(invalid)?;
        }
        if let Some(g) = via {
            b = b.gateway(g).map_err(invalid)?;
        }
        if let Some(src) = r.src {
            b = b.pref_source(src).map_err(invalid)?;
        }
        let mut m = b.build();
        m.header.protocol = RouteProtocol::Other(RTPROT_NARWHAL);
        Ok(m)
    }

    /// Add a route with narwhal's protocol.
    pub async fn add_route(&self, r: &Route) -> io::Result<()> {
        let m = self.route_message(r).await?;
        self.ack(RouteNetlinkMessage::NewRoute(m), NLM_F_CREATE | NLM_F_EXCL)
            .await
    }

    /// Whether route `r` is there (out of its link, to its destination,
    /// via its gateway): one exact lookup for a route with a destination;
    /// for a default route (a lookup of 0.0.0.0 or :: answers with a local
    /// route) the main table of this family, which in a container is short.
    pub async fn has_route(&self, r: &Route) -> io::Result<bool> {
        let want = self.route_message(r).await?;
        let same = |a: &&RouteAttribute| {
            matches!(
                a,
                RouteAttribute::Destination(_)
                    | RouteAttribute::Gateway(_)
                    | RouteAttribute::Oif(_)
            )
        };
        let key: Vec<&RouteAttribute> = want.attributes.iter().filter(same).collect();
        let matches = |got: &RouteMessage| {
            let have: Vec<&RouteAttribute> = got.attributes.iter().filter(same).collect();
            got.header.destination_prefix_length == want.header.destination_prefix_length
                && got.header.table == want.header.table
                && have.len() == key.len()
                && key.iter().all(|a| have.contains(a))
        };
        if r.dst.is_some() {
            let mut m = RouteMessage::default();
            m.header.address_family = want.header.address_family;
            m.header.destination_prefix_length = want.header.destination_prefix_length;
            m.header.flags = RouteFlags::FibMatch;
            m.attributes.extend(
                want.attributes
                    .iter()
                    .filter(|a| {
                        matches!(a, RouteAttribute::Destination(_) | RouteAttribute::Oif(_))
                    })
                    .cloned(),
            );
            return match self.query(RouteNetlinkMessage::GetRoute(m)).await {
                // no route there at all
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(nix::libc::ENETUNREACH | nix::libc::EHOSTUNREACH | nix::libc::ENOENT)
                    ) =>
                {
                    Ok(false)
                }
                Err(e) => Err(e),
                Ok(replies) => Ok(replies.iter().any(
                    |reply| matches!(reply, RouteNetlinkMessage::NewRoute(got) if matches(got)),
                )),
            };
        }
        let mut filter = RouteMessage::default();
        filter.header.address_family = want.header.address_family;
        let mut req = self.handle.route().get(filter).execute();
        while let Some(got) = req.next().await {
            if matches(&got.map_err(kernel_err)?) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Who holds `ip` here: a local route (an address of this namespace)
    /// or a full-length route out of a narwhal link. One exact lookup.
    pub async fn holder(&self, ip: IpAddr) -> io::Result<Option<Holder>> {
        let full = Family::of(&ip).host_len();
        let mut m = RouteMessage::default();
        m.header.address_family = family(&ip);
        m.header.destination_prefix_length = full;
        m.header.flags = RouteFlags::FibMatch;
        m.attributes.push(RouteAttribute::Destination(match ip {
            IpAddr::V4(a) => RouteAddress::Inet(a),
            IpAddr::V6(a) => RouteAddress::Inet6(a),
        }));
        let replies = match self.query(RouteNetlinkMessage::GetRoute(m)).await {
            Err(e)
                if e.raw_os_error()
                    .is_some_and(|c| c != nix::libc::ENOMEM && c != nix::libc::EPERM) =>
            {
                return Ok(None); // no route at all: nobody holds it
            }
            r => r?,
        };
        for reply in replies {
            let RouteNetlinkMessage::NewRoute(r) = reply else {
                continue;
            };
            if r.header.kind == RouteType::Local {
                return Ok(Some(Holder::Host));
            }
            if r.header.destination_prefix_length != full {
                continue;
            }
            let oif = r.attributes.iter().find_map(|a| match a {
                RouteAttribute::Oif(i) => Some(*i),
                _ => None,
            });
            let Some(oif) = oif else { continue };
            let Ok(l) = self.get_link(oif, None).await else {
                continue;
            };
            let l = link_state(l);
            if let Some(alias) = l.alias.filter(|a| a.starts_with(ALIAS_PREFIX)) {
                return Ok(Some(Holder::Link {
                    name: l.name,
                    alias,
                }));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_route::nsid::{NsidAttribute, NsidMessage};

    fn setting(family: Family, name: &'static str) -> Sysctl {
        Sysctl {
            family,
            ifname: "nw-x".into(),
            name,
            value: "0",
        }
    }

    /// What an RTM_GETLINK reply reports is what a setup compares with,
    /// setting by setting; a setting the reply lacks is always written.
    #[test]
    fn the_settings_a_link_reports_are_found_by_name() {
        let mut v4 = InetDevConf::default();
        v4.rp_filter = 2;
        let mut v6 = Inet6DevConf::default();
        v6.accept_ra = 1;
        v6.autoconf = 1;
        v6.disable_ipv6 = 0;
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::AfSpecUnspec(vec![
            AfSpecUnspec::Inet(vec![AfSpecInet::DevConf(v4)]),
            AfSpecUnspec::Inet6(vec![
                AfSpecInet6::DevConf(v6),
                AfSpecInet6::AddrGenMode(In6AddrGenMode::Eui64),
            ]),
        ]));
        let mut c = Conf::of(&msg);
        let mut get = |f, n| c.slot(&setting(f, n)).copied();
        assert_eq!(get(Family::V4, "rp_filter"), Some(2));
        assert_eq!(get(Family::V6, "accept_ra"), Some(1));
        assert_eq!(get(Family::V6, "autoconf"), Some(1));
        assert_eq!(get(Family::V6, "disable_ipv6"), Some(0));
        assert_eq!(get(Family::V6, "addr_gen_mode"), Some(0));
        assert_eq!(get(Family::V6, "force_forwarding"), None);
        assert_eq!(
            Conf::of(&LinkMessage::default()).slot(&setting(Family::V6, "autoconf")),
            None
        );
    }

    /// Notifications as the kernel sends them, one datagram.
    fn datagram(msgs: Vec<RouteNetlinkMessage>) -> Vec<u8> {
        let mut buf = Vec::new();
        for m in msgs {
            let mut m = NetlinkMessage::from(m);
            m.finalize();
            let at = buf.len();
            buf.resize(at + m.buffer_len(), 0);
            m.serialize(&mut buf[at..]);
        }
        buf
    }

    fn link(index: u32, flags: LinkFlags) -> LinkMessage {
        let mut l = LinkMessage::default();
        l.header.index = index;
        l.header.flags = flags;
        l
    }

    fn route(kind: RouteType, dst: RouteAttribute, oif: u32) -> RouteNetlinkMessage {
        let mut r = RouteMessage::default();
        r.header.address_family = AddressFamily::Inet6;
        r.header.destination_prefix_length = 128;
        r.header.kind = kind;
        r.attributes = vec![dst, RouteAttribute::Oif(oif)];
        RouteNetlinkMessage::NewRoute(r)
    }

    fn nsid(kind: fn(NsidMessage) -> RouteNetlinkMessage, id: i32) -> RouteNetlinkMessage {
        let mut m = NsidMessage::default();
        m.attributes.push(NsidAttribute::Id(id));
        kind(m)
    }

    #[test]
    fn notifications_are_read_from_their_headers() {
        use rtnetlink::packet_core::DefaultNla;
        let fe80_1: Ipv6Addr = "fe80::1".parse().unwrap();
        let dst = |a: Ipv6Addr| RouteAttribute::Destination(RouteAddress::Inet6(a));
        let mut named = link(7, LinkFlags::Up | LinkFlags::LowerUp);
        named.attributes.push(LinkAttribute::IfName("nw-x".into()));
        let buf = datagram(vec![
            RouteNetlinkMessage::NewLink(named),
            route(RouteType::Local, dst(fe80_1), 7),
            route(RouteType::Unicast, dst("2001:db8::2".parse().unwrap()), 7),
            RouteNetlinkMessage::NewLink(link(
                8,
                LinkFlags::Up | LinkFlags::LowerUp | LinkFlags::Running,
            )),
            RouteNetlinkMessage::DelLink(link(9, LinkFlags::empty())),
            nsid(RouteNetlinkMessage::NewNsId, 3),
            nsid(RouteNetlinkMessage::DelNsId, 4),
        ]);
        let mut s = Seen::default();
        s.record_all(&buf);
        assert_eq!(
            s.ids_gone,
            [4].into(),
            "a namespace id went, not the new one"
        );
        assert_eq!(s.local6.iter().collect::<Vec<_>>(), [&(7, fe80_1)]);
        let pending = |i| s.links[&i].map(pending_flags);
        assert_eq!(pending(7), Some(true), "up, carrier, not running yet");
        assert_eq!(pending(8), Some(false));
        assert_eq!(s.links[&9], None, "deleted");
        // a short address is no address
        let mut s = Seen::default();
        let short = RouteAttribute::Other(DefaultNla::new(1, fe80_1.octets()[..8].to_vec()));
        s.record_all(&datagram(vec![route(RouteType::Local, short, 7)]));
        assert!(s.local6.is_empty());
    }
}
