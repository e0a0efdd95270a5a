//! The vendor's public input profile of a model, and the one place that decides an encrypted
//! evaluation's levels and scales ([`schedule_for`]) for the demo, the profile and `infer`.
//!
//! A circuit-private result (flooded at s = 30, `crate::privacy`) needs inputs box-encoded
//! (u = (clamp(x) - center) / half_width in [-1, 1]^8: the proven noise bound of
//! [`crate::gnn::noise`] covers exactly that domain) and encrypted at the large scale of
//! [`Schedule::circuit_private`]. The hospital therefore needs three public facts about the
//! vendor's model, and not its weights: the input box (the training features' range), the
//! level and the scale to encrypt at. The profile carries them, with a fingerprint that the
//! hospital copies into its batch and the vendor recomputes from the model, so a batch
//! encrypted for another model, preset or privacy mode is refused instead of evaluated on
//! inputs the bounds do not cover.

use super::{BatchLayout, ProtocolError};
use crate::gnn::encrypted::Schedule;
use crate::gnn::noise::{NoiseReport, Packing};
use crate::gnn::{GnnModel, InferencePlan, InputBox};
use crate::preprocess::Pipeline;
use clifhe_core::multivector::Multivector;
use clifhe_core::Params;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Format tag of a profile.
pub const PROFILE_FORMAT: &str = "clifhe-input-profile/2";

/// Mask passes the vendor applies before flooding (two: the unused slots keep value * delta^2,
/// negligible next to the evaluation noise; see `SanitizeConfig::mask_passes`).
pub const MASK_PASSES: usize = 2;
/// Level the sanitised scores sit on (q0 q1 ~ 2^116 on private-n15 holds scores at ~2^100).
pub const FINAL_LEVEL: usize = 1;

