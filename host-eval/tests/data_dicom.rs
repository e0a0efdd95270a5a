//! DICOM reader: files built byte by byte in the test (explicit and implicit VR little endian,
//! nested sequences of undefined length, trailing padding after the pixel data, multi-frame,
//! a series shuffled on disk), and malformed input that must be an error, never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use host_eval::data::dicom::{load_dicom, load_dicom_series, parse_dicom, parse_dicom_volume};
use host_eval::data::{load_volume, DataError};
use std::path::{Path, PathBuf};

const EXPLICIT: &str = "1.2.840.10008.1.2.1";
const IMPLICIT: &str = "1.2.840.10008.1.2";

fn long_vr(vr: &str) -> bool {
    matches!(vr, "OB" | "OW" | "SQ" | "UN" | "UT" | "OF")
}

/// Element encoder; `len` overrides the length field (undefined length 0xFFFFFFFF).
fn put(out: &mut Vec<u8>, explicit: bool, g: u16, e: u16, vr: &str, value: &[u8], len: Option<u32>) {
    out.extend_from_slice(&g.to_le_bytes());
    out.extend_from_slice(&e.to_le_bytes());
    let n = len.unwrap_or(value.len() as u32);
    if explicit && g != 0xFFFE {
        out.extend_from_slice(vr.as_bytes());
        if long_vr(vr) {
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&n.to_le_bytes());
        } else {
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
    } else {
        out.extend_from_slice(&n.to_le_bytes());
    }
    out.extend_from_slice(value);
}

fn s(v: &str) -> Vec<u8> {
    let mut b = v.as_bytes().to_vec();
    if b.len() % 2 == 1 {
        b.push(b' ');
    }
    b
}

fn uid(v: &str) -> Vec<u8> {
    let mut b = v.as_bytes().to_vec();
    if b.len() % 2 == 1 {
        b.push(0);
    }
    b
}

#[derive(Clone)]
struct Slice {
    explicit: bool,
    rows: u16,
    cols: u16,
    frames: Option<u32>,
    bits: u16,
    stored: u16,
    signed: bool,
    slope: Option<&'static str>,
    intercept: Option<&'static str>,
    position: Option<[f64; 3]>,
    orientation: &'static str,
    instance: Option<i32>,
    series: &'static str,
    pixels: Vec<u8>,
    padding: usize,
    syntax: Option<&'static str>,
    /// Encoded elements placed just before the pixel data (tags above (0028,xxxx)).
    before_pixels: Vec<u8>,
}

