//! The one error type of the protocol steps. Every variant is something the other party, a file
//! or a caller can cause; the command line adds the file it read (`CliError`), the service maps
//! each variant to an HTTP status (a 4xx for anything the client sent).

use crate::error::EvalError;
use crate::gnn::GnnError;
use core::fmt;

/// What went wrong in a protocol step.
#[derive(Debug)]
#[non_exhaustive]
pub enum ProtocolError {
    /// Bytes that do not parse as the object they claim to be (a batch, a profile, a manifest,
    /// a ciphertext): `what` names the object.
    Corrupt {
        /// The object that was expected.
        what: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// An object made for another parameter set.
    PresetMismatch {
        /// The preset the object names.
        found: String,
        /// The preset of the keys or model it was given to.
        expected: String,
    },
    /// More patients than the layout holds from `first_slot` on.
    TooManyPatients {
        /// Patients asked for.
        patients: usize,
        /// First patient slot.
        first_slot: usize,
        /// Capacity of the layout.
        max: usize,
    },
    /// A patient slot outside the layout.
    BadSlot {
        /// The slot asked for.
        slot: usize,
        /// Slots the layout has.
        max: usize,
    },
    /// A ciphertext below the level a step needs (or a level beyond the chain).
    BadLevel {
        /// Level needed (or asked for).
        level: usize,
        /// Level available (or the chain's top).
        max: usize,
    },
    /// A well-formed request that this step refuses (wrong model, wrong privacy mode, missing
    /// key): `input` names what was refused, `reason` says why and what to do.
    Refused {
        /// What was refused.
        input: String,
        /// Why, and what to do instead.
        reason: String,
    },
    /// The evaluation or release refused an operation.
    Eval(EvalError),
    /// The CKKS core refused an operation.
    Core(clifhe_core::Error),
    /// The model could not be used.
    Model(GnnError),
}

impl ProtocolError {
    pub(crate) fn corrupt(what: &'static str, reason: impl fmt::Display) -> Self {
        Self::Corrupt {
            what,
            reason: reason.to_string(),
        }
    }

    pub(crate) fn refused(input: impl fmt::Display, reason: impl fmt::Display) -> Self {
        Self::Refused {
            input: input.to_string(),
            reason: reason.to_string(),
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Corrupt { what, reason } => write!(f, "not a valid {what}: {reason}"),
            Self::PresetMismatch { found, expected } => {
                write!(f, "made for preset '{found}', but the keys are for preset '{expected}'")
            }
            Self::TooManyPatients { patients, first_slot, max } => write!(
                f,
                "too many patients: {patients} starting at patient slot {first_slot} do not fit; at most {max} per batch"
            ),
            Self::BadSlot { slot, max } => write!(f, "bad patient slot {slot}: slots 0..={}", max.saturating_sub(1)),
            Self::BadLevel { level, max } => write!(f, "bad level {level}: available 0..={max}"),
            Self::Refused { input, reason } => write!(f, "cannot use {input}: {reason}"),
            Self::Eval(e) => write!(f, "encrypted evaluation: {e}"),
            Self::Core(e) => write!(f, "encryption core: {e}"),
            Self::Model(e) => write!(f, "model: {e}"),
        }
    }
}

impl std::error::Error for ProtocolError {}

impl From<EvalError> for ProtocolError {
    fn from(e: EvalError) -> Self {
        Self::Eval(e)
    }
}

impl From<clifhe_core::Error> for ProtocolError {
    fn from(e: clifhe_core::Error) -> Self {
        Self::Core(e)
    }
}

impl From<GnnError> for ProtocolError {
    fn from(e: GnnError) -> Self {
        Self::Model(e)
    }
}
