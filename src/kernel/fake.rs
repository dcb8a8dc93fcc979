//! An in-memory kernel that records every call, for unit tests without
//! root: the applier's rollback order, keep-going teardown, error notes and
//! tolerated errors are tested against it. Chosen explicitly by the test,
//! never by `cfg(test)`.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::time::Duration;

use super::Kernel;
use std::net::IpAddr;

use crate::net::{format_mac, Addr, Filter, Holder, Link, Neigh, Route, Side, Sysctl, Veth};

/// The fake's whole state: links per side, their objects, filters.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Fake {
    pub links: BTreeMap<(SideKey, String), Link>,
    /// Addresses, neighbours, routes: `(side, link, text)`.
    pub objects: BTreeSet<(SideKey, String, String)>,
    pub sysctls: BTreeMap<(SideKey, String), String>,
    pub filters: BTreeSet<String>,
    /// The host-wide source check.
    pub source_check: bool,
    /// Host end of each veth pair -> its peer in the container.
    pub peers: BTreeMap<String, String>,
    /// Every call, in order, as `side: verb object`.
    pub calls: Vec<String>,
    /// Fail the call whose record starts with this text, with this errno.
    pub fail: Option<(String, i32)>,
    /// Host links whose peer's namespace has ended: Linux removes them
    /// (when their removal is awaited, here).
    pub netns_ended: BTreeSet<String>,
    next_index: u32,
}

/// `Side` in a sortable form.
pub type SideKey = u8;

fn key(side: Side) -> SideKey {
    match side {
        Side::Host => 0,
        Side::Container => 1,
    }
}

fn err(errno: i32) -> io::Error {
    io::Error::from_raw_os_error(errno)
}

impl Fake {
    pub fn new() -> Fake {
        Fake::default()
    }

    /// Fail the first call whose record starts with `prefix` with `errno`.
    pub fn failing(prefix: &str, errno: i32) -> Fake {
        Fake {
            fail: Some((prefix.to_string(), errno)),
            ..Fake::default()
        }
    }

    /// Add a link as if someone else had made it.
    pub fn add_link(&mut self, side: Side, name: &str, link: Link) {
        self.links.insert(
            (key(side), name.to_string()),
            Link {
                name: name.into(),
                ..link
            },
        );
    }

    /// Record a call; fail it if it matches `fail`.
    fn call(&mut self, side: Side, what: String) -> io::Result<()> {
        let rec = format!("{side}: {what}");
        self.calls.push(rec.clone());
        match &self.fail {
            Some((p, errno)) if rec.starts_with(p.as_str()) => {
                let e = *errno;
                self.fail = None;
                Err(err(e))
            }
            _ => Ok(()),
        }
    }

    fn need_link(&self, side: Side, name: &str) -> io::Result<()> {
        if self.links.contains_key(&(key(side), name.to_string())) {
            Ok(())
        } else {
            Err(err(nix::libc::ENODEV))
        }
    }

    fn add_object(&mut self, side: Side, ifname: &str, text: String) -> io::Result<()> {
        self.need_link(side, ifname)?;
        if !self.objects.insert((key(side), ifname.to_string(), text)) {
            return Err(err(nix::libc::EEXIST));
        }
        Ok(())
    }

    fn has_object(&self, side: Side, ifname: &str, text: String) -> io::Result<bool> {
        self.need_link(side, ifname)?;
        Ok(self
            .objects
            .contains(&(key(side), ifname.to_string(), text)))
    }
}

fn addr_text(a: &Addr) -> String {
    format!("addr {} peer {}", a.local, a.peer)
}
fn neigh_text(n: &Neigh) -> String {
    format!("neigh {} {}", n.ip, format_mac(&n.mac))
}
fn route_text(r: &Route) -> String {
    format!("route {:?} via {:?}", r.dst, r.via)
}

