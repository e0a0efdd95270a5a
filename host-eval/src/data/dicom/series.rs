//! A DICOM series: files of one directory (or the frames of one multi-frame file) as one
//! volume, placed by the Image Plane module (PS3.3 C.7.6.2) and brought to RAS+
//! ([`super::super::orientation`]).
//!
//! Geometry: columns are x, rows are y, frames (or the slices of a series) are z, before
//! reorientation. PixelSpacing is (row spacing, column spacing), i.e. (y, x) (PS3.3
//! C.7.6.2.1.1). For a stack, slices are sorted by ImagePositionPatient projected
//! on the slice normal (row direction x column direction from ImageOrientationPatient; axial
//! (0, 0, 1) when the orientation is absent), ascending, and the z spacing is the mean distance
//! between neighbours; slices at the same position, or spacings that differ by more than 10%
//! from the mean, are [`DataError::Inconsistent`]. Without positions, slices are sorted by
//! InstanceNumber (and otherwise kept in file-name order) and z spacing comes from
//! SpacingBetweenSlices, then SliceThickness, then 1 mm. Multi-frame files use the per-frame
//! positions of the functional groups when every frame has one (RT dose: the
//! GridFrameOffsetVector).
//!
//! Orientation: the stored axes point along ImageOrientationPatient's row direction (x), its
//! column direction (y) and the slice normal (z, the direction slices were sorted along), all
//! in DICOM's LPS+ patient coordinates; the volume is permuted and flipped to the closest RAS+
//! orientation ([`orientation::dicom_directions`]). Without ImageOrientationPatient the stored
//! axes are kept as they are.

use super::super::orientation;
use super::super::{io_err, unsupported, DataError, InflateBudget, Limits, Volume};
use super::{parse, parse_dicom, read_dicom_with, read_file, DicomImage};
use std::path::{Path, PathBuf};

fn positive(v: Option<f64>) -> Option<f64> {
    v.map(f64::abs).filter(|s| s.is_finite() && *s > 0.0)
}

/// In-plane spacing [x, y] from PixelSpacing (row spacing, column spacing).
fn in_plane(ps: Option<[f64; 2]>) -> [f64; 2] {
    match ps {
        Some([row, col]) => [positive(Some(col)).unwrap_or(1.0), positive(Some(row)).unwrap_or(1.0)],
        None => [1.0, 1.0],
    }
}

pub(crate) fn normal(orientation: Option<[f64; 6]>) -> [f64; 3] {
    if let Some([r0, r1, r2, c0, c1, c2]) = orientation {
        let n = [r1 * c2 - r2 * c1, r2 * c0 - r0 * c2, r0 * c1 - r1 * c0];
        let len = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt();
        if len.is_finite() && len > 1e-6 {
            return [n[0] / len, n[1] / len, n[2] / len];
        }
    }
    [0.0, 0.0, 1.0]
}

/// Orders planes and finds the z spacing: by position along the normal when every plane has
/// one, else by instance number, else as given. Returns the permutation and the z spacing (None:
/// not measurable from positions).
fn order(
    path: &Path,
    positions: &[Option<[f64; 3]>],
    instances: &[Option<i64>],
    n: [f64; 3],
) -> Result<(Vec<usize>, Option<f64>), DataError> {
    let mut idx: Vec<usize> = (0..positions.len()).collect();
    if positions.len() < 2 {
        return Ok((idx, None));
    }
    if let Some(pos) = positions.iter().copied().collect::<Option<Vec<[f64; 3]>>>() {
        let key: Vec<f64> = pos.iter().map(|p| p[0] * n[0] + p[1] * n[1] + p[2] * n[2]).collect();
        idx.sort_by(|&a, &b| key[a].total_cmp(&key[b]));
        let gaps: Vec<f64> = idx.windows(2).map(|w| key[w[1]] - key[w[0]]).collect();
        if gaps.iter().any(|&g| g.abs() < 1e-4) {
            return Err(DataError::Inconsistent {
                path: path.to_path_buf(),
                what: "two slices at the same position".into(),
            });
        }
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        if gaps.iter().any(|&g| (g - mean).abs() > 0.1 * mean + 1e-3) {
            return Err(DataError::Inconsistent {
                path: path.to_path_buf(),
                what: format!(
                    "slice spacing varies (from {:.3} to {:.3} mm): missing or irregular slices",
                    gaps.iter().copied().fold(f64::INFINITY, f64::min),
                    gaps.iter().copied().fold(0.0, f64::max)
                ),
            });
        }
        return Ok((idx, Some(mean)));
    }
    if let Some(inst) = instances.iter().copied().collect::<Option<Vec<i64>>>() {
        idx.sort_by_key(|&i| inst[i]);
    }
    Ok((idx, None))
}

fn z_fallback(img: &DicomImage) -> f64 {
    positive(img.spacing_between_slices)
        .or(positive(img.slice_thickness))
        .unwrap_or(1.0)
}

/// Loads one DICOM file as a volume: a single slice (z = 1) or all frames of a multi-frame file.
pub fn load_dicom(path: &Path) -> Result<Volume, DataError> {
    load_dicom_with(path, &Limits::DEFAULT)
}

/// [`load_dicom`] under `limits`.
pub fn load_dicom_with(path: &Path, limits: &Limits) -> Result<Volume, DataError> {
    single_volume(path, read_dicom_with(path, limits)?)
}

/// [`load_dicom`] on bytes already in memory (`path` only names them in errors).
pub fn parse_dicom_volume(path: &Path, bytes: &[u8]) -> Result<Volume, DataError> {
    single_volume(path, parse_dicom(path, bytes)?)
}

