//! CKKS bootstrapping (docs/architecture.md §9): a level-0 ciphertext back to a high level with the
//! same message, so circuits of any depth can run.
//!
//! Recipe (Lattigo-style, ModRaise first; Bossuat et al., EUROCRYPT 2021 and ACNS 2022):
//!
//! 1. [`Bootstrapper::scale_down`]: drop to level 0 and multiply by an integer so the message
//!    sits `log_message_ratio` bits below q0 (`scale ~ q0 / 2^ratio`).
//! 2. [`encapsulation::switch_to_sparse`] (optional): to an ephemeral sparse secret at q0*p0.
//! 3. [`encapsulation::mod_raise`]: to the top level; decrypts to `t = m + q0 I`, `|I| <= K`.
//! 4. [`encapsulation::switch_to_dense`]: back to the dense secret.
//! 5. [`Bootstrapper::sub_sum`] (sparse slots): the trace onto the slot subring.
//! 6. [`Bootstrapper::coeffs_to_slots`]: `V^-1` by grouped butterflies (one level per group),
//!    then the real and imaginary parts on real slots (a conjugation): two ciphertexts at full
//!    slots, one ciphertext of `2n` slots `[re, im]` for `n < N/2` sparse slots ([`RealSlots`]).
//! 7. [`Bootstrapper::eval_mod`] on each: `q0 / (2 pi) sin(2 pi t / q0) ~ m` (a polynomial
//!    fitted near the integers, then double angles: [`evalmod`]). Sparse slots run it once.
//! 8. [`Bootstrapper::slots_to_coeffs`]: `V` on `re + i im`, to the output scale.
//!
//! [`Bootstrapper::bootstrap_packed`] refreshes several sparse-slot ciphertexts with one
//! bootstrap (`packing`: monomial shifts into one message, one bootstrap, an FFT-shaped trace).
//!
//! The scale bookkeeping uses that a ciphertext with value `v` at scale `S` is the same object
//! as value `c v` at scale `S / c`: constant factors (`1/K`, `1/2`, `1/gap`, `q0 / 2 pi`) are
//! applied by changing `meta.scale`, exactly and for free. Every other constant is encoded at
//! the scale of the prime the next rescale removes, so scales stay near `2^60` in EvalMod and
//! end exactly at the reported output scale.

pub mod dft;
pub mod encapsulation;
pub mod evalmod;
pub mod linear;
mod packing;
pub mod test_double;

use crate::context::EvalContext;
use crate::error::EvalError;
use crate::evaluator::Evaluator;
use crate::keys::{conjugation_galois_element, rotation_galois_element, GaloisKeys, RelinearizationKey};
use crate::keyswitch::KeyStorage;
use clifhe_core::ciphertext::CiphertextOwned;
use clifhe_core::encode::Complex;
use clifhe_core::SecretKey;
use encapsulation::EncapsulationKeys;
pub use evalmod::EvalModFit;
use evalmod::EvalModPoly;
use linear::{BsgsPlan, LinearTransform};
use rand_core::{CryptoRng, RngCore};
use std::borrow::Cow;
use std::f64::consts::PI;

