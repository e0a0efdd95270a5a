//! Hybrid key switching with special primes P (Han and Ki 2020, "Better bootstrapping for
//! approximate homomorphic encryption", section 3; the "GHS + RNS digits" method that Lattigo
//! and OpenFHE call HYBRID).
//!
//! The ciphertext primes q_0..q_L are cut into digits of consecutive primes whose product
//! stays below P ([`digit_ranges`]). A switching key from s' to s holds, for every digit j,
//! the pair over Q*P (NTT form)
//!   b_j = -a_j s + e_j + P * g_j * s',   a_j uniform (from a public seed),
//! where g_j is the CRT gadget: g_j = 1 mod the primes of digit j, 0 mod the other q's. To
//! switch c (under s') the residues of c for digit j are extended to all of Q_l*P (ModUp, a
//! fast basis conversion), multiplied by the key and summed, then divided by P (ModDown):
//!   sum_j ext_j * (b_j, a_j) = (P c s' - P (a s) ..., ...)  ->  (c s' - a s + small, a) / ...
//! The decomposition of c can be computed once and reused for many Galois keys (hoisting,
//! Halevi and Shoup 2018): an automorphism applied to the extended digits in the NTT domain is
//! a permutation of slots, so rotations by several steps share one ModUp.

pub mod basis;
mod engine;
mod lazy;
mod mod_down;
mod scratch;

pub use lazy::KeySwitchSum;
pub use mod_down::SecondOutput;
pub use scratch::KeySwitchScratch;

use crate::context::EvalContext;
use crate::error::EvalError;
use crate::galois::GaloisPermutation;
use basis::BasisConverter;
use clifhe_core::arith::Modulus;
use clifhe_core::keys::expand_public_limb;
use clifhe_core::rns::{Representation, RnsPoly, RnsPolyOwned};
use clifhe_core::sample::{fresh_seed, sample_cbd, SeedPurpose, SEED_BYTES};
use clifhe_core::SecretKey;
use core::ops::Range;
use rand_core::{CryptoRng, RngCore};
use rayon::prelude::*;
use zeroize::Zeroizing;

/// Most primes one digit may hold: the ModUp conversion's 128-bit sums are proven for sources
/// of up to 8 primes below 2^61 ([`BasisConverter::convert_scaled_to`]).
pub const MAX_DIGIT_PRIMES: usize = 8;

/// The key-switching digits of a parameter set: ranges of consecutive ciphertext primes from
/// q_0, each as long as its product stays at most P (the special primes' product) and it holds
/// at most [`MAX_DIGIT_PRIMES`]; a prime larger than P alone still makes a digit. At a lower
/// level l the digits are these ranges cut at l.
///
/// Why by size rather than |P| primes each (Lattigo's and OpenFHE's rule): a digit's part of
/// the switch's noise is (digit product / P) times the key's error (`gnn::noise`), so what
/// matters is the product, not the count. Where the chain mixes prime sizes, 40-bit primes
/// under 61-bit special primes, the count rule leaves digits far below P: on bootstrap-n16
/// (P = 6 x 61 bits) it cuts the 28 primes into 5 digits of 228 to 360 bits, this rule into 4
/// of 317 to 360 bits, with the same largest digit (so the same noise bound within a few
/// percent) and a fifth less ModUp and inner-product work and key memory. On the chains whose
/// primes are all about the size of one special prime (private-n15, leveled-n14) both rules
/// cut the same digits.
pub fn digit_ranges(q: &[u64], p: &[u64]) -> Vec<Range<usize>> {
    let log_p: f64 = p.iter().map(|&v| (v as f64).log2()).sum();
    let mut out = Vec::new();
    let mut start = 0;
    while start < q.len() {
        let mut end = start + 1;
        let mut log_d = (q[start] as f64).log2();
        while end < q.len() && end - start < MAX_DIGIT_PRIMES && log_d + (q[end] as f64).log2() <= log_p {
            log_d += (q[end] as f64).log2();
            end += 1;
        }
        out.push(start..end);
        start = end;
    }
    out
}

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
    /// The constants at `level` for the chain's `digits` ([`digit_ranges`]).
    pub fn new(q: &[Modulus], p: &[Modulus], digits: &[Range<usize>], level: usize) -> Self {
        let ql = &q[..=level];
        let mod_up = digits
            .iter()
            .take_while(|d| d.start <= level)
            .map(|d| {
                let (start, end) = (d.start, d.end.min(level + 1));
                let targets: Vec<Modulus> = ql[..start].iter().chain(&ql[end..]).chain(p).copied().collect();
                (start, end, BasisConverter::new(&ql[start..end], &targets))
            })
            .collect();
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

/// How a set of switching keys is held in memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeyStorage {
    /// Seed and `b` only ([`SwitchingKey::compact`]): half the memory; every key switch
    /// regenerates the `a` limbs it needs from the seed (ChaCha20 and rejection sampling, about
    /// a tenth of a bootstrap's time at N=2^16).
    #[default]
    Compact,
    /// `a` expanded once: twice the memory of [`KeyStorage::Compact`], nothing regenerated.
    Expanded,
}

