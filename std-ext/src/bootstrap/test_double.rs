//! A secret-key stand-in for [`super::Bootstrapper`] in tests of circuits that need
//! bootstrapping: decrypts, re-encodes and re-encrypts at the level and scale the real
//! bootstrapper would return. It holds the secret key, so it only belongs where the secret key
//! already is (tests, and plaintext-side experiments); it is not a protocol component.

use crate::context::EvalContext;
use crate::error::EvalError;
use clifhe_core::ciphertext::CiphertextOwned;
use clifhe_core::decrypt::decrypt;
use clifhe_core::encrypt::{encrypt_sk_seeded, Plaintext};
use clifhe_core::SecretKey;
use rand_core::{CryptoRng, RngCore};

/// Decrypt-and-re-encrypt "bootstrapping" (test double).
#[derive(Debug)]
pub struct SecretKeyBootstrapper<'a, K: AsRef<[i8]> + AsMut<[i8]>> {
    ectx: &'a EvalContext,
    sk: &'a SecretKey<K>,
    output_level: usize,
    output_scale: f64,
}

impl<'a, K: AsRef<[i8]> + AsMut<[i8]>> SecretKeyBootstrapper<'a, K> {
    /// A double returning ciphertexts at `output_level` and `output_scale`.
    pub fn new(ectx: &'a EvalContext, sk: &'a SecretKey<K>, output_level: usize, output_scale: f64) -> Result<Self, EvalError> {
        if output_level > ectx.max_level() {
            return Err(EvalError::OutOfLevels);
        }
        if sk.params_id() != ectx.params().id() {
            return Err(EvalError::ParamsMismatch);
        }
        Ok(Self {
            ectx,
            sk,
            output_level,
            output_scale,
        })
    }

    pub fn output_level(&self) -> usize {
        self.output_level
    }

    /// Same message, fresh noise, at the configured level and scale.
    pub fn bootstrap<R: RngCore + CryptoRng>(&self, ct: &CiphertextOwned, rng: &mut R) -> Result<CiphertextOwned, EvalError> {
        let params = self.ectx.params();
        let values = decrypt(self.ectx.core(), self.sk, ct)?.decode()?;
        let pt = Plaintext::encode(params, &values, self.output_scale)?;
        let seeded = encrypt_sk_seeded(params, self.ectx.q_tables(), self.sk, &pt, self.output_level, rng)?;
        Ok(seeded.expand(params)?)
    }
}
