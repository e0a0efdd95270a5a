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
//!
//! An equivariant model's profile carries, in place of the box, its channel spec and public
//! input domain ([`ProfileInput::Channels`]), the level and scale of the lowest-level policy that
//! fits the flood, and, in the block layout, the patients per batch and the rotations the
//! hospital makes Galois keys for.

use super::model::VendorModel;
use super::{BatchLayout, ProtocolError};
use crate::gnn::encrypted::Schedule;
use crate::gnn::equivariant_blocks::{fitting_policy as blocks_fitting_policy, BlockLayout};
use crate::gnn::equivariant_encrypted::{fitting_policy, InputBounds, ScalePolicy};
use crate::gnn::equivariant_model::{ChannelSpec, EquivariantModel};
use crate::gnn::noise::{NoiseReport, Packing};
use crate::gnn::{GnnModel, InferencePlan, InputBox};
use crate::preprocess::Pipeline;
use crate::privacy::DEFAULT_STATISTICAL_SECURITY;
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
/// An equivariant model's floods (the vendor's and the hospital's) must leave the decoded
/// scores' standard deviation below 2^-this of a score unit, so that the released argmax is
/// the model's (`EquivariantReport::check_flood_fits`).
pub const EQUIVARIANT_FLOOD_PRECISION_BITS: f64 = 12.0;

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

/// The schedule of a circuit-private evaluation of a batch assembled from enrolled devices'
/// ciphertexts (`protocol::device`): the profile's levels and output, inputs at
/// 2^[`crate::gnn::encrypted::PRIVATE_LOG_INPUT_SCALE_DEVICE`].
pub fn device_schedule(params: &Params, plan: &InferencePlan) -> Result<Schedule, ProtocolError> {
    Schedule::circuit_private_at(
        params,
        plan,
        MASK_PASSES,
        FINAL_LEVEL,
        crate::gnn::encrypted::PRIVATE_LOG_INPUT_SCALE_DEVICE,
    )
    .map_err(|e| ProtocolError::refused("model", format!("no circuit-private schedule for device inputs: {e}")))
}

/// The proven range and noise bounds of `schedule` in `packing` ([`crate::gnn::noise`]),
/// refused when the model's values do not fit the ciphertext modulus at some step.
pub fn analyse(params: &Params, plan: &InferencePlan, schedule: &Schedule, packing: Packing) -> Result<NoiseReport, ProtocolError> {
    analyse_with_input_noise(params, plan, schedule, packing, 0.0)
}

/// [`analyse`] for inputs that carry, beyond a fresh encryption's noise, deterministic noise of
/// 2-norm `input_l2` per blade (a batch assembled from enrolled devices' ciphertexts).
pub fn analyse_with_input_noise(
    params: &Params,
    plan: &InferencePlan,
    schedule: &Schedule,
    packing: Packing,
    input_l2: f64,
) -> Result<NoiseReport, ProtocolError> {
    let analysis = schedule
        .analyse_with_input_noise(params, plan, packing, input_l2)
        .map_err(|e| ProtocolError::refused("noise analysis", e))?;
    if analysis.headroom_bits < 0.0 {
        return Err(ProtocolError::refused(
            "noise analysis",
            "the model's proven value range does not fit the ciphertext modulus",
        ));
    }
    Ok(analysis)
}

/// The model kind's part of a profile: what the hospital computes from each scan, and how it
/// clamps and encodes it. Flattened into the profile, so a GNN profile keeps its `input_box`
/// field (and its fingerprint) as before equivariant models existed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileInput {
    /// A GNN: 8 features per patient, clamped into the model's public input box and encoded as
    /// (x - center) / half_width, blade k of patient p in slot p of ciphertext k.
    InputBox(InputBox),
    /// An equivariant model: the channel multivectors of each scan, clamped into the public
    /// input domain (each grade's norm scaled down to its bound, a rotation-invariant clamp) and
    /// encrypted as they are: per channel one ciphertext per present blade, patient p in slot p.
    Channels(ChannelInput),
}

