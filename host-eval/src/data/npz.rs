//! MedMNIST-style `.npz` datasets: a zip archive (stored or deflate) of NumPy `.npy` arrays.
//!
//! NPY format (numpy/lib/format.py): magic `\x93NUMPY`, version byte (1.0: u16 LE header
//! length; 2.0 and 3.0: u32 LE, 3.0 only allows UTF-8 in the header), a Python-literal header
//! dict with `descr`, `fortran_order` and `shape`, then the raw array. We accept C-order arrays
//! of `b1`/`u1`/`i1`/`u2`/`i2`/`u4`/`i4`/`u8`/`i8`/`f4`/`f8` in either byte order (`=` is taken as
//! little-endian, the byte order of every host this runs on). Fortran order and other dtypes are
//! [`DataError::UnsupportedFormat`]. The header is parsed as a dict, not searched for keys, and
//! limited to 1 MiB (numpy itself refuses headers above 10 kB by default).
//!
//! Sizes: the array's byte count (checked for overflow and against [`MAX_ARRAY_BYTES`]) must fit
//! in the zip entry's declared size before any buffer is allocated, and buffers only grow as
//! decompressed bytes arrive. Decompression is capped twice, while it happens: per array, at
//! most the header, the bytes its shape declares and [`NPY_TRAILING_SLACK`] more are inflated
//! (the zip reader itself would inflate a member past its declared size); per load, all
//! members together inflate at most [`Limits::max_inflated_bytes`]. Beyond either,
//! [`DataError::DecompressionLimit`].
//!
//! Axis convention: a 3D image array of shape (n, d0, d1, d2) in C order has the *last* axis
//! fastest, so x = d2, y = d1, z = d0 and `Volume::dims == [d2, d1, d0]`; sample i's voxels are
//! the i-th contiguous block, copied unchanged. MedMNIST 3D volumes are 28^3 (or 64^3) crops
//! resampled to a cube without recorded physical spacing, so 1 mm isotropic is assumed (the
//! scan features are normalised, so only the aspect ratio would matter, and it is 1).

use super::{
    checked_size, corrupt, io_err, read_error, read_exact_bounded, skip_bytes, unsupported, Budgeted, DataError, InflateBudget,
    LimitExceeded, Limits, Volume, MAX_DATASET_VOXELS,
};
use std::io::{Read, Seek};
use std::path::Path;

/// Largest `.npy` header accepted.
const MAX_HEADER: usize = 1 << 20;

/// Bytes a member may hold after its array (numpy writes none; a little slack for other
/// writers). Reading them lets the zip reader check the member's CRC-32; more than this is
/// refused instead of inflated.
pub const NPY_TRAILING_SLACK: u64 = 4096;

/// The spacing assumed for MedMNIST volumes (unknown physical spacing).
pub const MEDMNIST_SPACING_MM: [f64; 3] = [1.0; 3];

/// A decoded array (values as f64, shape in C order).
#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

/// Element type of an `.npy` array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NpyDtype {
    Bool,
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    U64,
    I64,
    F32,
    F64,
}

impl NpyDtype {
    pub fn size(self) -> usize {
        match self {
            Self::Bool | Self::U8 | Self::I8 => 1,
            Self::U16 | Self::I16 => 2,
            Self::U32 | Self::I32 | Self::F32 => 4,
            Self::U64 | Self::I64 | Self::F64 => 8,
        }
    }
}

/// A parsed `.npy` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NpyHeader {
    pub dtype: NpyDtype,
    pub big_endian: bool,
    pub shape: Vec<usize>,
    /// Offset of the first data byte (magic + length field + header text).
    pub data_offset: usize,
    /// Number of elements (product of `shape`, overflow-checked).
    pub count: usize,
    /// Number of data bytes (`count * dtype.size()`, capped).
    pub nbytes: usize,
}

/// One split: images (n volumes of `dims` voxels, x fastest, stored back to back as f32) and
/// integer labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    pub dims: [usize; 3],
    pub images: Vec<f32>,
    pub labels: Vec<u32>,
}

