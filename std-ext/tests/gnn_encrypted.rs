//! The encrypted GNN against its plaintext reference: same argmax on every sample, bounded score
//! error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use clifhe_core::decrypt::decrypt;
use clifhe_core::encrypt::{encrypt_pk, Plaintext};
use clifhe_core::params::presets;
use clifhe_core::{Multivector, Params, ParamsLiteral, PublicKey, SecretKey};
use clifhe_std::gnn::encrypted::evaluate_blade_major;
use clifhe_std::gnn::{GnnModel, Normalisation};
use clifhe_std::{EvalContext, Evaluator, RelinearizationKey};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

fn run(lit: ParamsLiteral, patients: usize, max_err: f64) {
    let params = Params::new(lit).unwrap();
    let ectx = EvalContext::new(params).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(21);
    let sk = SecretKey::generate(&params, &mut rng).unwrap();
    let pk = PublicKey::generate(&params, ectx.q_tables(), &sk, &mut rng).unwrap();
    let rlk = RelinearizationKey::generate(&ectx, &sk, &mut rng).unwrap();
    let names = vec!["healthy".to_string(), "benign".to_string(), "malignant".to_string()];
    let model = GnnModel::new_random(&[16, 8], 3, names, Normalisation::identity(), 0.3, 1.0, 7).unwrap();
    let plan = model.plan();
    let xs: Vec<Multivector> = (0..patients)
        .map(|_| {
            let mut c = [0.0; 8];
            c.iter_mut().for_each(|v| *v = rng.next_u64() as f64 / u64::MAX as f64 * 2.0 - 1.0);
            Multivector::new(c)
        })
        .collect();
    // Blade-major: ciphertext k holds blade k of every patient (full slots).
    let slots = params.max_slots();
    let cts: Vec<_> = (0..8)
        .map(|k| {
            let mut v = vec![0.0; slots];
            for (p, x) in xs.iter().enumerate() {
                v[p] = x.coeffs()[k];
            }
            let pt = Plaintext::encode_real(&params, &v, params.default_scale()).unwrap();
            encrypt_pk(&params, ectx.q_tables(), &pk, &pt, params.max_level(), &mut rng).unwrap()
        })
        .collect();
    let ev = Evaluator::new(&ectx);
    let scores = evaluate_blade_major(&ev, &rlk, &plan, &cts).unwrap();
    assert_eq!(scores.len(), 3);
    assert_eq!(scores[0].meta.level, params.max_level() - model.depth());
    let dec: Vec<Vec<f64>> = scores
        .iter()
        .map(|c| decrypt(ectx.core(), &sk, c).unwrap().decode_real().unwrap())
        .collect();
    let mut worst: f64 = 0.0;
    let mut agree = 0;
    for (p, x) in xs.iter().enumerate() {
        let want = model.forward(x);
        let got: Vec<f64> = (0..3).map(|c| dec[c][p]).collect();
        for c in 0..3 {
            worst = worst.max((got[c] - want[c]).abs());
        }
        let am = |v: &[f64]| {
            v.iter()
                .enumerate()
                .fold((0, f64::NEG_INFINITY), |b, (i, &s)| if s > b.1 { (i, s) } else { b })
                .0
        };
        if am(&got) == am(&want) {
            agree += 1;
        }
    }
    println!(
        "{}: {patients} patients, max |score error| = {worst:.2e}, argmax agreement {agree}/{patients}",
        params.name()
    );
    assert!(worst < max_err, "max score error {worst}");
    assert_eq!(agree, patients);
}

#[test]
fn encrypted_gnn_matches_plaintext_at_test_preset() {
    run(presets::INSECURE_TEST_N12, 512, 1e-3);
}

#[test]
fn encrypted_gnn_matches_plaintext_at_leveled_n14() {
    run(presets::LEVELED_N14, 1000, 1e-3);
}
