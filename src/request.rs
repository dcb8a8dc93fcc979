//! The untrusted request: what a user asked for, before validation.
//!
//! Every input mode (command line, OCI hook, later CNI) produces one
//! [`Request`]; [`crate::spec::Spec::try_from_request`] is the only way to
//! turn it into something the rest of narwhal acts on.

use std::path::PathBuf;

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

/// Raw settings, exactly as given (command-line values or annotation values).
/// `None` means "not given: use the default".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
    pub host_ipv4: Option<String>,
    pub host_ipv6: Option<String>,
    pub interface: Option<String>,
    pub host_interface: Option<String>,
    pub mtu: Option<String>,
    /// `"true"` / `"false"` (annotations); the command-line flag gives `"true"`.
    pub forwarding: Option<String>,
    /// `"true"` / `"false"`: the anti-spoofing filter (`--paranoid`).
    pub paranoid: Option<String>,
}

/// A request to configure one container namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The namespace to configure. `None` at teardown when the namespace
    /// is no longer known (OCI poststop carries no pid).
    pub target: Option<Target>,
    /// The stable key the host interface name and ownership mark derive
    /// from: Docker short id, OCI container id, pid, or netns file name.
    /// Filled in by the input mode or by target resolution.
    pub key: Option<String>,
    pub settings: Settings,
}
