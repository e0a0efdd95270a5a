//! clifhe-core: the `no_std` half of clifhe.
//!
//! Layers, bottom to top (DESIGN section 3): `arith` -> `ntt` -> `rns` -> `sample` -> `params`
//! -> `encode` -> `multivector` -> `keys` -> `encrypt` -> `decrypt` -> `wire`.
#![no_std]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

pub mod encode;
pub mod multivector;

pub mod arith;
pub mod ntt;
pub mod params;
pub mod rns;
pub mod sample;
