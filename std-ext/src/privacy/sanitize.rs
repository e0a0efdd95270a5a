//! Vendor-side output sanitisation.

use super::{add_to_c0, flood_noise_pow2, DEFAULT_STATISTICAL_SECURITY, MAX_LOG_FLOOD};
use crate::context::EvalContext;
use crate::error::EvalError;
use crate::evaluator::Evaluator;
use crate::evaluator::PlaintextRns;
use crate::gnn::noise::{fresh_sigma, rescale_rounding_l2, TAIL_SIGMAS};
use clifhe_core::ciphertext::CiphertextOwned;
use clifhe_core::encode::Complex;
use clifhe_core::encrypt::{encrypt_pk, Plaintext};
use clifhe_core::PublicKey;
use rand_core::{CryptoRng, RngCore};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use zeroize::Zeroizing;

/// What sanitisation does; every field has a safe default.
#[derive(Clone, Debug)]
pub struct SanitizeConfig {
    /// Slots that carry results; all others are zeroed (`None`: keep every slot).
    pub used_slots: Option<Vec<bool>>,
    /// Statistical security parameter s of the flooding (default 30).
    pub statistical_security: u32,
    /// Bound B, per coefficient in coefficient units, on the noise to hide, of the form
    /// scale (12 sigma + l2) that [`crate::gnn::noise`] produces: a sub-Gaussian part and a
    /// 2-norm part, both of which a mask multiplication scales by at most the mask's largest
    /// slot value (see [`fresh_noise_bound`] and the GNN's noise report). The flood width is
    /// 2^ceil(s + log2 B') with B' this bound carried through the masks plus the
    /// re-randomisation's own noise.
    pub noise_bound: f64,
    /// Bound on |slot value| of the input ciphertext over *all* slots (used and unused). With
    /// it, the mask's residue in unused slots (the mask is encoded with rounding, so an unused
    /// slot keeps value * delta) is bounded and counted in the flood, and the result is kept on
    /// the lowest level that holds it; without it (legacy) the caller's `noise_bound` must cover
    /// that residue and the result drops to level 0.
    pub value_bound: Option<f64>,
    /// Multiplications by the mask (each consumes one level): the unused slots keep
    /// value * delta^passes with delta ~ 2^-45 the mask's encoding error. 2 makes the residue
    /// negligible next to the evaluation noise of a large-scale result.
    pub mask_passes: u32,
    /// log2 of the widest flood the hospital's release may add on its own (the protocol's
    /// release floods as wide as the precision it discloses allows, independently of anything
    /// the vendor states; `protocol::leakage::widest_hospital_flood_log2`). With a value bound
    /// the result is kept on a level whose modulus holds that flood too; `None`: the release
    /// flood is taken as wide as this one.
    pub release_flood_log2: Option<u32>,
}

impl SanitizeConfig {
    pub fn new(noise_bound: f64) -> Self {
        Self {
            used_slots: None,
            statistical_security: DEFAULT_STATISTICAL_SECURITY,
            noise_bound,
            value_bound: None,
            mask_passes: 1,
            release_flood_log2: None,
        }
    }
}

/// Tail bound (12 standard deviations: exceeded with probability below 2^-100 per
/// coefficient) on the noise of a fresh public-key encryption, in coefficient units:
/// u e + e0 + e1 s with u, s ternary and centred binomial errors (variance proxy 10.5), for the
/// worst ternary norms ||u||^2, ||s||^2 <= N: 12 sqrt(10.5 (2N + 1)).
pub fn fresh_noise_bound(n: usize) -> f64 {
    TAIL_SIGMAS * fresh_sigma(n)
}

/// Legacy tail bound on the noise after evaluation ending in `rescales` rescalings, for a
/// circuit whose every multiplication has operands below 1 in magnitude and whose inputs were
/// encrypted at the result's scale: fresh noise plus a rounding term per rescale
/// ((r0 + r1 s) with r uniform in [-1/2, 1/2], variance (1 + 2N/3)/12). It is *not* a bound for
/// the GNN, whose derivatives amplify the inputs' noise by 2^7 and more: use
/// [`crate::gnn::encrypted::Schedule::analyse`] there.
pub fn evaluation_noise_bound(n: usize, rescales: usize) -> f64 {
    let per_rescale = ((1.0 + 2.0 * n as f64 / 3.0) / 12.0).sqrt();
    fresh_noise_bound(n) + 12.0 * per_rescale * (rescales.max(1) as f64).sqrt() * 2.0
}

