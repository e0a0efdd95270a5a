//! Negacyclic number-theoretic transform over `Z_q[X]/(X^N + 1)`, one prime at a time.
//!
//! Forward: Cooley-Tukey with the powers of a primitive 2N-th root psi merged in (Longa and
//! Naehrig 2016, "Speeding up the NTT", Alg. 1), natural order in, bit-reversed order out.
//! Inverse: Gentleman-Sande (ibid. Alg. 2), bit-reversed in, natural out, N^-1 folded into the
//! twiddles of the last stage.
//! Butterflies are Harvey's lazy ones (Harvey 2014): values stay in [0, 4q) between stages and
//! twiddles use Shoup's precomputed quotients, so a butterfly costs one high multiplication and
//! no division. All control flow depends only on N, never on data, so the transform of secret
//! polynomials is constant time.
//!
//! Tables are storage-generic (`NttTable<S>`): `Vec<u64>` on the host, `[u64; N]` statics
//! (filled at start-up or in `const` context with [`fill_twiddles`]) on the device. The device's
//! encryption path only runs forward transforms; a table may carry empty inverse slices.

use crate::arith::{csub, Modulus};

// Wide passes run on AVX-512 IFMA for primes below 2^62 (`ntt_ifma`: a narrow product below
// 2^50, a wide one above), else on AVX2 when the host has it and lacks AVX-512 (x86-64 with std;
// runtime detection; `ntt_avx2` says why); the scalar code below is the reference and the only
// path elsewhere (firmware included).
#[cfg(all(feature = "std", target_arch = "x86_64"))]
use crate::ntt_avx2 as simd;
#[cfg(not(all(feature = "std", target_arch = "x86_64")))]
mod simd {
    use crate::arith::Modulus;
    pub(super) fn forward_radix4(_: &mut [u64], _: usize, _: &Modulus, _: (&[u64], &[u64]), _: (&[u64], &[u64])) -> bool {
        false
    }
    pub(super) fn forward_last_radix4(_: &mut [u64], _: &Modulus, _: (&[u64], &[u64]), _: (&[u64], &[u64]), _: bool) -> bool {
        false
    }
    pub(super) fn inverse_first_radix4(_: &mut [u64], _: &Modulus, _: (&[u64], &[u64]), _: (&[u64], &[u64])) -> bool {
        false
    }
    pub(super) fn forward_last_radix2(_: &mut [u64], _: &Modulus, _: (&[u64], &[u64]), _: bool) -> bool {
        false
    }
    pub(super) type Fold = Option<((u64, u64), (u64, u64))>;
    pub(super) fn inverse_radix4(_: &mut [u64], _: usize, _: &Modulus, _: (&[u64], &[u64]), _: (&[u64], &[u64]), _: Fold) -> bool {
        false
    }
    pub(super) fn inverse_last_radix2(_: &mut [u64], _: &Modulus, _: (u64, u64), _: (u64, u64)) -> bool {
        false
    }
}

/// Errors building or using an NTT table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NttError {
    /// N is not a power of two in [2, 2^17].
    BadDegree,
    /// q is not a usable prime modulus or q != 1 mod 2N.
    NotNttFriendly,
    /// A slice has the wrong length.
    Length,
    /// The inverse transform was requested from a forward-only table.
    NoInverseTable,
}

impl core::fmt::Display for NttError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::BadDegree => "ring degree must be a power of two between 2 and 2^17",
            Self::NotNttFriendly => "modulus is not an NTT-friendly prime (q = 1 mod 2N)",
            Self::Length => "buffer length does not match the ring degree",
            Self::NoInverseTable => "this NTT table was built forward-only",
        })
    }
}

