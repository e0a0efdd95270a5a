//! Encrypted evaluation of an [`InferencePlan`] on a blade-major batch (docs/architecture.md §6):
//! ciphertext k holds blade k of up to N/2 patients, patient p in slot p.
//!
//! The plan runs as its expanded quadratic forms ([`InferencePlan::forms`]): a form
//! `out_k = sum_(a<=b) Q_k[a][b] x_a x_b + sum_a L_k[a] x_a + K_k` is 36 tensor products x_a x_b
//! shared by all outputs (instead of 8 per weight pair: 128 for the 16-weight layer), then per
//! output one plaintext combination of the 36 degree-2 and 8 degree-1 ciphertexts, one
//! relinearization and two rescales. The output rows are folded into the last hidden layer, so
//! the scores come out of it directly: 8 relinearizations for the first layer, C for the last,
//! depth 2 per hidden layer.
//!
//! # Scales ([`Schedule`])
//!
//! A form takes inputs at scale D and returns outputs at a chosen scale D': the tensor products
//! have scale D^2, Q is encoded at s = D' q_l q_(l-1) / D^2 and the linear terms at s D, so that
//! after the two rescales by q_l and q_(l-1) the scale is exactly D'. The schedule picks the
//! intermediate scales so that every form gets the same s (its constants the same relative
//! quantisation). [`Schedule::new`] with the input's scale as output scale reproduces the
//! classic "every layer returns Delta" policy for inputs at the preset's scale;
//! [`Schedule::circuit_private`] is the policy for flooded outputs (its docs argue the margins).

use super::noise::{analyse, NoiseReport, Packing, PlanRanges, ScaleSteps};
use super::plan::{InferencePlan, QuadraticForm};
use crate::error::EvalError;
use crate::evaluator::{Ciphertext3, Evaluator};
use crate::keys::RelinearizationKey;
use clifhe_core::ciphertext::CiphertextOwned;
use clifhe_core::encode::Complex;
use clifhe_core::Params;
use rayon::prelude::*;
use std::borrow::Cow;

/// Smallest encoding scale of a form's constants the schedule accepts (2^20: constants keep
/// about 20 bits after the binary point; below that, quantisation would be visible in scores).
pub const MIN_LOG_CONST_SCALE: f64 = 20.0;

/// log2 of the scale a circuit-private evaluation encrypts its inputs at (see
/// [`Schedule::circuit_private`]).
pub const PRIVATE_LOG_INPUT_SCALE: f64 = 80.0;

/// The same for the block layout on one ciphertext ([`super::blocks::evaluate_blocks`]): 5 bits
/// more, because its rotations of the input add key-switching noise (bounded by its worst case,
/// 2^21.6 in 2-norm at N = 2^15) at the input scale.
pub const PRIVATE_LOG_INPUT_SCALE_BLOCKS: f64 = 85.0;

/// The same for a batch the vendor assembles from enrolled devices' ciphertexts
/// (`protocol::device`): 10 bits more than the hospital's own batches, because the patients
/// are masked into their slots with one rescale at the input scale, whose worst-case rounding
/// (2^21.5 in 2-norm at N = 2^15, `noise::rescale_rounding_l2`) is larger than a fresh
/// encryption's noise bound; the key switches before the mask run 12 bits higher still.
pub const PRIVATE_LOG_INPUT_SCALE_DEVICE: f64 = 90.0;

/// Levels and scales of one encrypted evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    /// Level the 8 input ciphertexts must have (higher inputs are dropped to it).
    pub input_level: usize,
    pub input_scale: f64,
    /// Scale after each form; the last is the scores' scale.
    pub scales: Vec<f64>,
    /// Encoding scale s of each form's degree-2 constants (the affine form: of its degree-1
    /// constants).
    pub const_scales: Vec<f64>,
    /// Level of the scores.
    pub output_level: usize,
}

