//! Errors of host-side evaluation. Every mismatch is reported, never papered over.

use clifhe_core::wire::WireError;

#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum EvalError {
    Core(clifhe_core::Error),
    Wire(WireError),
    /// Operands or keys belong to different parameter sets.
    ParamsMismatch,
    /// Operands are at different levels; drop one first (`drop_to_level`).
    LevelMismatch {
        left: usize,
        right: usize,
    },
    /// Operands have different scales (relative difference above 2^-40).
    ScaleMismatch {
        left: f64,
        right: f64,
    },
    /// No level left to rescale or multiply.
    OutOfLevels,
    /// Operands hold different slot counts.
    SlotsMismatch,
    /// The parameter set has no special primes: no key switching possible.
    NoSpecialPrimes,
    /// A key of the wrong shape (digit count, limbs, representation).
    KeyShape,
    /// The Galois key for this rotation or conjugation was not generated.
    MissingGaloisKey {
        galois_element: usize,
    },
    /// A polynomial is in the wrong representation.
    Representation,
    /// Invalid argument (message says which).
    Invalid(&'static str),
    /// A key file could not be read or written.
    Io(std::io::ErrorKind),
    /// A key file is larger than any key of this parameter set can be; refused before it is
    /// read into memory.
    FileTooLarge {
        limit: u64,
    },
    /// The Hamming weight of bootstrapping's ephemeral sparse secret is below the supported
    /// minimum ([`crate::bootstrap::MIN_EPHEMERAL_HAMMING_WEIGHT`]).
    EphemeralWeightTooSmall {
        weight: usize,
        min: usize,
    },
}

impl core::fmt::Display for EvalError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Core(e) => write!(f, "{e}"),
            Self::Wire(e) => write!(f, "{e}"),
            Self::ParamsMismatch => f.write_str("operands or keys belong to different parameter sets"),
            Self::LevelMismatch { left, right } => write!(f, "operands at levels {left} and {right}; drop the higher one first"),
            Self::ScaleMismatch { left, right } => write!(f, "operands have scales 2^{:.4} and 2^{:.4}", left.log2(), right.log2()),
            Self::OutOfLevels => f.write_str("no level left (level 0 cannot be rescaled)"),
            Self::SlotsMismatch => f.write_str("operands pack different slot counts"),
            Self::NoSpecialPrimes => f.write_str("this parameter set has no special primes, so it cannot switch keys"),
            Self::KeyShape => f.write_str("key has the wrong shape for this parameter set"),
            Self::MissingGaloisKey { galois_element } => write!(f, "no Galois key for element {galois_element}"),
            Self::Representation => f.write_str("polynomial in the wrong representation"),
            Self::Invalid(m) => f.write_str(m),
            Self::Io(k) => write!(f, "key file input/output failed: {k}"),
            Self::FileTooLarge { limit } => write!(f, "key file larger than the {limit} bytes a key of this parameter set has"),
            Self::EphemeralWeightTooSmall { weight, min } => {
                write!(f, "ephemeral secret Hamming weight {weight} is below the minimum {min}")
            }
        }
    }
}

impl std::error::Error for EvalError {}

impl From<clifhe_core::Error> for EvalError {
    fn from(e: clifhe_core::Error) -> Self {
        Self::Core(e)
    }
}
impl From<WireError> for EvalError {
    fn from(e: WireError) -> Self {
        Self::Wire(e)
    }
}
impl From<clifhe_core::rns::RnsError> for EvalError {
    fn from(e: clifhe_core::rns::RnsError) -> Self {
        Self::Core(clifhe_core::Error::Rns(e))
    }
}
