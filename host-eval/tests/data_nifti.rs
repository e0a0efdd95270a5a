//! NIfTI-1 reader: files built in the test (both byte orders, gzip, every datatype, scaling),
//! and malformed input that must be an error, never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use host_eval::data::nifti::parse_nifti;
use host_eval::data::{load_volume, DataError};
use std::io::Write;
use std::path::PathBuf;

/// A minimal single-file NIfTI-1 image with values v[i] = i (as the datatype) .
fn nifti(big: bool, datatype: i16, dims: [i16; 3], spacing: [f32; 3], slope: f32, inter: f32) -> Vec<u8> {
    let mut h = vec![0u8; 352];
    let put16 = |h: &mut Vec<u8>, at: usize, v: i16| {
        let b = if big { v.to_be_bytes() } else { v.to_le_bytes() };
        h[at..at + 2].copy_from_slice(&b);
    };
    let put32 = |h: &mut Vec<u8>, at: usize, v: i32| {
        let b = if big { v.to_be_bytes() } else { v.to_le_bytes() };
        h[at..at + 4].copy_from_slice(&b);
    };
    let putf = |h: &mut Vec<u8>, at: usize, v: f32| {
        let b = if big { v.to_be_bytes() } else { v.to_le_bytes() };
        h[at..at + 4].copy_from_slice(&b);
    };
    put32(&mut h, 0, 348);
    put16(&mut h, 40, 3);
    for (i, d) in dims.iter().enumerate() {
        put16(&mut h, 42 + 2 * i, *d);
    }
    put16(&mut h, 70, datatype);
    for (i, s) in spacing.iter().enumerate() {
        putf(&mut h, 80 + 4 * i, *s);
    }
    putf(&mut h, 108, 352.0);
    putf(&mut h, 112, slope);
    putf(&mut h, 116, inter);
    h[344..348].copy_from_slice(b"n+1\0");
    let n = dims.iter().map(|&d| d as usize).product::<usize>();
    for i in 0..n {
        let v = (i % 100) as i64;
        let mut b: Vec<u8> = match datatype {
            2 => vec![v as u8],
            256 => vec![(v as i8).to_le_bytes()[0]],
            4 => (v as i16).to_le_bytes().to_vec(),
            512 => (v as u16).to_le_bytes().to_vec(),
            8 => (v as i32).to_le_bytes().to_vec(),
            16 => (v as f32).to_le_bytes().to_vec(),
            64 => (v as f64).to_le_bytes().to_vec(),
            _ => vec![0],
        };
        if big {
            b.reverse();
        }
        h.extend_from_slice(&b);
    }
    h
}

