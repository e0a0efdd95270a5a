//! Encrypted multivector batches against the plaintext `Multivector` algebra.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use clifhe_core::params::presets;
use clifhe_core::{Multivector, Params, ParamsLiteral, PublicKey, SecretKey};
use clifhe_std::ga::{interleaved_rotation_steps, EncryptedMultivectorBatch, Layout};
use clifhe_std::{EvalContext, Evaluator, GaloisKeys, RelinearizationKey};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

struct Setup {
    ectx: EvalContext,
    sk: SecretKey<Vec<i8>>,
    pk: PublicKey<Vec<u64>>,
    rlk: RelinearizationKey,
    gks: GaloisKeys,
    rng: ChaCha20Rng,
}

fn setup(lit: ParamsLiteral) -> Setup {
    let params = Params::new(lit).unwrap();
    let ectx = EvalContext::new(params).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(31);
    let sk = SecretKey::generate(&params, &mut rng).unwrap();
    let pk = PublicKey::generate(&params, ectx.q_tables(), &sk, &mut rng).unwrap();
    let rlk = RelinearizationKey::generate(&ectx, &sk, &mut rng).unwrap();
    let gks = GaloisKeys::for_rotations(&ectx, &sk, &interleaved_rotation_steps(), false, &mut rng).unwrap();
    Setup {
        ectx,
        sk,
        pk,
        rlk,
        gks,
        rng,
    }
}

fn random_mv(rng: &mut ChaCha20Rng) -> Multivector {
    let mut c = [0.0; 8];
    c.iter_mut().for_each(|v| *v = rng.next_u64() as f64 / u64::MAX as f64 * 2.0 - 1.0);
    Multivector::new(c)
}

/// (min, mean) precision in bits over every blade of every patient.
fn precision(got: &[Multivector], want: &[Multivector]) -> (f64, f64) {
    let bits: Vec<f64> = got
        .iter()
        .zip(want)
        .flat_map(|(g, w)| {
            g.coeffs()
                .into_iter()
                .zip(w.coeffs())
                .map(|(a, b)| -((a - b).abs().max(f64::EPSILON)).log2())
                .collect::<Vec<_>>()
        })
        .collect();
    (
        bits.iter().cloned().fold(f64::INFINITY, f64::min),
        bits.iter().sum::<f64>() / bits.len() as f64,
    )
}

fn check(tag: &str, got: &[Multivector], want: &[Multivector], min_bits: f64) {
    let (min, mean) = precision(got, want);
    println!("{tag}: min {min:.1} bits, mean {mean:.1} bits over {} patients", want.len());
    assert!(min >= min_bits, "{tag}: {min}");
}

