//! Scan loaders: NIfTI-1 (`.nii`, `.nii.gz`, `.hdr`/`.img` pairs), DICOM (single files,
//! multi-frame files and directories as a series), raw little-endian volumes, MedMNIST `.npz`
//! datasets (and single samples as `file.npz#split:index`), with one
//! in-memory volume type and one error type.
//!
//! Every reader checks each declared size against the bytes actually present (or against
//! [`MAX_ARRAY_BYTES`] when the size is only known after decompression) *before* allocating,
//! grows buffers only as real data arrives, and returns a [`DataError`] for malformed input:
//! a loader never panics on a file's contents.
//!
//! Size limits of one load ([`Limits`], defaults below), chosen so that a small hostile file
//! cannot make a load use much more than ~1.5 GiB:
//! - [`MAX_INFLATED_BYTES`] (512 MiB): bytes one load may *decompress* (gzip NIfTI, deflated
//!   DICOM data sets, `.npz` members), summed over every stream and file of the load and
//!   enforced while inflating ([`DataError::DecompressionLimit`]). A 1 MB deflate bomb
//!   expands ~1000x; without this budget it could inflate to gigabytes.
//! - [`MAX_VOXELS`] (2^28): voxels of one volume, so its `f32` data is at most 1 GiB. A
//!   512 x 512 x 1000 CT (2.6e8 voxels) still fits.
//! - [`MAX_ARRAY_BYTES`] (1 GiB): stored bytes of one array; uncompressed files must actually
//!   hold them (their length is checked first), so this bounds memory, not amplification.
//! - [`MAX_DATASET_VOXELS`] (2^29): voxels of a whole `.npz` dataset (2 GiB of `f32`, the most a
//!   `u8` dataset within the inflate budget can decode to).
//!
//! Voxel order everywhere: `data[x + dims[0] * (y + dims[1] * z)]`, x fastest. Each format
//! section documents how its own axes map to x, y, z.
//!
//! Orientation: NIfTI and DICOM volumes are brought to one canonical orientation, RAS+ (x
//! toward the subject's right, y anterior, z superior), by axis permutation and flips only, as
//! nibabel's `as_closest_canonical` does ([`orientation`]). `spacing_mm` follows the permuted
//! axes. Raw volumes, `.npz` samples and phantoms carry no orientation and keep their axes.

pub mod dicom;
pub mod nifti;
pub mod npz;
pub mod orientation;
pub mod raw;

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

/// A 3D volume: `data[x + dims[0] * (y + dims[1] * z)]`, x fastest, spacing in mm.
///
/// Volumes from NIfTI and DICOM are in RAS+ orientation ([`orientation`]): axis 0 increases
/// toward the subject's right, axis 1 toward anterior, axis 2 toward superior, and
/// `spacing_mm[k]` is the voxel size along axis `k` after that reorientation.
#[derive(Clone, Debug, PartialEq)]
pub struct Volume {
    pub dims: [usize; 3],
    pub spacing_mm: [f64; 3],
    pub data: Vec<f32>,
}

impl Volume {
    /// Borrowed view for `clifhe_core::multivector::features::scan_features`.
    pub fn view(
        &self,
    ) -> Result<clifhe_core::multivector::features::VolumeView<'_, f32>, clifhe_core::multivector::features::FeatureError> {
        clifhe_core::multivector::features::VolumeView::new(&self.data, self.dims, self.spacing_mm)
    }

    /// Number of voxels the dimensions declare (saturating, so a hostile value cannot wrap).
    pub fn voxel_count(&self) -> usize {
        self.dims.iter().fold(1usize, |a, &d| a.saturating_mul(d))
    }

    /// Voxel (x, y, z), or None outside the volume.
    pub fn get(&self, x: usize, y: usize, z: usize) -> Option<f32> {
        if x >= self.dims[0] || y >= self.dims[1] || z >= self.dims[2] {
            return None;
        }
        self.data.get(x + self.dims[0] * (y + self.dims[1] * z)).copied()
    }
}

