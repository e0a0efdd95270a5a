//! The file meta group (PS3.10 7.1), the deflated data set (PS3.5 A.5) and the image attributes
//! read from a parsed data set (PS3.3 C.7.6.2 Image Plane, C.7.6.3 Image Pixel, C.11.1 Modality
//! LUT, C.7.6.16 Multi-frame Functional Groups, C.8.8.3 RT Dose).

use super::super::{corrupt, read_error, unsupported, DataError, InflateBudget};
use super::DicomImage;
use dicom_core::Tag;
use dicom_object::InMemDicomObject;
use std::io::Read;
use std::path::Path;

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

/// A file split into its meta information and its data set.
pub struct File<'a> {
    pub transfer_syntax: String,
    pub sop_class: Option<String>,
    pub sop_instance: Option<String>,
    pub data_set: &'a [u8],
}

fn text(v: &[u8]) -> String {
    String::from_utf8_lossy(v)
        .trim_matches(|c: char| c == '\0' || c.is_whitespace())
        .to_string()
}

/// Finds the meta group and reads the three elements used (transfer syntax, SOP class and
/// instance). The group is walked element by element (explicit VR little endian, PS3.10 7.1)
/// rather than trusting its group length, which some writers omit.
pub fn split<'a>(path: &Path, bytes: &'a [u8]) -> Result<File<'a>, DataError> {
    let mut pos = if bytes.get(128..132) == Some(b"DICM") {
        132
    } else if looks_like_bare_dataset(bytes) {
        0
    } else {
        return Err(unsupported(path, "not a DICOM file (no DICM preamble)"));
    };
    let (mut ts, mut class, mut instance) = (None, None, None);
    while u16_at(bytes, pos) == Some(0x0002) {
        let truncated = || corrupt(path, format!("truncated file meta element at byte {pos}"));
        let element = u16_at(bytes, pos + 2).ok_or_else(truncated)?;
        let vr = bytes.get(pos + 4..pos + 6).ok_or_else(truncated)?;
        if !vr.iter().all(u8::is_ascii_uppercase) {
            return Err(corrupt(path, format!("file meta element at byte {pos} has no valid VR")));
        }
        let long = matches!(
            vr,
            b"OB" | b"OW" | b"OF" | b"SQ" | b"UN" | b"UT" | b"UC" | b"UR" | b"OD" | b"OL" | b"OV"
        );
        let (len, value) = if long {
            (u32_at(bytes, pos + 8).ok_or_else(truncated)?, pos + 12)
        } else {
            (u32::from(u16_at(bytes, pos + 6).ok_or_else(truncated)?), pos + 8)
        };
        if len == u32::MAX {
            return Err(corrupt(path, "undefined length in the file meta group"));
        }
        let end = value
            .checked_add(len as usize)
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| corrupt(path, format!("file meta element at byte {pos} declares {len} bytes past the end")))?;
        let v = &bytes[value..end];
        match element {
            0x0002 => class = Some(text(v)),
            0x0003 => instance = Some(text(v)),
            0x0010 => ts = Some(text(v)),
            _ => {}
        }
        pos = end;
    }
    let data_set = &bytes[pos.min(bytes.len())..];
    let transfer_syntax = match ts.filter(|t| !t.is_empty()) {
        Some(t) => t,
        None => {
            // No meta group (or one without a transfer syntax): guess from the first element.
            let explicit = data_set.get(4..6).is_some_and(|vr| vr.iter().all(u8::is_ascii_uppercase));
            if explicit { "1.2.840.10008.1.2.1" } else { "1.2.840.10008.1.2" }.to_string()
        }
    };
    Ok(File {
        transfer_syntax,
        sop_class: class.filter(|c| !c.is_empty()),
        sop_instance: instance.filter(|c| !c.is_empty()),
        data_set,
    })
}

