//! The library's errors, their exit status and their CNI error code.
//!
//! Each variant names its object and keeps its cause as `source()`; the
//! binary adds the outer context (what it was doing, for which container)
//! and prints the whole chain on one line with [`render`].

use std::io;

use crate::apply::StepError;
use crate::docker::DockerError;
use crate::input::oci::OciError;
use crate::kernel::netns::NetnsError;
use crate::kernel::OpenError;
use crate::spec::SpecError;

/// Exit status: the request failed (nothing was changed, or everything
/// was rolled back).
pub const EXIT_FAILURE: u8 = 1;
/// Exit status: the command line or the hook stage is invalid.
pub const EXIT_USAGE: u8 = 2;
/// Exit status: a failure whose rollback was incomplete: the host may
/// hold leftovers, listed in the message.
pub const EXIT_DIRTY: u8 = 3;

/// CNI error codes: the spec's (below 100) and narwhal's own (100 and
/// up; docs/cni.md lists them). The one definition of each number.
pub mod cni_code {
    /// Incompatible CNI version.
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    /// Container unknown or does not exist.
    pub const UNKNOWN_CONTAINER: u32 = 3;
    /// Invalid necessary environment variables.
    pub const INVALID_ENV: u32 = 4;
    /// I/O failure.
    pub const IO: u32 = 5;
    /// Failed to decode content.
    pub const DECODE: u32 = 6;
    /// Invalid network config.
    pub const INVALID_CONFIG: u32 = 7;
    /// STATUS: the plugin cannot add containers now.
    pub const NOT_AVAILABLE: u32 = 50;
    /// A kernel change failed; everything this call did was undone.
    pub const KERNEL: u32 = 100;
    /// The IPAM plugin is missing or gave an unusable answer.
    pub const IPAM: u32 = 101;
    /// CHECK found the kernel differing from the previous result.
    pub const DRIFT: u32 = 102;
    /// The host interface exists and is not this attachment's.
    pub const NOT_OURS: u32 = 103;
    /// The address is held by another container or by the host.
    pub const ADDRESS_IN_USE: u32 = 104;
    /// A kernel change failed and the rollback was incomplete.
    pub const ROLLBACK_INCOMPLETE: u32 = 105;
    /// The Docker Engine could not resolve the container.
    pub const DOCKER: u32 = 106;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error(transparent)]
    Docker(#[from] DockerError),
    #[error(transparent)]
    Oci(#[from] OciError),
    #[error(transparent)]
    Step(#[from] Box<StepError>),
    /// Teardown ran every step; these failed.
    #[error("{}", .0.iter().map(render_step).collect::<Vec<_>>().join("; "))]
    Teardown(Vec<StepError>),
    #[error("invalid PID '{0}': expected a positive whole number")]
    BadPid(String),
    /// Teardown refuses links narwhal did not create.
    #[error("refusing to remove host interface {ifname}: {why}")]
    NotOurs { ifname: String, why: String },
    /// The address is held by another container or by the host.
    #[error("{addr} is already in use by {holder} ({side} side)")]
    AddressInUse {
        addr: std::net::IpAddr,
        holder: String,
        side: crate::net::Side,
    },
    /// An operation outside a plan (lookups, marks).
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
}

impl Error {
    pub fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
        let what = what.into();
        move |source| Error::Io { what, source }
    }

    /// The exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::Oci(OciError::UnknownStage(_)) => EXIT_USAGE,
            Error::Step(e) if !e.clean() => EXIT_DIRTY,
            _ => EXIT_FAILURE,
        }
    }

    /// The CNI error code for this error.
    pub fn cni_code(&self) -> u32 {
        use cni_code::*;
        match self {
            Error::Usage(_) | Error::BadPid(_) => INVALID_ENV,
            Error::Spec(_) => INVALID_CONFIG,
            Error::Oci(_) => DECODE,
            Error::Netns(e) if e.is_missing() => UNKNOWN_CONTAINER,
            Error::Netns(NetnsError::NotNetns { .. } | NetnsError::IsHost { .. }) => INVALID_ENV,
            Error::Netns(_) | Error::Open(_) | Error::Io { .. } => IO,
            Error::Docker(_) => DOCKER,
            Error::Step(e) if !e.clean() => ROLLBACK_INCOMPLETE,
            Error::Step(_) | Error::Teardown(_) => KERNEL,
            Error::NotOurs { .. } => NOT_OURS,
            Error::AddressInUse { .. } => ADDRESS_IN_USE,
        }
    }
}

fn render_step(e: &StepError) -> String {
    format!("{e}: {}{}", e.source, e.tail())
}

/// The failed step inside `err`, if it is one.
fn as_step<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a StepError> {
    match err.downcast_ref::<Error>() {
        Some(Error::Step(s)) => Some(s),
        _ => err.downcast_ref::<StepError>(),
    }
}

/// A chain of errors on one line, `context: cause: cause`, followed by
/// the notes and rollback report of a failed step, if any.
fn render_chain<'a>(chain: impl Iterator<Item = &'a (dyn std::error::Error + 'static)>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut tail = String::new();
    for err in chain {
        let text = err.to_string();
        // transparent wrappers repeat their inner error's text
        if parts.last() != Some(&text) && !text.is_empty() {
            parts.push(text);
        }
        if let Some(s) = as_step(err) {
            tail = s.tail();
        }
    }
    crate::log::one_line(&(parts.join(": ") + &tail)).into_owned()
}

/// The whole chain of `e` on one line (see [`render_chain`]).
pub fn render(e: &(dyn std::error::Error + 'static)) -> String {
    render_chain(std::iter::successors(Some(e), |e| e.source()))
}

/// [`render`] for an `anyhow::Error` (the binary's edge).
pub fn render_anyhow(e: &anyhow::Error) -> String {
    render_chain(e.chain())
}

/// The exit status for an error from any mode.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    for c in e.chain() {
        if let Some(e) = c.downcast_ref::<Error>() {
            return e.exit_code();
        }
        if let Some(OciError::UnknownStage(_)) = c.downcast_ref::<OciError>() {
            return EXIT_USAGE;
        }
    }
    EXIT_FAILURE
}

/// A note for an error caused by missing privileges when not root.
pub fn privilege_note(e: &anyhow::Error) -> Option<&'static str> {
    if nix::unistd::geteuid().is_root() {
        return None;
    }
    let denied = e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .and_then(io::Error::raw_os_error)
            .is_some_and(|n| n == nix::libc::EPERM || n == nix::libc::EACCES)
            || c.to_string().contains("Operation not permitted")
    });
    denied.then_some("narwhal needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN)")
}
