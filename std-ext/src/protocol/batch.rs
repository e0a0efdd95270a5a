//! The blade-major batch: what the hospital encrypts for a profile and the vendor evaluates,
//! patient p in slot p of every ciphertext (the layout whose evaluation the proven noise bounds
//! cover), under a small JSON header. For a GNN's profile eight box-encoded ciphertexts,
//! ciphertext k holding blade k; for an equivariant model's, one ciphertext per present blade of
//! each channel, channel by channel and blade by blade ([`InputEncoding::Channels`]).
//!
//! ```text
//! 0..8         magic "CLHEBTCH"
//! 8..12        header length h (u32 LE, at most 64 KiB)
//! 12..12+h     header (JSON, `BatchHeader`)
//! then per ciphertext: body length n (u64 LE), n bytes of one wire ciphertext (full or seeded)
//! ```
//! Reading checks every length against what is left before slicing, and that nothing trails.
//! The same module reads single wire ciphertexts ([`parse_ciphertext`]), naming another
//! preset or another kind of object in its error instead of calling it corrupt.

use super::profile::{InputProfile, ProfileInput};
use super::{BatchLayout, ProtocolError};
use crate::gnn::InputBox;
use clifhe_core::ciphertext::CiphertextOwned;
use clifhe_core::wire::{self, Kind, HEADER_BYTES, MAGIC as WIRE_MAGIC};
use clifhe_core::Params;
use serde::{Deserialize, Serialize};

/// Magic of a batch.
pub const MAGIC: [u8; 8] = *b"CLHEBTCH";
/// Format tag of a batch header.
pub const BATCH_FORMAT: &str = "clifhe-batch/1";
const MAX_HEADER: usize = 1 << 16;
/// Ciphertexts of a blade-major batch.
pub const BLADES: usize = 8;

/// Ciphertexts a batch may hold (16 channels of 8 blades).
pub const MAX_CIPHERTEXTS: usize = 128;

/// How feature values become slot values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InputEncoding {
    /// u = (clamp(x) - center) / half_width; empty slots hold u = 0 (the box centre). 8
    /// ciphertexts, blade k in ciphertext k.
    UnitBox,
    /// Channel multivectors clamped into the profile's domain, as they are; empty slots hold 0.
    /// One ciphertext per present blade: channel c's blade k is present when `present[c][k]`.
    Channels {
        /// Per channel, the blades that have a ciphertext.
        present: Vec<[bool; 8]>,
    },
    /// Channel multivectors clamped into the profile's domain, in the block layout
    /// (`gnn::equivariant_blocks::pack_block_inputs`): per channel two ciphertexts, X_c then
    /// X'_c, each holding every copy, hidden position and blade of up to the profile's capacity
    /// of patients.
    ChannelBlocks {
        /// Channels (the batch holds twice as many ciphertexts).
        channels: usize,
    },
}

impl InputEncoding {
    /// Ciphertexts a batch of this encoding holds.
    #[must_use]
    pub fn ciphertexts(&self) -> usize {
        match self {
            Self::UnitBox => BLADES,
            Self::Channels { present } => present.iter().flatten().filter(|p| **p).count(),
            Self::ChannelBlocks { channels } => channels.saturating_mul(2),
        }
    }
}

/// What a batch says about its ciphertexts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchHeader {
    /// [`BATCH_FORMAT`].
    pub format: String,
    /// Preset name.
    pub preset: String,
    /// The profile's layout: [`BatchLayout::BladeMajor`], or [`BatchLayout::Blocks`] with
    /// [`InputEncoding::ChannelBlocks`].
    pub layout: BatchLayout,
    /// [`InputEncoding::UnitBox`] (a GNN's profile) or [`InputEncoding::Channels`].
    pub encoding: InputEncoding,
    /// Patients in slots 0..patients.
    pub patients: usize,
    /// Whether the profile asked for a flooded result.
    pub circuit_private: bool,
    /// The profile's box (the hospital's `decrypt` maps u back to features with it); absent
    /// for channels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_box: Option<InputBox>,
    /// The profile's fingerprint, which `infer` recomputes from the model.
    pub profile_fingerprint: String,
}

