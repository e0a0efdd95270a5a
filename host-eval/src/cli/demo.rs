//! `host-eval demo`: every role in one process, measured.
//!
//! 1. **Data**: the built-in phantom dataset (three classes, deterministic) or a MedMNIST `.npz`
//!    file; scans -> 8 multivector features each (core's `scan_features`).
//! 2. **Vendor, training**: the GNN on plaintext features (train split, validation split for
//!    early stopping) and, for comparison, logistic regression on the same features.
//! 3. **Hospital, keys**: secret key, public key, relinearization key.
//! 4. **Hospital devices, encryption**: each batch of test patients in the blade-major layout
//!    (8 ciphertexts, patient p in slot p of each), public-key encryption streamed prime by
//!    prime as on the device.
//! 5. **Vendor, inference**: the encrypted GNN, then output sanitisation (mask unused slots,
//!    re-randomise, flood, drop to level 0).
//! 6. **Hospital, release**: flooded decryption, argmax per patient, counted against a budget.
//!
//! Measurement-only step: to report how close the encrypted scores are to the plaintext model,
//! the demo also decrypts the vendor's scores *before* sanitisation. That decryption stays in
//! this process and is never part of the protocol.

use super::CliError;
use clifhe_core::encrypt::{encrypt_pk, Plaintext};
use clifhe_core::multivector::features::{scan_features, FeatureConfig};
use clifhe_core::{Multivector, Params, PublicKey, SecretKey};
use clifhe_std::gnn::encrypted::evaluate_blade_major;
use clifhe_std::gnn::{train, LogisticRegression, Metrics, TrainConfig};
use clifhe_std::privacy::{evaluation_noise_bound, sanitize_output, Release, ReleasePolicy, Releaser, ResultLayout, SanitizeConfig};
use clifhe_std::{EvalContext, Evaluator, RelinearizationKey};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Instant;

/// Labelled features, split.
pub struct LabelledFeatures {
    pub source: String,
    pub class_names: Vec<String>,
    pub train: (Vec<Multivector>, Vec<usize>),
    pub val: Option<(Vec<Multivector>, Vec<usize>)>,
    pub test: (Vec<Multivector>, Vec<usize>),
}

/// What `demo` does.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    pub preset: String,
    /// MedMNIST `.npz`; `None`: the built-in phantoms.
    pub dataset: Option<PathBuf>,
    /// Phantoms per class (built-in dataset).
    pub per_class: usize,
    pub seed: u64,
    pub statistical_security: u32,
    /// Skip flooding (NOT circuit-private): for presets whose scale cannot absorb it.
    pub no_flooding: bool,
    /// Also time a batch holding a single patient.
    pub single_patient_latency: bool,
    /// Fill the last batch with repeated test patients (full-batch throughput).
    pub fill_batches: bool,
    pub progress: bool,
}

/// Wall-clock milliseconds per phase.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Timings {
    pub features_ms: f64,
    pub train_ms: f64,
    pub keygen_ms: f64,
    pub encrypt_ms: f64,
    pub infer_ms: f64,
    pub sanitize_ms: f64,
    pub release_ms: f64,
}

/// The machine-readable result (`--json`).
#[derive(Clone, Debug, Serialize)]
pub struct DemoReport {
    pub dataset: String,
    pub preset: String,
    pub log_n: u32,
    pub log_qp: f64,
    pub security_bound_128: Option<u32>,
    pub patients: usize,
    pub train_samples: usize,
    pub classes: usize,
    pub class_names: Vec<String>,
    pub model_depth: usize,
    pub levels_left: usize,
    pub batches: usize,
    pub plaintext_accuracy: f64,
    pub plaintext_balanced_accuracy: f64,
    pub plaintext_auc: Option<f64>,
    pub encrypted_accuracy: f64,
    pub balanced_accuracy: f64,
    pub auc: Option<f64>,
    pub baseline_logistic_auc: Option<f64>,
    pub baseline_logistic_balanced_accuracy: f64,
    /// Fraction of test samples whose released (flooded) argmax equals the plaintext model's.
    pub argmax_agreement: f64,
    /// Same, for the encrypted scores before sanitisation.
    pub argmax_agreement_before_flooding: f64,
    /// Max |encrypted - plaintext| score before sanitisation.
    pub max_abs_score_error: f64,
    pub circuit_private: bool,
    pub statistical_security: u32,
    /// Encrypted patient records evaluated (test patients, repeated to fill the batches).
    pub patients_evaluated: usize,
    /// (encrypt + infer + sanitize + release) / patients evaluated.
    pub latency_ms_per_patient: f64,
    /// End-to-end time of a batch holding one patient (if measured).
    pub single_patient_latency_ms: Option<f64>,
    pub patients_per_second: f64,
    pub threads: usize,
    pub timings: Timings,
}

