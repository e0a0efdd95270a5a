//! DICOM images: single files (one slice or all frames of a multi-frame file) and a directory
//! read as one series. A hand-written minimal reader (PS3.5 data encoding, PS3.10 file format):
//!
//! - File: optional 128-byte preamble + `DICM`, the file meta group (0002,xxxx) in explicit VR
//!   little endian, then the data set in the transfer syntax the meta group names. Files without
//!   the preamble (bare data sets, as older writers produce) are accepted when the first tag
//!   looks like group 0002 or 0008.
//! - Transfer syntaxes: implicit VR little endian (1.2.840.10008.1.2), explicit VR little endian
//!   (1.2.840.10008.1.2.1) and deflated explicit VR little endian (1.2.840.10008.1.2.1.99).
//!   Big endian and every compressed (encapsulated) syntax are [`DataError::UnsupportedFormat`].
//! - Sequences of defined or undefined length are walked item by item (the delimiters decide
//!   where an undefined-length item ends, so a sequence is skipped correctly whatever it holds;
//!   UN elements of undefined length are parsed as implicit VR, as PS3.5 6.2.2 requires).
//!   Nesting is limited to 32 levels so a hostile file cannot exhaust the stack.
//! - Parsing stops at the top-level Pixel Data (7FE0,0010): whatever follows it (trailing
//!   padding, a declared length larger than the frames need) is ignored, so files with megabytes
//!   of padding after the pixels load. Only the bytes the frames need are read, and they must be
//!   present.
//!
//! Geometry: columns are x, rows are y, frames (or the slices of a series) are z. PixelSpacing
//! is (row spacing, column spacing), i.e. (y, x). For a stack, slices are sorted by
//! ImagePositionPatient projected on the slice normal (row direction x column direction from
//! ImageOrientationPatient; axial (0, 0, 1) when the orientation is absent), ascending, and the
//! z spacing is the mean distance between neighbours; slices at the same position, or spacings
//! that differ by more than 10% from the mean, are [`DataError::Inconsistent`]. Without
//! positions, slices are sorted by InstanceNumber (and otherwise kept in file-name order) and z
//! spacing comes from SpacingBetweenSlices, then SliceThickness, then 1 mm. Multi-frame files
//! use the per-frame positions of the functional groups when every frame has one (RT dose: the
//! GridFrameOffsetVector).
//!
//! Values: stored values masked to BitsStored (sign-extended when PixelRepresentation is 1),
//! then `v * RescaleSlope + RescaleIntercept` (so CT comes out in HU). MONOCHROME1 data is not
//! inverted (the values are the stored measurements; only display would invert them). Colour
//! images (SamplesPerPixel > 1, PALETTE COLOR) are unsupported.

use super::{checked_size_limited, corrupt, io_err, read_error, unsupported, DataError, InflateBudget, Limits, Volume, MAX_ARRAY_BYTES};
use std::io::Read;
use std::path::{Path, PathBuf};

const fn tag(group: u16, element: u16) -> u32 {
    ((group as u32) << 16) | element as u32
}

const TRANSFER_SYNTAX: u32 = tag(0x0002, 0x0010);
const SLICE_THICKNESS: u32 = tag(0x0018, 0x0050);
const SPACING_BETWEEN_SLICES: u32 = tag(0x0018, 0x0088);
const SERIES_UID: u32 = tag(0x0020, 0x000E);
const INSTANCE_NUMBER: u32 = tag(0x0020, 0x0013);
const IMAGE_POSITION: u32 = tag(0x0020, 0x0032);
const IMAGE_ORIENTATION: u32 = tag(0x0020, 0x0037);
const SAMPLES_PER_PIXEL: u32 = tag(0x0028, 0x0002);
const PHOTOMETRIC: u32 = tag(0x0028, 0x0004);
const NUMBER_OF_FRAMES: u32 = tag(0x0028, 0x0008);
const ROWS: u32 = tag(0x0028, 0x0010);
const COLUMNS: u32 = tag(0x0028, 0x0011);
const PIXEL_SPACING: u32 = tag(0x0028, 0x0030);
const BITS_ALLOCATED: u32 = tag(0x0028, 0x0100);
const BITS_STORED: u32 = tag(0x0028, 0x0101);
const PIXEL_REPRESENTATION: u32 = tag(0x0028, 0x0103);
const RESCALE_INTERCEPT: u32 = tag(0x0028, 0x1052);
const RESCALE_SLOPE: u32 = tag(0x0028, 0x1053);
const GRID_FRAME_OFFSETS: u32 = tag(0x3004, 0x000C);
const PIXEL_DATA: u32 = tag(0x7FE0, 0x0010);
const ITEM: u32 = tag(0xFFFE, 0xE000);
const ITEM_DELIMITER: u32 = tag(0xFFFE, 0xE00D);
const SEQUENCE_DELIMITER: u32 = tag(0xFFFE, 0xE0DD);
const UNDEFINED: u32 = 0xFFFF_FFFF;
const MAX_DEPTH: usize = 32;

