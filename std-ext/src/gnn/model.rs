//! The model, its plaintext forward pass (the reference every encrypted result is checked
//! against) and its versioned JSON file.

use std::path::Path;

use clifhe_core::multivector::{Multivector, GP_TABLE};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};

use super::error::GnnError;
use super::plan::{InferencePlan, InputEncoding};
use crate::preprocess::Pipeline;

/// Model file format this build writes. Bump on any schema change. Version 2 added the input
/// box; version 1 files are still read (their box is derived from the normalisation,
/// [`InputBox::from_normalisation`]). Version 3 added the preprocessing pipeline; files of
/// versions 1 and 2 have none recorded (docs/model-format.md says what readers do then).
pub const FORMAT_VERSION: u32 = 3;

/// Oldest model file format this build reads.
pub const OLDEST_READABLE_FORMAT_VERSION: u32 = 1;

/// Half-width, in training standard deviations, of the input box of a model that does not
/// record one (files of format 1, models made by [`GnnModel::new_random`]).
pub const DEFAULT_BOX_STDS: f64 = 8.0;

/// Sign of the scalar part of e_a e_a: <W h>_0 = sum_a SCALAR_SIGN[a] W_a h_a in Cl(3,0).
pub(crate) const SCALAR_SIGN: [f64; 8] = [1.0, 1.0, 1.0, 1.0, -1.0, -1.0, -1.0, -1.0];

/// Per-feature standardisation z_k = (x_k - mean_k) / std_k, fitted on the training set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalisation {
    pub mean: [f64; 8],
    pub std: [f64; 8],
}

impl Normalisation {
    pub fn identity() -> Self {
        Self {
            mean: [0.0; 8],
            std: [1.0; 8],
        }
    }

    /// Mean and (population) standard deviation per blade. A constant feature gets std 1 so that
    /// it maps to 0 instead of dividing by zero.
    pub fn fit(xs: &[Multivector]) -> Result<Self, GnnError> {
        if xs.is_empty() {
            return Err(GnnError::InvalidInput("cannot fit a normalisation on no samples".into()));
        }
        let n = xs.len() as f64;
        let mut mean = [0.0; 8];
        for x in xs {
            let c = x.coeffs();
            if c.iter().any(|v| !v.is_finite()) {
                return Err(GnnError::InvalidInput("non-finite feature".into()));
            }
            for k in 0..8 {
                mean[k] += c[k] / n;
            }
        }
        let mut var = [0.0; 8];
        for x in xs {
            let c = x.coeffs();
            for k in 0..8 {
                var[k] += (c[k] - mean[k]).powi(2) / n;
            }
        }
        let mut std = [1.0; 8];
        for k in 0..8 {
            let s = var[k].sqrt();
            if s > 1e-12 * (1.0 + mean[k].abs()) {
                std[k] = s;
            }
        }
        Ok(Self { mean, std })
    }

    pub fn apply(&self, x: &Multivector) -> [f64; 8] {
        let c = x.coeffs();
        let mut z = [0.0; 8];
        for k in 0..8 {
            z[k] = (c[k] - self.mean[k]) / self.std[k];
        }
        z
    }
}

/// The public domain of the circuit-private evaluation: center +- half_width per blade, the
/// training and validation features' range widened by a quarter of it on each side. The
/// encryptor clamps and encodes patients to u = (x - center) / half_width in [-1, 1]^8
/// ([`InputBox::encode`]); the noise and range analysis of the encrypted evaluation
/// ([`super::noise`]) holds for every input in it, which is what sizes the output flood. Inside
/// the box the encrypted result is [`GnnModel::forward`] of the patient; a patient outside it
/// is evaluated at its clamped features ([`GnnModel::forward_in_box`]; the demo reports how many
/// test samples that concerns: none on the phantoms or AdrenalMNIST3D). It reveals the training
/// features' range, not the weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputBox {
    pub center: [f64; 8],
    pub half_width: [f64; 8],
}

