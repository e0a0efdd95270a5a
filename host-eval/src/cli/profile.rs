//! The vendor's public input profile of a model (`host-eval profile`), and the one place that
//! decides an encrypted evaluation's levels and scales ([`schedule_for`]) for `demo`,
//! `profile` and `infer`.
//!
//! A circuit-private result (flooded at s = 30, DESIGN section 8) needs inputs box-encoded
//! (u = (clamp(x) - center) / half_width in [-1, 1]^8: the proven noise bound of
//! `clifhe_std::gnn::noise` covers exactly that domain) and encrypted at the large scale of
//! `Schedule::circuit_private`. The hospital therefore needs three public facts about the
//! vendor's model, and not its weights: the input box (the training features' range), the
//! level and the scale to encrypt at. The profile carries them, with a fingerprint that the
//! hospital copies into its batch file and the vendor recomputes from the model, so a batch
//! encrypted for another model, preset or privacy mode is refused instead of evaluated on
//! inputs the bounds do not cover.

use super::error::CliError;
use super::fsio;
use super::keyset::sha256_hex;
use clifhe_core::Params;
use clifhe_std::gnn::encrypted::Schedule;
use clifhe_std::gnn::noise::{NoiseReport, Packing};
use clifhe_std::gnn::{GnnModel, InferencePlan, InputBox};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Format tag of a profile file.
pub const PROFILE_FORMAT: &str = "clifhe-input-profile/1";

/// Mask passes the vendor applies before flooding (two: the unused slots keep value * delta^2,
/// negligible next to the evaluation noise; see `SanitizeConfig::mask_passes`).
pub const MASK_PASSES: usize = 2;
/// Level the sanitised scores sit on (q0 q1 ~ 2^116 on private-n15 holds scores at ~2^100).
pub const FINAL_LEVEL: usize = 1;

/// The levels and scales of an encrypted evaluation of `plan` (box-encoded inputs,
/// `GnnModel::encrypted_plan`) on `params`:
/// - `circuit_private`: `Schedule::circuit_private`, leaving [`MASK_PASSES`] levels for the
///   sanitiser's masks and ending the sanitised scores on [`FINAL_LEVEL`];
/// - otherwise the preset's scale throughout, starting at the lowest level that leaves the
///   model's depth plus `mask_levels` (the `--no-flooding` mask of `infer`).
pub fn schedule_for(params: &Params, plan: &InferencePlan, circuit_private: bool, mask_levels: usize) -> Result<Schedule, CliError> {
    if circuit_private {
        Schedule::circuit_private(params, plan, MASK_PASSES, FINAL_LEVEL)
    } else {
        Schedule::new(
            params,
            plan,
            plan.depth() + mask_levels,
            params.default_scale(),
            params.default_scale(),
        )
    }
    .map_err(|e| {
        CliError::bad_input(
            format!(
                "{} cannot evaluate this model{}",
                params.name(),
                if circuit_private {
                    " with a circuit-private (flooded) result; use private-n15, or --no-flooding (NOT circuit-private)"
                } else {
                    ""
                }
            ),
            e,
        )
    })
}

/// The proven range and noise bounds of `schedule` in `packing` (`gnn::noise`), refused when
/// the model's values do not fit the ciphertext modulus at some step.
pub fn analyse(params: &Params, plan: &InferencePlan, schedule: &Schedule, packing: Packing) -> Result<NoiseReport, CliError> {
    let analysis = schedule
        .analyse_packed(params, plan, packing)
        .map_err(|e| CliError::bad_input("noise analysis", e))?;
    if analysis.headroom_bits < 0.0 {
        return Err(CliError::bad_input(
            "noise analysis",
            "the model's proven value range does not fit the ciphertext modulus",
        ));
    }
    Ok(analysis)
}

