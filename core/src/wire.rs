//! Versioned little-endian wire format for keys and ciphertexts.
//!
//! Layout: a fixed 32-byte header, then a body whose length follows from the header and the
//! parameter set. Every read checks the header against the expected parameter set and the
//! body length against the exact expected size before touching anything, so malformed,
//! truncated or oversized input is an error, never a panic or a large allocation.
//!
//! ```text
//! header  0..4   magic "CLHE"
//!         4..6   format version (u16, currently 1)
//!         6..8   parameter preset id (u16)
//!         8      kind (u8, see `Kind`)
//!         9      flags (u8): bit 0 = made with an INSECURE test preset
//!        10..12  level (u16): primes in the body = level + 1
//!        12      log2(slots) (u8)
//!        13..16  reserved, zero
//!        16..24  scale (f64 bits)
//!        24..32  body length in bytes (u64)
//! body    prime-major: for each prime i = 0..=level, the object's limbs mod q_i, each limb N
//!         coefficients bit-packed at bitlen(q_i) bits, least significant bit first. Seeded
//!         objects start with their 32-byte public seed. Prime-major order is what lets a
//!         device emit a ciphertext prime by prime.
//! ```
//! Secret keys travel only as their 32-byte seed, under kind `SecretKeySeed`, and only through
//! the explicit export functions.

use crate::params::Params;

pub const MAGIC: [u8; 4] = *b"CLHE";
pub const VERSION: u16 = 1;
pub const HEADER_BYTES: usize = 32;
/// Flag bit: object made with an insecure test parameter set.
pub const FLAG_INSECURE: u8 = 1;
/// The log2(slots) field every key object carries: keys have no slot count, so the writers put
/// 0 there and the key readers accept nothing else.
pub const KEY_LOG_SLOTS: u8 = 0;
/// The scale field every key object carries (keys have no scale; the writers put 1.0 there).
pub const KEY_SCALE: f64 = 1.0;

/// Object kinds. Values are stable; std-ext's evaluation keys use 16 and up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
#[non_exhaustive]
pub enum Kind {
    PublicKey = 1,
    Ciphertext = 2,
    SeededCiphertext = 3,
    SecretKeySeed = 4,
    RelinearizationKey = 16,
    GaloisKey = 17,
    SwitchingKey = 18,
    /// Bootstrapping's sparse-secret encapsulation pair (dense-to-sparse at q0*p0, sparse-to-dense).
    EncapsulationKey = 19,
}

impl Kind {
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::PublicKey,
            2 => Self::Ciphertext,
            3 => Self::SeededCiphertext,
            4 => Self::SecretKeySeed,
            16 => Self::RelinearizationKey,
            17 => Self::GaloisKey,
            18 => Self::SwitchingKey,
            19 => Self::EncapsulationKey,
            _ => return None,
        })
    }
}

/// A header field of a key object that must hold exactly the value the writer writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyField {
    /// The level: the maximum level for public and evaluation keys, 0 for a secret key seed.
    Level,
    /// log2(slots): always [`KEY_LOG_SLOTS`].
    LogSlots,
    /// The scale: always [`KEY_SCALE`], bit for bit.
    Scale,
}

/// Why bytes were refused.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum WireError {
    Truncated {
        needed: usize,
        found: usize,
    },
    BadMagic,
    UnsupportedVersion(u16),
    UnknownKind(u8),
    WrongKind {
        expected: u8,
        found: u8,
    },
    /// The object belongs to another parameter set than the one supplied.
    ParamsMismatch {
        expected: u16,
        found: u16,
    },
    /// Insecure test objects are refused unless built with `insecure-test-params`.
    InsecureRefused,
    /// Flag bits this version does not know.
    UnknownFlags(u8),
    BadLevel {
        level: u16,
        max: usize,
    },
    BadSlots(u8),
    BadScale,
    /// Declared body length differs from what the header implies.
    BodyLength {
        declared: u64,
        expected: usize,
    },
    /// Bytes after the body.
    TrailingBytes,
    /// A coefficient is not reduced modulo its prime (or reserved bytes are nonzero).
    NonCanonical,
    /// A key's header field holds a value the writer never writes. Keys accept exactly one
    /// encoding, so `encode(decode(b)) == b` for every accepted `b`.
    NonCanonicalKeyHeader(KeyField),
    /// Output buffer too small.
    OutputTooSmall {
        needed: usize,
        found: usize,
    },
}