/// Why a file could not be loaded. Every variant names the file; `what` says what is wrong.
#[derive(Debug)]
#[non_exhaustive]
pub enum DataError {
    /// The file or directory could not be opened or read.
    Io { path: PathBuf, source: std::io::Error },
    /// A valid file of a kind (or variant: datatype, transfer syntax, ...) this crate does not read.
    UnsupportedFormat { path: PathBuf, what: String },
    /// The bytes contradict themselves or the format (truncated, bad magic, bad header value).
    Corrupt { path: PathBuf, what: String },
    /// The file declares more data than the readers accept ([`MAX_ARRAY_BYTES`]).
    TooLarge { path: PathBuf, bytes: u64 },
    /// A dataset archive lacks a required array.
    MissingKey { path: PathBuf, key: String },
    /// A sample or loader spec (`file.npz#split:index`, `file.raw#XxYxZ:dtype`) that does not
    /// name anything in the file.
    BadSample { path: PathBuf, what: String },
    /// Files that should form one volume disagree (a DICOM series with mixed sizes, duplicate
    /// or unevenly spaced slices).
    Inconsistent { path: PathBuf, what: String },
    /// Decompression produced more than `limit` bytes: more than the load's budget
    /// ([`Limits::max_inflated_bytes`]), or more than the array being read declares. Stopped
    /// while inflating (a decompression bomb, or a corrupt size field).
    DecompressionLimit { path: PathBuf, limit: u64 },
}

impl DataError {
    /// The file (or directory) the error is about.
    pub fn path(&self) -> &Path {
        match self {
            Self::Io { path, .. }
            | Self::UnsupportedFormat { path, .. }
            | Self::Corrupt { path, .. }
            | Self::TooLarge { path, .. }
            | Self::MissingKey { path, .. }
            | Self::BadSample { path, .. }
            | Self::Inconsistent { path, .. }
            | Self::DecompressionLimit { path, .. } => path,
        }
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Self::UnsupportedFormat { path, what } => write!(f, "{}: unsupported format: {what}", path.display()),
            Self::Corrupt { path, what } => write!(f, "{}: corrupt file: {what}", path.display()),
            Self::TooLarge { path, bytes } => {
                write!(
                    f,
                    "{}: declares {bytes} bytes, more than the readers accept ({MAX_ARRAY_BYTES})",
                    path.display()
                )
            }
            Self::MissingKey { path, key } => write!(f, "{}: no array named {key}", path.display()),
            Self::BadSample { path, what } => write!(f, "{}: {what}", path.display()),
            Self::Inconsistent { path, what } => write!(f, "{}: inconsistent series: {what}", path.display()),
            Self::DecompressionLimit { path, limit } => write!(
                f,
                "{}: decompressed data exceeds the limit of {limit} bytes (a decompression bomb or a corrupt size)",
                path.display()
            ),
        }
    }
}

impl std::error::Error for DataError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Largest array the readers accept as stored (1 GiB); see the module docs.
pub const MAX_ARRAY_BYTES: u64 = 1 << 30;

/// Largest voxel count of one loaded volume: its `f32` data is at most 1 GiB.
pub const MAX_VOXELS: u64 = (1 << 30) / 4;

/// Largest number of bytes one load may decompress (512 MiB), over all its streams and files.
pub const MAX_INFLATED_BYTES: u64 = 512 << 20;

/// Largest voxel count of a whole `.npz` dataset (2 GiB of `f32`).
pub const MAX_DATASET_VOXELS: u64 = 512 << 20;

/// Size limits of one load. [`Limits::DEFAULT`] is what every loader without `_with` in its
/// name uses; tests lower them to exercise the limits with small inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Bytes the load may decompress, summed over every compressed stream it reads.
    pub max_inflated_bytes: u64,
    /// Voxels of one volume.
    pub max_voxels: u64,
}

