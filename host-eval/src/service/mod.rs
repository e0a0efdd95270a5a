//! The vendor's inference service and the hospital's client (`host-eval serve`, `worker`,
//! `tenant add`, `submit`, `fetch`, `fetch-profile`).
//!
//! - [`api`]: the HTTP API (axum), bearer tokens per tenant ([`auth`]), JSON errors, body
//!   limits, back-pressure, metrics ([`metrics`]);
//! - [`store`] and [`queue`]: blobs, job records and the work queue behind traits, on disk and
//!   in memory for the embedded server, on NATS JetStream ([`nats`]) for scale-out;
//! - [`jobs`]: the job record and its state machine; [`worker`]: the at-least-once worker loop;
//! - [`evaluate`]: the one function that evaluates a job, and the key cache;
//! - [`bundle`]: the digest-checked container for key sets and results; [`client`]: the
//!   hospital's side; [`server`]: process wiring and SIGTERM drain; [`cli`]: the subcommands.

pub mod api;
pub mod auth;
pub mod cli;
pub mod client;
pub mod evaluate;
pub mod jobs;
pub mod metrics;
pub mod nats;
pub mod queue;
pub mod server;
pub mod store;
pub mod worker;
