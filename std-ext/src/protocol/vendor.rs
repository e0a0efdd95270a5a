//! The vendor's steps: evaluate an encrypted batch with the model and sanitise the scores
//! before anything leaves (docs/architecture.md §8).
//!
//! The circuit-private path ([`infer_box_encoded`]) on a box-encoded blade-major batch:
//! 1. the batch's profile fingerprint must be this model's (same preset, privacy mode and
//!    input box): the noise bound below holds only for inputs encoded in this model's box;
//! 2. the profile's [`Schedule`], its proven noise and range
//!    analysis, and `evaluate_scheduled`: one score ciphertext per class, patient p in slot p;
//! 3. sanitisation of every score ciphertext ([`sanitize_scores`]): unused slots masked (two
//!    passes), re-randomised, flooded at s bits over the proven bound, dropped to the lowest
//!    level that holds scores and floods. The manifest records the bound the hospital's release
//!    flood must hide (`Sanitized::release_noise_bound`).
//!
//! An equivariant model's batch ([`infer_channels`]) takes the same three steps: its profile's
//! fingerprint, its scale policy's dry run and flood check, the encrypted network
//! (ciphertext x ciphertext geometric products: `gnn::equivariant_encrypted` on a blade-major
//! batch, or `gnn::equivariant_blocks` on a block batch with the hospital's rotation keys),
//! sanitisation with the dry run's proven bounds. [`infer`] dispatches on the model's kind.
//!
//! The `--no-flooding` path ([`infer_interleaved`]) evaluates an interleaved batch or merged
//! single-patient device ciphertexts; its output is NOT circuit-private.

use super::batch::BatchHeader;
use super::model::{Preparation, PreparedModel, VendorModel};
use super::profile::{self, InputProfile, ProfileInput, EQUIVARIANT_FLOOD_PRECISION_BITS, MASK_PASSES};
use super::{BatchLayout, ProtocolError, ScoresManifest};
use crate::ga::{merge_rotation_steps, EncryptedMultivectorBatch, Layout};
use crate::gnn::encrypted::{evaluate_blade_major, evaluate_scheduled, Schedule};
use crate::gnn::equivariant_blocks::{self as blocks, BlockLayout};
use crate::gnn::equivariant_encrypted::{self as equivariant, EquivariantReport};
use crate::gnn::equivariant_model::EquivariantModel;
use crate::gnn::noise::{rescale_rounding_l2, NoiseReport, Packing};
use crate::gnn::GnnModel;
use crate::privacy::{evaluation_noise_bound, sanitize, sanitize_memoised, MaskMemo, SanitizeConfig, Sanitized};
use crate::{EvalContext, Evaluator, GaloisKeys, RelinearizationKey};
use clifhe_core::ciphertext::CiphertextOwned;
use clifhe_core::encode::Complex;
use clifhe_core::{wire, Params, PublicKey};
use rand_chacha::rand_core::{CryptoRng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;

/// Rotations an interleaved batch needs to become blade-major (stride 8).
const LAYOUT_STEPS: [i64; 7] = [1, 2, 3, 4, 5, 6, 7];

/// Rotation steps of the evaluation keys of the interleaved path: the layout conversion's
/// 1..7, plus the merge tree's -8 * 2^j for up to `merge_patients` device ciphertexts.
pub fn rotation_steps(merge_patients: usize) -> Vec<i64> {
    let mut steps = LAYOUT_STEPS.to_vec();
    steps.extend(merge_rotation_steps(merge_patients));
    steps
}

/// How the vendor evaluates.
#[derive(Clone, Copy, Debug)]
pub struct InferOptions {
    /// Statistical security s of the flood.
    pub statistical_security: u32,
    /// Skip sanitisation (NOT circuit-private; refused for profiles that ask for flooding).
    pub no_flooding: bool,
    /// The patient count the caller expects, checked against the batch.
    pub patients: Option<usize>,
}

/// The vendor's output: one score ciphertext per class and the manifest that describes them.
#[derive(Clone, Debug)]
pub struct ScoredBatch {
    /// What the scores hold.
    pub manifest: ScoresManifest,
    /// Score ciphertext of class c at index c.
    pub scores: Vec<CiphertextOwned>,
}

impl ScoredBatch {
    /// The files of a scores directory, in writing order: one wire ciphertext per class, then
    /// the manifest (so a reader that sees the manifest sees every file it names).
    pub fn files(&self, params: &Params) -> Result<Vec<(String, Vec<u8>)>, ProtocolError> {
        let mut out = Vec::with_capacity(self.scores.len() + 1);
        for (name, ct) in self.manifest.files.iter().zip(&self.scores) {
            let b = wire::ciphertext_to_bytes(params, ct).map_err(|e| ProtocolError::corrupt("score ciphertext", e))?;
            out.push((name.clone(), b));
        }
        out.push((super::manifest::MANIFEST_FILE.to_string(), self.manifest.to_json()?));
        Ok(out)
    }
}

/// What sanitisation needs to know of an evaluation's scores: its proven bounds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreBounds {
    /// Per-coefficient noise bound (coefficient units): what the flood hides.
    pub per_coefficient_noise: f64,
    /// Bound on |score| in every slot (used and unused): what the masks must clear.
    pub value: f64,
}

