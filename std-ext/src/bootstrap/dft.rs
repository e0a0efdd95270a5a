//! The slot <-> coefficient maps of CKKS as products of sparse "butterfly" matrices, in the
//! plaintext domain (f64). `linear` turns the grouped products into homomorphic transforms.
//!
//! With `n` slots (`gap = N / 2n`), slot `j` of a plaintext is `sum_k u_k w_j^k`, where
//! `u_k = m_(k gap) + i m_((k+n) gap)` are its packed coefficients and
//! `w_j = exp(2 pi i (5^j mod 4n) / 4n)` (core's `encode`, module docs). Splitting `k` into even
//! and odd halves gives the radix-2 recursion of the "special FFT" (Cheon, Han, Kim, Kim, Song,
//! SAC 2018, "Bootstrapping for approximate homomorphic encryption", section 4; Chen, Chillotti,
//! Song, EUROCRYPT 2019, "Improved bootstrapping for approximate homomorphic encryption"):
//! with the input in bit-reversed order, `V = S_L ... S_1`, `L = log2 n`, where stage `S_l`
//! mixes slots `p` and `p + h` (`h = 2^(l-1)`) inside blocks of `2h` with the twiddle
//! `exp(2 pi i (5^j mod 8h) / 8h)`. Every stage has three cyclic diagonals (offsets 0, +h, -h),
//! so a product of `g` consecutive stages has at most `2^(g+1) - 1`, all multiples of the
//! smallest `h`: that is what makes a group one baby-step giant-step transform.
//!
//! SlotsToCoeffs evaluates `V` on bit-reversed coefficients and CoeffsToSlots `V^-1`, leaving
//! them bit-reversed; EvalMod in between is slot-wise, so the order never needs fixing.

use clifhe_core::encode::Complex;
use std::collections::BTreeMap;
use std::f64::consts::PI;

/// A square matrix by its nonzero cyclic diagonals: `M v = sum_d diag_d . rot(v, d)` with
/// `rot(v, d)[p] = v[(p + d) mod n]` (a left rotation by `d`, the evaluator's `rotate`).
#[derive(Clone, Debug, PartialEq)]
pub struct DiagonalMatrix {
    n: usize,
    diags: BTreeMap<usize, Vec<Complex>>,
}

impl DiagonalMatrix {
    pub fn identity(n: usize) -> Self {
        let mut diags = BTreeMap::new();
        diags.insert(0, vec![Complex::new(1.0, 0.0); n]);
        Self { n, diags }
    }

    pub fn dim(&self) -> usize {
        self.n
    }

    /// Offsets and diagonals, offsets in `0..n`.
    pub fn diagonals(&self) -> &BTreeMap<usize, Vec<Complex>> {
        &self.diags
    }

    fn add_entry(&mut self, offset: usize, row: usize, v: Complex) {
        let n = self.n;
        let d = self.diags.entry(offset % n).or_insert_with(|| vec![Complex::default(); n]);
        d[row] += v;
    }

    /// `self * other` (apply `other` first): diag'_(d+e) += a_d . rot(b_e, d).
    pub fn mul(&self, other: &Self) -> Self {
        let n = self.n;
        let mut out = Self { n, diags: BTreeMap::new() };
        for (&d, a) in &self.diags {
            for (&e, b) in &other.diags {
                let acc = out.diags.entry((d + e) % n).or_insert_with(|| vec![Complex::default(); n]);
                for p in 0..n {
                    acc[p] += a[p] * b[(p + d) % n];
                }
            }
        }
        out
    }

    /// Multiplies every entry by `c`.
    pub fn scale(&mut self, c: Complex) {
        self.diags.values_mut().flat_map(|d| d.iter_mut()).for_each(|x| *x *= c);
    }

    /// The same transform on `2n` slots holding a vector twice, `[v, v]` (what an `n`-slot
    /// message reads as on `2n` slots): each diagonal repeated, each offset the signed rotation
    /// it stands for (offset `n - h` rotates by `-h`, which is `2n - h` on `2n` slots). Exact on
    /// such inputs: `rot_2n([v, v], t)[p] = rot_n(v, t)[p mod n]`.
    pub fn repeated_twice(&self) -> Self {
        let n = self.n;
        let diags = self
            .diags
            .iter()
            .map(|(&d, diag)| {
                let t = if d > n / 2 { d as i64 - n as i64 } else { d as i64 };
                (t.rem_euclid(2 * n as i64) as usize, diag.iter().chain(diag).copied().collect())
            })
            .collect();
        Self { n: 2 * n, diags }
    }

