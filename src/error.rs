//! The library's error type. Each variant names its object; causes are
//! kept as sources, and `main` prints the chain on one line.

use std::io;

use crate::apply::StepError;
use crate::docker::DockerError;
use crate::input::oci::OciError;
use crate::netns::NetnsError;
use crate::spec::SpecError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error(transparent)]
    Docker(#[from] DockerError),
    #[error(transparent)]
    Oci(#[from] OciError),
    #[error(transparent)]
    Step(#[from] StepError),
    #[error("invalid PID '{0}': expected a positive whole number")]
    BadPid(String),
    /// A kernel request outside a plan (lookups, remove).
    #[error("{what}")]
    Kernel { what: String, source: io::Error },
    /// `remove` refuses links narwhal did not create.
    #[error("refusing to remove host interface {ifname}: {why}")]
    NotOurs { ifname: String, why: String },
}

impl Error {
    pub fn kernel(what: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
        let what = what.into();
        move |source| Error::Kernel { what, source }
    }
}