/// One forward radix-4 group: the stage-s butterflies (x0, x2), (x1, x3) with twiddle `w1`,
/// then the stage-s+1 butterflies (x0, x1) with `w2a` and (x2, x3) with `w2b` (Shoup pairs).
/// Inputs in [0, 4q), outputs in [0, 4q).
#[inline(always)]
pub(crate) fn forward_group(m: &Modulus, x: [&mut u64; 4], w1: (u64, u64), w2a: (u64, u64), w2b: (u64, u64)) {
    let two_q = 2 * m.value();
    let [x0, x1, x2, x3] = x;
    let u0 = csub(*x0, two_q);
    let v0 = m.mul_shoup_lazy(*x2, w1.0, w1.1);
    let u1 = csub(*x1, two_q);
    let v1 = m.mul_shoup_lazy(*x3, w1.0, w1.1);
    let (y0, y2) = (u0 + v0, u0 + two_q - v0);
    let (y1, y3) = (u1 + v1, u1 + two_q - v1);
    let a0 = csub(y0, two_q);
    let b0 = m.mul_shoup_lazy(y1, w2a.0, w2a.1);
    let a2 = csub(y2, two_q);
    let b2 = m.mul_shoup_lazy(y3, w2b.0, w2b.1);
    *x0 = a0 + b0;
    *x1 = a0 + two_q - b0;
    *x2 = a2 + b2;
    *x3 = a2 + two_q - b2;
}

/// One inverse radix-4 group: stage A on (x0, x1) with `wa0` and (x2, x3) with `wa1`, then
/// stage B on (x0, x2), (x1, x3) with `wb`. Inputs in [0, 2q), outputs in [0, 2q).
#[inline(always)]
pub(crate) fn inverse_group(m: &Modulus, x: [&mut u64; 4], wa0: (u64, u64), wa1: (u64, u64), wb: (u64, u64)) {
    let two_q = 2 * m.value();
    let [x0, x1, x2, x3] = x;
    let (u0, v0, u1, v1) = (*x0, *x1, *x2, *x3);
    let y0 = csub(u0 + v0, two_q);
    let y1 = m.mul_shoup_lazy(u0 + two_q - v0, wa0.0, wa0.1);
    let y2 = csub(u1 + v1, two_q);
    let y3 = m.mul_shoup_lazy(u1 + two_q - v1, wa1.0, wa1.1);
    *x0 = csub(y0 + y2, two_q);
    *x2 = m.mul_shoup_lazy(y0 + two_q - y2, wb.0, wb.1);
    *x1 = csub(y1 + y3, two_q);
    *x3 = m.mul_shoup_lazy(y1 + two_q - y3, wb.0, wb.1);
}