    /// Zeroes the output rows `from..` (a slot mask applied after the transform, folded into
    /// its diagonals).
    fn zero_rows_from(&mut self, from: usize) {
        for d in self.diags.values_mut() {
            d[from..].iter_mut().for_each(|x| *x = Complex::default());
        }
    }

    /// Plaintext reference of the homomorphic transform.
    pub fn apply(&self, v: &[Complex]) -> Vec<Complex> {
        let n = self.n;
        let mut out = vec![Complex::default(); n];
        for (&d, diag) in &self.diags {
            for p in 0..n {
                out[p] += diag[p] * v[(p + d) % n];
            }
        }
        out
    }
}

/// Twiddle of stage block size `2h` at position `j < h`: `exp(2 pi i (5^j mod 8h) / 8h)`.
fn twiddle(j: usize, h: usize) -> Complex {
    let m = 8 * h;
    let mut e = 1usize;
    for _ in 0..j {
        e = (e * 5) % m;
    }
    let a = 2.0 * PI * e as f64 / m as f64;
    Complex::new(a.cos(), a.sin())
}

/// Stage `S_l` (`h = 2^(l-1)`) of `V`, or its inverse.
pub fn stage(n: usize, h: usize, inverse: bool) -> DiagonalMatrix {
    let mut m = DiagonalMatrix { n, diags: BTreeMap::new() };
    let one = Complex::new(1.0, 0.0);
    let half = Complex::new(0.5, 0.0);
    // Twiddles per position in the block; 5^j mod 8h computed incrementally.
    let mut w = Vec::with_capacity(h);
    let mut e = 1usize;
    for _ in 0..h {
        let a = 2.0 * PI * e as f64 / (8 * h) as f64;
        w.push(Complex::new(a.cos(), a.sin()));
        e = (e * 5) % (8 * h);
    }
    for p in 0..n {
        let r = p % (2 * h);
        if r < h {
            if inverse {
                // u = (a + b) / 2
                m.add_entry(0, p, half);
                m.add_entry(h, p, half);
            } else {
                // a = u + w v
                m.add_entry(0, p, one);
                m.add_entry(h, p, w[r]);
            }
        } else {
            let j = r - h;
            if inverse {
                // v = (a - b) / 2w
                let c = w[j].conj() * 0.5; // 1 / 2w, |w| = 1
                m.add_entry(n - h, p, c);
                m.add_entry(0, p, -c);
            } else {
                // b = u - w v
                m.add_entry(n - h, p, one);
                m.add_entry(0, p, -w[j]);
            }
        }
    }
    m
}

/// Splits `stages` butterfly stages into `groups` consecutive runs, as even as possible with
/// the larger runs first. Returns the stage counts.
pub fn split_stages(stages: usize, groups: usize) -> Vec<usize> {
    let groups = groups.clamp(1, stages.max(1));
    (0..groups).map(|g| stages / groups + usize::from(g < stages % groups)).collect()
}

/// SlotsToCoeffs as `groups` matrices in the order they are applied: group `g` is the product
/// of stages with the smallest strides first. Input: bit-reversed packed coefficients.
pub fn slots_to_coeffs_groups(n: usize, groups: usize) -> Vec<DiagonalMatrix> {
    let stages = n.trailing_zeros() as usize;
    let mut out = Vec::new();
    let mut l = 0;
    for count in split_stages(stages, groups) {
        let mut g = DiagonalMatrix::identity(n);
        for s in l..l + count {
            g = stage(n, 1 << s, false).mul(&g);
        }
        l += count;
        out.push(g);
    }
    out
}

