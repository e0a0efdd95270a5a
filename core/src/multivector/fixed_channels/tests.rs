use super::axes::jacobi;
use super::*;
use crate::multivector::axes::{axis_channels, symmetric_eigen3};
use crate::multivector::channels::shell_channels;
use crate::multivector::features::{FeatureConfig, VolumeView, Voxel};
use crate::multivector::test_volumes::{lopsided, shells_phantom, turn_x, turn_z};
use crate::Multivector;
use std::vec;
use std::vec::Vec;

const SCALE: f64 = (1u64 << FRAC_BITS) as f64;

fn to_f64(c: &[i64; 8]) -> [f64; 8] {
    c.map(|v| v as f64 / SCALE)
}

/// device-examples/src/scan.rs's CT-like 32^3 phantom (same integer construction).
fn ct_phantom(with_lesion: bool) -> Vec<u8> {
    const N: usize = 32;
    fn in_ellipsoid(p: [i128; 3], semi: [i128; 3]) -> bool {
        let a = semi.map(|s| s * 64 * s * 64);
        p[0] * p[0] * a[1] * a[2] + p[1] * p[1] * a[0] * a[2] + p[2] * p[2] * a[0] * a[1] <= a[0] * a[1] * a[2]
    }
    let (organ_c, cos, sin) = ([30 * 64, -20 * 64, 10 * 64], 906i128, 423i128);
    let (lesion_c, lesion_r) = ([300 * 64, 80 * 64, 100 * 64], 350 * 64i128);
    let mut v = vec![0u8; N * N * N];
    for z in 0..N {
        for y in 0..N {
            for x in 0..N {
                let p = [x, y, z].map(|i| (2 * i as i128 - 31) * 2000);
                let mut val = 0u8;
                if in_ellipsoid(p, [920, 780, 950]) {
                    val = 38;
                    if in_ellipsoid(p, [810, 670, 840]) {
                        val = 131;
                        let d = [p[0] - organ_c[0], p[1] - organ_c[1], p[2] - organ_c[2]];
                        let r = [(cos * d[0] + sin * d[1]) / 1000, (cos * d[1] - sin * d[0]) / 1000, d[2]];
                        if in_ellipsoid(r, [550, 450, 500]) {
                            val = 143;
                            let l = [p[0] - lesion_c[0], p[1] - lesion_c[1], p[2] - lesion_c[2]];
                            if with_lesion && l[0] * l[0] + l[1] * l[1] + l[2] * l[2] <= lesion_r * lesion_r {
                                val = 198;
                            }
                        }
                    }
                }
                v[(z * N + y) * N + x] = val;
            }
        }
    }
    v
}

/// A u16 volume: an off-centre tilted blob, a bright spot and noise (anisotropic grids).
fn noisy_u16(dims: [usize; 3], seed: u64, max: u16) -> Vec<u16> {
    let mut x = seed;
    let mut out = Vec::with_capacity(dims[0] * dims[1] * dims[2]);
    for k in 0..dims[2] {
        for j in 0..dims[1] {
            for i in 0..dims[0] {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let p = [i, j, k].map(|a| a as f64);
                let c = [dims[0] as f64 * 0.6, dims[1] as f64 * 0.4, dims[2] as f64 * 0.55];
                let d = [p[0] - c[0], p[1] - c[1], p[2] - c[2]];
                let u = d[0] + 0.6 * d[1];
                let e = u * u / (dims[0] as f64 * dims[0] as f64 * 0.09)
                    + d[1] * d[1] / (dims[1] as f64 * dims[1] as f64 * 0.04)
                    + d[2] * d[2] / (dims[2] as f64 * dims[2] as f64 * 0.06);
                let spot = (p[0] - c[0] * 0.5).abs() < 2.0 && (p[1] - c[1] * 1.6).abs() < 2.0;
                let base = if e <= 1.0 { max / 2 } else { 0 } + if spot { max / 3 } else { 0 };
                out.push(base + (x >> 40) as u16 % (max / 8 + 1));
            }
        }
    }
    out
}

