//! Homomorphic linear transforms given by cyclic diagonals, evaluated baby-step giant-step
//! with hoisted baby rotations (Halevi and Shoup, CRYPTO 2014/2018; Bossuat et al., EUROCRYPT
//! 2021, "Efficient bootstrapping for approximate homomorphic encryption with non-sparse keys",
//! section 6).
//!
//! A group of merged butterfly stages has its diagonals at offsets `stride * t`,
//! `|t| < 2^g`. Writing `t = n1 * i + j` (`0 <= j < n1`, or centred on 0: [`BsgsPlan`]),
//! `sum_t D_t . rot(v, stride t) = sum_i rot( sum_j rot(D_t, -stride n1 i) . rot(v, stride j), stride n1 i )`:
//! `n1 - 1` rotations of the input share one decomposition (hoisting), and each giant step
//! costs one more ModUp and inner product; the giant steps' key switches are summed over Q P
//! and share one ModDown (`keyswitch::KeySwitchSum`, the lazy ModDown of Bossuat et al.). The
//! plaintexts `rot(D_t, -stride n1 i)` are encoded once, at the level the
//! transform runs at. The whole transform is one multiplicative level: products are summed
//! unreduced in scale and rescaled once at the end.

use super::dft::DiagonalMatrix;
use crate::context::EvalContext;
use crate::error::EvalError;
use crate::evaluator::{Evaluator, PlaintextRns};
use crate::galois::GaloisPermutation;
use crate::keys::{rotation_galois_element, GaloisKeys};
use crate::keyswitch::SecondOutput;
use clifhe_core::ciphertext::{Ciphertext, CiphertextOwned};
use clifhe_core::encode::Complex;
use clifhe_core::rns::{Representation, RnsPoly, RnsPolyOwned};
use rayon::prelude::*;
use std::collections::BTreeMap;

/// One encoded transform at a fixed level and plaintext scale.
#[derive(Debug)]
pub struct LinearTransform {
    level: usize,
    log_slots: u32,
    pt_scale: f64,
    /// Rotation steps of the babies (`stride * j` modulo the slot count, in the order of `j`).
    baby_steps: Vec<i64>,
    /// Per giant step: its rotation and the (baby index, plaintext) pairs it sums.
    giants: Vec<(i64, Vec<(usize, PlaintextRns)>)>,
}

/// Baby/giant split of a set of offsets (in `0..n`, multiples of `stride`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BsgsPlan {
    pub stride: usize,
    pub n1: usize,
    /// Baby steps `j` in `-(n1/2 - 1) ..= n1/2` instead of `0 .. n1`: a group whose few
    /// diagonals sit either side of 0 (one butterfly stage: offsets `-h, 0, h`) then needs no
    /// giant step at all.
    pub centred: bool,
    /// Signed multiples `t` of `stride` for every diagonal.
    pub ts: Vec<i64>,
}

impl BsgsPlan {
    /// Chooses the baby-step count (a power of two) and the baby range that minimise baby +
    /// giant rotations, then giant rotations: a giant step costs its own ModUp, while the
    /// babies share one (hoisting), so of two plans with as many key switches the one with
    /// fewer giants is cheaper.
    pub fn new(n: usize, offsets: &[usize]) -> Self {
        let stride = offsets
            .iter()
            .filter(|&&d| d != 0)
            .map(|&d| 1usize << d.trailing_zeros())
            .min()
            .unwrap_or(1);
        let span = (n / stride) as i64;
        let ts: Vec<i64> = offsets
            .iter()
            .map(|&d| {
                let t = (d / stride) as i64;
                if t > span / 2 {
                    t - span
                } else {
                    t
                }
            })
            .collect();
        let mut plan = Self {
            stride,
            n1: 1,
            centred: false,
            ts,
        };
        let mut best: Option<((usize, usize), usize, bool)> = None;
        let mut n1 = 1usize;
        while n1 as i64 <= span {
            for centred in [false, true] {
                if centred && n1 < 4 {
                    continue; // the same split as the plain one
                }
                (plan.n1, plan.centred) = (n1, centred);
                let (mut giants, mut babies) = (std::collections::BTreeSet::new(), std::collections::BTreeSet::new());
                for &t in &plan.ts {
                    let (i, j) = plan.split(t);
                    giants.insert(i);
                    babies.insert(j);
                }
                let giants = giants.iter().filter(|&&i| i != 0).count();
                let key = (babies.iter().filter(|&&j| j != 0).count() + giants, giants);
                if best.is_none_or(|(b, _, _)| key < b) {
                    best = Some((key, n1, centred));
                }
            }
            n1 *= 2;
        }
        if let Some((_, n1, centred)) = best {
            (plan.n1, plan.centred) = (n1, centred);
        }
        plan
    }