/// Inflates a deflated data set (raw deflate, PS3.5 A.5) within the load's budget.
pub fn inflate(path: &Path, data: &[u8], budget: &InflateBudget) -> Result<Vec<u8>, DataError> {
    let mut out = Vec::with_capacity(data.len().saturating_mul(4).min(64 << 20));
    budget
        .reader(flate2::read::DeflateDecoder::new(data))
        .read_to_end(&mut out)
        .map_err(|e| read_error(path, "deflated data set", e))?;
    Ok(out)
}

const fn t(group: u16, element: u16) -> Tag {
    Tag(group, element)
}

const SLICE_THICKNESS: Tag = t(0x0018, 0x0050);
const SPACING_BETWEEN_SLICES: Tag = t(0x0018, 0x0088);
const SERIES_UID: Tag = t(0x0020, 0x000E);
const INSTANCE_NUMBER: Tag = t(0x0020, 0x0013);
const IMAGE_POSITION: Tag = t(0x0020, 0x0032);
const IMAGE_ORIENTATION: Tag = t(0x0020, 0x0037);
const SAMPLES_PER_PIXEL: Tag = t(0x0028, 0x0002);
const PHOTOMETRIC: Tag = t(0x0028, 0x0004);
const NUMBER_OF_FRAMES: Tag = t(0x0028, 0x0008);
const ROWS: Tag = t(0x0028, 0x0010);
const COLUMNS: Tag = t(0x0028, 0x0011);
const PIXEL_SPACING: Tag = t(0x0028, 0x0030);
const BITS_ALLOCATED: Tag = t(0x0028, 0x0100);
const BITS_STORED: Tag = t(0x0028, 0x0101);
const HIGH_BIT: Tag = t(0x0028, 0x0102);
const PIXEL_REPRESENTATION: Tag = t(0x0028, 0x0103);
const RESCALE_INTERCEPT: Tag = t(0x0028, 0x1052);
const RESCALE_SLOPE: Tag = t(0x0028, 0x1053);
const GRID_FRAME_OFFSETS: Tag = t(0x3004, 0x000C);
const SHARED_GROUPS: Tag = t(0x5200, 0x9229);
const PER_FRAME_GROUPS: Tag = t(0x5200, 0x9230);
const PIXEL_MEASURES: Tag = t(0x0028, 0x9110);
const PLANE_POSITION: Tag = t(0x0020, 0x9113);
const PLANE_ORIENTATION: Tag = t(0x0020, 0x9116);
const VALUE_TRANSFORMATION: Tag = t(0x0028, 0x9145);

type Obj = InMemDicomObject;

fn items(o: &Obj, tag: Tag) -> &[Obj] {
    o.get(tag).and_then(|e| e.items()).unwrap_or(&[])
}

/// A text attribute; absent and empty (type 2) are both None.
fn string(o: &Obj, tag: Tag) -> Option<String> {
    o.get(tag)
        .and_then(|e| e.to_str().ok())
        .map(|s| text(s.as_bytes()))
        .filter(|s| !s.is_empty())
}

fn floats(path: &Path, o: &Obj, tag: Tag, name: &str) -> Result<Option<Vec<f64>>, DataError> {
    let Some(e) = o.get(tag) else { return Ok(None) };
    if e.to_str()
        .map(|s| s.trim_matches(|c: char| c == '\0' || c.is_whitespace()).is_empty())
        .unwrap_or(false)
    {
        return Ok(None);
    }
    let v = e.to_multi_float64().map_err(|_| corrupt(path, format!("{name} is not numeric")))?;
    if v.iter().any(|x| !x.is_finite()) {
        return Err(corrupt(path, format!("{name} is not finite")));
    }
    Ok(Some(v))
}

fn fixed<const K: usize>(path: &Path, o: &Obj, tag: Tag, name: &str) -> Result<Option<[f64; K]>, DataError> {
    let Some(v) = floats(path, o, tag, name)? else { return Ok(None) };
    let mut out = [0.0; K];
    if v.len() < K {
        return Err(corrupt(path, format!("{name} has fewer than {K} values")));
    }
    out.copy_from_slice(&v[..K]);
    Ok(Some(out))
}