/// Sequences that hold the geometry of enhanced multi-frame images; in implicit VR a
/// defined-length sequence is indistinguishable from bytes without a dictionary, so these are
/// the ones walked into.
const KNOWN_SEQUENCES: [u32; 6] = [
    tag(0x5200, 0x9229), // SharedFunctionalGroupsSequence
    tag(0x5200, 0x9230), // PerFrameFunctionalGroupsSequence
    tag(0x0028, 0x9110), // PixelMeasuresSequence
    tag(0x0020, 0x9113), // PlanePositionSequence
    tag(0x0020, 0x9116), // PlaneOrientationSequence
    tag(0x0028, 0x9145), // PixelValueTransformationSequence
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Syntax {
    ExplicitLe,
    ImplicitLe,
}

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
    /// Per-frame positions of an enhanced multi-frame image, in frame order.
    pub frame_positions: Vec<[f64; 3]>,
    pub instance_number: Option<i64>,
    pub series_uid: Option<String>,
    /// Rescaled values, `rows * columns * frames`, column fastest, then row, then frame.
    pub data: Vec<f32>,
}

/// Attributes gathered while walking the data set. Values from nested items (functional
/// groups) are kept apart and used only where the top level lacks them.
#[derive(Default)]
struct Attrs {
    rows: Option<usize>,
    columns: Option<usize>,
    frames: Option<usize>,
    bits_allocated: Option<u16>,
    bits_stored: Option<u16>,
    pixel_representation: Option<u16>,
    samples_per_pixel: Option<u16>,
    photometric: Option<String>,
    slope: Option<f64>,
    intercept: Option<f64>,
    pixel_spacing: Option<[f64; 2]>,
    slice_thickness: Option<f64>,
    spacing_between: Option<f64>,
    position: Option<[f64; 3]>,
    orientation: Option<[f64; 6]>,
    instance_number: Option<i64>,
    series_uid: Option<String>,
    nested_slope: Option<f64>,
    nested_intercept: Option<f64>,
    nested_pixel_spacing: Option<[f64; 2]>,
    nested_slice_thickness: Option<f64>,
    nested_spacing_between: Option<f64>,
    nested_orientation: Option<[f64; 6]>,
    nested_positions: Vec<[f64; 3]>,
    /// RT dose GridFrameOffsetVector: frame offsets along the normal from ImagePositionPatient.
    grid_offsets: Vec<f64>,
    /// (offset, available bytes) of the top-level pixel data.
    pixels: Option<(usize, usize)>,
}

fn text(v: &[u8]) -> String {
    String::from_utf8_lossy(v)
        .trim_matches(|c: char| c == '\0' || c.is_whitespace())
        .to_string()
}

fn numbers<const K: usize>(path: &Path, name: &str, v: &[u8]) -> Result<[f64; K], DataError> {
    let s = text(v);
    let parts: Vec<&str> = s
        .split('\\')
        .map(|p| p.trim_matches(|c: char| c == '\0' || c.is_whitespace()))
        .collect();
    let mut out = [0.0; K];
    if parts.len() < K {
        return Err(corrupt(path, format!("{name} '{s}' has fewer than {K} values")));
    }
    for (o, p) in out.iter_mut().zip(&parts) {
        *o = p
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .ok_or_else(|| corrupt(path, format!("{name} '{s}' is not numeric")))?;
    }
    Ok(out)
}