impl Split {
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    /// Voxels per sample.
    pub fn voxels_per_sample(&self) -> usize {
        self.dims.iter().product()
    }
    /// Sample i's voxels, borrowed (None past the end).
    pub fn voxels(&self, i: usize) -> Option<&[f32]> {
        let per = self.voxels_per_sample();
        let start = i.checked_mul(per)?;
        self.images.get(start..start.checked_add(per)?)
    }
    /// Sample i as a volume (None past the end).
    pub fn volume(&self, i: usize) -> Option<Volume> {
        Some(Volume {
            dims: self.dims,
            spacing_mm: MEDMNIST_SPACING_MM,
            data: self.voxels(i)?.to_vec(),
        })
    }
    /// Sample i as (volume, label).
    pub fn sample(&self, i: usize) -> Option<(Volume, u32)> {
        Some((self.volume(i)?, *self.labels.get(i)?))
    }
    /// Number of samples with each label, indexed by label.
    pub fn label_counts(&self) -> Vec<usize> {
        let mut counts = Vec::new();
        for &l in &self.labels {
            let l = l as usize;
            if counts.len() <= l {
                counts.resize(l + 1, 0);
            }
            counts[l] += 1;
        }
        counts
    }
}

/// The three official splits.
#[derive(Clone, Debug, PartialEq)]
pub struct MedMnistDataset {
    pub train: Split,
    pub val: Split,
    pub test: Split,
}

impl MedMnistDataset {
    /// A split by name (`train`, `val`, `test`).
    pub fn split(&self, name: &str) -> Option<&Split> {
        match name {
            "train" => Some(&self.train),
            "val" => Some(&self.val),
            "test" => Some(&self.test),
            _ => None,
        }
    }
}

/// A tiny parser for the Python literal dict of an `.npy` header: string keys; values are
/// strings, `True`/`False`, or tuples of non-negative integers (with Python 2's `L` suffix).
#[derive(Debug, PartialEq)]
enum PyValue {
    Str(String),
    Bool(bool),
    Tuple(Vec<usize>),
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn string(&mut self) -> Option<String> {
        self.ws();
        let q = *self.s.get(self.i)?;
        if q != b'\'' && q != b'"' {
            return None;
        }
        let start = self.i + 1;
        let len = self.s.get(start..)?.iter().position(|&c| c == q)?;
        self.i = start + len + 1;
        String::from_utf8(self.s.get(start..start + len)?.to_vec()).ok()
    }
    fn word(&mut self) -> &[u8] {
        self.ws();
        let start = self.i;
        while self.s.get(self.i).is_some_and(|c| c.is_ascii_alphanumeric()) {
            self.i += 1;
        }
        &self.s[start..self.i]
    }
    fn value(&mut self) -> Option<PyValue> {
        self.ws();
        match self.s.get(self.i)? {
            b'\'' | b'"' => self.string().map(PyValue::Str),
            b'(' => {
                self.i += 1;
                let mut dims = Vec::new();
                loop {
                    if self.eat(b')') {
                        return Some(PyValue::Tuple(dims));
                    }
                    let w = self.word();
                    let w = w.strip_suffix(b"L").unwrap_or(w);
                    dims.push(std::str::from_utf8(w).ok()?.parse().ok()?);
                    if !self.eat(b',') {
                        return self.eat(b')').then_some(PyValue::Tuple(dims));
                    }
                }
            }
            _ => match self.word() {
                b"True" => Some(PyValue::Bool(true)),
                b"False" => Some(PyValue::Bool(false)),
                _ => None,
            },
        }
    }
    fn dict(&mut self) -> Option<Vec<(String, PyValue)>> {
        if !self.eat(b'{') {
            return None;
        }
        let mut out = Vec::new();
        loop {
            if self.eat(b'}') {
                return Some(out);
            }
            let key = self.string()?;
            if !self.eat(b':') {
                return None;
            }
            out.push((key, self.value()?));
            if !self.eat(b',') {
                return self.eat(b'}').then_some(out);
            }
        }
    }
}

