//! The CKKS evaluator: arithmetic on ciphertexts with explicit level and scale bookkeeping.
//!
//! Rescaling policy (one rule, everywhere): multiplications never rescale implicitly; the
//! caller rescales once per multiplicative layer (`rescale`). Plaintext constants meant to
//! leave the scale unchanged are encoded at the scale of the prime that the next rescale
//! divides out (q_l), so `mul_const` followed by `rescale` restores the input scale exactly
//! (Lattigo's convention). Binary operations require equal parameter sets, levels, slot counts
//! and scales (relative difference below 2^-30); anything else is an error, never an implicit
//! conversion. `drop_to_level` and `mul_const_to_scale` are the explicit tools for aligning.
//!
//! All methods take `&self`; an `Evaluator` holds no mutable state and is `Send + Sync`.
//!
//! The methods are split by concept: this file holds the types, the shape checks, the additive
//! operations and the level bookkeeping; `plain` the products with constants and plaintexts
//! (and the one plaintext sum-of-products kernel); `mul` ciphertext products and
//! relinearization; `rotate` the automorphisms; `fused` the multiply-accumulate kernels the GNN
//! layers need (linear and quadratic combinations in one pass).

use crate::context::EvalContext;
use crate::error::EvalError;
use clifhe_core::ciphertext::{Ciphertext, CiphertextMeta, CiphertextOwned};
use clifhe_core::encode::Complex;
use clifhe_core::lincomb::{reduce_signed, scale_difference, Destination};
use clifhe_core::rns::{Representation, RnsPoly, RnsPolyOwned};
use rayon::prelude::*;

mod fused;
mod mul;
mod plain;
mod rotate;

/// A degree-2 ciphertext (c0, c1, c2) from a tensor product, decrypting as c0 + c1 s + c2 s^2.
/// Several can be summed before one relinearization (lazy relinearization).
#[derive(Clone, Debug)]
pub struct Ciphertext3 {
    pub c0: RnsPolyOwned,
    pub c1: RnsPolyOwned,
    pub c2: RnsPolyOwned,
    pub meta: CiphertextMeta,
}

/// A plaintext polynomial in RNS/NTT form, ready to multiply ciphertexts at its level.
#[derive(Clone, Debug)]
pub struct PlaintextRns {
    pub poly: RnsPolyOwned,
    pub scale: f64,
    pub log_slots: u32,
}

const SCALE_TOLERANCE: f64 = 1.0 / (1u64 << 30) as f64;

#[derive(Clone, Copy, Debug)]
pub struct Evaluator<'a> {
    ectx: &'a EvalContext,
}

pub(crate) fn scales_match(a: f64, b: f64) -> bool {
    ((a - b) / a).abs() < SCALE_TOLERANCE
}

