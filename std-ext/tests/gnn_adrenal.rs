//! AdrenalMNIST3D experiment (ignored: needs ../shared/data/adrenalmnist3d.npz).
//!
//! `cargo test -p clifhe-std --release --test gnn_adrenal -- --ignored --nocapture`
//!
//! Protocol: the 8 scan features of every volume (core's `scan_features`, intensity scale 255);
//! hyper-parameters chosen by stratified 5-fold cross-validation on train+val (the test split is
//! not looked at); the final GNN is fitted over 5 seeds with two protocols (A: train, early stopping
//! on the official val split; B: train+val with a stratified 15% held out); the logistic baseline
//! on train+val; all scored on the official test split.
//!
//! Figures (current `scan_features`): logistic regression test AUC 0.833 (class-weighted: 0.833,
//! balanced accuracy 0.778); GNN A: AUC 0.839 +- 0.002, balanced accuracy 0.772; GNN B: AUC
//! 0.837 +- 0.002, balanced accuracy 0.770. Cross-validation on train+val puts GNN (0.798),
//! its linear ablation a = 0 (0.796) and logistic regression (0.797) within noise of each other:
//! on these 8 moment features the label signal is essentially linear, and the test-split margin
//! of the GNN over logistic regression (+0.005 AUC) is small.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::path::PathBuf;

use clifhe_core::encrypt::{encrypt_pk, Plaintext};
use clifhe_core::multivector::features::{scan_features, FeatureConfig, VolumeView};
use clifhe_core::multivector::Multivector;
use clifhe_core::{Params, PublicKey, SecretKey};
use clifhe_std::gnn::encrypted::{evaluate_scheduled, Schedule};
use clifhe_std::gnn::{train, GnnModel, LogisticRegression, Metrics, TrainConfig};
use clifhe_std::privacy::{sanitize, Release, ReleasePolicy, Releaser, ResultLayout, SanitizeConfig};
use clifhe_std::{EvalContext, Evaluator, RelinearizationKey};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

fn data_path() -> PathBuf {
    if let Ok(p) = std::env::var("CLIFHE_ADRENAL_NPZ") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/adrenalmnist3d.npz")
}

/// Minimal NPY reader for the `|u1` C-order arrays of this file.
fn read_npy_u8(bytes: &[u8]) -> (Vec<usize>, Vec<u8>) {
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    let (hlen, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ => (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12),
    };
    let header = std::str::from_utf8(&bytes[start..start + hlen]).unwrap();
    assert!(
        header.contains("'descr': '|u1'") && header.contains("'fortran_order': False"),
        "{header}"
    );
    let shape_str = header.split("'shape': (").nth(1).unwrap().split(')').next().unwrap();
    let shape: Vec<usize> = shape_str
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let data = bytes[start + hlen..].to_vec();
    assert_eq!(data.len(), shape.iter().product::<usize>());
    (shape, data)
}

struct Split {
    x: Vec<Multivector>,
    y: Vec<usize>,
}

fn load() -> Option<(Split, Split, Split)> {
    let path = data_path();
    let file = std::fs::File::open(&path).ok()?;
    let mut zip = zip::ZipArchive::new(file).unwrap();
    let mut read = |name: &str| {
        let mut buf = Vec::new();
        zip.by_name(name).unwrap().read_to_end(&mut buf).unwrap();
        read_npy_u8(&buf)
    };
    let mut split = |name: &str| {
        let (shape, images) = read(&format!("{name}_images.npy"));
        let (_, labels) = read(&format!("{name}_labels.npy"));
        let dims = [shape[3], shape[2], shape[1]]; // C order: last axis fastest = x
        let vox = dims.iter().product::<usize>();
        let cfg = FeatureConfig { intensity_scale: 255.0 };
        let x = images
            .chunks(vox)
            .map(|v| scan_features(&VolumeView::new(v, dims, [1.0; 3]).unwrap(), &cfg).unwrap())
            .collect();
        Split {
            x,
            y: labels.iter().map(|&l| l as usize).collect(),
        }
    };
    Some((split("train"), split("val"), split("test")))
}

fn stratified_folds(y: &[usize], k: usize) -> Vec<usize> {
    // Deterministic: the i-th sample of each class goes to fold i mod k.
    let mut seen = [0usize; 2];
    y.iter()
        .map(|&c| {
            let f = seen[c] % k;
            seen[c] += 1;
            f
        })
        .collect()
}

