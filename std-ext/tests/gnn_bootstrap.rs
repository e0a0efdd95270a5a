//! A GNN deeper than the leveled budget, evaluated encrypted with bootstrapping between blocks,
//! against its plaintext reference: with the real bootstrapper at the bootstrapping test preset
//! and with the secret-key double at the N=2^12 leveled test preset.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use clifhe_core::ciphertext::CiphertextOwned;
use clifhe_core::decrypt::decrypt;
use clifhe_core::encrypt::{encrypt_sk_seeded, Plaintext};
use clifhe_core::params::presets;
use clifhe_core::{Multivector, Params, ParamsLiteral, SecretKey};
use clifhe_std::bootstrap::test_double::SecretKeyBootstrapper;
use clifhe_std::bootstrap::{BootstrapLiteral, Bootstrapper};
use clifhe_std::gnn::encrypted::{evaluate_blade_major, evaluate_blade_major_refreshing};
use clifhe_std::gnn::{GnnModel, Normalisation};
use clifhe_std::{EvalContext, EvalError, Evaluator, RelinearizationKey};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::sync::Mutex;
use std::time::Instant;

struct Case {
    params: Params,
    ectx: EvalContext,
    sk: SecretKey<Vec<i8>>,
    rng: Mutex<ChaCha20Rng>,
    model: GnnModel,
    xs: Vec<Multivector>,
}

fn case(lit: ParamsLiteral, hidden: &[usize], patients: usize) -> Case {
    let params = Params::new(lit).unwrap();
    let ectx = EvalContext::new(params).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(33);
    let sk = SecretKey::generate(&params, &mut rng).unwrap();
    let names = vec!["healthy".to_string(), "benign".to_string(), "malignant".to_string()];
    // small weights keep every intermediate of the deep stack in [-2, 2]
    let model = GnnModel::new_random(hidden, 3, names, Normalisation::identity(), 0.2, 0.9, 11).unwrap();
    let xs = (0..patients)
        .map(|_| Multivector::new(core::array::from_fn(|_| rng.next_u64() as f64 / u64::MAX as f64 * 2.0 - 1.0)))
        .collect();
    Case {
        params,
        ectx,
        sk,
        rng: Mutex::new(rng),
        model,
        xs,
    }
}

impl Case {
    /// Blade-major batch at `level`: ciphertext k holds blade k of every patient.
    fn encrypt(&self, level: usize) -> Vec<CiphertextOwned> {
        self.encrypt_slots(level, self.params.max_slots())
    }

    /// The same with `slots` slots per ciphertext (sparse below N/2).
    fn encrypt_slots(&self, level: usize, slots: usize) -> Vec<CiphertextOwned> {
        let p = self.params;
        (0..8)
            .map(|k| {
                let mut v = vec![0.0; slots];
                for (i, x) in self.xs.iter().enumerate() {
                    v[i] = x.coeffs()[k];
                }
                let pt = Plaintext::encode_real(&p, &v, p.default_scale()).unwrap();
                encrypt_sk_seeded(&p, self.ectx.q_tables(), &self.sk, &pt, level, &mut *self.rng.lock().unwrap())
                    .unwrap()
                    .expand(&p)
                    .unwrap()
            })
            .collect()
    }

    /// Runs the model's plan on `input` with `refresh` between blocks, prints `label`'s figures
    /// and checks the round count, the score error and that every argmax agrees.
    fn check_refreshing<F>(
        &self,
        label: &str,
        rlk: &RelinearizationKey,
        input: &[CiphertextOwned],
        refresh: &F,
        refreshed_level: usize,
        rounds: usize,
    ) where
        F: Fn(&[CiphertextOwned]) -> Result<Vec<CiphertextOwned>, EvalError>,
    {
        let plan = self.model.plan();
        let ev = Evaluator::new(&self.ectx);
        let t = Instant::now();
        let (scores, got_rounds) = evaluate_blade_major_refreshing(&ev, rlk, &plan, input, refresh, refreshed_level).unwrap();
        let (worst, agree) = self.compare(&scores);
        println!(
            "depth-{} GNN at {}, {label}: {got_rounds} rounds, {:.1?}; max |score error| {worst:.2e}, argmax agreement {agree}/{}",
            plan.depth(),
            self.params.name(),
            t.elapsed(),
            self.xs.len()
        );
        assert_eq!(got_rounds, rounds);
        assert!(worst < 1e-3, "{worst}");
        assert_eq!(agree, self.xs.len());
    }