impl<'a> Evaluator<'a> {
    pub fn new(ectx: &'a EvalContext) -> Self {
        Self { ectx }
    }
    pub fn context(&self) -> &'a EvalContext {
        self.ectx
    }

    /// A well-formed NTT-form ciphertext of this parameter set (shared with `ga`'s kernels).
    pub(crate) fn check_ct<S: AsRef<[u64]>>(&self, ct: &Ciphertext<S>) -> Result<(), EvalError> {
        let p = self.ectx.params();
        if ct.meta.params_id != p.id() {
            return Err(EvalError::ParamsMismatch);
        }
        let limbs = ct.meta.level + 1;
        if ct.meta.level > p.max_level() || ct.c0.limbs() != limbs || ct.c1.limbs() != limbs || ct.c0.n() != p.n() || ct.c1.n() != p.n() {
            return Err(EvalError::Invalid("ciphertext shape does not match its level"));
        }
        if ct.c0.representation() != Representation::Ntt || ct.c1.representation() != Representation::Ntt {
            return Err(EvalError::Representation);
        }
        Ok(())
    }

    /// Same parameter set, level, slot count and scale (shared with `ga`'s kernels).
    pub(crate) fn check_pair(&self, a: &CiphertextMeta, b: &CiphertextMeta) -> Result<(), EvalError> {
        if a.params_id != b.params_id {
            return Err(EvalError::ParamsMismatch);
        }
        if a.level != b.level {
            return Err(EvalError::LevelMismatch {
                left: a.level,
                right: b.level,
            });
        }
        if a.log_slots != b.log_slots {
            return Err(EvalError::SlotsMismatch);
        }
        if !scales_match(a.scale, b.scale) {
            return Err(EvalError::ScaleMismatch {
                left: a.scale,
                right: b.scale,
            });
        }
        Ok(())
    }

    pub(super) fn moduli(&self, level: usize) -> &[clifhe_core::arith::Modulus] {
        &self.ectx.q_moduli()[..=level]
    }

    // ---- additive operations -------------------------------------------------------------

    pub fn add(&self, a: &CiphertextOwned, b: &CiphertextOwned) -> Result<CiphertextOwned, EvalError> {
        let mut out = a.clone();
        self.add_assign(&mut out, b)?;
        Ok(out)
    }

    pub fn add_assign(&self, a: &mut CiphertextOwned, b: &CiphertextOwned) -> Result<(), EvalError> {
        self.check_ct(a)?;
        self.check_ct(b)?;
        self.check_pair(&a.meta, &b.meta)?;
        let m = self.moduli(a.meta.level);
        a.c0.add_assign(&b.c0, m)?;
        a.c1.add_assign(&b.c1, m)?;
        Ok(())
    }

    pub fn sub(&self, a: &CiphertextOwned, b: &CiphertextOwned) -> Result<CiphertextOwned, EvalError> {
        self.check_ct(a)?;
        self.check_ct(b)?;
        self.check_pair(&a.meta, &b.meta)?;
        let mut out = a.clone();
        let m = self.moduli(a.meta.level);
        out.c0.sub_assign(&b.c0, m)?;
        out.c1.sub_assign(&b.c1, m)?;
        Ok(out)
    }

    pub fn neg(&self, a: &CiphertextOwned) -> Result<CiphertextOwned, EvalError> {
        self.check_ct(a)?;
        let mut out = a.clone();
        let m = self.moduli(a.meta.level);
        out.c0.neg_assign(m)?;
        out.c1.neg_assign(m)?;
        Ok(out)
    }

    /// Adds the constant `c` to every slot (a constant polynomial is constant in NTT form too).
    pub fn add_const(&self, a: &CiphertextOwned, c: Complex) -> Result<CiphertextOwned, EvalError> {
        self.check_ct(a)?;
        self.add_const_owned(a.clone(), c)
    }

    /// [`add_const`](Self::add_const) into a ciphertext the caller gives up (no copy).
    pub fn add_const_owned(&self, a: CiphertextOwned, c: Complex) -> Result<CiphertextOwned, EvalError> {
        self.check_ct(&a)?;
        let mut out = a;
        let n = self.ectx.n();
        // A constant polynomial is c.re in every slot; X^(N/2) evaluates to i at every slot
        // root zeta^(5^j) (5^j = 1 mod 4), so c.im * X^(N/2) adds i * c.im everywhere.
        // Any magnitude: the f64 integer is reduced exactly per prime (scales can exceed 2^63).
        let re = libm::round(c.re * out.meta.scale);
        let im = libm::round(c.im * out.meta.scale);
        if !(re.is_finite() && im.is_finite()) {
            return Err(EvalError::Invalid("constant not finite at this scale"));
        }
        let level = out.meta.level;
        for i in 0..=level {
            let m = &self.ectx.q_moduli()[i];
            let limb = out.c0.limb_mut(i).ok_or(EvalError::OutOfLevels)?;
            if im == 0.0 {
                // A constant polynomial evaluates to itself at every root: its NTT is the
                // constant in every slot (no transform; EvalMod adds only real constants).
                let r = m.reduce_f64_integer(re);
                limb.iter_mut().for_each(|x| *x = m.add(*x, r));
                continue;
            }
            let mut poly = vec![0u64; n];
            poly[0] = m.reduce_f64_integer(re);
            poly[n / 2] = m.reduce_f64_integer(im);
            self.ectx.q_tables()[i].forward(&mut poly).map_err(|_| EvalError::Representation)?;
            for (x, y) in limb.iter_mut().zip(&poly) {
                *x = m.add(*x, *y);
            }
        }
        Ok(out)
    }

    // ---- rescaling and levels -------------------------------------------------------------

    /// Divides by the top prime q_l (rounding), dropping one level: scale /= q_l.
    pub fn rescale(&self, a: &CiphertextOwned) -> Result<CiphertextOwned, EvalError> {
        self.check_ct(a)?;
        let level = a.meta.level;
        if level == 0 {
            return Err(EvalError::OutOfLevels);
        }
        let n = self.ectx.n();
        let mut c0 = RnsPoly::zero(n, level, Representation::Ntt);
        let mut c1 = RnsPoly::zero(n, level, Representation::Ntt);
        let (s0, s1) = (a.c0.as_slice(), a.c1.as_slice());
        let centred = self.centred_tops([&s0[level * n..], &s1[level * n..]], level)?;
        c0.as_mut_slice()
            .par_chunks_mut(n)
            .enumerate()
            .map(|(i, o)| (0, i, o))
            .chain(c1.as_mut_slice().par_chunks_mut(n).enumerate().map(|(i, o)| (1, i, o)))
            .try_for_each(|(k, i, o)| {
                let src = if k == 0 { s0 } else { s1 };
                self.rescale_limb(i, level, &centred[k], &src[i * n..(i + 1) * n], o)
            })?;
        Ok(Ciphertext {
            c0,
            c1,
            meta: self.rescaled_meta(&a.meta),
        })
    }

    /// [`rescale`](Self::rescale) of a ciphertext the caller gives up: the result is written
    /// over its lower limbs (no new polynomials).
    pub fn rescale_owned(&self, mut a: CiphertextOwned) -> Result<CiphertextOwned, EvalError> {
        self.check_ct(&a)?;
        let level = a.meta.level;
        if level == 0 {
            return Err(EvalError::OutOfLevels);
        }
        let n = self.ectx.n();
        let (lo0, top0) = a.c0.as_mut_slice().split_at_mut(level * n);
        let (lo1, top1) = a.c1.as_mut_slice().split_at_mut(level * n);
        let centred = self.centred_tops([&*top0, &*top1], level)?;
        self.par_limbs_of_two(lo0, lo1, |k, i, io, tmp| {
            self.rescale_limb(i, level, &centred[k], io, tmp)?;
            io.copy_from_slice(tmp);
            Ok(())
        })?;
        a.c0.truncate_limbs(level).map_err(|_| EvalError::OutOfLevels)?;
        a.c1.truncate_limbs(level).map_err(|_| EvalError::OutOfLevels)?;
        a.meta = self.rescaled_meta(&a.meta);
        Ok(a)
    }

    /// Two [`rescale_owned`](Self::rescale_owned)s in one pass: the ciphertext divided by
    /// q_l q_(l-1) with one rounding (what the quadratic layers do after each product). The two
    /// top limbs are lifted to one centred value below q_l q_(l-1) / 2 (Garner), so each lower
    /// limb takes one forward NTT instead of two: about half the transforms. The words equal
    /// those of two sequential rescales: with x = q_l q_(l-1) k + r, r centred, the first
    /// rounding leaves q_(l-1) k + j with |j| <= (q_(l-1) - 1) / 2 (the moduli are odd, so no
    /// ties), and the second rounds that to k, as the single division does. The recorded
    /// scale is the same too.
    pub fn rescale_twice_owned(&self, mut a: CiphertextOwned) -> Result<CiphertextOwned, EvalError> {
        self.check_ct(&a)?;
        let level = a.meta.level;
        if level < 2 {
            return Err(EvalError::OutOfLevels);
        }
        let n = self.ectx.n();
        let keep = level - 1;
        let (lo0, top0) = a.c0.as_mut_slice().split_at_mut(keep * n);
        let (lo1, top1) = a.c1.as_mut_slice().split_at_mut(keep * n);
        let (c0, c1) = rayon::join(|| self.centred_top_pair(top0, level), || self.centred_top_pair(top1, level));
        let centred = [c0?, c1?];
        let q2 = self.ectx.q_moduli()[level].value() as u128 * self.ectx.q_moduli()[level - 1].value() as u128;
        self.par_limbs_of_two(lo0, lo1, |k, i, io, tmp| {
            let m = &self.ectx.q_moduli()[i];
            for (x, &c) in tmp.iter_mut().zip(&centred[k]) {
                *x = m.reduce_i128(c);
            }
            self.ectx.q_tables()[i].forward(tmp).map_err(|_| EvalError::Representation)?;
            let inv = m.inv(m.reduce_u128(q2));
            // (x - t) inv = (t - x)(-inv), written over x
            if !scale_difference(m, m.neg(inv), tmp, io, Destination::Overwrite) {
                let inv_s = m.shoup(inv);
                for (x, t) in io.iter_mut().zip(tmp.iter()) {
                    *x = m.mul_shoup(m.sub(*x, *t), inv, inv_s);
                }
            }
            Ok(())
        })?;
        a.c0.truncate_limbs(keep).map_err(|_| EvalError::OutOfLevels)?;
        a.c1.truncate_limbs(keep).map_err(|_| EvalError::OutOfLevels)?;
        a.meta = self.rescaled_meta(&self.rescaled_meta(&a.meta));
        Ok(a)
    }

    /// Runs `f(k, i, limb, scratch)` on limb i of polynomial k (0 for `p0`, 1 for `p1`) for
    /// every limb of both, in parallel, each task with an N-word scratch buffer.
    fn par_limbs_of_two<F>(&self, p0: &mut [u64], p1: &mut [u64], f: F) -> Result<(), EvalError>
    where
        F: Fn(usize, usize, &mut [u64], &mut [u64]) -> Result<(), EvalError> + Sync + Send,
    {
        let n = self.ectx.n();
        p0.par_chunks_mut(n)
            .enumerate()
            .map(|(i, o)| (0, i, o))
            .chain(p1.par_chunks_mut(n).enumerate().map(|(i, o)| (1, i, o)))
            .try_for_each_init(|| vec![0u64; n], |tmp, (k, i, io)| f(k, i, io, tmp))
    }

    /// The centred lift modulo q_l q_(l-1) of the two top limbs `tops` (limb l-1 then limb l,
    /// NTT form) of a polynomial at `level` = l, in coefficient form.
    fn centred_top_pair(&self, tops: &[u64], level: usize) -> Result<Vec<i128>, EvalError> {
        let n = self.ectx.n();
        let mut a = tops.get(..n).ok_or(EvalError::Representation)?.to_vec();
        let mut b = tops.get(n..2 * n).ok_or(EvalError::Representation)?.to_vec();
        self.ectx.q_tables()[level - 1]
            .inverse(&mut a)
            .map_err(|_| EvalError::Representation)?;
        self.ectx.q_tables()[level].inverse(&mut b).map_err(|_| EvalError::Representation)?;
        Ok(self.ectx.centred_pair_lift(&a, &b, level))
    }

    fn rescaled_meta(&self, meta: &CiphertextMeta) -> CiphertextMeta {
        let ql = self.ectx.params().q()[meta.level] as f64;
        CiphertextMeta {
            level: meta.level - 1,
            scale: meta.scale / ql,
            ..*meta
        }
    }

    /// The centred lifts (coefficient form) of two top limbs at `level`, transformed in
    /// parallel.
    fn centred_tops(&self, tops: [&[u64]; 2], level: usize) -> Result<[Vec<i64>; 2], EvalError> {
        let lift = |limb: &[u64]| -> Result<Vec<i64>, EvalError> {
            let top = &self.ectx.q_moduli()[level];
            let mut last = limb.to_vec();
            self.ectx.q_tables()[level]
                .inverse(&mut last)
                .map_err(|_| EvalError::Representation)?;
            // Centred, so that the division rounds to nearest.
            Ok(last.iter().map(|&x| top.center(x)).collect())
        };
        let (a, b) = rayon::join(|| lift(tops[0]), || lift(tops[1]));
        Ok([a?, b?])
    }

    /// Limb i < `level` of a rescaled polynomial: `out = (src - NTT([c] mod q_i)) q_l^-1` for
    /// the centred top residues `c`.
    fn rescale_limb(&self, i: usize, level: usize, centred: &[i64], src: &[u64], out: &mut [u64]) -> Result<(), EvalError> {
        let m = &self.ectx.q_moduli()[i];
        let top = self.ectx.q_moduli()[level].value();
        if !reduce_signed(m, centred, out) {
            if top / 2 < m.value() {
                // |c| <= q_l / 2 < q_i: a conditional addition instead of a reduction.
                for (x, &c) in out.iter_mut().zip(centred) {
                    *x = (c as u64).wrapping_add(m.value() & ((c >> 63) as u64));
                }
            } else {
                for (x, &c) in out.iter_mut().zip(centred) {
                    *x = m.reduce_i64(c);
                }
            }
        }
        self.ectx.q_tables()[i].forward(out).map_err(|_| EvalError::Representation)?;
        let inv = m.inv(m.reduce(top));
        if !scale_difference(m, inv, src, out, Destination::Overwrite) {
            let inv_s = m.shoup(inv);
            for (x, s) in out.iter_mut().zip(src) {
                *x = m.mul_shoup(m.sub(*s, *x), inv, inv_s);
            }
        }
        Ok(())
    }

    /// Drops primes above `level` (no change of scale).
    pub fn drop_to_level(&self, a: &CiphertextOwned, level: usize) -> Result<CiphertextOwned, EvalError> {
        self.check_ct(a)?;
        if level > a.meta.level {
            return Err(EvalError::LevelMismatch {
                left: a.meta.level,
                right: level,
            });
        }
        // Copies only the kept limbs.
        let keep = |p: &RnsPolyOwned| p.prefix(level + 1).map(|v| v.to_owned_poly());
        Ok(Ciphertext {
            c0: keep(&a.c0)?,
            c1: keep(&a.c1)?,
            meta: CiphertextMeta { level, ..a.meta },
        })
    }
}

