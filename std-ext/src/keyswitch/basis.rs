//! Fast RNS basis conversion (Bajard et al. 2016, "A full RNS variant of FV"; Halevi, Polyakov
//! and Shoup 2019), the engine of hybrid key switching's ModUp and ModDown.
//!
//! For x given by residues x_i mod b_i (i < m) with B = prod b_i, the conversion to a prime t is
//!   x~ = sum_i [x_i * (B/b_i)^-1]_{b_i} * (B/b_i)  mod t,
//! which equals x + u*B for some 0 <= u < m. The small multiple of B is harmless in key
//! switching: in ModUp it is absorbed by the gadget (each digit's residues are kept exact), in
//! ModDown it adds at most m to the error after division by P.

use clifhe_core::arith::Modulus;

/// Precomputed constants converting from a source basis to a list of target primes.
#[derive(Debug, Clone)]
pub struct BasisConverter {
    source: Vec<Modulus>,
    /// (B/b_i)^-1 mod b_i and its Shoup quotient.
    inv_hat: Vec<(u64, u64)>,
    target: Vec<Modulus>,
    /// hat_mod_t[t * m + i] = (B/b_i) mod target_t.
    hat_mod_t: Vec<u64>,
}

impl BasisConverter {
    pub fn new(source: &[Modulus], target: &[Modulus]) -> Self {
        let m = source.len();
        let inv_hat = source
            .iter()
            .enumerate()
            .map(|(i, bi)| {
                let mut hat = 1u64;
                for (j, bj) in source.iter().enumerate() {
                    if j != i {
                        hat = bi.mul(hat, bi.reduce(bj.value()));
                    }
                }
                let inv = bi.inv(hat);
                (inv, bi.shoup(inv))
            })
            .collect();
        let mut hat_mod_t = Vec::with_capacity(target.len() * m);
        for t in target {
            for i in 0..m {
                let mut hat = 1u64;
                for (j, bj) in source.iter().enumerate() {
                    if j != i {
                        hat = t.mul(hat, t.reduce(bj.value()));
                    }
                }
                hat_mod_t.push(hat);
            }
        }
        Self {
            source: source.to_vec(),
            inv_hat,
            target: target.to_vec(),
            hat_mod_t,
        }
    }

    pub fn source_len(&self) -> usize {
        self.source.len()
    }
    pub fn target_len(&self) -> usize {
        self.target.len()
    }

    /// First half of a conversion, for source limb `i` in place: x_i * (B/b_i)^-1 mod b_i
    /// (nothing to do for a one-prime source, whose factor is 1).
    pub fn scale_input_limb(&self, i: usize, limb: &mut [u64]) {
        if self.source.len() == 1 {
            return;
        }
        let (bi, (inv, inv_s)) = (&self.source[i], self.inv_hat[i]);
        for x in limb.iter_mut() {
            *x = bi.mul_shoup(*x, inv, inv_s);
        }
    }

    /// Second half for one target: out = sum_i y_i * (B/b_i) mod target[ti], for the m
    /// scaled source limbs `y` (limb-major), left in [0, 4 t): both callers feed the result to
    /// a forward NTT, which takes inputs below 4t. A one-prime source below 4t is then a copy.
    /// Sources of up to 64 primes below 2^61 (the sum of the products fits 128 bits).
    pub fn convert_scaled_to(&self, n: usize, y: &[u64], ti: usize, out: &mut [u64]) {
        let m = self.source.len();
        let t = &self.target[ti];
        if m == 1 {
            // B/b_0 = 1 and the scaling was by 1: a reduction, or nothing below 4t.
            if self.source[0].value() <= 4 * t.value() {
                out.copy_from_slice(&y[..n]);
            } else {
                for (o, x) in out.iter_mut().zip(&y[..n]) {
                    *o = t.reduce(*x);
                }
            }
            return;
        }
        let hats = &self.hat_mod_t[ti * m..(ti + 1) * m];
        for (j, o) in out.iter_mut().enumerate() {
            let mut acc: u128 = 0;
            for (i, h) in hats.iter().enumerate() {
                acc += y[i * n + j] as u128 * *h as u128;
            }
            *o = t.reduce_u128(acc);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clifhe_core::params::primes;

    #[test]
    fn conversion_is_exact_up_to_a_small_multiple_of_the_source_modulus() {
        let src: Vec<Modulus> = [primes::Q40[0], primes::Q40[1]].iter().map(|&q| Modulus::new(q).unwrap()).collect();
        let tgt: Vec<Modulus> = [primes::P61[0]].iter().map(|&q| Modulus::new(q).unwrap()).collect();
        let conv = BasisConverter::new(&src, &tgt);
        let n = 4;
        let big_b = primes::Q40[0] as u128 * primes::Q40[1] as u128;
        let xs: [u128; 4] = [0, 1, big_b - 1, 123_456_789_012_345_678_901];
        let mut input = vec![0u64; 2 * n];
        for (j, x) in xs.iter().enumerate() {
            input[j] = (x % primes::Q40[0] as u128) as u64;
            input[n + j] = (x % primes::Q40[1] as u128) as u64;
        }
        let mut out = vec![0u64; n];
        for (i, limb) in input.chunks_exact_mut(n).enumerate() {
            conv.scale_input_limb(i, limb);
        }
        conv.convert_scaled_to(n, &input, 0, &mut out);
        let t = primes::P61[0] as u128;
        for (j, x) in xs.iter().enumerate() {
            // The output is lazy (below 4t): compare modulo t.
            let ok = (0..2u128).any(|u| ((x + u * big_b) % t) as u64 == out[j] % primes::P61[0]);
            assert!(ok, "coefficient {j}");
        }
    }
}
