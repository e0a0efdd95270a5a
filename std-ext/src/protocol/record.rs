//! The hospital's batch record: everything the hospital knows about a batch when it encrypts
//! it, kept at the hospital and used by the release instead of anything the vendor states.
//!
//! The vendor's manifest and ciphertexts are untrusted input. The release takes the preset,
//! the patient count, the classes, the expected level and scale of the results and the key set
//! from the record, releases only the slots of the record's patients, and refuses results whose
//! shape differs (`hospital::release`).

use super::batch::BatchHeader;
use super::profile::{sha256_hex, InputProfile};
use super::{BatchLayout, ProtocolError};
use clifhe_core::Params;
use serde::{Deserialize, Serialize};

/// Format tag of a batch record.
pub const RECORD_FORMAT: &str = "clifhe-batch-record/1";

/// What the hospital pins when it encrypts a batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchRecord {
    /// [`RECORD_FORMAT`].
    pub format: String,
    /// SHA-256 of the batch's bytes: the job the results must answer.
    pub batch_sha256: String,
    /// Fingerprint of the key set the batch was encrypted under.
    pub keyset_fingerprint: String,
    /// Preset name.
    pub preset: String,
    /// How the batch packs its patients.
    pub layout: BatchLayout,
    /// Patients in the batch (slots 0..patients).
    pub patients: usize,
    /// Classes of the model (from the profile; 0 for an interleaved batch, made without one).
    pub classes: usize,
    /// Their labels (from the profile).
    pub labels: Vec<String>,
    /// Whether the profile asked for a flooded, circuit-private result.
    pub circuit_private: bool,
    /// Level the sanitised results sit on (from the profile).
    pub result_level: usize,
    /// log2 of their scale (from the profile).
    pub result_log_scale: f64,
    /// The profile's fingerprint.
    pub profile_fingerprint: String,
    /// Patients whose features lay outside the profile's input box and were clamped into it
    /// before encryption: out of the model's training range, so their diagnoses are flagged
    /// when released (the hospital's own knowledge; the vendor never sees it).
    #[serde(default)]
    pub out_of_box: Vec<usize>,
}

impl BatchRecord {
    /// The record of a batch (`bytes`, with `header`) encrypted for `profile` under the key set
    /// `keyset_fingerprint`.
    pub fn new(profile: &InputProfile, header: &BatchHeader, bytes: &[u8], keyset_fingerprint: &str) -> Self {
        Self {
            format: RECORD_FORMAT.into(),
            batch_sha256: sha256_hex(bytes),
            keyset_fingerprint: keyset_fingerprint.into(),
            preset: profile.preset.clone(),
            layout: profile.layout,
            patients: header.patients,
            classes: profile.classes,
            labels: profile.labels.clone(),
            circuit_private: profile.circuit_private,
            result_level: profile.result_level,
            result_log_scale: profile.result_log_scale,
            profile_fingerprint: profile.fingerprint.clone(),
            out_of_box: Vec::new(),
        }
    }

    /// The record of an interleaved ciphertext (`encrypt` without a profile): raw features at
    /// the preset's scale, for the hospital's own decryption only; never released.
    pub fn interleaved(params: &Params, patients: usize, bytes: &[u8], keyset_fingerprint: &str) -> Self {
        Self {
            format: RECORD_FORMAT.into(),
            batch_sha256: sha256_hex(bytes),
            keyset_fingerprint: keyset_fingerprint.into(),
            preset: params.name().into(),
            layout: BatchLayout::Interleaved,
            patients,
            classes: 0,
            labels: Vec::new(),
            circuit_private: false,
            result_level: 0,
            result_log_scale: 0.0,
            profile_fingerprint: String::new(),
            out_of_box: Vec::new(),
        }
    }

    /// Whether `bytes` are the batch this record was written for.
    pub fn describes(&self, bytes: &[u8]) -> bool {
        sha256_hex(bytes) == self.batch_sha256
    }

    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> Result<Vec<u8>, ProtocolError> {
        let mut json = serde_json::to_vec_pretty(self).map_err(|e| ProtocolError::corrupt("batch record", e))?;
        json.push(b'\n');
        Ok(json)
    }

    /// Parses a record and checks it against the key set it is used with.
    pub fn from_json_checked(bytes: &[u8], params: &Params, keyset_fingerprint: &str) -> Result<Self, ProtocolError> {
        let r: Self = serde_json::from_slice(bytes).map_err(|e| ProtocolError::corrupt("batch record", e))?;
        if r.format != RECORD_FORMAT {
            return Err(ProtocolError::corrupt(
                "batch record",
                format!("format {}, expected {RECORD_FORMAT}", r.format),
            ));
        }
        if r.preset != params.name() {
            return Err(ProtocolError::PresetMismatch {
                found: r.preset,
                expected: params.name().into(),
            });
        }
        if r.keyset_fingerprint != keyset_fingerprint {
            return Err(ProtocolError::refused(
                "batch record",
                "it was made under another key set (rotated keys?): release it with the key set that encrypted the batch",
            ));
        }
        if r.patients == 0
            || r.patients > params.max_slots()
            || r.labels.len() != r.classes
            || r.result_level > params.max_level()
            || !(r.result_log_scale.is_finite() && r.result_log_scale >= 0.0)
            || r.out_of_box.iter().any(|&p| p >= r.patients)
        {
            return Err(ProtocolError::corrupt(
                "batch record",
                "patients, classes, level or scale out of range",
            ));
        }
        Ok(r)
    }
}
