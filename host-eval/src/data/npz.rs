//! MedMNIST-style `.npz` datasets: a zip archive of NumPy `.npy` arrays.
//!
//! NPY format (numpy/lib/format.py): magic `\x93NUMPY`, version (1.0: u16 header length;
//! 2.0/3.0: u32), a Python-literal header dict with `descr`, `fortran_order` and `shape`, then
//! the raw array. We accept C-order arrays of u1/i1/u2/i2/u4/i4/u8/i8/f4/f8 in either byte
//! order. Axis convention: a 3D image array of shape (n, d0, d1, d2) in C order has the *last*
//! axis fastest, so x = d2, y = d1, z = d0. MedMNIST carries no physical spacing: 1 mm
//! isotropic is assumed (the features are normalised, so only the aspect ratio matters).

use super::{DataError, Volume, MAX_ARRAY_BYTES};
use std::io::Read;
use std::path::Path;

/// A decoded array (values as f64, shape in C order).
#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

/// One split: images (n x d0 x d1 x d2 voxels, u8 in MedMNIST) and integer labels.
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
    /// Sample i as a volume (None past the end).
    pub fn volume(&self, i: usize) -> Option<Volume> {
        let per = self.dims.iter().product::<usize>();
        let data = self.images.get(i * per..(i + 1) * per)?.to_vec();
        Some(Volume { dims: self.dims, spacing_mm: [1.0; 3], data })
    }
}

/// The three official splits.
#[derive(Clone, Debug, PartialEq)]
pub struct MedMnistDataset {
    pub train: Split,
    pub val: Split,
    pub test: Split,
}

fn corrupt(path: &Path, what: impl Into<String>) -> DataError {
    DataError::Corrupt { path: path.to_path_buf(), what: what.into() }
}

/// Parses an `.npy` byte string.
pub fn parse_npy(path: &Path, bytes: &[u8]) -> Result<NpyArray, DataError> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(corrupt(path, "not an .npy array (bad magic)"));
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            let b = bytes.get(8..12).ok_or_else(|| corrupt(path, "truncated header"))?;
            (u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize, 12)
        }
        v => return Err(DataError::UnsupportedFormat { path: path.to_path_buf(), what: format!("npy version {v}") }),
    };
    let header = bytes.get(start..start + header_len).ok_or_else(|| corrupt(path, "truncated header"))?;
    let header = std::str::from_utf8(header).map_err(|_| corrupt(path, "header is not text"))?;
    let descr = dict_value(header, "descr").ok_or_else(|| corrupt(path, "no descr"))?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    let fortran = dict_value(header, "fortran_order").ok_or_else(|| corrupt(path, "no fortran_order"))?;
    if fortran.trim() != "False" {
        return Err(DataError::UnsupportedFormat { path: path.to_path_buf(), what: "Fortran-order arrays".into() });
    }
    let shape_text = dict_value(header, "shape").ok_or_else(|| corrupt(path, "no shape"))?;
    let shape: Vec<usize> = shape_text
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| corrupt(path, format!("bad shape entry '{s}'"))))
        .collect::<Result<_, _>>()?;
    let (little, kind, size) = parse_descr(descr).ok_or_else(|| DataError::UnsupportedFormat { path: path.to_path_buf(), what: format!("dtype {descr}") })?;
    let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or(DataError::TooLarge { path: path.to_path_buf(), bytes: u64::MAX })?;
    let nbytes = count.checked_mul(size).ok_or(DataError::TooLarge { path: path.to_path_buf(), bytes: u64::MAX })?;
    if nbytes as u64 > MAX_ARRAY_BYTES {
        return Err(DataError::TooLarge { path: path.to_path_buf(), bytes: nbytes as u64 });
    }
    let body = &bytes[start + header_len..];
    if body.len() < nbytes {
        return Err(corrupt(path, format!("array data has {} bytes, shape needs {nbytes}", body.len())));
    }
    let data = body[..nbytes].chunks_exact(size).map(|c| decode(c, little, kind)).collect();
    Ok(NpyArray { shape, data })
}

/// Value text of `'key': value` in the header dict (up to the next top-level comma).
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let pat_sq = format!("'{key}':");
    let pat_dq = format!("\"{key}\":");
    let pos = header.find(&pat_sq).map(|p| p + pat_sq.len()).or_else(|| header.find(&pat_dq).map(|p| p + pat_dq.len()))?;
    let rest = header[pos..].trim_start();
    let mut depth = 0i32;
    for (i, ch) in rest.char_indices() {
        match ch {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&rest[..=i]);
                }
            }
            ',' | '}' if depth == 0 => return Some(rest[..i].trim()),
            _ => {}
        }
    }
    None
}

#[derive(Clone, Copy)]
enum Kind {
    U,
    I,
    F,
}