impl Slice {
    fn new(explicit: bool) -> Self {
        Slice {
            explicit,
            rows: 2,
            cols: 3,
            frames: None,
            bits: 16,
            stored: 12,
            signed: true,
            slope: Some("2"),
            intercept: Some("-1024"),
            position: Some([-10.0, -20.0, 30.0]),
            orientation: "1\\0\\0\\0\\1\\0",
            instance: Some(1),
            series: "1.2.3.4.5",
            // Stored 12-bit signed values 0, 1, -1 (0x0FFF sign-extended to 0xFFFF), 2047, -2048,
            // and 0xF005 whose bits above BitsStored are garbage (value 5).
            pixels: [0u16, 1, 0xFFFF, 2047, 0xF800, 0xF005]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
            padding: 0,
            syntax: None,
            before_pixels: Vec::new(),
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let x = self.explicit;
        let mut out = vec![0u8; 128];
        out.extend_from_slice(b"DICM");
        let ts = self.syntax.unwrap_or(if x { EXPLICIT } else { IMPLICIT });
        let mut meta = Vec::new();
        put(&mut meta, true, 0x0002, 0x0001, "OB", &[0, 1], None);
        put(&mut meta, true, 0x0002, 0x0002, "UI", &uid("1.2.840.10008.5.1.4.1.1.2"), None);
        put(&mut meta, true, 0x0002, 0x0010, "UI", &uid(ts), None);
        put(&mut out, true, 0x0002, 0x0000, "UL", &(meta.len() as u32).to_le_bytes(), None);
        out.extend_from_slice(&meta);
        let d = &mut out;
        put(d, x, 0x0008, 0x0016, "UI", &uid("1.2.840.10008.5.1.4.1.1.2"), None);
        put(d, x, 0x0008, 0x0060, "CS", &s("CT"), None);
        // ReferencedImageSequence, undefined length: an undefined-length item holding an element
        // and a nested undefined-length sequence with a defined-length item; then a defined-length
        // item. Its contents (a decoy Rows) must not leak into the image.
        put(d, x, 0x0008, 0x1140, "SQ", &[], Some(u32::MAX));
        put(d, x, 0xFFFE, 0xE000, "", &[], Some(u32::MAX));
        put(d, x, 0x0008, 0x1150, "UI", &uid("1.2.3"), None);
        put(d, x, 0x0008, 0x1155, "SQ", &[], Some(u32::MAX));
        let mut inner = Vec::new();
        put(&mut inner, x, 0x0028, 0x0010, "US", &999u16.to_le_bytes(), None);
        put(d, x, 0xFFFE, 0xE000, "", &inner, None);
        put(d, x, 0xFFFE, 0xE0DD, "", &[], Some(0));
        put(d, x, 0xFFFE, 0xE00D, "", &[], Some(0));
        let mut item = Vec::new();
        put(&mut item, x, 0x0008, 0x1150, "UI", &uid("1.2.4"), None);
        put(d, x, 0xFFFE, 0xE000, "", &item, None);
        put(d, x, 0xFFFE, 0xE0DD, "", &[], Some(0));
        put(d, x, 0x0018, 0x0050, "DS", &s("2.5"), None);
        put(d, x, 0x0020, 0x000E, "UI", &uid(self.series), None);
        if let Some(i) = self.instance {
            put(d, x, 0x0020, 0x0013, "IS", &s(&i.to_string()), None);
        }
        if let Some(p) = self.position {
            put(d, x, 0x0020, 0x0032, "DS", &s(&format!("{}\\{}\\{}", p[0], p[1], p[2])), None);
        }
        put(d, x, 0x0020, 0x0037, "DS", &s(self.orientation), None);
        put(d, x, 0x0028, 0x0002, "US", &1u16.to_le_bytes(), None);
        put(d, x, 0x0028, 0x0004, "CS", &s("MONOCHROME2"), None);
        if let Some(f) = self.frames {
            put(d, x, 0x0028, 0x0008, "IS", &s(&f.to_string()), None);
        }
        put(d, x, 0x0028, 0x0010, "US", &self.rows.to_le_bytes(), None);
        put(d, x, 0x0028, 0x0011, "US", &self.cols.to_le_bytes(), None);
        put(d, x, 0x0028, 0x0030, "DS", &s("0.7\\0.5"), None);
        put(d, x, 0x0028, 0x0100, "US", &self.bits.to_le_bytes(), None);
        put(d, x, 0x0028, 0x0101, "US", &self.stored.to_le_bytes(), None);
        put(d, x, 0x0028, 0x0103, "US", &u16::from(self.signed).to_le_bytes(), None);
        if let Some(v) = self.intercept {
            put(d, x, 0x0028, 0x1052, "DS", &s(v), None);
        }
        if let Some(v) = self.slope {
            put(d, x, 0x0028, 0x1053, "DS", &s(v), None);
        }
        d.extend_from_slice(&self.before_pixels);
        put(d, x, 0x7FE0, 0x0010, if self.bits == 8 { "OB" } else { "OW" }, &self.pixels, None);
        out.extend(std::iter::repeat_n(0u8, self.padding));
        out
    }
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("clifhe-dicom-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn single_slice_explicit_and_implicit_with_padding() {
    let dir = tmp("single");
    for explicit in [true, false] {
        for padding in [0, 4096] {
            let mut sl = Slice::new(explicit);
            sl.padding = padding;
            let p = dir.join(format!("x{explicit}{padding}.dcm"));
            std::fs::write(&p, sl.bytes()).unwrap();
            let v = load_volume(&p).unwrap();
            assert_eq!(v.dims, [3, 2, 1], "explicit {explicit}");
            // PixelSpacing is (row, column) = (y, x); z from SliceThickness for one slice.
            assert_eq!(v.spacing_mm, [0.5, 0.7, 2.5]);
            // HU = 2 * stored - 1024, stored masked to 12 bits and sign-extended. The slice is
            // axial in LPS (ImageOrientationPatient 1\0\0\0\1\0): in RAS+ both in-plane axes
            // run the other way, so the 3 x 2 values come out reversed.
            let stored = [0.0f32, 1.0, -1.0, 2047.0, -2048.0, 5.0];
            assert_eq!(v.data, stored.iter().rev().map(|s| 2.0 * s - 1024.0).collect::<Vec<_>>());
            assert_eq!(parse_dicom_volume(&p, &sl.bytes()).unwrap(), v, "in-memory reader");
        }
    }
    // A pixel data element whose declared length covers padding beyond the frames.
    let mut sl = Slice::new(true);
    sl.pixels.extend_from_slice(&[0u8; 1000]);
    let v = parse_dicom(Path::new("mem"), &sl.bytes()).unwrap();
    assert_eq!(v.data.len(), 6);
}

#[test]
fn unsigned_eight_bit_multi_frame_and_defaults() {
    let mut sl = Slice::new(true);
    sl.bits = 8;
    sl.stored = 8;
    sl.signed = false;
    sl.slope = None;
    sl.intercept = None;
    sl.frames = Some(2);
    sl.pixels = (0u8..12).map(|v| v * 20).collect();
    let dir = tmp("mf");
    let p = dir.join("multiframe");
    std::fs::write(&p, sl.bytes()).unwrap();
    // No extension: recognised by the DICM preamble.
    let v = load_volume(&p).unwrap();
    assert_eq!(v.dims, [3, 2, 2]);
    // Each LPS axial frame is reversed in-plane (RAS+); the frames keep their order.
    let want: Vec<f32> = (0..2).flat_map(|f| (0..6).rev().map(move |i| ((f * 6 + i) * 20) as f32)).collect();
    assert_eq!(v.data, want);
    assert_eq!(load_dicom(&p).unwrap(), v);
}

#[test]
fn series_shuffled_on_disk_comes_back_sorted() {
    for explicit in [true, false] {
        let dir = tmp(&format!("series{explicit}"));
        // Slice k at z = 40 - 3k (descending on disk order), instance numbers scrambled,
        // file names in yet another order.
        let names = ["c.dcm", "a.dcm", "e", "b.dcm", "d.dcm"];
        for (k, name) in names.iter().enumerate() {
            let mut sl = Slice::new(explicit);
            sl.position = Some([-10.0, -20.0, 40.0 - 3.0 * k as f64]);
            sl.instance = Some([7, 3, 9, 1, 5][k]);
            sl.slope = None;
            sl.intercept = None;
            sl.pixels = [k as u16; 6].iter().flat_map(|v| v.to_le_bytes()).collect();
            sl.padding = 100 * k;
            std::fs::write(dir.join(name), sl.bytes()).unwrap();
        }
        // A smaller second series and a non-DICOM file are ignored.
        let mut other = Slice::new(explicit);
        other.series = "9.9.9";
        std::fs::write(dir.join("other.dcm"), other.bytes()).unwrap();
        std::fs::write(dir.join("README.txt"), b"not a scan").unwrap();
        let v = load_volume(&dir).unwrap();
        assert_eq!(v.dims, [3, 2, 5]);
        assert!((v.spacing_mm[2] - 3.0).abs() < 1e-9, "{:?}", v.spacing_mm);
        // Ascending z: the slice written last (k = 4, z = 28) comes first.
        let firsts: Vec<f32> = (0..5).map(|z| v.data[z * 6]).collect();
        assert_eq!(firsts, vec![4.0, 3.0, 2.0, 1.0, 0.0]);
        assert_eq!(load_dicom_series(&dir).unwrap(), v);
    }
}

#[test]
fn series_by_oblique_normal_and_by_instance_number() {
    // Sagittal slices: rows along y, columns along -z; the normal is row x col = -x, so
    // ascending projection is descending x. In RAS+ the slice axis (toward the patient's
    // right, RAS +x) becomes x, the column axis (posterior) y flipped, the row axis (inferior)
    // z flipped.
    let dir = tmp("sag");
    for k in 0..3 {
        let mut sl = Slice::new(true);
        sl.orientation = "0\\1\\0\\0\\0\\-1";
        sl.position = Some([5.0 * k as f64, 0.0, 0.0]);
        sl.pixels = [k as u16; 6].iter().flat_map(|v| v.to_le_bytes()).collect();
        sl.slope = None;
        sl.intercept = None;
        std::fs::write(dir.join(format!("s{k}.dcm")), sl.bytes()).unwrap();
    }
    let v = load_volume(&dir).unwrap();
    assert_eq!(v.dims, [3, 3, 2]);
    assert_eq!((0..3).map(|x| v.data[x]).collect::<Vec<_>>(), vec![2.0, 1.0, 0.0]);
    assert!((v.spacing_mm[0] - 5.0).abs() < 1e-9, "{:?}", v.spacing_mm);
    // Without positions: InstanceNumber order, z spacing from SliceThickness.
    let dir = tmp("inst");
    for k in 0..3 {
        let mut sl = Slice::new(false);
        sl.position = None;
        sl.instance = Some(3 - k);
        sl.pixels = [k as u16; 6].iter().flat_map(|v| v.to_le_bytes()).collect();
        sl.slope = None;
        sl.intercept = None;
        std::fs::write(dir.join(format!("s{k}.dcm")), sl.bytes()).unwrap();
    }
    let v = load_volume(&dir).unwrap();
    assert_eq!((0..3).map(|z| v.data[z * 6]).collect::<Vec<_>>(), vec![2.0, 1.0, 0.0]);
    assert_eq!(v.spacing_mm[2], 2.5);
}

#[test]
fn inconsistent_series_are_errors() {
    let dir = tmp("mixed");
    for k in 0..3 {
        let mut sl = Slice::new(true);
        sl.position = Some([0.0, 0.0, k as f64]);
        if k == 2 {
            sl.rows = 3;
            sl.pixels.extend_from_slice(&[0u8; 6]);
        }
        std::fs::write(dir.join(format!("s{k}.dcm")), sl.bytes()).unwrap();
    }
    assert!(matches!(load_volume(&dir), Err(DataError::Inconsistent { .. })));
    let dir = tmp("dup");
    for k in 0..3 {
        let mut sl = Slice::new(true);
        sl.position = Some([0.0, 0.0, if k == 2 { 1.0 } else { k as f64 }]);
        std::fs::write(dir.join(format!("s{k}.dcm")), sl.bytes()).unwrap();
    }
    assert!(matches!(load_volume(&dir), Err(DataError::Inconsistent { .. })));
    let dir = tmp("gap");
    for (k, z) in [0.0, 1.0, 2.0, 5.0].iter().enumerate() {
        let mut sl = Slice::new(true);
        sl.position = Some([0.0, 0.0, *z]);
        std::fs::write(dir.join(format!("s{k}.dcm")), sl.bytes()).unwrap();
    }
    assert!(matches!(load_volume(&dir), Err(DataError::Inconsistent { .. })));
    let dir = tmp("empty");
    std::fs::write(dir.join("notes.txt"), b"nothing here").unwrap();
    assert!(matches!(load_volume(&dir), Err(DataError::UnsupportedFormat { .. })));
}

#[test]
fn unsupported_variants() {
    let p = Path::new("mem");
    let mut sl = Slice::new(true);
    // JPEG-LS has no decoder in this build: refused by name.
    sl.syntax = Some("1.2.840.10008.1.2.4.80");
    assert!(matches!(parse_dicom(p, &sl.bytes()), Err(DataError::UnsupportedFormat { .. })));
    // JPEG baseline and explicit VR big endian are read since the move to dicom-rs; these
    // little-endian, unencapsulated bytes labelled with them are corrupt (they were
    // UnsupportedFormat when the syntaxes were refused outright).
    sl.syntax = Some("1.2.840.10008.1.2.4.50");
    assert!(matches!(parse_dicom(p, &sl.bytes()), Err(DataError::Corrupt { .. })));
    sl.syntax = Some("1.2.840.10008.1.2.2");
    assert!(matches!(parse_dicom(p, &sl.bytes()), Err(DataError::Corrupt { .. })));
    // Encapsulated pixel data (undefined length) under an uncompressed syntax.
    let mut b = Slice::new(true).bytes();
    let at = b.windows(4).rposition(|w| w == [0xE0, 0x7F, 0x10, 0x00]).unwrap();
    b[at + 8..at + 12].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(parse_dicom(p, &b), Err(DataError::UnsupportedFormat { .. })));
    let mut sl = Slice::new(true);
    sl.bits = 1;
    assert!(matches!(parse_dicom(p, &sl.bytes()), Err(DataError::UnsupportedFormat { .. })));
    assert!(matches!(
        parse_dicom(p, b"hello, not a dicom file at all"),
        Err(DataError::UnsupportedFormat { .. })
    ));
}

#[test]
fn oversized_declarations_are_refused_before_allocating() {
    let p = Path::new("mem");
    let mut sl = Slice::new(true);
    sl.rows = 65535;
    sl.cols = 65535;
    sl.frames = Some(100_000);
    assert!(matches!(parse_dicom(p, &sl.bytes()), Err(DataError::TooLarge { .. })));
    // Within the cap but far beyond the bytes present.
    sl.rows = 1000;
    sl.cols = 1000;
    sl.frames = Some(100);
    assert!(matches!(parse_dicom(p, &sl.bytes()), Err(DataError::Corrupt { .. })));
    // An element length pointing past the end of the file.
    let mut b = Slice::new(true).bytes();
    let at = b.windows(4).position(|w| w == [0x18, 0x00, 0x50, 0x00]).unwrap();
    b[at + 6..at + 8].copy_from_slice(&60000u16.to_le_bytes());
    assert!(matches!(parse_dicom(p, &b), Err(DataError::Corrupt { .. })));
}

#[test]
fn truncated_and_corrupted_files_never_panic() {
    let p = Path::new("mem");
    for explicit in [true, false] {
        let mut sl = Slice::new(explicit);
        sl.frames = Some(1);
        let good = sl.bytes();
        assert!(parse_dicom(p, &good).is_ok());
        // Pixel data is last, so every strict prefix lacks data and must be an error.
        for len in 0..good.len() {
            assert!(parse_dicom(p, &good[..len]).is_err(), "explicit {explicit}, truncated at {len}");
        }
        for i in 0..good.len() {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut bad = good.clone();
                bad[i] ^= mask;
                let _ = parse_dicom(p, &bad);
            }
        }
    }
    // The same through the file API, at a few lengths.
    let dir = tmp("trunc");
    let good = Slice::new(true).bytes();
    for len in (0..good.len()).step_by(7) {
        let f = dir.join("t.dcm");
        std::fs::write(&f, &good[..len]).unwrap();
        assert!(load_volume(&f).is_err(), "truncated at {len}");
    }
    // Deeply nested undefined-length sequences are refused, not a stack overflow.
    let mut b = Slice::new(true).bytes();
    let at = b.windows(4).position(|w| w == [0x08, 0x00, 0x60, 0x00]).unwrap();
    let mut nest = Vec::new();
    for _ in 0..10_000 {
        put(&mut nest, true, 0x0008, 0x1140, "SQ", &[], Some(u32::MAX));
        put(&mut nest, true, 0xFFFE, 0xE000, "", &[], Some(u32::MAX));
    }
    b.splice(at..at, nest);
    assert!(matches!(parse_dicom(p, &b), Err(DataError::Corrupt { .. })));
}