impl Schedule {
    /// Inputs at (`input_level`, `input_scale`), scores at `output_scale`; intermediate scales
    /// chosen so that every form encodes its constants at the same scale s. Fails when s would
    /// be below 2^[`MIN_LOG_CONST_SCALE`] or the levels do not suffice.
    pub fn new(params: &Params, plan: &InferencePlan, input_level: usize, input_scale: f64, output_scale: f64) -> Result<Self, EvalError> {
        let forms = plan.forms();
        let depth = plan.depth();
        if input_level > params.max_level() || input_level < depth {
            return Err(EvalError::Invalid("the input level does not leave the model's depth"));
        }
        if !(input_scale.is_finite() && input_scale > 1.0 && output_scale.is_finite() && output_scale > 1.0) {
            return Err(EvalError::Invalid("scales must be finite and above 1"));
        }
        let log_q = |l: usize| (params.q()[l] as f64).log2();
        // log2 of the scales after each form for a common log2 s = sigma: affine in sigma.
        let run = |sigma: f64| -> Vec<f64> {
            let mut x = input_scale.log2();
            let mut level = input_level;
            let mut out = Vec::with_capacity(forms.len());
            for f in &forms {
                if f.is_affine() {
                    x = x + sigma - log_q(level);
                    level -= 1;
                } else {
                    x = 2.0 * x + sigma - log_q(level) - log_q(level - 1);
                    level -= 2;
                }
                out.push(x);
            }
            out
        };
        let (x0, x1) = (run(0.0), run(1.0));
        let (a, b) = (
            x0.last().copied().unwrap_or(0.0),
            x1.last().copied().unwrap_or(0.0) - x0.last().copied().unwrap_or(0.0),
        );
        let sigma = (output_scale.log2() - a) / b;
        if sigma.is_nan() || sigma < MIN_LOG_CONST_SCALE {
            return Err(EvalError::Invalid(
                "the scores' scale is too small for the input scale: constants would lose their precision",
            ));
        }
        let mut scales: Vec<f64> = run(sigma).iter().map(|&x| x.exp2()).collect();
        if let Some(last) = scales.last_mut() {
            // Exactly the requested scale (the log-domain solve rounds).
            *last = output_scale;
        }
        Ok(Self {
            input_level,
            input_scale,
            scales,
            const_scales: vec![sigma.exp2(); forms.len()],
            output_level: input_level - depth,
        })
    }

    /// The schedule for a circuit-private result (sanitised and flooded at statistical security
    /// `s`, docs/architecture.md §8), on the plan's [`super::InputEncoding::UnitBox`] inputs.
    ///
    /// Why these numbers. The flood must be 2^s times a bound B on the scores' noise, and B is
    /// proportional to the relative noise of the *inputs*: Delta_out times (12 sigma_fresh
    /// sqrt(sum_b D_b^2) / Delta_in + rounding terms) ([`super::noise`]). The release adds a
    /// second flood of the same width. Decoded, the two floods add to each score a noise of
    /// standard deviation sqrt(N / 6) 2^(s+1) B / Delta_out at most, whatever Delta_out is; at
    /// N = 2^15 and s = 30 that is about 2^44.3 B / Delta_out. So the whole margin comes from
    /// the input scale: encrypting at 2^[`PRIVATE_LOG_INPUT_SCALE`] (not the preset's 2^55)
    /// puts B / Delta_out near 2^-80 * 2^13.3 * D; with the derivative bounds D of the trained
    /// models (2^11 to 2^16 in box units) the flood's standard deviation stays below 2^-6 of
    /// their smallest top-two score gap ([`crate::privacy`] tests and the demo report it).
    ///
    /// The output is kept large too: the scores end at the lowest level that can hold them
    /// with the floods (`final_level`, 1 on `private-n15`: q0 q1 ~ 2^116), at the largest
    /// power-of-two scale with 4 bits of headroom over the proven score bound; ending at level
    /// 0 (2^61) would cap the scale near 2^45 and the last rescale's rounding alone would then
    /// exceed what a 2^-12 flood allows. `extra_levels` are left for the sanitiser's masks.
    pub fn circuit_private(params: &Params, plan: &InferencePlan, extra_levels: usize, final_level: usize) -> Result<Self, EvalError> {
        Self::circuit_private_at(params, plan, extra_levels, final_level, PRIVATE_LOG_INPUT_SCALE)
    }

    /// [`circuit_private`](Self::circuit_private) with inputs at 2^`log_input_scale` (the block
    /// layout uses [`PRIVATE_LOG_INPUT_SCALE_BLOCKS`]: its rotations add key-switching noise at
    /// the input scale).
    pub fn circuit_private_at(
        params: &Params,
        plan: &InferencePlan,
        extra_levels: usize,
        final_level: usize,
        log_input_scale: f64,
    ) -> Result<Self, EvalError> {
        let ranges = PlanRanges::of_plan(plan);
        let input_level = final_level + extra_levels + plan.depth();
        if input_level > params.max_level() {
            return Err(EvalError::OutOfLevels);
        }
        let log_qf: f64 = params.q()[..=final_level].iter().map(|&v| (v as f64).log2()).sum();
        let r = ranges.score_bound().max(1.0);
        let log_out = (log_qf - 4.0 - r.log2()).floor();
        Self::new(params, plan, input_level, log_input_scale.exp2(), log_out.exp2())
    }

