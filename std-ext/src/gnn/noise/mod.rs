//! Range and noise analysis of the encrypted evaluation: rigorous bounds, over the plan's input
//! domain, on every value the ciphertexts hold and on the evaluation noise of the scores, which
//! is what output flooding must hide ([`crate::privacy`], docs/architecture.md §8).
//!
//! # Ranges
//!
//! Interval arithmetic over the input box, form by form ([`InferencePlan::forms`]): each output's
//! interval is the tighter of (a) the expanded form evaluated on intervals (squares as squares)
//! and (b) the factored form, a sum of products of affine functions whose intervals are exact.
//! The partial derivatives d out_k / d x_b of a quadratic form are affine in x, so their maximum
//! magnitude over a box is exact; chaining them gives a bound `D[c][b]` on |d score_c / d x_b| over
//! the whole domain.
//!
//! # Noise
//!
//! Noise is measured in message units (divided by the ciphertext's scale) and split in two parts:
//!
//! * **Fresh part.** To first order, score c carries sum_b G_cb * e_b / Delta_in, where e_b is
//!   the encryption noise of input blade b and G_cb the polynomial whose slots are
//!   d score_c / d x_b at each slot's input. e_b = u_b e'_b + e0_b + e1_b s with u_b, s ternary and
//!   e', e0, e1 centred binomial (21 bit pairs: sub-Gaussian with variance proxy 10.5). Given
//!   u_b and s, every coefficient of the sum is a fixed linear combination of independent
//!   centred binomials, whose squared weights add up to at most
//!   `sum_b ||G_cb||_can^2 (||u_b||^2 + 1 + ||s||^2) <= sum_b D[c][b]^2 (2N + 1)`
//!   (multiplication by a polynomial G scales the coefficient 2-norm by at most
//!   max |G(zeta)| over the roots of X^N + 1, i.e. the largest slot value, by Parseval). So each
//!   coefficient is sub-Gaussian with `sigma_c = sqrt(10.5 (2N + 1) sum_b D[c][b]^2) / Delta_in`,
//!   and exceeds [`TAIL_SIGMAS`] sigma_c with probability below 2 exp(-72) < 2^-102.
//! * **Deterministic part**, bounded in the coefficient 2-norm (which bounds every coefficient):
//!   rescale rounding (r0 + r1 s) / 1 with |r| <= 1/2, so at most sqrt(N) (1 + N) / 2 since
//!   ||s||_1 <= N; key switching (sum over digits of the ModUp digits, below alpha Q_j, times key
//!   errors of 1-norm at most 21 N, divided by P, plus the ModDown rounding); second-order
//!   products of noises; and earlier deterministic noise carried through later layers by the
//!   same derivative bounds.
//!
//! The per-coefficient bound on the scores' noise is then
//! Delta_out (TAIL_SIGMAS sigma_c + l2_c), maximised over classes. The weights enter only
//! through D and the form's constants, and every input in the domain is covered: that is what
//! lets the flood be sized from it. Quantisation of the constants (each rounded at its encoding
//! scale) is not noise: it is part of the function the vendor evaluates and reveals nothing
//! beyond its output; its effect on agreement with the f64 model is measured, not hidden.

mod blocks;

use super::plan::{InferencePlan, QuadraticForm};
use crate::error::EvalError;
use clifhe_core::Params;

/// Sub-Gaussian tail multiplier of the fresh part (2 exp(-TAIL_SIGMAS^2 / 2) < 2^-102 per
/// coefficient; with a union bound over N = 2^16 coefficients and 8 score ciphertexts, below
/// 2^-83 for a whole result).
pub const TAIL_SIGMAS: f64 = 12.0;

/// Variance proxy of one centred binomial error coefficient (21 pairs of fair bits).
const ERROR_VARIANCE: f64 = 10.5;
/// Largest |coefficient| of a centred binomial error (21 pairs of bits).
const ERROR_MAX: f64 = 21.0;

/// Relative slack on every derived bound, for f64 rounding of the analysis itself and the
/// quantised constants the evaluator uses instead of the exact ones (relative error below
/// 2^-20 at the encoding scales the schedule allows).
const SLACK: f64 = 1.0 + 1e-6;