impl From<&NoiseReport> for ScoreBounds {
    fn from(r: &NoiseReport) -> Self {
        Self {
            per_coefficient_noise: r.per_coefficient_bound,
            value: r.slot_bound,
        }
    }
}

impl From<&EquivariantReport> for ScoreBounds {
    fn from(r: &EquivariantReport) -> Self {
        Self {
            per_coefficient_noise: r.per_coefficient_bound,
            value: r.score_bound,
        }
    }
}

/// Sanitises score ciphertexts in parallel (each with its own ChaCha20 stream seeded from
/// `rng`), with the proven `bounds` of their evaluation: the vendor's last step before anything
/// leaves.
#[allow(clippy::too_many_arguments)]
pub fn sanitize_scores<R: RngCore + CryptoRng>(
    ectx: &EvalContext,
    pk: &PublicKey<Vec<u64>>,
    scores: &[CiphertextOwned],
    bounds: ScoreBounds,
    used_slots: Vec<bool>,
    statistical_security: u32,
    masks: Option<&MaskMemo>,
    rng: &mut R,
) -> Result<Vec<Sanitized>, ProtocolError> {
    let mut cfg = SanitizeConfig::new(bounds.per_coefficient_noise);
    cfg.statistical_security = statistical_security;
    cfg.used_slots = Some(used_slots);
    cfg.value_bound = Some(bounds.value);
    cfg.mask_passes = MASK_PASSES as u32;
    cfg.release_flood_log2 = scores
        .first()
        .map(|c| super::leakage::widest_hospital_flood_log2(ectx.params(), c.meta.scale));
    let seeds: Vec<zeroize::Zeroizing<[u8; 32]>> = scores
        .iter()
        .map(|_| {
            let mut s = zeroize::Zeroizing::new([0u8; 32]);
            rng.fill_bytes(s.as_mut());
            s
        })
        .collect();
    Ok(scores
        .par_iter()
        .zip(&seeds)
        .map(|(c, seed)| {
            let mut rng = ChaCha20Rng::from_seed(**seed);
            match masks {
                Some(m) => sanitize_memoised(ectx, pk, c, &cfg, m, &mut rng),
                None => sanitize(ectx, pk, c, &cfg, &mut rng),
            }
        })
        .collect::<Result<Vec<_>, _>>()?)
}

