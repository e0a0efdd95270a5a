//! The emulator's entropy stand-in: 32 bytes per seed read from the host file
//! `target/device-out/entropy.bin` (relative to QEMU's working directory) through semihosting.
//! `scripts/device-tests.sh` fills it from the host's `/dev/urandom` before every run, so two
//! runs of the same firmware on the same scan encrypt with different u, e0, e1 (the script
//! checks that their ciphertexts differ). Reads are sequential and never rewind: a file that
//! runs out is [`EntropyError::Exhausted`], never a reused seed.

use super::{EntropyError, EntropySource, RepetitionTest};
use semihosting::fs;
use semihosting::io::Read as _;

/// The host file the stand-in reads.
pub const ENTROPY_FILE: &core::ffi::CStr = c"target/device-out/entropy.bin";

/// The open host file.
#[derive(Debug)]
pub struct HostEntropy {
    file: fs::File,
    health: RepetitionTest,
}

impl HostEntropy {
    /// Opens [`ENTROPY_FILE`].
    pub fn open() -> Result<Self, EntropyError> {
        let file = fs::File::open(ENTROPY_FILE).map_err(|_| EntropyError::Unavailable)?;
        Ok(Self {
            file,
            health: RepetitionTest::default(),
        })
    }
}

impl EntropySource for HostEntropy {
    fn fill_seed(&mut self, seed: &mut [u8; 32]) -> Result<(), EntropyError> {
        self.file.read_exact(seed).map_err(|_| EntropyError::Exhausted)?;
        for w in seed.chunks_exact(4) {
            self.health.check(u32::from_le_bytes([w[0], w[1], w[2], w[3]]))?;
        }
        Ok(())
    }
}