/// Bootstrapping parameters on top of a residual parameter set (Lattigo's
/// `bootstrapping.ParametersLiteral`). Every field has a documented default
/// ([`BootstrapLiteral::default`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BootstrapLiteral {
    /// log2 of the slot count to bootstrap (default: `log N - 1`, full slots).
    pub log_slots: Option<u32>,
    /// Levels (butterfly groups) of CoeffsToSlots (default 3).
    pub coeffs_to_slots_levels: usize,
    /// Levels of SlotsToCoeffs (default 3).
    pub slots_to_coeffs_levels: usize,
    /// log2(q0 / input scale) after ScaleDown. Larger means a smaller error of the sine's
    /// linearisation (`(2 pi m / q0)^2 / 6` relative, about `6.6 2^-2r / n` per slot since
    /// packed coefficients of `n` slots in [-1, 1] are about `n^-1/2`); smaller means a smaller
    /// amplification of the noise EvalMod's input carries (`K 2^r sqrt(n)` times it; with a
    /// dense secret that noise grows like `N^1.5`). Default (`None`): the balance of the two,
    /// `round(22 - (log2 N + log2 n) / 2)` (7 at N=2^16 full slots, 13 for 8 slots).
    pub log_message_ratio: Option<u32>,
    /// Bound on `|I|` after ModRaise (default 16: with weight-32 encapsulation `|I| <= 16.5`
    /// always and `> 16` is a tail of about 2^-70 per coefficient).
    pub k: f64,
    /// Degree of the EvalMod polynomial in the Chebyshev basis (default 31: 6 levels).
    pub chebyshev_degree: usize,
    /// Double-angle steps (default 3).
    pub double_angle: u32,
    /// How the polynomial is fitted (default [`EvalModFit::NearIntegers`]: degree 31 and three
    /// double angles, 9 levels and 14 ciphertext products, reach the accuracy of the degree-63
    /// interpolant with two double angles, 9 levels and 18 products, where the inputs are).
    pub eval_mod_fit: EvalModFit,
    /// Hamming weight of the ephemeral sparse secret (default `Some(32)`); `None` raises the
    /// dense secret directly, which needs `k` of several `sqrt(N / 18)`.
    pub ephemeral_hamming_weight: Option<usize>,
    /// How the Galois keys are held (default [`KeyStorage::Compact`]). At N=2^16 with 2^10
    /// slots, compact keys take 2.5 GiB and their regeneration about a tenth of each
    /// bootstrap; expanded, 5 GiB and none (BENCHMARKS.md). The relinearization key is always
    /// expanded.
    pub galois_key_storage: KeyStorage,
}

impl Default for BootstrapLiteral {
    fn default() -> Self {
        Self {
            log_slots: None,
            coeffs_to_slots_levels: 3,
            slots_to_coeffs_levels: 3,
            log_message_ratio: None,
            k: 16.0,
            chebyshev_degree: 31,
            double_angle: 3,
            eval_mod_fit: EvalModFit::NearIntegers,
            ephemeral_hamming_weight: Some(32),
            galois_key_storage: KeyStorage::Compact,
        }
    }
}

/// Smallest accepted Hamming weight of the ephemeral sparse secret. Below 32 the sparse
/// secret's entropy (log2(C(N, h) 2^h), about 2^400 at h = 32, N = 2^16, but only 2^48 at
/// h = 4) and the hybrid attacks on sparse secrets leave the encapsulated key too weak; the
/// default (32) is what Bossuat et al. 2022 analyse.
pub const MIN_EPHEMERAL_HAMMING_WEIGHT: usize = 32;

/// Refuses an ephemeral Hamming weight below [`MIN_EPHEMERAL_HAMMING_WEIGHT`] (`None`, the dense
/// secret, has no weight to check).
pub(crate) fn check_ephemeral_weight(weight: Option<usize>) -> Result<(), EvalError> {
    match weight {
        Some(w) if w < MIN_EPHEMERAL_HAMMING_WEIGHT => Err(EvalError::EphemeralWeightTooSmall {
            weight: w,
            min: MIN_EPHEMERAL_HAMMING_WEIGHT,
        }),
        _ => Ok(()),
    }
}

/// The keys a [`Bootstrapper`] needs, and only those.
#[derive(Debug)]
pub struct BootstrapKeys {
    pub relinearization: RelinearizationKey,
    pub galois: GaloisKeys,
    pub encapsulation: Option<EncapsulationKeys>,
}

/// File names inside a bootstrapping key directory (Galois keys use
/// [`crate::keys_wire::galois_key_file_name`]).
pub const RELINEARIZATION_KEY_FILE: &str = "relinearization.key";
pub const ENCAPSULATION_KEY_FILE: &str = "encapsulation.key";

impl BootstrapKeys {
    /// Writes every key seed-compressed, one file per key (each atomically: temp + rename).
    pub fn write_dir(&self, ectx: &EvalContext, dir: &std::path::Path) -> Result<(), EvalError> {
        let io = |e: std::io::Error| EvalError::Io(e.kind());
        let write = |name: &str, bytes: Vec<u8>| -> Result<(), EvalError> {
            let tmp = dir.join(format!(".{name}.tmp"));
            std::fs::write(&tmp, bytes).map_err(io)?;
            std::fs::rename(&tmp, dir.join(name)).map_err(io)
        };
        write(RELINEARIZATION_KEY_FILE, self.relinearization.to_bytes(ectx)?)?;
        if let Some(e) = &self.encapsulation {
            write(ENCAPSULATION_KEY_FILE, e.to_bytes(ectx)?)?;
        }
        self.galois.write_dir(ectx, dir).map_err(io)
    }

