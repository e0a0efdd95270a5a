//! Products with constants and plaintexts, and the one plaintext sum-of-products kernel.

use super::{scales_match, Ciphertext3, PlaintextRns};
use crate::error::EvalError;
use crate::sum_of_products::sum_of_products;
use clifhe_core::ciphertext::{Ciphertext, CiphertextMeta, CiphertextOwned};
use clifhe_core::encode::Complex;
use clifhe_core::rns::{Representation, RnsPoly};
use rayon::prelude::*;

impl<'a> super::Evaluator<'a> {
    // ---- plaintext multiplication ---------------------------------------------------------

    /// Multiplies by a small integer without consuming a level.
    pub fn mul_integer(&self, a: &CiphertextOwned, k: i64) -> Result<CiphertextOwned, EvalError> {
        self.check_ct(a)?;
        let mut out = a.clone();
        for (i, m) in self.moduli(a.meta.level).iter().enumerate() {
            let kk = m.reduce_i64(k);
            let ks = m.shoup(kk);
            for p in [&mut out.c0, &mut out.c1] {
                if let Some(l) = p.limb_mut(i) {
                    l.iter_mut().for_each(|x| *x = m.mul_shoup(*x, kk, ks));
                }
            }
        }
        Ok(out)
    }

    /// Multiplies by the monomial X^k (k taken modulo 2N, X^N = -1): exact, no level, no key
    /// switch, scale and slot count unchanged. It moves coefficients (the message polynomial's
    /// coefficient j to j + k, negated past N), which is how [`crate::bootstrap`] packs several
    /// sparse-slot messages into one ciphertext. Per limb: one NTT of the monomial and a
    /// pointwise product of both polynomials.
    pub fn mul_monomial(&self, a: &CiphertextOwned, k: i64) -> Result<CiphertextOwned, EvalError> {
        self.check_ct(a)?;
        let n = self.ectx.n();
        let k = k.rem_euclid(2 * n as i64) as usize;
        let (pos, negate) = (k % n, k >= n);
        let mut out = a.clone();
        out.c0
            .as_mut_slice()
            .par_chunks_mut(n)
            .zip(out.c1.as_mut_slice().par_chunks_mut(n))
            .enumerate()
            .try_for_each(|(i, (l0, l1))| {
                let m = &self.ectx.q_moduli()[i];
                let mut mono = vec![0u64; n];
                mono[pos] = if negate { m.value() - 1 } else { 1 };
                self.ectx.q_tables()[i].forward(&mut mono).map_err(|_| EvalError::Representation)?;
                for ((x, y), w) in l0.iter_mut().zip(l1.iter_mut()).zip(&mono) {
                    *x = m.mul(*x, *w);
                    *y = m.mul(*y, *w);
                }
                Ok::<(), EvalError>(())
            })?;
        Ok(out)
    }

    /// Multiplies every slot by the real constant `c` encoded at `const_scale`; the result's
    /// scale is `scale * const_scale` and no rescale happens.
    pub fn mul_const_lazy(&self, a: &CiphertextOwned, c: f64, const_scale: f64) -> Result<CiphertextOwned, EvalError> {
        self.check_ct(a)?;
        let v = libm::round(c * const_scale);
        if !(v.is_finite() && v.abs() < 9.0e18) {
            return Err(EvalError::Invalid("constant too large for its scale"));
        }
        let mut out = a.clone();
        for (i, m) in self.moduli(a.meta.level).iter().enumerate() {
            let kk = m.reduce_i64(v as i64);
            let ks = m.shoup(kk);
            for p in [&mut out.c0, &mut out.c1] {
                if let Some(l) = p.limb_mut(i) {
                    l.iter_mut().for_each(|x| *x = m.mul_shoup(*x, kk, ks));
                }
            }
        }
        out.meta.scale *= const_scale;
        Ok(out)
    }