/// A sanitised result and what was done to it.
#[derive(Clone, Debug)]
pub struct Sanitized {
    pub ciphertext: CiphertextOwned,
    /// log2 of the flood width W (uniform noise on [-W, W) added to c0).
    pub flood_log2: u32,
    /// Bound on the noise the flood hides: the evaluation noise carried through the masks plus
    /// the mask's residue in unused slots and the re-randomisation noise (coefficient units).
    pub hidden_noise_bound: f64,
    /// What the hospital's release flood must hide: every key-dependent part of the decrypted
    /// noise, i.e. `hidden_noise_bound` (the vendor's own flood is independent of the key and
    /// known to the vendor; it is not counted). Pass it as [`super::ReleasePolicy::noise_bound`].
    pub release_noise_bound: f64,
    /// Largest |slot value| of the mask's encoding error (0 without a mask).
    pub mask_error: f64,
}

/// Masks, re-randomises, floods and drops `ct` to the lowest level that holds the result (level
/// 0 without `cfg.value_bound`). Consumes one level per mask pass when a mask is given. Fails
/// (rather than silently destroying the result) when the flood would exceed the scale or the
/// modulus.
pub fn sanitize_output<R: RngCore + CryptoRng + Send, P: AsRef<[u64]> + Sync>(
    ectx: &EvalContext,
    pk: &PublicKey<P>,
    ct: &CiphertextOwned,
    cfg: &SanitizeConfig,
    rng: &mut R,
) -> Result<CiphertextOwned, EvalError> {
    sanitize(ectx, pk, ct, cfg, rng).map(|s| s.ciphertext)
}

/// How many encoded masks a [`MaskMemo`] keeps (the most recently used).
pub const MASK_MEMO_ENTRIES: usize = 16;

/// Sanitisation masks encoded once and reused. A vendor answers batches of the same shape
/// (patient count, classes, layout) one after another, and every mask pass encodes the same
/// 0/1 slot vector at the same level and scale, with its error measured; kept per parameter
/// set, level and slot pattern, for the [`MASK_MEMO_ENTRIES`] most recent. A cache, not
/// state: the result is the same words with or without it. A service keeps one per model
/// (`protocol::model::PreparedModel`).
#[derive(Default)]
pub struct MaskMemo {
    entries: Mutex<VecDeque<(MaskKey, Arc<EncodedMask>)>>,
}

#[derive(PartialEq, Eq)]
struct MaskKey {
    params_id: u16,
    level: usize,
    slots: usize,
    /// The used slots, 64 to a word.
    bits: Vec<u64>,
}

/// A mask at one level: its plaintext (scale q_level) and its largest slot error.
struct EncodedMask {
    pt: PlaintextRns,
    delta: f64,
}

impl core::fmt::Debug for MaskMemo {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let n = self.entries.lock().map_or(0, |e| e.len());
        f.debug_struct("MaskMemo").field("entries", &n).finish()
    }
}

impl MaskMemo {
    /// An empty memo.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// How many masks it holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.len())
    }

    /// Whether it holds none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn get(&self, key: &MaskKey) -> Option<Arc<EncodedMask>> {
        let mut entries = self.entries.lock().ok()?;
        let i = entries.iter().position(|(k, _)| k == key)?;
        // Most recently used to the front.
        let entry = entries.remove(i)?;
        let value = Arc::clone(&entry.1);
        entries.push_front(entry);
        Some(value)
    }

    fn insert(&self, key: MaskKey, value: Arc<EncodedMask>) {
        // A poisoned lock only loses the memo, never a result.
        if let Ok(mut entries) = self.entries.lock() {
            if !entries.iter().any(|(k, _)| *k == key) {
                entries.push_front((key, value));
                entries.truncate(MASK_MEMO_ENTRIES);
            }
        }
    }
}

