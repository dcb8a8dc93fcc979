//! The kernel, behind one narrow interface: [`Kernel`].
//!
//! The applier speaks only this trait. [`System`] implements it for the
//! real kernel by composing one module per mechanism: [`netlink`]
//! (rtnetlink sockets), [`sysctl`] (`/proc/sys/net`), [`nft`] (the
//! `--paranoid` filter through libnftables) and [`netns`] (namespace
//! handles). [`fake::Fake`] implements it in memory and records every call,
//! for unit tests without root.
//!
//! Every verb returns when its effect is complete, and reports kernel
//! errors as `io::Error` with the errno, so callers print the OS text.

pub mod fake;
pub mod netlink;
pub mod netns;
mod nfnetlink;
pub mod nft;
pub mod sysctl;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use std::net::IpAddr;

use crate::net::{Addr, Filter, Holder, Link, Neigh, Route, Side, Sysctl, Veth};
use netlink::Nl;
use netns::{Netns, NetnsError};
use sysctl::Sysctls;

/// Kernel verbs, each in the host or the container namespace.
pub trait Kernel {
    /// Create a veth pair, the peer inside the container namespace.
    fn create_veth(&mut self, veth: &Veth) -> io::Result<()>;
    /// Look up one link by name (never a dump). `None`: no such link.
    fn link(&mut self, side: Side, name: &str) -> io::Result<Option<Link>>;
    fn set_alias(&mut self, side: Side, name: &str, alias: &str) -> io::Result<()>;
    /// Set a link up; returns once the carrier change took effect.
    fn set_up(&mut self, side: Side, name: &str) -> io::Result<()>;
    fn del_link(&mut self, side: Side, name: &str) -> io::Result<()>;
    /// Wait up to `within` for the namespace of host link `link`'s peer to
    /// end. Linux then removes the pair, within milliseconds and for sure:
    /// nothing takes back a namespace that has ended. `Ok(true)`: it has
    /// ended, or the pair is gone already. `within` zero: one look.
    fn netns_ended(&mut self, link: &Link, within: Duration) -> io::Result<bool>;
    /// Wait up to `within` for host link `index` to be removed by someone
    /// else (Linux, with the namespace of its peer); `Ok(true)`: it is
    /// gone.
    fn await_removal(&mut self, index: u32, within: Duration) -> io::Result<bool>;
    fn add_addr(&mut self, side: Side, addr: &Addr) -> io::Result<()>;
    fn add_neigh(&mut self, side: Side, neigh: &Neigh) -> io::Result<()>;
    fn add_route(&mut self, side: Side, route: &Route) -> io::Result<()>;
    fn has_addr(&mut self, side: Side, addr: &Addr) -> io::Result<bool>;
    /// The `(local, peer)` addresses of a link (a dump of that link only).
    fn addrs(&mut self, side: Side, ifname: &str) -> io::Result<Vec<(IpAddr, IpAddr)>>;
    fn has_neigh(&mut self, side: Side, neigh: &Neigh) -> io::Result<bool>;
    fn has_route(&mut self, side: Side, route: &Route) -> io::Result<bool>;
    /// Who holds `addr`: a local address, or a narwhal link's host route
    /// (one exact route lookup, never a dump).
    fn holder(&mut self, side: Side, addr: IpAddr) -> io::Result<Option<Holder>>;
    fn set_sysctl(&mut self, side: Side, sysctl: &Sysctl) -> io::Result<()>;
    fn sysctl(&mut self, side: Side, sysctl: &Sysctl) -> io::Result<String>;
    /// Install the `--paranoid` filter (host side).
    fn add_filter(&mut self, filter: &Filter) -> io::Result<()>;
    /// Remove narwhal's filter of `ifname`; `Ok(false)`: there was none.
    fn del_filter(&mut self, ifname: &str) -> io::Result<bool>;
    /// Whether narwhal's filter of `ifname` is there.
    fn has_filter(&mut self, ifname: &str) -> io::Result<bool>;
    /// Make sure the host-wide source check is there; `Ok(true)`: made now.
    fn ensure_source_check(&mut self) -> io::Result<bool>;
    /// Whether the host-wide source check is there.
    fn has_source_check(&mut self) -> io::Result<bool>;
    /// Remove the source check unless a narwhal link other than `except`
    /// exists; `Ok(true)`: removed.
    fn release_source_check(&mut self, except: &str) -> io::Result<bool>;
}

/// An error for a verb on a side that this run has no namespace for.
fn no_container() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        "the container's network namespace is not known",
    )
}

struct Ns {
    netns: Arc<Netns>,
    nl: Nl,
    sysctl: Sysctls,
}

/// The real kernel: the host namespace (this thread's) and, when known,
/// the container's.
pub struct System {
    rt: tokio::runtime::Runtime,
    host: Nl,
    host_sysctl: Sysctls,
    container: Option<Ns>,
}

/// Why the real kernel could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error("open a netlink socket ({side})")]
    Socket {
        side: Side,
        #[source]
        source: io::Error,
    },
}

impl System {
    /// Open sockets in this thread's namespace (the host) and, with
    /// `container`, in that namespace.
    pub fn open(container: Option<Netns>) -> Result<System, OpenError> {
        let socket = |side| move |source| OpenError::Socket { side, source };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(socket(Side::Host))?;
        let _guard = rt.enter();
        let host = Nl::current().map_err(socket(Side::Host))?;
        let container = match container {
            None => None,
            Some(ns) => {
                let netns = Arc::new(ns);
                let nl = Nl::open_in(&netns)?.map_err(socket(Side::Container))?;
                Some(Ns {
                    sysctl: Sysctls::new(Some(netns.clone())),
                    netns,
                    nl,
                })
            }
        };
        drop(_guard);
        Ok(System {
            rt,
            host,
            host_sysctl: Sysctls::new(None),
            container,
        })
    }