impl InputBox {
    /// The samples' range per blade, widened by `margin` times that range on each side (a
    /// constant feature gets half-width 1e-9 (1 + |value|)).
    pub fn from_samples(xs: &[Multivector], margin: f64) -> Result<Self, GnnError> {
        if xs.is_empty() || !(margin.is_finite() && margin >= 0.0) {
            return Err(GnnError::InvalidInput("an input box needs samples and a finite margin >= 0".into()));
        }
        let mut lo = [f64::INFINITY; 8];
        let mut hi = [f64::NEG_INFINITY; 8];
        for x in xs {
            for (k, v) in x.coeffs().iter().enumerate() {
                if !v.is_finite() {
                    return Err(GnnError::InvalidInput("non-finite feature".into()));
                }
                lo[k] = lo[k].min(*v);
                hi[k] = hi[k].max(*v);
            }
        }
        let mut b = Self {
            center: [0.0; 8],
            half_width: [0.0; 8],
        };
        for k in 0..8 {
            b.center[k] = 0.5 * (lo[k] + hi[k]);
            b.half_width[k] = (0.5 * (hi[k] - lo[k]) * (1.0 + 2.0 * margin)).max(1e-9 * (1.0 + b.center[k].abs()));
        }
        Ok(b)
    }

    /// mean +- `stds` standard deviations.
    pub fn from_normalisation(n: &Normalisation, stds: f64) -> Self {
        let mut half_width = [0.0; 8];
        for (h, s) in half_width.iter_mut().zip(&n.std) {
            *h = stds * s;
        }
        Self {
            center: n.mean,
            half_width,
        }
    }

    pub fn contains(&self, x: &Multivector) -> bool {
        let c = x.coeffs();
        (0..8).all(|k| (c[k] - self.center[k]).abs() <= self.half_width[k])
    }

    /// x clamped into the box.
    pub fn clamp(&self, x: &[f64; 8]) -> [f64; 8] {
        let mut c = *x;
        for k in 0..8 {
            c[k] = c[k].clamp(self.center[k] - self.half_width[k], self.center[k] + self.half_width[k]);
        }
        c
    }

    /// The encrypted input of [`super::InputEncoding::UnitBox`]: (clamp(x) - center) / half_width,
    /// in [-1, 1] per blade.
    pub fn encode(&self, x: &Multivector) -> [f64; 8] {
        let c = self.clamp(&x.coeffs());
        let mut u = [0.0; 8];
        for k in 0..8 {
            u[k] = ((c[k] - self.center[k]) / self.half_width[k]).clamp(-1.0, 1.0);
        }
        u
    }

    fn is_valid(&self) -> bool {
        self.center.iter().all(|c| c.is_finite()) && self.half_width.iter().all(|h| h.is_finite() && *h > 0.0)
    }
}

/// One hidden layer: m weight multivectors, m biases, and the 8 activation coefficients a_k of
/// act(y)_k = y_k + a_k y_k^2.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HiddenLayer {
    pub weights: Vec<[f64; 8]>,
    pub biases: Vec<[f64; 8]>,
    pub activation: [f64; 8],
}

/// The output layer: one weight multivector per class; score_c = <W_c h>_0 + bias_c. Only the
/// scalar part of a bias multivector can reach a score, so biases are stored as scalars.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutputLayer {
    pub weights: Vec<[f64; 8]>,
    pub biases: Vec<f64>,
}

/// The geometric-product neural network (module docs: topology, activation, depth).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GnnModel {
    format_version: u32,
    /// [1, m_1, ..., m_L, classes]: 1 input multivector, hidden widths, output products.
    topology: Vec<usize>,
    classes: usize,
    label_names: Vec<String>,
    normalisation: Normalisation,
    hidden: Vec<HiddenLayer>,
    output: OutputLayer,
    /// Largest |value| of any encrypted-path intermediate (pre-activation, product factor, hidden
    /// output, score) on the training set, recorded when the model was trained; the encrypted path sizes its
    /// precision budget from it.
    max_abs_intermediate_train: Option<f64>,
    /// The input box recorded at training (format 2); `None`: [`InputBox::from_normalisation`]
    /// with [`DEFAULT_BOX_STDS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    input_box: Option<InputBox>,
    /// The scan preprocessing the training features went through (format 3); the hospital's
    /// scans go through the same one (`crate::preprocess`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    preprocessing: Option<Pipeline>,
}

