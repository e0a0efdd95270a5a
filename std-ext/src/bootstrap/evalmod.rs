//! EvalMod: `x -> (1 / 2 pi) sin(2 pi x)`, which removes the multiples of q0 that ModRaise adds,
//! as a polynomial of a scaled cosine in the Chebyshev basis followed by double-angle steps
//! (Han and Ki, CT-RSA 2020, "Better bootstrapping for approximate homomorphic encryption",
//! section 4; Bossuat et al., EUROCRYPT 2021, section 5). The polynomial is either the
//! interpolant at the Chebyshev nodes or, by default, a least-squares fit near the integers
//! ([`EvalModFit`]), which reaches the same accuracy where the inputs are with half the degree.
//!
//! The input slots hold `y = x / K`, `x = I + m / q0` with `|I| <= K`. The interpolant is
//! `p(y) ~ cos(2 pi (K y - 1/4) / 2^r)` on `[-1, 1]` at the Chebyshev nodes; `r` steps of
//! `c -> 2 c^2 - 1` then give `cos(2 pi x - pi/2) = sin(2 pi x)`.
//!
//! The polynomial is evaluated in the Chebyshev basis by recursive division by `T_(2^l)`
//! (a baby-step giant-step scheme): with `g` the largest power of two below the length,
//! `T_(g+j) = 2 T_g T_j - T_(g-j)` gives `p = q T_g + r`, `deg q, deg r < g`. The base case is a
//! linear combination of the baby steps `T_0 .. T_(B-1)`. Each sub-result is produced at a
//! requested level and scale, so that sums never need an alignment: the quotient is made at
//! one level above its target with scale `target * q / scale(T_g)`, the product with `T_g`
//! rescales to exactly the target. Depth: `ceil(log2(degree + 1)) + 1`.

use crate::error::EvalError;
use crate::evaluator::Evaluator;
use crate::keys::RelinearizationKey;
use clifhe_core::ciphertext::CiphertextOwned;
use clifhe_core::encode::Complex;
use std::collections::BTreeMap;
use std::f64::consts::PI;

/// Chebyshev interpolant of `f` on `[-1, 1]` of the given degree (interpolation at the
/// `degree + 1` Chebyshev nodes of the first kind; coefficients of `T_0 .. T_degree`).
pub fn chebyshev_interpolant(f: impl Fn(f64) -> f64, degree: usize) -> Vec<f64> {
    let m = degree + 1;
    let nodes: Vec<f64> = (0..m).map(|j| (PI * (j as f64 + 0.5) / m as f64).cos()).collect();
    let vals: Vec<f64> = nodes.iter().map(|&x| f(x)).collect();
    (0..m)
        .map(|k| {
            let s: f64 = (0..m).map(|j| vals[j] * (PI * k as f64 * (j as f64 + 0.5) / m as f64).cos()).sum();
            let c = 2.0 * s / m as f64;
            if k == 0 {
                c / 2.0
            } else {
                c
            }
        })
        .collect()
}

/// Evaluates `sum c_k T_k(x)` (Clenshaw): the plaintext reference of [`eval_chebyshev`].
pub fn chebyshev_eval_plain(c: &[f64], x: f64) -> f64 {
    let (mut b1, mut b2) = (0.0, 0.0);
    for &ck in c.iter().skip(1).rev() {
        let b0 = 2.0 * x * b1 - b2 + ck;
        b2 = b1;
        b1 = b0;
    }
    x * b1 - b2 + c.first().copied().unwrap_or(0.0)
}

/// How the polynomial of [`EvalModPoly`] is fitted to the scaled cosine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvalModFit {
    /// Interpolation at the Chebyshev nodes: the same accuracy on all of `[-K, K]`. Needs
    /// degree 63 with two double angles at K = 16 for 2^-40.
    ChebyshevNodes,
    /// Weighted least squares at points within [`NEAR_INTEGER_WINDOW`] of each integer of
    /// `[-K, K]` (the only inputs EvalMod sees: `I + m / q0` with a small message), each integer
    /// weighted by its probability (a centred Gaussian whose standard deviation the caller gives,
    /// floored at 1e-7). The accuracy goes where the inputs are: at K = 16, degree 31 and
    /// three double angles, 2^-40 for |I| <= 3, 2^-37 for |I| <= 6, 2^-29.5 or better up to 16
    /// (|I| > 8 is a 5-sigma event per coefficient with the weight-32 encapsulation), against
    /// 2^-28 everywhere for the Chebyshev interpolant of the same degree.
    NearIntegers,
}

