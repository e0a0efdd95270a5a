//! Instruction-count windows for `shared/tools/qemu-insncount`.
//!
//! The plugin snapshots its counter when the first instruction of `bench_start` executes and
//! records the difference when the first instruction of `bench_stop` executes. The script finds
//! both addresses by their (demangled) symbol names, so they must stay distinct, non-inlined
//! functions with different bodies (identical bodies would be folded into one address).
//!
//! Each window is also logged by name (`bench window <name>`), in order; the script pairs the
//! n-th logged name with the plugin's n-th region. [`window`] subtracts nothing: the fixed cost of
//! the two calls is measured by an empty window (`overhead`) and reported next to the figures.

use core::sync::atomic::{compiler_fence, AtomicU32, Ordering};

/// Count of opened windows; touched by both markers so their bodies differ and have an effect.
static WINDOWS: AtomicU32 = AtomicU32::new(0);

/// Start marker (its first instruction is the plugin's `start=` address).
#[inline(never)]
pub fn bench_start() {
    compiler_fence(Ordering::SeqCst);
    WINDOWS.fetch_add(1, Ordering::Relaxed);
    compiler_fence(Ordering::SeqCst);
}

/// Stop marker (its first instruction is the plugin's `stop=` address).
#[inline(never)]
pub fn bench_stop() {
    compiler_fence(Ordering::SeqCst);
    WINDOWS.fetch_add(0x1_0000, Ordering::Relaxed);
    compiler_fence(Ordering::SeqCst);
}

/// Runs `f` inside one counted window named `name` and returns its result.
pub fn window<T>(name: &str, f: impl FnOnce() -> T) -> T {
    defmt::info!("bench window {=str}", name);
    bench_start();
    let out = f();
    bench_stop();
    core::hint::black_box(out)
}