fn one(path: &Path, o: &Obj, tag: Tag, name: &str) -> Result<Option<f64>, DataError> {
    fixed::<1>(path, o, tag, name).map(|v| v.map(|[x]| x))
}

fn int(path: &Path, o: &Obj, tag: Tag, name: &str) -> Result<Option<i64>, DataError> {
    let Some(e) = o.get(tag) else { return Ok(None) };
    if e.to_str()
        .map(|s| s.trim_matches(|c: char| c == '\0' || c.is_whitespace()).is_empty())
        .unwrap_or(false)
    {
        return Ok(None);
    }
    e.to_int::<i64>()
        .map(Some)
        .map_err(|_| corrupt(path, format!("{name} is not an integer")))
}

/// The attributes that size, decode, rescale and place the image.
pub struct Attrs {
    rows: Option<i64>,
    columns: Option<i64>,
    frames: Option<i64>,
    bits_allocated: Option<i64>,
    bits_stored: Option<i64>,
    pixel_representation: Option<i64>,
    samples_per_pixel: Option<i64>,
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
    frame_positions: Vec<[f64; 3]>,
    grid_offsets: Vec<f64>,
}

/// The checked size of the image.
pub struct Shape {
    pub rows: usize,
    pub columns: usize,
    pub frames: usize,
    pub bits: u16,
    stored: u16,
    signed: bool,
    /// Bytes of all frames as stored (native) or decoded.
    pub bytes: usize,
}

impl Attrs {
    /// Reads the attributes of `o`: the top level first, then (enhanced multi-frame images) the
    /// shared functional groups, then the first frame's.
    pub fn read(path: &Path, o: &Obj) -> Result<Self, DataError> {
        let mut groups: Vec<&Obj> = vec![o];
        groups.extend(items(o, SHARED_GROUPS).first());
        let per_frame = items(o, PER_FRAME_GROUPS);
        groups.extend(per_frame.first());
        // An attribute of a functional group macro: the first group (top level, shared, first
        // frame) whose macro sequence holds it.
        let nested = |seq: Tag, tag: Tag, name: &str| -> Result<Option<Vec<f64>>, DataError> {
            for g in &groups[1..] {
                for item in items(g, seq).iter().take(1) {
                    if let Some(v) = floats(path, item, tag, name)? {
                        return Ok(Some(v));
                    }
                }
            }
            Ok(None)
        };
        let pick = |top: Option<Vec<f64>>, seq: Tag, tag: Tag, name: &str, k: usize| -> Result<Option<Vec<f64>>, DataError> {
            let v = match top {
                Some(v) => Some(v),
                None => nested(seq, tag, name)?,
            };
            match v {
                Some(v) if v.len() < k => Err(corrupt(path, format!("{name} has fewer than {k} values"))),
                v => Ok(v),
            }
        };
        let spacing = pick(
            floats(path, o, PIXEL_SPACING, "PixelSpacing")?,
            PIXEL_MEASURES,
            PIXEL_SPACING,
            "PixelSpacing",
            2,
        )?;
        let orientation = pick(
            floats(path, o, IMAGE_ORIENTATION, "ImageOrientationPatient")?,
            PLANE_ORIENTATION,
            IMAGE_ORIENTATION,
            "ImageOrientationPatient",
            6,
        )?;
        let first = |v: Option<Vec<f64>>| v.and_then(|v| v.first().copied());
        let mut frame_positions = Vec::new();
        for f in per_frame {
            for item in items(f, PLANE_POSITION).iter().take(1) {
                if let Some(p) = fixed::<3>(path, item, IMAGE_POSITION, "ImagePositionPatient")? {
                    frame_positions.push(p);
                }
            }
        }
        Ok(Attrs {
            rows: int(path, o, ROWS, "Rows")?,
            columns: int(path, o, COLUMNS, "Columns")?,
            frames: int(path, o, NUMBER_OF_FRAMES, "NumberOfFrames")?,
            bits_allocated: int(path, o, BITS_ALLOCATED, "BitsAllocated")?,
            bits_stored: int(path, o, BITS_STORED, "BitsStored")?,
            pixel_representation: int(path, o, PIXEL_REPRESENTATION, "PixelRepresentation")?,
            samples_per_pixel: int(path, o, SAMPLES_PER_PIXEL, "SamplesPerPixel")?,
            photometric: string(o, PHOTOMETRIC),
            slope: first(pick(
                one(path, o, RESCALE_SLOPE, "RescaleSlope")?.map(|x| vec![x]),
                VALUE_TRANSFORMATION,
                RESCALE_SLOPE,
                "RescaleSlope",
                1,
            )?),
            intercept: first(pick(
                one(path, o, RESCALE_INTERCEPT, "RescaleIntercept")?.map(|x| vec![x]),
                VALUE_TRANSFORMATION,
                RESCALE_INTERCEPT,
                "RescaleIntercept",
                1,
            )?),
            pixel_spacing: spacing.map(|v| [v[0], v[1]]),
            slice_thickness: first(pick(
                one(path, o, SLICE_THICKNESS, "SliceThickness")?.map(|x| vec![x]),
                PIXEL_MEASURES,
                SLICE_THICKNESS,
                "SliceThickness",
                1,
            )?),
            spacing_between: first(pick(
                one(path, o, SPACING_BETWEEN_SLICES, "SpacingBetweenSlices")?.map(|x| vec![x]),
                PIXEL_MEASURES,
                SPACING_BETWEEN_SLICES,
                "SpacingBetweenSlices",
                1,
            )?),
            position: fixed::<3>(path, o, IMAGE_POSITION, "ImagePositionPatient")?,
            orientation: orientation.map(|v| [v[0], v[1], v[2], v[3], v[4], v[5]]),
            instance_number: int(path, o, INSTANCE_NUMBER, "InstanceNumber")?,
            series_uid: string(o, SERIES_UID),
            frame_positions,
            grid_offsets: floats(path, o, GRID_FRAME_OFFSETS, "GridFrameOffsetVector")?.unwrap_or_default(),
        })
    }

