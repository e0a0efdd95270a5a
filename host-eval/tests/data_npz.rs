//! MedMNIST loader against the real AdrenalMNIST3D file (skipped when it is absent) and
//! malformed-input robustness.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use host_eval::data::npz::{
    load_medmnist_npz, load_medmnist_sample, load_medmnist_split, parse_medmnist_npz, parse_medmnist_sample, parse_npy,
};
use host_eval::data::{load_volume, DataError};
use std::path::{Path, PathBuf};

fn dataset() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/adrenalmnist3d.npz");
    if p.exists() {
        Some(p)
    } else {
        println!("skipping: {} not found", p.display());
        None
    }
}

#[test]
fn adrenalmnist3d_has_the_documented_splits() {
    let Some(path) = dataset() else { return };
    let d = load_medmnist_npz(&path).unwrap();
    assert_eq!((d.train.len(), d.val.len(), d.test.len()), (1188, 98, 298));
    let pos = |s: &host_eval::data::npz::Split| s.labels.iter().filter(|&&l| l == 1).count();
    assert_eq!((pos(&d.train), pos(&d.val), pos(&d.test)), (259, 22, 69));
    assert_eq!(d.test.dims, [28, 28, 28]);
    assert!(d.train.images.iter().all(|&v| v == 0.0 || v == 255.0));
    let v = load_volume(format!("{}#test:5", path.display())).unwrap();
    assert_eq!(v, d.test.volume(5).unwrap());
    assert!(matches!(
        load_volume(format!("{}#test:298", path.display())),
        Err(DataError::BadSample { .. })
    ));
    assert!(matches!(
        load_volume(format!("{}#nope:1", path.display())),
        Err(DataError::BadSample { .. })
    ));
    assert!(matches!(load_volume(path.display().to_string()), Err(DataError::BadSample { .. })));
}

fn npy(descr: &str, shape: &str, body: &[u8]) -> Vec<u8> {
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(body);
    out
}

#[test]
fn npy_dtypes_and_byte_orders() {
    let p = Path::new("x.npy");
    let a = parse_npy(p, &npy("<i2", "(2, 2)", &[1, 0, 0xff, 0xff, 2, 0, 0, 0x80])).unwrap();
    assert_eq!(a.shape, vec![2, 2]);
    assert_eq!(a.data, vec![1.0, -1.0, 2.0, -32768.0]);
    let b = parse_npy(p, &npy(">f4", "(1,)", &1.5f32.to_be_bytes())).unwrap();
    assert_eq!(b.data, vec![1.5]);
    let c = parse_npy(p, &npy("|u1", "(3,)", &[7, 8, 9])).unwrap();
    assert_eq!(c.data, vec![7.0, 8.0, 9.0]);
}

#[test]
fn malformed_npy_never_panics() {
    let p = Path::new("x.npy");
    let good = npy("<f8", "(4, 2)", &[0u8; 64]);
    for len in 0..good.len() {
        let _ = parse_npy(p, &good[..len]);
        assert!(parse_npy(p, &good[..len]).is_err() || len >= good.len());
    }
    assert!(parse_npy(p, &npy("<c16", "(1,)", &[0; 16])).is_err(), "complex dtype unsupported");
    assert!(matches!(
        parse_npy(p, &npy("<f8", "(100000000000, 100000000000)", &[])),
        Err(DataError::TooLarge { .. })
    ));
    let mut flipped = good.clone();
    for i in 0..flipped.len() {
        flipped[i] ^= 0x5a;
        let _ = parse_npy(p, &flipped);
        flipped[i] ^= 0x5a;
    }
    assert!(matches!(load_volume("/nonexistent/file.npz#test:0"), Err(DataError::Io { .. })));
}