impl Limits {
    /// [`MAX_INFLATED_BYTES`] and [`MAX_VOXELS`].
    pub const DEFAULT: Self = Self {
        max_inflated_bytes: MAX_INFLATED_BYTES,
        max_voxels: MAX_VOXELS,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The decompression allowance of one load, shared by every stream it opens (a NIfTI pair's two
/// files, a DICOM series' files, an archive's members).
#[derive(Clone, Debug)]
pub(crate) struct InflateBudget {
    left: std::rc::Rc<std::cell::Cell<u64>>,
    limit: u64,
}

impl InflateBudget {
    pub(crate) fn new(limit: u64) -> Self {
        Self {
            left: std::rc::Rc::new(std::cell::Cell::new(limit)),
            limit,
        }
    }

    /// `inner` (a decompressor's output) counted against this budget.
    pub(crate) fn reader<R: Read>(&self, inner: R) -> Budgeted<R> {
        Budgeted {
            inner,
            left: self.left.clone(),
            limit: self.limit,
        }
    }
}

/// A reader that fails with [`LimitExceeded`] once more than its limit has come through. Like
/// `Read::take`, it never asks the inner reader for more than one byte beyond the limit, so the
/// decompressor stops there; unlike `take`, running into the limit is an error, not an end of
/// stream that a caller could mistake for a short file.
pub(crate) struct Budgeted<R> {
    inner: R,
    left: std::rc::Rc<std::cell::Cell<u64>>,
    limit: u64,
}

impl<R: Read> Read for Budgeted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.left.get();
        let want = usize::try_from(left.saturating_add(1)).map_or(buf.len(), |w| w.min(buf.len()));
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > left {
            self.left.set(0);
            return Err(std::io::Error::other(LimitExceeded(self.limit)));
        }
        self.left.set(left - n as u64);
        Ok(n)
    }
}

/// The I/O error a [`Budgeted`] reader (or a per-array check) raises; [`read_error`] turns it
/// into [`DataError::DecompressionLimit`].
#[derive(Debug)]
pub(crate) struct LimitExceeded(pub(crate) u64);

impl fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "decompressed data exceeds {} bytes", self.0)
    }
}

impl std::error::Error for LimitExceeded {}

/// A read error as a [`DataError`]: [`DataError::DecompressionLimit`] when a budget ran out,
/// otherwise [`DataError::Corrupt`] naming `what` was being read.
pub(crate) fn read_error(path: &Path, what: &str, e: std::io::Error) -> DataError {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<LimitExceeded>()) {
        Some(LimitExceeded(limit)) => DataError::DecompressionLimit {
            path: path.to_path_buf(),
            limit: *limit,
        },
        None => corrupt(path, format!("{what}: {e}")),
    }
}

pub(crate) fn io_err(path: &Path, source: std::io::Error) -> DataError {
    DataError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn corrupt(path: &Path, what: impl Into<String>) -> DataError {
    DataError::Corrupt {
        path: path.to_path_buf(),
        what: what.into(),
    }
}

pub(crate) fn unsupported(path: &Path, what: impl Into<String>) -> DataError {
    DataError::UnsupportedFormat {
        path: path.to_path_buf(),
        what: what.into(),
    }
}

/// Product of `dims` times `item_bytes`, refusing overflow and anything above the caps (both
/// the stored byte count and the decoded `f32` voxel count). Returns (voxels, bytes).
pub(crate) fn checked_size(path: &Path, dims: &[usize], item_bytes: usize) -> Result<(usize, usize), DataError> {
    checked_size_limited(path, dims, item_bytes, MAX_VOXELS)
}

/// [`checked_size`] with a voxel cap of `max_voxels` (at most [`MAX_VOXELS`] is meaningful).
pub(crate) fn checked_size_limited(path: &Path, dims: &[usize], item_bytes: usize, max_voxels: u64) -> Result<(usize, usize), DataError> {
    let too_large = |bytes: u64| DataError::TooLarge {
        path: path.to_path_buf(),
        bytes,
    };
    let count = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| too_large(u64::MAX))?;
    let bytes = count.checked_mul(item_bytes).ok_or_else(|| too_large(u64::MAX))?;
    if bytes as u64 > MAX_ARRAY_BYTES || count as u64 > max_voxels {
        return Err(too_large((bytes as u64).max((count as u64).saturating_mul(4))));
    }
    Ok((count, bytes))
}