impl KeyStorage {
    /// Brings a freshly generated or loaded (expanded) key to this storage.
    pub fn apply(self, key: &mut SwitchingKey) {
        if self == KeyStorage::Compact {
            key.compact();
        }
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
        // P mod q_i for the gadget.
        let p_mod_q: Vec<u64> = qp[..nq]
            .iter()
            .map(|qi| params.p().iter().fold(1u64, |acc, &pk| qi.mul(acc, qi.reduce(pk))))
            .collect();
        let mut b_all = Vec::with_capacity(ectx.digits());
        let mut a_all = Vec::with_capacity(ectx.digits());
        for (j, digit) in ectx.digit_ranges().iter().enumerate() {
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
                    if digit.contains(&t) {
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

/// The ModUp of one polynomial at level l: per digit, its extension to Q_l * P in NTT form
/// (limbs q_0..q_l, then p_0..p_{k-1}).
pub struct Decomposed {
    pub(crate) level: usize,
    pub(crate) digits: Vec<RnsPolyOwned>,
}

impl EvalContext {
    /// ModUp of `c` (NTT form, level l = c.limbs() - 1), with a pooled scratch
    /// ([`EvalContext::decompose_with`]).
    pub fn decompose<S: AsRef<[u64]> + Sync>(&self, c: &RnsPoly<S>) -> Result<Decomposed, EvalError> {
        self.with_switch_scratch(|s| self.decompose_with(c, s))
    }

    /// Inner product of a decomposition with a key, optionally through a Galois permutation of
    /// NTT slots (`perm`, applied to the decomposition), followed by ModDown: returns (d0, d1)
    /// over Q_l such that d0 + d1 s = c' s' + small, where c' is the (permuted) input.
    /// Owned outputs over [`EvalContext::key_switch_decomposed_into`] with a pooled scratch.
    pub fn key_switch_decomposed(
        &self,
        dec: &Decomposed,
        key: &SwitchingKey,
        perm: Option<&GaloisPermutation>,
    ) -> Result<(RnsPolyOwned, RnsPolyOwned), EvalError> {
        let limbs = dec.level + 1;
        let mut d0 = RnsPoly::zero(self.n(), limbs, Representation::Ntt);
        let mut d1 = RnsPoly::zero(self.n(), limbs, Representation::Ntt);
        self.with_switch_scratch(|s| {
            self.key_switch_decomposed_into(dec, perm, key, s, d0.as_mut_slice(), d1.as_mut_slice(), SecondOutput::Set)
        })?;
        Ok((d0, d1))
    }

    /// Full key switch of one polynomial: (d0, d1) with d0 + d1 s = c s' + small. Owned
    /// outputs over [`EvalContext::key_switch_into`] with a pooled scratch.
    pub fn key_switch<S: AsRef<[u64]> + Sync>(
        &self,
        c: &RnsPoly<S>,
        key: &SwitchingKey,
    ) -> Result<(RnsPolyOwned, RnsPolyOwned), EvalError> {
        let limbs = c.limbs();
        let mut d0 = RnsPoly::zero(self.n(), limbs, Representation::Ntt);
        let mut d1 = RnsPoly::zero(self.n(), limbs, Representation::Ntt);
        self.with_switch_scratch(|s| self.key_switch_into(c, None, key, s, d0.as_mut_slice(), d1.as_mut_slice(), SecondOutput::Set))?;
        Ok((d0, d1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clifhe_core::params::presets;
    use clifhe_core::Params;

    fn log2_product(v: &[u64]) -> f64 {
        v.iter().map(|&x| (x as f64).log2()).sum()
    }

    /// Every prime in exactly one digit, in order; each digit of several primes at most P and
    /// at most `MAX_DIGIT_PRIMES` long; and no digit could have taken the next prime.
    #[test]
    fn digits_cover_the_chain_below_p() {
        for lit in presets::ALL {
            let params = Params::new(*lit).unwrap();
            let (q, p) = (params.q(), params.p());
            let digits = digit_ranges(q, p);
            assert_eq!(digits.first().map(|d| d.start), Some(0), "{}", params.name());
            assert_eq!(digits.last().map(|d| d.end), Some(q.len()));
            for (d, next) in digits.iter().zip(digits.iter().skip(1)) {
                assert_eq!(d.end, next.start);
                let log_d = log2_product(&q[d.clone()]);
                assert!(d.len() == 1 || log_d <= log2_product(p), "{}: {d:?}", params.name());
                assert!(d.len() <= MAX_DIGIT_PRIMES);
                let grown = log_d + (q[d.end] as f64).log2();
                assert!(
                    d.len() == MAX_DIGIT_PRIMES || grown > log2_product(p),
                    "{}: {d:?} could grow",
                    params.name()
                );
            }
        }
    }

    /// Where the primes match the special primes' size the digits are |P| primes each (the
    /// usual rule, so the same keys and words as before); on bootstrap-n16 four digits where
    /// that rule cuts five, with the same largest digit (the noise bound's dominant term).
    #[test]
    fn digits_of_the_presets() {
        let cut = |lit| {
            let params = Params::new(lit).unwrap();
            digit_ranges(params.q(), params.p())
        };
        let by_count = |lit| {
            let params = Params::new(lit).unwrap();
            let alpha = params.p().len().max(1);
            (0..params.q().len())
                .step_by(alpha)
                .map(|s| s..(s + alpha).min(params.q().len()))
                .collect::<Vec<_>>()
        };
        assert_eq!(cut(presets::PRIVATE_N15), by_count(presets::PRIVATE_N15));
        assert_eq!(cut(presets::LEVELED_N14), by_count(presets::LEVELED_N14));
        assert_eq!(cut(presets::BOOTSTRAP_N16), vec![0..8, 8..16, 16..22, 22..28]);
        let params = Params::new(presets::BOOTSTRAP_N16).unwrap();
        let largest = |ds: Vec<Range<usize>>| ds.into_iter().map(|d| log2_product(&params.q()[d])).fold(0.0, f64::max);
        // six of the 60-bit EvalMod primes either way (other six), 2^360 to within 2^-30 relative
        assert!((largest(cut(presets::BOOTSTRAP_N16)) - largest(by_count(presets::BOOTSTRAP_N16))).abs() < 1e-9);
    }
}
