//! Training on plaintext features: analytic gradients (the geometric product is bilinear, so its
//! backward pass reads the same `GP_TABLE`), Adam, class-weighted softmax cross-entropy, L2 on the
//! weights, a range penalty that keeps intermediates inside the encrypted path's budget, early
//! stopping on validation loss. Everything random comes from one ChaCha20 stream seeded by
//! `TrainConfig::seed`, and the loop is single-threaded, so the same inputs give the same model
//! bit for bit.

use clifhe_core::multivector::Multivector;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::error::GnnError;
use super::model::{gp8_backward, softmax, GnnModel, InputBox, Normalisation, SCALAR_SIGN};

/// Training hyper-parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// Hidden widths m_l; [16, 8] is the design's 1 -> 16 -> 8 -> C.
    pub hidden: Vec<usize>,
    pub learning_rate: f64,
    /// Maximum number of epochs.
    pub epochs: usize,
    pub batch_size: usize,
    /// L2 coefficient on the weight multivectors (not on biases or activation coefficients).
    pub l2: f64,
    /// Stop after this many epochs without a better validation loss (the best model is kept).
    pub patience: usize,
    /// Weight class c by n / (classes n_c) in the loss (imbalanced data).
    pub class_weighting: bool,
    pub seed: u64,
    /// When no validation set is given: a stratified fraction of the training set held out for
    /// early stopping (0 disables early stopping).
    pub val_fraction: f64,
    /// Intermediates (pre-activations, hidden outputs, scores) beyond this magnitude are penalised.
    pub range_bound: f64,
    /// Coefficient of the squared excess over `range_bound`.
    pub range_penalty: f64,
    /// Initial activation coefficient a (all layers, all blades).
    pub activation_init: f64,
    /// |a| is clamped to this after every step (keeps act(y) from being dominated by y^2).
    pub activation_max: f64,
    /// Learn the activation coefficients (false: they stay at `activation_init`).
    pub learn_activation: bool,
    /// Standard deviation of the initial weights times sqrt(8).
    pub init_scale: f64,
    /// Names of the classes in the model file (default "class 0", ...).
    pub label_names: Option<Vec<String>>,
    /// The model's input box is the range of the training and validation features widened by
    /// this fraction of the range on each side ([`super::InputBox::from_samples`]).
    pub input_box_margin: f64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            hidden: vec![16, 8],
            // Defaults are the AdrenalMNIST3D choice of 5-fold cross-validation (tests/gnn_adrenal.rs).
            learning_rate: 0.01,
            epochs: 400,
            batch_size: 256,
            l2: 1e-3,
            patience: 100,
            class_weighting: true,
            seed: 1,
            val_fraction: 0.15,
            range_bound: 6.0,
            range_penalty: 1.0,
            activation_init: 0.05,
            activation_max: 1.0,
            learn_activation: false,
            init_scale: 1.0,
            label_names: None,
            // Wide enough that no test sample of the phantoms or of AdrenalMNIST3D falls outside.
            input_box_margin: 0.25,
        }
    }
}

/// What happened during training.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainReport {
    pub epochs_run: usize,
    /// Epoch (0-based) whose parameters were kept.
    pub best_epoch: usize,
    /// Class-weighted cross-entropy on the validation set at `best_epoch` (None without one).
    pub best_val_loss: Option<f64>,
    /// Objective (loss + penalties) averaged over each epoch's mini-batches.
    pub train_loss: Vec<f64>,
    pub val_loss: Vec<f64>,
    /// `GnnModel::max_abs_intermediate` on the training samples (also recorded in the model).
    pub max_abs_intermediate: f64,
    pub class_weights: Vec<f64>,
}

fn check_inputs(xs: &[Multivector], ys: &[usize], classes: usize) -> Result<(), GnnError> {
    if xs.is_empty() || xs.len() != ys.len() {
        return Err(GnnError::InvalidInput(format!("{} samples and {} labels", xs.len(), ys.len())));
    }
    if let Some(y) = ys.iter().find(|&&y| y >= classes) {
        return Err(GnnError::InvalidInput(format!("label {y} out of range for {classes} classes")));
    }
    if xs.iter().any(|x| x.coeffs().iter().any(|v| !v.is_finite())) {
        return Err(GnnError::InvalidInput("non-finite feature".into()));
    }
    Ok(())
}