/// Half-width of the window around each integer that [`EvalModFit::NearIntegers`] fits:
/// `m / q0` for a message coefficient `m`, which is about `2^-ratio n^-1/2` for random slots
/// and at most `2^-ratio` (a constant message); 2e-3 keeps 2^-29 or better out to 8e-3 for
/// |I| <= 14.
pub const NEAR_INTEGER_WINDOW: f64 = 2e-3;

/// Points per integer in the near-integer fit.
const NEAR_INTEGER_POINTS: usize = 7;

/// Least squares `min ||W (A c - b)||_2` by Householder QR (`a`: `rows` x `cols`, row-major,
/// already weighted, like `b`). `None` if `A` is rank-deficient.
fn least_squares(mut a: Vec<f64>, mut b: Vec<f64>, cols: usize) -> Option<Vec<f64>> {
    let rows = b.len();
    if rows < cols || a.len() != rows * cols {
        return None;
    }
    for k in 0..cols {
        let norm = (k..rows).map(|i| a[i * cols + k] * a[i * cols + k]).sum::<f64>().sqrt();
        if norm == 0.0 {
            return None;
        }
        let alpha = if a[k * cols + k] > 0.0 { -norm } else { norm };
        // v = x - alpha e_k, stored over column k (rows k..)
        a[k * cols + k] -= alpha;
        let vnorm2 = (k..rows).map(|i| a[i * cols + k] * a[i * cols + k]).sum::<f64>();
        for j in k + 1..cols {
            let dot = (k..rows).map(|i| a[i * cols + k] * a[i * cols + j]).sum::<f64>();
            let f = 2.0 * dot / vnorm2;
            for i in k..rows {
                a[i * cols + j] -= f * a[i * cols + k];
            }
        }
        let dot = (k..rows).map(|i| a[i * cols + k] * b[i]).sum::<f64>();
        let f = 2.0 * dot / vnorm2;
        for i in k..rows {
            b[i] -= f * a[i * cols + k];
        }
        // R's diagonal
        a[k * cols + k] = alpha;
    }
    // back substitution with R (upper triangle of a)
    let mut c = vec![0.0; cols];
    for k in (0..cols).rev() {
        let s: f64 = (k + 1..cols).map(|j| a[k * cols + j] * c[j]).sum();
        c[k] = (b[k] - s) / a[k * cols + k];
    }
    Some(c)
}

/// Chebyshev coefficients of degree `degree` fitting `f` on `[-1, 1]` by
/// [`EvalModFit::NearIntegers`] at the points `(I + e) / k`.
fn near_integer_fit(f: impl Fn(f64) -> f64, k: f64, degree: usize, sigma_i: f64) -> Option<Vec<f64>> {
    let cols = degree + 1;
    let kmax = k.floor() as i64;
    let mut a = Vec::new();
    let mut b = Vec::new();
    for i in -kmax..=kmax {
        let w = (-(i * i) as f64 / (2.0 * sigma_i * sigma_i)).exp().max(1e-7).sqrt();
        for p in 0..NEAR_INTEGER_POINTS {
            let e = NEAR_INTEGER_WINDOW * (2.0 * p as f64 / (NEAR_INTEGER_POINTS - 1) as f64 - 1.0);
            let y = ((i as f64 + e) / k).clamp(-1.0, 1.0);
            // T_0 .. T_degree at y, by the recurrence
            let (mut t0, mut t1) = (1.0, y);
            a.push(w * t0);
            if cols > 1 {
                a.push(w * t1);
            }
            for _ in 2..cols {
                let t2 = 2.0 * y * t1 - t0;
                a.push(w * t2);
                t0 = t1;
                t1 = t2;
            }
            b.push(w * f(y));
        }
    }
    least_squares(a, b, cols)
}

/// The EvalMod function and its polynomial.
#[derive(Clone, Debug)]
pub struct EvalModPoly {
    /// `|I| <= k`.
    pub k: f64,
    pub double_angle: u32,
    pub coeffs: Vec<f64>,
}