fn number_list(path: &Path, name: &str, v: &[u8]) -> Result<Vec<f64>, DataError> {
    let s = text(v);
    s.split('\\')
        .map(|p| {
            p.trim_matches(|c: char| c == '\0' || c.is_whitespace())
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
        })
        .collect::<Option<Vec<f64>>>()
        .ok_or_else(|| corrupt(path, format!("{name} is not a list of numbers")))
}

fn number(path: &Path, name: &str, v: &[u8]) -> Result<f64, DataError> {
    numbers::<1>(path, name, v).map(|[x]| x)
}

fn integer(path: &Path, name: &str, v: &[u8]) -> Result<i64, DataError> {
    let s = text(v);
    let first = s.split('\\').next().unwrap_or_default().trim();
    first
        .strip_prefix('+')
        .unwrap_or(first)
        .parse()
        .map_err(|_| corrupt(path, format!("{name} '{s}' is not an integer")))
}

fn us(path: &Path, name: &str, v: &[u8]) -> Result<u16, DataError> {
    match v {
        [a, b, ..] => Ok(u16::from_le_bytes([*a, *b])),
        _ => Err(corrupt(path, format!("{name} has {} bytes, needs 2", v.len()))),
    }
}

/// VRs whose length field is 32 bits (with 2 reserved bytes before it) in explicit VR.
fn long_vr(vr: [u8; 2]) -> bool {
    matches!(
        &vr,
        b"OB" | b"OD" | b"OF" | b"OL" | b"OV" | b"OW" | b"SQ" | b"SV" | b"UC" | b"UN" | b"UR" | b"UT" | b"UV"
    )
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes([*b.get(at)?, *b.get(at + 1)?, *b.get(at + 2)?, *b.get(at + 3)?]))
}

/// True when `head` (a file's first bytes, no preamble) plausibly starts a DICOM data set.
pub fn looks_like_bare_dataset(head: &[u8]) -> bool {
    let (Some(group), Some(element)) = (u16_at(head, 0), u16_at(head, 2)) else {
        return false;
    };
    if !(group == 0x0002 || group == 0x0008) || element > 0x0100 {
        return false;
    }
    match (head.get(4), head.get(5)) {
        (Some(a), Some(b)) if a.is_ascii_uppercase() && b.is_ascii_uppercase() => true,
        _ => u32_at(head, 4).is_some_and(|len| len < 1024),
    }
}

struct Element {
    tag: u32,
    vr: Option<[u8; 2]>,
    len: u32,
    value: usize,
}

struct Parser<'a> {
    path: &'a Path,
    b: &'a [u8],
}