/// One file's frames as a volume, sorted by per-frame position when every frame has one.
fn single_volume(path: &Path, img: DicomImage) -> Result<Volume, DataError> {
    let [sx, sy] = in_plane(img.pixel_spacing);
    let plane = img.rows * img.columns;
    let positions: Vec<Option<[f64; 3]>> = img.frame_positions.iter().copied().map(Some).collect();
    let (perm, dz) = if positions.len() == img.frames {
        order(path, &positions, &[], normal(img.orientation))?
    } else {
        ((0..img.frames).collect(), None)
    };
    let dz = dz.unwrap_or_else(|| z_fallback(&img));
    let data = if perm.iter().enumerate().all(|(i, &p)| i == p) {
        img.data
    } else {
        perm.iter()
            .flat_map(|&f| img.data[f * plane..(f + 1) * plane].iter().copied())
            .collect()
    };
    let v = Volume {
        dims: [img.columns, img.rows, img.frames],
        spacing_mm: [sx, sy, dz],
        data,
    };
    Ok(orientation::to_canonical(v, img.orientation.map(orientation::dicom_directions)))
}

/// Largest number of files a series directory may hold.
pub const MAX_SERIES_FILES: usize = 100_000;

/// Loads a directory of single-frame DICOM files as one series. Non-DICOM files and DICOM files
/// without pixel data (DICOMDIR) are skipped; any other error in a DICOM file fails the load
/// (a silently missing slice would be a wrong volume). When the directory holds several series
/// (SeriesInstanceUID), the one with the most files is loaded (ties: the smallest UID).
pub fn load_dicom_series(dir: &Path) -> Result<Volume, DataError> {
    load_dicom_series_with(dir, &Limits::DEFAULT)
}

/// [`load_dicom_series`] under `limits`: the deflated files of the series share one inflate
/// budget, and the whole series may have at most `limits.max_voxels` voxels.
pub fn load_dicom_series_with(dir: &Path, limits: &Limits) -> Result<Volume, DataError> {
    let budget = InflateBudget::new(limits.max_inflated_bytes);
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| io_err(dir, e))?
        .map(|e| e.map(|e| e.path()).map_err(|e| io_err(dir, e)))
        .collect::<Result<_, _>>()?;
    // Hidden files and the DICOMDIR index (no pixels, sometimes in another byte order) are not slices.
    files.retain(|p| {
        p.is_file()
            && !p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.') || n.eq_ignore_ascii_case("DICOMDIR"))
    });
    files.sort();
    if files.len() > MAX_SERIES_FILES {
        return Err(unsupported(
            dir,
            format!("{} files: a series directory may hold at most {MAX_SERIES_FILES}", files.len()),
        ));
    }
    let mut images: Vec<DicomImage> = Vec::new();
    let mut voxels = 0u64;
    for f in &files {
        let bytes = read_file(f)?;
        let img = match parse(f, &bytes, &budget, limits.max_voxels) {
            Ok(Some(img)) => img,
            Ok(None) => continue,
            Err(DataError::UnsupportedFormat { what, .. }) if what.starts_with("not a DICOM file") => continue,
            Err(e) => return Err(e),
        };
        voxels += img.data.len() as u64;
        if voxels > limits.max_voxels {
            return Err(DataError::TooLarge {
                path: dir.to_path_buf(),
                bytes: voxels.saturating_mul(4),
            });
        }
        images.push(img);
    }
    if images.is_empty() {
        return Err(unsupported(dir, "directory holds no DICOM image files"));
    }
    // The largest series, ties broken by UID so the choice does not depend on directory order.
    let mut uids: Vec<Option<String>> = images.iter().map(|i| i.series_uid.clone()).collect();
    uids.sort();
    uids.dedup();
    let chosen = uids.into_iter().max_by(|a, b| {
        let count = |u: &Option<String>| images.iter().filter(|i| &i.series_uid == u).count();
        count(a).cmp(&count(b)).then_with(|| b.cmp(a))
    });
    images.retain(|i| i.series_uid == chosen.clone().flatten());
    let first = images
        .first()
        .ok_or_else(|| unsupported(dir, "directory holds no DICOM image files"))?;
    if images.len() == 1 {
        // A single (possibly multi-frame) file.
        return single_volume(dir, images.remove(0));
    }
    let (rows, columns) = (first.rows, first.columns);
    if let Some(bad) = images.iter().find(|i| i.rows != rows || i.columns != columns || i.frames != 1) {
        return Err(DataError::Inconsistent {
            path: dir.to_path_buf(),
            what: format!(
                "slices of {rows} x {columns} and {} x {} x {} frame(s) in one series",
                bad.rows, bad.columns, bad.frames
            ),
        });
    }
    let positions: Vec<Option<[f64; 3]>> = images.iter().map(|i| i.position).collect();
    let instances: Vec<Option<i64>> = images.iter().map(|i| i.instance_number).collect();
    let (perm, dz) = order(dir, &positions, &instances, normal(first.orientation))?;
    let [sx, sy] = in_plane(first.pixel_spacing);
    let dz = dz.unwrap_or_else(|| z_fallback(first));
    let depth = images.len();
    let mut data = Vec::with_capacity(rows * columns * depth);
    for &i in &perm {
        data.extend_from_slice(&images[i].data);
    }
    let v = Volume {
        dims: [columns, rows, depth],
        spacing_mm: [sx, sy, dz],
        data,
    };
    Ok(orientation::to_canonical(v, first.orientation.map(orientation::dicom_directions)))
}