    /// Checks the image attributes and its size against the limits, before any decoding.
    pub fn check(&self, path: &Path, max_voxels: u64) -> Result<Shape, DataError> {
        let missing = |name: &str| corrupt(path, format!("no {name}"));
        let size = |v: i64, name: &str| usize::try_from(v).map_err(|_| corrupt(path, format!("{name} {v}")));
        let rows = size(self.rows.ok_or_else(|| missing("Rows"))?, "Rows")?;
        let columns = size(self.columns.ok_or_else(|| missing("Columns"))?, "Columns")?;
        let frames = match self.frames {
            None => 1,
            Some(n) if n > 0 => size(n, "NumberOfFrames")?,
            Some(n) => return Err(corrupt(path, format!("NumberOfFrames {n}"))),
        };
        if rows == 0 || columns == 0 {
            return Err(corrupt(path, format!("{rows} x {columns} image")));
        }
        let samples = self.samples_per_pixel.unwrap_or(1);
        if samples != 1 {
            return Err(unsupported(path, format!("{samples} samples per pixel (colour images)")));
        }
        if let Some(ph) = &self.photometric {
            if !(ph == "MONOCHROME1" || ph == "MONOCHROME2") {
                return Err(unsupported(path, format!("photometric interpretation {ph}")));
            }
        }
        let bits = self.bits_allocated.ok_or_else(|| missing("BitsAllocated"))?;
        if !matches!(bits, 8 | 16 | 32) {
            return Err(unsupported(path, format!("BitsAllocated {bits} (8, 16 or 32 are read)")));
        }
        let stored = self.bits_stored.unwrap_or(bits);
        if stored <= 0 || stored > bits {
            return Err(corrupt(path, format!("BitsStored {stored} with BitsAllocated {bits}")));
        }
        let signed = match self.pixel_representation.unwrap_or(0) {
            0 => false,
            1 => true,
            r => return Err(corrupt(path, format!("PixelRepresentation {r}"))),
        };
        if self.slope == Some(0.0) {
            return Err(corrupt(path, "RescaleSlope 0"));
        }
        let bytes = super::image_bytes(path, [columns, rows, frames], bits as usize / 8, max_voxels)?;
        Ok(Shape {
            rows,
            columns,
            frames,
            bits: bits as u16,
            stored: stored as u16,
            signed,
            bytes,
        })
    }

