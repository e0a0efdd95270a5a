//! Encrypted multivector batches (docs/architecture.md §6) and their geometric products.
//!
//! Two layouts:
//! - **Interleaved**: one ciphertext, patient p's blade k in slot 8p + k, N/16 patients. A
//!   device that encrypts one patient fills slots 8p..8p+7, so a batch is a plain sum
//!   ([`EncryptedMultivectorBatch::merge_interleaved`]), or slots 0..7 and the host rotates
//!   ([`EncryptedMultivectorBatch::merge_from_slot_zero`]).
//! - **Blade-major**: 8 ciphertexts, ciphertext k holds blade k of patient p in slot p*stride.
//!   Stride 1: N/2 patients (100% slot use; what `encrypt` and [`EncryptedMultivectorBatch::pack_blade_major`]
//!   produce). Stride 8: the cheap conversion of *one* interleaved batch
//!   ([`EncryptedMultivectorBatch::to_blade_major`]), which keeps patient p at slot 8p so no
//!   compaction (a non-rotation permutation) is needed; it holds only N/16 patients.
//!
//! Basis order [1, e1, e2, e3, e12, e13, e23, e123]. Every constant that must leave the scale
//! unchanged (matrix entries, diagonals, masks) is encoded at q_l, the prime the following
//! rescale divides out, so outputs carry exactly the input scale (evaluator policy).
//!
//! Depth and keys per operation (levels consumed; Galois keys; key switches per batch):
//!
//! | operation | blade-major | interleaved |
//! |---|---|---|
//! | GP with a plaintext multivector (`w x` or `x w`) | 1; none; 0 (64 scalar mul-adds in 8 fused passes, 8 rescales) | 1; rotations -7..7; 8 (BSGS: 6 hoisted baby + 2 giant), 15 diagonals, 1 rescale |
//! | one layer's weights on one batch (`apply_matrices`) | 1 each; none; 0 | 1 each; rotations -7..7; 14 hoisted once, then 0 per weight |
//! | GP of two encrypted batches | 1; none; 8 relinearizations (64 tensors fused into 8) | 2; rotations -7..7; 7 + 7 hoisted + 7 rotations + 8 relinearizations (through stride-8 blade-major) |
//! | reverse, grade involution | 0 (negations) | 1 (a +-1 diagonal: not an integer polynomial) |
//! | grade projection, scalar part | 0 (select ciphertexts) | 1 (0/1 mask) |
//! | squared norm | 1; none; 1 relinearization (8 tensors fused) | 1; rotations 1, 2, 4; 1 relinearization + 3 rotations |
//! | interleaved -> blade-major stride 8 | 1 (1 mask); rotations 1..7 hoisted | |
//! | blade-major stride 8 -> interleaved | 0; rotations -1..-7 | |
//! | 8 interleaved -> 1 blade-major stride 1 (`pack_blade_major`) | 1 (8 masks); rotations -7..7; 56 in 8 hoisted groups | |
//! | blade-major stride 1 -> 8 interleaved (`unpack_interleaved`) | 1 (8 masks); rotations -7..7; 56 in 8 hoisted groups | |
//! | merge device ciphertexts (slots 8p..8p+7) | | 0; none (additions) |
//! | merge device ciphertexts (slots 0..7) | | 0; rotations -8*2^j ([`merge_rotation_steps`]); P-1 rotations |
//!
//! Why the interleaved encrypted product goes through blade-major: a direct in-block product
//! needs, for each of the 8 blades a, a broadcast of x_a over its block (mask + 7 rotations)
//! and a signed permutation of y (diagonals on 14 hoisted rotations): 70 rotations and also
//! 2 levels. Converting both operands (2 x 7 hoisted rotations), the fused blade-major product
//! (8 relinearizations) and the conversion back (7 rotations) is 29 key switches for the same
//! 2 levels.

mod kernels;

pub(crate) use kernels::signed_tensor_sum;

use crate::error::EvalError;
use crate::evaluator::{Evaluator, PlaintextRns};
use crate::keys::{GaloisKeys, RelinearizationKey};
use crate::EvalContext;
use clifhe_core::ciphertext::CiphertextOwned;
use clifhe_core::encode::Complex;
use clifhe_core::encrypt::{encrypt_pk_expanded, ExpandedPublicA, Plaintext};
use clifhe_core::multivector::{left_mul_matrix, right_mul_matrix, Multivector, BLADE_GRADES, GP_TABLE};
use clifhe_core::{PublicKey, SecretKey};
use rand_core::{CryptoRng, RngCore};
use rayon::prelude::*;

/// Packing of a batch (docs/architecture.md §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// One ciphertext, patient p's blade k in slot 8p + k.
    Interleaved,
    /// Blade k in ciphertext k, patient p at slot p * stride (stride 1 or 8).
    BladeMajor { stride: usize },
}

