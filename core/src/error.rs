//! The crate-wide error type: every failure on an input path is one of these, never a panic.

use crate::ntt::NttError;
use crate::params::ParamsError;
use crate::rns::RnsError;

/// Errors from key generation, encryption and decryption.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum Error {
    Params(ParamsError),
    Rns(RnsError),
    Ntt(NttError),
    /// The encoder refused the input (see the message).
    Encode(&'static str),
    /// An object was made for another parameter set.
    ParamsMismatch {
        expected: u16,
        found: u16,
    },
    /// A level above the chain, or below what the operation needs.
    LevelOutOfRange {
        level: usize,
        max: usize,
    },
    /// A prime index past the ciphertext level.
    PrimeOutOfRange {
        index: usize,
        primes: usize,
    },
    /// A caller buffer has the wrong length.
    BufferLength {
        expected: usize,
        found: usize,
    },
    /// Scale is not finite, not positive, or too large for the modulus.
    BadScale,
    /// A precomputed part of a key (an expanded public `a`) was made from another key.
    KeyMismatch,
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Params(e) => write!(f, "parameters: {e}"),
            Self::Rns(e) => write!(f, "polynomial: {e}"),
            Self::Ntt(e) => write!(f, "NTT: {e}"),
            Self::Encode(e) => write!(f, "encoding: {e}"),
            Self::ParamsMismatch { expected, found } => {
                write!(f, "object belongs to parameter set {found}, expected {expected}")
            }
            Self::LevelOutOfRange { level, max } => write!(f, "level {level} is outside 0..={max}"),
            Self::PrimeOutOfRange { index, primes } => write!(f, "prime index {index} but only {primes} primes"),
            Self::BufferLength { expected, found } => write!(f, "buffer holds {found} elements, expected {expected}"),
            Self::BadScale => f.write_str("scale must be finite, positive and below the modulus"),
            Self::KeyMismatch => f.write_str("precomputed key material belongs to another key"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}

impl From<ParamsError> for Error {
    fn from(e: ParamsError) -> Self {
        Self::Params(e)
    }
}
impl From<RnsError> for Error {
    fn from(e: RnsError) -> Self {
        Self::Rns(e)
    }
}
impl From<NttError> for Error {
    fn from(e: NttError) -> Self {
        Self::Ntt(e)
    }
}

/// Checks a caller buffer length.
#[inline]
pub(crate) fn check_len(found: usize, expected: usize) -> Result<(), Error> {
    if found == expected {
        Ok(())
    } else {
        Err(Error::BufferLength { expected, found })
    }
}