/// The function both fits approximate: `cos(2 pi (K y - 1/4) / 2^r)`, which `r` double angles
/// turn into `sin(2 pi K y)`.
fn scaled_cosine(k: f64, double_angle: u32) -> impl Fn(f64) -> f64 {
    let r = f64::from(1u32 << double_angle);
    move |y| (2.0 * PI * (k * y - 0.25) / r).cos()
}

impl EvalModPoly {
    pub fn new(k: f64, degree: usize, double_angle: u32) -> Self {
        let coeffs = chebyshev_interpolant(scaled_cosine(k, double_angle), degree);
        Self { k, double_angle, coeffs }
    }

    /// [`EvalModPoly::new`] fitted by [`EvalModFit::NearIntegers`], the integers weighted by a
    /// centred Gaussian of standard deviation `sigma_i` (that of `I` after ModRaise). Falls back
    /// to the Chebyshev interpolant if the fit is degenerate (fewer points than coefficients).
    pub fn near_integers(k: f64, degree: usize, double_angle: u32, sigma_i: f64) -> Self {
        match near_integer_fit(scaled_cosine(k, double_angle), k, degree, sigma_i) {
            Some(coeffs) => Self { k, double_angle, coeffs },
            None => Self::new(k, degree, double_angle),
        }
    }

    /// Levels consumed: the polynomial (`ceil(log2(d + 1)) + 1`) and the double angles.
    pub fn depth(&self) -> usize {
        poly_depth(self.coeffs.len() - 1) + self.double_angle as usize
    }

    /// Plaintext reference: `sin(2 pi K y)` through the same polynomial and double angles.
    pub fn eval_plain(&self, y: f64) -> f64 {
        let mut c = chebyshev_eval_plain(&self.coeffs, y);
        for _ in 0..self.double_angle {
            c = 2.0 * c * c - 1.0;
        }
        c
    }

    /// The homomorphic evaluation of [`EvalModPoly::eval_plain`] on every slot (real slots).
    /// Input at any level >= `depth()`, ideally at scale `q_level`; output `depth()` levels
    /// lower.
    pub fn eval(&self, ev: &Evaluator<'_>, y: &CiphertextOwned, rlk: &RelinearizationKey) -> Result<CiphertextOwned, EvalError> {
        let mut c = eval_chebyshev(ev, y, &self.coeffs, rlk)?;
        for _ in 0..self.double_angle {
            let sq = ev.mul_relin(&c, &c, rlk)?;
            let sq2 = ev.mul_integer(&sq, 2)?;
            let shifted = ev.add_const_owned(sq2, Complex::from_real(-1.0))?;
            c = ev.rescale_owned(shifted)?;
        }
        Ok(c)
    }
}

/// Baby-step count for a degree: `2^ceil(l/2)`-ish, at least 2.
fn baby_count(degree: usize) -> usize {
    let l = usize::BITS - degree.leading_zeros(); // bits of degree = ceil(log2(d + 1))
    (1usize << l.div_ceil(2)).max(2)
}

/// Levels [`eval_chebyshev`] consumes for a degree.
pub fn poly_depth(degree: usize) -> usize {
    if degree == 0 {
        return 0;
    }
    (usize::BITS - degree.leading_zeros()) as usize + 1
}

struct Basis<'e, 'a> {
    ev: &'e Evaluator<'a>,
    rlk: &'e RelinearizationKey,
    t: BTreeMap<usize, CiphertextOwned>,
}

impl Basis<'_, '_> {
    /// `2 a b - c` for Chebyshev products; `c` = `T_|i-j|` (none: the constant 1). The doubling
    /// and the subtraction (with `c` brought to the product's scale by an integer weight) are
    /// one pass.
    fn product(&self, a: &CiphertextOwned, b: &CiphertextOwned, c: Option<&CiphertextOwned>) -> Result<CiphertextOwned, EvalError> {
        let ev = self.ev;
        let lvl = a.meta.level.min(b.meta.level);
        let prod = ev.mul_relin_at(a, b, lvl, self.rlk)?;
        let s = prod.meta.scale;
        let out = match c {
            None => ev.add_const_owned(ev.integer_combination(&[(&prod, 2.0)], lvl, s)?, Complex::from_real(-1.0))?,
            Some(c) => ev.integer_combination(&[(&prod, 2.0), (c, -(s / c.meta.scale).round())], lvl, s)?,
        };
        ev.rescale_owned(out)
    }

