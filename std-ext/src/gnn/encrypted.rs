//! Encrypted evaluation of an [`InferencePlan`] on a blade-major batch (DESIGN section 6):
//! ciphertext k holds blade k of up to N/2 patients, patient p in slot p.
//!
//! A quadratic layer h_k = sum_j (A_j x + c_j)_k (B_j x + d_j)_k is, expanded, one quadratic
//! form per output blade: h_k = sum_(a<=b) Q_k[a][b] x_a x_b + sum_a L_k[a] x_a + K_k with
//! Q_k = sum_j A_j[k]^T B_j[k] (symmetrised), L_k = sum_j (d_jk A_j[k] + c_jk B_j[k]) and
//! K_k = sum_j c_jk d_jk. Under encryption that is 36 tensor products x_a x_b shared by all
//! eight outputs (instead of 8 per weight pair: 128 for the 16-weight layer), then per output one
//! plaintext combination of the 36 degree-2 and 8 degree-1 ciphertexts, one relinearization and
//! two rescales. Same function as the plan (exact algebra), about 4x less work.
//!
//! Scale management: every layer returns ciphertexts at exactly the preset's default scale
//! Delta, whatever the primes. The tensor products have scale Delta_in^2; Q is encoded at
//! s = Delta q_l q_(l-1) / Delta_in^2 (about 2^40: fine quantisation), the linear terms at
//! s * Delta_in, so that after the two rescales by q_l and q_(l-1) the scale is exactly Delta.
//! The output rows use constants at q_l Delta / Delta_in and one rescale.

use super::plan::{InferencePlan, QuadraticLayerPlan};
use crate::error::EvalError;
use crate::evaluator::{Ciphertext3, Evaluator};
use crate::keys::RelinearizationKey;
use clifhe_core::ciphertext::CiphertextOwned;
use clifhe_core::encode::Complex;
use rayon::prelude::*;

/// A quadratic layer expanded per output blade (see the module docs).
struct QuadraticForm {
    /// quad[k][a][b] for a <= b (symmetrised: the a > b terms are folded into a < b).
    quad: [[[f64; 8]; 8]; 8],
    lin: [[f64; 8]; 8],
    constant: [f64; 8],
}

impl QuadraticForm {
    fn of_layer(layer: &QuadraticLayerPlan) -> Self {
        let mut f = QuadraticForm {
            quad: [[[0.0; 8]; 8]; 8],
            lin: [[0.0; 8]; 8],
            constant: [0.0; 8],
        };
        for (left, right) in &layer.pairs {
            for k in 0..8 {
                let (ar, c, br, d) = (&left.matrix[k], left.bias[k], &right.matrix[k], right.bias[k]);
                for a in 0..8 {
                    for b in 0..8 {
                        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
                        f.quad[k][lo][hi] += ar[a] * br[b];
                    }
                    f.lin[k][a] += d * ar[a] + c * br[a];
                }
                f.constant[k] += c * d;
            }
        }
        f
    }
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
        let form = QuadraticForm::of_layer(layer);
        let l = h[0].meta.level;
        let d_in = h[0].meta.scale;
        let s = delta * q(l) * q(l - 1) / (d_in * d_in);
        // Level 1 of the layer: the 36 products x_a x_b (a <= b), shared by all outputs.
        let pairs: Vec<(usize, usize)> = (0..8).flat_map(|a| (a..8).map(move |b| (a, b))).collect();
        let products: Vec<Ciphertext3> = pairs.par_iter().map(|&(a, b)| ev.tensor(&h[a], &h[b])).collect::<Result<_, _>>()?;
        let prod_refs: Vec<&Ciphertext3> = products.iter().collect();
        let lin_refs: Vec<&CiphertextOwned> = h.iter().collect();
        // Level 2: per output blade, one combination, one relinearization, two rescales.
        h = (0..8)
            .into_par_iter()
            .map(|k| {
                let qk: Vec<f64> = pairs.iter().map(|&(a, b)| form.quad[k][a][b]).collect();
                let mut acc = ev.quadratic_combination(&prod_refs, &qk, &lin_refs, &form.lin[k], s, d_in)?;
                ev.add_const3(&mut acc, form.constant[k])?;
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

/// Plaintext evaluation of the expanded form (tests check it equals the plan).
#[cfg(test)]
fn eval_form(f: &QuadraticForm, x: &[f64; 8]) -> [f64; 8] {
    let mut out = f.constant;
    for k in 0..8 {
        for a in 0..8 {
            out[k] += f.lin[k][a] * x[a];
            for b in a..8 {
                out[k] += f.quad[k][a][b] * x[a] * x[b];
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gnn::{GnnModel, Normalisation};

    #[test]
    fn expanded_form_equals_the_plan() {
        let model = GnnModel::new_random(
            &[16, 8],
            3,
            vec!["a".into(), "b".into(), "c".into()],
            Normalisation::identity(),
            0.3,
            1.0,
            3,
        )
        .unwrap();
        let plan = model.plan();
        let layer = &plan.layers[0];
        let f = QuadraticForm::of_layer(layer);
        let x = [0.3, -0.2, 0.5, 0.1, -0.7, 0.25, 0.05, -0.4];
        let mut want = [0.0; 8];
        for (l, r) in &layer.pairs {
            let (a, b) = (l.apply(&x), r.apply(&x));
            for k in 0..8 {
                want[k] += a[k] * b[k];
            }
        }
        let got = eval_form(&f, &x);
        for k in 0..8 {
            assert!((got[k] - want[k]).abs() < 1e-12);
        }
    }
}
