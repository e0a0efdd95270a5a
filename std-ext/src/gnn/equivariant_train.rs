//! Training the equivariant network ([`super::equivariant`]) on plaintext channels: reverse-mode
//! gradients written out layer by layer (the geometric product's backward pass reads the same
//! `GP_TABLE` as the forward one, through `gp8_backward`), Adam, class-weighted softmax
//! cross-entropy, L2 on the weights, early stopping on a validation loss. One ChaCha20 stream
//! seeded by [`EquivariantConfig::seed`] drives initialisation, the split and the shuffles, and
//! the loop is single-threaded, so equal inputs give the same model bit for bit.
//!
//! Inputs are K channels per sample plus one constant channel (the scalar 1, invariant), which
//! gives every layer its biases without breaking equivariance. Each input channel's grades are
//! scaled by the inverse root-mean-square of that grade over the training set before training
//! (a grade-wise scaling commutes with rotations), and the scale is folded into the first
//! layer's weights afterwards, so the returned network reads raw channels.

use clifhe_core::multivector::{Multivector, BLADE_GRADES};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::equivariant::{CliffordLayer, EquivariantNet, GradeLinear, InvariantReadout};
use super::error::GnnError;
use super::lbfgs::Lbfgs;
use super::model::{gp8_backward, normal, softmax};
use super::train::{class_weights, shuffle, stratified_split, Adam};

/// How [`train_equivariant`] follows the gradient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Optimizer {
    /// Adam at the configured learning rate on shuffled mini-batches of the configured size;
    /// an epoch is one pass over the training set.
    Adam,
    /// Limited-memory BFGS on the whole training set with `memory` correction pairs (the
    /// learning rate and batch size are not used); an epoch is one iteration. Stops early at
    /// a stationary point.
    Lbfgs {
        /// Correction pairs kept.
        memory: usize,
    },
}

/// Hyper-parameters of [`train_equivariant`].
#[derive(Clone, Debug, PartialEq)]
pub struct EquivariantConfig {
    /// Output channels of each hidden layer (at least one layer).
    pub hidden: Vec<usize>,
    pub learning_rate: f64,
    /// Maximum number of epochs.
    pub epochs: usize,
    pub batch_size: usize,
    /// L2 coefficient on every weight except the readout's biases.
    pub l2: f64,
    /// Stop after this many epochs without a better validation loss (the best model is kept).
    pub patience: usize,
    /// Weight class c by n / (classes n_c) in the loss.
    pub class_weighting: bool,
    pub seed: u64,
    /// Without an explicit validation set: the stratified fraction held out.
    pub val_fraction: f64,
    /// Standard deviation of the initial weights, divided by sqrt(fan-in).
    pub init_scale: f64,
    /// Train the polynomial gates. Without them (gates fixed at the identity) a layer costs an
    /// encrypted evaluation two levels and 9 relinearizations per channel less
    /// (`gnn::equivariant_encrypted`).
    pub gates: bool,
    /// How the gradient is followed.
    pub optimizer: Optimizer,
}

impl EquivariantConfig {
    /// One layer of 8 channels without gates: what `private-n15` evaluates encrypted with room
    /// for the circuit-private flood (`gnn::equivariant_encrypted`, BENCHMARKS.md). Full-batch
    /// L-BFGS (10 pairs) on the objective with L2 1e-2, early stopping with patience 150 over
    /// at most 1 000 iterations: on AdrenalMNIST3D it reaches test AUC 0.885-0.887 where Adam
    /// on mini-batches stopped at 0.864-0.874 (BENCHMARKS.md, "The equivariant model").
    #[must_use]
    pub fn circuit_private(seed: u64) -> Self {
        Self {
            hidden: vec![8],
            gates: false,
            l2: 1e-2,
            optimizer: Optimizer::Lbfgs { memory: 10 },
            epochs: 1000,
            patience: 150,
            seed,
            ..Self::default()
        }
    }
}

