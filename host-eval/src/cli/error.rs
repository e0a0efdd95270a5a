//! The one error type of the command line. Every failure a user can cause (a missing file, a
//! corrupt key, a ciphertext for another preset, too many patients) is one of these variants,
//! printed by `main` as `error: ...` with an exit code per category so scripts can tell a
//! wrong key from a missing file without parsing the message.

use clifhe_std::protocol::ProtocolError;
use std::fmt;
use std::path::PathBuf;

/// Process exit codes. Clap's own usage errors exit with 2.
pub mod exit {
    /// Internal failure (an encoder or encryptor refused valid-looking input).
    pub const INTERNAL: i32 = 1;
    /// A file could not be read or written.
    pub const IO: i32 = 3;
    /// A key or ciphertext file is corrupt, truncated or not a clifhe object.
    pub const CORRUPT: i32 = 4;
    /// The key set does not fit the ciphertext (another preset, or another secret key).
    pub const WRONG_KEYS: i32 = 5;
    /// An argument is out of range: slot, level, patient count, preset name.
    pub const BAD_ARGUMENT: i32 = 6;
    /// An input scan or features file could not be turned into features.
    pub const BAD_INPUT: i32 = 7;
    /// `keygen` refused to overwrite an existing secret key.
    pub const KEY_EXISTS: i32 = 8;
}

/// What went wrong, with enough context to act on it.
#[derive(Debug)]
#[non_exhaustive]
pub enum CliError {
    /// Reading, writing or renaming a file failed.
    Io {
        path: PathBuf,
        action: &'static str,
        source: std::io::Error,
    },
    /// A key or ciphertext file did not parse.
    Corrupt {
        path: PathBuf,
        what: &'static str,
        reason: String,
    },
    /// The key set's files disagree with each other (swapped or edited files).
    InconsistentKeys {
        dir: PathBuf,
        reason: String,
    },
    /// A ciphertext made under one preset given to a key set of another.
    PresetMismatch {
        path: PathBuf,
        file_preset: String,
        keys_preset: String,
    },
    /// Decryption produced noise instead of a message: the ciphertext was made for another
    /// secret key of the same preset (or its limbs are damaged).
    WrongSecretKey {
        path: PathBuf,
        noise: f64,
    },
    UnknownPreset {
        name: String,
    },
    TooManyPatients {
        patients: usize,
        first_slot: usize,
        max: usize,
    },
    BadSlot {
        slot: usize,
        max: usize,
    },
    BadLevel {
        level: usize,
        max: usize,
    },
    /// A features file or scan could not be used.
    BadInput {
        input: String,
        reason: String,
    },
    /// A feature value too large for the chosen level's modulus.
    ValueOutOfRange {
        value: f64,
        limit: f64,
        level: usize,
    },
    /// `keygen` would overwrite an existing secret key.
    KeyExists {
        path: PathBuf,
    },
    /// The key set lacks evaluation keys an operation needs (e.g. the rotations that merge
    /// several device ciphertexts into one batch).
    MissingEvalKeys {
        dir: PathBuf,
        what: String,
        hint: String,
    },
    /// The CKKS core refused an operation.
    Crypto(clifhe_core::Error),
    /// Homomorphic evaluation, key switching or release refused an operation.
    Eval(clifhe_std::EvalError),
    /// Training, loading or using a model failed.
    Model(clifhe_std::gnn::GnnError),
    /// `release` refused: the key set's leakage budget cannot pay for it (rotate keys).
    BudgetSpent {
        dir: PathBuf,
        spent_bits: f64,
        budget_bits: f64,
        cost_bits: f64,
    },
}

