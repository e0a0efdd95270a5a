//! clifhe-std: host-side CKKS evaluation on top of clifhe-core's types and algorithms.
//!
//! Layers (docs/architecture.md §3): `keyswitch` -> `evaluator` -> (linalg -> bootstrap) -> `ga`
//! -> (gnn -> privacy). Everything here reuses core's `RnsPoly`, NTT tables, encoder and
//! `Ciphertext`; there is no second implementation of any of them.

pub mod bootstrap;
pub mod context;
pub mod error;
pub mod evaluator;
pub mod ga;
pub mod galois;
pub mod gnn;
pub mod keys;
pub mod keys_wire;
pub mod keyswitch;

pub use bootstrap::{BootstrapKeys, BootstrapLiteral, Bootstrapper};
pub use context::EvalContext;
pub use error::EvalError;
pub use evaluator::{Ciphertext3, Evaluator, PlaintextRns};
pub use keys::{GaloisKeys, RelinearizationKey};
pub use keyswitch::{KeyStorage, SwitchingKey};
pub mod preprocess;
pub mod privacy;
pub mod protocol;
pub mod runtime;
mod sum_of_products;
