//! The built-in phantom dataset: determinism, value range, class statistics measured from the
//! generated volumes, exact quarter-turn rotations, and separability of the scan features.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use clifhe_core::multivector::features::{scan_features, FeatureConfig};
use host_eval::data::Volume;
use host_eval::phantom::{
    dataset, dataset_split, generate, generate_labelled, rotate_volume, split_of, Axis, PhantomClass, PhantomConfig, Split, Tissue,
};

fn small() -> PhantomConfig {
    PhantomConfig {
        dims: [24, 24, 24],
        ..PhantomConfig::default()
    }
}

fn features(v: &Volume) -> [f64; 8] {
    scan_features(&v.view().unwrap(), &FeatureConfig::default()).unwrap().coeffs()
}

#[test]
fn deterministic_per_patient() {
    let cfg = PhantomConfig::default();
    for class in PhantomClass::ALL {
        let a = generate(&cfg, class, 7);
        let b = generate(&cfg, class, 7);
        let bytes = |v: &Volume| v.data.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        assert_eq!(bytes(&a), bytes(&b), "{class:?}");
        assert_eq!(a, b);
        assert_ne!(a, generate(&cfg, class, 8), "{class:?}: another index is another patient");
        assert_ne!(a, generate(&PhantomConfig { seed: 2, ..cfg }, class, 7), "{class:?}: another seed");
    }
    assert_ne!(generate(&cfg, PhantomClass::Healthy, 3), generate(&cfg, PhantomClass::Malignant, 3));
    // The dataset is the same patients, in index-then-class order, whatever the threading.
    let (vols, labels) = dataset(&small(), 4);
    assert_eq!(vols.len(), 12);
    assert_eq!(labels, [0, 1, 2].repeat(4));
    assert_eq!(vols[3 * 2 + 1], generate(&small(), PhantomClass::Benign, 2));
}

#[test]
fn values_finite_in_range_and_shaped() {
    let cfg = PhantomConfig {
        dims: [20, 28, 16],
        spacing_mm: 1.5,
        ..PhantomConfig::default()
    };
    for class in PhantomClass::ALL {
        for i in 0..5 {
            let v = generate(&cfg, class, i);
            assert_eq!(v.dims, [20, 28, 16]);
            assert_eq!(v.spacing_mm, [1.5; 3]);
            assert_eq!(v.data.len(), 20 * 28 * 16);
            assert!(v.data.iter().all(|x| x.is_finite() && (0.0..=1.0).contains(x)));
        }
    }
    // The corners are air (0): the body lies inside the inscribed sphere.
    let v = generate(&PhantomConfig::default(), PhantomClass::Malignant, 0);
    assert_eq!(v.data[0], 0.0);
    assert_eq!(v.data[v.data.len() - 1], 0.0);
}

#[test]
fn class_labels_and_names() {
    for (k, class) in PhantomClass::ALL.iter().enumerate() {
        assert_eq!(class.label(), k as u32);
        assert_eq!(PhantomClass::from_label(k as u32), Some(*class));
    }
    assert_eq!(PhantomClass::from_label(3), None);
    assert_eq!(PhantomClass::ALL.map(PhantomClass::name), ["healthy", "benign", "malignant"]);
}

#[test]
fn split_is_by_index_and_partitions_the_dataset() {
    let n = 20;
    let splits: Vec<Split> = (0..n as u64).map(|i| split_of(i, n)).collect();
    assert_eq!(splits.iter().filter(|s| **s == Split::Train).count(), 12);
    assert_eq!(splits.iter().filter(|s| **s == Split::Val).count(), 3);
    assert_eq!(splits.iter().filter(|s| **s == Split::Test).count(), 5);
    // Contiguous: train, then val, then test.
    assert!(splits.windows(2).all(|w| (w[0] as u8) <= (w[1] as u8)));
    let cfg = small();
    let (all, all_labels) = dataset(&cfg, 8);
    let mut total = 0;
    for split in Split::ALL {
        let (vols, labels) = dataset_split(&cfg, 8, split);
        total += vols.len();
        for (v, l) in vols.iter().zip(&labels) {
            let k = all.iter().position(|a| a == v).unwrap();
            assert_eq!(all_labels[k], *l);
            assert_eq!(split_of((k / 3) as u64, 8), split);
        }
    }
    assert_eq!(total, all.len());
}