    /// a + pt (NTT form, same scale and slot count); pt may have more limbs than a.
    pub fn add_plain(&self, a: &CiphertextOwned, pt: &PlaintextRns) -> Result<CiphertextOwned, EvalError> {
        self.check_ct(a)?;
        if pt.poly.limbs() < a.meta.level + 1 || pt.log_slots != a.meta.log_slots || !scales_match(a.meta.scale, pt.scale) {
            return Err(EvalError::ScaleMismatch {
                left: a.meta.scale,
                right: pt.scale,
            });
        }
        let mut out = a.clone();
        for i in 0..=a.meta.level {
            let m = &self.ectx.q_moduli()[i];
            if let (Some(dst), Some(src)) = (out.c0.limb_mut(i), pt.poly.limb(i)) {
                dst.iter_mut().zip(src).for_each(|(x, y)| *x = m.add(*x, *y));
            }
        }
        Ok(out)
    }

    /// Adds a real constant to every slot of a degree-2 ciphertext (through c0).
    pub fn add_const3(&self, a: &mut Ciphertext3, c: f64) -> Result<(), EvalError> {
        let v = libm::round(c * a.meta.scale);
        if !v.is_finite() {
            return Err(EvalError::Invalid("constant not finite at this scale"));
        }
        for i in 0..=a.meta.level {
            let m = &self.ectx.q_moduli()[i];
            // A constant polynomial is the same constant in every NTT slot.
            let k = m.reduce_f64_integer(v);
            if let Some(l) = a.c0.limb_mut(i) {
                l.iter_mut().for_each(|x| *x = m.add(*x, k));
            }
        }
        Ok(())
    }

    /// c * a, then rescale: consumes one level and keeps the scale exactly (the constant is
    /// encoded at q_l, the prime the rescale divides by).
    pub fn mul_const(&self, a: &CiphertextOwned, c: f64) -> Result<CiphertextOwned, EvalError> {
        let ql = self.top_prime(a.meta.level)?;
        let t = self.mul_const_lazy(a, c, ql)?;
        self.rescale(&t)
    }

    /// c * a rescaled to exactly `target_scale` (the constant absorbs the ratio), e.g. to align
    /// the scales of two branches before adding them.
    pub fn mul_const_to_scale(&self, a: &CiphertextOwned, c: f64, target_scale: f64) -> Result<CiphertextOwned, EvalError> {
        let ql = self.top_prime(a.meta.level)?;
        let const_scale = target_scale * ql / a.meta.scale;
        let mut t = self.mul_const_lazy(a, c, const_scale)?;
        t.meta.scale = a.meta.scale * const_scale;
        let mut r = self.rescale(&t)?;
        r.meta.scale = target_scale;
        Ok(r)
    }

    pub(super) fn top_prime(&self, level: usize) -> Result<f64, EvalError> {
        if level == 0 {
            return Err(EvalError::OutOfLevels);
        }
        Ok(self.ectx.params().q()[level] as f64)
    }

    /// Encodes slot values as an NTT-form plaintext at `level` and `scale`.
    ///
    /// Any scale the modulus holds: the encoder's coefficients stay below 2^126 as f64, so where
    /// `scale` times the values would pass 2^110 the values are encoded at scale / 2^m and the
    /// residues multiplied by 2^m modulo each prime (exact; an f64 coefficient carries 53 bits
    /// either way, so this loses nothing).
    pub fn encode(&self, values: &[Complex], level: usize, scale: f64) -> Result<PlaintextRns, EvalError> {
        let n = self.ectx.n();
        if level > self.ectx.max_level() {
            return Err(EvalError::OutOfLevels);
        }
        let largest = values.iter().fold(0f64, |m, z| m.max(z.re.abs()).max(z.im.abs()));
        let excess = if largest > 0.0 && scale.is_finite() {
            ((scale * largest).log2() - 110.0).ceil().max(0.0)
        } else {
            0.0
        };
        let mut coeffs = vec![0f64; n];
        clifhe_core::encode::EncoderTables::shared(n, values.len())
            .and_then(|t| t.encode(values, scale * (-excess).exp2(), &mut coeffs))
            .map_err(|_| EvalError::Invalid("values cannot be encoded (slot count or magnitude)"))?;
        let mut poly = RnsPoly::zero(n, level + 1, Representation::Coefficient);
        poly.as_mut_slice().par_chunks_mut(n).enumerate().for_each(|(i, l)| {
            let m = &self.ectx.q_moduli()[i];
            let reducer = clifhe_core::arith::F64Reducer::new(m);
            if excess == 0.0 {
                // The usual case: no factor to multiply back.
                for (o, c) in l.iter_mut().zip(&coeffs) {
                    *o = reducer.reduce(*c);
                }
            } else {
                let factor = m.pow(2, excess as u64);
                for (o, c) in l.iter_mut().zip(&coeffs) {
                    *o = m.mul(reducer.reduce(*c), factor);
                }
            }
        });
        poly.ntt(self.ectx.q_tables())?;
        Ok(PlaintextRns {
            poly,
            scale,
            log_slots: values.len().trailing_zeros(),
        })
    }

