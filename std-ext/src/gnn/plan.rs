//! The model rewritten as the operations the encrypted evaluator performs: plaintext affine maps
//! of one multivector (8x8 matrix + bias), component-wise products of two such maps summed over
//! the layer, and scalar output rows. `InferencePlan::evaluate` is the same function as
//! `GnnModel::forward` (a test checks it), so an encrypted implementation that follows the plan
//! reproduces the reference.
//!
//! Under encryption the plan runs as a list of [`QuadraticForm`]s ([`InferencePlan::forms`]):
//! one per hidden layer, the last one composed with the output rows (score_c, the sum over k of
//! row_c[k] h_k plus bias_c, is linear in h, so it folds into the last layer's quadratic form:
//! one level and 8 - C relinearizations fewer). The evaluator ([`super::encrypted`]) and the noise and range
//! analysis ([`super::noise`]) both read these forms; nothing else expands the model.

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

/// What the encrypted batch holds for each patient, and so what the plan's first maps take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputEncoding {
    /// The raw 8 scan features x (no clamping: the range analysis then holds only for inputs
    /// inside the model's box).
    Raw,
    /// u = (clamp(x) - center) / half_width in [-1, 1]^8 per blade ([`super::InputBox::encode`]):
    /// what a circuit-private evaluation needs. The box is public, the encryptor clamps, empty
    /// slots hold u = 0 (the box centre), so every slot lies in the box the noise analysis assumes.
    UnitBox,
}

/// The whole encrypted evaluation. Normalisation (and the input encoding) is folded into the
/// first maps.
#[derive(Clone, Debug, PartialEq)]
pub struct InferencePlan {
    pub layers: Vec<QuadraticLayerPlan>,
    /// score_c = row_c . h + bias_c (one level: 8 constant multiply-adds per class).
    pub output: Vec<([f64; 8], f64)>,
    /// The box the plan's input lies in per blade, (lo, hi): the model's input box for
    /// [`InputEncoding::Raw`], [-1, 1] for [`InputEncoding::UnitBox`] (the encoder clamps into
    /// it). The range and noise analysis holds on it.
    pub input_domain: [(f64, f64); 8],
    pub encoding: InputEncoding,
}

/// (left, c, right, d): the product (left . x + c)(right . x + d).
pub type AffineProduct = ([f64; 8], f64, [f64; 8], f64);

/// A quadratic map of 8 inputs to `outputs()` values, expanded:
/// `out_k = sum_(a<=b) quad[k][a][b] x_a x_b + sum_a lin[k][a] x_a + constant[k]`.
/// `quad[k][a][b]` is used for a <= b only (the a > b terms are folded into a < b).
#[derive(Clone, Debug, PartialEq)]
pub struct QuadraticForm {
    pub quad: Vec<[[f64; 8]; 8]>,
    pub lin: Vec<[f64; 8]>,
    pub constant: Vec<f64>,
    /// The same function as a sum of products of affine functions of x: out_k =
    /// sum_t (left_t . x + c_t)(right_t . x + d_t) + offset_k, one list per output. The expanded
    /// form is what the evaluator computes; the factored one gives the range analysis exact
    /// intervals of each factor.
    pub factors: Vec<Vec<AffineProduct>>,
    pub offset: Vec<f64>,
}

impl QuadraticForm {
    pub fn outputs(&self) -> usize {
        self.constant.len()
    }

    /// No degree-2 term: evaluated as one linear combination (one level, no relinearization).
    pub fn is_affine(&self) -> bool {
        self.quad.iter().all(|q| q.iter().flatten().all(|&v| v == 0.0))
    }

    /// The layer's 8 outputs, h_k = sum_j (A_j x + c_j)_k (B_j x + d_j)_k, expanded.
    fn of_layer(layer: &QuadraticLayerPlan) -> Self {
        let mut f = Self::zero(8);
        for (left, right) in &layer.pairs {
            for k in 0..8 {
                f.add_product(k, (&left.matrix[k], left.bias[k]), (&right.matrix[k], right.bias[k]), 1.0);
            }
        }
        f
    }

    /// score_c = sum_k row_c[k] h_k(x) + bias_c with h the layer's outputs: the output rows
    /// folded into the last hidden layer.
    fn of_layer_then_rows(layer: &QuadraticLayerPlan, rows: &[([f64; 8], f64)]) -> Self {
        let mut f = Self::zero(rows.len());
        for (c, (row, bias)) in rows.iter().enumerate() {
            for (left, right) in &layer.pairs {
                for k in 0..8 {
                    if row[k] != 0.0 {
                        f.add_product(c, (&left.matrix[k], left.bias[k]), (&right.matrix[k], right.bias[k]), row[k]);
                    }
                }
            }
            f.constant[c] += bias;
            f.offset[c] += bias;
        }
        f
    }