/// What the hospital needs to encrypt for an equivariant model (no weights).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChannelInput {
    /// The channels of a prepared scan (intensity shells, principal axes).
    pub spec: ChannelSpec,
    /// The public input domain: present blades and per-grade norm bounds of each channel.
    pub domain: InputBounds,
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
    /// [`BatchLayout::BladeMajor`] (patient p in slot p of every ciphertext), or for an
    /// equivariant model [`BatchLayout::Blocks`] (every channel of up to `capacity` patients in
    /// each of two ciphertexts per channel, `gnn::equivariant_blocks`).
    pub layout: BatchLayout,
    /// Level to encrypt at.
    pub input_level: usize,
    /// log2 of the scale to encrypt at.
    pub input_log_scale: f64,
    /// What the hospital computes from a scan and how it encodes it (the model kind's part).
    #[serde(flatten)]
    pub input: ProfileInput,
    /// Highest level the sanitised scores come back on (the hospital pins it in its batch
    /// record; the release refuses results above it).
    pub result_level: usize,
    /// log2 of the scores' scale (pinned the same way; the hospital sizes its release flood
    /// from it, not from anything the vendor sends with the results).
    pub result_log_scale: f64,
    /// Patients one batch holds (N/2; fewer in the block layout).
    pub capacity: usize,
    /// Rotation steps the evaluation needs Galois keys for (`evalkeys --profile`): the block
    /// layout's; empty (and absent from the file) for blade-major batches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rotations: Vec<i64>,
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

