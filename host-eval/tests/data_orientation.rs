//! Orientation and encodings of the scan readers, on files built by the test:
//! - NIfTI: the same anatomy stored with permuted and flipped axes (described by its sform, or
//!   by its qform) loads to the same RAS+ array as the file stored in RAS order;
//! - DICOM: LPS patient coordinates become RAS+ (axial: x and y flip; coronal: axes permute);
//! - DICOM encodings: explicit VR big endian and RLE lossless (PS3.5 Annex G) decode to the same
//!   volume as explicit VR little endian.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use host_eval::data::dicom::parse_dicom_volume;
use host_eval::data::nifti::parse_nifti;
use host_eval::data::{DataError, Volume};
use std::path::Path;

/// Single-file NIfTI-1, little endian, float32 voxels `data` (x fastest) of `dims`, spacing
/// `pixdim`, with the given sform rows (sform_code 1) or qform (qform_code 1, quaternion b, c,
/// d and qfac).
struct Nii {
    dims: [i16; 3],
    pixdim: [f32; 3],
    sform: Option<[[f32; 4]; 3]>,
    qform: Option<([f32; 3], f32)>,
    data: Vec<f32>,
}

impl Nii {
    fn bytes(&self) -> Vec<u8> {
        let mut h = vec![0u8; 352];
        let p16 = |h: &mut Vec<u8>, at: usize, v: i16| h[at..at + 2].copy_from_slice(&v.to_le_bytes());
        let pf = |h: &mut Vec<u8>, at: usize, v: f32| h[at..at + 4].copy_from_slice(&v.to_le_bytes());
        h[0..4].copy_from_slice(&348i32.to_le_bytes());
        p16(&mut h, 40, 3);
        for (i, d) in self.dims.iter().enumerate() {
            p16(&mut h, 42 + 2 * i, *d);
        }
        p16(&mut h, 70, 16);
        p16(&mut h, 72, 32);
        pf(&mut h, 76, self.qform.map_or(1.0, |q| q.1));
        for (i, s) in self.pixdim.iter().enumerate() {
            pf(&mut h, 80 + 4 * i, *s);
        }
        pf(&mut h, 108, 352.0);
        if let Some((q, _)) = self.qform {
            p16(&mut h, 252, 1);
            for (i, v) in q.iter().enumerate() {
                pf(&mut h, 256 + 4 * i, *v);
            }
        }
        if let Some(rows) = self.sform {
            p16(&mut h, 254, 1);
            for (r, row) in rows.iter().enumerate() {
                for (k, v) in row.iter().enumerate() {
                    pf(&mut h, 280 + 16 * r + 4 * k, *v);
                }
            }
        }
        h[344..348].copy_from_slice(b"n+1\0");
        for v in &self.data {
            h.extend_from_slice(&v.to_le_bytes());
        }
        h
    }
}

/// The canonical test anatomy: 4 x 3 x 2 voxels of 1 x 2 x 3 mm, value = index.
fn ras() -> Nii {
    Nii {
        dims: [4, 3, 2],
        pixdim: [1.0, 2.0, 3.0],
        sform: Some([[1.0, 0.0, 0.0, -10.0], [0.0, 2.0, 0.0, 5.0], [0.0, 0.0, 3.0, 7.0]]),
        qform: None,
        data: (0..24).map(|i| i as f32).collect(),
    }
}

#[test]
fn nifti_permuted_and_flipped_sform_loads_to_the_ras_array() {
    let canonical = parse_nifti(Path::new("ras.nii"), &ras().bytes()).unwrap();
    assert_eq!(canonical.dims, [4, 3, 2]);
    assert_eq!(canonical.spacing_mm, [1.0, 2.0, 3.0]);
    assert_eq!(canonical.data, ras().data, "RAS is kept as stored");
    let c = |x: usize, y: usize, z: usize| canonical.get(x, y, z).unwrap();
    // Stored axes: 0 -> posterior (world -y, 2 mm), 1 -> superior (+z, 3 mm), 2 -> left (-x,
    // 1 mm). Stored S[a, b, k] = C[3 - k, 2 - a, b].
    let mut data = Vec::new();
    for k in 0..4 {
        for b in 0..2 {
            for a in 0..3 {
                data.push(c(3 - k, 2 - a, b));
            }
        }
    }
    let stored = Nii {
        dims: [3, 2, 4],
        pixdim: [2.0, 3.0, 1.0],
        sform: Some([[0.0, 0.0, -1.0, 0.0], [-2.0, 0.0, 0.0, 0.0], [0.0, 3.0, 0.0, 0.0]]),
        qform: None,
        data,
    };
    let v = parse_nifti(Path::new("las.nii"), &stored.bytes()).unwrap();
    assert_eq!(v, canonical);
    // Slightly oblique (5 degrees about z) takes the closest axes: the same array.
    let (s, co) = (5f32.to_radians().sin(), 5f32.to_radians().cos());
    let mut oblique = ras();
    oblique.sform = Some([[co, -2.0 * s, 0.0, 0.0], [s, 2.0 * co, 0.0, 0.0], [0.0, 0.0, 3.0, 0.0]]);
    assert_eq!(parse_nifti(Path::new("obl.nii"), &oblique.bytes()).unwrap(), canonical);
}