    /// The inputs at this schedule's input level (higher ones dropped to it), after checking
    /// that each has its input scale: borrowed when every input is already there (the usual
    /// case: no copy of the batch), owned otherwise.
    pub fn inputs_at_level<'a>(&self, ev: &Evaluator<'_>, input: &'a [CiphertextOwned]) -> Result<Cow<'a, [CiphertextOwned]>, EvalError> {
        for c in input {
            if !crate::evaluator::scales_match(c.meta.scale, self.input_scale) {
                return Err(EvalError::ScaleMismatch {
                    left: c.meta.scale,
                    right: self.input_scale,
                });
            }
        }
        if input.iter().all(|c| c.meta.level == self.input_level) {
            return Ok(Cow::Borrowed(input));
        }
        input
            .iter()
            .map(|c| {
                if c.meta.level == self.input_level {
                    Ok(c.clone())
                } else {
                    ev.drop_to_level(c, self.input_level)
                }
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Cow::Owned)
    }

    pub fn output_scale(&self) -> f64 {
        self.scales.last().copied().unwrap_or(self.input_scale)
    }

    /// The bounds of this evaluation in the blade-major layout ([`super::noise::analyse`]).
    pub fn analyse(&self, params: &Params, plan: &InferencePlan) -> Result<NoiseReport, EvalError> {
        self.analyse_packed(params, plan, Packing::BladeMajor)
    }

    /// The bounds of this evaluation in `packing`.
    pub fn analyse_packed(&self, params: &Params, plan: &InferencePlan, packing: Packing) -> Result<NoiseReport, EvalError> {
        self.analyse_with_input_noise(params, plan, packing, 0.0)
    }

    /// The bounds of this evaluation in `packing` when each input blade carries, beyond a
    /// fresh encryption's noise, deterministic noise of 2-norm `input_l2` (coefficient units
    /// at the input scale; see [`super::noise::device_merge_noise_l2`]).
    pub fn analyse_with_input_noise(
        &self,
        params: &Params,
        plan: &InferencePlan,
        packing: Packing,
        input_l2: f64,
    ) -> Result<NoiseReport, EvalError> {
        analyse(
            params,
            plan,
            &ScaleSteps {
                input_level: self.input_level,
                input_scale: self.input_scale,
                scales: self.scales.clone(),
                const_scales: self.const_scales.clone(),
                input_l2,
            },
            packing,
        )
    }
}

/// Levels the plan needs from its input: [`InferencePlan::depth`].
pub fn required_levels(plan: &InferencePlan) -> usize {
    plan.depth()
}

/// Evaluates `plan` on 8 blade ciphertexts; returns one score ciphertext per class (slot p:
/// patient p's score) at the input's scale and at input level - depth.
pub fn evaluate_blade_major(
    ev: &Evaluator<'_>,
    rlk: &RelinearizationKey,
    plan: &InferencePlan,
    input: &[CiphertextOwned],
) -> Result<Vec<CiphertextOwned>, EvalError> {
    let first = input.first().ok_or(EvalError::Invalid("a blade-major batch has 8 ciphertexts"))?;
    let schedule = Schedule::new(ev.context().params(), plan, first.meta.level, first.meta.scale, first.meta.scale)?;
    evaluate_scheduled(ev, rlk, plan, &schedule, input)
}

/// Evaluates `plan` on 8 blade ciphertexts with the levels and scales of `schedule` (inputs
/// above its input level are dropped to it first); one score ciphertext per class, at
/// `schedule.output_level` and exactly `schedule.output_scale()`.
pub fn evaluate_scheduled(
    ev: &Evaluator<'_>,
    rlk: &RelinearizationKey,
    plan: &InferencePlan,
    schedule: &Schedule,
    input: &[CiphertextOwned],
) -> Result<Vec<CiphertextOwned>, EvalError> {
    if input.len() != 8 {
        return Err(EvalError::Invalid("a blade-major batch has 8 ciphertexts"));
    }
    let forms = plan.forms();
    if forms.len() != schedule.scales.len() {
        return Err(EvalError::Invalid("the schedule was made for another plan"));
    }
    let mut h = schedule.inputs_at_level(ev, input)?;
    for (form, &out_scale) in forms.iter().zip(&schedule.scales) {
        h = Cow::Owned(run_form(ev, rlk, form, &h, out_scale)?);
    }
    Ok(h.into_owned())
}

/// Levels one form consumes: 2 for a quadratic form, 1 for an affine one.
pub fn form_levels(form: &QuadraticForm) -> usize {
    if form.is_affine() {
        1
    } else {
        2
    }
}

/// A deep plan whose depth exceeds the levels of the batch: before every form that would run
/// out of levels, all current ciphertexts (8 blades, or the scores' inputs) are refreshed
/// together by `refresh` (one bootstrap each, one packed bootstrap for all of them,
/// [`crate::Bootstrapper::bootstrap_packed`], or in tests the secret-key double), which must
/// return as many ciphertexts, at one scale, at `refreshed_level` or higher. Same forms, same output as [`evaluate_blade_major`]: the
/// refresh only restores levels, and every form returns the preset's scale (the scale a
/// refresh returns). Returns the scores and the number of refresh rounds.
pub fn evaluate_blade_major_refreshing<F>(
    ev: &Evaluator<'_>,
    rlk: &RelinearizationKey,
    plan: &InferencePlan,
    input: &[CiphertextOwned],
    refresh: &F,
    refreshed_level: usize,
) -> Result<(Vec<CiphertextOwned>, usize), EvalError>
where
    F: Fn(&[CiphertextOwned]) -> Result<Vec<CiphertextOwned>, EvalError>,
{
    if input.len() != 8 {
        return Err(EvalError::Invalid("a blade-major batch has 8 ciphertexts"));
    }
    let delta = ev.context().params().default_scale();
    let mut h: Vec<CiphertextOwned> = input.to_vec();
    let mut rounds = 0;
    for form in plan.forms() {
        let need = form_levels(&form);
        if h.iter().any(|c| c.meta.level < need) {
            let count = h.len();
            h = refresh(&h)?;
            rounds += 1;
            if h.len() != count || h.iter().any(|c| !crate::evaluator::scales_match(c.meta.scale, h[0].meta.scale)) {
                return Err(EvalError::Invalid("the refresh must return its inputs' count at one scale"));
            }
            if h.iter().any(|c| c.meta.level < need.max(refreshed_level)) {
                return Err(EvalError::Invalid("the refresh did not restore enough levels"));
            }
        }
        h = run_form(ev, rlk, &form, &h, delta)?;
    }
    Ok((h, rounds))
}

/// One form on ciphertexts at one level and scale, outputs at exactly `out_scale`: the
/// constants' encoding scale follows from the primes the form divides by (module docs).
fn run_form(
    ev: &Evaluator<'_>,
    rlk: &RelinearizationKey,
    form: &QuadraticForm,
    h: &[CiphertextOwned],
    out_scale: f64,
) -> Result<Vec<CiphertextOwned>, EvalError> {
    let first = h.first().ok_or(EvalError::Invalid("a form needs its 8 inputs"))?;
    if h.len() != 8 {
        return Err(EvalError::Invalid("a form needs its 8 inputs"));
    }
    let (level, d_in) = (first.meta.level, first.meta.scale);
    let q = |l: usize| ev.context().params().q()[l] as f64;
    if form.is_affine() {
        if level < 1 {
            return Err(EvalError::OutOfLevels);
        }
        affine_layer(ev, form, h, out_scale * q(level) / d_in, out_scale)
    } else {
        if level < 2 {
            return Err(EvalError::OutOfLevels);
        }
        quadratic_layer(ev, rlk, form, h, out_scale * q(level) * q(level - 1) / (d_in * d_in), out_scale)
    }
}

/// One quadratic form: 36 shared tensor products, then per output one combination, one
/// relinearization and two rescales (module docs).
fn quadratic_layer(
    ev: &Evaluator<'_>,
    rlk: &RelinearizationKey,
    form: &QuadraticForm,
    h: &[CiphertextOwned],
    s: f64,
    out_scale: f64,
) -> Result<Vec<CiphertextOwned>, EvalError> {
    let d_in = h[0].meta.scale;
    let pairs: Vec<(usize, usize)> = (0..8).flat_map(|a| (a..8).map(move |b| (a, b))).collect();
    let products: Vec<Ciphertext3> = pairs.par_iter().map(|&(a, b)| ev.tensor(&h[a], &h[b])).collect::<Result<_, _>>()?;
    let prod_refs: Vec<&Ciphertext3> = products.iter().collect();
    let lin_refs: Vec<&CiphertextOwned> = h.iter().collect();
    (0..form.outputs())
        .into_par_iter()
        .map(|k| {
            let qk: Vec<f64> = pairs.iter().map(|&(a, b)| form.quad[k][a][b]).collect();
            let mut acc = ev.quadratic_combination(&prod_refs, &qk, &lin_refs, &form.lin[k], s, d_in)?;
            ev.add_const3(&mut acc, form.constant[k])?;
            let mut out = ev.relinearize_rescale_twice(&acc, rlk)?;
            // Exactly the schedule's scale up to f64 rounding of the scale bookkeeping.
            out.meta.scale = out_scale;
            Ok(out)
        })
        .collect()
}

/// An affine form (a model without hidden layers): one combination and one rescale per output.
fn affine_layer(
    ev: &Evaluator<'_>,
    form: &QuadraticForm,
    h: &[CiphertextOwned],
    s: f64,
    out_scale: f64,
) -> Result<Vec<CiphertextOwned>, EvalError> {
    let refs: Vec<&CiphertextOwned> = h.iter().collect();
    (0..form.outputs())
        .into_par_iter()
        .map(|k| {
            let y = ev.linear_combination(&refs, &form.lin[k], s)?;
            let y = ev.add_const(&y, Complex::from_real(form.constant[k]))?;
            let mut out = ev.rescale(&y)?;
            out.meta.scale = out_scale;
            Ok(out)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gnn::{GnnModel, Normalisation};

    fn model(hidden: &[usize]) -> GnnModel {
        GnnModel::new_random(
            hidden,
            3,
            vec!["a".into(), "b".into(), "c".into()],
            Normalisation::identity(),
            0.3,
            1.0,
            3,
        )
        .unwrap()
    }

    #[test]
    fn expanded_forms_equal_the_plan() {
        for hidden in [&[16usize, 8][..], &[5][..], &[][..]] {
            let plan = model(hidden).plan();
            let forms = plan.forms();
            assert_eq!(forms.len(), hidden.len().max(1));
            let x = [0.3, -0.2, 0.5, 0.1, -0.7, 0.25, 0.05, -0.4];
            let mut h = x;
            let mut got = Vec::new();
            for (i, f) in forms.iter().enumerate() {
                let v = f.evaluate(&h);
                // The factored form is the same function.
                for k in 0..f.outputs() {
                    let fac: f64 = f.offset[k]
                        + f.factors[k]
                            .iter()
                            .map(|(l, c, r, d)| {
                                (l.iter().zip(&h).map(|(a, b)| a * b).sum::<f64>() + c)
                                    * (r.iter().zip(&h).map(|(a, b)| a * b).sum::<f64>() + d)
                            })
                            .sum::<f64>();
                    assert!((fac - v[k]).abs() < 1e-12 * (1.0 + v[k].abs()));
                }
                if i + 1 < forms.len() {
                    h.copy_from_slice(&v);
                } else {
                    got = v;
                }
            }
            let want = plan.evaluate_coeffs(&x);
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() < 1e-12 * (1.0 + b.abs()), "{got:?} vs {want:?}");
            }
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let plan = model(&[4]).plan();
        let f = &plan.forms()[0];
        let x = [0.3, -0.2, 0.5, 0.1, -0.7, 0.25, 0.05, -0.4];
        for k in 0..f.outputs() {
            for b in 0..8 {
                let (row, c) = f.gradient(k, b);
                let g = row.iter().zip(&x).map(|(r, v)| r * v).sum::<f64>() + c;
                let (mut xp, mut xm) = (x, x);
                xp[b] += 1e-6;
                xm[b] -= 1e-6;
                let fd = (f.evaluate(&xp)[k] - f.evaluate(&xm)[k]) / 2e-6;
                assert!((g - fd).abs() < 1e-6 * (1.0 + g.abs()), "{g} vs {fd}");
            }
        }
    }

    #[test]
    fn schedule_keeps_the_classic_policy_and_equalises_constant_scales() {
        let params = Params::from_name("private-n15").unwrap();
        let plan = model(&[16, 8]).plan();
        let d = params.default_scale();
        let s = Schedule::new(&params, &plan, 11, d, d).unwrap();
        assert_eq!(s.output_level, 7);
        assert!((s.scales[0] / d - 1.0).abs() < 1e-9 && s.scales[1] == d);
        let s = Schedule::new(&params, &plan, 7, 80f64.exp2(), 99f64.exp2()).unwrap();
        assert_eq!(s.output_level, 3);
        let q = |l: usize| params.q()[l] as f64;
        // Each form: out = in^2 * s / (q_l q_(l-1)).
        let s1 = s.scales[0] * q(7) * q(6) / 80f64.exp2().powi(2);
        let s2 = s.scales[1] * q(5) * q(4) / s.scales[0].powi(2);
        assert!((s1 / s.const_scales[0] - 1.0).abs() < 1e-9 && (s2 / s.const_scales[1] - 1.0).abs() < 1e-9);
        // Too small an output scale for the input scale is refused.
        assert!(Schedule::new(&params, &plan, 7, 80f64.exp2(), 40f64.exp2()).is_err());
    }
}