/// Per-patient lesion measurements from the volume and its label map.
struct LesionStats {
    /// Lesion voxels (0 when there is none).
    volume: usize,
    /// |mean lesion intensity - mean organ intensity| (windowed units).
    contrast: f64,
    /// Distance of the lesion centroid from the organ centroid over the organ's RMS radius.
    eccentricity: f64,
    /// Sphericity pi^(1/3) (6 V)^(2/3) / A with A the count of exposed voxel faces: lower for
    /// irregular shapes (the face count overestimates a smooth sphere's area by about 1.5, the
    /// same factor for every class, so only comparisons are meaningful).
    sphericity: f64,
}

fn lesion_stats(v: &Volume, labels: &[u8]) -> LesionStats {
    let [nx, ny, nz] = v.dims;
    let (mut ls, mut lc, mut os, mut oc) = (0.0, [0.0; 3], 0.0, [0.0; 3]);
    let (mut nl, mut no) = (0usize, 0usize);
    let mut faces = 0usize;
    let mut organ_pts = Vec::new();
    let lesion = Tissue::Lesion as u8;
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                let i = x + nx * (y + ny * z);
                let p = [x as f64, y as f64, z as f64];
                if labels[i] == lesion {
                    nl += 1;
                    ls += f64::from(v.data[i]);
                    (0..3).for_each(|k| lc[k] += p[k]);
                    let neighbours = [
                        (x > 0).then(|| i - 1),
                        (x + 1 < nx).then(|| i + 1),
                        (y > 0).then(|| i - nx),
                        (y + 1 < ny).then(|| i + nx),
                        (z > 0).then(|| i - nx * ny),
                        (z + 1 < nz).then(|| i + nx * ny),
                    ];
                    faces += neighbours.iter().filter(|n| n.is_none_or(|j| labels[j] != lesion)).count();
                }
                if labels[i] == Tissue::Organ as u8 || labels[i] == lesion {
                    organ_pts.push(p);
                    (0..3).for_each(|k| oc[k] += p[k]);
                    if labels[i] == Tissue::Organ as u8 {
                        no += 1;
                        os += f64::from(v.data[i]);
                    }
                }
            }
        }
    }
    if nl == 0 {
        return LesionStats {
            volume: 0,
            contrast: 0.0,
            eccentricity: 0.0,
            sphericity: 1.0,
        };
    }
    let oc = oc.map(|c| c / organ_pts.len() as f64);
    let lc = lc.map(|c| c / nl as f64);
    let rms = (organ_pts
        .iter()
        .map(|p| (0..3).map(|k| (p[k] - oc[k]).powi(2)).sum::<f64>())
        .sum::<f64>()
        / organ_pts.len() as f64)
        .sqrt();
    let d = (0..3).map(|k| (lc[k] - oc[k]).powi(2)).sum::<f64>().sqrt();
    let vol = nl as f64;
    LesionStats {
        volume: nl,
        contrast: (ls / vol - os / no.max(1) as f64).abs(),
        eccentricity: d / rms,
        sphericity: std::f64::consts::PI.cbrt() * (6.0 * vol).powf(2.0 / 3.0) / faces as f64,
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if xs.is_empty() {
        0.0
    } else {
        xs[xs.len() / 2]
    }
}