#[test]
fn nifti_qform_and_precedence() {
    let canonical = parse_nifti(Path::new("ras.nii"), &ras().bytes()).unwrap();
    let flip = |v: &Volume, fx: bool, fy: bool, fz: bool| -> Vec<f32> {
        let [nx, ny, nz] = v.dims;
        let mut out = Vec::new();
        for z in 0..nz {
            for y in 0..ny {
                for x in 0..nx {
                    let (a, b, c) = (
                        if fx { nx - 1 - x } else { x },
                        if fy { ny - 1 - y } else { y },
                        if fz { nz - 1 - z } else { z },
                    );
                    out.push(v.get(a, b, c).unwrap());
                }
            }
        }
        out
    };
    // qform only: 180 degrees about z (quaternion d = 1) stores x and y reversed.
    let mut q = ras();
    q.sform = None;
    q.qform = Some(([0.0, 0.0, 1.0], 1.0));
    q.data = flip(&canonical, true, true, false);
    assert_eq!(parse_nifti(Path::new("q.nii"), &q.bytes()).unwrap(), canonical);
    // qfac = -1 (pixdim[0]): the third axis runs inferior.
    let mut q = ras();
    q.sform = None;
    q.qform = Some(([0.0, 0.0, 0.0], -1.0));
    q.data = flip(&canonical, false, false, true);
    assert_eq!(parse_nifti(Path::new("qfac.nii"), &q.bytes()).unwrap(), canonical);
    // sform_code > 0 wins over the qform.
    let mut both = ras();
    both.qform = Some(([0.0, 0.0, 1.0], -1.0));
    assert_eq!(parse_nifti(Path::new("both.nii"), &both.bytes()).unwrap(), canonical);
    // Neither: the stored axes as they are.
    let mut none = ras();
    none.sform = None;
    none.data = flip(&canonical, true, false, true);
    let v = parse_nifti(Path::new("none.nii"), &none.bytes()).unwrap();
    assert_eq!(v.data, none.data);
}

// ---- DICOM ----

const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";
const EXPLICIT_BE: &str = "1.2.840.10008.1.2.2";
const RLE: &str = "1.2.840.10008.1.2.5";

fn long_vr(vr: &str) -> bool {
    matches!(vr, "OB" | "OW" | "SQ" | "UN" | "UT")
}

fn put(out: &mut Vec<u8>, big: bool, g: u16, e: u16, vr: &str, value: &[u8], len: Option<u32>) {
    let w16 = |v: u16| if big { v.to_be_bytes() } else { v.to_le_bytes() };
    let w32 = |v: u32| if big { v.to_be_bytes() } else { v.to_le_bytes() };
    out.extend_from_slice(&w16(g));
    out.extend_from_slice(&w16(e));
    let n = len.unwrap_or(value.len() as u32);
    if g == 0xFFFE {
        out.extend_from_slice(&w32(n));
    } else {
        out.extend_from_slice(vr.as_bytes());
        if long_vr(vr) {
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&w32(n));
        } else {
            out.extend_from_slice(&w16(n as u16));
        }
    }
    out.extend_from_slice(value);
}

fn text(v: &str, pad: u8) -> Vec<u8> {
    let mut b = v.as_bytes().to_vec();
    if b.len() % 2 == 1 {
        b.push(pad);
    }
    b
}

