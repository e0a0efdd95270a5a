//! Secret and public keys.
//!
//! A [`SecretKey`] is expanded from a 32-byte seed drawn from the caller's CSPRNG; the seed is
//! the only serialised form and leaves the type only through the explicit [`SecretKey::export_seed`].
//! Both the seed and the expanded coefficients are wiped on drop; the type is neither `Clone`
//! nor `Debug`-printing its contents.
//!
//! A [`PublicKey`] is (b, a) with b = -a*s + e per ciphertext prime, in NTT form. The `a` half is
//! uniform and public, so it is drawn directly in the NTT domain from a public seed (stream per
//! prime, [`SeedPurpose::PublicKeyA`]) and never stored: the key is the seed plus `b`. Each
//! prime's limb of `b` can be computed independently ([`PublicKey::generate_limb`]), which lets
//! a device or host build and store keys prime by prime.

use crate::arith::Modulus;
use crate::error::{check_len, Error};
use crate::ntt::NttTable;
use crate::params::Params;
use crate::rns::{reduce_small_into, Representation, RnsPoly};
use crate::sample::{expand_uniform, public_stream, sample_ternary, SecretStream, SeedPurpose, SEED_BYTES};
use rand_core::{CryptoRng, RngCore};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// The exported seed of a secret key. Wiped on drop; handle as the key itself.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SecretSeed([u8; SEED_BYTES]);

impl SecretSeed {
    pub fn new(bytes: [u8; SEED_BYTES]) -> Self {
        Self(bytes)
    }
    /// Copies a seed straight into its wiped-on-drop home (no intermediate array on the
    /// caller's stack, unlike [`SecretSeed::new`]); `None` unless `bytes` has 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let mut s = Self([0u8; SEED_BYTES]);
        s.0.copy_from_slice(bytes.get(..SEED_BYTES).filter(|_| bytes.len() == SEED_BYTES)?);
        Some(s)
    }
    pub fn as_bytes(&self) -> &[u8; SEED_BYTES] {
        &self.0
    }
}

/// A uniform ternary secret key over caller storage of N `i8`s.
pub struct SecretKey<S: AsRef<[i8]> + AsMut<[i8]>> {
    params_id: u16,
    insecure: bool,
    seed: [u8; SEED_BYTES],
    coeffs: S,
}

#[cfg(feature = "alloc")]
pub type SecretKeyOwned = SecretKey<alloc::vec::Vec<i8>>;

impl<S: AsRef<[i8]> + AsMut<[i8]>> Drop for SecretKey<S> {
    fn drop(&mut self) {
        self.seed.zeroize();
        self.coeffs.as_mut().zeroize();
    }
}

impl<S: AsRef<[i8]> + AsMut<[i8]>> core::fmt::Debug for SecretKey<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SecretKey")
            .field("params_id", &self.params_id)
            .finish_non_exhaustive()
    }
}

impl<S: AsRef<[i8]> + AsMut<[i8]>> SecretKey<S> {
    /// Expands the key from its seed into `storage` (length N).
    pub fn from_seed_into(params: &Params, seed: &SecretSeed, mut storage: S) -> Result<Self, Error> {
        check_len(storage.as_ref().len(), params.n())?;
        // The secret stream is ChaCha20 keyed by the secret seed itself (stream 0), distinct
        // from every public stream, which use their own public seeds. `SecretStream` wipes the
        // generator state (which holds the seed as its key) when it goes out of scope here.
        let mut rng = SecretStream::new(seed.as_bytes());
        sample_ternary(&mut rng, storage.as_mut());
        drop(rng);
        Ok(Self {
            params_id: params.id(),
            insecure: params.is_insecure(),
            seed: *seed.as_bytes(),
            coeffs: storage,
        })
    }

    /// Samples a fresh key from the caller's CSPRNG.
    pub fn generate_into<R: RngCore + CryptoRng>(params: &Params, rng: &mut R, storage: S) -> Result<Self, Error> {
        // Filled in place, so no copy of the seed is left in a returned temporary.
        let mut seed = SecretSeed([0u8; SEED_BYTES]);
        rng.fill_bytes(&mut seed.0);
        Self::from_seed_into(params, &seed, storage)
    }

    pub fn params_id(&self) -> u16 {
        self.params_id
    }
    pub fn is_insecure(&self) -> bool {
        self.insecure
    }

    /// The ternary coefficients (secret: do not log or copy out).
    pub fn coeffs(&self) -> &[i8] {
        self.coeffs.as_ref()
    }

    /// The only serialised form of the key. Explicit by design: callers must ask for it.
    pub fn export_seed(&self) -> SecretSeed {
        SecretSeed(self.seed)
    }

    /// s mod q in NTT form, written to `out` (length N). Constant time.
    pub fn ntt_limb_into<T: AsRef<[u64]>>(&self, table: &NttTable<T>, out: &mut [u64]) -> Result<(), Error> {
        check_len(out.len(), table.n())?;
        check_len(self.coeffs.as_ref().len(), table.n())?;
        reduce_small_into(self.coeffs.as_ref(), table.modulus(), out);
        table.forward(out)?;
        Ok(())
    }

