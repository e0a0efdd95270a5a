//! A Clifford group equivariant network on K multivector channels (plaintext forward pass).
//!
//! The family of Ruhe, Brandstetter and Forré, "Clifford Group Equivariant Neural Networks"
//! (NeurIPS 2023), restricted to what CKKS computes exactly (additions and products, no
//! non-polynomial activation). For a rotation R of the scan, every input channel transforms as
//! x -> R x R~ grade by grade, and so does every hidden channel here; the class scores read
//! only invariants, so they do not change (up to rounding). Why each step keeps that:
//!
//! * **grade-wise linear maps across channels**: `(L x)_o = sum_i sum_g w[o][i][g] <x_i>_g`, one
//!   weight per (output channel, input channel, grade). Grade projection commutes with
//!   R . R~ (a rotation maps k-vectors to k-vectors), and so do sums and real scalings;
//! * **weighted geometric products between channels**: `p_o = sum_g u[o][g] <(A x)_o (B x)_o>_g`
//!   for two grade-wise maps A and B: R a R~ R b R~ = R (a b) R~ (R~ R = 1);
//! * **polynomial gates on invariants**: `y_o <- y_o (1 + c1 <y_o>_0 + c2 <y_o y_o~>_0)`; the
//!   scalar part and the squared norm are invariant, so the factor is a plain number;
//! * **invariant readout**: class score `s_c = b_c + sum_o (r0 <y_o>_0 + r2 |y_o|^2 + r3 <y_o>_3)`,
//!   with `<y>_3` the pseudoscalar coefficient (invariant under proper rotations).
//!
//! This module is the layer algebra and its exact invariance test; training, the model file and
//! the encrypted evaluation (where the geometric product is a ciphertext x ciphertext product)
//! build on it.

use clifhe_core::multivector::{Multivector, BLADE_GRADES};

/// `sum_g w[g] <x>_g`: a real weight per grade (0..=3) applied to a multivector.
fn grade_scale(x: &Multivector, w: &[f64; 4]) -> Multivector {
    let mut c = x.coeffs();
    for (v, g) in c.iter_mut().zip(BLADE_GRADES) {
        *v *= w[g as usize];
    }
    Multivector::new(c)
}

fn add(a: &Multivector, b: &Multivector) -> Multivector {
    let (x, y) = (a.coeffs(), b.coeffs());
    Multivector::new(core::array::from_fn(|k| x[k] + y[k]))
}

/// A grade-wise linear map from `inputs` to `outputs` channels: `weights[o * inputs + i][g]`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GradeLinear {
    /// Input channels.
    pub inputs: usize,
    /// Output channels.
    pub outputs: usize,
    /// One weight per (output, input, grade), output-major.
    pub weights: Vec<[f64; 4]>,
}

impl GradeLinear {
    /// Applies the map; `x.len()` must equal `inputs` (else an empty output).
    #[must_use]
    pub fn apply(&self, x: &[Multivector]) -> Vec<Multivector> {
        if x.len() != self.inputs || self.weights.len() != self.inputs * self.outputs {
            return Vec::new();
        }
        (0..self.outputs)
            .map(|o| {
                x.iter().enumerate().fold(Multivector::zero(), |acc, (i, xi)| {
                    add(&acc, &grade_scale(xi, &self.weights[o * self.inputs + i]))
                })
            })
            .collect()
    }
}

/// One equivariant layer: a linear path plus a weighted geometric product of two linear
/// projections, then a polynomial gate on invariants.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CliffordLayer {
    /// The linear path.
    pub linear: GradeLinear,
    /// Left factor of the product path.
    pub left: GradeLinear,
    /// Right factor of the product path.
    pub right: GradeLinear,
    /// Per output channel, a weight per grade of the product.
    pub product: Vec<[f64; 4]>,
    /// Per output channel, the gate's coefficients on the scalar part and the squared norm.
    pub gate: Vec<[f64; 2]>,
}