impl Default for EquivariantConfig {
    fn default() -> Self {
        Self {
            hidden: vec![8, 8],
            learning_rate: 0.01,
            epochs: 300,
            batch_size: 64,
            l2: 1e-3,
            patience: 40,
            class_weighting: true,
            seed: 1,
            val_fraction: 0.15,
            init_scale: 0.5,
            gates: true,
            optimizer: Optimizer::Adam,
        }
    }
}

/// What happened during training.
#[derive(Clone, Debug, PartialEq)]
pub struct EquivariantReport {
    pub epochs_run: usize,
    /// Epoch (0-based) whose parameters were kept.
    pub best_epoch: usize,
    pub best_val_loss: Option<f64>,
    pub train_loss: Vec<f64>,
    pub val_loss: Vec<f64>,
    /// Number of trained parameters.
    pub parameters: usize,
}

/// Every parameter of a network in one vector: per layer the linear, left and right weights,
/// the product weights and the gates; then the readout's weights and biases.
#[must_use]
pub fn parameters(net: &EquivariantNet) -> Vec<f64> {
    let mut p = Vec::new();
    for l in &net.layers {
        for m in [&l.linear, &l.left, &l.right] {
            m.weights.iter().for_each(|w| p.extend_from_slice(w));
        }
        l.product.iter().for_each(|w| p.extend_from_slice(w));
        l.gate.iter().for_each(|w| p.extend_from_slice(w));
    }
    net.readout.weights.iter().for_each(|w| p.extend_from_slice(w));
    p.extend_from_slice(&net.readout.bias);
    p
}

/// Writes `p` (laid out as [`parameters`]) into `net`; false if the length differs.
pub fn set_parameters(net: &mut EquivariantNet, p: &[f64]) -> bool {
    if p.len() != parameters(net).len() {
        return false;
    }
    let mut it = p.iter().copied();
    let mut fill = |dst: &mut [f64]| dst.iter_mut().for_each(|d| *d = it.next().unwrap_or(0.0));
    for l in &mut net.layers {
        for m in [&mut l.linear, &mut l.left, &mut l.right] {
            m.weights.iter_mut().for_each(|w| fill(w));
        }
        l.product.iter_mut().for_each(|w| fill(w));
        l.gate.iter_mut().for_each(|w| fill(w));
    }
    net.readout.weights.iter_mut().for_each(|w| fill(w));
    fill(&mut net.readout.bias);
    true
}

fn grade_of(k: usize) -> usize {
    BLADE_GRADES[k] as usize
}

/// Intermediates of one layer for one sample (what the backward pass needs).
struct LayerCache {
    x: Vec<[f64; 8]>,
    a: Vec<[f64; 8]>,
    b: Vec<[f64; 8]>,
    p: Vec<[f64; 8]>,
    y: Vec<[f64; 8]>,
    s: Vec<f64>,
}

fn apply_linear(m: &GradeLinear, x: &[[f64; 8]]) -> Vec<[f64; 8]> {
    (0..m.outputs)
        .map(|o| {
            let mut acc = [0.0; 8];
            for (i, xi) in x.iter().enumerate() {
                let w = &m.weights[o * m.inputs + i];
                for k in 0..8 {
                    acc[k] += w[grade_of(k)] * xi[k];
                }
            }
            acc
        })
        .collect()
}

fn linear_backward(m: &GradeLinear, x: &[[f64; 8]], d: &[[f64; 8]], dw: &mut [f64], dx: &mut [[f64; 8]]) {
    for (o, d_o) in d.iter().enumerate() {
        for (i, xi) in x.iter().enumerate() {
            let idx = o * m.inputs + i;
            let w = &m.weights[idx];
            for k in 0..8 {
                let g = grade_of(k);
                dw[idx * 4 + g] += d_o[k] * xi[k];
                dx[i][k] += w[g] * d_o[k];
            }
        }
    }
}

