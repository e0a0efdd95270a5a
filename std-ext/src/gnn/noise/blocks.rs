//! Bounds of the block layout ([`crate::gnn::blocks`]): the same forms and the same noise
//! model as the blade-major analysis, but one ciphertext. Its noise is one polynomial, so every
//! output's state is the same global bound: a slot-wise product by a constant vector G scales the
//! coefficient 2-norm (and the fresh part's sub-Gaussian proxy) by at most max |G| over the
//! slots, and the contributions of rotations of that one polynomial add linearly.
//!
//! * A form reads rotation t of its input (fresh and independent for the hospital's encrypted
//!   rotations of the first form; otherwise the one noise rotated, plus a key switch for
//!   t > 0), with derivative bound max over its outputs o of |d out_o / d x_(block(o) + t)|.
//! * The principal-axis tail: y = lambda u^2 + mu u slot by slot has first-order gain
//!   max |2 lambda u + mu| over the axis values' intervals, a second-order term
//!   max |lambda| sqrt(N) ||e||^2, the relinearization's key switch and two rescale roundings;
//!   the sum of the 8 block rotations multiplies the bound by 8 and adds its one hoisted key
//!   switch per rotation (7 inner products and one ModDown rounding, counted as 7 whole switches).

use super::{
    form_ranges, form_step, input_noise, key_switch_noise_l2, report, rescale_rounding_l2, Noise, NoiseReport, Position, ScaleSteps, SLACK,
};
use crate::error::EvalError;
use crate::gnn::blocks::BlockPlan;
use crate::gnn::plan::InferencePlan;
use clifhe_core::Params;

/// The global bound of one ciphertext whose outputs carry `state`: the worst of them.
fn global(state: &[Noise]) -> Noise {
    let mut by_source = [0.0f64; 8];
    let sigma = state.iter().map(Noise::sigma).fold(0.0, f64::max);
    by_source[0] = sigma;
    Noise {
        by_source,
        l2: state.iter().map(|e| e.l2).fold(0.0, f64::max),
    }
}

/// |lambda u^2 + mu u| and |2 lambda u + mu| at their largest over u in `iv`.
fn term_bounds(lambda: f64, mu: f64, iv: (f64, f64)) -> (f64, f64) {
    let value = |u: f64| (lambda * u * u + mu * u).abs();
    let mut v = value(iv.0).max(value(iv.1));
    if lambda != 0.0 {
        let vertex = -mu / (2.0 * lambda);
        if (iv.0..=iv.1).contains(&vertex) {
            v = v.max(value(vertex));
        }
    }
    let gain = (2.0 * lambda * iv.0 + mu).abs().max((2.0 * lambda * iv.1 + mu).abs());
    (v, gain)
}

/// Bounds of [`crate::gnn::blocks::evaluate_blocks`] (module docs); `given_rotations`: the
/// hospital encrypted the first form's 8 rotations.
pub(super) fn analyse(params: &Params, plan: &InferencePlan, steps: &ScaleSteps, given_rotations: bool) -> Result<NoiseReport, EvalError> {
    let bp = BlockPlan::new(plan)?;
    let stages = bp.forms.len() + usize::from(bp.tail.is_some());
    if steps.scales.len() != stages || steps.const_scales.len() != stages {
        return Err(EvalError::Invalid("one scale and one constant scale per form"));
    }
    let n = params.n() as f64;
    let rho = rescale_rounding_l2(params.n());
    let mut state = input_noise(params, steps);
    let mut pos = Position {
        level: steps.input_level,
        scale: steps.input_scale,
        headroom: f64::INFINITY,
    };
    let mut input_box = plan.input_domain;
    let mut outputs = Vec::new();
    for (i, ((f, placement), (&out_scale, &s))) in bp.forms.iter().zip(steps.scales.iter().zip(&steps.const_scales)).enumerate() {
        let r = form_ranges(f, &input_box);
        let mut per_rotation = [0.0f64; 8];
        for (o, jo) in r.jacobian.iter().enumerate() {
            for (t, v) in per_rotation.iter_mut().enumerate() {
                *v = v.max(jo[(placement.block_of(o) + t) % 8]);
            }
        }
        let cur: Vec<Noise> = if i == 0 && given_rotations {
            // Input t is a fresh encryption (source t), read as blade k + t in block k.
            state.clone()
        } else {
            let g = global(&state);
            let ks = key_switch_noise_l2(params, pos.level) / pos.scale;
            (0..8)
                .map(|t| Noise {
                    by_source: g.by_source,
                    l2: g.l2 + if t > 0 { ks } else { 0.0 },
                })
                .collect()
        };
        state = form_step(
            params,
            f,
            &r,
            &cur,
            &vec![per_rotation; f.outputs()],
            &mut pos,
            (out_scale, s),
            true,
        )?;
        for (k, iv) in r.outputs.iter().enumerate().take(8) {
            input_box[k] = *iv;
        }
        outputs = r.outputs;
    }
    let Some(tail) = &bp.tail else {
        // Scores in block 0 of their lanes; the other slots hold the same forms' values on
        // other outputs (zero constants: zero) and other patients' scores.
        let bound = outputs.iter().fold(0.0f64, |m, (lo, hi)| m.max(lo.abs()).max(hi.abs()));
        return Ok(report(plan, &state, &pos, bound));
    };
    let (&out_scale, &s) = steps.scales.last().zip(steps.const_scales.last()).ok_or(EvalError::OutOfLevels)?;
    let level = pos.level;
    if level < 2 {
        return Err(EvalError::OutOfLevels);
    }
    // lambda u^2 + mu u in slot (block j, lane c): gains and values over the axis intervals.
    let (mut gain, mut lambda_max, mut term_max, mut u_max) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    let mut partial = 0.0f64;
    for c in 0..bp.classes {
        let mut class_sum = 0.0;
        for j in 0..8 {
            let iv = outputs.get(c * 8 + j).copied().ok_or(EvalError::Invalid("axis outputs missing"))?;
            let (v, g) = term_bounds(tail.lambda[c][j], tail.mu[c][j], iv);
            gain = gain.max(g);
            lambda_max = lambda_max.max(tail.lambda[c][j].abs());
            term_max = term_max.max(v);
            u_max = u_max.max(iv.0.abs()).max(iv.1.abs());
            class_sum += v;
        }
        partial = partial.max(class_sum);
    }
    let scale = pos.scale;
    pos.fits(params, level, u_max * u_max * scale * scale);
    pos.fits(params, level, term_max * scale * scale * s);
    let w = global(&state);
    let total = w.l2_total(n);
    let q_top = params.q()[level] as f64;
    let rounding = key_switch_noise_l2(params, level) / (scale * scale * s) + rho * q_top / (scale * scale * s) + rho / out_scale;
    let y = Noise {
        by_source: w.by_source.map(|v| gain * v),
        l2: gain * w.l2 + SLACK * lambda_max * n.sqrt() * total * total + rounding,
    };
    pos.level -= 2;
    pos.scale = out_scale;
    // The sum over the 8 blocks, then K in block 0.
    let ks = key_switch_noise_l2(params, pos.level) / out_scale;
    let summed = Noise {
        by_source: y.by_source.map(|v| 8.0 * v),
        l2: 8.0 * y.l2 + 7.0 * ks,
    };
    let constant = tail.constant.iter().fold(0.0f64, |m, k| m.max(k.abs()));
    let slot_bound = SLACK * (partial + constant);
    pos.fits(params, pos.level, slot_bound * out_scale);
    Ok(report(plan, &vec![summed; bp.classes], &pos, slot_bound))
}
