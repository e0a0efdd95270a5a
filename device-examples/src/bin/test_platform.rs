//! On-target tests of the platform itself: semihosting file output, exit status, stack painting,
//! hardware FPU. If these fail, no other firmware result can be trusted.
#![no_std]
#![no_main]

use clifhe_device::{check, check_eq, harness, hostfile, stack};

fn file_write() -> Result<(), harness::Failure> {
    let mut f = match hostfile::HostFile::create(c"target/device-out/platform-selftest.bin") {
        Ok(f) => f,
        Err(_) => return Err(harness::Failure { what: "open host file", got: 0, want: 1 }),
    };
    for chunk in [&b"clifhe"[..], &[0u8, 1, 2, 255][..]] {
        check!(f.write_all(chunk).is_ok(), "write host file");
    }
    check_eq!(f.written(), 10, "bytes written");
    Ok(())
}

fn stack_paint() -> Result<(), harness::Failure> {
    let used = stack::peak_stack_bytes();
    check!(used > 0, "some stack is in use");
    check!(used < stack::stack_capacity_bytes(), "stack within reservation");
    // A 4 KiB frame must be visible in the high-water mark.
    let deeper = deep_frame();
    check!(deeper >= 4096 && deeper >= used, "painting sees a 4 KiB frame");
    Ok(())
}

#[inline(never)]
fn deep_frame() -> usize {
    let buf = core::hint::black_box([0x5Au8; 4096]);
    core::hint::black_box(&buf);
    stack::peak_stack_bytes()
}

fn fpu() -> Result<(), harness::Failure> {
    // Hard-float ABI: f32 arithmetic runs on the FPU (QEMU models it for cortex-m4).
    let x = core::hint::black_box(1.5f32);
    check_eq!((x * x + 0.75f32) as u32, 3u32, "f32 arithmetic");
    let y = core::hint::black_box(2.0f64);
    check_eq!((y * y * 1e6) as u64, 4_000_000u64, "f64 (soft-float) arithmetic");
    Ok(())
}

#[cortex_m_rt::entry]
fn main() -> ! {
    harness::run(
        "platform",
        &[("semihosting_file_write", file_write), ("stack_painting", stack_paint), ("fpu", fpu)],
    )
}
