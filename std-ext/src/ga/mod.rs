//! Encrypted multivector batches (DESIGN section 6) and their geometric products.
//!
//! Two layouts:
//! - **Interleaved**: one ciphertext, patient p's blade k in slot 8p + k, N/16 patients. A
//!   device that encrypts one patient fills slots 8p..8p+7, so a batch is a plain sum.
//! - **Blade-major**: 8 ciphertexts, ciphertext k holds blade k of patient p in slot p*stride
//!   (stride 1: N/2 patients; stride 8: the result of converting an interleaved batch, which
//!   keeps patient p at slot 8p and so needs no compaction).
//!
//! Depth and keys per operation (levels consumed, Galois keys needed):
//!
//! | operation | blade-major | interleaved |
//! |---|---|---|
//! | GP with a plaintext multivector (w x or x w) | 1, none (64 scalar mul-adds, 8 rescales) | 1, rotations -7..7 (hoisted, 15 diagonals) |
//! | GP of two encrypted batches | 1, none (64 tensors, 8 lazy relinearizations) | 2, rotations 1..7 (through blade-major stride 8) |
//! | reverse, grade involution | 0 (negations) | 1 (a +-1 diagonal) |
//! | grade projection, scalar part | 0 (select ciphertexts) | 1 (mask) |
//! | squared norm | 1 (8 tensors, 1 relinearization) | 2 (through blade-major) |
//! | interleaved -> blade-major (stride 8) | 1 (8 masks), rotations 1..7 | |
//! | blade-major (stride 8) -> interleaved | 0, rotations -1..-7 | |

use crate::error::EvalError;
use crate::evaluator::{Ciphertext3, Evaluator};
use crate::keys::{GaloisKeys, RelinearizationKey};
use crate::EvalContext;
use clifhe_core::ciphertext::CiphertextOwned;
use clifhe_core::encode::Complex;
use clifhe_core::encrypt::{encrypt_pk, Plaintext};
use clifhe_core::multivector::{left_mul_matrix, right_mul_matrix, Multivector, BLADE_GRADES, GP_TABLE};
use clifhe_core::{PublicKey, SecretKey};
use rand_core::{CryptoRng, RngCore};
use rayon::prelude::*;

/// Packing of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    Interleaved,
    /// Blade k in ciphertext k, patient p at slot p * stride.
    BladeMajor {
        stride: usize,
    },
}

/// A batch of encrypted Cl(3,0) multivectors, one per patient.
#[derive(Clone, Debug)]
pub struct EncryptedMultivectorBatch {
    layout: Layout,
    cts: Vec<CiphertextOwned>,
    patients: usize,
}

