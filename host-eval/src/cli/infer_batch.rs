//! `infer` on a box-encoded blade-major batch (`encrypt --profile`): the circuit-private path
//! of the command line, the same evaluation and sanitisation as `demo` (DESIGN section 8).
//!
//! 1. The batch's profile fingerprint must be this model's (same preset, privacy mode and input
//!    box): the noise bound below holds only for inputs encoded in this model's box.
//! 2. `Schedule` of the profile (`profile::schedule_for`), its proven noise and range analysis
//!    (`Schedule::analyse`), and `evaluate_scheduled`: one score ciphertext per class, patient p
//!    in slot p.
//! 3. Sanitisation of every score ciphertext (`sanitize_scores`): unused slots masked (two
//!    passes), re-randomised, flooded at s bits over the proven bound, dropped to the lowest
//!    level that holds scores and floods. The manifest records the bound the hospital's
//!    release flood must hide (`Sanitized::release_noise_bound`).

use super::batchfile::BatchHeader;
use super::error::CliError;
use super::profile::{self, MASK_PASSES};
use super::protocol::{mask_unused, write_scores, InferOptions, ScoresManifest};
use clifhe_core::ciphertext::CiphertextOwned;
use clifhe_core::PublicKey;
use clifhe_std::gnn::encrypted::evaluate_scheduled;
use clifhe_std::gnn::noise::{rescale_rounding_l2, NoiseReport, Packing};
use clifhe_std::gnn::GnnModel;
use clifhe_std::privacy::{sanitize, SanitizeConfig, Sanitized};
use clifhe_std::{EvalContext, Evaluator, RelinearizationKey};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;
use std::path::Path;

/// Sanitises score ciphertexts in parallel (each with its own ChaCha20 stream seeded from
/// `rng`), with the proven bounds of `analysis`: the vendor's last step before anything leaves.
pub fn sanitize_scores<R: RngCore>(
    ectx: &EvalContext,
    pk: &PublicKey<Vec<u64>>,
    scores: &[CiphertextOwned],
    analysis: &NoiseReport,
    used_slots: Vec<bool>,
    statistical_security: u32,
    rng: &mut R,
) -> Result<Vec<Sanitized>, CliError> {
    let mut cfg = SanitizeConfig::new(analysis.per_coefficient_bound);
    cfg.statistical_security = statistical_security;
    cfg.used_slots = Some(used_slots);
    cfg.value_bound = Some(analysis.ranges.score_bound());
    cfg.mask_passes = MASK_PASSES as u32;
    let seeds: Vec<[u8; 32]> = scores
        .iter()
        .map(|_| {
            let mut s = [0u8; 32];
            rng.fill_bytes(&mut s);
            s
        })
        .collect();
    Ok(scores
        .par_iter()
        .zip(&seeds)
        .map(|(c, seed)| sanitize(ectx, pk, c, &cfg, &mut ChaCha20Rng::from_seed(*seed)))
        .collect::<Result<Vec<_>, _>>()?)
}

/// See the module docs. `input` names the batch file in errors.
#[allow(clippy::too_many_arguments)]
pub(crate) fn infer_box_encoded(
    o: &InferOptions,
    input: &Path,
    ev: &Evaluator<'_>,
    pk: &PublicKey<Vec<u64>>,
    rlk: &RelinearizationKey,
    model: &GnnModel,
    header: &BatchHeader,
    cts: &[CiphertextOwned],
) -> Result<ScoresManifest, CliError> {
    let ectx = ev.context();
    let params = *ectx.params();
    let bad = |reason: String| CliError::bad_input(input.display(), reason);
    if header.profile_fingerprint != profile::fingerprint(&params, header.circuit_private, &model.input_box()) {
        return Err(bad(
            "this batch was encrypted for another model's input profile (or another preset or privacy mode): \
             re-encrypt with `host-eval encrypt --profile` and this model's `host-eval profile`"
                .into(),
        ));
    }
    if !o.no_flooding && !header.circuit_private {
        return Err(bad(
            "this batch was encrypted for a --no-flooding profile (the preset's scale, where no flood is \
             sound): for a circuit-private result re-encrypt with a profile made without --no-flooding, or pass --no-flooding"
                .into(),
        ));
    }
    let patients = header.patients;
    if o.patients.is_some_and(|p| p != patients) {
        return Err(CliError::bad_input("--patients", format!("the batch holds {patients} patients")));
    }
    let plan = model.encrypted_plan();
    let schedule = profile::schedule_for(&params, &plan, header.circuit_private, 1)?;
    let first = cts.first().ok_or_else(|| bad("empty batch".into()))?.meta;
    if first.level < schedule.input_level {
        return Err(CliError::BadLevel {
            level: schedule.input_level,
            max: first.level,
        });
    }
    if first.scale != schedule.input_scale {
        return Err(bad(format!(
            "scale 2^{:.2}, but this model's profile encrypts at 2^{:.2}",
            first.scale.log2(),
            schedule.input_scale.log2()
        )));
    }
    let analysis = profile::analyse(&params, &plan, &schedule, Packing::BladeMajor)?;
    let scores = evaluate_scheduled(ev, rlk, &plan, &schedule, cts).map_err(|e| CliError::bad_input("model", e))?;
    let used: Vec<bool> = (0..params.max_slots()).map(|s| s < patients).collect();
    let (out, noise_bound, vendor_flood) = if o.no_flooding {
        let masked = scores.iter().map(|s| mask_unused(ev, s, &used)).collect::<Result<Vec<_>, _>>()?;
        // The mask multiplies the noise by at most 1 + 2^-40 and its rescale adds a rounding.
        let bound = analysis.per_coefficient_bound * (1.0 + 1e-6) + rescale_rounding_l2(params.n());
        (masked, bound, None)
    } else {
        let mut rng = super::keyset::os_rng()?;
        let sanitized = sanitize_scores(ectx, pk, &scores, &analysis, used, o.statistical_security, &mut rng)?;
        let bound = sanitized.iter().map(|s| s.release_noise_bound).fold(0.0, f64::max);
        let flood = sanitized.iter().map(|s| s.flood_log2).max();
        (sanitized.into_iter().map(|s| s.ciphertext).collect(), bound, flood)
    };
    write_scores(
        o,
        &out,
        ScoresManifest::new(
            &params,
            model,
            patients,
            1,
            !o.no_flooding,
            o.statistical_security,
            noise_bound,
            vendor_flood,
        ),
    )
}
