//! GNN: gradients, training, model file, determinism, the encrypted plan, metrics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use clifhe_core::multivector::Multivector;
use clifhe_std::gnn::{
    balanced_accuracy, loss_and_gradient, roc_auc, train, GnnError, GnnModel, LogisticRegression, Metrics, Normalisation, TrainConfig,
    DEFAULT_BOX_STDS,
};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

fn uniform(rng: &mut ChaCha20Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

fn random_points(n: usize, seed: u64) -> Vec<Multivector> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| Multivector::new(core::array::from_fn(|_| uniform(&mut rng))))
        .collect()
}

/// Small widths for speed; learned activation coefficients so that path is exercised too.
fn small_cfg() -> TrainConfig {
    TrainConfig {
        hidden: vec![4, 3],
        epochs: 150,
        patience: 30,
        batch_size: 64,
        learn_activation: true,
        activation_init: 0.1,
        ..TrainConfig::default()
    }
}

#[test]
fn gnn_gradient_matches_finite_differences() {
    let xs = random_points(12, 7);
    let ys: Vec<usize> = (0..12).map(|i| i % 3).collect();
    let mut model = GnnModel::new_random(
        &[3, 2],
        3,
        vec!["a".into(), "b".into(), "c".into()],
        Normalisation::identity(),
        0.3,
        2.0,
        5,
    )
    .unwrap();
    // Non-zero biases and distinct activation coefficients so every term of the gradient is exercised.
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let p: Vec<f64> = model.parameters().iter().map(|v| v + 0.3 * uniform(&mut rng)).collect();
    model.set_parameters(&p).unwrap();
    // A small range bound makes the penalty active on many intermediates.
    let cfg = TrainConfig {
        l2: 0.01,
        range_bound: 0.4,
        range_penalty: 0.5,
        learn_activation: true,
        ..TrainConfig::default()
    };
    let cw = [1.0, 2.0, 0.5];
    let (_, grad) = loss_and_gradient(&model, &xs, &ys, &cw, &cfg);
    let h = 1e-6;
    let mut worst = 0.0f64;
    for i in 0..p.len() {
        let mut q = p.clone();
        q[i] = p[i] + h;
        model.set_parameters(&q).unwrap();
        let lp = loss_and_gradient(&model, &xs, &ys, &cw, &cfg).0;
        q[i] = p[i] - h;
        model.set_parameters(&q).unwrap();
        let lm = loss_and_gradient(&model, &xs, &ys, &cw, &cfg).0;
        let fd = (lp - lm) / (2.0 * h);
        let err = (fd - grad[i]).abs() / (1e-4 + fd.abs().max(grad[i].abs()));
        worst = worst.max(err);
        assert!(err < 1e-4, "parameter {i}: analytic {} vs numeric {fd}", grad[i]);
    }
    eprintln!("worst relative gradient error {worst:.2e} over {} parameters", p.len());
}

#[test]
fn gnn_learns_a_separable_problem() {
    let xs = random_points(600, 11);
    let ys: Vec<usize> = xs
        .iter()
        .map(|x| usize::from(x.coeffs()[0] + 0.5 * x.coeffs()[3] - 0.7 * x.coeffs()[6] > 0.1))
        .collect();
    let (model, report) = train(&xs[..500], &ys[..500], None, 2, &small_cfg()).unwrap();
    let m = Metrics::from_scores(&model.forward_batch(&xs[500..]), &ys[500..], 2).unwrap();
    eprintln!(
        "separable: {m:?}, epochs {}, max |intermediate| {:.2}",
        report.epochs_run, report.max_abs_intermediate
    );
    assert!(m.accuracy > 0.9, "{m:?}");
    assert!(m.auc.unwrap() > 0.98);
    assert!(report.max_abs_intermediate < 8.0);
    assert_eq!(model.recorded_max_abs_intermediate(), Some(report.max_abs_intermediate));
}