    /// Loads exactly the keys `bootstrapper` needs from `dir`.
    pub fn read_dir(bootstrapper: &Bootstrapper<'_>, dir: &std::path::Path) -> Result<Self, EvalError> {
        let ectx = bootstrapper.ectx;
        // Capped reads: each file can only be as large as its key (see `read_key_file`).
        let read = |name: &str, limit: usize| crate::keys_wire::read_key_file(&dir.join(name), limit);
        let relin_limit = crate::keys_wire::switching_key_file_bytes(ectx);
        let relinearization = RelinearizationKey::from_bytes(ectx, &read(RELINEARIZATION_KEY_FILE, relin_limit)?)?;
        let encapsulation = match bootstrapper.lit.ephemeral_hamming_weight {
            Some(_) => {
                let limit = crate::keys_wire::encapsulation_key_file_bytes(ectx)?;
                Some(EncapsulationKeys::from_bytes(ectx, &read(ENCAPSULATION_KEY_FILE, limit)?)?)
            }
            None => None,
        };
        let mut galois = GaloisKeys::read_dir(ectx, dir, &bootstrapper.galois_elements()?)?;
        galois.set_storage(bootstrapper.lit.galois_key_storage);
        Ok(Self {
            relinearization,
            galois,
            encapsulation,
        })
    }

    /// Bytes of the key directory [`BootstrapKeys::write_dir`] writes (seed-compressed).
    pub fn serialized_bytes(&self, ectx: &EvalContext) -> usize {
        let one = crate::keys_wire::switching_key_file_bytes(ectx);
        let enc = self
            .encapsulation
            .as_ref()
            .and_then(|_| crate::keys_wire::encapsulation_key_file_bytes(ectx).ok())
            .unwrap_or(0);
        one * (1 + self.galois.len()) + enc
    }

    /// Bytes held in memory.
    pub fn memory_bytes(&self) -> usize {
        let enc = self
            .encapsulation
            .as_ref()
            .map_or(0, |e| e.dense_to_sparse.memory_bytes() + e.sparse_to_dense.memory_bytes());
        self.relinearization.0.memory_bytes() + self.galois.memory_bytes() + enc
    }
}

/// A bootstrapping circuit for one parameter set and slot count, with its linear transforms
/// encoded.
#[derive(Debug)]
pub struct Bootstrapper<'a> {
    ectx: &'a EvalContext,
    lit: BootstrapLiteral,
    log_slots: u32,
    cts: Vec<LinearTransform>,
    stc: Vec<LinearTransform>,
    /// Sparse slots: the real and imaginary parts share one ciphertext of `2n` slots
    /// ([`RealSlots::Packed`]), so EvalMod runs once.
    packed: bool,
    eval_mod: EvalModPoly,
    /// Rotation steps of both transforms and of SubSum.
    rotations: Vec<i64>,
    /// SubSum's hoisted sums ([`sub_sum_steps`]).
    sub_sum_steps: Vec<Vec<i64>>,
    input_scale_target: f64,
    output_scale: f64,
}

/// SubSum's rotations from n slots up to `half`: x + rot(x, k) for k = n, 2n, .. doubles the
/// sum each time; two doublings at once, x + rot(x, k) + rot(x, 2k) + rot(x, 3k), are one
/// hoisted sum ([`Evaluator::rotate_sum_hoisted`]: one ModUp, three inner products and one
/// ModDown where two rotations in turn take two of each) at the cost of the key for 3k. The
/// last doubling of an odd count is alone. Three at once would need four more keys (75 MB each
/// at N = 2^16) for the same cost per doubling.
fn sub_sum_steps(n: usize, half: usize) -> Vec<Vec<i64>> {
    let mut out = Vec::new();
    let mut k = n;
    while k < half {
        if 4 * k <= half {
            out.push(vec![k as i64, 2 * k as i64, 3 * k as i64]);
            k *= 4;
        } else {
            out.push(vec![k as i64]);
            k *= 2;
        }
    }
    out
}

