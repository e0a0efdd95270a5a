//! Library side of the `host-eval` binary: data loaders and the command implementations,
//! kept in a library so integration tests can call them directly.

pub mod cli;
pub mod data;
pub mod phantom;
pub mod service;
