//! Encrypted evaluation of the equivariant network ([`EquivariantNet`]) on blade-major channel
//! batches, with a proven bound on every value and on the noise of the scores.
//!
//! Layout: input channel c of a batch is up to 8 ciphertexts, blade k of patient p in slot p
//! (docs/architecture.md §6). Blades that a channel never holds (the shells' bivectors, everything
//! but the vector part of a principal axis) are not encrypted: the channel's public blade mask
//! says which are present, and a map whose inputs are all absent yields an absent blade.
//!
//! Each layer runs as in the plaintext model, on ciphertexts:
//! * the three grade-wise maps: per output blade one [`Evaluator::integer_combination`] of the
//!   input channels' blades (the constant channel of the first layer is public: its weight is
//!   added as a constant);
//! * the geometric product of the two projections: per output blade the signed tensor products
//!   of [`GP_TABLE`] fused into one degree-2 ciphertext and one relinearization (8 per channel);
//! * y = linear path + grade-weighted product: one more combination;
//! * the gate, where its coefficients are not zero: |y|^2 (8 squares, 1 relinearization),
//!   `f = 1 + c1 <y>_0 + c2 |y|^2`, then `y f` (8 relinearizations);
//! * the readout: per class one combination of the channels' scalar parts, squared norms and
//!   pseudoscalars, plus the bias. One score ciphertext per class, patient p in slot p: what
//!   [`crate::privacy::sanitize`] and the release take.
//!
//! # Scales and levels
//!
//! Nothing is rescaled eagerly. A combination multiplies by constants encoded at the largest
//! input scale times 2^`log_const_scale` (every constant keeps that many bits relative to its
//! input, whatever the scales of the inputs); after every operation the ciphertext is rescaled
//! while the scale stays at least 2^`min_log_scale` after the division. With 55-bit primes and
//! scales near 2^85, a product then costs about two primes and a combination about half of
//! one. Before computing anything, [`plan`] walks the same code without ciphertexts and
//! refuses a model that would run out of levels or whose values would outgrow the modulus.
//!
//! # Bounds
//!
//! Values: per channel and grade a bound on the norm of that grade's part, carried exactly
//! through the grade-wise maps (triangle inequality) and the geometric product: in Cl(3,0)
//! every homogeneous element is a blade, so `|<a>_g <b>_h| = |<a>_g| |<b>_h|`, and the product of
//! a g-vector and an h-vector has grades |g - h|, |g - h| + 2, ..., min(g + h, 6 - g - h). A
//! coefficient is bounded by its grade's norm. The inputs' bounds are the public input domain
//! ([`InputBounds`]): the hospital clamps each grade's norm to it (a rotation-invariant clamp).
//!
//! Noise, in message units, bounded slot by slot (the canonical embedding, where products and
//! sums act slot-wise, so bounds propagate exactly: |a e_b| + |b e_a| + |e_a e_b| for a product):
//! * fresh public-key encryption u e' + e0 + e1 s: given u and s every slot is a weighted sum of
//!   independent centred binomials (variance proxy 10.5) with weights of modulus at most
//!   |u(zeta)| <= ||u||_1 <= N (and 1, and |s(zeta)| <= N), so real and imaginary parts are
//!   sub-Gaussian with proxy 10.5 N (2 N^2 + 1); [`TAIL_SIGMAS`](super::noise::TAIL_SIGMAS) of them bound each with
//!   probability 1 - 2^-102;
//! * rescale rounding r0 + r1 s, |r| <= 1/2: at most N/2 + N^2/2 in every slot;
//! * key switching: its coefficient 2-norm bound ([`key_switch_noise_l2`]) times sqrt(N).
//!
//! A coefficient of a polynomial is bounded by the largest modulus of its slots (the inverse
//! transform averages them), so the scores' slot bound times their scale is the
//! per-coefficient bound that sanitisation floods.