impl CliffordLayer {
    /// The layer's output channels (empty if `x` has the wrong channel count).
    #[must_use]
    pub fn forward(&self, x: &[Multivector]) -> Vec<Multivector> {
        let (lin, l, r) = (self.linear.apply(x), self.left.apply(x), self.right.apply(x));
        if lin.is_empty() || l.len() != lin.len() || r.len() != lin.len() || self.product.len() != lin.len() || self.gate.len() != lin.len()
        {
            return Vec::new();
        }
        lin.iter()
            .zip(l.iter().zip(&r))
            .zip(self.product.iter().zip(&self.gate))
            .map(|((y, (a, b)), (u, g))| {
                let y = add(y, &grade_scale(&a.gp(b), u));
                let factor = 1.0 + g[0] * y.scalar_part() + g[1] * y.norm_squared();
                y.scale(factor)
            })
            .collect()
    }
}

/// The invariant readout: per class, weights on each channel's scalar part, squared norm and
/// pseudoscalar, plus a bias.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InvariantReadout {
    /// weights[c * channels + o] = [scalar, squared norm, pseudoscalar].
    pub weights: Vec<[f64; 3]>,
    /// One bias per class.
    pub bias: Vec<f64>,
}

impl InvariantReadout {
    /// Class scores of the last layer's channels.
    #[must_use]
    pub fn scores(&self, y: &[Multivector]) -> Vec<f64> {
        let k = y.len();
        if k == 0 || self.weights.len() != k * self.bias.len() {
            return Vec::new();
        }
        self.bias
            .iter()
            .enumerate()
            .map(|(c, b)| {
                b + y
                    .iter()
                    .enumerate()
                    .map(|(o, yo)| {
                        let w = self.weights[c * k + o];
                        w[0] * yo.scalar_part() + w[1] * yo.norm_squared() + w[2] * yo.coeffs()[7]
                    })
                    .sum::<f64>()
            })
            .collect()
    }
}

/// Layers then readout: class scores of K input channels.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EquivariantNet {
    /// Hidden layers, in order.
    pub layers: Vec<CliffordLayer>,
    /// The readout into class scores.
    pub readout: InvariantReadout,
}

impl EquivariantNet {
    /// Class scores (empty if a layer's channel counts do not chain).
    #[must_use]
    pub fn scores(&self, x: &[Multivector]) -> Vec<f64> {
        let mut h = x.to_vec();
        for layer in &self.layers {
            h = layer.forward(&h);
            if h.is_empty() {
                return Vec::new();
            }
        }
        self.readout.scores(&h)
    }

