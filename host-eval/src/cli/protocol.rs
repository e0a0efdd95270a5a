//! The protocol commands around the encrypted model:
//! - hospital `evalkeys`: relinearization and Galois keys (rotations 1..7, which turn an
//!   interleaved batch into blade-major form) into `DIR/eval/`, one file per key;
//! - vendor `train`: a GNN on labelled scans (MedMNIST `.npz` or the built-in phantoms),
//!   saved as a versioned JSON model;
//! - vendor `infer`: a box-encoded blade-major batch (`encrypt --profile`) -> the encrypted GNN
//!   at the profile's schedule -> scores sanitised with a flood sized from the model's proven
//!   noise bound (`clifhe_std::protocol::vendor`, the circuit-private path); or, `--no-flooding` only,
//!   an interleaved batch (from `encrypt`) or single-patient device ciphertexts (patient in
//!   slots 0..7, full-slot, e.g. the N = 2^14 firmware's) merged into one batch by a rotation
//!   tree -> blade-major (1 level) -> the encrypted GNN -> unused slots masked; one file per
//!   class;
//! - vendor `predict`: the same model on plaintext features (the reference the encrypted
//!   scores are checked against; never on patient data the vendor may not see);
//! - hospital `release`: flooded decryption of the scores, argmax per patient, counted against
//!   the key set's leakage ledger (`DIR/leakage.json`, in bits; `super::ledger`).

use super::decrypt::{parse_ciphertext, read_ciphertext};
use super::error::CliError;
use super::fsio;
use super::keyset::KeySet;
use super::ledger;
use super::profile::{read_model, read_vendor_model};
use super::public::PublicKeySet;
use clifhe_core::ciphertext::CiphertextOwned;
use clifhe_core::multivector::Multivector;
use clifhe_core::params::Params;
use clifhe_core::wire;
use clifhe_std::ga::{EncryptedMultivectorBatch, Layout};
use clifhe_std::keys_wire::galois_key_file_name;
use clifhe_std::protocol::batch;
use clifhe_std::protocol::hospital;
pub use clifhe_std::protocol::hospital::Prediction;
use clifhe_std::protocol::hospital::ReleaseRequest;
use clifhe_std::protocol::leakage::{Disclosure, LeakageLedger, REFUSAL_BITS};
use clifhe_std::protocol::manifest::MANIFEST_FILE as MANIFEST;
use clifhe_std::protocol::vendor::{self, rotation_steps, ScoredBatch};
use clifhe_std::protocol::BatchRecord;
pub use clifhe_std::protocol::{manifest::SCORES_FORMAT, ScoresManifest};
use clifhe_std::{EvalContext, Evaluator, GaloisKeys, RelinearizationKey};
use serde::Serialize;
use std::path::{Path, PathBuf};

const EVAL_DIR: &str = "eval";

/// Generates the evaluation keys of a key set (needs its secret key). `merge_patients`: also
/// the rotations that let `infer --device-ciphertexts` merge up to that many single-patient
/// ciphertexts (log2 of it more keys). `relin_only`: just the relinearization key, all that
/// `infer` on a blade-major batch (`encrypt --profile`) needs. `profile`: a vendor's profile
/// (checked against the key set): the relinearization key and the profile's rotations (the
/// block layout's), instead of the interleaved path's.
/// Returns the key count, their bytes and the rewritten `public.bundle`.
pub fn evalkeys(
    dir: &Path,
    merge_patients: Option<usize>,
    relin_only: bool,
    profile: Option<&Path>,
) -> Result<(usize, u64, PathBuf), CliError> {
    let keys = KeySet::open(dir)?;
    let profile_steps = match profile {
        Some(p) => super::profile::read_profile(p, &keys.params)?.rotations,
        None => Vec::new(),
    };
    let ectx = EvalContext::new(keys.params)?;
    if let Some(p) = merge_patients {
        let max = EncryptedMultivectorBatch::capacity(&ectx, Layout::Interleaved);
        if p == 0 || p > max {
            return Err(CliError::TooManyPatients {
                patients: p,
                first_slot: 0,
                max,
            });
        }
    }
    let sk = keys.secret_key()?;
    let mut rng = super::keyset::os_rng()?;
    let rlk = RelinearizationKey::generate(&ectx, &sk, &mut rng)?;
    // A profile's keys replace the interleaved path's: a block-layout batch needs exactly its
    // rotations (and the relinearization key).
    let steps = if profile.is_some() {
        profile_steps
    } else if relin_only {
        Vec::new()
    } else {
        rotation_steps(merge_patients.unwrap_or(0))
    };
    let gks = GaloisKeys::for_rotations(&ectx, &sk, &steps, false, &mut rng)?;
    let out = dir.join(EVAL_DIR);
    std::fs::create_dir_all(&out).map_err(|e| CliError::io(&out, "create directory", e))?;
    let rbytes = rlk.to_bytes(&ectx)?;
    fsio::write_atomic(&dir.join(super::public::RELIN_FILE), &rbytes)?;
    gks.write_dir(&ectx, &out)
        .map_err(|e| CliError::io(&out, "write Galois keys to", e))?;
    let total: u64 = std::fs::read_dir(&out)
        .map_err(|e| CliError::io(&out, "list", e))?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    let (bundle, _) = super::public::write_bundle(dir)?;
    Ok((1 + gks.len(), total, bundle))
}

