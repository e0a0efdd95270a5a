//! The box-encoded blade-major batch file: what `encrypt --profile` writes and `infer` and
//! `decrypt` read. Eight ciphertexts, ciphertext k holding blade k of patient p in slot p (the
//! layout whose evaluation the proven noise bound covers), under a small JSON header.
//!
//! ```text
//! 0..8         magic "CLHEBTCH"
//! 8..12        header length h (u32 LE, at most 64 KiB)
//! 12..12+h     header (JSON, `BatchHeader`)
//! then 8 times: body length n (u64 LE), n bytes of one wire ciphertext (full or seeded), blade k
//! ```
//! Reading checks every length against what is left before slicing, and that nothing trails.

use super::decrypt::parse_ciphertext;
use super::error::CliError;
use super::profile::InputProfile;
use clifhe_core::ciphertext::CiphertextOwned;
use clifhe_core::Params;
use clifhe_std::gnn::InputBox;
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const MAGIC: [u8; 8] = *b"CLHEBTCH";
pub const BATCH_FORMAT: &str = "clifhe-batch/1";
const MAX_HEADER: usize = 1 << 16;
/// Ciphertexts of a blade-major batch.
pub const BLADES: usize = 8;

/// What a batch file says about its ciphertexts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchHeader {
    pub format: String,
    pub preset: String,
    /// "blade-major".
    pub layout: String,
    /// "unit-box": u = (clamp(x) - center) / half_width; empty slots hold u = 0.
    pub encoding: String,
    /// Patients in slots 0..patients.
    pub patients: usize,
    pub circuit_private: bool,
    /// The profile's box (the hospital's `decrypt` maps u back to features with it).
    pub input_box: InputBox,
    /// The profile's fingerprint, which `infer` recomputes from the model.
    pub profile_fingerprint: String,
}

impl BatchHeader {
    pub fn new(profile: &InputProfile, patients: usize) -> Self {
        Self {
            format: BATCH_FORMAT.into(),
            preset: profile.preset.clone(),
            layout: "blade-major".into(),
            encoding: "unit-box".into(),
            patients,
            circuit_private: profile.circuit_private,
            input_box: profile.input_box.clone(),
            profile_fingerprint: profile.fingerprint.clone(),
        }
    }
}

/// Whether `bytes` start like a batch file (rather than a single wire ciphertext).
pub fn is_batch(bytes: &[u8]) -> bool {
    bytes.starts_with(&MAGIC)
}

/// Serialises a header and its 8 wire ciphertexts.
pub fn to_bytes(header: &BatchHeader, blades: &[Vec<u8>]) -> Result<Vec<u8>, CliError> {
    if blades.len() != BLADES {
        return Err(CliError::bad_input("batch", "a blade-major batch has 8 ciphertexts"));
    }
    let json = serde_json::to_vec(header).map_err(|e| CliError::bad_input("batch header", e))?;
    if json.len() > MAX_HEADER {
        return Err(CliError::bad_input("batch header", "header larger than 64 KiB"));
    }
    let mut out = Vec::with_capacity(12 + json.len() + blades.iter().map(|b| b.len() + 8).sum::<usize>());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(&json);
    for b in blades {
        out.extend_from_slice(&(b.len() as u64).to_le_bytes());
        out.extend_from_slice(b);
    }
    Ok(out)
}

/// Parses a batch file of preset `params`: its header and its 8 ciphertexts (seeded ones
/// expanded), with typed errors (another preset: [`CliError::PresetMismatch`]; anything
/// malformed: [`CliError::Corrupt`]).
pub fn parse(params: &Params, bytes: &[u8], path: &Path) -> Result<(BatchHeader, Vec<CiphertextOwned>), CliError> {
    let corrupt = |r: &str| CliError::corrupt(path, "batch file", r.to_string());
    if !is_batch(bytes) {
        return Err(corrupt("not a clifhe batch file (bad magic)"));
    }
    let mut rest = &bytes[MAGIC.len()..];
    let mut take = |n: usize| -> Result<&[u8], CliError> {
        if n > rest.len() {
            return Err(corrupt("truncated"));
        }
        let (a, b) = rest.split_at(n);
        rest = b;
        Ok(a)
    };
    let h = u32::from_le_bytes(take(4)?.try_into().map_err(|_| corrupt("truncated"))?) as usize;
    if h > MAX_HEADER {
        return Err(corrupt("header larger than 64 KiB"));
    }
    let header: BatchHeader = serde_json::from_slice(take(h)?).map_err(|e| CliError::corrupt(path, "batch header", e))?;
    if header.format != BATCH_FORMAT || header.layout != "blade-major" || header.encoding != "unit-box" {
        return Err(corrupt(&format!(
            "format {} / layout {} / encoding {}, expected {BATCH_FORMAT} / blade-major / unit-box",
            header.format, header.layout, header.encoding
        )));
    }
    if header.preset != params.name() {
        return Err(CliError::PresetMismatch {
            path: path.to_path_buf(),
            file_preset: header.preset,
            keys_preset: params.name().into(),
        });
    }
    if header.patients == 0 || header.patients > params.max_slots() {
        return Err(corrupt("patient count out of range"));
    }
    let mut cts = Vec::with_capacity(BLADES);
    for _ in 0..BLADES {
        let n = u64::from_le_bytes(take(8)?.try_into().map_err(|_| corrupt("truncated"))?);
        let n = usize::try_from(n).map_err(|_| corrupt("length out of range"))?;
        let (ct, _) = parse_ciphertext(params, take(n)?, path)?;
        cts.push(ct);
    }
    if !rest.is_empty() {
        return Err(corrupt("trailing bytes after the 8th ciphertext"));
    }
    let first = cts[0].meta;
    if cts
        .iter()
        .any(|c| c.meta.level != first.level || c.meta.scale != first.scale || c.meta.log_slots != params.log_n() - 1)
    {
        return Err(corrupt("the 8 ciphertexts must be full-slot, at one level and one scale"));
    }
    Ok((header, cts))
}