/// CoeffsToSlots: the inverse of [`slots_to_coeffs_groups`], largest strides first, output in
/// bit-reversed order. `groups` counts from the first applied.
pub fn coeffs_to_slots_groups(n: usize, groups: usize) -> Vec<DiagonalMatrix> {
    let stages = n.trailing_zeros() as usize;
    let mut out = Vec::new();
    let mut top = stages;
    for count in split_stages(stages, groups) {
        let mut g = DiagonalMatrix::identity(n);
        for s in (top - count..top).rev() {
            g = stage(n, 1 << s, true).mul(&g);
        }
        top -= count;
        out.push(g);
    }
    out
}

/// [`coeffs_to_slots_groups`] for `n` sparse slots, read on `2n` slots (the bootstrap's
/// real/imaginary repacking, Bossuat et al., EUROCRYPT 2021, section 4.4; Lattigo's
/// `RepackImag2Real`): the input is an `n`-slot message `[t, t]`, the output `[z, 0]` with `z`
/// the `n`-slot output (the last group's rows `n..2n` are zero). The real and imaginary parts
/// of `z` then fit in one `2n`-slot ciphertext `[Re z, Im z]`, so EvalMod runs once.
pub fn coeffs_to_slots_groups_packed(n: usize, groups: usize) -> Vec<DiagonalMatrix> {
    let mut out: Vec<DiagonalMatrix> = coeffs_to_slots_groups(n, groups)
        .iter()
        .map(DiagonalMatrix::repeated_twice)
        .collect();
    if let Some(last) = out.last_mut() {
        last.zero_rows_from(n);
    }
    out
}

/// [`slots_to_coeffs_groups`] for `n` sparse slots from the packed `2n`-slot form `[a, b]` of
/// [`coeffs_to_slots_groups_packed`]. The first group is the repeated one after the slot-wise
/// factor `[1, i]` (folded into its diagonals, so it keeps their count): its output `x`
/// satisfies `x + rot(x, n) = [y1, y1]` with `y1` the first group of `V` applied to `a + i b`
/// (a repeated transform commutes with the rotation by `n`), one rotation and no level. The
/// later groups are the repeated ones; the output is the `n`-slot message `V (a + i b)` read on
/// `2n` slots, `[y, y]`.
pub fn slots_to_coeffs_groups_packed(n: usize, groups: usize) -> Vec<DiagonalMatrix> {
    let mut factor = DiagonalMatrix {
        n: 2 * n,
        diags: BTreeMap::new(),
    };
    factor
        .diags
        .insert(0, [vec![Complex::new(1.0, 0.0); n], vec![Complex::I; n]].concat());
    let mut out: Vec<DiagonalMatrix> = slots_to_coeffs_groups(n, groups)
        .iter()
        .map(DiagonalMatrix::repeated_twice)
        .collect();
    if let Some(first) = out.first_mut() {
        *first = first.mul(&factor);
    }
    out
}

/// Bit-reversal permutation of `v` (length a power of two).
pub fn bit_reverse(v: &[Complex]) -> Vec<Complex> {
    let n = v.len();
    let bits = n.trailing_zeros();
    (0..n)
        .map(|i| {
            if bits == 0 {
                v[0]
            } else {
                v[i.reverse_bits() >> (usize::BITS - bits)]
            }
        })
        .collect()
}