/// A batch of encrypted Cl(3,0) multivectors, one per patient.
#[derive(Clone, Debug)]
pub struct EncryptedMultivectorBatch {
    layout: Layout,
    cts: Vec<CiphertextOwned>,
    patients: usize,
}

/// Rotation steps the interleaved operations need: plaintext GP (-7..7), conversions and the
/// interleaved squared norm (1, 2, 4 are among them). Generate them with
/// `GaloisKeys::for_rotations(&ectx, &sk, &interleaved_rotation_steps(), false, rng)`.
pub fn interleaved_rotation_steps() -> Vec<i64> {
    (-7..=7).filter(|&r| r != 0).collect()
}

/// Rotation steps [`EncryptedMultivectorBatch::merge_from_slot_zero`] needs for `patients`
/// single-patient ciphertexts: -8 * 2^j for 2^j < patients (log2 keys, not one per patient).
pub fn merge_rotation_steps(patients: usize) -> Vec<i64> {
    let mut steps = Vec::new();
    let mut h = 1usize;
    while h < patients {
        steps.push(-8 * h as i64);
        h *= 2;
    }
    steps
}

/// The 15 rotations rot(x, r), r in -7..7, of one interleaved batch, computed once with one
/// shared decomposition (hoisting) and reused by every weight of a layer
/// ([`EncryptedMultivectorBatch::apply_matrices`]).
#[derive(Clone, Debug)]
pub struct InterleavedRotations {
    /// (r, rot(x, r)) for r in -7..7 (r = 0 is x itself).
    rots: Vec<(i64, CiphertextOwned)>,
}

/// The scale-preserving prime of a level: constants encoded at q_l come out of the next
/// rescale at exactly the input scale.
fn top_scale(ev: &Evaluator<'_>, level: usize) -> Result<f64, EvalError> {
    if level == 0 {
        return Err(EvalError::OutOfLevels);
    }
    ev.context()
        .params()
        .q()
        .get(level)
        .map(|&q| q as f64)
        .ok_or(EvalError::OutOfLevels)
}

/// A real slot vector `f(slot)` encoded at `level` and q_l.
fn encode_slots(ev: &Evaluator<'_>, level: usize, f: impl Fn(usize) -> f64) -> Result<PlaintextRns, EvalError> {
    let slots = ev.context().params().max_slots();
    let v: Vec<Complex> = (0..slots).map(|s| Complex::from_real(f(s))).collect();
    ev.encode(&v, level, top_scale(ev, level)?)
}

/// Whether the block-diagonal map `m` has a nonzero diagonal at shift r (interleaved layout).
fn shift_used(m: &[[f64; 8]; 8], r: i64) -> bool {
    (0..8i64).any(|k| (0..8).contains(&(k + r)) && m[k as usize][(k + r) as usize] != 0.0)
}

/// diag_r at slot s = 8p + k: m[k][k + r] for the batch's patients, 0 elsewhere (so slots
/// outside the batch stay empty whatever a rotation brings into them).
fn diagonal_entry(m: &[[f64; 8]; 8], patients: usize, r: i64, s: usize) -> f64 {
    let (p, k) = (s / 8, (s % 8) as i64);
    let b = k + r;
    if p < patients && (0..8).contains(&b) {
        m[k as usize][b as usize]
    } else {
        0.0
    }
}

/// The one host-side slot packing of multivectors (hospital encryption, the demo, tests): the
/// slot vectors of `layout` for `xs`, patient i of `xs` in patient slot `first + i`; empty slots
/// hold 0. Interleaved: one vector, patient p's blade k in slot 8p + k. Blade-major: 8 vectors,
/// blade k of patient p at slot p * stride of vector k. The vectors hold patient data and are
/// wiped on drop.
pub fn pack(slots: usize, layout: Layout, first: usize, xs: &[[f64; 8]]) -> Result<Vec<zeroize::Zeroizing<Vec<f64>>>, EvalError> {
    let capacity = match layout {
        Layout::Interleaved => slots / 8,
        Layout::BladeMajor { stride } => slots / stride.max(1),
    };
    if first > capacity || xs.len() > capacity - first {
        return Err(EvalError::Invalid("more patients than one batch holds"));
    }
    Ok(match layout {
        Layout::Interleaved => {
            let mut v = zeroize::Zeroizing::new(vec![0.0; slots]);
            for (block, x) in v.chunks_exact_mut(8).skip(first).zip(xs) {
                block.copy_from_slice(x);
            }
            vec![v]
        }
        Layout::BladeMajor { stride } => (0..8)
            .map(|k| {
                let mut v = zeroize::Zeroizing::new(vec![0.0; slots]);
                for (s, x) in v.iter_mut().step_by(stride.max(1)).skip(first).zip(xs) {
                    *s = x[k];
                }
                v
            })
            .collect(),
    })
}