impl Parser<'_> {
    fn truncated(&self, at: usize) -> DataError {
        corrupt(self.path, format!("truncated element header at byte {at}"))
    }

    fn element(&self, pos: usize, syntax: Syntax) -> Result<Element, DataError> {
        let group = u16_at(self.b, pos).ok_or_else(|| self.truncated(pos))?;
        let elem = u16_at(self.b, pos + 2).ok_or_else(|| self.truncated(pos))?;
        let t = tag(group, elem);
        // Items and delimiters carry no VR in any syntax.
        if group == 0xFFFE || syntax == Syntax::ImplicitLe {
            let len = u32_at(self.b, pos + 4).ok_or_else(|| self.truncated(pos))?;
            return Ok(Element {
                tag: t,
                vr: None,
                len,
                value: pos + 8,
            });
        }
        let vr = [
            *self.b.get(pos + 4).ok_or_else(|| self.truncated(pos))?,
            *self.b.get(pos + 5).ok_or_else(|| self.truncated(pos))?,
        ];
        if !(vr[0].is_ascii_uppercase() && vr[1].is_ascii_uppercase()) {
            return Err(corrupt(
                self.path,
                format!("element ({group:04X},{elem:04X}) at byte {pos} has no valid VR"),
            ));
        }
        if long_vr(vr) {
            let len = u32_at(self.b, pos + 8).ok_or_else(|| self.truncated(pos))?;
            Ok(Element {
                tag: t,
                vr: Some(vr),
                len,
                value: pos + 12,
            })
        } else {
            let len = u16_at(self.b, pos + 6).ok_or_else(|| self.truncated(pos))?;
            Ok(Element {
                tag: t,
                vr: Some(vr),
                len: u32::from(len),
                value: pos + 8,
            })
        }
    }

    /// Walks data set elements from `pos`: up to `end` (a defined-length item), to the item
    /// delimiter (an undefined-length item, `end` None at depth > 0), or to the top-level pixel
    /// data / end of file (depth 0). Returns the position after what was walked.
    fn dataset(&self, mut pos: usize, end: Option<usize>, syntax: Syntax, depth: usize, a: &mut Attrs) -> Result<usize, DataError> {
        loop {
            match end {
                Some(e) if pos == e => return Ok(pos),
                Some(e) if pos > e => return Err(corrupt(self.path, format!("element overruns its item at byte {e}"))),
                None if depth == 0 && pos >= self.b.len() => return Ok(pos),
                _ => {}
            }
            let el = self.element(pos, syntax)?;
            if el.tag == ITEM_DELIMITER {
                if depth > 0 && end.is_none() {
                    return Ok(el.value);
                }
                return Err(corrupt(self.path, format!("unexpected item delimiter at byte {pos}")));
            }
            if el.tag == ITEM || el.tag == SEQUENCE_DELIMITER {
                return Err(corrupt(self.path, format!("unexpected item tag at byte {pos}")));
            }
            if el.tag == PIXEL_DATA && depth == 0 {
                if el.len == UNDEFINED {
                    return Err(unsupported(self.path, "encapsulated (compressed) pixel data"));
                }
                let available = (el.len as usize).min(self.b.len().saturating_sub(el.value));
                a.pixels = Some((el.value, available));
                return Ok(self.b.len());
            }
            // UN of undefined length is encoded as implicit VR (PS3.5 6.2.2).
            let inner = if el.vr == Some(*b"UN") { Syntax::ImplicitLe } else { syntax };
            if el.len == UNDEFINED {
                pos = self.sequence(el.value, None, inner, depth + 1, a)?;
                continue;
            }
            let value_end = el
                .value
                .checked_add(el.len as usize)
                .filter(|&e| e <= self.b.len())
                .ok_or_else(|| {
                    corrupt(
                        self.path,
                        format!(
                            "element ({:04X},{:04X}) at byte {pos} declares {} bytes past the end",
                            el.tag >> 16,
                            el.tag & 0xFFFF,
                            el.len
                        ),
                    )
                })?;
            let is_sequence = el.vr == Some(*b"SQ") || (el.vr.is_none() && KNOWN_SEQUENCES.contains(&el.tag));
            if is_sequence {
                self.sequence(el.value, Some(value_end), syntax, depth + 1, a)?;
            } else {
                a.set(self.path, el.tag, &self.b[el.value..value_end], depth > 0)?;
            }
            pos = value_end;
        }
    }

    /// Walks the items of a sequence from `pos`, to `end` or to the sequence delimiter.
    fn sequence(&self, mut pos: usize, end: Option<usize>, syntax: Syntax, depth: usize, a: &mut Attrs) -> Result<usize, DataError> {
        if depth > MAX_DEPTH {
            return Err(corrupt(self.path, "sequences nested more than 32 deep"));
        }
        loop {
            match end {
                Some(e) if pos == e => return Ok(pos),
                Some(e) if pos > e => return Err(corrupt(self.path, format!("item overruns its sequence at byte {e}"))),
                _ => {}
            }
            let group = u16_at(self.b, pos).ok_or_else(|| corrupt(self.path, format!("sequence not terminated at byte {pos}")))?;
            let elem = u16_at(self.b, pos + 2).ok_or_else(|| self.truncated(pos))?;
            let len = u32_at(self.b, pos + 4).ok_or_else(|| self.truncated(pos))?;
            match tag(group, elem) {
                SEQUENCE_DELIMITER if end.is_none() => return Ok(pos + 8),
                ITEM if len == UNDEFINED => pos = self.dataset(pos + 8, None, syntax, depth, a)?,
                ITEM => {
                    let item_end = (pos + 8)
                        .checked_add(len as usize)
                        .filter(|&e| e <= end.unwrap_or(self.b.len()))
                        .ok_or_else(|| corrupt(self.path, format!("item at byte {pos} declares {len} bytes past its end")))?;
                    pos = self.dataset(pos + 8, Some(item_end), syntax, depth, a)?;
                }
                _ => {
                    return Err(corrupt(
                        self.path,
                        format!("expected a sequence item at byte {pos}, found ({group:04X},{elem:04X})"),
                    ))
                }
            }
        }
    }
}