/// What `infer` evaluates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InferInput {
    /// One interleaved batch ciphertext (from `encrypt`), patients in slots 8p..8p+7.
    Batch(PathBuf),
    /// Single-patient device ciphertexts (full or seeded), each a full-slot encoding with its
    /// patient in slots 0..7 and zeros elsewhere; file i becomes patient i. A directory stands
    /// for its `*.ct` and `*.clhe` files in name order.
    Device(Vec<PathBuf>),
    /// An enrolled device's ciphertexts (`device-enroll`; 8 slots at the device scale under the
    /// device's key) and the switching key the hospital registered for it: evaluated
    /// circuit-private (`clifhe_std::protocol::device`).
    EnrolledDevice {
        /// The ciphertext files (or directories), as for [`InferInput::Device`].
        files: Vec<PathBuf>,
        /// The device's switching key file.
        switch_key: PathBuf,
    },
}

/// Options of `infer`.
#[derive(Clone, Debug)]
pub struct InferOptions {
    pub model: PathBuf,
    pub keys: PathBuf,
    pub input: InferInput,
    pub out: PathBuf,
    pub patients: Option<usize>,
    pub statistical_security: u32,
    pub no_flooding: bool,
}

/// Vendor-side encrypted inference on files, a thin wrapper over
/// [`clifhe_std::protocol::vendor`]; returns the manifest written.
pub fn infer(o: &InferOptions) -> Result<ScoresManifest, CliError> {
    let keys = PublicKeySet::open(&o.keys)?;
    let params = keys.params;
    let model = clifhe_std::protocol::model::PreparedModel::new(read_vendor_model(&o.model)?);
    let ectx = EvalContext::new(params)?;
    let ev = Evaluator::new(&ectx);
    if let InferInput::EnrolledDevice { files, switch_key } = &o.input {
        return super::device_enroll::infer_enrolled(o, &keys, &ev, &model, files, switch_key);
    }
    let pk = keys.public_key()?;
    let rlk = keys.relin_key(&ectx)?;
    let capacity = EncryptedMultivectorBatch::capacity(&ectx, Layout::Interleaved);
    // The input: a blade-major batch for the model's profile (its own path), one interleaved
    // batch, or device ciphertexts (GNN models only: 8 features per patient).
    let (cts, patients, merge) = match &o.input {
        InferInput::Batch(path) => {
            let bytes = fsio::read(path)?;
            if batch::is_batch(&bytes) {
                let (header, cts) = batch::parse(&params, &bytes).map_err(|e| CliError::protocol(path, e))?;
                drop(bytes);
                let opts = vendor::InferOptions {
                    statistical_security: o.statistical_security,
                    no_flooding: o.no_flooding,
                    patients: o.patients,
                };
                let mut rng = super::keyset::os_rng()?;
                let gks = keys.keys_for_batch(&ectx, model.model(), &header)?;
                let vk = vendor::VendorKeys {
                    pk: &pk,
                    rlk: &rlk,
                    gks: gks.as_ref(),
                };
                let scored = vendor::infer(&ev, &vk, &model, &header, &cts, &opts, &mut rng).map_err(|e| CliError::protocol(path, e))?;
                return write_scores(&o.out, &params, &scored);
            }
            let (ct, _) = parse_ciphertext(&params, &bytes, path)?;
            let patients = o.patients.unwrap_or(capacity);
            (vec![ct], patients, 0)
        }
        InferInput::Device(paths) => {
            let files = device_files(paths)?;
            if files.len() > capacity {
                return Err(CliError::TooManyPatients {
                    patients: files.len(),
                    first_slot: 0,
                    max: capacity,
                });
            }
            if o.patients.is_some_and(|p| p != files.len()) {
                return Err(CliError::bad_input(
                    "--patients",
                    format!("{} device ciphertexts hold {} patients", files.len(), files.len()),
                ));
            }
            let cts = read_device_ciphertexts(&params, &files)?;
            let p = cts.len();
            (cts, p, if p > 1 { p } else { 0 })
        }
        InferInput::EnrolledDevice { .. } => unreachable!("handled above"),
    };
    let clifhe_std::protocol::VendorModel::Gnn(model) = model.model() else {
        return Err(CliError::bad_input(
            o.model.display(),
            "an equivariant model evaluates only a batch encrypted for its profile (`host-eval profile`, then \
             `host-eval encrypt --profile` on scans), not interleaved or device ciphertexts",
        ));
    };
    if patients == 0 || patients > capacity {
        return Err(CliError::TooManyPatients {
            patients,
            first_slot: 0,
            max: capacity,
        });
    }
    if !o.no_flooding {
        // Raw features at the preset's scale: the model amplifies their encryption noise beyond
        // what a flood at s bits can hide within the scale (`gnn::noise`), so no sound
        // circuit-private result exists on this path.
        return Err(CliError::bad_input(
            "infer",
            "a circuit-private (flooded) result needs a box-encoded batch: run `host-eval profile` (vendor) and \
             `host-eval encrypt --profile PROFILE` (hospital) on private-n15, or pass --no-flooding (NOT circuit-private)",
        ));
    }
    let steps = rotation_steps(merge);
    let elements: Vec<usize> = steps
        .iter()
        .map(|&s| clifhe_std::keys::rotation_galois_element(s, params.n()))
        .collect::<Result<_, _>>()?;
    if let Some((step, _)) = steps.iter().zip(&elements).find(|&(&s, &g)| s < 0 && !keys.has_galois(g)) {
        return Err(CliError::MissingEvalKeys {
            dir: o.keys.clone(),
            what: format!("rotation key for step {step}, needed to merge {merge} device ciphertexts"),
            hint: format!(
                "run `host-eval evalkeys --keys {} --merge-patients {merge}` (or more) at the hospital",
                o.keys.display()
            ),
        });
    }
    let gks = keys.galois_keys(&ectx, &elements)?;
    let scored = vendor::infer_interleaved(&ev, &rlk, &gks, model, cts, patients, merge > 1, o.statistical_security)?;
    write_scores(&o.out, &params, &scored)
}

