use super::*;
use crate::params::primes;
use std::vec;
use std::vec::Vec;

/// Primes of every width the kernels tell apart: just above 2^40 and just below 2^39
/// (narrow), the narrow bound's edge, 55, 60 and 61 bits (wide), and the largest target.
const EVERY_WIDTH: [u64; 7] = [
    primes::Q40[3],
    primes::Q39[1],
    (1 << 50) - 27,
    primes::Q55[3],
    primes::Q60,
    primes::P61[0],
    (1 << 61) - 1,
];

/// A xorshift64 stream from `seed` (test inputs, not randomness).
fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

fn reference(t: u64, y: &[u64], n: usize, c: &[u64], add: u64, j: usize) -> u64 {
    let s: u128 = c.iter().enumerate().map(|(i, &ci)| y[i * n + j] as u128 * ci as u128).sum();
    ((s + add as u128) % t as u128) as u64
}

/// Against u128 arithmetic: every term count, terms below 2^52 and up to 2^64 (split),
/// the extreme values of both and the bound on the output.
#[test]
fn matches_the_exact_sum_and_stays_below_three_t() {
    // narrow targets (two accumulators) and wide ones up to 2^61 - 1 (three)
    let n = 64;
    let mut next = xorshift(0x9e37_79b9_7f4a_7c15u64);
    for &t in &[
        primes::Q40[0],
        primes::Q39[2],
        (1 << 50) - 27,
        1 << 50 | 1,
        primes::Q55[0],
        primes::Q60,
        primes::P61[5],
        (1 << 61) - 1,
    ] {
        let m = Modulus::new(t).unwrap();
        for terms in 1..=MAX_TERMS {
            for wide in [false, true] {
                let bound = if wide { u64::MAX } else { 1 << 52 };
                let c: Vec<u64> = (0..terms).map(|i| if i == 0 { t - 1 } else { next() % t }).collect();
                let mut y: Vec<u64> = (0..terms * n).map(|_| next() % bound).collect();
                for i in 0..terms {
                    y[i * n] = bound - 1; // the largest value of every term
                    y[i * n + 1] = 0;
                }
                let add = next() % t;
                let lc = LinearCombination::new(&m, &c, &vec![bound; terms]).unwrap();
                let mut out = vec![0u64; n];
                if !lc.apply(&y, n, add, &mut out) {
                    return; // no IFMA on this host: nothing to compare
                }
                for (j, &o) in out.iter().enumerate() {
                    assert!(o < 3 * t, "t {t} terms {terms} wide {wide}: {o} at {j}");
                    assert_eq!(o % t, reference(t, &y, n, &c, add, j), "t {t} terms {terms} wide {wide} at {j}");
                }
            }
        }
    }
}

/// Against u128 arithmetic: extensions up to 4q - 1, keys up to q - 1, 1 to 32 digits,
/// setting and adding to canonical outputs.
#[test]
fn inner_product_matches_the_exact_sum() {
    let n = 32;
    let mut next = xorshift(0x2545_f491_4f6c_dd1du64);
    for q in EVERY_WIDTH {
        let m = Modulus::new(q).unwrap();
        for digits in [1, 2, 5, 8, 32] {
            let mut ext: Vec<u64> = (0..digits * n).map(|_| next() % (4 * q)).collect();
            let kb: Vec<Vec<u64>> = (0..digits).map(|_| (0..n).map(|_| next() % q).collect()).collect();
            let mut ka: Vec<Vec<u64>> = (0..digits).map(|_| (0..n).map(|_| next() % q).collect()).collect();
            for d in 0..digits {
                ext[d * n] = 4 * q - 1;
                ka[d][0] = q - 1;
            }
            let (kb_s, ka_s): (Vec<&[u64]>, Vec<&[u64]>) = (kb.iter().map(|v| &v[..]).collect(), ka.iter().map(|v| &v[..]).collect());
            let ext_s: Vec<&[u64]> = ext.chunks(n).collect();
            for add in [false, true] {
                let start: Vec<u64> = (0..n).map(|_| next() % q).collect();
                let (mut o0, mut o1) = (start.clone(), start.clone());
                if !inner_product(&m, &ext_s, n, &kb_s, &ka_s, &mut o0, &mut o1, add) {
                    return; // no IFMA on this host: nothing to compare
                }
                for j in 0..n {
                    let sum = |k: &[Vec<u64>]| -> u64 {
                        // each product reduced first: 32 of them reach 2^129 at 61 bits
                        let s: u128 = (0..digits).map(|d| ext[d * n + j] as u128 * k[d][j] as u128 % q as u128).sum();
                        ((s + if add { start[j] as u128 } else { 0 }) % q as u128) as u64
                    };
                    assert_eq!(o0[j], sum(&kb), "q {q} digits {digits} add {add} at {j}");
                    assert_eq!(o1[j], sum(&ka), "q {q} digits {digits} add {add} at {j}");
                }
            }
        }
    }
    let m = Modulus::new(primes::Q60).unwrap();
    let k = [0u64; 8];
    // no digit, or a length that is not a multiple of 8: nothing written
    assert!(!inner_product(&m, &[], 8, &[], &[], &mut [0; 8], &mut [0; 8], false));
    assert!(!inner_product(&m, &[&[0; 12]], 12, &[&k], &[&k], &mut [0; 12], &mut [0; 12], false));
}

