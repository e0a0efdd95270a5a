//! Ciphertext products: tensor, lazy relinearization, multiply-and-relinearize.

use super::{degree2_by_limb, Ciphertext3};
use crate::error::EvalError;
use crate::keys::RelinearizationKey;
use crate::keyswitch::SecondOutput;
use clifhe_core::ciphertext::{Ciphertext, CiphertextMeta, CiphertextOwned};
use clifhe_core::rns::{Representation, RnsPoly, RnsPolyOwned};

impl<'a> super::Evaluator<'a> {
    // ---- ciphertext multiplication --------------------------------------------------------

    /// Tensor product (c0, c1, c2) of two ciphertexts at the same level; no relinearization.
    pub fn tensor(&self, a: &CiphertextOwned, b: &CiphertextOwned) -> Result<Ciphertext3, EvalError> {
        if a.meta.level != b.meta.level {
            return Err(EvalError::LevelMismatch {
                left: a.meta.level,
                right: b.meta.level,
            });
        }
        self.tensor_at(a, b, a.meta.level)
    }

    /// [`Self::tensor`] of `a` and `b` dropped to `level` (at most either's level): it reads
    /// only their first `level + 1` limbs, so nothing is copied to drop them (what
    /// [`Self::drop_to_level`] before [`Self::tensor`] computes).
    pub fn tensor_at(&self, a: &CiphertextOwned, b: &CiphertextOwned, level: usize) -> Result<Ciphertext3, EvalError> {
        self.check_ct(a)?;
        self.check_ct(b)?;
        if a.meta.params_id != b.meta.params_id {
            return Err(EvalError::ParamsMismatch);
        }
        let lowest = a.meta.level.min(b.meta.level);
        if level > lowest {
            return Err(EvalError::LevelMismatch {
                left: lowest,
                right: level,
            });
        }
        if a.meta.log_slots != b.meta.log_slots {
            return Err(EvalError::SlotsMismatch);
        }
        let (a0, a1, b0, b1) = (a.c0.as_slice(), a.c1.as_slice(), b.c0.as_slice(), b.c1.as_slice());
        let meta = CiphertextMeta {
            scale: a.meta.scale * b.meta.scale,
            level,
            ..a.meta
        };
        Ok(degree2_by_limb(self.ectx, meta, |m, r, o0, o1, o2| {
            let (x0, x1, y0, y1) = (&a0[r.clone()], &a1[r.clone()], &b0[r.clone()], &b1[r]);
            if clifhe_core::lincomb::tensor(m, [x0, x1], [y0, y1], [&mut *o0, &mut *o1, &mut *o2]) {
                return;
            }
            for j in 0..x0.len() {
                o0[j] = m.mul(x0[j], y0[j]);
                o1[j] = m.reduce_u128(x0[j] as u128 * y1[j] as u128 + x1[j] as u128 * y0[j] as u128);
                o2[j] = m.mul(x1[j], y1[j]);
            }
        }))
    }

    /// a += b for degree-2 ciphertexts (lazy relinearization accumulates these).
    pub fn add_assign3(&self, a: &mut Ciphertext3, b: &Ciphertext3) -> Result<(), EvalError> {
        self.check_pair(&a.meta, &b.meta)?;
        let m = self.moduli(a.meta.level);
        a.c0.add_assign(&b.c0, m)?;
        a.c1.add_assign(&b.c1, m)?;
        a.c2.add_assign(&b.c2, m)?;
        Ok(())
    }

    /// Switches c2 s^2 back to a key of s.
    pub fn relinearize(&self, t: &Ciphertext3, rlk: &RelinearizationKey) -> Result<CiphertextOwned, EvalError> {
        self.relinearize_parts(t.c0.clone(), t.c1.clone(), &t.c2, t.meta, rlk)
    }

    /// (c0 + d0, c1 + d1) with (d0, d1) the key switch of c2, written into c0 and c1.
    fn relinearize_parts(
        &self,
        mut c0: RnsPolyOwned,
        mut c1: RnsPolyOwned,
        c2: &RnsPolyOwned,
        meta: CiphertextMeta,
        rlk: &RelinearizationKey,
    ) -> Result<CiphertextOwned, EvalError> {
        self.ectx.with_switch_scratch(|s| {
            self.ectx
                .key_switch_into(c2, None, &rlk.0, s, c0.as_mut_slice(), c1.as_mut_slice(), SecondOutput::Add)
        })?;
        Ok(Ciphertext { c0, c1, meta })
    }

    /// [`Self::relinearize`] followed by [`Self::rescale_twice_owned`](super::Evaluator::rescale_twice_owned):
    /// the same words, computed in one pass that transforms each remaining limb once instead of
    /// twice (`EvalContext::relinearize_rescale_twice_into`). What a quadratic layer ends with.
    pub fn relinearize_rescale_twice(&self, t: &Ciphertext3, rlk: &RelinearizationKey) -> Result<CiphertextOwned, EvalError> {
        let level = t.meta.level;
        if level < 2 {
            return Err(EvalError::OutOfLevels);
        }
        if t.c0.limbs() != level + 1 || t.c1.limbs() != level + 1 || t.c2.limbs() != level + 1 {
            return Err(EvalError::Representation);
        }
        let n = self.ectx.n();
        let mut c0 = RnsPoly::zero(n, level - 1, Representation::Ntt);
        let mut c1 = RnsPoly::zero(n, level - 1, Representation::Ntt);
        self.ectx.with_switch_scratch(|s| {
            self.ectx.relinearize_rescale_twice_into(
                &t.c2,
                &rlk.0,
                s,
                t.c0.as_slice(),
                t.c1.as_slice(),
                c0.as_mut_slice(),
                c1.as_mut_slice(),
            )
        })?;
        Ok(Ciphertext {
            c0,
            c1,
            meta: self.rescaled_meta(&self.rescaled_meta(&t.meta)),
        })
    }

    /// a * b with relinearization, not rescaled.
    pub fn mul_relin(&self, a: &CiphertextOwned, b: &CiphertextOwned, rlk: &RelinearizationKey) -> Result<CiphertextOwned, EvalError> {
        let Ciphertext3 { c0, c1, c2, meta } = self.tensor(a, b)?;
        self.relinearize_parts(c0, c1, &c2, meta, rlk)
    }

    /// [`Self::mul_relin`] of `a` and `b` dropped to `level` ([`Self::tensor_at`]: no copies).
    pub fn mul_relin_at(
        &self,
        a: &CiphertextOwned,
        b: &CiphertextOwned,
        level: usize,
        rlk: &RelinearizationKey,
    ) -> Result<CiphertextOwned, EvalError> {
        let Ciphertext3 { c0, c1, c2, meta } = self.tensor_at(a, b, level)?;
        self.relinearize_parts(c0, c1, &c2, meta, rlk)
    }
}