fn parse_descr(d: &str) -> Option<(NpyDtype, bool)> {
    let (big, rest) = match d.as_bytes().first()? {
        b'<' | b'|' | b'=' => (false, &d[1..]),
        b'>' => (true, &d[1..]),
        _ => (false, d),
    };
    let dtype = match rest {
        "b1" | "?" => NpyDtype::Bool,
        "u1" | "B" => NpyDtype::U8,
        "i1" | "b" => NpyDtype::I8,
        "u2" => NpyDtype::U16,
        "i2" => NpyDtype::I16,
        "u4" => NpyDtype::U32,
        "i4" => NpyDtype::I32,
        "u8" => NpyDtype::U64,
        "i8" => NpyDtype::I64,
        "f4" => NpyDtype::F32,
        "f8" => NpyDtype::F64,
        _ => return None,
    };
    Some((dtype, big))
}

/// Reads and parses an `.npy` header from the start of a stream. `available` is the number of
/// bytes the container says the array has (zip entry size or slice length): the header and the
/// array data must fit in it, checked before anything is allocated for the data.
pub fn read_npy_header<R: Read>(path: &Path, r: &mut R, available: u64) -> Result<NpyHeader, DataError> {
    let mut pre = [0u8; 8];
    r.read_exact(&mut pre)
        .map_err(|_| corrupt(path, "not an .npy array (shorter than its magic)"))?;
    if &pre[..6] != b"\x93NUMPY" {
        return Err(corrupt(path, "not an .npy array (bad magic)"));
    }
    let (header_len, start) = match pre[6] {
        1 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b).map_err(|_| corrupt(path, "truncated .npy header length"))?;
            (u16::from_le_bytes(b) as usize, 10)
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            r.read_exact(&mut b).map_err(|_| corrupt(path, "truncated .npy header length"))?;
            (u32::from_le_bytes(b) as usize, 12)
        }
        v => return Err(unsupported(path, format!("npy version {v}.{}", pre[7]))),
    };
    if header_len > MAX_HEADER || (start + header_len) as u64 > available {
        return Err(corrupt(path, format!(".npy header of {header_len} bytes does not fit")));
    }
    let header = read_exact_bounded(path, r, header_len, ".npy header")?;
    let text = std::str::from_utf8(&header).map_err(|_| corrupt(path, ".npy header is not text"))?;
    let dict = Cursor { s: text.as_bytes(), i: 0 }
        .dict()
        .ok_or_else(|| corrupt(path, format!(".npy header is not a dict: {}", text.trim())))?;
    let get = |k: &str| dict.iter().find(|(key, _)| key == k).map(|(_, v)| v);
    let descr = match get("descr") {
        Some(PyValue::Str(s)) => s.as_str(),
        Some(_) => return Err(unsupported(path, "structured dtypes")),
        None => return Err(corrupt(path, ".npy header has no descr")),
    };
    match get("fortran_order") {
        Some(PyValue::Bool(false)) => {}
        Some(PyValue::Bool(true)) => return Err(unsupported(path, "Fortran-order arrays")),
        _ => return Err(corrupt(path, ".npy header has no fortran_order")),
    }
    let shape = match get("shape") {
        Some(PyValue::Tuple(t)) => t.clone(),
        _ => return Err(corrupt(path, ".npy header has no shape")),
    };
    let (dtype, big_endian) = parse_descr(descr).ok_or_else(|| unsupported(path, format!("dtype {descr}")))?;
    let (count, nbytes) = checked_size(path, &shape, dtype.size())?;
    let data_offset = start + header_len;
    if (nbytes as u64).saturating_add(data_offset as u64) > available {
        return Err(corrupt(
            path,
            format!(
                "array data needs {nbytes} bytes, only {} present",
                available.saturating_sub(data_offset as u64)
            ),
        ));
    }
    Ok(NpyHeader {
        dtype,
        big_endian,
        shape,
        data_offset,
        count,
        nbytes,
    })
}

