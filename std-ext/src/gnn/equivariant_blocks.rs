//! Low-latency encrypted evaluation of a one-layer equivariant network: every channel, blade
//! and hidden channel of a few patients in the slots of one ciphertext (the block layout), so
//! that one patient costs 2 relinearizations and a handful of rotations instead of the
//! blade-major batch's 72 relinearizations over 16 384 slots.
//!
//! # Layout
//!
//! With S slots, a copy is S/8 slots and the slot of (copy i, hidden channel o, blade k,
//! patient p) is `i * S/8 + (o * 8 + k) * lanes + p`, with `lanes` = S / (64 Hp) patients per
//! ciphertext (Hp: the hidden width rounded up to a power of two; 32 patients for 8 hidden
//! channels at N = 2^15). The geometric product's output blade k of channel o is
//! `sum_i s(i, k) a_(o,i) b_(o,j(i,k))`, where e_i e_j(i,k) = s(i, k) e_k: one term per copy i.
//! The hospital sends, per input channel c, two ciphertexts ([`pack_block_inputs`]): X_c holding
//! x_(c,i) and X'_c holding x_(c,j(i,k)) in slot (i, o, k, p). Then, without any rotation:
//!
//! * A = sum_c WA_c X_c (+ the constant channel), WA_c(i, o, k) = left[o][c][grade i] s(i, k)
//!   product[o][grade k]: the left factor with the product's signs and grade weights folded in;
//! * B = sum_c WB_c X'_c, WB_c(i, o, k) = right[o][c][grade j(i, k)];
//! * L = sum_c WL_c X'_c on copy 0 only (j(0, k) = k): the linear path;
//! * A B (one relinearization) + L, then the sum over the copies: three rotations by S/8, S/4,
//!   S/2. Because the copy index is the outermost, the rotations wrap around the whole
//!   ciphertext and every copy ends up holding the full hidden output y_(o,k).
//!
//! The readout: y^2 (one relinearization), then copy c < classes takes class c's weights on
//! y_(o,0), y_(o,7) and y_(o,k)^2 (plaintext products, which also zero what no class reads), and
//! log2(64 Hp) rotations by lanes, 2 lanes, ... sum the positions (o, k): the score of class c,
//! patient p lands in slot c * S/8 + p ([`crate::privacy::ResultLayout::Blocked`]). The other
//! slots hold partial sums; sanitisation masks every slot but those.
//!
//! # Bounds
//!
//! As in [`super::equivariant_encrypted`], but slot by slot: every ciphertext carries a bound
//! on |value| and on |noise| (message units) for each slot, which plaintext products scale,
//! products combine (|a e_b| + |b e_a| + |e_a e_b|), rotations permute (plus the key-switching
//! noise), and rescales increase by their rounding. A plaintext weight vector decodes to the
//! weights up to its encoding rounding (at most N (1/2 + 2^-45 max|w| scale) / scale per slot,
//! counted in the value bounds, a fixed function of the model like the blade-major path's
//! rounded integers). [`plan`] walks the same code without ciphertexts, [`BlockConstants::new`]
//! with the evaluator only (it encodes the weight vectors once per model), [`evaluate`] with
//! both.

use super::equivariant::{CliffordLayer, EquivariantNet};
use super::equivariant_encrypted::{
    fitting_policy_for, fresh_noise_slot, rescale_rounding_slot, EquivariantReport, InputBounds, ScalePolicy, MODULUS_MARGIN_BITS, SLACK,
};
use super::noise::key_switch_noise_l2;
use crate::error::EvalError;
use crate::evaluator::{Evaluator, PlaintextRns};
use crate::keys::{GaloisKeys, RelinearizationKey};
use crate::privacy::ResultLayout;
use crate::EvalContext;
use clifhe_core::ciphertext::CiphertextOwned;
use clifhe_core::encrypt::{encrypt_pk, Plaintext};
use clifhe_core::multivector::{BLADE_GRADES, GP_TABLE};
use clifhe_core::{Multivector, Params, PublicKey};
use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};
use rayon::prelude::*;
use zeroize::Zeroizing;

