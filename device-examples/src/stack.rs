//! Stack high-water mark by stack painting.
//!
//! cortex-m-rt's `paint-stack` feature fills RAM from `_stack_end` (end of `.bss`/`.uninit`) to
//! `_stack_start` (top of RAM) with `0xCCCC_CCCC` before `main`. The deepest word that no longer
//! holds the paint bounds the stack ever used. Peak RAM = statics (`.data` + `.bss` + `.uninit`,
//! from the ELF) + this figure.
//!
//! This is the one module that reads raw memory: no safe API can inspect memory below the live
//! stack pointer. The reads are volatile, word-aligned and confined to the `[_stack_end, SP)`
//! range that the linker script reserves for the stack and nothing else aliases.
#![allow(unsafe_code)]

extern "C" {
    // Both provided by cortex-m-rt's link.x; only their addresses are used.
    static _stack_end: u32;
    static _stack_start: u32;
}

const PAINT: u32 = 0xCCCC_CCCC;

/// Bytes of stack used so far (deepest point since reset), rounded to whole words.
pub fn peak_stack_bytes() -> usize {
    // Taking the address of an extern static is safe; reading through it is what needs care.
    let bottom = core::ptr::addr_of!(_stack_end) as usize;
    let top = core::ptr::addr_of!(_stack_start) as usize;
    let sp = cortex_m::register::msp::read() as usize;
    let mut addr = bottom;
    // Scan upwards from the bottom of the reserved stack to the first scrubbed word; stop at the
    // live stack pointer (everything above it is in use right now).
    while addr < sp {
        // SAFETY: `addr` is 4-byte aligned (linker asserts `_stack_end % 4 == 0`), lies in
        // [_stack_end, SP), i.e. in RAM reserved for the stack below the live frame, which no Rust
        // object occupies; a volatile read of a u32 there is defined.
        let word = unsafe { core::ptr::read_volatile(addr as *const u32) };
        if word != PAINT {
            break;
        }
        addr += 4;
    }
    top - addr
}

/// Bytes of RAM between the end of statics and the top of RAM (the stack reservation).
pub fn stack_capacity_bytes() -> usize {
    let bottom = core::ptr::addr_of!(_stack_end) as usize;
    let top = core::ptr::addr_of!(_stack_start) as usize;
    top - bottom
}
