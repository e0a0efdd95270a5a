use super::super::test_volumes::{lopsided, turn_x, turn_z};
use super::*;
use std::vec;
use std::vec::Vec;

/// `min(d^2, MAX_DEPTH^2)` by brute force over every outside voxel and the volume's border.
fn brute_force(mask: &[bool], dims: [usize; 3]) -> Vec<u8> {
    let [nx, ny, _] = dims;
    let at = |i: usize| [i % nx, (i / nx) % ny, i / (nx * ny)];
    let outside: Vec<[usize; 3]> = (0..mask.len()).filter(|&i| !mask[i]).map(at).collect();
    (0..mask.len())
        .map(|i| {
            if !mask[i] {
                return 0;
            }
            let p = at(i);
            // The nearest point beyond the border: straight out along one axis.
            let mut best = (0..3).map(|a| (p[a] + 1).min(dims[a] - p[a]).pow(2)).min().unwrap();
            for q in &outside {
                best = best.min((0..3).map(|a| p[a].abs_diff(q[a]).pow(2)).sum());
            }
            best.min(usize::from(MAX_DEPTH_SQUARED)) as u8
        })
        .collect()
}

fn depths_of(mask: &[bool], dims: [usize; 3]) -> Vec<u8> {
    let (voxels, line_len) = depth_scratch_len(dims).unwrap();
    let (mut depths, mut line) = (vec![0u8; voxels], vec![0u16; line_len]);
    squared_depths(dims, |i| u32::from(mask[i]), &mut depths, &mut line).unwrap();
    depths
}

#[test]
fn squared_depths_are_exact_and_clamped() {
    // Random masks of several densities and shapes, a solid block deeper than the clamp, and
    // an object touching the border.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut clamped = 0;
    for (dims, density) in [
        ([9, 7, 5], 50),
        ([6, 11, 8], 80),
        ([12, 12, 12], 95),
        ([1, 5, 30], 90),
        ([40, 3, 4], 97),
    ] {
        let n = dims[0] * dims[1] * dims[2];
        let mask: Vec<bool> = (0..n).map(|_| next() % 100 < density).collect();
        assert_eq!(depths_of(&mask, dims), brute_force(&mask, dims), "{dims:?} at {density}%");
    }
    let dims = [26, 22, 24];
    let at = |i: usize| [i % 26, (i / 26) % 22, i / (26 * 22)];
    let mask: Vec<bool> = (0..26 * 22 * 24).map(|i| at(i).iter().all(|&c| c >= 1)).collect();
    let got = depths_of(&mask, dims);
    assert_eq!(got, brute_force(&mask, dims));
    clamped += got.iter().filter(|&&d| d == MAX_DEPTH_SQUARED).count();
    assert!(clamped > 100, "the block should reach the clamp: {clamped}");
}

fn channel(v: &[u8], n: usize) -> Multivector {
    let view = VolumeView::new(v, [n; 3], [1.0; 3]).unwrap();
    let (voxels, line_len) = depth_scratch_len([n; 3]).unwrap();
    let (mut depths, mut line) = (vec![0u8; voxels], vec![0u16; line_len]);
    let mut out = Multivector::zero();
    depth_channel(&view, &FeatureConfig { intensity_scale: 255.0 }, &mut depths, &mut line, &mut out).unwrap();
    out
}

#[test]
fn quarter_turns_rotate_the_channel_by_the_rotor() {
    let n = 24;
    let v = lopsided(n);
    let before = channel(&v, n);
    let s = core::f64::consts::FRAC_1_SQRT_2;
    // turn_z: the rotor cos(pi/4) - sin(pi/4) e12; turn_x: cos(pi/4) - sin(pi/4) e23.
    for (turned, r) in [
        (turn_z(&v, n), Multivector::new([s, 0.0, 0.0, 0.0, -s, 0.0, 0.0, 0.0])),
        (turn_x(&v, n), Multivector::new([s, 0.0, 0.0, 0.0, 0.0, 0.0, -s, 0.0])),
    ] {
        let after = channel(&turned, n);
        let want = r.gp(&before).gp(&r.reverse()).coeffs();
        for (u, w) in after.coeffs().iter().zip(want) {
            assert!((u - w).abs() < 1e-12, "{:?} vs {want:?}", after.coeffs());
        }
    }
    // The parts are really there: a depth of a few voxels, an off-centre deep region.
    let c = before.coeffs();
    assert!(c[0] > 1.0 / n as f64 && c[0] < 1.0, "{c:?}");
    assert!(c[1..4].iter().any(|x| x.abs() > 1e-3), "{c:?}");
    assert!(c[4..].iter().all(|&x| x == 0.0), "{c:?}");
}

