//! Permutations of slots that move aligned blocks of eight words to aligned blocks of eight,
//! permuting the lanes inside: the form of every Galois automorphism of NTT slots
//! (`clifhe_std::galois` derives it). One source block and one lane pattern per output block.
//!
//! The scalar kernel copies eight words per block. Its loads of a block wait on that block's
//! cache line; from a source that is not in cache (the digits of a hoisted decomposition at
//! N=2^16 are tens of MiB) a block of about 35 instructions leaves the reorder buffer room for
//! about nine outstanding lines. With AVX-512F a block is one 64-byte load, one lane
//! permutation (`vpermq`) and one store, and the source line 96 blocks ahead is prefetched
//! into L2, so the line fetches overlap. On the Zen 4 machine of BENCHMARKS.md one 2^16-word
//! limb from a source out of cache takes 36 us this way (67 us prefetching 16 blocks ahead
//! into L1, 150 us for the scalar word gather through an index table); from L2, 16 us.

/// Slots per block.
pub const BLOCK: usize = 8;

/// `dst[b] = permute(src[source_block[b]], lanes[pattern[b]])` for every output block b, or
/// added to `dst` modulo `add_modulo` (canonical inputs, canonical output) when given: output
/// lane t of block b is source lane `lanes[pattern[b]][t] % 8`. `dst` is as long as
/// `source_block` and `pattern`; every source block index must be below `src.len()` and every
/// pattern below `lanes.len()` (else a panic, never an out-of-bounds access).
pub fn permute_blocks(
    dst: &mut [[u64; BLOCK]],
    src: &[[u64; BLOCK]],
    source_block: &[u32],
    pattern: &[u8],
    lanes: &[[u8; BLOCK]],
    add_modulo: Option<u64>,
) {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    {
        if crate::ntt_avx2::simd_enabled() && std::is_x86_feature_detected!("avx512f") && lanes.len() <= BLOCK {
            let mut idx = [[0u64; BLOCK]; BLOCK];
            for (i, l) in idx.iter_mut().zip(lanes) {
                for (x, &y) in i.iter_mut().zip(l) {
                    *x = u64::from(y) % BLOCK as u64;
                }
            }
            // SAFETY: AVX-512F was detected just above.
            #[allow(unsafe_code)]
            unsafe {
                avx512::permute_blocks(dst, src, source_block, pattern, &idx[..lanes.len()], add_modulo);
            }
            return;
        }
    }
    for ((d, &b), &p) in dst.iter_mut().zip(source_block).zip(pattern) {
        let s = &src[b as usize];
        let l = &lanes[p as usize];
        match add_modulo {
            None => {
                for (o, &t) in d.iter_mut().zip(l) {
                    *o = s[t as usize % BLOCK];
                }
            }
            Some(q) => {
                for (o, &t) in d.iter_mut().zip(l) {
                    let v = *o + s[t as usize % BLOCK];
                    *o = v.min(v.wrapping_sub(q));
                }
            }
        }
    }
}

/// Why `unsafe`: intrinsics behind `#[target_feature]`, reached only after the runtime check
/// above; loads and stores go through `&[u64; 8]` / `&mut [u64; 8]` references (64 bytes
/// each).
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[allow(unsafe_code)]
mod avx512 {
    use super::BLOCK;
    use core::arch::x86_64::{
        __m512i, _mm512_add_epi64, _mm512_loadu_si512, _mm512_min_epu64, _mm512_permutexvar_epi64, _mm512_set1_epi64, _mm512_storeu_si512,
        _mm512_sub_epi64, _mm_prefetch, _MM_HINT_T1,
    };

    /// Blocks between a source line's prefetch (into L2) and its use: 16 into L1 left the
    /// fetches latency-bound (module docs).
    const AHEAD: usize = 96;

    #[target_feature(enable = "avx512f")]
    pub(super) fn permute_blocks(
        dst: &mut [[u64; BLOCK]],
        src: &[[u64; BLOCK]],
        source_block: &[u32],
        pattern: &[u8],
        idx: &[[u64; BLOCK]],
        add_modulo: Option<u64>,
    ) {
        // SAFETY (every block below): unaligned 64-byte loads and stores through array references.
        let idx: [__m512i; BLOCK] = core::array::from_fn(|i| {
            idx.get(i)
                .map_or(_mm512_set1_epi64(0), |v| unsafe { _mm512_loadu_si512(v.as_ptr().cast()) })
        });
        let q = _mm512_set1_epi64(add_modulo.unwrap_or(0) as i64);
        for (b, (d, (&sb, &p))) in dst.iter_mut().zip(source_block.iter().zip(pattern)).enumerate() {
            if let Some(&ahead) = source_block.get(b + AHEAD) {
                if let Some(line) = src.get(ahead as usize) {
                    // a hint: it cannot fault, and the address is a live block anyway
                    _mm_prefetch::<_MM_HINT_T1>(line.as_ptr().cast());
                }
            }
            let s = &src[sb as usize];
            let v = _mm512_permutexvar_epi64(idx[p as usize], unsafe { _mm512_loadu_si512(s.as_ptr().cast()) });
            let v = match add_modulo {
                None => v,
                Some(_) => {
                    let sum = _mm512_add_epi64(v, unsafe { _mm512_loadu_si512(d.as_ptr().cast()) });
                    _mm512_min_epu64(sum, _mm512_sub_epi64(sum, q))
                }
            };
            unsafe { _mm512_storeu_si512(d.as_mut_ptr().cast(), v) };
        }
    }
}