fn f64_shells<T: Voxel>(v: &[T], dims: [usize; 3], spacing: [f64; 3], cfg: &ShellConfig) -> Vec<[f64; 8]> {
    let view = VolumeView::new(v, dims, spacing).unwrap();
    let mut out = vec![Multivector::zero(); cfg.shells];
    shell_channels(&view, cfg, &mut out).unwrap();
    out.iter().map(Multivector::coeffs).collect()
}

fn f64_axes<T: Voxel>(v: &[T], dims: [usize; 3], spacing: [f64; 3]) -> Vec<[f64; 8]> {
    let view = VolumeView::new(v, dims, spacing).unwrap();
    let mut out = vec![Multivector::zero(); AXES];
    axis_channels(&view, &FeatureConfig { intensity_scale: 1.0 }, &mut out).unwrap();
    out.iter().map(Multivector::coeffs).collect()
}

fn fixed_shells<T: IntVoxel>(v: &[T], geom: &FixedGeometry, shells: &FixedShells) -> Vec<[f64; 8]> {
    let mut out = vec![[0i64; 8]; shells.shells()];
    shell_channels_fixed(v, geom, shells, &mut out).unwrap();
    out.iter().map(to_f64).collect()
}

fn fixed_axes<T: IntVoxel>(v: &[T], geom: &FixedGeometry) -> Vec<[f64; 8]> {
    let mut out = vec![[0i64; 8]; AXES];
    axis_channels_fixed(v, geom, &mut out).unwrap();
    out.iter().map(to_f64).collect()
}

/// The worst |difference| per blade group: scalar, vector, bivector, pseudoscalar.
fn worst(a: &[[f64; 8]], b: &[[f64; 8]], acc: &mut [f64; 4]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        for (i, (u, w)) in x.iter().zip(y).enumerate() {
            let g = [0, 1, 1, 1, 2, 2, 2, 3][i];
            acc[g] = acc[g].max((u - w).abs());
        }
    }
}

/// The eigenvalue gaps of the f64 covariance, relative to the largest eigenvalue.
fn min_relative_gap(axes: &[[f64; 8]]) -> f64 {
    let l: Vec<f64> = axes.iter().map(|a| a[1] * a[1] + a[2] * a[2] + a[3] * a[3]).collect();
    ((l[0] - l[1]).min(l[1] - l[2])) / l[0]
}