/// Reads exactly `n` bytes. The buffer starts at most 16 MiB and grows only as data arrives, so
/// a header that lies about its size (or a decompression bomb cut off by `take`) costs memory
/// in proportion to the bytes really present, never to the declared size.
pub(crate) fn read_exact_bounded<R: Read>(path: &Path, r: R, n: usize, what: &str) -> Result<Vec<u8>, DataError> {
    let mut buf = Vec::with_capacity(n.min(16 << 20));
    r.take(n as u64).read_to_end(&mut buf).map_err(|e| read_error(path, what, e))?;
    if buf.len() != n {
        return Err(corrupt(path, format!("{what}: {} bytes present, {n} declared", buf.len())));
    }
    Ok(buf)
}

/// Discards exactly `n` bytes of a stream without buffering them.
pub(crate) fn skip_bytes<R: Read>(path: &Path, r: &mut R, n: u64, what: &str) -> Result<(), DataError> {
    let copied = std::io::copy(&mut r.take(n), &mut std::io::sink()).map_err(|e| read_error(path, what, e))?;
    if copied != n {
        return Err(corrupt(path, format!("{what}: file ends {} bytes early", n - copied)));
    }
    Ok(())
}

/// Which reader a path needs, from its name and (when the name says nothing) its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Nifti,
    NiftiPair,
    Dicom,
    DicomDir,
    Npz,
    Raw,
}

fn kind_by_name(path: &Path) -> Option<Kind> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_ascii_lowercase();
    let ends = |s: &str| name.ends_with(s);
    if ends(".nii") || ends(".nii.gz") {
        Some(Kind::Nifti)
    } else if ends(".hdr") || ends(".img") || ends(".hdr.gz") || ends(".img.gz") {
        Some(Kind::NiftiPair)
    } else if ends(".dcm") || ends(".dicom") || ends(".ima") {
        Some(Kind::Dicom)
    } else if ends(".npz") {
        Some(Kind::Npz)
    } else if ends(".raw") || ends(".bin") {
        Some(Kind::Raw)
    } else {
        None
    }
}

fn kind_by_magic(path: &Path) -> Result<Option<Kind>, DataError> {
    let mut head = Vec::with_capacity(352);
    std::fs::File::open(path)
        .and_then(|f| f.take(352).read_to_end(&mut head))
        .map_err(|e| io_err(path, e))?;
    if head.get(128..132) == Some(b"DICM") {
        return Ok(Some(Kind::Dicom));
    }
    if head.starts_with(b"PK\x03\x04") {
        return Ok(Some(Kind::Npz));
    }
    if head.starts_with(&[0x1f, 0x8b]) {
        // gzip: the only gzipped format read here is NIfTI.
        return Ok(Some(Kind::Nifti));
    }
    if head.get(344..348) == Some(b"n+1\0") {
        return Ok(Some(Kind::Nifti));
    }
    if dicom::looks_like_bare_dataset(&head) {
        return Ok(Some(Kind::Dicom));
    }
    Ok(None)
}

/// Loads one volume.
///
/// - a directory: a DICOM series ([`dicom::load_dicom_series`]);
/// - `.nii`, `.nii.gz`: NIfTI-1; `.hdr`/`.img`: NIfTI-1 pair;
/// - `.dcm` (or any file with the DICOM preamble): DICOM, all frames of a multi-frame file;
/// - `file.npz#split:index`: one MedMNIST sample (`file.npz#test:5`); a bare `.npz` is an error
///   that points to this syntax or to [`npz::load_medmnist_npz`];
/// - `file.raw#XxYxZ:dtype[:SXxSYxSZ]`: a raw little-endian volume (`vol.raw#64x64x32:i16:0.5x0.5x2`,
///   dtype u8, u16, i16 or f32, spacing 1 mm when left out);
/// - `raw:<path>:XxYxZ:dtype[:SXxSYxSZ]`: the same raw volume, path first
///   (`raw:vol.bin:64x64x32:u16`);
/// - anything else: sniffed by magic bytes (DICOM preamble, NIfTI magic, gzip).
///
/// A path that exists is taken literally even if it contains `#`.
pub fn load_volume(spec: impl AsRef<Path>) -> Result<Volume, DataError> {
    load_volume_with(spec, &Limits::DEFAULT)
}