/// Value ranges and derivative bounds of one quadratic form over its input box.
#[derive(Clone, Debug, PartialEq)]
pub struct FormRanges {
    /// The input box of the form.
    pub input: [(f64, f64); 8],
    /// Interval of each output over that box.
    pub outputs: Vec<(f64, f64)>,
    /// `jacobian[k][b]` >= max over the box of |d out_k / d x_b|.
    pub jacobian: Vec<[f64; 8]>,
}

impl FormRanges {
    pub fn max_abs_input(&self) -> f64 {
        self.input.iter().fold(0.0f64, |m, (lo, hi)| m.max(lo.abs()).max(hi.abs()))
    }
    pub fn max_abs_output(&self) -> f64 {
        self.outputs.iter().fold(0.0f64, |m, (lo, hi)| m.max(lo.abs()).max(hi.abs()))
    }
}

/// Ranges of the whole plan over its input domain.
#[derive(Clone, Debug, PartialEq)]
pub struct PlanRanges {
    pub forms: Vec<FormRanges>,
    /// `derivative[c][b]` >= max over the domain of |d score_c / d x_b| (chained form bounds).
    pub derivative: Vec<[f64; 8]>,
}

impl PlanRanges {
    /// Interval arithmetic over `plan.input_domain` (module docs).
    pub fn of_plan(plan: &InferencePlan) -> Self {
        let forms = plan.forms();
        let mut input = plan.input_domain;
        let mut out = Vec::with_capacity(forms.len());
        // chain[k][b]: bound on |d (current value k) / d x_b|; starts as the identity.
        let mut chain: Vec<[f64; 8]> = (0..8)
            .map(|k| {
                let mut r = [0.0; 8];
                r[k] = 1.0;
                r
            })
            .collect();
        for f in &forms {
            let r = form_ranges(f, &input);
            chain = r
                .jacobian
                .iter()
                .map(|jk| {
                    let mut row = [0.0; 8];
                    for (b, v) in row.iter_mut().enumerate() {
                        *v = SLACK * jk.iter().zip(&chain).map(|(j, c)| j * c[b]).sum::<f64>();
                    }
                    row
                })
                .collect();
            // The next form's input box (8 outputs for every form but the last).
            for (k, iv) in r.outputs.iter().enumerate().take(8) {
                input[k] = *iv;
            }
            out.push(r);
        }
        Self {
            forms: out,
            derivative: chain,
        }
    }

    /// Largest |score| over the domain.
    pub fn score_bound(&self) -> f64 {
        self.forms.last().map_or(0.0, FormRanges::max_abs_output)
    }
}

fn iv_add(a: (f64, f64), b: (f64, f64)) -> (f64, f64) {
    (a.0 + b.0, a.1 + b.1)
}

fn iv_mul(a: (f64, f64), b: (f64, f64)) -> (f64, f64) {
    let p = [a.0 * b.0, a.0 * b.1, a.1 * b.0, a.1 * b.1];
    (
        p.iter().copied().fold(f64::INFINITY, f64::min),
        p.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    )
}

fn iv_scale(w: f64, a: (f64, f64)) -> (f64, f64) {
    if w >= 0.0 {
        (w * a.0, w * a.1)
    } else {
        (w * a.1, w * a.0)
    }
}

fn iv_square(a: (f64, f64)) -> (f64, f64) {
    let (l, h) = (a.0 * a.0, a.1 * a.1);
    if a.0 <= 0.0 && a.1 >= 0.0 {
        (0.0, l.max(h))
    } else {
        (l.min(h), l.max(h))
    }
}

/// Exact interval of row . x + c over a box.
fn affine_iv(row: &[f64; 8], c: f64, x: &[(f64, f64); 8]) -> (f64, f64) {
    row.iter().zip(x).fold((c, c), |acc, (w, iv)| iv_add(acc, iv_scale(*w, *iv)))
}

/// Widens an interval by the relative slack (both ends move outwards).
fn widen(a: (f64, f64)) -> (f64, f64) {
    let r = (SLACK - 1.0) * a.0.abs().max(a.1.abs());
    (a.0 - r, a.1 + r)
}

