//! NIfTI-1 volumes on the `nifti` crate (nifti-rs): single files (`.nii`, `.nii.gz`, magic
//! `n+1`) and header/image pairs (`.hdr` + `.img`, either gzipped, magic `ni1`), either byte
//! order.
//!
//! nifti-rs parses the 348-byte header (NIfTI-1 standard, nifti1.h; byte order detected from
//! dim[0]) and turns the raw voxels of each datatype and byte order into numbers. This module
//! keeps what the crate cannot bound: gzip is inflated here through the load's budget
//! ([`Limits::max_inflated_bytes`]) and only the declared voxel bytes are read (the crate's
//! own readers would inflate whatever the file holds), the declared size is checked against
//! [`Limits::max_voxels`] and an uncompressed file's length before anything is allocated, and
//! every call into the crate runs under `catch_unwind` (a panic on a malformed header becomes
//! [`DataError::Corrupt`]).
//!
//! Header fields used: sizeof_hdr (348; 540 is NIfTI-2, refused as unsupported), dim[0..8],
//! datatype, pixdim[1..4] (voxel spacing), vox_offset, scl_slope / scl_inter (applied as
//! `v * slope + inter` when the slope is finite and nonzero, as the standard says), xyzt_units
//! (spatial unit: metres and microns are converted to mm; "unknown" is taken as mm), the
//! qform and sform (orientation, below), magic.
//!
//! Dimensions: dim[0] from 1 to 7 is accepted when every dimension beyond the third is 1 (a 3D
//! image saved as 4D with one time point; 1D/2D images become volumes with size-1 axes). A
//! time series (dim[4] > 1, like nibabel's example4d.nii.gz) is refused as unsupported rather
//! than cut to its first volume: one scan is one volume here, and a silently dropped time axis
//! would be a wrong input. Data types: uint8, int8, int16, uint16, int32, uint32, int64,
//! uint64, float32, float64; others (complex, RGB, ...) are [`DataError::UnsupportedFormat`].
//! Non-positive or non-finite spacings are replaced by 1 mm (some converters leave pixdim
//! unset); negative ones are taken by absolute value. A vox_offset of 0 in a single file means
//! "unset" and is read as 352, the first possible data offset. ANALYZE 7.5 (no magic) is
//! refused as unsupported.
//!
//! Orientation (nifti1.h, "METHOD 2" and "METHOD 3"): the voxel-to-world (RAS+) matrix is the
//! sform when sform_code > 0, else the qform (quaternion b, c, d with qfac = sign of pixdim[0])
//! when qform_code > 0, else unknown, and the voxel axes are kept as stored (nibabel would use
//! its ANALYZE default, which flips x; without a transform there is no evidence for either).
//! The volume is then permuted and flipped to the closest RAS+ orientation
//! ([`super::orientation`]), the same array nibabel's `as_closest_canonical` gives.

use super::{
    checked_size_limited, corrupt, io_err, orientation, read_error, read_exact_bounded, skip_bytes, unsupported, DataError, InflateBudget,
    Limits, Volume,
};
use nifti::{InMemNiftiVolume, NiftiHeader, NiftiType};
use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

const HEADER: usize = 348;

/// The header as read by nifti-rs, with what this reader derives from it.
struct Header {
    h: NiftiHeader,
    pair: bool,
    dims: [usize; 3],
    datatype: NiftiType,
    spacing_mm: [f64; 3],
    vox_offset: u64,
}

/// Runs `f` (a call into nifti-rs); a panic becomes [`DataError::Corrupt`].
fn guarded<T>(path: &Path, what: &str, f: impl FnOnce() -> Result<T, DataError>) -> Result<T, DataError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| Err(corrupt(path, format!("{what}: the NIfTI reader panicked"))))
}