/// A radial problem (inside / outside a sphere) no linear model can solve: the quadratic
/// activation is what lets the GNN solve it, and the logistic baseline stays near chance.
#[test]
fn gnn_nonlinearity_beats_logistic_regression_on_a_radial_problem() {
    let xs = random_points(800, 12);
    let r2 = |x: &Multivector| x.coeffs()[..3].iter().map(|v| v * v).sum::<f64>();
    let ys: Vec<usize> = xs.iter().map(|x| usize::from(r2(x) > 0.75)).collect();
    let cfg = TrainConfig {
        epochs: 300,
        ..small_cfg()
    };
    let (model, _) = train(&xs[..600], &ys[..600], None, 2, &cfg).unwrap();
    let gnn = Metrics::from_scores(&model.forward_batch(&xs[600..]), &ys[600..], 2).unwrap();
    let lr = LogisticRegression::train(&xs[..600], &ys[..600], 2, 1.0 / 600.0, true, 1000).unwrap();
    let base = Metrics::from_scores(&lr.scores_batch(&xs[600..]), &ys[600..], 2).unwrap();
    eprintln!("radial: gnn {gnn:?}\n        logistic {base:?}");
    assert!(gnn.auc.unwrap() > 0.95, "{gnn:?}");
    assert!(base.auc.unwrap() < 0.7, "{base:?}");
}

#[test]
fn gnn_three_classes() {
    let xs = random_points(900, 13);
    let ys: Vec<usize> = xs
        .iter()
        .map(|x| {
            if x.coeffs()[1] < -0.3 {
                0
            } else if x.coeffs()[2] > 0.0 {
                1
            } else {
                2
            }
        })
        .collect();
    let (model, _) = train(&xs[..700], &ys[..700], None, 3, &small_cfg()).unwrap();
    let m = Metrics::from_scores(&model.forward_batch(&xs[700..]), &ys[700..], 3).unwrap();
    eprintln!("3 classes: {m:?}");
    assert!(m.balanced_accuracy > 0.85 && m.auc.unwrap() > 0.95, "{m:?}");
    assert_eq!(model.topology(), &[1, 4, 3, 3]);
}

#[test]
fn gnn_training_is_deterministic() {
    let xs = random_points(200, 14);
    let ys: Vec<usize> = xs.iter().map(|x| usize::from(x.coeffs()[7] > 0.0)).collect();
    let cfg = TrainConfig { epochs: 20, ..small_cfg() };
    let (a, ra) = train(&xs, &ys, None, 2, &cfg).unwrap();
    let (b, rb) = train(&xs, &ys, None, 2, &cfg).unwrap();
    assert_eq!(a, b);
    assert_eq!(ra, rb);
    let (c, _) = train(&xs, &ys, None, 2, &TrainConfig { seed: 2, ..cfg }).unwrap();
    assert_ne!(a, c);
}

#[test]
fn gnn_plan_reproduces_forward_and_reports_depth() {
    let xs = random_points(100, 15);
    let ys: Vec<usize> = xs.iter().map(|x| usize::from(x.coeffs()[0] * x.coeffs()[1] > 0.0)).collect();
    let cfg = TrainConfig {
        hidden: vec![16, 8],
        epochs: 10,
        ..TrainConfig::default()
    };
    let (model, _) = train(&xs, &ys, None, 2, &cfg).unwrap();
    // 2 levels per hidden layer, the output rows folded into the last one.
    assert_eq!(model.depth(), 4);
    assert_eq!(model.ciphertext_products_per_layer(), vec![(128, 8), (64, 8)]);
    let plan = model.plan();
    assert_eq!(plan.depth(), 4);
    assert_eq!(plan.tensor_products(), vec![128, 64]);
    assert_eq!(plan.relinearizations(), vec![8, 2]);
    // The box-encoded plan is the same function of the encoded input.
    let enc = model.encrypted_plan();
    let b = model.input_box();
    for x in &xs {
        let (a, e) = (model.forward(x), enc.evaluate_coeffs(&b.encode(x)));
        for (u, v) in a.iter().zip(&e) {
            assert!((u - v).abs() < 1e-9 * (1.0 + u.abs()), "{a:?} vs {e:?}");
        }
    }
    for x in &xs {
        let (a, b) = (model.forward(x), plan.evaluate(x));
        for (u, v) in a.iter().zip(&b) {
            assert!((u - v).abs() < 1e-9 * (1.0 + u.abs()), "{a:?} vs {b:?}");
        }
    }
    // Layer 2's y-maps are geometric products with the stored weights; layer 1's carry the
    // folded normalisation and are general 8x8 maps.
    let (w, b) = plan.layers[1].pairs[3].0.as_geometric_product().unwrap();
    assert_eq!(w.coeffs(), model.hidden_layers()[1].weights[3]);
    assert_eq!(b.coeffs(), model.hidden_layers()[1].biases[3]);
    assert!(plan.layers[0].pairs[0].0.as_geometric_product().is_none());
}