#[test]
fn refuses_what_it_cannot_take() {
    let t = Modulus::new(primes::Q40[0]).unwrap();
    assert!(LinearCombination::new(&t, &[], &[]).is_none());
    assert!(LinearCombination::new(&t, &[1; 9], &[2; 9]).is_none());
    assert!(LinearCombination::new(&t, &[1, 2], &[2]).is_none());
    assert!(LinearCombination::new(&t, &[primes::Q40[0]], &[2]).is_none());
    let lc = LinearCombination::new(&t, &[3, 5], &[8, 8]).unwrap();
    let mut out = [0u64; 12];
    // n not a multiple of 8, or too short a source: nothing written
    assert!(!lc.apply(&[1; 24], 12, 0, &mut out));
    assert!(!lc.apply(&[1; 8], 8, 0, &mut out));
    assert_eq!(out, [0; 12]);
}

#[test]
fn scale_difference_matches_the_shoup_product() {
    let n = 64;
    let mut next = xorshift(0x9e37_79b9_7f4a_7c15u64);
    for q in EVERY_WIDTH {
        let m = Modulus::new(q).unwrap();
        for w in [1, 2, q - 1, next() % q] {
            let mut a: Vec<u64> = (0..n).map(|_| next() % q).collect();
            let mut b: Vec<u64> = (0..n).map(|_| next() % q).collect();
            // the extremes: x - y = -(q - 1) and q - 1
            (a[0], b[0], a[1], b[1]) = (0, q - 1, q - 1, 0);
            let start: Vec<u64> = (0..n).map(|_| next() % q).collect();
            let want = |j: usize| m.mul_shoup(m.sub(a[j], b[j]), w, m.shoup(w));
            let (mut set, mut add, mut y) = (start.clone(), start.clone(), b.clone());
            if !scale_difference(&m, w, &a, &mut b.clone(), Destination::Set(&mut set)) {
                return; // no IFMA on this host: nothing to compare
            }
            assert!(scale_difference(&m, w, &a, &mut b.clone(), Destination::Add(&mut add)));
            assert!(scale_difference(&m, w, &a, &mut y, Destination::Overwrite));
            for j in 0..n {
                assert_eq!(set[j], want(j), "q {q} w {w} at {j}");
                assert_eq!(add[j], m.add(start[j], want(j)), "q {q} w {w} at {j}");
                assert_eq!(y[j], want(j), "q {q} w {w} at {j}");
            }
            a.truncate(8);
            // a length that is not a multiple of 8, or a short input: nothing written
            assert!(!scale_difference(&m, w, &a, &mut b[..12], Destination::Overwrite));
            assert!(!scale_difference(&m, w, &a, &mut b[..16], Destination::Overwrite));
            assert!(!scale_difference(&m, q, &a, &mut b[..8], Destination::Overwrite));
        }
    }
}

/// Against the scalar Shoup product: canonical values and values up to 4q - 1, every width.
#[test]
fn scale_matches_the_shoup_product() {
    let n = 64;
    let mut next = xorshift(0x51af_d7ed_558c_cd1du64);
    for q in EVERY_WIDTH {
        let m = Modulus::new(q).unwrap();
        for w in [0, 1, q - 1, next() % q] {
            let mut x: Vec<u64> = (0..n).map(|_| next() % (4 * q)).collect();
            (x[0], x[1], x[2]) = (0, q - 1, 4 * q - 1);
            let want: Vec<u64> = x.iter().map(|&v| m.mul_shoup(v, w, m.shoup(w))).collect();
            if !scale(&m, w, &mut x) {
                return; // no IFMA on this host: nothing to compare
            }
            assert_eq!(x, want, "q {q} w {w}");
            // a length that is not a multiple of 8, or w not below q: nothing written
            let before = x.clone();
            assert!(!scale(&m, w, &mut x[..12]));
            assert!(!scale(&m, q, &mut x));
            assert_eq!(x, before);
        }
    }
}

