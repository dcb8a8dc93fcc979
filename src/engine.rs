//! One engine for every mode: resolve the target, then set up or tear
//! down. The command line and the OCI hook both end here.

use std::path::PathBuf;
use std::sync::Arc;

use crate::apply::Applier;
use crate::docker::{self, DockerError};
use crate::error::Error;
use crate::naming;
use crate::netlink::{NetOps, Nl};
use crate::netns::Netns;
use crate::plan::{plan_up, Step};
use crate::request::Target;
use crate::spec::Spec;

/// The namespace file and key a target stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub netns: PathBuf,
    pub key: String,
}

pub fn parse_pid(pid: &str) -> Result<i32, Error> {
    match pid.parse::<i32>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(Error::BadPid(pid.to_string())),
    }
}

fn proc_netns(pid: i32) -> PathBuf {
    format!("/proc/{pid}/ns/net").into()
}

/// Resolve a target to its namespace file and default key. A Docker
/// container is looked up through the Engine API (one request).
pub fn resolve(target: &Target) -> Result<Resolved, Error> {
    Ok(match target {
        Target::Pid(pid) if *pid > 0 => Resolved {
            netns: proc_netns(*pid),
            key: pid.to_string(),
        },
        Target::Pid(pid) => return Err(Error::BadPid(pid.to_string())),
        Target::Netns(path) => Resolved {
            netns: path.clone(),
            key: naming::netns_key(path),
        },
        Target::Docker(name) => {
            let c = docker::resolve(name)?;
            Resolved {
                netns: proc_netns(c.pid),
                key: c.short_id().to_string(),
            }
        }
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(Error::kernel("start the netlink event loop"))
}

/// Configure the container namespace of `spec`. On failure nothing that
/// this run changed remains (the error carries the rollback report).
pub fn up(spec: &Spec, on_step: &dyn Fn(&Step)) -> Result<(), Error> {
    let ns = Arc::new(Netns::open(&spec.netns)?);
    let mut steps = plan_up(spec);
    if !spec.paranoid && crate::nft::is_marked(&spec.host_if) {
        let ifname = spec.host_if.clone();
        steps.insert(0, Step::DelStaleFilter { ifname });
    }
    runtime()?.block_on(async {
        let host = Nl::current().map_err(Error::kernel("open netlink socket (host)"))?;
        let container = Nl::open_in(ns.clone())?.map_err(Error::kernel(format!(
            "open netlink socket (container netns {})",
            ns.path().display()
        )))?;
        let applier = Applier {
            host: &host,
            container: &container,
            container_ns: ns.fd(),
            on_step,
        };
        applier.apply(&steps).await?;
        Ok(())
    })
}

/// What `down` removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    pub ifname: String,
    /// The host link was there, was narwhal's, and is gone now.
    pub link: bool,
    /// The `--paranoid` filter table was there and is gone now.
    pub filter: bool,
}

impl std::fmt::Display for Removed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let table = crate::nft::table_name(&self.ifname);
        match (self.link, self.filter) {
            (true, true) => write!(f, "removed {} and its filter {table}", self.ifname),
            (true, false) => write!(f, "removed {}", self.ifname),
            (false, true) => write!(
                f,
                "removed filter {table} ({} was already gone)",
                self.ifname
            ),
            (false, false) => write!(f, "nothing to remove: no host interface {}", self.ifname),
        }
    }
}

/// Remove narwhal's host interface `ifname` and its `--paranoid` filter
/// table, if any. With `key`, the link must be narwhal's link
/// for that key; without, any narwhal link. A missing link is success: the
/// container may have stopped and taken it along. A link that is not
/// narwhal's is refused, and then nothing is removed.
pub fn down(ifname: &str, key: Option<&str>) -> Result<Removed, Error> {
    let link = runtime()?.block_on(async {
        let host = Nl::current().map_err(Error::kernel("open netlink socket (host)"))?;
        let what = format!("look up {ifname} (host)");
        let Some(link) = host.link(ifname).await.map_err(Error::kernel(what))? else {
            return Ok(false);
        };
        let not_ours = |why: String| {
            Err(Error::NotOurs {
                ifname: ifname.to_string(),
                why,
            })
        };
        if link.kind.as_deref() != Some("veth") {
            let kind = link.kind.as_deref().unwrap_or("unknown kind");
            return not_ours(format!("it is not a veth ({kind})"));
        }
        match (key, link.alias.as_deref()) {
            (Some(k), Some(a)) if a == naming::alias(k) => {}
            // killed between creating the link and naming it: the MAC tells
            (Some(k), None) if link.mac.as_deref() == Some(&naming::host_mac(k)[..]) => {}
            (None, Some(a)) if a.starts_with(naming::ALIAS_PREFIX) => {}
            (_, Some(a)) if a.starts_with(naming::ALIAS_PREFIX) => {
                return not_ours(format!("it belongs to another container ({a})"));
            }
            _ => return not_ours("narwhal did not create it (no narwhal: alias)".into()),
        }
        let what = format!("host: link del {ifname}");
        match host.del_link(ifname).await {
            Ok(()) => Ok(true),
            // removed by a concurrent remove/poststop since the lookup
            Err(e) if e.raw_os_error() == Some(nix::libc::ENODEV) => Ok(false),
            Err(e) => Err(Error::kernel(what)(e)),
        }
    })?;
    let table = crate::nft::table_name(ifname);
    let filter = crate::nft::remove(ifname).map_err(Error::kernel(format!(
        "host: nft delete table netdev {table}"
    )))?;
    Ok(Removed {
        ifname: ifname.to_string(),
        link,
        filter,
    })
}

/// For `remove CONTAINER`: the key of a Docker container, running or
/// not (a stopped container's link is gone, but a `--paranoid` filter may
/// remain). A removed container given by a full or short hex id still has
/// its key.
/// The flag says whether the container is running.
pub fn docker_key(name: &str) -> Result<(String, bool), Error> {
    match docker::resolve(name) {
        Ok(c) => Ok((c.short_id().to_string(), true)),
        Err(DockerError::NotRunning { id, .. }) => Ok((id.chars().take(12).collect(), false)),
        Err(DockerError::NotFound(_))
            if name.len() >= 12 && name.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            Ok((name[..12].to_string(), false))
        }
        Err(e) => Err(e.into()),
    }
}