#[test]
fn a_solid_ball_has_the_rms_depth_of_its_voxels() {
    // Every voxel within radius 6 of the centre of a 20^3 grid: the channel's scalar is the rms
    // of the brute-force depths times the normalised step, the centroid offset is zero by
    // symmetry.
    let n = 20;
    let h = n as f64 / 2.0;
    let mask: Vec<bool> = (0..n * n * n)
        .map(|i| {
            let p = [i % n, (i / n) % n, i / (n * n)].map(|c| c as f64 + 0.5 - h);
            p.iter().map(|x| x * x).sum::<f64>() <= 36.0
        })
        .collect();
    let v: Vec<u8> = mask.iter().map(|&m| if m { 255 } else { 0 }).collect();
    let want_sq = brute_force(&mask, [n; 3]);
    let count = mask.iter().filter(|&&m| m).count() as f64;
    let rms = (want_sq.iter().map(|&d| f64::from(d)).sum::<f64>() / count).sqrt() * 2.0 / n as f64;
    let c = channel(&v, n).coeffs();
    assert!((c[0] - rms).abs() < 1e-15, "{} vs {rms}", c[0]);
    assert!(c[1..].iter().all(|x| x.abs() < 1e-12), "{c:?}");
}

#[test]
fn refuses_what_it_cannot_measure() {
    let v = [255u8; 24];
    let cfg = FeatureConfig { intensity_scale: 255.0 };
    let (mut depths, mut line) = (vec![0u8; 24], vec![0u16; 4 + 2 * MAX_DEPTH]);
    let mut out = Multivector::zero();
    let aniso = VolumeView::new(&v[..], [2, 3, 4], [1.0, 1.0, 2.0]).unwrap();
    assert_eq!(
        depth_channel(&aniso, &cfg, &mut depths, &mut line, &mut out),
        Err(FeatureError::AnisotropicSpacing)
    );
    let view = VolumeView::new(&v[..], [2, 3, 4], [0.5; 3]).unwrap();
    assert_eq!(
        depth_channel(&view, &cfg, &mut depths[..23], &mut line, &mut out),
        Err(FeatureError::LengthMismatch { expected: 24, found: 23 })
    );
    assert_eq!(
        depth_channel(&view, &cfg, &mut depths, &mut line[..3], &mut out),
        Err(FeatureError::LengthMismatch {
            expected: 4 + 2 * MAX_DEPTH,
            found: 3
        })
    );
    let nan = [f32::NAN; 24];
    let view_nan = VolumeView::new(&nan[..], [2, 3, 4], [0.5; 3]).unwrap();
    assert_eq!(
        depth_channel(&view_nan, &cfg, &mut depths, &mut line, &mut out),
        Err(FeatureError::NonFiniteVoxel { index: 0 })
    );
    // A full 2x3x4 block: every voxel lies on the border, depth 1: rms = one step = 2 / 4.
    depth_channel(&view, &cfg, &mut depths, &mut line, &mut out).unwrap();
    assert_eq!(out.coeffs()[0], 0.5);
    // An empty object: the zero channel.
    let zero = [0u8; 24];
    let view0 = VolumeView::new(&zero[..], [2, 3, 4], [0.5; 3]).unwrap();
    depth_channel(&view0, &cfg, &mut depths, &mut line, &mut out).unwrap();
    assert_eq!(out, Multivector::zero());
}
