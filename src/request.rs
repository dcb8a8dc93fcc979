//! The untrusted request: what a user asked for, before validation.
//!
//! Every input mode (command line, OCI hook, CNI, `narwhal runtime`)
//! produces one [`Request`]. The target is then resolved to a namespace
//! and key ([`crate::target`]), and [`crate::spec::Spec`] is validated
//! once from both: the only type the planner sees.

use std::path::PathBuf;

pub use crate::settings::Settings;

/// Which network namespace to configure, as named by the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A network namespace file, e.g. `/run/netns/NAME` or `/proc/PID/ns/net`.
    Netns(PathBuf),
    /// Any process's network namespace (`/proc/PID/ns/net`).
    Pid(i32),
    /// A Docker container id or name, resolved through the Engine API.
    Docker(String),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Docker(c) => write!(f, "Docker container {c}"),
            Target::Pid(p) => write!(f, "process {p}"),
            Target::Netns(n) => write!(f, "netns {}", n.display()),
        }
    }
}

/// A request to configure (or tear down, or check) one container link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The namespace. `None` at teardown when it is no longer known (OCI
    /// poststop carries no pid).
    pub target: Option<Target>,
    /// The stable key the host interface name and ownership mark derive
    /// from, when the input mode knows it (OCI container id, CNI container
    /// id + interface). `None`: derived from the target when it is
    /// resolved (Docker short id, pid, netns file name).
    pub key: Option<String>,
    pub settings: Settings,
}
