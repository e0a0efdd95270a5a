use super::*;
use crate::multivector::depth::{depth_channel, depth_scratch_len};
use crate::multivector::features::{FeatureConfig, VolumeView, Voxel};
use crate::multivector::test_volumes::{lopsided, shells_phantom};
use crate::Multivector;
use std::vec;
use std::vec::Vec;

fn both<T: IntVoxel + Voxel>(data: &[T], dims: [usize; 3], scale: u32) -> ([f64; 8], [f64; 8]) {
    let (voxels, line_len) = depth_scratch_len(dims).unwrap();
    let (mut depths, mut line) = (vec![0u8; voxels], vec![0u16; line_len]);
    let view = VolumeView::new(data, dims, [0.8; 3]).unwrap();
    let mut want = Multivector::zero();
    let cfg = FeatureConfig {
        intensity_scale: f64::from(scale),
    };
    depth_channel(&view, &cfg, &mut depths, &mut line, &mut want).unwrap();
    let geom = FixedGeometry::new(dims, [0.8; 3], scale).unwrap();
    let mut got = [0i64; 8];
    let f64_depths = depths.clone();
    depth_channel_fixed(data, &geom, &FixedDepth::new(scale).unwrap(), &mut depths, &mut line, &mut got).unwrap();
    assert_eq!(depths, f64_depths, "both read the same squared depths");
    (got.map(|v| v as f64 / (1u64 << FRAC_BITS) as f64), want.coeffs())
}

#[test]
fn fixed_point_agrees_with_the_f64_channel() {
    let mut worst = 0f64;
    let mut cases: Vec<([f64; 8], [f64; 8])> = vec![
        both(&lopsided(24), [24; 3], 255),
        both(&shells_phantom(20), [20; 3], 255),
        both(&shells_phantom(20), [20; 3], 100),
    ];
    // A u16 volume on a box that is not a cube: an off-centre ellipsoid above the threshold.
    let dims = [30, 22, 17];
    let u16_volume: Vec<u16> = (0..dims[0] * dims[1] * dims[2])
        .map(|i| {
            let p = [i % 30, (i / 30) % 22, i / 660].map(|c| c as f64);
            let e = (p[0] - 17.0).powi(2) / 64.0 + (p[1] - 9.0).powi(2) / 36.0 + (p[2] - 8.0).powi(2) / 20.0;
            if e <= 1.0 {
                3000 + (i % 7) as u16 * 100
            } else {
                (i % 13) as u16 * 100
            }
        })
        .collect();
    cases.push(both(&u16_volume, dims, 4000));
    for (got, want) in cases.drain(..) {
        assert!(want[0] > 0.0 && want[1..4].iter().any(|v| v.abs() > 1e-4), "{want:?}");
        for (g, w) in got.iter().zip(want) {
            worst = worst.max((g - w).abs());
        }
    }
    assert!(worst < 1e-9, "worst blade error {worst:e}");
}

#[test]
fn the_threshold_is_the_f64_rule() {
    assert_eq!(FixedDepth::new(255).unwrap().threshold(), 128);
    assert_eq!(FixedDepth::new(1).unwrap().threshold(), 1);
    assert_eq!(FixedDepth::new(2).unwrap().threshold(), 1);
    assert_eq!(FixedDepth::new(65535).unwrap().threshold(), 32768);
    assert_eq!(FixedDepth::new(0), Err(FeatureError::BadConfig));
}

#[test]
fn refuses_what_the_f64_channel_refuses_and_zeroes_an_empty_object() {
    let dims = [6, 5, 4];
    let v = vec![200u8; 120];
    let (mut depths, mut line) = (vec![0u8; 120], vec![0u16; 6 + 16]);
    let mut out = [1i64; 8];
    let depth = FixedDepth::new(255).unwrap();
    let aniso = FixedGeometry::new(dims, [1.0, 1.0, 1.5], 255).unwrap();
    assert_eq!(
        depth_channel_fixed(&v, &aniso, &depth, &mut depths, &mut line, &mut out),
        Err(FeatureError::AnisotropicSpacing)
    );
    let geom = FixedGeometry::new(dims, [1.0; 3], 255).unwrap();
    assert_eq!(
        depth_channel_fixed(&v[..119], &geom, &depth, &mut depths, &mut line, &mut out),
        Err(FeatureError::LengthMismatch { expected: 120, found: 119 })
    );
    let other = FixedDepth::new(100).unwrap();
    assert_eq!(
        depth_channel_fixed(&v, &geom, &other, &mut depths, &mut line, &mut out),
        Err(FeatureError::BadConfig)
    );
    assert_eq!(
        depth_channel_fixed(&v, &geom, &depth, &mut depths, &mut line[..5], &mut out),
        Err(FeatureError::LengthMismatch { expected: 22, found: 5 })
    );
    depth_channel_fixed(&[100u8; 120], &geom, &depth, &mut depths, &mut line, &mut out).unwrap();
    assert_eq!(out, [0; 8]);
}
