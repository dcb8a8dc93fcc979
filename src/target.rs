//! Resolving a target to the namespace file and key it stands for. The
//! only I/O between a [`Request`](crate::request::Request) and a
//! [`Spec`](crate::spec::Spec): a Docker container is looked up through
//! the Engine API.

use std::path::PathBuf;

use crate::docker::{self, DockerError};
use crate::error::Error;
use crate::naming;
use crate::request::Target;

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

pub fn proc_netns(pid: i32) -> PathBuf {
    format!("/proc/{pid}/ns/net").into()
}

/// Resolve a target to its namespace file and default key.
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

/// For `remove CONTAINER`: the key of a Docker container, running or
/// not (a stopped container's link is gone, but a `--paranoid` filter may
/// remain). A removed container given by a full or short hex id still has
/// its key. The flag says whether the container is running.
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

/// A request made concrete, from its validated settings (validated first,
/// with [`crate::spec::Config::new`], so a bad value is refused before any
/// lookup) and its target, resolved here. The one way from a
/// [`crate::request::Request`] to a [`crate::spec::Spec`].
pub fn spec(
    config: crate::spec::Config,
    req: &crate::request::Request,
) -> Result<crate::spec::Spec, Error> {
    let target = req
        .target
        .as_ref()
        .ok_or_else(|| Error::Usage("no container namespace given".into()))?;
    let r = resolve(target)?;
    let key = req.key.clone().unwrap_or(r.key);
    let mut spec = config.for_target(r.netns, &key);
    if let Target::Docker(name) = target {
        spec.label = format!("Docker container {name}");
    }
    Ok(spec)
}