    fn nl(&self, side: Side) -> io::Result<&Nl> {
        match side {
            Side::Host => Ok(&self.host),
            Side::Container => self
                .container
                .as_ref()
                .map(|c| &c.nl)
                .ok_or_else(no_container),
        }
    }

    fn sysctls(&self, side: Side) -> io::Result<&Sysctls> {
        match side {
            Side::Host => Ok(&self.host_sysctl),
            Side::Container => self
                .container
                .as_ref()
                .map(|c| &c.sysctl)
                .ok_or_else(no_container),
        }
    }

    /// Every link of the host namespace (a dump: for `narwhal list`).
    pub fn host_links(&mut self) -> io::Result<Vec<Link>> {
        self.rt.block_on(self.host.links())
    }
}

impl Kernel for System {
    fn create_veth(&mut self, veth: &Veth) -> io::Result<()> {
        let c = self.container.as_ref().ok_or_else(no_container)?;
        self.rt.block_on(self.host.create_veth(veth, c.netns.fd()))
    }
    fn link(&mut self, side: Side, name: &str) -> io::Result<Option<Link>> {
        self.rt.block_on(self.nl(side)?.link(name))
    }
    fn set_alias(&mut self, side: Side, name: &str, alias: &str) -> io::Result<()> {
        self.rt.block_on(self.nl(side)?.set_alias(name, alias))
    }
    fn set_up(&mut self, side: Side, name: &str) -> io::Result<()> {
        self.rt.block_on(self.nl(side)?.set_up(name, true))
    }
    fn del_link(&mut self, side: Side, name: &str) -> io::Result<()> {
        self.rt.block_on(self.nl(side)?.del_link(name))
    }
    fn netns_ended(&mut self, link: &Link, within: Duration) -> io::Result<bool> {
        let (index, peer, id) = (link.index, link.peer, link.peer_netnsid);
        self.rt
            .block_on(self.host.netns_ended(index, peer, id, within))
    }
    fn await_removal(&mut self, index: u32, within: Duration) -> io::Result<bool> {
        self.rt.block_on(self.host.await_removal(index, within))
    }
    fn add_addr(&mut self, side: Side, addr: &Addr) -> io::Result<()> {
        self.rt.block_on(self.nl(side)?.add_addr(addr))
    }
    fn add_neigh(&mut self, side: Side, neigh: &Neigh) -> io::Result<()> {
        self.rt.block_on(self.nl(side)?.add_neigh(neigh))
    }
    fn add_route(&mut self, side: Side, route: &Route) -> io::Result<()> {
        self.rt.block_on(self.nl(side)?.add_route(route))
    }
    fn has_addr(&mut self, side: Side, addr: &Addr) -> io::Result<bool> {
        self.rt.block_on(self.nl(side)?.has_addr(addr))
    }
    fn addrs(&mut self, side: Side, ifname: &str) -> io::Result<Vec<(IpAddr, IpAddr)>> {
        self.rt.block_on(self.nl(side)?.addrs(ifname))
    }
    fn has_neigh(&mut self, side: Side, neigh: &Neigh) -> io::Result<bool> {
        self.rt.block_on(self.nl(side)?.has_neigh(neigh))
    }
    fn has_route(&mut self, side: Side, route: &Route) -> io::Result<bool> {
        self.rt.block_on(self.nl(side)?.has_route(route))
    }
    fn holder(&mut self, side: Side, addr: IpAddr) -> io::Result<Option<Holder>> {
        self.rt.block_on(self.nl(side)?.holder(addr))
    }
    fn set_sysctl(&mut self, side: Side, sysctl: &Sysctl) -> io::Result<()> {
        let nl = self.nl(side)?;
        if self.rt.block_on(nl.set_conf(sysctl))? {
            return Ok(());
        }
        self.sysctls(side)?.write(sysctl)?;
        nl.noted(sysctl);
        Ok(())
    }
    fn sysctl(&mut self, side: Side, sysctl: &Sysctl) -> io::Result<String> {
        self.sysctls(side)?.read(sysctl)
    }
    fn add_filter(&mut self, filter: &Filter) -> io::Result<()> {
        nft::install(filter)
    }
    fn del_filter(&mut self, ifname: &str) -> io::Result<bool> {
        nft::remove(ifname)
    }
    fn has_filter(&mut self, ifname: &str) -> io::Result<bool> {
        nft::is_marked(ifname)
    }
    fn ensure_source_check(&mut self) -> io::Result<bool> {
        nft::ensure_source_check()
    }
    fn has_source_check(&mut self) -> io::Result<bool> {
        nft::has_source_check()
    }
    fn release_source_check(&mut self, except: &str) -> io::Result<bool> {
        let _lock = nft::source_check_lock()?;
        let mut others = || -> io::Result<bool> {
            let links = self.host_links()?;
            Ok(links
                .iter()
                .any(|l| l.group == crate::net::LINK_GROUP && l.name != except))
        };
        if others()? {
            return Ok(false);
        }
        nft::run(&nft::delete_source_check())?;
        // A setup creates its link, then looks for the check without the
        // lock: if one did so between the look above and the removal, its
        // link is there now, and it gets the check back.
        if others()? {
            nft::run(&nft::source_check_ruleset())?;
            return Ok(false);
        }
        Ok(true)
    }
}