    /// The output rows alone (a model without hidden layers): affine.
    fn of_rows(rows: &[([f64; 8], f64)]) -> Self {
        let mut f = Self::zero(rows.len());
        for (c, (row, bias)) in rows.iter().enumerate() {
            f.lin[c] = *row;
            f.constant[c] = *bias;
            // An affine output as one product: (row . x + bias) * (0 . x + 1).
            f.factors[c].push((*row, *bias, [0.0; 8], 1.0));
        }
        f
    }

    fn zero(outputs: usize) -> Self {
        Self {
            quad: vec![[[0.0; 8]; 8]; outputs],
            lin: vec![[0.0; 8]; outputs],
            constant: vec![0.0; outputs],
            factors: vec![Vec::new(); outputs],
            offset: vec![0.0; outputs],
        }
    }

    /// out_k += w (a . x + c)(b . x + d).
    fn add_product(&mut self, k: usize, (a, c): (&[f64; 8], f64), (b, d): (&[f64; 8], f64), w: f64) {
        for i in 0..8 {
            for j in 0..8 {
                let (lo, hi) = if i <= j { (i, j) } else { (j, i) };
                self.quad[k][lo][hi] += w * a[i] * b[j];
            }
            self.lin[k][i] += w * (d * a[i] + c * b[i]);
        }
        self.constant[k] += w * c * d;
        let mut wb = *b;
        wb.iter_mut().for_each(|v| *v *= w);
        self.factors[k].push((*a, c, wb, w * d));
    }

    /// The form whose output r is `sum_k rows[r][k] out_k`: linear combinations of this form's
    /// outputs, expanded and factored alike.
    pub fn combined(&self, rows: &[[f64; 8]]) -> Self {
        let mut f = Self::zero(rows.len());
        for (r, row) in rows.iter().enumerate() {
            for (k, &w) in row.iter().enumerate().take(self.outputs()) {
                if w == 0.0 {
                    continue;
                }
                for a in 0..8 {
                    for b in a..8 {
                        f.quad[r][a][b] += w * self.quad[k][a][b];
                    }
                    f.lin[r][a] += w * self.lin[k][a];
                }
                f.constant[r] += w * self.constant[k];
                f.offset[r] += w * self.offset[k];
                for (left, c, right, d) in &self.factors[k] {
                    let mut wl = *left;
                    wl.iter_mut().for_each(|v| *v *= w);
                    f.factors[r].push((wl, w * c, *right, *d));
                }
            }
        }
        f
    }

    /// The principal axes of output k's degree-2 part: eigenvalues `lambda` and orthonormal
    /// axes `v` (rows) with `sum_(a<=b) quad[k][a][b] x_a x_b = sum_j lambda_j (v_j . x)^2`, by
    /// cyclic Jacobi rotations of the symmetric matrix (Golub and Van Loan, section 8.5; an
    /// 8 x 8 matrix converges to the f64 rounding in a few sweeps).
    pub fn principal_axes(&self, k: usize) -> ([f64; 8], [[f64; 8]; 8]) {
        let mut a = [[0.0f64; 8]; 8];
        for i in 0..8 {
            a[i][i] = self.quad[k][i][i];
            for j in i + 1..8 {
                a[i][j] = self.quad[k][i][j] / 2.0;
                a[j][i] = a[i][j];
            }
        }
        // v holds the axes as rows: a = v^T diag(lambda) v at the end.
        let mut v = [[0.0f64; 8]; 8];
        for (i, row) in v.iter_mut().enumerate() {
            row[i] = 1.0;
        }
        for _sweep in 0..64 {
            let off: f64 = (0..8)
                .flat_map(|i| (i + 1..8).map(move |j| (i, j)))
                .map(|(i, j)| a[i][j] * a[i][j])
                .sum();
            let diag: f64 = (0..8).map(|i| a[i][i] * a[i][i]).sum();
            if off <= f64::EPSILON * f64::EPSILON * diag || off == 0.0 {
                break;
            }
            for p in 0..8 {
                for q in p + 1..8 {
                    if a[p][q] == 0.0 {
                        continue;
                    }
                    // The rotation in the (p, q) plane that zeroes a[p][q].
                    let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
                    let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                    let t = if theta == 0.0 { 1.0 } else { t };
                    let c = 1.0 / (t * t + 1.0).sqrt();
                    let s = t * c;
                    for r in 0..8 {
                        let (arp, arq) = (a[r][p], a[r][q]);
                        a[r][p] = c * arp - s * arq;
                        a[r][q] = s * arp + c * arq;
                    }
                    for r in 0..8 {
                        let (apr, aqr) = (a[p][r], a[q][r]);
                        a[p][r] = c * apr - s * aqr;
                        a[q][r] = s * apr + c * aqr;
                    }
                    for r in 0..8 {
                        let (vp, vq) = (v[p][r], v[q][r]);
                        v[p][r] = c * vp - s * vq;
                        v[q][r] = s * vp + c * vq;
                    }
                }
            }
        }
        let mut lambda = [0.0; 8];
        for (i, l) in lambda.iter_mut().enumerate() {
            *l = a[i][i];
        }
        (lambda, v)
    }