/// The circuit-private evaluation of a blade-major batch with either kind of model (the
/// module's steps): what `infer` and the service call.
pub fn infer<R: RngCore + CryptoRng>(
    ev: &Evaluator<'_>,
    keys: &VendorKeys<'_>,
    model: &PreparedModel,
    header: &BatchHeader,
    cts: &[CiphertextOwned],
    opts: &InferOptions,
    rng: &mut R,
) -> Result<ScoredBatch, ProtocolError> {
    match model.model() {
        VendorModel::Gnn(m) => infer_box_encoded(ev, keys.pk, keys.rlk, m, header, cts, opts, Some(model.masks()), rng),
        VendorModel::Equivariant(m) => {
            let prepared = model.prepare(ev, true, header.layout)?;
            infer_channels(ev, keys, m, &prepared, header, cts, opts, Some(model.masks()), rng)
        }
    }
}

/// The hospital's public keys the vendor evaluates with: the public key (re-randomisation),
/// the relinearization key, and the Galois keys the block layout rotates with (none needed
/// for blade-major batches).
#[derive(Clone, Copy, Debug)]
pub struct VendorKeys<'a> {
    /// Public key.
    pub pk: &'a PublicKey<Vec<u64>>,
    /// Relinearization key.
    pub rlk: &'a RelinearizationKey,
    /// Galois keys, if the hospital registered any.
    pub gks: Option<&'a GaloisKeys>,
}

/// The refusal of a batch made for another profile.
fn wrong_profile() -> ProtocolError {
    ProtocolError::refused(
        "batch",
        "this batch was encrypted for another model's input profile (or another preset or privacy mode): \
         re-encrypt with `host-eval encrypt --profile` and this model's `host-eval profile`",
    )
}