impl CliError {
    /// The process exit code of this error's category (see [`exit`]).
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Io { .. } => exit::IO,
            Self::Corrupt { .. } | Self::InconsistentKeys { .. } => exit::CORRUPT,
            Self::PresetMismatch { .. } | Self::WrongSecretKey { .. } | Self::MissingEvalKeys { .. } => exit::WRONG_KEYS,
            Self::UnknownPreset { .. }
            | Self::TooManyPatients { .. }
            | Self::BadSlot { .. }
            | Self::BadLevel { .. }
            | Self::ValueOutOfRange { .. } => exit::BAD_ARGUMENT,
            Self::BadInput { .. } | Self::BudgetSpent { .. } => exit::BAD_INPUT,
            Self::KeyExists { .. } => exit::KEY_EXISTS,
            Self::Crypto(_) | Self::Eval(_) => exit::INTERNAL,
            Self::Model(_) => exit::BAD_INPUT,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, action: &'static str, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            action,
            source,
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, what: &'static str, reason: impl fmt::Display) -> Self {
        Self::Corrupt {
            path: path.into(),
            what,
            reason: reason.to_string(),
        }
    }

    pub(crate) fn bad_input(input: impl fmt::Display, reason: impl fmt::Display) -> Self {
        Self::BadInput {
            input: input.to_string(),
            reason: reason.to_string(),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, action, source } => {
                if source.kind() == std::io::ErrorKind::NotFound {
                    write!(f, "cannot {action} {}: no such file or directory", path.display())
                } else {
                    write!(f, "cannot {action} {}: {source}", path.display())
                }
            }
            Self::Corrupt { path, what, reason } => write!(f, "{} is not a valid {what}: {reason}", path.display()),
            Self::InconsistentKeys { dir, reason } => write!(f, "key set {} is inconsistent: {reason}", dir.display()),
            Self::PresetMismatch {
                path,
                file_preset,
                keys_preset,
            } => write!(
                f,
                "wrong keys: {} was made for preset '{file_preset}', but the key set is for preset '{keys_preset}'",
                path.display()
            ),
            Self::WrongSecretKey { path, noise } => write!(
                f,
                "wrong keys: {} does not decrypt under this key set's secret key (noise level {noise:.3e}); \
                 it was encrypted for another key set of the same preset, or it is damaged",
                path.display()
            ),
            Self::UnknownPreset { name } => {
                let names: Vec<&str> = clifhe_core::params::presets::ALL.iter().map(|p| p.name).collect();
                write!(f, "unknown preset '{name}'; available: {}", names.join(", "))
            }
            Self::TooManyPatients { patients, first_slot, max } => write!(
                f,
                "too many patients: {patients} starting at patient slot {first_slot} do not fit; \
                 this preset holds at most {max} patients (N/16) per ciphertext"
            ),
            Self::BadSlot { slot, max } => {
                write!(
                    f,
                    "bad patient slot {slot}: this preset has patient slots 0..={}",
                    max.saturating_sub(1)
                )
            }
            Self::BadLevel { level, max } => write!(f, "bad level {level}: this preset has levels 0..={max}"),
            Self::BadInput { input, reason } => write!(f, "cannot use input {input}: {reason}"),
            Self::ValueOutOfRange { value, limit, level } => write!(
                f,
                "feature value {value} is too large to encrypt at level {level} (|value| must stay below {limit:.3e}); \
                 use a higher --level"
            ),
            Self::KeyExists { path } => write!(
                f,
                "refusing to overwrite the existing secret key {} (pass --force to replace it; \
                 everything encrypted under it becomes undecryptable)",
                path.display()
            ),
            Self::MissingEvalKeys { dir, what, hint } => {
                write!(f, "wrong keys: key set {} has no {what}; {hint}", dir.display())
            }
            Self::Crypto(e) => write!(f, "encryption core: {e}"),
            Self::Eval(e) => write!(f, "encrypted evaluation: {e}"),
            Self::Model(e) => write!(f, "model: {e}"),
            Self::BudgetSpent {
                dir,
                spent_bits,
                budget_bits,
                cost_bits,
            } => write!(
                f,
                "cannot use input release: the leakage budget of this key set is spent ({spent_bits:.1} of {budget_bits:.0} bits used; \
                 this release would cost {cost_bits:.1}): rotate keys with `host-eval keygen --rotate --out {}` and re-encrypt",
                dir.display()
            ),
        }
    }
}

impl std::error::Error for CliError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            Self::Crypto(e) => Some(e),
            _ => None,
        }
    }
}

impl CliError {
    /// A protocol step's error on the object read from `path` (or named by it).
    pub(crate) fn protocol(path: impl Into<PathBuf>, e: ProtocolError) -> Self {
        let path = path.into();
        match e {
            ProtocolError::Corrupt { what, reason } => Self::Corrupt { path, what, reason },
            ProtocolError::PresetMismatch { found, expected } => Self::PresetMismatch {
                path,
                file_preset: found,
                keys_preset: expected,
            },
            ProtocolError::Refused { input, reason } if input == "batch" => Self::bad_input(path.display(), reason),
            other => Self::from(other),
        }
    }
}

/// Without a file to name: variants map one to one; objects are named by what they are.
impl From<ProtocolError> for CliError {
    fn from(e: ProtocolError) -> Self {
        match e {
            ProtocolError::Corrupt { what, reason } => Self::Corrupt {
                path: PathBuf::from(what),
                what,
                reason,
            },
            ProtocolError::PresetMismatch { found, expected } => Self::PresetMismatch {
                path: PathBuf::from("input"),
                file_preset: found,
                keys_preset: expected,
            },
            ProtocolError::TooManyPatients { patients, first_slot, max } => Self::TooManyPatients { patients, first_slot, max },
            ProtocolError::BadSlot { slot, max } => Self::BadSlot { slot, max },
            ProtocolError::BadLevel { level, max } => Self::BadLevel { level, max },
            ProtocolError::Refused { input, reason } => Self::BadInput { input, reason },
            ProtocolError::Eval(e) => Self::Eval(e),
            ProtocolError::Core(e) => Self::Crypto(e),
            ProtocolError::Model(e) => Self::Model(e),
            other => Self::bad_input("protocol", other),
        }
    }
}

impl From<clifhe_std::EvalError> for CliError {
    fn from(e: clifhe_std::EvalError) -> Self {
        Self::Eval(e)
    }
}

impl From<clifhe_std::gnn::GnnError> for CliError {
    fn from(e: clifhe_std::gnn::GnnError) -> Self {
        Self::Model(e)
    }
}

impl From<clifhe_core::Error> for CliError {
    fn from(e: clifhe_core::Error) -> Self {
        Self::Crypto(e)
    }
}
