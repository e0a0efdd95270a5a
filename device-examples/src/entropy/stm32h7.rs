//! Driver for the true random number generator of the STM32H742/743/750/753 (reference manual
//! RM0433, chapters "Reset and clock control (RCC)" and "True random number generator (RNG)").
//! QEMU models no such peripheral, so this builds in CI (`scripts/device-tests.sh` compiles it
//! with `--features stm32h7`) but runs only on the part.
//!
//! What the manual asks for, and where this code does it:
//! - Kernel clock: the RNG runs from `rng_ker_ck`, selected by RCC_D2CCIP2R.RNGSEL (reset
//!   value 00 = `hsi48_ker_ck`). The driver turns HSI48 on (RCC_CR.HSI48ON, bit 12) and waits
//!   for HSI48RDY (bit 13) before enabling the RNG, and does not change RNGSEL: a board that
//!   routes another clock sets it before calling [`Stm32h7Rng::init`].
//! - Bus clock: RCC_AHB2ENR.RNGEN (bit 6) enables the peripheral's AHB interface.
//! - Enable with clock-error detection on: RNG_CR.RNGEN (bit 2) = 1, RNG_CR.CED (bit 5) = 0.
//! - Each 32-bit word: wait for RNG_SR.DRDY (bit 0), then check the error bits before using
//!   RNG_DR. SECS (bit 2) / SEIS (bit 6) flag a seed error (the analog noise source failed its
//!   built-in tests: too few or too many transitions); the recovery sequence is: clear SEIS, read
//!   and discard 12 words to flush the pipeline, and go on only if SECS has cleared, else
//!   restart the RNG (RNGEN 0 -> 1). CECS (bit 1) / CEIS (bit 5) flag an RNG clock too slow for
//!   the checks: no word is used while it is set.
//! - A [`super::RepetitionTest`] on the words the driver hands out, as a software backstop.
//!
//! Every wait is bounded ([`POLL_LIMIT`]): a dead clock is [`EntropyError::Exhausted`] or
//! [`EntropyError::Unavailable`], never a hang.
#![allow(unsafe_code)]

use super::{EntropyError, EntropySource, RepetitionTest};
use core::ptr::{read_volatile, write_volatile};

/// RCC register block (RM0433 memory map: 0x5802 4400).
const RCC_BASE: usize = 0x5802_4400;
/// RCC_CR: clock control (HSI48ON bit 12, HSI48RDY bit 13).
const RCC_CR: usize = RCC_BASE;
/// RCC_AHB2ENR: AHB2 peripheral clock enable (RNGEN bit 6).
const RCC_AHB2ENR: usize = RCC_BASE + 0x0DC;
const RCC_CR_HSI48ON: u32 = 1 << 12;
const RCC_CR_HSI48RDY: u32 = 1 << 13;
const RCC_AHB2ENR_RNGEN: u32 = 1 << 6;

/// RNG register block (RM0433 memory map: 0x4802 1800, AHB2).
const RNG_BASE: usize = 0x4802_1800;
const RNG_CR: usize = RNG_BASE;
const RNG_SR: usize = RNG_BASE + 0x04;
const RNG_DR: usize = RNG_BASE + 0x08;
const CR_RNGEN: u32 = 1 << 2;
const CR_CED: u32 = 1 << 5;
const SR_DRDY: u32 = 1 << 0;
const SR_CECS: u32 = 1 << 1;
const SR_SECS: u32 = 1 << 2;
const SR_CEIS: u32 = 1 << 5;
const SR_SEIS: u32 = 1 << 6;

/// Status polls before a wait gives up (a 32-bit word takes a few hundred RNG clock cycles;
/// this is well over a millisecond at any core clock of the part).
pub const POLL_LIMIT: u32 = 1_000_000;

/// Words discarded after a seed error (the manual's pipeline flush).
const FLUSH_WORDS: usize = 12;

fn read(addr: usize) -> u32 {
    // SAFETY: `addr` is one of the RCC / RNG register addresses above, which RM0433 maps as
    // 32-bit device memory on every STM32H742/743/750/753; a volatile 32-bit read has no side
    // effect beyond the peripheral's own (DR pops a word, which is what the driver wants).
    unsafe { read_volatile(addr as *const u32) }
}

