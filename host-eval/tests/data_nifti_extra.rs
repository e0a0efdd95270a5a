//! NIfTI-1 beyond the single-file basics: `.hdr`/`.img` pairs, spatial units, extensions before
//! vox_offset, the "unset" vox_offset of 0, 2D images, NIfTI-2 refusal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use host_eval::data::{load_volume, DataError};
use std::io::Write;
use std::path::PathBuf;

/// Little-endian header with float32 voxels v[i] = i.
fn header(dims: &[i16], magic: &[u8; 4], vox_offset: f32, units: u8) -> Vec<u8> {
    let mut h = vec![0u8; 348];
    h[0..4].copy_from_slice(&348i32.to_le_bytes());
    h[40..42].copy_from_slice(&(dims.len() as i16).to_le_bytes());
    for (i, d) in dims.iter().enumerate() {
        h[42 + 2 * i..44 + 2 * i].copy_from_slice(&d.to_le_bytes());
    }
    h[70..72].copy_from_slice(&16i16.to_le_bytes());
    h[72..74].copy_from_slice(&32i16.to_le_bytes());
    for (i, s) in [0.5f32, 0.25, 2.0].iter().enumerate() {
        h[80 + 4 * i..84 + 4 * i].copy_from_slice(&s.to_le_bytes());
    }
    h[108..112].copy_from_slice(&vox_offset.to_le_bytes());
    h[123] = units;
    h[344..348].copy_from_slice(magic);
    h
}

fn voxels(n: usize) -> Vec<u8> {
    (0..n).flat_map(|i| (i as f32).to_le_bytes()).collect()
}

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("clifhe-nifti-extra-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn header_image_pairs_plain_and_gzipped() {
    let d = dir();
    let h = header(&[2, 2, 2], b"ni1\0", 0.0, 2);
    std::fs::write(d.join("pair.hdr"), &h).unwrap();
    std::fs::write(d.join("pair.img"), voxels(8)).unwrap();
    for name in ["pair.hdr", "pair.img"] {
        let v = load_volume(d.join(name)).unwrap();
        assert_eq!(v.dims, [2, 2, 2]);
        assert_eq!(v.spacing_mm, [0.5, 0.25, 2.0]);
        assert_eq!(v.data, (0..8).map(|i| i as f32).collect::<Vec<_>>());
    }
    // Gzipped image beside a plain header.
    std::fs::write(d.join("gzpair.hdr"), &h).unwrap();
    let mut e = flate2::write::GzEncoder::new(std::fs::File::create(d.join("gzpair.img.gz")).unwrap(), flate2::Compression::fast());
    e.write_all(&voxels(8)).unwrap();
    e.finish().unwrap();
    assert_eq!(load_volume(d.join("gzpair.hdr")).unwrap().data.len(), 8);
    // A short image and a missing image are errors.
    std::fs::write(d.join("short.hdr"), &h).unwrap();
    std::fs::write(d.join("short.img"), &voxels(8)[..31]).unwrap();
    assert!(matches!(load_volume(d.join("short.hdr")), Err(DataError::Corrupt { .. })));
    std::fs::write(d.join("alone.hdr"), &h).unwrap();
    assert!(matches!(load_volume(d.join("alone.hdr")), Err(DataError::Io { .. })));
}

#[test]
fn units_extensions_and_offsets() {
    let d = dir();
    // Spacing in metres (xyzt_units 1) is converted to mm; an extension block before vox_offset
    // is skipped.
    let mut b = header(&[2, 1, 1], b"n+1\0", 400.0, 1);
    b.extend_from_slice(&[1, 0, 0, 0]);
    b.resize(400, 0xAB);
    b.extend_from_slice(&voxels(2));
    std::fs::write(d.join("metres.nii"), &b).unwrap();
    let v = load_volume(d.join("metres.nii")).unwrap();
    assert_eq!(v.spacing_mm, [500.0, 250.0, 2000.0]);
    assert_eq!(v.data, vec![0.0, 1.0]);
    // vox_offset 0 in a single file means 352; a 2D image is a volume with z = 1.
    let mut b = header(&[3, 2], b"n+1\0", 0.0, 2);
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&voxels(6));
    std::fs::write(d.join("flat.nii"), &b).unwrap();
    let v = load_volume(d.join("flat.nii")).unwrap();
    assert_eq!(v.dims, [3, 2, 1]);
    assert_eq!(v.data[5], 5.0);
    // vox_offset inside the header is corrupt.
    let mut b = header(&[1, 1, 1], b"n+1\0", 200.0, 2);
    b.extend_from_slice(&[0; 8]);
    std::fs::write(d.join("inside.nii"), &b).unwrap();
    assert!(matches!(load_volume(d.join("inside.nii")), Err(DataError::Corrupt { .. })));
    // NIfTI-2 and ANALYZE are refused as unsupported.
    let mut n2 = vec![0u8; 560];
    n2[0..4].copy_from_slice(&540i32.to_le_bytes());
    std::fs::write(d.join("two.nii"), &n2).unwrap();
    assert!(matches!(load_volume(d.join("two.nii")), Err(DataError::UnsupportedFormat { .. })));
    let mut analyze = header(&[1, 1, 1], b"\0\0\0\0", 352.0, 2);
    analyze.extend_from_slice(&[0; 8]);
    std::fs::write(d.join("analyze.nii"), &analyze).unwrap();
    assert!(matches!(
        load_volume(d.join("analyze.nii")),
        Err(DataError::UnsupportedFormat { .. })
    ));
}