impl core::fmt::Display for WireError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Truncated { needed, found } => write!(f, "truncated input: need {needed} bytes, have {found}"),
            Self::BadMagic => f.write_str("not a clifhe object (bad magic)"),
            Self::UnsupportedVersion(v) => write!(f, "unsupported format version {v}"),
            Self::UnknownKind(k) => write!(f, "unknown object kind {k}"),
            Self::WrongKind { expected, found } => write!(f, "expected object kind {expected}, found {found}"),
            Self::ParamsMismatch { expected, found } => {
                write!(f, "object is for parameter set {found}, but parameter set {expected} was given")
            }
            Self::InsecureRefused => f.write_str("object was made with INSECURE test parameters; refused"),
            Self::UnknownFlags(x) => write!(f, "unknown flag bits {x:#04x}"),
            Self::BadLevel { level, max } => write!(f, "level {level} exceeds the maximum {max}"),
            Self::BadSlots(s) => write!(f, "log2(slots) = {s} is too large for this ring"),
            Self::BadScale => f.write_str("scale is not a finite positive number"),
            Self::BodyLength { declared, expected } => write!(f, "body length {declared} but {expected} expected"),
            Self::TrailingBytes => f.write_str("unexpected bytes after the object"),
            Self::NonCanonical => f.write_str("non-canonical encoding (coefficient not reduced, or reserved bits set)"),
            Self::NonCanonicalKeyHeader(field) => write!(f, "non-canonical key header: unexpected {field:?} field"),
            Self::OutputTooSmall { needed, found } => write!(f, "output buffer of {found} bytes, need {needed}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for WireError {}

/// The decoded fixed header.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Header {
    pub params_id: u16,
    pub kind: Kind,
    pub insecure: bool,
    pub level: u16,
    pub log_slots: u8,
    pub scale: f64,
    pub body_len: u64,
}

impl Header {
    pub fn to_bytes(&self) -> [u8; HEADER_BYTES] {
        let mut h = [0u8; HEADER_BYTES];
        h[0..4].copy_from_slice(&MAGIC);
        h[4..6].copy_from_slice(&VERSION.to_le_bytes());
        h[6..8].copy_from_slice(&self.params_id.to_le_bytes());
        h[8] = self.kind as u8;
        h[9] = if self.insecure { FLAG_INSECURE } else { 0 };
        h[10..12].copy_from_slice(&self.level.to_le_bytes());
        h[12] = self.log_slots;
        h[16..24].copy_from_slice(&self.scale.to_bits().to_le_bytes());
        h[24..32].copy_from_slice(&self.body_len.to_le_bytes());
        h
    }

    /// Parses and validates a header against the parameter set the caller expects.
    pub fn parse(bytes: &[u8], params: &Params, expected: Kind) -> Result<Self, WireError> {
        let h = bytes.get(..HEADER_BYTES).ok_or(WireError::Truncated {
            needed: HEADER_BYTES,
            found: bytes.len(),
        })?;
        if h[0..4] != MAGIC {
            return Err(WireError::BadMagic);
        }
        let version = u16::from_le_bytes([h[4], h[5]]);
        if version != VERSION {
            return Err(WireError::UnsupportedVersion(version));
        }
        let params_id = u16::from_le_bytes([h[6], h[7]]);
        let kind = Kind::from_u8(h[8]).ok_or(WireError::UnknownKind(h[8]))?;
        if kind != expected {
            return Err(WireError::WrongKind {
                expected: expected as u8,
                found: h[8],
            });
        }
        if params_id != params.id() {
            return Err(WireError::ParamsMismatch {
                expected: params.id(),
                found: params_id,
            });
        }
        let flags = h[9];
        if flags & !FLAG_INSECURE != 0 {
            return Err(WireError::UnknownFlags(flags));
        }
        let insecure = flags & FLAG_INSECURE != 0;
        if insecure != params.is_insecure() || (insecure && !cfg!(feature = "insecure-test-params")) {
            return Err(WireError::InsecureRefused);
        }
        let level = u16::from_le_bytes([h[10], h[11]]);
        if level as usize > params.max_level() {
            return Err(WireError::BadLevel {
                level,
                max: params.max_level(),
            });
        }
        let log_slots = h[12];
        if log_slots as u32 >= params.log_n() {
            return Err(WireError::BadSlots(log_slots));
        }
        if h[13..16] != [0, 0, 0] {
            return Err(WireError::NonCanonical);
        }
        let mut s = [0u8; 8];
        s.copy_from_slice(&h[16..24]);
        let scale = f64::from_bits(u64::from_le_bytes(s));
        if !(scale.is_finite() && scale > 0.0) {
            return Err(WireError::BadScale);
        }
        s.copy_from_slice(&h[24..32]);
        let body_len = u64::from_le_bytes(s);
        Ok(Self {
            params_id,
            kind,
            insecure,
            level,
            log_slots,
            scale,
            body_len,
        })
    }

