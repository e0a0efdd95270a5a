//! The walk over the block layout's circuit, with or without ciphertexts: the dry run
//! ([`super::plan`]), the encoding of the weight vectors ([`super::BlockConstants::new`]) and the
//! evaluation ([`super::evaluate`]) are this one code path (module docs of the parent).

use super::{partner, single_layer, BlockLayout};
use crate::error::EvalError;
use crate::evaluator::{Evaluator, PlaintextRns};
use crate::gnn::equivariant::{EquivariantNet, GradeLinear};
use crate::gnn::equivariant_policy::{
    fresh_noise_slot, rescale_rounding_slot, EquivariantReport, InputBounds, ScalePolicy, MODULUS_MARGIN_BITS, SLACK,
};
use crate::gnn::noise::key_switch_noise_l2;
use crate::keys::{GaloisKeys, RelinearizationKey};
use clifhe_core::ciphertext::CiphertextOwned;
use clifhe_core::multivector::BLADE_GRADES;
use clifhe_core::Params;

/// Bits of the scale at which weight vectors are encoded, relative to their input (at least).
/// A slot vector's encoding rounds N coefficients where an integer weight rounds one: at 2^30
/// (the integer combinations' precision) patients in different lanes saw weights differing by
/// about 2^-23 and the scores of rotated copies of one patient by 4e-6; at 2^50 the weights
/// are exact to the f64 precision of the encoder.
const VECTOR_CONST_BITS: f64 = 50.0;

/// A block ciphertext in the walk: the ciphertext (none in a dry run), level, scale and the
/// slot-wise bounds.
#[derive(Clone, Debug)]
pub(super) struct Block {
    pub(super) ct: Option<CiphertextOwned>,
    level: usize,
    scale: f64,
    value: Vec<f64>,
    noise: Vec<f64>,
}

/// The weight vectors' plaintexts: encoded by [`BlockConstants::new`], replayed by
/// [`evaluate`].
pub(super) enum Constants<'c> {
    Dry,
    Record(Vec<PlaintextRns>),
    Replay(&'c [PlaintextRns], usize),
}

pub(super) struct BlockWalk<'a, 'c> {
    params: Params,
    layout: BlockLayout,
    policy: ScalePolicy,
    ev: Option<&'a Evaluator<'a>>,
    rlk: Option<&'a RelinearizationKey>,
    gks: Option<&'a GaloisKeys>,
    pub(super) consts: Constants<'c>,
    relinearizations: usize,
    rotations: usize,
    rescales: usize,
}

impl<'a, 'c> BlockWalk<'a, 'c> {
    pub(super) fn new(
        params: Params,
        net: &EquivariantNet,
        policy: &ScalePolicy,
        ev: Option<&'a Evaluator<'a>>,
        rlk: Option<&'a RelinearizationKey>,
        gks: Option<&'a GaloisKeys>,
        consts: Constants<'c>,
    ) -> Result<Self, EvalError> {
        Ok(Self {
            params,
            layout: BlockLayout::new(&params, net)?,
            policy: *policy,
            ev,
            rlk,
            gks,
            consts,
            relinearizations: 0,
            rotations: 0,
            rescales: 0,
        })
    }

    fn n(&self) -> f64 {
        self.params.n() as f64
    }

    fn log_q(&self, level: usize) -> f64 {
        self.params.q().iter().take(level + 1).map(|&q| (q as f64).log2()).sum()
    }

    fn vector_const_bits(&self) -> f64 {
        self.policy.log_const_scale.max(VECTOR_CONST_BITS)
    }

    /// Ciphertexts are operated on only when the walk has them (an evaluation).
    fn live(&self) -> bool {
        matches!(self.consts, Constants::Replay(..))
    }

    fn ev(&self) -> Result<&'a Evaluator<'a>, EvalError> {
        self.ev.ok_or(EvalError::Invalid("the evaluation needs the evaluator"))
    }