    fn get(&mut self, k: usize) -> Result<&CiphertextOwned, EvalError> {
        if !self.t.contains_key(&k) {
            // T_k = 2 T_a T_b - T_(a-b), a the largest power of two below k (a = b for k = 2a)
            let a = if k.is_power_of_two() {
                k / 2
            } else {
                1usize << (usize::BITS - 1 - k.leading_zeros())
            };
            let b = k - a;
            self.get(a)?;
            self.get(b)?;
            if a != b {
                self.get(a - b)?;
            }
            let tc = if a == b { None } else { self.t.get(&(a - b)) };
            let (ta, tb) = (self.t.get(&a), self.t.get(&b));
            let t = match (ta, tb) {
                (Some(ta), Some(tb)) => self.product(ta, tb, tc)?,
                _ => return Err(EvalError::Invalid("Chebyshev basis incomplete")),
            };
            self.t.insert(k, t);
        }
        self.t.get(&k).ok_or(EvalError::Invalid("Chebyshev basis incomplete"))
    }
}

/// Evaluates `sum c_k T_k(y)` on every slot: output `poly_depth(c.len() - 1)` levels below `y`
/// at the scale of `y` (or at `out_scale`).
pub fn eval_chebyshev(ev: &Evaluator<'_>, y: &CiphertextOwned, c: &[f64], rlk: &RelinearizationKey) -> Result<CiphertextOwned, EvalError> {
    eval_chebyshev_to(ev, y, c, rlk, y.meta.scale)
}

/// [`eval_chebyshev`] with the result at `out_scale`.
pub fn eval_chebyshev_to(
    ev: &Evaluator<'_>,
    y: &CiphertextOwned,
    c: &[f64],
    rlk: &RelinearizationKey,
    out_scale: f64,
) -> Result<CiphertextOwned, EvalError> {
    let degree = c.len().checked_sub(1).ok_or(EvalError::Invalid("empty polynomial"))?;
    let depth = poly_depth(degree);
    if y.meta.level < depth {
        return Err(EvalError::OutOfLevels);
    }
    // T_k's scale is scale(y)^k / q^(k-1): it only stays put when y sits at its prime's scale
    let q_top = *ev.context().params().q().get(y.meta.level).ok_or(EvalError::OutOfLevels)? as f64;
    if ((y.meta.scale / q_top) - 1.0).abs() > 1e-6 {
        return Err(EvalError::ScaleMismatch {
            left: y.meta.scale,
            right: q_top,
        });
    }
    let mut basis = Basis {
        ev,
        rlk,
        t: BTreeMap::from([(1usize, y.clone())]),
    };
    let baby = baby_count(degree).min(degree + 1);
    for k in 2..baby {
        basis.get(k)?;
    }
    let mut g = baby;
    while g <= degree {
        basis.get(g)?;
        g *= 2;
    }
    eval_rec(&mut basis, c, baby, y.meta.level - depth, out_scale)
}