fn layer_forward(l: &CliffordLayer, x: &[[f64; 8]]) -> LayerCache {
    let (lin, a, b) = (apply_linear(&l.linear, x), apply_linear(&l.left, x), apply_linear(&l.right, x));
    let p: Vec<[f64; 8]> = a
        .iter()
        .zip(&b)
        .map(|(u, v)| Multivector::new(*u).gp(&Multivector::new(*v)).coeffs())
        .collect();
    let mut y = lin;
    let mut s = Vec::with_capacity(y.len());
    for (o, yo) in y.iter_mut().enumerate() {
        for k in 0..8 {
            yo[k] += l.product[o][grade_of(k)] * p[o][k];
        }
        let n2: f64 = yo.iter().map(|v| v * v).sum();
        s.push(1.0 + l.gate[o][0] * yo[0] + l.gate[o][1] * n2);
    }
    LayerCache {
        x: x.to_vec(),
        a,
        b,
        p,
        y,
        s,
    }
}

fn layer_output(c: &LayerCache) -> Vec<[f64; 8]> {
    c.y.iter().zip(&c.s).map(|(y, s)| y.map(|v| v * s)).collect()
}

/// Layer gradient offsets inside the parameter vector.
struct LayerOffsets {
    linear: usize,
    left: usize,
    right: usize,
    product: usize,
    gate: usize,
}

fn offsets(net: &EquivariantNet) -> (Vec<LayerOffsets>, usize) {
    let mut off = 0;
    let mut v = Vec::new();
    for l in &net.layers {
        let n = l.linear.weights.len() * 4;
        let o = LayerOffsets {
            linear: off,
            left: off + n,
            right: off + 2 * n,
            product: off + 3 * n,
            gate: off + 3 * n + l.product.len() * 4,
        };
        off = o.gate + l.gate.len() * 2;
        v.push(o);
    }
    (v, off)
}

/// Backward through one layer: accumulates the parameter gradient into `grad` and returns the
/// gradient with respect to the layer's input.
fn layer_backward(l: &CliffordLayer, c: &LayerCache, dz: &[[f64; 8]], o: &LayerOffsets, grad: &mut [f64]) -> Vec<[f64; 8]> {
    let k_out = c.y.len();
    let mut dy = vec![[0.0; 8]; k_out];
    for j in 0..k_out {
        let y = &c.y[j];
        let dot: f64 = dz[j].iter().zip(y).map(|(a, b)| a * b).sum();
        let n2: f64 = y.iter().map(|v| v * v).sum();
        let [g0, g1] = l.gate[j];
        for k in 0..8 {
            dy[j][k] = c.s[j] * dz[j][k] + dot * 2.0 * g1 * y[k];
        }
        dy[j][0] += dot * g0;
        grad[o.gate + 2 * j] += dot * y[0];
        grad[o.gate + 2 * j + 1] += dot * n2;
    }
    let mut da = vec![[0.0; 8]; k_out];
    let mut db = vec![[0.0; 8]; k_out];
    for j in 0..k_out {
        let mut dp = [0.0; 8];
        for k in 0..8 {
            let g = grade_of(k);
            grad[o.product + 4 * j + g] += dy[j][k] * c.p[j][k];
            dp[k] = l.product[j][g] * dy[j][k];
        }
        gp8_backward(&c.a[j], &c.b[j], &dp, &mut da[j], &mut db[j]);
    }
    let mut dx = vec![[0.0; 8]; c.x.len()];
    let n = l.linear.weights.len() * 4;
    linear_backward(&l.linear, &c.x, &dy, &mut grad[o.linear..o.linear + n], &mut dx);
    linear_backward(&l.left, &c.x, &da, &mut grad[o.left..o.left + n], &mut dx);
    linear_backward(&l.right, &c.x, &db, &mut grad[o.right..o.right + n], &mut dx);
    dx
}

fn to_arrays(x: &[Multivector]) -> Vec<[f64; 8]> {
    x.iter().map(Multivector::coeffs).collect()
}

