//! A small hostile file must not make a reader allocate much more than its size: files of a few
//! hundred bytes whose elements or headers declare gigabytes, loaded under an allocator that
//! records the peak of live heap bytes. dicom-rs reserves a value's declared length before
//! reading it, so the DICOM reader's length walk (data/dicom/guard.rs) must refuse these first.
//! One test function: the counter is process-wide.
#![allow(clippy::unwrap_used, clippy::expect_used, unsafe_code)]

use host_eval::data::dicom::parse_dicom;
use host_eval::data::nifti::parse_nifti;
use host_eval::data::DataError;
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
            PEAK.fetch_max(now, Ordering::SeqCst);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::SeqCst);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Peak heap growth while running `f`.
fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let r = f();
    (r, PEAK.load(Ordering::SeqCst).saturating_sub(base))
}

fn put(out: &mut Vec<u8>, g: u16, e: u16, vr: &str, value: &[u8], len: Option<u32>) {
    out.extend_from_slice(&g.to_le_bytes());
    out.extend_from_slice(&e.to_le_bytes());
    out.extend_from_slice(vr.as_bytes());
    let n = len.unwrap_or(value.len() as u32);
    if matches!(vr, "OB" | "OW" | "UN" | "UT" | "SQ") {
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&n.to_le_bytes());
    } else {
        out.extend_from_slice(&(n as u16).to_le_bytes());
    }
    out.extend_from_slice(value);
}

fn dicom_with(element: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
    let mut b = vec![0u8; 128];
    b.extend_from_slice(b"DICM");
    let ts = b"1.2.840.10008.1.2.1\0";
    put(&mut b, 0x0002, 0x0010, "UI", ts, None);
    put(&mut b, 0x0008, 0x0060, "CS", b"CT", None);
    element(&mut b);
    put(&mut b, 0x0028, 0x0010, "US", &2u16.to_le_bytes(), None);
    b
}

#[test]
fn hostile_declared_sizes_allocate_little() {
    const CAP: usize = 64 << 20;
    // An OB element declaring 4 GiB - 16 bytes in a 200-byte file.
    let b = dicom_with(|b| put(b, 0x0042, 0x0011, "OB", &[1, 2, 3, 4], Some(0xFFFF_FFF0)));
    let (r, peak) = peak_of(|| parse_dicom(Path::new("big-ob.dcm"), &b));
    assert!(matches!(r, Err(DataError::Corrupt { .. })), "{r:?}");
    assert!(peak < CAP, "OB of 4 GiB: peak {peak} bytes");
    // The same inside a sequence item.
    let b = dicom_with(|b| {
        put(b, 0x0008, 0x1140, "SQ", &[], Some(u32::MAX));
        b.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        put(b, 0x0008, 0x1150, "UT", b"x ", Some(0xF000_0000));
    });
    let (r, peak) = peak_of(|| parse_dicom(Path::new("big-item.dcm"), &b));
    assert!(r.is_err());
    assert!(peak < CAP, "nested UT of 3.75 GiB: peak {peak} bytes");
    // Pixel data declaring 4 GiB, and Rows x Columns x NumberOfFrames far beyond the file.
    let b = dicom_with(|b| {
        put(b, 0x0028, 0x0008, "IS", b"100000", None);
        put(b, 0x0028, 0x0011, "US", &65535u16.to_le_bytes(), None);
        put(b, 0x7FE0, 0x0010, "OW", &[0; 8], Some(0xFFFF_FFF0));
    });
    let (r, peak) = peak_of(|| parse_dicom(Path::new("big-px.dcm"), &b));
    assert!(r.is_err());
    assert!(peak < CAP, "pixel data of 4 GiB: peak {peak} bytes");
    // NIfTI: 32767^3 int16 declared by a 352-byte file.
    let mut h = vec![0u8; 352];
    h[0..4].copy_from_slice(&348i32.to_le_bytes());
    h[40..42].copy_from_slice(&3i16.to_le_bytes());
    for i in 0..3 {
        h[42 + 2 * i..44 + 2 * i].copy_from_slice(&32767i16.to_le_bytes());
    }
    h[70..72].copy_from_slice(&4i16.to_le_bytes());
    h[108..112].copy_from_slice(&352f32.to_le_bytes());
    h[344..348].copy_from_slice(b"n+1\0");
    let (r, peak) = peak_of(|| parse_nifti(Path::new("big.nii"), &h));
    assert!(matches!(r, Err(DataError::TooLarge { .. })), "{r:?}");
    assert!(peak < CAP, "NIfTI of 64 TB: peak {peak} bytes");
    // 256^3 int16 (32 MiB) declared, 352 bytes present: refused before reading.
    for i in 0..3 {
        h[42 + 2 * i..44 + 2 * i].copy_from_slice(&256i16.to_le_bytes());
    }
    let (r, peak) = peak_of(|| parse_nifti(Path::new("short.nii"), &h));
    assert!(matches!(r, Err(DataError::Corrupt { .. })), "{r:?}");
    assert!(peak < 1 << 20, "short NIfTI: peak {peak} bytes");
    // Found by the dicom fuzz target: a bare implicit VR data set whose (002E,0000) UL has
    // length 2. dicom-rs reads no value but moves its position by 2, then takes a later header
    // from the wrong bytes and reserves 4 GiB; the length walk now refuses the UL first.
    let b = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/dicom-ul-length-2.dcm")).unwrap();
    let (r, peak) = peak_of(|| host_eval::data::dicom::parse_dicom_volume(Path::new("ul2.dcm"), &b));
    assert!(matches!(r, Err(DataError::Corrupt { .. })), "{r:?}");
    assert!(peak < CAP, "UL of length 2: peak {peak} bytes");
    // Found again (6 December): a retired pixel-data group element (7F28,0010), VR OW, of
    // length 1; dicom-rs reads OW as 16-bit words, so the same desynchronisation followed
    // (3.7 GiB reserved for a 105-byte file). OW lengths are now checked to be even.
    let b = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/dicom-ow-length-1.dcm")).unwrap();
    let (r, peak) = peak_of(|| host_eval::data::dicom::parse_dicom_volume(Path::new("ow1.dcm"), &b));
    assert!(matches!(r, Err(DataError::Corrupt { .. })), "{r:?}");
    assert!(peak < CAP, "OW of length 1: peak {peak} bytes");
}