    /// Puts the Image Pixel attributes dicom-pixeldata requires, where absent, with the values
    /// this reader assumes (PS3.3 C.7.6.3: HighBit = BitsStored - 1).
    pub fn fill_defaults(&self, o: &mut Obj, s: &Shape) {
        use dicom_core::{DataElement, PrimitiveValue, VR};
        let us = |o: &mut Obj, tag: Tag, v: u16| {
            if o.get(tag).is_none() {
                o.put(DataElement::new(tag, VR::US, PrimitiveValue::from(v)));
            }
        };
        us(o, BITS_STORED, s.stored);
        us(o, HIGH_BIT, s.stored - 1);
        us(o, PIXEL_REPRESENTATION, u16::from(s.signed));
        us(o, SAMPLES_PER_PIXEL, 1);
        if o.get(PHOTOMETRIC).is_none() {
            o.put(DataElement::new(PHOTOMETRIC, VR::CS, PrimitiveValue::from("MONOCHROME2")));
        }
    }

    /// Stored samples (little endian, as dicom-pixeldata hands them over) to rescaled values.
    pub fn values(&self, raw: &[u8], s: &Shape) -> Vec<f32> {
        let (slope, intercept) = (self.slope.unwrap_or(1.0), self.intercept.unwrap_or(0.0));
        let stored = u32::from(s.stored);
        let mask: u32 = if stored >= 32 { u32::MAX } else { (1u32 << stored) - 1 };
        let signed = s.signed;
        let convert = |v: u32| -> f32 {
            let v = v & mask;
            let value = if signed && stored < 32 && (v >> (stored - 1)) & 1 == 1 {
                f64::from(v) - f64::from(mask) - 1.0
            } else if signed && stored == 32 {
                f64::from(v as i32)
            } else {
                f64::from(v)
            };
            (value * slope + intercept) as f32
        };
        match s.bits {
            8 => raw.iter().map(|&b| convert(u32::from(b))).collect(),
            16 => raw
                .chunks_exact(2)
                .map(|c| convert(u32::from(u16::from_le_bytes([c[0], c[1]]))))
                .collect(),
            _ => raw
                .chunks_exact(4)
                .map(|c| convert(u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                .collect(),
        }
    }

    pub fn into_image(self, s: Shape, data: Vec<f32>) -> DicomImage {
        let frame_positions = if self.frame_positions.len() == s.frames {
            self.frame_positions
        } else if s.frames > 1 && self.grid_offsets.len() == s.frames {
            // RT dose (PS3.3 C.8.8.3.2): frame f lies at ImagePositionPatient + offset_f * normal.
            let base = self.position.unwrap_or([0.0; 3]);
            let n = super::series::normal(self.orientation);
            self.grid_offsets
                .iter()
                .map(|o| [base[0] + o * n[0], base[1] + o * n[1], base[2] + o * n[2]])
                .collect()
        } else {
            Vec::new()
        };
        DicomImage {
            rows: s.rows,
            columns: s.columns,
            frames: s.frames,
            pixel_spacing: self.pixel_spacing,
            slice_thickness: self.slice_thickness,
            spacing_between_slices: self.spacing_between,
            position: self.position,
            orientation: self.orientation,
            frame_positions,
            instance_number: self.instance_number,
            series_uid: self.series_uid,
            data,
        }
    }
}
