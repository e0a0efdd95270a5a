//! Helpers shared by the integration tests (each test file includes this module).
#![allow(dead_code)]

use clifhe_core::encode::Complex;

/// Precision of `got` against `want` in bits per slot, -log2 |got - want|: (minimum, mean).
pub fn precision(got: &[Complex], want: &[Complex]) -> (f64, f64) {
    let bits: Vec<f64> = got
        .iter()
        .zip(want)
        .map(|(g, w)| -((*g - *w).abs().max(f64::EPSILON)).log2())
        .collect();
    (
        bits.iter().cloned().fold(f64::INFINITY, f64::min),
        bits.iter().sum::<f64>() / bits.len() as f64,
    )
}

/// A uniform f64 in [0, 1) from 53 random bits.
pub fn uniform(rng: &mut rand_chacha::ChaCha20Rng) -> f64 {
    use rand_chacha::rand_core::RngCore;
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// Three classes by the sign pattern of a quadratic function of the features: a problem the
/// quadratic activations matter for, with near-ties along the class boundaries.
pub fn quadratic_classes(n: usize, seed: u64) -> (Vec<clifhe_core::Multivector>, Vec<usize>) {
    use rand_chacha::rand_core::SeedableRng;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    let xs: Vec<clifhe_core::Multivector> = (0..n)
        .map(|_| {
            let mut c = [0.0; 8];
            c.iter_mut()
                .enumerate()
                .for_each(|(k, v)| *v = 0.1 * k as f64 + (uniform(&mut rng) - 0.5) * 0.2);
            clifhe_core::Multivector::new(c)
        })
        .collect();
    let ys = xs
        .iter()
        .map(|x| {
            let c = x.coeffs();
            let t = (c[1] - 0.1) * (c[2] - 0.2) * 100.0 + (c[0] - c[3] + 0.3) * 5.0;
            usize::from(t > -0.1) + usize::from(t > 0.1)
        })
        .collect();
    (xs, ys)
}
