//! Decryption to a local-only plaintext.
//!
//! A raw CKKS decryption m + e, released together with its ciphertext, reveals the secret key
//! (Li and Micciancio, EUROCRYPT 2021). [`DecryptedPlaintext`] therefore cannot be cloned,
//! serialised or printed, and is wiped on drop; it only decodes to slot values inside the key
//! holder's process. Releasing results to anyone else goes through the flooding release path
//! of clifhe-std (docs/architecture.md §8), never through this type.

use crate::ciphertext::Ciphertext;
use crate::context::Context;
use crate::encode::Complex;
use crate::error::Error;
use crate::keys::SecretKey;
use crate::rns::{CrtComposer, Representation};
use alloc::vec;
use alloc::vec::Vec;
use zeroize::{Zeroize, Zeroizing};

/// The decrypted, still-encoded message (centred integer coefficients as f64).
pub struct DecryptedPlaintext {
    coeffs: Vec<f64>,
    scale: f64,
    log_slots: u32,
}

impl Drop for DecryptedPlaintext {
    fn drop(&mut self) {
        self.coeffs.zeroize();
    }
}

impl core::fmt::Debug for DecryptedPlaintext {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DecryptedPlaintext")
            .field("log_slots", &self.log_slots)
            .finish_non_exhaustive()
    }
}

impl DecryptedPlaintext {
    pub fn scale(&self) -> f64 {
        self.scale
    }
    pub fn log_slots(&self) -> u32 {
        self.log_slots
    }
    /// Decodes all packed slots. The values are patient data: callers that keep them longer
    /// than a moment should hold them in `zeroize::Zeroizing` (as [`Self::decode_real`] does
    /// with its temporary; `Complex` implements `Zeroize`).
    pub fn decode(&self) -> Result<Vec<Complex>, Error> {
        let slots = 1usize << self.log_slots;
        let mut out = vec![Complex::default(); slots];
        let n = self.coeffs.len();
        // Hosts keep the twiddles per slot count; without `std` they are computed per call.
        #[cfg(feature = "std")]
        let decoded = crate::encode::EncoderTables::shared(n, slots).and_then(|t| t.decode(&self.coeffs, self.scale, &mut out));
        #[cfg(not(feature = "std"))]
        let decoded = {
            let mut scratch = vec![Complex::default(); crate::encode::encode_scratch_len(slots)];
            crate::encode::decode(&self.coeffs, n, self.scale, &mut out, &mut scratch)
        };
        decoded.map_err(|_| Error::Encode("decoder refused the plaintext"))?;
        Ok(out)
    }
    /// Decodes after adding integer flooding noise to every coefficient (the release path of
    /// docs/architecture.md §8: the noise is added before decoding, so what is decoded no longer
    /// determines the raw decryption). `noise` has one entry per coefficient.
    pub fn decode_flooded(&self, noise: &[i64]) -> Result<Vec<Complex>, Error> {
        if noise.len() != self.coeffs.len() {
            return Err(Error::BufferLength {
                expected: self.coeffs.len(),
                found: noise.len(),
            });
        }
        let flooded = DecryptedPlaintext {
            coeffs: self.coeffs.iter().zip(noise).map(|(c, e)| c + *e as f64).collect(),
            scale: self.scale,
            log_slots: self.log_slots,
        };
        flooded.decode()
    }

    /// Real parts of the decoded slots.
    pub fn decode_real(&self) -> Result<Vec<f64>, Error> {
        // The complex temporary is wiped; the returned real parts are the caller's to protect.
        let all = Zeroizing::new(self.decode()?);
        Ok(all.iter().map(|c| c.re).collect())
    }
}

/// Decrypts `ct` with `sk`: m = c0 + c1 * s over the ciphertext's primes, then CRT.
pub fn decrypt<S: AsRef<[u64]>, K: AsRef<[i8]> + AsMut<[i8]>>(
    ctx: &Context,
    sk: &SecretKey<K>,
    ct: &Ciphertext<S>,
) -> Result<DecryptedPlaintext, Error> {
    let params = ctx.params();
    sk.check_params(params)?;
    if ct.meta.params_id != params.id() {
        return Err(Error::ParamsMismatch {
            expected: params.id(),
            found: ct.meta.params_id,
        });
    }
    let limbs = ct.c0.limbs();
    let n = params.n();
    if ct.meta.level + 1 != limbs || ct.c1.limbs() != limbs || limbs > params.q().len() || ct.c0.n() != n || ct.c1.n() != n {
        return Err(Error::LevelOutOfRange {
            level: ct.meta.level,
            max: params.max_level(),
        });
    }
    if ct.c0.representation() != Representation::Ntt || ct.c1.representation() != Representation::Ntt {
        return Err(Error::Rns(crate::rns::RnsError::Representation));
    }
    if !(ct.meta.scale.is_finite() && ct.meta.scale > 0.0) || ct.meta.log_slots + 1 > params.log_n() {
        return Err(Error::BadScale);
    }
    let mut m = Zeroizing::new(vec![0u64; n * limbs]);
    let mut s_hat = Zeroizing::new(vec![0u64; n]);
    for i in 0..limbs {
        let table = &ctx.q_tables()[i];
        let md = table.modulus();
        sk.ntt_limb_into(table, &mut s_hat)?;
        let (c0, c1) = match (ct.c0.limb(i), ct.c1.limb(i)) {
            (Some(a), Some(b)) => (a, b),
            _ => return Err(Error::PrimeOutOfRange { index: i, primes: limbs }),
        };
        let out = &mut m[i * n..(i + 1) * n];
        for (((o, a), b), s) in out.iter_mut().zip(c0).zip(c1).zip(s_hat.iter()) {
            *o = md.add(md.reduce(*a), md.mul(md.reduce(*b), *s));
        }
        table.inverse(out)?;
    }
    let mut coeffs = vec![0f64; n];
    if limbs == 1 {
        // One prime: the centred lift is all there is.
        let md = &ctx.q_moduli()[0];
        for (c, x) in coeffs.iter_mut().zip(m.iter()) {
            *c = md.center(*x) as f64;
        }
    } else {
        let crt = CrtComposer::new(&ctx.q_moduli()[..limbs]);
        let mut residues = Zeroizing::new(vec![0u64; limbs]);
        let mut digits = Zeroizing::new(vec![0u64; limbs]);
        for (j, c) in coeffs.iter_mut().enumerate() {
            for (i, r) in residues.iter_mut().enumerate() {
                *r = m[i * n + j];
            }
            *c = crt.centered_f64(&residues, &mut digits);
        }
    }
    Ok(DecryptedPlaintext {
        coeffs,
        scale: ct.meta.scale,
        log_slots: ct.meta.log_slots,
    })
}