fn write(addr: usize, value: u32) {
    // SAFETY: as in `read`; the driver writes only the bits the manual documents for these
    // registers, read-modify-write for the shared RCC ones.
    unsafe { write_volatile(addr as *mut u32, value) }
}

/// Waits until `done(status)` holds; `Err` after [`POLL_LIMIT`] polls.
fn wait(addr: usize, done: impl Fn(u32) -> bool, err: EntropyError) -> Result<u32, EntropyError> {
    for _ in 0..POLL_LIMIT {
        let v = read(addr);
        if done(v) {
            return Ok(v);
        }
    }
    Err(err)
}

/// The part's RNG, clocked and enabled.
#[derive(Debug)]
pub struct Stm32h7Rng {
    health: RepetitionTest,
}

impl Stm32h7Rng {
    /// Clocks and enables the RNG (module docs). Call once per boot.
    pub fn init() -> Result<Self, EntropyError> {
        write(RCC_CR, read(RCC_CR) | RCC_CR_HSI48ON);
        wait(RCC_CR, |v| v & RCC_CR_HSI48RDY != 0, EntropyError::Unavailable)?;
        write(RCC_AHB2ENR, read(RCC_AHB2ENR) | RCC_AHB2ENR_RNGEN);
        // Read back: the manual asks for a delay after enabling a peripheral clock before its
        // registers are accessed; a read of the enable register provides it.
        let _ = read(RCC_AHB2ENR);
        Self::restart();
        Ok(Self {
            health: RepetitionTest::default(),
        })
    }

    /// RNGEN 0 -> 1 with clock-error detection on (CED = 0).
    fn restart() {
        write(RNG_CR, read(RNG_CR) & !(CR_RNGEN | CR_CED));
        write(RNG_CR, (read(RNG_CR) & !CR_CED) | CR_RNGEN);
    }

    /// One word whose status showed no error.
    fn word(&mut self) -> Result<u32, EntropyError> {
        for _ in 0..2 {
            let sr = wait(RNG_SR, |v| v & (SR_DRDY | SR_SECS | SR_SEIS | SR_CECS | SR_CEIS) != 0, EntropyError::Exhausted)?;
            if sr & (SR_CECS | SR_CEIS) != 0 {
                // Clear CEIS (write 0; the other interrupt flag kept, status bits read-only).
                write(RNG_SR, read(RNG_SR) & !SR_CEIS);
                return Err(EntropyError::ClockError);
            }
            if sr & (SR_SECS | SR_SEIS) != 0 {
                self.recover_seed_error()?;
                continue;
            }
            let w = read(RNG_DR);
            // A seed error may have been raised while DR was read: such a word is not used.
            if read(RNG_SR) & (SR_SECS | SR_SEIS) != 0 {
                self.recover_seed_error()?;
                continue;
            }
            return self.health.check(w);
        }
        Err(EntropyError::SeedError)
    }

    /// The manual's seed-error recovery: clear SEIS, flush 12 words, check SECS; if it stays
    /// set, restart the RNG once and check again.
    fn recover_seed_error(&mut self) -> Result<(), EntropyError> {
        write(RNG_SR, read(RNG_SR) & !SR_SEIS);
        for _ in 0..FLUSH_WORDS {
            let _ = read(RNG_DR);
        }
        if read(RNG_SR) & SR_SECS == 0 {
            return Ok(());
        }
        Self::restart();
        wait(RNG_SR, |v| v & (SR_DRDY | SR_SECS) != 0, EntropyError::Exhausted)?;
        if read(RNG_SR) & SR_SECS != 0 {
            return Err(EntropyError::SeedError);
        }
        self.health = RepetitionTest::default();
        Ok(())
    }
}

impl EntropySource for Stm32h7Rng {
    fn fill_seed(&mut self, seed: &mut [u8; 32]) -> Result<(), EntropyError> {
        for chunk in seed.chunks_exact_mut(4) {
            chunk.copy_from_slice(&self.word()?.to_le_bytes());
        }
        Ok(())
    }
}