fn form_ranges(f: &QuadraticForm, x: &[(f64, f64); 8]) -> FormRanges {
    let mut outputs = Vec::with_capacity(f.outputs());
    let mut jacobian = Vec::with_capacity(f.outputs());
    for k in 0..f.outputs() {
        // (a) Expanded form on intervals.
        let mut e = (f.constant[k], f.constant[k]);
        for a in 0..8 {
            e = iv_add(e, iv_scale(f.lin[k][a], x[a]));
            e = iv_add(e, iv_scale(f.quad[k][a][a], iv_square(x[a])));
            for b in a + 1..8 {
                e = iv_add(e, iv_scale(f.quad[k][a][b], iv_mul(x[a], x[b])));
            }
        }
        // (b) Factored form: exact factor intervals, then products.
        let mut p = (f.offset[k], f.offset[k]);
        for (l, c, r, d) in &f.factors[k] {
            p = iv_add(p, iv_mul(affine_iv(l, *c, x), affine_iv(r, *d, x)));
        }
        outputs.push(widen((e.0.max(p.0), e.1.min(p.1))));
        let mut j = [0.0; 8];
        for (b, v) in j.iter_mut().enumerate() {
            let (row, c) = f.gradient(k, b);
            let g = affine_iv(&row, c, x);
            *v = SLACK * g.0.abs().max(g.1.abs());
        }
        jacobian.push(j);
    }
    FormRanges {
        input: *x,
        outputs,
        jacobian,
    }
}

/// Deterministic 2-norm bound on the rounding noise of one rescale (or of ModDown by one
/// special prime), coefficient units: ||r0 + r1 s||_2 <= sqrt(N) (1 + ||s||_1) / 2 with
/// ||s||_1 <= N.
pub fn rescale_rounding_l2(n: usize) -> f64 {
    let n = n as f64;
    n.sqrt() * (1.0 + n) / 2.0
}

/// Deterministic 2-norm bound on the noise one hybrid key switch adds at `level`, coefficient
/// units: sum over digits j of ||ModUp(d_j)||_2 ||e_j||_can / P, plus the rounding of ModDown.
/// Both conversions are centred (`keyswitch::basis`): a ModUp digit is at most Q_j / 2 in
/// absolute value and ModDown rounds to nearest, like one rescale; each up to the float
/// estimate's slack ([`CENTRING_SLACK`]). ||e_j||_can <= ||e_j||_1 <= 21 N.
pub fn key_switch_noise_l2(params: &Params, level: usize) -> f64 {
    let n = params.n() as f64;
    let q = params.q();
    let p = params.p();
    let log_p: f64 = p.iter().map(|&v| (v as f64).log2()).sum();
    let mut total = 0.0;
    for digit in crate::keyswitch::digit_ranges(q, p) {
        if digit.start > level {
            break;
        }
        let log_qj: f64 = q[digit.start..digit.end.min(level + 1)].iter().map(|&v| (v as f64).log2()).sum();
        total += n.sqrt() * 0.5 * (1.0 + CENTRING_SLACK) * ERROR_MAX * n * (log_qj - log_p).exp2();
    }
    total + (1.0 + CENTRING_SLACK) * rescale_rounding_l2(params.n())
}

/// Relative slack of a centred basis conversion: its float estimate of the multiple to
/// subtract can be off by one only within about |source| 2^-52 of half the source modulus,
/// where the other representative exceeds half of it by that much (|source| <= 8 primes: at
/// most 2^-49).
pub const CENTRING_SLACK: f64 = 1.0 / (1u64 << 40) as f64;

/// Deterministic 2-norm bound on the noise of one input blade of a batch the vendor assembles
/// from `patients` enrolled devices' 8-slot ciphertexts at `level` (`protocol::device`),
/// coefficient units at the batch's input scale. Each device ciphertext carries its error e
/// (|e_i| <= 21), then a key switch to the hospital's key and a rotation (two key switches,
/// D = 2 x [`key_switch_noise_l2`]), all at a scale 2^`mask_gain_bits` above the input scale;
/// the mask keeps slot p of patient p's ciphertext and divides by that gain, so in the canonical
/// embedding the sum holds at most 2 x patients nonzero values (slot p and its conjugate), each
/// at most ||e + d||_1 <= N 21 + sqrt(N) D, times 2^-gain and the mask's 1 + 2^-20; divided by
/// sqrt(N) (||x||_2 = ||sigma(x)||_2 / sqrt(N)), plus the rescale's rounding.
pub fn device_merge_noise_l2(params: &Params, level: usize, patients: usize, mask_gain_bits: u32) -> f64 {
    let n = params.n() as f64;
    let d = 2.0 * key_switch_noise_l2(params, level);
    let gain = f64::from(mask_gain_bits).exp2();
    (2.0 * patients as f64).sqrt() * (n.sqrt() * ERROR_MAX + d) / gain * (1.0 + 1e-6) + rescale_rounding_l2(params.n())
}

