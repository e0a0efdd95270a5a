//! The NTT-slot permutation of an automorphism X -> X^g, stored by blocks of eight slots.
//!
//! With our forward NTT, slot bitrev(k) holds a(psi^(2k+1)), so sigma_g(a) at that slot is
//! a(psi^(g(2k+1))): out[bitrev(k)] = in[bitrev(k')] with 2k'+1 = g(2k+1) mod 2N. Adding
//! t N/8 to k (t < 8, its top three bits, the low three bits of bitrev(k)) adds
//! (g t mod 8) N/8 to k', so the eight slots of an aligned output block all come from one
//! aligned source block, each at lane (c + g t mod 8) reversed, for an offset c of the block.
//! Stored that way the permutation is one source block and one lane pattern per eight slots
//! (5 bytes instead of 32: 40 KiB at N=2^16 instead of a 256 KiB index table beside each
//! 512 KiB source and destination limb), and applying it (`clifhe_core::slot_blocks`) reads
//! each source cache line once, as a whole. The gathers of hoisted rotations were 7% of a
//! sparse bootstrap on the Zen 4 machine of BENCHMARKS.md.

use crate::error::EvalError;
use clifhe_core::arith::Modulus;
use clifhe_core::ntt::bit_reverse;
use clifhe_core::slot_blocks::{permute_blocks, BLOCK};

/// The permutation of NTT slots of the automorphism X -> X^g (module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GaloisPermutation {
    /// Per output block: its source block.
    source_block: Vec<u32>,
    /// Per output block: its lane pattern, an index into `lanes`.
    pattern: Vec<u8>,
    /// The distinct lane patterns (at most eight): output lane t reads source lane `lanes[p][t]`.
    lanes: Vec<[u8; BLOCK]>,
}

impl GaloisPermutation {
    /// The permutation of X -> X^g on `n` slots (a power of two, at least 16); `g` odd and
    /// below 2n.
    pub fn new(n: usize, g: usize) -> Result<Self, EvalError> {
        if !n.is_power_of_two() || n < 2 * BLOCK {
            return Err(EvalError::Invalid("ring degree must be a power of two of at least 16"));
        }
        if g.is_multiple_of(2) || g >= 2 * n {
            return Err(EvalError::Invalid("Galois element must be odd and below 2N"));
        }
        let log_n = n.trailing_zeros();
        let mask = 2 * n - 1;
        let mut index = vec![0u32; n];
        for k in 0..n {
            let kk = ((g * (2 * k + 1)) & mask) >> 1;
            index[bit_reverse(k, log_n)] = bit_reverse(kk, log_n) as u32;
        }
        let blocks = n / BLOCK;
        let mut out = Self {
            source_block: Vec::with_capacity(blocks),
            pattern: Vec::with_capacity(blocks),
            lanes: Vec::new(),
        };
        for chunk in index.chunks_exact(BLOCK) {
            let source = chunk[0] as usize / BLOCK;
            let mut lanes = [0u8; BLOCK];
            for (l, &j) in lanes.iter_mut().zip(chunk) {
                if j as usize / BLOCK != source {
                    return Err(EvalError::Invalid("automorphism does not map blocks to blocks"));
                }
                *l = (j as usize % BLOCK) as u8;
            }
            let p = match out.lanes.iter().position(|l| *l == lanes) {
                Some(p) => p,
                None => {
                    out.lanes.push(lanes);
                    out.lanes.len() - 1
                }
            };
            out.source_block.push(source as u32);
            out.pattern.push(p as u8);
        }
        Ok(out)
    }

    /// Number of slots.
    pub fn n(&self) -> usize {
        self.source_block.len() * BLOCK
    }

    /// The source slot of output slot `x` (< n).
    pub fn source(&self, x: usize) -> usize {
        let b = x / BLOCK;
        self.source_block[b] as usize * BLOCK + self.lanes[self.pattern[b] as usize][x % BLOCK] as usize
    }

    /// dst[x] = src[source(x)] for the first n words of each (one limb); both at least n long.
    pub fn gather(&self, dst: &mut [u64], src: &[u64]) {
        self.apply(dst, src, None);
    }

    /// dst[x] = dst[x] + src[source(x)] mod m (canonical inputs, canonical output).
    pub fn gather_add(&self, dst: &mut [u64], src: &[u64], m: &Modulus) {
        self.apply(dst, src, Some(m.value()));
    }

    fn apply(&self, dst: &mut [u64], src: &[u64], add_modulo: Option<u64>) {
        let n = self.n();
        let src = src[..n].as_chunks::<BLOCK>().0;
        let dst = dst[..n].as_chunks_mut::<BLOCK>().0;
        permute_blocks(dst, src, &self.source_block, &self.pattern, &self.lanes, add_modulo);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The block form agrees with the slot formula for rotations, conjugation and a few
    /// elements at several sizes, and is a permutation.
    #[test]
    fn blocks_follow_the_slot_formula() {
        for log_n in [4u32, 10, 13] {
            let n = 1usize << log_n;
            for g in [1, 3, 5, 25, 2 * n - 1, 5usize.pow(7) % (2 * n)] {
                let p = GaloisPermutation::new(n, g).unwrap();
                assert!(p.lanes.len() <= BLOCK);
                let mut seen = vec![false; n];
                for k in 0..n {
                    let kk = ((g * (2 * k + 1)) % (2 * n)) >> 1;
                    let x = bit_reverse(k, log_n);
                    assert_eq!(p.source(x), bit_reverse(kk, log_n), "n {n} g {g} k {k}");
                    seen[p.source(x)] = true;
                }
                assert!(seen.iter().all(|&s| s));
                let src: Vec<u64> = (0..n as u64).map(|v| v * 3 + 1).collect();
                let mut dst = vec![0u64; n];
                p.gather(&mut dst, &src);
                assert!((0..n).all(|x| dst[x] == src[p.source(x)]));
                let m = Modulus::new(97).unwrap();
                let small: Vec<u64> = (0..n as u64).map(|v| v % 97).collect();
                let mut acc = vec![96u64; n];
                p.gather_add(&mut acc, &small, &m);
                assert!((0..n).all(|x| acc[x] == (96 + small[p.source(x)]) % 97));
            }
        }
        assert!(GaloisPermutation::new(1024, 4).is_err());
        assert!(GaloisPermutation::new(1024, 2048).is_err());
        assert!(GaloisPermutation::new(8, 3).is_err());
    }
}
