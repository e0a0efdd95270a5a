//! Whole-object serialisation on the host (allocating).

use super::*;
use crate::ciphertext::{Ciphertext, CiphertextMeta, SeededCiphertext};
use crate::keys::{PublicKey, SecretKey, SecretSeed};
use crate::rns::{Representation, RnsPoly};
use crate::sample::SEED_BYTES;
use alloc::vec;
use alloc::vec::Vec;

fn bits(q: u64) -> u32 {
    64 - q.leading_zeros()
}

/// Appends the limbs of `polys` prime-major.
fn push_limbs<S: AsRef<[u64]>>(params: &Params, polys: &[&RnsPoly<S>], out: &mut Vec<u8>) -> Result<(), WireError> {
    let n = params.n();
    let limbs = polys.first().map_or(0, |p| p.limbs());
    for i in 0..limbs {
        let q = params.q()[i];
        for p in polys {
            let start = out.len();
            out.resize(start + limb_bytes(n, bits(q)), 0);
            let limb = p.limb(i).ok_or(WireError::NonCanonical)?;
            pack_limb(limb, bits(q), &mut out[start..])?;
        }
    }
    Ok(())
}

/// Reads `polys` polynomials of `limbs` limbs, prime-major, from `body`.
fn read_limbs(params: &Params, limbs: usize, polys: usize, body: &[u8]) -> Result<Vec<RnsPoly<Vec<u64>>>, WireError> {
    let n = params.n();
    let mut out: Vec<RnsPoly<Vec<u64>>> = (0..polys).map(|_| RnsPoly::zero(n, limbs, Representation::Ntt)).collect();
    let mut pos = 0;
    for i in 0..limbs {
        let q = params.q()[i];
        let len = limb_bytes(n, bits(q));
        for p in out.iter_mut() {
            let chunk = body.get(pos..pos + len).ok_or(WireError::Truncated {
                needed: pos + len,
                found: body.len(),
            })?;
            let limb = p.limb_mut(i).ok_or(WireError::NonCanonical)?;
            unpack_limb(chunk, q, limb)?;
            pos += len;
        }
    }
    Ok(out)
}

/// Splits `bytes` into a validated header and a body of exactly the expected length.
fn split<'a>(
    bytes: &'a [u8],
    params: &Params,
    kind: Kind,
    expected_body: impl Fn(&Header) -> usize,
) -> Result<(Header, &'a [u8]), WireError> {
    let h = Header::parse(bytes, params, kind)?;
    split_body(bytes, h, expected_body(&h))
}

/// [`split`] for key objects, whose header must be exactly what the writer writes
/// ([`Header::parse_key`]).
fn split_key<'a>(bytes: &'a [u8], params: &Params, kind: Kind, level: usize, expected: usize) -> Result<(Header, &'a [u8]), WireError> {
    let h = Header::parse_key(bytes, params, kind, level)?;
    split_body(bytes, h, expected)
}

/// Checks the declared and the actual body length against `expected`.
fn split_body(bytes: &[u8], h: Header, expected: usize) -> Result<(Header, &[u8]), WireError> {
    if h.body_len != expected as u64 {
        return Err(WireError::BodyLength {
            declared: h.body_len,
            expected,
        });
    }
    let total = HEADER_BYTES + expected;
    if bytes.len() < total {
        return Err(WireError::Truncated {
            needed: total,
            found: bytes.len(),
        });
    }
    if bytes.len() > total {
        return Err(WireError::TrailingBytes);
    }
    Ok((h, &bytes[HEADER_BYTES..total]))
}

fn header(params: &Params, kind: Kind, level: usize, log_slots: u32, scale: f64, body_len: usize) -> Header {
    Header {
        params_id: params.id(),
        kind,
        insecure: params.is_insecure(),
        level: level as u16,
        log_slots: log_slots as u8,
        scale,
        body_len: body_len as u64,
    }
}

fn check_meta(params: &Params, meta: &CiphertextMeta, limbs: usize) -> Result<(), WireError> {
    if meta.params_id != params.id() {
        return Err(WireError::ParamsMismatch {
            expected: params.id(),
            found: meta.params_id,
        });
    }
    if meta.level + 1 != limbs || meta.level > params.max_level() {
        return Err(WireError::BadLevel {
            level: meta.level as u16,
            max: params.max_level(),
        });
    }
    Ok(())
}

/// Serialises a ciphertext.
pub fn ciphertext_to_bytes<S: AsRef<[u64]>>(params: &Params, ct: &Ciphertext<S>) -> Result<Vec<u8>, WireError> {
    check_meta(params, &ct.meta, ct.c0.limbs())?;
    let body = body_bytes(params, ct.meta.level, 2);
    let mut out = Vec::with_capacity(HEADER_BYTES + body);
    out.extend_from_slice(&header(params, Kind::Ciphertext, ct.meta.level, ct.meta.log_slots, ct.meta.scale, body).to_bytes());
    push_limbs(params, &[&ct.c0, &ct.c1], &mut out)?;
    Ok(out)
}

