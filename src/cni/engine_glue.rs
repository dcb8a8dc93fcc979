//! Everything CNI mode needs from the engine and the kernel, in one place,
//! so that it can be re-pointed at the engine's request model and its
//! check plan: set up, tear down, look up both ends of a pair, list this
//! network's attachments, and compare a previous result with the kernel.

use std::io;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use futures::TryStreamExt;
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::link::LinkAttribute;
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use rtnetlink::{Handle, RouteMessageBuilder};

use crate::engine::{self, Removed};
use crate::error::Error;
use crate::log::Log;
use crate::naming::{self, format_mac};
use crate::netlink::{LinkState, NetOps, Nl};
use crate::netns::Netns;
use crate::spec::Spec;

/// Both ends of a configured pair, for the ADD result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ends {
    pub host_mac: String,
    pub container_mac: String,
}

/// Set up `spec`; on success the pair is there, on failure nothing is.
pub fn up(spec: &Spec, log: &Log) -> Result<Ends, Error> {
    engine::up(spec, &|s| log.info(&format!("{}: {s}", spec.key)))?;
    Ok(Ends {
        host_mac: format_mac(&naming::host_mac(&spec.key)),
        container_mac: format_mac(&naming::container_mac(&spec.key)),
    })
}

/// Remove the pair of `key` whose host end is `host_if`; a missing link
/// is success.
pub fn down(host_if: &str, key: &str) -> Result<Removed, Error> {
    engine::down(host_if, Some(key))
}

fn runtime() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
}

fn kernel(what: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    Error::kernel(what)
}

fn nl_err(e: rtnetlink::Error) -> io::Error {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.to_io(),
        other => io::Error::other(other.to_string()),
    }
}

/// The keys of every narwhal link on this host whose key starts with
/// `prefix`, with their host interface names.
pub fn attachments(prefix: &str) -> Result<Vec<(String, String)>, Error> {
    let what = "list links (host)";
    let rt = runtime().map_err(kernel(what))?;
    rt.block_on(async {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(kernel(what))?;
        tokio::spawn(conn);
        let mut links = handle.link().get().execute();
        let mut out = Vec::new();
        while let Some(l) = links
            .try_next()
            .await
            .map_err(|e| kernel(what)(nl_err(e)))?
        {
            let (mut name, mut alias) = (None, None);
            for a in l.attributes {
                match a {
                    LinkAttribute::IfName(n) => name = Some(n),
                    LinkAttribute::IfAlias(a) => alias = Some(a),
                    _ => {}
                }
            }
            let key = alias
                .as_deref()
                .and_then(|a| a.strip_prefix(naming::ALIAS_PREFIX))
                .filter(|k| k.starts_with(prefix));
            if let (Some(n), Some(k)) = (name, key) {
                out.push((n, k.to_string()));
            }
        }
        Ok(out)
    })
}

/// What narwhal configured, as the previous result describes it.
#[derive(Debug, Clone)]
pub struct Expected<'a> {
    pub spec: &'a Spec,
    /// MAC of the container end in the previous result.
    pub container_mac: Option<String>,
    /// Addresses the previous result gives the container end.
    pub addresses: Vec<IpAddr>,
}

/// A main-table route: (destination, prefix length, gateway, output interface).
type Route = (Option<IpAddr>, u8, Option<IpAddr>, Option<u32>);

/// One side's observable state.
struct View {
    link: Option<LinkState>,
    /// (local, peer or none, prefix length)
    addrs: Vec<(IpAddr, Option<IpAddr>, u8)>,
    routes: Vec<Route>,
}

async fn view(nl: &Nl, handle: &Handle, ifname: &str) -> io::Result<View> {
    let link = nl.link(ifname).await?;
    let Some(index) = link.as_ref().map(|l| l.index) else {
        return Ok(View {
            link,
            addrs: vec![],
            routes: vec![],
        });
    };
    let mut addrs = Vec::new();
    let mut s = handle
        .address()
        .get()
        .set_link_index_filter(index)
        .execute();
    while let Some(m) = s.try_next().await.map_err(nl_err)? {
        let (mut local, mut address) = (None, None);
        for a in &m.attributes {
            match a {
                AddressAttribute::Local(ip) => local = Some(*ip),
                AddressAttribute::Address(ip) => address = Some(*ip),
                _ => {}
            }
        }
        let (l, peer) = match (local, address) {
            (Some(l), Some(a)) if l != a => (l, Some(a)),
            (Some(l), _) => (l, None),
            (None, Some(a)) => (a, None),
            (None, None) => continue,
        };
        addrs.push((l, peer, m.header.prefix_len));
    }
    let mut routes = Vec::new();
    for msg in [
        RouteMessageBuilder::<std::net::Ipv4Addr>::new().build(),
        RouteMessageBuilder::<std::net::Ipv6Addr>::new().build(),
    ] {
        let mut s = handle.route().get(msg).execute();
        while let Some(r) = s.try_next().await.map_err(nl_err)? {
            if let Some(r) = route(&r).filter(|r| r.3 == Some(index)) {
                routes.push(r);
            }
        }
    }
    Ok(View {
        link,
        addrs,
        routes,
    })
}

fn ip_of(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v) => Some((*v).into()),
        RouteAddress::Inet6(v) => Some((*v).into()),
        _ => None,
    }
}

/// `r` if it is in the main table.
fn route(r: &RouteMessage) -> Option<Route> {
    let mut table = u32::from(r.header.table);
    let (mut dst, mut gw, mut oif) = (None, None, None);
    for a in &r.attributes {
        match a {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(d) => dst = ip_of(d),
            RouteAttribute::Gateway(g) => gw = ip_of(g),
            RouteAttribute::Oif(i) => oif = Some(*i),
            _ => {}
        }
    }
    (table == 254).then_some((dst, r.header.destination_prefix_length, gw, oif))
}

