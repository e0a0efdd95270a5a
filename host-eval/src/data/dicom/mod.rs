//! DICOM images on dicom-rs: single files (one slice or all frames of a multi-frame file) and a
//! directory read as one series ([`series`]).
//!
//! - File (PS3.10 7.1): optional 128-byte preamble + `DICM`, the file meta group (0002,xxxx) in
//!   explicit VR little endian, then the data set in the transfer syntax the meta group names.
//!   Files without the preamble (bare data sets, as older writers produce) are accepted when
//!   the first tag looks like group 0002 or 0008; without a meta group the encoding (implicit
//!   or explicit VR little endian) is guessed from the first element.
//! - The meta group is read here (a few elements, explicit VR little endian, PS3.10 7.1); the
//!   data set is parsed by `dicom-object` and the pixels decoded by `dicom-pixeldata` with the
//!   codecs enabled in the workspace: native little and big endian, deflated (PS3.5 A.5,
//!   inflated here within the load's [`Limits::max_inflated_bytes`] before dicom-rs sees it),
//!   RLE lossless, JPEG baseline, extended and lossless (jpeg-decoder) and JPEG 2000 (openjp2).
//!   Any other syntax (JPEG-LS, whose codec needs cmake and C++, JPEG XL, MPEG, unknown UIDs)
//!   is [`DataError::UnsupportedFormat`] naming the syntax.
//! - Before dicom-rs reads a byte, [`guard::walk`] checks every declared length against the
//!   bytes present and the nesting depth (see there: dicom-rs allocates declared lengths up
//!   front). Rows x Columns x NumberOfFrames x bytes per sample is checked against
//!   [`Limits::max_voxels`] and [`MAX_ARRAY_BYTES`] before decoding.
//! - Every call into dicom-rs runs under `std::panic::catch_unwind`: codec crates have panicked
//!   on malformed input (index out of bounds in a fragment table, an arithmetic overflow), and
//!   a loader must return an error for a bad file, never unwind into the caller. A caught panic
//!   is [`DataError::Corrupt`].
//!
//! Values: stored values masked to BitsStored (sign-extended when PixelRepresentation is 1),
//! then `v * RescaleSlope + RescaleIntercept` (PS3.3 C.11.1.1.2; so CT comes out in HU), with
//! the slope and intercept of the top level or, for enhanced images, of the functional groups.
//! MONOCHROME1 data is not inverted (the values are the stored measurements; only display would
//! invert them). Colour images (SamplesPerPixel > 1, PALETTE COLOR) are unsupported.

mod guard;
mod meta;
pub mod series;

pub use meta::looks_like_bare_dataset;
pub use series::{load_dicom, load_dicom_series, load_dicom_series_with, load_dicom_with, parse_dicom_volume, MAX_SERIES_FILES};

use super::{checked_size_limited, corrupt, io_err, unsupported, DataError, InflateBudget, Limits, MAX_ARRAY_BYTES};
use dicom_core::Tag;
use dicom_object::InMemDicomObject;
use dicom_pixeldata::PixelDecoder;
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

/// One DICOM file's image and the attributes that place it.
#[derive(Clone, Debug, PartialEq)]
pub struct DicomImage {
    pub rows: usize,
    pub columns: usize,
    pub frames: usize,
    /// (row spacing, column spacing) in mm: (y, x).
    pub pixel_spacing: Option<[f64; 2]>,
    pub slice_thickness: Option<f64>,
    pub spacing_between_slices: Option<f64>,
    pub position: Option<[f64; 3]>,
    pub orientation: Option<[f64; 6]>,
    /// Per-frame positions of an enhanced multi-frame image (or of an RT dose grid), in frame order.
    pub frame_positions: Vec<[f64; 3]>,
    pub instance_number: Option<i64>,
    pub series_uid: Option<String>,
    /// Rescaled values, `rows * columns * frames`, column fastest, then row, then frame.
    pub data: Vec<f32>,
}

const PIXEL_DATA: Tag = Tag(0x7FE0, 0x0010);
const DEFLATED: &str = "1.2.840.10008.1.2.1.99";
const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";

/// Runs `f` (a call into dicom-rs) and turns a panic into [`DataError::Corrupt`]; see the module
/// docs for why.
fn guarded<T>(path: &Path, what: &str, f: impl FnOnce() -> Result<T, DataError>) -> Result<T, DataError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| Err(corrupt(path, format!("{what}: the decoder panicked"))))
}