/// Decodes each element of `bytes` (whole elements of `h.dtype`) and passes it to `out`.
fn decode_each(h: &NpyHeader, bytes: &[u8], mut out: impl FnMut(f64)) {
    let size = h.dtype.size();
    for c in bytes.chunks_exact(size) {
        let mut b = [0u8; 8];
        b[..size].copy_from_slice(c);
        if h.big_endian {
            b[..size].reverse();
        }
        let v = match h.dtype {
            NpyDtype::Bool => f64::from(u8::from(b[0] != 0)),
            NpyDtype::U8 => f64::from(b[0]),
            NpyDtype::I8 => f64::from(b[0] as i8),
            NpyDtype::U16 => f64::from(u16::from_le_bytes([b[0], b[1]])),
            NpyDtype::I16 => f64::from(i16::from_le_bytes([b[0], b[1]])),
            NpyDtype::U32 => f64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            NpyDtype::I32 => f64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            NpyDtype::F32 => f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            NpyDtype::U64 => u64::from_le_bytes(b) as f64,
            NpyDtype::I64 => i64::from_le_bytes(b) as f64,
            NpyDtype::F64 => f64::from_le_bytes(b),
        };
        out(v);
    }
}

fn decode_f32(h: &NpyHeader, bytes: &[u8]) -> Vec<f32> {
    if h.dtype == NpyDtype::U8 {
        return bytes.iter().map(|&b| f32::from(b)).collect();
    }
    let mut v = Vec::with_capacity(bytes.len() / h.dtype.size());
    decode_each(h, bytes, |x| v.push(x as f32));
    v
}

/// Parses a whole `.npy` byte string.
pub fn parse_npy(path: &Path, bytes: &[u8]) -> Result<NpyArray, DataError> {
    let mut r = bytes;
    let h = read_npy_header(path, &mut r, bytes.len() as u64)?;
    let body = bytes
        .get(h.data_offset..h.data_offset + h.nbytes)
        .ok_or_else(|| corrupt(path, "array data truncated"))?;
    let mut data = Vec::with_capacity(h.count);
    decode_each(&h, body, |x| data.push(x));
    Ok(NpyArray { shape: h.shape, data })
}

type Archive<R> = zip::ZipArchive<R>;

fn open(path: &Path) -> Result<Archive<std::fs::File>, DataError> {
    let f = std::fs::File::open(path).map_err(|e| io_err(path, e))?;
    archive(path, f)
}

fn archive<R: Read + Seek>(path: &Path, r: R) -> Result<Archive<R>, DataError> {
    zip::ZipArchive::new(r).map_err(|e| corrupt(path, format!("not a zip archive: {e}")))
}

/// A member's inflated bytes, counted against the load's budget.
type Entry<'a, R> = Budgeted<zip::read::ZipFile<'a, R>>;

/// Opens `key.npy` and parses its header; the returned reader is positioned at the data.
fn open_entry<'a, R: Read + Seek>(
    path: &Path,
    archive: &'a mut Archive<R>,
    key: &str,
    budget: &InflateBudget,
) -> Result<(Entry<'a, R>, NpyHeader), DataError> {
    let name = format!("{key}.npy");
    let entry = match archive.by_name(&name) {
        Ok(e) => e,
        Err(zip::result::ZipError::FileNotFound) => {
            return Err(DataError::MissingKey {
                path: path.to_path_buf(),
                key: key.to_string(),
            })
        }
        Err(e) => return Err(corrupt(path, format!("{name}: {e}"))),
    };
    let available = entry.size();
    let mut entry = budget.reader(entry);
    let header = read_npy_header(path, &mut entry, available).map_err(|e| match e {
        DataError::Corrupt { path, what } => DataError::Corrupt {
            path,
            what: format!("{name}: {what}"),
        },
        other => other,
    })?;
    Ok((entry, header))
}

/// Reads an entry to its end so the zip reader checks its CRC-32: a corrupted deflate stream
/// that still inflates to the right length would otherwise pass as wrong voxels. `rest` is what
/// the array's shape says is left (0 after a whole array; the later samples after one sample);
/// at most [`NPY_TRAILING_SLACK`] bytes more are accepted, so a member that keeps inflating past
/// its array (a deflate bomb behind a small header) is stopped, not drained.
fn finish_entry<R: Read>(path: &Path, entry: &mut R, key: &str, rest: u64) -> Result<(), DataError> {
    let cap = rest.saturating_add(NPY_TRAILING_SLACK);
    let read = std::io::copy(&mut entry.take(cap.saturating_add(1)), &mut std::io::sink()).map_err(|e| read_error(path, key, e))?;
    if read > cap {
        return Err(read_error(path, key, std::io::Error::other(LimitExceeded(cap))));
    }
    Ok(())
}