/// Rotation steps an interleaved plaintext GP needs (also what conversions need).
pub fn interleaved_rotation_steps() -> Vec<i64> {
    (-7..=7).filter(|&r| r != 0).collect()
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
    pub fn level(&self) -> usize {
        self.cts.first().map_or(0, |c| c.meta.level)
    }

    /// Wraps ciphertexts (1 for interleaved, 8 for blade-major) holding `patients` patients.
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
        if cts
            .iter()
            .any(|c| c.meta.log_slots != slots_log || c.meta.params_id != ectx.params().id())
        {
            return Err(EvalError::Invalid("batch ciphertexts must be full-slot and of this parameter set"));
        }
        Ok(Self { layout, cts, patients })
    }

    /// Slot values of the layout for `xs` (host-side packing).
    fn pack(ectx: &EvalContext, layout: Layout, xs: &[Multivector]) -> Vec<Vec<f64>> {
        let slots = ectx.params().max_slots();
        match layout {
            Layout::Interleaved => {
                let mut v = vec![0.0; slots];
                for (p, x) in xs.iter().enumerate() {
                    v[8 * p..8 * p + 8].copy_from_slice(&x.coeffs());
                }
                vec![v]
            }
            Layout::BladeMajor { stride } => (0..8)
                .map(|k| {
                    let mut v = vec![0.0; slots];
                    for (p, x) in xs.iter().enumerate() {
                        v[p * stride] = x.coeffs()[k];
                    }
                    v
                })
                .collect(),
        }
    }

    /// Packs, encodes and encrypts `xs` under `pk` at the top level.
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
        let params = *ectx.params();
        let cts = Self::pack(ectx, layout, xs)
            .iter()
            .map(|v| {
                let pt = Plaintext::encode_real(&params, v, params.default_scale())?;
                encrypt_pk(&params, ectx.q_tables(), pk, &pt, params.max_level(), rng)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_ciphertexts(ectx, layout, cts, xs.len())
    }

    /// Hospital side: decrypts the patients' multivectors (local use only).
    pub fn decrypt<K: AsRef<[i8]> + AsMut<[i8]>>(&self, ectx: &EvalContext, sk: &SecretKey<K>) -> Result<Vec<Multivector>, EvalError> {
        let slots: Vec<Vec<f64>> = self
            .cts
            .iter()
            .map(|c| clifhe_core::decrypt::decrypt(ectx.core(), sk, c).and_then(|d| d.decode_real()))
            .collect::<Result<_, _>>()?;
        Ok((0..self.patients)
            .map(|p| {
                let mut c = [0.0; 8];
                for (k, v) in c.iter_mut().enumerate() {
                    *v = match self.layout {
                        Layout::Interleaved => slots[0][8 * p + k],
                        Layout::BladeMajor { stride } => slots[k][p * stride],
                    };
                }
                Multivector::new(c)
            })
            .collect())
    }

    /// Sums single-patient interleaved ciphertexts (each with its patient in slots 8p..8p+7 and
    /// zeros elsewhere, as the gateway assigns) into one batch: additions only, no keys.
    pub fn merge_interleaved(ectx: &EvalContext, parts: &[CiphertextOwned], patients: usize) -> Result<Self, EvalError> {
        let ev = Evaluator::new(ectx);
        let mut acc = parts.first().cloned().ok_or(EvalError::Invalid("nothing to merge"))?;
        for p in &parts[1..] {
            ev.add_assign(&mut acc, p)?;
        }
        Self::from_ciphertexts(ectx, Layout::Interleaved, vec![acc], patients)
    }

    fn top_scale(ev: &Evaluator<'_>, level: usize) -> Result<f64, EvalError> {
        if level == 0 {
            return Err(EvalError::OutOfLevels);
        }
        Ok(ev.context().params().q()[level] as f64)
    }

    /// An 8x8 map applied blade-wise: y_k = sum_b m[k][b] x_b (1 level).
    pub fn apply_matrix(&self, ev: &Evaluator<'_>, m: &[[f64; 8]; 8], gks: Option<&GaloisKeys>) -> Result<Self, EvalError> {
        let ql = Self::top_scale(ev, self.level())?;
        let cts = match self.layout {
            Layout::BladeMajor { .. } => {
                let refs: Vec<&CiphertextOwned> = self.cts.iter().collect();
                (0..8)
                    .into_par_iter()
                    .map(|k| ev.rescale(&ev.linear_combination(&refs, &m[k], ql)?))
                    .collect::<Result<Vec<_>, _>>()?
            }
            Layout::Interleaved => {
                // y = sum_r diag_r o rot(x, r), diag_r[8p + k] = m[k][k + r]; only the shifts
                // with a nonzero diagonal are rotated (a diagonal map needs no keys at all).
                let used: Vec<i64> = (-7i64..=7)
                    .filter(|&r| (0..8i64).any(|k| (0..8).contains(&(k + r)) && m[k as usize][(k + r) as usize] != 0.0))
                    .collect();
                let steps: Vec<i64> = used.iter().copied().filter(|&r| r != 0).collect();
                let x = &self.cts[0];
                let rotated = if steps.is_empty() {
                    Vec::new()
                } else {
                    let gks = gks.ok_or(EvalError::Invalid("interleaved products need Galois keys for rotations -7..7"))?;
                    ev.rotate_hoisted(x, &steps, gks)?
                };
                let slots = ev.context().params().max_slots();
                let level = x.meta.level;
                let mut terms: Vec<CiphertextOwned> = Vec::with_capacity(15);
                let zero_shift = used.contains(&0).then_some((0i64, x));
                for (r, ct) in zero_shift.into_iter().chain(steps.iter().copied().zip(rotated.iter())) {
                    let mut diag = vec![Complex::default(); slots];
                    for (s, d) in diag.iter_mut().enumerate() {
                        let k = (s % 8) as i64;
                        let b = k + r;
                        if (0..8).contains(&b) && s / 8 < self.patients.max(1) {
                            *d = Complex::from_real(m[k as usize][b as usize]);
                        }
                    }
                    let pt = ev.encode(&diag, level, ql)?;
                    terms.push(ev.mul_plain(ct, &pt)?);
                }
                let mut acc = terms.pop().ok_or(EvalError::Invalid("zero map"))?;
                for t in &terms {
                    ev.add_assign(&mut acc, t)?;
                }
                vec![ev.rescale(&acc)?]
            }
        };
        Ok(Self {
            layout: self.layout,
            cts,
            patients: self.patients,
        })
    }

    /// w * x for every patient x (1 level).
    pub fn gp_left_plain(&self, ev: &Evaluator<'_>, w: &Multivector, gks: Option<&GaloisKeys>) -> Result<Self, EvalError> {
        self.apply_matrix(ev, &left_mul_matrix(w), gks)
    }

    /// x * w for every patient x (1 level).
    pub fn gp_right_plain(&self, ev: &Evaluator<'_>, w: &Multivector, gks: Option<&GaloisKeys>) -> Result<Self, EvalError> {
        self.apply_matrix(ev, &right_mul_matrix(w), gks)
    }

    /// Per-blade sign flips: reverse (grades 2, 3) or involution (grades 1, 3).
    fn signs(&self, ev: &Evaluator<'_>, negate: impl Fn(u8) -> bool, gks: Option<&GaloisKeys>) -> Result<Self, EvalError> {
        match self.layout {
            Layout::BladeMajor { .. } => {
                let cts = self
                    .cts
                    .iter()
                    .enumerate()
                    .map(|(k, c)| if negate(BLADE_GRADES[k]) { ev.neg(c) } else { Ok(c.clone()) })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Self {
                    layout: self.layout,
                    cts,
                    patients: self.patients,
                })
            }
            Layout::Interleaved => {
                let mut m = [[0.0; 8]; 8];
                for k in 0..8 {
                    m[k][k] = if negate(BLADE_GRADES[k]) { -1.0 } else { 1.0 };
                }
                self.apply_matrix(ev, &m, gks)
            }
        }
    }

    /// Reverse ~x (blade-major: 0 levels; interleaved: 1 level).
    pub fn reverse(&self, ev: &Evaluator<'_>) -> Result<Self, EvalError> {
        self.signs(ev, |g| g >= 2, None)
    }

    /// Grade-k part (blade-major: 0 levels, other blades become encryptions of zero
    /// produced by subtraction; interleaved: 1 level, a 0/1 mask).
    pub fn grade(&self, ev: &Evaluator<'_>, k: u8) -> Result<Self, EvalError> {
        match self.layout {
            Layout::BladeMajor { .. } => {
                let cts = self
                    .cts
                    .iter()
                    .enumerate()
                    .map(|(b, c)| if BLADE_GRADES[b] == k { Ok(c.clone()) } else { ev.sub(c, c) })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Self {
                    layout: self.layout,
                    cts,
                    patients: self.patients,
                })
            }
            Layout::Interleaved => {
                let mut m = [[0.0; 8]; 8];
                for b in 0..8 {
                    if BLADE_GRADES[b] == k {
                        m[b][b] = 1.0;
                    }
                }
                self.apply_matrix(ev, &m, None)
            }
        }
    }

    /// Blade-major only: the squared norm sum_k x_k^2 of every patient, one ciphertext (1 level).
    pub fn norm_squared(&self, ev: &Evaluator<'_>, rlk: &RelinearizationKey) -> Result<CiphertextOwned, EvalError> {
        if !matches!(self.layout, Layout::BladeMajor { .. }) {
            return Err(EvalError::Invalid("convert to blade-major first (to_blade_major)"));
        }
        let mut acc = ev.tensor(&self.cts[0], &self.cts[0])?;
        for c in &self.cts[1..] {
            ev.add_assign3(&mut acc, &ev.tensor(c, c)?)?;
        }
        ev.rescale(&ev.relinearize(&acc, rlk)?)
    }

    /// x * y for two encrypted batches. Blade-major: out_k = sum over e_a e_b = +-e_k of
    /// +-x_a y_b: 64 tensor products summed into 8 degree-2 ciphertexts, 8 relinearizations,
    /// 1 level. Interleaved: through blade-major with stride 8 (2 levels, rotations 1..7 and -1..-7).
    pub fn gp(&self, ev: &Evaluator<'_>, other: &Self, rlk: &RelinearizationKey, gks: Option<&GaloisKeys>) -> Result<Self, EvalError> {
        if self.layout != other.layout {
            return Err(EvalError::Invalid("both batches must have the same layout"));
        }
        if let Layout::Interleaved = self.layout {
            let gks = gks.ok_or(EvalError::Invalid("interleaved products need Galois keys"))?;
            let (a, b) = (self.to_blade_major(ev, gks)?, other.to_blade_major(ev, gks)?);
            return a.gp(ev, &b, rlk, None)?.to_interleaved(ev, gks);
        }
        let outs: Vec<CiphertextOwned> = (0..8usize)
            .into_par_iter()
            .map(|k| {
                let mut acc: Option<Ciphertext3> = None;
                for (a, row) in GP_TABLE.iter().enumerate() {
                    for (b, &(r, sign)) in row.iter().enumerate() {
                        if r as usize != k {
                            continue;
                        }
                        let y = if sign < 0 { ev.neg(&other.cts[b])? } else { other.cts[b].clone() };
                        let t = ev.tensor(&self.cts[a], &y)?;
                        match &mut acc {
                            None => acc = Some(t),
                            Some(s) => ev.add_assign3(s, &t)?,
                        }
                    }
                }
                let acc = acc.ok_or(EvalError::Invalid("empty product"))?;
                ev.rescale(&ev.relinearize(&acc, rlk)?)
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            layout: self.layout,
            cts: outs,
            patients: self.patients.min(other.patients),
        })
    }

    /// Interleaved -> blade-major with stride 8: B_k = rot(mask_k o x, k) puts blade k of patient
    /// p at slot 8p (1 level; rotations 1..7).
    pub fn to_blade_major(&self, ev: &Evaluator<'_>, gks: &GaloisKeys) -> Result<Self, EvalError> {
        if self.layout != Layout::Interleaved {
            return Ok(self.clone());
        }
        let x = &self.cts[0];
        let level = x.meta.level;
        let ql = Self::top_scale(ev, level)?;
        let slots = ev.context().params().max_slots();
        let cts = (0..8usize)
            .into_par_iter()
            .map(|k| {
                let mask: Vec<Complex> = (0..slots)
                    .map(|s| Complex::from_real(if s % 8 == k && s / 8 < self.patients { 1.0 } else { 0.0 }))
                    .collect();
                let pt = ev.encode(&mask, level, ql)?;
                let masked = ev.rescale(&ev.mul_plain(x, &pt)?)?;
                if k == 0 {
                    Ok(masked)
                } else {
                    ev.rotate(&masked, k as i64, gks)
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            layout: Layout::BladeMajor { stride: 8 },
            cts,
            patients: self.patients,
        })
    }

    /// Blade-major with stride 8 -> interleaved: x = sum_k rot(B_k, -k) (0 levels; rotations
    /// -1..-7). Requires the non-patient slots to be zero, as produced by `to_blade_major`.
    pub fn to_interleaved(&self, ev: &Evaluator<'_>, gks: &GaloisKeys) -> Result<Self, EvalError> {
        match self.layout {
            Layout::Interleaved => Ok(self.clone()),
            Layout::BladeMajor { stride: 8 } => {
                let parts = (0..8usize)
                    .into_par_iter()
                    .map(|k| {
                        if k == 0 {
                            Ok(self.cts[0].clone())
                        } else {
                            ev.rotate(&self.cts[k], -(k as i64), gks)
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let mut acc = parts[0].clone();
                for p in &parts[1..] {
                    ev.add_assign(&mut acc, p)?;
                }
                Ok(Self {
                    layout: Layout::Interleaved,
                    cts: vec![acc],
                    patients: self.patients,
                })
            }
            Layout::BladeMajor { .. } => Err(EvalError::Invalid(
                "only stride-8 blade-major batches convert to interleaved without compaction",
            )),
        }
    }
}
