//! Raw little-endian volumes: no header, so the caller gives the dimensions, the voxel type and
//! (optionally) the spacing and a byte offset. The file must hold exactly `offset + voxels *
//! size` bytes: a raw file has no other way to tell that the dimensions are wrong, so a size
//! mismatch in either direction is an error. Voxels are x fastest, then y, then z.

use super::{checked_size, corrupt, io_err, read_exact_bounded, skip_bytes, DataError, Volume};
use std::path::Path;

/// Voxel type of a raw volume (little-endian).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawType {
    U8,
    U16,
    I16,
    F32,
}

impl RawType {
    pub fn size(self) -> usize {
        match self {
            Self::U8 => 1,
            Self::U16 | Self::I16 => 2,
            Self::F32 => 4,
        }
    }
    /// `u8`, `u16`, `i16` or `f32`.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "u8" | "uint8" => Self::U8,
            "u16" | "uint16" => Self::U16,
            "i16" | "int16" => Self::I16,
            "f32" | "float32" => Self::F32,
            _ => return None,
        })
    }
}

/// How to read a raw file.
#[derive(Clone, Debug, PartialEq)]
pub struct RawSpec {
    pub dims: [usize; 3],
    pub dtype: RawType,
    pub spacing_mm: [f64; 3],
    /// Bytes to skip before the voxels (a header this reader does not interpret).
    pub offset: u64,
}

impl RawSpec {
    pub fn new(dims: [usize; 3], dtype: RawType) -> Self {
        Self {
            dims,
            dtype,
            spacing_mm: [1.0; 3],
            offset: 0,
        }
    }

    /// Parses `XxYxZ:dtype[:SXxSYxSZ]`, e.g. `64x64x32:i16:0.5x0.5x2`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut parts = s.split(':');
        fn triple(t: &str) -> Option<Vec<&str>> {
            let v: Vec<&str> = t.split(['x', 'X']).collect();
            (v.len() == 3).then_some(v)
        }
        let dims_text = parts.next().unwrap_or_default();
        let dims = triple(dims_text)
            .and_then(|v| {
                v.iter()
                    .map(|d| d.trim().parse::<usize>().ok().filter(|&d| d > 0))
                    .collect::<Option<Vec<_>>>()
            })
            .ok_or_else(|| format!("'{dims_text}' is not XxYxZ with positive sizes"))?;
        let dtype_text = parts
            .next()
            .ok_or_else(|| "no voxel type (XxYxZ:dtype, dtype u8, u16, i16 or f32)".to_string())?;
        let dtype = RawType::from_name(dtype_text).ok_or_else(|| format!("voxel type '{dtype_text}' (u8, u16, i16 or f32)"))?;
        let mut spec = Self::new([dims[0], dims[1], dims[2]], dtype);
        if let Some(sp) = parts.next() {
            let v = triple(sp)
                .and_then(|v| {
                    v.iter()
                        .map(|d| d.trim().parse::<f64>().ok().filter(|s| s.is_finite() && *s > 0.0))
                        .collect::<Option<Vec<_>>>()
                })
                .ok_or_else(|| format!("spacing '{sp}' is not SXxSYxSZ with positive sizes in mm"))?;
            spec.spacing_mm = [v[0], v[1], v[2]];
        }
        if parts.next().is_some() {
            return Err(format!("'{s}' has more than XxYxZ:dtype:spacing"));
        }
        Ok(spec)
    }
}

/// Loads a raw volume.
pub fn load_raw(path: &Path, spec: &RawSpec) -> Result<Volume, DataError> {
    check_spacing(path, spec)?;
    let size = spec.dtype.size();
    let (count, nbytes) = checked_size(path, &spec.dims, size)?;
    let mut file = std::fs::File::open(path).map_err(|e| io_err(path, e))?;
    let len = file.metadata().map_err(|e| io_err(path, e))?.len();
    let expected = spec.offset.saturating_add(nbytes as u64);
    if len != expected {
        return Err(size_mismatch(path, spec, len, expected));
    }
    skip_bytes(path, &mut file, spec.offset, "header")?;
    let raw = read_exact_bounded(path, file, nbytes, "voxels")?;
    Ok(volume(spec, count, &raw))
}

/// Parses a raw volume already in memory (`path` only names it in errors): `bytes` must hold
/// exactly `spec.offset + voxels * size` bytes, as the file for [`load_raw`] must.
pub fn parse_raw(path: &Path, bytes: &[u8], spec: &RawSpec) -> Result<Volume, DataError> {
    check_spacing(path, spec)?;
    let (count, nbytes) = checked_size(path, &spec.dims, spec.dtype.size())?;
    let expected = spec.offset.saturating_add(nbytes as u64);
    if bytes.len() as u64 != expected {
        return Err(size_mismatch(path, spec, bytes.len() as u64, expected));
    }
    // offset + nbytes == bytes.len(), so both are in range.
    let raw = bytes
        .get(bytes.len() - nbytes..)
        .ok_or_else(|| corrupt(path, "voxels out of range"))?;
    Ok(volume(spec, count, raw))
}

fn check_spacing(path: &Path, spec: &RawSpec) -> Result<(), DataError> {
    if spec.spacing_mm.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
        return Err(DataError::BadSample {
            path: path.to_path_buf(),
            what: format!("spacing {:?} is not positive", spec.spacing_mm),
        });
    }
    Ok(())
}

fn size_mismatch(path: &Path, spec: &RawSpec, len: u64, expected: u64) -> DataError {
    corrupt(
        path,
        format!(
            "{len} bytes, but {:?} voxels of {:?} after {} header bytes need {expected}",
            spec.dims, spec.dtype, spec.offset
        ),
    )
}

/// Decodes `raw` (exactly `count` voxels of `spec.dtype`).
fn volume(spec: &RawSpec, count: usize, raw: &[u8]) -> Volume {
    let mut data = Vec::with_capacity(count);
    match spec.dtype {
        RawType::U8 => data.extend(raw.iter().map(|&b| f32::from(b))),
        RawType::U16 => data.extend(raw.chunks_exact(2).map(|c| f32::from(u16::from_le_bytes([c[0], c[1]])))),
        RawType::I16 => data.extend(raw.chunks_exact(2).map(|c| f32::from(i16::from_le_bytes([c[0], c[1]])))),
        RawType::F32 => data.extend(raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))),
    }
    Volume {
        dims: spec.dims,
        spacing_mm: spec.spacing_mm,
        data,
    }
}
