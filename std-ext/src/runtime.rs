//! Process-wide settings for a process that evaluates ciphertexts at N >= 2^15.
//!
//! The evaluation's temporaries are large: at `bootstrap-n16` one polynomial at the top level
//! is 28 limbs of 2^16 words (14 MiB), and a bootstrap makes and drops thousands of them.
//! glibc's default allocator hands such memory back to the kernel as soon as it is free: each
//! thread other than the main one allocates from its own arena of 64 MiB heaps, unmapped when
//! they empty, and a free top of the heap above the trim threshold (128 KiB, raised only
//! dynamically) is returned too. Every temporary is then faulted back in page by page. On the
//! 2-vCPU machine of BENCHMARKS.md this was 2.8 s of system time in a 21.5 s bootstrap, 2.35
//! million minor faults per run (`perf record -e page-faults` puts them in the tensor of the
//! EvalMod products, the baby-step rotations of CoeffsToSlots and the integer combinations).
//!
//! [`tune_allocator`] keeps that memory in the process instead. It is a process decision, so
//! the library never makes it on its own: `host-eval` calls it first thing in `main`, and the
//! timing tests call it before they measure. It changes no result, only where freed memory
//! goes.

/// What [`tune_allocator`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllocatorTuning {
    /// glibc's malloc now uses one arena, maps chunks only from 32 MiB up (its maximum) and
    /// returns a free heap top to the kernel only above 1 GiB.
    Applied,
    /// Not glibc on Linux (the allocator's defaults stay), or glibc refused a setting (those
    /// before it in the list stay applied).
    Unsupported,
}

/// Tunes glibc's malloc for large, short-lived polynomials (module docs). Call it once, at the
/// start of `main`, before any thread is spawned: arenas that already exist keep serving their
/// threads.
///
/// * One arena (`M_ARENA_MAX = 1`): no 64 MiB per-thread heaps to unmap and map again. The
///   allocations of an evaluation are few and large, so the shared lock costs nothing
///   measurable.
/// * `M_MMAP_THRESHOLD = 32 MiB`: polynomials and key-switching digits come from the heap and
///   return to it. Only larger blocks (whole decompositions at N=2^16) are mapped per use.
/// * `M_TRIM_THRESHOLD = 1 GiB`: freed memory at the top of the heap stays for the next
///   temporary. The peak resident set does not grow (7.81 GiB against 7.99 GiB for the
///   full-slot bootstrap), because the same bytes are reused instead of mapped afresh.
pub fn tune_allocator() -> AllocatorTuning {
    platform::tune()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod platform {
    use super::AllocatorTuning;

    /// glibc's largest accepted mmap threshold on 64-bit targets (`DEFAULT_MMAP_THRESHOLD_MAX`).
    const MMAP_THRESHOLD: libc::c_int = 32 << 20;
    const TRIM_THRESHOLD: libc::c_int = 1 << 30;

    #[allow(unsafe_code)]
    pub(super) fn tune() -> AllocatorTuning {
        let settings = [
            (libc::M_ARENA_MAX, 1),
            (libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD),
            (libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        ];
        // SAFETY: mallopt takes two integers and only changes malloc's own parameters, under
        // malloc's lock; it returns 0 for a parameter or value it refuses.
        let accepted = settings.iter().all(|&(param, value)| unsafe { libc::mallopt(param, value) } == 1);
        if accepted {
            AllocatorTuning::Applied
        } else {
            AllocatorTuning::Unsupported
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod platform {
    use super::AllocatorTuning;

    pub(super) fn tune() -> AllocatorTuning {
        AllocatorTuning::Unsupported
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On glibc every setting is accepted (a refused value, such as an mmap threshold above
    /// 32 MiB, would make this `Unsupported`); allocation works as before afterwards.
    #[test]
    fn tuning_is_accepted_where_glibc_is_the_allocator() {
        let tuning = tune_allocator();
        if cfg!(all(target_os = "linux", target_env = "gnu")) {
            assert_eq!(tuning, AllocatorTuning::Applied);
        } else {
            assert_eq!(tuning, AllocatorTuning::Unsupported);
        }
        let big = vec![1u64; 3 << 20];
        assert_eq!(big.iter().sum::<u64>(), 3 << 20);
    }
}