fn write(name: &str, bytes: &[u8], gz: bool) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("clifhe-nifti-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(if gz { format!("{name}.nii.gz") } else { format!("{name}.nii") });
    if gz {
        let mut e = flate2::write::GzEncoder::new(std::fs::File::create(&p).unwrap(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap();
    } else {
        std::fs::write(&p, bytes).unwrap();
    }
    p
}

#[test]
fn every_datatype_byte_order_and_compression() {
    for big in [false, true] {
        for gz in [false, true] {
            for dt in [2i16, 256, 4, 512, 8, 16, 64] {
                let bytes = nifti(big, dt, [4, 3, 2], [0.5, 1.0, 2.5], 0.0, 0.0);
                let p = write(&format!("v{dt}{big}{gz}"), &bytes, gz);
                let v = load_volume(p.to_str().unwrap()).unwrap();
                assert_eq!(v.dims, [4, 3, 2]);
                assert_eq!(v.spacing_mm, [0.5, 1.0, 2.5]);
                assert_eq!(v.data, (0..24).map(|i| i as f32).collect::<Vec<_>>(), "dt {dt} big {big} gz {gz}");
                // The in-memory reader (what the fuzzer drives) agrees with the file loader.
                assert_eq!(parse_nifti(&p, &std::fs::read(&p).unwrap()).unwrap(), v);
            }
        }
    }
    // Scaling is applied when the slope is nonzero.
    let p = write("scaled", &nifti(false, 4, [2, 2, 1], [1.0; 3], 2.0, -1.0), false);
    assert_eq!(load_volume(p.to_str().unwrap()).unwrap().data, vec![-1.0, 1.0, 3.0, 5.0]);
}

#[test]
fn malformed_files_are_errors() {
    let good = nifti(false, 16, [3, 3, 3], [1.0; 3], 0.0, 0.0);
    for len in 0..good.len() {
        let p = write("cut", &good[..len], false);
        assert!(load_volume(p.to_str().unwrap()).is_err(), "truncated at {len}");
        let p = write("cutgz", &good[..len], true);
        assert!(load_volume(p.to_str().unwrap()).is_err(), "gz truncated at {len}");
    }
    for i in 0..good.len() {
        for mask in [0x01u8, 0x80, 0xa5, 0xff] {
            let mut bad = good.clone();
            bad[i] ^= mask;
            let p = write("flip", &bad, false);
            let _ = load_volume(p.to_str().unwrap());
        }
    }
    // Huge declared dimensions below the caps (600^3 f32: 2.2e8 voxels, 864 MB) but far beyond
    // the file: refused by the size check.
    let mut big = nifti(false, 16, [1, 1, 1], [1.0; 3], 0.0, 0.0);
    for i in 0..3 {
        big[42 + 2 * i..44 + 2 * i].copy_from_slice(&600i16.to_le_bytes());
    }
    let p = write("bigdims", &big, false);
    assert!(matches!(load_volume(p.to_str().unwrap()), Err(DataError::Corrupt { .. })));
    let p = write("bigdimsgz", &big, true);
    assert!(matches!(load_volume(p.to_str().unwrap()), Err(DataError::Corrupt { .. })));
    // A huge vox_offset in a small file.
    let mut far = good.clone();
    far[108..112].copy_from_slice(&9.0e8f32.to_le_bytes());
    let p = write("faroffset", &far, true);
    assert!(matches!(load_volume(p.to_str().unwrap()), Err(DataError::Corrupt { .. })));
    // Wrong magic (two-file ni1) and 5D images are unsupported.
    let mut ni1 = good.clone();
    ni1[344..348].copy_from_slice(b"ni1\0");
    let p = write("ni1", &ni1, false);
    assert!(matches!(load_volume(p.to_str().unwrap()), Err(DataError::UnsupportedFormat { .. })));
    // Huge declared dimensions: refused before allocating.
    let mut huge = nifti(false, 64, [1, 1, 1], [1.0; 3], 0.0, 0.0);
    for i in 0..3 {
        huge[42 + 2 * i..44 + 2 * i].copy_from_slice(&30000i16.to_le_bytes());
    }
    let p = write("huge", &huge, false);
    assert!(matches!(load_volume(p.to_str().unwrap()), Err(DataError::TooLarge { .. })));
    // Unsupported datatype (complex64 = 32).
    let p = write("complex", &nifti(false, 32, [1, 1, 1], [1.0; 3], 0.0, 0.0), false);
    assert!(matches!(load_volume(p.to_str().unwrap()), Err(DataError::UnsupportedFormat { .. })));
}

#[test]
fn four_d_with_one_volume_gzip_without_suffix_and_bad_spacing() {
    let mut b = nifti(true, 4, [2, 2, 2], [-1.0, f32::NAN, 3.0], 0.0, 0.0);
    b[40..42].copy_from_slice(&4i16.to_be_bytes());
    b[48..50].copy_from_slice(&1i16.to_be_bytes());
    // gzip content under a plain .nii name is recognised by its magic bytes.
    let dir = std::env::temp_dir().join(format!("clifhe-nifti-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("sniff.nii");
    let mut e = flate2::write::GzEncoder::new(std::fs::File::create(&p).unwrap(), flate2::Compression::fast());
    e.write_all(&b).unwrap();
    e.finish().unwrap();
    let v = load_volume(p.to_str().unwrap()).unwrap();
    assert_eq!(v.dims, [2, 2, 2]);
    // Non-positive / non-finite spacings become 1 mm.
    assert_eq!(v.spacing_mm, [1.0, 1.0, 3.0]);
    assert_eq!(v.data, (0..8).map(|i| i as f32).collect::<Vec<_>>());
    b[48..50].copy_from_slice(&2i16.to_be_bytes());
    let p = write("fourd", &b, false);
    assert!(matches!(load_volume(p.to_str().unwrap()), Err(DataError::UnsupportedFormat { .. })));
}

/// The Colin27 template from the Debian package `mricron-data`, when installed.
#[test]
fn mricron_ch2_template() {
    let candidates = [
        "/usr/share/mricron/templates/ch2.nii.gz",
        "/usr/share/mricron/ch2.nii.gz",
        "/usr/share/data/mricron/templates/ch2.nii.gz",
    ];
    let Some(p) = candidates.iter().find(|p| std::path::Path::new(p).exists()) else {
        println!("skipping: ch2.nii.gz not found (apt-get install mricron-data)");
        return;
    };
    let v = load_volume(p).unwrap();
    assert_eq!(v.dims, [181, 217, 181]);
    assert_eq!(v.data.len(), 181 * 217 * 181);
    assert!(v.spacing_mm.iter().all(|&s| (s - 1.0).abs() < 1e-3), "{:?}", v.spacing_mm);
    assert!(v.data.iter().all(|x| x.is_finite()));
    assert!(v.data.iter().any(|&x| x > 0.0));
}