/// Image geometry of a split: (n, [x, y, z] dims).
fn image_dims(path: &Path, key: &str, h: &NpyHeader) -> Result<(usize, [usize; 3]), DataError> {
    match h.shape.as_slice() {
        [n, d0, d1, d2] => Ok((*n, [*d2, *d1, *d0])),
        // Some 3D datasets carry an explicit channel axis of 1 (n, 1, d0, d1, d2).
        [n, 1, d0, d1, d2] => Ok((*n, [*d2, *d1, *d0])),
        s => Err(corrupt(path, format!("{key} has shape {s:?}, expected (n, d0, d1, d2)"))),
    }
}

fn read_labels<R: Read + Seek>(path: &Path, archive: &mut Archive<R>, split: &str, inflate: &InflateBudget) -> Result<Vec<u32>, DataError> {
    let key = format!("{split}_labels");
    let (mut entry, h) = open_entry(path, archive, &key, inflate)?;
    match h.shape.as_slice() {
        [_] | [_, 1] => {}
        s => {
            return Err(unsupported(
                path,
                format!("{key} has shape {s:?}: only one label per sample (n,) or (n, 1) is read"),
            ))
        }
    }
    let bytes = read_exact_bounded(path, &mut entry, h.nbytes, &key)?;
    finish_entry(path, &mut entry, &key, 0)?;
    let mut labels = Vec::with_capacity(h.count);
    let mut bad = None;
    decode_each(&h, &bytes, |l| {
        if l >= 0.0 && l.fract() == 0.0 && l < f64::from(u32::MAX) {
            labels.push(l as u32);
        } else if bad.is_none() {
            bad = Some(l);
        }
    });
    if let Some(l) = bad {
        return Err(corrupt(path, format!("{key}: label {l} is not a class index")));
    }
    Ok(labels)
}

fn read_split<R: Read + Seek>(
    path: &Path,
    archive: &mut Archive<R>,
    split: &str,
    budget: &mut u64,
    inflate: &InflateBudget,
) -> Result<Split, DataError> {
    let labels = read_labels(path, archive, split, inflate)?;
    let key = format!("{split}_images");
    let (mut entry, h) = open_entry(path, archive, &key, inflate)?;
    let (n, dims) = image_dims(path, &key, &h)?;
    if labels.len() != n {
        return Err(corrupt(path, format!("{split}: {n} images but {} labels", labels.len())));
    }
    // The decoded f32 voxels of all splits together stay under the cap.
    *budget = budget.checked_sub(h.count as u64).ok_or(DataError::TooLarge {
        path: path.to_path_buf(),
        bytes: (h.count as u64).saturating_mul(4),
    })?;
    let bytes = read_exact_bounded(path, &mut entry, h.nbytes, &key)?;
    finish_entry(path, &mut entry, &key, 0)?;
    Ok(Split {
        dims,
        images: decode_f32(&h, &bytes),
        labels,
    })
}

/// Loads the three splits of a MedMNIST 3D `.npz` file (keys `train_images`, `train_labels`,
/// `val_images`, ..., images (n, d0, d1, d2), labels (n, 1) or (n,)).
pub fn load_medmnist_npz(path: &Path) -> Result<MedMnistDataset, DataError> {
    load_medmnist_npz_with(path, &Limits::DEFAULT)
}

/// [`load_medmnist_npz`] under `limits` (its inflate budget covers all six members; the voxel
/// cap of a dataset is [`MAX_DATASET_VOXELS`]).
pub fn load_medmnist_npz_with(path: &Path, limits: &Limits) -> Result<MedMnistDataset, DataError> {
    read_dataset(path, open(path)?, limits)
}

/// [`load_medmnist_npz`] on an archive already in memory (`path` only names it in errors).
pub fn parse_medmnist_npz(path: &Path, bytes: &[u8]) -> Result<MedMnistDataset, DataError> {
    read_dataset(path, archive(path, std::io::Cursor::new(bytes))?, &Limits::DEFAULT)
}