/// Lowercase hex SHA-256 of `bytes`: the fingerprints of profiles and key sets.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The levels and scales of an encrypted evaluation of `plan` (box-encoded inputs,
/// `GnnModel::encrypted_plan`) on `params`:
/// - `circuit_private`: [`Schedule::circuit_private`], leaving [`MASK_PASSES`] levels for the
///   sanitiser's masks and ending the sanitised scores on [`FINAL_LEVEL`];
/// - otherwise the preset's scale throughout, starting at the lowest level that leaves the
///   model's depth plus `mask_levels` (the `--no-flooding` mask of `infer`).
pub fn schedule_for(params: &Params, plan: &InferencePlan, circuit_private: bool, mask_levels: usize) -> Result<Schedule, ProtocolError> {
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
        ProtocolError::refused(
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

/// The proven range and noise bounds of `schedule` in `packing` ([`crate::gnn::noise`]),
/// refused when the model's values do not fit the ciphertext modulus at some step.
pub fn analyse(params: &Params, plan: &InferencePlan, schedule: &Schedule, packing: Packing) -> Result<NoiseReport, ProtocolError> {
    let analysis = schedule
        .analyse_packed(params, plan, packing)
        .map_err(|e| ProtocolError::refused("noise analysis", e))?;
    if analysis.headroom_bits < 0.0 {
        return Err(ProtocolError::refused(
            "noise analysis",
            "the model's proven value range does not fit the ciphertext modulus",
        ));
    }
    Ok(analysis)
}

/// What the hospital needs to encrypt patients for one model on one preset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputProfile {
    /// [`PROFILE_FORMAT`].
    pub format: String,
    /// Preset name.
    pub preset: String,
    /// Whether the vendor's `infer` floods the result (the default): the inputs then go in at
    /// the circuit-private schedule's large scale.
    pub circuit_private: bool,
    /// Always [`BatchLayout::BladeMajor`]: ciphertext k holds blade k of patient p in slot p.
    pub layout: BatchLayout,
    /// Level to encrypt at.
    pub input_level: usize,
    /// log2 of the scale to encrypt at.
    pub input_log_scale: f64,
    /// The model's public input box: features are clamped into it and encoded as
    /// (x - center) / half_width.
    pub input_box: InputBox,
    /// Highest level the sanitised scores come back on (the hospital pins it in its batch
    /// record; the release refuses results above it).
    pub result_level: usize,
    /// log2 of the scores' scale (pinned the same way; the hospital sizes its release flood
    /// from it, not from anything the vendor sends with the results).
    pub result_log_scale: f64,
    /// Patients one batch holds (N/2).
    pub capacity: usize,
    /// Classes the model scores.
    pub classes: usize,
    /// Class labels.
    pub labels: Vec<String>,
    /// The scan preprocessing of the model (`crate::preprocess`): the hospital runs its scans
    /// through it before the features. Absent for models that record none (model format 1
    /// and 2), whose profiles keep their fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preprocessing: Option<Pipeline>,
    /// SHA-256 over the preset, the privacy mode, the box's exact f64 bits and the pipeline
    /// (see module docs).
    pub fingerprint: String,
}

/// The fingerprint of (preset, privacy mode, input box, pipeline): exact, from the f64 bits and
/// the pipeline's canonical JSON, so the vendor recomputes it from the model file without any
/// decimal round trip. A batch whose features went through another pipeline is refused like
/// one for another box. A model without a recorded pipeline hashes as before pipelines existed.
pub fn fingerprint(params: &Params, circuit_private: bool, input_box: &InputBox, preprocessing: Option<&Pipeline>) -> String {
    let mut bytes = Vec::with_capacity(320);
    bytes.extend_from_slice(PROFILE_FORMAT.as_bytes());
    bytes.extend_from_slice(params.name().as_bytes());
    bytes.push(u8::from(circuit_private));
    for v in input_box.center.iter().chain(&input_box.half_width) {
        bytes.extend_from_slice(&v.to_bits().to_le_bytes());
    }
    if let Some(p) = preprocessing {
        bytes.extend_from_slice(b"preprocessing");
        bytes.extend_from_slice(&pipeline_bytes(p));
    }
    sha256_hex(&bytes)
}

/// The pipeline's canonical bytes: its JSON (serde writes fields in declaration order, floats
/// in shortest round-trip form, so the same pipeline always gives the same bytes).
fn pipeline_bytes(p: &Pipeline) -> Vec<u8> {
    // Serialising a struct of numbers, strings and enums cannot fail.
    serde_json::to_vec(p).unwrap_or_default()
}

impl InputProfile {
    /// Indices of the patients whose features lie outside the input box (encryption clamps
    /// them into it; the hospital flags their diagnoses).
    pub fn out_of_box(&self, features: &[[f64; 8]]) -> Vec<usize> {
        features
            .iter()
            .enumerate()
            .filter(|(_, f)| !self.input_box.contains(&Multivector::new(**f)))
            .map(|(i, _)| i)
            .collect()
    }

    /// Vendor: the profile of `model` on `params` (refused when the preset cannot evaluate the
    /// model in the chosen privacy mode).
    pub fn of_model(model: &GnnModel, params: &Params, circuit_private: bool) -> Result<Self, ProtocolError> {
        let plan = model.encrypted_plan();
        let schedule = schedule_for(params, &plan, circuit_private, 1)?;
        analyse(params, &plan, &schedule, Packing::BladeMajor)?;
        let input_box = model.input_box();
        Ok(Self {
            format: PROFILE_FORMAT.into(),
            preset: params.name().into(),
            circuit_private,
            layout: BatchLayout::BladeMajor,
            input_level: schedule.input_level,
            input_log_scale: schedule.input_scale.log2(),
            result_level: if circuit_private {
                FINAL_LEVEL
            } else {
                schedule.input_level.saturating_sub(plan.depth() + 1)
            },
            result_log_scale: schedule.output_scale().log2(),
            fingerprint: fingerprint(params, circuit_private, &input_box, model.preprocessing()),
            preprocessing: model.preprocessing().cloned(),
            input_box,
            capacity: params.max_slots(),
            classes: model.classes(),
            labels: model.label_names().to_vec(),
        })
    }

    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> Result<Vec<u8>, ProtocolError> {
        let mut json = serde_json::to_vec_pretty(self).map_err(|e| ProtocolError::corrupt("input profile", e))?;
        json.push(b'\n');
        Ok(json)
    }

    /// Hospital: parses a profile from the vendor and checks it against the key set's preset:
    /// the format, a finite box with positive widths, a level on the chain, a power-of-two scale
    /// the chain carries at that level, a valid preprocessing pipeline, the fingerprint of what
    /// it states, and labels for exactly its classes.
    pub fn from_json_checked(bytes: &[u8], params: &Params) -> Result<Self, ProtocolError> {
        let p: Self = serde_json::from_slice(bytes).map_err(|e| ProtocolError::corrupt("input profile", e))?;
        if p.format != PROFILE_FORMAT || p.layout != BatchLayout::BladeMajor {
            return Err(ProtocolError::corrupt(
                "input profile",
                format!(
                    "format {} / layout {}, expected {PROFILE_FORMAT} / blade-major",
                    p.format,
                    p.layout.name()
                ),
            ));
        }
        if p.preset != params.name() {
            return Err(ProtocolError::PresetMismatch {
                found: p.preset,
                expected: params.name().into(),
            });
        }
        let valid_box = p.input_box.center.iter().chain(&p.input_box.half_width).all(|v| v.is_finite())
            && p.input_box.half_width.iter().all(|&h| h > 0.0);
        let log_q: f64 = params.q().iter().take(p.input_level + 1).map(|&q| (q as f64).log2()).sum();
        if !valid_box
            || p.input_level > params.max_level()
            || p.input_log_scale.fract() != 0.0
            || !(1.0..=log_q - 4.0).contains(&p.input_log_scale)
        {
            return Err(ProtocolError::corrupt("input profile", "input box, level or scale out of range"));
        }
        if p.classes == 0
            || p.labels.len() != p.classes
            || p.capacity != params.max_slots()
            || p.result_level > p.input_level
            || !(p.result_log_scale.is_finite() && p.result_log_scale > 0.0)
        {
            return Err(ProtocolError::corrupt("input profile", "classes, labels or capacity out of range"));
        }
        if let Some(pipeline) = &p.preprocessing {
            pipeline.validate().map_err(|e| ProtocolError::corrupt("input profile", e))?;
        }
        if p.fingerprint != fingerprint(params, p.circuit_private, &p.input_box, p.preprocessing.as_ref()) {
            return Err(ProtocolError::corrupt(
                "input profile",
                "its fingerprint does not match its box, mode and preprocessing",
            ));
        }
        Ok(p)
    }
}
