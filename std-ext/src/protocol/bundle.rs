//! One container (`clifhe-bundle/1`) for the files that cross the wire between hospital and vendor: a key set's
//! public material (upload) and a job's scores directory (download).
//!
//! ```text
//! 0..8        magic "CLHEBNDL"
//! 8..12       index length h (u32 LE, at most 1 MiB)
//! 12..12+h    index (JSON, `Index`): format, then (name, length, sha256) per file, sorted by name
//! then        the file bodies, in index order, back to back
//! ```
//! The encoding is canonical (sorted names, compact JSON from a fixed struct), so the SHA-256 of
//! the whole container names its content: a key set's digest is its id on the server, and the
//! hospital re-derives it locally before uploading anything. Every reader checks each body
//! against its index digest and that nothing trails; names are plain relative paths from a
//! per-kind allow-list, so a bundle can never write outside its directory or smuggle a secret
//! key in.

use super::profile::sha256_hex;
use serde::{Deserialize, Serialize};
use std::fmt;

/// First bytes of every bundle.
pub const MAGIC: [u8; 8] = *b"CLHEBNDL";
/// The index's format tag.
pub const FORMAT: &str = "clifhe-bundle/1";
const MAX_INDEX: usize = 1 << 20;
/// At most this many files (a key set with every rotation key has about 20).
const MAX_FILES: usize = 256;

/// What a bundle holds: the allow-list of its file names differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `keyset.json`, `public.key`, `eval/<name>.key`.
    KeySet,
    /// `scores.json`, `class-<c>.ct` (or one `scores.ct` for the block layout).
    Scores,
}

/// One file of a bundle's index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Relative file name, from the kind's allow-list.
    pub name: String,
    /// Body length in bytes.
    pub len: u64,
    /// SHA-256 of the body, lowercase hex.
    pub sha256: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Index {
    format: String,
    files: Vec<Entry>,
}

/// Why a bundle was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BundleError {
    /// Not a well-formed bundle (magic, index, lengths, order, trailing bytes).
    Malformed(String),
    /// A file name outside the kind's allow-list; `secret` when it names a secret key.
    BadName {
        /// The refused name.
        name: String,
        /// Whether it names a secret key.
        secret: bool,
    },
    /// A body that does not match its index digest.
    DigestMismatch {
        /// The file's name.
        name: String,
    },
}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(r) => write!(f, "malformed bundle: {r}"),
            Self::BadName { name, secret: true } => {
                write!(f, "bundle holds {name}: secret keys never leave the hospital")
            }
            Self::BadName { name, .. } => write!(f, "bundle holds an unexpected file {name}"),
            Self::DigestMismatch { name } => write!(f, "bundle file {name} does not match its SHA-256"),
        }
    }
}

impl std::error::Error for BundleError {}

/// Whether a name looks like a secret key (refused by both sides, whatever the kind).
pub fn is_secret_name(name: &str) -> bool {
    name.to_ascii_lowercase().contains("secret")
}

fn plain_file_name(s: &str) -> bool {
    !s.is_empty() && !s.starts_with('.') && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// Whether `name` is allowed in a bundle of `kind`.
pub fn allowed(kind: Kind, name: &str) -> bool {
    if is_secret_name(name) {
        return false;
    }
    match kind {
        Kind::KeySet => {
            name == "keyset.json"
                || name == "public.key"
                || name
                    .strip_prefix("eval/")
                    .is_some_and(|f| plain_file_name(f) && f.ends_with(".key"))
        }
        Kind::Scores => {
            name == "scores.json"
                || name == "scores.ct"
                || name
                    .strip_prefix("class-")
                    .and_then(|r| r.strip_suffix(".ct"))
                    .is_some_and(|c| !c.is_empty() && c.len() < 6 && c.bytes().all(|b| b.is_ascii_digit()))
        }
    }
}

fn check_name(kind: Kind, name: &str) -> Result<(), BundleError> {
    if allowed(kind, name) {
        Ok(())
    } else {
        Err(BundleError::BadName {
            name: name.into(),
            secret: is_secret_name(name),
        })
    }
}

/// Encodes files (name, body) canonically: sorted by name, no duplicates.
pub fn encode(kind: Kind, files: &[(String, Vec<u8>)]) -> Result<Vec<u8>, BundleError> {
    let mut order: Vec<&(String, Vec<u8>)> = files.iter().collect();
    order.sort_by(|a, b| a.0.cmp(&b.0));
    if order.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(BundleError::Malformed("duplicate file name".into()));
    }
    if order.len() > MAX_FILES {
        return Err(BundleError::Malformed("too many files".into()));
    }
    for (n, _) in &order {
        check_name(kind, n)?;
    }
    let index = Index {
        format: FORMAT.into(),
        files: order
            .iter()
            .map(|(n, b)| Entry {
                name: n.clone(),
                len: b.len() as u64,
                sha256: sha256_hex(b),
            })
            .collect(),
    };
    let json = serde_json::to_vec(&index).map_err(|e| BundleError::Malformed(e.to_string()))?;
    if json.len() > MAX_INDEX {
        return Err(BundleError::Malformed("index larger than 1 MiB".into()));
    }
    let mut out = Vec::with_capacity(12 + json.len() + order.iter().map(|f| f.1.len()).sum::<usize>());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(&json);
    for (_, b) in order {
        out.extend_from_slice(b);
    }
    Ok(out)
}