/// One test volume: (name, voxels as u16, dims, spacing, intensity scale).
type Case = (&'static str, Vec<u16>, [usize; 3], [f64; 3], u32);

fn cases() -> Vec<Case> {
    let widen = |v: Vec<u8>| v.into_iter().map(u16::from).collect::<Vec<u16>>();
    vec![
        ("channels phantom 20^3", widen(shells_phantom(20)), [20; 3], [1.0; 3], 255),
        ("lopsided 24^3", widen(lopsided(24)), [24; 3], [1.0; 3], 255),
        ("CT phantom with lesion", widen(ct_phantom(true)), [32; 3], [1.0; 3], 255),
        ("CT phantom healthy", widen(ct_phantom(false)), [32; 3], [1.0; 3], 255),
        (
            "u16 noisy 20x12x9 anisotropic",
            noisy_u16([20, 12, 9], 1, 4095),
            [20, 12, 9],
            [0.7, 1.1, 2.5],
            4095,
        ),
        (
            "u16 noisy 40x24x6 anisotropic",
            noisy_u16([40, 24, 6], 2, 65535),
            [40, 24, 6],
            [0.5, 0.5, 3.0],
            65535,
        ),
        ("u16 noisy 17^3", noisy_u16([17; 3], 3, 1000), [17; 3], [1.0; 3], 1000),
    ]
}

#[test]
fn shells_match_the_f64_channels() {
    let mut acc = [0.0f64; 4];
    for (name, v, dims, spacing, scale) in cases() {
        let geom = FixedGeometry::new(dims, spacing, scale).unwrap();
        for (shells, weighting) in [1, 4, 8]
            .into_iter()
            .flat_map(|k| [(k, ShellWeighting::Hard), (k, ShellWeighting::Tent)])
        {
            let cfg = ShellConfig::uniform(f64::from(scale), shells).unwrap().with_weighting(weighting);
            let Ok(fixed) = FixedShells::new(&cfg, scale) else {
                // tents in integers only up to 12-bit scales
                assert!(weighting == ShellWeighting::Tent && scale > MAX_TENT_SCALE, "{name}");
                continue;
            };
            let want = f64_shells(&v, dims, spacing, &cfg);
            let got = fixed_shells(&v, &geom, &fixed);
            let mut this = [0.0; 4];
            worst(&got, &want, &mut this);
            assert!(
                this.iter().all(|e| *e < 1e-9),
                "{name}, {shells} {weighting:?} shells: {this:?}\n{got:?}\n{want:?}"
            );
            worst(&got, &want, &mut acc);
        }
    }
    // Reported figure (device-examples/README.md): scalar, vector, bivector, e123.
    std::println!("shell channels (hard and tent): worst |fixed - f64| per grade {acc:?}");
}

/// Tent-weighted shells split the intensity between neighbouring shells: their masses add up
/// to the hard shells' total, they agree with the hard shells where every voxel sits at a
/// threshold's far side (0 or the scale), and a voxel between two centres moves continuously.
/// Outside the integer bounds (scale, voxel count, unequal widths) the fixed path refuses.
#[test]
fn tent_shells_partition_the_mass_and_refuse_what_integers_cannot_hold() {
    for (name, v, dims, spacing, scale) in cases().into_iter().filter(|c| c.4 <= MAX_TENT_SCALE) {
        let geom = FixedGeometry::new(dims, spacing, scale).unwrap();
        let hard = fixed_shells(&v, &geom, &FixedShells::uniform(scale, 4).unwrap());
        let tent = fixed_shells(&v, &geom, &FixedShells::uniform_tent(scale, 4).unwrap());
        let (mh, mt): (f64, f64) = (hard.iter().map(|c| c[0]).sum(), tent.iter().map(|c| c[0]).sum());
        assert!((mh - mt).abs() < 1e-9, "{name}: {mh} vs {mt}");
    }
    // binary volume: only 0 and the scale, both saturated ends
    let dims = [12, 10, 8];
    let binary: std::vec::Vec<u8> = (0..12 * 10 * 8).map(|i| if (i * 7) % 5 < 2 { 255 } else { 0 }).collect();
    let geom = FixedGeometry::new(dims, [1.0; 3], 255).unwrap();
    let hard = fixed_shells(&binary, &geom, &FixedShells::uniform(255, 4).unwrap());
    let tent = fixed_shells(&binary, &geom, &FixedShells::uniform_tent(255, 4).unwrap());
    assert_eq!(hard, tent);
    // one voxel between the centres of shells 1 and 2 (at 3/8 of the scale and 5/8):
    // intensity 1/2 splits evenly, so shells 1 and 2 hold the same mass
    let mut one = std::vec![0u8; 64];
    one[21] = 128;
    let geom = FixedGeometry::new([4; 3], [1.0; 3], 256).unwrap();
    let tent = fixed_shells(&one, &geom, &FixedShells::uniform_tent(256, 4).unwrap());
    assert_eq!(tent[1][0], tent[2][0]);
    assert!(tent[1][0] > 0.0 && tent[0][0] == 0.0 && tent[3][0] == 0.0);
    // refused: a scale above 12 bits, unequal widths, too many voxels
    assert_eq!(FixedShells::uniform_tent(MAX_TENT_SCALE + 1, 4), Err(FeatureError::BadConfig));
    let mut cfg = ShellConfig::uniform(255.0, 4).unwrap().with_weighting(ShellWeighting::Tent);
    cfg.thresholds[2] = 0.4;
    assert_eq!(FixedShells::new(&cfg, 255), Err(FeatureError::BadConfig));
    assert!(FixedShells::new(&cfg.clone().with_weighting(ShellWeighting::Hard), 255).is_ok());
    let big = [128, 64, 64 + 1];
    let geom = FixedGeometry::new(big, [1.0; 3], 255).unwrap();
    let volume = std::vec![0u8; big[0] * big[1] * big[2]];
    let mut out = [[0i64; 8]; 4];
    let tent = FixedShells::uniform_tent(255, 4).unwrap();
    assert_eq!(
        channels_fixed(&volume, &geom, Some(&tent), false, &mut out),
        Err(FeatureError::BadDimensions)
    );
    assert!(channels_fixed(&volume, &geom, Some(&FixedShells::uniform(255, 4).unwrap()), false, &mut out).is_ok());
}

#[test]
fn axes_match_the_f64_channels() {
    let mut acc = [0.0f64; 4];
    for (name, v, dims, spacing, scale) in cases() {
        let geom = FixedGeometry::new(dims, spacing, scale).unwrap();
        let want = f64_axes(&v, dims, spacing);
        let gap = min_relative_gap(&want);
        assert!(gap > 0.02, "{name}: eigenvalues too close for the comparison ({gap})");
        let got = fixed_axes(&v, &geom);
        let mut this = [0.0; 4];
        worst(&got, &want, &mut this);
        assert!(this.iter().all(|e| *e < 1e-9), "{name}: {this:?}\n{got:?}\n{want:?}");
        worst(&got, &want, &mut acc);
        // Decreasing lengths.
        let len: Vec<f64> = got.iter().map(|a| a[1] * a[1] + a[2] * a[2] + a[3] * a[3]).collect();
        assert!(len[0] >= len[1] && len[1] >= len[2], "{name}: {len:?}");
    }
    std::println!("axis channels: worst |fixed - f64| per grade {acc:?}");
}

#[test]
fn the_combined_call_is_shells_then_axes() {
    let v = ct_phantom(true);
    let geom = FixedGeometry::new([32; 3], [1.0; 3], 255).unwrap();
    let shells = FixedShells::uniform(255, 4).unwrap();
    let mut out = [[0i64; 8]; 7];
    assert_eq!(channels_fixed(&v, &geom, Some(&shells), true, &mut out), Ok(7));
    let mut s = [[0i64; 8]; 4];
    shell_channels_fixed(&v, &geom, &shells, &mut s).unwrap();
    let mut a = [[0i64; 8]; 3];
    axis_channels_fixed(&v, &geom, &mut a).unwrap();
    assert_eq!(out[..4], s);
    assert_eq!(out[4..], a);
    // Axes alone, shells alone.
    assert_eq!(channels_fixed(&v, &geom, None, true, &mut out[..3]), Ok(3));
    assert_eq!(channels_fixed(&v, &geom, Some(&shells), false, &mut out[..4]), Ok(4));
}

/// Membership of every u8/u16 value under the f64 rule of `shell_channels`.
fn f64_shell_of(value: u32, cfg: &ShellConfig) -> Option<usize> {
    let intensity = f64::from(value) * (1.0 / cfg.intensity_scale);
    let k = cfg.thresholds[..cfg.shells].iter().rposition(|&t| intensity >= t);
    k.filter(|_| intensity <= cfg.thresholds[cfg.shells])
}

#[test]
fn shell_intervals_reproduce_the_f64_rule_exactly() {
    let mut odd = ShellConfig::uniform(1000.0, 5).unwrap();
    odd.thresholds[..6].copy_from_slice(&[-0.5, 0.1, 0.1000001, 0.333, 0.5005, 1.7]);
    let mut narrow = ShellConfig::uniform(255.0, 3).unwrap();
    narrow.thresholds[..4].copy_from_slice(&[0.2, 0.2 + 1e-9, 0.6, 0.9]);
    let configs = [
        (ShellConfig::uniform(255.0, 1).unwrap(), 255u32),
        (ShellConfig::uniform(255.0, 4).unwrap(), 255),
        (ShellConfig::uniform(255.0, 8).unwrap(), 255),
        (ShellConfig::uniform(4095.0, 7).unwrap(), 4095),
        (ShellConfig::uniform(65535.0, 8).unwrap(), 65535),
        (odd, 1000),
        (narrow, 255),
    ];
    for (cfg, scale) in configs {
        let fixed = FixedShells::new(&cfg, scale).unwrap();
        for value in 0..=u32::from(u16::MAX) {
            let got = (0..fixed.shells()).find(|&k| fixed.interval(k).unwrap().contains(&value));
            assert_eq!(got, f64_shell_of(value, &cfg), "{cfg:?}: value {value}");
        }
    }
}

fn all_channels(v: &[u8], n: usize, shells: usize) -> Vec<[f64; 8]> {
    let geom = FixedGeometry::new([n; 3], [1.0; 3], 255).unwrap();
    let s = FixedShells::uniform(255, shells).unwrap();
    let mut out = vec![[0i64; 8]; shells + AXES];
    channels_fixed(v, &geom, Some(&s), true, &mut out).unwrap();
    out.iter().map(to_f64).collect()
}

#[test]
fn quarter_turns_rotate_every_fixed_channel_by_the_rotor() {
    let s = core::f64::consts::FRAC_1_SQRT_2;
    let rz = Multivector::new([s, 0.0, 0.0, 0.0, -s, 0.0, 0.0, 0.0]);
    let rx = Multivector::new([s, 0.0, 0.0, 0.0, 0.0, 0.0, -s, 0.0]);
    for (v, n) in [(lopsided(24), 24), (ct_phantom(true), 32)] {
        let before = all_channels(&v, n, 4);
        for (rotated, rotor) in [(turn_z(&v, n), rz), (turn_x(&v, n), rx), (turn_x(&turn_z(&v, n), n), rx.gp(&rz))] {
            let after = all_channels(&rotated, n, 4);
            for (b, a) in before.iter().zip(&after) {
                let want = rotor.gp(&Multivector::new(*b)).gp(&rotor.reverse()).coeffs();
                for (u, w) in a.iter().zip(want) {
                    // Shells: exact sums, permuted (one rounding of 2^-32); axes: the
                    // fixed-point Jacobi of a permuted matrix.
                    assert!((u - w).abs() < 1e-9, "{a:?} vs {want:?}");
                }
            }
            let moved = before.iter().zip(&after).any(|(b, a)| (1..4).any(|i| (b[i] - a[i]).abs() > 1e-3));
            assert!(moved, "the vectors move");
        }
    }
}

#[test]
fn empty_and_uniform_volumes() {
    let geom = FixedGeometry::new([8; 3], [1.0; 3], 255).unwrap();
    let shells = FixedShells::uniform(255, 4).unwrap();
    let mut out = [[7i64; 8]; 7];
    channels_fixed(&[0u8; 512], &geom, Some(&shells), true, &mut out).unwrap();
    assert_eq!(out, [[0; 8]; 7], "an all-zero volume has zero channels");
    // All voxels equal: one shell holds the whole mass at the centre, the others are zero;
    // the covariance is isotropic (exactly diagonal), the third moments exactly zero.
    channels_fixed(&[200u8; 512], &geom, Some(&shells), true, &mut out).unwrap();
    let got: Vec<[f64; 8]> = out.iter().map(to_f64).collect();
    let want = f64_shells(&[200u8; 512], [8; 3], [1.0; 3], &ShellConfig::uniform(255.0, 4).unwrap());
    let mut acc = [0.0; 4];
    worst(&got[..4], &want, &mut acc);
    assert!(acc.iter().all(|e| *e < 1e-9), "{got:?} vs {want:?}");
    // A cube of side 1 (normalised -1..1) has variance 1/3 - 1/(3 n^2) per axis: every
    // axis has that length, along a coordinate axis, pointing positive (zero skewness).
    let len = libm::sqrt((1.0 - 1.0 / 64.0) / 3.0);
    for (k, a) in got[4..].iter().enumerate() {
        let mut e = [0.0; 8];
        e[1 + k] = len;
        for (u, w) in a.iter().zip(e) {
            assert!((u - w).abs() < 1e-9, "axis {k}: {a:?}");
        }
    }
    // Single bright voxel: zero spread, zero axes (zero covariance), no panic.
    let mut one = [0u16; 512];
    one[100] = 4095;
    let g16 = FixedGeometry::new([8; 3], [1.0; 3], 4095).unwrap();
    let s16 = FixedShells::uniform(4095, 8).unwrap();
    let mut out = [[0i64; 8]; 11];
    channels_fixed(&one, &g16, Some(&s16), true, &mut out).unwrap();
    assert_eq!(out[7][7], 0, "a point has no spread");
    assert!(out[8..].iter().all(|a| *a == [0; 8]), "{:?}", &out[8..]);
}

#[test]
fn refuses_what_the_f64_functions_refuse() {
    let geom = FixedGeometry::new([4; 3], [1.0; 3], 255).unwrap();
    let v = [0u8; 64];
    let mut out = [[0i64; 8]; 11];
    // Bad shell configurations.
    let mut cfg = ShellConfig::uniform(255.0, 3).unwrap();
    cfg.thresholds[2] = cfg.thresholds[1];
    assert_eq!(FixedShells::new(&cfg, 255), Err(FeatureError::BadConfig));
    let mut cfg = ShellConfig::uniform(255.0, 3).unwrap();
    cfg.shells = 0;
    assert_eq!(FixedShells::new(&cfg, 255), Err(FeatureError::BadConfig));
    cfg.shells = MAX_SHELLS + 1;
    assert_eq!(FixedShells::new(&cfg, 255), Err(FeatureError::BadConfig));
    let mut cfg = ShellConfig::uniform(255.0, 3).unwrap();
    cfg.thresholds[1] = f64::NAN;
    assert_eq!(FixedShells::new(&cfg, 255), Err(FeatureError::BadConfig));
    let cfg = ShellConfig::uniform(255.0, 3).unwrap();
    assert_eq!(FixedShells::new(&cfg, 254), Err(FeatureError::BadConfig), "another scale");
    assert_eq!(FixedShells::new(&cfg, 0), Err(FeatureError::BadConfig));
    assert_eq!(FixedShells::uniform(255, 0), Err(FeatureError::BadConfig));
    assert_eq!(FixedShells::uniform(255, MAX_SHELLS + 1), Err(FeatureError::BadConfig));
    // Shells of another scale than the geometry's.
    let other = FixedShells::uniform(1000, 2).unwrap();
    assert_eq!(shell_channels_fixed(&v, &geom, &other, &mut out), Err(FeatureError::BadConfig));
    // Too short an output, no channel at all.
    let shells = FixedShells::uniform(255, 4).unwrap();
    assert_eq!(
        shell_channels_fixed(&v, &geom, &shells, &mut out[..3]),
        Err(FeatureError::BadConfig)
    );
    assert_eq!(axis_channels_fixed(&v, &geom, &mut out[..2]), Err(FeatureError::BadConfig));
    assert_eq!(
        channels_fixed(&v, &geom, Some(&shells), true, &mut out[..6]),
        Err(FeatureError::BadConfig)
    );
    assert_eq!(channels_fixed(&v, &geom, None, false, &mut out), Err(FeatureError::BadConfig));
    // Shape.
    assert_eq!(
        axis_channels_fixed(&v[..63], &geom, &mut out),
        Err(FeatureError::LengthMismatch { expected: 64, found: 63 })
    );
    let huge = FixedGeometry::new([1024, 1024, 256], [1.0; 3], 255).unwrap();
    assert_eq!(axis_channels_fixed(&v, &huge, &mut out), Err(FeatureError::BadDimensions));
}

fn to_fixed(m: [[f64; 3]; 3]) -> [[i128; 3]; 3] {
    m.map(|r| r.map(|x| libm::round(x * J_ONE as f64) as i128))
}

/// The measurement behind [`JACOBI_SWEEPS`]: the largest off-diagonal entry left after each
/// sweep count (as the rotated matrix V^T C V of the fixed-point solver's V), over random
/// covariances with well-separated and with close eigenvalues; and the eigen-pairs at the
/// chosen count against f64.
#[test]
fn jacobi_converges_in_the_fixed_sweeps() {
    let mut x = 12345u64;
    let mut rnd = || {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (x >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut residual = [0.0f64; 8];
    for trial in 0..200 {
        // Random rotation (normalised quaternion) and eigenvalues in (0, 0.5].
        let q = [rnd() - 0.5, rnd() - 0.5, rnd() - 0.5, rnd() - 0.5];
        let nq = libm::sqrt(q.iter().map(|v| v * v).sum());
        let [w, i, j, k] = q.map(|v| v / nq);
        let r = [
            [1.0 - 2.0 * (j * j + k * k), 2.0 * (i * j - k * w), 2.0 * (i * k + j * w)],
            [2.0 * (i * j + k * w), 1.0 - 2.0 * (i * i + k * k), 2.0 * (j * k - i * w)],
            [2.0 * (i * k - j * w), 2.0 * (j * k + i * w), 1.0 - 2.0 * (i * i + j * j)],
        ];
        // Separated (ratios 0.4..0.8), close (0.97..0.99) and very close (1 - 1e-4).
        let l0 = 0.05 + 0.45 * rnd();
        let l = match trial % 3 {
            0 => [l0, l0 * (0.4 + 0.4 * rnd()), l0 * (0.05 + 0.25 * rnd())],
            1 => [l0, l0 * (0.97 + 0.02 * rnd()), l0 * (0.3 + 0.3 * rnd())],
            _ => [l0, l0 * (1.0 - 1e-4 * rnd()), l0 * (0.3 + 0.3 * rnd())],
        };
        let m: [[f64; 3]; 3] = core::array::from_fn(|a| core::array::from_fn(|b| (0..3).map(|c| r[a][c] * l[c] * r[b][c]).sum()));
        let fixed = to_fixed(m);
        for sweeps in 1..residual.len() {
            let (_, v) = jacobi(fixed, sweeps);
            // V^T M V in f64 from the fixed-point V.
            let vf = v.map(|row| row.map(|x| x as f64 / J_ONE as f64));
            let rot: [[f64; 3]; 3] = core::array::from_fn(|p| {
                core::array::from_fn(|q| (0..3).map(|a| (0..3).map(|b| vf[a][p] * m[a][b] * vf[b][q]).sum::<f64>()).sum())
            });
            let off = [rot[0][1], rot[0][2], rot[1][2]].iter().map(|x| x.abs()).fold(0.0, f64::max);
            residual[sweeps] = residual[sweeps].max(off / l0);
        }
        let (values, _) = jacobi(fixed, JACOBI_SWEEPS);
        let (want, _) = symmetric_eigen3(m);
        let mut got: Vec<f64> = values.iter().map(|x| *x as f64 / J_ONE as f64).collect();
        let mut want = want.to_vec();
        got.sort_by(f64::total_cmp);
        want.sort_by(f64::total_cmp);
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-14, "trial {trial}: {got:?} vs {want:?}");
        }
    }
    std::println!("Jacobi: worst relative off-diagonal after 1..7 sweeps {:?}", &residual[1..]);
    assert!(residual[JACOBI_SWEEPS] < 1e-15, "{residual:?}");
    assert!(
        residual[JACOBI_SWEEPS - 2] < 1e-15,
        "{residual:?}: the count leaves two sweeps of margin"
    );
}