/// Bits of the scale at which weight vectors are encoded, relative to their input (at least).
/// A slot vector's encoding rounds N coefficients where an integer weight rounds one: at 2^30
/// (the integer combinations' precision) patients in different lanes saw weights differing by
/// about 2^-23 and the scores of rotated copies of one patient by 4e-6; at 2^50 the weights
/// are exact to the f64 precision of the encoder.
const VECTOR_CONST_BITS: f64 = 50.0;

/// Where everything sits in a block ciphertext (module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockLayout {
    slots: usize,
    hidden: usize,
    hidden_padded: usize,
    lanes: usize,
}

impl BlockLayout {
    /// The layout for `net` on `params`: one layer, no gates, at most 8 classes and a hidden
    /// width whose 64 Hp positions fit a copy.
    pub fn new(params: &Params, net: &EquivariantNet) -> Result<Self, EvalError> {
        let layer = single_layer(net)?;
        let hidden = layer.linear.outputs;
        let hidden_padded = hidden.next_power_of_two();
        let slots = params.max_slots();
        let positions = 64 * hidden_padded;
        if net.readout.bias.len() > 8 {
            return Err(EvalError::Invalid("the block layout holds at most 8 classes (one per copy)"));
        }
        if hidden == 0 || positions > slots / 8 {
            return Err(EvalError::Invalid("the hidden width does not fit the block layout on this preset"));
        }
        Ok(Self {
            slots,
            hidden,
            hidden_padded,
            lanes: slots / positions,
        })
    }

    /// Patients one block ciphertext holds.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.lanes
    }

    /// Slots of a copy; class c's scores start at slot c times this.
    #[must_use]
    pub fn copy_len(&self) -> usize {
        self.slots / 8
    }

    /// Where the released scores sit: class c of patient p in slot c * S/8 + p.
    #[must_use]
    pub fn result_layout(&self, patients: usize, classes: usize) -> ResultLayout {
        ResultLayout::Blocked {
            groups: patients,
            classes,
            block: self.copy_len(),
        }
    }

    /// The slots sanitisation keeps (the scores of `patients`); it masks every other slot.
    #[must_use]
    pub fn used_slots(&self, patients: usize, classes: usize) -> Vec<bool> {
        let mut used = vec![false; self.slots];
        for c in 0..classes {
            for p in 0..patients.min(self.lanes) {
                used[self.slot(c, 0, 0, p)] = true;
            }
        }
        used
    }

    fn slot(&self, copy: usize, o: usize, k: usize, p: usize) -> usize {
        copy * self.copy_len() + (o * 8 + k) * self.lanes + p
    }

    fn copy_steps(&self) -> [i64; 3] {
        let c = self.copy_len() as i64;
        [c, 2 * c, 4 * c]
    }

    fn position_steps(&self) -> Vec<i64> {
        let positions = 8 * self.hidden_padded;
        (0..positions.trailing_zeros()).map(|j| (self.lanes << j) as i64).collect()
    }

    /// The rotations an evaluation needs (the Galois keys the hospital registers).
    #[must_use]
    pub fn rotation_steps(&self) -> Vec<i64> {
        let mut s = self.copy_steps().to_vec();
        s.extend(self.position_steps());
        s
    }
}

fn single_layer(net: &EquivariantNet) -> Result<&CliffordLayer, EvalError> {
    match net.layers.as_slice() {
        [layer] if layer.gate.iter().all(|g| g[0] == 0.0 && g[1] == 0.0) => Ok(layer),
        [_] => Err(EvalError::Invalid("the block layout evaluates no gates")),
        _ => Err(EvalError::Invalid("the block layout evaluates one layer")),
    }
}

/// For output blade k and left blade i: the right blade j with e_i e_j = s e_k, and s.
fn partner(i: usize, k: usize) -> (usize, f64) {
    GP_TABLE[i]
        .iter()
        .enumerate()
        .find(|(_, &(r, _))| r as usize == k)
        .map_or((0, 0.0), |(j, &(_, s))| (j, f64::from(s)))
}

