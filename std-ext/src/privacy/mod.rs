//! Output privacy (DESIGN section 8).
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
//! Flooding uses uniform noise on [-W, W] with W = 2^s * B for a tail bound B on the
//! noise being hidden: the statistical distance between e + u and u is at most B / W = 2^-s per
//! coefficient (smudging lemma, Asharov et al. 2012), hence at most N * 2^-s for the whole
//! polynomial; s is configurable (default 30, per coefficient). The price is precision: the
//! result keeps about log2(scale) - s - log2(B) bits, which is why circuit-private output uses
//! the N=2^15 preset (scale 2^55: about 5 bits per slot left, enough for an argmax). At N=2^14
//! (scale 2^40) sanitisation with s = 30 refuses to run instead of returning noise.

mod release;
mod sanitize;

pub use release::{Release, ReleaseBudgetExceeded, ReleaseFormat, ReleasePolicy, Releaser, ResultLayout};
pub use sanitize::{evaluation_noise_bound, fresh_noise_bound, sanitize_output, SanitizeConfig};

use rand_core::{CryptoRng, RngCore};

/// Default statistical security parameter for flooding.
pub const DEFAULT_STATISTICAL_SECURITY: u32 = 30;

/// Uniform integers in [-w, w] (|w| < 2^62), one 64-bit word each, no data-dependent branch:
/// the multiply-high map of a uniform word onto 2w+1 values has bias below 2^-(64 - log2 w).
pub(crate) fn flood_noise<R: RngCore + CryptoRng>(rng: &mut R, w: u64, out: &mut [i64]) {
    let range = 2 * w as u128 + 1;
    for o in out.iter_mut() {
        let r = rng.next_u64() as u128;
        *o = ((r * range) >> 64) as i64 - w as i64;
    }
}
