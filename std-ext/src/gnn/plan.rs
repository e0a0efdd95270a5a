//! The model rewritten as the operations the encrypted evaluator performs: plaintext affine maps
//! of one multivector (8x8 matrix + bias), component-wise products of two such maps summed over
//! the layer, and scalar output rows. `InferencePlan::evaluate` is the same function as
//! `GnnModel::forward` (a test checks it), so an encrypted implementation that follows the plan
//! reproduces the reference.

use clifhe_core::multivector::{left_mul_matrix, Multivector};

use super::model::{GnnModel, SCALAR_SIGN};

/// x -> matrix * x + bias on the 8 coefficients. In the blade-major layout: 64 scalar
/// multiply-adds of ciphertexts by constants, 8 constant additions, one rescale (1 level).
#[derive(Clone, Debug, PartialEq)]
pub struct AffineMap {
    pub matrix: [[f64; 8]; 8],
    pub bias: [f64; 8],
}

impl AffineMap {
    pub fn apply(&self, x: &[f64; 8]) -> [f64; 8] {
        let mut out = self.bias;
        for (o, row) in out.iter_mut().zip(&self.matrix) {
            *o += row.iter().zip(x).map(|(m, v)| m * v).sum::<f64>();
        }
        out
    }

    /// `Some((w, b))` when the map is exactly x -> w x + b (geometric product with a multivector
    /// weight): the matrix's first column is w (w * 1 = w) and the rest must agree with it.
    pub fn as_geometric_product(&self) -> Option<(Multivector, Multivector)> {
        let mut w = [0.0; 8];
        for (r, row) in self.matrix.iter().enumerate() {
            w[r] = row[0];
        }
        let w = Multivector::new(w);
        let m = left_mul_matrix(&w);
        let scale = self
            .matrix
            .iter()
            .flatten()
            .fold(0.0f64, |a, v| a.max(v.abs()))
            .max(f64::MIN_POSITIVE);
        let same = m
            .iter()
            .flatten()
            .zip(self.matrix.iter().flatten())
            .all(|(a, b)| (a - b).abs() <= 1e-12 * scale);
        same.then(|| (w, Multivector::new(self.bias)))
    }

    fn compose_input(&self, scale: &[f64; 8], shift: &[f64; 8]) -> Self {
        // self(scale o x + shift) = (matrix diag(scale)) x + (matrix shift + bias).
        let mut matrix = self.matrix;
        for row in matrix.iter_mut() {
            for (m, s) in row.iter_mut().zip(scale) {
                *m *= s;
            }
        }
        Self {
            matrix,
            bias: self.apply(shift),
        }
    }
}

/// One hidden layer: h = sum_j left_j(x) o right_j(x) (component-wise). Level 1: all maps;
/// level 2: 8 * pairs.len() tensor products accumulated per blade, 8 relinearizations, one rescale.
#[derive(Clone, Debug, PartialEq)]
pub struct QuadraticLayerPlan {
    pub pairs: Vec<(AffineMap, AffineMap)>,
}

/// The whole encrypted evaluation. Normalisation is folded into the first maps.
#[derive(Clone, Debug, PartialEq)]
pub struct InferencePlan {
    pub layers: Vec<QuadraticLayerPlan>,
    /// score_c = row_c . h + bias_c (one level: 8 constant multiply-adds per class).
    pub output: Vec<([f64; 8], f64)>,
}

impl InferencePlan {
    pub(crate) fn from_model(model: &GnnModel) -> Self {
        let norm = model.normalisation();
        let mut scale = [0.0; 8];
        let mut shift = [0.0; 8];
        for k in 0..8 {
            scale[k] = 1.0 / norm.std[k];
            shift[k] = -norm.mean[k] / norm.std[k];
        }
        let mut layers = Vec::new();
        for (l, layer) in model.hidden_layers().iter().enumerate() {
            let inv_m = 1.0 / layer.weights.len() as f64;
            let pairs = layer
                .weights
                .iter()
                .zip(&layer.biases)
                .map(|(w, b)| {
                    let y = AffineMap {
                        matrix: left_mul_matrix(&Multivector::new(*w)),
                        bias: *b,
                    };
                    // v = (1 + a o y) / m: rows of the y-map scaled by a_k / m.
                    let mut v = y.clone();
                    for k in 0..8 {
                        let f = layer.activation[k] * inv_m;
                        v.matrix[k].iter_mut().for_each(|m| *m *= f);
                        v.bias[k] = (1.0 + layer.activation[k] * b[k]) * inv_m;
                    }
                    if l == 0 {
                        (y.compose_input(&scale, &shift), v.compose_input(&scale, &shift))
                    } else {
                        (y, v)
                    }
                })
                .collect();
            layers.push(QuadraticLayerPlan { pairs });
        }
        let out = model.output_layer();
        let output = out
            .weights
            .iter()
            .zip(&out.biases)
            .map(|(w, b)| {
                let mut row = [0.0; 8];
                for a in 0..8 {
                    row[a] = SCALAR_SIGN[a] * w[a];
                }
                if layers.is_empty() {
                    // No hidden layer: the output row takes the normalisation.
                    let bias = b + (0..8).map(|a| row[a] * shift[a]).sum::<f64>();
                    (0..8).for_each(|a| row[a] *= scale[a]);
                    (row, bias)
                } else {
                    (row, *b)
                }
            })
            .collect();
        Self { layers, output }
    }

    /// Plaintext evaluation of the plan (equals `GnnModel::forward` up to rounding).
    pub fn evaluate(&self, x: &Multivector) -> Vec<f64> {
        let mut h = x.coeffs();
        for layer in &self.layers {
            let mut next = [0.0; 8];
            for (l, r) in &layer.pairs {
                let (a, b) = (l.apply(&h), r.apply(&h));
                for k in 0..8 {
                    next[k] += a[k] * b[k];
                }
            }
            h = next;
        }
        self.output
            .iter()
            .map(|(row, b)| row.iter().zip(&h).map(|(w, v)| w * v).sum::<f64>() + b)
            .collect()
    }

    /// Levels consumed: 2 per quadratic layer, 1 for the output rows.
    pub fn depth(&self) -> usize {
        2 * self.layers.len() + 1
    }

    /// Ciphertext tensor products per layer (blade-major: 8 per pair).
    pub fn tensor_products(&self) -> Vec<usize> {
        self.layers.iter().map(|l| 8 * l.pairs.len()).collect()
    }

    /// Relinearizations per layer with lazy relinearization: one per output blade.
    pub fn relinearizations(&self) -> Vec<usize> {
        self.layers.iter().map(|_| 8).collect()
    }
}