fn exercise(lit: ParamsLiteral, patients: usize, min_bits: f64) {
    let mut s = setup(lit);
    let ev = Evaluator::new(&s.ectx);
    let xs: Vec<Multivector> = (0..patients).map(|_| random_mv(&mut s.rng)).collect();
    let ys: Vec<Multivector> = (0..patients).map(|_| random_mv(&mut s.rng)).collect();
    let w = random_mv(&mut s.rng);
    for layout in [Layout::BladeMajor { stride: 1 }, Layout::Interleaved] {
        let x = EncryptedMultivectorBatch::encrypt(&s.ectx, &s.pk, &xs, layout, &mut s.rng).unwrap();
        let y = EncryptedMultivectorBatch::encrypt(&s.ectx, &s.pk, &ys, layout, &mut s.rng).unwrap();
        let l = format!("{:?}", layout);
        let wx = x.gp_left_plain(&ev, &w, Some(&s.gks)).unwrap();
        check(
            &format!("{l} w*x"),
            &wx.decrypt(&s.ectx, &s.sk).unwrap(),
            &xs.iter().map(|x| w.gp(x)).collect::<Vec<_>>(),
            min_bits,
        );
        let xw = x.gp_right_plain(&ev, &w, Some(&s.gks)).unwrap();
        check(
            &format!("{l} x*w"),
            &xw.decrypt(&s.ectx, &s.sk).unwrap(),
            &xs.iter().map(|x| x.gp(&w)).collect::<Vec<_>>(),
            min_bits,
        );
        let xy = x.gp(&ev, &y, &s.rlk, Some(&s.gks)).unwrap();
        let want: Vec<_> = xs.iter().zip(&ys).map(|(a, b)| a.gp(b)).collect();
        check(
            &format!("{l} x*y (both encrypted)"),
            &xy.decrypt(&s.ectx, &s.sk).unwrap(),
            &want,
            min_bits - 4.0,
        );
        let rv = x.reverse(&ev).unwrap();
        check(
            &format!("{l} reverse"),
            &rv.decrypt(&s.ectx, &s.sk).unwrap(),
            &xs.iter().map(|x| x.reverse()).collect::<Vec<_>>(),
            min_bits,
        );
        let g2 = x.grade(&ev, 2).unwrap();
        check(
            &format!("{l} grade 2"),
            &g2.decrypt(&s.ectx, &s.sk).unwrap(),
            &xs.iter().map(|x| x.grade(2)).collect::<Vec<_>>(),
            min_bits,
        );
    }
    // Layout conversion round trip and the squared norm through blade-major.
    let x = EncryptedMultivectorBatch::encrypt(&s.ectx, &s.pk, &xs, Layout::Interleaved, &mut s.rng).unwrap();
    let b = x.to_blade_major(&ev, &s.gks).unwrap();
    check("interleaved -> blade-major", &b.decrypt(&s.ectx, &s.sk).unwrap(), &xs, min_bits);
    let back = b.to_interleaved(&ev, &s.gks).unwrap();
    check("-> interleaved", &back.decrypt(&s.ectx, &s.sk).unwrap(), &xs, min_bits);
    let ns = b.norm_squared(&ev, &s.rlk).unwrap();
    let dec = clifhe_core::decrypt::decrypt(s.ectx.core(), &s.sk, &ns)
        .unwrap()
        .decode_real()
        .unwrap();
    for (p, x) in xs.iter().enumerate() {
        assert!((dec[8 * p] - x.norm_squared()).abs() < 1e-3, "norm of patient {p}");
    }
}

#[test]
fn batches_at_test_preset() {
    exercise(presets::INSECURE_TEST_N12, 64, 16.0);
}

#[test]
fn batches_at_leveled_n14() {
    exercise(presets::LEVELED_N14, 100, 14.0);
}

#[test]
fn patients_are_independent_and_device_ciphertexts_merge() {
    let mut s = setup(presets::INSECURE_TEST_N12);
    let ev = Evaluator::new(&s.ectx);
    let mut xs: Vec<Multivector> = (0..16).map(|_| random_mv(&mut s.rng)).collect();
    let w = random_mv(&mut s.rng);
    // Device style: each patient encrypted alone into its own slots 8p..8p+7, merged by sums.
    let params = *s.ectx.params();
    let parts: Vec<_> = xs
        .iter()
        .enumerate()
        .map(|(p, x)| {
            let mut v = vec![0.0; params.max_slots()];
            v[8 * p..8 * p + 8].copy_from_slice(&x.coeffs());
            let pt = clifhe_core::encrypt::Plaintext::encode_real(&params, &v, params.default_scale()).unwrap();
            clifhe_core::encrypt::encrypt_pk(&params, s.ectx.q_tables(), &s.pk, &pt, params.max_level(), &mut s.rng).unwrap()
        })
        .collect();
    let merged = EncryptedMultivectorBatch::merge_interleaved(&s.ectx, &parts, xs.len()).unwrap();
    let a = merged
        .gp_left_plain(&ev, &w, Some(&s.gks))
        .unwrap()
        .decrypt(&s.ectx, &s.sk)
        .unwrap();
    // Perturb patient 3 only: every other patient's output is unchanged within precision.
    xs[3] = random_mv(&mut s.rng);
    let batch = EncryptedMultivectorBatch::encrypt(&s.ectx, &s.pk, &xs, Layout::Interleaved, &mut s.rng).unwrap();
    let b = batch.gp_left_plain(&ev, &w, Some(&s.gks)).unwrap().decrypt(&s.ectx, &s.sk).unwrap();
    for p in 0..xs.len() {
        let d = a[p]
            .coeffs()
            .iter()
            .zip(b[p].coeffs())
            .map(|(u, v)| (u - v).abs())
            .fold(0.0, f64::max);
        if p == 3 {
            assert!(d > 1e-2, "patient 3 changed");
        } else {
            assert!(d < 1e-4, "patient {p} moved by {d}");
        }
    }
}
