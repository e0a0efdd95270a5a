//! Minimal on-target test runner: every test returns `Result<(), Failure>`; the run exits 0 only
//! when all pass, so the host script reads pass/fail from QEMU's exit status alone.

/// Why a test failed (a static description plus two numbers for context).
#[derive(Debug, Clone, Copy, defmt::Format)]
pub struct Failure {
    pub what: &'static str,
    pub got: u64,
    pub want: u64,
}

/// A named on-target test.
pub type Test = (&'static str, fn() -> Result<(), Failure>);

/// Fails the enclosing test (returns `Err(Failure)`) unless `got == want`.
#[macro_export]
macro_rules! check_eq {
    ($got:expr, $want:expr, $what:expr) => {{
        let (got, want) = ($got, $want);
        if got != want {
            return Err($crate::harness::Failure { what: $what, got: got as u64, want: want as u64 });
        }
    }};
}

/// Fails the enclosing test unless `cond` holds.
#[macro_export]
macro_rules! check {
    ($cond:expr, $what:expr) => {{
        if !$cond {
            return Err($crate::harness::Failure { what: $what, got: 0, want: 1 });
        }
    }};
}

/// Runs `tests` in order, logs one line per test and a summary, then exits QEMU with status 0
/// when every test passed and 1 otherwise.
pub fn run(suite: &str, tests: &[Test]) -> ! {
    let mut failed = 0u32;
    for (name, test) in tests {
        match test() {
            Ok(()) => defmt::info!("test {=str}::{=str} ... ok", suite, name),
            Err(f) => {
                failed += 1;
                defmt::error!("test {=str}::{=str} ... FAILED: {}", suite, name, f);
            }
        }
    }
    let total = tests.len() as u32;
    defmt::info!(
        "suite {=str}: {=u32} passed, {=u32} failed; peak stack {=usize} bytes",
        suite,
        total - failed,
        failed,
        crate::stack::peak_stack_bytes()
    );
    if failed == 0 {
        crate::exit::success()
    } else {
        crate::exit::failure()
    }
}