    /// `t = n1 i + j` with the baby multiple `j` in this plan's range: `(i, j)`.
    pub fn split(&self, t: i64) -> (i64, i64) {
        let n1 = self.n1 as i64;
        let i = if self.centred {
            (t + n1 / 2 - 1).div_euclid(n1)
        } else {
            t.div_euclid(n1)
        };
        (i, t - n1 * i)
    }

    /// Rotation steps this plan needs (baby steps and giant steps, nonzero), modulo `n`.
    pub fn rotations(&self, n: usize) -> Vec<i64> {
        let n1 = self.n1 as i64;
        let s = self.stride as i64;
        let mut out: Vec<i64> = self
            .ts
            .iter()
            .flat_map(|&t| {
                let (i, j) = self.split(t);
                [j * s, i * n1 * s]
            })
            .map(|r| r.rem_euclid(n as i64))
            .filter(|&r| r != 0)
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

fn rotate_vec(v: &[Complex], k: i64) -> Vec<Complex> {
    let n = v.len() as i64;
    (0..n).map(|p| v[(p + k).rem_euclid(n) as usize]).collect()
}

impl LinearTransform {
    /// Encodes `m` for ciphertexts at `level` with `1 << log_slots` slots; products carry
    /// `pt_scale` (the rescale at the end divides by `q_level`).
    pub fn new(ev: &Evaluator<'_>, m: &DiagonalMatrix, level: usize, log_slots: u32, pt_scale: f64) -> Result<Self, EvalError> {
        let n = m.dim();
        if n != 1usize << log_slots {
            return Err(EvalError::SlotsMismatch);
        }
        let offsets: Vec<usize> = m.diagonals().keys().copied().collect();
        let plan = BsgsPlan::new(n, &offsets);
        let n1 = plan.n1 as i64;
        let s = plan.stride as i64;
        let splits: Vec<(i64, i64)> = plan.ts.iter().map(|&t| plan.split(t)).collect();
        let baby_js: Vec<i64> = splits
            .iter()
            .map(|&(_, j)| j)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut by_giant: BTreeMap<i64, Vec<(usize, &Vec<Complex>)>> = BTreeMap::new();
        for (&(i, j), d) in splits.iter().zip(m.diagonals().values()) {
            let baby = baby_js.binary_search(&j).map_err(|_| EvalError::Invalid("baby step missing"))?;
            by_giant.entry(i).or_default().push((baby, d));
        }
        // modulo the slot count, as `BsgsPlan::rotations` lists them (with sparse slots a step
        // and the step plus the slot count are different Galois elements)
        let baby_steps: Vec<i64> = baby_js.iter().map(|j| (j * s).rem_euclid(n as i64)).collect();
        let giants = by_giant
            .into_par_iter()
            .map(|(i, ds)| {
                let g = i * n1 * s;
                let pts = ds
                    .into_iter()
                    .map(|(j, d)| Ok((j, ev.encode(&rotate_vec(d, -g), level, pt_scale)?)))
                    .collect::<Result<Vec<_>, EvalError>>()?;
                Ok((g.rem_euclid(n as i64), pts))
            })
            .collect::<Result<Vec<_>, EvalError>>()?;
        Ok(Self {
            level,
            log_slots,
            pt_scale,
            baby_steps,
            giants,
        })
    }

    pub fn level(&self) -> usize {
        self.level
    }
    pub fn pt_scale(&self) -> f64 {
        self.pt_scale
    }

    /// Bytes of the encoded diagonals.
    pub fn memory_bytes(&self) -> usize {
        self.giants
            .iter()
            .flat_map(|(_, v)| v.iter())
            .map(|(_, p)| p.poly.as_slice().len() * 8)
            .sum()
    }

    /// Number of key switches one application costs.
    pub fn rotations(&self) -> usize {
        let used: std::collections::BTreeSet<usize> = self.giants.iter().flat_map(|(_, v)| v.iter().map(|(j, _)| *j)).collect();
        used.iter().filter(|&&j| self.baby_steps[j] != 0).count() + self.giants.iter().filter(|(g, _)| *g != 0).count()
    }

    /// `M ct`, rescaled once: output level `level - 1`, scale `ct.scale * pt_scale / q_level`.
    pub fn apply(&self, ev: &Evaluator<'_>, ct: &CiphertextOwned, keys: &GaloisKeys) -> Result<CiphertextOwned, EvalError> {
        if ct.meta.level != self.level {
            return Err(EvalError::LevelMismatch {
                left: ct.meta.level,
                right: self.level,
            });
        }
        if ct.meta.log_slots != self.log_slots {
            return Err(EvalError::SlotsMismatch);
        }
        let used: std::collections::BTreeSet<usize> = self.giants.iter().flat_map(|(_, v)| v.iter().map(|(j, _)| *j)).collect();
        let steps: Vec<i64> = used.iter().map(|&j| self.baby_steps[j]).collect();
        let rotated = ev.rotate_hoisted(ct, &steps, keys)?;
        let mut babies: Vec<Option<&CiphertextOwned>> = vec![None; self.baby_steps.len()];
        for (j, c) in used.iter().zip(&rotated) {
            babies[*j] = Some(c);
        }
        // Giant steps: sum_i rot(inner_i, g_i). The rotations' key switches are summed over
        // Q P and brought down once (`KeySwitchSum`: one ModDown per transform, not one per
        // giant step); their c0 halves, permuted, are summed over Q beside.
        let ectx = ev.context();
        let n = ectx.n();
        let mut meta = None;
        let mut c0 = RnsPoly::zero(n, self.level + 1, Representation::Ntt);
        let mut c1 = RnsPoly::zero(n, self.level + 1, Representation::Ntt);
        ectx.with_switch_scratch(|scratch| -> Result<(), EvalError> {
            let mut switched = ectx.key_switch_sum(self.level, scratch)?;
            for (g, pts) in &self.giants {
                let terms: Vec<(&CiphertextOwned, &PlaintextRns)> = pts
                    .iter()
                    .map(|(j, p)| babies[*j].map(|c| (c, p)).ok_or(EvalError::Invalid("baby step missing")))
                    .collect::<Result<_, _>>()?;
                let inner = ev.mul_plain_sum(&terms)?;
                meta.get_or_insert(inner.meta);
                if *g == 0 {
                    add_permuted(ectx, &mut c0, &inner.c0, None);
                    add_permuted(ectx, &mut c1, &inner.c1, None);
                } else {
                    let gal = rotation_galois_element(*g, n)?;
                    let perm = ectx.galois_permutation(gal)?;
                    add_permuted(ectx, &mut c0, &inner.c0, Some(&perm));
                    switched.add(&inner.c1, Some(&perm), keys.get(gal)?)?;
                }
            }
            if switched.terms() > 0 {
                switched.finish_into(c0.as_mut_slice(), c1.as_mut_slice(), SecondOutput::Add)?;
            }
            Ok(())
        })?;
        let meta = meta.ok_or(EvalError::Invalid("empty linear transform"))?;
        ev.rescale_owned(Ciphertext { c0, c1, meta })
    }
}

/// dst += src, or dst += src permuted by `perm` (a Galois permutation of NTT slots), limb by
/// limb.
fn add_permuted(ectx: &EvalContext, dst: &mut RnsPolyOwned, src: &RnsPolyOwned, perm: Option<&GaloisPermutation>) {
    let n = ectx.n();
    dst.as_mut_slice()
        .par_chunks_mut(n)
        .zip(src.as_slice().par_chunks(n))
        .zip(ectx.q_moduli())
        .for_each(|((d, s), m)| match perm {
            Some(p) => p.gather_add(d, s, m),
            None => d.iter_mut().zip(s).for_each(|(o, x)| *o = m.add(*o, *x)),
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn giants_and_babies(p: &BsgsPlan) -> (usize, usize) {
        let mut g = std::collections::BTreeSet::new();
        let mut b = std::collections::BTreeSet::new();
        for &t in &p.ts {
            let (i, j) = p.split(t);
            assert_eq!(p.n1 as i64 * i + j, t);
            if p.centred {
                assert!(-(p.n1 as i64 / 2 - 1) <= j && j <= p.n1 as i64 / 2, "{j}");
            } else {
                assert!((0..p.n1 as i64).contains(&j));
            }
            g.insert(i);
            b.insert(j);
        }
        (g.into_iter().filter(|&i| i != 0).count(), b.into_iter().filter(|&j| j != 0).count())
    }

    #[test]
    fn one_butterfly_stage_needs_no_giant_step() {
        // offsets -h, 0, h on 16 slots: two hoisted babies (one ModUp), not two giants
        for h in [1usize, 2, 4] {
            let p = BsgsPlan::new(16, &[0, h, 16 - h]);
            assert!(p.centred);
            assert_eq!(giants_and_babies(&p), (0, 2));
            let mut want = vec![h as i64, 16 - h as i64];
            want.sort_unstable();
            assert_eq!(p.rotations(16), want);
        }
    }

    #[test]
    fn plans_split_every_offset_and_prefer_fewer_giants() {
        // 63 diagonals at stride 1 (five merged stages): 7 babies and 7 giants either way
        let offs: Vec<usize> = (0..32).chain(1024 - 31..1024).collect();
        let p = BsgsPlan::new(1024, &offs);
        assert_eq!((p.n1, giants_and_babies(&p)), (8, (7, 7)));
        // 32 diagonals at stride 1024 of 2^15: 7 babies and 4 giants, not 3 and 8
        let offs: Vec<usize> = (-15i64..=16).map(|t| (t * 1024).rem_euclid(1 << 15) as usize).collect();
        let p = BsgsPlan::new(1 << 15, &offs);
        assert_eq!(giants_and_babies(&p), (4, 7));
    }
}
