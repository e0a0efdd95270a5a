//! A structural pass over a data set before dicom-rs reads it.
//!
//! dicom-rs allocates each element's declared length before reading its value (it reserves,
//! then zero-fills), so a 200-byte file whose one element declares a length of 0xFFFFFFF0 would
//! make it allocate 4 GiB before noticing the bytes are missing. This pass walks the element
//! headers with dicom-rs's own header decoder (so every transfer syntax's byte order and VR
//! rules are the ones the reader applies) and skips the values, checking that:
//! - every defined length fits in the bytes that remain (PS3.5 7.1: the value field holds exactly
//!   the declared number of bytes), so no later allocation exceeds the input's size;
//! - every binary value (US, UL, FL, ...) holds a whole number of values (see the walk);
//! - sequences and items nest at most [`MAX_DEPTH`] deep (dicom-rs builds nested data sets
//!   recursively; ten thousand nested sequences would overflow the stack, which is an abort,
//!   not a panic that could be caught);
//! - the top-level Pixel Data (7FE0,0010) is found: the pass returns the offset just after it,
//!   and the caller hands dicom-rs only the bytes up to there. Whatever follows the pixels
//!   (trailing padding, a truncated trailer) is ignored, as the hand-written reader did.
//!
//! The walk follows dicom-rs's own rules (dicom-parser's `DataSetReader`): Pixel Data of
//! undefined length is an encapsulated pixel sequence whose items (PS3.5 A.4) hold fragments,
//! skipped whole; any other element of undefined length is a sequence of items.

use super::super::{corrupt, unsupported, DataError};
use dicom_core::{Tag, VR};
use dicom_encoding::TransferSyntax;
use dicom_parser::stateful::decode::{StatefulDecode, StatefulDecoder};
use std::path::Path;

/// Deepest nesting of sequences and items accepted.
pub const MAX_DEPTH: usize = 32;

const ITEM: Tag = Tag(0xFFFE, 0xE000);
const ITEM_DELIMITER: Tag = Tag(0xFFFE, 0xE00D);
const SEQUENCE_DELIMITER: Tag = Tag(0xFFFE, 0xE0DD);
const PIXEL_DATA: Tag = Tag(0x7FE0, 0x0010);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sequence,
    Item,
    /// An encapsulated pixel data element: its items are fragments.
    Fragments,
}

struct Open {
    kind: Kind,
    /// Offset where a defined-length container ends (None: ends at its delimiter).
    end: Option<u64>,
}

/// What the walk found.
pub enum Walk {
    /// The top-level pixel data ends at this offset (relative to the data set's start).
    PixelDataEnd(u64),
    /// The data set ends without top-level pixel data.
    NoPixelData,
}

