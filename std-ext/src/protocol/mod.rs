//! The hospital-vendor protocol as a library: the steps the command line, the service and any
//! library user share (docs/architecture.md §6 and §8).
//!
//! - [`model`]: the model a vendor serves, of either kind (GNN or equivariant);
//! - [`profile`]: the vendor's public input profile of a model (input box or channel domain,
//!   level, scale; no weights) and the one schedule of a GNN's encrypted evaluation;
//! - [`batch`]: the blade-major batch the hospital encrypts for a profile, and the reader of
//!   single wire ciphertexts;
//! - [`bundle`]: the canonical container for the files that cross the wire (a key set's public
//!   material, a job's scores), content-addressed by SHA-256;
//! - [`manifest`]: what the vendor's scores say about themselves (untrusted at the hospital);
//! - [`record`]: what the hospital pins when it encrypts, which its release trusts instead;
//! - [`leakage`]: what a release can tell about the secret key, in bits, and the budget;
//! - [`hospital`]: encrypting a batch for a profile, and releasing the scores;
//! - [`vendor`]: evaluating a batch, sanitising the scores (mask, re-randomise, flood).
//!
//! Everything here works on bytes and in-memory objects; files, directories, key storage and
//! the release counter's persistence belong to the caller (the CLI's key directory, the
//! service's store).

pub mod batch;
pub mod bundle;
pub mod device;
mod error;
pub mod hospital;
pub mod leakage;
pub mod manifest;
pub mod model;
pub mod profile;
pub mod record;
pub mod vendor;

pub use error::ProtocolError;
pub use manifest::ScoresManifest;
pub use model::VendorModel;
pub use profile::InputProfile;
pub use record::BatchRecord;

use serde::{Deserialize, Serialize};

/// How patients sit in the slots of an encrypted batch (docs/architecture.md §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BatchLayout {
    /// One ciphertext, patient p's blade k in slot 8p + k, raw features at the preset's scale
    /// (what a gateway or a device sends; evaluated only without flooding).
    Interleaved,
    /// Eight ciphertexts, blade k of patient p in slot p of ciphertext k, box-encoded: the
    /// circuit-private path.
    BladeMajor,
    /// All blades of a patient in one ciphertext, the latency path: an equivariant model's
    /// layout in batches (`gnn::equivariant_blocks`), and the GNN's in the demo
    /// (`gnn::blocks::pack_blocks_rotated`: block k of rotation t holds blade k + t of patient p
    /// in lanes pC..pC + C).
    Blocks,
}

impl BatchLayout {
    /// The name used in files and messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Interleaved => "interleaved",
            Self::BladeMajor => "blade-major",
            Self::Blocks => "blocks",
        }
    }

    /// The evaluator's batch packing of this layout (the block layouts are packed by their
    /// own modules, not by a batch).
    pub fn ga_layout(self) -> crate::ga::Layout {
        match self {
            Self::Interleaved => crate::ga::Layout::Interleaved,
            Self::BladeMajor | Self::Blocks => crate::ga::Layout::BladeMajor { stride: 1 },
        }
    }

    /// Slot distance between two patients' scores in a score ciphertext.
    pub fn score_stride(self) -> usize {
        match self {
            Self::Interleaved => 8,
            Self::BladeMajor | Self::Blocks => 1,
        }
    }
}
