//! Rotation behaviour of the features and the model (issue: "test it on rotated volumes").
//!
//! Under a rotation R of the scan about its centre the features transform as documented in
//! `clifhe_core::multivector::features`: the scalar (mean intensity) and e123 (RMS radius) are
//! invariant, the centroid rotates, the second moments transform as R C R^T. The GNN is not
//! rotation-invariant (its weights act on all 8 components), so this test measures the accuracy
//! on the phantom test set rotated by 90 and 180 degrees about z (exact voxel permutations) and
//! by 30 degrees (trilinear resampling), and checks the invariants on every exactly rotated
//! volume. Measured (seed 1, 150 phantoms per class): accuracy 0.658 unrotated, 0.694 at 90
//! degrees and 0.676 at 180 degrees (the phantoms' organ orientation is random, so these stay in
//! the training distribution), but 0.333 (chance) at 30 degrees: the body ellipsoid, always
//! axis-aligned in training, then contributes an xy second moment (e12 shifts by up to 0.02)
//! that the model never saw. The moment features are orientation features, not invariants.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use clifhe_core::multivector::features::{scan_features, FeatureConfig, VolumeView};
use clifhe_core::Multivector;
use clifhe_std::gnn::{train, Metrics, TrainConfig};
use host_eval::data::Volume;
use host_eval::phantom::{generate, rotate_volume, rotate_volume_quaternion, split_of, Axis, PhantomClass, PhantomConfig, Split};

/// Largest accuracy change allowed on tilted test phantoms (measured below).
const TILT_TOLERANCE: f64 = 0.03;

fn rotate_z(v: &Volume, deg: f64) -> Volume {
    rotate_volume(v, Axis::Z, deg)
}

fn features(v: &Volume) -> Multivector {
    let view = VolumeView::new(&v.data[..], v.dims, v.spacing_mm).unwrap();
    scan_features(&view, &FeatureConfig::default()).unwrap()
}

#[test]
fn invariants_hold_and_accuracy_under_rotation_is_measured() {
    let per_class = 150;
    let cfg = PhantomConfig::default();
    let mut train_x = Vec::new();
    let mut train_y = Vec::new();
    let mut test_v = Vec::new();
    let mut test_y = Vec::new();
    for i in 0..per_class {
        for c in PhantomClass::ALL {
            let v = generate(&cfg, c, i as u64);
            if split_of(i as u64, per_class) == Split::Test {
                test_v.push(v);
                test_y.push(c.label() as usize);
            } else {
                train_x.push(features(&v));
                train_y.push(c.label() as usize);
            }
        }
    }
    let (model, _) = train(
        &train_x,
        &train_y,
        None,
        3,
        &TrainConfig {
            epochs: 150,
            ..TrainConfig::default()
        },
    )
    .unwrap();
    let base: Vec<Multivector> = test_v.iter().map(features).collect();
    let acc = |xs: &[Multivector]| Metrics::from_scores(&model.forward_batch(xs), &test_y, 3).unwrap().accuracy;
    let a0 = acc(&base);
    for deg in [90.0, 180.0, 30.0] {
        let rotated: Vec<Multivector> = test_v.iter().map(|v| features(&rotate_z(v, deg))).collect();
        let exact = deg % 90.0 == 0.0;
        let mut drift: f64 = 0.0;
        for (f, g) in base.iter().zip(&rotated) {
            drift = drift.max((f.coeffs()[0] - g.coeffs()[0]).abs());
        }
        let mut comp = [0.0f64; 8];
        for (f, g) in base.iter().zip(&rotated) {
            for (c, (a, b)) in comp.iter_mut().zip(f.coeffs().into_iter().zip(g.coeffs())) {
                *c = c.max((a - b).abs());
            }
        }
        println!("rotation {deg:>5} deg: max |feature change| per blade {comp:.4?}");
        if !exact {
            // Resampling (and anything moved off the grid) changes the scalar slightly:
            // reported, not asserted.
            println!("rotation {deg:>5} deg: scalar feature drifts by up to {drift:.4}");
        }
        let tol = 1e-5;
        for (f, g) in base.iter().zip(&rotated).filter(|_| exact) {
            let (f, g) = (f.coeffs(), g.coeffs());
            assert!((f[0] - g[0]).abs() < tol, "scalar invariant under {deg}: {} vs {}", f[0], g[0]);
            assert!((f[7] - g[7]).abs() < tol, "size invariant under {deg}: {} vs {}", f[7], g[7]);
            // |centroid| in the xy plane and its z part are preserved.
            assert!(((f[1].hypot(f[2])) - g[1].hypot(g[2])).abs() < tol + 1e-3);
            assert!((f[3] - g[3]).abs() < tol + 1e-3);
        }
        let a = acc(&rotated);
        println!(
            "rotation {deg:>5} deg about z: accuracy {a:.3} (unrotated {a0:.3}, change {:+.3})",
            a - a0
        );
        // Not invariant by design: orientations the training set never saw cost accuracy. Under
        // exact rotations the model must stay above chance; at 30 degrees the body's own second
        // moment moves e12 out of the training range and accuracy falls to chance (reported).
        if exact {
            assert!(a > 0.40, "accuracy {a} under rotation {deg}");
        }
    }
    // Tilted patients (random whole-body orientation, analytic): reported beside the
    // equivariant model's figure in the next test.
    let tilted_cfg = PhantomConfig {
        max_tilt_deg: 180.0,
        ..cfg
    };
    let tilted: Vec<Multivector> = (0..per_class)
        .filter(|&i| split_of(i as u64, per_class) == Split::Test)
        .flat_map(|i| PhantomClass::ALL.map(|c| features(&generate(&tilted_cfg, c, i as u64))))
        .collect();
    println!(
        "8-feature GNN, tilted test phantoms: accuracy {:.3} (unrotated {a0:.3})",
        acc(&tilted)
    );
}