/// Walks `data` (a data set encoded in `ts`, no meta group) as described in the module docs.
pub fn walk(path: &Path, data: &[u8], ts: &TransferSyntax) -> Result<Walk, DataError> {
    let total = data.len() as u64;
    let bad = |what: String| corrupt(path, what);
    let mut dec = StatefulDecoder::new_with_ts(std::io::Cursor::new(data), ts, 0).map_err(|e| bad(format!("data set decoder: {e}")))?;
    let mut stack: Vec<Open> = Vec::new();
    loop {
        let pos = dec.position();
        while let Some(top) = stack.last() {
            match top.end {
                Some(end) if end == pos => {
                    stack.pop();
                }
                Some(end) if end < pos => return Err(bad(format!("an element overruns its item or sequence ending at byte {end}"))),
                _ => break,
            }
        }
        if pos >= total {
            if stack.is_empty() {
                return Ok(Walk::NoPixelData);
            }
            return Err(bad("the data set ends inside a sequence".into()));
        }
        let h = dec.decode_header().map_err(|e| bad(format!("element header at byte {pos}: {e}")))?;
        let after = dec.position();
        let left = total - after;
        let len = h.len.get();
        let in_fragments = stack.last().is_some_and(|o| o.kind == Kind::Fragments);
        let too_long = |n: u32| {
            bad(format!(
                "element ({:04X},{:04X}) at byte {pos} declares {n} bytes, {left} remain",
                h.tag.0, h.tag.1
            ))
        };
        let push = |stack: &mut Vec<Open>, kind: Kind| -> Result<(), DataError> {
            if stack.len() >= MAX_DEPTH {
                return Err(corrupt(path, format!("sequences nested more than {MAX_DEPTH} deep")));
            }
            if let Some(n) = len.filter(|&n| u64::from(n) > left) {
                return Err(too_long(n));
            }
            stack.push(Open {
                kind,
                end: len.map(|n| after + u64::from(n)),
            });
            Ok(())
        };
        match h.tag {
            ITEM if in_fragments => {
                let n = len.ok_or_else(|| bad(format!("pixel data fragment of undefined length at byte {pos}")))?;
                if u64::from(n) > left {
                    return Err(too_long(n));
                }
                dec.skip_bytes(n).map_err(|e| bad(format!("fragment at byte {pos}: {e}")))?;
            }
            ITEM => push(&mut stack, Kind::Item)?,
            ITEM_DELIMITER => match stack.last() {
                Some(Open {
                    kind: Kind::Item,
                    end: None,
                }) => {
                    stack.pop();
                }
                _ => return Err(bad(format!("unexpected item delimiter at byte {pos}"))),
            },
            SEQUENCE_DELIMITER => match stack.last() {
                Some(Open {
                    kind: Kind::Sequence | Kind::Fragments,
                    end: None,
                }) => {
                    stack.pop();
                    if stack.is_empty() && in_fragments {
                        // The end of the top-level encapsulated pixel data.
                        return Ok(Walk::PixelDataEnd(dec.position()));
                    }
                }
                _ => return Err(bad(format!("unexpected sequence delimiter at byte {pos}"))),
            },
            _ if h.vr == VR::SQ => push(&mut stack, Kind::Sequence)?,
            _ if len.is_none() && h.tag == PIXEL_DATA && stack.is_empty() && !ts.is_encapsulated_pixel_data() => {
                return Err(unsupported(
                    path,
                    format!("encapsulated pixel data under the uncompressed transfer syntax {}", ts.uid()),
                ))
            }
            _ if len.is_none() && h.tag == PIXEL_DATA => push(&mut stack, Kind::Fragments)?,
            // Any other element of undefined length is read by dicom-rs as a sequence (PS3.5
            // 7.5: only sequences and encapsulated pixel data may have one; in implicit VR an
            // unknown tag's VR is UN), so it is walked as one.
            _ if len.is_none() => push(&mut stack, Kind::Sequence)?,
            _ => {
                let n = len.unwrap_or(0);
                if u64::from(n) > left {
                    return Err(too_long(n));
                }
                // A binary VR's length is a whole number of values (PS3.5 6.2). dicom-rs reads
                // len / size values but advances its position by len, so a UL of length 2
                // desynchronises it: the next header comes from the wrong bytes and can declare
                // gigabytes (found by the dicom fuzz target).
                // OW too: dicom-rs reads it as 16-bit words (found again by the fuzz target: an
                // OW of length 1 in a retired pixel-data group left the next header 4 GiB long).
                let unit = match h.vr {
                    VR::US | VR::SS | VR::OW => 2,
                    VR::UL | VR::SL | VR::FL | VR::AT | VR::OF | VR::OL => 4,
                    VR::FD | VR::SV | VR::UV | VR::OD | VR::OV => 8,
                    _ => 1,
                };
                if n % unit != 0 {
                    return Err(bad(format!(
                        "element ({:04X},{:04X}) at byte {pos} has VR {:?} and length {n}, not a multiple of {unit}",
                        h.tag.0, h.tag.1, h.vr
                    )));
                }
                if h.tag == PIXEL_DATA && stack.is_empty() {
                    return Ok(Walk::PixelDataEnd(after + u64::from(n)));
                }
                dec.skip_bytes(n).map_err(|e| bad(format!("value at byte {pos}: {e}")))?;
            }
        }
    }
}