#[test]
fn gzip_bomb_is_cut_at_the_declared_size() {
    // 64 MiB of zeros compress to a few tens of kB; the header declares 8 voxels, so only 32
    // bytes are ever buffered and the load succeeds.
    let d = dir();
    let mut e = flate2::write::GzEncoder::new(std::fs::File::create(d.join("bomb.nii.gz")).unwrap(), flate2::Compression::fast());
    let mut h = header(&[2, 2, 2], b"n+1\0", 352.0, 2);
    h.extend_from_slice(&[0; 4]);
    e.write_all(&h).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        e.write_all(&zeros).unwrap();
    }
    e.finish().unwrap();
    let v = load_volume(d.join("bomb.nii.gz")).unwrap();
    assert_eq!(v.data, vec![0.0; 8]);
}

#[test]
fn gzip_crc_catches_changed_voxels() {
    // Stored (level 0) deflate blocks: a changed byte still inflates, only the CRC-32 tells.
    let d = dir();
    let mut h = header(&[4, 4, 4], b"n+1\0", 352.0, 2);
    h.extend_from_slice(&[0; 4]);
    h.extend_from_slice(&voxels(64));
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none());
    e.write_all(&h).unwrap();
    let mut gz = e.finish().unwrap();
    std::fs::write(d.join("crc-ok.nii.gz"), &gz).unwrap();
    assert!(load_volume(d.join("crc-ok.nii.gz")).is_ok());
    let at = gz.windows(4).position(|w| w == 40.0f32.to_le_bytes()).unwrap();
    gz[at] ^= 1;
    std::fs::write(d.join("crc-bad.nii.gz"), &gz).unwrap();
    assert!(matches!(load_volume(d.join("crc-bad.nii.gz")), Err(DataError::Corrupt { .. })));
}

/// Decompressed-size budgets (review issue 12): a gzipped file may inflate only
/// `Limits::max_inflated_bytes` in all, checked while inflating, and the volume may have only
/// `Limits::max_voxels` voxels. The caps are lowered here so the bombs stay small.
#[test]
fn gzip_inflate_budget_and_voxel_cap() {
    use host_eval::data::nifti::load_nifti_with;
    use host_eval::data::{load_volume_with, Limits};
    let d = dir();
    let gz = |name: &str, parts: &[&[u8]]| {
        let p = d.join(name);
        let mut e = flate2::write::GzEncoder::new(std::fs::File::create(&p).unwrap(), flate2::Compression::fast());
        for part in parts {
            e.write_all(part).unwrap();
        }
        e.finish().unwrap();
        p
    };
    // 64^3 float32 voxels: 1 MiB of data after the header.
    let mut h = header(&[64, 64, 64], b"n+1\0", 352.0, 2);
    h.extend_from_slice(&[0; 4]);
    let data = vec![0u8; 1 << 20];
    let p = gz("budget.nii.gz", &[&h, &data]);
    assert_eq!(load_volume(&p).unwrap().data.len(), 1 << 18);
    let small = Limits {
        max_inflated_bytes: 512 << 10,
        ..Limits::DEFAULT
    };
    assert!(matches!(
        load_nifti_with(&p, &small),
        Err(DataError::DecompressionLimit { limit, .. }) if limit == 512 << 10
    ));
    assert!(matches!(load_volume_with(&p, &small), Err(DataError::DecompressionLimit { .. })));
    let few_voxels = Limits {
        max_voxels: 1000,
        ..Limits::DEFAULT
    };
    assert!(matches!(load_nifti_with(&p, &few_voxels), Err(DataError::TooLarge { .. })));
    // A huge vox_offset over a stream of zeros: skipping the "extension" inflates too, and the
    // budget stops it (before, it would inflate up to 1e12 bytes looking for the data).
    let far = header(&[2, 2, 2], b"n+1\0", 1.0e11, 2);
    let zeros = vec![0u8; 4 << 20];
    let p = gz("far.nii.gz", &[&far, &zeros]);
    let tiny = Limits {
        max_inflated_bytes: 1 << 20,
        ..Limits::DEFAULT
    };
    assert!(matches!(load_nifti_with(&p, &tiny), Err(DataError::DecompressionLimit { .. })));
    // The default caps are far below the old 4 GiB ones (checked at compile time).
    const {
        assert!(Limits::DEFAULT.max_inflated_bytes <= 512 << 20);
        assert!(Limits::DEFAULT.max_voxels * 4 <= 1 << 30);
    }
}