#[test]
fn enhanced_multi_frame_uses_per_frame_positions() {
    for explicit in [true, false] {
        let x = explicit;
        let mut sl = Slice::new(explicit);
        sl.frames = Some(3);
        sl.position = None;
        sl.slope = None;
        sl.intercept = None;
        // Frames stored at z = 6, 0, 3; frame f holds the value f.
        sl.pixels = (0..3u16).flat_map(|f| [f; 6]).flat_map(|v| v.to_le_bytes()).collect();
        let mut per_frame = Vec::new();
        for z in [6.0, 0.0, 3.0] {
            let mut pos = Vec::new();
            put(&mut pos, x, 0x0020, 0x0032, "DS", &s(&format!("0\\0\\{z}")), None);
            let mut plane = Vec::new();
            put(&mut plane, x, 0xFFFE, 0xE000, "", &pos, None);
            let mut item = Vec::new();
            put(&mut item, x, 0x0020, 0x9113, "SQ", &plane, None);
            put(&mut per_frame, x, 0xFFFE, 0xE000, "", &item, None);
        }
        put(&mut sl.before_pixels, x, 0x5200, 0x9230, "SQ", &per_frame, None);
        let b = sl.bytes();
        let dir = tmp(&format!("enh{explicit}"));
        std::fs::write(dir.join("enh.dcm"), &b).unwrap();
        let v = load_volume(dir.join("enh.dcm")).unwrap();
        assert_eq!(v.dims, [3, 2, 3]);
        assert!((v.spacing_mm[2] - 3.0).abs() < 1e-9, "{:?}", v.spacing_mm);
        assert_eq!((0..3).map(|z| v.data[z * 6]).collect::<Vec<_>>(), vec![1.0, 2.0, 0.0]);
    }
}