impl Kernel for Fake {
    fn create_veth(&mut self, v: &Veth) -> io::Result<()> {
        self.call(Side::Host, format!("link add {} peer {}", v.host, v.peer))?;
        let (h, c) = (
            (key(Side::Host), v.host.clone()),
            (key(Side::Container), v.peer.clone()),
        );
        if self.links.contains_key(&h) || self.links.contains_key(&c) {
            return Err(err(nix::libc::EEXIST));
        }
        self.peers.insert(v.host.clone(), v.peer.clone());
        for (k, mac) in [(h, v.host_mac), (c, v.peer_mac)] {
            self.next_index += 1;
            let link = Link {
                name: k.1.clone(),
                index: self.next_index,
                noarp: true,
                mac: Some(mac.to_vec()),
                kind: Some("veth".into()),
                mtu: v.mtu,
                ..Link::default()
            };
            self.links.insert(k, link);
        }
        Ok(())
    }

    fn link(&mut self, side: Side, name: &str) -> io::Result<Option<Link>> {
        Ok(self.links.get(&(key(side), name.to_string())).cloned())
    }

    fn set_alias(&mut self, side: Side, name: &str, alias: &str) -> io::Result<()> {
        self.call(side, format!("link set {name} alias {alias}"))?;
        match self.links.get_mut(&(key(side), name.to_string())) {
            Some(l) => {
                l.alias = Some(alias.into());
                Ok(())
            }
            None => Err(err(nix::libc::ENODEV)),
        }
    }

    fn set_up(&mut self, side: Side, name: &str) -> io::Result<()> {
        self.call(side, format!("link set {name} up"))?;
        match self.links.get_mut(&(key(side), name.to_string())) {
            Some(l) => {
                l.up = true;
                Ok(())
            }
            // the container's lo always exists
            None if name == "lo" => Ok(()),
            None => Err(err(nix::libc::ENODEV)),
        }
    }

    fn del_link(&mut self, side: Side, name: &str) -> io::Result<()> {
        self.call(side, format!("link del {name}"))?;
        if self.links.remove(&(key(side), name.to_string())).is_none() {
            return Err(err(nix::libc::ENODEV));
        }
        // a veth goes with its peer and everything on both ends
        let mut gone = vec![(key(side), name.to_string())];
        if let Some(peer) = self.peers.remove(name) {
            self.links.remove(&(key(Side::Container), peer.clone()));
            gone.push((key(Side::Container), peer));
        }
        self.objects
            .retain(|(s, l, _)| !gone.iter().any(|(gs, gl)| gs == s && gl == l));
        self.sysctls.retain(|(s, k), _| {
            !gone
                .iter()
                .any(|(gs, gl)| gs == s && k.split('/').nth(1) == Some(gl.as_str()))
        });
        Ok(())
    }

    fn netns_ended(&mut self, link: &Link, within: Duration) -> io::Result<bool> {
        self.call(
            Side::Host,
            format!(
                "await the end of {}'s peer namespace ({} ms)",
                link.name,
                within.as_millis()
            ),
        )?;
        let there = self
            .links
            .contains_key(&(key(Side::Host), link.name.clone()));
        Ok(!there || self.netns_ended.contains(&link.name))
    }

    fn await_removal(&mut self, index: u32, within: Duration) -> io::Result<bool> {
        self.call(
            Side::Host,
            format!("await removal of link {index} ({} ms)", within.as_millis()),
        )?;
        let name = self
            .links
            .iter()
            .find(|((s, _), l)| *s == key(Side::Host) && l.index == index)
            .map(|((_, n), _)| n.clone());
        let Some(name) = name else {
            return Ok(true);
        };
        if !self.netns_ended.remove(&name) {
            return Ok(false);
        }
        // the kernel's deletion, not one of narwhal's calls
        let calls = self.calls.len();
        self.del_link(Side::Host, &name)?;
        self.calls.truncate(calls);
        Ok(true)
    }

    fn add_addr(&mut self, side: Side, a: &Addr) -> io::Result<()> {
        self.call(side, format!("addr add {} dev {}", a.local, a.ifname))?;
        self.add_object(side, &a.ifname, addr_text(a))
    }

    fn add_neigh(&mut self, side: Side, n: &Neigh) -> io::Result<()> {
        self.call(side, format!("neigh add {} dev {}", n.ip, n.ifname))?;
        self.add_object(side, &n.ifname, neigh_text(n))
    }

