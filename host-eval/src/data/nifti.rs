//! NIfTI-1 volumes: single files (`.nii`, `.nii.gz`, magic `n+1`) and header/image pairs
//! (`.hdr` + `.img`, either gzipped, magic `ni1`), either byte order.
//!
//! Header fields used (NIfTI-1 standard, nifti1.h): sizeof_hdr (348; read in both byte orders,
//! which is how the file's byte order is detected), dim[0..8] at offset 40, datatype at 70,
//! pixdim[1..4] at 80 (voxel spacing), vox_offset at 108, scl_slope / scl_inter at 112 / 116
//! (applied as `v * slope + inter` when the slope is finite and nonzero, as the standard says),
//! xyzt_units at 123 (spatial unit: metres and microns are converted to mm; "unknown" is taken
//! as mm), magic at 344.
//!
//! Axes: NIfTI stores i fastest, then j, then k, which is our x, y, z as is; the voxel-to-world
//! orientation (qform/sform) is not applied, so a volume keeps its stored index order.
//! Dimensions: dim[0] from 1 to 7 is accepted when every dimension beyond the third is 1 (a 3D
//! image saved as 4D with one time point; 1D/2D images become volumes with size-1 axes).
//! Data types: uint8, int8, int16, uint16, int32, uint32, int64, uint64, float32, float64;
//! others (complex, RGB, ...) are [`DataError::UnsupportedFormat`]. Non-positive or non-finite
//! spacings are replaced by 1 mm (some converters leave pixdim unset); negative ones (written
//! by a few tools to signal a flip) are taken by absolute value. A vox_offset of 0 in a single
//! file means "unset" and is read as 352, the first possible data offset.
//! NIfTI-2 (sizeof_hdr 540) and ANALYZE 7.5 (no magic) are refused as unsupported.

use super::{
    checked_size_limited, corrupt, io_err, read_error, read_exact_bounded, skip_bytes, unsupported, DataError, InflateBudget, Limits,
    Volume,
};
use std::io::Read;
use std::path::{Path, PathBuf};

const HEADER: usize = 348;

/// The header fields the reader uses.
#[derive(Clone, Debug, PartialEq)]
pub struct NiftiHeader {
    pub big_endian: bool,
    pub pair: bool,
    pub dims: [usize; 3],
    pub datatype: i16,
    pub spacing_mm: [f64; 3],
    pub vox_offset: u64,
    pub scl_slope: f32,
    pub scl_inter: f32,
}

struct Fields<'a> {
    b: &'a [u8; HEADER],
    big: bool,
}

impl Fields<'_> {
    fn bytes<const K: usize>(&self, at: usize) -> [u8; K] {
        let mut a = [0u8; K];
        // Offsets are constants below 348 - K: in range for the fixed-size header.
        if let Some(src) = self.b.get(at..at + K) {
            a.copy_from_slice(src);
        }
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

/// Parses the 348-byte header.
pub fn parse_header(path: &Path, h: &[u8; HEADER]) -> Result<NiftiHeader, DataError> {
    let first = [h[0], h[1], h[2], h[3]];
    let big = if i32::from_le_bytes(first) == HEADER as i32 {
        false
    } else if i32::from_be_bytes(first) == HEADER as i32 {
        true
    } else if i32::from_le_bytes(first) == 540 || i32::from_be_bytes(first) == 540 {
        return Err(unsupported(path, "NIfTI-2 (sizeof_hdr 540)"));
    } else {
        return Err(unsupported(path, "not a NIfTI-1 file (sizeof_hdr != 348)"));
    };
    let pair = match &h[344..348] {
        b"n+1\0" => false,
        b"ni1\0" => true,
        _ => return Err(unsupported(path, "no NIfTI-1 magic (n+1 or ni1): ANALYZE 7.5 is not read")),
    };
    let r = Fields { b: h, big };
    let ndim = r.i16(40);
    if !(1..=7).contains(&ndim) {
        return Err(corrupt(path, format!("dim[0] is {ndim}")));
    }
    let ndim = ndim as usize;
    let dim = |i: usize| if i <= ndim { r.i16(40 + 2 * i) } else { 1 };
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
    let unit = match h[123] & 0x07 {
        1 => 1000.0, // metres
        3 => 0.001,  // microns
        _ => 1.0,    // millimetres or unknown
    };
    let mut spacing_mm = [1.0f64; 3];
    for (i, s) in spacing_mm.iter_mut().enumerate() {
        let v = f64::from(r.f32(80 + 4 * i)).abs() * unit;
        if v.is_finite() && v > 0.0 {
            *s = v;
        }
    }
    let vox = r.f32(108);
    let vox_offset = if !pair && vox == 0.0 { 352.0 } else { vox };
    if !(vox_offset.is_finite() && (0.0..1.0e12).contains(&vox_offset)) || (!pair && vox_offset < 352.0) {
        return Err(corrupt(path, format!("vox_offset {vox}")));
    }
    Ok(NiftiHeader {
        big_endian: big,
        pair,
        dims,
        datatype: r.i16(70),
        spacing_mm,
        vox_offset: vox_offset as u64,
        scl_slope: r.f32(112),
        scl_inter: r.f32(116),
    })
}

/// Bytes per voxel of a supported datatype.
pub fn bytes_per_voxel(datatype: i16) -> Option<usize> {
    Some(match datatype {
        2 | 256 => 1,
        4 | 512 => 2,
        8 | 16 | 768 => 4,
        64 | 1024 | 1280 => 8,
        _ => return None,
    })
}

fn decode(c: &[u8], datatype: i16, big: bool) -> f64 {
    let mut b = [0u8; 8];
    let n = c.len().min(8);
    b[..n].copy_from_slice(&c[..n]);
    if big {
        b[..n].reverse();
    }
    let [b0, b1, b2, b3, ..] = b;
    match datatype {
        2 => f64::from(b0),
        256 => f64::from(b0 as i8),
        4 => f64::from(i16::from_le_bytes([b0, b1])),
        512 => f64::from(u16::from_le_bytes([b0, b1])),
        8 => f64::from(i32::from_le_bytes([b0, b1, b2, b3])),
        768 => f64::from(u32::from_le_bytes([b0, b1, b2, b3])),
        16 => f64::from(f32::from_le_bytes([b0, b1, b2, b3])),
        1024 => i64::from_le_bytes(b) as f64,
        1280 => u64::from_le_bytes(b) as f64,
        _ => f64::from_le_bytes(b),
    }
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
    let size = bytes_per_voxel(h.datatype).ok_or_else(|| unsupported(&hdr_path, format!("NIfTI datatype {}", h.datatype)))?;
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
    let apply = h.scl_slope.is_finite() && h.scl_slope != 0.0;
    let (slope, inter) = (
        f64::from(h.scl_slope),
        if h.scl_inter.is_finite() { f64::from(h.scl_inter) } else { 0.0 },
    );
    let mut data = Vec::with_capacity(count);
    data.extend(raw.chunks_exact(size).map(|c| {
        let v = decode(c, h.datatype, h.big_endian);
        (if apply { v * slope + inter } else { v }) as f32
    }));
    Ok(Volume {
        dims: h.dims,
        spacing_mm: h.spacing_mm,
        data,
    })
}
