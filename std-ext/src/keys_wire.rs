//! Seed-compressed serialisation of evaluation keys, one file per key.
//!
//! A switching key is its 32-byte `a` seed plus the `b` polynomials; `a` is regenerated on
//! load, halving the size (Lattigo and fhe.rs do the same). Layout after the core wire header
//! (kind `RelinearizationKey` or `GaloisKey`, level = max level, scale 1):
//! `galois element (u64 LE, 0 for relinearization) | a seed (32) | b`, where `b` is digit-major,
//! then prime-major over q_0..q_L, p_0..p_{k-1}, each limb bit-packed like ciphertext limbs.

use crate::bootstrap::encapsulation::{DenseToSparseKey, EncapsulationKeys};
use crate::context::EvalContext;
use crate::error::EvalError;
use crate::keys::{GaloisKeys, RelinearizationKey};
use crate::keyswitch::SwitchingKey;
use clifhe_core::rns::{Representation, RnsPoly};
use clifhe_core::sample::SEED_BYTES;
use clifhe_core::wire::{limb_bytes, pack_limb, unpack_limb, Header, Kind, WireError, HEADER_BYTES, KEY_LOG_SLOTS, KEY_SCALE};
use std::path::Path;

fn bits(q: u64) -> u32 {
    64 - q.leading_zeros()
}

fn body_len(ectx: &EvalContext) -> usize {
    let n = ectx.n();
    let per_digit: usize = ectx.qp_moduli().iter().map(|m| limb_bytes(n, bits(m.value()))).sum();
    8 + SEED_BYTES + ectx.digits() * per_digit
}

fn header(ectx: &EvalContext, kind: Kind, body: usize) -> Header {
    let params = ectx.params();
    Header {
        params_id: params.id(),
        kind,
        insecure: params.is_insecure(),
        level: params.max_level() as u16,
        log_slots: KEY_LOG_SLOTS,
        scale: KEY_SCALE,
        body_len: body as u64,
    }
}

/// `a seed | b` of one switching key over Q*P.
fn write_switching_body(ectx: &EvalContext, key: &SwitchingKey, out: &mut Vec<u8>) -> Result<(), EvalError> {
    if key.params_id() != ectx.params().id() {
        return Err(EvalError::ParamsMismatch);
    }
    let n = ectx.n();
    out.extend_from_slice(key.a_seed());
    for b in key.b_polys() {
        for (t, m) in ectx.qp_moduli().iter().enumerate() {
            let limb = b.limb(t).ok_or(EvalError::KeyShape)?;
            let start = out.len();
            out.resize(start + limb_bytes(n, bits(m.value())), 0);
            pack_limb(limb, bits(m.value()), &mut out[start..])?;
        }
    }
    Ok(())
}

/// Inverse of [`write_switching_body`]; `body` has exactly `switching_body_len` bytes.
fn read_switching_body(ectx: &EvalContext, body: &[u8]) -> Result<SwitchingKey, EvalError> {
    let mut seed = [0u8; SEED_BYTES];
    seed.copy_from_slice(&body[..SEED_BYTES]);
    let n = ectx.n();
    let mut pos = SEED_BYTES;
    let mut b = Vec::with_capacity(ectx.digits());
    for _ in 0..ectx.digits() {
        let mut poly = RnsPoly::zero(n, ectx.qp_moduli().len(), Representation::Ntt);
        for (t, m) in ectx.qp_moduli().iter().enumerate() {
            let len = limb_bytes(n, bits(m.value()));
            let limb = poly.limb_mut(t).ok_or(EvalError::KeyShape)?;
            unpack_limb(&body[pos..pos + len], m.value(), limb)?;
            pos += len;
        }
        b.push(poly);
    }
    SwitchingKey::from_seed_and_b(ectx, seed, b)
}

fn switching_body_len(ectx: &EvalContext) -> usize {
    body_len(ectx) - 8
}

/// Checks header, declared and actual length; returns the body. The header must be exactly the
/// one [`header`] writes (level = max level, log2(slots) 0, scale 1.0), so that every accepted
/// key file re-encodes to the same bytes.
fn checked_body<'b>(ectx: &EvalContext, bytes: &'b [u8], kind: Kind, expected: usize) -> Result<&'b [u8], EvalError> {
    let params = ectx.params();
    let h = Header::parse_key(bytes, params, kind, params.max_level())?;
    if h.body_len != expected as u64 {
        return Err(WireError::BodyLength {
            declared: h.body_len,
            expected,
        }
        .into());
    }
    if bytes.len() != HEADER_BYTES + expected {
        return Err(if bytes.len() < HEADER_BYTES + expected {
            WireError::Truncated {
                needed: HEADER_BYTES + expected,
                found: bytes.len(),
            }
        } else {
            WireError::TrailingBytes
        }
        .into());
    }
    Ok(&bytes[HEADER_BYTES..])
}

