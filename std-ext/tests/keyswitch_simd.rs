//! The key switch, the plaintext sum of products and rescaling give the same words on every
//! arithmetic path of this host: AVX-512 IFMA (NTT passes, the basis conversion's small-prime
//! sums, the sums of products and the division steps, `clifhe_core::lincomb`), AVX2 and the
//! scalar reference. The paths are process-wide switches, so this file is its own test
//! binary with one test (nothing else runs while they are flipped).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use clifhe_core::encode::Complex;
use clifhe_core::encrypt::{encrypt_pk, Plaintext};
use clifhe_core::ntt::{set_avx2_on_avx512, set_ifma_enabled, set_simd_enabled};
use clifhe_core::params::presets;
use clifhe_core::{Params, PublicKey, SecretKey};
use clifhe_std::keys::rotation_galois_element;
use clifhe_std::{EvalContext, Evaluator, GaloisKeys, RelinearizationKey};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

#[test]
fn key_switches_and_plaintext_sums_are_identical_on_every_path() {
    // Six-prime digits of 40-, 39- and 60-bit primes and six 61-bit special primes: the
    // conversions into the small primes take the IFMA sums, from small sources (two products
    // per term) and from large ones (four); ModDown converts from the special primes.
    let params = Params::new(presets::INSECURE_TEST_BOOT_N12).unwrap();
    let ectx = EvalContext::new(params).unwrap();
    let ev = Evaluator::new(&ectx);
    let mut rng = ChaCha20Rng::seed_from_u64(14);
    let sk = SecretKey::generate(&params, &mut rng).unwrap();
    let pk = PublicKey::generate(&params, ectx.q_tables(), &sk, &mut rng).unwrap();
    let v: Vec<Complex> = (0..params.max_slots())
        .map(|i| Complex::new((i as f64 * 0.29).sin(), 0.25))
        .collect();
    let pt = Plaintext::encode(&params, &v, params.default_scale()).unwrap();
    let ct = encrypt_pk(&params, ectx.q_tables(), &pk, &pt, params.max_level(), &mut rng).unwrap();
    let gks = GaloisKeys::for_rotations(&ectx, &sk, &[5], false, &mut rng).unwrap();
    let rlk = RelinearizationKey::generate(&ectx, &sk, &mut rng).unwrap();
    let g = rotation_galois_element(5, ectx.n()).unwrap();
    // 40 plaintexts (more than one IFMA call's 32 terms) on two ciphertexts, at every prime
    // size of the chain
    let ct2 = encrypt_pk(&params, ectx.q_tables(), &pk, &pt, params.max_level(), &mut rng).unwrap();
    let pts: Vec<_> = (0..40)
        .map(|k| {
            let w: Vec<Complex> = (0..params.max_slots())
                .map(|i| Complex::new(((i * k) as f64 * 0.13).cos(), 0.5))
                .collect();
            ev.encode(&w, params.max_level(), params.default_scale()).unwrap()
        })
        .collect();
    let terms: Vec<_> = pts
        .iter()
        .enumerate()
        .map(|(k, p)| (if k % 3 == 0 { &ct2 } else { &ct }, p))
        .collect();
    let run = || {
        let sum = ev.mul_plain_sum(&terms).unwrap();
        let rescaled = ev.rescale(&sum).unwrap();
        let twice = ev.rescale_twice_owned(sum.clone()).unwrap();
        // integer weights of both signs, up to the kernel's eight terms and past them
        let weighted: Vec<_> = (0..9)
            .map(|k| (if k % 2 == 0 { &ct } else { &ct2 }, k as f64 * 37.0 - 150.0))
            .collect();
        let few = ev.integer_combination(&weighted[..8], params.max_level(), ct.meta.scale).unwrap();
        let many = ev.integer_combination(&weighted, params.max_level(), ct.meta.scale).unwrap();
        let rotated = ev.rotate(&ct, 5, &gks).unwrap();
        let product = ev.mul_relin(&ct, &ct, &rlk).unwrap();
        let switched = ectx.key_switch(&ct.c1, gks.get(g).unwrap()).unwrap();
        [
            rotated.c0,
            rotated.c1,
            product.c0,
            product.c1,
            switched.0,
            switched.1,
            sum.c0,
            sum.c1,
            rescaled.c0,
            rescaled.c1,
            twice.c0,
            twice.c1,
            few.c0,
            few.c1,
            many.c0,
            many.c1,
        ]
        .map(|p| p.as_slice().to_vec())
    };
    let best = run();
    set_ifma_enabled(false);
    set_avx2_on_avx512(true);
    let avx2 = run();
    set_simd_enabled(false);
    let scalar = run();
    set_simd_enabled(true);
    set_avx2_on_avx512(false);
    set_ifma_enabled(true);
    for (name, other) in [("AVX2", &avx2), ("scalar", &scalar)] {
        for (k, (a, b)) in best.iter().zip(other.iter()).enumerate() {
            assert!(a == b, "output {k}: the best path differs from the {name} path");
        }
    }
    assert_eq!(run(), best, "switching back restores the best path");
}