/// Writes one score ciphertext per class and then the manifest, each file atomically; returns
/// the manifest.
pub fn write_scores(out: &Path, params: &Params, scored: &ScoredBatch) -> Result<ScoresManifest, CliError> {
    std::fs::create_dir_all(out).map_err(|e| CliError::io(out, "create directory", e))?;
    for (name, bytes) in scored.files(params)? {
        fsio::write_atomic(&out.join(name), &bytes)?;
    }
    Ok(scored.manifest.clone())
}

/// The files `--device-ciphertexts` names: files as given, directories expanded to their
/// `*.ct` / `*.clhe` files in name order.
pub(super) fn device_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, CliError> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| CliError::io(p, "list", e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.is_file() && matches!(f.extension().and_then(|e| e.to_str()), Some("ct" | "clhe")))
                .collect();
            if found.is_empty() {
                return Err(CliError::bad_input(p.display(), "directory holds no .ct or .clhe ciphertext files"));
            }
            found.sort();
            files.extend(found);
        } else {
            files.push(p.clone());
        }
    }
    if files.is_empty() {
        return Err(CliError::bad_input("--device-ciphertexts", "no ciphertext files"));
    }
    Ok(files)
}

/// Reads single-patient device ciphertexts and checks what merging needs: full-slot encodings
/// (a sparse 8-slot encoding repeats the patient in every block and cannot be merged or
/// masked without a level) at one level and scale.
fn read_device_ciphertexts(params: &Params, files: &[PathBuf]) -> Result<Vec<CiphertextOwned>, CliError> {
    let full = params.log_n() - 1;
    let mut cts: Vec<CiphertextOwned> = Vec::with_capacity(files.len());
    for f in files {
        let (ct, _) = read_ciphertext(params, f)?;
        if ct.meta.log_slots != full {
            return Err(CliError::bad_input(
                f.display(),
                format!(
                    "a device ciphertext must be a full-slot encoding ({} slots) with its patient in slots 0..7 and zeros elsewhere; \
                     this one has {} slots (sparse packing repeats the patient in every 8-slot block)",
                    params.max_slots(),
                    1u64 << ct.meta.log_slots.min(63)
                ),
            ));
        }
        if let Some(first) = cts.first() {
            if ct.meta.level != first.meta.level || ct.meta.scale != first.meta.scale {
                return Err(CliError::bad_input(
                    f.display(),
                    format!(
                        "level {} and scale 2^{:.2} differ from the first device ciphertext's (level {}, scale 2^{:.2}); \
                         encrypt every patient at the same level and scale",
                        ct.meta.level,
                        ct.meta.scale.log2(),
                        first.meta.level,
                        first.meta.scale.log2()
                    ),
                ));
            }
        }
        cts.push(ct);
    }
    Ok(cts)
}

