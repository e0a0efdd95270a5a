//! Hybrid key switching with special primes P (Han and Ki 2020, "Better bootstrapping for
//! approximate homomorphic encryption", section 3; the "GHS + RNS digits" method that Lattigo
//! and OpenFHE call HYBRID).
//!
//! The ciphertext primes q_0..q_L are cut into digits of alpha = |P| consecutive primes. A
//! switching key from s' to s holds, for every digit j, the pair over Q*P (NTT form)
//!   b_j = -a_j s + e_j + P * g_j * s',   a_j uniform (from a public seed),
//! where g_j is the CRT gadget: g_j = 1 mod the primes of digit j, 0 mod the other q's. To
//! switch c (under s') the residues of c for digit j are extended to all of Q_l*P (ModUp, a
//! fast basis conversion), multiplied by the key and summed, then divided by P (ModDown):
//!   sum_j ext_j * (b_j, a_j) = (P c s' - P (a s) ..., ...)  ->  (c s' - a s + small, a) / ...
//! The decomposition of c can be computed once and reused for many Galois keys (hoisting,
//! Halevi and Shoup 2018): an automorphism applied to the extended digits in the NTT domain is
//! a permutation of slots, so rotations by several steps share one ModUp.

pub mod basis;

use crate::context::EvalContext;
use crate::error::EvalError;
use basis::BasisConverter;
use clifhe_core::arith::Modulus;
use clifhe_core::keys::expand_public_limb;
use clifhe_core::rns::{Representation, RnsPoly, RnsPolyOwned};
use clifhe_core::sample::{fresh_seed, sample_cbd, SeedPurpose, SEED_BYTES};
use clifhe_core::SecretKey;
use rand_core::{CryptoRng, RngCore};
use rayon::prelude::*;
use zeroize::Zeroizing;

/// Per-level constants for ModUp (one converter per digit) and ModDown (P -> Q_l).
#[derive(Debug)]
pub(crate) struct LevelPrecomp {
    /// For each digit j intersecting q_0..q_l: (first prime, end prime, converter digit -> others).
    pub mod_up: Vec<(usize, usize, BasisConverter)>,
    pub mod_down: BasisConverter,
    /// P^-1 mod q_i and its Shoup quotient, i <= l.
    pub p_inv: Vec<(u64, u64)>,
}

impl LevelPrecomp {
    pub fn new(q: &[Modulus], p: &[Modulus], level: usize) -> Self {
        let alpha = p.len().max(1);
        let ql = &q[..=level];
        let mut mod_up = Vec::new();
        let mut start = 0;
        while start <= level {
            let end = (start + alpha).min(level + 1);
            let targets: Vec<Modulus> = ql[..start].iter().chain(&ql[end..]).chain(p).copied().collect();
            mod_up.push((start, end, BasisConverter::new(&ql[start..end], &targets)));
            start = end;
        }
        let mod_down = BasisConverter::new(p, ql);
        let p_inv = ql
            .iter()
            .map(|qi| {
                let prod = p.iter().fold(1u64, |acc, pk| qi.mul(acc, qi.reduce(pk.value())));
                let inv = qi.inv(prod);
                (inv, qi.shoup(inv))
            })
            .collect();
        Self { mod_up, mod_down, p_inv }
    }
}

/// A key switching from some s' to s. `b` and `a` have one polynomial per digit over all of
/// Q*P (limbs q_0..q_L then p_0..p_{k-1}), NTT form. `a` is regenerable from `a_seed`.
pub struct SwitchingKey {
    pub(crate) params_id: u16,
    pub(crate) a_seed: [u8; SEED_BYTES],
    pub(crate) b: Vec<RnsPolyOwned>,
    pub(crate) a: Vec<RnsPolyOwned>,
}

impl core::fmt::Debug for SwitchingKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SwitchingKey")
            .field("params_id", &self.params_id)
            .field("digits", &self.b.len())
            .finish_non_exhaustive()
    }
}

