//! Roots of unity and the CKKS "special FFT".
//!
//! # What is being computed
//!
//! Write `L` for the slot count and `m(Y) = sum_{k<L} u_k Y^k` with complex `u_k` (the real and
//! imaginary parts of `u_k` are two real coefficients of the plaintext, see `super`). Decoding
//! evaluates `m` at the `L` points
//!
//! ```text
//! zeta_j = exp(2*pi*i * 5^j / (4L)),   j = 0..L,
//! ```
//!
//! which are the roots of `Y^L - i` (because `5^j = 1 mod 4`). This is the slot ordering of
//! Cheon, Kim, Kim and Song (ASIACRYPT 2017, "Homomorphic encryption for arithmetic of
//! approximate numbers", section 3.2/4: the canonical embedding restricted to `<5>` in
//! `Z_{4L}^*`), the same as HEAAN's `fftSpecial` and Lattigo's `SpecialFFT`.
//!
//! # Why a Cooley-Tukey recursion works
//!
//! `5^(L/2) = 2L + 1 (mod 4L)` for `L >= 2`, hence `zeta_{j + L/2} = -zeta_j`, and
//! `zeta_j^2 = exp(2*pi*i * 5^j / (4 * L/2))` is exactly the point set of the half-size problem.
//! With `m(Y) = E(Y^2) + Y*O(Y^2)` (even / odd coefficients) we get the radix-2
//! decimation-in-time butterfly
//!
//! ```text
//! m(zeta_j)       = E_j + zeta_j * O_j
//! m(zeta_{j+L/2}) = E_j - zeta_j * O_j,      j < L/2,
//! ```
//!
//! so: bit-reverse the input, then stages of block length `len = 2, 4, .., L` whose twiddle
//! for butterfly `j < len/2` is `exp(2*pi*i * (5^j mod 4len) / (4len))`. The inverse undoes the
//! stages in reverse order with conjugate twiddles, bit-reverses, and divides by `L` (each
//! inverse stage contributes a factor 1/2, applied once at the end).
//!
//! # Twiddles
//!
//! Every twiddle is computed directly with `libm::sin`/`cos` of a small, exactly reduced
//! argument (see [`root_of_unity`]), never by repeated multiplication, which would accumulate
//! `O(L * eps)` error. Stage `len` needs `len/2` twiddles; all stages together need `L - 1`.
//! They are either precomputed once into a table (layout: stage `len` at offset `len/2 - 1`)
//! or computed for each stage into caller scratch of `L/2` entries just before the stage runs
//! (still only `L - 1` sin/cos pairs per transform, i.e. `O(n)`).

use super::Complex;

/// `exp(2*pi*i * k / m)` for a power of two `m >= 4`, accurate to about one ulp.
///
/// The index is reduced modulo `m` exactly (integers), the quadrant is split off exactly
/// (multiplication by `i^q` only swaps and negates), and the remaining angle is folded into
/// `[0, pi/4]` with `cos(x) = sin(pi/2 - x)`, so `sin`/`cos` only ever see a small argument
/// `r * (pi/2) / (m/4)` with `r <= m/8`, whose only rounding is the final product
/// (division by the power of two `m/4` is exact).
pub(crate) fn root_of_unity(k: usize, m: usize) -> Complex {
    debug_assert!(m.is_power_of_two() && m >= 4);
    let k = k & (m - 1);
    let q = m / 4; // m/4 indices per quadrant, a power of two
    let quadrant = k / q;
    let r = k % q;
    let step = core::f64::consts::FRAC_PI_2 / (q as f64);
    // (c, s) = (cos, sin) of 2*pi*r/m, an angle in [0, pi/2).
    let (c, s) = if 2 * r <= q {
        let a = (r as f64) * step;
        (libm::cos(a), libm::sin(a))
    } else {
        let a = ((q - r) as f64) * step;
        (libm::sin(a), libm::cos(a))
    };
    // Multiply by i^quadrant (exact).
    match quadrant {
        0 => Complex::new(c, s),
        1 => Complex::new(-s, c),
        2 => Complex::new(-c, -s),
        _ => Complex::new(s, -c),
    }
}

/// Fills `out` (which must hold `len/2` entries) with the twiddles of the stage of block
/// length `len`: `out[j] = exp(2*pi*i * (5^j mod 4len) / (4len))`.
///
/// `len` is a power of two with `2 <= len <= 2^16` (validated by the callers), so `4len * 5`
/// fits even a 32-bit `usize`.
pub(crate) fn fill_stage_twiddles(len: usize, out: &mut [Complex]) {
    let m = 4 * len;
    let mask = m - 1;
    let mut p = 1usize; // 5^j mod 4len, kept exact in integers
    for w in out.iter_mut() {
        *w = root_of_unity(p, m);
        p = (p * 5) & mask;
    }
}