/// Every intermediate of one forward pass (training needs them for the backward pass).
#[derive(Clone, Debug)]
pub(crate) struct Trace {
    /// Normalised input.
    pub z: [f64; 8],
    /// Per hidden layer: the pre-activations y_j.
    pub pre: Vec<Vec<[f64; 8]>>,
    /// Per hidden layer: its output h (the next layer's input).
    pub h: Vec<[f64; 8]>,
    pub scores: Vec<f64>,
}

pub(crate) fn gp8(w: &[f64; 8], x: &[f64; 8]) -> [f64; 8] {
    Multivector::new(*w).gp(&Multivector::new(*x)).coeffs()
}

/// Gradients of y = w x (geometric product) given dy: accumulates dw and dx.
pub(crate) fn gp8_backward(w: &[f64; 8], x: &[f64; 8], dy: &[f64; 8], dw: &mut [f64; 8], dx: &mut [f64; 8]) {
    for (a, row) in GP_TABLE.iter().enumerate() {
        for (b, &(r, sign)) in row.iter().enumerate() {
            let g = sign as f64 * dy[r as usize];
            dw[a] += g * x[b];
            dx[b] += g * w[a];
        }
    }
}

impl GnnModel {
    /// A randomly initialised model (weights N(0, init_scale^2 / 8), biases zero, activation
    /// coefficients `activation`). `hidden` are the widths m_l (e.g. [16, 8]).
    pub fn new_random(
        hidden: &[usize],
        classes: usize,
        label_names: Vec<String>,
        normalisation: Normalisation,
        activation: f64,
        init_scale: f64,
        seed: u64,
    ) -> Result<Self, GnnError> {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let sigma = init_scale / 8f64.sqrt();
        let mut layers = Vec::with_capacity(hidden.len());
        for &m in hidden {
            let weights = (0..m).map(|_| normal8(&mut rng, sigma)).collect();
            layers.push(HiddenLayer {
                weights,
                biases: vec![[0.0; 8]; m],
                activation: [activation; 8],
            });
        }
        let output = OutputLayer {
            weights: (0..classes).map(|_| normal8(&mut rng, sigma)).collect(),
            biases: vec![0.0; classes],
        };
        let mut topology = vec![1];
        topology.extend_from_slice(hidden);
        topology.push(classes);
        let model = Self {
            format_version: FORMAT_VERSION,
            topology,
            classes,
            label_names,
            normalisation,
            hidden: layers,
            output,
            max_abs_intermediate_train: None,
            input_box: None,
            preprocessing: None,
        };
        model.validate()?;
        Ok(model)
    }

    pub fn classes(&self) -> usize {
        self.classes
    }
    pub fn label_names(&self) -> &[String] {
        &self.label_names
    }
    /// [1, m_1, ..., m_L, classes].
    pub fn topology(&self) -> &[usize] {
        &self.topology
    }
    pub fn normalisation(&self) -> &Normalisation {
        &self.normalisation
    }
    pub fn hidden_layers(&self) -> &[HiddenLayer] {
        &self.hidden
    }
    pub fn output_layer(&self) -> &OutputLayer {
        &self.output
    }
    /// The bound recorded on the training set when the model was trained (None for an untrained model).
    pub fn recorded_max_abs_intermediate(&self) -> Option<f64> {
        self.max_abs_intermediate_train
    }
    pub(crate) fn set_recorded_max_abs_intermediate(&mut self, v: f64) {
        self.max_abs_intermediate_train = Some(v);
    }

    /// The domain of the model (see [`InputBox`]): the recorded box, or mean +- 8 std.
    pub fn input_box(&self) -> InputBox {
        self.input_box
            .clone()
            .unwrap_or_else(|| InputBox::from_normalisation(&self.normalisation, DEFAULT_BOX_STDS))
    }

    /// Records the input box (training does this before its first step, so the model it
    /// optimises is the one it saves).
    /// The preprocessing pipeline recorded with the model (`None` for files of format 1 and 2).
    pub fn preprocessing(&self) -> Option<&Pipeline> {
        self.preprocessing.as_ref()
    }