/// Standard deviation proxy of one coefficient of a fresh public-key encryption's noise
/// u e + e0 + e1 s for the worst ternary u and s (||u||^2, ||s||^2 <= N).
pub fn fresh_sigma(n: usize) -> f64 {
    (ERROR_VARIANCE * (2.0 * n as f64 + 1.0)).sqrt()
}

/// Noise state of one ciphertext, message units.
#[derive(Clone, Debug, PartialEq)]
struct Noise {
    /// Sub-Gaussian proxy of the fresh part contributed by input blade b.
    by_source: [f64; 8],
    /// Deterministic 2-norm bound.
    l2: f64,
}

impl Noise {
    fn sigma(&self) -> f64 {
        self.by_source.iter().map(|s| s * s).sum::<f64>().sqrt()
    }
    /// High-probability 2-norm bound (every coefficient of the fresh part below TAIL_SIGMAS
    /// sigma, hence its 2-norm below sqrt(N) times that).
    fn l2_total(&self, n: f64) -> f64 {
        n.sqrt() * TAIL_SIGMAS * self.sigma() + self.l2
    }
}

/// How the batch is packed, which decides how the fresh noise of different blades combines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Packing {
    /// One ciphertext per blade ([`super::encrypted::evaluate_scheduled`]): the 8 inputs carry
    /// independent fresh noise, which adds in quadrature.
    BladeMajor,
    /// All blades in one ciphertext ([`super::blocks::evaluate_blocks`]), rotated by the vendor:
    /// the blades are rotations of one noise polynomial, so their contributions add linearly,
    /// and each rotation adds a key switch ([`blocks`]).
    Blocks,
    /// The block layout with the first form's 8 rotations encrypted by the hospital (fresh,
    /// independent noise, no key switch at the input scale); later forms as [`Packing::Blocks`].
    BlocksEncryptedRotations,
}

/// Levels and scales an evaluation uses, as the noise analysis needs them.
#[derive(Clone, Debug, PartialEq)]
pub struct ScaleSteps {
    pub input_level: usize,
    pub input_scale: f64,
    /// Per form: scale of its output and encoding scale of its degree-2 (or, affine, degree-1)
    /// constants.
    pub scales: Vec<f64>,
    pub const_scales: Vec<f64>,
    /// Deterministic 2-norm bound per input blade beyond a fresh encryption's noise,
    /// coefficient units at the input scale: 0 for the hospital's own encryptions; for a batch
    /// assembled from enrolled devices' ciphertexts, [`device_merge_noise_l2`].
    pub input_l2: f64,
}

/// The bound report of one evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct NoiseReport {
    pub ranges: PlanRanges,
    /// Per score: sub-Gaussian proxy of the fresh part (message units).
    pub sigma: Vec<f64>,
    /// Per score: deterministic 2-norm bound (message units).
    pub l2: Vec<f64>,
    /// Scale of the scores.
    pub output_scale: f64,
    /// max_c output_scale (TAIL_SIGMAS sigma_c + l2_c): per-coefficient bound on the scores'
    /// noise, coefficient units.
    pub per_coefficient_bound: f64,
    /// Smallest log2(Q_l / 4) - log2(|value| * scale) over every intermediate (tensor products,
    /// quadratic combinations, scores): positive means nothing can wrap around the modulus.
    pub headroom_bits: f64,
    /// Bound on |value| of every slot of the result (scores and whatever the other slots hold),
    /// what sanitisation's masks need.
    pub slot_bound: f64,
}

/// Bounds for evaluating `plan` with `steps` under `params` in `packing` (module docs; the
/// block layouts: [`blocks`]).
pub fn analyse(params: &Params, plan: &InferencePlan, steps: &ScaleSteps, packing: Packing) -> Result<NoiseReport, EvalError> {
    match packing {
        Packing::BladeMajor => analyse_blade_major(params, plan, steps),
        Packing::Blocks => blocks::analyse(params, plan, steps, false),
        Packing::BlocksEncryptedRotations => blocks::analyse(params, plan, steps, true),
    }
}