/// The fingerprint of a profile: SHA-256 over its preset, privacy mode, input (box, or channel
/// spec and domain), pipeline and, for a channel profile, its layout, level, scale and
/// rotations: exact, from the f64 bits and the pipeline's canonical JSON, so the vendor
/// recomputes it from the model file without any decimal round trip. A batch whose features went
/// through another pipeline is refused like one for another box. A model without a recorded
/// pipeline hashes as before pipelines existed, and a GNN profile as before equivariant models
/// existed (its level and scale follow from the model; an equivariant profile's come from a
/// policy search and a layout choice, so they are hashed too).
fn fingerprint(p: &InputProfile) -> String {
    let mut bytes = Vec::with_capacity(320);
    bytes.extend_from_slice(PROFILE_FORMAT.as_bytes());
    bytes.extend_from_slice(p.preset.as_bytes());
    bytes.push(u8::from(p.circuit_private));
    match &p.input {
        ProfileInput::InputBox(b) => {
            for v in b.center.iter().chain(&b.half_width) {
                bytes.extend_from_slice(&v.to_bits().to_le_bytes());
            }
        }
        ProfileInput::Channels(c) => {
            bytes.extend_from_slice(b"channels");
            bytes.extend_from_slice(&(c.spec.shells as u64).to_le_bytes());
            bytes.push(u8::from(c.spec.principal_axes));
            for (present, norms) in c.domain.present.iter().zip(&c.domain.grade_norm) {
                bytes.extend(present.iter().map(|&b| u8::from(b)));
                for v in norms {
                    bytes.extend_from_slice(&v.to_bits().to_le_bytes());
                }
            }
            bytes.extend_from_slice(p.layout.name().as_bytes());
            bytes.extend_from_slice(&(p.input_level as u64).to_le_bytes());
            bytes.extend_from_slice(&p.input_log_scale.to_bits().to_le_bytes());
            bytes.extend_from_slice(&(p.capacity as u64).to_le_bytes());
            for r in &p.rotations {
                bytes.extend_from_slice(&r.to_le_bytes());
            }
        }
    }
    if let Some(pipeline) = &p.preprocessing {
        bytes.extend_from_slice(b"preprocessing");
        bytes.extend_from_slice(&pipeline_bytes(pipeline));
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
    /// The GNN profile's input box (refused for a channel profile).
    ///
    /// # Errors
    ///
    /// [`ProtocolError::Refused`] for an equivariant model's profile.
    pub fn input_box(&self) -> Result<&InputBox, ProtocolError> {
        match &self.input {
            ProfileInput::InputBox(b) => Ok(b),
            ProfileInput::Channels(_) => Err(ProtocolError::refused(
                "input profile",
                "it is an equivariant model's profile: the hospital encrypts the channels of scans (or volumes), not 8 features",
            )),
        }
    }

    /// The equivariant profile's channels and domain (refused for a GNN profile).
    ///
    /// # Errors
    ///
    /// [`ProtocolError::Refused`] for a GNN's profile.
    pub fn channels(&self) -> Result<&ChannelInput, ProtocolError> {
        match &self.input {
            ProfileInput::Channels(c) => Ok(c),
            ProfileInput::InputBox(_) => Err(ProtocolError::refused(
                "input profile",
                "it is a GNN's profile: the hospital encrypts 8 features per patient, not channels",
            )),
        }
    }

    /// The scale policy an equivariant profile encrypts at (and the vendor evaluates with).
    ///
    /// # Errors
    ///
    /// As [`Self::channels`].
    pub fn channel_policy(&self) -> Result<ScalePolicy, ProtocolError> {
        self.channels()?;
        Ok(ScalePolicy {
            input_level: Some(self.input_level),
            ..ScalePolicy::circuit_private(self.input_log_scale)
        })
    }

    /// Indices of the patients whose features lie outside the input box (encryption clamps
    /// them into it; the hospital flags their diagnoses). None for a channel profile.
    pub fn out_of_box(&self, features: &[[f64; 8]]) -> Vec<usize> {
        let ProfileInput::InputBox(input_box) = &self.input else {
            return Vec::new();
        };
        features
            .iter()
            .enumerate()
            .filter(|(_, f)| !input_box.contains(&Multivector::new(**f)))
            .map(|(i, _)| i)
            .collect()
    }

    /// Vendor: the profile of either kind of model on `params`, blade-major (refused when the
    /// preset cannot evaluate the model in the chosen privacy mode).
    pub fn of_model(model: &VendorModel, params: &Params, circuit_private: bool) -> Result<Self, ProtocolError> {
        Self::of_model_in(model, params, circuit_private, BatchLayout::BladeMajor)
    }

    /// [`Self::of_model`] in a chosen batch layout: blade-major for either kind, or the block
    /// layout for a one-layer equivariant network without gates (a few patients at low
    /// latency, with rotation keys).
    pub fn of_model_in(model: &VendorModel, params: &Params, circuit_private: bool, layout: BatchLayout) -> Result<Self, ProtocolError> {
        match (model, layout) {
            (VendorModel::Gnn(m), BatchLayout::BladeMajor) => Self::of_gnn(m, params, circuit_private),
            (VendorModel::Equivariant(m), BatchLayout::BladeMajor | BatchLayout::Blocks) => {
                Self::of_equivariant(m, params, circuit_private, layout)
            }
            (_, other) => Err(ProtocolError::refused(
                "--layout",
                format!("a {} model's profile has no {} layout", model.kind_name(), other.name()),
            )),
        }
    }

    /// The profile with its fingerprint computed from its fields (how [`Self::of_model`] ends;
    /// for profiles built by hand, e.g. test vectors).
    #[must_use]
    pub fn with_fingerprint(mut self) -> Self {
        self.fingerprint = fingerprint(&self);
        self
    }

    /// Vendor: the profile of a GNN on `params`.
    pub fn of_gnn(model: &GnnModel, params: &Params, circuit_private: bool) -> Result<Self, ProtocolError> {
        let plan = model.encrypted_plan();
        let schedule = schedule_for(params, &plan, circuit_private, 1)?;
        analyse(params, &plan, &schedule, Packing::BladeMajor)?;
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
            fingerprint: String::new(),
            preprocessing: model.preprocessing().cloned(),
            input: ProfileInput::InputBox(model.input_box()),
            capacity: params.max_slots(),
            rotations: Vec::new(),
            classes: model.classes(),
            labels: model.label_names().to_vec(),
        }
        .with_fingerprint())
    }

    /// Vendor: the profile of an equivariant model on `params` in `layout` (blade-major or
    /// blocks): the scale policy with the lowest input level under which the network runs in
    /// that layout and its scores take a flood of [`DEFAULT_STATISTICAL_SECURITY`] bits at
    /// [`EQUIVARIANT_FLOOD_PRECISION_BITS`] (`fitting_policy` of either layout). Only
    /// circuit-private: the model's file must record its input domain (`train --arch
    /// equivariant --circuit-private`), which the hospital clamps to and the proven bounds cover.
    pub fn of_equivariant(
        model: &EquivariantModel,
        params: &Params,
        circuit_private: bool,
        layout: BatchLayout,
    ) -> Result<Self, ProtocolError> {
        if !circuit_private {
            return Err(ProtocolError::refused(
                "profile",
                "an equivariant model is evaluated only with a circuit-private (flooded) result: drop --no-flooding",
            ));
        }
        let domain = model.input_domain.clone().ok_or_else(|| {
            ProtocolError::refused(
                "model",
                "the equivariant model file records no input domain (written before domains were recorded): retrain with \
                 `host-eval train --arch equivariant --circuit-private`",
            )
        })?;
        let refused = |e| {
            ProtocolError::refused(
                format!("{} cannot evaluate this equivariant model circuit-privately", params.name()),
                e,
            )
        };
        let (s, bits) = (DEFAULT_STATISTICAL_SECURITY, EQUIVARIANT_FLOOD_PRECISION_BITS);
        let (policy, report, capacity, rotations) = match layout {
            BatchLayout::Blocks => {
                let blocks = BlockLayout::new(params, &model.net).map_err(refused)?;
                let (policy, report) = blocks_fitting_policy(params, &model.net, &domain, s, bits).map_err(refused)?;
                (policy, report, blocks.capacity(), blocks.rotation_steps())
            }
            _ => {
                let (policy, report) = fitting_policy(params, &model.net, &domain, s, bits).map_err(refused)?;
                (policy, report, params.max_slots(), Vec::new())
            }
        };
        Ok(Self {
            format: PROFILE_FORMAT.into(),
            preset: params.name().into(),
            circuit_private,
            layout,
            input_level: policy.level(params),
            input_log_scale: policy.log_input_scale,
            // Sanitisation takes two mask levels and drops the scores as low as they fit.
            result_level: report.output_level.saturating_sub(MASK_PASSES),
            result_log_scale: report.output_scale.log2(),
            fingerprint: String::new(),
            preprocessing: model.preprocessing.clone(),
            input: ProfileInput::Channels(ChannelInput {
                spec: model.channels,
                domain,
            }),
            capacity,
            rotations,
            classes: model.class_names.len(),
            labels: model.class_names.clone(),
        }
        .with_fingerprint())
    }

    /// Whether this profile's fingerprint is the one its fields give (what the hospital checks
    /// on reading a profile, and the vendor recomputes from the model).
    #[must_use]
    pub fn fingerprint_matches(&self) -> bool {
        self.fingerprint == fingerprint(self)
    }

    /// The hospital's view of the block layout of a `Blocks` profile.
    ///
    /// # Errors
    ///
    /// [`ProtocolError::Refused`] for a blade-major profile or a capacity no layout has.
    pub fn block_layout(&self, params: &Params) -> Result<BlockLayout, ProtocolError> {
        if self.layout != BatchLayout::Blocks {
            return Err(ProtocolError::refused("input profile", "not a block-layout profile"));
        }
        BlockLayout::for_capacity(params, self.capacity).map_err(|e| ProtocolError::refused("input profile", e))
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
        if p.format != PROFILE_FORMAT {
            return Err(ProtocolError::corrupt(
                "input profile",
                format!("format {}, expected {PROFILE_FORMAT}", p.format),
            ));
        }
        if p.preset != params.name() {
            return Err(ProtocolError::PresetMismatch {
                found: p.preset,
                expected: params.name().into(),
            });
        }
        let layout_ok = match p.layout {
            BatchLayout::BladeMajor => p.rotations.is_empty() && p.capacity == params.max_slots(),
            BatchLayout::Blocks => {
                matches!(p.input, ProfileInput::Channels(_))
                    && !p.rotations.is_empty()
                    && p.rotations.len() <= 64
                    && BlockLayout::for_capacity(params, p.capacity).is_ok_and(|l| l.rotation_steps() == p.rotations)
            }
            BatchLayout::Interleaved => false,
        };
        if !layout_ok {
            return Err(ProtocolError::corrupt(
                "input profile",
                format!(
                    "layout {} with capacity {} and {} rotations does not fit {}",
                    p.layout.name(),
                    p.capacity,
                    p.rotations.len(),
                    params.name()
                ),
            ));
        }
        let valid_input = match &p.input {
            ProfileInput::InputBox(b) => {
                b.center.iter().chain(&b.half_width).all(|v| v.is_finite()) && b.half_width.iter().all(|&h| h > 0.0)
            }
            ProfileInput::Channels(c) => {
                c.spec.count() > 0
                    && c.spec.shells <= clifhe_core::multivector::channels::MAX_SHELLS
                    && c.domain.validate(c.spec.count()).is_ok()
                    && p.circuit_private
            }
        };
        let log_q: f64 = params.q().iter().take(p.input_level + 1).map(|&q| (q as f64).log2()).sum();
        if !valid_input
            || p.input_level > params.max_level()
            || p.input_log_scale.fract() != 0.0
            || !(1.0..=log_q - 4.0).contains(&p.input_log_scale)
        {
            return Err(ProtocolError::corrupt("input profile", "input box, level or scale out of range"));
        }
        if p.classes == 0
            || p.labels.len() != p.classes
            || p.result_level > p.input_level
            || !(p.result_log_scale.is_finite() && p.result_log_scale > 0.0)
        {
            return Err(ProtocolError::corrupt("input profile", "classes, labels or capacity out of range"));
        }
        if let Some(pipeline) = &p.preprocessing {
            pipeline.validate().map_err(|e| ProtocolError::corrupt("input profile", e))?;
        }
        if !p.fingerprint_matches() {
            return Err(ProtocolError::corrupt(
                "input profile",
                "its fingerprint does not match its box, mode and preprocessing",
            ));
        }
        Ok(p)
    }
}
