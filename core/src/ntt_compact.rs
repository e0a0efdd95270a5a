//! Table-free ("compact") negacyclic NTT for firmware with little RAM.
//!
//! **Why.** [`NttTable`](crate::ntt::NttTable) keeps the full twiddle tables: psi^k and psi^-k
//! for every k < N in bit-reversed order, each with its Shoup quotient, 4N words. At N = 2^15
//! that is 1 MiB, which does not fit a 512 KiB-RAM Cortex-M4 that also needs an N-word working
//! buffer (256 KiB).
//!
//! **What.** [`CompactNtt`] computes each block's twiddle when the block starts, from two small
//! tables. An exponent e in [0, N) is split as e = hi * 2^h + lo with h = ceil(log2(N) / 2), and
//! psi^e = `H[hi]` * `L[lo]` mod q with `H[hi]` = psi^(hi * 2^h) (stored with its Shoup quotient,
//! so the product is one `mul_shoup` and canonical) and `L[lo]` = psi^lo. The twiddle's own
//! Shoup quotient comes from [`Modulus::shoup_no_div`] (Barrett constant, no division). The
//! inverse twiddles need no tables of their own: since psi^N = -1,
//! psi^-e = -psi^(N - e) = q - psi^(N - e) for 1 <= e < N (the inverse never uses e = 0).
//! The transforms are the same lazy Harvey butterflies, in the same order and with the same
//! twiddle values and quotients, as `NttTable` (two stages per pass, radix-4 shape), so the
//! results are bit-identical to [`NttTable::forward`](crate::ntt::NttTable::forward) and
//! [`NttTable::inverse`](crate::ntt::NttTable::inverse), including the lazy ranges.
//!
//! **Cost.** One extra `mul_shoup` and one `shoup_no_div` (three high/low multiplications) per
//! block: N - 1 blocks per transform, against N/2 log2(N) butterflies. Most of the extra time
//! is in the last two stages (3N/4 of the N - 1 twiddles); see [`CompactNtt`] for a measurement.
//!
//! **Size.** Tables for any N <= 2^16 (h <= 8: at most 256 entries each; three tables of 256
//! words), so `size_of::<CompactNtt>()` = 6216 bytes (about 6.1 KiB) whatever N, against
//! 32 N bytes for a full `NttTable` (1 MiB at N = 2^15).
//!
//! **Constant time, no division.** Control flow depends only on N; the forward and inverse
//! transforms contain no division or remainder (blocks are walked with `split_at_mut`, table
//! indices are masked), nor does [`CompactNtt::from_roots`] (tables from psi and psi^-1, cheap
//! enough to rebuild per prime on the encryption path); only [`CompactNtt::new`], which
//! searches for the root, divides (once per prime, public data).
//!
//! [`CompactNtt`] implements [`NegacyclicNtt`], so the streamed encryptors take it in place of
//! an `NttTable`.

use crate::arith::{csub, Modulus};
use crate::ntt::{bit_reverse, forward_group, inverse_group, primitive_root_2n, NegacyclicNtt, NttError};

/// Largest log2(N) a [`CompactNtt`] supports (its fixed tables hold 2^8 entries each).
pub const COMPACT_MAX_LOG_N: u32 = 16;

/// Entries of each fixed table: 2^ceil(COMPACT_MAX_LOG_N / 2).
const TABLE: usize = 1 << COMPACT_MAX_LOG_N.div_ceil(2);

/// Twiddles for one prime and one N, computed on the fly from two 2^h-entry tables (see the
/// module docs). No heap; `const`-constructible so firmware can place it in flash.
///
/// `core::mem::size_of::<CompactNtt>()` = 6216 bytes (3 x 256 table words plus the modulus and
/// four constants) for every N up to 2^16, e.g. at N = 2^15 against 1 MiB for an `NttTable`.
///
/// Host measurement (x86-64, release, 55-bit prime, N = 2^15, best of 5 x 400 runs):
/// `forward` about 345 us against 195-215 us for `NttTable::forward` (scalar or AVX2 path),
/// i.e. 1.6x-1.8x; `inverse` 1.2x-1.7x. On the device the alternative does not fit in RAM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompactNtt {
    modulus: Modulus,
    log_n: u32,
    /// h: the number of low exponent bits, ceil(log2(N) / 2).
    lo_bits: u32,
    /// `H[hi]` = psi^(hi * 2^h) for hi < 2^(log2(N) - h), and their Shoup quotients.
    hi_w: [u64; TABLE],
    hi_ws: [u64; TABLE],
    /// `L[lo]` = psi^lo for lo < 2^h.
    lo_w: [u64; TABLE],
    /// N^-1 mod q and its Shoup quotient.
    n_inv: u64,
    n_inv_shoup: u64,
    /// psi^-(N/2) * N^-1 (the last inverse stage's twiddle with N^-1 folded in), Shoup quotient.
    inv_last: u64,
    inv_last_shoup: u64,
}

