//! One-shot encryption on the host (`alloc`): whole ciphertexts in vectors, built from the
//! per-prime streaming encryptors of the parent module that the device uses.

use super::*;
use crate::ciphertext::{Ciphertext, CiphertextMeta, SeededCiphertext};
use crate::rns::{Representation, RnsPoly};
use alloc::vec;
use alloc::vec::Vec;

fn check_level(params: &Params, level: usize) -> Result<(), Error> {
    if level > params.max_level() {
        return Err(Error::LevelOutOfRange {
            level,
            max: params.max_level(),
        });
    }
    Ok(())
}

/// The NTT table of prime `i`, or the typed error when the caller passed too few.
fn table_at<T: AsRef<[u64]>>(tables: &[NttTable<T>], i: usize) -> Result<&NttTable<T>, Error> {
    tables.get(i).ok_or(Error::PrimeOutOfRange {
        index: i,
        primes: tables.len(),
    })
}

/// Limb `i` of `poly`, or the typed error past its last limb.
fn limb_at(poly: &mut RnsPoly<Vec<u64>>, i: usize) -> Result<&mut [u64], Error> {
    let primes = poly.limbs();
    poly.limb_mut(i).ok_or(Error::PrimeOutOfRange { index: i, primes })
}

/// A public key's uniform part `a`, expanded from its seed once for primes q_0..q_level
/// (public data). A host that encrypts many messages under one key (a hospital's batch, the
/// 8 block rotations of one patient) passes it to [`encrypt_pk_expanded`] instead of
/// regenerating the same ChaCha20 stream for every ciphertext; the ciphertexts are the same
/// words either way.
#[derive(Clone, Debug)]
pub struct ExpandedPublicA {
    seed: [u8; SEED_BYTES],
    params_id: u16,
    a: RnsPoly<Vec<u64>>,
}

impl ExpandedPublicA {
    /// Expands `pk`'s `a` for primes q_0..q_level.
    pub fn new<T: AsRef<[u64]>, P: AsRef<[u64]>>(
        params: &Params,
        tables: &[NttTable<T>],
        pk: &PublicKey<P>,
        level: usize,
    ) -> Result<Self, Error> {
        check_level(params, level)?;
        if pk.params_id() != params.id() {
            return Err(Error::ParamsMismatch {
                expected: params.id(),
                found: pk.params_id(),
            });
        }
        let n = params.n();
        let mut a = RnsPoly::zero(n, level + 1, Representation::Ntt);
        for i in 0..=level {
            let m = table_at(tables, i)?.modulus();
            expand_public_into(pk.a_seed(), SeedPurpose::PublicKeyA, i as u32, m, limb_at(&mut a, i)?);
        }
        Ok(Self {
            seed: *pk.a_seed(),
            params_id: pk.params_id(),
            a,
        })
    }

    /// The highest level it covers.
    pub fn level(&self) -> usize {
        self.a.limbs() - 1
    }

    fn limb_for<P: AsRef<[u64]>>(&self, pk: &PublicKey<P>, prime: usize) -> Result<&[u64], Error> {
        if pk.a_seed() != &self.seed || pk.params_id() != self.params_id {
            return Err(Error::KeyMismatch);
        }
        self.a.limb(prime).ok_or(Error::LevelOutOfRange {
            level: prime,
            max: self.level(),
        })
    }
}

/// Public-key encryption at `level` (primes q_0..q_level).
pub fn encrypt_pk<R: RngCore + CryptoRng, T: AsRef<[u64]>, P: AsRef<[u64]>, M: AsRef<[C]> + AsMut<[C]>, C: PlainCoeff>(
    params: &Params,
    tables: &[NttTable<T>],
    pk: &PublicKey<P>,
    msg: &Plaintext<M, C>,
    level: usize,
    rng: &mut R,
) -> Result<Ciphertext<Vec<u64>>, Error> {
    encrypt_pk_inner(params, tables, pk, None, msg, level, rng)
}

/// [`encrypt_pk`] with `pk`'s `a` expanded beforehand (`a` must come from this key and
/// cover `level`): the same ciphertext words for the same random draws.
pub fn encrypt_pk_expanded<R: RngCore + CryptoRng, T: AsRef<[u64]>, P: AsRef<[u64]>, M: AsRef<[C]> + AsMut<[C]>, C: PlainCoeff>(
    params: &Params,
    tables: &[NttTable<T>],
    pk: &PublicKey<P>,
    a: &ExpandedPublicA,
    msg: &Plaintext<M, C>,
    level: usize,
    rng: &mut R,
) -> Result<Ciphertext<Vec<u64>>, Error> {
    encrypt_pk_inner(params, tables, pk, Some(a), msg, level, rng)
}

fn encrypt_pk_inner<R: RngCore + CryptoRng, T: AsRef<[u64]>, P: AsRef<[u64]>, M: AsRef<[C]> + AsMut<[C]>, C: PlainCoeff>(
    params: &Params,
    tables: &[NttTable<T>],
    pk: &PublicKey<P>,
    a: Option<&ExpandedPublicA>,
    msg: &Plaintext<M, C>,
    level: usize,
    rng: &mut R,
) -> Result<Ciphertext<Vec<u64>>, Error> {
    check_level(params, level)?;
    if let Some(a) = a {
        // Checked before any randomness is drawn.
        a.limb_for(pk, level)?;
    }
    let n = params.n();
    let noise = PkEncryptionNoise::sample_into(rng, vec![0i8; n], vec![0i8; n], vec![0i8; n])?;
    let enc = PkStreamEncryptor::new(params, pk, msg, noise)?;
    let mut c0 = RnsPoly::zero(n, level + 1, Representation::Ntt);
    let mut c1 = RnsPoly::zero(n, level + 1, Representation::Ntt);
    let mut u_hat = zeroize::Zeroizing::new(vec![0u64; n]);
    for i in 0..=level {
        let a_limb = a.map(|a| a.limb_for(pk, i)).transpose()?;
        enc.encrypt_prime(
            i,
            table_at(tables, i)?,
            &mut u_hat,
            limb_at(&mut c0, i)?,
            limb_at(&mut c1, i)?,
            a_limb,
        )?;
    }
    Ok(Ciphertext {
        c0,
        c1,
        meta: CiphertextMeta::new(params, level, msg.scale(), msg.log_slots()),
    })
}

/// Seeded secret-key encryption at `level`.
pub fn encrypt_sk_seeded<
    R: RngCore + CryptoRng,
    T: AsRef<[u64]>,
    K: AsRef<[i8]> + AsMut<[i8]>,
    M: AsRef<[C]> + AsMut<[C]>,
    C: PlainCoeff,
>(
    params: &Params,
    tables: &[NttTable<T>],
    sk: &SecretKey<K>,
    msg: &Plaintext<M, C>,
    level: usize,
    rng: &mut R,
) -> Result<SeededCiphertext<Vec<u64>>, Error> {
    check_level(params, level)?;
    let n = params.n();
    let enc = SkStreamEncryptor::new(params, sk, msg, vec![0i8; n], rng)?;
    let mut c0 = RnsPoly::zero(n, level + 1, Representation::Ntt);
    let mut s_hat = zeroize::Zeroizing::new(vec![0u64; n]);
    for i in 0..=level {
        enc.c0_limb(i, table_at(tables, i)?, &mut s_hat, limb_at(&mut c0, i)?)?;
    }
    Ok(SeededCiphertext {
        c0,
        c1_seed: *enc.c1_seed(),
        meta: CiphertextMeta::new(params, level, msg.scale(), msg.log_slots()),
    })
}
