//! Automorphisms: slot rotations, conjugation and hoisted rotations.

use crate::error::EvalError;
use crate::galois::GaloisPermutation;
use crate::keys::{conjugation_galois_element, rotation_galois_element, GaloisKeys};
use crate::keyswitch::{SecondOutput, SwitchingKey};
use clifhe_core::ciphertext::{Ciphertext, CiphertextOwned};
use clifhe_core::rns::{Representation, RnsPoly, RnsPolyOwned};
use rayon::prelude::*;

impl<'a> super::Evaluator<'a> {
    // ---- automorphisms --------------------------------------------------------------------

    pub(super) fn permute(poly: &RnsPolyOwned, perm: &GaloisPermutation) -> RnsPolyOwned {
        let n = poly.n();
        // Every word is written below: a zeroed buffer, not a copy of the input.
        let mut out = RnsPoly::zero(n, poly.limbs(), poly.representation());
        out.as_mut_slice()
            .par_chunks_mut(n)
            .zip(poly.as_slice().par_chunks(n))
            .for_each(|(o, s)| perm.gather(o, s));
        out
    }

    /// Switches a ciphertext from the secret key `key` was made from to the key it switches
    /// to (an enrolled device's key to the hospital's, `protocol::device`): (c0 + d0, d1) with
    /// (d0, d1) the key switch of c1. Same level, scale and slots.
    pub fn switch_key(&self, a: &CiphertextOwned, key: &SwitchingKey) -> Result<CiphertextOwned, EvalError> {
        self.check_ct(a)?;
        let mut c0 = a.c0.clone();
        let mut c1 = RnsPoly::zero(self.ectx.n(), a.c1.limbs(), Representation::Ntt);
        self.ectx.with_switch_scratch(|s| {
            self.ectx
                .key_switch_into(&a.c1, None, key, s, c0.as_mut_slice(), c1.as_mut_slice(), SecondOutput::Set)
        })?;
        Ok(Ciphertext { c0, c1, meta: a.meta })
    }

    /// Applies X -> X^g and switches back to s with `key` (from sigma_g(s) to s).
    pub fn apply_galois(&self, a: &CiphertextOwned, g: usize, key: &SwitchingKey) -> Result<CiphertextOwned, EvalError> {
        self.check_ct(a)?;
        let perm = self.ectx.galois_permutation(g)?;
        let mut c0 = Self::permute(&a.c0, &perm);
        let mut c1 = RnsPoly::zero(self.ectx.n(), a.c1.limbs(), Representation::Ntt);
        self.ectx.with_switch_scratch(|s| {
            self.ectx
                .key_switch_into(&a.c1, Some(&perm), key, s, c0.as_mut_slice(), c1.as_mut_slice(), SecondOutput::Set)
        })?;
        Ok(Ciphertext { c0, c1, meta: a.meta })
    }

    /// Rotates the slots left by `steps` (negative: right).
    pub fn rotate(&self, a: &CiphertextOwned, steps: i64, keys: &GaloisKeys) -> Result<CiphertextOwned, EvalError> {
        let g = rotation_galois_element(steps, self.ectx.n())?;
        if g == 1 {
            return Ok(a.clone());
        }
        self.apply_galois(a, g, keys.get(g)?)
    }

    /// Complex conjugation of every slot.
    pub fn conjugate(&self, a: &CiphertextOwned, keys: &GaloisKeys) -> Result<CiphertextOwned, EvalError> {
        let g = conjugation_galois_element(self.ectx.n());
        self.apply_galois(a, g, keys.get(g)?)
    }

    /// The Galois elements of rotations by `steps`.
    fn rotation_elements(&self, steps: &[i64]) -> Result<Vec<usize>, EvalError> {
        let n = self.ectx.n();
        steps.iter().map(|&s| rotation_galois_element(s, n)).collect()
    }

    /// a + rot(a, s) summed over every s in `steps`, with one ModUp and one ModDown in all:
    /// the rotations share the decomposition of c1 (hoisting) and their inner products are
    /// added over Q_l P before a single ModDown ([`crate::keyswitch::KeySwitchSum`]). A
    /// rotation by a multiple of the slot count adds `a` itself.
    pub fn rotate_sum_hoisted(&self, a: &CiphertextOwned, steps: &[i64], keys: &GaloisKeys) -> Result<CiphertextOwned, EvalError> {
        self.check_ct(a)?;
        let n = self.ectx.n();
        let gs = self.rotation_elements(steps)?;
        let mut switched = Vec::with_capacity(gs.len());
        for &g in gs.iter().filter(|&&g| g != 1) {
            switched.push((self.ectx.galois_permutation(g)?, keys.get(g)?));
        }
        let m = self.moduli(a.meta.level);
        let (mut c0, mut c1) = (a.c0.clone(), a.c1.clone());
        for _ in gs.iter().filter(|&&g| g == 1) {
            c0.add_assign(&a.c0, m)?;
            c1.add_assign(&a.c1, m)?;
        }
        if switched.is_empty() {
            return Ok(Ciphertext { c0, c1, meta: a.meta });
        }
        // The permuted c0 of every rotation, added limb by limb without a temporary.
        c0.as_mut_slice()
            .par_chunks_mut(n)
            .zip(a.c0.as_slice().par_chunks(n))
            .zip(m.par_iter())
            .for_each(|((o, src), q)| {
                for (perm, _) in &switched {
                    perm.gather_add(o, src, q);
                }
            });
        self.ectx.with_switch_scratch(|s| {
            let dec = self.ectx.decompose_with(&a.c1, s)?;
            let mut sum = self.ectx.key_switch_sum(a.meta.level, s)?;
            for (perm, key) in &switched {
                sum.add_decomposed(&dec, Some(perm), key)?;
            }
            sum.finish_into(c0.as_mut_slice(), c1.as_mut_slice(), SecondOutput::Add)
        })?;
        Ok(Ciphertext { c0, c1, meta: a.meta })
    }

    /// Several rotations of one ciphertext sharing one decomposition of c1 (hoisting).
    pub fn rotate_hoisted(&self, a: &CiphertextOwned, steps: &[i64], keys: &GaloisKeys) -> Result<Vec<CiphertextOwned>, EvalError> {
        self.check_ct(a)?;
        let n = self.ectx.n();
        let gs = self.rotation_elements(steps)?;
        // Check every key first: fail before doing any work.
        for &g in gs.iter().filter(|&&g| g != 1) {
            keys.get(g)?;
        }
        let dec = self.ectx.decompose(&a.c1)?;
        // The rotations side by side (each key switch parallel over limbs inside): on few
        // cores the limb loops alone leave threads waiting at every pass.
        gs.par_iter()
            .map(|&g| {
                if g == 1 {
                    return Ok(a.clone());
                }
                let perm = self.ectx.galois_permutation(g)?;
                let mut c0 = Self::permute(&a.c0, &perm);
                let mut c1 = RnsPoly::zero(n, a.c1.limbs(), Representation::Ntt);
                let key = keys.get(g)?;
                self.ectx.with_switch_scratch(|s| {
                    self.ectx
                        .key_switch_decomposed_into(&dec, Some(&perm), key, s, c0.as_mut_slice(), c1.as_mut_slice(), SecondOutput::Set)
                })?;
                Ok(Ciphertext { c0, c1, meta: a.meta })
            })
            .collect()
    }
}