/// A 16-bit signed slice of `rows` x `cols` with `values` (row by row), in transfer syntax `ts`.
fn dicom(ts: &str, rows: u16, cols: u16, orientation: &str, values: &[i16]) -> Vec<u8> {
    let big = ts == EXPLICIT_BE;
    let mut out = vec![0u8; 128];
    out.extend_from_slice(b"DICM");
    let mut meta = Vec::new();
    put(&mut meta, false, 0x0002, 0x0001, "OB", &[0, 1], None);
    put(&mut meta, false, 0x0002, 0x0002, "UI", &text("1.2.840.10008.5.1.4.1.1.4", 0), None);
    put(&mut meta, false, 0x0002, 0x0003, "UI", &text("1.2.3.4", 0), None);
    put(&mut meta, false, 0x0002, 0x0010, "UI", &text(ts, 0), None);
    put(&mut out, false, 0x0002, 0x0000, "UL", &(meta.len() as u32).to_le_bytes(), None);
    out.extend_from_slice(&meta);
    let us = |v: u16| if big { v.to_be_bytes() } else { v.to_le_bytes() };
    let d = &mut out;
    put(d, big, 0x0008, 0x0060, "CS", &text("MR", b' '), None);
    put(d, big, 0x0020, 0x0032, "DS", &text("0\\0\\0", b' '), None);
    put(d, big, 0x0020, 0x0037, "DS", &text(orientation, b' '), None);
    put(d, big, 0x0028, 0x0002, "US", &us(1), None);
    put(d, big, 0x0028, 0x0004, "CS", &text("MONOCHROME2", b' '), None);
    put(d, big, 0x0028, 0x0010, "US", &us(rows), None);
    put(d, big, 0x0028, 0x0011, "US", &us(cols), None);
    put(d, big, 0x0028, 0x0030, "DS", &text("0.7\\0.5", b' '), None);
    put(d, big, 0x0028, 0x0100, "US", &us(16), None);
    put(d, big, 0x0028, 0x0101, "US", &us(16), None);
    put(d, big, 0x0028, 0x0103, "US", &us(1), None);
    if ts == RLE {
        // PS3.5 G.2: segment 1 holds the high bytes, segment 2 the low bytes, each a PackBits
        // stream of literal runs (a header byte n, then n + 1 bytes).
        let packbits = |bytes: Vec<u8>| -> Vec<u8> {
            let mut s = Vec::new();
            for chunk in bytes.chunks(128) {
                s.push((chunk.len() - 1) as u8);
                s.extend_from_slice(chunk);
            }
            if s.len() % 2 == 1 {
                s.push(0);
            }
            s
        };
        let hi = packbits(values.iter().map(|v| v.to_be_bytes()[0]).collect());
        let lo = packbits(values.iter().map(|v| v.to_be_bytes()[1]).collect());
        let mut frame = vec![0u8; 64];
        frame[0..4].copy_from_slice(&2u32.to_le_bytes());
        frame[4..8].copy_from_slice(&64u32.to_le_bytes());
        frame[8..12].copy_from_slice(&(64 + hi.len() as u32).to_le_bytes());
        frame.extend_from_slice(&hi);
        frame.extend_from_slice(&lo);
        put(d, false, 0x7FE0, 0x0010, "OB", &[], Some(u32::MAX));
        put(d, false, 0xFFFE, 0xE000, "", &[], None); // empty basic offset table
        put(d, false, 0xFFFE, 0xE000, "", &frame, None);
        put(d, false, 0xFFFE, 0xE0DD, "", &[], None);
    } else {
        let px: Vec<u8> = values
            .iter()
            .flat_map(|&v| if big { v.to_be_bytes() } else { v.to_le_bytes() })
            .collect();
        put(d, big, 0x7FE0, 0x0010, "OW", &px, None);
    }
    out
}

fn values(n: usize) -> Vec<i16> {
    (0..n).map(|i| (i as i16) * 37 - 300).collect()
}