/// The mask of `used` at `level`, from `memo` when it has it.
fn encoded_mask(ev: &Evaluator<'_>, used: &[bool], level: usize, memo: Option<&MaskMemo>) -> Result<Arc<EncodedMask>, EvalError> {
    let params = ev.context().params();
    let key = memo.map(|_| MaskKey {
        params_id: params.id(),
        level,
        slots: used.len(),
        bits: used
            .chunks(64)
            .map(|c| c.iter().enumerate().fold(0u64, |w, (i, &b)| w | (u64::from(b) << i)))
            .collect(),
    });
    if let (Some(memo), Some(key)) = (memo, &key) {
        if let Some(hit) = memo.get(key) {
            return Ok(hit);
        }
    }
    let values: Vec<Complex> = used.iter().map(|&m| Complex::from_real(if m { 1.0 } else { 0.0 })).collect();
    let n = params.n();
    let ql = *params.q().get(level).ok_or(EvalError::OutOfLevels)? as f64;
    // The error measurement and the encoding are independent: side by side.
    let (delta, pt) = rayon::join(|| mask_encoding_error(&values, n, ql), || ev.encode(&values, level, ql));
    let mask = Arc::new(EncodedMask { pt: pt?, delta: delta? });
    if let (Some(memo), Some(key)) = (memo, key) {
        memo.insert(key, Arc::clone(&mask));
    }
    Ok(mask)
}

/// [`sanitize_output`] with its report.
pub fn sanitize<R: RngCore + CryptoRng + Send, P: AsRef<[u64]> + Sync>(
    ectx: &EvalContext,
    pk: &PublicKey<P>,
    ct: &CiphertextOwned,
    cfg: &SanitizeConfig,
    rng: &mut R,
) -> Result<Sanitized, EvalError> {
    sanitize_inner(ectx, pk, ct, cfg, None, rng)
}

/// [`sanitize`] with the masks taken from, or added to, `masks` (the same words).
pub fn sanitize_memoised<R: RngCore + CryptoRng + Send, P: AsRef<[u64]> + Sync>(
    ectx: &EvalContext,
    pk: &PublicKey<P>,
    ct: &CiphertextOwned,
    cfg: &SanitizeConfig,
    masks: &MaskMemo,
    rng: &mut R,
) -> Result<Sanitized, EvalError> {
    sanitize_inner(ectx, pk, ct, cfg, Some(masks), rng)
}