impl<'a> Bootstrapper<'a> {
    /// Builds the circuit: checks that the chain has the levels, encodes the transforms.
    pub fn new(ectx: &'a EvalContext, lit: BootstrapLiteral) -> Result<Self, EvalError> {
        let params = ectx.params();
        let max_slots_log = params.log_n() - 1;
        let log_slots = lit.log_slots.unwrap_or(max_slots_log);
        if log_slots > max_slots_log || log_slots == 0 {
            return Err(EvalError::Invalid("bootstrapping slot count must be 2 .. N/2"));
        }
        if params.p().is_empty() {
            return Err(EvalError::NoSpecialPrimes);
        }
        check_ephemeral_weight(lit.ephemeral_hamming_weight)?;
        let log_message_ratio = lit
            .log_message_ratio
            .unwrap_or((22.0 - f64::from(params.log_n() + log_slots) / 2.0).round().max(1.0) as u32);
        if !(lit.k >= 1.0 && lit.k.is_finite()) || lit.chebyshev_degree < 2 || log_message_ratio >= 50 {
            return Err(EvalError::Invalid("bootstrapping literal out of range"));
        }
        let eval_mod = match lit.eval_mod_fit {
            EvalModFit::ChebyshevNodes => EvalModPoly::new(lit.k, lit.chebyshev_degree, lit.double_angle),
            EvalModFit::NearIntegers => {
                // I is a sum of h + 1 roundings, each uniform in [-1/2, 1/2]: variance (h + 1) / 12
                // (h: the ephemeral weight, or about 2N/3 for the dense ternary secret)
                let h = lit.ephemeral_hamming_weight.unwrap_or(2 * params.n() / 3) as f64;
                EvalModPoly::near_integers(lit.k, lit.chebyshev_degree, lit.double_angle, ((h + 1.0) / 12.0).sqrt())
            }
        };
        let depth = lit.coeffs_to_slots_levels + eval_mod.depth() + lit.slots_to_coeffs_levels;
        let top = params.max_level();
        if depth > top {
            return Err(EvalError::OutOfLevels);
        }
        let q = |l: usize| params.q()[l] as f64;
        let n = 1usize << log_slots;
        let ev = Evaluator::new(ectx);
        let q0 = q(0);

        // CoeffsToSlots: from the ModRaised scale q0 K (times gap after SubSum) to exactly
        // q_(top - cts) / 2 (the real/imaginary split doubles it to EvalMod's first prime), in
        // equal steps.
        // Sparse slots: the transforms run on 2n slots (`dft`'s packed groups).
        let packed = log_slots < max_slots_log;
        let transform_log_slots = log_slots + u32::from(packed);
        let cts_groups = if packed {
            dft::coeffs_to_slots_groups_packed(n, lit.coeffs_to_slots_levels)
        } else {
            dft::coeffs_to_slots_groups(n, lit.coeffs_to_slots_levels)
        };
        let gap = (params.n() / 2 / n) as f64;
        let cts_in = q0 * lit.k * gap;
        let evalmod_top = top - cts_groups.len();
        let cts_out = q(evalmod_top) / 2.0;
        let step = (cts_out / cts_in).powf(1.0 / cts_groups.len() as f64);
        let mut cts = Vec::new();
        let mut scale = cts_in;
        for (g, m) in cts_groups.iter().enumerate() {
            let level = top - g;
            let next = if g + 1 == cts_groups.len() { cts_out } else { scale * step };
            cts.push(LinearTransform::new(&ev, m, level, transform_log_slots, q(level) * next / scale)?);
            scale = next;
        }

        // EvalMod output scale, then SlotsToCoeffs down to the default scale.
        let input_scale_target = q0 / 2f64.powi(log_message_ratio as i32);
        let mut s = 2.0 * cts_out;
        for l in 0..eval_mod.depth() {
            let lvl = evalmod_top - l;
            // double angles square the scale; the polynomial keeps it (see `evalmod`)
            if l >= evalmod::poly_depth(lit.chebyshev_degree) {
                s = s * s / q(lvl);
            }
        }
        // value * q0 / (2 pi Delta_in), by the scale
        let stc_in = s * 2.0 * PI * input_scale_target / q0;
        let output_scale = params.default_scale();
        let stc_groups = if packed {
            dft::slots_to_coeffs_groups_packed(n, lit.slots_to_coeffs_levels)
        } else {
            dft::slots_to_coeffs_groups(n, lit.slots_to_coeffs_levels)
        };
        let stc_top = evalmod_top - eval_mod.depth();
        let step = (output_scale / stc_in).powf(1.0 / stc_groups.len() as f64);
        let mut stc = Vec::new();
        let mut scale = stc_in;
        for (g, m) in stc_groups.iter().enumerate() {
            let level = stc_top - g;
            let next = if g + 1 == stc_groups.len() { output_scale } else { scale * step };
            stc.push(LinearTransform::new(&ev, m, level, transform_log_slots, q(level) * next / scale)?);
            scale = next;
        }

        let mut rotations: Vec<i64> = cts_groups
            .iter()
            .chain(&stc_groups)
            .flat_map(|m| {
                let offs: Vec<usize> = m.diagonals().keys().copied().collect();
                BsgsPlan::new(m.dim(), &offs).rotations(m.dim())
            })
            .collect();
        // SubSum's rotations; the first, by n, also moves the imaginary parts of the packed
        // form into place.
        let half = 1usize << (params.log_n() - 1);
        let sub_sum_steps = sub_sum_steps(n, half);
        rotations.extend(sub_sum_steps.iter().flatten());
        rotations.sort_unstable();
        rotations.dedup();
        Ok(Self {
            ectx,
            lit,
            log_slots,
            cts,
            stc,
            packed,
            eval_mod,
            rotations,
            sub_sum_steps,
            input_scale_target,
            output_scale,
        })
    }