fn host_len(ip: &IpAddr) -> u8 {
    if ip.is_ipv4() {
        32
    } else {
        128
    }
}

/// Compare what `want` describes with the kernel, both sides. `Ok(list)`:
/// every difference found (empty: none).
pub fn check(want: &Expected<'_>) -> Result<Vec<String>, Error> {
    let spec = want.spec;
    let ns = Arc::new(Netns::open(&spec.netns)?);
    let rt = runtime().map_err(kernel("start the netlink event loop"))?;
    let (host, cont) = rt.block_on(async {
        let what = "open netlink socket (host)";
        let (conn, hh, _) = rtnetlink::new_connection().map_err(kernel(what))?;
        tokio::spawn(conn);
        let hn = Nl::current().map_err(kernel(what))?;
        let what = format!(
            "open netlink socket (container netns {})",
            spec.netns.display()
        );
        let (conn, ch, _) = ns
            .run(rtnetlink::new_connection)?
            .map_err(kernel(what.clone()))?;
        tokio::spawn(conn);
        let cn = Nl::open_in(ns.clone())?.map_err(kernel(what))?;
        let host = view(&hn, &hh, &spec.host_if)
            .await
            .map_err(kernel(format!("look up {} (host)", spec.host_if)))?;
        let cont = view(&cn, &ch, &spec.container_if)
            .await
            .map_err(kernel(format!(
                "look up {} (container netns {})",
                spec.container_if,
                spec.netns.display()
            )))?;
        Ok::<_, Error>((host, cont))
    })?;
    Ok(compare(want, &host, &cont))
}

fn compare(want: &Expected<'_>, host: &View, cont: &View) -> Vec<String> {
    let spec = want.spec;
    let mut diff = Vec::new();
    let (hi, ci) = (&spec.host_if, &spec.container_if);
    let host_mac = naming::host_mac(&spec.key);
    let cont_mac = naming::container_mac(&spec.key);
    match &host.link {
        None => diff.push(format!("host: no interface {hi}")),
        Some(l) => {
            if l.alias.as_deref() != Some(&naming::alias(&spec.key)[..]) {
                diff.push(format!("host: {hi} is not narwhal's link for {}", spec.key));
            }
            if l.mac.as_deref() != Some(&host_mac[..]) {
                diff.push(format!("host: {hi} has another MAC address"));
            }
            if !l.up {
                diff.push(format!("host: {hi} is down"));
            }
        }
    }
    match &cont.link {
        None => diff.push(format!("container: no interface {ci}")),
        Some(l) => {
            if l.mac.as_deref() != Some(&cont_mac[..]) {
                diff.push(format!("container: {ci} has another MAC address"));
            }
            if !l.up {
                diff.push(format!("container: {ci} is down"));
            }
        }
    }
    if want.container_mac.as_deref() != Some(&format_mac(&cont_mac)[..]) {
        diff.push(format!(
            "prevResult: {ci} has MAC {}, narwhal gives it {}",
            want.container_mac.as_deref().unwrap_or("none"),
            format_mac(&cont_mac)
        ));
    }
    let mut pairs: Vec<(IpAddr, IpAddr)> = Vec::new();
    if let Some(p) = spec.ipv4 {
        pairs.push((p.container.into(), p.host.into()));
    }
    if let Some(p) = spec.ipv6 {
        pairs.push((p.container.into(), p.host.into()));
    }
    let mut want_addrs = want.addresses.clone();
    want_addrs.sort();
    let mut have: Vec<IpAddr> = pairs.iter().map(|p| p.0).collect();
    have.sort();
    if want_addrs != have {
        diff.push(format!(
            "prevResult: addresses {want_addrs:?} differ from {have:?}"
        ));
    }
    let links_there = host.link.is_some() && cont.link.is_some();
    for (c, h) in pairs.iter().filter(|_| links_there) {
        let len = host_len(c);
        if !cont.addrs.contains(&(*c, Some(*h), len)) {
            diff.push(format!("container: {ci} lacks {c} peer {h}/{len}"));
        }
        if !host.addrs.contains(&(*h, Some(*c), len)) {
            diff.push(format!("host: {hi} lacks {h} peer {c}/{len}"));
        }
        let default = cont.routes.iter().any(|r| r.1 == 0 && r.2 == Some(*h));
        if !default {
            diff.push(format!("container: no default route via {h} dev {ci}"));
        }
        if !host.routes.iter().any(|r| r.0 == Some(*c) && r.1 == len) {
            diff.push(format!("host: no route to {c}/{len} dev {hi}"));
        }
    }
    // addresses nobody asked for on narwhal's links
    for (side, v, name) in [("host", host, hi), ("container", cont, ci)] {
        for (l, _, len) in &v.addrs {
            let ours = pairs.iter().any(|(c, h)| l == c || l == h);
            let link_local = matches!(l, IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80);
            if !ours && !link_local {
                diff.push(format!("{side}: unexpected address {l}/{len} on {name}"));
            }
        }
    }
    diff
}

/// Whether this process can configure networks (STATUS): netlink and a
/// namespace switch work. `Err`: why not.
pub fn usable() -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("narwhal needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN)".into());
    }
    let rt = runtime().map_err(|e| format!("start the netlink event loop: {e}"))?;
    rt.block_on(async {
        let nl = Nl::current().map_err(|e| format!("open netlink socket (host): {e}"))?;
        nl.link("lo")
            .await
            .map_err(|e| format!("look up lo (host): {e}"))?;
        Ok(())
    })
}

/// Whether `path` names a network namespace that still exists.
pub fn netns_missing(path: &Path) -> bool {
    matches!(Netns::open(path), Err(e) if e.is_missing())
}