impl EncryptedMultivectorBatch {
    /// Patients one batch holds in a layout.
    pub fn capacity(ectx: &EvalContext, layout: Layout) -> usize {
        let slots = ectx.params().max_slots();
        match layout {
            Layout::Interleaved => slots / 8,
            Layout::BladeMajor { stride } => slots / stride.max(1),
        }
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }
    pub fn patients(&self) -> usize {
        self.patients
    }
    pub fn ciphertexts(&self) -> &[CiphertextOwned] {
        &self.cts
    }
    pub fn into_ciphertexts(self) -> Vec<CiphertextOwned> {
        self.cts
    }
    pub fn level(&self) -> usize {
        self.cts.first().map_or(0, |c| c.meta.level)
    }
    pub fn scale(&self) -> f64 {
        self.cts.first().map_or(0.0, |c| c.meta.scale)
    }

    fn with(&self, layout: Layout, cts: Vec<CiphertextOwned>) -> Self {
        Self {
            layout,
            cts,
            patients: self.patients,
        }
    }

    /// Wraps ciphertexts (1 for interleaved, 8 for blade-major) holding `patients` patients.
    /// All must be full-slot ciphertexts of this parameter set at one level and scale.
    pub fn from_ciphertexts(ectx: &EvalContext, layout: Layout, cts: Vec<CiphertextOwned>, patients: usize) -> Result<Self, EvalError> {
        let want = match layout {
            Layout::Interleaved => 1,
            Layout::BladeMajor { stride } if stride == 1 || stride == 8 => 8,
            Layout::BladeMajor { .. } => return Err(EvalError::Invalid("blade-major stride must be 1 or 8")),
        };
        if cts.len() != want {
            return Err(EvalError::Invalid("wrong number of ciphertexts for the layout"));
        }
        if patients > Self::capacity(ectx, layout) {
            return Err(EvalError::Invalid("more patients than the layout holds"));
        }
        let slots_log = ectx.params().log_n() - 1;
        if cts.iter().any(|c| c.meta.log_slots != slots_log) {
            return Err(EvalError::Invalid("batch ciphertexts must be full-slot"));
        }
        let meta = cts[0].meta;
        for c in &cts {
            kernels::check_like(ectx, &meta, c)?;
        }
        Ok(Self { layout, cts, patients })
    }