use super::equivariant::{CliffordLayer, EquivariantNet, GradeLinear};
use super::equivariant_policy::{fitting_policy_for, rescale_rounding_slot, MODULUS_MARGIN_BITS, SLACK};
pub use super::equivariant_policy::{fresh_noise_slot, EquivariantReport, InputBounds, ScalePolicy};
use super::noise::key_switch_noise_l2;
use crate::error::EvalError;
use crate::evaluator::Evaluator;
use crate::ga::signed_tensor_sum;
use crate::keys::RelinearizationKey;
use clifhe_core::ciphertext::CiphertextOwned;
use clifhe_core::encode::Complex;
use clifhe_core::multivector::{BLADE_GRADES, GP_TABLE};
use clifhe_core::Params;
use rayon::prelude::*;

/// The circuit-private policy with the lowest input level (fewer primes: cheaper everything)
/// under which `net` runs on `params` and its scores take a flood of statistical security `s`
/// with the decoded flood below 2^-`precision_bits`, over the input scales of the ladder (higher
/// scales shrink the noise relative to the scores but consume more levels; on a tie the
/// higher scale): the policy and its dry run, or the last refusal.
pub fn fitting_policy(
    params: &Params,
    net: &EquivariantNet,
    bounds: &InputBounds,
    statistical_security: u32,
    precision_bits: f64,
) -> Result<(ScalePolicy, EquivariantReport), EvalError> {
    fitting_policy_for(params, statistical_security, precision_bits, |policy| {
        plan(params, net, bounds, policy)
    })
}

/// One encrypted channel: its present blades' ciphertexts (none in a dry run), their common
/// level and scale, per-grade norm bounds and a slot-wise noise bound (message units).
#[derive(Clone, Debug)]
struct Channel {
    present: [bool; 8],
    cts: [Option<CiphertextOwned>; 8],
    level: usize,
    scale: f64,
    grade_bound: [f64; 4],
    noise: f64,
}

impl Channel {
    /// The scalar part as a channel of its own (blade 0 only).
    fn scalar(&self) -> Self {
        self.select(0)
    }

    /// The pseudoscalar coefficient moved to blade 0 (an invariant number, combined as one).
    fn pseudoscalar(&self) -> Self {
        self.select(7)
    }

    fn select(&self, blade: usize) -> Self {
        let mut present = [false; 8];
        present[0] = self.present[blade];
        let mut cts: [Option<CiphertextOwned>; 8] = Default::default();
        cts[0] = self.cts[blade].clone();
        Self {
            present,
            cts,
            level: self.level,
            scale: self.scale,
            grade_bound: [self.grade_bound[BLADE_GRADES[blade] as usize], 0.0, 0.0, 0.0],
            noise: self.noise,
        }
    }

    fn is_empty(&self) -> bool {
        !self.present.iter().any(|&p| p)
    }
}

/// The walk over the network, with or without ciphertexts.
struct Walk<'a> {
    params: Params,
    ev: Option<&'a Evaluator<'a>>,
    rlk: Option<&'a RelinearizationKey>,
    policy: ScalePolicy,
    relinearizations: usize,
    rescales: usize,
}

/// Grades of the product of a g-vector and an h-vector in Cl(3,0).
pub(super) fn product_grades(g: usize, h: usize) -> impl Iterator<Item = usize> {
    let lo = g.abs_diff(h);
    let hi = (g + h).min(6 - g - h);
    (lo..=hi).step_by(2)
}

impl<'a> Walk<'a> {
    fn n(&self) -> f64 {
        self.params.n() as f64
    }

    fn log_q(&self, level: usize) -> f64 {
        self.params.q().iter().take(level + 1).map(|&q| (q as f64).log2()).sum()
    }

    fn dry(&self) -> bool {
        self.ev.is_none()
    }

    /// Rescales while the scale stays at least 2^min_log_scale, then checks that the values fit.
    fn settle(&mut self, mut c: Channel) -> Result<Channel, EvalError> {
        while c.level > 0 {
            let q = self.params.q()[c.level] as f64;
            if (c.scale / q).log2() < self.policy.min_log_scale {
                break;
            }
            if let Some(ev) = self.ev {
                let outs: Vec<Option<CiphertextOwned>> = c
                    .cts
                    .par_iter()
                    .map(|ct| ct.as_ref().map(|x| ev.rescale(x)).transpose())
                    .collect::<Result<_, _>>()?;
                for (slot, o) in c.cts.iter_mut().zip(outs) {
                    *slot = o;
                }
            }
            self.rescales += c.present.iter().filter(|&&p| p).count();
            c.scale /= q;
            c.level -= 1;
            c.noise += rescale_rounding_slot(self.n()) / c.scale;
        }
        let largest = c.grade_bound.iter().fold(0f64, |m, v| m.max(*v)) + c.noise;
        if !(c.scale.is_finite() && largest.is_finite())
            || c.scale.log2() + largest.max(1.0).log2() + MODULUS_MARGIN_BITS > self.log_q(c.level) - 1.0
        {
            return Err(EvalError::Invalid(
                "the equivariant model's values outgrow the modulus: too deep for this preset and scale policy",
            ));
        }
        Ok(c)
    }

