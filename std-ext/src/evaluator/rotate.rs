//! Automorphisms: slot rotations, conjugation and hoisted rotations.

use crate::error::EvalError;
use crate::keys::{conjugation_galois_element, rotation_galois_element, GaloisKeys};
use crate::keyswitch::SwitchingKey;
use clifhe_core::ciphertext::{Ciphertext, CiphertextOwned};
use clifhe_core::rns::RnsPolyOwned;
use rayon::prelude::*;

impl<'a> super::Evaluator<'a> {
    // ---- automorphisms --------------------------------------------------------------------

    pub(super) fn permute(poly: &RnsPolyOwned, perm: &[u32]) -> RnsPolyOwned {
        let n = poly.n();
        let mut out = poly.clone();
        out.as_mut_slice()
            .par_chunks_mut(n)
            .zip(poly.as_slice().par_chunks(n))
            .for_each(|(o, s)| {
                for (x, p) in o.iter_mut().zip(perm) {
                    *x = s[*p as usize];
                }
            });
        out
    }

    /// Switches a ciphertext from the secret key `key` was made from to the key it switches
    /// to (an enrolled device's key to the hospital's, `protocol::device`): (c0 + d0, d1) with
    /// (d0, d1) the key switch of c1. Same level, scale and slots.
    pub fn switch_key(&self, a: &CiphertextOwned, key: &SwitchingKey) -> Result<CiphertextOwned, EvalError> {
        self.check_ct(a)?;
        let (d0, d1) = self.ectx.key_switch(&a.c1, key)?;
        let mut c0 = a.c0.clone();
        c0.add_assign(&d0, self.moduli(a.meta.level))?;
        Ok(Ciphertext { c0, c1: d1, meta: a.meta })
    }

    /// Applies X -> X^g and switches back to s with `key` (from sigma_g(s) to s).
    pub fn apply_galois(&self, a: &CiphertextOwned, g: usize, key: &SwitchingKey) -> Result<CiphertextOwned, EvalError> {
        self.check_ct(a)?;
        let perm = self.ectx.galois_permutation(g)?;
        let (d0, d1) = self.ectx.key_switch(&Self::permute(&a.c1, &perm), key)?;
        let mut c0 = Self::permute(&a.c0, &perm);
        c0.add_assign(&d0, self.moduli(a.meta.level))?;
        Ok(Ciphertext { c0, c1: d1, meta: a.meta })
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

    /// Several rotations of one ciphertext sharing one decomposition of c1 (hoisting).
    pub fn rotate_hoisted(&self, a: &CiphertextOwned, steps: &[i64], keys: &GaloisKeys) -> Result<Vec<CiphertextOwned>, EvalError> {
        self.check_ct(a)?;
        let n = self.ectx.n();
        let gs = steps
            .iter()
            .map(|&s| rotation_galois_element(s, n))
            .collect::<Result<Vec<_>, _>>()?;
        // Check every key first: fail before doing any work.
        for &g in gs.iter().filter(|&&g| g != 1) {
            keys.get(g)?;
        }
        let dec = self.ectx.decompose(&a.c1)?;
        gs.iter()
            .map(|&g| {
                if g == 1 {
                    return Ok(a.clone());
                }
                let perm = self.ectx.galois_permutation(g)?;
                let (d0, d1) = self.ectx.key_switch_decomposed(&dec, keys.get(g)?, Some(&perm))?;
                let mut c0 = Self::permute(&a.c0, &perm);
                c0.add_assign(&d0, self.moduli(a.meta.level))?;
                Ok(Ciphertext { c0, c1: d1, meta: a.meta })
            })
            .collect()
    }
}
