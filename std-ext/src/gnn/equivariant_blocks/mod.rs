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
//! * A = sum_c WA_c X_c (+ the constant channel), `WA_c(i, o, k) = left[o][c][grade i] s(i, k)`
//!   product[o][grade k]: the left factor with the product's signs and grade weights folded in;
//! * B = sum_c WB_c X'_c, `WB_c(i, o, k) = right[o][c][grade j(i, k)]`;
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
//!
//! # Trust
//!
//! The vendor learns nothing new: the inputs are ciphertexts, and the hospital's rotation keys
//! (3 + log2(64 Hp) of them) only move slots. What the hospital learns is bounded as on the
//! blade-major path: sanitisation masks every slot but the scores (the others hold partial
//! sums of the weights), floods them with the proven noise bound, and the release gives the
//! argmax. The bounds assume inputs inside the public domain and placed as
//! [`pack_block_inputs`] places them; a hospital encrypting other values (outside the domain,
//! or X' inconsistent with X) gets a flood sized for the domain. That is not detected here, as
//! on the blade-major and GNN paths.

mod walk;

use walk::{BlockWalk, Constants};

use super::equivariant::{CliffordLayer, EquivariantNet};
use super::equivariant_policy::{fitting_policy_for, EquivariantReport, InputBounds, ScalePolicy};
use crate::error::EvalError;
use crate::evaluator::{Evaluator, PlaintextRns};
use crate::keys::{GaloisKeys, RelinearizationKey};
use crate::privacy::ResultLayout;
use crate::EvalContext;
use clifhe_core::ciphertext::CiphertextOwned;
use clifhe_core::encrypt::{encrypt_pk_expanded, ExpandedPublicA, Plaintext};
use clifhe_core::multivector::GP_TABLE;
use clifhe_core::{Multivector, Params, PublicKey};
use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};
use rayon::prelude::*;
use zeroize::Zeroizing;

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

    /// The hospital's view of a layout, from what a profile states (the patients a ciphertext
    /// holds) without the network: enough to place inputs ([`pack_block_inputs`]) and to know
    /// the rotations, but not to evaluate (the hidden width is taken as its padded value).
    ///
    /// # Errors
    ///
    /// [`EvalError::Invalid`] unless `capacity` is a power of two with 64 * capacity dividing
    /// the slots and a copy holding 64 Hp positions.
    pub fn for_capacity(params: &Params, capacity: usize) -> Result<Self, EvalError> {
        let slots = params.max_slots();
        if capacity == 0 || !capacity.is_power_of_two() || capacity.saturating_mul(64) > slots {
            return Err(EvalError::Invalid("no block layout holds that many patients on this preset"));
        }
        // S = 64 Hp lanes (module docs), and the 64 Hp positions must fit a copy of S/8 slots.
        let hidden_padded = slots / (64 * capacity);
        if 64 * hidden_padded > slots / 8 {
            return Err(EvalError::Invalid("no block layout holds that many patients on this preset"));
        }
        Ok(Self {
            slots,
            hidden: hidden_padded,
            hidden_padded,
            lanes: capacity,
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
    let coeffs: Zeroizing<Vec<Vec<[f64; 8]>>> =
        Zeroizing::new(channels.iter().map(|x| x.iter().map(Multivector::coeffs).collect()).collect());
    pack_block_coefficients(layout, &coeffs)
}

/// [`pack_block_inputs`] on the channels' coefficient arrays (`channels[p][c]`, blades in
/// basis order), which a caller can wipe.
pub fn pack_block_coefficients(layout: &BlockLayout, channels: &[Vec<[f64; 8]>]) -> Result<Vec<Zeroizing<Vec<f64>>>, EvalError> {
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
            let v = &patient[c];
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
    // One expansion of the key's `a` for all of them.
    let a = ExpandedPublicA::new(params, ectx.q_tables(), pk, level)?;
    vectors
        .par_iter()
        .zip(&seeds)
        .map(|(v, seed)| {
            let mut r = ChaCha20Rng::from_seed(**seed);
            let pt = Plaintext::encode_real(params, v, policy.log_input_scale.exp2())?;
            Ok(encrypt_pk_expanded(params, ectx.q_tables(), pk, &a, &pt, level, &mut r)?)
        })
        .collect()
}

/// The plaintexts of one model under one policy (computed once per model, like the vendor's
/// other preprocessing).
#[derive(Debug)]
pub struct BlockConstants {
    plaintexts: Vec<PlaintextRns>,
    policy: ScalePolicy,
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
        Ok(Self {
            plaintexts,
            policy: *policy,
            report,
        })
    }

    /// The dry run's report for these constants.
    #[must_use]
    pub fn report(&self) -> &EquivariantReport {
        &self.report
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
    if constants.policy != *policy {
        return Err(EvalError::Invalid("constants made for another model or policy"));
    }
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
