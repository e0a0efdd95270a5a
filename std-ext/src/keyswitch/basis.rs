//! Centred RNS basis conversion (Bajard et al. 2016, "A full RNS variant of FV"; Halevi,
//! Polyakov and Shoup 2019, "An improved RNS variant of the BFV homomorphic encryption scheme",
//! section 2.2), the engine of hybrid key switching's ModUp and ModDown.
//!
//! For x given by residues x_i mod b_i (i < m) with B = prod b_i, the fast conversion to a
//! prime t is
//!   x~ = sum_i y_i * (B/b_i)  mod t,   y_i = [x_i * (B/b_i)^-1]_{b_i},
//! which equals `[x]_B + u B` for some `0 <= u < m`, `[x]_B` in `[0, B)`. Both halves of a key switch
//! want the centred value `[x]_B` in `[-B/2, B/2)` instead:
//!
//! - ModDown divides by P: with the plain fast conversion (`u >= 0` and `[x]_P >= 0`) every
//!   coefficient of both outputs moves by about -(m + 1) / 2, and in the output multiplied by
//!   the secret the constant becomes a random walk over the coefficients, whose low
//!   frequencies land on a few slots (at N=2^16 the eight worst slots of a bootstrap lost 3
//!   bits to it);
//! - ModUp multiplies each digit by the key: a digit in [0, Q_j) has mean Q_j / 2, and its
//!   product with the key's error adds (Q_j / 2P) times such a walk (one slot's error 40 times
//!   the RMS at N=2^12 with one special prime). The multiple u B itself is harmless there (the
//!   gadget cancels it), but centring removes it with the mean.
//!
//! So every conversion subtracts v B with `v = round(sum_i y_i / b_i)`, estimated in floating
//! point: `sum_i y_i / b_i = u + [x]_B / B` exactly, and its rounding is u, or u + 1 when
//! `[x]_B >= B/2`. [`BasisConverter::centre_scaled`] folds the multiple into the scaled source
//! once, so the conversion to each target costs what the plain one did.

use clifhe_core::arith::{Modulus, Montgomery};
use clifhe_core::lincomb::LinearCombination;

/// Precomputed constants converting from a source basis to a list of target primes.
#[derive(Debug, Clone)]
pub struct BasisConverter {
    source: Vec<Modulus>,
    /// (B/b_i)^-1 mod b_i and its Shoup quotient.
    inv_hat: Vec<(u64, u64)>,
    target: Vec<Modulus>,
    /// hat_mont[t * m + i] = (B/b_i) 2^64 mod target_t: the Montgomery form, so that one
    /// Montgomery reduction of the 128-bit sum of products gives the sum mod t.
    hat_mont: Vec<u64>,
    /// Per target: its Montgomery reduction.
    mont: Vec<Montgomery>,
    /// Per target: the same sum on AVX-512 IFMA (used where the host has it).
    ifma: Vec<Option<LinearCombination>>,
    /// 1 / b_i as a float (the centring multiple's estimate).
    inv_source: Vec<f64>,
    /// Per target: -B mod t (one-prime sources) or -m B mod t (the offset that
    /// [`BasisConverter::centre_scaled`] adds and the conversion removes).
    neg_offset: Vec<u64>,
}

