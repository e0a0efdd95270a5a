//! Instruction-count benchmark firmware: run with `scripts/device-tests.sh --measure`, which
//! loads the `qemu-insncount` plugin with the addresses of `bench_start`/`bench_stop`.
#![no_std]
#![no_main]

use clifhe_device::{bench, exit, stack};

#[cortex_m_rt::entry]
fn main() -> ! {
    // Fixed cost of the markers themselves (subtract from the other windows when comparing).
    bench::window("overhead", || ());
    defmt::info!("peak stack {=usize} bytes", stack::peak_stack_bytes());
    exit::success()
}