/// Parses a ciphertext for `params`.
pub fn ciphertext_from_bytes(params: &Params, bytes: &[u8]) -> Result<Ciphertext<Vec<u64>>, WireError> {
    let (h, body) = split(bytes, params, Kind::Ciphertext, |h| body_bytes(params, h.level as usize, 2))?;
    let mut polys = read_limbs(params, h.level as usize + 1, 2, body)?;
    let c1 = polys.pop().ok_or(WireError::NonCanonical)?;
    let c0 = polys.pop().ok_or(WireError::NonCanonical)?;
    let meta = CiphertextMeta {
        params_id: h.params_id,
        level: h.level as usize,
        scale: h.scale,
        log_slots: h.log_slots as u32,
        insecure: h.insecure,
    };
    Ok(Ciphertext { c0, c1, meta })
}

/// Serialises a seeded ciphertext (seed, then c0 limbs).
pub fn seeded_ciphertext_to_bytes<S: AsRef<[u64]>>(params: &Params, ct: &SeededCiphertext<S>) -> Result<Vec<u8>, WireError> {
    check_meta(params, &ct.meta, ct.c0.limbs())?;
    let body = SEED_BYTES + body_bytes(params, ct.meta.level, 1);
    let mut out = Vec::with_capacity(HEADER_BYTES + body);
    out.extend_from_slice(
        &header(
            params,
            Kind::SeededCiphertext,
            ct.meta.level,
            ct.meta.log_slots,
            ct.meta.scale,
            body,
        )
        .to_bytes(),
    );
    out.extend_from_slice(&ct.c1_seed);
    push_limbs(params, &[&ct.c0], &mut out)?;
    Ok(out)
}

pub fn seeded_ciphertext_from_bytes(params: &Params, bytes: &[u8]) -> Result<SeededCiphertext<Vec<u64>>, WireError> {
    let (h, body) = split(bytes, params, Kind::SeededCiphertext, |h| {
        SEED_BYTES + body_bytes(params, h.level as usize, 1)
    })?;
    let mut seed = [0u8; SEED_BYTES];
    seed.copy_from_slice(&body[..SEED_BYTES]);
    let c0 = read_limbs(params, h.level as usize + 1, 1, &body[SEED_BYTES..])?
        .pop()
        .ok_or(WireError::NonCanonical)?;
    let meta = CiphertextMeta {
        params_id: h.params_id,
        level: h.level as usize,
        scale: h.scale,
        log_slots: h.log_slots as u32,
        insecure: h.insecure,
    };
    Ok(SeededCiphertext { c0, c1_seed: seed, meta })
}

/// Serialises a public key (a-seed, then b over all ciphertext primes).
pub fn public_key_to_bytes<S: AsRef<[u64]>>(params: &Params, pk: &PublicKey<S>) -> Result<Vec<u8>, WireError> {
    if pk.params_id() != params.id() {
        return Err(WireError::ParamsMismatch {
            expected: params.id(),
            found: pk.params_id(),
        });
    }
    let level = params.max_level();
    let body = SEED_BYTES + body_bytes(params, level, 1);
    let mut out = Vec::with_capacity(HEADER_BYTES + body);
    out.extend_from_slice(&header(params, Kind::PublicKey, level, KEY_LOG_SLOTS.into(), KEY_SCALE, body).to_bytes());
    out.extend_from_slice(pk.a_seed());
    push_limbs(params, &[pk.b()], &mut out)?;
    Ok(out)
}

pub fn public_key_from_bytes(params: &Params, bytes: &[u8]) -> Result<PublicKey<Vec<u64>>, WireError> {
    let level = params.max_level();
    let (_, body) = split_key(bytes, params, Kind::PublicKey, level, SEED_BYTES + body_bytes(params, level, 1))?;
    let mut seed = [0u8; SEED_BYTES];
    seed.copy_from_slice(&body[..SEED_BYTES]);
    let b = read_limbs(params, params.q().len(), 1, &body[SEED_BYTES..])?
        .pop()
        .ok_or(WireError::NonCanonical)?;
    PublicKey::from_parts(params, seed, b).map_err(|_| WireError::NonCanonical)
}

/// Exports a secret key as its seed. Explicit by design; the bytes are wiped on drop.
pub fn export_secret_key<K: AsRef<[i8]> + AsMut<[i8]>>(
    params: &Params,
    sk: &SecretKey<K>,
) -> Result<zeroize::Zeroizing<Vec<u8>>, WireError> {
    if sk.params_id() != params.id() {
        return Err(WireError::ParamsMismatch {
            expected: params.id(),
            found: sk.params_id(),
        });
    }
    let mut out = zeroize::Zeroizing::new(Vec::with_capacity(HEADER_BYTES + SEED_BYTES));
    out.extend_from_slice(&header(params, Kind::SecretKeySeed, 0, KEY_LOG_SLOTS.into(), KEY_SCALE, SEED_BYTES).to_bytes());
    out.extend_from_slice(sk.export_seed().as_bytes());
    Ok(out)
}

/// Imports a secret key from its exported seed.
pub fn import_secret_key(params: &Params, bytes: &[u8]) -> Result<SecretKey<Vec<i8>>, WireError> {
    let (_, body) = split_key(bytes, params, Kind::SecretKeySeed, 0, SEED_BYTES)?;
    // Straight into the wiped-on-drop type: no plain stack copy of the seed is left behind.
    let seed = SecretSeed::from_slice(body).ok_or(WireError::Truncated {
        needed: SEED_BYTES,
        found: body.len(),
    })?;
    SecretKey::from_seed_into(params, &seed, vec![0i8; params.n()]).map_err(|_| WireError::NonCanonical)
}
