//! The key-switching engine: ModUp, the inner product with the key and ModDown, writing into
//! caller-owned buffers (tfhe-rs's `*_scratch` discipline: the caller sizes a
//! [`KeySwitchScratch`] once and every switch reuses it, so the hot path allocates nothing).
//!
//! Work is split by target prime. For every prime of Q_l * P a worker produces the digit
//! extensions of that one limb (a basis conversion and a lazy forward NTT each, or a gather
//! from a hoisted decomposition) into its own buffer, then takes the inner product with the
//! key (`crate::sum_of_products`: blocks whose 128-bit accumulators stay in L1, or eight lanes
//! of AVX-512 IFMA, the same words).
//! ModDown (`mod_down`) then brings both halves back to Q_l and adds them into the caller's
//! polynomials; the buffers and their pool are in `scratch`.

use super::mod_down::SecondOutput;
use super::scratch::{for_each_limb_group, KeySwitchScratch, LimbCost};
use super::{Decomposed, LevelPrecomp, SwitchingKey};
use crate::context::EvalContext;
use crate::error::EvalError;
use crate::galois::GaloisPermutation;
use crate::sum_of_products::sum_of_products;
use clifhe_core::keys::expand_public_limb;
use clifhe_core::rns::{Representation, RnsPoly, RnsPolyOwned};
use clifhe_core::sample::SeedPurpose;
use rayon::prelude::*;

/// dst = src, or dst permuted by `perm` (a Galois permutation of NTT slots).
fn copy_permuted(dst: &mut [u64], src: &[u64], perm: Option<&GaloisPermutation>) {
    match perm {
        Some(p) => p.gather(dst, src),
        None => dst.copy_from_slice(src),
    }
}

/// Centres each digit's scaled limbs (`BasisConverter::centre_scaled`) in `coeff`, which holds
/// the digits' limbs one after another from q_0 (`digit_ranges`): the digits side by side,
/// split in halves with `rayon::join` (no allocation on the key switch's path).
fn centre_digits(digits: &[(usize, usize, super::basis::BasisConverter)], coeff: &mut [u64], n: usize) -> Result<(), EvalError> {
    match digits {
        [] => Ok(()),
        [(_, _, conv)] => {
            conv.centre_scaled(n, coeff);
            Ok(())
        }
        _ => {
            let (lo, hi) = digits.split_at(digits.len() / 2);
            let first = lo.first().map_or(0, |d| d.0);
            let at = hi.first().map_or(0, |d| d.0 - first) * n;
            let (a, b) = coeff.split_at_mut_checked(at).ok_or(EvalError::Representation)?;
            let (x, y) = rayon::join(|| centre_digits(lo, a, n), || centre_digits(hi, b, n));
            x.and(y)
        }
    }
}

impl EvalContext {
    /// Key switch of `c` (NTT form at level l), optionally through the Galois permutation
    /// `perm` of its NTT slots: out0 += d0 and out1 += d1 or out1 = d1 (`second`), where
    /// d0 + d1 s = perm(c) s' + small and `key` switches s' to s. `out0` and `out1` hold the
    /// l + 1 limbs of level l. No allocation: every buffer comes from `scratch`.
    #[allow(clippy::too_many_arguments)]
    pub fn key_switch_into<S: AsRef<[u64]> + Sync>(
        &self,
        c: &RnsPoly<S>,
        perm: Option<&GaloisPermutation>,
        key: &SwitchingKey,
        scratch: &mut KeySwitchScratch,
        out0: &mut [u64],
        out1: &mut [u64],
        second: SecondOutput,
    ) -> Result<(), EvalError> {
        if c.representation() != Representation::Ntt {
            return Err(EvalError::Representation);
        }
        let level = c.limbs().checked_sub(1).ok_or(EvalError::Representation)?;
        let pre = self.check_switch(key, level, scratch, out0, out1, perm)?;
        self.products_into_scratch(pre, level, c, perm, key, scratch, false)?;
        let words = scratch.worker_words;
        self.mod_down_into(pre, level, &mut scratch.acc, &mut scratch.workers, words, out0, out1, second)
    }