impl Attrs {
    fn set(&mut self, path: &Path, t: u32, v: &[u8], nested: bool) -> Result<(), DataError> {
        if nested {
            match t {
                RESCALE_SLOPE if self.nested_slope.is_none() => self.nested_slope = Some(number(path, "RescaleSlope", v)?),
                RESCALE_INTERCEPT if self.nested_intercept.is_none() => self.nested_intercept = Some(number(path, "RescaleIntercept", v)?),
                PIXEL_SPACING if self.nested_pixel_spacing.is_none() => self.nested_pixel_spacing = Some(numbers(path, "PixelSpacing", v)?),
                SLICE_THICKNESS if self.nested_slice_thickness.is_none() && !v.is_empty() => {
                    self.nested_slice_thickness = Some(number(path, "SliceThickness", v)?)
                }
                SPACING_BETWEEN_SLICES if self.nested_spacing_between.is_none() && !v.is_empty() => {
                    self.nested_spacing_between = Some(number(path, "SpacingBetweenSlices", v)?)
                }
                IMAGE_ORIENTATION if self.nested_orientation.is_none() => {
                    self.nested_orientation = Some(numbers(path, "ImageOrientationPatient", v)?)
                }
                IMAGE_POSITION => self.nested_positions.push(numbers(path, "ImagePositionPatient", v)?),
                _ => {}
            }
            return Ok(());
        }
        // Type 2 attributes may be present and empty: an empty value is the same as absent.
        if v.iter().all(|&c| c == 0 || c == b' ')
            && !matches!(
                t,
                ROWS | COLUMNS | BITS_ALLOCATED | BITS_STORED | PIXEL_REPRESENTATION | SAMPLES_PER_PIXEL
            )
        {
            return Ok(());
        }
        match t {
            ROWS => self.rows = Some(us(path, "Rows", v)? as usize),
            COLUMNS => self.columns = Some(us(path, "Columns", v)? as usize),
            BITS_ALLOCATED => self.bits_allocated = Some(us(path, "BitsAllocated", v)?),
            BITS_STORED => self.bits_stored = Some(us(path, "BitsStored", v)?),
            PIXEL_REPRESENTATION => self.pixel_representation = Some(us(path, "PixelRepresentation", v)?),
            SAMPLES_PER_PIXEL => self.samples_per_pixel = Some(us(path, "SamplesPerPixel", v)?),
            PHOTOMETRIC => self.photometric = Some(text(v)),
            NUMBER_OF_FRAMES => {
                let n = integer(path, "NumberOfFrames", v)?;
                self.frames = Some(
                    usize::try_from(n)
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or_else(|| corrupt(path, format!("NumberOfFrames {n}")))?,
                );
            }
            RESCALE_SLOPE => self.slope = Some(number(path, "RescaleSlope", v)?),
            RESCALE_INTERCEPT => self.intercept = Some(number(path, "RescaleIntercept", v)?),
            PIXEL_SPACING => self.pixel_spacing = Some(numbers(path, "PixelSpacing", v)?),
            SLICE_THICKNESS => self.slice_thickness = Some(number(path, "SliceThickness", v)?),
            SPACING_BETWEEN_SLICES => self.spacing_between = Some(number(path, "SpacingBetweenSlices", v)?),
            IMAGE_POSITION => self.position = Some(numbers(path, "ImagePositionPatient", v)?),
            IMAGE_ORIENTATION => self.orientation = Some(numbers(path, "ImageOrientationPatient", v)?),
            INSTANCE_NUMBER => self.instance_number = Some(integer(path, "InstanceNumber", v)?),
            SERIES_UID => self.series_uid = Some(text(v)),
            GRID_FRAME_OFFSETS => self.grid_offsets = number_list(path, "GridFrameOffsetVector", v)?,
            _ => {}
        }
        Ok(())
    }
}