/// Objective on a batch (mean class-weighted cross-entropy plus (l2/2)|W|^2 over every weight
/// but the readout biases) and its gradient with respect to [`parameters`]. Public so that
/// tests can compare it with finite differences.
#[must_use]
pub fn loss_and_gradient(net: &EquivariantNet, xs: &[Vec<Multivector>], ys: &[usize], class_weights: &[f64], l2: f64) -> (f64, Vec<f64>) {
    let params = parameters(net);
    let mut grad = vec![0.0; params.len()];
    let (layer_off, readout_off) = offsets(net);
    let classes = net.readout.bias.len();
    let bias_off = params.len() - classes;
    let mut loss = 0.0;
    for (x, &y) in xs.iter().zip(ys) {
        let mut caches = Vec::with_capacity(net.layers.len());
        let mut h = to_arrays(x);
        for l in &net.layers {
            let c = layer_forward(l, &h);
            h = layer_output(&c);
            caches.push(c);
        }
        let k = h.len();
        let feats: Vec<[f64; 3]> = h.iter().map(|v| [v[0], v.iter().map(|t| t * t).sum(), v[7]]).collect();
        let scores: Vec<f64> = (0..classes)
            .map(|c| {
                net.readout.bias[c]
                    + feats
                        .iter()
                        .enumerate()
                        .map(|(o, f)| {
                            let w = net.readout.weights[c * k + o];
                            w[0] * f[0] + w[1] * f[1] + w[2] * f[2]
                        })
                        .sum::<f64>()
            })
            .collect();
        let prob = softmax(&scores);
        let w = class_weights[y];
        loss += -w * prob[y].max(1e-300).ln();
        let mut dh = vec![[0.0; 8]; k];
        for c in 0..classes {
            let ds = w * (prob[c] - if c == y { 1.0 } else { 0.0 });
            grad[bias_off + c] += ds;
            for (o, f) in feats.iter().enumerate() {
                let idx = readout_off + 3 * (c * k + o);
                let rw = net.readout.weights[c * k + o];
                grad[idx] += ds * f[0];
                grad[idx + 1] += ds * f[1];
                grad[idx + 2] += ds * f[2];
                dh[o][0] += ds * rw[0];
                for (t, v) in h[o].iter().enumerate() {
                    dh[o][t] += ds * 2.0 * rw[1] * v;
                }
                dh[o][7] += ds * rw[2];
            }
        }
        for (l, (c, o)) in net.layers.iter().zip(caches.iter().zip(&layer_off)).rev() {
            dh = layer_backward(l, c, &dh, o, &mut grad);
        }
    }
    let n = xs.len().max(1) as f64;
    loss /= n;
    grad.iter_mut().for_each(|g| *g /= n);
    for i in 0..bias_off {
        loss += 0.5 * l2 * params[i] * params[i];
        grad[i] += l2 * params[i];
    }
    (loss, grad)
}

/// Mean class-weighted cross-entropy (the early-stopping criterion).
fn cross_entropy(net: &EquivariantNet, xs: &[Vec<Multivector>], ys: &[usize], cw: &[f64]) -> f64 {
    let total: f64 = xs
        .iter()
        .zip(ys)
        .map(|(x, &y)| -cw[y] * softmax(&net.scores(x))[y].max(1e-300).ln())
        .sum();
    total / xs.len().max(1) as f64
}

