//! Encrypted evaluation of an [`InferencePlan`] on a blade-major batch (DESIGN section 6):
//! ciphertext k holds blade k of up to N/2 patients, patient p in slot p.
//!
//! Scale management: every layer returns ciphertexts at exactly the preset's default scale
//! Delta, whatever the primes. A quadratic layer at level l multiplies its inputs (scale
//! Delta_in) by constants encoded at s = sqrt(Delta q_l q_(l-1)) / Delta_in and does *not*
//! rescale the two affine maps: their component-wise products (scale Delta_in^2 s^2) are summed
//! lazily, relinearized once per blade, then rescaled by q_l and q_(l-1), which leaves exactly
//! Delta. This saves the rescale of every one of the 2 m x 8 affine outputs (16 rescales per
//! layer instead of 32 m + 16) at the price of quantising the layer's constants to 1/s ~ 2^-20.
//! The output rows use constants at q_l Delta / Delta_in and one rescale.

use super::plan::{AffineMap, InferencePlan};
use crate::error::EvalError;
use crate::evaluator::{Ciphertext3, Evaluator};
use crate::keys::RelinearizationKey;
use clifhe_core::ciphertext::CiphertextOwned;
use clifhe_core::encode::Complex;
use rayon::prelude::*;

/// Applies one affine map to the 8 blade ciphertexts with constants at `const_scale`, no rescale.
fn affine(ev: &Evaluator<'_>, x: &[CiphertextOwned], map: &AffineMap, const_scale: f64) -> Result<Vec<CiphertextOwned>, EvalError> {
    let refs: Vec<&CiphertextOwned> = x.iter().collect();
    (0..8)
        .map(|k| {
            let y = ev.linear_combination(&refs, &map.matrix[k], const_scale)?;
            ev.add_const(&y, Complex::from_real(map.bias[k]))
        })
        .collect()
}

/// Levels the plan needs from its input: [`InferencePlan::depth`].
pub fn required_levels(plan: &InferencePlan) -> usize {
    plan.depth()
}

/// Evaluates `plan` on 8 blade ciphertexts; returns one score ciphertext per class (slot p:
/// patient p's score), at the preset's default scale and at input level - depth.
pub fn evaluate_blade_major(
    ev: &Evaluator<'_>,
    rlk: &RelinearizationKey,
    plan: &InferencePlan,
    input: &[CiphertextOwned],
) -> Result<Vec<CiphertextOwned>, EvalError> {
    if input.len() != 8 {
        return Err(EvalError::Invalid("a blade-major batch has 8 ciphertexts"));
    }
    let level = input[0].meta.level;
    if level < plan.depth() {
        return Err(EvalError::Invalid("the batch has fewer levels left than the model's depth"));
    }
    let params = *ev.context().params();
    let delta = params.default_scale();
    let q = |l: usize| params.q()[l] as f64;
    let mut h: Vec<CiphertextOwned> = input.to_vec();
    for layer in &plan.layers {
        let l = h[0].meta.level;
        let s = (delta * q(l) * q(l - 1)).sqrt() / h[0].meta.scale;
        // Level 1 of the layer: every affine map (in parallel over the pairs).
        let products: Vec<Vec<Ciphertext3>> = layer
            .pairs
            .par_iter()
            .map(|(left, right)| {
                let y = affine(ev, &h, left, s)?;
                let v = affine(ev, &h, right, s)?;
                y.iter().zip(&v).map(|(a, b)| ev.tensor(a, b)).collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<_, EvalError>>()?;
        // Level 2: sum the products per blade, relinearize once, rescale twice.
        h = (0..8)
            .into_par_iter()
            .map(|k| {
                let mut acc = products.first().and_then(|p| p.get(k)).cloned().ok_or(EvalError::Invalid("empty layer"))?;
                for p in products.iter().skip(1) {
                    ev.add_assign3(&mut acc, &p[k])?;
                }
                let r = ev.relinearize(&acc, rlk)?;
                let mut out = ev.rescale(&ev.rescale(&r)?)?;
                // Exactly delta up to f64 rounding of the scale bookkeeping.
                out.meta.scale = delta;
                Ok(out)
            })
            .collect::<Result<_, EvalError>>()?;
    }
    let l = h[0].meta.level;
    let const_scale = q(l) * delta / h[0].meta.scale;
    let refs: Vec<&CiphertextOwned> = h.iter().collect();
    plan.output
        .par_iter()
        .map(|(row, bias)| {
            let y = ev.linear_combination(&refs, row, const_scale)?;
            let y = ev.add_const(&y, Complex::from_real(*bias))?;
            let mut out = ev.rescale(&y)?;
            out.meta.scale = delta;
            Ok(out)
        })
        .collect()
}