    /// sum_i <w_i>_g x_i grade-wise, plus `constant` in blade 0.
    fn combine(&mut self, terms: &[(&Channel, [f64; 4])], constant: f64) -> Result<Channel, EvalError> {
        let live: Vec<&(&Channel, [f64; 4])> = terms
            .iter()
            .filter(|(c, w)| (0..8).any(|k| c.present[k] && w[BLADE_GRADES[k] as usize] != 0.0))
            .collect();
        let mut present = [false; 8];
        for (c, w) in &live {
            for k in 0..8 {
                present[k] |= c.present[k] && w[BLADE_GRADES[k] as usize] != 0.0;
            }
        }
        if constant != 0.0 && !present[0] {
            return Err(EvalError::Invalid("a constant without an encrypted scalar term"));
        }
        let level = live.iter().map(|(c, _)| c.level).min().unwrap_or(0);
        let top = live.iter().map(|(c, _)| c.scale).fold(0f64, f64::max);
        let scale = top * self.policy.log_const_scale.exp2();
        let mut grade_bound = [0f64; 4];
        let mut noise = 0f64;
        for g in 0..4 {
            let mut v = if g == 0 { constant.abs() } else { 0.0 };
            let mut e = 0.0;
            for (c, w) in &live {
                v += w[g].abs() * c.grade_bound[g];
                e += w[g].abs() * c.noise;
            }
            grade_bound[g] = v * SLACK;
            noise = noise.max(e * SLACK);
        }
        if constant != 0.0 {
            noise += 0.5 / scale;
        }
        let mut cts: [Option<CiphertextOwned>; 8] = Default::default();
        if let Some(ev) = self.ev {
            let outs: Vec<Option<CiphertextOwned>> = (0..8)
                .into_par_iter()
                .map(|k| {
                    if !present[k] {
                        return Ok(None);
                    }
                    let g = BLADE_GRADES[k] as usize;
                    let mut ints = Vec::new();
                    for (c, w) in &live {
                        if c.present[k] && w[g] != 0.0 {
                            let ct = c.cts[k].as_ref().ok_or(EvalError::Invalid("missing channel ciphertext"))?;
                            ints.push((ct, libm::round(w[g] * scale / c.scale)));
                        }
                    }
                    let mut out = ev.integer_combination(&ints, level, scale)?;
                    if k == 0 && constant != 0.0 {
                        out = ev.add_const(&out, Complex::from_real(constant))?;
                    }
                    Ok(Some(out))
                })
                .collect::<Result<_, EvalError>>()?;
            for (slot, o) in cts.iter_mut().zip(outs) {
                *slot = o;
            }
        }
        self.settle(Channel {
            present,
            cts,
            level,
            scale,
            grade_bound,
            noise,
        })
    }

    /// Drops a channel's ciphertexts to `level`.
    fn at_level(&self, c: &Channel, level: usize) -> Result<Vec<Option<CiphertextOwned>>, EvalError> {
        c.cts
            .iter()
            .map(|ct| match (ct, self.ev) {
                (Some(x), Some(ev)) if x.meta.level != level => ev.drop_to_level(x, level).map(Some),
                (x, _) => Ok(x.clone()),
            })
            .collect()
    }