    pub fn literal(&self) -> &BootstrapLiteral {
        &self.lit
    }
    pub fn log_slots(&self) -> u32 {
        self.log_slots
    }
    /// Levels the circuit consumes.
    pub fn depth(&self) -> usize {
        self.cts.len() + self.eval_mod.depth() + self.stc.len()
    }
    /// Lowest level an input may have (any level works: the input is dropped to level 0).
    pub fn min_input_level(&self) -> usize {
        0
    }
    /// Level of every output.
    pub fn output_level(&self) -> usize {
        self.ectx.max_level() - self.depth()
    }
    /// Scale of the output for an input at `input_scale`: the parameter set's default scale
    /// times `k s / Delta`, where ScaleDown multiplies by the integer `k = round(Delta / s)`
    /// (`Delta = q0 / 2^log_message_ratio`). The factor is within `2^-(ratio bits)` of 1 for
    /// inputs near the default scale; correcting it exactly would cost a level.
    pub fn output_scale(&self, input_scale: f64) -> Result<f64, EvalError> {
        let k = self.scale_down_factor(input_scale)?;
        Ok(self.output_scale * k * input_scale / self.input_scale_target)
    }

    fn scale_down_factor(&self, input_scale: f64) -> Result<f64, EvalError> {
        let k = (self.input_scale_target / input_scale).round();
        if !(1.0..9.0e18).contains(&k) {
            return Err(EvalError::ScaleMismatch {
                left: input_scale,
                right: self.input_scale_target,
            });
        }
        Ok(k)
    }
    /// Exactly the Galois elements the circuit uses (rotations and the conjugation).
    pub fn galois_elements(&self) -> Result<Vec<usize>, EvalError> {
        let n = self.ectx.n();
        let mut g = self
            .rotations
            .iter()
            .map(|&r| rotation_galois_element(r, n))
            .collect::<Result<Vec<_>, _>>()?;
        g.push(conjugation_galois_element(n));
        g.retain(|&x| x != 1);
        g.sort_unstable();
        g.dedup();
        Ok(g)
    }
    /// Bytes of the encoded CoeffsToSlots and SlotsToCoeffs diagonals.
    pub fn transform_memory_bytes(&self) -> usize {
        self.cts.iter().chain(&self.stc).map(LinearTransform::memory_bytes).sum()
    }
    /// Key switches per bootstrap in each phase: (CoeffsToSlots incl. the conjugation and, for
    /// sparse slots, the repacking rotation, relinearizations of EvalMod, SlotsToCoeffs incl. the
    /// sparse slots' repeating rotation, SubSum).
    pub fn key_switch_counts(&self) -> (usize, usize, usize, usize) {
        let cts = self.cts.iter().map(LinearTransform::rotations).sum::<usize>() + 1 + usize::from(self.packed);
        let stc = self.stc.iter().map(LinearTransform::rotations).sum::<usize>() + usize::from(self.packed);
        let degree = self.lit.chebyshev_degree;
        // T_2..T_(B-1), giants, one product per split, double angles; two EvalMods at full
        // slots, one for sparse slots
        let mults = count_chebyshev_products(degree) + self.lit.double_angle as usize;
        let eval_mods = if self.packed { 1 } else { 2 };
        let subsum = self.sub_sum_steps.iter().map(Vec::len).sum();
        (cts, eval_mods * mults, stc, subsum)
    }