/// A degree-2 ciphertext of `meta`'s level, filled limb by limb in parallel: `f(q_i, range,
/// c0_i, c1_i, c2_i)` writes limb i of the three polynomials, whose coefficients of the inputs
/// sit at `range` of their limb-major slices. The one parallel scaffold of every fused
/// degree-2 kernel (tensor, rotation quadratic forms, the GA tensor sums).
pub(crate) fn degree2_by_limb<F>(ectx: &EvalContext, meta: CiphertextMeta, f: F) -> Ciphertext3
where
    F: Fn(&clifhe_core::arith::Modulus, core::ops::Range<usize>, &mut [u64], &mut [u64], &mut [u64]) + Sync,
{
    let n = ectx.n();
    let limbs = meta.level + 1;
    let [mut c0, mut c1, mut c2]: [RnsPolyOwned; 3] = core::array::from_fn(|_| RnsPoly::zero(n, limbs, Representation::Ntt));
    c0.as_mut_slice()
        .par_chunks_mut(n)
        .zip(c1.as_mut_slice().par_chunks_mut(n))
        .zip(c2.as_mut_slice().par_chunks_mut(n))
        .enumerate()
        .for_each(|(i, ((o0, o1), o2))| f(&ectx.q_moduli()[i], i * n..(i + 1) * n, o0, o1, o2));
    Ciphertext3 { c0, c1, c2, meta }
}