    /// Host-side convenience: packs, encodes and encrypts `xs` under `pk` at the top level and
    /// the default scale.
    pub fn encrypt<R: RngCore + CryptoRng>(
        ectx: &EvalContext,
        pk: &PublicKey<Vec<u64>>,
        xs: &[Multivector],
        layout: Layout,
        rng: &mut R,
    ) -> Result<Self, EvalError> {
        if xs.len() > Self::capacity(ectx, layout) {
            return Err(EvalError::Invalid("more patients than one batch holds"));
        }
        if matches!(layout, Layout::BladeMajor { stride } if stride != 1 && stride != 8) {
            return Err(EvalError::Invalid("blade-major stride must be 1 or 8"));
        }
        let params = *ectx.params();
        let coeffs: Vec<[f64; 8]> = xs.iter().map(Multivector::coeffs).collect();
        // One expansion of the key's `a` for the batch's ciphertexts.
        let a = ExpandedPublicA::new(&params, ectx.q_tables(), pk, params.max_level())?;
        let cts = pack(params.max_slots(), layout, 0, &coeffs)?
            .iter()
            .map(|v| {
                let pt = Plaintext::encode_real(&params, v, params.default_scale())?;
                encrypt_pk_expanded(&params, ectx.q_tables(), pk, &a, &pt, params.max_level(), rng)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_ciphertexts(ectx, layout, cts, xs.len())
    }

    /// Hospital side: decrypts every patient's multivector (raw decryption: local use only,
    /// never released; docs/architecture.md §8).
    pub fn decrypt<K: AsRef<[i8]> + AsMut<[i8]>>(&self, ectx: &EvalContext, sk: &SecretKey<K>) -> Result<Vec<Multivector>, EvalError> {
        self.decrypt_multivectors(ectx, sk, self.patients)
    }

    /// Hospital side: decrypts the first `count` patients (at most `patients()`).
    pub fn decrypt_multivectors<K: AsRef<[i8]> + AsMut<[i8]>>(
        &self,
        ectx: &EvalContext,
        sk: &SecretKey<K>,
        count: usize,
    ) -> Result<Vec<Multivector>, EvalError> {
        if count > self.patients {
            return Err(EvalError::Invalid("more patients requested than the batch holds"));
        }
        let slots: Vec<Vec<f64>> = self
            .cts
            .iter()
            .map(|c| clifhe_core::decrypt::decrypt(ectx.core(), sk, c).and_then(|d| d.decode_real()))
            .collect::<Result<_, _>>()?;
        let at = |k: usize, p: usize| -> Result<f64, EvalError> {
            let (ct, s) = match self.layout {
                Layout::Interleaved => (0, 8 * p + k),
                Layout::BladeMajor { stride } => (k, p * stride),
            };
            slots
                .get(ct)
                .and_then(|v| v.get(s))
                .copied()
                .ok_or(EvalError::Invalid("patient outside the slots"))
        };
        (0..count)
            .map(|p| {
                let mut c = [0.0; 8];
                for (k, v) in c.iter_mut().enumerate() {
                    *v = at(k, p)?;
                }
                Ok(Multivector::new(c))
            })
            .collect()
    }

    /// Sums single-patient interleaved ciphertexts, each holding its patient in slots
    /// 8p..8p+7 (p assigned by the gateway) and zeros elsewhere, into one batch: additions only,
    /// no keys, no level. `patients` is the number of blocks the batch covers (max p + 1).
    pub fn merge_interleaved(ectx: &EvalContext, parts: &[CiphertextOwned], patients: usize) -> Result<Self, EvalError> {
        let ev = Evaluator::new(ectx);
        let (first, rest) = parts.split_first().ok_or(EvalError::Invalid("nothing to merge"))?;
        let mut acc = first.clone();
        for p in rest {
            ev.add_assign(&mut acc, p)?;
        }
        Self::from_ciphertexts(ectx, Layout::Interleaved, vec![acc], patients)
    }

    /// Merges single-patient ciphertexts that all hold their patient in slots 0..7 (zeros
    /// elsewhere): part i goes to block i. A binary tree of rotations: the right half of every
    /// node moves by -8h (h a power of two), so P parts cost P-1 rotations, no level, and need
    /// only the Galois keys of [`merge_rotation_steps`]`(P)`.
    pub fn merge_from_slot_zero(ev: &Evaluator<'_>, parts: &[CiphertextOwned], gks: &GaloisKeys) -> Result<Self, EvalError> {
        fn tree(ev: &Evaluator<'_>, parts: &[CiphertextOwned], gks: &GaloisKeys) -> Result<CiphertextOwned, EvalError> {
            match parts {
                [] => Err(EvalError::Invalid("nothing to merge")),
                [one] => Ok(one.clone()),
                _ => {
                    let h = parts.len().next_power_of_two() / 2;
                    let (l, r) = parts.split_at(h);
                    let (left, right) = rayon::join(|| tree(ev, l, gks), || tree(ev, r, gks));
                    let mut left = left?;
                    ev.add_assign(&mut left, &ev.rotate(&right?, -8 * h as i64, gks)?)?;
                    Ok(left)
                }
            }
        }
        let ectx = ev.context();
        if parts.len() > Self::capacity(ectx, Layout::Interleaved) {
            return Err(EvalError::Invalid("more parts than one interleaved batch holds"));
        }
        let merged = tree(ev, parts, gks)?;
        Self::from_ciphertexts(ectx, Layout::Interleaved, vec![merged], parts.len())
    }

    // ---- plaintext (vendor-weight) products --------------------------------------------------

    /// Interleaved only: the rotations rot(x, r), r in -7..7, sharing one decomposition. Compute
    /// once per batch and pass to [`Self::apply_matrix_with`] for every weight of a layer.
    pub fn hoisted_rotations(&self, ev: &Evaluator<'_>, gks: &GaloisKeys) -> Result<InterleavedRotations, EvalError> {
        if self.layout != Layout::Interleaved {
            return Err(EvalError::Invalid("hoisted rotations are for interleaved batches"));
        }
        let steps = interleaved_rotation_steps();
        let rotated = ev.rotate_hoisted(&self.cts[0], &steps, gks)?;
        let mut rots = vec![(0, self.cts[0].clone())];
        rots.extend(steps.into_iter().zip(rotated));
        Ok(InterleavedRotations { rots })
    }

    /// Interleaved: y = sum_r diag_r o rot(x, r) with diag_r[8p + k] = m[k][k + r] for the
    /// batch's patients (0 elsewhere, so unused slots stay empty) on precomputed rotations:
    /// one fused plaintext multiply-accumulate and one rescale (1 level).
    pub fn apply_matrix_with(&self, ev: &Evaluator<'_>, m: &[[f64; 8]; 8], rots: &InterleavedRotations) -> Result<Self, EvalError> {
        if self.layout != Layout::Interleaved {
            return Err(EvalError::Invalid("precomputed rotations are for interleaved batches"));
        }
        let level = self.level();
        let patients = self.patients;
        let used: Vec<&(i64, CiphertextOwned)> = rots.rots.iter().filter(|(r, _)| shift_used(m, *r)).collect();
        if used.is_empty() {
            return Err(EvalError::Invalid("zero map"));
        }
        if used.iter().any(|(_, c)| c.meta.level != level) {
            return Err(EvalError::Invalid("rotations belong to another level of the batch"));
        }
        let pts = used
            .par_iter()
            .map(|(r, _)| encode_slots(ev, level, |s| diagonal_entry(m, patients, *r, s)))
            .collect::<Result<Vec<_>, _>>()?;
        let cts: Vec<&CiphertextOwned> = used.iter().map(|(_, c)| c).collect();
        let pts: Vec<&PlaintextRns> = pts.iter().collect();
        let acc = kernels::plain_mul_sum(ev.context(), &cts, &pts)?;
        Ok(self.with(Layout::Interleaved, vec![ev.rescale(&acc)?]))
    }

    /// An 8x8 map applied blade-wise to every patient: `y_k = sum_b m[k][b] x_b` (1 level).
    /// Blade-major: 8 fused linear combinations (constants at q_l, 128-bit sums), 8 rescales,
    /// no keys. Interleaved: hoisted rotations (only the shifts with a nonzero diagonal; keys
    /// for -7..7) and one fused diagonal sum.
    pub fn apply_matrix(&self, ev: &Evaluator<'_>, m: &[[f64; 8]; 8], gks: Option<&GaloisKeys>) -> Result<Self, EvalError> {
        match self.layout {
            Layout::BladeMajor { .. } => {
                let ql = top_scale(ev, self.level())?;
                let refs: Vec<&CiphertextOwned> = self.cts.iter().collect();
                let cts = m
                    .par_iter()
                    .map(|row| ev.rescale_owned(ev.linear_combination(&refs, row, ql)?))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(self.with(self.layout, cts))
            }
            Layout::Interleaved => {
                // Baby-step giant-step over the shifts r = g + b, g in {-4, 0, 4}, b in -3..3:
                // y = sum_g rot(sum_b rot(diag_{g+b}, -g) o rot(x, b), g). The period-8
                // diagonals are rotated on the host (free), so 6 hoisted baby rotations and 2
                // giant rotations (8 key switches) replace 14; the giant rotations act before the
                // rescale, so their key-switching noise is divided by q_l. Same keys (-7..7).
                let x = &self.cts[0];
                let level = x.meta.level;
                let (patients, slots) = (self.patients, ev.context().params().max_slots());
                let used: Vec<i64> = (-7i64..=7).filter(|&r| shift_used(m, r)).collect();
                if used.is_empty() {
                    return Err(EvalError::Invalid("zero map"));
                }
                let giant = |r: i64| (r / 4).signum() * 4;
                let mut babies: Vec<i64> = used.iter().map(|&r| r - giant(r)).filter(|&b| b != 0).collect();
                babies.sort_unstable();
                babies.dedup();
                let mut rots = vec![(0i64, x.clone())];
                if !babies.is_empty() {
                    let gks = gks.ok_or(EvalError::Invalid("interleaved products need Galois keys for rotations -7..7"))?;
                    rots.extend(babies.iter().copied().zip(ev.rotate_hoisted(x, &babies, gks)?));
                }
                let groups = [-4i64, 0, 4]
                    .par_iter()
                    .filter(|&&g| used.iter().any(|&r| giant(r) == g))
                    .map(|&g| {
                        let terms: Vec<i64> = used.iter().copied().filter(|&r| giant(r) == g).collect();
                        let pts = terms
                            .iter()
                            .map(|&r| {
                                encode_slots(ev, level, |t| {
                                    let s = (t as i64 - g).rem_euclid(slots as i64) as usize;
                                    diagonal_entry(m, patients, r, s)
                                })
                            })
                            .collect::<Result<Vec<_>, _>>()?;
                        let cts = terms
                            .iter()
                            .map(|&r| {
                                rots.iter()
                                    .find(|(b, _)| *b == r - g)
                                    .map(|(_, c)| c)
                                    .ok_or(EvalError::Invalid("missing baby-step rotation"))
                            })
                            .collect::<Result<Vec<_>, _>>()?;
                        let inner = kernels::plain_mul_sum(ev.context(), &cts, &pts.iter().collect::<Vec<_>>())?;
                        if g == 0 {
                            Ok(inner)
                        } else {
                            let gks = gks.ok_or(EvalError::Invalid("interleaved products need Galois keys for rotations -7..7"))?;
                            ev.rotate(&inner, g, gks)
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let (first, rest) = groups.split_first().ok_or(EvalError::Invalid("zero map"))?;
                let mut acc = first.clone();
                for t in rest {
                    ev.add_assign(&mut acc, t)?;
                }
                Ok(self.with(Layout::Interleaved, vec![ev.rescale(&acc)?]))
            }
        }
    }

    /// Several maps on one batch (one layer's weights): interleaved batches rotate once.
    pub fn apply_matrices(&self, ev: &Evaluator<'_>, ms: &[[[f64; 8]; 8]], gks: Option<&GaloisKeys>) -> Result<Vec<Self>, EvalError> {
        match self.layout {
            Layout::BladeMajor { .. } => ms.iter().map(|m| self.apply_matrix(ev, m, None)).collect(),
            Layout::Interleaved => {
                let gks = gks.ok_or(EvalError::Invalid("interleaved products need Galois keys for rotations -7..7"))?;
                let rots = self.hoisted_rotations(ev, gks)?;
                ms.iter().map(|m| self.apply_matrix_with(ev, m, &rots)).collect()
            }
        }
    }

    /// w x for every patient x (1 level; keys: interleaved -7..7, blade-major none).
    pub fn gp_left_plain(&self, ev: &Evaluator<'_>, w: &Multivector, gks: Option<&GaloisKeys>) -> Result<Self, EvalError> {
        self.apply_matrix(ev, &left_mul_matrix(w), gks)
    }

    /// x w for every patient x (1 level; keys: interleaved -7..7, blade-major none).
    pub fn gp_right_plain(&self, ev: &Evaluator<'_>, w: &Multivector, gks: Option<&GaloisKeys>) -> Result<Self, EvalError> {
        self.apply_matrix(ev, &right_mul_matrix(w), gks)
    }

    // ---- sign flips and projections ------------------------------------------------------------

    /// Per-blade sign flips. Blade-major: negations (0 levels). Interleaved: a +-1 diagonal at
    /// q_l (1 level, no keys): a slot pattern of period 8 is no integer polynomial, so no
    /// level-free integer multiply exists for it.
    fn signs(&self, ev: &Evaluator<'_>, negate: impl Fn(u8) -> bool) -> Result<Self, EvalError> {
        match self.layout {
            Layout::BladeMajor { .. } => {
                let cts = self
                    .cts
                    .iter()
                    .enumerate()
                    .map(|(k, c)| if negate(BLADE_GRADES[k]) { ev.neg(c) } else { Ok(c.clone()) })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(self.with(self.layout, cts))
            }
            Layout::Interleaved => {
                let mut m = [[0.0; 8]; 8];
                for (k, row) in m.iter_mut().enumerate() {
                    row[k] = if negate(BLADE_GRADES[k]) { -1.0 } else { 1.0 };
                }
                self.apply_matrix(ev, &m, None)
            }
        }
    }

    /// Reverse ~x: grades 2 and 3 negated (blade-major: 0 levels; interleaved: 1 level).
    pub fn reverse(&self, ev: &Evaluator<'_>) -> Result<Self, EvalError> {
        self.signs(ev, |g| g >= 2)
    }

    /// Grade involution: grades 1 and 3 negated (blade-major: 0 levels; interleaved: 1 level).
    pub fn involute(&self, ev: &Evaluator<'_>) -> Result<Self, EvalError> {
        self.signs(ev, |g| g % 2 == 1)
    }

    /// Grade-k part (blade-major: 0 levels, other blades become encryptions of zero produced by
    /// subtraction, so the batch keeps one level and scale; interleaved: 1 level, a 0/1 mask).
    pub fn grade(&self, ev: &Evaluator<'_>, k: u8) -> Result<Self, EvalError> {
        match self.layout {
            Layout::BladeMajor { .. } => {
                let cts = self
                    .cts
                    .iter()
                    .enumerate()
                    .map(|(b, c)| if BLADE_GRADES[b] == k { Ok(c.clone()) } else { ev.sub(c, c) })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(self.with(self.layout, cts))
            }
            Layout::Interleaved => {
                let mut m = [[0.0; 8]; 8];
                for (b, row) in m.iter_mut().enumerate() {
                    if BLADE_GRADES[b] == k {
                        row[b] = 1.0;
                    }
                }
                if m.iter().all(|r| r.iter().all(|&v| v == 0.0)) {
                    return Err(EvalError::Invalid("Cl(3,0) grades are 0..3"));
                }
                self.apply_matrix(ev, &m, None)
            }
        }
    }

    /// The scalar parts as one ciphertext: patient p's `<x>_0` at slot p*stride (blade-major: 0
    /// levels, ciphertext 0) or at slot 8p with zeros in the other slots (interleaved: 1 level).
    pub fn scalar_part(&self, ev: &Evaluator<'_>) -> Result<CiphertextOwned, EvalError> {
        match self.layout {
            Layout::BladeMajor { .. } => Ok(self.cts[0].clone()),
            Layout::Interleaved => {
                let level = self.level();
                let patients = self.patients;
                let mask = encode_slots(ev, level, |s| if s % 8 == 0 && s / 8 < patients { 1.0 } else { 0.0 })?;
                ev.rescale_owned(ev.mul_plain(&self.cts[0], &mask)?)
            }
        }
    }

    /// Squared norm sum_k x_k^2 of every patient as one ciphertext (1 level).
    /// Blade-major: 8 squares fused into one degree-2 ciphertext, 1 relinearization; patient p
    /// at slot p*stride. Interleaved: square, relinearize, rescale, then rotate-and-sum within
    /// blocks by 1, 2, 4 (3 rotations, no further level): patient p at slot 8p. The other slots
    /// of an interleaved result hold partial sums that straddle neighbouring patients: mask
    /// them (or use the blade-major result) before anything leaves the vendor.
    pub fn norm_squared(
        &self,
        ev: &Evaluator<'_>,
        rlk: &RelinearizationKey,
        gks: Option<&GaloisKeys>,
    ) -> Result<CiphertextOwned, EvalError> {
        match self.layout {
            Layout::BladeMajor { .. } => {
                let terms: Vec<(usize, usize, i8)> = (0..8).map(|k| (k, k, 1)).collect();
                let sq = kernels::signed_tensor_sum(ev.context(), &self.cts, &self.cts, &terms)?;
                ev.rescale_owned(ev.relinearize(&sq, rlk)?)
            }
            Layout::Interleaved => {
                let gks = gks.ok_or(EvalError::Invalid("the interleaved squared norm needs rotations 1, 2, 4"))?;
                let x = &self.cts[0];
                let mut acc = ev.rescale_owned(ev.mul_relin(x, x, rlk)?)?;
                for step in [1, 2, 4] {
                    let r = ev.rotate(&acc, step, gks)?;
                    ev.add_assign(&mut acc, &r)?;
                }
                Ok(acc)
            }
        }
    }

    // ---- encrypted x encrypted -----------------------------------------------------------------

    /// x y for two encrypted batches, patient by patient. Blade-major: out_k = sum over
    /// e_a e_b = +-e_k of +-x_a y_b: the 8 terms of each output fused into one degree-2
    /// ciphertext (64 tensor products in 8 passes), 8 relinearizations, 8 rescales: 1 level.
    /// Interleaved: both operands to stride-8 blade-major (1 level, hoisted rotations 1..7),
    /// the blade-major product (1 level), back to interleaved (rotations -1..-7): 2 levels.
    pub fn gp(&self, ev: &Evaluator<'_>, other: &Self, rlk: &RelinearizationKey, gks: Option<&GaloisKeys>) -> Result<Self, EvalError> {
        if self.layout != other.layout {
            return Err(EvalError::Invalid("both batches must have the same layout"));
        }
        if let Layout::Interleaved = self.layout {
            let gks = gks.ok_or(EvalError::Invalid("interleaved products need Galois keys for rotations -7..7"))?;
            let (a, b) = rayon::join(|| self.to_blade_major(ev, gks), || other.to_blade_major(ev, gks));
            return a?.gp(ev, &b?, rlk, None)?.to_interleaved(ev, gks);
        }
        let outs: Vec<CiphertextOwned> = (0..8u8)
            .into_par_iter()
            .map(|k| {
                let terms: Vec<(usize, usize, i8)> = GP_TABLE
                    .iter()
                    .enumerate()
                    .flat_map(|(a, row)| {
                        row.iter()
                            .enumerate()
                            .filter(move |(_, &(r, _))| r == k)
                            .map(move |(b, &(_, sign))| (a, b, sign))
                    })
                    .collect();
                let acc = kernels::signed_tensor_sum(ev.context(), &self.cts, &other.cts, &terms)?;
                ev.rescale_owned(ev.relinearize(&acc, rlk)?)
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            layout: self.layout,
            cts: outs,
            patients: self.patients.min(other.patients),
        })
    }

    // ---- layout conversions ----------------------------------------------------------------------

    /// Interleaved -> blade-major with stride 8: B_k = mask o rot(x, k), the mask keeping slots
    /// 8p of the batch's patients, puts blade k of patient p at slot 8p. Rotations 1..7 share
    /// one decomposition (hoisted); 8 plaintext multiplies and rescales: 1 level.
    pub fn to_blade_major(&self, ev: &Evaluator<'_>, gks: &GaloisKeys) -> Result<Self, EvalError> {
        if self.layout != Layout::Interleaved {
            return Ok(self.clone());
        }
        let x = &self.cts[0];
        let level = x.meta.level;
        let patients = self.patients;
        let mask = encode_slots(ev, level, |s| if s % 8 == 0 && s / 8 < patients { 1.0 } else { 0.0 })?;
        let steps: Vec<i64> = (1..8).collect();
        let mut rots = vec![x.clone()];
        rots.extend(ev.rotate_hoisted(x, &steps, gks)?);
        let cts = rots
            .par_iter()
            .map(|r| ev.rescale_owned(ev.mul_plain(r, &mask)?))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self.with(Layout::BladeMajor { stride: 8 }, cts))
    }

    /// Blade-major with stride 8 -> interleaved: x = sum_k rot(B_k, -k) (0 levels; rotations
    /// -1..-7, one per blade). Requires slots other than 8p to be zero, as `to_blade_major` and
    /// every blade-major operation on its result leave them.
    pub fn to_interleaved(&self, ev: &Evaluator<'_>, gks: &GaloisKeys) -> Result<Self, EvalError> {
        match self.layout {
            Layout::Interleaved => Ok(self.clone()),
            Layout::BladeMajor { stride: 8 } => {
                let parts = self
                    .cts
                    .par_iter()
                    .enumerate()
                    .map(|(k, c)| ev.rotate(c, -(k as i64), gks))
                    .collect::<Result<Vec<_>, _>>()?;
                let (first, rest) = parts.split_first().ok_or(EvalError::Invalid("empty batch"))?;
                let mut acc = first.clone();
                for p in rest {
                    ev.add_assign(&mut acc, p)?;
                }
                Ok(self.with(Layout::Interleaved, vec![acc]))
            }
            Layout::BladeMajor { .. } => Err(EvalError::Invalid("stride-1 blade-major batches convert with unpack_interleaved")),
        }
    }

    /// Up to 8 interleaved batches -> one full blade-major batch (stride 1, N/2 patients):
    /// batch j's patient p lands in slot 8p + j, i.e. patient index 8p + j of the result.
    /// B_k = sum_j mask_j o rot(X_j, k - j), mask_j keeping slots 8p + j: for every input one
    /// hoisted group of 7 rotations (steps -7..7), 64 masked products fused into 8 sums, 8
    /// rescales: 1 level. All inputs must share level and scale.
    pub fn pack_blade_major(ev: &Evaluator<'_>, batches: &[Self], gks: &GaloisKeys) -> Result<Self, EvalError> {
        if batches.is_empty() || batches.len() > 8 {
            return Err(EvalError::Invalid("pack 1 to 8 interleaved batches"));
        }
        if batches.iter().any(|b| b.layout != Layout::Interleaved) {
            return Err(EvalError::Invalid("pack_blade_major takes interleaved batches"));
        }
        let level = batches[0].level();
        let counts: Vec<usize> = batches.iter().map(|b| b.patients).collect();
        // rots[j][k] = rot(X_j, k - j).
        let rots = batches
            .par_iter()
            .enumerate()
            .map(|(j, b)| {
                let steps: Vec<i64> = (0..8).map(|k| k as i64 - j as i64).collect();
                ev.rotate_hoisted(&b.cts[0], &steps, gks)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let masks = (0..batches.len())
            .into_par_iter()
            .map(|j| encode_slots(ev, level, |s| if s % 8 == j && s / 8 < counts[j] { 1.0 } else { 0.0 }))
            .collect::<Result<Vec<_>, _>>()?;
        let cts = (0..8usize)
            .into_par_iter()
            .map(|k| {
                let cts: Vec<&CiphertextOwned> = rots.iter().map(|r| &r[k]).collect();
                let pts: Vec<&PlaintextRns> = masks.iter().collect();
                ev.rescale_owned(kernels::plain_mul_sum(ev.context(), &cts, &pts)?)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let patients = counts
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(j, &c)| 8 * (c - 1) + j + 1)
            .max()
            .unwrap_or(0);
        Ok(Self {
            layout: Layout::BladeMajor { stride: 1 },
            cts,
            patients,
        })
    }

    /// A full blade-major batch (stride 1) -> 8 interleaved batches, the inverse of
    /// [`Self::pack_blade_major`]: batch j holds the patients 8p + j. X_j = sum_k mask_k o
    /// rot(B_k, j - k), mask_k keeping slots 8p + k: 8 hoisted groups of 7 rotations (steps
    /// -7..7), 64 masked products fused into 8 sums, 8 rescales: 1 level. Batch j covers the
    /// indices 8p + j below `patients()`; patients no input filled decrypt as zero.
    pub fn unpack_interleaved(&self, ev: &Evaluator<'_>, gks: &GaloisKeys) -> Result<Vec<Self>, EvalError> {
        if self.layout != (Layout::BladeMajor { stride: 1 }) {
            return Err(EvalError::Invalid("unpack_interleaved takes a stride-1 blade-major batch"));
        }
        let level = self.level();
        let blocks = self.patients.div_ceil(8);
        // rots[k][j] = rot(B_k, j - k).
        let rots = self
            .cts
            .par_iter()
            .enumerate()
            .map(|(k, b)| {
                let steps: Vec<i64> = (0..8).map(|j| j as i64 - k as i64).collect();
                ev.rotate_hoisted(b, &steps, gks)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let masks = (0..8usize)
            .into_par_iter()
            .map(|k| encode_slots(ev, level, |s| if s % 8 == k && s / 8 < blocks { 1.0 } else { 0.0 }))
            .collect::<Result<Vec<_>, _>>()?;
        (0..8usize)
            .into_par_iter()
            .map(|j| {
                let cts: Vec<&CiphertextOwned> = rots.iter().map(|r| &r[j]).collect();
                let pts: Vec<&PlaintextRns> = masks.iter().collect();
                let x = ev.rescale_owned(kernels::plain_mul_sum(ev.context(), &cts, &pts)?)?;
                Ok(Self {
                    layout: Layout::Interleaved,
                    cts: vec![x],
                    patients: (self.patients + 7 - j) / 8,
                })
            })
            .collect()
    }
}