    /// Degree-2 products: per output blade k, sum over `terms(k)` of sign * a_i b_j, one
    /// relinearization per present output blade. `bound(g)` is the value bound of grade g.
    fn products(
        &mut self,
        a: &Channel,
        b: &Channel,
        terms: &(dyn Fn(usize) -> Vec<(usize, usize, i8)> + Sync),
        grade_bound: [f64; 4],
    ) -> Result<Channel, EvalError> {
        let level = a.level.min(b.level);
        let scale = a.scale * b.scale;
        let mut present = [false; 8];
        let mut noise = 0f64;
        for (k, p) in present.iter_mut().enumerate() {
            let t: Vec<(usize, usize, i8)> = terms(k).into_iter().filter(|&(i, j, _)| a.present[i] && b.present[j]).collect();
            *p = !t.is_empty();
            let e: f64 = t
                .iter()
                .map(|&(i, j, _)| {
                    let (va, vb) = (a.grade_bound[BLADE_GRADES[i] as usize], b.grade_bound[BLADE_GRADES[j] as usize]);
                    va * b.noise + vb * a.noise + a.noise * b.noise
                })
                .sum();
            noise = noise.max(e);
        }
        let ks = key_switch_noise_l2(&self.params, level) * self.n().sqrt() / scale;
        noise = noise * SLACK + ks;
        let mut cts: [Option<CiphertextOwned>; 8] = Default::default();
        if let (Some(ev), Some(rlk)) = (self.ev, self.rlk) {
            // The operands' present blades at the product's level, copied once and compacted;
            // the terms index into them.
            let compact = |x: Vec<Option<CiphertextOwned>>| {
                let mut at = [usize::MAX; 8];
                let mut v = Vec::with_capacity(8);
                for (k, c) in x.into_iter().enumerate() {
                    if let Some(c) = c {
                        at[k] = v.len();
                        v.push(c);
                    }
                }
                (v, at)
            };
            let (xs, ia) = compact(self.at_level(a, level)?);
            let (ys, ib) = compact(self.at_level(b, level)?);
            let outs: Vec<Option<CiphertextOwned>> = (0..8)
                .into_par_iter()
                .map(|k| {
                    if !present[k] {
                        return Ok(None);
                    }
                    let idx: Vec<(usize, usize, i8)> = terms(k)
                        .into_iter()
                        .filter(|&(i, j, _)| ia[i] != usize::MAX && ib[j] != usize::MAX)
                        .map(|(i, j, s)| (ia[i], ib[j], s))
                        .collect();
                    let t = signed_tensor_sum(ev.context(), &xs, &ys, &idx)?;
                    ev.relinearize(&t, rlk).map(Some)
                })
                .collect::<Result<_, EvalError>>()?;
            for (slot, o) in cts.iter_mut().zip(outs) {
                *slot = o;
            }
        } else if !self.dry() {
            return Err(EvalError::Invalid("products need the relinearization key"));
        }
        self.relinearizations += present.iter().filter(|&&p| p).count();
        self.settle(Channel {
            present,
            cts,
            level,
            scale,
            grade_bound: grade_bound.map(|v| v * SLACK),
            noise,
        })
    }

    /// The geometric product a b.
    fn gp(&mut self, a: &Channel, b: &Channel) -> Result<Channel, EvalError> {
        let mut bound = [0f64; 4];
        for g in 0..4 {
            for h in 0..4 {
                for k in product_grades(g, h) {
                    bound[k] += a.grade_bound[g] * b.grade_bound[h];
                }
            }
        }
        let terms = |k: usize| -> Vec<(usize, usize, i8)> {
            let mut t = Vec::new();
            for (i, row) in GP_TABLE.iter().enumerate() {
                for (j, &(r, s)) in row.iter().enumerate() {
                    if r as usize == k {
                        t.push((i, j, s));
                    }
                }
            }
            t
        };
        self.products(a, b, &terms, bound)
    }

    /// |y|^2 = sum_k y_k^2 (a scalar channel).
    fn norm_squared(&mut self, y: &Channel) -> Result<Channel, EvalError> {
        let v: f64 = y.grade_bound.iter().map(|g| g * g).sum();
        let terms = |k: usize| -> Vec<(usize, usize, i8)> {
            if k == 0 {
                (0..8).map(|i| (i, i, 1)).collect()
            } else {
                Vec::new()
            }
        };
        self.products(y, y, &terms, [v, 0.0, 0.0, 0.0])
    }