    /// Generates exactly the keys this circuit needs. The Galois keys are held as
    /// [`BootstrapLiteral::galois_key_storage`] says (by default compact: seed and `b` only,
    /// half the memory for about a tenth more time); the relinearization key, used by every
    /// EvalMod product, stays expanded.
    pub fn generate_keys<R: RngCore + CryptoRng, K: AsRef<[i8]> + AsMut<[i8]>>(
        &self,
        sk: &SecretKey<K>,
        rng: &mut R,
    ) -> Result<BootstrapKeys, EvalError> {
        let relinearization = RelinearizationKey::generate(self.ectx, sk, rng)?;
        // one key at a time, stored at once: peak memory is the stored set plus one key
        let mut galois = GaloisKeys::default();
        for g in self.galois_elements()? {
            let mut key = GaloisKeys::generate_one(self.ectx, sk, g, rng)?;
            self.lit.galois_key_storage.apply(&mut key);
            galois.insert(g, key);
        }
        let encapsulation = match self.lit.ephemeral_hamming_weight {
            Some(h) => Some(EncapsulationKeys::generate(self.ectx, sk, h, rng)?),
            None => None,
        };
        Ok(BootstrapKeys {
            relinearization,
            galois,
            encapsulation,
        })
    }

    fn ev(&self) -> Evaluator<'a> {
        Evaluator::new(self.ectx)
    }

    /// Step 1: level 0 with the message `log_message_ratio` bits below q0 (an exact integer
    /// multiplication; the scale grows by the same integer).
    pub fn scale_down(&self, ct: &CiphertextOwned) -> Result<CiphertextOwned, EvalError> {
        let ev = self.ev();
        if ct.meta.log_slots != self.log_slots {
            return Err(EvalError::SlotsMismatch);
        }
        let c = ev.drop_to_level(ct, 0)?;
        let k = self.scale_down_factor(c.meta.scale)?;
        let mut out = ev.mul_integer(&c, k as i64)?;
        out.meta.scale = c.meta.scale * k;
        Ok(out)
    }

    /// Steps 2 to 4: a level-0 ciphertext raised to the top level (`t = m + q0 I`, scale set to
    /// `q0 K` so the slots of CoeffsToSlots' output are `t / (q0 K)`).
    pub fn raise(&self, ct: &CiphertextOwned, keys: &BootstrapKeys) -> Result<CiphertextOwned, EvalError> {
        let top = self.ectx.max_level();
        let mut raised = match (&self.lit.ephemeral_hamming_weight, &keys.encapsulation) {
            (Some(_), Some(enc)) => {
                let sparse = encapsulation::switch_to_sparse(self.ectx, ct, &enc.dense_to_sparse)?;
                let r = encapsulation::mod_raise(self.ectx, &sparse, top)?;
                encapsulation::switch_to_dense(self.ectx, &r, &enc.sparse_to_dense)?
            }
            (Some(_), None) => return Err(EvalError::Invalid("encapsulation keys missing")),
            (None, _) => encapsulation::mod_raise(self.ectx, ct, top)?,
        };
        raised.meta.scale = self.ectx.params().q()[0] as f64 * self.lit.k;
        Ok(raised)
    }

    /// Step 5: for sparse slots, the sum over the automorphisms fixing the slot subring: keeps
    /// `gap` times the subring part of `t` (the factor `gap` goes into the scale).
    pub fn sub_sum(&self, ct: &CiphertextOwned, keys: &BootstrapKeys) -> Result<CiphertextOwned, EvalError> {
        let ev = self.ev();
        let mut acc = Cow::Borrowed(ct);
        for steps in &self.sub_sum_steps {
            let mut next = ev.rotate_sum_hoisted(&acc, steps, &keys.galois)?;
            next.meta.scale *= (steps.len() + 1) as f64;
            acc = Cow::Owned(next);
        }
        Ok(acc.into_owned())
    }

    /// Step 6: `V^-1`, then (real part, imaginary part) of the bit-reversed packed coefficients
    /// on real slots `t_k / (q0 K)` ([`RealSlots`]).
    pub fn coeffs_to_slots(&self, ct: &CiphertextOwned, keys: &BootstrapKeys) -> Result<RealSlots, EvalError> {
        let ev = self.ev();
        if ct.meta.log_slots != self.log_slots {
            return Err(EvalError::SlotsMismatch);
        }
        let mut z = ct.clone();
        if self.packed {
            // the n-slot message read on 2n slots: [t, t]
            z.meta.log_slots += 1;
        }
        for t in &self.cts {
            z = t.apply(&ev, &z, &keys.galois)?;
        }
        // packed: z = [u, 0]
        let zc = ev.conjugate(&z, &keys.galois)?;
        let mut re = ev.add(&z, &zc)?;
        re.meta.scale *= 2.0;
        // (conj z - z) * i = 2 Im z; multiplying by i is X^(N/2), exact and level-free
        let i_pt = ev.encode(&vec![Complex::I; 1 << z.meta.log_slots], z.meta.level, 1.0)?;
        let mut im = ev.mul_plain(&ev.sub(&zc, &z)?, &i_pt)?;
        im.meta.scale *= 2.0;
        if !self.packed {
            return Ok(RealSlots::Split { re, im });
        }
        // [Re u, 0] + rot([Im u, 0], n) = [Re u, Im u]
        let moved = ev.rotate(&im, 1i64 << self.log_slots, &keys.galois)?;
        ev.add_assign(&mut re, &moved)?;
        Ok(RealSlots::Packed(re))
    }

    /// Step 7: `t / (q0 K) -> m / Delta_in` on real slots.
    pub fn eval_mod(&self, ct: &CiphertextOwned, keys: &BootstrapKeys) -> Result<CiphertextOwned, EvalError> {
        let mut out = self.eval_mod.eval(&self.ev(), ct, &keys.relinearization)?;
        // sin(2 pi t / q0) * q0 / (2 pi Delta_in) by the scale (Delta_in = input_scale_target:
        // the exact input scale only differs by the rounding of the ScaleDown integer, which the
        // output scale absorbs in `bootstrap`)
        out.meta.scale *= 2.0 * PI * self.input_scale_target / self.ectx.params().q()[0] as f64;
        Ok(out)
    }

    /// Step 8: `V (re + i im)`, ending at [`Bootstrapper::output_scale`].
    pub fn slots_to_coeffs(&self, parts: &RealSlots, keys: &BootstrapKeys) -> Result<CiphertextOwned, EvalError> {
        let ev = self.ev();
        let input: Cow<'_, CiphertextOwned> = match (parts, self.packed) {
            (RealSlots::Split { re, im }, false) => {
                let i_pt = ev.encode(&vec![Complex::I; 1 << self.log_slots], im.meta.level, 1.0)?;
                Cow::Owned(ev.add(re, &ev.mul_plain(im, &i_pt)?)?)
            }
            // the first group takes [re, i im] itself (`dft::slots_to_coeffs_groups_packed`)
            (RealSlots::Packed(w), true) => Cow::Borrowed(w),
            _ => return Err(EvalError::SlotsMismatch),
        };
        let mut groups = self.stc.iter();
        let mut z = match groups.next() {
            Some(first) => first.apply(&ev, &input, &keys.galois)?,
            None => input.into_owned(),
        };
        if self.packed {
            // x + rot(x, n): the first group's output for re + i im, repeated
            let moved = ev.rotate(&z, 1i64 << self.log_slots, &keys.galois)?;
            ev.add_assign(&mut z, &moved)?;
        }
        for t in groups {
            z = t.apply(&ev, &z, &keys.galois)?;
        }
        // packed: [y, y] on 2n slots is the n-slot message y
        z.meta.log_slots = self.log_slots;
        Ok(z)
    }

    /// The whole circuit: any level, the bootstrapper's slot count, any scale below
    /// `q0 / 2^log_message_ratio`; returns the same message at [`Bootstrapper::output_level`]
    /// and exactly [`Bootstrapper::output_scale`] of the input's scale.
    pub fn bootstrap(&self, ct: &CiphertextOwned, keys: &BootstrapKeys) -> Result<CiphertextOwned, EvalError> {
        Ok(self.bootstrap_timed(ct, keys)?.0)
    }

    /// [`Bootstrapper::bootstrap`] with the wall time of each phase.
    pub fn bootstrap_timed(&self, ct: &CiphertextOwned, keys: &BootstrapKeys) -> Result<(CiphertextOwned, BootstrapTimings), EvalError> {
        let mut t = BootstrapTimings::default();
        let clock = std::time::Instant::now();
        let reported = self.output_scale(ct.meta.scale)?;
        let down = self.scale_down(ct)?;
        // the message was multiplied by down.scale / ct.scale; EvalMod assumes Delta_in
        let ratio = down.meta.scale / self.input_scale_target;
        let raised = self.raise(&down, keys)?;
        t.raise = clock.elapsed();
        let summed = self.sub_sum(&raised, keys)?;
        t.sub_sum = clock.elapsed() - t.raise;
        let parts = self.coeffs_to_slots(&summed, keys)?;
        t.coeffs_to_slots = clock.elapsed() - t.raise - t.sub_sum;
        let parts = parts.try_map(|c| self.eval_mod(c, keys))?;
        t.eval_mod = clock.elapsed() - t.raise - t.sub_sum - t.coeffs_to_slots;
        let mut out = self.slots_to_coeffs(&parts, keys)?;
        t.slots_to_coeffs = clock.elapsed() - t.raise - t.sub_sum - t.coeffs_to_slots - t.eval_mod;
        // value is (message * ratio): fold the ratio into the scale, then check it is the
        // reported one to float accuracy and report it exactly
        out.meta.scale *= ratio;
        if ((out.meta.scale - reported) / reported).abs() > 1e-9 {
            return Err(EvalError::Invalid("bootstrapping scale bookkeeping drifted"));
        }
        out.meta.scale = reported;
        Ok((out, t))
    }
}