/// n / (classes n_c), or all ones. A class absent from the training set gets weight 1.
pub(crate) fn class_weights(ys: &[usize], classes: usize, balanced: bool) -> Vec<f64> {
    let mut counts = vec![0usize; classes];
    ys.iter().for_each(|&y| counts[y] += 1);
    counts
        .iter()
        .map(|&c| {
            if balanced && c > 0 {
                ys.len() as f64 / (classes as f64 * c as f64)
            } else {
                1.0
            }
        })
        .collect()
}

fn excess_grad(t: f64, bound: f64, rho: f64) -> (f64, f64) {
    let e = t.abs() - bound;
    if e > 0.0 {
        (rho * e * e, 2.0 * rho * e * t.signum())
    } else {
        (0.0, 0.0)
    }
}

/// Objective on (xs, ys) and its gradient with respect to `model.parameters()`:
/// mean over samples of class-weighted cross-entropy plus range penalties, plus (l2/2) |W|^2.
/// Public so that tests can compare it with finite differences.
pub fn loss_and_gradient(model: &GnnModel, xs: &[Multivector], ys: &[usize], class_weights: &[f64], cfg: &TrainConfig) -> (f64, Vec<f64>) {
    let hidden = model.hidden_layers();
    let out = model.output_layer();
    let classes = model.classes();
    // Gradient buffers shaped like the parameters.
    let mut gw: Vec<Vec<[f64; 8]>> = hidden.iter().map(|l| vec![[0.0; 8]; l.weights.len()]).collect();
    let mut gb = gw.clone();
    let mut ga: Vec<[f64; 8]> = vec![[0.0; 8]; hidden.len()];
    let mut gow = vec![[0.0; 8]; classes];
    let mut gob = vec![0.0; classes];
    let n = xs.len().max(1) as f64;
    let (bound, rho) = (cfg.range_bound, cfg.range_penalty);
    let mut loss = 0.0;

    for (x, &y) in xs.iter().zip(ys) {
        let t = model.trace(x);
        let cw = class_weights.get(y).copied().unwrap_or(1.0);
        let p = softmax(&t.scores);
        loss += -cw * p[y].max(1e-300).ln();
        let mut ds: Vec<f64> = p
            .iter()
            .enumerate()
            .map(|(c, &pc)| cw * (pc - if c == y { 1.0 } else { 0.0 }))
            .collect();
        for (d, &s) in ds.iter_mut().zip(&t.scores) {
            let (pl, pg) = excess_grad(s, bound, rho);
            loss += pl;
            *d += pg;
        }
        // Output layer: s_c = sum_a sign_a W_c[a] h[a] + b_c.
        let last = t.h.last().copied().unwrap_or(t.z);
        let mut dh = [0.0; 8];
        for c in 0..classes {
            for a in 0..8 {
                gow[c][a] += ds[c] * SCALAR_SIGN[a] * last[a];
                dh[a] += ds[c] * SCALAR_SIGN[a] * out.weights[c][a];
            }
            gob[c] += ds[c];
        }
        // Hidden layers, last to first.
        for l in (0..hidden.len()).rev() {
            let layer = &hidden[l];
            for k in 0..8 {
                let (pl, pg) = excess_grad(t.h[l][k], bound, rho);
                loss += pl;
                dh[k] += pg;
            }
            let input = if l == 0 { t.z } else { t.h[l - 1] };
            let inv_m = 1.0 / layer.weights.len() as f64;
            let mut din = [0.0; 8];
            for (j, yj) in t.pre[l].iter().enumerate() {
                let mut dy = [0.0; 8];
                for k in 0..8 {
                    let g = dh[k] * inv_m;
                    dy[k] = g * (1.0 + 2.0 * layer.activation[k] * yj[k]);
                    ga[l][k] += g * yj[k] * yj[k];
                    let (pl, pg) = excess_grad(yj[k], bound, rho);
                    loss += pl;
                    dy[k] += pg;
                }
                for k in 0..8 {
                    gb[l][j][k] += dy[k];
                }
                gp8_backward(&layer.weights[j], &input, &dy, &mut gw[l][j], &mut din);
            }
            dh = din;
        }
    }

    // Mean over samples, then L2 on the weight multivectors.
    let mut grad = Vec::with_capacity(model.parameter_count());
    let mut reg = 0.0;
    for (l, layer) in hidden.iter().enumerate() {
        for (g, w) in gw[l].iter().zip(&layer.weights) {
            for a in 0..8 {
                grad.push(g[a] / n + cfg.l2 * w[a]);
                reg += w[a] * w[a];
            }
        }
        gb[l].iter().for_each(|g| grad.extend(g.iter().map(|v| v / n)));
        let learn = if cfg.learn_activation { 1.0 } else { 0.0 };
        grad.extend(ga[l].iter().map(|v| learn * v / n));
    }
    for (g, w) in gow.iter().zip(&out.weights) {
        for a in 0..8 {
            grad.push(g[a] / n + cfg.l2 * w[a]);
            reg += w[a] * w[a];
        }
    }
    grad.extend(gob.iter().map(|v| v / n));
    (loss / n + 0.5 * cfg.l2 * reg, grad)
}