/// The fresh noise of the 8 input blades (source b: blade b's encryption).
fn input_noise(params: &Params, steps: &ScaleSteps) -> Vec<Noise> {
    (0..8)
        .map(|b| {
            let mut by_source = [0.0; 8];
            by_source[b] = fresh_sigma(params.n()) / steps.input_scale;
            Noise {
                by_source,
                l2: steps.input_l2 / steps.input_scale,
            }
        })
        .collect()
}

/// Where an evaluation stands between forms: level, scale, and the smallest headroom so far.
struct Position {
    level: usize,
    scale: f64,
    headroom: f64,
}

impl Position {
    fn log_q(params: &Params, l: usize) -> f64 {
        params.q()[..=l].iter().map(|&v| (v as f64).log2()).sum()
    }

    /// Records that |values| * scale must fit Q_level / 4.
    fn fits(&mut self, params: &Params, level: usize, value_times_scale: f64) {
        self.headroom = self
            .headroom
            .min(Self::log_q(params, level) - 2.0 - value_times_scale.max(1e-300).log2());
    }
}

/// One form's step: `cur[i]` is the noise of input i as the form reads it, `jac[k][i]` bounds
/// |d out_k / d input_i|; returns the outputs' noise and moves `pos` to the form's output level
/// and `out_scale`. `one_ciphertext`: the form's products are of rotations of one ciphertext,
/// so each product's constant is a slot vector over all outputs (the second-order term counts
/// every output).
#[allow(clippy::too_many_arguments)]
fn form_step(
    params: &Params,
    f: &QuadraticForm,
    r: &FormRanges,
    cur: &[Noise],
    jac: &[[f64; 8]],
    pos: &mut Position,
    (out_scale, s): (f64, f64),
    one_ciphertext: bool,
) -> Result<Vec<Noise>, EvalError> {
    let n = params.n() as f64;
    let rho = rescale_rounding_l2(params.n());
    let (level, scale) = (pos.level, pos.scale);
    let (m_in, m_out) = (r.max_abs_input(), r.max_abs_output());
    let totals: Vec<f64> = cur.iter().map(|e| e.l2_total(n)).collect();
    let first_order = |k: usize| -> ([f64; 8], f64) {
        let mut by_source = [0.0; 8];
        for (src, v) in by_source.iter_mut().enumerate() {
            *v = jac[k].iter().zip(cur).map(|(j, e)| j * e.by_source[src]).sum();
        }
        (by_source, jac[k].iter().zip(cur).map(|(j, e)| j * e.l2).sum::<f64>())
    };
    let mut next = Vec::with_capacity(f.outputs());
    if f.is_affine() {
        if level < 1 {
            return Err(EvalError::OutOfLevels);
        }
        pos.fits(params, level, m_out * scale * s);
        for k in 0..f.outputs() {
            let (by_source, l2) = first_order(k);
            next.push(Noise {
                by_source,
                l2: l2 + rho / out_scale,
            });
        }
        pos.level -= 1;
    } else {
        if level < 2 {
            return Err(EvalError::OutOfLevels);
        }
        // Tensor products x_a x_b at scale^2, then the combination at scale^2 * s.
        pos.fits(params, level, m_in * m_in * scale * scale);
        pos.fits(params, level, m_out * scale * scale * s);
        let q_top = params.q()[level] as f64;
        let ks = key_switch_noise_l2(params, level);
        for k in 0..f.outputs() {
            let (by_source, l2) = first_order(k);
            // Second order: sum_(a<=b) |Q_ab| ||e_a e_b||_2 <= sqrt(N) ||e_a||_2 ||e_b||_2.
            let mut second = 0.0;
            for a in 0..8 {
                for b in a..8 {
                    second += f.quad[k][a][b].abs() * n.sqrt() * totals[a] * totals[b];
                }
            }
            if one_ciphertext {
                // One ciphertext: the product of rotations (t, u) carries the largest
                // coefficient over the output blocks; summing over outputs bounds that.
                second *= f.outputs() as f64;
            }
            let rounding = ks / (scale * scale * s) + rho * q_top / (scale * scale * s) + rho / out_scale;
            next.push(Noise {
                by_source,
                l2: l2 + SLACK * second + rounding,
            });
        }
        pos.level -= 2;
    }
    pos.fits(params, pos.level, m_out * out_scale);
    pos.scale = out_scale;
    Ok(next)
}

