//! Bit-exactness of the optimised NTT against a frozen copy of the original transforms.
//!
//! `reference` below is the NTT of commit 78bfb84 (radix-4 Harvey butterflies, separate N^-1
//! pass and final reduction), kept verbatim apart from taking the twiddle slices as arguments.
//! Every optimisation in `clifhe_core::ntt` must reproduce it word for word: `forward` and
//! `inverse` (canonical outputs) and, on the scalar and AVX2 paths, `forward_lazy` (the same
//! [0, 4q) representatives). The AVX-512 IFMA passes (primes below 2^50, where the CPU has
//! them) use a 52-bit Shoup quotient, so their lazy outputs may differ from the reference by
//! multiples of q: there `forward_lazy` must agree modulo q and stay below 4q (key switching,
//! its one user, reduces the sums it accumulates).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use clifhe_core::arith::{is_prime_u64, Modulus};
use clifhe_core::ntt::{
    fill_twiddles, ntt_path, primitive_root_2n, set_avx2_on_avx512, set_ifma_enabled, set_simd_enabled, NttPath, NttTable,
};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::sync::Mutex;

mod reference {
    use clifhe_core::arith::{csub, Modulus};

    pub struct Tw<'a> {
        pub m: Modulus,
        pub w: &'a [u64],
        pub ws: &'a [u64],
        pub iw: &'a [u64],
        pub iws: &'a [u64],
        pub n_inv: u64,
        pub n_inv_shoup: u64,
    }

    pub fn forward(tb: &Tw<'_>, a: &mut [u64]) {
        forward_lazy(tb, a);
        let q = tb.m.value();
        for x in a.iter_mut() {
            *x = csub(csub(*x, 2 * q), q);
        }
    }

    pub fn forward_lazy(tb: &Tw<'_>, a: &mut [u64]) {
        let n = a.len();
        let m = tb.m;
        let two_q = 2 * m.value();
        let (w, ws) = (tb.w, tb.ws);
        let mut t = n >> 1;
        let mut blocks = 1;
        while t >= 2 {
            let h = t / 2;
            let (tw1, tws1) = (&w[blocks..2 * blocks], &ws[blocks..2 * blocks]);
            let (tw2, tws2) = (&w[2 * blocks..4 * blocks], &ws[2 * blocks..4 * blocks]);
            for (i, block) in a.chunks_exact_mut(2 * t).enumerate() {
                let (w1, ws1) = (tw1[i], tws1[i]);
                let (w2a, ws2a, w2b, ws2b) = (tw2[2 * i], tws2[2 * i], tw2[2 * i + 1], tws2[2 * i + 1]);
                let (lo, hi) = block.split_at_mut(t);
                let (q0, q1) = lo.split_at_mut(h);
                let (q2, q3) = hi.split_at_mut(h);
                for (((x0, x1), x2), x3) in q0.iter_mut().zip(q1.iter_mut()).zip(q2.iter_mut()).zip(q3.iter_mut()) {
                    let u0 = csub(*x0, two_q);
                    let v0 = m.mul_shoup_lazy(*x2, w1, ws1);
                    let u1 = csub(*x1, two_q);
                    let v1 = m.mul_shoup_lazy(*x3, w1, ws1);
                    let (y0, y2) = (u0 + v0, u0 + two_q - v0);
                    let (y1, y3) = (u1 + v1, u1 + two_q - v1);
                    let a0 = csub(y0, two_q);
                    let b0 = m.mul_shoup_lazy(y1, w2a, ws2a);
                    let a2 = csub(y2, two_q);
                    let b2 = m.mul_shoup_lazy(y3, w2b, ws2b);
                    *x0 = a0 + b0;
                    *x1 = a0 + two_q - b0;
                    *x2 = a2 + b2;
                    *x3 = a2 + two_q - b2;
                }
            }
            t >>= 2;
            blocks <<= 2;
        }
        while blocks < n {
            let (tw, tws) = (&w[blocks..2 * blocks], &ws[blocks..2 * blocks]);
            if t == 1 {
                for (pair, (&wi, &wsi)) in a.chunks_exact_mut(2).zip(tw.iter().zip(tws)) {
                    let u = csub(pair[0], two_q);
                    let v = m.mul_shoup_lazy(pair[1], wi, wsi);
                    pair[0] = u + v;
                    pair[1] = u + two_q - v;
                }
            } else {
                for (block, (&wi, &wsi)) in a.chunks_exact_mut(2 * t).zip(tw.iter().zip(tws)) {
                    let (lo, hi) = block.split_at_mut(t);
                    for (x, y) in lo.iter_mut().zip(hi.iter_mut()) {
                        let u = csub(*x, two_q);
                        let v = m.mul_shoup_lazy(*y, wi, wsi);
                        *x = u + v;
                        *y = u + two_q - v;
                    }
                }
            }
            blocks <<= 1;
            t >>= 1;
        }
    }

    pub fn inverse(tb: &Tw<'_>, a: &mut [u64]) {
        let n = a.len();
        let m = tb.m;
        let two_q = 2 * m.value();
        let (w, ws) = (tb.iw, tb.iws);
        let mut t = 1;
        let mut blocks = n >> 1;
        while blocks >= 2 {
            let (twa, twsa) = (&w[blocks..2 * blocks], &ws[blocks..2 * blocks]);
            let (twb, twsb) = (&w[blocks / 2..blocks], &ws[blocks / 2..blocks]);
            for (i, block) in a.chunks_exact_mut(4 * t).enumerate() {
                let (wa0, wsa0, wa1, wsa1) = (twa[2 * i], twsa[2 * i], twa[2 * i + 1], twsa[2 * i + 1]);
                let (wb, wsb) = (twb[i], twsb[i]);
                let (lo, hi) = block.split_at_mut(2 * t);
                let (q0, q1) = lo.split_at_mut(t);
                let (q2, q3) = hi.split_at_mut(t);
                for (((x0, x1), x2), x3) in q0.iter_mut().zip(q1.iter_mut()).zip(q2.iter_mut()).zip(q3.iter_mut()) {
                    let (u0, v0, u1, v1) = (*x0, *x1, *x2, *x3);
                    let y0 = csub(u0 + v0, two_q);
                    let y1 = m.mul_shoup_lazy(u0 + two_q - v0, wa0, wsa0);
                    let y2 = csub(u1 + v1, two_q);
                    let y3 = m.mul_shoup_lazy(u1 + two_q - v1, wa1, wsa1);
                    *x0 = csub(y0 + y2, two_q);
                    *x2 = m.mul_shoup_lazy(y0 + two_q - y2, wb, wsb);
                    *x1 = csub(y1 + y3, two_q);
                    *x3 = m.mul_shoup_lazy(y1 + two_q - y3, wb, wsb);
                }
            }
            t <<= 2;
            blocks >>= 2;
        }
        while blocks >= 1 {
            let (tw, tws) = (&w[blocks..2 * blocks], &ws[blocks..2 * blocks]);
            if t == 1 {
                for (pair, (&wi, &wsi)) in a.chunks_exact_mut(2).zip(tw.iter().zip(tws)) {
                    let (u, v) = (pair[0], pair[1]);
                    pair[0] = csub(u + v, two_q);
                    pair[1] = m.mul_shoup_lazy(u + two_q - v, wi, wsi);
                }
            } else {
                for (block, (&wi, &wsi)) in a.chunks_exact_mut(2 * t).zip(tw.iter().zip(tws)) {
                    let (lo, hi) = block.split_at_mut(t);
                    for (x, y) in lo.iter_mut().zip(hi.iter_mut()) {
                        let (u, v) = (*x, *y);
                        *x = csub(u + v, two_q);
                        *y = m.mul_shoup_lazy(u + two_q - v, wi, wsi);
                    }
                }
            }
            t <<= 1;
            blocks >>= 1;
        }
        for x in a.iter_mut() {
            *x = m.mul_shoup(*x, tb.n_inv, tb.n_inv_shoup);
        }
    }
}