fn argmax(v: &[f64]) -> usize {
    v.iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |b, (i, &s)| if s > b.1 { (i, s) } else { b })
        .0
}

/// Features of a MedMNIST file: train (+ val for early stopping) and test.
pub fn medmnist_features(path: &std::path::Path) -> Result<LabelledFeatures, CliError> {
    let d = crate::data::npz::load_medmnist_npz(path).map_err(|e| CliError::bad_input(path.display(), e))?;
    let feats = |s: &crate::data::npz::Split| -> Result<(Vec<Multivector>, Vec<usize>), CliError> {
        let mut xs = Vec::with_capacity(s.len());
        for i in 0..s.len() {
            let v = s
                .volume(i)
                .ok_or_else(|| CliError::bad_input(path.display(), "sample out of range"))?;
            let view = v.view().map_err(|e| CliError::bad_input(path.display(), e))?;
            xs.push(scan_features(&view, &FeatureConfig { intensity_scale: 255.0 }).map_err(|e| CliError::bad_input(path.display(), e))?);
        }
        Ok((xs, s.labels.iter().map(|&l| l as usize).collect()))
    };
    let classes = d
        .train
        .labels
        .iter()
        .chain(&d.test.labels)
        .max()
        .map_or(2, |&m| m as usize + 1)
        .max(2);
    let names = if classes == 2 {
        vec!["normal".to_string(), "abnormal".to_string()]
    } else {
        (0..classes).map(|c| format!("class {c}")).collect()
    };
    Ok(LabelledFeatures {
        source: path.display().to_string(),
        class_names: names,
        train: feats(&d.train)?,
        val: Some(feats(&d.val)?),
        test: feats(&d.test)?,
    })
}