    /// The largest |coefficient| of any hidden channel and |score| on input `x` (what an
    /// encrypted evaluation would have to hold); 0 if the channel counts do not chain.
    #[must_use]
    pub fn max_abs_intermediate(&self, x: &[Multivector]) -> f64 {
        let mut h = x.to_vec();
        let mut largest = 0f64;
        for layer in &self.layers {
            h = layer.forward(&h);
            if h.is_empty() {
                return 0.0;
            }
            largest = h.iter().flat_map(Multivector::coeffs).fold(largest, |m, v| m.max(v.abs()));
        }
        self.readout.scores(&h).iter().fold(largest, |m, v| m.max(v.abs()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::{RngCore, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    fn uniform(rng: &mut ChaCha20Rng, scale: f64) -> f64 {
        (rng.next_u64() as f64 / u64::MAX as f64 * 2.0 - 1.0) * scale
    }

    fn grade_linear(rng: &mut ChaCha20Rng, inputs: usize, outputs: usize) -> GradeLinear {
        let weights = (0..inputs * outputs).map(|_| core::array::from_fn(|_| uniform(rng, 0.6))).collect();
        GradeLinear { inputs, outputs, weights }
    }

    fn net(rng: &mut ChaCha20Rng, channels: &[usize], classes: usize) -> EquivariantNet {
        let layers = channels
            .windows(2)
            .map(|w| CliffordLayer {
                linear: grade_linear(rng, w[0], w[1]),
                left: grade_linear(rng, w[0], w[1]),
                right: grade_linear(rng, w[0], w[1]),
                product: (0..w[1]).map(|_| core::array::from_fn(|_| uniform(rng, 0.5))).collect(),
                gate: (0..w[1]).map(|_| core::array::from_fn(|_| uniform(rng, 0.2))).collect(),
            })
            .collect();
        let k = *channels.last().unwrap();
        let readout = InvariantReadout {
            weights: (0..k * classes).map(|_| core::array::from_fn(|_| uniform(rng, 1.0))).collect(),
            bias: (0..classes).map(|_| uniform(rng, 1.0)).collect(),
        };
        EquivariantNet { layers, readout }
    }

    /// A random rotor: a unit element of the even subalgebra (scalar + bivector).
    fn rotor(rng: &mut ChaCha20Rng) -> Multivector {
        let q: [f64; 4] = core::array::from_fn(|_| uniform(rng, 1.0));
        let n = q.iter().map(|v| v * v).sum::<f64>().sqrt();
        Multivector::new([q[0] / n, 0.0, 0.0, 0.0, q[1] / n, q[2] / n, q[3] / n, 0.0])
    }

    fn sandwich(r: &Multivector, x: &Multivector) -> Multivector {
        r.gp(x).gp(&r.reverse())
    }

    #[test]
    fn scores_are_invariant_under_100_random_rotations() {
        let mut rng = ChaCha20Rng::seed_from_u64(2023);
        let model = net(&mut rng, &[3, 4, 4], 2);
        let mut worst = 0f64;
        for _ in 0..100 {
            let x: Vec<Multivector> = (0..3)
                .map(|_| Multivector::new(core::array::from_fn(|_| uniform(&mut rng, 1.0))))
                .collect();
            let r = rotor(&mut rng);
            let rx: Vec<Multivector> = x.iter().map(|xi| sandwich(&r, xi)).collect();
            let (a, b) = (model.scores(&x), model.scores(&rx));
            assert_eq!(a.len(), 2);
            for (u, v) in a.iter().zip(&b) {
                worst = worst.max((u - v).abs());
            }
        }
        println!("100 rotations, 3 channels, 2 layers: max |score(Rx) - score(x)| = {worst:e}");
        assert!(worst <= 1e-9, "max |score(Rx) - score(x)| = {worst:e}");
    }

    #[test]
    fn hidden_channels_rotate_with_the_input() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let model = net(&mut rng, &[2, 3], 1);
        let x: Vec<Multivector> = (0..2)
            .map(|_| Multivector::new(core::array::from_fn(|_| uniform(&mut rng, 1.0))))
            .collect();
        let r = rotor(&mut rng);
        let rx: Vec<Multivector> = x.iter().map(|xi| sandwich(&r, xi)).collect();
        let (h, rh) = (model.layers[0].forward(&x), model.layers[0].forward(&rx));
        for (a, b) in h.iter().zip(&rh) {
            let want = sandwich(&r, a).coeffs();
            for (u, v) in want.iter().zip(b.coeffs()) {
                assert!((u - v).abs() < 1e-12, "{want:?} vs {:?}", b.coeffs());
            }
        }
    }

    #[test]
    fn the_test_can_fail_rotating_one_channel_only_changes_the_scores() {
        // Rotating channel 0 alone is not a rotation of the scan: the products between
        // channels see it, so the scores move. The invariance test above is not vacuous.
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let model = net(&mut rng, &[2, 3], 2);
        let x: Vec<Multivector> = (0..2)
            .map(|_| Multivector::new(core::array::from_fn(|_| uniform(&mut rng, 1.0))))
            .collect();
        let r = rotor(&mut rng);
        let partly = vec![sandwich(&r, &x[0]), x[1]];
        let (a, b) = (model.scores(&x), model.scores(&partly));
        assert!(a.iter().zip(&b).any(|(u, v)| (u - v).abs() > 1e-3), "{a:?} vs {b:?}");
    }

    #[test]
    fn mismatched_channel_counts_give_no_scores() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let model = net(&mut rng, &[3, 2], 2);
        assert!(model.scores(&[Multivector::zero(); 2]).is_empty());
    }
}