fn parse_header(path: &Path, b: &[u8; HEADER]) -> Result<Header, DataError> {
    let first = [b[0], b[1], b[2], b[3]];
    let sizeof = |v: i32| i32::from_le_bytes(first) == v || i32::from_be_bytes(first) == v;
    if sizeof(540) {
        return Err(unsupported(path, "NIfTI-2 (sizeof_hdr 540)"));
    }
    if !sizeof(HEADER as i32) {
        return Err(unsupported(path, "not a NIfTI-1 file (sizeof_hdr != 348)"));
    }
    let pair = match &b[344..348] {
        b"n+1\0" => false,
        b"ni1\0" => true,
        _ => return Err(unsupported(path, "no NIfTI-1 magic (n+1 or ni1): ANALYZE 7.5 is not read")),
    };
    let h = guarded(path, "header", || {
        NiftiHeader::from_reader(&b[..]).map_err(|e| corrupt(path, format!("header: {e}")))
    })?;
    // nifti-rs reads dim[] as u16; the standard's fields are signed (nifti1.h: short dim[8]).
    let ndim = h.dim[0] as i16;
    if !(1..=7).contains(&ndim) {
        return Err(corrupt(path, format!("dim[0] is {ndim}")));
    }
    let ndim = ndim as usize;
    let dim = |i: usize| if i <= ndim { h.dim[i] as i16 } else { 1 };
    if let Some(extra) = (4..=ndim).find(|&i| dim(i) != 1) {
        return Err(unsupported(
            path,
            format!(
                "{ndim}-dimensional image with dim[{extra}] = {} (only 3D volumes are read)",
                dim(extra)
            ),
        ));
    }
    let mut dims = [0usize; 3];
    for (i, d) in dims.iter_mut().enumerate() {
        let v = dim(i + 1);
        if v <= 0 {
            return Err(corrupt(path, format!("dim[{}] is {v}", i + 1)));
        }
        *d = v as usize;
    }
    // The datatypes read (nifti1.h NIFTI_TYPE_* codes).
    let datatype = match h.datatype {
        2 => NiftiType::Uint8,
        256 => NiftiType::Int8,
        4 => NiftiType::Int16,
        512 => NiftiType::Uint16,
        8 => NiftiType::Int32,
        768 => NiftiType::Uint32,
        1024 => NiftiType::Int64,
        1280 => NiftiType::Uint64,
        16 => NiftiType::Float32,
        64 => NiftiType::Float64,
        other => return Err(unsupported(path, format!("NIfTI datatype {other}"))),
    };
    let unit = match h.xyzt_units & 0x07 {
        1 => 1000.0, // metres
        3 => 0.001,  // microns
        _ => 1.0,    // millimetres or unknown
    };
    let mut spacing_mm = [1.0f64; 3];
    for (i, s) in spacing_mm.iter_mut().enumerate() {
        let v = f64::from(h.pixdim[i + 1]).abs() * unit;
        if v.is_finite() && v > 0.0 {
            *s = v;
        }
    }
    let vox = h.vox_offset;
    let vox_offset = if !pair && vox == 0.0 { 352.0 } else { vox };
    if !(vox_offset.is_finite() && (0.0..1.0e12).contains(&vox_offset)) || (!pair && vox_offset < 352.0) {
        return Err(corrupt(path, format!("vox_offset {vox}")));
    }
    Ok(Header {
        pair,
        dims,
        datatype,
        spacing_mm,
        vox_offset: vox_offset as u64,
        h,
    })
}

/// The RAS directions of the voxel axes (columns of the upper 3x3 of the voxel-to-world
/// transform): sform, else qform, else None (see the module docs).
fn directions(h: &NiftiHeader) -> Option<[[f64; 3]; 3]> {
    if h.sform_code > 0 {
        let rows = [h.srow_x, h.srow_y, h.srow_z];
        let mut d = [[0.0; 3]; 3];
        for (i, col) in d.iter_mut().enumerate() {
            for (w, v) in col.iter_mut().enumerate() {
                *v = f64::from(rows[w][i]);
            }
        }
        return Some(d);
    }
    if h.qform_code > 0 {
        // nifti1.h: a = sqrt(1 - b^2 - c^2 - d^2) (0 when rounding makes that negative), R from
        // the unit quaternion (a, b, c, d), and the third column times qfac.
        let (b, c, d) = (f64::from(h.quatern_b), f64::from(h.quatern_c), f64::from(h.quatern_d));
        let a = (1.0 - (b * b + c * c + d * d)).max(0.0).sqrt();
        let r = [
            [a * a + b * b - c * c - d * d, 2.0 * (b * c - a * d), 2.0 * (b * d + a * c)],
            [2.0 * (b * c + a * d), a * a + c * c - b * b - d * d, 2.0 * (c * d - a * b)],
            [2.0 * (b * d - a * c), 2.0 * (c * d + a * b), a * a + d * d - c * c - b * b],
        ];
        let qfac = if h.pixdim[0] < 0.0 { -1.0 } else { 1.0 };
        let mut out = [[0.0; 3]; 3];
        for (i, col) in out.iter_mut().enumerate() {
            for (w, v) in col.iter_mut().enumerate() {
                *v = r[w][i] * if i == 2 { qfac } else { 1.0 };
            }
        }
        return Some(out);
    }
    None
}