/// The circuit-private evaluation of an equivariant model's channel batch (module docs), with
/// `prepared` made from the same model for the batch's layout on this preset
/// ([`PreparedModel::prepare`]). The policy, the domain and the bounds are the vendor's own,
/// from the model file ([`InputProfile::of_equivariant`]); the batch must carry that profile's
/// fingerprint and
/// exactly its ciphertexts (channel by channel, the present blades in order), at its level and
/// scale. Always flooded: `--no-flooding` is refused.
#[allow(clippy::too_many_arguments)]
pub fn infer_channels<R: RngCore + CryptoRng>(
    ev: &Evaluator<'_>,
    keys: &VendorKeys<'_>,
    model: &EquivariantModel,
    prepared: &Preparation,
    header: &BatchHeader,
    cts: &[CiphertextOwned],
    opts: &InferOptions,
    masks: Option<&MaskMemo>,
    rng: &mut R,
) -> Result<ScoredBatch, ProtocolError> {
    let ectx = ev.context();
    let params = *ectx.params();
    if opts.no_flooding {
        return Err(ProtocolError::refused(
            "--no-flooding",
            "an equivariant model's scores leave only sanitised and flooded (circuit-private)",
        ));
    }
    let profile = &prepared.profile;
    if profile.layout != header.layout || !matches!(profile.input, ProfileInput::Channels(_)) {
        return Err(ProtocolError::refused("model", "prepared for another layout or model kind"));
    }
    if header.profile_fingerprint != profile.fingerprint || !header.circuit_private {
        return Err(wrong_profile());
    }
    let input = profile.channels()?;
    let present = &input.domain.present;
    let expected = BatchHeader::new(profile, header.patients).encoding;
    if header.encoding != expected || cts.len() != expected.ciphertexts() {
        return Err(ProtocolError::refused(
            "batch",
            format!(
                "{} ciphertexts whose encoding differs from the profile's {} ({})",
                cts.len(),
                expected.ciphertexts(),
                if profile.layout == BatchLayout::Blocks {
                    "two per channel in the block layout"
                } else {
                    "one per present blade of each channel"
                }
            ),
        ));
    }
    let patients = header.patients;
    if opts.patients.is_some_and(|p| p != patients) {
        return Err(ProtocolError::refused("--patients", format!("the batch holds {patients} patients")));
    }
    if patients > profile.capacity {
        return Err(ProtocolError::TooManyPatients {
            patients,
            first_slot: 0,
            max: profile.capacity,
        });
    }
    let policy = profile.channel_policy()?;
    for c in cts {
        if c.meta.level != profile.input_level || c.meta.scale != policy.log_input_scale.exp2() {
            return Err(ProtocolError::refused(
                "batch",
                format!(
                    "a ciphertext at level {} and scale 2^{:.2}, but this model's profile encrypts at level {} and 2^{}",
                    c.meta.level,
                    c.meta.scale.log2(),
                    profile.input_level,
                    policy.log_input_scale
                ),
            ));
        }
    }
    let refuse_model = |e| ProtocolError::refused("model", e);
    let (scores, report, used, layout) = if profile.layout == BatchLayout::Blocks {
        let gks = keys.gks.ok_or_else(|| {
            ProtocolError::refused(
                "keys",
                "the block layout needs the hospital's rotation keys: `host-eval evalkeys --profile PROFILE`",
            )
        })?;
        let blocks = BlockLayout::new(&params, &model.net).map_err(refuse_model)?;
        // The dry run first: a flood that cannot fit at the caller's s is refused before any work.
        blocks::plan(&params, &model.net, &input.domain, &policy)
            .map_err(refuse_model)?
            .check_flood_fits(&params, opts.statistical_security, EQUIVARIANT_FLOOD_PRECISION_BITS)
            .map_err(|e| ProtocolError::refused("--statistical-security", e))?;
        let constants = prepared
            .constants
            .as_ref()
            .ok_or_else(|| ProtocolError::refused("model", "the block layout's weight vectors were not prepared"))?;
        let (score, report) =
            blocks::evaluate(ev, keys.rlk, gks, &model.net, &input.domain, &policy, constants, cts.to_vec()).map_err(refuse_model)?;
        let used = blocks.used_slots(patients, model.class_names.len());
        (vec![score], report, used, BatchLayout::Blocks)
    } else {
        equivariant::plan(&params, &model.net, &input.domain, &policy)
            .map_err(refuse_model)?
            .check_flood_fits(&params, opts.statistical_security, EQUIVARIANT_FLOOD_PRECISION_BITS)
            .map_err(|e| ProtocolError::refused("--statistical-security", e))?;
        let mut it = cts.iter();
        let channels: Vec<[Option<CiphertextOwned>; 8]> = present
            .iter()
            .map(|mask| std::array::from_fn(|k| if mask[k] { it.next().cloned() } else { None }))
            .collect();
        let (scores, report) = equivariant::evaluate(ev, keys.rlk, &model.net, &input.domain, &policy, channels).map_err(refuse_model)?;
        let used: Vec<bool> = (0..params.max_slots()).map(|s| s < patients).collect();
        (scores, report, used, BatchLayout::BladeMajor)
    };
    let sanitized = sanitize_scores(
        ectx,
        keys.pk,
        &scores,
        (&report).into(),
        used,
        opts.statistical_security,
        masks,
        rng,
    )?;
    let bound = sanitized.iter().map(|s| s.release_noise_bound).fold(0.0, f64::max);
    let flood = sanitized.iter().map(|s| s.flood_log2).max();
    Ok(ScoredBatch {
        manifest: ScoresManifest::new(
            &params,
            &model.class_names,
            patients,
            layout,
            true,
            opts.statistical_security,
            bound,
            flood,
        ),
        scores: sanitized.into_iter().map(|s| s.ciphertext).collect(),
    })
}

/// The circuit-private evaluation of a box-encoded blade-major batch (module docs).
#[allow(clippy::too_many_arguments)]
pub fn infer_box_encoded<R: RngCore + CryptoRng>(
    ev: &Evaluator<'_>,
    pk: &PublicKey<Vec<u64>>,
    rlk: &RelinearizationKey,
    model: &GnnModel,
    header: &BatchHeader,
    cts: &[CiphertextOwned],
    opts: &InferOptions,
    masks: Option<&MaskMemo>,
    rng: &mut R,
) -> Result<ScoredBatch, ProtocolError> {
    let schedule = profile::schedule_for(ev.context().params(), &model.encrypted_plan(), header.circuit_private, 1)?;
    infer_box_encoded_with_noise(ev, pk, rlk, model, header, cts, opts, &schedule, 0.0, masks, rng)
}