    /// [`Header::parse`] for key objects: additionally refuses any level other than `level`
    /// and any log2(slots) or scale other than [`KEY_LOG_SLOTS`] / [`KEY_SCALE`]. Keys carry no
    /// meaningful value in these fields, so accepting anything else would let several byte
    /// strings decode to one key (a malleability and fingerprinting nuisance, review issue 12).
    pub fn parse_key(bytes: &[u8], params: &Params, expected: Kind, level: usize) -> Result<Self, WireError> {
        let h = Self::parse(bytes, params, expected)?;
        if h.level as usize != level {
            return Err(WireError::NonCanonicalKeyHeader(KeyField::Level));
        }
        if h.log_slots != KEY_LOG_SLOTS {
            return Err(WireError::NonCanonicalKeyHeader(KeyField::LogSlots));
        }
        // Bitwise: -0.0, other NaN payloads etc. would compare differently but must all fail.
        if h.scale.to_bits() != KEY_SCALE.to_bits() {
            return Err(WireError::NonCanonicalKeyHeader(KeyField::Scale));
        }
        Ok(h)
    }
}

/// Bytes of one bit-packed limb of N coefficients modulo a `bits`-bit prime.
pub const fn limb_bytes(n: usize, bits: u32) -> usize {
    (n * bits as usize).div_ceil(8)
}

/// Bytes of the limbs of `polys` polynomials over primes q_0..=q_level.
pub fn body_bytes(params: &Params, level: usize, polys: usize) -> usize {
    params
        .q()
        .iter()
        .take(level + 1)
        .map(|&q| limb_bytes(params.n(), 64 - q.leading_zeros()))
        .sum::<usize>()
        * polys
}

/// Packs coefficients (each < 2^bits) into `out` (exactly `limb_bytes` long), LSB first.
pub fn pack_limb(coeffs: &[u64], bits: u32, out: &mut [u8]) -> Result<(), WireError> {
    let needed = limb_bytes(coeffs.len(), bits);
    if out.len() != needed {
        return Err(WireError::OutputTooSmall { needed, found: out.len() });
    }
    let mut acc: u128 = 0;
    let mut acc_bits = 0u32;
    let mut pos = 0;
    let mask = (1u128 << bits) - 1;
    for &c in coeffs {
        acc |= (c as u128 & mask) << acc_bits;
        acc_bits += bits;
        while acc_bits >= 8 {
            out[pos] = acc as u8;
            pos += 1;
            acc >>= 8;
            acc_bits -= 8;
        }
    }
    if acc_bits > 0 {
        out[pos] = acc as u8;
    }
    Ok(())
}

/// Unpacks a limb, refusing any coefficient >= q (so every accepted encoding is canonical).
pub fn unpack_limb(bytes: &[u8], q: u64, out: &mut [u64]) -> Result<(), WireError> {
    let bits = 64 - q.leading_zeros();
    let needed = limb_bytes(out.len(), bits);
    if bytes.len() != needed {
        return Err(WireError::Truncated {
            needed,
            found: bytes.len(),
        });
    }
    let mask = (1u64 << bits) - 1;
    let mut acc: u128 = 0;
    let mut acc_bits = 0u32;
    let mut it = bytes.iter();
    for o in out.iter_mut() {
        while acc_bits < bits {
            let b = *it.next().ok_or(WireError::Truncated {
                needed,
                found: bytes.len(),
            })?;
            acc |= (b as u128) << acc_bits;
            acc_bits += 8;
        }
        let v = acc as u64 & mask;
        if v >= q {
            return Err(WireError::NonCanonical);
        }
        *o = v;
        acc >>= bits;
        acc_bits -= bits;
    }
    // Padding bits of the last byte must be zero.
    if acc != 0 {
        return Err(WireError::NonCanonical);
    }
    Ok(())
}

#[cfg(feature = "alloc")]
mod owned;
#[cfg(feature = "alloc")]
pub use owned::*;