#[test]
fn deflated_explicit_little_endian() {
    use std::io::Write;
    let mut sl = Slice::new(true);
    sl.syntax = Some("1.2.840.10008.1.2.1.99");
    let plain = sl.bytes();
    let group_len = u32::from_le_bytes(plain[140..144].try_into().unwrap()) as usize;
    let meta_end = 144 + group_len;
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(&plain[meta_end..]).unwrap();
    let mut b = plain[..meta_end].to_vec();
    b.extend_from_slice(&e.finish().unwrap());
    let v = parse_dicom(Path::new("mem"), &b).unwrap();
    assert_eq!(v, parse_dicom(Path::new("mem"), &Slice::new(true).bytes()).unwrap());
    assert_eq!((v.rows, v.columns), (2, 3));
    for len in (meta_end..b.len()).step_by(3) {
        assert!(parse_dicom(Path::new("mem"), &b[..len]).is_err(), "deflated, truncated at {len}");
    }
}

/// A deflated data set inflates only within the load's budget (review issue 12): the pixel
/// data is followed by megabytes of deflated zeros, which a lowered budget stops while
/// inflating; the default budget accepts it.
#[test]
fn deflated_data_set_inflate_budget() {
    use host_eval::data::dicom::parse_dicom_with;
    use host_eval::data::Limits;
    use std::io::Write;
    let mut sl = Slice::new(true);
    sl.syntax = Some("1.2.840.10008.1.2.1.99");
    sl.padding = 4 << 20;
    let plain = sl.bytes();
    let group_len = u32::from_le_bytes(plain[140..144].try_into().unwrap()) as usize;
    let meta_end = 144 + group_len;
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(&plain[meta_end..]).unwrap();
    let mut b = plain[..meta_end].to_vec();
    b.extend_from_slice(&e.finish().unwrap());
    assert!(b.len() < 64 << 10, "a small file: {}", b.len());
    assert!(parse_dicom(Path::new("mem"), &b).is_ok());
    let small = Limits {
        max_inflated_bytes: 1 << 20,
        ..Limits::DEFAULT
    };
    assert!(matches!(
        parse_dicom_with(Path::new("mem"), &b, &small),
        Err(DataError::DecompressionLimit { limit, .. }) if limit == 1 << 20
    ));
    let few_voxels = Limits {
        max_voxels: 5,
        ..Limits::DEFAULT
    };
    assert!(matches!(
        parse_dicom_with(Path::new("mem"), &b, &few_voxels),
        Err(DataError::TooLarge { .. })
    ));
}