fn eval_rec(basis: &mut Basis<'_, '_>, c: &[f64], baby: usize, level: usize, scale: f64) -> Result<CiphertextOwned, EvalError> {
    let ev = basis.ev;
    let q = |l: usize| ev.context().params().q()[l] as f64;
    if c.len() <= baby {
        // sum_k c_k T_k at level + 1 with scale scale * q_(level+1), then one rescale.
        let target = scale * q(level + 1);
        for k in 1..c.len() {
            basis.get(k)?;
        }
        let terms: Vec<(&CiphertextOwned, f64)> = (1..c.len().max(2))
            .map(|k| {
                let t = basis.t.get(&k).ok_or(EvalError::Invalid("Chebyshev basis incomplete"))?;
                // a constant polynomial: zero times T_1 carries the shape
                let ck = c.get(k).copied().unwrap_or(0.0);
                Ok((t, (ck * target / t.meta.scale).round()))
            })
            .collect::<Result<_, EvalError>>()?;
        let acc = ev.integer_combination(&terms, level + 1, target)?;
        let acc = ev.add_const_owned(acc, Complex::from_real(c[0]))?;
        let mut out = ev.rescale_owned(acc)?;
        out.meta.scale = scale;
        return Ok(out);
    }
    let g = 1usize << (usize::BITS - 1 - (c.len() - 1).leading_zeros());
    // p = q T_g + r
    let mut qc = vec![c[g]];
    qc.extend(c[g + 1..].iter().map(|x| 2.0 * x));
    let mut rc = c[..g].to_vec();
    for (j, &x) in c.iter().enumerate().skip(g + 1) {
        rc[2 * g - j] -= x;
    }
    let tg_scale = basis.get(g)?.meta.scale;
    let qv = eval_rec(basis, &qc, baby, level + 1, scale * q(level + 1) / tg_scale)?;
    let rlk = basis.rlk;
    let tg = basis.get(g)?;
    let prod = ev.mul_relin_at(&qv, tg, level + 1, rlk)?;
    let mut prod = ev.rescale_owned(prod)?;
    prod.meta.scale = scale;
    let rv = eval_rec(basis, &rc, baby, level, scale)?;
    ev.add_assign(&mut prod, &rv)?;
    Ok(prod)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolant_and_double_angle_give_the_sine() {
        let p = EvalModPoly::new(16.0, 63, 2);
        let mut worst: f64 = 0.0;
        for i in -16..=16 {
            for e in [-1e-3, -1e-5, 0.0, 1e-5, 1e-3] {
                let x = i as f64 + e;
                let got = p.eval_plain(x / 16.0);
                worst = worst.max((got - (2.0 * PI * x).sin()).abs());
            }
        }
        assert!(worst < 1e-12, "{worst}");
        assert_eq!(p.depth(), 7 + 2);
        assert_eq!(poly_depth(63), 7);
        assert_eq!(poly_depth(31), 6);
    }

    /// Degree 31 with three double angles fitted near the integers: as accurate as the
    /// degree-63 interpolant where I is likely, 2^-29 at the rare |I| up to 16, over the whole
    /// window; one level fewer in the polynomial.
    #[test]
    fn near_integer_fit_is_accurate_where_the_inputs_are() {
        let p = EvalModPoly::near_integers(16.0, 31, 3, (33.0f64 / 12.0).sqrt());
        assert_eq!(p.depth(), 6 + 3);
        let worst = |range: std::ops::RangeInclusive<i32>| {
            let mut w: f64 = 0.0;
            for i in range {
                for s in [-1.0, 1.0] {
                    for e in [-2e-3, -1e-4, 0.0, 1e-5, 1e-4, 2e-3] {
                        let x = s * f64::from(i) + e;
                        w = w.max((p.eval_plain(x / 16.0) - (2.0 * PI * x).sin()).abs());
                    }
                }
            }
            w
        };
        assert!(worst(0..=3) < 2f64.powi(-39), "{:e}", worst(0..=3));
        assert!(worst(0..=6) < 2f64.powi(-36), "{:e}", worst(0..=6));
        assert!(worst(0..=16) < 2f64.powi(-28), "{:e}", worst(0..=16));
        // the plain interpolant of the same degree is 2^-28 already at I = 0
        let q = EvalModPoly::new(16.0, 31, 3);
        assert!((q.eval_plain(0.0) - 0.0).abs() > 2f64.powi(-34));
    }

    #[test]
    fn least_squares_solves_an_exact_system() {
        // 3 x 2: rows (1, 0), (0, 1), (1, 1), b = (2, 3, 5): c = (2, 3)
        let c = least_squares(vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0], vec![2.0, 3.0, 5.0], 2).unwrap();
        assert!((c[0] - 2.0).abs() < 1e-12 && (c[1] - 3.0).abs() < 1e-12, "{c:?}");
        assert!(least_squares(vec![1.0, 0.0, 1.0, 0.0], vec![1.0, 1.0], 2).is_none());
    }

    #[test]
    fn clenshaw_matches_the_recurrence() {
        let c = [0.3, -0.2, 0.5, 0.1, -0.7];
        for x in [-1.0, -0.3, 0.0, 0.6, 1.0] {
            let mut t = vec![1.0, x];
            for k in 2..c.len() {
                t.push(2.0 * x * t[k - 1] - t[k - 2]);
            }
            let want: f64 = c.iter().zip(&t).map(|(a, b)| a * b).sum();
            assert!((chebyshev_eval_plain(&c, x) - want).abs() < 1e-14);
        }
    }
}
