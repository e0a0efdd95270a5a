//! What the two encrypted layouts of the equivariant network share
//! ([`super::equivariant_encrypted`], blade-major batches, and [`super::equivariant_blocks`], a
//! few patients in one ciphertext): the scale policy and its search, the public input domain,
//! the report of a dry run with its flood check, and the noise terms of the slot-wise analysis
//! (see the `# Bounds` section of [`super::equivariant_encrypted`]).

use super::noise::TAIL_SIGMAS;
use crate::error::EvalError;
use clifhe_core::multivector::BLADE_GRADES;
use clifhe_core::Params;

/// Relative slack on every derived bound (f64 rounding of the analysis, constants quantised
/// at 2^-30 and finer).
pub(crate) const SLACK: f64 = 1.0 + 1e-6;

/// Bits kept between a ciphertext's largest value (with its noise) and half its modulus.
pub(crate) const MODULUS_MARGIN_BITS: f64 = 4.0;

/// How scales are chosen (module docs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScalePolicy {
    /// log2 of the scale the inputs are encrypted at.
    pub log_input_scale: f64,
    /// A ciphertext is rescaled while its scale stays at least 2^this after the division.
    pub min_log_scale: f64,
    /// Constants keep this many bits relative to their inputs.
    pub log_const_scale: f64,
    /// Level the inputs are encrypted at (`None`: the top). Lower levels make every operation
    /// cheaper (fewer primes) while the circuit and the flood still fit ([`fitting_policy`](super::equivariant_encrypted::fitting_policy)).
    pub input_level: Option<usize>,
}

impl ScalePolicy {
    /// A circuit-private policy for 55-bit primes: inputs at 2^`log_input_scale`, nothing
    /// rescaled below 2^(`log_input_scale` - 10), 30-bit constants. At 2^95 and above, the fresh
    /// noise (below 2^29 per slot at N = 2^15) and every rescale rounding sit below 2^-56 of a
    /// unit, so that the scores' proven noise, amplified by the network, can leave room for a
    /// 30-bit flood that keeps the argmax exact ([`EquivariantReport::check_flood_fits`]).
    #[must_use]
    pub fn circuit_private(log_input_scale: f64) -> Self {
        Self {
            log_input_scale,
            min_log_scale: log_input_scale - 10.0,
            log_const_scale: 30.0,
            input_level: None,
        }
    }

    /// The level the inputs are encrypted at on `params`.
    #[must_use]
    pub fn level(&self, params: &Params) -> usize {
        self.input_level.map_or(params.max_level(), |l| l.min(params.max_level()))
    }
}

/// The input scales (log2) [`fitting_policy_for`] tries, highest first. One layer without gates fits
/// `private-n15` at 2^115; a gate or a second layer at none of them (measured in the tests).
const POLICY_LADDER: [f64; 5] = [115.0, 110.0, 105.0, 100.0, 95.0];

/// The search of [`super::equivariant_encrypted::fitting_policy`] over any dry run (`plan`: the blade-major or the block
/// layout's).
pub(crate) fn fitting_policy_for(
    params: &Params,
    statistical_security: u32,
    precision_bits: f64,
    plan: impl Fn(&ScalePolicy) -> Result<EquivariantReport, EvalError>,
) -> Result<(ScalePolicy, EquivariantReport), EvalError> {
    let mut last = EvalError::Invalid("no scale policy to try");
    let mut best: Option<(ScalePolicy, EquivariantReport)> = None;
    for l in POLICY_LADDER {
        let fits =
            |policy: &ScalePolicy| plan(policy).and_then(|r| r.check_flood_fits(params, statistical_security, precision_bits).map(|()| r));
        let mut policy = ScalePolicy::circuit_private(l);
        match fits(&policy) {
            Ok(mut r) => {
                // Drop the input level while the plan and the flood still fit.
                for level in (1..params.max_level()).rev() {
                    let lower = ScalePolicy {
                        input_level: Some(level),
                        ..policy
                    };
                    match fits(&lower) {
                        Ok(lr) => (policy, r) = (lower, lr),
                        Err(_) => break,
                    }
                }
                // The lowest input level wins (fewer primes: everything is cheaper); on a tie
                // the higher scale, tried first.
                if best.as_ref().is_none_or(|(b, _)| policy.level(params) < b.level(params)) {
                    best = Some((policy, r));
                }
            }
            Err(e) => last = e,
        }
    }
    best.ok_or(last)
}

/// Relative margin of a public input domain over the scans it is computed from (the training
/// and validation scans): what `train --arch equivariant` records and the demo uses.
pub const DOMAIN_MARGIN: f64 = 1.25;

/// The public input domain: per input channel (the constant channel excluded) the present
/// blades and a bound on the norm of each grade's part.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InputBounds {
    /// Per channel, which of the 8 blades are encrypted.
    pub present: Vec<[bool; 8]>,
    /// Per channel and grade, `|<x>_g| <= bound`.
    pub grade_norm: Vec<[f64; 4]>,
}

impl InputBounds {
    /// Bounds that cover every sample of `xs` with a relative margin (e.g. 1.25): blades that
    /// are zero in every sample are absent.
    #[must_use]
    pub fn covering(xs: &[Vec<clifhe_core::Multivector>], margin: f64) -> Self {
        let k = xs.first().map_or(0, Vec::len);
        let mut present = vec![[false; 8]; k];
        let mut grade_norm = vec![[0.0f64; 4]; k];
        for x in xs {
            for (c, m) in x.iter().enumerate().take(k) {
                let v = m.coeffs();
                let mut sq = [0.0f64; 4];
                for (b, val) in v.iter().enumerate() {
                    present[c][b] |= *val != 0.0;
                    sq[BLADE_GRADES[b] as usize] += val * val;
                }
                for g in 0..4 {
                    grade_norm[c][g] = grade_norm[c][g].max(sq[g].sqrt() * margin);
                }
            }
        }
        Self { present, grade_norm }
    }

