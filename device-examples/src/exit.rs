//! Process exit through semihosting: QEMU (`-semihosting-config enable=on`) exits with status 0
//! for `EXIT_SUCCESS` (ADP_Stopped_ApplicationExit) and 1 for anything else.
use cortex_m_semihosting::debug;

/// Ends the run with exit status 0.
pub fn success() -> ! {
    debug::exit(debug::EXIT_SUCCESS);
    // Only reached without a semihosting host (real hardware, no debugger): stop here.
    park()
}

/// Ends the run with a non-zero exit status.
pub fn failure() -> ! {
    debug::exit(debug::EXIT_FAILURE);
    park()
}

fn park() -> ! {
    loop {
        cortex_m::asm::bkpt();
    }
}