/// Raw voxel bytes (in the file's byte order) to `f64` through nifti-rs, then `f32` after
/// scl_slope / scl_inter.
fn decode(path: &Path, hd: &Header, raw: Vec<u8>) -> Result<Vec<f32>, DataError> {
    let h = &hd.h;
    let mut raw_dim = [1u16; 8];
    raw_dim[0] = 3;
    for (i, &d) in hd.dims.iter().enumerate() {
        raw_dim[i + 1] = d as u16;
    }
    let apply = h.scl_slope.is_finite() && h.scl_slope != 0.0;
    let (slope, inter) = (
        f64::from(h.scl_slope),
        if h.scl_inter.is_finite() { f64::from(h.scl_inter) } else { 0.0 },
    );
    let scale = move |v: f64| (if apply { v * slope + inter } else { v }) as f32;
    guarded(path, "image data", || {
        let vol = InMemNiftiVolume::from_raw_fields(raw_dim, hd.datatype, h.scl_slope, h.scl_inter, raw, h.endianness)
            .map_err(|e| corrupt(path, format!("image data: {e}")))?;
        let bad = |e: nifti::NiftiError| corrupt(path, format!("image data: {e}"));
        macro_rules! typed {
            ($t:ty) => {
                vol.into_nifti_typed_data::<$t>()
                    .map_err(bad)?
                    .into_iter()
                    .map(|v| scale(v as f64))
                    .collect()
            };
        }
        Ok(match hd.datatype {
            NiftiType::Uint8 => typed!(u8),
            NiftiType::Int8 => typed!(i8),
            NiftiType::Int16 => typed!(i16),
            NiftiType::Uint16 => typed!(u16),
            NiftiType::Int32 => typed!(i32),
            NiftiType::Uint32 => typed!(u32),
            NiftiType::Int64 => typed!(i64),
            NiftiType::Uint64 => typed!(u64),
            NiftiType::Float32 => typed!(f32),
            _ => typed!(f64),
        })
    })
}

fn is_gz(path: &Path) -> bool {
    path.to_string_lossy().to_ascii_lowercase().ends_with(".gz")
}

/// Opens a file, through a gzip decoder when its name ends in `.gz` or it starts with the gzip
/// magic; the decoder's output counts against `budget`. Returns the reader and, for an
/// uncompressed file, its length (known before reading, so it needs no budget).
fn open(path: &Path, budget: &InflateBudget) -> Result<(Box<dyn Read>, Option<u64>), DataError> {
    let mut file = std::fs::File::open(path).map_err(|e| io_err(path, e))?;
    let len = file.metadata().map_err(|e| io_err(path, e))?.len();
    let mut magic = [0u8; 2];
    let n = file.read(&mut magic).map_err(|e| io_err(path, e))?;
    let gz = is_gz(path) || (n == 2 && magic == [0x1f, 0x8b]);
    let reader = std::io::Cursor::new(magic[..n].to_vec()).chain(file);
    Ok(if gz {
        (Box::new(budget.reader(flate2::read::MultiGzDecoder::new(reader))), None)
    } else {
        (Box::new(reader), Some(len))
    })
}

