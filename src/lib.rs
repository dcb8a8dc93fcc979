//! narwhal: a routed veth pair per container, static addresses, no bridge,
//! no ARP. Data flows one way (see ARCHITECTURE.md):
//!
//! input (argv | OCI state | …) -> [`request::Request`]
//! -> [`spec::Config`] (validated settings) + [`target`] (resolved
//! namespace and key) -> [`spec::Spec`] -> [`plan`] (`Vec<Step>`, pure)
//! -> [`apply::Applier`] -> [`kernel::Kernel`].
//!
//! [`kernel`] is the only module that talks to the kernel.

pub mod allow;
pub mod apply;
pub mod cli;
pub mod cmd;
pub mod cni;
pub mod docker;
pub mod engine;
pub mod error;
pub mod input;
pub mod kernel;
pub mod log;
pub mod naming;
pub mod net;
pub mod plan;
pub mod request;

pub mod settings;
pub mod spec;
pub mod target;

pub use error::Error;