/// The largest prime below 2^bits that is 1 mod 2^17 (NTT-friendly up to N = 2^16).
fn ntt_prime(bits: u32) -> u64 {
    let step = 1u64 << 17;
    let mut q = ((1u64 << bits) - 1) / step * step + 1;
    while !is_prime_u64(q) {
        q -= step;
    }
    q
}

/// Serialises the tests of this file: they switch the SIMD passes off and on process-wide.
static SIMD_SWITCH: Mutex<()> = Mutex::new(());

/// Runs `check_once` on every path the host has: the default choice, AVX2 (also on a CPU with
/// AVX-512, where the default leaves the wide primes to the scalar passes) and scalar (a path
/// the CPU lacks falls through to the next, so some runs repeat one).
fn check(q: u64, n: usize, rng: &mut ChaCha20Rng) {
    let _guard = SIMD_SWITCH.lock().unwrap_or_else(|e| e.into_inner());
    for (simd, ifma, avx2_on_avx512) in [(true, true, false), (true, false, true), (false, false, false)] {
        set_simd_enabled(simd);
        set_ifma_enabled(ifma);
        set_avx2_on_avx512(avx2_on_avx512);
        check_once(q, n, rng);
    }
    set_simd_enabled(true);
    set_avx2_on_avx512(false);
}