fn parse_descr(d: &str) -> Option<(bool, Kind, usize)> {
    let mut chars = d.chars();
    let order = chars.next()?;
    let little = match order {
        '<' | '|' | '=' => true,
        '>' => false,
        _ => return None,
    };
    let kind = match chars.next()? {
        'u' => Kind::U,
        'i' => Kind::I,
        'f' => Kind::F,
        'b' => Kind::U,
        _ => return None,
    };
    let size: usize = chars.as_str().parse().ok()?;
    match (kind, size) {
        (Kind::U | Kind::I, 1 | 2 | 4 | 8) | (Kind::F, 4 | 8) => Some((little, kind, size)),
        _ => None,
    }
}

fn decode(c: &[u8], little: bool, kind: Kind) -> f64 {
    let mut b = [0u8; 8];
    b[..c.len()].copy_from_slice(c);
    if !little {
        b[..c.len()].reverse();
    }
    let raw = u64::from_le_bytes(b);
    let bits = c.len() * 8;
    match kind {
        Kind::U => raw as f64,
        Kind::I => {
            let shift = 64 - bits;
            (((raw << shift) as i64) >> shift) as f64
        }
        Kind::F if c.len() == 4 => f32::from_bits(raw as u32) as f64,
        Kind::F => f64::from_bits(raw),
    }
}

fn read_entry(path: &Path, archive: &mut zip::ZipArchive<std::fs::File>, key: &str) -> Result<NpyArray, DataError> {
    let name = format!("{key}.npy");
    let mut entry = archive.by_name(&name).map_err(|_| DataError::MissingKey { path: path.to_path_buf(), key: key.to_string() })?;
    if entry.size() > MAX_ARRAY_BYTES {
        return Err(DataError::TooLarge { path: path.to_path_buf(), bytes: entry.size() });
    }
    let mut bytes = Vec::with_capacity(entry.size() as usize);
    entry.read_to_end(&mut bytes).map_err(|e| corrupt(path, format!("{name}: {e}")))?;
    parse_npy(path, &bytes)
}

fn open(path: &Path) -> Result<zip::ZipArchive<std::fs::File>, DataError> {
    let f = std::fs::File::open(path).map_err(|source| DataError::Io { path: path.to_path_buf(), source })?;
    zip::ZipArchive::new(f).map_err(|e| corrupt(path, format!("not a zip archive: {e}")))
}

fn read_split(path: &Path, archive: &mut zip::ZipArchive<std::fs::File>, split: &str) -> Result<Split, DataError> {
    let images = read_entry(path, archive, &format!("{split}_images"))?;
    let labels = read_entry(path, archive, &format!("{split}_labels"))?;
    let (n, dims) = match images.shape.as_slice() {
        [n, d0, d1, d2] => (*n, [*d2, *d1, *d0]),
        s => return Err(corrupt(path, format!("{split}_images has shape {s:?}, expected (n, d0, d1, d2)"))),
    };
    let label_count = labels.shape.first().copied().unwrap_or(0);
    if label_count != n || labels.data.len() != n {
        return Err(corrupt(path, format!("{split}: {n} images but {} labels", labels.data.len())));
    }
    let labels = labels
        .data
        .iter()
        .map(|&l| if l >= 0.0 && l.fract() == 0.0 && l < u32::MAX as f64 { Ok(l as u32) } else { Err(corrupt(path, format!("{split}: label {l} is not a class index"))) })
        .collect::<Result<Vec<_>, _>>()?;
    let images = images.data.into_iter().map(|v| v as f32).collect();
    Ok(Split { dims, images, labels })
}

/// Loads the three splits of a MedMNIST 3D `.npz` file.
pub fn load_medmnist_npz(path: &Path) -> Result<MedMnistDataset, DataError> {
    let mut archive = open(path)?;
    Ok(MedMnistDataset { train: read_split(path, &mut archive, "train")?, val: read_split(path, &mut archive, "val")?, test: read_split(path, &mut archive, "test")? })
}

/// Loads one sample (volume, label) of a split.
pub fn load_medmnist_sample(path: &Path, split: &str, index: usize) -> Result<(Volume, u32), DataError> {
    if !matches!(split, "train" | "val" | "test") {
        return Err(DataError::BadSample { path: path.to_path_buf(), what: format!("unknown split '{split}' (train, val or test)") });
    }
    let mut archive = open(path)?;
    let s = read_split(path, &mut archive, split)?;
    let label = *s.labels.get(index).ok_or_else(|| DataError::BadSample { path: path.to_path_buf(), what: format!("{split} has {} samples, no index {index}", s.len()) })?;
    let vol = s.volume(index).ok_or_else(|| corrupt(path, "sample out of range"))?;
    Ok((vol, label))
}