impl SwitchingKey {
    pub fn digits(&self) -> usize {
        self.b.len()
    }
    pub fn params_id(&self) -> u16 {
        self.params_id
    }
    pub fn a_seed(&self) -> &[u8; SEED_BYTES] {
        &self.a_seed
    }
    /// The `b` polynomials (what is stored besides the seed).
    pub fn b_polys(&self) -> &[RnsPolyOwned] {
        &self.b
    }
    /// Drops the expanded `a` halves: the key then holds only its seed and `b` (half the
    /// memory), and every key switch regenerates the `a` limb it needs from the seed, inside
    /// the per-prime loop (about 5-10% more time per switch). Bootstrapping keys are kept
    /// this way (tens of keys at N=2^16).
    pub fn compact(&mut self) {
        self.a = Vec::new();
    }
    /// True when `a` is regenerated on use (see [`SwitchingKey::compact`]).
    pub fn is_compact(&self) -> bool {
        self.a.is_empty()
    }

    /// The `a` limb of digit `j` at key prime `kidx`: stored, or regenerated into `buf`.
    #[inline]
    fn a_limb<'k>(&'k self, j: usize, kidx: usize, qp: &[clifhe_core::arith::Modulus], buf: &'k mut Vec<u64>) -> &'k [u64] {
        let n = self.b[j].n();
        match self.a.get(j) {
            Some(a) => &a.as_slice()[kidx * n..(kidx + 1) * n],
            None => {
                buf.resize(n, 0);
                expand_public_limb(
                    &self.a_seed,
                    SeedPurpose::KeySwitchA,
                    ((j as u32) << 8) | kidx as u32,
                    &qp[kidx],
                    buf,
                );
                buf
            }
        }
    }

    /// Bytes held in memory (b and, unless compact, the expanded a).
    pub fn memory_bytes(&self) -> usize {
        self.b.iter().chain(&self.a).map(|p| p.as_slice().len() * 8).sum()
    }

    /// Regenerates the `a` halves from the seed (after deserialisation).
    pub fn from_seed_and_b(ectx: &EvalContext, a_seed: [u8; SEED_BYTES], b: Vec<RnsPolyOwned>) -> Result<Self, EvalError> {
        let qp = ectx.qp_moduli();
        let n = ectx.n();
        if b.len() != ectx.digits()
            || b.iter()
                .any(|p| p.n() != n || p.limbs() != qp.len() || p.representation() != Representation::Ntt)
        {
            return Err(EvalError::KeyShape);
        }
        let a = (0..b.len()).map(|j| expand_key_a(&a_seed, j, qp, n)).collect();
        Ok(Self {
            params_id: ectx.params().id(),
            a_seed,
            b,
            a,
        })
    }

    /// Generates the key switching from `s_prime` (given in NTT form over the Q primes) to `sk`.
    pub fn generate<R: RngCore + CryptoRng, K: AsRef<[i8]> + AsMut<[i8]>>(
        ectx: &EvalContext,
        sk: &SecretKey<K>,
        s_prime_q_ntt: &RnsPolyOwned,
        rng: &mut R,
    ) -> Result<Self, EvalError> {
        let params = ectx.params();
        if sk.params_id() != params.id() {
            return Err(EvalError::ParamsMismatch);
        }
        let n = ectx.n();
        let nq = params.q().len();
        let qp = ectx.qp_moduli();
        let tables = ectx.qp_tables();
        if params.p().is_empty() {
            return Err(EvalError::NoSpecialPrimes);
        }
        if s_prime_q_ntt.limbs() != nq || s_prime_q_ntt.representation() != Representation::Ntt {
            return Err(EvalError::KeyShape);
        }
        let s_qp = ectx.secret_ntt_qp(sk)?;
        let a_seed = fresh_seed(rng);
        let alpha = params.p().len();
        // P mod q_i for the gadget.
        let p_mod_q: Vec<u64> = qp[..nq]
            .iter()
            .map(|qi| params.p().iter().fold(1u64, |acc, &pk| qi.mul(acc, qi.reduce(pk))))
            .collect();
        let mut b_all = Vec::with_capacity(ectx.digits());
        let mut a_all = Vec::with_capacity(ectx.digits());
        for j in 0..ectx.digits() {
            let a = expand_key_a(&a_seed, j, qp, n);
            let mut e = Zeroizing::new(vec![0i8; n]);
            sample_cbd(rng, &mut e);
            let mut b = RnsPoly::zero(n, qp.len(), Representation::Ntt);
            b.as_mut_slice()
                .par_chunks_mut(n)
                .enumerate()
                .try_for_each(|(t, out)| -> Result<(), EvalError> {
                    let m = &qp[t];
                    clifhe_core::rns::reduce_small_into(&e, m, out);
                    tables[t].forward(out).map_err(|_| EvalError::KeyShape)?;
                    let (al, sl) = (&a.as_slice()[t * n..(t + 1) * n], &s_qp[t * n..(t + 1) * n]);
                    for ((o, x), s) in out.iter_mut().zip(al).zip(sl) {
                        *o = m.sub(*o, m.mul(*x, *s));
                    }
                    if t < nq && t >= j * alpha && t < (j + 1) * alpha {
                        let sp = &s_prime_q_ntt.as_slice()[t * n..(t + 1) * n];
                        let g = p_mod_q[t];
                        for (o, s) in out.iter_mut().zip(sp) {
                            *o = m.add(*o, m.mul(g, *s));
                        }
                    }
                    Ok(())
                })?;
            b_all.push(b);
            a_all.push(a);
        }
        Ok(Self {
            params_id: params.id(),
            a_seed,
            b: b_all,
            a: a_all,
        })
    }
}