/// Splits the first `len` values off `rest` (division-free block walking).
#[inline(always)]
fn next_block<'a>(rest: &mut &'a mut [u64], len: usize) -> &'a mut [u64] {
    let (block, tail) = core::mem::take(rest).split_at_mut(len);
    *rest = tail;
    block
}

/// The four quarters of a 4d-value block: (x0, x1, x2, x3) at offsets 0, d, 2d, 3d.
#[inline(always)]
fn quarters(block: &mut [u64], d: usize) -> (&mut [u64], &mut [u64], &mut [u64], &mut [u64]) {
    let (lo, hi) = block.split_at_mut(2 * d);
    let (q0, q1) = lo.split_at_mut(d);
    let (q2, q3) = hi.split_at_mut(d);
    (q0, q1, q2, q3)
}

impl CompactNtt {
    /// Builds the tables for `modulus` and degree `n` (a power of two in [2, 2^16]; q = 1
    /// mod 2N). Uses the same root psi = [`primitive_root_2n`] as `NttTable`, so the transforms
    /// are bit-identical to its. Runs once per prime on public data (divides: the root search
    /// and psi^-1); a device that keeps psi and psi^-1 uses [`Self::from_roots`] instead.
    pub const fn new(modulus: Modulus, n: usize) -> Result<Self, NttError> {
        if n < 2 || !n.is_power_of_two() || n > 1 << COMPACT_MAX_LOG_N {
            return Err(NttError::BadDegree);
        }
        let psi = match primitive_root_2n(&modulus, n) {
            Some(psi) => psi,
            None => return Err(NttError::NotNttFriendly),
        };
        Self::from_roots(modulus, n, psi, modulus.inv(psi))
    }

    /// Builds the tables from a primitive 2N-th root `psi` and its inverse `psi_inv`, with no
    /// division or remainder anywhere (the Shoup quotients come from
    /// [`Modulus::shoup_no_div`], N^-1 = q - (q - 1) / N by a shift), so it may run on a
    /// device's encryption path: 3 * 2^(log2(N) / 2) products, negligible next to a transform.
    /// Checks n (`BadDegree`), q = 1 mod 2N, psi * psi_inv = 1 and psi^N = -1 (so psi has
    /// order exactly 2N) (`NotNttFriendly`). The transforms equal `NttTable`'s bit for bit when
    /// `psi` is the canonical root [`primitive_root_2n`] (another primitive root gives a valid
    /// transform with its outputs permuted).
    pub const fn from_roots(modulus: Modulus, n: usize, psi: u64, psi_inv: u64) -> Result<Self, NttError> {
        if n < 2 || !n.is_power_of_two() || n > 1 << COMPACT_MAX_LOG_N {
            return Err(NttError::BadDegree);
        }
        let m = modulus;
        let q = m.value();
        if (q - 1) & (2 * n as u64 - 1) != 0 || psi >= q || psi_inv >= q || m.mul(psi, psi_inv) != 1 {
            return Err(NttError::NotNttFriendly);
        }
        let log_n = n.trailing_zeros();
        // psi^(N/2) by log2(N) - 1 squarings; then psi^N = -1 must hold.
        let mut half = psi;
        let mut k = 1;
        while k < log_n {
            half = m.mul(half, half);
            k += 1;
        }
        if m.mul(half, half) != q - 1 {
            return Err(NttError::NotNttFriendly);
        }
        let lo_bits = log_n.div_ceil(2);
        let (lo_len, hi_len) = (1usize << lo_bits, 1usize << (log_n - lo_bits));
        let mut lo_w = [0u64; TABLE];
        let mut hi_w = [0u64; TABLE];
        let mut hi_ws = [0u64; TABLE];
        let mut p = 1u64;
        let mut k = 0;
        while k < lo_len {
            lo_w[k] = p;
            p = m.mul(p, psi);
            k += 1;
        }
        // p = psi^(2^h) now.
        let step = p;
        let mut p = 1u64;
        let mut k = 0;
        while k < hi_len {
            hi_w[k] = p;
            hi_ws[k] = m.shoup_no_div(p);
            p = m.mul(p, step);
            k += 1;
        }
        // N divides q - 1, so N * (q - (q - 1) / N) = 1 mod q.
        let n_inv = q - ((q - 1) >> log_n);
        // psi^-(N/2) = -psi^(N/2): the inverse table's entry 1 (bitrev(1) = N/2).
        let inv_last = m.mul(q - half, n_inv);
        Ok(Self {
            modulus,
            log_n,
            lo_bits,
            hi_w,
            hi_ws,
            lo_w,
            n_inv,
            n_inv_shoup: m.shoup_no_div(n_inv),
            inv_last,
            inv_last_shoup: m.shoup_no_div(inv_last),
        })
    }