/// Class-weighted cross-entropy only (the early-stopping criterion).
fn cross_entropy(model: &GnnModel, xs: &[Multivector], ys: &[usize], cw: &[f64]) -> f64 {
    let mut loss = 0.0;
    for (x, &y) in xs.iter().zip(ys) {
        let p = softmax(&model.forward(x));
        loss -= cw.get(y).copied().unwrap_or(1.0) * p[y].max(1e-300).ln();
    }
    loss / xs.len().max(1) as f64
}

pub(crate) fn shuffle(idx: &mut [usize], rng: &mut ChaCha20Rng) {
    // Fisher-Yates; the modulo bias of a 64-bit draw over < 2^32 items is negligible.
    for i in (1..idx.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        idx.swap(i, j);
    }
}

/// Stratified hold-out: `fraction` of each class (at least one if the class has 2+ samples).
pub(crate) fn stratified_split(ys: &[usize], classes: usize, fraction: f64, rng: &mut ChaCha20Rng) -> (Vec<usize>, Vec<usize>) {
    let (mut tr, mut va) = (Vec::new(), Vec::new());
    for c in 0..classes {
        let mut idx: Vec<usize> = (0..ys.len()).filter(|&i| ys[i] == c).collect();
        shuffle(&mut idx, rng);
        let mut k = (fraction * idx.len() as f64).round() as usize;
        if k == 0 && idx.len() >= 2 {
            k = 1;
        }
        va.extend_from_slice(&idx[..k.min(idx.len())]);
        tr.extend_from_slice(&idx[k.min(idx.len())..]);
    }
    tr.sort_unstable();
    va.sort_unstable();
    (tr, va)
}

/// Adam (Kingma and Ba, ICLR 2015) with beta1 = 0.9, beta2 = 0.999, eps = 1e-8 and bias
/// correction: the optimiser of both trainers.
pub(crate) struct Adam {
    m1: Vec<f64>,
    m2: Vec<f64>,
    step: i32,
    learning_rate: f64,
}

impl Adam {
    pub(crate) fn new(parameters: usize, learning_rate: f64) -> Self {
        Self {
            m1: vec![0.0; parameters],
            m2: vec![0.0; parameters],
            step: 0,
            learning_rate,
        }
    }

    /// One update of `params` along `grad` (both of the length given to `new`).
    pub(crate) fn step(&mut self, params: &mut [f64], grad: &[f64]) {
        let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-8);
        self.step += 1;
        let (c1, c2) = (1.0 - b1.powi(self.step), 1.0 - b2.powi(self.step));
        for (((p, g), m1), m2) in params.iter_mut().zip(grad).zip(&mut self.m1).zip(&mut self.m2) {
            *m1 = b1 * *m1 + (1.0 - b1) * g;
            *m2 = b2 * *m2 + (1.0 - b2) * g * g;
            *p -= self.learning_rate * (*m1 / c1) / ((*m2 / c2).sqrt() + eps);
        }
    }
}

