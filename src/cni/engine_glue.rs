//! Everything CNI mode needs from the engine, in one place: set up, tear
//! down, list this network's attachments, and check a previous result
//! against the kernel (the engine's check plan, both sides).

use std::net::IpAddr;
use std::path::Path;

use crate::engine::{self, Removed};
use crate::error::Error;
use crate::kernel::netns::Netns;
use crate::kernel::{Kernel, System};
use crate::log::Log;
use crate::naming::{self, format_mac, ALIAS_PREFIX};
use crate::net::Side;
use crate::plan::Owner;
use crate::spec::Spec;

/// Both ends of a configured pair, for the ADD result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ends {
    pub host_mac: String,
    pub container_mac: String,
}

/// Set up `spec`; on success the pair is there, on failure nothing is.
pub fn up(spec: &Spec, log: &Log) -> Result<Ends, Error> {
    let info = |s: &dyn std::fmt::Display| log.info(&format!("{}: {s}", spec.key));
    for w in engine::up(spec, &|s| info(s))? {
        log.warn(&format!("{}: {w}", spec.key));
    }
    Ok(Ends {
        host_mac: format_mac(&naming::host_mac(&spec.key)),
        container_mac: format_mac(&naming::container_mac(&spec.key)),
    })
}

/// Remove the pair of `key` whose host end is `host_if`; a missing link
/// is success.
pub fn down(host_if: &str, key: &str) -> Result<Removed, Error> {
    engine::down(host_if, Owner::Key(key.to_string()), false, &|_| {})
}

/// `(host interface, key)` of every narwhal link on this host whose key
/// starts with `prefix` (a dump: GC only).
pub fn attachments(prefix: &str) -> Result<Vec<(String, String)>, Error> {
    let mut k = System::open(None)?;
    let links = k.host_links().map_err(Error::io("list the host's links"))?;
    Ok(links
        .into_iter()
        .filter_map(|l| {
            let key = l.alias.as_deref()?.strip_prefix(ALIAS_PREFIX)?;
            key.starts_with(prefix).then(|| (l.name, key.to_string()))
        })
        .collect())
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

/// Compare what `want` describes with the kernel, both sides: the engine's
/// check of the spec, plus what the previous result itself claims.
/// `Ok(list)`: every difference found (empty: none).
pub fn check(want: &Expected<'_>) -> Result<Vec<String>, Error> {
    let spec = want.spec;
    let mut diff = Vec::new();
    let ours = format_mac(&naming::container_mac(&spec.key));
    if let Some(mac) = &want.container_mac {
        if !mac.eq_ignore_ascii_case(&ours) {
            diff.push(format!(
                "prevResult: {} has MAC {mac}, narwhal gives it {ours}",
                spec.container_if
            ));
        }
    }
    let addrs = spec.container_addrs();
    for a in &want.addresses {
        if !addrs.contains(a) {
            diff.push(format!("prevResult: address {a} is not the container's"));
        }
    }
    let health = engine::check(spec, false, &|_| {})?;
    // each finding names its side: `missing: container: route add …`
    diff.extend(health.findings.iter().map(|f| f.to_string()));
    Ok(diff)
}

/// Whether this process can configure networks (STATUS): root, and
/// netlink works. `Err`: why not.
pub fn usable() -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("narwhal needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN)".into());
    }
    let mut k = System::open(None).map_err(|e| crate::error::render(&e))?;
    k.link(Side::Host, "lo")
        .map_err(|e| format!("look up lo (host): {e}"))?;
    Ok(())
}

/// Whether `path` names a network namespace that does not exist (any more).
pub fn netns_missing(path: &Path) -> bool {
    matches!(Netns::open(path), Err(e) if e.is_missing())
}