/// The hospital's packing: per input channel c, the slot vectors of X_c and X'_c (module docs),
/// in that order, for up to [`BlockLayout::capacity`] patients (`channels[p][c]`, already
/// clamped into the public input domain). Wiped on drop.
pub fn pack_block_inputs(layout: &BlockLayout, channels: &[Vec<Multivector>]) -> Result<Vec<Zeroizing<Vec<f64>>>, EvalError> {
    if channels.len() > layout.lanes {
        return Err(EvalError::Invalid("more patients than a block ciphertext holds"));
    }
    let count = channels.first().map_or(0, Vec::len);
    if channels.iter().any(|x| x.len() != count) {
        return Err(EvalError::Invalid("patients with different channel counts"));
    }
    let mut out = Vec::with_capacity(2 * count);
    for c in 0..count {
        let mut x = Zeroizing::new(vec![0.0; layout.slots]);
        let mut xp = Zeroizing::new(vec![0.0; layout.slots]);
        for (p, patient) in channels.iter().enumerate() {
            let v = Zeroizing::new(patient[c].coeffs());
            for i in 0..8 {
                for o in 0..layout.hidden_padded {
                    for k in 0..8 {
                        let s = layout.slot(i, o, k, p);
                        x[s] = v[i];
                        xp[s] = v[partner(i, k).0];
                    }
                }
            }
        }
        out.push(x);
        out.push(xp);
    }
    Ok(out)
}

/// The hospital's side: packs `channels` ([`pack_block_inputs`]) and encrypts each vector
/// under `pk` at the policy's input level and scale.
pub fn encrypt_block_inputs<R: RngCore + CryptoRng>(
    ectx: &EvalContext,
    pk: &PublicKey<Vec<u64>>,
    layout: &BlockLayout,
    policy: &ScalePolicy,
    channels: &[Vec<Multivector>],
    rng: &mut R,
) -> Result<Vec<CiphertextOwned>, EvalError> {
    let params = ectx.params();
    let level = policy.level(params);
    let vectors = pack_block_inputs(layout, channels)?;
    // One generator per ciphertext, seeded from `rng`, so the encryptions run in parallel.
    let seeds: Vec<Zeroizing<[u8; 32]>> = vectors
        .iter()
        .map(|_| {
            let mut seed = Zeroizing::new([0u8; 32]);
            rng.fill_bytes(&mut *seed);
            seed
        })
        .collect();
    vectors
        .par_iter()
        .zip(&seeds)
        .map(|(v, seed)| {
            let mut r = ChaCha20Rng::from_seed(**seed);
            let pt = Plaintext::encode_real(params, v, policy.log_input_scale.exp2())?;
            Ok(encrypt_pk(params, ectx.q_tables(), pk, &pt, level, &mut r)?)
        })
        .collect()
}

/// A block ciphertext in the walk: the ciphertext (none in a dry run), level, scale and the
/// slot-wise bounds.
#[derive(Clone, Debug)]
struct Block {
    ct: Option<CiphertextOwned>,
    level: usize,
    scale: f64,
    value: Vec<f64>,
    noise: Vec<f64>,
}

/// The weight vectors' plaintexts: encoded by [`BlockConstants::new`], replayed by
/// [`evaluate`].
enum Constants<'c> {
    Dry,
    Record(Vec<PlaintextRns>),
    Replay(&'c [PlaintextRns], usize),
}

/// The plaintexts of one model under one policy (computed once per model, like the vendor's
/// other preprocessing).
#[derive(Debug)]
pub struct BlockConstants {
    plaintexts: Vec<PlaintextRns>,
    report: EquivariantReport,
}

impl BlockConstants {
    /// Encodes every weight vector of `net` at the levels and scales of its evaluation under
    /// `policy` (the dry run's report comes with them).
    pub fn new(ev: &Evaluator<'_>, net: &EquivariantNet, bounds: &InputBounds, policy: &ScalePolicy) -> Result<Self, EvalError> {
        let params = *ev.context().params();
        let mut walk = BlockWalk::new(params, net, policy, Some(ev), None, None, Constants::Record(Vec::new()))?;
        let x = walk.inputs(bounds, None)?;
        let (_, report) = walk.run(net, x)?;
        let Constants::Record(plaintexts) = walk.consts else {
            return Err(EvalError::Invalid("constants were not recorded"));
        };
        Ok(Self { plaintexts, report })
    }

    /// The dry run's report for these constants.
    #[must_use]
    pub fn report(&self) -> &EquivariantReport {
        &self.report
    }
}

struct BlockWalk<'a, 'c> {
    params: Params,
    layout: BlockLayout,
    policy: ScalePolicy,
    ev: Option<&'a Evaluator<'a>>,
    rlk: Option<&'a RelinearizationKey>,
    gks: Option<&'a GaloisKeys>,
    consts: Constants<'c>,
    relinearizations: usize,
    rotations: usize,
    rescales: usize,
}