/// One patient's plaintext scores (`predict`).
#[derive(Clone, Debug, Serialize)]
pub struct PlainPrediction {
    pub patient: usize,
    pub source: String,
    pub scores: Vec<f64>,
    pub class: usize,
    pub label: String,
    /// The features lie outside the model's input box (its training range): the scores are an
    /// extrapolation and may be meaningless.
    pub out_of_box: bool,
}

/// What `predict` reports.
#[derive(Clone, Debug, Serialize)]
pub struct PredictReport {
    pub labels: Vec<String>,
    /// Largest |value| the encrypted evaluation materialises on these inputs (it must stay far
    /// below q0 / scale, 2^20 on leveled-n14, for the encrypted scores to be exact).
    pub max_abs_intermediate: f64,
    pub patients: Vec<PlainPrediction>,
}

/// Vendor-side plaintext inference: the model's scores and argmax on feature inputs (any
/// `encrypt --input` spec). The reference for the encrypted scores.
pub fn predict(model: &Path, inputs: &[String]) -> Result<PredictReport, CliError> {
    let bytes = fsio::read(model)?;
    let text = std::str::from_utf8(&bytes).map_err(|e| CliError::corrupt(model, "model", e))?;
    if clifhe_std::protocol::model::is_equivariant(text) {
        let m = clifhe_std::gnn::equivariant_model::EquivariantModel::from_json(text)?;
        return super::equivariant::predict(&m, inputs);
    }
    let model = read_model(model)?;
    let patients = super::inputs::load_inputs(inputs, model.preprocessing())?;
    let xs: Vec<Multivector> = patients.iter().map(|p| Multivector::new(p.features)).collect();
    let labels = model.label_names().to_vec();
    let input_box = model.input_box();
    let rows = patients
        .into_iter()
        .zip(&xs)
        .enumerate()
        .map(|(i, (p, x))| {
            let class = model.predict(x);
            PlainPrediction {
                patient: i,
                source: p.source,
                scores: model.forward(x),
                class,
                label: labels.get(class).cloned().unwrap_or_default(),
                out_of_box: !input_box.contains(x),
            }
        })
        .collect();
    Ok(PredictReport {
        max_abs_intermediate: model.max_abs_intermediate(&xs),
        labels,
        patients: rows,
    })
}

/// Predictions as CSV (`patient,class,label[,score per label]`) with a closing comment line.
pub fn render_predictions(preds: &[Prediction], labels: &[String], footer: &str) -> String {
    let mut t = String::from("patient,class,label");
    if preds.iter().any(|p| p.scores.is_some()) {
        for l in labels {
            t.push_str(&format!(",{l}"));
        }
    }
    t.push('\n');
    for p in preds {
        t.push_str(&format!("{},{},{}", p.patient, p.class, p.label));
        for v in p.scores.iter().flatten() {
            t.push_str(&format!(",{v}"));
        }
        t.push('\n');
    }
    let flagged: Vec<usize> = preds.iter().filter(|p| p.out_of_box).map(|p| p.patient).collect();
    if !flagged.is_empty() {
        t.push_str(&format!(
            "# warning: patients outside the model's input box when encrypted (features clamped): {}\n",
            super::encrypt::index_list(&flagged)
        ));
    }
    t.push_str(&format!("# {footer}"));
    t
}