/// Against u128 arithmetic: canonical factors with the extremes 0 and q - 1, every width.
#[test]
fn tensor_matches_the_exact_products() {
    let n = 64;
    let mut next = xorshift(0xd6e8_feb8_6659_fd93u64);
    for q in EVERY_WIDTH {
        let m = Modulus::new(q).unwrap();
        let mut v: [Vec<u64>; 4] = core::array::from_fn(|_| (0..n).map(|_| next() % q).collect());
        for row in &mut v {
            (row[0], row[1]) = (q - 1, 0);
        }
        v[1][2] = q - 1;
        let [x0, x1, y0, y1] = &v;
        let (mut d0, mut d1, mut d2) = (vec![0; n], vec![0; n], vec![0; n]);
        if !tensor(&m, [x0, x1], [y0, y1], [&mut d0, &mut d1, &mut d2]) {
            return; // no IFMA on this host: nothing to compare
        }
        let p = |a: u64, b: u64| a as u128 * b as u128;
        for j in 0..n {
            assert_eq!(d0[j] as u128, p(x0[j], y0[j]) % q as u128, "q {q} at {j}");
            assert_eq!(d1[j] as u128, (p(x0[j], y1[j]) + p(x1[j], y0[j])) % q as u128, "q {q} at {j}");
            assert_eq!(d2[j] as u128, p(x1[j], y1[j]) % q as u128, "q {q} at {j}");
        }
        // a length that is not a multiple of 8, or a short factor: nothing written
        let mut e = [vec![7u64; 12], vec![7; 12], vec![7; 12]];
        let [e0, e1, e2] = &mut e;
        assert!(!tensor(&m, [x0, x1], [y0, y1], [e0, e1, e2]));
        assert!(!tensor(&m, [&x0[..8], x1], [y0, y1], [&mut d0, &mut d1, &mut d2]));
        assert_eq!(e, [vec![7u64; 12], vec![7; 12], vec![7; 12]]);
    }
}

/// Against the scalar centring (the loop `clifhe_std`'s `BasisConverter::centre_scaled` keeps
/// for hosts without the kernel): sources of 2 to 8 primes, residues 0 and b_i - 1.
#[test]
fn centre_matches_the_scalar_rounding() {
    let n = 64;
    let mut next = xorshift(0x8cb9_2ba7_2f3d_8dd7u64);
    let pool = [
        primes::P61[0],
        primes::Q40[0],
        primes::Q60,
        primes::P61[3],
        primes::Q55[1],
        primes::Q40[5],
        primes::P61[5],
        primes::Q39[0],
    ];
    for m in 2..=8 {
        let b = &pool[..m];
        let inv: Vec<f64> = b.iter().map(|&q| 1.0 / q as f64).collect();
        let mut y: Vec<u64> = (0..m * n).map(|k| next() % b[k / n]).collect();
        for (i, &q) in b.iter().enumerate() {
            (y[i * n], y[i * n + 1]) = (0, q - 1);
        }
        let mut want = y.clone();
        for j in 0..n {
            let mut s = (want[j] as i64) as f64 * inv[0];
            for (i, w) in inv.iter().enumerate().skip(1) {
                s += (want[i * n + j] as i64) as f64 * w;
            }
            let v = (s.round() as u64).min(m as u64);
            let up = m as u64 - v;
            let a = up.div_ceil(2);
            want[j] += a * b[0];
            want[n + j] += (up - a) * b[1];
        }
        if !centre(&mut y, n, &inv, [b[0], b[1]]) {
            return; // no IFMA on this host: nothing to compare
        }
        assert_eq!(y, want, "m {m}");
    }
    // one prime, a length that is not a multiple of 8, or a short source: nothing written
    let mut y = vec![5u64; 24];
    assert!(!centre(&mut y, 12, &[0.5, 0.5], [2, 3]));
    assert!(!centre(&mut y, 8, &[0.5], [2, 3]));
    assert!(!centre(&mut y, 8, &[0.5; 4], [2, 3]));
    assert_eq!(y, vec![5u64; 24]);
}

/// Against `Modulus::reduce_i64`: values of both signs up to 2^61 - 1 in magnitude, every width.
#[test]
fn reduce_signed_matches_the_scalar_reduction() {
    let n = 64;
    let mut next = xorshift(0x3c6e_f372_fe94_f82bu64);
    for q in EVERY_WIDTH {
        let m = Modulus::new(q).unwrap();
        let mut c: Vec<i64> = (0..n).map(|_| (next() >> 3) as i64 - (1 << 60)).collect();
        let extremes = [
            0,
            -1,
            1,
            (1 << 61) - 1,
            1 - (1 << 61),
            q as i64,
            -(q as i64),
            (q / 2) as i64,
            -((q / 2) as i64),
        ];
        c[..extremes.len()].copy_from_slice(&extremes);
        let want: Vec<u64> = c.iter().map(|&x| m.reduce_i64(x)).collect();
        let mut out = vec![7u64; n];
        if !reduce_signed(&m, &c, &mut out) {
            return; // no IFMA on this host: nothing to compare
        }
        assert_eq!(out, want, "q {q}");
        // a length that is not a multiple of 8, or a short output: nothing written
        let mut short = vec![7u64; 8];
        assert!(!reduce_signed(&m, &c[..12], &mut out));
        assert!(!reduce_signed(&m, &c[..16], &mut short));
        assert_eq!(short, vec![7u64; 8]);
    }
}