    pub(crate) fn check_params(&self, params: &Params) -> Result<(), Error> {
        if self.params_id != params.id() {
            return Err(Error::ParamsMismatch {
                expected: params.id(),
                found: self.params_id,
            });
        }
        Ok(())
    }
}

#[cfg(feature = "alloc")]
impl SecretKey<alloc::vec::Vec<i8>> {
    pub fn generate<R: RngCore + CryptoRng>(params: &Params, rng: &mut R) -> Result<Self, Error> {
        Self::generate_into(params, rng, alloc::vec![0i8; params.n()])
    }
    pub fn from_seed(params: &Params, seed: &SecretSeed) -> Result<Self, Error> {
        Self::from_seed_into(params, seed, alloc::vec![0i8; params.n()])
    }
}

/// A public key: seed of `a` and `b = -a*s + e` over all ciphertext primes, NTT form.
#[derive(Clone, Debug, PartialEq)]
pub struct PublicKey<S> {
    params_id: u16,
    insecure: bool,
    a_seed: [u8; SEED_BYTES],
    b: RnsPoly<S>,
}

#[cfg(feature = "alloc")]
pub type PublicKeyOwned = PublicKey<alloc::vec::Vec<u64>>;

/// Writes limb `prime` of a uniform public polynomial (NTT domain) from its seed.
pub fn expand_public_limb(seed: &[u8; SEED_BYTES], purpose: SeedPurpose, index: u32, m: &Modulus, out: &mut [u64]) {
    crate::sample::expand_public_into(seed, purpose, index, m, out);
}

impl<S: AsRef<[u64]>> PublicKey<S> {
    /// Assembles a key from its parts (e.g. after deserialisation); checks the shape.
    pub fn from_parts(params: &Params, a_seed: [u8; SEED_BYTES], b: RnsPoly<S>) -> Result<Self, Error> {
        if b.n() != params.n() || b.limbs() != params.q().len() || b.representation() != Representation::Ntt {
            return Err(Error::BufferLength {
                expected: params.n() * params.q().len(),
                found: b.as_slice().len(),
            });
        }
        Ok(Self {
            params_id: params.id(),
            insecure: params.is_insecure(),
            a_seed,
            b,
        })
    }

    /// Computes limb `prime` of `b = -a*s + e` into `out`, with `s_hat` as N words of scratch.
    /// `e` is the key's error polynomial, the same for every prime.
    pub fn generate_limb<T: AsRef<[u64]>, K: AsRef<[i8]> + AsMut<[i8]>>(
        sk: &SecretKey<K>,
        a_seed: &[u8; SEED_BYTES],
        e: &[i8],
        prime: usize,
        table: &NttTable<T>,
        s_hat: &mut [u64],
        out: &mut [u64],
    ) -> Result<(), Error> {
        check_len(e.len(), table.n())?;
        check_len(out.len(), table.n())?;
        sk.ntt_limb_into(table, s_hat)?;
        let m = table.modulus();
        // out <- NTT(e), then out -= a * s_hat with `a` streamed from its seed.
        reduce_small_into(e, m, out);
        table.forward(out)?;
        let mut rng = public_stream(a_seed, SeedPurpose::PublicKeyA, prime as u32);
        let mut a = [0u64; 1];
        for (o, s) in out.iter_mut().zip(s_hat.iter()) {
            expand_uniform(&mut rng, m, &mut a);
            *o = m.sub(*o, m.mul(a[0], *s));
        }
        Ok(())
    }

    pub fn params_id(&self) -> u16 {
        self.params_id
    }
    pub fn is_insecure(&self) -> bool {
        self.insecure
    }
    pub fn a_seed(&self) -> &[u8; SEED_BYTES] {
        &self.a_seed
    }
    pub fn b(&self) -> &RnsPoly<S> {
        &self.b
    }
}

#[cfg(feature = "alloc")]
impl PublicKey<alloc::vec::Vec<u64>> {
    /// Generates the public key of `sk` over all ciphertext primes.
    pub fn generate<R: RngCore + CryptoRng, T: AsRef<[u64]>, K: AsRef<[i8]> + AsMut<[i8]>>(
        params: &Params,
        tables: &[NttTable<T>],
        sk: &SecretKey<K>,
        rng: &mut R,
    ) -> Result<Self, Error> {
        sk.check_params(params)?;
        let n = params.n();
        let limbs = params.q().len();
        if tables.len() < limbs {
            return Err(Error::PrimeOutOfRange {
                index: limbs - 1,
                primes: tables.len(),
            });
        }
        let a_seed = crate::sample::fresh_seed(rng);
        let mut e = zeroize::Zeroizing::new(alloc::vec![0i8; n]);
        crate::sample::sample_cbd(rng, &mut e);
        let mut s_hat = zeroize::Zeroizing::new(alloc::vec![0u64; n]);
        let mut b = RnsPoly::zero(n, limbs, Representation::Ntt);
        for (i, table) in tables.iter().enumerate().take(limbs) {
            let out = b.limb_mut(i).ok_or(Error::PrimeOutOfRange { index: i, primes: limbs })?;
            Self::generate_limb(sk, &a_seed, &e, i, table, &mut s_hat, out)?;
        }
        Ok(Self {
            params_id: params.id(),
            insecure: params.is_insecure(),
            a_seed,
            b,
        })
    }
}