/// `a` of digit j over Q*P from the key's seed (stream index = digit << 8 | prime).
fn expand_key_a(seed: &[u8; SEED_BYTES], digit: usize, qp: &[Modulus], n: usize) -> RnsPolyOwned {
    let mut a = RnsPoly::zero(n, qp.len(), Representation::Ntt);
    a.as_mut_slice().par_chunks_mut(n).enumerate().for_each(|(t, out)| {
        expand_public_limb(seed, SeedPurpose::KeySwitchA, ((digit as u32) << 8) | t as u32, &qp[t], out);
    });
    a
}

/// sum_j ext_j * (b_j, a_j) for one prime, in 128-bit accumulators reduced every 8 digits
/// (products of an extension below 4q and a key word below q stay under 2^124).
struct LazyInnerProduct<'m> {
    m: &'m Modulus,
    acc0: Vec<u128>,
    acc1: Vec<u128>,
    digits: usize,
}

impl<'m> LazyInnerProduct<'m> {
    fn new(m: &'m Modulus, n: usize) -> Self {
        Self {
            m,
            acc0: vec![0; n],
            acc1: vec![0; n],
            digits: 0,
        }
    }

    /// Adds one digit; `ext(x)` is the digit's extension at slot x (possibly permuted).
    #[inline]
    fn add(&mut self, ext: impl Fn(usize) -> u64, kb: &[u64], ka: &[u64]) {
        for (x, ((a0, a1), (b, a))) in self.acc0.iter_mut().zip(self.acc1.iter_mut()).zip(kb.iter().zip(ka)).enumerate() {
            let v = ext(x) as u128;
            *a0 += v * *b as u128;
            *a1 += v * *a as u128;
        }
        self.digits += 1;
        if self.digits % 8 == 0 {
            let m = self.m;
            self.acc0
                .iter_mut()
                .chain(self.acc1.iter_mut())
                .for_each(|v| *v = m.reduce_u128(*v) as u128);
        }
    }

    fn finish(&self, o0: &mut [u64], o1: &mut [u64]) {
        for (o, v) in o0.iter_mut().zip(&self.acc0).chain(o1.iter_mut().zip(&self.acc1)) {
            *o = self.m.reduce_u128(*v);
        }
    }
}

/// The ModUp of one polynomial at level l: per digit, its extension to Q_l * P in NTT form
/// (limbs q_0..q_l, then p_0..p_{k-1}).
pub struct Decomposed {
    pub(crate) level: usize,
    pub(crate) digits: Vec<RnsPolyOwned>,
}