    /// (max |score error|, argmax agreement) against the plaintext model.
    fn compare(&self, scores: &[CiphertextOwned]) -> (f64, usize) {
        let dec: Vec<Vec<f64>> = scores
            .iter()
            .map(|c| decrypt(self.ectx.core(), &self.sk, c).unwrap().decode_real().unwrap())
            .collect();
        let argmax = |v: &[f64]| (0..v.len()).fold(0, |b, i| if v[i] > v[b] { i } else { b });
        let mut worst: f64 = 0.0;
        let mut agree = 0;
        for (p, x) in self.xs.iter().enumerate() {
            let want = self.model.forward(x);
            let got: Vec<f64> = (0..want.len()).map(|c| dec[c][p]).collect();
            for (g, w) in got.iter().zip(&want) {
                worst = worst.max((g - w).abs());
            }
            agree += usize::from(argmax(&got) == argmax(&want));
        }
        (worst, agree)
    }
}

#[test]
fn deep_gnn_with_real_bootstrapping_matches_plaintext() {
    // 2 residual levels: one hidden layer (2 levels, the output rows folded into the last) per
    // block, so a depth-6 model needs 2 rounds of 8 bootstraps.
    let c = case(presets::INSECURE_TEST_BOOT_N12, &[8, 8, 8], 64);
    let bt = Bootstrapper::new(&c.ectx, BootstrapLiteral::default()).unwrap();
    let keys = bt.generate_keys(&c.sk, &mut *c.rng.lock().unwrap()).unwrap();
    let plan = c.model.plan();
    assert!(plan.depth() > bt.output_level(), "the model must not fit the residual levels");
    let input = c.encrypt(bt.output_level());
    let ev = Evaluator::new(&c.ectx);
    // without refreshing the plan cannot run
    assert!(matches!(
        evaluate_blade_major(&ev, &keys.relinearization, &plan, &input),
        Err(EvalError::Invalid(_))
    ));
    let refresh = |cts: &[CiphertextOwned]| cts.iter().map(|ct| bt.bootstrap(ct, &keys)).collect();
    c.check_refreshing(
        "8 bootstraps per round",
        &keys.relinearization,
        &input,
        &refresh,
        bt.output_level(),
        2,
    );
}

#[test]
fn deep_gnn_with_packed_bootstrapping_matches_plaintext() {
    // The same model and patients with 256-slot blade ciphertexts: each refresh round packs the
    // 8 blades into one full-slot bootstrap (`Bootstrapper::bootstrap_packed`).
    let c = case(presets::INSECURE_TEST_BOOT_N12, &[8, 8, 8], 64);
    let bt = Bootstrapper::new(&c.ectx, BootstrapLiteral::default()).unwrap();
    let mut keys = bt.generate_keys(&c.sk, &mut *c.rng.lock().unwrap()).unwrap();
    let slots = c.params.max_slots() / 8;
    bt.generate_packing_keys(&mut keys, &c.sk, slots.trailing_zeros(), &mut *c.rng.lock().unwrap())
        .unwrap();
    let input = c.encrypt_slots(bt.output_level(), slots);
    let refresh = |cts: &[CiphertextOwned]| bt.bootstrap_packed(cts, &keys);
    c.check_refreshing(
        "one packed bootstrap per round",
        &keys.relinearization,
        &input,
        &refresh,
        bt.output_level(),
        2,
    );
}

