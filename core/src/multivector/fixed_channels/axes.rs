//! The principal-axis channels in fixed point: central moments, the Jacobi eigen-solver with
//! a fixed number of sweeps, the ordering network and the third-moment signs.

use super::*;

/// The three principal-axis channels, zero for an all-zero volume.
#[allow(clippy::needless_range_loop)] // matrix indices read as the algebra does
pub(super) fn axes_finish(s: &Sums, mean: &[i128; 3], h: &[i128; 3]) -> [[i64; 8]; AXES] {
    let m = s.mass;
    let keep = !is_zero(m);
    let den = nonzero_den(m);
    let f = s.first.map(i128::from);
    // The covariance in normalised coordinates, J_BITS: h_a h_b (M Q_ab - F_a F_b) / M^2.
    let mut cov = [[0i128; 3]; 3];
    for a in 0..3 {
        for b in a..3 {
            let d = i128::from(m) * s.second[q_index(a, b)] - f[a] * f[b];
            let c = mul_round(div_by_square(d, den, VAR_BITS), hh(h, a, b), VAR_BITS + HH_BITS - J_BITS);
            cov[a][b] = c;
            cov[b][a] = c;
        }
    }
    let (values, vectors) = jacobi(cov, JACOBI_SWEEPS);
    // Eigenpairs: (lambda_k, column k).
    let mut l = values;
    let mut u = [0usize, 1, 2].map(|k| [vectors[0][k], vectors[1][k], vectors[2][k]]);
    // Stable sort by decreasing eigenvalue: a bubble network, swapping on strictly less.
    for (i, j) in [(0usize, 1usize), (1, 2), (0, 1)] {
        let swap = (l[i] - l[j]) >> 127; // all ones when l[i] < l[j]
        let d = (l[i] ^ l[j]) & swap;
        l[i] ^= d;
        l[j] ^= d;
        for a in 0..3 {
            let d = (u[i][a] ^ u[j][a]) & swap;
            u[i][a] ^= d;
            u[j][a] ^= d;
        }
    }
    let third = central_third(s, mean, den);
    // The projection p = (r - c) . u = sum_a h_a d_a u_a: only its sign matters, so h is
    // rescaled (public shift) to put the largest factor at 2^56..2^57.
    let h_max = h[0].max(h[1]).max(h[2]);
    let lift = (h_max as u64).leading_zeros().saturating_sub(7);
    let g = h.map(|x| x << lift);
    let mut out = [[0i64; 8]; AXES];
    for (o, (lk, uk)) in out.iter_mut().zip(l.iter().zip(&u)) {
        // Skewness sign: sum over the ten distinct third moments with their multiplicities.
        let w = [0, 1, 2].map(|a| mul_round(g[a], uk[a], J_BITS)); // < 2^57
        let mut skew = 0i128;
        for (abc, mult) in THIRD.iter().zip(third) {
            let ([a, b, c], n) = *abc;
            let wabc = mul_round(mul_round(w[a], w[b], J_BITS), w[c], 74); // < 2^41
            skew += n * wabc * mult; // |mult| < 2^79: |terms| < 2^123 in all
        }
        let neg = skew >> 127; // zero: positive, as the f64 code
        let len = i128::from(ct_isqrt((positive_part(*lk) as u128) << J_BITS)); // J_BITS
        let signed = (len ^ neg) - neg;
        for a in 0..3 {
            o[1 + a] = (mul_round(signed, uk[a], 2 * J_BITS - FRAC_BITS) as i64) & keep;
        }
    }
    out
}

/// The central third moments per unit mass in t units, [`MU_BITS`], in the order of [`THIRD`]:
/// `mu_abc - mu_a mu_bc - mu_b mu_ac - mu_c mu_ab + 2 mu_a mu_b mu_c`.
pub(super) fn central_third(s: &Sums, mean: &[i128; 3], den: u64) -> [i128; 10] {
    let mu2 = s.second.map(|q| div_round(q << MU_BITS, den));
    let mu = |a: usize, b: usize| mu2[q_index(a.min(b), a.max(b))];
    let mut out = [0i128; 10];
    for (o, (([a, b, c], _), t)) in out.iter_mut().zip(THIRD.iter().zip(s.third)) {
        let mu3 = div_round(t << MU_BITS, den);
        let cross =
            mul_round(mean[*a], mu(*b, *c), MU_BITS) + mul_round(mean[*b], mu(*a, *c), MU_BITS) + mul_round(mean[*c], mu(*a, *b), MU_BITS);
        let triple = mul_round(mul_round(mean[*a], mean[*b], MU_BITS), mean[*c], MU_BITS);
        *o = mu3 - cross + 2 * triple;
    }
    out
}

