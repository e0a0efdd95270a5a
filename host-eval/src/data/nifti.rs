//! NIfTI-1 volumes (`.nii`, `.nii.gz`), either byte order.
//!
//! Header fields used (NIfTI-1 standard, nifti1.h): sizeof_hdr (348, also tells the byte order),
//! dim[0..8] at offset 40, datatype at 70, pixdim[1..4] at 80 (voxel spacing in mm), vox_offset
//! at 108, scl_slope / scl_inter at 112 / 116 (applied when the slope is finite and nonzero),
//! magic "n+1\0" at 344 (single-file images only). Data types: uint8, int8, int16, uint16,
//! int32, float32, float64. A 4D image is accepted when its 4th dimension is 1. Non-positive or
//! non-finite spacings are replaced by 1 mm (some converters leave them unset).

use super::{DataError, Volume, MAX_ARRAY_BYTES};
use std::io::Read;
use std::path::Path;

const HEADER: usize = 348;

fn corrupt(path: &Path, what: impl Into<String>) -> DataError {
    DataError::Corrupt { path: path.to_path_buf(), what: what.into() }
}

struct Reader<'a> {
    b: &'a [u8],
    big: bool,
}

impl Reader<'_> {
    fn bytes<const K: usize>(&self, at: usize) -> [u8; K] {
        let mut a = [0u8; K];
        a.copy_from_slice(&self.b[at..at + K]);
        if self.big {
            a.reverse();
        }
        a
    }
    fn i16(&self, at: usize) -> i16 {
        i16::from_le_bytes(self.bytes::<2>(at))
    }
    fn f32(&self, at: usize) -> f32 {
        f32::from_le_bytes(self.bytes::<4>(at))
    }
}

/// Loads a NIfTI-1 file.
pub fn load_nifti(path: &Path) -> Result<Volume, DataError> {
    let file = std::fs::File::open(path).map_err(|source| DataError::Io { path: path.to_path_buf(), source })?;
    let gz = path.to_string_lossy().to_ascii_lowercase().ends_with(".gz");
    let mut input: Box<dyn Read> = if gz { Box::new(flate2::read::GzDecoder::new(file)) } else { Box::new(file) };
    let mut header = vec![0u8; HEADER];
    input.read_exact(&mut header).map_err(|e| corrupt(path, format!("header: {e}")))?;
    let (dims, datatype, spacing, vox_offset, slope, inter, big) = parse_header(path, &header)?;
    let size = bytes_per_voxel(datatype).ok_or_else(|| DataError::UnsupportedFormat { path: path.to_path_buf(), what: format!("NIfTI datatype {datatype}") })?;
    let count = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or(DataError::TooLarge { path: path.to_path_buf(), bytes: u64::MAX })?;
    let nbytes = count.checked_mul(size).ok_or(DataError::TooLarge { path: path.to_path_buf(), bytes: u64::MAX })?;
    if nbytes as u64 > MAX_ARRAY_BYTES {
        return Err(DataError::TooLarge { path: path.to_path_buf(), bytes: nbytes as u64 });
    }
    // Skip the extension bytes between the header and vox_offset, then read exactly the data:
    // `take` bounds what a decompressor may produce, so a gzip bomb cannot exhaust memory.
    let mut skip = vec![0u8; vox_offset - HEADER];
    input.read_exact(&mut skip).map_err(|e| corrupt(path, format!("before vox_offset: {e}")))?;
    let mut raw = Vec::with_capacity(nbytes);
    input.take(nbytes as u64).read_to_end(&mut raw).map_err(|e| corrupt(path, format!("data: {e}")))?;
    if raw.len() != nbytes {
        return Err(corrupt(path, format!("image data has {} bytes, header says {nbytes}", raw.len())));
    }
    let apply = slope.is_finite() && slope != 0.0 && inter.is_finite();
    let data = raw
        .chunks_exact(size)
        .map(|c| {
            let v = decode(c, datatype, big);
            (if apply { v * slope as f64 + inter as f64 } else { v }) as f32
        })
        .collect();
    Ok(Volume { dims, spacing_mm: spacing, data })
}

#[allow(clippy::type_complexity)]
fn parse_header(path: &Path, h: &[u8]) -> Result<([usize; 3], i16, [f64; 3], usize, f32, f32, bool), DataError> {
    let le = i32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    let big = if le == HEADER as i32 {
        false
    } else if i32::from_be_bytes([h[0], h[1], h[2], h[3]]) == HEADER as i32 {
        true
    } else {
        return Err(DataError::UnsupportedFormat { path: path.to_path_buf(), what: "not a NIfTI-1 file (sizeof_hdr != 348)".into() });
    };
    if &h[344..348] != b"n+1\0" {
        return Err(DataError::UnsupportedFormat { path: path.to_path_buf(), what: "only single-file NIfTI-1 images (magic n+1) are read".into() });
    }
    let r = Reader { b: h, big };
    let ndim = r.i16(40);
    let dim = |i: usize| r.i16(40 + 2 * i);
    let dims4 = if ndim == 4 { dim(4) } else { 1 };
    if !(ndim == 3 || (ndim == 4 && dims4 == 1)) {
        return Err(DataError::UnsupportedFormat { path: path.to_path_buf(), what: format!("{ndim}-dimensional image (need 3D)") });
    }
    let mut dims = [0usize; 3];
    for (i, d) in dims.iter_mut().enumerate() {
        let v = dim(i + 1);
        if v <= 0 {
            return Err(corrupt(path, format!("dimension {} is {v}", i + 1)));
        }
        *d = v as usize;
    }
    let mut spacing = [1.0f64; 3];
    for (i, s) in spacing.iter_mut().enumerate() {
        let v = r.f32(80 + 4 * i) as f64;
        if v.is_finite() && v > 0.0 {
            *s = v;
        }
    }
    let vox = r.f32(108);
    if !(vox.is_finite() && vox >= HEADER as f32 + 4.0 && vox < 1.0e9) {
        return Err(corrupt(path, format!("vox_offset {vox}")));
    }
    Ok((dims, r.i16(70), spacing, vox as usize, r.f32(112), r.f32(116), big))
}

fn bytes_per_voxel(datatype: i16) -> Option<usize> {
    Some(match datatype {
        2 | 256 => 1,
        4 | 512 => 2,
        8 | 16 => 4,
        64 => 8,
        _ => return None,
    })
}

fn decode(c: &[u8], datatype: i16, big: bool) -> f64 {
    let mut b = [0u8; 8];
    b[..c.len()].copy_from_slice(c);
    if big {
        b[..c.len()].reverse();
    }
    match datatype {
        2 => b[0] as f64,
        256 => b[0] as i8 as f64,
        4 => i16::from_le_bytes([b[0], b[1]]) as f64,
        512 => u16::from_le_bytes([b[0], b[1]]) as f64,
        8 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
        16 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
        _ => f64::from_le_bytes(b),
    }
}