    /// Plaintext evaluation of the expanded form.
    pub fn evaluate(&self, x: &[f64; 8]) -> Vec<f64> {
        (0..self.outputs())
            .map(|k| {
                let mut v = self.constant[k];
                for a in 0..8 {
                    v += self.lin[k][a] * x[a];
                    for b in a..8 {
                        v += self.quad[k][a][b] * x[a] * x[b];
                    }
                }
                v
            })
            .collect()
    }

    /// d out_k / d x_b as an affine function of x: (row, constant) with
    /// d out_k / d x_b = row . x + constant.
    pub fn gradient(&self, k: usize, b: usize) -> ([f64; 8], f64) {
        let mut row = [0.0; 8];
        for (a, r) in row.iter_mut().enumerate() {
            *r = match a.cmp(&b) {
                core::cmp::Ordering::Less => self.quad[k][a][b],
                core::cmp::Ordering::Equal => 2.0 * self.quad[k][b][b],
                core::cmp::Ordering::Greater => self.quad[k][b][a],
            };
        }
        (row, self.lin[k][b])
    }
}

impl InferencePlan {
    pub(crate) fn from_model(model: &GnnModel, encoding: InputEncoding) -> Self {
        let norm = model.normalisation();
        let ibox = model.input_box();
        // The first maps take z = (x - mean) / std. With the unit-box encoding the input is u and
        // x = center + half_width u, so z = (center - mean) / std + (half_width / std) u.
        let mut scale = [0.0; 8];
        let mut shift = [0.0; 8];
        let mut input_domain = [(-1.0, 1.0); 8];
        for k in 0..8 {
            match encoding {
                InputEncoding::Raw => {
                    scale[k] = 1.0 / norm.std[k];
                    shift[k] = -norm.mean[k] / norm.std[k];
                    input_domain[k] = (ibox.center[k] - ibox.half_width[k], ibox.center[k] + ibox.half_width[k]);
                }
                InputEncoding::UnitBox => {
                    scale[k] = ibox.half_width[k] / norm.std[k];
                    shift[k] = (ibox.center[k] - norm.mean[k]) / norm.std[k];
                }
            }
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
        Self {
            layers,
            output,
            input_domain,
            encoding,
        }
    }

    /// Plaintext evaluation of the plan (equals `GnnModel::forward` up to rounding, for the
    /// encoding's input: raw features, or [`super::InputBox::encode`]d ones inside the box).
    pub fn evaluate(&self, x: &Multivector) -> Vec<f64> {
        self.evaluate_coeffs(&x.coeffs())
    }

    /// [`evaluate`](Self::evaluate) on plain coefficients.
    pub fn evaluate_coeffs(&self, x: &[f64; 8]) -> Vec<f64> {
        let mut h = *x;
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

    /// The plan as the encrypted evaluator runs it: one expanded quadratic form per hidden
    /// layer, the last composed with the output rows (module docs); a model without hidden
    /// layers is one affine form.
    pub fn forms(&self) -> Vec<QuadraticForm> {
        match self.layers.split_last() {
            None => vec![QuadraticForm::of_rows(&self.output)],
            Some((last, first)) => {
                let mut f: Vec<QuadraticForm> = first.iter().map(QuadraticForm::of_layer).collect();
                f.push(QuadraticForm::of_layer_then_rows(last, &self.output));
                f
            }
        }
    }

    /// Levels consumed under encryption: 2 per quadratic layer (the output rows are folded into
    /// the last one), 1 for a model without hidden layers.
    pub fn depth(&self) -> usize {
        if self.layers.is_empty() {
            1
        } else {
            2 * self.layers.len()
        }
    }

    /// Ciphertext tensor products per layer (blade-major: 8 per pair).
    pub fn tensor_products(&self) -> Vec<usize> {
        self.layers.iter().map(|l| 8 * l.pairs.len()).collect()
    }

    /// Relinearizations per quadratic form as the evaluator runs them (lazy: one per output):
    /// 8 per hidden layer, C for the last one (the output rows are folded into it).
    pub fn relinearizations(&self) -> Vec<usize> {
        self.forms().iter().filter(|f| !f.is_affine()).map(QuadraticForm::outputs).collect()
    }
}
