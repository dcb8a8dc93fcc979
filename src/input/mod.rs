//! Input modes: each turns its input into one [`crate::request::Request`].

pub mod args;
pub mod oci;