/// Parses a whole DICOM file held in memory. `Ok(None)`: a valid DICOM file without pixel data
/// (a DICOMDIR, a structured report), which a series reader skips.
/// A deflated data set inflates through `budget`; the image may have `max_voxels` voxels.
fn parse(path: &Path, bytes: &[u8], budget: &InflateBudget, max_voxels: u64) -> Result<Option<DicomImage>, DataError> {
    let mut pos = if bytes.get(128..132) == Some(b"DICM") {
        132
    } else if looks_like_bare_dataset(bytes) {
        0
    } else {
        return Err(unsupported(path, "not a DICOM file (no DICM preamble)"));
    };
    let p = Parser { path, b: bytes };
    // File meta group: always explicit VR little endian.
    let mut syntax_uid = None;
    while u16_at(bytes, pos) == Some(0x0002) {
        let el = p.element(pos, Syntax::ExplicitLe)?;
        if el.len == UNDEFINED {
            return Err(corrupt(path, "undefined length in the file meta group"));
        }
        let end = el
            .value
            .checked_add(el.len as usize)
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| corrupt(path, "file meta element past the end"))?;
        if el.tag == TRANSFER_SYNTAX {
            syntax_uid = Some(text(&bytes[el.value..end]));
        }
        pos = end;
    }
    let inflated;
    let (data, syntax) = match syntax_uid.as_deref() {
        Some("1.2.840.10008.1.2") => (bytes, Syntax::ImplicitLe),
        Some("1.2.840.10008.1.2.1") => (bytes, Syntax::ExplicitLe),
        Some("1.2.840.10008.1.2.1.99") => {
            // Deflated explicit VR LE: the rest of the file is a raw deflate stream. Its output
            // counts against the load's budget while it inflates; past it, the load stops with
            // `DecompressionLimit` rather than buffering more.
            let mut out = Vec::new();
            budget
                .reader(flate2::read::DeflateDecoder::new(bytes.get(pos..).unwrap_or_default()))
                .read_to_end(&mut out)
                .map_err(|e| read_error(path, "deflated data set", e))?;
            inflated = out;
            pos = 0;
            (inflated.as_slice(), Syntax::ExplicitLe)
        }
        Some("1.2.840.10008.1.2.2") => return Err(unsupported(path, "transfer syntax 1.2.840.10008.1.2.2 (explicit VR big endian)")),
        Some(other) => {
            return Err(unsupported(
                path,
                format!("transfer syntax {other} (compressed pixel data is not read)"),
            ))
        }
        None => {
            // No meta group: guess the encoding from the first element.
            let explicit =
                matches!((bytes.get(pos + 4), bytes.get(pos + 5)), (Some(a), Some(b)) if a.is_ascii_uppercase() && b.is_ascii_uppercase());
            (bytes, if explicit { Syntax::ExplicitLe } else { Syntax::ImplicitLe })
        }
    };
    let p = Parser { path, b: data };
    let mut a = Attrs::default();
    p.dataset(pos, None, syntax, 0, &mut a)?;
    let Some((offset, available)) = a.pixels else { return Ok(None) };
    image(path, data, offset, available, a, max_voxels).map(Some)
}