    /// The ring degree N.
    #[must_use]
    #[inline(always)]
    pub const fn n(&self) -> usize {
        1 << self.log_n
    }

    /// The prime modulus.
    #[must_use]
    #[inline(always)]
    pub const fn modulus(&self) -> &Modulus {
        &self.modulus
    }

    /// psi^e for 0 <= e < N: `H[hi]` * `L[lo]`, canonical in [0, q).
    #[inline(always)]
    fn psi_pow(&self, e: usize) -> u64 {
        // The masks keep the indices in range without bounds checks (no-ops for e < N).
        let hi = (e >> self.lo_bits) & (TABLE - 1);
        let lo = e & ((1 << self.lo_bits) - 1) & (TABLE - 1);
        self.modulus.mul_shoup(self.lo_w[lo], self.hi_w[hi], self.hi_ws[hi])
    }

    /// The forward table's entry j (1 <= j < N): psi^bitrev(j), with its Shoup quotient.
    #[inline(always)]
    fn fwd_twiddle(&self, j: usize) -> (u64, u64) {
        let w = self.psi_pow(bit_reverse(j, self.log_n));
        (w, self.modulus.shoup_no_div(w))
    }

    /// The inverse table's entry j (1 <= j < N): psi^-e = q - psi^(N - e) for e = bitrev(j),
    /// 1 <= e < N, with its Shoup quotient.
    #[inline(always)]
    fn inv_twiddle(&self, j: usize) -> (u64, u64) {
        let e = bit_reverse(j, self.log_n);
        let w = self.modulus.value() - self.psi_pow(self.n() - e);
        (w, self.modulus.shoup_no_div(w))
    }