#[test]
fn gnn_model_file_round_trip() {
    let xs = random_points(150, 16);
    let ys: Vec<usize> = xs.iter().map(|x| usize::from(x.coeffs()[2] > 0.2)).collect();
    let cfg = TrainConfig {
        epochs: 15,
        label_names: Some(vec!["normal".into(), "mass".into()]),
        ..small_cfg()
    };
    let (model, _) = train(&xs, &ys, None, 2, &cfg).unwrap();
    let dir = std::env::temp_dir().join(format!("clifhe-gnn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.json");
    model.save(&path).unwrap();
    let back = GnnModel::load(&path).unwrap();
    assert_eq!(model, back);
    assert_eq!(back.label_names(), &["normal".to_string(), "mass".to_string()]);
    for x in &xs {
        assert_eq!(model.forward(x), back.forward(x));
    }
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"format_version\": 3"));
    assert!(text.contains("\"input_box\""));
    // No pipeline recorded by `train` itself (the CLI records the one its features went
    // through); once set it round-trips, and a format-2 file (no pipeline) still loads.
    assert!(model.preprocessing().is_none());
    let mut with = model.clone();
    with.set_preprocessing(clifhe_std::preprocess::PipelinePreset::Ct.pipeline())
        .unwrap();
    let back = GnnModel::from_json(&with.to_json().unwrap()).unwrap();
    assert_eq!(back.preprocessing(), Some(&clifhe_std::preprocess::PipelinePreset::Ct.pipeline()));
    let v2 = text.replace("\"format_version\": 3", "\"format_version\": 2");
    assert!(GnnModel::from_json(&v2).unwrap().preprocessing().is_none());
    // Training records the features' range widened by a quarter on each side; the encoder of the
    // circuit-private path clamps into it.
    let b = model.input_box();
    assert!(xs.iter().all(|x| b.contains(x)));
    let far = Multivector::new([100.0; 8]);
    assert!(!b.contains(&far));
    assert!(b.encode(&far).iter().all(|v| (v - 1.0).abs() < 1e-12));
    // A format-1 file (no box) still loads; its box is mean +- 8 std.
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["format_version"] = serde_json::json!(1);
    v.as_object_mut().unwrap().remove("input_box");
    let old = GnnModel::from_json(&v.to_string()).unwrap();
    let n = old.normalisation();
    assert_eq!(old.input_box().center, n.mean);
    assert!((old.input_box().half_width[2] - DEFAULT_BOX_STDS * n.std[2]).abs() < 1e-12);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn gnn_corrupt_model_files_are_errors() {
    let model = GnnModel::new_random(&[4, 3], 2, vec!["a".into(), "b".into()], Normalisation::identity(), 0.1, 1.0, 1).unwrap();
    let good = model.to_json().unwrap();
    assert!(GnnModel::from_json(&good).is_ok());
    // Truncated.
    assert!(matches!(GnnModel::from_json(&good[..good.len() / 2]), Err(GnnError::Json(_))));
    // Not JSON at all.
    assert!(matches!(GnnModel::from_json("\u{0}\u{1}garbage"), Err(GnnError::Json(_))));
    // A future version.
    let v4 = good.replace("\"format_version\": 3", "\"format_version\": 4");
    assert!(matches!(
        GnnModel::from_json(&v4),
        Err(GnnError::UnsupportedVersion { found: 4, supported: 3 })
    ));
    // Missing version.
    let nov = good.replace("\"format_version\": 3,", "");
    assert!(matches!(GnnModel::from_json(&nov), Err(GnnError::InvalidModel(_))));
    // An invalid or unknown preprocessing pipeline.
    let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
    v["preprocessing"] =
        serde_json::json!({"version": 1, "resample_mm": -1.0, "intensity": {"kind": "scale", "divisor": 1.0}, "crop": {"kind": "none"}});
    assert!(matches!(GnnModel::from_json(&v.to_string()), Err(GnnError::InvalidModel(_))));
    v["preprocessing"] = serde_json::json!({"version": 1, "resample_mm": null, "intensity": {"kind": "gamma"}, "crop": {"kind": "none"}});
    assert!(GnnModel::from_json(&v.to_string()).is_err());
    // Inconsistent shapes: topology says 5 but the layer has 4 weights.
    let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
    v["topology"][1] = serde_json::json!(5);
    assert!(matches!(GnnModel::from_json(&v.to_string()), Err(GnnError::InvalidModel(_))));
    // A weight that is not a number (serde_json writes NaN as null).
    let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
    v["hidden"][0]["weights"][0][0] = serde_json::Value::Null;
    assert!(GnnModel::from_json(&v.to_string()).is_err());
    // A multivector with 7 components.
    let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
    v["output"]["weights"][0].as_array_mut().unwrap().pop();
    assert!(matches!(GnnModel::from_json(&v.to_string()), Err(GnnError::Json(_))));
    // An input box with a non-positive half-width.
    let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
    v["input_box"] =
        serde_json::json!({"center": [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], "half_width": [1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0]});
    assert!(matches!(GnnModel::from_json(&v.to_string()), Err(GnnError::InvalidModel(_))));
    // Zero standard deviation.
    let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
    v["normalisation"]["std"][3] = serde_json::json!(0.0);
    assert!(matches!(GnnModel::from_json(&v.to_string()), Err(GnnError::InvalidModel(_))));
    // Label names disagree with classes.
    let mut v: serde_json::Value = serde_json::from_str(&good).unwrap();
    v["label_names"] = serde_json::json!(["only one"]);
    assert!(matches!(GnnModel::from_json(&v.to_string()), Err(GnnError::InvalidModel(_))));
    // Missing file and non-UTF-8 bytes.
    assert!(matches!(
        GnnModel::load(std::path::Path::new("/nonexistent/model.json")),
        Err(GnnError::Io(_))
    ));
    let p = std::env::temp_dir().join(format!("clifhe-gnn-bad-{}.json", std::process::id()));
    std::fs::write(&p, [0xff, 0xfe, 0x00]).unwrap();
    assert!(GnnModel::load(&p).is_err());
    std::fs::remove_file(&p).unwrap();
}