impl BatchHeader {
    /// The header of `patients` patients encrypted for `profile`.
    pub fn new(profile: &InputProfile, patients: usize) -> Self {
        let (encoding, input_box) = match &profile.input {
            ProfileInput::InputBox(b) => (InputEncoding::UnitBox, Some(b.clone())),
            ProfileInput::Channels(c) if profile.layout == BatchLayout::Blocks => (
                InputEncoding::ChannelBlocks {
                    channels: c.domain.present.len(),
                },
                None,
            ),
            ProfileInput::Channels(c) => (
                InputEncoding::Channels {
                    present: c.domain.present.clone(),
                },
                None,
            ),
        };
        Self {
            format: BATCH_FORMAT.into(),
            preset: profile.preset.clone(),
            layout: profile.layout,
            encoding,
            patients,
            circuit_private: profile.circuit_private,
            input_box,
            profile_fingerprint: profile.fingerprint.clone(),
        }
    }
}

/// Whether `bytes` start like a batch (rather than a single wire ciphertext).
pub fn is_batch(bytes: &[u8]) -> bool {
    bytes.starts_with(&MAGIC)
}

/// Serialises a header and its wire ciphertexts (as many as its encoding says).
pub fn to_bytes(header: &BatchHeader, blades: &[Vec<u8>]) -> Result<Vec<u8>, ProtocolError> {
    if blades.len() != header.encoding.ciphertexts() {
        return Err(ProtocolError::corrupt(
            "batch",
            format!(
                "{} ciphertexts where the header's encoding says {}",
                blades.len(),
                header.encoding.ciphertexts()
            ),
        ));
    }
    let json = serde_json::to_vec(header).map_err(|e| ProtocolError::corrupt("batch header", e))?;
    if json.len() > MAX_HEADER {
        return Err(ProtocolError::corrupt("batch header", "header larger than 64 KiB"));
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

/// Parses a batch of preset `params`: its header and its ciphertexts (seeded ones expanded),
/// with typed errors (another preset: [`ProtocolError::PresetMismatch`]; anything malformed:
/// [`ProtocolError::Corrupt`]).
pub fn parse(params: &Params, bytes: &[u8]) -> Result<(BatchHeader, Vec<CiphertextOwned>), ProtocolError> {
    let corrupt = |r: &str| ProtocolError::corrupt("batch file", r);
    if !is_batch(bytes) {
        return Err(corrupt("not a clifhe batch file (bad magic)"));
    }
    let mut rest = &bytes[MAGIC.len()..];
    let mut take = |n: usize| -> Result<&[u8], ProtocolError> {
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
    let header: BatchHeader = serde_json::from_slice(take(h)?).map_err(|e| ProtocolError::corrupt("batch header", e))?;
    if header.format != BATCH_FORMAT || header.layout == BatchLayout::Interleaved {
        return Err(corrupt(&format!(
            "format {} / layout {}, expected {BATCH_FORMAT} / blade-major or blocks",
            header.format,
            header.layout.name()
        )));
    }
    if header.preset != params.name() {
        return Err(ProtocolError::PresetMismatch {
            found: header.preset,
            expected: params.name().into(),
        });
    }
    if header.patients == 0 || header.patients > params.max_slots() {
        return Err(corrupt("patient count out of range"));
    }
    let count = header.encoding.ciphertexts();
    let shape_ok = match &header.encoding {
        InputEncoding::UnitBox => header.input_box.is_some() && header.layout == BatchLayout::BladeMajor,
        InputEncoding::Channels { present } => {
            header.input_box.is_none()
                && (1..=MAX_CIPHERTEXTS).contains(&count)
                && !present.is_empty()
                && header.layout == BatchLayout::BladeMajor
        }
        InputEncoding::ChannelBlocks { .. } => {
            header.input_box.is_none() && (2..=MAX_CIPHERTEXTS).contains(&count) && header.layout == BatchLayout::Blocks
        }
    };
    if !shape_ok {
        return Err(corrupt("the header's encoding, box and ciphertext count disagree"));
    }
    let mut cts = Vec::with_capacity(count);
    for _ in 0..count {
        let n = u64::from_le_bytes(take(8)?.try_into().map_err(|_| corrupt("truncated"))?);
        let n = usize::try_from(n).map_err(|_| corrupt("length out of range"))?;
        let (ct, _) = parse_ciphertext(params, take(n)?)?;
        cts.push(ct);
    }
    if !rest.is_empty() {
        return Err(corrupt("trailing bytes after the last ciphertext"));
    }
    let first = cts[0].meta;
    if cts
        .iter()
        .any(|c| c.meta.level != first.level || c.meta.scale != first.scale || c.meta.log_slots != params.log_n() - 1)
    {
        return Err(corrupt("the ciphertexts must be full-slot, at one level and one scale"));
    }
    Ok((header, cts))
}

/// Header fields of a wire object read without committing to a parameter set, so that a
/// ciphertext or key for another preset can be named in the error instead of failing as
/// "corrupt".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WirePeek {
    /// Parameter-set id in the header.
    pub params_id: u16,
    /// Kind byte.
    pub kind: u8,
}

/// Checks the magic and reads the preset id and kind of a wire object.
pub fn peek(bytes: &[u8]) -> Result<WirePeek, String> {
    let h = bytes
        .get(..HEADER_BYTES)
        .ok_or_else(|| format!("truncated: {} bytes, a header alone is {HEADER_BYTES}", bytes.len()))?;
    if h[0..4] != WIRE_MAGIC {
        return Err("not a clifhe object (bad magic)".into());
    }
    Ok(WirePeek {
        params_id: u16::from_le_bytes([h[6], h[7]]),
        kind: h[8],
    })
}

/// The name of preset `id`, or a description of the unknown id.
pub fn preset_name(id: u16) -> String {
    Params::from_id(id).map_or_else(|_| format!("unknown preset id {id}"), |p| p.name().to_string())
}

/// A human name for a wire kind byte.
pub fn kind_name(kind: u8) -> &'static str {
    match Kind::from_u8(kind) {
        Some(Kind::PublicKey) => "public key",
        Some(Kind::Ciphertext) => "ciphertext",
        Some(Kind::SeededCiphertext) => "seeded ciphertext",
        Some(Kind::SecretKeySeed) => "secret key",
        Some(Kind::RelinearizationKey) => "relinearization key",
        Some(Kind::GaloisKey) => "Galois key",
        Some(Kind::SwitchingKey) => "switching key",
        _ => "unknown object",
    }
}

/// Reads one wire ciphertext of preset `params`, full or seeded (expanded). Another preset is
/// [`ProtocolError::PresetMismatch`], another kind of object or anything unparsable
/// [`ProtocolError::Corrupt`]. Returns the ciphertext and whether it was seeded.
pub fn parse_ciphertext(params: &Params, bytes: &[u8]) -> Result<(CiphertextOwned, bool), ProtocolError> {
    let h = peek(bytes).map_err(|r| ProtocolError::corrupt("ciphertext", r))?;
    let kind = Kind::from_u8(h.kind);
    if !matches!(kind, Some(Kind::Ciphertext | Kind::SeededCiphertext)) {
        return Err(ProtocolError::corrupt("ciphertext", format!("it holds a {}", kind_name(h.kind))));
    }
    if h.params_id != params.id() {
        return Err(ProtocolError::PresetMismatch {
            found: preset_name(h.params_id),
            expected: params.name().to_string(),
        });
    }
    let corrupt = |e: wire::WireError| ProtocolError::corrupt("ciphertext", e);
    let seeded = kind == Some(Kind::SeededCiphertext);
    let ct = if seeded {
        wire::seeded_ciphertext_from_bytes(params, bytes).map_err(corrupt)?.expand(params)?
    } else {
        wire::ciphertext_from_bytes(params, bytes).map_err(corrupt)?
    };
    Ok((ct, seeded))
}
