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

/// A secret key in the NTT domain for primes q_0..q_level, each limb multiplied by the
/// Montgomery factor R = 2^64 (secret; wiped on drop, neither `Clone` nor a content `Debug`).
/// A host that holds its key and encrypts several messages (a hospital's batch, the 8 block
/// rotations of one patient) transforms the key once here instead of once per ciphertext and
/// prime; with the factor R the product with each ciphertext's `a` ends in a Montgomery
/// reduction ([`Montgomery::mul`]) and is still exactly a ŝ.
pub struct ExpandedSecretKey {
    params_id: u16,
    s_hat: RnsPoly<Vec<u64>>,
}

impl Drop for ExpandedSecretKey {
    fn drop(&mut self) {
        for i in 0..self.s_hat.limbs() {
            if let Some(limb) = self.s_hat.limb_mut(i) {
                limb.zeroize();
            }
        }
    }
}

impl core::fmt::Debug for ExpandedSecretKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ExpandedSecretKey")
            .field("params_id", &self.params_id)
            .field("level", &self.level())
            .finish_non_exhaustive()
    }
}

impl ExpandedSecretKey {
    /// NTT(s R) for primes q_0..q_level.
    pub fn new<T: AsRef<[u64]>, K: AsRef<[i8]> + AsMut<[i8]>>(
        params: &Params,
        tables: &[NttTable<T>],
        sk: &SecretKey<K>,
        level: usize,
    ) -> Result<Self, Error> {
        check_level(params, level)?;
        sk.check_params(params)?;
        let n = params.n();
        check_len(sk.coeffs().len(), n)?;
        // Built first, so that an error part way wipes the limbs already written.
        let mut key = Self {
            params_id: params.id(),
            s_hat: RnsPoly::zero(n, level + 1, Representation::Ntt),
        };
        for i in 0..=level {
            let table = table_at(tables, i)?;
            check_len(table.n(), n)?;
            let m = table.modulus();
            let (r, rs) = (m.r_mod(), m.shoup_no_div(m.r_mod()));
            let out = limb_at(&mut key.s_hat, i)?;
            for (o, &v) in out.iter_mut().zip(sk.coeffs()) {
                *o = m.mul_shoup(m.reduce_i8(v), r, rs);
            }
            table.forward(out)?;
        }
        Ok(key)
    }

    /// The highest level it covers.
    pub fn level(&self) -> usize {
        self.s_hat.limbs() - 1
    }
}

/// A seeded secret-key encryption together with its `c1` expanded: what the encrypting host
/// has in hand anyway (it computed `a` ŝ). In process the evaluator takes [`Self::ciphertext`]
/// as it is; over a wire [`Self::into_seeded`] drops `c1` (the receiver regenerates it from
/// the seed, [`SeededCiphertext::expand`]), which halves the upload.
#[derive(Clone, Debug)]
pub struct SeededEncryption {
    /// The whole ciphertext, `c1 = a`.
    pub ciphertext: Ciphertext<Vec<u64>>,
    /// The public seed `a` is expanded from.
    pub c1_seed: [u8; SEED_BYTES],
}

impl SeededEncryption {
    /// `c0` and the seed: what travels.
    pub fn into_seeded(self) -> SeededCiphertext<Vec<u64>> {
        SeededCiphertext {
            c0: self.ciphertext.c0,
            c1_seed: self.c1_seed,
            meta: self.ciphertext.meta,
        }
    }
}

/// Seeded secret-key encryption at `level` with a key transformed beforehand: c1 = a from a
/// fresh public seed, c0 = NTT(e + m) - a ŝ, one forward transform per prime. The same words
/// as [`SkStreamEncryptor`] (and so [`encrypt_sk_seeded`]) for the same random draws: the seed
/// first, then the error.
pub fn encrypt_sk_expanded<R: RngCore + CryptoRng, T: AsRef<[u64]>, M: AsRef<[C]> + AsMut<[C]>, C: PlainCoeff>(
    params: &Params,
    tables: &[NttTable<T>],
    sk: &ExpandedSecretKey,
    msg: &Plaintext<M, C>,
    level: usize,
    rng: &mut R,
) -> Result<SeededEncryption, Error> {
    check_level(params, level)?;
    if sk.params_id != params.id() {
        return Err(Error::ParamsMismatch {
            expected: params.id(),
            found: sk.params_id,
        });
    }
    if level > sk.level() {
        return Err(Error::LevelOutOfRange { level, max: sk.level() });
    }
    let n = params.n();
    let log_gap = compact_log_gap(msg.coeffs().len(), n)?;
    let c1_seed = crate::sample::fresh_seed(rng);
    let mut e = ErrorPoly(vec![0i8; n]);
    sample_cbd(rng, &mut e.0);
    // The message's coefficients split once for all the primes (`PlainCoeff::prepare`).
    let prepared: zeroize::Zeroizing<Vec<C::Prepared>> = zeroize::Zeroizing::new(msg.coeffs().iter().map(|c| c.prepare()).collect());
    let mut c0 = RnsPoly::zero(n, level + 1, Representation::Ntt);
    let mut c1 = RnsPoly::zero(n, level + 1, Representation::Ntt);
    let result = (|| -> Result<(), Error> {
        for i in 0..=level {
            let table = table_at(tables, i)?;
            check_len(table.n(), n)?;
            let m = table.modulus();
            let s_hat = sk.s_hat.limb(i).ok_or(Error::PrimeOutOfRange {
                index: i,
                primes: sk.s_hat.limbs(),
            })?;
            let a = limb_at(&mut c1, i)?;
            expand_public_into(&c1_seed, SeedPurpose::CiphertextA, i as u32, m, a);
            let out = limb_at(&mut c0, i)?;
            let reducer = C::reducer(m);
            add_residues_and_error(&prepared, |p| C::residue_prepared(p, &reducer), log_gap, &e.0, m, out, false);
            table.forward(out)?;
            let mont = Montgomery::new(m);
            for ((o, a), s) in out.iter_mut().zip(c1.limb(i).into_iter().flatten()).zip(s_hat) {
                *o = m.sub(*o, mont.mul(*a, *s));
            }
        }
        Ok(())
    })();
    if let Err(err) = result {
        // A limb may hold NTT(e + m) without its mask a s: the message in the clear.
        for i in 0..c0.limbs() {
            if let Some(limb) = c0.limb_mut(i) {
                limb.zeroize();
            }
        }
        return Err(err);
    }
    Ok(SeededEncryption {
        ciphertext: Ciphertext {
            c0,
            c1,
            meta: CiphertextMeta::new(params, level, msg.scale(), msg.log_slots()),
        },
        c1_seed,
    })
}

/// Seeded secret-key encryption at `level`: [`encrypt_sk_expanded`] with the key transformed
/// for this one message.
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
    let key = ExpandedSecretKey::new(params, tables, sk, level)?;
    Ok(encrypt_sk_expanded(params, tables, &key, msg, level, rng)?.into_seeded())
}
