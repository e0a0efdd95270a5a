//! The flash images a device's public-key encryption reads in place (host side, `alloc`).
//!
//! A device encrypting under the hospital's public key needs, per prime q_i of its preset, the
//! forward NTT twiddles and their Shoup quotients, and the key's `b` polynomial in NTT form;
//! the key's `a` is regenerated on the device from its 32-byte public seed. The firmware
//! embeds these bytes (`include_bytes!`) and views them as `u64` words without copying, so the
//! format is the simplest one: little-endian `u64`s, nothing else.
//!
//! - [`ntt_image`]: `w[0..N]` then `w_shoup[0..N]`, as [`crate::ntt::fill_twiddles`] fills them
//!   for the canonical root [`crate::ntt::primitive_root_2n`] (the same table the host builds),
//!   and with [`NttImage::Full`] the inverse table after them (`psi^-1`, then its quotients):
//!   the low-RAM encryption (`PkStreamEncryptor::c0_limb_in_place`) transforms back and forth
//!   in one buffer.
//! - [`public_key_b_image`]: the key's `b`, limb by limb (prime 0 first), N words each.
//!
//! Everything here is public: no image carries secret material. `host-eval device-bundle`
//! writes them from a real key set and the firmware tests' host tool from its test keys.

use crate::arith::Modulus;
use crate::keys::PublicKey;
use crate::ntt::{fill_twiddles, primitive_root_2n};
use crate::params::Params;
use crate::Error;
use alloc::vec;
use alloc::vec::Vec;

fn words_le(words: &[u64]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// Which halves of a prime's NTT table a device image carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NttImage {
    /// Forward twiddles and quotients (16 N bytes): the two-buffer encryption.
    ForwardOnly,
    /// Forward then inverse (32 N bytes): the one-buffer (low-RAM) encryption.
    Full,
}

/// The NTT table of prime `i` of `params` (16 N or 32 N bytes, see [`NttImage`]).
pub fn ntt_image(params: &Params, i: usize, kind: NttImage) -> Result<Vec<u8>, Error> {
    let primes = params.q().len();
    let q = *params.q().get(i).ok_or(Error::PrimeOutOfRange { index: i, primes })?;
    // Params::new validated every prime as NTT-friendly, so neither step can fail here.
    let not_ntt_friendly = Error::Params(crate::params::ParamsError::NotNttFriendly { modulus: q });
    let m = Modulus::new(q).ok_or(not_ntt_friendly)?;
    let n = params.n();
    let root = primitive_root_2n(&m, n).ok_or(not_ntt_friendly)?;
    let (mut w, mut ws) = (vec![0u64; n], vec![0u64; n]);
    fill_twiddles(&m, root, &mut w, &mut ws);
    let mut img = words_le(&w);
    img.extend(words_le(&ws));
    if kind == NttImage::Full {
        fill_twiddles(&m, m.inv(root), &mut w, &mut ws);
        img.extend(words_le(&w));
        img.extend(words_le(&ws));
    }
    Ok(img)
}

/// The public key's `b` (8 N bytes per prime).
pub fn public_key_b_image<S: AsRef<[u64]>>(pk: &PublicKey<S>) -> Vec<u8> {
    words_le(pk.b().as_slice())
}