/// The report of scores whose noise is `state` (one per score) at `pos`.
fn report(plan: &InferencePlan, state: &[Noise], pos: &Position, slot_bound: f64) -> NoiseReport {
    let sigma: Vec<f64> = state.iter().map(Noise::sigma).collect();
    let l2: Vec<f64> = state.iter().map(|e| e.l2).collect();
    let per_coefficient_bound = sigma
        .iter()
        .zip(&l2)
        .map(|(s, l)| pos.scale * (TAIL_SIGMAS * s + l))
        .fold(0.0f64, f64::max);
    NoiseReport {
        ranges: PlanRanges::of_plan(plan),
        sigma,
        l2,
        output_scale: pos.scale,
        per_coefficient_bound,
        headroom_bits: pos.headroom,
        slot_bound,
    }
}

fn analyse_blade_major(params: &Params, plan: &InferencePlan, steps: &ScaleSteps) -> Result<NoiseReport, EvalError> {
    let forms = plan.forms();
    if steps.scales.len() != forms.len() || steps.const_scales.len() != forms.len() {
        return Err(EvalError::Invalid("one scale and one constant scale per form"));
    }
    let ranges = PlanRanges::of_plan(plan);
    let mut state = input_noise(params, steps);
    let mut pos = Position {
        level: steps.input_level,
        scale: steps.input_scale,
        headroom: f64::INFINITY,
    };
    for ((f, r), (&out_scale, &s)) in forms.iter().zip(&ranges.forms).zip(steps.scales.iter().zip(&steps.const_scales)) {
        state = form_step(params, f, r, &state, &r.jacobian, &mut pos, (out_scale, s), false)?;
    }
    // Every slot holds some patient's scores (unused ones: the box centre's).
    Ok(report(plan, &state, &pos, ranges.score_bound()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gnn::{GnnModel, Normalisation};
    use rand_chacha::rand_core::{RngCore, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn sampled_values_and_derivatives_lie_within_the_proven_bounds() {
        let model = GnnModel::new_random(
            &[16, 8],
            3,
            vec!["a".into(), "b".into(), "c".into()],
            Normalisation::identity(),
            0.3,
            1.0,
            9,
        )
        .unwrap();
        let plan = model.encrypted_plan();
        let ranges = PlanRanges::of_plan(&plan);
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let u = |r: &mut ChaCha20Rng| (r.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
        let bound = ranges.score_bound();
        for i in 0..2000 {
            let mut x = [0.0; 8];
            // Corners of the box too: that is where interval bounds are tightest.
            x.iter_mut()
                .for_each(|v| *v = if i % 4 == 0 { u(&mut rng).signum() } else { u(&mut rng) });
            let s = plan.evaluate_coeffs(&x);
            for (c, v) in s.iter().enumerate() {
                assert!(v.abs() <= bound);
                for b in 0..8 {
                    let (mut xp, mut xm) = (x, x);
                    xp[b] += 1e-6;
                    xm[b] -= 1e-6;
                    // Unclamped finite differences: the forms themselves, not the clamp.
                    let h = |y: [f64; 8]| -> f64 {
                        let mut v = y;
                        let forms = plan.forms();
                        let mut out = Vec::new();
                        for (i, f) in forms.iter().enumerate() {
                            out = f.evaluate(&v);
                            if i + 1 < forms.len() {
                                v.copy_from_slice(&out);
                            }
                        }
                        out[c]
                    };
                    let d = (h(xp) - h(xm)) / 2e-6;
                    assert!(
                        d.abs() <= ranges.derivative[c][b] * (1.0 + 1e-6) + 1e-6,
                        "{d} > {}",
                        ranges.derivative[c][b]
                    );
                }
            }
        }
    }

    #[test]
    fn fresh_and_rounding_bounds() {
        // 12 sqrt(10.5 (2N + 1)) and sqrt(N) (1 + N) / 2 at N = 2^15.
        assert!((TAIL_SIGMAS * fresh_sigma(1 << 15) / 9958.2 - 1.0).abs() < 1e-3);
        assert_eq!(rescale_rounding_l2(1 << 15), (32768f64).sqrt() * 32769.0 / 2.0);
        let p = Params::from_name("private-n15").unwrap();
        // P (2 x 61 bits) exceeds every digit (2 primes, at most 116 bits): key switching adds less
        // than the ModDown rounding's order of magnitude.
        assert!(key_switch_noise_l2(&p, 11) < 4.0 * rescale_rounding_l2(1 << 15));
    }
}
