//! Vendor-side output sanitisation.

use super::{flood_noise, DEFAULT_STATISTICAL_SECURITY};
use crate::context::EvalContext;
use crate::error::EvalError;
use crate::evaluator::Evaluator;
use clifhe_core::ciphertext::CiphertextOwned;
use clifhe_core::encode::Complex;
use clifhe_core::encrypt::{encrypt_pk, Plaintext};
use clifhe_core::PublicKey;
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

/// What sanitisation does; every field has a safe default.
#[derive(Clone, Debug)]
pub struct SanitizeConfig {
    /// Slots that carry results; all others are zeroed (`None`: keep every slot).
    pub used_slots: Option<Vec<bool>>,
    /// Statistical security parameter s of the flooding (default 30).
    pub statistical_security: u32,
    /// Worst-case bound B, in coefficient units, on the noise to hide (see
    /// [`fresh_noise_bound`] and the GNN's noise report). The flood width is 2^s * B.
    pub noise_bound: f64,
}

impl SanitizeConfig {
    pub fn new(noise_bound: f64) -> Self {
        Self {
            used_slots: None,
            statistical_security: DEFAULT_STATISTICAL_SECURITY,
            noise_bound,
        }
    }
}

/// Tail bound (12 standard deviations: exceeded with probability below 2^-100 per
/// coefficient) on the noise of a fresh public-key encryption, in coefficient units:
/// u e + e0 + e1 s with u, s uniform ternary (variance 2/3) and errors of variance 10.5 has
/// variance 10.5 (4N/3 + 1). The absolute worst case (2 * 21 N) would leave no precision after
/// flooding at any preset here; the tail bound is what flooding-based schemes use in practice.
pub fn fresh_noise_bound(n: usize) -> f64 {
    12.0 * (10.5 * (4.0 * n as f64 / 3.0 + 1.0)).sqrt()
}

/// Tail bound on the noise after evaluation ending in `rescales` rescalings: each rescale adds a
/// rounding term (r0 + r1 s)/1 with r uniform in [-1/2, 1/2] (variance (1 + 2N/3)/12), and
/// key switching noise is below it at our presets (P >= every digit). Multiplications are
/// assumed to be of values below 1 in magnitude, so earlier noise does not grow.
pub fn evaluation_noise_bound(n: usize, rescales: usize) -> f64 {
    let per_rescale = ((1.0 + 2.0 * n as f64 / 3.0) / 12.0).sqrt();
    fresh_noise_bound(n) + 12.0 * per_rescale * (rescales.max(1) as f64).sqrt() * 2.0
}

/// Masks, re-randomises, floods and drops `ct` to level 0. Consumes one level when a mask is
/// given. Fails (rather than silently destroying the result) when the flood would exceed the
/// scale.
pub fn sanitize_output<R: RngCore + CryptoRng, P: AsRef<[u64]>>(
    ectx: &EvalContext,
    pk: &PublicKey<P>,
    ct: &CiphertextOwned,
    cfg: &SanitizeConfig,
    rng: &mut R,
) -> Result<CiphertextOwned, EvalError> {
    let ev = Evaluator::new(ectx);
    let params = *ectx.params();
    let n = params.n();
    let slots = 1usize << ct.meta.log_slots;
    // 1. Mask unused slots (plaintext 0/1 at scale q_l, then rescale: exact scale kept).
    let mut out = match &cfg.used_slots {
        Some(mask) => {
            if mask.len() != slots {
                return Err(EvalError::Invalid("mask length differs from the slot count"));
            }
            if ct.meta.level == 0 {
                return Err(EvalError::OutOfLevels);
            }
            let values: Vec<Complex> = mask.iter().map(|&m| Complex::from_real(if m { 1.0 } else { 0.0 })).collect();
            let pt = ev.encode(&values, ct.meta.level, params.q()[ct.meta.level] as f64)?;
            ev.rescale(&ev.mul_plain(ct, &pt)?)?
        }
        None => ct.clone(),
    };
    // 2. Drop to the lowest level first: the rest then works on one prime.
    out = ev.drop_to_level(&out, 0)?;
    // 3. Flood width W = 2^s * B (B includes the fresh encryption of zero's own noise).
    let bound = cfg.noise_bound + fresh_noise_bound(n);
    let log_w = cfg.statistical_security as f64 + bound.max(1.0).log2();
    let q0 = params.q()[0] as f64;
    if log_w >= out.meta.scale.log2() || log_w >= q0.log2() - 2.0 || log_w >= 62.0 {
        return Err(EvalError::Invalid(
            "flooding noise would exceed the scale: use a preset with a larger scale (private-n15) or a smaller noise bound",
        ));
    }
    let w = libm::exp2(log_w.ceil()) as u64;
    // 4. Re-randomise: add Enc_pk(0) at the same level and scale.
    let zero = Plaintext::from_coeffs(vec![0f64; n], out.meta.scale, out.meta.log_slots)?;
    let fresh = encrypt_pk(&params, ectx.q_tables(), pk, &zero, 0, rng)?;
    ev.add_assign(&mut out, &fresh)?;
    // 5. Flood c0 in the coefficient domain.
    let mut noise = Zeroizing::new(vec![0i64; n]);
    flood_noise(rng, w, &mut noise);
    let m = &ectx.q_moduli()[0];
    let mut e = Zeroizing::new(noise.iter().map(|&x| m.reduce_i64(x)).collect::<Vec<u64>>());
    ectx.q_tables()[0].forward(&mut e).map_err(|_| EvalError::Representation)?;
    if let Some(l) = out.c0.limb_mut(0) {
        for (x, y) in l.iter_mut().zip(e.iter()) {
            *x = m.add(*x, *y);
        }
    }
    Ok(out)
}