/// Eigenvalues and eigenvectors (columns) of a symmetric 3x3 matrix with [`J_BITS`] fractional
/// bits (entries below 4 in magnitude, positive semi-definite up to rounding): `sweeps` cyclic
/// Jacobi sweeps over (0, 1), (0, 2), (1, 2), every rotation computed and applied whatever the
/// entries (a zero `a_pq` gives the identity rotation).
#[allow(clippy::needless_range_loop)] // matrix indices read as the algebra does
pub(super) fn jacobi(m: [[i128; 3]; 3], sweeps: usize) -> ([i128; 3], [[i128; 3]; 3]) {
    let mut a = m;
    let mut v = [[J_ONE, 0, 0], [0, J_ONE, 0], [0, 0, J_ONE]];
    for _ in 0..sweeps {
        for (p, q) in [(0usize, 1usize), (0, 2), (1, 2)] {
            let r = 3 - p - q;
            let apq = a[p][q];
            let (c, s, t) = rotation(a[q][q] - a[p][p], 2 * apq);
            // J^T A J with J = [[c, s], [-s, c]] in the (p, q) plane: a_pq becomes 0.
            let shift = mul_round(t, apq, J_BITS);
            a[p][p] -= shift;
            a[q][q] += shift;
            a[p][q] = 0;
            a[q][p] = 0;
            let (arp, arq) = (a[r][p], a[r][q]);
            let rp = mul_round(c, arp, J_BITS) - mul_round(s, arq, J_BITS);
            let rq = mul_round(s, arp, J_BITS) + mul_round(c, arq, J_BITS);
            a[r][p] = rp;
            a[p][r] = rp;
            a[r][q] = rq;
            a[q][r] = rq;
            for row in &mut v {
                let (vp, vq) = (row[p], row[q]);
                row[p] = mul_round(c, vp, J_BITS) - mul_round(s, vq, J_BITS);
                row[q] = mul_round(s, vp, J_BITS) + mul_round(c, vq, J_BITS);
            }
        }
    }
    ([a[0][0], a[1][1], a[2][2]], v)
}

/// The Jacobi rotation `(c, s, t)` zeroing `a_pq` for `x = a_qq - a_pp`, `y = 2 a_pq` (each
/// below 2^59 in magnitude): `t = sgn(x y) |y| / (|x| + sqrt(x^2 + y^2))` (`|t| <= 1`; `x = 0`
/// counts as positive, `y = 0` gives `t = 0`), `c = 1 / sqrt(1 + t^2)`, `s = t c`.
pub(super) fn rotation(x: i128, y: i128) -> (i128, i128, i128) {
    let (sx, sy) = (x >> 127, y >> 127);
    let (ax, ay) = ((x ^ sx) - sx, (y ^ sy) - sy);
    let root = i128::from(ct_isqrt((ax * ax + ay * ay) as u128));
    let den = ax + root; // < 2^61; 0 only for x = y = 0, where 1 is used (the numerator is 0)
    let den = (den | (((den - 1) >> 127) & 1)) as u64;
    let t_mag = ct_div((ay as u128) << J_BITS, den) as i128;
    let x_nonzero = (x | x.wrapping_neg()) >> 127;
    let neg = (sx ^ sy) & x_nonzero;
    let t = (t_mag ^ neg) - neg;
    // 2^56 sqrt(1 + t^2) from the 112-bit square; c = 2^112 / that.
    let root = ct_isqrt(((J_ONE << J_BITS) + t_mag * t_mag) as u128);
    let c = ct_div(1u128 << (2 * J_BITS), root) as i128;
    let s = mul_round(t, c, J_BITS);
    (c, s, t)
}
