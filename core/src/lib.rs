//! clifhe-core: the `no_std` half of clifhe.
//!
//! Layers, bottom to top (docs/architecture.md §3): `arith` -> `ntt` (and `lincomb`) -> `rns` -> `sample` -> `params`
//! -> `encode` -> `multivector` -> `keys` -> `encrypt` -> `decrypt` -> `wire`.
#![no_std]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

pub mod encode;
pub mod multivector;
pub use multivector::Multivector;

pub mod arith;
#[cfg(all(feature = "std", target_arch = "x86_64"))]
mod chacha_avx512;
pub mod ciphertext;
#[cfg(feature = "alloc")]
pub mod context;
#[cfg(feature = "alloc")]
pub mod decrypt;
pub mod device_input;
pub mod encrypt;
pub mod error;
#[cfg(feature = "alloc")]
pub mod flash_image;
pub mod keys;
pub mod lincomb;
pub mod ntt;
#[cfg(all(feature = "std", target_arch = "x86_64"))]
mod ntt_avx2;
pub mod ntt_compact;
#[cfg(all(feature = "std", target_arch = "x86_64"))]
mod ntt_ifma;
pub mod params;
pub mod rns;
pub mod sample;
pub mod slot_blocks;
pub mod wire;

pub use ciphertext::{Ciphertext, CiphertextMeta, SeededCiphertext};
pub use error::Error;
pub use keys::{PublicKey, SecretKey, SecretSeed};
pub use params::{Params, ParamsLiteral};