impl BasisConverter {
    /// Constants for a source of at most 8 primes (core's `MAX_P_PRIMES` bounds |P|, and a
    /// digit has at most |P| primes): the centring keeps the scaled limbs below 2^64 only up to
    /// that (see [`BasisConverter::centre_scaled`]).
    pub fn new(source: &[Modulus], target: &[Modulus]) -> Self {
        debug_assert!(source.len() <= clifhe_core::params::MAX_P_PRIMES);
        let m = source.len();
        let inv_hat = source
            .iter()
            .enumerate()
            .map(|(i, bi)| {
                let mut hat = 1u64;
                for (j, bj) in source.iter().enumerate() {
                    if j != i {
                        hat = bi.mul(hat, bi.reduce(bj.value()));
                    }
                }
                let inv = bi.inv(hat);
                (inv, bi.shoup(inv))
            })
            .collect();
        // The scaled limbs' bounds after `centre_scaled`: limbs 0 and 1 gain up to ceil(m/2)
        // multiples of their prime.
        let bounds: Vec<u64> = source
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let extra = if m > 1 && i < 2 { m.div_ceil(2) as u64 } else { 0 };
                b.value().saturating_mul(1 + extra)
            })
            .collect();
        let mut hat_mont = Vec::with_capacity(target.len() * m);
        let mut ifma = Vec::with_capacity(target.len());
        for t in target {
            let r = t.r_mod();
            let hats: Vec<u64> = (0..m)
                .map(|i| {
                    source
                        .iter()
                        .enumerate()
                        .filter(|&(j, _)| j != i)
                        .fold(1u64, |hat, (_, bj)| t.mul(hat, t.reduce(bj.value())))
                })
                .collect();
            hat_mont.extend(hats.iter().map(|&hat| t.mul(hat, r)));
            ifma.push(if m > 1 { LinearCombination::new(t, &hats, &bounds) } else { None });
        }
        let neg_offset = target
            .iter()
            .map(|t| {
                let b = source.iter().fold(1u64, |acc, bj| t.mul(acc, t.reduce(bj.value())));
                let k = if m == 1 { 1 } else { m as u64 };
                t.neg(t.mul(t.reduce(k), b))
            })
            .collect();
        Self {
            source: source.to_vec(),
            inv_hat,
            target: target.to_vec(),
            hat_mont,
            mont: target.iter().map(Montgomery::new).collect(),
            ifma,
            inv_source: source.iter().map(|b| 1.0 / b.value() as f64).collect(),
            neg_offset,
        }
    }

    pub fn source_len(&self) -> usize {
        self.source.len()
    }
    pub fn target_len(&self) -> usize {
        self.target.len()
    }

    /// First half of a conversion, for source limb `i` in place: x_i * (B/b_i)^-1 mod b_i
    /// (nothing to do for a one-prime source, whose factor is 1).
    pub fn scale_input_limb(&self, i: usize, limb: &mut [u64]) {
        if self.source.len() == 1 {
            return;
        }
        let (bi, (inv, inv_s)) = (&self.source[i], self.inv_hat[i]);
        if clifhe_core::lincomb::scale(bi, inv, limb) {
            return;
        }
        for x in limb.iter_mut() {
            *x = bi.mul_shoup(*x, inv, inv_s);
        }
    }

    /// Centres a scaled source in place (`y`: the m limbs from
    /// [`BasisConverter::scale_input_limb`], limb-major), so that
    /// [`BasisConverter::convert_scaled_to`] returns `[x]_B` centred in `[-B/2, B/2)`. With
    /// `v = round(sum_i y_i / b_i)` (floating point: `sum_i y_i (B/b_i) - v B` is the centred
    /// value), it adds `(m - v) B` as `a b_0` to limb 0 and `c b_1` to limb 1, `a + c = m - v`,
    /// `a, c <= ceil(m/2)` (so the limbs stay below 5 2^61 < 2^64 for up to 8 primes); the
    /// conversion subtracts the constant `m B`. The float sum has a relative error of about
    /// 2^-53 per term, so `v` can only be off by one where `[x]_B` is within about `m 2^-52 B`
    /// of `B/2`: the value is then the representative on the other side, of size about `B/2`.
    /// A one-prime source is left as it is: its conversion compares each residue with b/2.
    pub fn centre_scaled(&self, n: usize, y: &mut [u64]) {
        const CHUNK: usize = 256;
        let m = self.source.len();
        if m == 1 {
            return;
        }
        let (b0, b1) = (self.source[0].value(), self.source[1].value());
        if clifhe_core::lincomb::centre(y, n, &self.inv_source, [b0, b1]) {
            return;
        }
        let (y01, rest) = y.split_at_mut(2 * n);
        let (y0, y1) = y01.split_at_mut(n);
        let mut sum = [0.0f64; CHUNK];
        for start in (0..n).step_by(CHUNK) {
            let len = CHUNK.min(n - start);
            let sum = &mut sum[..len];
            // limb by limb over contiguous words; y is below 2^61, so the signed conversion applies
            for (s, &x) in sum.iter_mut().zip(&y0[start..start + len]) {
                *s = (x as i64) as f64 * self.inv_source[0];
            }
            for (s, &x) in sum.iter_mut().zip(&y1[start..start + len]) {
                *s += (x as i64) as f64 * self.inv_source[1];
            }
            for (i, inv) in self.inv_source.iter().enumerate().skip(2) {
                let yi = &rest[(i - 2) * n + start..(i - 2) * n + start + len];
                for (s, &x) in sum.iter_mut().zip(yi) {
                    *s += (x as i64) as f64 * inv;
                }
            }
            for ((s, a0), a1) in sum.iter().zip(&mut y0[start..start + len]).zip(&mut y1[start..start + len]) {
                // the sum is in [0, m): the cast cannot overflow; the min keeps m - v >= 0
                let v = (s.round() as u64).min(m as u64);
                let up = m as u64 - v;
                let a = up.div_ceil(2);
                *a0 += a * b0;
                *a1 += (up - a) * b1;
            }
        }
    }

    /// Second half for one target: `out = sum_i y_i (B/b_i) - m B mod target[ti]` for a source
    /// centred by [`BasisConverter::centre_scaled`], that is the centred `[x]_B` mod t, left in
    /// [0, 4 t): both callers feed it to a forward NTT, which takes inputs below 4t. Sources of
    /// up to 8 primes below 2^61 (the sum of the products fits 128 bits). Runs on AVX-512 IFMA
    /// where the host has it (`clifhe_core::lincomb`): the residues are the same, the
    /// representatives below 4t may differ, and the key switch's reduced outputs do not.
    pub fn convert_scaled_to(&self, n: usize, y: &[u64], ti: usize, out: &mut [u64]) {
        let m = self.source.len();
        let t = &self.target[ti];
        let neg = self.neg_offset[ti];
        if m == 1 {
            // B/b_0 = 1 and the scaling was by 1: the centred value is y - b [y > b/2]
            let b = self.source[0].value();
            let above_half = |x: u64| ((b / 2).wrapping_sub(x) as i64 >> 63) as u64;
            if b <= 4 * t.value() {
                // y <= b/2 stays (below 2t); above, y - b + 4t lies in (4t - b/2, 4t)
                let lift = 4 * t.value() - b;
                for (o, x) in out.iter_mut().zip(&y[..n]) {
                    *o = *x + (above_half(*x) & lift);
                }
            } else {
                for (o, x) in out.iter_mut().zip(&y[..n]) {
                    *o = t.reduce(*x) + (above_half(*x) & neg);
                }
            }
            return;
        }
        if let Some(lc) = &self.ifma[ti] {
            // below 2t + 2^25 + neg < 4t
            if lc.apply(y, n, neg, out) {
                return;
            }
        }
        let hats = &self.hat_mont[ti * m..(ti + 1) * m];
        let mont = self.mont[ti];
        let (y, out) = (&y[..m * n], &mut out[..n]);
        match m {
            2 => convert_mont::<2>(n, y, hats, mont, neg, out),
            3 => convert_mont::<3>(n, y, hats, mont, neg, out),
            4 => convert_mont::<4>(n, y, hats, mont, neg, out),
            5 => convert_mont::<5>(n, y, hats, mont, neg, out),
            6 => convert_mont::<6>(n, y, hats, mont, neg, out),
            7 => convert_mont::<7>(n, y, hats, mont, neg, out),
            _ => convert_mont::<8>(n, y, hats, mont, neg, out),
        }
    }
}