impl<'a, 'c> BlockWalk<'a, 'c> {
    fn new(
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
            let at = |x: &Block| -> Result<CiphertextOwned, EvalError> {
                let ct = x.ct.as_ref().ok_or(EvalError::Invalid("missing ciphertext"))?;
                if ct.meta.level == level {
                    Ok(ct.clone())
                } else {
                    ev.drop_to_level(ct, level)
                }
            };
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
            let at = |x: &Block| -> Result<CiphertextOwned, EvalError> {
                let ct = x.ct.as_ref().ok_or(EvalError::Invalid("missing ciphertext"))?;
                if ct.meta.level == level {
                    Ok(ct.clone())
                } else {
                    ev.drop_to_level(ct, level)
                }
            };
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
                let ct = x.ct.as_ref().ok_or(EvalError::Invalid("missing ciphertext"))?;
                let ct = if ct.meta.level == level {
                    ct.clone()
                } else {
                    ev.drop_to_level(ct, level)?
                };
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
    fn inputs(&self, bounds: &InputBounds, cts: Option<Vec<CiphertextOwned>>) -> Result<Vec<Block>, EvalError> {
        if bounds.present.len() != bounds.grade_norm.len() || bounds.grade_norm.iter().flatten().any(|v| !(v.is_finite() && *v >= 0.0)) {
            return Err(EvalError::Invalid("input bounds must be finite, non-negative, one per channel"));
        }
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

    fn run(&mut self, net: &EquivariantNet, x: Vec<Block>) -> Result<(Block, EquivariantReport), EvalError> {
        let layer = single_layer(net)?;
        let channels = x.len() / 2;
        let (left, right, linear) = (&layer.left, &layer.right, &layer.linear);
        for m in [left, right, linear] {
            if m.inputs != channels + 1 || m.outputs != self.layout.hidden || m.weights.len() != m.inputs * m.outputs {
                return Err(EvalError::Invalid("channel counts do not chain"));
            }
        }
        let g = |b: usize| BLADE_GRADES[b] as usize;
        let w = |m: &super::equivariant::GradeLinear, o: usize, c: usize| m.weights[o * m.inputs + c];
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

/// The dry run of [`evaluate`]: levels, scales, slot-wise bounds and operation counts, or why
/// the model cannot run in the block layout under `policy`.
pub fn plan(params: &Params, net: &EquivariantNet, bounds: &InputBounds, policy: &ScalePolicy) -> Result<EquivariantReport, EvalError> {
    let mut walk = BlockWalk::new(*params, net, policy, None, None, None, Constants::Dry)?;
    let x = walk.inputs(bounds, None)?;
    walk.run(net, x).map(|(_, r)| r)
}

/// [`super::equivariant_encrypted::fitting_policy`] for the block layout.
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

/// Evaluates the network on block inputs (the encryptions of [`pack_block_inputs`] at the
/// policy's input level and scale, X_c then X'_c per channel) with the constants made for the
/// same model and policy: the score ciphertext (class c of patient p in slot c * S/8 + p) and
/// the report, identical to the dry run's.
#[allow(clippy::too_many_arguments)]
pub fn evaluate(
    ev: &Evaluator<'_>,
    rlk: &RelinearizationKey,
    gks: &GaloisKeys,
    net: &EquivariantNet,
    bounds: &InputBounds,
    policy: &ScalePolicy,
    constants: &BlockConstants,
    inputs: Vec<CiphertextOwned>,
) -> Result<(CiphertextOwned, EquivariantReport), EvalError> {
    let params = *ev.context().params();
    let mut walk = BlockWalk::new(
        params,
        net,
        policy,
        Some(ev),
        Some(rlk),
        Some(gks),
        Constants::Replay(&constants.plaintexts, 0),
    )?;
    let x = walk.inputs(bounds, Some(inputs))?;
    let (s, report) = walk.run(net, x)?;
    if report != constants.report {
        return Err(EvalError::Invalid("constants made for another model or policy"));
    }
    let ct = s.ct.ok_or(EvalError::Invalid("missing score ciphertext"))?;
    Ok((ct, report))
}