    fn add_route(&mut self, side: Side, r: &Route) -> io::Result<()> {
        self.call(side, format!("route add {:?} dev {}", r.dst, r.ifname))?;
        self.add_object(side, &r.ifname, route_text(r))
    }

    fn has_addr(&mut self, side: Side, a: &Addr) -> io::Result<bool> {
        self.has_object(side, &a.ifname, addr_text(a))
    }

    fn addrs(&mut self, side: Side, ifname: &str) -> io::Result<Vec<(IpAddr, IpAddr)>> {
        self.need_link(side, ifname)?;
        Ok(self
            .objects
            .iter()
            .filter(|(s, l, _)| *s == key(side) && l == ifname)
            .filter_map(|(_, _, t)| {
                let mut w = t.strip_prefix("addr ")?.split(" peer ");
                Some((w.next()?.parse().ok()?, w.next()?.parse().ok()?))
            })
            .collect())
    }

    fn has_neigh(&mut self, side: Side, n: &Neigh) -> io::Result<bool> {
        self.has_object(side, &n.ifname, neigh_text(n))
    }

    fn has_route(&mut self, side: Side, r: &Route) -> io::Result<bool> {
        self.has_object(side, &r.ifname, route_text(r))
    }

    fn holder(&mut self, side: Side, addr: IpAddr) -> io::Result<Option<Holder>> {
        let text = format!("route {:?} via None", Some(addr));
        let found = self
            .objects
            .iter()
            .find(|(s, _, t)| *s == key(side) && *t == text);
        Ok(found.map(|(_, ifname, _)| Holder::Link {
            name: ifname.clone(),
            alias: self
                .links
                .get(&(key(side), ifname.clone()))
                .and_then(|l| l.alias.clone())
                .unwrap_or_default(),
        }))
    }

    fn set_sysctl(&mut self, side: Side, s: &Sysctl) -> io::Result<()> {
        self.call(side, format!("sysctl {s}"))?;
        self.need_link(side, &s.ifname)
            .map_err(|_| err(nix::libc::ENOENT))?;
        let k = (
            key(side),
            format!("{}/{}/{}", s.family.number(), s.ifname, s.name),
        );
        self.sysctls.insert(k, s.value.to_string());
        Ok(())
    }

    fn sysctl(&mut self, side: Side, s: &Sysctl) -> io::Result<String> {
        self.need_link(side, &s.ifname)
            .map_err(|_| err(nix::libc::ENOENT))?;
        let k = (
            key(side),
            format!("{}/{}/{}", s.family.number(), s.ifname, s.name),
        );
        Ok(self.sysctls.get(&k).cloned().unwrap_or_default())
    }

    fn add_filter(&mut self, f: &Filter) -> io::Result<()> {
        self.call(Side::Host, format!("filter add {}", f.ifname))?;
        self.filters.insert(f.ifname.clone());
        Ok(())
    }

    fn del_filter(&mut self, ifname: &str) -> io::Result<bool> {
        if !self.filters.contains(ifname) {
            return Ok(false);
        }
        self.call(Side::Host, format!("filter del {ifname}"))?;
        Ok(self.filters.remove(ifname))
    }

    fn has_filter(&mut self, ifname: &str) -> io::Result<bool> {
        Ok(self.filters.contains(ifname))
    }

    fn ensure_source_check(&mut self) -> io::Result<bool> {
        if self.source_check {
            return Ok(false);
        }
        self.call(Side::Host, "source check add".into())?;
        self.source_check = true;
        Ok(true)
    }

    fn has_source_check(&mut self) -> io::Result<bool> {
        Ok(self.source_check)
    }

    fn release_source_check(&mut self, except: &str) -> io::Result<bool> {
        let others = self
            .links
            .keys()
            .any(|(s, n)| *s == key(Side::Host) && n != except);
        if others || !self.source_check {
            return Ok(false);
        }
        self.call(Side::Host, "source check del".into())?;
        self.source_check = false;
        Ok(true)
    }
}