/// `out[j] = REDC(sum_i y_i[j] hat_i') + neg` for `M` source limbs, with `hat_i' = (B/b_i)
/// 2^64 mod q` (Montgomery, "Modular multiplication without trial division", 1985): the
/// reduction costs two products where a 128-bit Barrett reduction costs five, and the conversion
/// is about half reductions. Bounds: the centred limbs 0 and 1 are below 5 2^61 and the others
/// below 2^61, so for up to 8 limbs the sum is below 16 2^61 q = 2^65 q (no u128 overflow for
/// q < 2^62); REDC of x returns (x + u q) / 2^64 < 2^65 q / 2^64 + q = 3q, and the offset
/// (below q) keeps the result below the forward NTT's 4q. A source of fewer than M limbs never
/// reaches here: the caller dispatches on its exact length.
#[inline(always)]
fn convert_mont<const M: usize>(n: usize, y: &[u64], hats: &[u64], mont: Montgomery, neg: u64, out: &mut [u64]) {
    let limbs: [&[u64]; M] = core::array::from_fn(|i| &y[i * n..(i + 1) * n]);
    let h: [u64; M] = core::array::from_fn(|i| hats[i]);
    for (j, o) in out.iter_mut().enumerate() {
        let mut acc: u128 = 0;
        for i in 0..M {
            acc += limbs[i][j] as u128 * h[i] as u128;
        }
        *o = mont.reduce(acc) + neg;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clifhe_core::params::primes;

    /// The conversion gives exactly [x]_B in [-B/2, B/2) (as a residue mod t), for one and for
    /// three source primes. Three small primes (B < 2^49) keep the float estimate exact even next to
    /// B/2 (its error, about m 2^-53, is below the 1/(2B) that separates B/2 - 1/2 from B/2) and
    /// let i128 hold the reference; the values sweep [0, B) and every value next to B/2.
    #[test]
    fn conversion_is_exact_and_centred() {
        let t_prime = primes::Q40[2];
        let tgt = [Modulus::new(t_prime).unwrap()];
        // one prime below and one above 4t (the two one-prime paths), three small primes
        for src_primes in [&[1_048_573u64][..], &[primes::P61[0]][..], &[65_521, 65_519, 65_497][..]] {
            let src: Vec<Modulus> = src_primes.iter().map(|&q| Modulus::new(q).unwrap()).collect();
            let conv = BasisConverter::new(&src, &tgt);
            let big_b: i128 = src_primes.iter().map(|&p| p as i128).product();
            let half = big_b / 2;
            let mut xs: Vec<i128> = (0..64).map(|k| big_b * k / 64 + k * 7_919).collect();
            xs.extend([0, 1, big_b - 1, half - 2, half - 1, half, half + 1, half + 2]);
            let n = xs.len();
            let mut input = vec![0u64; src.len() * n];
            for (j, x) in xs.iter().enumerate() {
                for (i, &bi) in src_primes.iter().enumerate() {
                    input[i * n + j] = (x % bi as i128) as u64;
                }
            }
            for (i, limb) in input.chunks_exact_mut(n).enumerate() {
                conv.scale_input_limb(i, limb);
            }
            conv.centre_scaled(n, &mut input);
            let mut out = vec![0u64; n];
            conv.convert_scaled_to(n, &input, 0, &mut out);
            let t = t_prime as i128;
            for (j, x) in xs.iter().enumerate() {
                // B is odd: [-B/2, B/2) holds -half ..= half
                let centred = if *x > half { x - big_b } else { *x };
                assert_eq!((out[j] % t_prime) as i128, centred.rem_euclid(t), "{} primes, x = {x}", src.len());
            }
        }
    }

    /// Full-size primes (B about 2^183): residues of values near 0 and near +-B/2 give the
    /// centred value, checked through its residue mod t. Away from B/2 by more than the float
    /// estimate's error (about m 2^-52 B, 2^133 here) the result is exact; the values sit 2^150
    /// from B/2 (residues of 2^150 by doubling, since it exceeds i128).
    #[test]
    fn conversion_centres_full_size_sources() {
        let t_prime = primes::Q40[2];
        let tgt = [Modulus::new(t_prime).unwrap()];
        let src_primes = [primes::P61[0], primes::P61[1], primes::P61[2]];
        let src: Vec<Modulus> = src_primes.iter().map(|&q| Modulus::new(q).unwrap()).collect();
        let conv = BasisConverter::new(&src, &tgt);
        let t = t_prime as i128;
        let pow2 = |e: u32, m: i128| (0..e).fold(1i128, |a, _| 2 * a % m);
        let b_mod_t = src_primes.iter().fold(1i128, |a, &p| a * (p as i128 % t) % t);
        // (B - 1)/2 mod t (t odd)
        let half_mod_t = (b_mod_t - 1).rem_euclid(t) * ((t + 1) / 2) % t;
        let offsets: [i128; 6] = [0, 5, -5, 1 << 100, -(1 << 100), 1 << 120];
        // columns: small offsets `off`; (B - 1)/2 - 2^150 + off (below B/2: centred as is);
        // (B + 1)/2 + 2^150 + off (above B/2: centred to it minus B)
        let k_len = offsets.len();
        let n = 3 * k_len;
        let mut input = vec![0u64; src.len() * n];
        let mut want = Vec::new();
        for (k, off) in offsets.iter().enumerate() {
            for (i, &bi) in src_primes.iter().enumerate() {
                let b = bi as i128;
                let hres = (b - 1) / 2; // (B - 1)/2 = -2^-1 mod b_i
                let big = pow2(150, b);
                input[i * n + k] = off.rem_euclid(b) as u64;
                input[i * n + k_len + k] = (hres - big + off).rem_euclid(b) as u64;
                input[i * n + 2 * k_len + k] = (hres + 1 + big + off).rem_euclid(b) as u64;
            }
            let big = pow2(150, t);
            want.push((k, off.rem_euclid(t)));
            want.push((k_len + k, (half_mod_t - big + off).rem_euclid(t)));
            // (B + 1)/2 + 2^150 + off - B = -(B - 1)/2 + 2^150 + off
            want.push((2 * k_len + k, (-half_mod_t + big + off).rem_euclid(t)));
        }
        for (i, limb) in input.chunks_exact_mut(n).enumerate() {
            conv.scale_input_limb(i, limb);
        }
        conv.centre_scaled(n, &mut input);
        let mut out = vec![0u64; n];
        conv.convert_scaled_to(n, &input, 0, &mut out);
        for (col, w) in want {
            assert_eq!((out[col] % t_prime) as i128, w, "column {col}");
        }
    }
}