fn read_dataset<R: Read + Seek>(path: &Path, mut archive: Archive<R>, limits: &Limits) -> Result<MedMnistDataset, DataError> {
    let mut budget = MAX_DATASET_VOXELS;
    let inflate = InflateBudget::new(limits.max_inflated_bytes);
    Ok(MedMnistDataset {
        train: read_split(path, &mut archive, "train", &mut budget, &inflate)?,
        val: read_split(path, &mut archive, "val", &mut budget, &inflate)?,
        test: read_split(path, &mut archive, "test", &mut budget, &inflate)?,
    })
}

/// Loads one split of a MedMNIST `.npz` file.
pub fn load_medmnist_split(path: &Path, split: &str) -> Result<Split, DataError> {
    check_split(path, split)?;
    let mut archive = open(path)?;
    let mut budget = MAX_DATASET_VOXELS;
    read_split(
        path,
        &mut archive,
        split,
        &mut budget,
        &InflateBudget::new(Limits::DEFAULT.max_inflated_bytes),
    )
}

fn check_split(path: &Path, split: &str) -> Result<(), DataError> {
    if matches!(split, "train" | "val" | "test") {
        Ok(())
    } else {
        Err(DataError::BadSample {
            path: path.to_path_buf(),
            what: format!("unknown split '{split}' (train, val or test)"),
        })
    }
}

/// Loads one sample (volume, label) of a split. Only that sample's bytes are kept: the images
/// before it are decompressed and discarded as they stream past.
pub fn load_medmnist_sample(path: &Path, split: &str, index: usize) -> Result<(Volume, u32), DataError> {
    load_medmnist_sample_with(path, split, index, &Limits::DEFAULT)
}

/// [`load_medmnist_sample`] under `limits`: everything inflated to reach the sample (labels,
/// the samples before it, the rest of the member for its CRC) counts against the budget.
pub fn load_medmnist_sample_with(path: &Path, split: &str, index: usize, limits: &Limits) -> Result<(Volume, u32), DataError> {
    check_split(path, split)?;
    read_sample(path, open(path)?, split, index, limits)
}

/// [`load_medmnist_sample`] on an archive already in memory (`path` only names it in errors).
pub fn parse_medmnist_sample(path: &Path, bytes: &[u8], split: &str, index: usize) -> Result<(Volume, u32), DataError> {
    check_split(path, split)?;
    read_sample(path, archive(path, std::io::Cursor::new(bytes))?, split, index, &Limits::DEFAULT)
}

fn read_sample<R: Read + Seek>(
    path: &Path,
    mut archive: Archive<R>,
    split: &str,
    index: usize,
    limits: &Limits,
) -> Result<(Volume, u32), DataError> {
    let inflate = InflateBudget::new(limits.max_inflated_bytes);
    let labels = read_labels(path, &mut archive, split, &inflate)?;
    let key = format!("{split}_images");
    let (mut entry, h) = open_entry(path, &mut archive, &key, &inflate)?;
    let (n, dims) = image_dims(path, &key, &h)?;
    if labels.len() != n {
        return Err(corrupt(path, format!("{split}: {n} images but {} labels", labels.len())));
    }
    let label = *labels.get(index).ok_or_else(|| DataError::BadSample {
        path: path.to_path_buf(),
        what: format!("{split} has {n} samples, no index {index}"),
    })?;
    // n > index >= 0 here, so the per-sample size divides the checked total exactly.
    let per_bytes = h.nbytes / n;
    skip_bytes(path, &mut entry, (per_bytes as u64) * (index as u64), &key)?;
    let bytes = read_exact_bounded(path, &mut entry, per_bytes, &key)?;
    // The samples after this one are still in the member: the CRC check inflates them too.
    let after = (per_bytes as u64) * ((n - index - 1) as u64);
    finish_entry(path, &mut entry, &key, after)?;
    Ok((
        Volume {
            dims,
            spacing_mm: MEDMNIST_SPACING_MM,
            data: decode_f32(&h, &bytes),
        },
        label,
    ))
}