/// The samples of native pixel data as little-endian bytes. dicom-rs swaps a big-endian value
/// by its VR's unit (PS3.5 7.3: OW in 16-bit words, OB not at all), so 32-bit samples stored as
/// OW come back with their two words in the wrong order, and 16- or 32-bit samples stored as
/// OB with their bytes reversed; both are put right here.
fn native_samples(p: &dicom_core::PrimitiveValue, bits: u16, big: bool) -> std::borrow::Cow<'_, [u8]> {
    use dicom_core::PrimitiveValue as V;
    let bytes = p.to_bytes();
    let unit = match p {
        V::U16(_) | V::I16(_) => 2,
        V::U8(_) => 1,
        _ => usize::from(bits / 8),
    };
    let size = usize::from(bits / 8);
    if !big || unit >= size {
        return bytes;
    }
    let mut out = bytes.into_owned();
    for sample in out.chunks_exact_mut(size) {
        // Reverse the order of the units within the sample, keeping each unit's bytes.
        let units = size / unit;
        for i in 0..units / 2 {
            let (a, b) = (i * unit, (units - 1 - i) * unit);
            for k in 0..unit {
                sample.swap(a + k, b + k);
            }
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Decodes compressed pixel data with dicom-pixeldata's codec for the syntax. The Image Pixel
/// attributes it requires but that this reader defaults (HighBit = BitsStored - 1, PS3.3
/// C.7.6.3.1.1) are filled in first. The decoded samples come back little endian.
fn decode_encapsulated(
    path: &Path,
    mut obj: InMemDicomObject,
    uid: &str,
    ts_uid: &str,
    file: &meta::File<'_>,
    attrs: &meta::Attrs,
    shape: &meta::Shape,
) -> Result<Vec<f32>, DataError> {
    attrs.fill_defaults(&mut obj, shape);
    let meta_table = dicom_object::FileMetaTableBuilder::new()
        .transfer_syntax(ts_uid)
        .media_storage_sop_class_uid(file.sop_class.as_deref().unwrap_or("1.2.840.10008.5.1.4.1.1.7"))
        .media_storage_sop_instance_uid(file.sop_instance.as_deref().unwrap_or("2.25.1"))
        .build()
        .map_err(|e| corrupt(path, format!("file meta group: {e}")))?;
    let object = obj.with_exact_meta(meta_table);
    guarded(path, "pixel data", || {
        let decoded = object.decode_pixel_data().map_err(|e| {
            // The whole chain: the top error says only "could not decode", its sources say why.
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(inner) = src {
                msg.push_str(": ");
                msg.push_str(&inner.to_string());
                src = inner.source();
            }
            let lower = msg.to_ascii_lowercase();
            if lower.contains("unsupported") || lower.contains("not supported") {
                unsupported(path, format!("pixel data ({uid}): {msg}"))
            } else {
                corrupt(path, format!("pixel data ({uid}): {msg}"))
            }
        })?;
        let raw = decoded.data();
        if raw.len() < shape.bytes {
            return Err(corrupt(
                path,
                format!("decoded pixel data has {} bytes, the image needs {}", raw.len(), shape.bytes),
            ));
        }
        Ok(attrs.values(&raw[..shape.bytes], shape))
    })
}

/// Parses a whole DICOM file held in memory. `Ok(None)`: a valid DICOM file without pixel data
/// (a DICOMDIR, a structured report), which a series reader skips. A deflated data set inflates
/// through `budget`; the image may have `max_voxels` voxels.
pub(crate) fn parse(path: &Path, bytes: &[u8], budget: &InflateBudget, max_voxels: u64) -> Result<Option<DicomImage>, DataError> {
    let file = meta::split(path, bytes)?;
    let uid = file.transfer_syntax.clone();
    let ts = TransferSyntaxRegistry
        .get(&uid)
        .ok_or_else(|| unsupported(path, format!("transfer syntax {uid} (not known to this reader)")))?;
    let inflated;
    let (data, ts) = if uid == DEFLATED {
        inflated = meta::inflate(path, file.data_set, budget)?;
        let explicit = TransferSyntaxRegistry
            .get(EXPLICIT_LE)
            .ok_or_else(|| unsupported(path, "explicit VR little endian is not registered"))?;
        (inflated.as_slice(), explicit)
    } else {
        (file.data_set, ts)
    };
    if !ts.can_decode_dataset() {
        return Err(unsupported(
            path,
            format!("transfer syntax {uid} ({}): data set not readable", ts.name()),
        ));
    }
    let data = match guard::walk(path, data, ts)? {
        guard::Walk::NoPixelData => return Ok(None),
        guard::Walk::PixelDataEnd(end) => data.get(..end as usize).unwrap_or(data),
    };
    let obj = guarded(path, "data set", || {
        InMemDicomObject::read_dataset_with_ts(data, ts).map_err(|e| corrupt(path, format!("data set: {e}")))
    })?;
    if obj.get(PIXEL_DATA).is_none() {
        return Ok(None);
    }
    let attrs = meta::Attrs::read(path, &obj)?;
    let shape = attrs.check(path, max_voxels)?;
    if !ts.can_decode_all() {
        return Err(unsupported(
            path,
            format!("transfer syntax {uid} ({}): no decoder for its pixel data in this build", ts.name()),
        ));
    }
    let pixels = if ts.is_encapsulated_pixel_data() {
        decode_encapsulated(path, obj, &uid, ts.uid(), &file, &attrs, &shape)?
    } else {
        // Native pixel data: dicom-rs has already read the values in the syntax's byte order
        // (an OW value of a big-endian file is held as 16-bit numbers), so its bytes in memory
        // are the little-endian samples; no codec is involved.
        let value = obj.get(PIXEL_DATA).map(|e| e.value());
        let bytes = match value {
            Some(dicom_core::DicomValue::Primitive(p)) => {
                let big = ts.endianness() == dicom_encoding::transfer_syntax::Endianness::Big;
                native_samples(p, shape.bits, big)
            }
            _ => {
                return Err(unsupported(
                    path,
                    format!("encapsulated pixel data under the uncompressed transfer syntax {uid}"),
                ))
            }
        };
        if bytes.len() < shape.bytes {
            return Err(corrupt(
                path,
                format!(
                    "pixel data has {} bytes, {} frame(s) of {} x {} x {} bits need {}",
                    bytes.len(),
                    shape.frames,
                    shape.rows,
                    shape.columns,
                    shape.bits,
                    shape.bytes
                ),
            ));
        }
        attrs.values(&bytes[..shape.bytes], &shape)
    };
    Ok(Some(attrs.into_image(shape, pixels)))
}

fn read_file(path: &Path) -> Result<Vec<u8>, DataError> {
    let len = std::fs::metadata(path).map_err(|e| io_err(path, e))?.len();
    if len > MAX_ARRAY_BYTES {
        return Err(DataError::TooLarge {
            path: path.to_path_buf(),
            bytes: len,
        });
    }
    std::fs::read(path).map_err(|e| io_err(path, e))
}

/// Reads one DICOM file (all its frames).
pub fn read_dicom(path: &Path) -> Result<DicomImage, DataError> {
    read_dicom_with(path, &Limits::DEFAULT)
}

/// [`read_dicom`] under `limits`.
pub fn read_dicom_with(path: &Path, limits: &Limits) -> Result<DicomImage, DataError> {
    parse_dicom_with(path, &read_file(path)?, limits)
}

/// Parses DICOM bytes already in memory (`path` only names them in errors).
pub fn parse_dicom(path: &Path, bytes: &[u8]) -> Result<DicomImage, DataError> {
    parse_dicom_with(path, bytes, &Limits::DEFAULT)
}

/// [`parse_dicom`] under `limits`: a deflated data set may inflate to at most
/// `limits.max_inflated_bytes`, the image may have at most `limits.max_voxels` voxels.
pub fn parse_dicom_with(path: &Path, bytes: &[u8], limits: &Limits) -> Result<DicomImage, DataError> {
    let budget = InflateBudget::new(limits.max_inflated_bytes);
    parse(path, bytes, &budget, limits.max_voxels)?.ok_or_else(|| corrupt(path, "no pixel data (7FE0,0010)"))
}

/// Shared size check of [`meta::Attrs::check`]: `checked_size_limited` on one image.
pub(crate) fn image_bytes(path: &Path, dims: [usize; 3], item: usize, max_voxels: u64) -> Result<usize, DataError> {
    checked_size_limited(path, &dims, item, max_voxels).map(|(_, b)| b)
}
