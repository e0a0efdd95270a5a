//! Key switches summed before one ModDown.
//!
//! ModDown is linear up to its rounding, so a sum of key switches at one level can add their
//! inner products over Q_l * P and divide by P once: `sum_t ModDown(ip_t)` becomes
//! `ModDown(sum_t ip_t)`. That is the lazy ModDown of the giant steps of a baby-step
//! giant-step linear transform (Bossuat, Mouchet, Troncoso-Pastoriza and Hubaux, Eurocrypt
//! 2021, section 6, "double hoisting"; here without keeping the baby steps over Q * P, which
//! would need every diagonal over Q * P too). Each term still pays its ModUp and inner
//! product; a ModDown (2 |P| inverse and 2 (l + 1) forward NTTs and two basis conversions)
//! is paid once per sum instead of once per term. The one rounding also makes the sum's
//! error smaller than the sum of the terms' roundings.

use super::{Decomposed, KeySwitchScratch, SecondOutput, SwitchingKey};
use crate::context::EvalContext;
use crate::error::EvalError;
use crate::galois::GaloisPermutation;
use clifhe_core::rns::{Representation, RnsPoly};

/// A running sum of key switches at one level, in a [`KeySwitchScratch`] (which it borrows
/// until [`KeySwitchSum::finish_into`]). Made by [`EvalContext::key_switch_sum`].
#[derive(Debug)]
pub struct KeySwitchSum<'s> {
    ectx: &'s EvalContext,
    scratch: &'s mut KeySwitchScratch,
    level: usize,
    terms: usize,
}

impl EvalContext {
    /// An empty sum of key switches of level-`level` polynomials, held in `scratch`.
    pub fn key_switch_sum<'s>(&'s self, level: usize, scratch: &'s mut KeySwitchScratch) -> Result<KeySwitchSum<'s>, EvalError> {
        scratch.check(self)?;
        self.level_precomp(level)?;
        Ok(KeySwitchSum {
            ectx: self,
            scratch,
            level,
            terms: 0,
        })
    }
}

impl KeySwitchSum<'_> {
    /// Number of key switches added so far.
    pub fn terms(&self) -> usize {
        self.terms
    }

    /// Adds the inner products of the key switch of `c` (NTT form at the sum's level) through
    /// the Galois permutation `perm` of its NTT slots, with `key` (see
    /// [`EvalContext::key_switch_into`]).
    pub fn add<S: AsRef<[u64]> + Sync>(
        &mut self,
        c: &RnsPoly<S>,
        perm: Option<&GaloisPermutation>,
        key: &SwitchingKey,
    ) -> Result<(), EvalError> {
        let ectx = self.ectx;
        if c.representation() != Representation::Ntt {
            return Err(EvalError::Representation);
        }
        if c.limbs() != self.level + 1 {
            return Err(EvalError::LevelMismatch {
                left: c.limbs().saturating_sub(1),
                right: self.level,
            });
        }
        let pre = ectx.check_key(key, self.level, self.scratch, perm)?;
        ectx.products_into_scratch(pre, self.level, c, perm, key, self.scratch, self.terms > 0)?;
        self.terms += 1;
        Ok(())
    }

    /// Adds the inner products of a hoisted decomposition ([`EvalContext::decompose`] of a
    /// polynomial at the sum's level) through the Galois permutation `perm`, with `key`: the
    /// switch of perm(c) without its ModUp. A sum of rotations of one ciphertext pays one ModUp
    /// and one ModDown in all (Halevi and Shoup's hoisting with the lazy ModDown above).
    pub fn add_decomposed(&mut self, dec: &Decomposed, perm: Option<&GaloisPermutation>, key: &SwitchingKey) -> Result<(), EvalError> {
        let ectx = self.ectx;
        if dec.level != self.level {
            return Err(EvalError::LevelMismatch {
                left: dec.level,
                right: self.level,
            });
        }
        let pre = ectx.check_key(key, self.level, self.scratch, perm)?;
        ectx.decomposed_products_into_scratch(pre, dec, perm, key, self.scratch, self.terms > 0)?;
        self.terms += 1;
        Ok(())
    }

    /// ModDown of the sum: `out0 += d0`, and `out1 += d1` or `out1 = d1` (`second`), where
    /// d0 + d1 s is the sum of the added switches (plus one rounding). The outputs hold the
    /// level's limbs. An empty sum is an error (nothing was switched).
    pub fn finish_into(self, out0: &mut [u64], out1: &mut [u64], second: SecondOutput) -> Result<(), EvalError> {
        let ectx = self.ectx;
        if self.terms == 0 {
            return Err(EvalError::Invalid("an empty sum of key switches"));
        }
        ectx.check_outputs(self.level, out0, out1)?;
        let pre = ectx.level_precomp(self.level)?;
        let s = self.scratch;
        let ww = s.worker_words;
        ectx.mod_down_into(pre, self.level, &mut s.acc, &mut s.workers, ww, out0, out1, second)
    }
}