/// A tiny MedMNIST-like archive: n samples per split of shape (2, 3, 4) = (d0, d1, d2), voxel
/// value = 100 * sample + flat C-order index, labels = sample % 2 (as (n, 1) u1 or (n,) i8).
fn tiny_npz(path: &Path, n: usize, method: zip::CompressionMethod) -> Vec<u8> {
    use std::io::Write;
    let f = std::fs::File::create(path).unwrap();
    let mut z = zip::ZipWriter::new(f);
    let opts = zip::write::SimpleFileOptions::default().compression_method(method);
    for (si, split) in ["train", "val", "test"].iter().enumerate() {
        let images: Vec<u8> = (0..n).flat_map(|s| (0..24).map(move |i| (100 * s + i) as u8)).collect();
        z.start_file(format!("{split}_images.npy"), opts).unwrap();
        z.write_all(&npy("|u1", &format!("({n}, 2, 3, 4)"), &images)).unwrap();
        z.start_file(format!("{split}_labels.npy"), opts).unwrap();
        if si == 1 {
            let labels: Vec<u8> = (0..n).flat_map(|s| ((s % 2) as i64).to_le_bytes()).collect();
            z.write_all(&npy("<i8", &format!("({n},)"), &labels)).unwrap();
        } else {
            let labels: Vec<u8> = (0..n).map(|s| (s % 2) as u8).collect();
            z.write_all(&npy("|u1", &format!("({n}, 1)"), &labels)).unwrap();
        }
    }
    z.finish().unwrap();
    std::fs::read(path).unwrap()
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("clifhe-npz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn synthetic_archive_axes_labels_and_samples() {
    for method in [zip::CompressionMethod::Stored, zip::CompressionMethod::Deflated] {
        let p = tmp(&format!("tiny-{method:?}.npz"));
        tiny_npz(&p, 2, method);
        let d = load_medmnist_npz(&p).unwrap();
        // numpy (n, d0, d1, d2) in C order: x = d2 (fastest), y = d1, z = d0.
        assert_eq!(d.train.dims, [4, 3, 2]);
        assert_eq!(d.val.labels, vec![0, 1]);
        assert_eq!(d.test.labels, vec![0, 1]);
        let v = d.test.volume(1).unwrap();
        // numpy element [1, z, y, x] = 100 + 12 z + 4 y + x.
        assert_eq!(v.get(3, 2, 1), Some((100 + 12 + 8 + 3) as f32));
        assert_eq!(v.spacing_mm, [1.0; 3]);
        assert!(d.test.volume(2).is_none());
        assert_eq!(d.train.label_counts(), vec![1, 1]);
        for split in ["train", "val", "test"] {
            for i in 0..2 {
                let (s, label) = load_medmnist_sample(&p, split, i).unwrap();
                assert_eq!((s, label), d.split(split).unwrap().sample(i).unwrap());
            }
        }
        assert_eq!(load_medmnist_split(&p, "val").unwrap(), d.val);
        // The in-memory readers (what the fuzzer drives) agree with the file loaders.
        let bytes = std::fs::read(&p).unwrap();
        let m = parse_medmnist_npz(&p, &bytes).unwrap();
        assert_eq!((m.train, m.val, m.test), (d.train.clone(), d.val.clone(), d.test.clone()));
        assert_eq!(
            parse_medmnist_sample(&p, &bytes, "test", 1).unwrap(),
            load_medmnist_sample(&p, "test", 1).unwrap()
        );
    }
}

#[test]
fn truncated_and_inconsistent_archives_are_errors() {
    let p = tmp("cut-src.npz");
    let good = tiny_npz(&p, 2, zip::CompressionMethod::Deflated);
    let cut = tmp("cut.npz");
    for len in 0..good.len() {
        std::fs::write(&cut, &good[..len]).unwrap();
        assert!(load_medmnist_npz(&cut).is_err(), "truncated at {len}");
        assert!(
            load_volume(format!("{}#test:1", cut.display())).is_err(),
            "sample, truncated at {len}"
        );
    }
    for i in (0..good.len()).step_by(3) {
        let mut bad = good.clone();
        bad[i] ^= 0x55;
        std::fs::write(&cut, &bad).unwrap();
        let _ = load_medmnist_npz(&cut);
    }
    // A stored (uncompressed) archive with one voxel changed: the CRC-32 catches it.
    let stored = tmp("stored.npz");
    let mut bytes = tiny_npz(&stored, 2, zip::CompressionMethod::Stored);
    let at = bytes
        .windows(8)
        .position(|w| w == [100, 101, 102, 103, 104, 105, 106, 107])
        .unwrap();
    bytes[at + 3] ^= 1;
    std::fs::write(&stored, &bytes).unwrap();
    assert!(matches!(load_medmnist_npz(&stored), Err(DataError::Corrupt { .. })));
    assert!(matches!(load_medmnist_sample(&stored, "train", 0), Err(DataError::Corrupt { .. })));
    // A missing key, and image/label counts that disagree.
    use std::io::Write;
    let q = tmp("missing.npz");
    let mut z = zip::ZipWriter::new(std::fs::File::create(&q).unwrap());
    let opts = zip::write::SimpleFileOptions::default();
    z.start_file("train_images.npy", opts).unwrap();
    z.write_all(&npy("|u1", "(2, 1, 1, 1)", &[0, 1])).unwrap();
    z.start_file("train_labels.npy", opts).unwrap();
    z.write_all(&npy("|u1", "(3,)", &[0, 1, 1])).unwrap();
    z.finish().unwrap();
    assert!(matches!(load_medmnist_npz(&q), Err(DataError::Corrupt { .. })));
    assert!(matches!(load_medmnist_sample(&q, "val", 0), Err(DataError::MissingKey { .. })));
}

#[test]
fn npy_header_variants() {
    let p = Path::new("x.npy");
    // Version 2.0 (u32 header length), double quotes, Python 2 long suffix, no trailing comma.
    let header = "{\"descr\": \"<u2\", \"fortran_order\": False, \"shape\": (2L, 1L)}\n";
    let mut b = b"\x93NUMPY\x02\x00".to_vec();
    b.extend_from_slice(&(header.len() as u32).to_le_bytes());
    b.extend_from_slice(header.as_bytes());
    b.extend_from_slice(&[1, 0, 0, 1]);
    let a = parse_npy(p, &b).unwrap();
    assert_eq!((a.shape, a.data), (vec![2, 1], vec![1.0, 256.0]));
    // Scalars (shape ()) hold one element.
    assert_eq!(parse_npy(p, &npy("<f8", "()", &2.5f64.to_le_bytes())).unwrap().data, vec![2.5]);
    // Fortran order and unknown versions are unsupported; a header that lies about its length is corrupt.
    let mut fortran = npy("|u1", "(1,)", &[0]);
    let at = fortran.windows(5).position(|w| w == b"False").unwrap();
    fortran[at..at + 5].copy_from_slice(b"True ");
    assert!(matches!(parse_npy(p, &fortran), Err(DataError::UnsupportedFormat { .. })));
    let mut v9 = npy("|u1", "(1,)", &[0]);
    v9[6] = 9;
    assert!(matches!(parse_npy(p, &v9), Err(DataError::UnsupportedFormat { .. })));
    let mut long = npy("|u1", "(1,)", &[0]);
    long[8..10].copy_from_slice(&60000u16.to_le_bytes());
    assert!(matches!(parse_npy(p, &long), Err(DataError::Corrupt { .. })));
    // Data shorter than the shape (within the caps): corrupt, detected before allocating.
    assert!(matches!(
        parse_npy(p, &npy("<f4", "(100000000,)", &[0; 8])),
        Err(DataError::Corrupt { .. })
    ));
}

/// Deflate bombs in an archive (review issue 12): a member that keeps inflating past the array
/// its header declares is stopped by the per-array cap, and the members of one load together
/// inflate at most `Limits::max_inflated_bytes`.
#[test]
fn npz_per_array_cap_and_inflate_budget() {
    use host_eval::data::npz::{load_medmnist_npz_with, load_medmnist_sample_with, NPY_TRAILING_SLACK};
    use host_eval::data::Limits;
    use std::io::Write;
    let write = |name: &str, label_tail: usize, images: usize| {
        let p = tmp(name);
        let mut z = zip::ZipWriter::new(std::fs::File::create(&p).unwrap());
        let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for split in ["train", "val", "test"] {
            z.start_file(format!("{split}_images.npy"), opts).unwrap();
            z.write_all(&npy("|u1", &format!("(2, {images}, 1, 1)"), &vec![0u8; 2 * images]))
                .unwrap();
            z.start_file(format!("{split}_labels.npy"), opts).unwrap();
            // Two labels, then `label_tail` zero bytes the shape does not account for.
            let mut body = vec![0u8, 1];
            body.resize(2 + label_tail, 0);
            z.write_all(&npy("|u1", "(2,)", &body)).unwrap();
        }
        z.finish().unwrap();
        p
    };
    // 8 MiB of zeros behind a 2-label array: refused by the per-array cap, default limits.
    let bomb = write("label-bomb.npz", 8 << 20, 4);
    assert!(std::fs::metadata(&bomb).unwrap().len() < 128 << 10);
    assert!(matches!(
        load_medmnist_npz(&bomb),
        Err(DataError::DecompressionLimit { limit, .. }) if limit == NPY_TRAILING_SLACK
    ));
    assert!(matches!(
        load_volume(format!("{}#test:0", bomb.display())),
        Err(DataError::DecompressionLimit { .. })
    ));
    // Within the slack: accepted.
    let ok = write("label-slack.npz", 100, 4);
    assert!(load_medmnist_npz(&ok).is_ok());
    // Legitimate 1 MiB image arrays: fine by default, over a lowered total budget.
    let big = write("big.npz", 0, 1 << 19);
    assert_eq!(load_medmnist_npz(&big).unwrap().train.images.len(), 1 << 20);
    let small = Limits {
        max_inflated_bytes: 2 << 20,
        ..Limits::DEFAULT
    };
    assert!(matches!(
        load_medmnist_npz_with(&big, &small),
        Err(DataError::DecompressionLimit { limit, .. }) if limit == 2 << 20
    ));
    assert!(load_medmnist_sample_with(&big, "test", 1, &small).is_ok());
    let tiny = Limits {
        max_inflated_bytes: 256 << 10,
        ..Limits::DEFAULT
    };
    assert!(matches!(
        load_medmnist_sample_with(&big, "test", 1, &tiny),
        Err(DataError::DecompressionLimit { .. })
    ));
}