fn cv_auc(x: &[Multivector], y: &[usize], cfg: &TrainConfig, k: usize) -> (f64, f64) {
    let folds = stratified_folds(y, k);
    let (mut aucs, mut bals) = (Vec::new(), Vec::new());
    for f in 0..k {
        let pick = |keep: bool| -> (Vec<Multivector>, Vec<usize>) {
            folds
                .iter()
                .enumerate()
                .filter(|(_, &g)| (g == f) != keep)
                .map(|(i, _)| (x[i], y[i]))
                .unzip()
        };
        let (tx, ty) = pick(true);
        let (vx, vy) = pick(false);
        let (model, _) = train(&tx, &ty, None, 2, cfg).unwrap();
        let m = Metrics::from_scores(&model.forward_batch(&vx), &vy, 2).unwrap();
        aucs.push(m.auc.unwrap());
        bals.push(m.balanced_accuracy);
    }
    (aucs.iter().sum::<f64>() / k as f64, bals.iter().sum::<f64>() / k as f64)
}

fn cv_auc_logistic(x: &[Multivector], y: &[usize], k: usize) -> f64 {
    let folds = stratified_folds(y, k);
    let mut s = 0.0;
    for f in 0..k {
        let pick = |keep: bool| -> (Vec<Multivector>, Vec<usize>) {
            folds
                .iter()
                .enumerate()
                .filter(|(_, &g)| (g == f) != keep)
                .map(|(i, _)| (x[i], y[i]))
                .unzip()
        };
        let (tx, ty) = pick(true);
        let (vx, vy) = pick(false);
        let lr = LogisticRegression::train(&tx, &ty, 2, 1.0 / tx.len() as f64, false, 2000).unwrap();
        s += Metrics::from_scores(&lr.scores_batch(&vx), &vy, 2).unwrap().auc.unwrap();
    }
    s / k as f64
}

fn grid() -> Vec<(String, TrainConfig)> {
    let base = TrainConfig {
        label_names: Some(vec!["normal".into(), "mass".into()]),
        ..TrainConfig::default()
    };
    let mut out = Vec::new();
    // Second round around the first round's best (lr 0.01, l2 1e-3, fixed a = 0.1): smaller
    // activation, smaller initial weights, larger batches, no class weighting.
    for &(act, learn) in &[(0.03, false), (0.05, false), (0.05, true), (0.1, false)] {
        for &(init, batch, cw) in &[(1.0, 64, true), (0.5, 64, true), (1.0, 256, true), (1.0, 64, false)] {
            let cfg = TrainConfig {
                learning_rate: 0.01,
                l2: 1e-3,
                activation_init: act,
                learn_activation: learn,
                init_scale: init,
                batch_size: batch,
                class_weighting: cw,
                ..base.clone()
            };
            out.push((format!("a0={act} learn_a={learn} init={init} batch={batch} class_w={cw}"), cfg));
        }
    }
    // Ablation: a = 0 makes every layer affine, so the GNN is a (over-parameterised) linear model.
    for &batch in &[64, 256] {
        let cfg = TrainConfig {
            learning_rate: 0.01,
            l2: 1e-3,
            activation_init: 0.0,
            learn_activation: false,
            batch_size: batch,
            ..base.clone()
        };
        out.push((format!("ablation a=0 (linear) batch={batch}"), cfg));
    }
    out
}

/// Hyper-parameter search by 5-fold CV on train+val (never the test split).
#[test]
#[ignore]
fn adrenal_tune_by_cross_validation() {
    let Some((tr, va, _)) = load() else {
        eprintln!("skipped: {} not found", data_path().display());
        return;
    };
    let x: Vec<Multivector> = tr.x.iter().chain(&va.x).copied().collect();
    let y: Vec<usize> = tr.y.iter().chain(&va.y).copied().collect();
    eprintln!("logistic regression 5-fold CV AUC {:.4}", cv_auc_logistic(&x, &y, 5));
    let mut results = Vec::new();
    for (name, cfg) in grid() {
        let (auc, bal) = cv_auc(&x, &y, &cfg, 5);
        eprintln!("{name}: CV AUC {auc:.4}, balanced accuracy {bal:.4}");
        results.push((auc, name));
    }
    results.sort_by(|a, b| b.0.total_cmp(&a.0));
    eprintln!("best: {:?}", results.first());
}