#[test]
fn class_statistics_differ_in_the_expected_direction() {
    let cfg = PhantomConfig::default();
    let n = 60;
    let stats: Vec<Vec<LesionStats>> = PhantomClass::ALL
        .iter()
        .map(|&c| {
            (0..n)
                .map(|i| {
                    let (v, l) = generate_labelled(&cfg, c, i);
                    assert_eq!(l.len(), v.data.len());
                    lesion_stats(&v, &l)
                })
                .collect()
        })
        .collect();
    let with_lesion = |s: &[LesionStats]| s.iter().filter(|x| x.volume > 0).count();
    let med = |s: &[LesionStats], f: fn(&LesionStats) -> f64| median(s.iter().filter(|x| x.volume > 0).map(f).collect());
    let [h, b, m] = [&stats[0], &stats[1], &stats[2]];
    for (name, s) in [("healthy", h), ("benign", b), ("malignant", m)] {
        println!(
            "{name}: lesion in {}/{n}, median volume {:.0} voxels, contrast {:.3}, eccentricity {:.2}, sphericity {:.2}",
            with_lesion(s),
            med(s, |x| x.volume as f64),
            med(s, |x| x.contrast),
            med(s, |x| x.eccentricity),
            med(s, |x| x.sphericity)
        );
    }
    // Every benign and malignant patient has a visible lesion; healthy ones at most a tiny cyst.
    assert_eq!(with_lesion(b), n as usize);
    assert_eq!(with_lesion(m), n as usize);
    assert!(h.iter().all(|x| x.volume < 40), "healthy cysts stay tiny");
    assert!(with_lesion(h) < n as usize / 2);
    // Malignant lesions are larger, higher contrast, more eccentric and less round than benign.
    assert!(med(m, |x| x.volume as f64) > 1.3 * med(b, |x| x.volume as f64));
    assert!(med(m, |x| x.contrast) > med(b, |x| x.contrast));
    assert!(med(m, |x| x.eccentricity) > 1.5 * med(b, |x| x.eccentricity));
    assert!(med(m, |x| x.sphericity) < med(b, |x| x.sphericity));
    // ... but the distributions overlap: some benign lesion is larger than some malignant one.
    let max_benign = b.iter().map(|x| x.volume).max().unwrap();
    let min_malignant = m.iter().map(|x| x.volume).min().unwrap();
    assert!(
        max_benign > min_malignant,
        "benign max {max_benign} vs malignant min {min_malignant}"
    );
}

fn assert_bytes_eq(a: &Volume, b: &Volume) {
    assert_eq!(a.dims, b.dims);
    assert_eq!(a.spacing_mm, b.spacing_mm);
    assert!(a.data.iter().zip(&b.data).all(|(x, y)| x.to_bits() == y.to_bits()));
}

#[test]
fn quarter_turns_are_exact() {
    let cfg = PhantomConfig {
        dims: [12, 16, 20],
        spacing_mm: 1.0,
        ..PhantomConfig::default()
    };
    let mut v = generate(&cfg, PhantomClass::Malignant, 1);
    v.spacing_mm = [1.0, 2.0, 3.0];
    for axis in [Axis::X, Axis::Y, Axis::Z] {
        let mut r = v.clone();
        for _ in 0..4 {
            r = rotate_volume(&r, axis, 90.0);
        }
        assert_bytes_eq(&r, &v);
        assert_bytes_eq(&rotate_volume(&v, axis, 360.0), &v);
        assert_bytes_eq(&rotate_volume(&v, axis, -90.0), &rotate_volume(&v, axis, 270.0));
        assert_bytes_eq(
            &rotate_volume(&rotate_volume(&v, axis, 90.0), axis, 90.0),
            &rotate_volume(&v, axis, 180.0),
        );
        // A quarter turn permutes voxels: same multiset of values.
        let mut a: Vec<u32> = v.data.iter().map(|x| x.to_bits()).collect();
        let mut b: Vec<u32> = rotate_volume(&v, axis, 90.0).data.iter().map(|x| x.to_bits()).collect();
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b);
    }
    // Dims and spacing of the rotation plane swap.
    let r = rotate_volume(&v, Axis::Z, 90.0);
    assert_eq!(r.dims, [16, 12, 20]);
    assert_eq!(r.spacing_mm, [2.0, 1.0, 3.0]);
}

#[test]
fn quarter_turn_direction_is_right_handed() {
    // One bright voxel at +x of the centre of a 5^3 volume.
    let mut v = Volume {
        dims: [5, 5, 5],
        spacing_mm: [1.0; 3],
        data: vec![0.0; 125],
    };
    let at = |x: usize, y: usize, z: usize| x + 5 * (y + 5 * z);
    v.data[at(4, 2, 2)] = 1.0;
    assert_eq!(rotate_volume(&v, Axis::Z, 90.0).data[at(2, 4, 2)], 1.0, "z: +x -> +y");
    assert_eq!(rotate_volume(&v, Axis::Y, 90.0).data[at(2, 2, 0)], 1.0, "y: +x -> -z");
    let mut w = Volume {
        dims: [5, 5, 5],
        spacing_mm: [1.0; 3],
        data: vec![0.0; 125],
    };
    w.data[at(2, 4, 2)] = 1.0;
    assert_eq!(rotate_volume(&w, Axis::X, 90.0).data[at(2, 2, 4)], 1.0, "x: +y -> +z");
    // The trilinear path agrees with the convention (a hair off 90 degrees).
    let r = rotate_volume(&v, Axis::Z, 90.0 + 1e-9);
    assert!((r.data[at(2, 4, 2)] - 1.0).abs() < 1e-6);
}