    /// y times the scalar channel f, blade by blade.
    fn times_scalar(&mut self, y: &Channel, f: &Channel) -> Result<Channel, EvalError> {
        let fb = f.grade_bound[0];
        let terms = |k: usize| -> Vec<(usize, usize, i8)> { vec![(k, 0, 1)] };
        self.products(y, f, &terms, y.grade_bound.map(|v| v * fb))
    }

    /// A grade-wise map applied to `x` (plus the public constant channel's weight, if `x` is one
    /// channel short of the map's inputs).
    fn grade_linear(&mut self, m: &GradeLinear, x: &[Channel], o: usize) -> Result<Channel, EvalError> {
        let with_constant = m.inputs == x.len() + 1;
        if !(with_constant || m.inputs == x.len()) || m.weights.len() != m.inputs * m.outputs || o >= m.outputs {
            return Err(EvalError::Invalid("channel counts do not chain"));
        }
        let row = &m.weights[o * m.inputs..(o + 1) * m.inputs];
        let terms: Vec<(&Channel, [f64; 4])> = x.iter().zip(row).map(|(c, w)| (c, *w)).collect();
        let constant = if with_constant { row[x.len()][0] } else { 0.0 };
        self.combine(&terms, constant)
    }

    fn layer(&mut self, layer: &CliffordLayer, x: &[Channel]) -> Result<Vec<Channel>, EvalError> {
        let outputs = layer.linear.outputs;
        if layer.product.len() != outputs || layer.gate.len() != outputs {
            return Err(EvalError::Invalid("channel counts do not chain"));
        }
        let mut out = Vec::with_capacity(outputs);
        for o in 0..outputs {
            let a = self.grade_linear(&layer.left, x, o)?;
            let b = self.grade_linear(&layer.right, x, o)?;
            let lin = self.grade_linear(&layer.linear, x, o)?;
            let p = self.gp(&a, &b)?;
            let mut y = self.combine(&[(&lin, [1.0; 4]), (&p, layer.product[o])], 0.0)?;
            let [c1, c2] = layer.gate[o];
            if c1 != 0.0 || c2 != 0.0 {
                let n = self.norm_squared(&y)?;
                let mut f = self.combine(&[(&y.scalar(), [c1, 0.0, 0.0, 0.0]), (&n, [c2, 0.0, 0.0, 0.0])], 1.0)?;
                // f = 1 + c1 y0 + c2 n with n >= 0: a tighter range than the triangle inequality.
                let (lo, hi) = (c1.abs() * y.grade_bound[0], c2 * n.grade_bound[0]);
                f.grade_bound[0] = (1.0 + lo + hi.max(0.0)).max((1.0 - lo + hi.min(0.0)).abs()) * SLACK;
                y = self.times_scalar(&y, &f)?;
            }
            if y.is_empty() {
                return Err(EvalError::Invalid("a hidden channel is identically zero"));
            }
            out.push(y);
        }
        Ok(out)
    }

    fn scores(&mut self, net: &EquivariantNet, y: &[Channel]) -> Result<Vec<Channel>, EvalError> {
        let k = y.len();
        let r = &net.readout;
        if k == 0 || r.weights.len() != k * r.bias.len() {
            return Err(EvalError::Invalid("channel counts do not chain"));
        }
        let mut parts = Vec::with_capacity(3 * k);
        for yo in y {
            parts.push((yo.scalar(), yo.pseudoscalar(), self.norm_squared(yo)?));
        }
        (0..r.bias.len())
            .map(|c| {
                let mut terms: Vec<(&Channel, [f64; 4])> = Vec::with_capacity(3 * k);
                for (o, (s, ps, n)) in parts.iter().enumerate() {
                    let w = r.weights[c * k + o];
                    for (ch, wt) in [(s, w[0]), (n, w[1]), (ps, w[2])] {
                        if !ch.is_empty() {
                            terms.push((ch, [wt, 0.0, 0.0, 0.0]));
                        }
                    }
                }
                self.combine(&terms, r.bias[c])
            })
            .collect()
    }