    /// Bound on how far an encoded weight vector's slots decode from the weights.
    fn encoding_error(&self, values: &[f64], scale: f64) -> f64 {
        let largest = values.iter().fold(0f64, |m, v| m.max(v.abs()));
        self.n() * (0.5 / scale + largest * (-45f64).exp2())
    }

    /// The plaintext of `values` at (`level`, `scale`): encoded (recording), looked up
    /// (replaying) or nothing (dry run).
    fn constant(&mut self, values: &[f64], level: usize, scale: f64) -> Result<Option<&'c PlaintextRns>, EvalError> {
        match &mut self.consts {
            Constants::Dry => Ok(None),
            Constants::Record(v) => {
                let ev = self.ev.ok_or(EvalError::Invalid("recording constants needs the evaluator"))?;
                v.push(ev.encode_real(values, level, scale)?);
                Ok(None)
            }
            Constants::Replay(pts, next) => {
                let pts: &'c [PlaintextRns] = pts;
                let pt = pts
                    .get(*next)
                    .ok_or(EvalError::Invalid("constants made for another model or policy"))?;
                *next += 1;
                if pt.poly.limbs() < level + 1 || (pt.scale / scale - 1.0).abs() > 1e-9 {
                    return Err(EvalError::Invalid("constants made for another model or policy"));
                }
                Ok(Some(pt))
            }
        }
    }

    /// The block's ciphertext at `level` (dropped if it sits higher).
    fn ct_at(&self, x: &Block, level: usize) -> Result<CiphertextOwned, EvalError> {
        let ct = x.ct.as_ref().ok_or(EvalError::Invalid("missing ciphertext"))?;
        if ct.meta.level == level {
            Ok(ct.clone())
        } else {
            self.ev()?.drop_to_level(ct, level)
        }
    }

    /// Divides by the top prime of the block's level (ciphertext and bounds).
    fn rescale(&mut self, b: &mut Block) -> Result<(), EvalError> {
        let q = self.params.q()[b.level] as f64;
        if let Some(ct) = b.ct.take() {
            b.ct = Some(self.ev()?.rescale(&ct)?);
        }
        self.rescales += 1;
        b.scale /= q;
        b.level -= 1;
        let r = rescale_rounding_slot(self.n()) / b.scale;
        b.noise.iter_mut().for_each(|e| *e += r);
        Ok(())
    }

    /// Checks that the values (with their noise) fit the modulus of the block's level.
    fn check_fits(&self, b: Block) -> Result<Block, EvalError> {
        let largest = b.value.iter().zip(&b.noise).fold(0f64, |m, (v, e)| m.max(v + e));
        if !(b.scale.is_finite() && largest.is_finite())
            || b.scale.log2() + largest.max(1.0).log2() + MODULUS_MARGIN_BITS > self.log_q(b.level) - 1.0
        {
            return Err(EvalError::Invalid(
                "the equivariant model's values outgrow the modulus: too deep for this preset and scale policy",
            ));
        }
        Ok(b)
    }

    /// Rescales while the scale stays at least 2^min_log_scale, then checks that the values fit.
    fn settle(&mut self, mut b: Block) -> Result<Block, EvalError> {
        while b.level > 0 && (b.scale / self.params.q()[b.level] as f64).log2() >= self.policy.min_log_scale {
            self.rescale(&mut b)?;
        }
        self.check_fits(b)
    }

    /// a + b for blocks of one scale (the higher one dropped to the lower's level).
    fn add(&mut self, a: &Block, b: &Block) -> Result<Block, EvalError> {
        if (a.scale / b.scale - 1.0).abs() > 1e-9 {
            return Err(EvalError::Invalid("sums take blocks of one scale"));
        }
        let level = a.level.min(b.level);
        let ct = if self.live() {
            let ev = self.ev()?;
            let at = |x: &Block| self.ct_at(x, level);
            let mut y = at(b)?;
            y.meta.scale = a.scale;
            Some(ev.add(&at(a)?, &y)?)
        } else {
            None
        };
        self.check_fits(Block {
            ct,
            level,
            scale: a.scale,
            value: a.value.iter().zip(&b.value).map(|(x, y)| x + y).collect(),
            noise: a.noise.iter().zip(&b.noise).map(|(x, y)| x + y).collect(),
        })
    }

    /// b + constant (encoded at the block's level and scale: no level spent).
    fn add_constant(&mut self, mut b: Block, constant: &[f64]) -> Result<Block, EvalError> {
        let err = self.encoding_error(constant, b.scale);
        b.value.iter_mut().zip(constant).for_each(|(v, c)| *v += c.abs() + err);
        let pt = self.constant(constant, b.level, b.scale)?;
        if let Some(ct) = b.ct.take() {
            b.ct = Some(self.ev()?.add_plain(&ct, pt.ok_or(EvalError::Invalid("missing constant"))?)?);
        }
        self.check_fits(b)
    }

    /// sum_t w_t x_t + constant, slot-wise, for inputs that share level and scale (one pass of
    /// [`Evaluator::mul_plain_sum`]), then settled; or, with a `target` (level, scale), brought
    /// to exactly that level and scale: the weights are encoded at the target scale times the
    /// fewest top primes that keep them at 2^VECTOR_CONST_BITS or more over the input's scale,
    /// those primes are divided out and the rest dropped, so the result adds to a block of the
    /// target without a level of its own.
    fn plain_sum(&mut self, terms: &[(&Block, Vec<f64>)], constant: &[f64], target: Option<(usize, f64)>) -> Result<Block, EvalError> {
        let first = terms.first().ok_or(EvalError::Invalid("empty plaintext sum"))?.0;
        let (level, in_scale) = (first.level, first.scale);
        if terms.iter().any(|(b, _)| b.level != level || b.scale != in_scale) {
            return Err(EvalError::Invalid("plaintext sums take inputs of one level and scale"));
        }
        let least = self.vector_const_bits().exp2();
        let (w_scale, divide) = match target {
            None => (least, 0),
            Some((target_level, target_scale)) => {
                let (mut w, mut r) = (target_scale / in_scale, 0);
                while w < least && r < level.saturating_sub(target_level) {
                    w *= self.params.q()[level - r] as f64;
                    r += 1;
                }
                if w < least || target_level > level {
                    return Err(EvalError::Invalid(
                        "a plaintext sum cannot reach its target scale at full precision",
                    ));
                }
                (w, r)
            }
        };
        let scale = in_scale * w_scale;
        let slots = self.layout.slots;
        let (mut value, mut noise) = (vec![0f64; slots], vec![0f64; slots]);
        let mut pts = Vec::with_capacity(terms.len());
        for (x, w) in terms {
            let err = self.encoding_error(w, w_scale);
            for s in 0..slots {
                let m = w[s].abs() + err;
                value[s] += m * x.value[s];
                noise[s] += m * x.noise[s];
            }
            pts.push(self.constant(w, level, w_scale)?);
        }
        let cerr = self.encoding_error(constant, scale);
        value.iter_mut().zip(constant).for_each(|(v, c)| *v += c.abs() + cerr);
        let cpt = self.constant(constant, level, scale)?;
        let ct = if self.live() {
            let ev = self.ev()?;
            let mut pairs = Vec::with_capacity(terms.len());
            for ((x, _), pt) in terms.iter().zip(&pts) {
                let ct = x.ct.as_ref().ok_or(EvalError::Invalid("missing ciphertext"))?;
                pairs.push((ct, pt.ok_or(EvalError::Invalid("missing constant"))?));
            }
            let sum = ev.mul_plain_sum(&pairs)?;
            Some(ev.add_plain(&sum, cpt.ok_or(EvalError::Invalid("missing constant"))?)?)
        } else {
            None
        };
        let mut b = Block {
            ct,
            level,
            scale,
            value: value.iter().map(|v| v * SLACK).collect(),
            noise: noise.iter().map(|e| e * SLACK).collect(),
        };
        let Some((target_level, target_scale)) = target else {
            return self.settle(b);
        };
        for _ in 0..divide {
            self.rescale(&mut b)?;
        }
        if let Some(ct) = b.ct.take() {
            let mut ct = if ct.meta.level == target_level {
                ct
            } else {
                self.ev()?.drop_to_level(&ct, target_level)?
            };
            ct.meta.scale = target_scale;
            b.ct = Some(ct);
        }
        b.level = target_level;
        b.scale = target_scale;
        self.check_fits(b)
    }

    /// Slot-wise product a b, one relinearization.
    fn product(&mut self, a: &Block, b: &Block) -> Result<Block, EvalError> {
        let level = a.level.min(b.level);
        let scale = a.scale * b.scale;
        let ks = key_switch_noise_l2(&self.params, level) * self.n().sqrt() / scale;
        let slots = self.layout.slots;
        let value: Vec<f64> = (0..slots).map(|s| a.value[s] * b.value[s] * SLACK).collect();
        let noise: Vec<f64> = (0..slots)
            .map(|s| (a.value[s] * b.noise[s] + b.value[s] * a.noise[s] + a.noise[s] * b.noise[s]) * SLACK + ks)
            .collect();
        let ct = if self.live() {
            let (ev, rlk) = (
                self.ev()?,
                self.rlk.ok_or(EvalError::Invalid("products need the relinearization key"))?,
            );
            let at = |x: &Block| self.ct_at(x, level);
            let (x, y) = (at(a)?, at(b)?);
            Some(ev.mul_relin(&x, &y, rlk)?)
        } else {
            None
        };
        self.relinearizations += 1;
        self.settle(Block {
            ct,
            level,
            scale,
            value,
            noise,
        })
    }

    /// x + rot(x, s1), then the same with s2, ...: each slot gathers the slots `sum of a
    /// subset of steps` ahead of it.
    fn rotate_and_sum(&mut self, mut x: Block, steps: &[i64]) -> Result<Block, EvalError> {
        let slots = self.layout.slots;
        for &step in steps {
            let ks = key_switch_noise_l2(&self.params, x.level) * self.n().sqrt() / x.scale;
            let shift = step.rem_euclid(slots as i64) as usize;
            let value: Vec<f64> = (0..slots).map(|s| x.value[s] + x.value[(s + shift) % slots]).collect();
            let noise: Vec<f64> = (0..slots).map(|s| x.noise[s] + x.noise[(s + shift) % slots] + ks).collect();
            if self.live() {
                let ev = self.ev()?;
                let gks = self.gks.ok_or(EvalError::Invalid("rotations need the Galois keys"))?;
                let ct = x.ct.as_ref().ok_or(EvalError::Invalid("missing ciphertext"))?;
                let r = ev.rotate(ct, step, gks)?;
                x.ct = Some(ev.add(ct, &r)?);
            }
            self.rotations += 1;
            x.value = value;
            x.noise = noise;
        }
        Ok(x)
    }

    /// sum_t w_t x_t for inputs of any levels and scales: each weight vector is encoded at
    /// the common target scale over its input's scale (at least 2^log_const_scale).
    fn plain_terms(&mut self, terms: &[(&Block, Vec<f64>)]) -> Result<Block, EvalError> {
        let level = terms
            .iter()
            .map(|(b, _)| b.level)
            .min()
            .ok_or(EvalError::Invalid("empty plaintext sum"))?;
        let top = terms.iter().map(|(b, _)| b.scale).fold(0f64, f64::max);
        let scale = top * self.vector_const_bits().exp2();
        let slots = self.layout.slots;
        let (mut value, mut noise) = (vec![0f64; slots], vec![0f64; slots]);
        let mut acc: Option<CiphertextOwned> = None;
        for (x, w) in terms {
            let w_scale = scale / x.scale;
            let err = self.encoding_error(w, w_scale);
            for s in 0..slots {
                let m = w[s].abs() + err;
                value[s] += m * x.value[s];
                noise[s] += m * x.noise[s];
            }
            let pt = self.constant(w, level, w_scale)?;
            if self.live() {
                let ev = self.ev()?;
                let ct = self.ct_at(x, level)?;
                let mut t = ev.mul_plain(&ct, pt.ok_or(EvalError::Invalid("missing constant"))?)?;
                t.meta.scale = scale;
                acc = Some(match acc {
                    None => t,
                    Some(a) => ev.add(&a, &t)?,
                });
            }
        }
        self.settle(Block {
            ct: acc,
            level,
            scale,
            value: value.iter().map(|v| v * SLACK).collect(),
            noise: noise.iter().map(|e| e * SLACK).collect(),
        })
    }

    /// The input blocks (X_c, X'_c per channel) with their bounds from the public domain.
    pub(super) fn inputs(&self, bounds: &InputBounds, cts: Option<Vec<CiphertextOwned>>) -> Result<Vec<Block>, EvalError> {
        bounds.validate(bounds.present.len())?;
        let scale = self.policy.log_input_scale.exp2();
        let level = self.policy.level(&self.params);
        let noise = fresh_noise_slot(self.params.n()) / scale;
        if let Some(c) = &cts {
            if c.len() != 2 * bounds.present.len() {
                return Err(EvalError::Invalid("the block layout takes two ciphertexts per input channel"));
            }
            if c.iter().any(|x| x.meta.level != level || (x.meta.scale / scale - 1.0).abs() > 1e-9) {
                return Err(EvalError::Invalid("inputs must be at the policy's input level and scale"));
            }
        }
        let mut cts = cts.map(Vec::into_iter);
        let l = self.layout;
        let mut out = Vec::with_capacity(2 * bounds.present.len());
        for (present, norm) in bounds.present.iter().zip(&bounds.grade_norm) {
            let blade = |b: usize| if present[b] { norm[BLADE_GRADES[b] as usize] } else { 0.0 };
            for primed in [false, true] {
                let mut value = vec![0f64; l.slots];
                for i in 0..8 {
                    for o in 0..l.hidden_padded {
                        for k in 0..8 {
                            let b = if primed { partner(i, k).0 } else { i };
                            for p in 0..l.lanes {
                                value[l.slot(i, o, k, p)] = blade(b);
                            }
                        }
                    }
                }
                out.push(Block {
                    ct: cts.as_mut().and_then(Iterator::next),
                    level,
                    scale,
                    value,
                    noise: vec![noise; l.slots],
                });
            }
        }
        Ok(out)
    }

    /// A weight vector from a function of (copy, hidden channel, blade), the same in every lane.
    fn weights(&self, f: impl Fn(usize, usize, usize) -> f64) -> Vec<f64> {
        let l = self.layout;
        let mut w = vec![0f64; l.slots];
        for i in 0..8 {
            for o in 0..l.hidden {
                for k in 0..8 {
                    let v = f(i, o, k);
                    if v != 0.0 {
                        for p in 0..l.lanes {
                            w[l.slot(i, o, k, p)] = v;
                        }
                    }
                }
            }
        }
        w
    }

    pub(super) fn run(&mut self, net: &EquivariantNet, x: Vec<Block>) -> Result<(Block, EquivariantReport), EvalError> {
        let layer = single_layer(net)?;
        let channels = x.len() / 2;
        let (left, right, linear) = (&layer.left, &layer.right, &layer.linear);
        for m in [left, right, linear] {
            if m.inputs != channels + 1 || m.outputs != self.layout.hidden || m.weights.len() != m.inputs * m.outputs {
                return Err(EvalError::Invalid("channel counts do not chain"));
            }
        }
        let g = |b: usize| BLADE_GRADES[b] as usize;
        let w = |m: &GradeLinear, o: usize, c: usize| m.weights[o * m.inputs + c];
        let u = &layer.product;
        // The left factor with the product's sign and grade weight folded in.
        let a_terms: Vec<(&Block, Vec<f64>)> = (0..channels)
            .map(|c| {
                (
                    &x[2 * c],
                    self.weights(|i, o, k| w(left, o, c)[g(i)] * partner(i, k).1 * u[o][g(k)]),
                )
            })
            .collect();
        let a_const = self.weights(|i, o, k| {
            if i == 0 {
                w(left, o, channels)[0] * partner(0, k).1 * u[o][g(k)]
            } else {
                0.0
            }
        });
        let b_terms: Vec<(&Block, Vec<f64>)> = (0..channels)
            .map(|c| (&x[2 * c + 1], self.weights(|i, o, k| w(right, o, c)[g(partner(i, k).0)])))
            .collect();
        let b_const = self.weights(|i, o, k| if partner(i, k).0 == 0 { w(right, o, channels)[0] } else { 0.0 });
        let l_terms: Vec<(&Block, Vec<f64>)> = (0..channels)
            .map(|c| {
                (
                    &x[2 * c + 1],
                    self.weights(|i, o, k| if i == 0 { w(linear, o, c)[g(k)] } else { 0.0 }),
                )
            })
            .collect();
        let l_const = self.weights(|i, o, k| if i == 0 && k == 0 { w(linear, o, channels)[0] } else { 0.0 });

        let a = self.plain_sum(&a_terms, &a_const, None)?;
        let b = self.plain_sum(&b_terms, &b_const, None)?;
        let prod = self.product(&a, &b)?;
        // The linear path lands on the product's level and scale: no level of its own.
        let lin = self.plain_sum(&l_terms, &l_const, Some((prod.level, prod.scale)))?;
        let z = self.add(&prod, &lin)?;
        let y = self.rotate_and_sum(z, &self.layout.copy_steps())?;
        let y2 = self.product(&y, &y)?;
        let r = &net.readout;
        let hidden = self.layout.hidden;
        let classes = r.bias.len();
        let r1 = self.weights(|i, o, k| {
            if i >= classes {
                0.0
            } else if k == 0 {
                r.weights[i * hidden + o][0]
            } else if k == 7 {
                r.weights[i * hidden + o][2]
            } else {
                0.0
            }
        });
        let r2 = self.weights(|i, o, _| if i < classes { r.weights[i * hidden + o][1] } else { 0.0 });
        let mut bias = vec![0f64; self.layout.slots];
        for (c, b) in r.bias.iter().enumerate() {
            for p in 0..self.layout.lanes {
                bias[self.layout.slot(c, 0, 0, p)] = *b;
            }
        }
        let t = self.plain_terms(&[(&y, r1), (&y2, r2)])?;
        let s = self.rotate_and_sum(t, &self.layout.position_steps())?;
        let mut s = self.add_constant(s, &bias)?;
        // The flood's width is absolute (2^s times the noise bound in coefficient units), so
        // scores left at a large scale would need a flood beyond the sampler's 2^120: rescale
        // them while the scale stays at least 2^(input - 30), where the rescale rounding is
        // still far below the evaluation's relative noise.
        while s.level > 0 && (s.scale / self.params.q()[s.level] as f64).log2() >= self.policy.log_input_scale - 30.0 {
            self.rescale(&mut s)?;
        }
        let report = EquivariantReport {
            output_level: s.level,
            output_scale: s.scale,
            score_bound: s.value.iter().fold(0f64, |m, v| m.max(*v)),
            noise_bound: s.noise.iter().fold(0f64, |m, v| m.max(*v)),
            per_coefficient_bound: s.noise.iter().fold(0f64, |m, v| m.max(*v)) * s.scale,
            relinearizations: self.relinearizations,
            rotations: self.rotations,
            rescales: self.rescales,
            input_ciphertexts: x.len(),
        };
        Ok((s, report))
    }
}