/// The equivariant network (the circuit-private one that `train --arch equivariant
/// --circuit-private` trains) on the phantoms' shell, principal-axis and depth channels, against
/// rotations of the volumes (resampled): the curve of issue 13 beside the one above.
#[test]
fn equivariant_model_accuracy_under_resampled_rotations() {
    use clifhe_std::gnn::equivariant_train::{train_equivariant, with_constant_channel, EquivariantConfig};
    // what `train --arch equivariant` uses (tent-weighted shells)
    let spec = host_eval::cli::equivariant::CHANNELS;
    let chans = |v: &Volume| {
        let view = VolumeView::new(&v.data[..], v.dims, v.spacing_mm).unwrap();
        spec.compute(&view, &FeatureConfig::default()).unwrap()
    };
    // 150 per class in CI (111 test phantoms); `CLIFHE_ROTATION_PER_CLASS=800` reproduces the
    // larger measurement below (600 test phantoms, about a minute).
    let per_class: usize = std::env::var("CLIFHE_ROTATION_PER_CLASS")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|&n| n >= 20)
        .unwrap_or(150);
    let cfg = PhantomConfig::default();
    let (mut train_x, mut train_y, mut test_v, mut test_y) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut test_ids = Vec::new();
    for i in 0..per_class {
        for c in PhantomClass::ALL {
            let v = generate(&cfg, c, i as u64);
            if split_of(i as u64, per_class) == Split::Test {
                test_v.push(v);
                test_y.push(c.label() as usize);
                test_ids.push((c, i as u64));
            } else {
                // Augmentation only for what the encoding cannot make invariant: resampling
                // (interpolated intensities move voxels between shells, corners leave the
                // cube). One resampled copy per training phantom, at an angle set by its index.
                let (axis, deg) = if i % 2 == 0 {
                    (Axis::Z, 7.0 + (i * 37 % 83) as f64)
                } else {
                    (Axis::X, 7.0 + (i * 53 % 83) as f64)
                };
                let y = c.label() as usize;
                train_x.push(chans(&rotate_volume(&v, axis, deg)));
                train_y.push(y);
                train_x.push(chans(&v));
                train_y.push(y);
            }
        }
    }
    let (net, rep) = train_equivariant(&train_x, &train_y, None, 3, &EquivariantConfig::circuit_private(1)).unwrap();
    let acc = |vols: &[Volume]| {
        let right = vols
            .iter()
            .zip(&test_y)
            .filter(|(v, &y)| {
                let s = net.scores(&with_constant_channel(&chans(v)));
                let best = (0..s.len()).max_by(|&a, &b| s[a].total_cmp(&s[b])).unwrap();
                best == y
            })
            .count();
        right as f64 / vols.len() as f64
    };
    let a0 = acc(&test_v);
    println!(
        "equivariant net ({} parameters, {} epochs): unrotated accuracy {a0:.3}",
        rep.parameters, rep.epochs_run
    );
    let mut worst: f64 = 0.0;
    // Interpolation without a net rotation (30 degrees about z and back): what resampling
    // alone costs. With hard shells it cost -0.081, more than any true rotation, so the loss
    // came from the interpolated intensities, not the geometry; tent-weighted shells keep the
    // channels continuous in the intensities, and it costs 0.000.
    // Accuracy after two resampled rotations of every test volume, reported and counted in
    // the worst change.
    let mut two_turns = |first: (Axis, f64), second: (Axis, f64), what: &str| {
        let turned: Vec<Volume> = test_v
            .iter()
            .map(|v| rotate_volume(&rotate_volume(v, first.0, first.1), second.0, second.1))
            .collect();
        let a = acc(&turned);
        worst = worst.max((a - a0).abs());
        println!("equivariant net, {what}: accuracy {a:.3} (change {:+.3})", a - a0);
    };
    two_turns(
        (Axis::Z, 30.0),
        (Axis::Z, -30.0),
        "resampled without net rotation (30 deg about z and back)",
    );
    // Two resampled rotations about different axes (two interpolations).
    two_turns((Axis::Z, 37.0), (Axis::X, 23.0), "37 deg about z then 23 deg about x");
    // Random elements of SO(3), each resampled once: uniform unit quaternions (Shoemake's
    // method) from a fixed splitmix64 stream.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut uniform = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) as f64 / u64::MAX as f64
    };
    for r in 0..4 {
        let (u1, u2, u3) = (uniform(), uniform(), uniform());
        let tau = std::f64::consts::TAU;
        let q = [
            (1.0 - u1).sqrt() * (tau * u2).sin(),
            (1.0 - u1).sqrt() * (tau * u2).cos(),
            u1.sqrt() * (tau * u3).sin(),
            u1.sqrt() * (tau * u3).cos(),
        ];
        let turned: Vec<Volume> = test_v.iter().map(|v| rotate_volume_quaternion(v, q)).collect();
        let a = acc(&turned);
        worst = worst.max((a - a0).abs());
        let angle = 2.0 * q[0].abs().min(1.0).acos().to_degrees();
        println!(
            "equivariant net, random rotation {r} ({angle:.0} deg about an axis of SO(3)): accuracy {a:.3} (change {:+.3})",
            a - a0
        );
    }
    for (axis, name) in [(Axis::Z, "z"), (Axis::X, "x")] {
        for deg in [15.0, 30.0, 45.0, 60.0, 90.0, 180.0] {
            let rotated: Vec<Volume> = test_v.iter().map(|v| rotate_volume(v, axis, deg)).collect();
            let a = acc(&rotated);
            worst = worst.max((a - a0).abs());
            println!(
                "equivariant net, {deg:>5} deg about {name}: accuracy {a:.3} (change {:+.3})",
                a - a0
            );
            // Quarter turns permute voxels exactly: the channels rotate exactly and every
            // prediction stays.
            if deg % 90.0 == 0.0 {
                assert_eq!(a, a0, "{deg} deg about {name}");
            }
        }
    }
    // Measured (seed 1, 150 phantoms per class, 111 test phantoms, tent-weighted shells):
    // 0.901 unrotated (the 8-feature GNN above: 0.658; hard shells: 0.784); resampled
    // rotations move it by -0.018 to +0.018 (2 phantoms of 111, the resolution of this test
    // set; hard shells: -0.054 to +0.018); resampling without rotation 0.000 (hard: -0.081);
    // tilted phantoms +0.009; four random elements of SO(3), each resampled once, -0.009 to
    // +0.018. With CLIFHE_ROTATION_PER_CLASS=800 (600 test phantoms): 0.910 unrotated, the
    // axis rotations -0.007 to +0.003 and the random rotations of SO(3) -0.008 to 0.000, within
    // issue 13's point, tilted -0.010; only the two-interpolation cases move more (-0.013,
    // -0.022).
    assert!(a0 > 0.85, "unrotated accuracy {a0}");
    assert!(worst <= 0.03, "accuracy moves by up to {worst:.3} under rotation");

    // Tilted patients: the same test phantoms rendered at a random whole-body orientation
    // (any axis, up to 180 degrees; analytic, no resampling of a rendered volume).
    let tilted_cfg = PhantomConfig {
        max_tilt_deg: 180.0,
        ..cfg
    };
    let tilted: Vec<Volume> = test_ids.iter().map(|&(c, i)| generate(&tilted_cfg, c, i)).collect();
    assert!(tilted.iter().zip(&test_v).all(|(t, v)| t.data != v.data));
    let at = acc(&tilted);
    println!(
        "equivariant net, tilted test phantoms (random axis, up to 180 deg): accuracy {at:.3} (change {:+.3})",
        at - a0
    );
    assert!((at - a0).abs() <= TILT_TOLERANCE, "tilted accuracy {at:.3} against {a0:.3}");
}
