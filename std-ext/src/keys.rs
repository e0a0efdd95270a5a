//! Evaluation keys the hospital generates and hands to the vendor: relinearization and Galois
//! keys. Keys are plain values the caller owns; nothing is cached inside evaluators.

use crate::context::EvalContext;
use crate::error::EvalError;
use crate::keyswitch::{KeyStorage, SwitchingKey};
use clifhe_core::encode::galois_element;
use clifhe_core::rns::{Representation, RnsPoly};
use clifhe_core::SecretKey;
use rand_core::{CryptoRng, RngCore};
use std::collections::BTreeMap;

/// Switches s^2 back to s after a ciphertext product.
#[derive(Debug)]
pub struct RelinearizationKey(pub SwitchingKey);

impl RelinearizationKey {
    pub fn generate<R: RngCore + CryptoRng, K: AsRef<[i8]> + AsMut<[i8]>>(
        ectx: &EvalContext,
        sk: &SecretKey<K>,
        rng: &mut R,
    ) -> Result<Self, EvalError> {
        let n = ectx.n();
        let nq = ectx.params().q().len();
        let s = ectx.secret_ntt_qp(sk)?;
        let mut s2 = RnsPoly::zero(n, nq, Representation::Ntt);
        for (i, m) in ectx.q_moduli().iter().enumerate() {
            let src = &s[i * n..(i + 1) * n];
            for (o, x) in s2.as_mut_slice()[i * n..(i + 1) * n].iter_mut().zip(src) {
                *o = m.mul(*x, *x);
            }
        }
        let key = SwitchingKey::generate(ectx, sk, &s2, rng);
        zeroize::Zeroize::zeroize(s2.as_mut_slice());
        Ok(Self(key?))
    }
}

/// Galois element of a rotation by `steps` slots to the left (negative: to the right) in a
/// ring of degree n: 5^steps mod 2N.
pub fn rotation_galois_element(steps: i64, n: usize) -> Result<usize, EvalError> {
    let half = (n / 2) as i64;
    let k = steps.rem_euclid(half) as usize;
    galois_element(k, n).ok_or(EvalError::Invalid("ring degree out of range"))
}

/// Galois element of complex conjugation (X -> X^-1).
pub fn conjugation_galois_element(n: usize) -> usize {
    2 * n - 1
}

/// A set of Galois keys indexed by Galois element.
#[derive(Debug, Default)]
pub struct GaloisKeys {
    keys: BTreeMap<usize, SwitchingKey>,
}

impl GaloisKeys {
    /// Generates keys for the given Galois elements (duplicates are generated once).
    pub fn generate<R: RngCore + CryptoRng, K: AsRef<[i8]> + AsMut<[i8]>>(
        ectx: &EvalContext,
        sk: &SecretKey<K>,
        galois_elements: &[usize],
        rng: &mut R,
    ) -> Result<Self, EvalError> {
        let mut keys = BTreeMap::new();
        for &g in galois_elements {
            if let std::collections::btree_map::Entry::Vacant(slot) = keys.entry(g) {
                slot.insert(Self::generate_one(ectx, sk, g, rng)?);
            }
        }
        Ok(Self { keys })
    }

    /// Keys for rotations by each of `steps` (and conjugation if asked).
    pub fn for_rotations<R: RngCore + CryptoRng, K: AsRef<[i8]> + AsMut<[i8]>>(
        ectx: &EvalContext,
        sk: &SecretKey<K>,
        steps: &[i64],
        conjugate: bool,
        rng: &mut R,
    ) -> Result<Self, EvalError> {
        let n = ectx.n();
        let mut gs = steps
            .iter()
            .map(|&s| rotation_galois_element(s, n))
            .collect::<Result<Vec<_>, _>>()?;
        if conjugate {
            gs.push(conjugation_galois_element(n));
        }
        gs.retain(|&g| g != 1);
        Self::generate(ectx, sk, &gs, rng)
    }

    /// The key switching sigma_g(s) to s.
    pub fn generate_one<R: RngCore + CryptoRng, K: AsRef<[i8]> + AsMut<[i8]>>(
        ectx: &EvalContext,
        sk: &SecretKey<K>,
        g: usize,
        rng: &mut R,
    ) -> Result<SwitchingKey, EvalError> {
        let n = ectx.n();
        let nq = ectx.params().q().len();
        let perm = ectx.galois_permutation(g)?;
        let s = ectx.secret_ntt_qp(sk)?;
        let mut sg = RnsPoly::zero(n, nq, Representation::Ntt);
        for i in 0..nq {
            perm.gather(&mut sg.as_mut_slice()[i * n..(i + 1) * n], &s[i * n..(i + 1) * n]);
        }
        let key = SwitchingKey::generate(ectx, sk, &sg, rng);
        zeroize::Zeroize::zeroize(sg.as_mut_slice());
        key
    }

    pub fn insert(&mut self, g: usize, key: SwitchingKey) {
        self.keys.insert(g, key);
    }
    pub fn get(&self, g: usize) -> Result<&SwitchingKey, EvalError> {
        self.keys.get(&g).ok_or(EvalError::MissingGaloisKey { galois_element: g })
    }
    pub fn elements(&self) -> impl Iterator<Item = usize> + '_ {
        self.keys.keys().copied()
    }
    pub fn len(&self) -> usize {
        self.keys.len()
    }
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
    pub fn memory_bytes(&self) -> usize {
        self.keys.values().map(SwitchingKey::memory_bytes).sum()
    }
    /// [`SwitchingKey::compact`] on every key.
    pub fn compact(&mut self) {
        self.set_storage(KeyStorage::Compact);
    }
    /// Brings every key to `storage` (a compact key stays compact: its `a` is not kept).
    pub fn set_storage(&mut self, storage: KeyStorage) {
        self.keys.values_mut().for_each(|k| storage.apply(k));
    }
}