    /// In-place forward negacyclic NTT; input in [0, q), output in [0, q), bit-reversed order.
    /// Bit-identical to [`NttTable::forward`](crate::ntt::NttTable::forward).
    pub fn forward(&self, a: &mut [u64]) -> Result<(), NttError> {
        let n = self.n();
        if a.len() != n {
            return Err(NttError::Length);
        }
        let m = self.modulus;
        let q = m.value();
        let two_q = 2 * q;
        let out = |x: &mut u64| *x = csub(csub(*x, two_q), q);
        // `t` is the butterfly distance of the current stage, `blocks` its number of blocks.
        let mut t = n >> 1;
        let mut blocks = 1;
        // Two stages per pass: in each block of 2t values, the groups x0, x1 (= x0 + t/2),
        // x2 (= x0 + t), x3 run the stage-s butterflies (x0, x2), (x1, x3) with the block's
        // twiddle, then the stage-s+1 ones (x0, x1), (x2, x3) with its two sub-blocks'.
        while t >= 4 {
            let h = t >> 1;
            let mut rest: &mut [u64] = a;
            for i in 0..blocks {
                let (q0, q1, q2, q3) = quarters(next_block(&mut rest, 2 * t), h);
                let w1 = self.fwd_twiddle(blocks + i);
                let w2a = self.fwd_twiddle(2 * (blocks + i));
                let w2b = self.fwd_twiddle(2 * (blocks + i) + 1);
                for (((x0, x1), x2), x3) in q0.iter_mut().zip(q1.iter_mut()).zip(q2.iter_mut()).zip(q3.iter_mut()) {
                    forward_group(&m, [x0, x1, x2, x3], w1, w2a, w2b);
                }
            }
            t >>= 2;
            blocks <<= 2;
        }
        if t == 2 {
            // log2 N even: the last two stages on groups of four consecutive values.
            let mut rest: &mut [u64] = a;
            for i in 0..blocks {
                let x = next_block(&mut rest, 4);
                let w1 = self.fwd_twiddle(blocks + i);
                let w2a = self.fwd_twiddle(2 * (blocks + i));
                let w2b = self.fwd_twiddle(2 * (blocks + i) + 1);
                if let [x0, x1, x2, x3] = x {
                    forward_group(&m, [x0, x1, x2, x3], w1, w2a, w2b);
                }
                x.iter_mut().for_each(out);
            }
        } else if t == 1 {
            // log2 N odd: one radix-2 stage on adjacent pairs finishes.
            let mut rest: &mut [u64] = a;
            for i in 0..blocks {
                let (w, ws) = self.fwd_twiddle(blocks + i);
                if let [x, y] = next_block(&mut rest, 2) {
                    let u = csub(*x, two_q);
                    let v = m.mul_shoup_lazy(*y, w, ws);
                    *x = u + v;
                    *y = u + two_q - v;
                    out(x);
                    out(y);
                }
            }
        }
        Ok(())
    }

    /// In-place inverse negacyclic NTT; input bit-reversed in [0, 2q), output natural in
    /// [0, q), N^-1 included. Bit-identical to
    /// [`NttTable::inverse`](crate::ntt::NttTable::inverse).
    pub fn inverse(&self, a: &mut [u64]) -> Result<(), NttError> {
        let n = self.n();
        if a.len() != n {
            return Err(NttError::Length);
        }
        let m = self.modulus;
        let two_q = 2 * m.value();
        let (ni, nis, il, ils) = (self.n_inv, self.n_inv_shoup, self.inv_last, self.inv_last_shoup);
        let mut t = 1;
        let mut blocks = n >> 1;
        // Two stages per pass: stage A (distance t, `blocks` blocks) on the pairs (x0, x1),
        // (x2, x3) of each group, then stage B (distance 2t, blocks / 2) on (x0, x2), (x1, x3).
        while blocks >= 4 {
            let mut rest: &mut [u64] = a;
            let half = blocks >> 1;
            for i in 0..half {
                let (q0, q1, q2, q3) = quarters(next_block(&mut rest, 4 * t), t);
                let wa0 = self.inv_twiddle(blocks + 2 * i);
                let wa1 = self.inv_twiddle(blocks + 2 * i + 1);
                let wb = self.inv_twiddle(half + i);
                for (((x0, x1), x2), x3) in q0.iter_mut().zip(q1.iter_mut()).zip(q2.iter_mut()).zip(q3.iter_mut()) {
                    inverse_group(&m, [x0, x1, x2, x3], wa0, wa1, wb);
                }
            }
            t <<= 2;
            blocks >>= 2;
        }
        // Last stage (twiddle psi^-(N/2)) with N^-1 folded in, as in `NttTable::inverse`: sums
        // times N^-1, differences times inv_last, both fully reduced.
        if blocks == 2 {
            // log2 N even: stage A (entries 2 and 3) and the last stage in one pass.
            let ((wa0, wsa0), (wa1, wsa1)) = (self.inv_twiddle(2), self.inv_twiddle(3));
            let (q0, q1, q2, q3) = quarters(a, t);
            for (((x0, x1), x2), x3) in q0.iter_mut().zip(q1.iter_mut()).zip(q2.iter_mut()).zip(q3.iter_mut()) {
                let (u0, v0, u1, v1) = (*x0, *x1, *x2, *x3);
                let y0 = csub(u0 + v0, two_q);
                let y1 = m.mul_shoup_lazy(u0 + two_q - v0, wa0, wsa0);
                let y2 = csub(u1 + v1, two_q);
                let y3 = m.mul_shoup_lazy(u1 + two_q - v1, wa1, wsa1);
                *x0 = m.mul_shoup(y0 + y2, ni, nis);
                *x2 = m.mul_shoup(y0 + two_q - y2, il, ils);
                *x1 = m.mul_shoup(y1 + y3, ni, nis);
                *x3 = m.mul_shoup(y1 + two_q - y3, il, ils);
            }
        } else if blocks == 1 {
            // log2 N odd: one radix-2 stage of distance N/2.
            let (lo, hi) = a.split_at_mut(t);
            for (x, y) in lo.iter_mut().zip(hi.iter_mut()) {
                let (u, v) = (*x, *y);
                *x = m.mul_shoup(u + v, ni, nis);
                *y = m.mul_shoup(u + two_q - v, il, ils);
            }
        }
        Ok(())
    }
}

