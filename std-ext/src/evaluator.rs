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

use crate::context::EvalContext;
use crate::error::EvalError;
use crate::keys::{conjugation_galois_element, rotation_galois_element, GaloisKeys, RelinearizationKey};
use crate::keyswitch::SwitchingKey;
use clifhe_core::ciphertext::{Ciphertext, CiphertextMeta, CiphertextOwned};
use clifhe_core::encode::Complex;
use clifhe_core::rns::{Representation, RnsPoly, RnsPolyOwned};
use rayon::prelude::*;

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

    fn moduli(&self, level: usize) -> &[clifhe_core::arith::Modulus] {
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
        let mut out = a.clone();
        let n = self.ectx.n();
        // A constant polynomial is c.re in every slot; X^(N/2) evaluates to i at every slot
        // root zeta^(5^j) (5^j = 1 mod 4), so c.im * X^(N/2) adds i * c.im everywhere.
        // Any magnitude: the f64 integer is reduced exactly per prime (scales can exceed 2^63).
        let re = libm::round(c.re * a.meta.scale);
        let im = libm::round(c.im * a.meta.scale);
        if !(re.is_finite() && im.is_finite()) {
            return Err(EvalError::Invalid("constant not finite at this scale"));
        }
        let level = a.meta.level;
        for i in 0..=level {
            let m = &self.ectx.q_moduli()[i];
            let limb = out.c0.limb_mut(i).ok_or(EvalError::OutOfLevels)?;
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

    /// sum_i round(c_i * const_scale) * cts[i] in one pass (no rescale): the result's scale is
    /// `scale * const_scale`. All inputs must share level, scale and slots. Products are summed
    /// in 128 bits and reduced once per coefficient, so a map of 8 inputs costs about as much as
    /// 8 additions instead of 8 full constant multiplications with their copies.
    pub fn linear_combination(&self, cts: &[&CiphertextOwned], coeffs: &[f64], const_scale: f64) -> Result<CiphertextOwned, EvalError> {
        let first = *cts.first().ok_or(EvalError::Invalid("empty linear combination"))?;
        // Each product is below 2^122 (61-bit operands), so 32 of them fit in a u128.
        if cts.len() != coeffs.len() || cts.len() > 32 {
            return Err(EvalError::Invalid(
                "linear combination needs one coefficient per input (at most 32)",
            ));
        }
        for ct in cts {
            self.check_ct(ct)?;
            self.check_pair(&first.meta, &ct.meta)?;
        }
        let ints = coeffs
            .iter()
            .map(|&c| {
                let v = libm::round(c * const_scale);
                if v.is_finite() {
                    Ok(v)
                } else {
                    Err(EvalError::Invalid("constant not finite at its scale"))
                }
            })
            .collect::<Result<Vec<f64>, _>>()?;
        let n = self.ectx.n();
        let level = first.meta.level;
        let mut out = Ciphertext {
            c0: RnsPoly::zero(n, level + 1, Representation::Ntt),
            c1: RnsPoly::zero(n, level + 1, Representation::Ntt),
            meta: CiphertextMeta {
                scale: first.meta.scale * const_scale,
                ..first.meta
            },
        };
        for (pi, poly) in [&mut out.c0, &mut out.c1].into_iter().enumerate() {
            poly.as_mut_slice().par_chunks_mut(n).enumerate().for_each(|(i, o)| {
                let m = &self.ectx.q_moduli()[i];
                let ks: Vec<u64> = ints.iter().map(|&k| m.reduce_f64_integer(k)).collect();
                let srcs: Vec<&[u64]> = cts
                    .iter()
                    .map(|ct| {
                        let p = if pi == 0 { &ct.c0 } else { &ct.c1 };
                        &p.as_slice()[i * n..(i + 1) * n]
                    })
                    .collect();
                for (x, ox) in o.iter_mut().enumerate() {
                    let mut acc: u128 = 0;
                    for (src, k) in srcs.iter().zip(&ks) {
                        acc += src[x] as u128 * *k as u128;
                    }
                    *ox = m.reduce_u128(acc);
                }
            });
        }
        Ok(out)
    }

    /// sum_i k_i * cts[i] over the primes of `level`, for integer-valued k_i of any size:
    /// inputs may sit above `level` (their upper primes are ignored, as `drop_to_level` would)
    /// and have different scales; the result is labelled `scale`, which the caller derives
    /// (e.g. k_i = round(c_i * scale / scale_i)). One pass, 128-bit sums, no copies of the
    /// inputs (Chebyshev sums in bootstrapping add terms of slightly different scales).
    pub fn integer_combination(&self, terms: &[(&CiphertextOwned, f64)], level: usize, scale: f64) -> Result<CiphertextOwned, EvalError> {
        let (first, _) = *terms.first().ok_or(EvalError::Invalid("empty combination"))?;
        for (ct, k) in terms {
            self.check_ct(ct)?;
            if ct.meta.params_id != first.meta.params_id {
                return Err(EvalError::ParamsMismatch);
            }
            if ct.meta.log_slots != first.meta.log_slots {
                return Err(EvalError::SlotsMismatch);
            }
            if ct.meta.level < level {
                return Err(EvalError::LevelMismatch {
                    left: ct.meta.level,
                    right: level,
                });
            }
            if !(k.is_finite() && k.fract() == 0.0) {
                return Err(EvalError::Invalid("combination weights must be finite integers"));
            }
        }
        if !(scale.is_finite() && scale > 0.0) {
            return Err(EvalError::Invalid("scale must be finite and positive"));
        }
        let n = self.ectx.n();
        let mut out = Ciphertext {
            c0: RnsPoly::zero(n, level + 1, Representation::Ntt),
            c1: RnsPoly::zero(n, level + 1, Representation::Ntt),
            meta: CiphertextMeta {
                level,
                scale,
                ..first.meta
            },
        };
        for (pi, poly) in [&mut out.c0, &mut out.c1].into_iter().enumerate() {
            poly.as_mut_slice().par_chunks_mut(n).enumerate().for_each(|(i, o)| {
                let m = &self.ectx.q_moduli()[i];
                let mut acc = vec![0u128; n];
                for (t, (ct, k)) in terms.iter().enumerate() {
                    let kk = m.reduce_f64_integer(*k) as u128;
                    let src = &(if pi == 0 { &ct.c0 } else { &ct.c1 }).as_slice()[i * n..(i + 1) * n];
                    for (a, x) in acc.iter_mut().zip(src) {
                        *a += *x as u128 * kk;
                    }
                    // products are below 2^122: reduce every 32 terms
                    if t % 32 == 31 {
                        acc.iter_mut().for_each(|a| *a = m.reduce_u128(*a) as u128);
                    }
                }
                for (x, a) in o.iter_mut().zip(&acc) {
                    *x = m.reduce_u128(*a);
                }
            });
        }
        Ok(out)
    }

    /// sum_i c_i * quad[i] + sum_j d_j * lin[j] as a degree-2 ciphertext, constants at
    /// `const_scale`: the degree-1 terms enter c0 and c1 only, so they must carry the scale of
    /// the degree-2 terms divided by `lin_scale_ratio` (their constants are encoded at
    /// `const_scale * lin_scale_ratio` to make the scales meet). One pass, 128-bit sums.
    pub fn quadratic_combination(
        &self,
        quad: &[&Ciphertext3],
        quad_coeffs: &[f64],
        lin: &[&CiphertextOwned],
        lin_coeffs: &[f64],
        const_scale: f64,
        lin_scale_ratio: f64,
    ) -> Result<Ciphertext3, EvalError> {
        let mut out = self.quadratic_combinations(quad, &[quad_coeffs], lin, &[lin_coeffs], const_scale, lin_scale_ratio)?;
        out.pop().ok_or(EvalError::Invalid("empty quadratic combination"))
    }

    /// Several [`quadratic_combination`](Self::quadratic_combination)s of the same terms (one
    /// coefficient vector per output) in one pass over the terms: each block of coefficients of
    /// each term is read once and accumulated into every output's L1-resident 128-bit sums, so
    /// the (large) degree-2 terms stream from memory once for all outputs instead of once per
    /// output.
    pub fn quadratic_combinations(
        &self,
        quad: &[&Ciphertext3],
        quad_coeffs: &[&[f64]],
        lin: &[&CiphertextOwned],
        lin_coeffs: &[&[f64]],
        const_scale: f64,
        lin_scale_ratio: f64,
    ) -> Result<Vec<Ciphertext3>, EvalError> {
        let first = *quad.first().ok_or(EvalError::Invalid("empty quadratic combination"))?;
        let outputs = quad_coeffs.len();
        if outputs == 0
            || lin_coeffs.len() != outputs
            || quad_coeffs.iter().any(|c| c.len() != quad.len())
            || lin_coeffs.iter().any(|c| c.len() != lin.len())
        {
            return Err(EvalError::Invalid("one coefficient per term and output"));
        }
        let level = first.meta.level;
        for t in quad {
            self.check_pair(&first.meta, &t.meta)?;
        }
        for t in lin {
            self.check_ct(t)?;
            if t.meta.level != level || t.meta.params_id != first.meta.params_id || t.meta.log_slots != first.meta.log_slots {
                return Err(EvalError::LevelMismatch {
                    left: level,
                    right: t.meta.level,
                });
            }
            if !scales_match(t.meta.scale * lin_scale_ratio, first.meta.scale) {
                return Err(EvalError::ScaleMismatch {
                    left: t.meta.scale * lin_scale_ratio,
                    right: first.meta.scale,
                });
            }
        }
        let round = |c: f64, sc: f64| -> Result<f64, EvalError> {
            let v = libm::round(c * sc);
            if v.is_finite() {
                Ok(v)
            } else {
                Err(EvalError::Invalid("constant not finite at its scale"))
            }
        };
        // Integer constants per output: the degree-2 terms, then the degree-1 terms.
        let ints: Vec<Vec<f64>> = (0..outputs)
            .map(|o| {
                quad_coeffs[o]
                    .iter()
                    .map(|&c| round(c, const_scale))
                    .chain(lin_coeffs[o].iter().map(|&c| round(c, const_scale * lin_scale_ratio)))
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<_, _>>()?;
        let n = self.ectx.n();
        let limbs = level + 1;
        // One task per (polynomial, limb); each writes that limb of every output.
        let tasks: Vec<(usize, usize)> = (0..3).flat_map(|pi| (0..limbs).map(move |i| (pi, i))).collect();
        let results: Vec<Vec<Vec<u64>>> = tasks
            .par_iter()
            .map(|&(pi, i)| {
                let m = &self.ectx.q_moduli()[i];
                let r = i * n..(i + 1) * n;
                let mut srcs: Vec<&[u64]> = quad
                    .iter()
                    .map(|t| {
                        let p = match pi {
                            0 => &t.c0,
                            1 => &t.c1,
                            _ => &t.c2,
                        };
                        &p.as_slice()[r.clone()]
                    })
                    .collect();
                if pi < 2 {
                    srcs.extend(lin.iter().map(|t| {
                        let p = if pi == 0 { &t.c0 } else { &t.c1 };
                        &p.as_slice()[r.clone()]
                    }));
                }
                // ks[t][o]: term t's constant for output o, reduced mod this prime.
                let ks: Vec<Vec<u64>> = (0..srcs.len())
                    .map(|t| ints.iter().map(|c| m.reduce_f64_integer(c[t])).collect())
                    .collect();
                let mut out = vec![vec![0u64; n]; outputs];
                // Blocks small enough that every output's accumulator stays in L1.
                let block = (1024 / outputs).clamp(32, 512);
                let mut acc = vec![0u128; outputs * block];
                for base in (0..n).step_by(block) {
                    let len = block.min(n - base);
                    acc.fill(0);
                    // Four terms per pass over an accumulator. Products are below 2^122: fold
                    // every 32 terms (8 groups).
                    for (g, (group, kg)) in srcs.chunks(4).zip(ks.chunks(4)).enumerate() {
                        if let ([s0, s1, s2, s3], [k0, k1, k2, k3]) = (group, kg) {
                            let (s0, s1, s2, s3) = (
                                &s0[base..base + len],
                                &s1[base..base + len],
                                &s2[base..base + len],
                                &s3[base..base + len],
                            );
                            for o in 0..outputs {
                                let (k0, k1, k2, k3) = (k0[o] as u128, k1[o] as u128, k2[o] as u128, k3[o] as u128);
                                for (i, a) in acc[o * block..o * block + len].iter_mut().enumerate() {
                                    *a += s0[i] as u128 * k0 + s1[i] as u128 * k1 + s2[i] as u128 * k2 + s3[i] as u128 * k3;
                                }
                            }
                        } else {
                            for (src, k) in group.iter().zip(kg) {
                                let s = &src[base..base + len];
                                for (o, &ko) in k.iter().enumerate() {
                                    for (a, &v) in acc[o * block..o * block + len].iter_mut().zip(s) {
                                        *a += v as u128 * ko as u128;
                                    }
                                }
                            }
                        }
                        if g % 8 == 7 {
                            acc.iter_mut().for_each(|a| *a = m.reduce_u128(*a) as u128);
                        }
                    }
                    for (o, dst) in out.iter_mut().enumerate() {
                        for (d, a) in dst[base..base + len].iter_mut().zip(&acc[o * block..o * block + len]) {
                            *d = m.reduce_u128(*a);
                        }
                    }
                }
                out
            })
            .collect();
        let meta = CiphertextMeta {
            scale: first.meta.scale * const_scale,
            ..first.meta
        };
        let mut polys: Vec<[RnsPolyOwned; 3]> = (0..outputs)
            .map(|_| core::array::from_fn(|_| RnsPoly::zero(n, limbs, Representation::Ntt)))
            .collect();
        for (&(pi, i), res) in tasks.iter().zip(results) {
            for (o, limb) in res.into_iter().enumerate() {
                if let Some(dst) = polys[o][pi].limb_mut(i) {
                    dst.copy_from_slice(&limb);
                }
            }
        }
        Ok(polys.into_iter().map(|[c0, c1, c2]| Ciphertext3 { c0, c1, c2, meta }).collect())
    }

    /// `sum_i quad[i] * quad_pts[i] + sum_j lin[j] * lin_pts[j]` as a degree-2 ciphertext:
    /// [`quadratic_combination`](Self::quadratic_combination) with slot-wise (plaintext)
    /// coefficients. The degree-1 terms enter c0 and c1; every product must have the same scale.
    /// One blocked pass with 128-bit sums per (polynomial, limb).
    pub fn plain_quadratic_combination(
        &self,
        quad: &[&Ciphertext3],
        quad_pts: &[&PlaintextRns],
        lin: &[&CiphertextOwned],
        lin_pts: &[&PlaintextRns],
    ) -> Result<Ciphertext3, EvalError> {
        let first = *quad.first().ok_or(EvalError::Invalid("empty quadratic combination"))?;
        if quad.len() != quad_pts.len() || lin.len() != lin_pts.len() {
            return Err(EvalError::Invalid("one plaintext per term"));
        }
        let level = first.meta.level;
        let scale = first.meta.scale * quad_pts[0].scale;
        for (t, p) in quad.iter().zip(quad_pts) {
            self.check_pair(&first.meta, &t.meta)?;
            if p.poly.limbs() < level + 1 || p.log_slots != first.meta.log_slots || !scales_match(t.meta.scale * p.scale, scale) {
                return Err(EvalError::Invalid("plaintext term of another level, slot count or scale"));
            }
        }
        for (t, p) in lin.iter().zip(lin_pts) {
            self.check_ct(t)?;
            if t.meta.level != level || t.meta.params_id != first.meta.params_id || t.meta.log_slots != first.meta.log_slots {
                return Err(EvalError::LevelMismatch {
                    left: level,
                    right: t.meta.level,
                });
            }
            if p.poly.limbs() < level + 1 || p.log_slots != first.meta.log_slots || !scales_match(t.meta.scale * p.scale, scale) {
                return Err(EvalError::ScaleMismatch {
                    left: t.meta.scale * p.scale,
                    right: scale,
                });
            }
        }
        let n = self.ectx.n();
        let limbs = level + 1;
        let mut polys: [RnsPolyOwned; 3] = core::array::from_fn(|_| RnsPoly::zero(n, limbs, Representation::Ntt));
        for (pi, poly) in polys.iter_mut().enumerate() {
            poly.as_mut_slice().par_chunks_mut(n).enumerate().for_each(|(i, o)| {
                let m = &self.ectx.q_moduli()[i];
                let r = i * n..(i + 1) * n;
                let mut srcs: Vec<(&[u64], &[u64])> = quad
                    .iter()
                    .zip(quad_pts)
                    .map(|(t, p)| {
                        let c = match pi {
                            0 => &t.c0,
                            1 => &t.c1,
                            _ => &t.c2,
                        };
                        (&c.as_slice()[r.clone()], &p.poly.as_slice()[r.clone()])
                    })
                    .collect();
                if pi < 2 {
                    srcs.extend(lin.iter().zip(lin_pts).map(|(t, p)| {
                        let c = if pi == 0 { &t.c0 } else { &t.c1 };
                        (&c.as_slice()[r.clone()], &p.poly.as_slice()[r.clone()])
                    }));
                }
                const BLOCK: usize = 256;
                let mut acc = [0u128; BLOCK];
                for (bi, ob) in o.chunks_mut(BLOCK).enumerate() {
                    let (base, len) = (bi * BLOCK, ob.len());
                    let acc = &mut acc[..len];
                    acc.fill(0);
                    // Products are below 2^122: fold every 32 terms (8 groups of 4).
                    for (g, group) in srcs.chunks(4).enumerate() {
                        for (c, p) in group {
                            for ((a, &x), &y) in acc.iter_mut().zip(&c[base..base + len]).zip(&p[base..base + len]) {
                                *a += x as u128 * y as u128;
                            }
                        }
                        if g % 8 == 7 {
                            acc.iter_mut().for_each(|a| *a = m.reduce_u128(*a) as u128);
                        }
                    }
                    for (x, a) in ob.iter_mut().zip(acc.iter()) {
                        *x = m.reduce_u128(*a);
                    }
                }
            });
        }
        let [c0, c1, c2] = polys;
        Ok(Ciphertext3 {
            c0,
            c1,
            c2,
            meta: CiphertextMeta { scale, ..first.meta },
        })
    }

    /// `sum_(t<=u) quad_pts[(t, u)] z_t z_u + sum_t lin_pts[t] z_t` as a degree-2 ciphertext,
    /// without materialising the tensor products: for each t, y_t = sum_(u>=t) D_tu z_u is
    /// formed and reduced, then z_t (x) y_t is accumulated (m(m+1) + 4m + 2m products per
    /// coefficient instead of 3 per pair plus the combination). `quad_pts` lists the pairs
    /// t <= u in row-major order (m(m+1)/2 of them); `lin_pts` has one plaintext per z. Equal mod
    /// q to the tensor products followed by [`plain_quadratic_combination`](Self::plain_quadratic_combination).
    pub fn rotation_quadratic_form(
        &self,
        z: &[&CiphertextOwned],
        quad_pts: &[&PlaintextRns],
        lin_pts: &[&PlaintextRns],
    ) -> Result<Ciphertext3, EvalError> {
        let first = *z.first().ok_or(EvalError::Invalid("empty quadratic form"))?;
        let m = z.len();
        if quad_pts.len() != m * (m + 1) / 2 || lin_pts.len() != m || m > 8 {
            return Err(EvalError::Invalid("one plaintext per pair t <= u and per input, at most 8 inputs"));
        }
        let level = first.meta.level;
        let scale = first.meta.scale * first.meta.scale * quad_pts[0].scale;
        for t in z {
            self.check_ct(t)?;
            self.check_pair(&first.meta, &t.meta)?;
        }
        for (p, want) in quad_pts
            .iter()
            .map(|p| (p, first.meta.scale * first.meta.scale))
            .chain(lin_pts.iter().map(|p| (p, first.meta.scale)))
        {
            if p.poly.limbs() < level + 1 || p.log_slots != first.meta.log_slots || !scales_match(want * p.scale, scale) {
                return Err(EvalError::ScaleMismatch {
                    left: want * p.scale,
                    right: scale,
                });
            }
        }
        let n = self.ectx.n();
        let meta = CiphertextMeta { scale, ..first.meta };
        Ok(degree2_by_limb(self.ectx, meta, |md, r, o0, o1, o2| {
            let zc: Vec<(&[u64], &[u64])> = z
                .iter()
                .map(|c| (&c.c0.as_slice()[r.clone()], &c.c1.as_slice()[r.clone()]))
                .collect();
            let qs: Vec<&[u64]> = quad_pts.iter().map(|p| &p.poly.as_slice()[r.clone()]).collect();
            let ls: Vec<&[u64]> = lin_pts.iter().map(|p| &p.poly.as_slice()[r.clone()]).collect();
            const BLOCK: usize = 128;
            let (mut a0, mut a1, mut a2) = ([0u128; BLOCK], [0u128; BLOCK], [0u128; BLOCK]);
            let (mut y0, mut y1) = ([0u128; BLOCK], [0u128; BLOCK]);
            let (mut r0, mut r1) = ([0u64; BLOCK], [0u64; BLOCK]);
            for base in (0..n).step_by(BLOCK) {
                let len = BLOCK.min(n - base);
                let w = base..base + len;
                a0[..len].fill(0);
                a1[..len].fill(0);
                a2[..len].fill(0);
                let mut pair = 0;
                for t in 0..m {
                    // y_t = sum_(u>=t) D_tu z_u: at most 8 products below 2^122 each.
                    y0[..len].fill(0);
                    y1[..len].fill(0);
                    for (u, &(zu0, zu1)) in zc.iter().enumerate().skip(t) {
                        let d = &qs[pair + u - t][w.clone()];
                        let (zu0, zu1) = (&zu0[w.clone()], &zu1[w.clone()]);
                        for i in 0..len {
                            y0[i] += d[i] as u128 * zu0[i] as u128;
                            y1[i] += d[i] as u128 * zu1[i] as u128;
                        }
                    }
                    pair += m - t;
                    for i in 0..len {
                        r0[i] = md.reduce_u128(y0[i]);
                        r1[i] = md.reduce_u128(y1[i]);
                    }
                    // z_t (x) y_t + L_t z_t: at most 3 m = 24 products below 2^122 per sum.
                    let (zt0, zt1) = (&zc[t].0[w.clone()], &zc[t].1[w.clone()]);
                    let l = &ls[t][w.clone()];
                    for i in 0..len {
                        let (c0, c1) = (zt0[i] as u128, zt1[i] as u128);
                        a0[i] += c0 * r0[i] as u128 + l[i] as u128 * c0;
                        a1[i] += c0 * r1[i] as u128 + c1 * r0[i] as u128 + l[i] as u128 * c1;
                        a2[i] += c1 * r1[i] as u128;
                    }
                }
                for i in 0..len {
                    o0[base + i] = md.reduce_u128(a0[i]);
                    o1[base + i] = md.reduce_u128(a1[i]);
                    o2[base + i] = md.reduce_u128(a2[i]);
                }
            }
        }))
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

    fn top_prime(&self, level: usize) -> Result<f64, EvalError> {
        if level == 0 {
            return Err(EvalError::OutOfLevels);
        }
        Ok(self.ectx.params().q()[level] as f64)
    }

    /// Encodes slot values as an NTT-form plaintext at `level` and `scale`.
    pub fn encode(&self, values: &[Complex], level: usize, scale: f64) -> Result<PlaintextRns, EvalError> {
        let n = self.ectx.n();
        if level > self.ectx.max_level() {
            return Err(EvalError::OutOfLevels);
        }
        let mut coeffs = vec![0f64; n];
        let mut scratch = vec![Complex::default(); clifhe_core::encode::encode_scratch_len(values.len())];
        clifhe_core::encode::encode(values, n, scale, &mut coeffs, &mut scratch)
            .map_err(|_| EvalError::Invalid("values cannot be encoded (slot count or magnitude)"))?;
        let mut poly = RnsPoly::zero(n, level + 1, Representation::Coefficient);
        poly.as_mut_slice().par_chunks_mut(n).enumerate().for_each(|(i, l)| {
            let m = &self.ectx.q_moduli()[i];
            for (o, c) in l.iter_mut().zip(&coeffs) {
                *o = m.reduce_f64_integer(*c);
            }
        });
        poly.ntt(self.ectx.q_tables())?;
        Ok(PlaintextRns {
            poly,
            scale,
            log_slots: values.len().trailing_zeros(),
        })
    }

    /// Real-valued [`Evaluator::encode`].
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

    /// sum_i cts[i] * pts[i] (point-wise in NTT form) in one pass, products summed in 128 bits
    /// and reduced once per coefficient (the inner sums of baby-step giant-step transforms).
    /// All ciphertexts share level, scale and slots, all plaintexts their scale; no rescale.
    pub fn mul_plain_sum(&self, terms: &[(&CiphertextOwned, &PlaintextRns)]) -> Result<CiphertextOwned, EvalError> {
        let (first, first_pt) = *terms.first().ok_or(EvalError::Invalid("empty plaintext product sum"))?;
        self.check_ct(first)?;
        let level = first.meta.level;
        for (c, p) in terms {
            self.check_ct(c)?;
            self.check_pair(&first.meta, &c.meta)?;
            if p.poly.limbs() < level + 1 {
                return Err(EvalError::LevelMismatch {
                    left: level,
                    right: p.poly.limbs() - 1,
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
                // products below 2^122: reduce every 32 terms
                let mut a0 = vec![0u128; n];
                let mut a1 = vec![0u128; n];
                for (t, (c, p)) in terms.iter().enumerate() {
                    let (x0, x1, y) = (
                        &c.c0.as_slice()[r.clone()],
                        &c.c1.as_slice()[r.clone()],
                        &p.poly.as_slice()[r.clone()],
                    );
                    for j in 0..n {
                        a0[j] += x0[j] as u128 * y[j] as u128;
                        a1[j] += x1[j] as u128 * y[j] as u128;
                    }
                    if t % 32 == 31 {
                        a0.iter_mut().chain(a1.iter_mut()).for_each(|v| *v = m.reduce_u128(*v) as u128);
                    }
                }
                for j in 0..n {
                    o0[j] = m.reduce_u128(a0[j]);
                    o1[j] = m.reduce_u128(a1[j]);
                }
            });
        Ok(out)
    }

    // ---- ciphertext multiplication --------------------------------------------------------

    /// Tensor product (c0, c1, c2) of two ciphertexts at the same level; no relinearization.
    pub fn tensor(&self, a: &CiphertextOwned, b: &CiphertextOwned) -> Result<Ciphertext3, EvalError> {
        self.check_ct(a)?;
        self.check_ct(b)?;
        if a.meta.params_id != b.meta.params_id {
            return Err(EvalError::ParamsMismatch);
        }
        if a.meta.level != b.meta.level {
            return Err(EvalError::LevelMismatch {
                left: a.meta.level,
                right: b.meta.level,
            });
        }
        if a.meta.log_slots != b.meta.log_slots {
            return Err(EvalError::SlotsMismatch);
        }
        let (a0, a1, b0, b1) = (a.c0.as_slice(), a.c1.as_slice(), b.c0.as_slice(), b.c1.as_slice());
        let meta = CiphertextMeta {
            scale: a.meta.scale * b.meta.scale,
            ..a.meta
        };
        Ok(degree2_by_limb(self.ectx, meta, |m, r, o0, o1, o2| {
            let (x0, x1, y0, y1) = (&a0[r.clone()], &a1[r.clone()], &b0[r.clone()], &b1[r]);
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
        let (d0, d1) = self.ectx.key_switch(&t.c2, &rlk.0)?;
        let m = self.moduli(t.meta.level);
        let mut c0 = t.c0.clone();
        let mut c1 = t.c1.clone();
        c0.add_assign(&d0, m)?;
        c1.add_assign(&d1, m)?;
        Ok(Ciphertext { c0, c1, meta: t.meta })
    }

    /// a * b with relinearization, not rescaled.
    pub fn mul_relin(&self, a: &CiphertextOwned, b: &CiphertextOwned, rlk: &RelinearizationKey) -> Result<CiphertextOwned, EvalError> {
        let t = self.tensor(a, b)?;
        self.relinearize(&t, rlk)
    }

    // ---- rescaling and levels -------------------------------------------------------------

    /// Divides by the top prime q_l (rounding), dropping one level: scale /= q_l.
    pub fn rescale(&self, a: &CiphertextOwned) -> Result<CiphertextOwned, EvalError> {
        self.check_ct(a)?;
        let level = a.meta.level;
        if level == 0 {
            return Err(EvalError::OutOfLevels);
        }
        let c0 = self.rescale_poly(&a.c0, level)?;
        let c1 = self.rescale_poly(&a.c1, level)?;
        let ql = self.ectx.params().q()[level] as f64;
        Ok(Ciphertext {
            c0,
            c1,
            meta: CiphertextMeta {
                level: level - 1,
                scale: a.meta.scale / ql,
                ..a.meta
            },
        })
    }

    fn rescale_poly(&self, p: &RnsPolyOwned, level: usize) -> Result<RnsPolyOwned, EvalError> {
        let n = self.ectx.n();
        let top = &self.ectx.q_moduli()[level];
        let mut last = p.limb(level).ok_or(EvalError::OutOfLevels)?.to_vec();
        self.ectx.q_tables()[level]
            .inverse(&mut last)
            .map_err(|_| EvalError::Representation)?;
        // Centred lift of the top residue so the division rounds to nearest.
        let centred: Vec<i64> = last.iter().map(|&x| top.center(x)).collect();
        let mut out = RnsPoly::zero(n, level, Representation::Ntt);
        let src = p.as_slice();
        out.as_mut_slice().par_chunks_mut(n).enumerate().try_for_each(|(i, o)| {
            let m = &self.ectx.q_moduli()[i];
            for (x, c) in o.iter_mut().zip(&centred) {
                *x = m.reduce_i64(*c);
            }
            self.ectx.q_tables()[i].forward(o).map_err(|_| EvalError::Representation)?;
            let inv = m.inv(m.reduce(top.value()));
            let inv_s = m.shoup(inv);
            for (x, s) in o.iter_mut().zip(&src[i * n..(i + 1) * n]) {
                *x = m.mul_shoup(m.sub(*s, *x), inv, inv_s);
            }
            Ok::<(), EvalError>(())
        })?;
        Ok(out)
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
        let mut out = a.clone();
        out.c0.truncate_limbs(level + 1)?;
        out.c1.truncate_limbs(level + 1)?;
        out.meta.level = level;
        Ok(out)
    }

    // ---- automorphisms --------------------------------------------------------------------

    fn permute(poly: &RnsPolyOwned, perm: &[u32]) -> RnsPolyOwned {
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
