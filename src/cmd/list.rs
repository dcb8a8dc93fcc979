//! `narwhal list [--json]`: every narwhal link on this host.

use anyhow::Result;
use serde::Serialize;

use crate::cli::ListArgs;
use crate::kernel::{Kernel, System};
use crate::naming::ALIAS_PREFIX;
use crate::net::{format_mac, Family, Side, Sysctl};

/// One narwhal link, as `narwhal list --json` prints it (a stable format:
/// fields are only ever added).
#[derive(Debug, Serialize)]
pub struct Entry {
    pub host_interface: String,
    /// The container's key (`#HASH` for keys too long for an alias).
    pub key: String,
    pub container_addresses: Vec<String>,
    pub host_addresses: Vec<String>,
    pub host_mac: String,
    pub container_mac: Option<String>,
    /// The `--paranoid` filter is installed.
    pub filter: bool,
    /// Forwarding per family on the host interface (`null`: IPv6 off).
    pub forwarding_ipv4: bool,
    pub forwarding_ipv6: Option<bool>,
    /// The container end exists (its namespace is alive).
    pub container_alive: bool,
    pub up: bool,
}

fn entries() -> Result<Vec<Entry>> {
    let mut k = System::open(None)?;
    let mut out = Vec::new();
    for l in k.host_links()? {
        let Some(key) = l
            .alias
            .as_deref()
            .and_then(|a| a.strip_prefix(ALIAS_PREFIX))
        else {
            continue;
        };
        let key = key.to_string();
        let addrs = k.addrs(Side::Host, &l.name).unwrap_or_default();
        let sysctl = |family, name| Sysctl {
            family,
            ifname: l.name.clone(),
            name,
            value: "",
        };
        let fwd4 = k.sysctl(Side::Host, &sysctl(Family::V4, "forwarding")).ok();
        let v6_off = k
            .sysctl(Side::Host, &sysctl(Family::V6, "disable_ipv6"))
            .ok();
        let fwd6 = match v6_off.as_deref() {
            Some("0") => k
                .sysctl(Side::Host, &sysctl(Family::V6, "forwarding"))
                .ok()
                .map(|v| v == "1"),
            _ => None,
        };
        out.push(Entry {
            host_interface: l.name.clone(),
            container_addresses: addrs.iter().map(|(_, p)| p.to_string()).collect(),
            host_addresses: addrs.iter().map(|(h, _)| h.to_string()).collect(),
            host_mac: l.mac.as_deref().map(format_mac).unwrap_or_default(),
            container_mac: (!key.starts_with('#'))
                .then(|| format_mac(&crate::naming::container_mac(&key))),
            filter: k.has_filter(&l.name).unwrap_or(false),
            forwarding_ipv4: fwd4.as_deref() == Some("1"),
            forwarding_ipv6: fwd6,
            container_alive: l.peer.is_some(),
            up: l.up,
            key,
        });
    }
    out.sort_by(|a, b| a.host_interface.cmp(&b.host_interface));
    Ok(out)
}

pub fn run(a: ListArgs) -> Result<()> {
    let list = entries()?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    println!(
        "{:<15} {:<14} {:<40} {:<7} {:<9} CONTAINER",
        "HOST-IF", "KEY", "ADDRESSES", "FILTER", "FORWARD"
    );
    for e in list {
        let fwd = match (e.forwarding_ipv4, e.forwarding_ipv6) {
            (a, Some(b)) => format!("{}/{}", a as u8, b as u8),
            (a, None) => format!("{}/-", a as u8),
        };
        println!(
            "{:<15} {:<14} {:<40} {:<7} {:<9} {}",
            e.host_interface,
            e.key,
            e.container_addresses.join(","),
            if e.filter { "yes" } else { "no" },
            fwd,
            if e.container_alive { "alive" } else { "gone" }
        );
    }
    Ok(())
}