/// [`infer_box_encoded`] under `schedule` on inputs that carry deterministic noise of 2-norm
/// `input_l2` per blade beyond a fresh encryption's (a batch assembled from enrolled devices,
/// under `profile::device_schedule`): the bounds, and so the flood, cover it.
#[allow(clippy::too_many_arguments)]
pub(super) fn infer_box_encoded_with_noise<R: RngCore + CryptoRng>(
    ev: &Evaluator<'_>,
    pk: &PublicKey<Vec<u64>>,
    rlk: &RelinearizationKey,
    model: &GnnModel,
    header: &BatchHeader,
    cts: &[CiphertextOwned],
    opts: &InferOptions,
    schedule: &Schedule,
    input_l2: f64,
    masks: Option<&MaskMemo>,
    rng: &mut R,
) -> Result<ScoredBatch, ProtocolError> {
    let ectx = ev.context();
    let params = *ectx.params();
    let bad = |reason: &str| ProtocolError::refused("batch", reason);
    let plan = model.encrypted_plan();
    if header.profile_fingerprint != InputProfile::of_gnn(model, &params, header.circuit_private)?.fingerprint {
        return Err(wrong_profile());
    }
    if !opts.no_flooding && !header.circuit_private {
        return Err(bad(
            "this batch was encrypted for a --no-flooding profile (the preset's scale, where no flood is \
             sound): for a circuit-private result re-encrypt with a profile made without --no-flooding, or pass --no-flooding",
        ));
    }
    let patients = header.patients;
    if opts.patients.is_some_and(|p| p != patients) {
        return Err(ProtocolError::refused("--patients", format!("the batch holds {patients} patients")));
    }
    let first = cts.first().ok_or_else(|| bad("empty batch"))?.meta;
    if first.level < schedule.input_level {
        return Err(ProtocolError::BadLevel {
            level: schedule.input_level,
            max: first.level,
        });
    }
    if first.scale != schedule.input_scale {
        return Err(bad(&format!(
            "scale 2^{:.2}, but this model's profile encrypts at 2^{:.2}",
            first.scale.log2(),
            schedule.input_scale.log2()
        )));
    }
    let analysis = profile::analyse_with_input_noise(&params, &plan, schedule, Packing::BladeMajor, input_l2)?;
    let scores = evaluate_scheduled(ev, rlk, &plan, schedule, cts).map_err(|e| ProtocolError::refused("model", e))?;
    let used: Vec<bool> = (0..params.max_slots()).map(|s| s < patients).collect();
    let (out, noise_bound, vendor_flood) = if opts.no_flooding {
        let masked = scores.iter().map(|s| mask_unused(ev, s, &used)).collect::<Result<Vec<_>, _>>()?;
        // The mask multiplies the noise by at most 1 + 2^-40 and its rescale adds a rounding.
        let bound = analysis.per_coefficient_bound * (1.0 + 1e-6) + rescale_rounding_l2(params.n());
        (masked, bound, None)
    } else {
        let sanitized = sanitize_scores(ectx, pk, &scores, (&analysis).into(), used, opts.statistical_security, masks, rng)?;
        let bound = sanitized.iter().map(|s| s.release_noise_bound).fold(0.0, f64::max);
        let flood = sanitized.iter().map(|s| s.flood_log2).max();
        (sanitized.into_iter().map(|s| s.ciphertext).collect(), bound, flood)
    };
    Ok(ScoredBatch {
        manifest: ScoresManifest::new(
            &params,
            model.label_names(),
            patients,
            BatchLayout::BladeMajor,
            !opts.no_flooding,
            opts.statistical_security,
            noise_bound,
            vendor_flood,
        ),
        scores: out,
    })
}