/// What `release` returns: the predictions, the class labels and the ledger after it.
#[derive(Clone, Debug)]
pub struct Released {
    pub predictions: Vec<Prediction>,
    pub labels: Vec<String>,
    /// Bits this release was charged.
    pub cost_bits: f64,
    /// Bits left in the key set's budget.
    pub remaining_bits: f64,
    /// The key set's budget.
    pub budget_bits: f64,
}

/// The vendor's results for `record`: the noise bound its manifest states (the only thing
/// taken from it) and the score files the record's layout names (`class-<c>.ct` per class, or
/// `scores.ct`; `manifest::score_file_names`). Untrusted input: anything
/// malformed is a typed error.
fn read_results(scores_dir: &Path, params: &Params, record: &BatchRecord) -> Result<(f64, Vec<CiphertextOwned>), CliError> {
    let mpath = scores_dir.join(MANIFEST);
    let manifest = ScoresManifest::from_json_checked(&fsio::read(&mpath)?, params).map_err(|e| CliError::protocol(&mpath, e))?;
    if manifest.patients != record.patients || manifest.classes != record.classes || !manifest.circuit_private {
        return Err(CliError::corrupt(
            &mpath,
            "scores manifest",
            format!(
                "it states {} patients, {} classes{}; the batch record has {} and {} (results for another batch?)",
                manifest.patients,
                manifest.classes,
                if manifest.circuit_private { "" } else { ", not circuit-private" },
                record.patients,
                record.classes
            ),
        ));
    }
    let cts = clifhe_std::protocol::manifest::score_file_names(record.layout, record.classes)
        .iter()
        .map(|name| {
            let p = scores_dir.join(name);
            let b = fsio::read(&p)?;
            wire::ciphertext_from_bytes(params, &b).map_err(|e| CliError::corrupt(&p, "score ciphertext", e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((manifest.noise_bound, cts))
}

/// Hospital-side release of the vendor's results for the batch of `record_path`: checked
/// against the record, flooded by the hospital's own policy, charged to the key set's leakage
/// ledger under its lock before anything is decrypted (a refusal after reading the results
/// costs one bit), then decrypted: the argmax per patient and, with `rounded_digits`, the scores
/// rounded to that many decimals. A thin wrapper over [`hospital::prepare_release`] and
/// [`hospital::release_scores`].
pub fn release(
    keys_dir: &Path,
    scores_dir: &Path,
    record_path: &Path,
    statistical_security: u32,
    rounded_digits: Option<u32>,
) -> Result<Released, CliError> {
    let keys = KeySet::open(keys_dir)?;
    let params = keys.params;
    let fingerprint = keys.meta.fingerprint_sha256.clone();
    let record =
        BatchRecord::from_json_checked(&fsio::read(record_path)?, &params, &fingerprint).map_err(|e| CliError::protocol(record_path, e))?;
    let request = ReleaseRequest {
        disclosure: match rounded_digits {
            Some(digits) => Disclosure::Rounded { digits },
            None => Disclosure::Argmax,
        },
        statistical_security,
    };
    hospital::releasable(&record, &request)?;
    let ctx = clifhe_core::context::Context::new(params)?;
    let charged = ledger::with_locked(keys_dir, &params, &fingerprint, |l| {
        if l.remaining_bits() < REFUSAL_BITS {
            return Err(spent(l, 0.0, keys_dir));
        }
        let prepared = read_results(scores_dir, &params, &record)
            .and_then(|(bound, cts)| Ok((hospital::prepare_release(&ctx, &record, bound, &cts, &request)?, cts)));
        match prepared {
            Err(e) => {
                l.spent_bits += REFUSAL_BITS;
                l.refusals += 1;
                Err(e)
            }
            Ok((p, _)) if l.spent_bits + p.cost_bits > l.budget_bits => Err(spent(l, p.cost_bits, keys_dir)),
            Ok((p, cts)) => {
                l.spent_bits += p.cost_bits;
                l.releases += 1;
                Ok((p, cts, l.clone()))
            }
        }
    })?;
    let (prepared, cts, after) = charged?;
    let sk = keys.secret_key()?;
    let mut rng = super::keyset::os_rng()?;
    let predictions = hospital::release_scores(&ctx, &sk, &record, &cts, &prepared, &mut rng)?;
    Ok(Released {
        predictions,
        labels: record.labels,
        cost_bits: prepared.cost_bits,
        remaining_bits: after.remaining_bits(),
        budget_bits: after.budget_bits,
    })
}

/// The refusal of a release the key set's leakage budget cannot pay for.
fn spent(l: &LeakageLedger, cost: f64, dir: &Path) -> CliError {
    CliError::BudgetSpent {
        dir: dir.to_path_buf(),
        spent_bits: l.spent_bits,
        budget_bits: l.budget_bits,
        cost_bits: cost,
    }
}

/// What `train` reports.
#[derive(Clone, Debug, Serialize)]
pub struct TrainSummary {
    pub dataset: String,
    pub classes: usize,
    pub train_samples: usize,
    pub val_samples: usize,
    pub test_samples: usize,
    /// The preprocessing pipeline recorded in the model (`None`: features of unstated origin).
    pub preprocessing: Option<clifhe_std::preprocess::Pipeline>,
    pub test_accuracy: f64,
    pub test_balanced_accuracy: f64,
    pub test_auc: Option<f64>,
    pub logistic_auc: Option<f64>,
    pub depth: usize,
    pub model: PathBuf,
}

/// Where `train` takes its labelled samples from.
#[derive(Clone, Debug)]
pub enum TrainSource {
    /// The built-in phantoms (`per_class` per class, generated with the seed).
    Phantoms {
        per_class: usize,
        /// Largest whole-body tilt in degrees (`PhantomConfig::max_tilt_deg`; 0: upright).
        max_tilt_deg: f64,
    },
    /// A MedMNIST 3D `.npz` (its own train / val / test split).
    Medmnist(PathBuf),
    /// A folder of scans and a labels CSV, through `pipeline` (`labelled::scan_features`).
    Scans {
        dir: PathBuf,
        labels: PathBuf,
        pipeline: clifhe_std::preprocess::Pipeline,
    },
    /// A features CSV and a labels CSV; `pipeline` states how the features were made.
    Features {
        features: PathBuf,
        labels: PathBuf,
        pipeline: Option<clifhe_std::preprocess::Pipeline>,
    },
}

/// Vendor-side training on plaintext features; writes the model file, with the preprocessing
/// pipeline of its features recorded.
pub fn train(source: &TrainSource, seed: u64, out: &Path) -> Result<TrainSummary, CliError> {
    use super::labelled;
    use clifhe_std::gnn::{LogisticRegression, Metrics, TrainConfig};
    let data = match source {
        TrainSource::Phantoms { per_class, max_tilt_deg } => labelled::phantom_features(*per_class, seed, *max_tilt_deg)?,
        TrainSource::Medmnist(p) => labelled::medmnist_features(p)?,
        TrainSource::Scans { dir, labels, pipeline } => labelled::scan_features(dir, labels, pipeline, seed)?,
        TrainSource::Features {
            features,
            labels,
            pipeline,
        } => labelled::features_csv(features, labels, pipeline.clone(), seed)?,
    };
    let classes = data.class_names.len();
    let cfg = TrainConfig {
        label_names: Some(data.class_names.clone()),
        seed,
        ..TrainConfig::default()
    };
    let val = data.val.as_ref().map(|(x, y)| (x.as_slice(), y.as_slice()));
    let (mut model, _) = clifhe_std::gnn::train(&data.train.0, &data.train.1, val, classes, &cfg)?;
    if let Some(p) = &data.pipeline {
        model.set_preprocessing(p.clone())?;
    }
    let m = Metrics::from_scores(&model.forward_batch(&data.test.0), &data.test.1, classes)?;
    let lr = LogisticRegression::train(&data.train.0, &data.train.1, classes, 1e-3, true, 2000)?;
    let b = Metrics::from_scores(&lr.scores_batch(&data.test.0), &data.test.1, classes)?;
    let json = model.to_json()?;
    fsio::write_atomic(out, json.as_bytes())?;
    Ok(TrainSummary {
        dataset: data.source,
        classes,
        train_samples: data.train.0.len(),
        val_samples: data.val.as_ref().map_or(0, |v| v.0.len()),
        test_samples: data.test.0.len(),
        preprocessing: data.pipeline,
        test_accuracy: m.accuracy,
        test_balanced_accuracy: m.balanced_accuracy,
        test_auc: m.auc,
        logistic_auc: b.auc,
        depth: model.depth(),
        model: out.to_path_buf(),
    })
}

/// File name of a Galois key (re-exported for tests).
pub fn galois_file(g: usize) -> String {
    galois_key_file_name(g)
}