fn to_bytes(ectx: &EvalContext, key: &SwitchingKey, kind: Kind, g: u64) -> Result<Vec<u8>, EvalError> {
    let body = body_len(ectx);
    let mut out = Vec::with_capacity(HEADER_BYTES + body);
    out.extend_from_slice(&header(ectx, kind, body).to_bytes());
    out.extend_from_slice(&g.to_le_bytes());
    write_switching_body(ectx, key, &mut out)?;
    Ok(out)
}

fn from_bytes(ectx: &EvalContext, bytes: &[u8], kind: Kind) -> Result<(u64, SwitchingKey), EvalError> {
    let body = checked_body(ectx, bytes, kind, body_len(ectx))?;
    let mut g = [0u8; 8];
    g.copy_from_slice(&body[..8]);
    Ok((u64::from_le_bytes(g), read_switching_body(ectx, &body[8..])?))
}

/// q_0 and p_0, the two primes of the dense-to-sparse key; a typed error without special primes.
fn encapsulation_moduli(ectx: &EvalContext) -> Result<[u64; 2], EvalError> {
    Ok([ectx.q_moduli()[0].value(), ectx.p0_table()?.modulus().value()])
}

fn encapsulation_body_len(ectx: &EvalContext) -> Result<usize, EvalError> {
    let n = ectx.n();
    let small: usize = encapsulation_moduli(ectx)?.iter().map(|&q| limb_bytes(n, bits(q))).sum();
    Ok(SEED_BYTES + small + switching_body_len(ectx))
}

/// Bytes of one relinearization or Galois key file for this parameter set.
pub fn switching_key_file_bytes(ectx: &EvalContext) -> usize {
    HEADER_BYTES + body_len(ectx)
}

/// Bytes of the encapsulation key file for this parameter set ([`EvalError::NoSpecialPrimes`]
/// for a set that cannot have one).
pub fn encapsulation_key_file_bytes(ectx: &EvalContext) -> Result<usize, EvalError> {
    Ok(HEADER_BYTES + encapsulation_body_len(ectx)?)
}

