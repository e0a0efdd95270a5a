//! The equivariant network (`clifhe_std::gnn::equivariant`) on AdrenalMNIST3D (official
//! split, 28^3): 4 intensity-shell channels, the 3 principal-axis channels and the interior
//! depth channel of each scan (`clifhe_core::multivector::{channels, axes, depth}`), trained as
//! `train --arch equivariant --circuit-private` does (three seeds, the one with the lowest
//! validation loss kept); its test AUC is held to issue 13's 0.88 and must beat logistic
//! regression on the same channel coefficients; the trained model's scores must not move under
//! 100 random rotations of the channels.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use clifhe_core::Multivector;
use clifhe_std::gnn::equivariant::EquivariantNet;
use clifhe_std::gnn::equivariant_model::EquivariantModel;
use clifhe_std::gnn::equivariant_train::{train_equivariant, with_constant_channel, EquivariantConfig};
use clifhe_std::gnn::{roc_auc, ChannelLogisticRegression};
use clifhe_std::preprocess::PipelinePreset;
use rand_chacha::rand_core::{RngCore, SeedableRng};

mod adrenal;

use adrenal::{channels, dataset_path, SPEC};

fn auc(net: &EquivariantNet, xs: &[Vec<Multivector>], ys: &[usize]) -> f64 {
    let s: Vec<f64> = xs
        .iter()
        .map(|x| {
            let v = net.scores(&with_constant_channel(x));
            v[1] - v[0]
        })
        .collect();
    let pos: Vec<bool> = ys.iter().map(|&y| y == 1).collect();
    roc_auc(&s, &pos).unwrap()
}

#[test]
fn adrenal_auc_and_exact_invariance_of_the_trained_model() {
    let p = dataset_path();
    let d = host_eval::data::npz::load_medmnist_npz(&p).unwrap();
    let t = std::time::Instant::now();
    let (tx, ty) = channels(&d.train);
    let (vx, vy) = channels(&d.val);
    let (sx, sy) = channels(&d.test);
    eprintln!(
        "{} + {} + {} scans -> {} channels each in {:.1} s",
        tx.len(),
        vx.len(),
        sx.len(),
        SPEC.count(),
        t.elapsed().as_secs_f64()
    );
    let mut best: Option<(f64, u64, EquivariantNet)> = None;
    for seed in 1..=3 {
        let cfg = EquivariantConfig::circuit_private(seed);
        let t = std::time::Instant::now();
        let (net, rep) = train_equivariant(&tx, &ty, Some((&vx, &vy)), 2, &cfg).unwrap();
        let (va, te) = (auc(&net, &vx, &vy), auc(&net, &sx, &sy));
        eprintln!(
            "seed {seed}: {} parameters, {} epochs (best {}), validation AUC {va:.4}, test AUC {te:.4}, {:.1} s",
            rep.parameters,
            rep.epochs_run,
            rep.best_epoch,
            t.elapsed().as_secs_f64()
        );
        let loss = rep.best_val_loss.unwrap();
        if best.as_ref().is_none_or(|b| loss < b.0) {
            best = Some((loss, seed, net));
        }
    }
    let (loss, seed, net) = best.unwrap();
    let test_auc = auc(&net, &sx, &sy);
    eprintln!("kept seed {seed} (validation loss {loss:.4}): test AUC {test_auc:.4}");
    // Measured 0.8870 (seed 2; seeds 1 and 3: 0.8854, 0.8853). Training is deterministic, so
    // the floor only leaves room for floating-point differences between platforms.
    assert!(test_auc >= 0.88, "test AUC {test_auc:.4}");
    // The same inputs to a linear model: every coefficient of every channel, standardised.
    let lr = ChannelLogisticRegression::train(&tx, &ty, 2, 1e-3, true, 2000).unwrap();
    let lr_scores: Vec<f64> = sx.iter().map(|x| lr.scores(x)).map(|v| v[1] - v[0]).collect();
    let lr_auc = roc_auc(&lr_scores, &sy.iter().map(|&y| y == 1).collect::<Vec<_>>()).unwrap();
    eprintln!("logistic regression on the same channel coefficients: test AUC {lr_auc:.4}");
    assert!(test_auc > lr_auc, "network {test_auc:.4} against logistic regression {lr_auc:.4}");

    // Exact invariance of the trained model on real channels: 100 random rotors.
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(100);
    let mut worst = 0f64;
    for (i, x) in sx.iter().take(100).enumerate() {
        let q: [f64; 4] = core::array::from_fn(|_| rng.next_u64() as f64 / u64::MAX as f64 - 0.5);
        let n = q.iter().map(|v| v * v).sum::<f64>().sqrt();
        let r = Multivector::new([q[0] / n, 0.0, 0.0, 0.0, q[1] / n, q[2] / n, q[3] / n, 0.0]);
        let rx: Vec<Multivector> = x.iter().map(|c| r.gp(c).gp(&r.reverse())).collect();
        let (a, b) = (net.scores(&with_constant_channel(x)), net.scores(&with_constant_channel(&rx)));
        for (u, v) in a.iter().zip(&b) {
            worst = worst.max((u - v).abs());
        }
        assert!(worst <= 1e-9, "sample {i}: {a:?} vs {b:?}");
    }
    eprintln!("100 rotated test samples: max |score(Rx) - score(x)| = {worst:e}");

    // The model file: written, read back, the same predictions on every test scan.
    let pipeline = PipelinePreset::Medmnist.pipeline();
    let model = EquivariantModel::new(vec!["normal".into(), "abnormal".into()], SPEC, Some(pipeline), net).unwrap();
    let path = std::env::temp_dir().join(format!("clifhe-equivariant-{}.json", std::process::id()));
    model.save(&path).unwrap();
    let back = EquivariantModel::load(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    for x in &sx {
        assert_eq!(back.predict(x).unwrap(), model.predict(x).unwrap());
        assert_eq!(back.scores(x).unwrap(), model.scores(x).unwrap());
    }
}
