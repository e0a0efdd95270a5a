//! Randomness for encryption: a ChaCha20 generator seeded with 32 fresh bytes of the board's
//! entropy source for every patient.
//!
//! CKKS encryption draws its ephemeral u, e0 and e1 from the generator it is given. Two
//! ciphertexts made with the same seed share u, e0 and e1, and their difference is the
//! difference of the two plaintexts, in the clear. So the seed must never repeat: not across
//! patients, not across boots. [`patient_rng`] takes a new seed from the [`EntropySource`] at
//! every call, and the firmware calls it once per patient (per encryption).
//!
//! The source is chosen at build time by exactly one feature:
//! - `stm32h7`: the STM32H7's true random number generator ([`stm32h7::Stm32h7Rng`]), the
//!   part of the 2 MiB flash / 512 KiB RAM budget class;
//! - `qemu`: the emulator's stand-in ([`qemu::HostEntropy`]): QEMU's mps2-an386 models no
//!   TRNG, so the host hands the guest bytes from its own `/dev/urandom` through a semihosting
//!   file that `scripts/device-tests.sh` writes fresh before every run. It is only as good as
//!   that file, and exists for the tests.
//!
//! A build with neither (or both) does not compile: there is no silent fallback to a fixed
//! seed, which is what the firmware used before (every boot encrypted with the same u, e0, e1).

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use zeroize::Zeroize;

#[cfg(not(any(feature = "qemu", feature = "stm32h7")))]
compile_error!(
    "clifhe firmware needs an entropy source: build with `--features stm32h7` for the part's \
     hardware RNG, or `--features qemu` for the emulator's stand-in (tests only)"
);
#[cfg(all(feature = "qemu", feature = "stm32h7"))]
compile_error!("features `qemu` and `stm32h7` select different entropy sources: enable one");

#[cfg(feature = "qemu")]
pub mod qemu;
#[cfg(feature = "stm32h7")]
pub mod stm32h7;

/// Why no seed could be drawn. The firmware then refuses to encrypt: a ciphertext made with a
/// predictable seed is worse than none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, defmt::Format)]
pub enum EntropyError {
    /// The source could not be opened or started (clock not ready, host file missing).
    Unavailable,
    /// The hardware reported a seed error that did not clear (RM0433, RNG chapter), or two
    /// consecutive 32-bit words were equal (the repetition test below).
    SeedError,
    /// The hardware reported a clock error (the RNG clock is too slow for its checks).
    ClockError,
    /// The source did not deliver in the allotted time, or ran out (the stand-in's file).
    Exhausted,
}

/// Fills 32-byte seeds with full-entropy bytes.
pub trait EntropySource {
    /// Writes 32 fresh bytes into `seed`.
    fn fill_seed(&mut self, seed: &mut [u8; 32]) -> Result<(), EntropyError>;
}

/// The board's entropy source (module docs): opened once per boot.
pub fn board_entropy() -> Result<impl EntropySource, EntropyError> {
    #[cfg(feature = "qemu")]
    {
        qemu::HostEntropy::open()
    }
    #[cfg(all(feature = "stm32h7", not(feature = "qemu")))]
    {
        stm32h7::Stm32h7Rng::init()
    }
}

/// A generator for one patient's encryption, seeded with 32 fresh bytes from `source`; the
/// seed is wiped from the stack once ChaCha20 has expanded it into its key.
pub fn patient_rng<E: EntropySource>(source: &mut E) -> Result<ChaCha20Rng, EntropyError> {
    let mut seed = [0u8; 32];
    let drawn = source.fill_seed(&mut seed);
    let rng = ChaCha20Rng::from_seed(seed);
    seed.zeroize();
    drawn.map(|()| rng)
}

/// Repetition-count test on 32-bit words (NIST SP 800-90B 4.4.1 with cutoff 2 at this word
/// size): a source whose consecutive words are equal is stuck, not random. The probability of
/// a false alarm from a healthy full-entropy source is 2^-32 per word.
#[derive(Debug, Default)]
pub struct RepetitionTest {
    last: Option<u32>,
}

impl RepetitionTest {
    /// Feeds one word; an error when it equals the previous one.
    pub fn check(&mut self, word: u32) -> Result<u32, EntropyError> {
        if self.last == Some(word) {
            return Err(EntropyError::SeedError);
        }
        self.last = Some(word);
        Ok(word)
    }
}
