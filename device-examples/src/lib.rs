//! Support code shared by every clifhe firmware image (tests, example, benchmark).
//!
//! - [`exit`]: terminate QEMU with a status the test script reads (semihosting `SYS_EXIT`).
//! - [`hostfile`]: write files on the host through semihosting (`SYS_OPEN`/`SYS_WRITE`), used to
//!   stream ciphertexts prime by prime.
//! - [`bench`]: the two marker functions the `qemu-insncount` plugin counts between.
//! - [`stack`]: stack high-water mark (cortex-m-rt paints the stack at reset).
//! - [`harness`]: a minimal on-target test runner (pass/fail by exit status).
//! - [`entropy`]: the seed of every encryption, from the part's TRNG (`stm32h7`) or the
//!   emulator's stand-in (`qemu`); one of the two features is required.
//!
//! Logging is `defmt` over semihosting (`defmt-semihosting`): frames go to QEMU's semihosting
//! console, which `scripts/device-tests.sh` sends to a file and decodes with `defmt-print`.
//! Nothing else may write to the semihosting console, or the frame stream is corrupted.
#![no_std]

pub mod bench;
pub mod exit;
pub mod harness;
pub mod hostfile;
pub mod stack;

// Links the defmt global logger (semihosting console) into every image.
use defmt_semihosting as _;

/// Any panic is a failed run: log it, then make QEMU exit non-zero (never hang the CI job).
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    defmt::error!("panic: {}", defmt::Display2Format(info));
    exit::failure()
}

/// A hard fault (bad address, undefined instruction, stack overflow into unmapped memory) is a
/// failed run too; the default handler would spin until the script's timeout.
///
/// `unsafe fn` is required by cortex-m-rt's `#[exception]` attribute for `HardFault` (defining it
/// is unsafe because it runs with a possibly corrupt stack); the body itself does nothing unsafe.
#[allow(unsafe_code)]
#[cortex_m_rt::exception]
unsafe fn HardFault(frame: &cortex_m_rt::ExceptionFrame) -> ! {
    defmt::error!("HardFault at pc={=u32:#x} lr={=u32:#x}", frame.pc(), frame.lr());
    exit::failure()
}

/// Any unexpected interrupt or exception (the firmware enables none).
///
/// `unsafe fn` is required by cortex-m-rt's `#[exception]` attribute for `DefaultHandler`.
#[allow(unsafe_code)]
#[cortex_m_rt::exception]
unsafe fn DefaultHandler(irqn: i16) {
    defmt::error!("unexpected exception/interrupt {=i16}", irqn);
    exit::failure()
}

pub mod device;
pub mod entropy;
pub mod images;
pub mod vectors;
pub mod scan;