/// A network with random weights for `inputs` channels (the constant channel included).
fn new_random(inputs: usize, hidden: &[usize], classes: usize, init_scale: f64, rng: &mut ChaCha20Rng) -> EquivariantNet {
    let lin = |rng: &mut ChaCha20Rng, i: usize, o: usize| GradeLinear {
        inputs: i,
        outputs: o,
        weights: (0..i * o)
            .map(|_| core::array::from_fn(|_| normal(rng) * init_scale / (i as f64).sqrt()))
            .collect(),
    };
    let mut layers = Vec::with_capacity(hidden.len());
    let mut width = inputs;
    for &o in hidden {
        let linear = lin(rng, width, o);
        let left = lin(rng, width, o);
        let right = lin(rng, width, o);
        layers.push(CliffordLayer {
            linear,
            left,
            right,
            product: (0..o).map(|_| [1.0; 4]).collect(),
            gate: (0..o).map(|_| [0.0; 2]).collect(),
        });
        width = o;
    }
    let readout = InvariantReadout {
        weights: (0..classes * width)
            .map(|_| core::array::from_fn(|_| normal(rng) * init_scale / (width as f64).sqrt()))
            .collect(),
        bias: vec![0.0; classes],
    };
    EquivariantNet { layers, readout }
}

/// Per input channel and grade, 1 / RMS of that grade's part over `xs` (1 where it is zero).
fn grade_scales(xs: &[Vec<Multivector>], channels: usize) -> Vec<[f64; 4]> {
    let mut sum = vec![[0.0f64; 4]; channels];
    for x in xs {
        for (i, c) in x.iter().enumerate() {
            for (k, v) in c.coeffs().iter().enumerate() {
                sum[i][grade_of(k)] += v * v;
            }
        }
    }
    let n = xs.len().max(1) as f64;
    sum.iter()
        .map(|s| s.map(|t| if t > 0.0 { 1.0 / (t / n).sqrt() } else { 1.0 }))
        .collect()
}

fn scaled(x: &[Multivector], scales: &[[f64; 4]]) -> Vec<Multivector> {
    x.iter()
        .zip(scales)
        .map(|(c, s)| {
            let mut v = c.coeffs();
            for (k, t) in v.iter_mut().enumerate() {
                *t *= s[grade_of(k)];
            }
            Multivector::new(v)
        })
        .chain(core::iter::once(Multivector::new([1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])))
        .collect()
}

/// The constant channel appended to every sample (what [`train_equivariant`]'s network reads
/// last): the scalar 1.
#[must_use]
pub fn with_constant_channel(x: &[Multivector]) -> Vec<Multivector> {
    scaled(x, &vec![[1.0; 4]; x.len()])
}

fn check(xs: &[Vec<Multivector>], ys: &[usize], classes: usize) -> Result<usize, GnnError> {
    let k = xs.first().map_or(0, Vec::len);
    if xs.is_empty() || xs.len() != ys.len() || k == 0 || xs.iter().any(|x| x.len() != k) {
        return Err(GnnError::InvalidInput(format!(
            "{} samples of unequal or zero channel counts and {} labels",
            xs.len(),
            ys.len()
        )));
    }
    if ys.iter().any(|&y| y >= classes) {
        return Err(GnnError::InvalidInput(format!("a label is out of range for {classes} classes")));
    }
    if xs.iter().flatten().any(|c| c.coeffs().iter().any(|v| !v.is_finite())) {
        return Err(GnnError::InvalidInput("non-finite feature".into()));
    }
    Ok(k)
}