fn check_once(q: u64, n: usize, rng: &mut ChaCha20Rng) {
    let m = Modulus::new(q).unwrap();
    let psi = primitive_root_2n(&m, n).unwrap();
    let (mut w, mut ws, mut iw, mut iws) = (vec![0; n], vec![0; n], vec![0; n], vec![0; n]);
    fill_twiddles(&m, psi, &mut w, &mut ws);
    fill_twiddles(&m, m.inv(psi), &mut iw, &mut iws);
    let n_inv = m.inv(n as u64);
    let tb = reference::Tw {
        m,
        w: &w,
        ws: &ws,
        iw: &iw,
        iws: &iws,
        n_inv,
        n_inv_shoup: m.shoup(n_inv),
    };
    let table = NttTable::new(q, n).unwrap();
    // A forward-only table built from the same slices must give the same forward results.
    let fwd_only = NttTable::from_parts(m, n, &w[..], &ws[..], &[][..], &[][..]).unwrap();
    // Inputs: uniform in [0, bound) for bound = q, 2q, 4q, plus the extremes.
    let inputs = |bound: u64, rng: &mut ChaCha20Rng| -> Vec<Vec<u64>> {
        vec![
            (0..n).map(|_| rng.next_u64() % bound).collect(),
            (0..n).map(|_| rng.next_u64() % bound).collect(),
            vec![0; n],
            vec![bound - 1; n],
            (0..n).map(|i| if i % 3 == 0 { bound - 1 } else { 0 }).collect(),
        ]
    };
    for bound in [q, 2 * q, 4 * q] {
        for a in inputs(bound, rng) {
            let mut want = a.clone();
            reference::forward(&tb, &mut want);
            let mut got = a.clone();
            table.forward(&mut got).unwrap();
            assert_eq!(got, want, "forward q={q:#x} n={n} bound={bound}");
            let mut got = a.clone();
            fwd_only.forward(&mut got).unwrap();
            assert_eq!(got, want, "forward (forward-only table) q={q:#x} n={n}");

            let mut want = a.clone();
            reference::forward_lazy(&tb, &mut want);
            let mut got = a.clone();
            table.forward_lazy(&mut got);
            if ntt_path(q) == NttPath::IfmaNarrow {
                assert!(
                    got.iter().all(|&x| x < 4 * q),
                    "forward_lazy (IFMA) q={q:#x} n={n}: output not below 4q"
                );
                let canon = |v: &[u64]| v.iter().map(|x| x % q).collect::<Vec<_>>();
                assert_eq!(canon(&got), canon(&want), "forward_lazy (IFMA) q={q:#x} n={n} bound={bound}");
            } else {
                assert_eq!(got, want, "forward_lazy q={q:#x} n={n} bound={bound}");
            }
        }
    }
    // The inverse takes [0, 2q) (forward outputs, products of them, sums reduced to [0, 2q)).
    for bound in [q, 2 * q] {
        for a in inputs(bound, rng) {
            let mut want = a.clone();
            reference::inverse(&tb, &mut want);
            let mut got = a.clone();
            table.inverse(&mut got).unwrap();
            assert_eq!(got, want, "inverse q={q:#x} n={n} bound={bound}");
            assert!(got.iter().all(|&x| x < q));
        }
    }
}

#[test]
fn optimised_ntt_is_bit_identical_to_the_reference() {
    let mut rng = ChaCha20Rng::seed_from_u64(0x004e_5454);
    let mut primes: Vec<u64> = [40, 41, 45, 50, 55, 59, 60, 61].iter().map(|&b| ntt_prime(b)).collect();
    // The primes the presets and benches use.
    primes.extend([0xffffffffffc0001u64, 0x10000140001, 0x1fffffffffe00001, 0x00ff_ff58_0001]);
    for &q in &primes {
        // N = 2^15 and 2^16 on the 40-, 60- and 61-bit primes only (test time).
        let max_log_n = if matches!(64 - q.leading_zeros(), 40 | 60 | 61) { 16 } else { 14 };
        for log_n in 1..=max_log_n {
            check(q, 1 << log_n, &mut rng);
        }
    }
}

#[test]
fn small_primes_are_bit_identical_too() {
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    for &(q, max_log_n) in &[(12289u64, 11u32), (0x7fffe60001, 14)] {
        for log_n in 1..=max_log_n {
            check(q, 1 << log_n, &mut rng);
        }
    }
}

/// On a CPU with AVX-512 IFMA and DQ, every prime below 2^62 takes an IFMA path (narrow below
/// 2^50, wide above), so the bit-identity checks above exercise both; with the SIMD passes
/// off, the scalar reference.
#[test]
fn primes_take_the_expected_path() {
    let _guard = SIMD_SWITCH.lock().unwrap_or_else(|e| e.into_inner());
    #[cfg(target_arch = "x86_64")]
    let ifma = std::is_x86_feature_detected!("avx512f")
        && std::is_x86_feature_detected!("avx512vl")
        && std::is_x86_feature_detected!("avx512dq")
        && std::is_x86_feature_detected!("avx512ifma");
    #[cfg(not(target_arch = "x86_64"))]
    let ifma = false;
    for bits in [40, 45, 50, 55, 59, 60, 61] {
        let q = ntt_prime(bits);
        let path = ntt_path(q);
        if ifma {
            let want = if q < 1 << 50 { NttPath::IfmaNarrow } else { NttPath::IfmaWide };
            assert_eq!(path, want, "{bits}-bit prime");
        }
        set_simd_enabled(false);
        assert_eq!(ntt_path(q), NttPath::Scalar, "{bits}-bit prime, SIMD off");
        set_simd_enabled(true);
    }
    // From 2^62 on, 4q no longer fits 64 bits: no IFMA path takes such a prime.
    assert!(!matches!(ntt_path(ntt_prime(63)), NttPath::IfmaNarrow | NttPath::IfmaWide));
}