#[test]
fn dicom_lps_axial_flips_x_and_y() {
    let (rows, cols) = (3usize, 4usize);
    let vals = values(rows * cols);
    let v = parse_dicom_volume(Path::new("ax.dcm"), &dicom(EXPLICIT_LE, 3, 4, "1\\0\\0\\0\\1\\0", &vals)).unwrap();
    // Columns run toward the patient's left and rows toward posterior (LPS): in RAS both flip.
    assert_eq!(v.dims, [4, 3, 1]);
    assert_eq!(v.spacing_mm[..2], [0.5, 0.7]);
    for y in 0..rows {
        for x in 0..cols {
            let stored = vals[(cols - 1 - x) + cols * (rows - 1 - y)];
            assert_eq!(v.get(x, y, 0), Some(f32::from(stored)), "({x}, {y})");
        }
    }
    // Rows toward the patient's right, columns anterior ("-1\0\0\0\-1\0"): already RAS.
    let v = parse_dicom_volume(Path::new("ras.dcm"), &dicom(EXPLICIT_LE, 3, 4, "-1\\0\\0\\0\\-1\\0", &vals)).unwrap();
    assert_eq!(v.data, vals.iter().map(|&s| f32::from(s)).collect::<Vec<_>>());
}

#[test]
fn dicom_coronal_permutes_axes() {
    // Coronal: along a row toward the patient's left, down the rows toward the feet; the
    // normal (row x column) is (0, 1, 0), posterior. RAS: x flipped, rows become z (flipped),
    // the slice axis becomes y (flipped).
    let (rows, cols) = (3usize, 4usize);
    let vals = values(rows * cols);
    let v = parse_dicom_volume(Path::new("cor.dcm"), &dicom(EXPLICIT_LE, 3, 4, "1\\0\\0\\0\\0\\-1", &vals)).unwrap();
    assert_eq!(v.dims, [4, 1, 3]);
    assert_eq!(v.spacing_mm[0], 0.5);
    assert_eq!(v.spacing_mm[2], 0.7);
    for z in 0..rows {
        for x in 0..cols {
            let stored = vals[(cols - 1 - x) + cols * (rows - 1 - z)];
            assert_eq!(v.get(x, 0, z), Some(f32::from(stored)), "({x}, {z})");
        }
    }
}

#[test]
fn dicom_big_endian_and_rle_match_little_endian() {
    let vals = values(5 * 7);
    let le = parse_dicom_volume(Path::new("le.dcm"), &dicom(EXPLICIT_LE, 5, 7, "1\\0\\0\\0\\1\\0", &vals)).unwrap();
    for ts in [EXPLICIT_BE, RLE] {
        let v = parse_dicom_volume(Path::new("x.dcm"), &dicom(ts, 5, 7, "1\\0\\0\\0\\1\\0", &vals)).unwrap_or_else(|e| panic!("{ts}: {e}"));
        assert_eq!(v, le, "{ts}");
    }
    // A damaged RLE stream (segment offset past the end, truncated fragments) is an error, never
    // a panic.
    let good = dicom(RLE, 5, 7, "1\\0\\0\\0\\1\\0", &vals);
    for i in (good.len() - 120)..good.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut bad = good.clone();
            bad[i] ^= mask;
            let _ = parse_dicom_volume(Path::new("bad.dcm"), &bad);
        }
    }
    for len in 0..good.len() {
        assert!(parse_dicom_volume(Path::new("cut.dcm"), &good[..len]).is_err(), "cut at {len}");
    }
}

#[test]
fn undecodable_transfer_syntaxes_are_named() {
    let vals = values(6);
    for ts in [
        "1.2.840.10008.1.2.4.80",  // JPEG-LS lossless: no codec in this build
        "1.2.840.10008.1.2.4.100", // MPEG-2
        "1.2.3.4.5.6",             // not a transfer syntax
    ] {
        let mut b = dicom(EXPLICIT_LE, 2, 3, "1\\0\\0\\0\\1\\0", &vals);
        // Same encoding as the data set, only the UID differs: swap the meta element.
        let old = text(EXPLICIT_LE, 0);
        let at = b.windows(old.len()).position(|w| w == old.as_slice()).unwrap();
        let new = text(ts, 0);
        b.splice(
            at - 2..at + old.len(),
            (new.len() as u16).to_le_bytes().into_iter().chain(new.iter().copied()),
        );
        let group_len = u32::from_le_bytes(b[140..144].try_into().unwrap()) as i64 + new.len() as i64 - old.len() as i64;
        b[140..144].copy_from_slice(&(group_len as u32).to_le_bytes());
        match parse_dicom_volume(Path::new("ts.dcm"), &b) {
            Err(DataError::UnsupportedFormat { what, .. }) => assert!(what.contains(ts), "{ts}: {what}"),
            other => panic!("{ts}: {other:?}"),
        }
    }
}
