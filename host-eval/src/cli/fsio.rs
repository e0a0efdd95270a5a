//! File helpers: whole-file reads with typed errors, and atomic writes.
//!
//! Every output is written to a temporary file in the destination's directory, flushed to
//! disk, and only then renamed over the destination. A crash or an error part-way therefore
//! never leaves a half-written key or ciphertext under the final name, and a reader never sees
//! one (rename within a directory is atomic on POSIX file systems).

use super::error::CliError;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Largest file this tool reads whole (a bootstrap-n16 public key is about 11 MB; scans are
/// read by the data loaders, not here). Guards against reading a device node or a huge file
/// by mistake.
pub const MAX_READ_BYTES: u64 = 1 << 30;

/// Reads a whole file, mapping failures to [`CliError::Io`].
pub fn read(path: &Path) -> Result<Vec<u8>, CliError> {
    let meta = std::fs::metadata(path).map_err(|e| CliError::io(path, "read", e))?;
    if meta.is_dir() {
        return Err(CliError::io(path, "read", std::io::Error::other("it is a directory")));
    }
    if meta.len() > MAX_READ_BYTES {
        return Err(CliError::io(path, "read", std::io::Error::other("file is larger than 1 GiB")));
    }
    std::fs::read(path).map_err(|e| CliError::io(path, "read", e))
}

/// Whether the final rename may replace an existing file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overwrite {
    Allow,
    /// Fail with `AlreadyExists` if the destination exists, checked atomically at publish time.
    Refuse,
}

/// A file being written under a temporary name; [`Staged::publish`] moves it into place,
/// dropping it unpublished removes it.
#[derive(Debug)]
pub struct Staged {
    tmp: PathBuf,
    dest: PathBuf,
    published: bool,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn temp_name(dest: &Path) -> PathBuf {
    let name = dest.file_name().map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let k = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = format!(".{name}.tmp-{}-{nanos}-{k}", std::process::id());
    dest.with_file_name(tmp)
}

impl Staged {
    /// Writes `bytes` to a fresh temporary file next to `dest` and syncs it. `private` makes
    /// the file readable by its owner only (mode 0600) from the moment it is created, so a
    /// secret is never briefly world-readable.
    pub fn write(dest: &Path, bytes: &[u8], private: bool) -> Result<Self, CliError> {
        let tmp = temp_name(dest);
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(if private { 0o600 } else { 0o644 });
        }
        #[cfg(not(unix))]
        let _ = private;
        let staged = Self {
            tmp,
            dest: dest.to_path_buf(),
            published: false,
        };
        let mut file: File = opts.open(&staged.tmp).map_err(|e| CliError::io(dest, "write", e))?;
        file.write_all(bytes).map_err(|e| CliError::io(dest, "write", e))?;
        file.sync_all().map_err(|e| CliError::io(dest, "write", e))?;
        Ok(staged)
    }

    /// Moves the file to its final name.
    pub fn publish(mut self, overwrite: Overwrite) -> Result<(), CliError> {
        let result = match overwrite {
            Overwrite::Allow => std::fs::rename(&self.tmp, &self.dest).map(|()| true),
            // A hard link fails if the destination exists, closing the window between an
            // existence check and a rename; the temporary name is removed on drop.
            Overwrite::Refuse => match std::fs::hard_link(&self.tmp, &self.dest) {
                Ok(()) => Ok(false),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(e),
                // File systems without hard links: check, then rename (a small race window,
                // only on such file systems).
                Err(_) if self.dest.symlink_metadata().is_ok() => Err(std::io::ErrorKind::AlreadyExists.into()),
                Err(_) => std::fs::rename(&self.tmp, &self.dest).map(|()| true),
            },
        };
        match result {
            Ok(renamed) => {
                self.published = renamed;
                sync_parent(&self.dest);
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(CliError::KeyExists { path: self.dest.clone() }),
            Err(e) => Err(CliError::io(&self.dest, "write", e)),
        }
    }
}

/// Syncs the directory holding `path`, so the rename that published it survives a power
/// failure (POSIX leaves a rename in the directory's cache until then). Best effort: some file
/// systems refuse to open a directory for syncing, and the data itself is already synced.
fn sync_parent(path: &Path) {
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.published {
            // Best effort: the temporary file holds nothing the final file would not.
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Writes `bytes` to `dest` atomically, replacing any existing file.
pub fn write_atomic(dest: &Path, bytes: &[u8]) -> Result<(), CliError> {
    Staged::write(dest, bytes, false)?.publish(Overwrite::Allow)
}