/// What the hospital needs to encrypt patients for one model on one preset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputProfile {
    pub format: String,
    pub preset: String,
    /// Whether the vendor's `infer` floods the result (the default): the inputs then go in at
    /// the circuit-private schedule's large scale.
    pub circuit_private: bool,
    /// Always "blade-major": ciphertext k holds blade k of patient p in slot p.
    pub layout: String,
    /// Level and log2 of the scale to encrypt at.
    pub input_level: usize,
    pub input_log_scale: f64,
    /// The model's public input box: features are clamped into it and encoded as
    /// (x - center) / half_width.
    pub input_box: InputBox,
    /// Patients one batch holds (N/2).
    pub capacity: usize,
    pub classes: usize,
    pub labels: Vec<String>,
    /// SHA-256 over the preset, the privacy mode and the box's exact f64 bits (see module docs).
    pub fingerprint: String,
}

/// The fingerprint of (preset, privacy mode, input box): exact, from the f64 bits, so the
/// vendor recomputes it from the model file without any decimal round trip.
pub fn fingerprint(params: &Params, circuit_private: bool, input_box: &InputBox) -> String {
    let mut bytes = Vec::with_capacity(160);
    bytes.extend_from_slice(PROFILE_FORMAT.as_bytes());
    bytes.extend_from_slice(params.name().as_bytes());
    bytes.push(u8::from(circuit_private));
    for v in input_box.center.iter().chain(&input_box.half_width) {
        bytes.extend_from_slice(&v.to_bits().to_le_bytes());
    }
    sha256_hex(&bytes)
}

/// The profile of `model` on `params`.
pub fn of_model(model: &GnnModel, params: &Params, circuit_private: bool) -> Result<InputProfile, CliError> {
    let plan = model.encrypted_plan();
    let schedule = schedule_for(params, &plan, circuit_private, 1)?;
    analyse(params, &plan, &schedule, Packing::BladeMajor)?;
    let input_box = model.input_box();
    Ok(InputProfile {
        format: PROFILE_FORMAT.into(),
        preset: params.name().into(),
        circuit_private,
        layout: "blade-major".into(),
        input_level: schedule.input_level,
        input_log_scale: schedule.input_scale.log2(),
        fingerprint: fingerprint(params, circuit_private, &input_box),
        input_box,
        capacity: params.max_slots(),
        classes: model.classes(),
        labels: model.label_names().to_vec(),
    })
}

/// `host-eval profile`: reads the model, writes its profile for the key set's preset.
pub fn write_profile(model: &Path, params: &Params, circuit_private: bool, out: &Path) -> Result<InputProfile, CliError> {
    let text = std::fs::read_to_string(model).map_err(|e| CliError::io(model, "read", e))?;
    let model = GnnModel::from_json(&text)?;
    let p = of_model(&model, params, circuit_private)?;
    let mut json = serde_json::to_vec_pretty(&p).map_err(|e| CliError::bad_input("profile", e))?;
    json.push(b'\n');
    fsio::write_atomic(out, &json)?;
    Ok(p)
}

/// Reads and checks a profile file against the key set's preset.
pub fn read_profile(path: &Path, params: &Params) -> Result<InputProfile, CliError> {
    let bytes = fsio::read(path)?;
    let p: InputProfile = serde_json::from_slice(&bytes).map_err(|e| CliError::corrupt(path, "input profile", e))?;
    if p.format != PROFILE_FORMAT || p.layout != "blade-major" {
        return Err(CliError::corrupt(
            path,
            "input profile",
            format!("format {} / layout {}, expected {PROFILE_FORMAT} / blade-major", p.format, p.layout),
        ));
    }
    if p.preset != params.name() {
        return Err(CliError::PresetMismatch {
            path: path.to_path_buf(),
            file_preset: p.preset,
            keys_preset: params.name().into(),
        });
    }
    let valid_box =
        p.input_box.center.iter().chain(&p.input_box.half_width).all(|v| v.is_finite()) && p.input_box.half_width.iter().all(|&h| h > 0.0);
    // The scale must be a power of two the chain can carry at that level.
    let log_q: f64 = params.q().iter().take(p.input_level + 1).map(|&q| (q as f64).log2()).sum();
    if !valid_box
        || p.input_level > params.max_level()
        || p.input_log_scale.fract() != 0.0
        || !(1.0..=log_q - 4.0).contains(&p.input_log_scale)
    {
        return Err(CliError::corrupt(path, "input profile", "input box, level or scale out of range"));
    }
    Ok(p)
}
