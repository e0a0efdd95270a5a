//! Files on the host, written through semihosting (`SYS_OPEN` / `SYS_WRITE` / `SYS_CLOSE`).
//!
//! The ciphertext leaves the device prime by prime: the firmware opens one file, writes each
//! prime's limbs as soon as they are computed and never holds more than one limb in RAM. On a
//! real device the same byte stream would go to a UART/USB/Ethernet link instead.
use core::ffi::CStr;
use semihosting::{fs, io::Write as _};

/// A host file failed to open or a write was short; the firmware reports and fails the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, defmt::Format)]
pub enum HostFileError {
    Open,
    Write,
}

/// A host file opened for writing (created or truncated); counts the bytes sent.
#[derive(Debug)]
pub struct HostFile {
    file: fs::File,
    written: usize,
}

impl HostFile {
    /// Creates (or truncates) `path` on the host, relative to QEMU's working directory.
    pub fn create(path: &CStr) -> Result<Self, HostFileError> {
        let file = fs::File::create(path).map_err(|_| HostFileError::Open)?;
        Ok(Self { file, written: 0 })
    }

    /// Appends all of `bytes`.
    pub fn write_all(&mut self, bytes: &[u8]) -> Result<(), HostFileError> {
        self.file.write_all(bytes).map_err(|_| HostFileError::Write)?;
        self.written += bytes.len();
        Ok(())
    }

    /// Bytes written so far (the figure reported as "bytes sent per patient").
    pub fn written(&self) -> usize {
        self.written
    }
}

/// Writes `bytes` to `path` in one go (small files: reports, known-answer dumps).
pub fn write(path: &CStr, bytes: &[u8]) -> Result<(), HostFileError> {
    let mut f = HostFile::create(path)?;
    f.write_all(bytes)
}