fn image(path: &Path, data: &[u8], offset: usize, available: usize, a: Attrs, max_voxels: u64) -> Result<DicomImage, DataError> {
    let missing = |name: &str| corrupt(path, format!("no {name}"));
    let rows = a.rows.ok_or_else(|| missing("Rows"))?;
    let columns = a.columns.ok_or_else(|| missing("Columns"))?;
    let frames = a.frames.unwrap_or(1);
    if rows == 0 || columns == 0 {
        return Err(corrupt(path, format!("{rows} x {columns} image")));
    }
    let samples = a.samples_per_pixel.unwrap_or(1);
    if samples != 1 {
        return Err(unsupported(path, format!("{samples} samples per pixel (colour images)")));
    }
    if let Some(ph) = &a.photometric {
        if !(ph.is_empty() || ph == "MONOCHROME1" || ph == "MONOCHROME2") {
            return Err(unsupported(path, format!("photometric interpretation {ph}")));
        }
    }
    let bits = a.bits_allocated.ok_or_else(|| missing("BitsAllocated"))?;
    if !matches!(bits, 8 | 16 | 32) {
        return Err(unsupported(path, format!("BitsAllocated {bits} (8, 16 or 32 are read)")));
    }
    let stored = a.bits_stored.unwrap_or(bits);
    if stored == 0 || stored > bits {
        return Err(corrupt(path, format!("BitsStored {stored} with BitsAllocated {bits}")));
    }
    let signed = match a.pixel_representation.unwrap_or(0) {
        0 => false,
        1 => true,
        r => return Err(corrupt(path, format!("PixelRepresentation {r}"))),
    };
    let slope = a.slope.or(a.nested_slope).unwrap_or(1.0);
    let intercept = a.intercept.or(a.nested_intercept).unwrap_or(0.0);
    if slope == 0.0 {
        return Err(corrupt(path, "RescaleSlope 0"));
    }
    let size = usize::from(bits / 8);
    let (count, nbytes) = checked_size_limited(path, &[columns, rows, frames], size, max_voxels)?;
    if nbytes > available {
        return Err(corrupt(
            path,
            format!("pixel data has {available} bytes, {frames} frame(s) of {rows} x {columns} x {bits} bits need {nbytes}"),
        ));
    }
    let raw = &data[offset..offset + nbytes];
    let mask: u32 = if stored >= 32 { u32::MAX } else { (1u32 << stored) - 1 };
    let convert = |v: u32| -> f32 {
        let v = v & mask;
        let value = if signed && stored < 32 && v >> (stored - 1) & 1 == 1 {
            f64::from(v) - f64::from(mask) - 1.0
        } else if signed && stored == 32 {
            f64::from(v as i32)
        } else {
            f64::from(v)
        };
        (value * slope + intercept) as f32
    };
    let mut pixels = Vec::with_capacity(count);
    match size {
        1 => pixels.extend(raw.iter().map(|&b| convert(u32::from(b)))),
        2 => pixels.extend(raw.chunks_exact(2).map(|c| convert(u32::from(u16::from_le_bytes([c[0], c[1]]))))),
        _ => pixels.extend(raw.chunks_exact(4).map(|c| convert(u32::from_le_bytes([c[0], c[1], c[2], c[3]])))),
    }
    let orientation = a.orientation.or(a.nested_orientation);
    let frame_positions = if a.nested_positions.len() == frames {
        a.nested_positions
    } else if frames > 1 && a.grid_offsets.len() == frames {
        // RT dose: frame f lies at ImagePositionPatient + offset_f * normal.
        let base = a.position.unwrap_or([0.0; 3]);
        let n = normal(orientation);
        a.grid_offsets
            .iter()
            .map(|o| [base[0] + o * n[0], base[1] + o * n[1], base[2] + o * n[2]])
            .collect()
    } else {
        Vec::new()
    };
    Ok(DicomImage {
        rows,
        columns,
        frames,
        pixel_spacing: a.pixel_spacing.or(a.nested_pixel_spacing),
        slice_thickness: a.slice_thickness.or(a.nested_slice_thickness),
        spacing_between_slices: a.spacing_between.or(a.nested_spacing_between),
        position: a.position,
        orientation,
        frame_positions,
        instance_number: a.instance_number,
        series_uid: a.series_uid,
        data: pixels,
    })
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

fn normal(orientation: Option<[f64; 6]>) -> [f64; 3] {
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
    Ok(Volume {
        dims: [img.columns, img.rows, img.frames],
        spacing_mm: [sx, sy, dz],
        data,
    })
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
    Ok(Volume {
        dims: [columns, rows, depth],
        spacing_mm: [sx, sy, dz],
        data,
    })
}