/// A process-wide switch of the x86_64 SIMD paths, for tests and benchmarks; a no-op where those
/// paths do not exist (other targets, `no_std` builds).
macro_rules! simd_switch {
    ($(#[$doc:meta])* $name:ident => $target:path) => {
        $(#[$doc])*
        #[doc(hidden)]
        pub fn $name(enabled: bool) {
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            $target(enabled);
            #[cfg(not(all(feature = "std", target_arch = "x86_64")))]
            let _ = enabled;
        }
    };
}

simd_switch!(
    /// Turns the SIMD (AVX-512 IFMA and AVX2) passes off (`false`) or back on, process-wide, so
    /// tests and benchmarks can run the scalar reference path on any host. Results are identical
    /// either way.
    set_simd_enabled => simd::set_enabled
);

simd_switch!(
    /// Turns only the AVX-512 IFMA passes (primes below 2^62) off or back on, process-wide, so
    /// tests and benchmarks can compare them with the other paths on a CPU that has them.
    /// `set_simd_enabled` sets this too. Reduced outputs are identical either way.
    set_ifma_enabled => crate::ntt_ifma::set_enabled
);

simd_switch!(
    /// Runs the AVX2 passes on CPUs with AVX-512F too (`true`), where by default the scalar
    /// passes take the primes that IFMA cannot (they measured faster there; see `ntt_avx2`), so
    /// that tests and benchmarks reach the AVX2 path on such hosts. Results are identical either
    /// way.
    set_avx2_on_avx512 => simd::set_on_avx512
);

/// Which butterflies transform a prime on this host (`ntt_path`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NttPath {
    /// AVX-512 IFMA, q < 2^50: three IFMA operations per Shoup product. Lazy outputs
    /// (`NttTable::forward_lazy`) may differ from the scalar ones by q (still below 4q).
    IfmaNarrow,
    /// AVX-512 IFMA and DQ, 2^50 <= q < 2^62: the scalar Shoup quotient from six IFMA
    /// operations, bit-identical to the scalar passes.
    IfmaWide,
    /// AVX2 (hosts without AVX-512F, or `set_avx2_on_avx512`), bit-identical.
    Avx2,
    /// The scalar reference (the firmware, other architectures, `set_simd_enabled(false)`).
    Scalar,
}

impl NttPath {
    /// Relative cost of one transform on this path against the scalar passes' 8 at the same N,
    /// as measured on the AVX-512 IFMA Xeon of BENCHMARKS.md at N = 2^15 (narrow: 100 against
    /// 240 us; wide: 0.5-0.65x of the scalar time); AVX2 counts as scalar (within 10% either
    /// way).
    pub fn relative_cost(self) -> u64 {
        match self {
            Self::IfmaNarrow => 3,
            Self::IfmaWide => 5,
            Self::Avx2 | Self::Scalar => 8,
        }
    }
}

/// The path of the wide passes (all but the smallest N) for a prime `q` on this host: for
/// benchmark labels, tests, and the key switch's split of limbs between threads.
pub fn ntt_path(q: u64) -> NttPath {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    {
        match crate::ntt_ifma::width(q) {
            Some(crate::ntt_ifma::Width::Narrow) => NttPath::IfmaNarrow,
            Some(crate::ntt_ifma::Width::Wide) => NttPath::IfmaWide,
            None if simd::avx2_available() => NttPath::Avx2,
            None => NttPath::Scalar,
        }
    }
    #[cfg(not(all(feature = "std", target_arch = "x86_64")))]
    {
        let _ = q;
        NttPath::Scalar
    }
}

/// Bit reversal of the low `bits` bits of `x`.
#[inline(always)]
pub const fn bit_reverse(x: usize, bits: u32) -> usize {
    if bits == 0 {
        return 0;
    }
    x.reverse_bits() >> (usize::BITS - bits)
}

/// The canonical primitive 2N-th root of unity used everywhere (host and device must agree):
/// x^((q-1)/2N) for the smallest x >= 2 whose power has order exactly 2N.
pub const fn primitive_root_2n(m: &Modulus, n: usize) -> Option<u64> {
    let q = m.value();
    let two_n = 2 * n as u64;
    if n < 2 || !n.is_power_of_two() || !(q - 1).is_multiple_of(two_n) {
        return None;
    }
    let mut x = 2u64;
    while x < 1000 {
        let psi = m.pow(x, (q - 1) / two_n);
        // Order divides 2N; psi^N = -1 rules out every proper divisor.
        if m.pow(psi, n as u64) == q - 1 {
            return Some(psi);
        }
        x += 1;
    }
    None
}

/// Fills `w[bitrev(k)] = root^k` and its Shoup quotients (`root = psi` for the forward table,
/// `psi^-1` for the inverse one). `const` so firmware can place tables in flash.
pub const fn fill_twiddles(m: &Modulus, root: u64, w: &mut [u64], w_shoup: &mut [u64]) {
    let n = w.len();
    let bits = n.trailing_zeros();
    let mut p = 1u64;
    let mut k = 0;
    while k < n {
        let idx = bit_reverse(k, bits);
        w[idx] = p;
        w_shoup[idx] = m.shoup(p);
        p = m.mul(p, root);
        k += 1;
    }
}

/// A negacyclic NTT for one prime: what the streamed encryptors need from a transform, so the
/// same encryption code runs over precomputed tables ([`NttTable`]) or, on a device whose RAM
/// cannot hold N-word tables, over twiddles computed per block
/// ([`crate::ntt_compact::CompactNtt`]). Both give the same words.
pub trait NegacyclicNtt {
    /// Ring degree.
    fn n(&self) -> usize;
    /// The prime.
    fn modulus(&self) -> &Modulus;
    /// In-place forward transform: natural order in [0, q) in, bit-reversed order in [0, q) out.
    fn forward(&self, a: &mut [u64]) -> Result<(), NttError>;
    /// In-place inverse transform: bit-reversed order in [0, 2q) in, natural order in [0, q) out.
    fn inverse(&self, a: &mut [u64]) -> Result<(), NttError>;
}

impl<S: AsRef<[u64]>> NegacyclicNtt for NttTable<S> {
    fn n(&self) -> usize {
        NttTable::n(self)
    }
    fn modulus(&self) -> &Modulus {
        NttTable::modulus(self)
    }
    fn forward(&self, a: &mut [u64]) -> Result<(), NttError> {
        NttTable::forward(self, a)
    }
    fn inverse(&self, a: &mut [u64]) -> Result<(), NttError> {
        NttTable::inverse(self, a)
    }
}

/// Precomputed twiddles for one prime and one N.
#[derive(Clone, Debug)]
pub struct NttTable<S> {
    modulus: Modulus,
    log_n: u32,
    fwd: S,
    fwd_shoup: S,
    inv: S,
    inv_shoup: S,
    n_inv: u64,
    n_inv_shoup: u64,
    /// inv[1] * N^-1 mod q (the last inverse stage's twiddle with N^-1 folded in) and its
    /// Shoup quotient; 0 for a forward-only table.
    inv_last: u64,
    inv_last_shoup: u64,
}

/// Host-side owned table.
#[cfg(feature = "alloc")]
pub type NttTableOwned = NttTable<alloc::vec::Vec<u64>>;

/// Number of u64 words of storage a full (forward + inverse) table needs.
pub const fn ntt_table_words(n: usize) -> usize {
    4 * n
}

impl<S: AsRef<[u64]>> NttTable<S> {
    /// Wraps precomputed storage (from [`fill_twiddles`]); `inv`/`inv_shoup` may be empty
    /// for a forward-only table. Checks the lengths and the modulus, not the values.
    pub fn from_parts(modulus: Modulus, n: usize, fwd: S, fwd_shoup: S, inv: S, inv_shoup: S) -> Result<Self, NttError> {
        if n < 2 || !n.is_power_of_two() || n > 1 << 17 {
            return Err(NttError::BadDegree);
        }
        if !(modulus.value() - 1).is_multiple_of(2 * n as u64) {
            return Err(NttError::NotNttFriendly);
        }
        let inv_len = inv.as_ref().len();
        if fwd.as_ref().len() != n || fwd_shoup.as_ref().len() != n || inv_shoup.as_ref().len() != inv_len || (inv_len != 0 && inv_len != n)
        {
            return Err(NttError::Length);
        }
        let n_inv = modulus.inv(n as u64 % modulus.value());
        let inv_last = inv.as_ref().get(1).map_or(0, |&w1| modulus.mul(w1, n_inv));
        Ok(Self {
            modulus,
            log_n: n.trailing_zeros(),
            fwd,
            fwd_shoup,
            inv,
            inv_shoup,
            n_inv,
            n_inv_shoup: modulus.shoup(n_inv),
            inv_last,
            inv_last_shoup: modulus.shoup(inv_last),
        })
    }

    #[inline(always)]
    pub fn n(&self) -> usize {
        1 << self.log_n
    }

    #[inline(always)]
    pub fn modulus(&self) -> &Modulus {
        &self.modulus
    }

    /// Forward-only table (no inverse slices)?
    pub fn is_forward_only(&self) -> bool {
        self.inv.as_ref().is_empty()
    }

    /// In-place forward negacyclic NTT; input in [0, 4q) (every butterfly group takes lazy
    /// inputs), output in [0, q), bit-reversed order.
    pub fn forward(&self, a: &mut [u64]) -> Result<(), NttError> {
        if a.len() != self.n() {
            return Err(NttError::Length);
        }
        // The reduction to [0, q) is fused into the last pass (no separate pass over the data).
        self.forward_impl::<true>(a);
        Ok(())
    }

    /// Forward transform of inputs in [0, 4q) leaving outputs in [0, 4q); the caller reduces.
    /// Length is `self.n()`.
    pub fn forward_lazy(&self, a: &mut [u64]) {
        self.forward_impl::<false>(a);
    }

    /// The forward transform; `REDUCE` maps the last pass's [0, 4q) outputs to [0, q) as they
    /// are written (`forward`), otherwise they are left lazy (`forward_lazy`).
    #[inline(always)]
    fn forward_impl<const REDUCE: bool>(&self, a: &mut [u64]) {
        let n = self.n();
        let m = self.modulus;
        let q = m.value();
        let two_q = 2 * q;
        let w = self.fwd.as_ref();
        let ws = self.fwd_shoup.as_ref();
        let out = |x: u64| if REDUCE { csub(csub(x, two_q), q) } else { x };
        // `t` is the butterfly distance of the current stage, `blocks` its number of blocks.
        let mut t = n >> 1;
        let mut blocks = 1;
        // Two stages per pass over the data (radix-4 shape) halve the memory traffic; each
        // group of four values x0, x1 (= x0 + t/2), x2 (= x0 + t), x3 runs the stage-s
        // butterflies (x0, x2), (x1, x3) and then the stage-s+1 butterflies (x0, x1), (x2, x3).
        // Iterating by chunks (not offsets) lets the compiler drop bounds checks.
        while t >= 4 {
            let h = t / 2;
            let (tw1, tws1) = (&w[blocks..2 * blocks], &ws[blocks..2 * blocks]);
            let (tw2, tws2) = (&w[2 * blocks..4 * blocks], &ws[2 * blocks..4 * blocks]);
            if simd::forward_radix4(a, t, &m, (tw1, tws1), (tw2, tws2)) {
                t >>= 2;
                blocks <<= 2;
                continue;
            }
            for (i, block) in a.chunks_exact_mut(2 * t).enumerate() {
                let (w1, ws1) = (tw1[i], tws1[i]);
                let (w2a, ws2a, w2b, ws2b) = (tw2[2 * i], tws2[2 * i], tw2[2 * i + 1], tws2[2 * i + 1]);
                let (lo, hi) = block.split_at_mut(t);
                let (q0, q1) = lo.split_at_mut(h);
                let (q2, q3) = hi.split_at_mut(h);
                for (((x0, x1), x2), x3) in q0.iter_mut().zip(q1.iter_mut()).zip(q2.iter_mut()).zip(q3.iter_mut()) {
                    forward_group(&m, [x0, x1, x2, x3], (w1, ws1), (w2a, ws2a), (w2b, ws2b));
                }
            }
            t >>= 2;
            blocks <<= 2;
        }
        if t == 2 {
            // log2 N even: the last two stages as one radix-4 pass over groups of four
            // consecutive values (blocks = N/4), with the output reduction fused in.
            let (tw1, tws1) = (&w[blocks..2 * blocks], &ws[blocks..2 * blocks]);
            let (tw2, tws2) = (&w[2 * blocks..4 * blocks], &ws[2 * blocks..4 * blocks]);
            if simd::forward_last_radix4(a, &m, (tw1, tws1), (tw2, tws2), REDUCE) {
                return;
            }
            let twiddles = tw1.iter().zip(tws1).zip(tw2.chunks_exact(2).zip(tws2.chunks_exact(2)));
            for (x, ((&w1, &ws1), (w2, ws2))) in a.chunks_exact_mut(4).zip(twiddles) {
                let u0 = csub(x[0], two_q);
                let v0 = m.mul_shoup_lazy(x[2], w1, ws1);
                let u1 = csub(x[1], two_q);
                let v1 = m.mul_shoup_lazy(x[3], w1, ws1);
                let (y0, y2) = (u0 + v0, u0 + two_q - v0);
                let (y1, y3) = (u1 + v1, u1 + two_q - v1);
                let a0 = csub(y0, two_q);
                let b0 = m.mul_shoup_lazy(y1, w2[0], ws2[0]);
                let a2 = csub(y2, two_q);
                let b2 = m.mul_shoup_lazy(y3, w2[1], ws2[1]);
                x[0] = out(a0 + b0);
                x[1] = out(a0 + two_q - b0);
                x[2] = out(a2 + b2);
                x[3] = out(a2 + two_q - b2);
            }
        } else if t == 1 {
            // log2 N odd: one radix-2 stage on adjacent pairs (blocks = N/2) finishes.
            let (tw, tws) = (&w[blocks..2 * blocks], &ws[blocks..2 * blocks]);
            if simd::forward_last_radix2(a, &m, (tw, tws), REDUCE) {
                return;
            }
            for (pair, (&wi, &wsi)) in a.chunks_exact_mut(2).zip(tw.iter().zip(tws)) {
                let u = csub(pair[0], two_q);
                let v = m.mul_shoup_lazy(pair[1], wi, wsi);
                pair[0] = out(u + v);
                pair[1] = out(u + two_q - v);
            }
        }
    }

    /// In-place inverse negacyclic NTT; input bit-reversed in [0, 2q), output natural in [0, q).
    pub fn inverse(&self, a: &mut [u64]) -> Result<(), NttError> {
        let n = self.n();
        if a.len() != n {
            return Err(NttError::Length);
        }
        if self.is_forward_only() {
            return Err(NttError::NoInverseTable);
        }
        let m = self.modulus;
        let two_q = 2 * m.value();
        let w = self.inv.as_ref();
        let ws = self.inv_shoup.as_ref();
        let (ni, nis, il, ils) = (self.n_inv, self.n_inv_shoup, self.inv_last, self.inv_last_shoup);
        let mut t = 1;
        let mut blocks = n >> 1;
        // Two stages per pass, as in the forward transform: stage A (distance t) on the pairs
        // (x0, x1), (x2, x3) of each group, then stage B (distance 2t) on (x0, x2), (x1, x3).
        while blocks >= 4 {
            let (twa, twsa) = (&w[blocks..2 * blocks], &ws[blocks..2 * blocks]);
            let (twb, twsb) = (&w[blocks / 2..blocks], &ws[blocks / 2..blocks]);
            if t == 1 {
                // First pass: groups of four consecutive values.
                if simd::inverse_first_radix4(a, &m, (twa, twsa), (twb, twsb)) {
                    t <<= 2;
                    blocks >>= 2;
                    continue;
                }
                let twiddles = twa.chunks_exact(2).zip(twsa.chunks_exact(2)).zip(twb.iter().zip(twsb));
                for (x, ((wa, wsa), (&wb, &wsb))) in a.chunks_exact_mut(4).zip(twiddles) {
                    let (u0, v0, u1, v1) = (x[0], x[1], x[2], x[3]);
                    let y0 = csub(u0 + v0, two_q);
                    let y1 = m.mul_shoup_lazy(u0 + two_q - v0, wa[0], wsa[0]);
                    let y2 = csub(u1 + v1, two_q);
                    let y3 = m.mul_shoup_lazy(u1 + two_q - v1, wa[1], wsa[1]);
                    x[0] = csub(y0 + y2, two_q);
                    x[2] = m.mul_shoup_lazy(y0 + two_q - y2, wb, wsb);
                    x[1] = csub(y1 + y3, two_q);
                    x[3] = m.mul_shoup_lazy(y1 + two_q - y3, wb, wsb);
                }
            } else if !simd::inverse_radix4(a, t, &m, (twa, twsa), (twb, twsb), None) {
                for (i, block) in a.chunks_exact_mut(4 * t).enumerate() {
                    let (wa0, wsa0, wa1, wsa1) = (twa[2 * i], twsa[2 * i], twa[2 * i + 1], twsa[2 * i + 1]);
                    let (wb, wsb) = (twb[i], twsb[i]);
                    let (lo, hi) = block.split_at_mut(2 * t);
                    let (q0, q1) = lo.split_at_mut(t);
                    let (q2, q3) = hi.split_at_mut(t);
                    for (((x0, x1), x2), x3) in q0.iter_mut().zip(q1.iter_mut()).zip(q2.iter_mut()).zip(q3.iter_mut()) {
                        inverse_group(&m, [x0, x1, x2, x3], (wa0, wsa0), (wa1, wsa1), (wb, wsb));
                    }
                }
            }
            t <<= 2;
            blocks >>= 2;
        }
        // The last stage has the single twiddle inv[1]; N^-1 is folded into it: the sums are
        // multiplied by N^-1 and the differences by inv_last = inv[1] N^-1, both with a full
        // Shoup reduction (any u64 input, output in [0, q)). Same residues as the lazy
        // butterfly followed by a separate multiplication by N^-1, and both canonical, so the
        // output is bit-identical, with N/2 fewer products and one pass less.
        if blocks == 2 {
            // log2 N even: stage A (twiddles inv[2], inv[3]) and the last stage in one pass.
            let fold = Some(((ni, nis), (il, ils)));
            if simd::inverse_radix4(a, t, &m, (&w[2..4], &ws[2..4]), (&w[1..2], &ws[1..2]), fold) {
                return Ok(());
            }
            let (wa0, wsa0, wa1, wsa1) = (w[2], ws[2], w[3], ws[3]);
            let (lo, hi) = a.split_at_mut(2 * t);
            let (q0, q1) = lo.split_at_mut(t);
            let (q2, q3) = hi.split_at_mut(t);
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
            if simd::inverse_last_radix2(a, &m, (ni, nis), (il, ils)) {
                return Ok(());
            }
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

#[cfg(feature = "alloc")]
impl NttTable<alloc::vec::Vec<u64>> {
    /// Builds a full table for prime q and degree n.
    pub fn new(q: u64, n: usize) -> Result<Self, NttError> {
        use alloc::vec;
        let m = Modulus::new(q).ok_or(NttError::NotNttFriendly)?;
        if n < 2 || !n.is_power_of_two() || n > 1 << 17 {
            return Err(NttError::BadDegree);
        }
        let psi = primitive_root_2n(&m, n).ok_or(NttError::NotNttFriendly)?;
        let (mut f, mut fs, mut i, mut is) = (vec![0; n], vec![0; n], vec![0; n], vec![0; n]);
        fill_twiddles(&m, psi, &mut f, &mut fs);
        fill_twiddles(&m, m.inv(psi), &mut i, &mut is);
        Self::from_parts(m, n, f, fs, i, is)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::{RngCore, SeedableRng};
    use std::vec;
    use std::vec::Vec;

    fn naive_negacyclic(a: &[u64], b: &[u64], m: &Modulus) -> Vec<u64> {
        let n = a.len();
        let mut c = vec![0u64; n];
        for i in 0..n {
            for j in 0..n {
                let p = m.mul(a[i], b[j]);
                if i + j < n {
                    c[i + j] = m.add(c[i + j], p);
                } else {
                    c[i + j - n] = m.sub(c[i + j - n], p);
                }
            }
        }
        c
    }

    #[test]
    fn ntt_product_matches_naive_negacyclic_product() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        for &(q, n) in &[
            (0xffffffffffc0001u64, 16usize),
            (0x10000140001, 256),
            (0x1fffffffffe00001, 1024),
            (12289, 512),
            (0x7fffe60001, 64),
        ] {
            let t = NttTable::new(q, n).unwrap();
            let m = *t.modulus();
            let a: Vec<u64> = (0..n).map(|_| rng.next_u64() % q).collect();
            let b: Vec<u64> = (0..n).map(|_| rng.next_u64() % q).collect();
            let expect = naive_negacyclic(&a, &b, &m);
            let (mut fa, mut fb) = (a.clone(), b.clone());
            t.forward(&mut fa).unwrap();
            t.forward(&mut fb).unwrap();
            let mut c: Vec<u64> = fa.iter().zip(&fb).map(|(x, y)| m.mul(*x, *y)).collect();
            t.inverse(&mut c).unwrap();
            assert_eq!(c, expect, "q={q:#x} n={n}");
        }
    }

    #[test]
    fn round_trip_all_sizes() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
        let q = 0xffffffffffc0001u64;
        for log_n in 1..=16 {
            let n = 1usize << log_n;
            let t = NttTable::new(q, n).unwrap();
            let a: Vec<u64> = (0..n).map(|_| rng.next_u64() % q).collect();
            let mut b = a.clone();
            t.forward(&mut b).unwrap();
            assert!(b.iter().all(|&x| x < q));
            t.inverse(&mut b).unwrap();
            assert_eq!(a, b, "n = {n}");
        }
    }

    #[test]
    fn forward_output_is_evaluation_at_odd_powers_of_psi() {
        // Known-answer check independent of the butterfly code: slot bitrev(k) of NTT(a) is
        // a(psi^(2k+1)).
        let q = 0x10000140001u64;
        let n = 32;
        let m = Modulus::new(q).unwrap();
        let psi = primitive_root_2n(&m, n).unwrap();
        let t = NttTable::new(q, n).unwrap();
        let a: Vec<u64> = (0..n as u64).map(|i| (i * i + 3) % q).collect();
        let mut f = a.clone();
        t.forward(&mut f).unwrap();
        for k in 0..n {
            let x = m.pow(psi, 2 * k as u64 + 1);
            let mut acc = 0;
            for c in a.iter().rev() {
                acc = m.add(m.mul(acc, x), *c);
            }
            assert_eq!(f[bit_reverse(k, 5)], acc);
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert_eq!(NttTable::new(0x10000140001, 3).unwrap_err(), NttError::BadDegree);
        assert_eq!(NttTable::new(97, 1024).unwrap_err(), NttError::NotNttFriendly);
        let t = NttTable::new(12289, 16).unwrap();
        assert_eq!(t.forward(&mut [0u64; 8]).unwrap_err(), NttError::Length);
        let m = Modulus::new(12289).unwrap();
        let (e1, e2): (&[u64], &[u64]) = (&[], &[]);
        let fwd_only = NttTable::from_parts(m, 4, &[0u64; 4][..], &[0; 4][..], e1, e2).unwrap();
        assert_eq!(fwd_only.inverse(&mut [0u64; 4]).unwrap_err(), NttError::NoInverseTable);
    }
}
