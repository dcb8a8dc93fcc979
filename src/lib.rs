//! narwhal: a routed veth pair per container, static addresses, no bridge,
//! no ARP. Data flows one way:
//!
//! input (argv | OCI state) -> [`request::Request`] -> [`spec::Spec`]
//! -> [`plan::plan_up`] (`Vec<Step>`) -> [`apply::Applier`] -> kernel.
//!
//! [`netlink`] is the only module that talks to the kernel.

pub mod apply;
pub mod cli;
pub mod cmd;
pub mod cni;
pub mod docker;
pub mod engine;
pub mod error;
pub mod hook;
pub mod input;
pub mod log;
pub mod naming;
pub mod netlink;
pub mod netns;
pub mod nft;
pub mod plan;
pub mod request;
pub mod spec;

pub use error::Error;