/// Number of entries of a full twiddle table for `slots` slots: `1 + 2 + .. + slots/2`.
pub(crate) const fn table_len(slots: usize) -> usize {
    slots.saturating_sub(1)
}

/// Number of scratch entries for per-stage twiddles: the largest stage needs `slots/2`.
pub(crate) const fn stage_scratch_len(slots: usize) -> usize {
    slots / 2
}

/// Fills a full twiddle table (all stages) for `slots` slots. `table.len() >= table_len(slots)`
/// must hold; returns `None` otherwise.
pub(crate) fn fill_table(slots: usize, table: &mut [Complex]) -> Option<()> {
    let mut len = 2;
    while len <= slots {
        let stage = table.get_mut(len / 2 - 1..len - 1)?;
        fill_stage_twiddles(len, stage);
        len <<= 1;
    }
    Some(())
}

/// Where the twiddles of a stage come from.
pub(crate) enum Twiddles<'a> {
    /// A full table filled by [`fill_table`].
    Table(&'a [Complex]),
    /// Scratch of at least `slots/2` entries; each stage's twiddles are computed into it.
    OnTheFly(&'a mut [Complex]),
}

impl Twiddles<'_> {
    /// The `len/2` twiddles of the stage of block length `len` (`len >= 2`).
    fn stage(&mut self, len: usize) -> Option<&[Complex]> {
        let h = len / 2;
        match self {
            Twiddles::Table(t) => t.get(h - 1..len - 1),
            Twiddles::OnTheFly(buf) => {
                let s = buf.get_mut(..h)?;
                fill_stage_twiddles(len, s);
                Some(&*s)
            }
        }
    }
}

/// Bit-reversal permutation of a power-of-two-length slice.
fn bit_reverse<T>(data: &mut [T]) {
    let l = data.len();
    if l <= 2 {
        return;
    }
    let shift = usize::BITS - l.trailing_zeros();
    for i in 0..l {
        let j = i.reverse_bits() >> shift;
        if i < j {
            // i, j < l: both in range by construction.
            data.swap(i, j);
        }
    }
}

/// Forward special FFT (decoding direction), in place: on input `data[k] = u_k`, on output
/// `data[j] = sum_k u_k zeta_j^k`. `data.len()` is a power of two. Returns `None` only if the
/// twiddle source is too short (the public API validates this beforehand).
pub(crate) fn special_fft(data: &mut [Complex], tw: &mut Twiddles<'_>) -> Option<()> {
    let l = data.len();
    bit_reverse(data);
    let mut len = 2;
    while len <= l {
        let w = tw.stage(len)?;
        let h = len / 2;
        for block in data.chunks_exact_mut(len) {
            let (lo, hi) = block.split_at_mut(h);
            for ((a, b), &w) in lo.iter_mut().zip(hi.iter_mut()).zip(w.iter()) {
                let u = *a;
                let v = *b * w;
                *a = u + v;
                *b = u - v;
            }
        }
        len <<= 1;
    }
    Some(())
}

/// Inverse special FFT (encoding direction) on split real/imaginary arrays, *without* the final
/// division by `L`: on output `(re[k] + i*im[k]) = sum_j z_j conj(zeta_j)^k` where on input
/// `z_j = re[j] + i*im[j]`. The caller divides by `L` (folded into the scaling).
///
/// The split layout lets the encoder run in place in the caller's coefficient buffer (whose
/// first `2L` entries are exactly the real parts followed by the imaginary parts in the dense
/// case), so the device needs no `L`-entry complex work buffer.
pub(crate) fn special_ifft_split(re: &mut [f64], im: &mut [f64], tw: &mut Twiddles<'_>) -> Option<()> {
    let l = re.len();
    if im.len() != l {
        return None;
    }
    let mut len = l;
    while len >= 2 {
        let w = tw.stage(len)?;
        let h = len / 2;
        for (rb, ib) in re.chunks_exact_mut(len).zip(im.chunks_exact_mut(len)) {
            let (rlo, rhi) = rb.split_at_mut(h);
            let (ilo, ihi) = ib.split_at_mut(h);
            let lanes = rlo.iter_mut().zip(ilo.iter_mut()).zip(rhi.iter_mut().zip(ihi.iter_mut()));
            for (((ar, ai), (br, bi)), w) in lanes.zip(w.iter()) {
                // Undo (a, b) = (x + w*y, x - w*y):  x = (a+b)/2,  y = conj(w)*(a-b)/2.
                let (sr, si) = (*ar + *br, *ai + *bi);
                let (dr, di) = (*ar - *br, *ai - *bi);
                *ar = sr;
                *ai = si;
                *br = dr * w.re + di * w.im;
                *bi = di * w.re - dr * w.im;
            }
        }
        len >>= 1;
    }
    bit_reverse(re);
    bit_reverse(im);
    Some(())
}
