//! Rotation behaviour of the features and the model (issue: "test it on rotated volumes").
//!
//! Under a rotation R of the scan about its centre the features transform as documented in
//! `clifhe_core::multivector::features`: the scalar (mean intensity) and e123 (RMS radius) are
//! invariant, the centroid rotates, the second moments transform as R C R^T. The GNN is not
//! rotation-invariant (its weights act on all 8 components), so this test measures the accuracy
//! on the phantom test set rotated by 90 and 180 degrees about z (exact voxel permutations) and
//! by 30 degrees (trilinear resampling), and checks the invariants on every exactly rotated
//! volume. Measured (seed 1, 150 phantoms per class): accuracy 0.676 unrotated, 0.550 at 90
//! degrees, 0.532 at 180 degrees, 0.333 (chance) at 30 degrees, where cutting the box corners
//! changes the mean intensity by up to 0.025, more than a lesion does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use clifhe_core::multivector::features::{scan_features, FeatureConfig, VolumeView};
use clifhe_core::Multivector;
use clifhe_std::gnn::{train, Metrics, TrainConfig};
use host_eval::data::phantom::{generate, split_of, PhantomClass, PhantomConfig};
use host_eval::data::Volume;

/// Rotation about the z axis through the volume centre by `deg` degrees (trilinear sampling,
/// zero outside). Multiples of 90 degrees on a square slice are exact permutations.
fn rotate_z(v: &Volume, deg: f64) -> Volume {
    let [nx, ny, nz] = v.dims;
    let (c, s) = (deg.to_radians().cos(), deg.to_radians().sin());
    let (cx, cy) = (nx as f64 / 2.0, ny as f64 / 2.0);
    let at = |x: i64, y: i64, z: usize| -> f64 {
        if x < 0 || y < 0 || x >= nx as i64 || y >= ny as i64 {
            0.0
        } else {
            v.data[x as usize + nx * (y as usize + ny * z)] as f64
        }
    };
    let mut data = vec![0f32; v.data.len()];
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                // Inverse map: the source of output voxel centre (x, y).
                let (px, py) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
                let sx = c * px + s * py + cx - 0.5;
                let sy = -s * px + c * py + cy - 0.5;
                let (fx, fy) = (sx.floor(), sy.floor());
                let (ax, ay) = (sx - fx, sy - fy);
                let (ix, iy) = (fx as i64, fy as i64);
                let val = at(ix, iy, z) * (1.0 - ax) * (1.0 - ay)
                    + at(ix + 1, iy, z) * ax * (1.0 - ay)
                    + at(ix, iy + 1, z) * (1.0 - ax) * ay
                    + at(ix + 1, iy + 1, z) * ax * ay;
                data[x + nx * (y + ny * z)] = val as f32;
            }
        }
    }
    Volume { dims: v.dims, spacing_mm: v.spacing_mm, data }
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
            if split_of(i, per_class) == "test" {
                test_v.push(v);
                test_y.push(c.label());
            } else {
                train_x.push(features(&v));
                train_y.push(c.label());
            }
        }
    }
    let (model, _) = train(&train_x, &train_y, None, 3, &TrainConfig { epochs: 150, ..TrainConfig::default() }).unwrap();
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
        if !exact {
            // Resampled rotations move the box corners (background tissue) out of the grid and
            // fill the new corners with zeros, so even the scalar drifts: reported, not asserted.
            println!("rotation {deg:>5} deg: scalar feature drifts by up to {drift:.3} (corners cut)");
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
        println!("rotation {deg:>5} deg about z: accuracy {a:.3} (unrotated {a0:.3}, change {:+.3})", a - a0);
        // Not invariant by design: rotations the training set never saw cost accuracy. Under
        // exact rotations the model must stay above chance; under resampled ones the cut
        // corners shift the scalar feature by more than the lesions do, and accuracy falls to
        // chance (measured and reported: 0.33 at 30 degrees).
        if exact {
            assert!(a > 0.40, "accuracy {a} under rotation {deg}");
        }
    }
}