    /// ModUp of `c` (level `level`, through `perm`) and its inner products with `key` into
    /// the scratch's two accumulators over Q_l P (added to what they hold with `add_to_acc`).
    /// The caller has checked the key, the level and the permutation.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn products_into_scratch<S: AsRef<[u64]> + Sync>(
        &self,
        pre: &LevelPrecomp,
        level: usize,
        c: &RnsPoly<S>,
        perm: Option<&GaloisPermutation>,
        key: &SwitchingKey,
        scratch: &mut KeySwitchScratch,
        add_to_acc: bool,
    ) -> Result<(), EvalError> {
        let n = self.n();
        let nq = level + 1;
        self.mod_up_inputs(pre, c, perm, &mut scratch.coeff[..nq * n])?;
        let coeff = &scratch.coeff[..nq * n];
        let fill = |pos: usize, ext: &mut [u64]| -> Result<(), EvalError> {
            for (j, e) in ext.chunks_exact_mut(n).enumerate().take(pre.mod_up.len()) {
                self.extend_limb(pre, j, pos, nq, coeff, c.as_slice(), perm, e);
            }
            Ok(())
        };
        let words = scratch.worker_words;
        self.switch_products(
            pre,
            level,
            key,
            &mut scratch.acc,
            &mut scratch.workers,
            words,
            fill,
            true,
            add_to_acc,
        )
    }

    /// The inner products of a hoisted decomposition through `perm` with `key` into the
    /// scratch's accumulators over Q_l P (added to what they hold with `add_to_acc`). The
    /// caller has checked the key, the level and the permutation.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn decomposed_products_into_scratch(
        &self,
        pre: &LevelPrecomp,
        dec: &Decomposed,
        perm: Option<&GaloisPermutation>,
        key: &SwitchingKey,
        scratch: &mut KeySwitchScratch,
        add_to_acc: bool,
    ) -> Result<(), EvalError> {
        if dec.digits.len() != pre.mod_up.len() {
            return Err(EvalError::KeyShape);
        }
        let n = self.n();
        let fill = |pos: usize, ext: &mut [u64]| -> Result<(), EvalError> {
            for (d, e) in dec.digits.iter().zip(ext.chunks_exact_mut(n)) {
                let s = &d.as_slice()[pos * n..(pos + 1) * n];
                copy_permuted(e, s, perm);
            }
            Ok(())
        };
        let words = scratch.worker_words;
        self.switch_products(
            pre,
            dec.level,
            key,
            &mut scratch.acc,
            &mut scratch.workers,
            words,
            fill,
            false,
            add_to_acc,
        )
    }

    /// The key switch of a hoisted decomposition through `perm` (see
    /// [`EvalContext::key_switch_into`]; same outputs).
    #[allow(clippy::too_many_arguments)]
    pub fn key_switch_decomposed_into(
        &self,
        dec: &Decomposed,
        perm: Option<&GaloisPermutation>,
        key: &SwitchingKey,
        scratch: &mut KeySwitchScratch,
        out0: &mut [u64],
        out1: &mut [u64],
        second: SecondOutput,
    ) -> Result<(), EvalError> {
        let level = dec.level;
        let pre = self.check_switch(key, level, scratch, out0, out1, perm)?;
        self.decomposed_products_into_scratch(pre, dec, perm, key, scratch, false)?;
        let words = scratch.worker_words;
        self.mod_down_into(pre, level, &mut scratch.acc, &mut scratch.workers, words, out0, out1, second)
    }

    /// ModUp of `c` (NTT form, level l = c.limbs() - 1): per digit, its extension to
    /// Q_l * P in NTT form (limbs q_0..q_l, then p_0..p_{k-1}), lazily reduced (below 4q; the
    /// inner product reduces). Buffers other than the output come from `scratch`.
    pub fn decompose_with<S: AsRef<[u64]> + Sync>(&self, c: &RnsPoly<S>, scratch: &mut KeySwitchScratch) -> Result<Decomposed, EvalError> {
        if c.representation() != Representation::Ntt {
            return Err(EvalError::Representation);
        }
        scratch.check(self)?;
        let level = c.limbs().checked_sub(1).ok_or(EvalError::Representation)?;
        let pre = self.level_precomp(level)?;
        let n = self.n();
        let nq = level + 1;
        let limbs = nq + self.params().p().len();
        self.mod_up_inputs(pre, c, None, &mut scratch.coeff[..nq * n])?;
        let coeff = &scratch.coeff[..nq * n];
        let mut digits: Vec<RnsPolyOwned> = (0..pre.mod_up.len())
            .map(|_| RnsPoly::zero(n, limbs, Representation::Ntt))
            .collect();
        digits
            .par_iter_mut()
            .enumerate()
            .flat_map(|(j, d)| d.as_mut_slice().par_chunks_mut(n).enumerate().map(move |(pos, l)| (j, pos, l)))
            .for_each(|(j, pos, l)| self.extend_limb(pre, j, pos, nq, coeff, c.as_slice(), None, l));
        Ok(Decomposed { level, digits })
    }

    /// The first half of ModUp into `coeff`: perm(c) in coefficient form, each digit's limbs
    /// scaled by (Q_j / q_i)^-1 and centred for the basis conversion, so that its extension is
    /// the digit in (-Q_j/2, Q_j/2]. (An uncentred digit, in [0, Q_j), has mean Q_j / 2: its
    /// product with the key's error adds (Q_j / 2P) times a walk over the coefficients to the
    /// switch's error, which lands on a few slots; at N=2^12 with one 60-bit special prime it
    /// made one slot's error 40 times the RMS.)
    fn mod_up_inputs<S: AsRef<[u64]> + Sync>(
        &self,
        pre: &LevelPrecomp,
        c: &RnsPoly<S>,
        perm: Option<&GaloisPermutation>,
        coeff: &mut [u64],
    ) -> Result<(), EvalError> {
        let n = self.n();
        let src = c.as_slice();
        // The digit of limb i: the last whose first prime is at most i.
        let digit_of = |i: usize| pre.mod_up.partition_point(|(start, _, _)| *start <= i).saturating_sub(1);
        coeff.par_chunks_mut(n).enumerate().try_for_each(|(i, l)| {
            let s = &src[i * n..(i + 1) * n];
            copy_permuted(l, s, perm);
            self.q_tables()[i].inverse(l).map_err(|_| EvalError::Representation)?;
            let (start, _, conv) = &pre.mod_up[digit_of(i)];
            conv.scale_input_limb(i - start, l);
            Ok::<(), EvalError>(())
        })?;
        centre_digits(&pre.mod_up, coeff, n)
    }

    /// Digit `j`'s extension at limb `pos` of Q_l * P, NTT form below 4q: the (permuted) input
    /// limb itself for the digit's own primes, else the centred basis conversion of the scaled
    /// digit and a lazy forward NTT.
    #[allow(clippy::too_many_arguments)]
    fn extend_limb(
        &self,
        pre: &LevelPrecomp,
        j: usize,
        pos: usize,
        nq: usize,
        coeff: &[u64],
        src: &[u64],
        perm: Option<&GaloisPermutation>,
        e: &mut [u64],
    ) {
        let n = self.n();
        let (start, end, conv) = &pre.mod_up[j];
        if (*start..*end).contains(&pos) {
            let s = &src[pos * n..(pos + 1) * n];
            copy_permuted(e, s, perm);
        } else {
            // Target index inside this digit's converter: q's before the digit, q's after it,
            // then the P primes.
            let ti = if pos < *start { pos } else { pos - (end - start) };
            conv.convert_scaled_to(n, &coeff[start * n..end * n], ti, e);
            self.qp_table(pos, nq).forward_lazy(e);
        }
    }

    fn check_switch(
        &self,
        key: &SwitchingKey,
        level: usize,
        scratch: &KeySwitchScratch,
        out0: &[u64],
        out1: &[u64],
        perm: Option<&GaloisPermutation>,
    ) -> Result<&LevelPrecomp, EvalError> {
        let pre = self.check_key(key, level, scratch, perm)?;
        self.check_outputs(level, out0, out1)?;
        Ok(pre)
    }

    /// What every switch at `level` checks before ModUp: the key's parameter set and digits,
    /// the scratch's parameter set, the permutation's length.
    pub(super) fn check_key(
        &self,
        key: &SwitchingKey,
        level: usize,
        scratch: &KeySwitchScratch,
        perm: Option<&GaloisPermutation>,
    ) -> Result<&LevelPrecomp, EvalError> {
        if key.params_id != self.params().id() {
            return Err(EvalError::ParamsMismatch);
        }
        scratch.check(self)?;
        let pre = self.level_precomp(level)?;
        if key.b.len() < pre.mod_up.len() {
            return Err(EvalError::KeyShape);
        }
        if perm.is_some_and(|p| p.n() != self.n()) {
            return Err(EvalError::Invalid("Galois permutation has the wrong length"));
        }
        Ok(pre)
    }

    /// The outputs of a switch at `level` hold its limbs.
    pub(super) fn check_outputs(&self, level: usize, out0: &[u64], out1: &[u64]) -> Result<(), EvalError> {
        let words = (level + 1) * self.n();
        if out0.len() != words || out1.len() != words {
            return Err(EvalError::Invalid("key-switch outputs must hold the input's limbs"));
        }
        Ok(())
    }

    /// The NTT table of limb `pos` of Q_l * P (q_0..q_l, then the P primes).
    fn qp_table(&self, pos: usize, nq: usize) -> &clifhe_core::ntt::NttTableOwned {
        if pos < nq {
            &self.q_tables()[pos]
        } else {
            &self.p_tables()[pos - nq]
        }
    }

    /// For every limb of Q_l * P: its digit extensions (`fill(pos, ext)`: converted and
    /// transformed when `extends`, else copied from a hoisted decomposition), then the inner
    /// product with the key into the two halves of `acc`.
    #[allow(clippy::too_many_arguments)]
    fn switch_products<F>(
        &self,
        pre: &LevelPrecomp,
        level: usize,
        key: &SwitchingKey,
        acc: &mut [u64],
        workers: &mut [u64],
        worker_words: usize,
        fill: F,
        extends: bool,
        add_to_acc: bool,
    ) -> Result<(), EvalError>
    where
        F: Fn(usize, &mut [u64]) -> Result<(), EvalError> + Sync,
    {
        let n = self.n();
        let nq = level + 1;
        let np = self.params().p().len();
        let nq_full = self.params().q().len();
        let limbs = nq + np;
        let digits = pre.mod_up.len();
        let qp = self.qp_moduli();
        let half = acc.len() / 2;
        let (acc0, acc1) = acc.split_at_mut(half);
        let compact = key.is_compact();
        // Work per limb (`LimbCost`): the inner product (and the key's expansion when compact)
        // per digit, and where `fill` extends, each foreign digit's conversion and forward
        // NTT, else each digit's gather.
        let cost = |pos: usize| -> u64 {
            let limb = LimbCost::of(qp[if pos < nq { pos } else { nq_full + pos - nq }].value());
            let expansion = if compact { limb.key_expansion_digit() } else { 0 };
            let mut c = (limb.inner_product_digit() + expansion) * digits as u64;
            if extends {
                c += pre
                    .mod_up
                    .iter()
                    .filter(|(start, end, _)| !(*start..*end).contains(&pos))
                    .map(|(start, end, _)| limb.conversion(end - start) + limb.ntt())
                    .sum::<u64>();
            } else {
                c += limb.gather_digit() * digits as u64;
            }
            c
        };
        let group = |first: usize, a0: &mut [u64], a1: &mut [u64], buf: &mut [u64]| -> Result<(), EvalError> {
            let (ext, rest) = buf.split_at_mut(digits * n);
            let key_a = &mut rest[..digits * n];
            for (k, (o0, o1)) in a0.chunks_exact_mut(n).zip(a1.chunks_exact_mut(n)).enumerate() {
                let pos = first + k;
                let kidx = if pos < nq { pos } else { nq_full + pos - nq };
                fill(pos, ext)?;
                if compact {
                    for (j, a) in key_a.chunks_exact_mut(n).enumerate() {
                        expand_public_limb(&key.a_seed, SeedPurpose::KeySwitchA, ((j as u32) << 8) | kidx as u32, &qp[kidx], a);
                    }
                }
                let key_a = &*key_a;
                let ext = &*ext;
                sum_of_products(
                    &qp[kidx],
                    digits,
                    |j| &ext[j * n..(j + 1) * n],
                    |j| &key.b[j].as_slice()[kidx * n..(kidx + 1) * n],
                    |j| {
                        if compact {
                            &key_a[j * n..(j + 1) * n]
                        } else {
                            &key.a[j].as_slice()[kidx * n..(kidx + 1) * n]
                        }
                    },
                    o0,
                    o1,
                    add_to_acc,
                );
            }
            Ok(())
        };
        let outs = (&mut acc0[..limbs * n], &mut acc1[..limbs * n]);
        for_each_limb_group(n, 0, outs, (workers, worker_words), &cost, &group)
    }
}
