//! Several sparse-slot ciphertexts refreshed by one bootstrap (the deep model's refresh round:
//! the 8 blade ciphertexts of a batch of n patients cost one bootstrap of 8n slots, not eight).
//!
//! A message of n slots lies in the subring Z[X^g], g = N / 2n (`clifhe_core::encode`). For a
//! bootstrapper of M >= m n slots put h = N / 2M, so g = (M / n) h. Multiplying message i by
//! the monomial X^(i h) (exact and free: [`Evaluator::mul_monomial`]) moves its coefficients
//! to positions congruent to i h modulo g, so for i < M / n the m messages occupy disjoint
//! coefficients and their sum is one message of M slots, sum_i X^(i h) m_i(X^g). Bootstrapping
//! refreshes a message coefficient by coefficient (CoeffsToSlots, EvalMod on every coefficient,
//! SlotsToCoeffs), so the packed bootstrap returns the same sum at a high level.
//!
//! Unpacking is the trace back to Z[X^g], split like an FFT. The automorphism sigma_s with
//! X^(2^s h) -> -X^(2^s h) (a rotation by M / 2^(s+1) slots: 5^(M_s/2) = 1 + 2 M_s modulo
//! 4 M_s for M_s = M / 2^s) fixes X^(2^(s+1) h), so for A = sum_j X^(j 2^s h) a_j:
//! A + sigma_s(A) keeps twice the even j and X^(-2^s h) (A - sigma_s(A)) twice the odd j,
//! shifted down. One key switch splits a ciphertext in two; log2(M / n) steps separate all
//! messages, m - 1 key switches for m = M / n of them (fewer when m is smaller: branches with
//! no message are not computed). Each output carries its message times 2^steps, which goes
//! into the scale (as in SubSum), exactly.
//!
//! Precision: the packed message has the coefficients of the n-slot messages, about sqrt(m)
//! larger than those of a genuine M-slot message with slots of the same size, so the sine's
//! linearisation error (relative, proportional to the squared coefficients) is up to m times
//! that of an M-slot bootstrap; the tests and BENCHMARKS.md report the measured precision.

use super::{BootstrapKeys, Bootstrapper};
use crate::error::EvalError;
use crate::evaluator::scales_match;
use crate::keys::{rotation_galois_element, GaloisKeys};
use clifhe_core::ciphertext::CiphertextOwned;
use clifhe_core::SecretKey;
use rand_core::{CryptoRng, RngCore};

impl Bootstrapper<'_> {
    /// Rotation steps [`Bootstrapper::bootstrap_packed`] needs for inputs of
    /// `2^input_log_slots` slots: M/2, M/4, ..., n for this bootstrapper's M slots.
    pub fn packing_rotations(&self, input_log_slots: u32) -> Result<Vec<i64>, EvalError> {
        if input_log_slots == 0 || input_log_slots > self.log_slots {
            return Err(EvalError::Invalid("packed inputs need 2 .. M slots for a bootstrapper of M slots"));
        }
        Ok((input_log_slots..self.log_slots).rev().map(|l| 1i64 << l).collect())
    }

    /// Adds to `keys` the rotation keys of [`Bootstrapper::packing_rotations`] that it lacks
    /// (stored as the circuit's own Galois keys).
    pub fn generate_packing_keys<R: RngCore + CryptoRng, K: AsRef<[i8]> + AsMut<[i8]>>(
        &self,
        keys: &mut BootstrapKeys,
        sk: &SecretKey<K>,
        input_log_slots: u32,
        rng: &mut R,
    ) -> Result<(), EvalError> {
        let n = self.ectx.n();
        for step in self.packing_rotations(input_log_slots)? {
            let g = rotation_galois_element(step, n)?;
            if keys.galois.get(g).is_err() {
                let mut key = GaloisKeys::generate_one(self.ectx, sk, g, rng)?;
                self.lit.galois_key_storage.apply(&mut key);
                keys.galois.insert(g, key);
            }
        }
        Ok(())
    }

    /// Refreshes `cts` (each of n = 2^l slots, one common scale, any levels) with one bootstrap
    /// of this bootstrapper's M slots, M >= m n for m = `cts.len()` (module docs). Returns the
    /// m messages at [`Bootstrapper::output_level`], each at the packed bootstrap's output
    /// scale times 2^log2(M/n).
    pub fn bootstrap_packed(&self, cts: &[CiphertextOwned], keys: &BootstrapKeys) -> Result<Vec<CiphertextOwned>, EvalError> {
        let Some(first) = cts.first() else {
            return Ok(Vec::new());
        };
        let in_log = first.meta.log_slots;
        let steps = self.packing_rotations(in_log)?;
        let capacity = 1usize << steps.len();
        if cts.len() > capacity {
            return Err(EvalError::Invalid("more packed inputs than the bootstrapper's slots hold"));
        }
        for c in cts {
            if c.meta.log_slots != in_log {
                return Err(EvalError::SlotsMismatch);
            }
            if !scales_match(c.meta.scale, first.meta.scale) {
                return Err(EvalError::ScaleMismatch {
                    left: c.meta.scale,
                    right: first.meta.scale,
                });
            }
        }
        let ev = self.ev();
        let n = self.ectx.n();
        let h = (n >> 1 >> self.log_slots) as i64;
        // Pack at level 0, where the bootstrap starts anyway: one limb per monomial product.
        let mut packed: Option<CiphertextOwned> = None;
        for (i, c) in cts.iter().enumerate() {
            let mut t = ev.mul_monomial(&ev.drop_to_level(c, 0)?, i as i64 * h)?;
            t.meta.log_slots = self.log_slots;
            t.meta.scale = first.meta.scale;
            match packed.as_mut() {
                None => packed = Some(t),
                Some(p) => ev.add_assign(p, &t)?,
            }
        }
        let packed = packed.ok_or(EvalError::Invalid("nothing to pack"))?;
        let refreshed = self.bootstrap(&packed, keys)?;
        // The FFT-shaped trace: (ciphertext, smallest message index it holds) per branch.
        let mut branches = vec![(refreshed, 0usize)];
        for (s, &rot) in steps.iter().enumerate() {
            let stride = 1usize << s;
            let shift = -(h << s);
            let split = |(a, r): &(CiphertextOwned, usize)| -> Result<Vec<(CiphertextOwned, usize)>, EvalError> {
                let sigma = ev.rotate(a, rot, &keys.galois)?;
                let mut even = ev.add(a, &sigma)?;
                even.meta.scale *= 2.0;
                let mut out = vec![(even, *r)];
                if r + stride < cts.len() {
                    let mut odd = ev.mul_monomial(&ev.sub(a, &sigma)?, shift)?;
                    odd.meta.scale *= 2.0;
                    out.push((odd, r + stride));
                }
                Ok(out)
            };
            let next: Vec<Vec<(CiphertextOwned, usize)>> = {
                use rayon::prelude::*;
                branches.par_iter().map(split).collect::<Result<_, _>>()?
            };
            branches = next.into_iter().flatten().collect();
        }
        branches.sort_by_key(|(_, r)| *r);
        Ok(branches
            .into_iter()
            .map(|(mut c, _)| {
                c.meta.log_slots = in_log;
                c
            })
            .collect())
    }
}