    /// Real-valued [`Evaluator::encode`](super::Evaluator::encode).
    pub fn encode_real(&self, values: &[f64], level: usize, scale: f64) -> Result<PlaintextRns, EvalError> {
        let c: Vec<Complex> = values.iter().map(|&v| Complex::from_real(v)).collect();
        self.encode(&c, level, scale)
    }

    /// ct * pt (point-wise in NTT form); scale multiplies, no rescale.
    pub fn mul_plain(&self, a: &CiphertextOwned, pt: &PlaintextRns) -> Result<CiphertextOwned, EvalError> {
        self.check_ct(a)?;
        if pt.poly.limbs() < a.meta.level + 1 {
            return Err(EvalError::LevelMismatch {
                left: a.meta.level,
                right: pt.poly.limbs() - 1,
            });
        }
        if pt.log_slots != a.meta.log_slots {
            return Err(EvalError::SlotsMismatch);
        }
        let mut out = a.clone();
        let m = self.moduli(a.meta.level);
        out.c0.mul_assign(&pt.poly, m)?;
        out.c1.mul_assign(&pt.poly, m)?;
        out.meta.scale *= pt.scale;
        Ok(out)
    }

    /// `sum_i cts[i] * pts[i]` (point-wise in NTT form) in one pass: the inner sums of
    /// baby-step giant-step transforms and the block-diagonal maps of `ga`, on the crate's one
    /// sum-of-products kernel (`crate::sum_of_products`: AVX-512 IFMA where the CPU has it, the
    /// same words as the scalar kernel); any number of terms, nothing allocated per
    /// coefficient. All ciphertexts share level, scale and slots, all plaintexts their scale
    /// and slots (NTT form, at least the ciphertexts' limbs); result scale = scale_ct *
    /// scale_pt; no rescale.
    pub fn mul_plain_sum(&self, terms: &[(&CiphertextOwned, &PlaintextRns)]) -> Result<CiphertextOwned, EvalError> {
        let (first, first_pt) = *terms.first().ok_or(EvalError::Invalid("empty plaintext product sum"))?;
        self.check_ct(first)?;
        let level = first.meta.level;
        for (c, p) in terms {
            self.check_ct(c)?;
            self.check_pair(&first.meta, &c.meta)?;
            if p.poly.limbs() < level + 1 || p.poly.representation() != Representation::Ntt {
                return Err(EvalError::LevelMismatch {
                    left: level,
                    right: p.poly.limbs().saturating_sub(1),
                });
            }
            if p.log_slots != first.meta.log_slots {
                return Err(EvalError::SlotsMismatch);
            }
            if !scales_match(p.scale, first_pt.scale) {
                return Err(EvalError::ScaleMismatch {
                    left: first_pt.scale,
                    right: p.scale,
                });
            }
        }
        let n = self.ectx.n();
        let mut out = Ciphertext {
            c0: RnsPoly::zero(n, level + 1, Representation::Ntt),
            c1: RnsPoly::zero(n, level + 1, Representation::Ntt),
            meta: CiphertextMeta {
                scale: first.meta.scale * first_pt.scale,
                ..first.meta
            },
        };
        out.c0
            .as_mut_slice()
            .par_chunks_mut(n)
            .zip(out.c1.as_mut_slice().par_chunks_mut(n))
            .enumerate()
            .for_each(|(i, (o0, o1))| {
                let m = &self.ectx.q_moduli()[i];
                let r = i * n..(i + 1) * n;
                sum_of_products(
                    m,
                    terms.len(),
                    |t| &terms[t].1.poly.as_slice()[r.clone()],
                    |t| &terms[t].0.c0.as_slice()[r.clone()],
                    |t| &terms[t].0.c1.as_slice()[r.clone()],
                    o0,
                    o1,
                    false,
                );
            });
        Ok(out)
    }
}
