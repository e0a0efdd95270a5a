//! Output privacy (docs/architecture.md §8).
//!
//! Two rules, one per side of the trust boundary:
//! - **Vendor side** ([`sanitize_output`]): before an encrypted result leaves the evaluator,
//!   unused slots are masked to zero, the ciphertext is re-randomised with a fresh public-key
//!   encryption of zero (otherwise c1 is a deterministic function of the vendor's weights and the
//!   hospital's input), flooded with noise that statistically hides the evaluation noise (which
//!   also depends on the weights), and dropped to the lowest level (fewer primes, less to leak).
//! - **Hospital side** ([`Releaser::decrypt_for_release`]): a raw decryption m + e together with
//!   its ciphertext reveals the secret key (Li and Micciancio, EUROCRYPT 2021). Anything that
//!   leaves the key holder is computed from a decryption that was flooded *before* decoding,
//!   then reduced to what the recipient needs (argmax, or scores rounded to a few digits), and
//!   every release is counted against a per-key budget.
//!
//! Flooding uses uniform noise on [-W, W) with W = 2^ceil(s + log2 B) for a bound B on the noise
//! being hidden: the statistical distance between e + u and u is at most B / (2W) <= 2^-(s+1)
//! per coefficient (smudging lemma, Asharov et al. 2012), hence at most N 2^-(s+1) for the whole
//! polynomial; s is configurable (default 30, per coefficient). W may exceed 2^64: the noise is
//! drawn as i128 and added to every limb.
//!
//! The price is precision. Decoded, a flood of width W adds to each slot a noise of standard
//! deviation sqrt(N / 6) W / scale, so the result keeps about log2(scale / B) - s - log2(N) / 2
//! bits, whatever the scale: only the *relative* noise B / scale of the evaluated result
//! matters. [`crate::gnn::encrypted::Schedule::circuit_private`] therefore encrypts the inputs at
//! a large scale and keeps the scores at a large scale on a level that can hold them, and
//! [`crate::gnn::noise`] bounds B rigorously over the model's input box; together the flood's
//! standard deviation stays far below the scores' gaps (the demo reports both). Without such a
//! margin (N = 2^14, scale 2^40) sanitisation with s = 30 refuses to run instead of returning
//! noise.
//!
//! Which noise each flood hides. The vendor's flood hides the evaluation noise (it depends on
//! the weights) from the hospital; the re-randomisation's own noise is independent of the
//! weights but is counted too. The hospital's release flood hides everything in the decrypted
//! noise that depends on the secret key (evaluation and re-randomisation noise) from whoever
//! receives the release; the vendor's flood is independent of the key and known to the vendor,
//! so it needs no hiding and is not part of that bound.

mod release;
mod sanitize;

pub use release::{Release, ReleaseBudgetExceeded, ReleaseFormat, ReleasePolicy, Releaser, ResultLayout};
pub use sanitize::{
    evaluation_noise_bound, fresh_noise_bound, sanitize, sanitize_memoised, sanitize_output, MaskMemo, SanitizeConfig, Sanitized,
    MASK_MEMO_ENTRIES,
};

use rand_core::{CryptoRng, RngCore};

/// Default statistical security parameter for flooding.
pub const DEFAULT_STATISTICAL_SECURITY: u32 = 30;
/// The smallest statistical security a flood may use, vendor or hospital side: below it the
/// sanitiser and the release refuse.
pub const MIN_STATISTICAL_SECURITY: u32 = 30;

/// Largest flood width exponent: noise below 2^MAX_LOG_FLOOD fits an i128 with room for the
/// reduction (`Modulus::reduce_u128` takes values below 2^127).
pub const MAX_LOG_FLOOD: u32 = 120;

/// Uniform integers in [-2^log_w, 2^log_w) (2^(log_w + 1) values, exactly uniform: log_w + 1
/// random bits each), constant time. For noise e with |e| <= B and W = 2^log_w >= 2^s B, the
/// statistical distance between e + U and U is at most |e| / (2W) <= 2^-(s+1) per coefficient.
pub(crate) fn flood_noise_pow2<R: RngCore + CryptoRng>(rng: &mut R, log_w: u32, out: &mut [i128]) -> Result<(), crate::error::EvalError> {
    if log_w > MAX_LOG_FLOOD {
        return Err(crate::error::EvalError::Invalid("flood wider than 2^120"));
    }
    let mask = (1u128 << (log_w + 1)) - 1;
    let w = 1i128 << log_w;
    for o in out.iter_mut() {
        let r = ((rng.next_u64() as u128) << 64) | rng.next_u64() as u128;
        *o = (r & mask) as i128 - w;
    }
    Ok(())
}

/// Adds the coefficient-domain noise `noise` to c0 of `ct` (every limb, NTT form); `tables` are
/// the NTT tables of the ciphertext primes.
pub(crate) fn add_to_c0(
    tables: &[clifhe_core::ntt::NttTableOwned],
    ct: &mut clifhe_core::ciphertext::CiphertextOwned,
    noise: &[i128],
) -> Result<(), crate::error::EvalError> {
    use crate::error::EvalError;
    if noise.len() != ct.c0.n() {
        return Err(EvalError::Invalid("one noise value per coefficient"));
    }
    for i in 0..=ct.meta.level {
        let table = tables.get(i).ok_or(EvalError::OutOfLevels)?;
        let m = table.modulus();
        let mut e = zeroize::Zeroizing::new(noise.iter().map(|&x| m.reduce_i128(x)).collect::<Vec<u64>>());
        table.forward(&mut e).map_err(|_| EvalError::Representation)?;
        let l = ct
            .c0
            .limb_mut(i)
            .ok_or(EvalError::Invalid("ciphertext shape does not match its level"))?;
        for (x, y) in l.iter_mut().zip(e.iter()) {
            *x = m.add(*x, *y);
        }
    }
    Ok(())
}