/// The `--no-flooding` evaluation of an interleaved batch (one ciphertext) or of
/// single-patient device ciphertexts (full-slot, patient in slots 0..7), merged by a rotation
/// tree: -> blade-major (1 level) -> the model -> unused slots masked. NOT circuit-private.
/// `gks` holds [`rotation_steps`] for the number of device ciphertexts merged.
#[allow(clippy::too_many_arguments)]
pub fn infer_interleaved(
    ev: &Evaluator<'_>,
    rlk: &RelinearizationKey,
    gks: &GaloisKeys,
    model: &GnnModel,
    cts: Vec<CiphertextOwned>,
    patients: usize,
    merge: bool,
    statistical_security: u32,
) -> Result<ScoredBatch, ProtocolError> {
    let ectx = ev.context();
    let params = *ectx.params();
    let capacity = EncryptedMultivectorBatch::capacity(ectx, Layout::Interleaved);
    if patients == 0 || patients > capacity {
        return Err(ProtocolError::TooManyPatients {
            patients,
            first_slot: 0,
            max: capacity,
        });
    }
    let plan = model.plan();
    // Levels: 1 (layout) + model depth + 1 (mask) must fit below the input level.
    let need = plan.depth() + 2;
    let level = cts.first().map_or(0, |c| c.meta.level);
    if level < need {
        return Err(ProtocolError::BadLevel { level: need, max: level });
    }
    let eval_err = |what: &'static str| move |e| ProtocolError::refused(what, e);
    let batch = if merge {
        EncryptedMultivectorBatch::merge_from_slot_zero(ev, &cts, gks).map_err(eval_err("merging device ciphertexts"))?
    } else {
        EncryptedMultivectorBatch::from_ciphertexts(ectx, Layout::Interleaved, cts, patients).map_err(eval_err("batch"))?
    };
    let blades = batch.to_blade_major(ev, gks).map_err(eval_err("layout conversion"))?;
    let scores = evaluate_blade_major(ev, rlk, &plan, blades.ciphertexts()).map_err(eval_err("model"))?;
    // Without flooding the release floods the legacy bound of a shallow circuit; the result is
    // not circuit-private either way (module docs of `privacy`).
    let noise_bound = evaluation_noise_bound(params.n(), need);
    let used: Vec<bool> = (0..params.max_slots()).map(|s| s % 8 == 0 && s / 8 < patients).collect();
    let masked = scores.iter().map(|s| mask_unused(ev, s, &used)).collect::<Result<Vec<_>, _>>()?;
    Ok(ScoredBatch {
        manifest: ScoresManifest::new(
            &params,
            model.label_names(),
            patients,
            BatchLayout::Interleaved,
            false,
            statistical_security,
            noise_bound,
            None,
        ),
        scores: masked,
    })
}

/// Zeroes the slots that carry no patient's score (one level, the one `infer` reserves for the
/// mask): the `--no-flooding` output then holds only the patients' scores. Still NOT
/// circuit-private (no re-randomisation, no flooding).
pub fn mask_unused(ev: &Evaluator<'_>, ct: &CiphertextOwned, used: &[bool]) -> Result<CiphertextOwned, ProtocolError> {
    let level = ct.meta.level;
    let q = ev
        .context()
        .params()
        .q()
        .get(level)
        .copied()
        .filter(|_| level > 0)
        .ok_or(ProtocolError::BadLevel { level: 1, max: level })?;
    let values: Vec<Complex> = used.iter().map(|&u| Complex::from_real(if u { 1.0 } else { 0.0 })).collect();
    // Encoded at q_l: the rescale divides it out again, so the scale is kept exactly.
    let pt = ev.encode(&values, level, q as f64)?;
    Ok(ev.rescale_owned(ev.mul_plain(ct, &pt)?)?)
}