impl EvalContext {
    /// ModUp of `c` (NTT form, level l = c.limbs() - 1).
    pub fn decompose<S: AsRef<[u64]> + Sync>(&self, c: &RnsPoly<S>) -> Result<Decomposed, EvalError> {
        if c.representation() != Representation::Ntt {
            return Err(EvalError::Representation);
        }
        let n = self.n();
        let level = c.limbs() - 1;
        let pre = self.level_precomp(level)?;
        let nq = level + 1;
        let np = self.params().p().len();
        let mut coef = c.to_owned_poly();
        coef.as_mut_slice()
            .par_chunks_mut(n)
            .enumerate()
            .try_for_each(|(i, l)| self.q_tables()[i].inverse(l).map_err(|_| EvalError::Representation))?;
        let digits = pre
            .mod_up
            .par_iter()
            .map(|(start, end, conv)| {
                let mut ext = RnsPoly::zero(n, nq + np, Representation::Ntt);
                let m = end - start;
                let mut others = vec![0u64; conv.target_len() * n];
                let mut scratch = vec![0u64; m * n];
                conv.convert(n, &coef.as_slice()[start * n..end * n], &mut others, &mut scratch);
                // Target order: q_0..q_{start-1}, q_end..q_l, p_0..: map back to limb positions.
                let positions: Vec<usize> = (0..*start).chain(*end..nq).chain(nq..nq + np).collect();
                let data = ext.as_mut_slice();
                data[start * n..end * n].copy_from_slice(&c.as_slice()[start * n..end * n]);
                for (k, &pos) in positions.iter().enumerate() {
                    data[pos * n..(pos + 1) * n].copy_from_slice(&others[k * n..(k + 1) * n]);
                }
                // NTT of the extended limbs (the digit's own limbs are already in NTT form).
                for &pos in &positions {
                    let table = if pos < nq {
                        &self.q_tables()[pos]
                    } else {
                        &self.p_tables()[pos - nq]
                    };
                    table
                        .forward(&mut data[pos * n..(pos + 1) * n])
                        .map_err(|_| EvalError::Representation)?;
                }
                Ok(ext)
            })
            .collect::<Result<Vec<_>, EvalError>>()?;
        Ok(Decomposed { level, digits })
    }

    /// Inner product of a decomposition with a key, optionally through a Galois permutation of
    /// NTT slots (`perm`, applied to the decomposition), followed by ModDown: returns (d0, d1)
    /// over Q_l such that d0 + d1 s = c' s' + small, where c' is the (permuted) input.
    pub fn key_switch_decomposed(
        &self,
        dec: &Decomposed,
        key: &SwitchingKey,
        perm: Option<&[u32]>,
    ) -> Result<(RnsPolyOwned, RnsPolyOwned), EvalError> {
        if key.params_id != self.params().id() {
            return Err(EvalError::ParamsMismatch);
        }
        let n = self.n();
        let level = dec.level;
        let nq = level + 1;
        let np = self.params().p().len();
        let nq_full = self.params().q().len();
        let qp = self.qp_moduli();
        if key.b.len() < dec.digits.len() {
            return Err(EvalError::KeyShape);
        }
        // Accumulate over digits; key limb index for position pos: q_i -> i, p_k -> L+1+k.
        let mut acc0 = RnsPoly::zero(n, nq + np, Representation::Ntt);
        let mut acc1 = RnsPoly::zero(n, nq + np, Representation::Ntt);
        acc0.as_mut_slice()
            .par_chunks_mut(n)
            .zip(acc1.as_mut_slice().par_chunks_mut(n))
            .enumerate()
            .for_each(|(pos, (o0, o1))| {
                let kidx = if pos < nq { pos } else { nq_full + pos - nq };
                let mut lazy = LazyInnerProduct::new(&qp[kidx], n);
                let mut abuf = Vec::new();
                for (j, ext) in dec.digits.iter().enumerate() {
                    let e = &ext.as_slice()[pos * n..(pos + 1) * n];
                    let kb = &key.b[j].as_slice()[kidx * n..(kidx + 1) * n];
                    let ka = key.a_limb(j, kidx, qp, &mut abuf);
                    match perm {
                        Some(p) => lazy.add(|x| e[p[x] as usize], kb, ka),
                        None => lazy.add(|x| e[x], kb, ka),
                    }
                }
                lazy.finish(o0, o1);
            });
        let d0 = self.mod_down(acc0, level)?;
        let d1 = self.mod_down(acc1, level)?;
        Ok((d0, d1))
    }