#[test]
fn features_under_rotation() {
    let cfg = PhantomConfig::default();
    for (class, i) in [(PhantomClass::Healthy, 0), (PhantomClass::Benign, 1), (PhantomClass::Malignant, 2)] {
        let v = generate(&cfg, class, i);
        let f = features(&v);
        // Quarter turn about z: scalar and size invariant, centroid rotates (x, y) -> (-y, x).
        let g = features(&rotate_volume(&v, Axis::Z, 90.0));
        let tol = 1e-6;
        assert!((g[0] - f[0]).abs() < tol && (g[7] - f[7]).abs() < tol, "{class:?}: {f:?} vs {g:?}");
        assert!((g[1] + f[2]).abs() < tol && (g[2] - f[1]).abs() < tol && (g[3] - f[3]).abs() < tol);
        // An arbitrary angle resamples: the invariant features move only by the interpolation
        // error (no tissue leaves the grid), the centroid still rotates.
        let t = 30f64.to_radians();
        let g = features(&rotate_volume(&v, Axis::Z, 30.0));
        assert!((g[0] - f[0]).abs() < 2e-3 * f[0], "{class:?}: mean {} vs {}", f[0], g[0]);
        assert!((g[7] - f[7]).abs() < 5e-3 * f[7], "{class:?}: size {} vs {}", f[7], g[7]);
        let c = [t.cos() * f[1] - t.sin() * f[2], t.sin() * f[1] + t.cos() * f[2]];
        assert!(
            (g[1] - c[0]).abs() < 2e-3 && (g[2] - c[1]).abs() < 2e-3,
            "{class:?}: centroid {:?} vs {c:?}",
            &g[1..3]
        );
    }
}

#[test]
fn scan_features_separate_the_classes() {
    // Nearest class mean on standardised features, fitted on the training split and scored on
    // the test split: a trivial rule must beat chance (1/3) by a wide margin.
    let cfg = PhantomConfig::default();
    let n = 150;
    let (vols, labels) = dataset(&cfg, n);
    let xs: Vec<[f64; 8]> = vols.iter().map(features).collect();
    let train: Vec<usize> = (0..xs.len()).filter(|&k| split_of((k / 3) as u64, n) != Split::Test).collect();
    let test: Vec<usize> = (0..xs.len()).filter(|&k| split_of((k / 3) as u64, n) == Split::Test).collect();
    let mean: [f64; 8] = std::array::from_fn(|j| train.iter().map(|&k| xs[k][j]).sum::<f64>() / train.len() as f64);
    let sd: [f64; 8] = std::array::from_fn(|j| {
        (train.iter().map(|&k| (xs[k][j] - mean[j]).powi(2)).sum::<f64>() / train.len() as f64)
            .sqrt()
            .max(1e-12)
    });
    let z = |x: &[f64; 8]| -> [f64; 8] { std::array::from_fn(|j| (x[j] - mean[j]) / sd[j]) };
    let centres: Vec<[f64; 8]> = (0..3u32)
        .map(|c| {
            let members: Vec<[f64; 8]> = train.iter().filter(|&&k| labels[k] == c).map(|&k| z(&xs[k])).collect();
            std::array::from_fn(|j| members.iter().map(|m| m[j]).sum::<f64>() / members.len() as f64)
        })
        .collect();
    let predict = |x: &[f64; 8]| -> u32 {
        let v = z(x);
        let dist = |c: &[f64; 8]| (0..8).map(|j| (v[j] - c[j]).powi(2)).sum::<f64>();
        (0..3u32)
            .min_by(|&a, &b| dist(&centres[a as usize]).partial_cmp(&dist(&centres[b as usize])).unwrap())
            .unwrap()
    };
    let correct = test.iter().filter(|&&k| predict(&xs[k]) == labels[k]).count();
    let acc = correct as f64 / test.len() as f64;
    println!(
        "nearest class mean, standardised scan features: test accuracy {acc:.3} ({correct}/{})",
        test.len()
    );
    assert!(acc > 0.6, "accuracy {acc}");
}