/// Runs the whole demo.
pub fn run_demo(opts: &DemoOptions, data: LabelledFeatures, features_ms: f64, log: &mut dyn FnMut(&str)) -> Result<DemoReport, CliError> {
    let params = Params::from_name(&opts.preset).ok_or_else(|| CliError::UnknownPreset { name: opts.preset.clone() })?;
    let classes = data.class_names.len();
    let mut timings = Timings {
        features_ms,
        ..Timings::default()
    };
    let (test_x, test_y) = &data.test;
    let (train_x, train_y) = &data.train;
    log(&format!(
        "[data]     {}: {} train, {} validation, {} test samples, {} classes ({})",
        data.source,
        train_x.len(),
        data.val.as_ref().map_or(0, |v| v.0.len()),
        test_x.len(),
        classes,
        data.class_names.join(" / ")
    ));

    // Vendor: training in plaintext.
    let t = Instant::now();
    let cfg = TrainConfig {
        label_names: Some(data.class_names.clone()),
        seed: opts.seed,
        ..TrainConfig::default()
    };
    let val = data.val.as_ref().map(|(x, y)| (x.as_slice(), y.as_slice()));
    let (model, report) = train(train_x, train_y, val, classes, &cfg)?;
    let lr = LogisticRegression::train(train_x, train_y, classes, 1e-3, true, 2000)?;
    timings.train_ms = t.elapsed().as_secs_f64() * 1e3;
    let plain_scores = model.forward_batch(test_x);
    let plain = Metrics::from_scores(&plain_scores, test_y, classes)?;
    let base = Metrics::from_scores(&lr.scores_batch(test_x), test_y, classes)?;
    log(&format!(
        "[vendor]   trained GNN 1 -> {} -> {} ({} epochs, best {}) in {:.0} ms; plaintext test accuracy {:.3}, balanced {:.3}, AUC {}; logistic baseline AUC {}",
        cfg.hidden.iter().map(|h| h.to_string()).collect::<Vec<_>>().join(" -> "),
        classes,
        report.epochs_run,
        report.best_epoch,
        timings.train_ms,
        plain.accuracy,
        plain.balanced_accuracy,
        fmt_opt(plain.auc),
        fmt_opt(base.auc)
    ));
    let plan = model.plan();
    if params.max_level() < plan.depth() + 1 {
        return Err(CliError::BadLevel {
            level: plan.depth() + 1,
            max: params.max_level(),
        });
    }

    // Hospital: keys.
    let t = Instant::now();
    let ectx = EvalContext::new(params)?;
    let mut rng = ChaCha20Rng::from_entropy();
    let sk = SecretKey::generate(&params, &mut rng)?;
    let pk = PublicKey::generate(&params, ectx.q_tables(), &sk, &mut rng)?;
    let rlk = RelinearizationKey::generate(&ectx, &sk, &mut rng)?;
    timings.keygen_ms = t.elapsed().as_secs_f64() * 1e3;
    log(&format!(
        "[hospital] keys for {} (N = 2^{}, log2 QP = {:.1} <= {}): sk, pk, relinearization key in {:.0} ms",
        params.name(),
        params.log_n(),
        params.log_qp(),
        params.security_bound().unwrap_or(0),
        timings.keygen_ms
    ));

    let ev = Evaluator::new(&ectx);
    let batch = params.max_slots();
    let noise_bound = evaluation_noise_bound(params.n(), plan.depth() + 1);
    let mut releaser = Releaser::new(ReleasePolicy {
        statistical_security: opts.statistical_security,
        ..ReleasePolicy::argmax(noise_bound, u64::MAX)
    });
    let mut released = Vec::with_capacity(test_x.len());
    let mut enc_scores: Vec<Vec<f64>> = Vec::with_capacity(test_x.len());
    // Fill every batch: the test patients, then repeated ones in the remaining slots, so the
    // throughput is that of full batches of real encrypted records (a batch costs the same
    // however many slots are used). Metrics use the first copy of each test patient.
    let evaluated = test_x.len().div_ceil(batch).max(1) * batch;
    let eval_x: Vec<Multivector> = test_x
        .iter()
        .cycle()
        .take(if opts.fill_batches { evaluated } else { test_x.len() })
        .copied()
        .collect();
    let batches: Vec<(usize, usize)> = (0..eval_x.len())
        .step_by(batch)
        .map(|s| (s, (s + batch).min(eval_x.len())))
        .collect();
    let mut levels_left = 0;
    let mut circuit_private = !opts.no_flooding;
    // A progress bar on stderr while batches run (hidden for --json and when not a terminal).
    let bar = if opts.progress {
        indicatif::ProgressBar::new(batches.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("  {spinner} batch {pos}/{len} [{elapsed_precise}] {wide_bar}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    for (bi, &(start, end)) in batches.iter().enumerate() {
        let res = run_batch(
            &ectx,
            &ev,
            &pk,
            &sk,
            &rlk,
            &plan,
            &eval_x[start..end],
            opts,
            &mut releaser,
            noise_bound,
            classes,
            &mut rng,
        )?;
        timings.encrypt_ms += res.encrypt_ms;
        timings.infer_ms += res.infer_ms;
        timings.sanitize_ms += res.sanitize_ms;
        timings.release_ms += res.release_ms;
        levels_left = res.levels_left;
        circuit_private &= res.flooded;
        released.extend(res.released);
        enc_scores.extend(res.scores);
        bar.inc(1);
        let line = format!(
            "[batch {}/{}] {} patients: encrypt {:.0} ms, infer {:.0} ms, sanitize {:.0} ms, release {:.0} ms",
            bi + 1,
            batches.len(),
            end - start,
            res.encrypt_ms,
            res.infer_ms,
            res.sanitize_ms,
            res.release_ms
        );
        bar.suspend(|| log(&line));
    }
    bar.finish_and_clear();
    let pipeline_ms = timings.encrypt_ms + timings.infer_ms + timings.sanitize_ms + timings.release_ms;
    let single = if opts.single_patient_latency && !test_x.is_empty() {
        let t = Instant::now();
        run_batch(
            &ectx,
            &ev,
            &pk,
            &sk,
            &rlk,
            &plan,
            &test_x[..1],
            opts,
            &mut releaser,
            noise_bound,
            classes,
            &mut rng,
        )?;
        Some(t.elapsed().as_secs_f64() * 1e3)
    } else {
        None
    };

    released.truncate(test_x.len());
    enc_scores.truncate(test_x.len());
    let plain_pred: Vec<usize> = plain_scores.iter().map(|s| argmax(s)).collect();
    let n = test_x.len().max(1) as f64;
    let n_eval = eval_x.len().max(1) as f64;
    let agree = released.iter().zip(&plain_pred).filter(|(a, b)| a == b).count() as f64 / n;
    let agree_raw = enc_scores.iter().zip(&plain_pred).filter(|(s, b)| argmax(s) == **b).count() as f64 / n;
    let max_err = enc_scores
        .iter()
        .zip(&plain_scores)
        .flat_map(|(a, b)| a.iter().zip(b).map(|(x, y)| (x - y).abs()))
        .fold(0.0, f64::max);
    let enc = Metrics::from_scores(&enc_scores, test_y, classes)?;
    let released_acc = released.iter().zip(test_y).filter(|(a, b)| a == b).count() as f64 / n;
    let released_bal = clifhe_std::gnn::balanced_accuracy(&released, test_y, classes);
    let threads = rayon::current_num_threads();
    let report = DemoReport {
        dataset: data.source.clone(),
        preset: params.name().to_string(),
        log_n: params.log_n(),
        log_qp: params.log_qp(),
        security_bound_128: params.security_bound(),
        patients: test_x.len(),
        train_samples: train_x.len(),
        classes,
        class_names: data.class_names.clone(),
        model_depth: plan.depth(),
        levels_left,
        batches: batches.len(),
        plaintext_accuracy: plain.accuracy,
        plaintext_balanced_accuracy: plain.balanced_accuracy,
        plaintext_auc: plain.auc,
        encrypted_accuracy: released_acc,
        balanced_accuracy: released_bal,
        auc: enc.auc,
        baseline_logistic_auc: base.auc,
        baseline_logistic_balanced_accuracy: base.balanced_accuracy,
        argmax_agreement: agree,
        argmax_agreement_before_flooding: agree_raw,
        max_abs_score_error: max_err,
        circuit_private,
        statistical_security: opts.statistical_security,
        patients_evaluated: eval_x.len(),
        latency_ms_per_patient: pipeline_ms / n_eval,
        single_patient_latency_ms: single,
        patients_per_second: n_eval / (pipeline_ms / 1e3),
        threads,
        timings,
    };
    log(&format!(
        "[hospital] released diagnoses: accuracy {:.3}, balanced {:.3} (plaintext {:.3}); argmax agreement with the plaintext model {:.4} ({:.4} before flooding); max |score error| {:.2e}",
        report.encrypted_accuracy, report.balanced_accuracy, report.plaintext_accuracy, report.argmax_agreement, report.argmax_agreement_before_flooding, report.max_abs_score_error
    ));
    log(&format!(
        "[timing]   {} encrypted records in {} full batch(es): {:.3} ms per patient amortised, {:.0} patients/s on {} thread(s){}",
        report.patients_evaluated,
        report.batches,
        report.latency_ms_per_patient,
        report.patients_per_second,
        threads,
        single.map_or(String::new(), |s| format!(
            "; a batch with a single patient takes {s:.0} ms end to end"
        ))
    ));
    Ok(report)
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or("n/a".to_string(), |x| format!("{x:.3}"))
}

struct BatchResult {
    released: Vec<usize>,
    scores: Vec<Vec<f64>>,
    encrypt_ms: f64,
    infer_ms: f64,
    sanitize_ms: f64,
    release_ms: f64,
    levels_left: usize,
    flooded: bool,
}

#[allow(clippy::too_many_arguments)]
fn run_batch(
    ectx: &EvalContext,
    ev: &Evaluator<'_>,
    pk: &PublicKey<Vec<u64>>,
    sk: &SecretKey<Vec<i8>>,
    rlk: &RelinearizationKey,
    plan: &clifhe_std::gnn::InferencePlan,
    xs: &[Multivector],
    opts: &DemoOptions,
    releaser: &mut Releaser,
    noise_bound: f64,
    classes: usize,
    rng: &mut ChaCha20Rng,
) -> Result<BatchResult, CliError> {
    let params = *ectx.params();
    let slots = params.max_slots();
    // Hospital devices: blade-major packing, public-key encryption (prime by prime inside).
    let t = Instant::now();
    let mut cts = Vec::with_capacity(8);
    for k in 0..8 {
        let mut v = vec![0.0; slots];
        for (p, x) in xs.iter().enumerate() {
            v[p] = x.coeffs()[k];
        }
        let pt = Plaintext::encode_real(&params, &v, params.default_scale())?;
        cts.push(encrypt_pk(&params, ectx.q_tables(), pk, &pt, params.max_level(), rng)?);
    }
    let encrypt_ms = t.elapsed().as_secs_f64() * 1e3;

    // Vendor: inference.
    let t = Instant::now();
    let scores = evaluate_blade_major(ev, rlk, plan, &cts)?;
    let infer_ms = t.elapsed().as_secs_f64() * 1e3;
    let levels_left = scores.first().map_or(0, |c| c.meta.level);

    // Measurement only (see module docs): the scores before sanitisation.
    let raw: Vec<Vec<f64>> = scores
        .iter()
        .map(|c| clifhe_core::decrypt::decrypt(ectx.core(), sk, c).and_then(|d| d.decode_real()))
        .collect::<Result<_, _>>()?;
    let per_patient: Vec<Vec<f64>> = (0..xs.len()).map(|p| (0..classes).map(|c| raw[c][p]).collect()).collect();

    // Vendor: sanitisation before anything leaves.
    let t = Instant::now();
    let mut cfg = SanitizeConfig::new(noise_bound);
    cfg.statistical_security = opts.statistical_security;
    cfg.used_slots = Some((0..slots).map(|s| s < xs.len()).collect());
    let sanitized: Vec<_> = if opts.no_flooding {
        scores
    } else {
        scores
            .iter()
            .map(|c| sanitize_output(ectx, pk, c, &cfg, rng))
            .collect::<Result<_, _>>()?
    };
    let sanitize_ms = t.elapsed().as_secs_f64() * 1e3;

    // Hospital: flooded release of the argmax only.
    let t = Instant::now();
    let refs: Vec<_> = sanitized.iter().collect();
    let released = if opts.no_flooding {
        per_patient.iter().map(|s| argmax(s)).collect()
    } else {
        match releaser.decrypt_for_release(
            ectx.core(),
            sk,
            &refs,
            &ResultLayout::CiphertextPerClass { groups: xs.len(), classes },
            rng,
        )? {
            Release::Classes(c) => c,
            Release::Scores(_) => return Err(CliError::bad_input("release", "expected classes")),
        }
    };
    let release_ms = t.elapsed().as_secs_f64() * 1e3;
    Ok(BatchResult {
        released,
        scores: per_patient,
        encrypt_ms,
        infer_ms,
        sanitize_ms,
        release_ms,
        levels_left,
        flooded: !opts.no_flooding,
    })
}

/// Human-readable summary lines are printed as they happen; this renders the final JSON.
pub fn to_json(r: &DemoReport) -> Result<String, CliError> {
    serde_json::to_string_pretty(r).map_err(|e| CliError::bad_input("demo report", e))
}

/// Features of the built-in phantom dataset (healthy / benign / malignant), split 60/15/25.
pub fn phantom_features(per_class: usize, seed: u64) -> Result<LabelledFeatures, CliError> {
    use crate::phantom::{generate, split_of, PhantomClass, PhantomConfig, Split};
    use rayon::prelude::*;
    let cfg = PhantomConfig {
        seed,
        ..PhantomConfig::default()
    };
    let items: Vec<(usize, PhantomClass)> = (0..per_class).flat_map(|i| PhantomClass::ALL.map(|c| (i, c))).collect();
    let feats: Vec<(Split, Multivector, usize)> = items
        .par_iter()
        .map(|&(i, c)| {
            let v = generate(&cfg, c, i as u64);
            let view = v.view().map_err(|e| CliError::bad_input("phantom", e))?;
            let f = scan_features(&view, &FeatureConfig::default()).map_err(|e| CliError::bad_input("phantom", e))?;
            Ok((split_of(i as u64, per_class), f, c.label() as usize))
        })
        .collect::<Result<_, CliError>>()?;
    let pick = |split: Split| -> (Vec<Multivector>, Vec<usize>) { feats.iter().filter(|f| f.0 == split).map(|f| (f.1, f.2)).unzip() };
    Ok(LabelledFeatures {
        source: format!("built-in phantoms ({per_class} per class, 32^3, seed {seed})"),
        class_names: PhantomClass::ALL.iter().map(|c| c.name().to_string()).collect(),
        train: pick(Split::Train),
        val: Some(pick(Split::Val)),
        test: pick(Split::Test),
    })
}
