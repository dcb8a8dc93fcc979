//! The commands, one module each. Each turns its input into a request,
//! runs the engine and reports; errors go back to `main`, which prints
//! them once and maps them to the exit status.

pub mod check;
pub mod hook;
pub mod list;
pub mod remove;
pub mod runtime;
pub mod up;
