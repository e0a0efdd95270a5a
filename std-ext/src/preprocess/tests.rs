#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use clifhe_core::multivector::features::{scan_features, VolumeView};

fn idx(dims: [usize; 3], x: usize, y: usize, z: usize) -> usize {
    x + dims[0] * (y + dims[1] * z)
}

fn ball(n: usize, spacing: f64, radius_mm: f64, centre_mm: [f64; 3]) -> (Vec<f32>, [usize; 3], [f64; 3]) {
    let dims = [n; 3];
    let mut d = vec![0f32; n * n * n];
    for z in 0..n {
        for y in 0..n {
            for x in 0..n {
                let p = [x, y, z].map(|i| (i as f64 + 0.5) * spacing);
                let r2: f64 = (0..3).map(|a| (p[a] - centre_mm[a]).powi(2)).sum();
                d[idx(dims, x, y, z)] = if r2 <= radius_mm * radius_mm { 100.0 } else { 0.0 };
            }
        }
    }
    (d, dims, [spacing; 3])
}

fn features(p: &Pipeline, data: &[f32], dims: [usize; 3], spacing: [f64; 3]) -> [f64; 8] {
    let v = p.prepare(data, dims, spacing).unwrap();
    let view = VolumeView::new(&v.data, v.dims, v.spacing_mm).unwrap();
    scan_features(&view, &v.feature_config).unwrap().coeffs()
}

#[test]
fn scale_borrows_and_moves_the_divisor_into_the_feature_pass() {
    let data = vec![255f32; 8];
    let v = Pipeline::scale(255.0).prepare(&data, [2, 2, 2], [1.0; 3]).unwrap();
    assert!(matches!(v.data, Cow::Borrowed(_)));
    assert_eq!(v.feature_config.intensity_scale, 255.0);
    assert!(Pipeline::scale(255.0).is_device_compatible());
    assert!(!PipelinePreset::Ct.pipeline().is_device_compatible());
}

#[test]
fn separable_resampling_equals_the_trilinear_formula() {
    let dims = [5, 4, 3];
    let spacing = [2.0, 1.5, 3.0];
    let data: Vec<f32> = (0..60).map(|i| ((i * 37) % 11) as f32 - 3.0).collect();
    let (out, od) = resample::isotropic(&data, dims, spacing, 1.0, 1 << 20).unwrap();
    assert_eq!(od, [10, 6, 9]);
    let src = |x: usize, y: usize, z: usize| f64::from(data[idx(dims, x, y, z)]);
    for z in 0..od[2] {
        for y in 0..od[1] {
            for x in 0..od[0] {
                // Physical centre of the output voxel, on a grid centred like the source.
                let u: Vec<(usize, usize, f64)> = [x, y, z]
                    .iter()
                    .enumerate()
                    .map(|(a, &i)| {
                        let mid = dims[a] as f64 * spacing[a] / 2.0;
                        let p = mid - od[a] as f64 / 2.0 + i as f64 + 0.5;
                        let u = (p / spacing[a] - 0.5).clamp(0.0, (dims[a] - 1) as f64);
                        let j0 = u.floor() as usize;
                        (j0, (j0 + 1).min(dims[a] - 1), u - j0 as f64)
                    })
                    .collect();
                let mut want = 0.0;
                for (cx, wx) in [(u[0].0, 1.0 - u[0].2), (u[0].1, u[0].2)] {
                    for (cy, wy) in [(u[1].0, 1.0 - u[1].2), (u[1].1, u[1].2)] {
                        for (cz, wz) in [(u[2].0, 1.0 - u[2].2), (u[2].1, u[2].2)] {
                            want += wx * wy * wz * src(cx, cy, cz);
                        }
                    }
                }
                let got = f64::from(out[idx(od, x, y, z)]);
                assert!((got - want).abs() < 1e-4, "({x},{y},{z}): {got} vs {want}");
            }
        }
    }
}

#[test]
fn resampling_to_the_source_spacing_is_the_identity() {
    let data: Vec<f32> = (0..27).map(|i| i as f32).collect();
    let p = Pipeline {
        resample_mm: Some(2.0),
        ..Pipeline::scale(1.0)
    };
    let v = p.prepare(&data, [3, 3, 3], [2.0; 3]).unwrap();
    assert_eq!(v.dims, [3, 3, 3]);
    assert_eq!(&*v.data, &data[..]);
}

#[test]
fn one_object_at_two_resolutions_gives_close_features_after_resampling() {
    // The same 12 mm ball, off centre, in a 64 mm field of view sampled at 1 mm and at 2 mm.
    let fine = ball(64, 1.0, 12.0, [40.0, 30.0, 28.0]);
    let coarse = ball(32, 2.0, 12.0, [40.0, 30.0, 28.0]);
    let p = Pipeline {
        resample_mm: Some(1.0),
        ..Pipeline::scale(100.0)
    };
    let a = features(&p, &fine.0, fine.1, fine.2);
    let b = features(&p, &coarse.0, coarse.1, coarse.2);
    for k in 0..8 {
        assert!((a[k] - b[k]).abs() < 0.01 * (1.0 + a[k].abs()), "blade {k}: {} vs {}", a[k], b[k]);
    }
}