    /// (x - ext_P->Q(x mod P)) * P^-1 over Q_l, for x over Q_l * P in NTT form.
    pub(crate) fn mod_down(&self, x: RnsPolyOwned, level: usize) -> Result<RnsPolyOwned, EvalError> {
        let n = self.n();
        let nq = level + 1;
        let np = self.params().p().len();
        let pre = self.level_precomp(level)?;
        let mut data = x.into_storage();
        let (qpart, ppart) = data.split_at_mut(nq * n);
        ppart
            .par_chunks_mut(n)
            .enumerate()
            .try_for_each(|(k, l)| self.p_tables()[k].inverse(l).map_err(|_| EvalError::Representation))?;
        let mut ext = vec![0u64; nq * n];
        let mut scratch = vec![0u64; np * n];
        pre.mod_down.convert(n, ppart, &mut ext, &mut scratch);
        qpart
            .par_chunks_mut(n)
            .zip(ext.par_chunks_mut(n))
            .enumerate()
            .try_for_each(|(i, (q, e))| {
                self.q_tables()[i].forward(e).map_err(|_| EvalError::Representation)?;
                let m = &self.q_moduli()[i];
                let (pinv, pinv_s) = pre.p_inv[i];
                for (a, b) in q.iter_mut().zip(e.iter()) {
                    *a = m.mul_shoup(m.sub(*a, *b), pinv, pinv_s);
                }
                Ok::<(), EvalError>(())
            })?;
        data.truncate(nq * n);
        RnsPoly::from_storage(n, nq, Representation::Ntt, data).map_err(|_| EvalError::Representation)
    }

    /// Full key switch of one polynomial, fused: for every target prime the digit extensions
    /// are produced one limb at a time and multiplied into the key at once, so the
    /// decomposition is never materialised (one limb of scratch per thread instead of
    /// digits x limbs). Same result as `decompose` + `key_switch_decomposed`.
    pub fn key_switch<S: AsRef<[u64]> + Sync>(
        &self,
        c: &RnsPoly<S>,
        key: &SwitchingKey,
    ) -> Result<(RnsPolyOwned, RnsPolyOwned), EvalError> {
        if c.representation() != Representation::Ntt {
            return Err(EvalError::Representation);
        }
        if key.params_id != self.params().id() {
            return Err(EvalError::ParamsMismatch);
        }
        let n = self.n();
        let level = c.limbs() - 1;
        let pre = self.level_precomp(level)?;
        if key.b.len() < pre.mod_up.len() {
            return Err(EvalError::KeyShape);
        }
        let nq = level + 1;
        let np = self.params().p().len();
        let nq_full = self.params().q().len();
        let qp = self.qp_moduli();
        // Coefficient form, then each digit's limbs pre-scaled by (Q_j/q_i)^-1.
        let mut y = c.to_owned_poly();
        y.as_mut_slice()
            .par_chunks_mut(n)
            .enumerate()
            .try_for_each(|(i, l)| self.q_tables()[i].inverse(l).map_err(|_| EvalError::Representation))?;
        let mut scaled = vec![0u64; nq * n];
        for (start, end, conv) in &pre.mod_up {
            conv.scale_inputs(n, &y.as_slice()[start * n..end * n], &mut scaled[start * n..end * n]);
        }
        let mut acc0 = RnsPoly::zero(n, nq + np, Representation::Ntt);
        let mut acc1 = RnsPoly::zero(n, nq + np, Representation::Ntt);
        acc0.as_mut_slice()
            .par_chunks_mut(n)
            .zip(acc1.as_mut_slice().par_chunks_mut(n))
            .enumerate()
            .try_for_each(|(pos, (o0, o1))| {
                let kidx = if pos < nq { pos } else { nq_full + pos - nq };
                let table = if pos < nq {
                    &self.q_tables()[pos]
                } else {
                    &self.p_tables()[pos - nq]
                };
                let mut buf = vec![0u64; n];
                let mut abuf = Vec::new();
                let mut lazy = LazyInnerProduct::new(&qp[kidx], n);
                for (j, (start, end, conv)) in pre.mod_up.iter().enumerate() {
                    let ext: &[u64] = if pos >= *start && pos < *end {
                        &c.as_slice()[pos * n..(pos + 1) * n]
                    } else {
                        // Target index inside this digit's converter: q's before the digit,
                        // q's after it, then the P primes.
                        let ti = if pos < *start { pos } else { pos - (end - start) };
                        conv.convert_scaled_to(n, &scaled[start * n..end * n], ti, &mut buf);
                        // Lazy output in [0, 4q): the u128 accumulation below absorbs it.
                        table.forward_lazy(&mut buf);
                        &buf
                    };
                    let kb = &key.b[j].as_slice()[kidx * n..(kidx + 1) * n];
                    let ka = key.a_limb(j, kidx, qp, &mut abuf);
                    lazy.add(|x| ext[x], kb, ka);
                }
                lazy.finish(o0, o1);
                Ok::<(), EvalError>(())
            })?;
        let d0 = self.mod_down(acc0, level)?;
        let d1 = self.mod_down(acc1, level)?;
        Ok((d0, d1))
    }
}