    /// Records the pipeline the training features went through.
    pub fn set_preprocessing(&mut self, p: Pipeline) -> Result<(), GnnError> {
        p.validate().map_err(|e| GnnError::InvalidModel(e.to_string()))?;
        self.preprocessing = Some(p);
        self.format_version = FORMAT_VERSION;
        Ok(())
    }

    pub fn set_input_box(&mut self, b: InputBox) -> Result<(), GnnError> {
        if !b.is_valid() {
            return Err(GnnError::InvalidInput(
                "input box with a non-finite value or a non-positive half-width".into(),
            ));
        }
        self.input_box = Some(b);
        Ok(())
    }

    /// Class scores (logits) of one feature multivector: the plaintext reference.
    pub fn forward(&self, x: &Multivector) -> Vec<f64> {
        self.trace(x).scores
    }

    /// The scores the circuit-private protocol computes: [`forward`](Self::forward) at the
    /// features clamped into the [`input_box`](Self::input_box) (what the encoder sends). Equal
    /// to `forward` for every patient inside the box.
    pub fn forward_in_box(&self, x: &Multivector) -> Vec<f64> {
        self.forward(&Multivector::new(self.input_box().clamp(&x.coeffs())))
    }

    pub fn forward_batch(&self, xs: &[Multivector]) -> Vec<Vec<f64>> {
        xs.iter().map(|x| self.forward(x)).collect()
    }

    /// Softmax of the scores.
    pub fn probabilities(&self, x: &Multivector) -> Vec<f64> {
        softmax(&self.forward(x))
    }

    /// Index of the largest score.
    pub fn predict(&self, x: &Multivector) -> usize {
        argmax(&self.forward(x))
    }

    /// Multiplicative levels of the encrypted evaluation ([`InferencePlan::depth`]): 2 per hidden
    /// layer (the products and the plaintext constants of its quadratic form), with the
    /// normalisation folded into the first layer and the output rows into the last; 1 without
    /// hidden layers. 4 for 1 -> 16 -> 8 -> C.
    pub fn depth(&self) -> usize {
        self.plan().depth()
    }

    /// Per hidden layer: (ciphertext tensor products, relinearizations) in the blade-major layout:
    /// (8 m_l, 8). The output layer has none.
    pub fn ciphertext_products_per_layer(&self) -> Vec<(usize, usize)> {
        self.hidden.iter().map(|l| (8 * l.weights.len(), 8)).collect()
    }

    /// The encrypted evaluation as affine maps and products (see [`InferencePlan`]) on raw
    /// features.
    pub fn plan(&self) -> InferencePlan {
        InferencePlan::from_model(self, InputEncoding::Raw)
    }

    /// The plan on box-encoded inputs u = [`InputBox::encode`]`(x)` in [-1, 1]^8: what the
    /// circuit-private evaluation runs (its noise analysis needs a bounded input domain, and
    /// empty slots holding u = 0 are then inside it).
    pub fn encrypted_plan(&self) -> InferencePlan {
        InferencePlan::from_model(self, InputEncoding::UnitBox)
    }

    /// Largest |value| of any intermediate the encrypted path materialises over `xs`:
    /// pre-activations y_j, the factors v_j = (1 + a o y_j)/m of the encrypted products, hidden
    /// outputs and scores. The normalised input z is not among them: the normalisation is folded
    /// into the first layer's maps, so the ciphertexts hold the raw features (see
    /// [`max_abs_normalised_input`](Self::max_abs_normalised_input) for z).
    pub fn max_abs_intermediate(&self, xs: &[Multivector]) -> f64 {
        let mut m = 0.0f64;
        let upd = |m: &mut f64, v: &[f64]| {
            for x in v {
                *m = m.max(x.abs());
            }
        };
        for x in xs {
            let t = self.trace(x);
            for (l, layer) in self.hidden.iter().enumerate() {
                let inv_m = 1.0 / layer.weights.len() as f64;
                for y in &t.pre[l] {
                    upd(&mut m, y);
                    let v: Vec<f64> = (0..8).map(|k| (1.0 + layer.activation[k] * y[k]) * inv_m).collect();
                    upd(&mut m, &v);
                }
                upd(&mut m, &t.h[l]);
            }
            upd(&mut m, &t.scores);
        }
        m
    }

