//! MedMNIST loader against the real AdrenalMNIST3D file (skipped when it is absent) and
//! malformed-input robustness.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use host_eval::data::npz::{load_medmnist_npz, parse_npy};
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
    assert!(matches!(load_volume(format!("{}#test:298", path.display())), Err(DataError::BadSample { .. })));
    assert!(matches!(load_volume(format!("{}#nope:1", path.display())), Err(DataError::BadSample { .. })));
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
    assert!(matches!(parse_npy(p, &npy("<f8", "(100000000000, 100000000000)", &[])), Err(DataError::TooLarge { .. })));
    let mut flipped = good.clone();
    for i in 0..flipped.len() {
        flipped[i] ^= 0x5a;
        let _ = parse_npy(p, &flipped);
        flipped[i] ^= 0x5a;
    }
    assert!(matches!(load_volume("/nonexistent/file.npz#test:0"), Err(DataError::Io { .. })));
}
