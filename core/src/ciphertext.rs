//! Ciphertexts and their metadata.

use crate::params::Params;
use crate::rns::RnsPoly;
use crate::sample::SEED_BYTES;

/// What every ciphertext carries besides its polynomials: the parameter set it belongs to,
/// its level (number of primes - 1), its scale, and how many slots are packed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CiphertextMeta {
    pub params_id: u16,
    pub level: usize,
    pub scale: f64,
    pub log_slots: u32,
    /// Made with an insecure test parameter set.
    pub insecure: bool,
}

impl CiphertextMeta {
    pub fn new(params: &Params, level: usize, scale: f64, log_slots: u32) -> Self {
        Self {
            params_id: params.id(),
            level,
            scale,
            log_slots,
            insecure: params.is_insecure(),
        }
    }
}

/// A CKKS ciphertext (c0, c1) in NTT form over primes q_0..q_level; decrypts as c0 + c1*s.
#[derive(Clone, Debug, PartialEq)]
pub struct Ciphertext<S> {
    pub c0: RnsPoly<S>,
    pub c1: RnsPoly<S>,
    pub meta: CiphertextMeta,
}

#[cfg(feature = "alloc")]
pub type CiphertextOwned = Ciphertext<alloc::vec::Vec<u64>>;

/// A secret-key ciphertext whose uniform c1 is replaced by the 32-byte seed it was drawn
/// from (half the bytes on the wire). Expand with `SeededCiphertext::expand` (feature `alloc`).
#[derive(Clone, Debug, PartialEq)]
pub struct SeededCiphertext<S> {
    pub c0: RnsPoly<S>,
    pub c1_seed: [u8; SEED_BYTES],
    pub meta: CiphertextMeta,
}

#[cfg(feature = "alloc")]
impl<S: AsRef<[u64]>> SeededCiphertext<S> {
    /// Regenerates c1 from the seed.
    pub fn expand(&self, params: &Params) -> Result<Ciphertext<alloc::vec::Vec<u64>>, crate::Error> {
        use crate::rns::Representation;
        let n = self.c0.n();
        let limbs = self.c0.limbs();
        if n != params.n() || self.meta.params_id != params.id() || limbs > params.q().len() {
            return Err(crate::Error::ParamsMismatch {
                expected: params.id(),
                found: self.meta.params_id,
            });
        }
        let mut c1 = RnsPoly::zero(n, limbs, Representation::Ntt);
        for i in 0..limbs {
            let m = params
                .q_modulus(i)
                .ok_or(crate::Error::PrimeOutOfRange { index: i, primes: limbs })?;
            let out = c1.limb_mut(i).ok_or(crate::Error::PrimeOutOfRange { index: i, primes: limbs })?;
            crate::keys::expand_public_limb(&self.c1_seed, crate::sample::SeedPurpose::CiphertextA, i as u32, &m, out);
        }
        Ok(Ciphertext {
            c0: self.c0.to_owned_poly(),
            c1,
            meta: self.meta,
        })
    }
}