    /// Whether a sample lies in the domain (the clamp leaves it unchanged).
    #[must_use]
    pub fn contains(&self, x: &[clifhe_core::Multivector]) -> bool {
        x.len() == self.present.len() && self.clamp(x).as_slice() == x
    }

    /// Checks the shape and values: `channels` channels, every bound finite and non-negative.
    ///
    /// # Errors
    ///
    /// [`EvalError::Invalid`] naming what is wrong.
    pub fn validate(&self, channels: usize) -> Result<(), EvalError> {
        if self.present.len() != channels || self.grade_norm.len() != channels {
            return Err(EvalError::Invalid("the input domain has another channel count than the model"));
        }
        if self.grade_norm.iter().flatten().any(|v| !(v.is_finite() && *v >= 0.0)) {
            return Err(EvalError::Invalid("input domain bounds must be finite and non-negative"));
        }
        Ok(())
    }

    /// Clamps a sample into the domain: each grade's part is scaled down to its norm bound
    /// (a rotation commutes with this), absent blades are zeroed.
    #[must_use]
    pub fn clamp(&self, x: &[clifhe_core::Multivector]) -> Vec<clifhe_core::Multivector> {
        x.iter()
            .zip(self.present.iter().zip(&self.grade_norm))
            .map(|(m, (present, bound))| {
                let mut v = m.coeffs();
                let mut sq = [0.0f64; 4];
                for (b, val) in v.iter().enumerate() {
                    sq[BLADE_GRADES[b] as usize] += val * val;
                }
                for (b, val) in v.iter_mut().enumerate() {
                    let g = BLADE_GRADES[b] as usize;
                    let norm = sq[g].sqrt();
                    if !present[b] {
                        *val = 0.0;
                    } else if norm > bound[g] {
                        *val *= bound[g] / norm;
                    }
                }
                clifhe_core::Multivector::new(v)
            })
            .collect()
    }
}

/// What one evaluation (or its dry run) does and guarantees.
#[derive(Clone, Debug, PartialEq)]
pub struct EquivariantReport {
    /// Level and scale of the score ciphertexts.
    pub output_level: usize,
    pub output_scale: f64,
    /// Bound on |score| in every slot (used and unused).
    pub score_bound: f64,
    /// Slot-wise noise bound of the scores, message units.
    pub noise_bound: f64,
    /// The same per coefficient in coefficient units (times the scale): what to flood.
    pub per_coefficient_bound: f64,
    /// Relinearizations, rotations and rescales the evaluation performs (per ciphertext).
    pub relinearizations: usize,
    pub rotations: usize,
    pub rescales: usize,
    /// Ciphertexts the input batch holds (present blades of every channel).
    pub input_ciphertexts: usize,
}

impl EquivariantReport {
    /// Whether the scores can be sanitised and released circuit-privately
    /// ([`crate::privacy::sanitize`] with two mask passes): the masks take two levels, the
    /// modulus left after them must hold the scores, the noise and both floods of
    /// 2^(s + log2 bound) (the vendor's, then the hospital's over the same bound) with 3 bits to
    /// spare, and the floods must leave the decoded scores' standard deviation
    /// sqrt(N/6) W / scale below 2^-`precision_bits`, with W within the flood sampler's range.
    pub fn check_flood_fits(&self, params: &Params, statistical_security: u32, precision_bits: f64) -> Result<(), EvalError> {
        // The bound sanitisation hides: the evaluation noise (the masks scale it by at most
        // 1 + 2^-40) and a fresh re-randomisation, with a bit of slack.
        let hidden = 2.0 * self.per_coefficient_bound + crate::privacy::fresh_noise_bound(params.n());
        let log_w = (f64::from(statistical_security) + hidden.max(1.0).log2()).ceil();
        let log_std = log_w + (params.n() as f64 / 6.0).sqrt().log2() - self.output_scale.log2();
        let after_masks = self.output_level.checked_sub(2);
        let holds = after_masks.is_some_and(|l| {
            let log_q: f64 = params.q().iter().take(l + 1).map(|&q| (q as f64).log2()).sum();
            (self.score_bound.max(1.0) * self.output_scale + hidden + 2.0 * log_w.exp2()).log2() + 3.0 <= log_q
        });
        if !(holds && log_std.is_finite() && log_std + 0.5 <= -precision_bits && log_w <= f64::from(crate::privacy::MAX_LOG_FLOOD)) {
            return Err(EvalError::Invalid(
                "the scores' proven noise leaves no room for a circuit-private flood at this precision",
            ));
        }
        Ok(())
    }
}

/// Slot-wise bound on the rounding a rescale adds (coefficient units): N/2 + N^2/2.
pub(crate) fn rescale_rounding_slot(n: f64) -> f64 {
    n / 2.0 * (1.0 + n)
}

/// Slot-wise tail bound of fresh public-key encryption noise (coefficient units; module docs).
#[must_use]
pub fn fresh_noise_slot(n: usize) -> f64 {
    let n = n as f64;
    core::f64::consts::SQRT_2 * TAIL_SIGMAS * (10.5 * n * (2.0 * n * n + 1.0)).sqrt()
}