    fn run(&mut self, net: &EquivariantNet, x: Vec<Channel>) -> Result<(Vec<Channel>, EquivariantReport), EvalError> {
        let input_ciphertexts = x.iter().map(|c| c.present.iter().filter(|&&p| p).count()).sum();
        let mut h = x;
        for layer in &net.layers {
            h = self.layer(layer, &h)?;
        }
        let s = self.scores(net, &h)?;
        let first = s.first().ok_or(EvalError::Invalid("no classes"))?;
        let (level, scale) = (first.level, first.scale);
        if s.iter().any(|c| c.level != level || c.scale != scale) {
            return Err(EvalError::Invalid("score ciphertexts at different levels"));
        }
        let score_bound = s.iter().map(|c| c.grade_bound[0]).fold(0f64, f64::max);
        let noise_bound = s.iter().map(|c| c.noise).fold(0f64, f64::max);
        let report = EquivariantReport {
            output_level: level,
            output_scale: scale,
            score_bound,
            noise_bound,
            per_coefficient_bound: noise_bound * scale,
            relinearizations: self.relinearizations,
            rotations: 0,
            rescales: self.rescales,
            input_ciphertexts,
        };
        Ok((s, report))
    }
}

fn input_channels(
    params: &Params,
    bounds: &InputBounds,
    policy: &ScalePolicy,
    cts: Option<Vec<[Option<CiphertextOwned>; 8]>>,
) -> Result<Vec<Channel>, EvalError> {
    bounds.validate(bounds.present.len())?;
    let scale = policy.log_input_scale.exp2();
    let noise = fresh_noise_slot(params.n()) / scale;
    let level = policy.level(params);
    let mut cts = cts.map(Vec::into_iter);
    bounds
        .present
        .iter()
        .zip(&bounds.grade_norm)
        .map(|(present, grade_bound)| {
            let c = match cts.as_mut() {
                Some(it) => {
                    let c = it.next().ok_or(EvalError::Invalid("fewer channels than the input bounds"))?;
                    for (p, ct) in present.iter().zip(&c) {
                        match ct {
                            Some(x) if *p => {
                                if x.meta.level != level || (x.meta.scale / scale - 1.0).abs() > 1e-9 {
                                    return Err(EvalError::Invalid("inputs must be at the policy's input level and scale"));
                                }
                            }
                            None if !*p => {}
                            _ => return Err(EvalError::Invalid("a channel's ciphertexts do not match its blade mask")),
                        }
                    }
                    c
                }
                None => Default::default(),
            };
            Ok(Channel {
                present: *present,
                cts: c,
                level,
                scale,
                grade_bound: *grade_bound,
                noise,
            })
        })
        .collect()
}

/// The dry run: levels, scales, bounds and operation counts of an evaluation, or why it cannot
/// run (too deep for the preset, values outgrowing the modulus, channel counts).
pub fn plan(params: &Params, net: &EquivariantNet, bounds: &InputBounds, policy: &ScalePolicy) -> Result<EquivariantReport, EvalError> {
    let mut walk = Walk {
        params: *params,
        ev: None,
        rlk: None,
        policy: *policy,
        relinearizations: 0,
        rescales: 0,
    };
    let x = input_channels(params, bounds, policy, None)?;
    walk.run(net, x).map(|(_, r)| r)
}

/// Evaluates the network on encrypted channels (per channel the present blades' ciphertexts,
/// at the policy's input level and scale): one score ciphertext per class and the
/// report of [`plan`] (identical to it).
pub fn evaluate(
    ev: &Evaluator<'_>,
    rlk: &RelinearizationKey,
    net: &EquivariantNet,
    bounds: &InputBounds,
    policy: &ScalePolicy,
    channels: Vec<[Option<CiphertextOwned>; 8]>,
) -> Result<(Vec<CiphertextOwned>, EquivariantReport), EvalError> {
    let params = *ev.context().params();
    if channels.len() != bounds.present.len() {
        return Err(EvalError::Invalid("one input channel per input bound"));
    }
    let mut walk = Walk {
        params,
        ev: Some(ev),
        rlk: Some(rlk),
        policy: *policy,
        relinearizations: 0,
        rescales: 0,
    };
    let x = input_channels(&params, bounds, policy, Some(channels))?;
    let (s, report) = walk.run(net, x)?;
    let scores = s
        .into_iter()
        .map(|mut c| c.cts[0].take().ok_or(EvalError::Invalid("missing score ciphertext")))
        .collect::<Result<_, _>>()?;
    Ok((scores, report))
}