#[test]
fn deep_gnn_with_the_secret_key_double_matches_plaintext() {
    // Eight hidden layers: depth 16 against the 7 levels of the N=2^12 leveled test preset
    // (blocks of 3, 3 and 2 layers).
    let c = case(presets::INSECURE_TEST_N12, &[8, 8, 8, 8, 8, 8, 8, 8], 256);
    let plan = c.model.plan();
    let top = c.params.max_level();
    assert!(plan.depth() > top);
    let input = c.encrypt(top);
    let ev = Evaluator::new(&c.ectx);
    let rlk = RelinearizationKey::generate(&c.ectx, &c.sk, &mut *c.rng.lock().unwrap()).unwrap();
    let double = SecretKeyBootstrapper::new(&c.ectx, &c.sk, top, c.params.default_scale()).unwrap();
    let rng = Mutex::new(ChaCha20Rng::seed_from_u64(5));
    let refresh = |cts: &[CiphertextOwned]| cts.iter().map(|ct| double.bootstrap(ct, &mut *rng.lock().unwrap())).collect();
    let (scores, rounds) = evaluate_blade_major_refreshing(&ev, &rlk, &plan, &input, &refresh, top).unwrap();
    let (worst, agree) = c.compare(&scores);
    println!(
        "depth-{} GNN, secret-key double: {rounds} rounds, max |score error| {worst:.2e}, agreement {agree}/{}",
        plan.depth(),
        c.xs.len()
    );
    assert_eq!(rounds, 2);
    assert!(worst < 1e-4, "{worst}");
    assert_eq!(agree, c.xs.len());
    // a refresh that does not restore enough levels is an error, not a wrong answer
    let weak = SecretKeyBootstrapper::new(&c.ectx, &c.sk, 1, c.params.default_scale()).unwrap();
    let refresh = |cts: &[CiphertextOwned]| cts.iter().map(|ct| weak.bootstrap(ct, &mut *rng.lock().unwrap())).collect();
    assert!(evaluate_blade_major_refreshing(&ev, &rlk, &plan, &input, &refresh, top).is_err());
}

/// The same at the 128-bit N=2^16 preset with the real bootstrapper (opt-in:
/// `CLIFHE_HEAVY=gnn`, release build; several minutes on 2 cores). A depth-16 model against 12
/// residual levels, 4096 patients: the 8 blade ciphertexts have 4096 slots each, so a refresh
/// round is one packed full-slot bootstrap (`Bootstrapper::bootstrap_packed`); the time of
/// each round is printed.
#[test]
fn heavy_deep_gnn_n16() {
    if std::env::var("CLIFHE_HEAVY").ok().as_deref() != Some("gnn") {
        eprintln!("skipped: set CLIFHE_HEAVY=gnn (release build) for the N=2^16 deep-GNN test");
        return;
    }
    let c = case(presets::BOOTSTRAP_N16, &[8, 8, 8, 8, 8, 8, 8, 8], 4096);
    let t = Instant::now();
    let bt = Bootstrapper::new(&c.ectx, BootstrapLiteral::default()).unwrap();
    let mut keys = bt.generate_keys(&c.sk, &mut *c.rng.lock().unwrap()).unwrap();
    let slots = c.params.max_slots() / 8;
    bt.generate_packing_keys(&mut keys, &c.sk, slots.trailing_zeros(), &mut *c.rng.lock().unwrap())
        .unwrap();
    println!("setup and keys {:.1?}", t.elapsed());
    let plan = c.model.plan();
    assert!(plan.depth() > bt.output_level());
    let input = c.encrypt_slots(bt.output_level(), slots);
    let ev = Evaluator::new(&c.ectx);
    let t = Instant::now();
    let refresh = |cts: &[CiphertextOwned]| {
        let t = Instant::now();
        let out = bt.bootstrap_packed(cts, &keys);
        println!(
            "refresh round: {} ciphertexts of {slots} slots in one bootstrap, {:.1?} on {} thread(s)",
            cts.len(),
            t.elapsed(),
            rayon::current_num_threads()
        );
        out
    };
    let (scores, rounds) = evaluate_blade_major_refreshing(&ev, &keys.relinearization, &plan, &input, &refresh, bt.output_level()).unwrap();
    let (worst, agree) = c.compare(&scores);
    println!(
        "depth-{} GNN at {}: {rounds} packed refresh rounds, {:.1?} for {} patients; max |score error| {worst:.2e}, argmax agreement {agree}/{}",
        plan.depth(),
        c.params.name(),
        t.elapsed(),
        c.xs.len(),
        c.xs.len()
    );
    assert!(rounds >= 1);
    assert!(worst < 1e-3, "{worst}");
    assert_eq!(agree, c.xs.len());
}