/// Trains an equivariant network on K-channel samples. The returned network reads the K raw
/// channels followed by the constant channel ([`with_constant_channel`]).
///
/// # Errors
///
/// [`GnnError::InvalidInput`] for inconsistent inputs or settings, or if training diverges.
pub fn train_equivariant(
    xs: &[Vec<Multivector>],
    ys: &[usize],
    val: Option<(&[Vec<Multivector>], &[usize])>,
    classes: usize,
    cfg: &EquivariantConfig,
) -> Result<(EquivariantNet, EquivariantReport), GnnError> {
    if classes < 2
        || cfg.hidden.is_empty()
        || cfg.hidden.contains(&0)
        || cfg.batch_size == 0
        || !cfg.learning_rate.is_finite()
        || cfg.learning_rate <= 0.0
    {
        return Err(GnnError::InvalidInput(
            "need 2 classes, a hidden layer, and positive widths, batch size and learning rate".into(),
        ));
    }
    let k = check(xs, ys, classes)?;
    let mut rng = ChaCha20Rng::seed_from_u64(cfg.seed);
    let (tx, ty, vx, vy) = match val {
        Some((vx, vy)) => {
            if check(vx, vy, classes)? != k {
                return Err(GnnError::InvalidInput("validation channels differ from training".into()));
            }
            (xs.to_vec(), ys.to_vec(), vx.to_vec(), vy.to_vec())
        }
        None if cfg.val_fraction > 0.0 => {
            let (tr, va) = stratified_split(ys, classes, cfg.val_fraction, &mut rng);
            (
                tr.iter().map(|&i| xs[i].clone()).collect(),
                tr.iter().map(|&i| ys[i]).collect(),
                va.iter().map(|&i| xs[i].clone()).collect(),
                va.iter().map(|&i| ys[i]).collect(),
            )
        }
        None => (xs.to_vec(), ys.to_vec(), Vec::new(), Vec::new()),
    };
    let scales = grade_scales(&tx, k);
    let tx: Vec<Vec<Multivector>> = tx.iter().map(|x| scaled(x, &scales)).collect();
    let vx: Vec<Vec<Multivector>> = vx.iter().map(|x| scaled(x, &scales)).collect();
    let cw = class_weights(&ty, classes, cfg.class_weighting);
    let mut net = new_random(k + 1, &cfg.hidden, classes, cfg.init_scale, &mut rng);
    let mut params = parameters(&net);
    let np = params.len();
    let mut adam = Adam::new(np, cfg.learning_rate);
    let mut best = (f64::INFINITY, 0usize, params.clone());
    let mut report = EquivariantReport {
        epochs_run: 0,
        best_epoch: 0,
        best_val_loss: None,
        train_loss: Vec::new(),
        val_loss: Vec::new(),
        parameters: np,
    };
    let gate_ranges: Vec<core::ops::Range<usize>> = offsets(&net)
        .0
        .iter()
        .zip(&net.layers)
        .map(|(o, l)| o.gate..o.gate + 2 * l.gate.len())
        .collect();
    let objective = |net: &EquivariantNet, xs: &[Vec<Multivector>], ys: &[usize], epoch: usize| {
        let (loss, mut grad) = loss_and_gradient(net, xs, ys, &cw, cfg.l2);
        if !cfg.gates {
            for r in &gate_ranges {
                grad[r.clone()].iter_mut().for_each(|g| *g = 0.0);
            }
        }
        if !loss.is_finite() || grad.iter().any(|g| !g.is_finite()) {
            return Err(GnnError::InvalidInput(format!(
                "training diverged at epoch {epoch} (lower the learning rate)"
            )));
        }
        Ok((loss, grad))
    };
    let mut order: Vec<usize> = (0..tx.len()).collect();
    // L-BFGS: the optimizer, and the objective and gradient at the current parameters.
    let mut lbfgs = match cfg.optimizer {
        Optimizer::Lbfgs { memory } => Some((Lbfgs::new(memory), objective(&net, &tx, &ty, 0)?)),
        Optimizer::Adam => None,
    };
    for epoch in 0..cfg.epochs {
        let train_loss = if let Some((opt, (f, g))) = lbfgs.as_mut() {
            let mut probe = net.clone();
            let moved = opt.step(&mut params, *f, g, |p| {
                set_parameters(&mut probe, p);
                // A diverging trial is just a rejected step: the line search halves it.
                objective(&probe, &tx, &ty, epoch).unwrap_or((f64::INFINITY, Vec::new()))
            });
            let Some(next) = moved else {
                break;
            };
            (*f, *g) = next;
            set_parameters(&mut net, &params);
            *f
        } else {
            shuffle(&mut order, &mut rng);
            let (mut epoch_loss, mut batches) = (0.0, 0usize);
            for chunk in order.chunks(cfg.batch_size) {
                let bx: Vec<Vec<Multivector>> = chunk.iter().map(|&i| tx[i].clone()).collect();
                let by: Vec<usize> = chunk.iter().map(|&i| ty[i]).collect();
                let (loss, grad) = objective(&net, &bx, &by, epoch)?;
                epoch_loss += loss;
                batches += 1;
                adam.step(&mut params, &grad);
                set_parameters(&mut net, &params);
            }
            epoch_loss / batches.max(1) as f64
        };
        report.train_loss.push(train_loss);
        report.epochs_run = epoch + 1;
        if vx.is_empty() {
            best = (f64::INFINITY, epoch, params.clone());
            continue;
        }
        let vl = cross_entropy(&net, &vx, &vy, &cw);
        report.val_loss.push(vl);
        if vl < best.0 {
            best = (vl, epoch, params.clone());
        } else if epoch - best.1 >= cfg.patience {
            break;
        }
    }
    set_parameters(&mut net, &best.2);
    report.best_epoch = best.1;
    report.best_val_loss = best.0.is_finite().then_some(best.0);
    // Fold the input scaling into the first layer: it then reads raw channels.
    if let Some(first) = net.layers.first_mut() {
        for m in [&mut first.linear, &mut first.left, &mut first.right] {
            for o in 0..m.outputs {
                for (i, s) in scales.iter().enumerate() {
                    let w = &mut m.weights[o * m.inputs + i];
                    for g in 0..4 {
                        w[g] *= s[g];
                    }
                }
            }
        }
    }
    Ok((net, report))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::RngCore;

    fn uniform(rng: &mut ChaCha20Rng, s: f64) -> f64 {
        (rng.next_u64() as f64 / u64::MAX as f64 * 2.0 - 1.0) * s
    }

    fn random_channels(rng: &mut ChaCha20Rng, k: usize) -> Vec<Multivector> {
        (0..k)
            .map(|_| Multivector::new(core::array::from_fn(|_| uniform(rng, 1.0))))
            .collect()
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let mut net = new_random(3, &[3, 2], 3, 0.5, &mut rng);
        // Nonzero gates and product weights so that every path is exercised.
        let mut p = parameters(&net);
        p.iter_mut().for_each(|v| *v += uniform(&mut rng, 0.05));
        set_parameters(&mut net, &p);
        let xs: Vec<Vec<Multivector>> = (0..5).map(|_| random_channels(&mut rng, 3)).collect();
        let ys = [0, 1, 2, 1, 0];
        let cw = [1.0, 0.7, 1.3];
        let (l0, g) = loss_and_gradient(&net, &xs, &ys, &cw, 1e-2);
        assert!(l0.is_finite() && l0 < 100.0, "loss {l0}");
        let h = 1e-6;
        let mut worst = 0f64;
        for i in 0..p.len() {
            let mut q = p.clone();
            q[i] += h;
            set_parameters(&mut net, &q);
            let up = loss_and_gradient(&net, &xs, &ys, &cw, 1e-2).0;
            q[i] -= 2.0 * h;
            set_parameters(&mut net, &q);
            let down = loss_and_gradient(&net, &xs, &ys, &cw, 1e-2).0;
            let fd = (up - down) / (2.0 * h);
            let err = (fd - g[i]).abs() / (1e-3 + fd.abs());
            worst = worst.max(err);
        }
        assert!(worst < 1e-6, "worst relative gradient error {worst:e} over {} parameters", p.len());
    }

    #[test]
    fn learns_a_task_only_invariants_can_solve_and_stays_invariant() {
        // Class 1: the two vector channels point the same way; class 0: opposite ways. Each
        // sample is randomly rotated, so only the invariant <v0 v1>_0 separates the classes.
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let sample = |rng: &mut ChaCha20Rng, same: bool| {
            let v: [f64; 3] = core::array::from_fn(|_| uniform(rng, 1.0));
            let w: [f64; 3] = core::array::from_fn(|_| uniform(rng, 0.3));
            let s = if same { 1.0 } else { -1.0 };
            let a = Multivector::new([0.0, v[0], v[1], v[2], 0.0, 0.0, 0.0, 0.0]);
            let b = Multivector::new([0.0, s * v[0] + w[0], s * v[1] + w[1], s * v[2] + w[2], 0.0, 0.0, 0.0, 0.0]);
            vec![a, b]
        };
        let data: Vec<(Vec<Multivector>, usize)> = (0..400)
            .map(|i| {
                let y = i % 2;
                (sample(&mut rng, y == 1), y)
            })
            .collect();
        let (xs, ys): (Vec<_>, Vec<_>) = data.into_iter().unzip();
        // Adam on mini-batches, and full-batch L-BFGS (which must also be deterministic).
        let adam = EquivariantConfig {
            hidden: vec![4],
            epochs: 150,
            ..EquivariantConfig::default()
        };
        let lbfgs = EquivariantConfig {
            optimizer: Optimizer::Lbfgs { memory: 10 },
            ..adam.clone()
        };
        for cfg in [adam, lbfgs] {
            let (net, report) = train_equivariant(&xs[..300], &ys[..300], None, 2, &cfg).unwrap();
            if cfg.optimizer != Optimizer::Adam {
                assert_eq!(train_equivariant(&xs[..300], &ys[..300], None, 2, &cfg).unwrap().0, net);
                assert!(report.train_loss.last() < report.train_loss.first(), "{:?}", report.train_loss);
            }
            let correct = xs[300..]
                .iter()
                .zip(&ys[300..])
                .filter(|(x, &y)| {
                    let s = net.scores(&with_constant_channel(x));
                    usize::from(s[1] > s[0]) == y
                })
                .count();
            assert!(
                correct >= 95,
                "{:?}: {correct}/100 correct after {} epochs",
                cfg.optimizer,
                report.epochs_run
            );
            // A rotor about an arbitrary axis; the scores of the rotated sample are unchanged.
            let q: [f64; 4] = [0.3, -0.5, 0.7, 0.2];
            let n = q.iter().map(|v| v * v).sum::<f64>().sqrt();
            let r = Multivector::new([q[0] / n, 0.0, 0.0, 0.0, q[1] / n, q[2] / n, q[3] / n, 0.0]);
            for x in &xs[300..320] {
                let rx: Vec<Multivector> = x.iter().map(|c| r.gp(c).gp(&r.reverse())).collect();
                let (a, b) = (net.scores(&with_constant_channel(x)), net.scores(&with_constant_channel(&rx)));
                for (u, v) in a.iter().zip(&b) {
                    assert!((u - v).abs() < 1e-9, "{a:?} vs {b:?}");
                }
            }
        }
    }

    #[test]
    fn same_seed_same_network_and_bad_inputs_are_errors() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let xs: Vec<Vec<Multivector>> = (0..40).map(|_| random_channels(&mut rng, 2)).collect();
        let ys: Vec<usize> = (0..40).map(|i| i % 2).collect();
        let cfg = EquivariantConfig {
            hidden: vec![2],
            epochs: 5,
            ..EquivariantConfig::default()
        };
        let a = train_equivariant(&xs, &ys, None, 2, &cfg).unwrap().0;
        let b = train_equivariant(&xs, &ys, None, 2, &cfg).unwrap().0;
        assert_eq!(a, b);
        assert!(train_equivariant(&xs, &ys[..39], None, 2, &cfg).is_err());
        assert!(train_equivariant(&xs, &ys, None, 1, &cfg).is_err());
        let mut ragged = xs.clone();
        ragged[3].pop();
        assert!(train_equivariant(&ragged, &ys, None, 2, &cfg).is_err());
        let mut nan = xs;
        nan[0][0] = Multivector::new([f64::NAN; 8]);
        assert!(train_equivariant(&nan, &ys, None, 2, &cfg).is_err());
    }
}