impl NegacyclicNtt for CompactNtt {
    fn n(&self) -> usize {
        CompactNtt::n(self)
    }
    fn modulus(&self) -> &Modulus {
        CompactNtt::modulus(self)
    }
    fn forward(&self, a: &mut [u64]) -> Result<(), NttError> {
        CompactNtt::forward(self, a)
    }
    fn inverse(&self, a: &mut [u64]) -> Result<(), NttError> {
        CompactNtt::inverse(self, a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ntt::NttTable;
    use crate::params::presets;
    use rand_chacha::rand_core::{RngCore, SeedableRng};
    use std::vec::Vec;

    /// Forward and inverse of `CompactNtt` against `NttTable`, bit for bit, on random inputs
    /// (forward in [0, q), inverse in [0, 2q)), plus the round trip.
    fn check(q: u64, n: usize, rng: &mut rand_chacha::ChaCha20Rng) {
        let m = Modulus::new(q).unwrap();
        let c = CompactNtt::new(m, n).unwrap();
        let t = NttTable::new(q, n).unwrap();
        assert_eq!((c.n(), c.modulus()), (n, &m));
        for _ in 0..2 {
            let a: Vec<u64> = (0..n).map(|_| rng.next_u64() % q).collect();
            let (mut x, mut y) = (a.clone(), a.clone());
            c.forward(&mut x).unwrap();
            t.forward(&mut y).unwrap();
            assert_eq!(x, y, "forward q={q:#x} n={n}");
            c.inverse(&mut x).unwrap();
            assert_eq!(x, a, "round trip q={q:#x} n={n}");
            let b: Vec<u64> = (0..n).map(|_| rng.next_u64() % (2 * q)).collect();
            let (mut x, mut y) = (b.clone(), b);
            c.inverse(&mut x).unwrap();
            t.inverse(&mut y).unwrap();
            assert_eq!(x, y, "inverse q={q:#x} n={n}");
        }
        // Extremes of the input ranges.
        for v in [0, q - 1] {
            let (mut x, mut y) = (std::vec![v; n], std::vec![v; n]);
            c.forward(&mut x).unwrap();
            t.forward(&mut y).unwrap();
            assert_eq!(x, y);
        }
        for v in [0, q - 1, q, 2 * q - 1] {
            let (mut x, mut y) = (std::vec![v; n], std::vec![v; n]);
            c.inverse(&mut x).unwrap();
            t.inverse(&mut y).unwrap();
            assert_eq!(x, y);
        }
    }

    #[test]
    fn matches_ntt_table_for_every_preset_prime() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(21);
        for lit in [
            presets::LEVELED_N14,
            presets::PRIVATE_N15,
            presets::DEVICE_N12,
            presets::BOOTSTRAP_N16,
        ] {
            for &q in lit.q.iter().chain(lit.p) {
                check(q, 1 << lit.log_n, &mut rng);
            }
        }
    }

    #[test]
    fn matches_ntt_table_for_every_size() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(22);
        for log_n in 1..=COMPACT_MAX_LOG_N {
            check(crate::params::primes::Q55[0], 1 << log_n, &mut rng);
            check(crate::params::primes::P61[0], 1 << log_n, &mut rng);
        }
        // Small primes: 12289 = 3 * 2^12 + 1, 7681 = 15 * 2^9 + 1.
        for log_n in 1..=11 {
            check(12289, 1 << log_n, &mut rng);
        }
        for log_n in 1..=8 {
            check(7681, 1 << log_n, &mut rng);
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        let m = Modulus::new(crate::params::primes::Q60).unwrap();
        for n in [0, 1, 3, 6, 1 << 17, 1 << 18] {
            assert_eq!(CompactNtt::new(m, n).unwrap_err(), NttError::BadDegree, "n={n}");
        }
        let m97 = Modulus::new(97).unwrap();
        assert_eq!(CompactNtt::new(m97, 1024).unwrap_err(), NttError::NotNttFriendly);
        let m12289 = Modulus::new(12289).unwrap();
        assert_eq!(CompactNtt::new(m12289, 1 << 13).unwrap_err(), NttError::NotNttFriendly);
        let c = CompactNtt::new(m12289, 16).unwrap();
        for len in [0, 8, 15, 17, 32] {
            let mut v = std::vec![0u64; len];
            assert_eq!(c.forward(&mut v).unwrap_err(), NttError::Length);
            assert_eq!(c.inverse(&mut v).unwrap_err(), NttError::Length);
        }
    }

    #[test]
    fn from_roots_matches_new_and_checks_its_roots() {
        use crate::ntt::primitive_root_2n;
        for (q, n) in [
            (crate::params::primes::Q55[3], 1 << 15),
            (crate::params::primes::Q60, 1 << 16),
            (12289, 2),
            (12289, 1 << 11),
        ] {
            let m = Modulus::new(q).unwrap();
            let psi = primitive_root_2n(&m, n).unwrap();
            let psi_inv = m.inv(psi);
            assert_eq!(CompactNtt::from_roots(m, n, psi, psi_inv).unwrap(), CompactNtt::new(m, n).unwrap());
            let bad = |p: u64, pi: u64| CompactNtt::from_roots(m, n, p, pi).unwrap_err();
            assert_eq!(bad(psi, m.mul(psi_inv, 2)), NttError::NotNttFriendly);
            // psi^2 has order N, not 2N; -psi is another primitive root (accepted).
            assert_eq!(bad(m.mul(psi, psi), m.mul(psi_inv, psi_inv)), NttError::NotNttFriendly);
            assert!(CompactNtt::from_roots(m, n, q - psi, q - psi_inv).is_ok());
            assert_eq!(bad(psi + q, psi_inv), NttError::NotNttFriendly);
            assert_eq!(bad(1, 1), NttError::NotNttFriendly);
            assert_eq!(CompactNtt::from_roots(m, 3, psi, psi_inv).unwrap_err(), NttError::BadDegree);
        }
        // q = 1 mod 2^12 only: N = 2^12 needs q = 1 mod 2^13.
        let m = Modulus::new(12289).unwrap();
        assert_eq!(CompactNtt::from_roots(m, 1 << 12, 1, 1).unwrap_err(), NttError::NotNttFriendly);
    }

    #[test]
    fn usable_through_the_trait() {
        fn round_trip<T: NegacyclicNtt>(t: &T, a: &mut [u64]) {
            t.forward(a).unwrap();
            t.inverse(a).unwrap();
        }
        let q = crate::params::primes::Q40[0];
        let c = CompactNtt::new(Modulus::new(q).unwrap(), 64).unwrap();
        let a: Vec<u64> = (0..64).map(|i| i * 1000 + 7).collect();
        let mut b = a.clone();
        round_trip(&c, &mut b);
        assert_eq!(a, b);
        assert_eq!((NegacyclicNtt::n(&c), NegacyclicNtt::modulus(&c).value()), (64, q));
    }

    #[test]
    fn const_construction_and_size() {
        const C: Result<CompactNtt, NttError> = match Modulus::new(crate::params::primes::Q61) {
            Some(m) => CompactNtt::new(m, 1 << 15),
            None => Err(NttError::NotNttFriendly),
        };
        let c = C.unwrap();
        assert_eq!(
            c,
            CompactNtt::new(Modulus::new(crate::params::primes::Q61).unwrap(), 1 << 15).unwrap()
        );
        // The figure quoted in the docs (fixed tables: the same for every N).
        assert_eq!(core::mem::size_of::<CompactNtt>(), 6216);
    }
}