/// The `.img` beside a `.hdr` (or the other way round), gzipped or not, whichever exists.
fn partner(path: &Path, ext: &str) -> Option<PathBuf> {
    let s = path.to_str()?;
    let lower = s.to_ascii_lowercase();
    let stem = lower.strip_suffix(".gz").map_or(s, |_| &s[..s.len() - 3]);
    let stem = &stem[..stem.len().saturating_sub(4)];
    [
        format!("{stem}.{ext}"),
        format!("{stem}.{ext}.gz"),
        format!("{stem}.{}", ext.to_ascii_uppercase()),
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

/// Loads a NIfTI-1 image: a `.nii`/`.nii.gz` file, or a `.hdr`/`.img` pair named by either file.
pub fn load_nifti(path: &Path) -> Result<Volume, DataError> {
    load_nifti_with(path, &Limits::DEFAULT)
}

/// [`load_nifti`] under `limits`: a gzipped file (or pair) may inflate at most
/// `limits.max_inflated_bytes` in all (header, skipped extensions, data and the CRC tail), and
/// the volume may have at most `limits.max_voxels` voxels.
pub fn load_nifti_with(path: &Path, limits: &Limits) -> Result<Volume, DataError> {
    let budget = InflateBudget::new(limits.max_inflated_bytes);
    let lower = path.to_string_lossy().to_ascii_lowercase();
    let stripped = lower.strip_suffix(".gz").unwrap_or(&lower);
    let (hdr_path, img_path) = if stripped.ends_with(".hdr") {
        (path.to_path_buf(), partner(path, "img"))
    } else if stripped.ends_with(".img") {
        (
            partner(path, "hdr")
                .ok_or_else(|| io_err(path, std::io::Error::new(std::io::ErrorKind::NotFound, "no .hdr beside the .img")))?,
            Some(path.to_path_buf()),
        )
    } else {
        (path.to_path_buf(), None)
    };
    let (input, file_len) = open(&hdr_path, &budget)?;
    read_image(
        path,
        stripped.ends_with(".hdr"),
        hdr_path,
        (input, file_len),
        img_path,
        limits,
        &budget,
    )
}

/// Parses a single-file NIfTI-1 image (`.nii`, or `.nii.gz` when `path` ends in `.gz` or the
/// bytes start with the gzip magic) already in memory; `path` only names it in errors. A
/// header of a `.hdr`/`.img` pair (magic `ni1`) is refused: its image lives in another file.
pub fn parse_nifti(path: &Path, bytes: &[u8]) -> Result<Volume, DataError> {
    let limits = Limits::DEFAULT;
    let budget = InflateBudget::new(limits.max_inflated_bytes);
    let gz = is_gz(path) || bytes.starts_with(&[0x1f, 0x8b]);
    let (input, len): (Box<dyn Read + '_>, Option<u64>) = if gz {
        (Box::new(budget.reader(flate2::read::MultiGzDecoder::new(bytes))), None)
    } else {
        (Box::new(bytes), Some(bytes.len() as u64))
    };
    read_image(path, false, path.to_path_buf(), (input, len), None, &limits, &budget)
}

/// Reads the header from `input` (the header file, `file_len` its length when uncompressed) and
/// the voxels from the same stream or, for a pair, from `img_path`. `named_hdr`: `path` names
/// a `.hdr` file (so a pair without its image is a missing file, not a misnamed single file).
fn read_image<'a>(
    path: &Path,
    named_hdr: bool,
    hdr_path: PathBuf,
    (mut input, file_len): (Box<dyn Read + 'a>, Option<u64>),
    img_path: Option<PathBuf>,
    limits: &Limits,
    budget: &InflateBudget,
) -> Result<Volume, DataError> {
    let mut header = [0u8; HEADER];
    input
        .read_exact(&mut header)
        .map_err(|e| read_error(&hdr_path, "header (348 bytes)", e))?;
    let h = parse_header(&hdr_path, &header)?;
    let size = h.datatype.size_of();
    let (count, nbytes) = checked_size_limited(&hdr_path, &h.dims, size, limits.max_voxels)?;
    let (data_path, mut input, file_len, pos) = match (h.pair, img_path) {
        (false, _) => (hdr_path, input, file_len, HEADER as u64),
        (true, Some(img)) => {
            let (input, len) = open(&img, budget)?;
            (img, input, len, 0)
        }
        (true, None) if !named_hdr => {
            return Err(unsupported(
                path,
                "magic ni1 (the header of a .hdr/.img pair) in a single-file image",
            ));
        }
        (true, None) => {
            return Err(io_err(
                path,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no .img beside the .hdr"),
            ))
        }
    };
    // An uncompressed file's length is known: refuse a short one before allocating anything.
    if let Some(len) = file_len {
        if h.vox_offset.saturating_add(nbytes as u64) > len {
            return Err(corrupt(
                &data_path,
                format!("image data needs {nbytes} bytes from offset {}, file has {len}", h.vox_offset),
            ));
        }
    }
    // Extension bytes between the header and vox_offset are skipped without buffering; the data
    // is read with `take`, so a gzip bomb cannot grow the buffer past the declared size.
    skip_bytes(&data_path, &mut input, h.vox_offset.saturating_sub(pos), "bytes before vox_offset")?;
    let raw = read_exact_bounded(&data_path, &mut input, nbytes, "image data")?;
    if file_len.is_none() {
        // Gzip: read on to the end of the stream (at most 64 MiB more, and within the budget) so
        // the decoder checks its CRC-32; a damaged stream that still inflates to the right
        // length is caught here.
        std::io::copy(&mut input.take(64 << 20), &mut std::io::sink()).map_err(|e| read_error(&data_path, "after the image data", e))?;
    }
    let dirs = directions(&h.h);
    let data = decode(&data_path, &h, raw)?;
    if data.len() != count {
        return Err(corrupt(
            &data_path,
            format!("image data: {} voxels decoded, {count} declared", data.len()),
        ));
    }
    let v = Volume {
        dims: h.dims,
        spacing_mm: h.spacing_mm,
        data,
    };
    Ok(orientation::to_canonical(v, dirs))
}
