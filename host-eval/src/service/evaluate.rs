//! The one place a job is evaluated, and the key-set cache it evaluates with.
//!
//! [`evaluate`] is the seam between the service and the protocol: today it calls the CLI's
//! file-level vendor step (`cli::protocol::infer` on a box-encoded batch file, writing a scores
//! directory), so the service and `host-eval infer` cannot diverge. When the protocol moves into
//! `clifhe_std::protocol`, only this function's body changes (to the in-memory call); its
//! inputs stay a key directory and batch bytes on disk, its output a scores directory.

use super::bundle::{self, Kind};
use crate::cli::protocol::{infer, InferInput, InferOptions, ScoresManifest};
use crate::cli::CliError;
use std::path::{Path, PathBuf};

/// Evaluates the box-encoded batch at `batch` with the model at `model` under the key set
/// materialised in `keys_dir` (`keyset.json`, `public.key`, `eval/relin.key`, ...): writes
/// `scores.json` and `class-<c>.ct` into `out` (which must not hold an older result).
pub fn evaluate(model: &Path, keys_dir: &Path, batch: &Path, out: &Path, statistical_security: u32) -> Result<ScoresManifest, CliError> {
    infer(&InferOptions {
        model: model.to_path_buf(),
        keys: keys_dir.to_path_buf(),
        input: InferInput::Batch(batch.to_path_buf()),
        out: out.to_path_buf(),
        patients: None,
        statistical_security,
        no_flooding: false,
    })
}

/// The scores directory `evaluate` wrote, as a bundle (what the hospital downloads).
pub fn scores_bundle(dir: &Path) -> Result<Vec<u8>, CliError> {
    let mpath = dir.join("scores.json");
    let manifest_bytes = crate::cli::fsio::read(&mpath)?;
    let manifest: ScoresManifest = serde_json::from_slice(&manifest_bytes).map_err(|e| CliError::corrupt(&mpath, "scores manifest", e))?;
    let mut files = vec![("scores.json".to_string(), manifest_bytes)];
    for f in &manifest.files {
        files.push((f.clone(), crate::cli::fsio::read(&dir.join(f))?));
    }
    bundle::encode(Kind::Scores, &files).map_err(|e| CliError::bad_input("scores bundle", e))
}

/// Evaluation keys materialised on disk, one directory per key-set digest, reused by every
/// job of that key set on this worker (the relinearization key of private-n15 is tens of MB).
#[derive(Debug, Clone)]
pub struct KeyCache {
    root: PathBuf,
}

impl KeyCache {
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.join("keysets"),
        }
    }

    /// The key directory of `digest` if it is complete.
    pub fn lookup(&self, digest: &str) -> Option<PathBuf> {
        let dir = self.root.join(digest);
        dir.join(".complete").exists().then_some(dir)
    }

    /// Checks `bytes` against `digest`, decodes the bundle and writes it under the digest:
    /// first into a private temporary directory, then renamed into place, so a concurrent job
    /// or a crash never sees half a key set.
    pub fn materialise(&self, digest: &str, bytes: &[u8]) -> Result<PathBuf, CliError> {
        if let Some(d) = self.lookup(digest) {
            return Ok(d);
        }
        if bundle::digest(bytes) != digest {
            return Err(CliError::corrupt(&self.root, "key set bundle", "content does not match its digest"));
        }
        let entries = bundle::decode(Kind::KeySet, bytes).map_err(|e| CliError::corrupt(&self.root, "key set bundle", e))?;
        let tmp = self
            .root
            .join(format!(".tmp-{digest}-{}-{}", std::process::id(), super::jobs::now_ms()));
        bundle::write_dir(&entries, &tmp)?;
        crate::cli::fsio::write_atomic(&tmp.join(".complete"), b"")?;
        let dir = self.root.join(digest);
        if let Err(e) = std::fs::rename(&tmp, &dir) {
            let _ = std::fs::remove_dir_all(&tmp);
            // Another job won the race: its copy is the same bytes.
            if self.lookup(digest).is_none() {
                return Err(CliError::io(&dir, "create", e));
            }
        }
        Ok(dir)
    }
}