#[test]
fn gnn_training_rejects_bad_input() {
    let xs = random_points(10, 17);
    assert!(matches!(train(&xs, &[0; 9], None, 2, &small_cfg()), Err(GnnError::InvalidInput(_))));
    assert!(matches!(
        train(&xs, &[2; 10], None, 2, &small_cfg()),
        Err(GnnError::InvalidInput(_))
    ));
    let mut bad = xs.clone();
    bad[3] = Multivector::new([f64::NAN; 8]);
    assert!(matches!(
        train(&bad, &[0; 10], None, 2, &small_cfg()),
        Err(GnnError::InvalidInput(_))
    ));
    assert!(matches!(train(&[], &[], None, 2, &small_cfg()), Err(GnnError::InvalidInput(_))));
}

#[test]
fn gnn_metrics_known_values() {
    // Perfect ranking, reversed ranking, all tied.
    assert_eq!(roc_auc(&[0.1, 0.2, 0.8, 0.9], &[false, false, true, true]), Some(1.0));
    assert_eq!(roc_auc(&[0.9, 0.8, 0.2, 0.1], &[false, false, true, true]), Some(0.0));
    assert_eq!(roc_auc(&[0.5; 4], &[false, true, false, true]), Some(0.5));
    // One positive ranked above 2 of 3 negatives.
    assert!((roc_auc(&[0.1, 0.2, 0.5, 0.3], &[false, false, false, true]).unwrap() - 2.0 / 3.0).abs() < 1e-12);
    assert_eq!(roc_auc(&[0.1, 0.2], &[true, true]), None);
    // Always predicting the majority class: balanced accuracy 1/2.
    assert_eq!(balanced_accuracy(&[0, 0, 0, 0], &[0, 0, 0, 1], 2), 0.5);
    let m = Metrics::from_scores(&[vec![1.0, 0.0], vec![0.0, 1.0], vec![0.0, 1.0]], &[0, 1, 0], 2).unwrap();
    assert_eq!(m.confusion, vec![vec![1, 1], vec![0, 1]]);
    assert!((m.accuracy - 2.0 / 3.0).abs() < 1e-12);
    assert!((m.balanced_accuracy - 0.75).abs() < 1e-12);
}