fn sanitize_inner<R: RngCore + CryptoRng + Send, P: AsRef<[u64]> + Sync>(
    ectx: &EvalContext,
    pk: &PublicKey<P>,
    ct: &CiphertextOwned,
    cfg: &SanitizeConfig,
    memo: Option<&MaskMemo>,
    rng: &mut R,
) -> Result<Sanitized, EvalError> {
    let ev = Evaluator::new(ectx);
    let params = *ectx.params();
    let n = params.n();
    let scale = ct.meta.scale;
    let slots = 1usize << ct.meta.log_slots;
    if !(cfg.noise_bound.is_finite() && cfg.noise_bound >= 0.0) {
        return Err(EvalError::Invalid("noise bound must be finite and non-negative"));
    }
    let mut bound = cfg.noise_bound;
    let mut value = cfg.value_bound;
    // 1. Mask unused slots: plaintext 0/1 at scale q_l, then rescale (exact scale kept), once per
    //    pass. The mask's encoding error delta (integer rounding and f64) multiplies: unused slots
    //    keep value * delta^passes, used ones value * (1 + delta)^passes (a function of the
    //    result itself, revealed anyway); the noise grows by at most (1 + delta) per pass plus a
    //    rescale rounding. The masks and their errors come first: the bounds below need them,
    //    and the products run beside the re-randomisation (step 4).
    let mut masks = Vec::new();
    let mut mask_error = 0.0;
    if let Some(used) = &cfg.used_slots {
        if used.len() != slots {
            return Err(EvalError::Invalid("mask length differs from the slot count"));
        }
        let passes = cfg.mask_passes.max(1);
        for pass in 0..passes as usize {
            let level = ct.meta.level.checked_sub(pass).filter(|&l| l > 0).ok_or(EvalError::OutOfLevels)?;
            let mask = encoded_mask(&ev, used, level, memo)?;
            mask_error = f64::max(mask_error, mask.delta);
            bound = (1.0 + mask.delta) * bound + rescale_rounding_l2(n);
            value = value.map(|v| v * (1.0 + mask.delta));
            masks.push(mask);
        }
        if let Some(v) = cfg.value_bound {
            // Residue in unused slots: |value| delta^passes per slot, hence per coefficient (a
            // coefficient is at most the largest slot magnitude) at most this.
            bound += scale * v * mask_error.powi(passes as i32);
        }
    }
    let masked_level = ct.meta.level - masks.len();
    // 2. Re-randomisation noise (independent of the weights, counted anyway) and flood width.
    bound += fresh_noise_bound(n);
    if cfg.statistical_security < super::MIN_STATISTICAL_SECURITY {
        return Err(EvalError::Invalid("statistical security below 30 bits is refused"));
    }
    let log_w = (cfg.statistical_security as f64 + bound.max(1.0).log2()).ceil();
    // Decoded, the flood adds noise of standard deviation sqrt(N/6) W / scale to each slot:
    // refuse when that reaches half a unit (nothing would be left of the result).
    if log_w.is_nan() || log_w + (n as f64 / 6.0).sqrt().log2() >= scale.log2() - 1.0 || log_w > MAX_LOG_FLOOD as f64 {
        return Err(EvalError::Invalid(
            "flooding noise would exceed the scale: encrypt at a larger scale and keep the result on a higher level (gnn::encrypted::Schedule::circuit_private), or use a smaller noise bound",
        ));
    }
    let w = log_w.exp2();
    // 3. Drop to the lowest level whose modulus holds value + noise + this flood + the
    //    hospital's release flood (its own width if stated, else this one's) with 2 bits to spare.
    let release_w = cfg.release_flood_log2.map_or(w, |r| w.max(f64::from(r).exp2()));
    let target = match value {
        Some(v) => {
            let need = (v * scale + bound + w + release_w).log2() + 3.0;
            let mut l = 0;
            let mut log_q = (params.q()[0] as f64).log2();
            while log_q < need && l < masked_level {
                l += 1;
                log_q += (params.q()[l] as f64).log2();
            }
            if log_q < need {
                return Err(EvalError::Invalid("the result and its flood do not fit the ciphertext modulus"));
            }
            l
        }
        None => {
            if log_w >= (params.q()[0] as f64).log2() - 2.0 {
                return Err(EvalError::Invalid("flooding noise would exceed the lowest modulus"));
            }
            0
        }
    };
    // 4. The mask products and the drop, beside the re-randomiser (Enc_pk(0) at the target level
    //    and the result's scale) and the flood (step 5), which take the random draws in the
    //    same order as one after the other.
    let (masked, fresh) = rayon::join(
        || -> Result<CiphertextOwned, EvalError> {
            let mut out = std::borrow::Cow::Borrowed(ct);
            for mask in &masks {
                let mut next = ev.rescale_owned(ev.mul_plain(&out, &mask.pt)?)?;
                next.meta.scale = scale;
                out = std::borrow::Cow::Owned(next);
            }
            ev.drop_to_level(&out, target)
        },
        || -> Result<_, EvalError> {
            let zero = Plaintext::from_coeffs(vec![0f64; n], scale, ct.meta.log_slots)?;
            let fresh = encrypt_pk(&params, ectx.q_tables(), pk, &zero, target, rng)?;
            let mut noise = Zeroizing::new(vec![0i128; n]);
            flood_noise_pow2(rng, log_w as u32, &mut noise)?;
            Ok((fresh, noise))
        },
    );
    let mut out = masked?;
    let (fresh, noise) = fresh?;
    ev.add_assign(&mut out, &fresh)?;
    // 5. Flood c0 in the coefficient domain.
    add_to_c0(ectx.q_tables(), &mut out, &noise)?;
    Ok(Sanitized {
        ciphertext: out,
        flood_log2: log_w as u32,
        hidden_noise_bound: bound,
        release_noise_bound: bound,
        mask_error,
    })
}

/// Largest |slot error| of `values` encoded at `scale` (integer coefficients), including a bound
/// on the f64 error of the decoding that measures it.
fn mask_encoding_error(values: &[Complex], n: usize, scale: f64) -> Result<f64, EvalError> {
    let tables = clifhe_core::encode::EncoderTables::shared(n, values.len()).map_err(|_| EvalError::Invalid("mask cannot be encoded"))?;
    let mut coeffs = vec![0f64; n];
    tables
        .encode(values, scale, &mut coeffs)
        .map_err(|_| EvalError::Invalid("mask cannot be encoded"))?;
    let mut back = vec![Complex::default(); values.len()];
    tables
        .decode(&coeffs, scale, &mut back)
        .map_err(|_| EvalError::Invalid("mask cannot be decoded"))?;
    let measured = back
        .iter()
        .zip(values)
        .map(|(b, v)| (b.re - v.re).hypot(b.im - v.im))
        .fold(0.0f64, f64::max);
    // The decoding FFT of integers below 2^64: error at most ~log2(N) ulps of sum |c_i| / scale.
    let l1: f64 = coeffs.iter().map(|c| c.abs()).sum::<f64>() / scale;
    Ok(measured + 4.0 * (n as f64).log2() * f64::EPSILON * l1)
}