/// Reads a key file of at most `limit` bytes. The limit is the exact size a key of the
/// parameter set has, so a larger file is refused (typed) before it is read into memory,
/// and a file that grows while being read is cut off at `limit + 1` bytes and refused too.
pub(crate) fn read_key_file(path: &Path, limit: usize) -> Result<Vec<u8>, EvalError> {
    use std::io::Read;
    let limit = limit as u64;
    let file = std::fs::File::open(path).map_err(|e| EvalError::Io(e.kind()))?;
    let len = file.metadata().map_err(|e| EvalError::Io(e.kind()))?.len();
    if len > limit {
        return Err(EvalError::FileTooLarge { limit });
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(limit + 1).read_to_end(&mut bytes).map_err(|e| EvalError::Io(e.kind()))?;
    if bytes.len() as u64 > limit {
        return Err(EvalError::FileTooLarge { limit });
    }
    Ok(bytes)
}

impl EncapsulationKeys {
    /// `dense-to-sparse (a seed | b mod q0 | b mod p0) | sparse-to-dense (a seed | b)`, after a
    /// header of kind `EncapsulationKey`; both `a` halves are regenerated on load.
    pub fn to_bytes(&self, ectx: &EvalContext) -> Result<Vec<u8>, EvalError> {
        let body = encapsulation_body_len(ectx)?;
        let mut out = Vec::with_capacity(HEADER_BYTES + body);
        out.extend_from_slice(&header(ectx, Kind::EncapsulationKey, body).to_bytes());
        let d2s = &self.dense_to_sparse;
        if d2s.moduli() != encapsulation_moduli(ectx)? {
            return Err(EvalError::ParamsMismatch);
        }
        out.extend_from_slice(d2s.a_seed());
        for (limb, q) in d2s.b_limbs().iter().zip(d2s.moduli()) {
            let start = out.len();
            out.resize(start + limb_bytes(ectx.n(), bits(q)), 0);
            pack_limb(limb, bits(q), &mut out[start..])?;
        }
        write_switching_body(ectx, &self.sparse_to_dense, &mut out)?;
        Ok(out)
    }

    pub fn from_bytes(ectx: &EvalContext, bytes: &[u8]) -> Result<Self, EvalError> {
        let body = checked_body(ectx, bytes, Kind::EncapsulationKey, encapsulation_body_len(ectx)?)?;
        let n = ectx.n();
        let mut seed = [0u8; SEED_BYTES];
        seed.copy_from_slice(&body[..SEED_BYTES]);
        let mut pos = SEED_BYTES;
        let moduli = encapsulation_moduli(ectx)?;
        let mut b = [vec![0u64; n], vec![0u64; n]];
        for (limb, q) in b.iter_mut().zip(moduli) {
            let len = limb_bytes(n, bits(q));
            unpack_limb(&body[pos..pos + len], q, limb)?;
            pos += len;
        }
        Ok(Self {
            dense_to_sparse: DenseToSparseKey::from_seed_and_b(ectx, seed, b)?,
            sparse_to_dense: read_switching_body(ectx, &body[pos..])?,
        })
    }
}

impl RelinearizationKey {
    pub fn to_bytes(&self, ectx: &EvalContext) -> Result<Vec<u8>, EvalError> {
        to_bytes(ectx, &self.0, Kind::RelinearizationKey, 0)
    }
    pub fn from_bytes(ectx: &EvalContext, bytes: &[u8]) -> Result<Self, EvalError> {
        let (g, key) = from_bytes(ectx, bytes, Kind::RelinearizationKey)?;
        if g != 0 {
            return Err(WireError::NonCanonical.into());
        }
        Ok(Self(key))
    }
}

/// A key switching key from an enrolled device's secret key to the hospital's
/// (`protocol::device`): the hospital registers one per device with the vendor. Public
/// material, like the relinearization key.
#[derive(Debug)]
pub struct DeviceSwitchKey(pub SwitchingKey);

impl DeviceSwitchKey {
    /// The key after a header of kind `SwitchingKey` and a zero word (the Galois element slot
    /// of the shared layout).
    pub fn to_bytes(&self, ectx: &EvalContext) -> Result<Vec<u8>, EvalError> {
        to_bytes(ectx, &self.0, Kind::SwitchingKey, 0)
    }
    pub fn from_bytes(ectx: &EvalContext, bytes: &[u8]) -> Result<Self, EvalError> {
        let (g, key) = from_bytes(ectx, bytes, Kind::SwitchingKey)?;
        if g != 0 {
            return Err(WireError::NonCanonical.into());
        }
        Ok(Self(key))
    }
}

/// File name of the Galois key for element `g` inside a key directory.
pub fn galois_key_file_name(g: usize) -> String {
    format!("galois-{g}.key")
}

impl GaloisKeys {
    /// Serialises the key for element `g`.
    pub fn key_to_bytes(&self, ectx: &EvalContext, g: usize) -> Result<Vec<u8>, EvalError> {
        to_bytes(ectx, self.get(g)?, Kind::GaloisKey, g as u64)
    }

    /// Parses one Galois key; returns its element.
    pub fn insert_from_bytes(&mut self, ectx: &EvalContext, bytes: &[u8]) -> Result<usize, EvalError> {
        let (g, key) = from_bytes(ectx, bytes, Kind::GaloisKey)?;
        let g = usize::try_from(g).map_err(|_| EvalError::Invalid("Galois element out of range"))?;
        if g % 2 == 0 || g >= 2 * ectx.n() {
            return Err(EvalError::Invalid("Galois element must be odd and below 2N"));
        }
        self.insert(g, key);
        Ok(g)
    }

    /// Writes one file per key (`galois-<g>.key`) into `dir`, each atomically (temp + rename).
    pub fn write_dir(&self, ectx: &EvalContext, dir: &Path) -> Result<(), std::io::Error> {
        for g in self.elements() {
            let bytes = self
                .key_to_bytes(ectx, g)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
            let path = dir.join(galois_key_file_name(g));
            let tmp = dir.join(format!(".{}.tmp", galois_key_file_name(g)));
            std::fs::write(&tmp, &bytes)?;
            std::fs::rename(&tmp, &path)?;
        }
        Ok(())
    }

    /// Loads only the keys for `elements` from `dir` (selective loading: an evaluator that
    /// needs rotations by 1..7 does not read the bootstrapping keys). Each file is read with a
    /// cap of [`switching_key_file_bytes`] (the exact size of a key file for this parameter
    /// set): a larger file is [`EvalError::FileTooLarge`], not a large allocation.
    pub fn read_dir(ectx: &EvalContext, dir: &Path, elements: &[usize]) -> Result<Self, EvalError> {
        let mut keys = GaloisKeys::default();
        let limit = switching_key_file_bytes(ectx);
        for &g in elements {
            let path = dir.join(galois_key_file_name(g));
            let bytes = read_key_file(&path, limit).map_err(|e| match e {
                EvalError::Io(_) => EvalError::MissingGaloisKey { galois_element: g },
                e => e,
            })?;
            let got = keys.insert_from_bytes(ectx, &bytes)?;
            if got != g {
                return Err(EvalError::Invalid("Galois key file holds another element than its name says"));
            }
        }
        Ok(keys)
    }
}