/// Direct evaluation of `V u` from the definition (test reference, O(n^2)).
pub fn special_dft_reference(u: &[Complex]) -> Vec<Complex> {
    let n = u.len();
    (0..n)
        .map(|j| {
            // twiddle(j, n/2) is exp(2 pi i (5^j mod 4n) / 4n), the root of slot j
            let w = twiddle(j, (n / 2).max(1));
            let mut acc = Complex::default();
            let mut p = Complex::new(1.0, 0.0);
            for x in u {
                acc += *x * p;
                p *= w;
            }
            acc
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u64) -> Vec<Complex> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let a = (x >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let b = (x >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
                Complex::new(a, b)
            })
            .collect()
    }

    fn max_err(a: &[Complex], b: &[Complex]) -> f64 {
        a.iter().zip(b).map(|(x, y)| (*x - *y).abs()).fold(0.0, f64::max)
    }

    #[test]
    fn grouped_stages_compute_the_special_dft_of_bit_reversed_input() {
        for log_n in 1..=9 {
            let n = 1usize << log_n;
            let u = values(n, log_n as u64);
            let want = special_dft_reference(&u);
            for groups in 1..=4 {
                let mut v = bit_reverse(&u);
                for g in slots_to_coeffs_groups(n, groups) {
                    v = g.apply(&v);
                }
                assert!(max_err(&v, &want) < 1e-9, "n={n} groups={groups} {}", max_err(&v, &want));
                let mut back = want.clone();
                for g in coeffs_to_slots_groups(n, groups) {
                    back = g.apply(&back);
                }
                assert!(max_err(&back, &bit_reverse(&u)) < 1e-9, "n={n} groups={groups}");
            }
        }
    }

    #[test]
    fn packed_groups_carry_real_and_imaginary_parts_in_one_vector() {
        for log_n in 1..=8 {
            let n = 1usize << log_n;
            let u = values(n, 100 + log_n as u64);
            let y = special_dft_reference(&u);
            let twice = |v: &[Complex]| [v, v].concat();
            for groups in 1..=3 {
                // CoeffsToSlots on [y, y]: [z, 0] with z the bit-reversed u
                let mut v = twice(&y);
                for g in coeffs_to_slots_groups_packed(n, groups) {
                    assert_eq!(g.dim(), 2 * n);
                    v = g.apply(&v);
                }
                let z = bit_reverse(&u);
                assert!(max_err(&v[..n], &z) < 1e-9, "n={n} groups={groups}");
                assert!(v[n..].iter().all(|x| x.abs() < 1e-12));
                // [Re z, Im z] back through SlotsToCoeffs: [y, y]
                let packed: Vec<Complex> = z
                    .iter()
                    .map(|x| Complex::from_real(x.re))
                    .chain(z.iter().map(|x| Complex::from_real(x.im)))
                    .collect();
                let mut back = packed;
                for (i, g) in slots_to_coeffs_groups_packed(n, groups).iter().enumerate() {
                    assert_eq!(g.dim(), 2 * n);
                    back = g.apply(&back);
                    if i == 0 {
                        let moved: Vec<Complex> = (0..2 * n).map(|p| back[(p + n) % (2 * n)]).collect();
                        back.iter_mut().zip(moved).for_each(|(x, y)| *x += y);
                    }
                }
                assert!(
                    max_err(&back, &twice(&y)) < 1e-9,
                    "n={n} groups={groups} {}",
                    max_err(&back, &twice(&y))
                );
            }
        }
    }

    #[test]
    fn group_diagonals_are_few_and_on_a_stride() {
        let n = 1 << 10;
        for (groups, g) in [(3usize, slots_to_coeffs_groups(n, 3)), (3, coeffs_to_slots_groups(n, 3))] {
            assert_eq!(g.len(), groups);
            for m in &g {
                let offs: Vec<usize> = m.diagonals().keys().copied().collect();
                let stride = offs
                    .iter()
                    .filter(|&&d| d != 0)
                    .map(|&d| 1usize << d.trailing_zeros())
                    .min()
                    .unwrap_or(1);
                assert!(offs.iter().all(|d| d % stride == 0));
                // 4 stages at most here: 2^5 - 1 diagonals
                assert!(offs.len() <= 31, "{}", offs.len());
            }
        }
        assert_eq!(split_stages(15, 3), vec![5, 5, 5]);
        assert_eq!(split_stages(11, 3), vec![4, 4, 3]);
    }

    #[test]
    fn slot_roots_match_the_encoder() {
        // V u from the definition against core's decoder on the same packed coefficients.
        let n_ring = 64;
        let slots = 8;
        let gap = n_ring / (2 * slots);
        let u = values(slots, 9);
        let mut coeffs = vec![0f64; n_ring];
        for (k, x) in u.iter().enumerate() {
            coeffs[k * gap] = x.re * (1u64 << 30) as f64;
            coeffs[(k + slots) * gap] = x.im * (1u64 << 30) as f64;
        }
        let mut out = vec![Complex::default(); slots];
        let mut scratch = vec![Complex::default(); clifhe_core::encode::encode_scratch_len(slots)];
        clifhe_core::encode::decode(&coeffs, n_ring, (1u64 << 30) as f64, &mut out, &mut scratch).unwrap();
        assert!(max_err(&out, &special_dft_reference(&u)) < 1e-12);
    }
}