    /// Largest |z_k| of the standardised features over `xs` (outliers of the data, not of the model).
    pub fn max_abs_normalised_input(&self, xs: &[Multivector]) -> f64 {
        xs.iter()
            .flat_map(|x| self.normalisation.apply(x))
            .fold(0.0f64, |a, v| a.max(v.abs()))
    }

    pub(crate) fn trace(&self, x: &Multivector) -> Trace {
        let z = self.normalisation.apply(x);
        let mut input = z;
        let mut pre = Vec::with_capacity(self.hidden.len());
        let mut hs = Vec::with_capacity(self.hidden.len());
        for layer in &self.hidden {
            let inv_m = 1.0 / layer.weights.len() as f64;
            let mut h = [0.0; 8];
            let mut ys = Vec::with_capacity(layer.weights.len());
            for (w, b) in layer.weights.iter().zip(&layer.biases) {
                let mut y = gp8(w, &input);
                for k in 0..8 {
                    y[k] += b[k];
                    h[k] += (y[k] + layer.activation[k] * y[k] * y[k]) * inv_m;
                }
                ys.push(y);
            }
            pre.push(ys);
            hs.push(h);
            input = h;
        }
        let scores = self
            .output
            .weights
            .iter()
            .zip(&self.output.biases)
            .map(|(w, b)| (0..8).map(|a| SCALAR_SIGN[a] * w[a] * input[a]).sum::<f64>() + b)
            .collect();
        Trace { z, pre, h: hs, scores }
    }

    /// Trainable parameters in a fixed order: per hidden layer weights, biases, activation; then
    /// output weights and biases.
    pub fn parameters(&self) -> Vec<f64> {
        let mut p = Vec::new();
        for l in &self.hidden {
            l.weights.iter().for_each(|w| p.extend_from_slice(w));
            l.biases.iter().for_each(|b| p.extend_from_slice(b));
            p.extend_from_slice(&l.activation);
        }
        self.output.weights.iter().for_each(|w| p.extend_from_slice(w));
        p.extend_from_slice(&self.output.biases);
        p
    }

    pub fn parameter_count(&self) -> usize {
        self.hidden.iter().map(|l| 16 * l.weights.len() + 8).sum::<usize>() + 9 * self.classes
    }

    /// Inverse of [`parameters`](Self::parameters).
    pub fn set_parameters(&mut self, p: &[f64]) -> Result<(), GnnError> {
        if p.len() != self.parameter_count() {
            return Err(GnnError::InvalidInput(format!(
                "expected {} parameters, got {}",
                self.parameter_count(),
                p.len()
            )));
        }
        let mut it = p.iter().copied();
        let mut fill = |dst: &mut [f64]| dst.iter_mut().for_each(|d| *d = it.next().unwrap_or(0.0));
        for l in &mut self.hidden {
            l.weights.iter_mut().for_each(|w| fill(w));
            l.biases.iter_mut().for_each(|b| fill(b));
            fill(&mut l.activation);
        }
        self.output.weights.iter_mut().for_each(|w| fill(w));
        fill(&mut self.output.biases);
        Ok(())
    }