/// The reported figures: chosen configuration, official split, test scored once per seed.
#[test]
#[ignore]
fn adrenal_final_test_figures() {
    let Some((tr, va, te)) = load() else {
        eprintln!("skipped: {} not found", data_path().display());
        return;
    };
    let trva_x: Vec<Multivector> = tr.x.iter().chain(&va.x).copied().collect();
    let trva_y: Vec<usize> = tr.y.iter().chain(&va.y).copied().collect();
    let lr = LogisticRegression::train(&trva_x, &trva_y, 2, 1.0 / trva_x.len() as f64, false, 2000).unwrap();
    let base = Metrics::from_scores(&lr.scores_batch(&te.x), &te.y, 2).unwrap();
    let lrw = LogisticRegression::train(&trva_x, &trva_y, 2, 1.0 / trva_x.len() as f64, true, 2000).unwrap();
    let basew = Metrics::from_scores(&lrw.scores_batch(&te.x), &te.y, 2).unwrap();
    eprintln!(
        "logistic regression (train+val): test AUC {:.4}, balanced accuracy {:.4}, accuracy {:.4}",
        base.auc.unwrap(),
        base.balanced_accuracy,
        base.accuracy
    );
    eprintln!(
        "logistic regression, class-weighted: test AUC {:.4}, balanced accuracy {:.4}, accuracy {:.4}",
        basew.auc.unwrap(),
        basew.balanced_accuracy,
        basew.accuracy
    );

    let cfg = chosen_config();
    // Protocol A: fit on train, early stopping on the official val split (98 samples, 22 positives).
    // Protocol B (the one cross-validation selected with): fit on train+val, early stopping on a
    // stratified 15% of it.
    let mut kept: Option<(f64, GnnModel)> = None;
    for protocol in ["A", "B"] {
        let mut res = Vec::new();
        for seed in 1..=5u64 {
            let cfg = TrainConfig { seed, ..cfg.clone() };
            let (model, report) = if protocol == "A" {
                train(&tr.x, &tr.y, Some((&va.x, &va.y)), 2, &cfg).unwrap()
            } else {
                train(&trva_x, &trva_y, None, 2, &cfg).unwrap()
            };
            let m = Metrics::from_scores(&model.forward_batch(&te.x), &te.y, 2).unwrap();
            eprintln!(
                "GNN {protocol} seed {seed}: test AUC {:.4}, balanced accuracy {:.4}, accuracy {:.4}, confusion {:?}; best epoch {}; max |intermediate| train {:.3}, test {:.3}",
                m.auc.unwrap(),
                m.balanced_accuracy,
                m.accuracy,
                m.confusion,
                report.best_epoch,
                report.max_abs_intermediate,
                model.max_abs_intermediate(&te.x)
            );
            res.push((m.auc.unwrap(), m.balanced_accuracy));
            // The model kept for the encrypted comparison: protocol A, lowest loss on the official
            // val split (the one held-out set all seeds share; B's held-out sets differ by seed).
            let vl = report.best_val_loss.unwrap();
            if protocol == "A" && kept.as_ref().is_none_or(|(b, _)| vl < *b) {
                kept = Some((vl, model));
            }
        }
        let n = res.len() as f64;
        let mean = res.iter().map(|a| a.0).sum::<f64>() / n;
        let sd = (res.iter().map(|a| (a.0 - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        let bal = res.iter().map(|a| a.1).sum::<f64>() / n;
        eprintln!("GNN protocol {protocol} over 5 seeds: test AUC {mean:.4} +- {sd:.4}, balanced accuracy {bal:.4}");
    }
    let (_, model) = kept.unwrap();
    let m = Metrics::from_scores(&model.forward_batch(&te.x), &te.y, 2).unwrap();
    eprintln!(
        "GNN kept (protocol A, lowest val loss): test AUC {:.4}, balanced accuracy {:.4}; depth {}; products per layer {:?}; max |z| train {:.2}",
        m.auc.unwrap(),
        m.balanced_accuracy,
        model.depth(),
        model.ciphertext_products_per_layer(),
        model.max_abs_normalised_input(&trva_x)
    );
    if let Ok(path) = std::env::var("GNN_SAVE_MODEL") {
        model.save(std::path::Path::new(&path)).unwrap();
    }
}

fn chosen_config() -> TrainConfig {
    // Chosen by `adrenal_tune_by_cross_validation`: CV AUC 0.7976 (best 0.7985 was the same
    // without class weighting, within noise, but with balanced accuracy 0.63 instead of 0.72).
    TrainConfig {
        learning_rate: 0.01,
        l2: 1e-3,
        activation_init: 0.05,
        learn_activation: false,
        batch_size: 256,
        class_weighting: true,
        // The held-out loss can rise for the first epochs before it falls (class weighting pulls
        // the boundary first); 40 epochs of patience stopped one seed at epoch 8.
        patience: 100,
        label_names: Some(vec!["normal".into(), "mass".into()]),
        ..TrainConfig::default()
    }
}

#[test]
#[ignore]
fn adrenal_feature_ranges() {
    let Some((tr, _, te)) = load() else { return };
    let n = clifhe_std::gnn::Normalisation::fit(&tr.x).unwrap();
    for k in 0..8 {
        let z: Vec<f64> = tr.x.iter().map(|x| n.apply(x)[k]).collect();
        let zt: Vec<f64> = te.x.iter().map(|x| n.apply(x)[k]).collect();
        let mx = |v: &[f64]| v.iter().fold(0.0f64, |a, b| a.max(b.abs()));
        eprintln!(
            "blade {k}: mean {:.4} std {:.4} max|z| train {:.2} test {:.2}",
            n.mean[k],
            n.std[k],
            mx(&z),
            mx(&zt)
        );
    }
}

/// The circuit-private release on the official test split: every released (flooded, s = 30)
/// argmax equals the plaintext model's. Measured: flood standard deviation about 4e-7 against a
/// smallest top-two gap of 0.0198 (ratio 2e-5), 298/298 agree.
#[test]
#[ignore]
fn adrenal_circuit_private_release_agrees_on_every_test_sample() {
    let Some((tr, va, te)) = load() else {
        eprintln!("skipped: {} not found", data_path().display());
        return;
    };
    let (model, _) = train(&tr.x, &tr.y, Some((&va.x, &va.y)), 2, &chosen_config()).unwrap();
    let params = Params::from_name("private-n15").unwrap();
    let ectx = EvalContext::new(params).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let sk = SecretKey::generate(&params, &mut rng).unwrap();
    let pk = PublicKey::generate(&params, ectx.q_tables(), &sk, &mut rng).unwrap();
    let rlk = RelinearizationKey::generate(&ectx, &sk, &mut rng).unwrap();
    let ev = Evaluator::new(&ectx);
    let plan = model.encrypted_plan();
    let schedule = Schedule::circuit_private(&params, &plan, 2, 1).unwrap();
    let report = schedule.analyse(&params, &plan).unwrap();
    let ibox = model.input_box();
    let slots = params.max_slots();
    let cts: Vec<_> = (0..8)
        .map(|k| {
            let mut v = vec![0.0; slots];
            for (p, x) in te.x.iter().enumerate() {
                v[p] = ibox.encode(x)[k];
            }
            let pt = Plaintext::encode_real(&params, &v, schedule.input_scale).unwrap();
            encrypt_pk(&params, ectx.q_tables(), &pk, &pt, schedule.input_level, &mut rng).unwrap()
        })
        .collect();
    let scores = evaluate_scheduled(&ev, &rlk, &plan, &schedule, &cts).unwrap();
    let mut cfg = SanitizeConfig::new(report.per_coefficient_bound);
    cfg.used_slots = Some((0..slots).map(|s| s < te.x.len()).collect());
    cfg.value_bound = Some(report.ranges.score_bound());
    cfg.mask_passes = 2;
    let sanitized: Vec<_> = scores.iter().map(|s| sanitize(&ectx, &pk, s, &cfg, &mut rng).unwrap()).collect();
    let bound = sanitized.iter().map(|s| s.release_noise_bound).fold(0.0, f64::max);
    let refs: Vec<_> = sanitized.iter().map(|s| &s.ciphertext).collect();
    let layout = ResultLayout::CiphertextPerClass {
        groups: te.x.len(),
        classes: 2,
    };
    let mut releaser = Releaser::new(ReleasePolicy::argmax(bound, 1));
    let Release::Classes(got) = releaser.decrypt_for_release(ectx.core(), &sk, &refs, &layout, &mut rng).unwrap() else {
        panic!("argmax release")
    };
    let want: Vec<usize> = te.x.iter().map(|x| model.predict(x)).collect();
    let gaps: Vec<f64> =
        te.x.iter()
            .map(|x| {
                let s = model.forward(x);
                (s[0] - s[1]).abs()
            })
            .collect();
    let min_gap = gaps.iter().copied().fold(f64::INFINITY, f64::min);
    let flood = sanitized[0].flood_log2;
    let flood_std = (params.n() as f64 / 3.0).sqrt() * f64::from(flood).exp2() / schedule.output_scale();
    let agree = got.iter().zip(&want).filter(|(a, b)| a == b).count();
    eprintln!(
        "AdrenalMNIST3D test split: {agree}/{} released argmaxes agree; noise bound 2^{:.1} at scale 2^{:.0}, flood 2^{flood}: score noise std {flood_std:.2e}, smallest gap {min_gap:.4} (ratio {:.1e})",
        te.x.len(),
        report.per_coefficient_bound.log2(),
        schedule.output_scale().log2(),
        flood_std / min_gap
    );
    assert_eq!(agree, te.x.len());
}