/// [`load_volume`] under `limits` (NIfTI, DICOM and `.npz` samples; a raw volume is uncompressed
/// and capped by its file's length).
pub fn load_volume_with(spec: impl AsRef<Path>, limits: &Limits) -> Result<Volume, DataError> {
    let spec = spec.as_ref();
    if !spec.exists() {
        if let Some(rest) = spec.to_str().and_then(|s| s.strip_prefix("raw:")) {
            // raw:<path>:XxYxZ:dtype[:spacing]; the path itself may contain ':'.
            let parsed = [3, 4].iter().find_map(|&k| {
                let mut parts: Vec<&str> = rest.rsplitn(k, ':').collect();
                let file = parts.pop().filter(|f| !f.is_empty() && parts.len() + 1 == k)?;
                parts.reverse();
                raw::RawSpec::parse(&parts.join(":")).ok().map(|r| (file, r))
            });
            let Some((file, raw_spec)) = parsed else {
                return Err(DataError::BadSample {
                    path: PathBuf::from(rest),
                    what: "expected raw:<path>:XxYxZ:dtype[:SXxSYxSZ] (e.g. raw:vol.bin:64x64x32:u16)".into(),
                });
            };
            return raw::load_raw(Path::new(file), &raw_spec);
        }
        if let Some((file, fragment)) = spec.to_str().and_then(|s| s.rsplit_once('#')) {
            let path = Path::new(file);
            return match kind_by_name(path) {
                Some(Kind::Npz) => {
                    let (split, index) = parse_sample(path, fragment)?;
                    npz::load_medmnist_sample_with(path, split, index, limits).map(|(v, _)| v)
                }
                Some(Kind::Raw) => {
                    let raw_spec = raw::RawSpec::parse(fragment).map_err(|what| DataError::BadSample {
                        path: path.to_path_buf(),
                        what,
                    })?;
                    raw::load_raw(path, &raw_spec)
                }
                _ => Err(DataError::BadSample {
                    path: path.to_path_buf(),
                    what: format!("'#{fragment}' selects a sample only in .npz (#split:index) and .raw (#XxYxZ:dtype) files"),
                }),
            };
        }
    }
    let meta = std::fs::metadata(spec).map_err(|e| io_err(spec, e))?;
    let kind = if meta.is_dir() {
        Some(Kind::DicomDir)
    } else {
        kind_by_name(spec).map_or_else(|| kind_by_magic(spec), |k| Ok(Some(k)))?
    };
    match kind {
        Some(Kind::Nifti | Kind::NiftiPair) => nifti::load_nifti_with(spec, limits),
        Some(Kind::Dicom) => dicom::load_dicom_with(spec, limits),
        Some(Kind::DicomDir) => dicom::load_dicom_series_with(spec, limits),
        Some(Kind::Npz) => Err(DataError::BadSample {
            path: spec.to_path_buf(),
            what: "a dataset file: name one sample as file.npz#split:index (e.g. #test:0), or load the splits with npz::load_medmnist_npz"
                .into(),
        }),
        Some(Kind::Raw) => Err(DataError::BadSample {
            path: spec.to_path_buf(),
            what: "a raw volume has no header: give its size as file.raw#XxYxZ:dtype (e.g. #64x64x32:u16)".into(),
        }),
        None => Err(unsupported(
            spec,
            "not NIfTI-1, DICOM, MedMNIST .npz or raw (by name and by magic bytes)",
        )),
    }
}

fn parse_sample<'a>(path: &Path, fragment: &'a str) -> Result<(&'a str, usize), DataError> {
    let bad = |what: String| DataError::BadSample {
        path: path.to_path_buf(),
        what,
    };
    let (split, index) = fragment
        .split_once(':')
        .ok_or_else(|| bad(format!("sample '{fragment}' is not of the form split:index")))?;
    let index = index.parse().map_err(|_| bad(format!("'{index}' is not an index")))?;
    Ok((split, index))
}
