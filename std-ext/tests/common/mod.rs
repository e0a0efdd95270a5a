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
