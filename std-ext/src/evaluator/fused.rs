//! Fused multiply-accumulate kernels of the GNN layers: linear, integer and quadratic
//! combinations computed in one pass with one reduction per coefficient.

use super::{degree2_by_limb, scales_match, Ciphertext3, PlaintextRns};
use crate::error::EvalError;
use clifhe_core::arith::Montgomery;
use clifhe_core::ciphertext::{Ciphertext, CiphertextMeta, CiphertextOwned};
use clifhe_core::lincomb::{LinearCombination, MAX_TERMS};
use clifhe_core::rns::{Representation, RnsPoly, RnsPolyOwned};
use rayon::prelude::*;

/// Coefficients per chunk of [`Evaluator::rotation_quadratic_form`]: the chunk's 8 inputs (32
/// KiB) stay in L1/L2 over its passes, and its accumulators take 12 KiB.
const QUAD_FORM_CHUNK: usize = 256;

impl<'a> super::Evaluator<'a> {
    /// `sum_i round(c_i * const_scale) * cts[i]` in one pass (no rescale): the result's scale is
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

    /// `sum_i k_i * cts[i]` over the primes of `level`, for integer-valued k_i of any size:
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
                fn half(ct: &CiphertextOwned, pi: usize, i: usize, n: usize) -> &[u64] {
                    &(if pi == 0 { &ct.c0 } else { &ct.c1 }).as_slice()[i * n..(i + 1) * n]
                }
                let limb = |ct| half(ct, pi, i, n);
                // Up to eight terms: core's constant-coefficient kernel (AVX-512 IFMA), whose
                // output (below 2q + 2^25, so below 3q for q > 2^25) two conditional
                // subtractions make canonical: the words of the 128-bit sums below.
                if terms.len() <= MAX_TERMS && m.value() > 1 << 25 {
                    let coeffs: Vec<u64> = terms.iter().map(|(_, k)| m.reduce_f64_integer(*k)).collect();
                    let rows: Vec<&[u64]> = terms.iter().map(|(ct, _)| limb(ct)).collect();
                    let applied =
                        LinearCombination::new(m, &coeffs, &vec![m.value(); terms.len()]).is_some_and(|lc| lc.apply_rows(&rows, n, 0, o));
                    if applied {
                        let q = m.value();
                        o.iter_mut().for_each(|x| {
                            *x = (*x).min(x.wrapping_sub(q));
                            *x = (*x).min(x.wrapping_sub(q));
                        });
                        return;
                    }
                }
                let mut acc = vec![0u128; n];
                for (t, (ct, k)) in terms.iter().enumerate() {
                    let kk = m.reduce_f64_integer(*k) as u128;
                    for (a, x) in acc.iter_mut().zip(limb(ct)) {
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

    /// `sum_i c_i * quad[i] + sum_j d_j * lin[j]` as a degree-2 ciphertext, constants at
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
    /// formed and reduced with L_t folded in, then z_t (x) y_t is accumulated (m(m+1) + 4m
    /// products and 2m + 3 Montgomery reductions per coefficient, all in registers, instead of 3
    /// products per pair plus the combination). Moduli are below 2^61 (`MAX_MODULUS_BITS`), as
    /// the reductions' bounds need. `quad_pts` lists the pairs
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
            // Montgomery reductions (R = 2^64): s_t = REDC(y_t0 + L_t) = (y_t0 + L_t) R^-1 and
            // r_t = REDC(y_t1) = y_t1 R^-1 carry the same R^-1, so every product below does,
            // and the outputs REDC(a) = a R^-2 are multiplied by R^2 once. Bounds for q < 2^61
            // and canonical inputs: y_t0 + L_t < 8 q^2 + q < q 2^64, so s_t, r_t < 2q; each a
            // sums at most 2m = 16 products below 2 q^2, below 2^127, so REDC(a) < 5q fits 64
            // bits, and the Shoup product takes any 64-bit value.
            let mont = Montgomery::new(md);
            let r2 = md.mul(md.r_mod(), md.r_mod());
            let r2s = md.shoup(r2);
            // Chunks of coefficients, each in m passes (one per t): a pass reads only the
            // (m - t) constants D_tu and L_t from memory, next to the chunk's inputs (which
            // stay in cache across the passes), and carries the three accumulators in a
            // buffer. One pass over all 44 constants at once (as many memory streams as the
            // prefetchers can follow, and more) measured slower.
            let mut acc = [[0u128; 3]; QUAD_FORM_CHUNK];
            for start in (0..n).step_by(QUAD_FORM_CHUNK) {
                let end = (start + QUAD_FORM_CHUNK).min(n);
                let acc = &mut acc[..end - start];
                acc.fill([0; 3]);
                let mut pair = 0;
                for (t, &(zt0, zt1)) in zc.iter().enumerate() {
                    // y_t = sum_(u>=t) D_tu z_u, L_t folded into its first half:
                    // z_t (x) y_t + L_t z_t = (c0 s, c0 r + c1 s, c1 r) with s = y_t0 + L_t.
                    let ds = &qs[pair..pair + m - t];
                    pair += m - t;
                    let (lt, zt0, zt1) = (&ls[t][start..end], &zt0[start..end], &zt1[start..end]);
                    for (k, a) in acc.iter_mut().enumerate() {
                        let i = start + k;
                        let (mut y0, mut y1) = (lt[k] as u128, 0u128);
                        for (d, &(zu0, zu1)) in ds.iter().zip(&zc[t..]) {
                            let d = d[i] as u128;
                            y0 += d * zu0[i] as u128;
                            y1 += d * zu1[i] as u128;
                        }
                        let (s, r) = (mont.reduce(y0) as u128, mont.reduce(y1) as u128);
                        let (c0, c1) = (zt0[k] as u128, zt1[k] as u128);
                        a[0] += c0 * s;
                        a[1] += c0 * r + c1 * s;
                        a[2] += c1 * r;
                    }
                }
                for (k, a) in acc.iter().enumerate() {
                    let i = start + k;
                    o0[i] = md.mul_shoup(mont.reduce(a[0]), r2, r2s);
                    o1[i] = md.mul_shoup(mont.reduce(a[1]), r2, r2s);
                    o2[i] = md.mul_shoup(mont.reduce(a[2]), r2, r2s);
                }
            }
        }))
    }
}