/// Decodes and checks a bundle of `kind`: names, lengths, per-file digests, canonical order,
/// nothing trailing. Returns (entry, body) pairs borrowing from `bytes`.
pub fn decode(kind: Kind, bytes: &[u8]) -> Result<Vec<(Entry, &[u8])>, BundleError> {
    let bad = |r: &str| BundleError::Malformed(r.into());
    let rest = bytes.strip_prefix(&MAGIC).ok_or_else(|| bad("bad magic"))?;
    let (len, rest) = rest.split_first_chunk::<4>().ok_or_else(|| bad("truncated"))?;
    let h = u32::from_le_bytes(*len) as usize;
    if h > MAX_INDEX || h > rest.len() {
        return Err(bad("truncated index"));
    }
    let (json, mut rest) = rest.split_at(h);
    let index: Index = serde_json::from_slice(json).map_err(|e| BundleError::Malformed(format!("index: {e}")))?;
    if index.format != FORMAT {
        return Err(bad("unknown format"));
    }
    if index.files.len() > MAX_FILES || index.files.windows(2).any(|w| w[0].name >= w[1].name) {
        return Err(bad("file names not sorted and unique"));
    }
    let mut out = Vec::with_capacity(index.files.len());
    for e in index.files {
        check_name(kind, &e.name)?;
        let n = usize::try_from(e.len).map_err(|_| bad("length out of range"))?;
        if n > rest.len() {
            return Err(bad("truncated body"));
        }
        let (body, tail) = rest.split_at(n);
        rest = tail;
        if sha256_hex(body) != e.sha256 {
            return Err(BundleError::DigestMismatch { name: e.name });
        }
        out.push((e, body));
    }
    if !rest.is_empty() {
        return Err(bad("trailing bytes"));
    }
    // One encoding per content: the index must be exactly what `encode` writes (compact JSON,
    // fields in order, no extra fields), so equal material always has one digest. Checked last,
    // so a refused name (a secret key) is reported as such.
    let canonical = Index {
        format: FORMAT.into(),
        files: out.iter().map(|(e, _)| e.clone()).collect(),
    };
    if serde_json::to_vec(&canonical).map_err(|e| BundleError::Malformed(e.to_string()))? != json {
        return Err(bad("index not in canonical form"));
    }
    Ok(out)
}

/// The SHA-256 of a bundle: its id.
pub fn digest(bytes: &[u8]) -> String {
    sha256_hex(bytes)
}

/// Whether `s` is a lowercase hex SHA-256 (what ids in URLs must be).
pub fn is_digest(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> Vec<(String, Vec<u8>)> {
        vec![
            ("public.key".into(), vec![1, 2, 3]),
            ("eval/relin.key".into(), vec![4; 10]),
            ("keyset.json".into(), b"{}".to_vec()),
        ]
    }

    #[test]
    fn round_trip_is_canonical() {
        let a = encode(Kind::KeySet, &files()).unwrap();
        let mut rev = files();
        rev.reverse();
        assert_eq!(a, encode(Kind::KeySet, &rev).unwrap(), "order of input must not matter");
        let d = decode(Kind::KeySet, &a).unwrap();
        let names: Vec<&str> = d.iter().map(|(e, _)| e.name.as_str()).collect();
        assert_eq!(names, ["eval/relin.key", "keyset.json", "public.key"]);
        assert_eq!(d[0].1, &[4; 10]);
    }

    #[test]
    fn refuses_secrets_paths_damage_and_truncation() {
        let mut f = files();
        f.push(("secret.key".into(), vec![9]));
        assert!(matches!(encode(Kind::KeySet, &f), Err(BundleError::BadName { secret: true, .. })));
        for name in ["../x", "eval/../../x", "/etc/passwd", "eval/.hidden.key", "other.bin"] {
            assert!(!allowed(Kind::KeySet, name), "{name}");
        }
        assert!(allowed(Kind::Scores, "class-2.ct") && !allowed(Kind::Scores, "class-.ct") && !allowed(Kind::Scores, "public.key"));
        let a = encode(Kind::KeySet, &files()).unwrap();
        for cut in [0, 5, 12, a.len() - 1] {
            assert!(decode(Kind::KeySet, &a[..cut]).is_err(), "cut at {cut}");
        }
        let mut flipped = a.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(matches!(decode(Kind::KeySet, &flipped), Err(BundleError::DigestMismatch { .. })));
        let mut long = a;
        long.push(0);
        assert!(decode(Kind::KeySet, &long).is_err());
        // A scores bundle is not a key set bundle.
        let s = encode(Kind::Scores, &[("scores.json".into(), vec![])]).unwrap();
        assert!(decode(Kind::KeySet, &s).is_err());
    }

    #[test]
    fn one_encoding_per_content() {
        let a = encode(Kind::KeySet, &files()).unwrap();
        let h = u32::from_le_bytes(a[8..12].try_into().unwrap()) as usize;
        let index: serde_json::Value = serde_json::from_slice(&a[12..12 + h]).unwrap();
        // The same index with a space, or with its fields in another order: same content,
        // other bytes, refused.
        let spaced = serde_json::to_vec_pretty(&index).unwrap();
        let reordered = format!("{{\"files\":{},\"format\":\"{FORMAT}\"}}", index["files"]).into_bytes();
        for other in [spaced, reordered] {
            let mut b = MAGIC.to_vec();
            b.extend_from_slice(&(other.len() as u32).to_le_bytes());
            b.extend_from_slice(&other);
            b.extend_from_slice(&a[12 + h..]);
            assert_eq!(
                decode(Kind::KeySet, &b),
                Err(BundleError::Malformed("index not in canonical form".into()))
            );
        }
    }
}