    /// Checks every shape and value; `load` runs it so a corrupt file is an error, not a panic later.
    pub fn validate(&self) -> Result<(), GnnError> {
        let bad = |m: String| Err(GnnError::InvalidModel(m));
        if !(OLDEST_READABLE_FORMAT_VERSION..=FORMAT_VERSION).contains(&self.format_version) {
            return Err(GnnError::UnsupportedVersion {
                found: self.format_version,
                supported: FORMAT_VERSION,
            });
        }
        if self.classes < 2 {
            return bad(format!("classes = {} (need at least 2)", self.classes));
        }
        if self.label_names.len() != self.classes {
            return bad(format!("{} label names for {} classes", self.label_names.len(), self.classes));
        }
        let mut expect = vec![1];
        expect.extend(self.hidden.iter().map(|l| l.weights.len()));
        expect.push(self.classes);
        if self.topology != expect {
            return bad(format!("topology {:?} does not match the layers {:?}", self.topology, expect));
        }
        let finite = |v: &[f64]| v.iter().all(|x| x.is_finite());
        if !finite(&self.normalisation.mean) || !self.normalisation.std.iter().all(|s| s.is_finite() && *s > 0.0) {
            return bad("normalisation has a non-finite mean or a non-positive std".into());
        }
        for (i, l) in self.hidden.iter().enumerate() {
            if l.weights.is_empty() || l.biases.len() != l.weights.len() {
                return bad(format!("hidden layer {i}: {} weights, {} biases", l.weights.len(), l.biases.len()));
            }
            if !l.weights.iter().chain(&l.biases).all(|w| finite(w)) || !finite(&l.activation) {
                return bad(format!("hidden layer {i} has a non-finite value"));
            }
        }
        if self.output.weights.len() != self.classes || self.output.biases.len() != self.classes {
            return bad("output layer size differs from classes".into());
        }
        if !self.output.weights.iter().all(|w| finite(w)) || !finite(&self.output.biases) {
            return bad("output layer has a non-finite value".into());
        }
        if let Some(m) = self.max_abs_intermediate_train {
            if !m.is_finite() || m < 0.0 {
                return bad("max_abs_intermediate_train is not a finite non-negative number".into());
            }
        }
        if let Some(p) = &self.preprocessing {
            p.validate().map_err(|e| GnnError::InvalidModel(e.to_string()))?;
        }
        if let Some(b) = &self.input_box {
            if !b.is_valid() {
                return bad("input box with a non-finite value or a non-positive half-width".into());
            }
        }
        Ok(())
    }

    pub fn to_json(&self) -> Result<String, GnnError> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// Parses and validates. The version is read first, so a file from a newer format gets
    /// `UnsupportedVersion` rather than a schema error.
    pub fn from_json(s: &str) -> Result<Self, GnnError> {
        let v: serde_json::Value = serde_json::from_str(s)?;
        check_format_version(&v, OLDEST_READABLE_FORMAT_VERSION, FORMAT_VERSION)?;
        let model: Self = serde_json::from_value(v)?;
        model.validate()?;
        Ok(model)
    }

    pub fn save(&self, path: &Path) -> Result<(), GnnError> {
        std::fs::write(path, self.to_json()?)?;
        Ok(())
    }

    pub fn load(path: &Path) -> Result<Self, GnnError> {
        Self::from_json(&read_model_text(path)?)
    }
}

/// A model file's text (the model loaders' one reader).
pub(crate) fn read_model_text(path: &Path) -> Result<String, GnnError> {
    String::from_utf8(std::fs::read(path)?).map_err(|e| GnnError::InvalidModel(format!("not UTF-8: {e}")))
}

/// Checks a model document's `format_version` against `oldest..=newest` before its schema is
/// read, so a newer file gets `UnsupportedVersion` rather than a schema error.
pub(crate) fn check_format_version(v: &serde_json::Value, oldest: u32, newest: u32) -> Result<(), GnnError> {
    match v.get("format_version").and_then(serde_json::Value::as_u64) {
        Some(found) if (u64::from(oldest)..=u64::from(newest)).contains(&found) => Ok(()),
        Some(found) => Err(GnnError::UnsupportedVersion {
            found: u32::try_from(found).unwrap_or(u32::MAX),
            supported: newest,
        }),
        None => Err(GnnError::InvalidModel("missing or non-integer format_version".into())),
    }
}

pub(crate) fn softmax(s: &[f64]) -> Vec<f64> {
    let mx = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = s.iter().map(|v| (v - mx).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.iter().map(|v| v / sum).collect()
}

pub(crate) fn argmax(s: &[f64]) -> usize {
    let mut best = 0;
    for (i, v) in s.iter().enumerate() {
        if *v > s[best] {
            best = i;
        }
    }
    best
}

/// Standard normal by Box-Muller from 53-bit uniforms (rand_core only; no `rand` dependency).
pub(crate) fn normal(rng: &mut ChaCha20Rng) -> f64 {
    let u = |rng: &mut ChaCha20Rng| ((rng.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64);
    let (u1, u2) = (u(rng), u(rng));
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

fn normal8(rng: &mut ChaCha20Rng, sigma: f64) -> [f64; 8] {
    let mut w = [0.0; 8];
    w.iter_mut().for_each(|x| *x = sigma * normal(rng));
    w
}