/// Trains a GNN with `classes` outputs. `val`: an explicit validation set for early stopping;
/// without one, `cfg.val_fraction` of the training set is held out (stratified). The
/// normalisation is fitted on the samples actually trained on.
pub fn train(
    xs: &[Multivector],
    ys: &[usize],
    val: Option<(&[Multivector], &[usize])>,
    classes: usize,
    cfg: &TrainConfig,
) -> Result<(GnnModel, TrainReport), GnnError> {
    if classes < 2 {
        return Err(GnnError::InvalidInput("need at least 2 classes".into()));
    }
    check_inputs(xs, ys, classes)?;
    if cfg.batch_size == 0 || !cfg.learning_rate.is_finite() || cfg.learning_rate <= 0.0 || cfg.hidden.contains(&0) {
        return Err(GnnError::InvalidInput(
            "batch_size, learning_rate and hidden widths must be positive".into(),
        ));
    }
    let mut rng = ChaCha20Rng::seed_from_u64(cfg.seed);
    let (tx, ty, vx, vy): (Vec<Multivector>, Vec<usize>, Vec<Multivector>, Vec<usize>) = match val {
        Some((vx, vy)) => {
            check_inputs(vx, vy, classes)?;
            (xs.to_vec(), ys.to_vec(), vx.to_vec(), vy.to_vec())
        }
        None if cfg.val_fraction > 0.0 => {
            let (tr, va) = stratified_split(ys, classes, cfg.val_fraction, &mut rng);
            (
                tr.iter().map(|&i| xs[i]).collect(),
                tr.iter().map(|&i| ys[i]).collect(),
                va.iter().map(|&i| xs[i]).collect(),
                va.iter().map(|&i| ys[i]).collect(),
            )
        }
        None => (xs.to_vec(), ys.to_vec(), Vec::new(), Vec::new()),
    };
    if tx.is_empty() {
        return Err(GnnError::InvalidInput("no training samples left after the validation split".into()));
    }
    let names = match &cfg.label_names {
        Some(n) if n.len() == classes => n.clone(),
        Some(n) => return Err(GnnError::InvalidInput(format!("{} label names for {classes} classes", n.len()))),
        None => (0..classes).map(|c| format!("class {c}")).collect(),
    };
    let norm = Normalisation::fit(&tx)?;
    let mut model = GnnModel::new_random(
        &cfg.hidden,
        classes,
        names,
        norm,
        cfg.activation_init,
        cfg.init_scale,
        rng.next_u64(),
    )?;
    // The domain is fixed before the first step: the model optimised is the one saved.
    let seen: Vec<Multivector> = tx.iter().chain(&vx).copied().collect();
    model.set_input_box(InputBox::from_samples(&seen, cfg.input_box_margin)?)?;
    let cw = class_weights(&ty, classes, cfg.class_weighting);

    let mut params = model.parameters();
    let np = params.len();
    // Indices of the activation coefficients, clamped after each step.
    let mut act_idx = Vec::new();
    let mut off = 0;
    for &m in &cfg.hidden {
        off += 16 * m;
        act_idx.extend(off..off + 8);
        off += 8;
    }
    let mut adam = Adam::new(np, cfg.learning_rate);
    let mut best = (f64::INFINITY, 0usize, params.clone());
    let mut report = TrainReport {
        epochs_run: 0,
        best_epoch: 0,
        best_val_loss: None,
        train_loss: Vec::new(),
        val_loss: Vec::new(),
        max_abs_intermediate: 0.0,
        class_weights: cw.clone(),
    };
    let mut order: Vec<usize> = (0..tx.len()).collect();
    let (mut bx, mut by) = (Vec::with_capacity(cfg.batch_size), Vec::with_capacity(cfg.batch_size));
    for epoch in 0..cfg.epochs {
        shuffle(&mut order, &mut rng);
        let mut epoch_loss = 0.0;
        let mut batches = 0usize;
        for chunk in order.chunks(cfg.batch_size) {
            bx.clear();
            by.clear();
            chunk.iter().for_each(|&i| {
                bx.push(tx[i]);
                by.push(ty[i]);
            });
            let (loss, grad) = loss_and_gradient(&model, &bx, &by, &cw, cfg);
            if !loss.is_finite() {
                return Err(GnnError::InvalidInput(format!(
                    "training diverged at epoch {epoch} (lower the learning rate)"
                )));
            }
            epoch_loss += loss;
            batches += 1;
            adam.step(&mut params, &grad);
            for &i in &act_idx {
                params[i] = params[i].clamp(-cfg.activation_max, cfg.activation_max);
            }
            model.set_parameters(&params)?;
        }
        report.train_loss.push(epoch_loss / batches.max(1) as f64);
        report.epochs_run = epoch + 1;
        if vx.is_empty() {
            best = (f64::INFINITY, epoch, params.clone());
            continue;
        }
        let vl = cross_entropy(&model, &vx, &vy, &cw);
        report.val_loss.push(vl);
        if vl < best.0 {
            best = (vl, epoch, params.clone());
        } else if epoch - best.1 >= cfg.patience {
            break;
        }
    }
    model.set_parameters(&best.2)?;
    report.best_epoch = best.1;
    report.best_val_loss = best.0.is_finite().then_some(best.0);
    let mx = model.max_abs_intermediate(&tx);
    model.set_recorded_max_abs_intermediate(mx);
    report.max_abs_intermediate = mx;
    Ok((model, report))
}