#[test]
fn window_and_percentiles_map_to_the_unit_interval() {
    let data = vec![-1000.0f32, -160.0, 40.0, 240.0, 3000.0, 0.0, 0.0, 0.0];
    let p = PipelinePreset::Ct.pipeline();
    let w = Pipeline {
        resample_mm: None,
        crop: Crop::None,
        ..p
    };
    let v = w.prepare(&data, [2, 2, 2], [1.0; 3]).unwrap();
    assert_eq!(&v.data[..5], &[0.0, 0.0, 0.5, 1.0, 1.0]);
    assert_eq!(v.data[5], 0.4);
    let data: Vec<f32> = (0..101).map(|i| i as f32 * 10.0).collect();
    let m = Pipeline {
        version: PIPELINE_VERSION,
        resample_mm: None,
        intensity: Intensity::Percentile { low: 10.0, high: 90.0 },
        crop: Crop::None,
    };
    let v = m.prepare(&data, [101, 1, 1], [1.0; 3]).unwrap();
    assert_eq!(v.data[10], 0.0);
    assert_eq!(v.data[50], 0.5);
    assert_eq!(v.data[90], 1.0);
    assert_eq!(v.data[100], 1.0);
    // A flat volume has no contrast: all zero, not NaN.
    let flat = vec![7.0f32; 8];
    let v = m.prepare(&flat, [2, 2, 2], [1.0; 3]).unwrap();
    assert!(v.data.iter().all(|x| *x == 0.0));
}

#[test]
fn foreground_crop_keeps_the_box_and_its_margin() {
    let dims = [10, 10, 10];
    let mut data = vec![0f32; 1000];
    data[idx(dims, 4, 5, 6)] = 1.0;
    data[idx(dims, 6, 5, 6)] = 1.0;
    let p = Pipeline {
        version: PIPELINE_VERSION,
        resample_mm: None,
        intensity: Intensity::Scale { divisor: 1.0 },
        crop: Crop::Foreground {
            threshold: 0.5,
            margin_mm: 2.0,
        },
    };
    let v = p.prepare(&data, dims, [1.0; 3]).unwrap();
    assert_eq!(v.dims, [7, 5, 5]);
    assert_eq!(v.data.iter().filter(|x| **x == 1.0).count(), 2);
    assert_eq!(v.data[idx(v.dims, 2, 2, 2)], 1.0);
    // Nothing above the threshold: the whole volume.
    let v = p.prepare(&[0.0; 1000], dims, [1.0; 3]).unwrap();
    assert_eq!(v.dims, dims);
    // With a divisor the threshold is on the divided scale.
    let scaled: Vec<f32> = data.iter().map(|x| x * 255.0).collect();
    let q = Pipeline {
        intensity: Intensity::Scale { divisor: 255.0 },
        ..p
    };
    assert_eq!(q.prepare(&scaled, dims, [1.0; 3]).unwrap().dims, [7, 5, 5]);
}

#[test]
fn invalid_pipelines_and_volumes_are_typed_errors() {
    let ok = [0f32; 8];
    let mut bad = vec![
        Pipeline {
            version: 2,
            ..Pipeline::scale(1.0)
        },
        Pipeline {
            resample_mm: Some(0.0),
            ..Pipeline::scale(1.0)
        },
        Pipeline {
            resample_mm: Some(f64::NAN),
            ..Pipeline::scale(1.0)
        },
        Pipeline::scale(0.0),
        Pipeline::scale(1e300),
    ];
    bad.push(Pipeline {
        intensity: Intensity::Window { lower: 5.0, upper: 5.0 },
        ..Pipeline::scale(1.0)
    });
    bad.push(Pipeline {
        intensity: Intensity::Percentile { low: 50.0, high: 101.0 },
        ..Pipeline::scale(1.0)
    });
    bad.push(Pipeline {
        crop: Crop::Foreground {
            threshold: -1.0,
            margin_mm: 0.0,
        },
        ..Pipeline::scale(1.0)
    });
    for p in bad {
        assert!(
            matches!(p.prepare(&ok, [2, 2, 2], [1.0; 3]), Err(PreprocessError::InvalidPipeline(_))),
            "{p:?}"
        );
    }
    let p = Pipeline::scale(1.0);
    assert!(matches!(
        p.prepare(&ok, [2, 2, 3], [1.0; 3]),
        Err(PreprocessError::InvalidVolume(_))
    ));
    assert!(matches!(
        p.prepare(&ok, [2, 2, 2], [1.0, 0.0, 1.0]),
        Err(PreprocessError::InvalidVolume(_))
    ));
    assert!(matches!(
        p.prepare(&[f32::NAN; 8], [2, 2, 2], [1.0; 3]),
        Err(PreprocessError::InvalidVolume(_))
    ));
    let tiny = Pipeline {
        resample_mm: Some(MIN_RESAMPLE_MM),
        ..Pipeline::scale(1.0)
    };
    assert!(matches!(
        tiny.prepare(&ok, [2, 2, 2], [1000.0; 3]),
        Err(PreprocessError::TooLarge { .. })
    ));
}

#[test]
fn json_is_tagged_strict_and_round_trips() {
    for preset in PipelinePreset::ALL {
        let p = preset.pipeline();
        let s = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<Pipeline>(&s).unwrap(), p);
        assert_eq!(PipelinePreset::from_name(preset.name()), Some(preset));
    }
    let ct = serde_json::to_value(PipelinePreset::Ct.pipeline()).unwrap();
    assert_eq!(ct["intensity"]["kind"], "window");
    assert_eq!(ct["crop"]["kind"], "foreground");
    assert!(serde_json::from_str::<Pipeline>(
        r#"{"version":1,"resample_mm":null,"intensity":{"kind":"scale","divisor":1},"crop":{"kind":"none"},"extra":1}"#
    )
    .is_err());
    assert!(
        serde_json::from_str::<Pipeline>(r#"{"version":1,"resample_mm":null,"intensity":{"kind":"gamma"},"crop":{"kind":"none"}}"#)
            .is_err()
    );
}