/// The real and imaginary parts of the packed coefficients on real slots, between
/// CoeffsToSlots and SlotsToCoeffs.
#[derive(Clone, Debug)]
pub enum RealSlots {
    /// Full slots: the real parts and the imaginary parts, one ciphertext each.
    Split { re: CiphertextOwned, im: CiphertextOwned },
    /// `n < N/2` sparse slots: one ciphertext of `2n` slots, the `n` real parts then the `n`
    /// imaginary parts.
    Packed(CiphertextOwned),
}

impl RealSlots {
    /// Applies `f` to every ciphertext (the two of [`RealSlots::Split`] side by side: that
    /// fills the cores where one EvalMod's steps are serial).
    pub fn try_map<F>(&self, f: F) -> Result<Self, EvalError>
    where
        F: Fn(&CiphertextOwned) -> Result<CiphertextOwned, EvalError> + Sync,
    {
        Ok(match self {
            Self::Split { re, im } => {
                let (re, im) = rayon::join(|| f(re), || f(im));
                Self::Split { re: re?, im: im? }
            }
            Self::Packed(w) => Self::Packed(f(w)?),
        })
    }
}

/// Wall time per phase of one bootstrap.
#[derive(Clone, Copy, Debug, Default)]
pub struct BootstrapTimings {
    /// ScaleDown, encapsulation, ModRaise and the switch back.
    pub raise: std::time::Duration,
    pub sub_sum: std::time::Duration,
    pub coeffs_to_slots: std::time::Duration,
    /// EvalMod (twice at full slots: real and imaginary parts).
    pub eval_mod: std::time::Duration,
    pub slots_to_coeffs: std::time::Duration,
}

/// Ciphertext products of [`evalmod::eval_chebyshev`] for a degree.
fn count_chebyshev_products(degree: usize) -> usize {
    let bits = (usize::BITS - degree.leading_zeros()) as usize;
    let baby = (1usize << bits.div_ceil(2)).max(2).min(degree + 1);
    let giants = (0..).map(|i| baby << i).take_while(|&g| g <= degree).count();
    // one product per split of the recursion: the number of internal nodes
    fn splits(len: usize, baby: usize) -> usize {
        if len <= baby {
            return 0;
        }
        let g = 1usize << (usize::BITS - 1 - (len - 1).leading_zeros());
        1 + splits(len - g, baby) + splits(g, baby)
    }
    baby.saturating_sub(2) + giants + splits(degree + 1, baby)
}
