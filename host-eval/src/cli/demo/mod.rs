//! `host-eval demo`: every role in one process, measured.
//!
//! 1. **Data**: the built-in phantom dataset (three classes, deterministic) or a MedMNIST `.npz`
//!    file; scans -> 8 multivector features each (`labelled`: the dataset's pipeline, then
//!    core's `scan_features`).
//! 2. **Vendor, training**: the GNN on plaintext features (train split, validation split for
//!    early stopping) and, for comparison, logistic regression on the same features.
//! 3. **Hospital, keys**: secret key, public key, relinearization key.
//! 4. **Hospital, encryption**: each batch of test patients in the blade-major layout (8
//!    ciphertexts, patient p in slot p of each) or, up to N/16 / C patients (C classes), the
//!    block layout's 8 rotations; seeded secret-key encryption by default (the hospital's own machine, holding
//!    the key set: half the upload), public-key encryption with `--encrypt-mode pk` (a gateway
//!    holding only the public key). The key is prepared once per key set.
//! 5. **Vendor, inference**: the encrypted GNN, then output sanitisation (mask unused slots,
//!    re-randomise, flood with a width from the proven noise bound of this model, drop to the
//!    lowest level that holds the scores).
//! 6. **Hospital, release**: flooded decryption, argmax per patient, counted against a budget.
//!
//! Patients are encrypted box-encoded (u = (clamp(x) - center) / half_width, the model's public
//! input box; empty slots hold u = 0) at the level and scale the schedule asks for:
//! `Schedule::circuit_private` when flooding (inputs at 2^80, scores at about 2^100 on level 1),
//! the preset's scale at the lowest sufficient level otherwise.
//!
//! Measurement-only step: to report how close the encrypted scores are to the plaintext model,
//! the demo also decrypts the vendor's scores *before* sanitisation. That decryption stays in
//! this process and is never part of the protocol.

mod batch;

use super::labelled::LabelledFeatures;
use super::CliError;
use batch::{run_batch, BatchSetup, BlockSetup};
use clifhe_core::{Multivector, Params, PublicKey, SecretKey};
use clifhe_std::gnn::blocks::{block_capacity, block_rotation_steps, BlockConstants};
use clifhe_std::gnn::noise::Packing;
use clifhe_std::gnn::{train, LogisticRegression, Metrics, TrainConfig};
use clifhe_std::privacy::MaskMemo;
use clifhe_std::protocol::hospital::EncryptionKey;
use clifhe_std::protocol::profile::{analyse, schedule_for};
use clifhe_std::protocol::BatchLayout;
use clifhe_std::{EvalContext, Evaluator, GaloisKeys, RelinearizationKey};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Instant;

/// How many times `--single-patient-latency` runs one patient (the report gives the median).
pub const LATENCY_RUNS: usize = 5;

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
    /// How the hospital encrypts its patients: with the public key, or (its own machines,
    /// holding the key set) seeded secret-key encryption.
    pub encrypt_mode: super::encrypt::Mode,
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
    /// Rotation keys of the block layout (hospital, once per key set).
    pub galois_keygen_ms: f64,
    /// Plaintext constants of the block layout (vendor, once per model).
    pub block_setup_ms: f64,
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
    /// How the hospital encrypted its patients (`public-key` or `seeded secret-key`).
    pub input_encryption: String,
    /// Level the patients are encrypted at (the schedule's input level).
    pub input_level: usize,
    pub input_scale_log2: f64,
    /// Level of the scores after the model (before sanitisation).
    pub levels_left: usize,
    /// Packing of the test batches: blade-major (8 ciphertexts of N/2 patients) or blocks
    /// (one ciphertext, at most N/16 / C patients; also the single-patient run).
    pub layout: BatchLayout,
    /// Level and scale of the released ciphertexts.
    pub output_level: usize,
    pub output_scale_log2: f64,
    pub batches: usize,
    pub plaintext_accuracy: f64,
    pub plaintext_balanced_accuracy: f64,
    pub plaintext_auc: Option<f64>,
    pub encrypted_accuracy: f64,
    pub balanced_accuracy: f64,
    pub auc: Option<f64>,
    pub baseline_logistic_auc: Option<f64>,
    pub baseline_logistic_balanced_accuracy: f64,
    /// Fraction of test samples whose released (flooded) argmax equals the plaintext model's
    /// (at the box-clamped features, `GnnModel::forward_in_box`: the same as `forward` for
    /// samples inside the box, see `test_samples_outside_box`).
    pub argmax_agreement: f64,
    /// Same, for the encrypted scores before sanitisation.
    pub argmax_agreement_before_flooding: f64,
    /// Max |encrypted - plaintext| score before sanitisation (same reference).
    pub max_abs_score_error: f64,
    /// Proven bound on |score| over the model's input box (interval analysis).
    pub score_bound: f64,
    /// log2 of the proven per-coefficient bound on the scores' evaluation noise (coefficient
    /// units at the output scale), and of that bound relative to the scale.
    pub noise_bound_log2: Option<f64>,
    pub noise_bound_relative_log2: Option<f64>,
    /// log2 of the vendor's and the release's flood widths W (uniform on [-W, W) per coefficient).
    pub vendor_flood_log2: Option<u32>,
    pub release_flood_log2: Option<u32>,
    /// log2 of W / scale: the flood relative to the scores' scale, per coefficient.
    pub flood_relative_log2: Option<f64>,
    /// Standard deviation both floods together add to each decoded score: sqrt(N/6 (Wv^2 + Wr^2)) / scale.
    pub flood_score_std: Option<f64>,
    /// Smallest gap between the largest and second largest plaintext score over the test set.
    pub min_plaintext_score_gap: f64,
    /// flood_score_std / min_plaintext_score_gap.
    pub flood_std_over_min_gap: Option<f64>,
    /// Test samples whose plaintext top-two gap is below 6 flood standard deviations (a flip
    /// has probability above 1e-9 there): near-ties at risk.
    pub near_ties: usize,
    /// Test samples outside the model's public input box (the encoder clamps them, so their
    /// encrypted scores are the model's at the clamped features).
    pub test_samples_outside_box: usize,
    pub circuit_private: bool,
    pub statistical_security: u32,
    /// Encrypted patient records evaluated (test patients, repeated to fill the batches).
    pub patients_evaluated: usize,
    /// (encrypt + infer + sanitize + release) / patients evaluated.
    pub latency_ms_per_patient: f64,
    /// End-to-end time of a batch holding one patient (if measured): the median of
    /// [`LATENCY_RUNS`] runs, each the batch's wall time (packing, encryption, inference,
    /// sanitisation, release) less the demo's measurement-only decryption.
    pub single_patient_latency_ms: Option<f64>,
    /// The fastest and slowest of those runs.
    pub single_patient_latency_range_ms: Option<(f64, f64)>,
    /// The median run's phases (encrypt, infer, sanitize, release), if measured.
    pub single_patient_timings: Option<Timings>,
    pub patients_per_second: f64,
    pub threads: usize,
    pub timings: Timings,
    /// Per test patient: label, plaintext scores, released diagnosis (`--report`; not in the JSON).
    #[serde(skip)]
    pub outcomes: super::report::Outcomes,
}

pub(crate) fn argmax(v: &[f64]) -> usize {
    v.iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |b, (i, &s)| if s > b.1 { (i, s) } else { b })
        .0
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
    let (mut model, report) = train(train_x, train_y, val, classes, &cfg)?;
    if let Some(p) = &data.pipeline {
        model.set_preprocessing(p.clone())?;
    }
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
    // The evaluation's levels and scales: circuit-private (flooded) output needs the large-scale
    // schedule and its noise analysis; without flooding the preset's scale at the lowest level
    // that fits the model is enough.
    let plan = model.encrypted_plan();
    let schedule = schedule_for(&params, &plan, !opts.no_flooding, 0)?;
    let analysis = analyse(&params, &plan, &schedule, Packing::BladeMajor)?;
    let ibox = model.input_box();

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
    let mut released_count = 0u64;
    // The latency path (batches of at most N/16 / C patients): rotation keys from the hospital, the
    // vendor's block constants (once per model).
    let t = Instant::now();
    let gks = GaloisKeys::for_rotations(&ectx, &sk, &block_rotation_steps(&params), false, &mut rng)?;
    timings.galois_keygen_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    // The hospital encrypts the 8 block rotations of its patients (no key switching at the
    // input scale), so the blade-major schedule serves both layouts.
    let block_schedule = schedule.clone();
    let block_analysis = analyse(&params, &plan, &block_schedule, Packing::BlocksEncryptedRotations)?;
    let blocks = BlockSetup {
        constants: BlockConstants::new(&ev, &plan, &block_schedule)?,
        gks,
        schedule: block_schedule,
        analysis: block_analysis,
    };
    timings.block_setup_ms = t.elapsed().as_secs_f64() * 1e3;
    log(&format!(
        "[setup]    latency path (block layout, at most {} patients per batch): hospital rotation keys in {:.0} ms, vendor's plaintext constants in {:.0} ms (once per key set / model)",
        block_capacity(&params, model.classes()),
        timings.galois_keygen_ms,
        timings.block_setup_ms
    ));
    // The hospital's key prepared once (per key set, like the rotation keys): the public key's
    // `a` expanded, or the secret key transformed; every encryption below reuses it.
    let key = match opts.encrypt_mode {
        super::encrypt::Mode::Pk => EncryptionKey::Public(&pk),
        super::encrypt::Mode::Seeded => EncryptionKey::SecretSeeded(&sk),
    }
    .prepare(ectx.core(), schedule.input_level)?;
    let masks = MaskMemo::new();
    let setup = BatchSetup {
        key: &key,
        masks: &masks,
        blocks: &blocks,
        ectx: &ectx,
        ev: &ev,
        pk: &pk,
        sk: &sk,
        rlk: &rlk,
        plan: &plan,
        schedule: &schedule,
        analysis: &analysis,
        ibox: &ibox,
        classes,
    };
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
    let mut floods: Option<(u32, u32, u32)> = None;
    let (mut out_scale, mut noise_bound, mut layout) = (schedule.output_scale(), analysis.per_coefficient_bound, BatchLayout::BladeMajor);
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
        let res = run_batch(&setup, &eval_x[start..end], opts, &mut released_count, &mut rng)?;
        timings.encrypt_ms += res.encrypt_ms;
        timings.infer_ms += res.infer_ms;
        timings.sanitize_ms += res.sanitize_ms;
        timings.release_ms += res.release_ms;
        levels_left = res.levels_left;
        circuit_private &= res.flooded;
        floods = res.floods.or(floods);
        (out_scale, noise_bound, layout) = (res.output_scale, res.noise_bound, res.layout);
        released.extend(res.released);
        enc_scores.extend(res.scores);
        bar.inc(1);
        let line = format!(
            "[batch {}/{}] {} patients: encrypt ({}) {:.0} ms, infer {:.0} ms, sanitize {:.0} ms, release {:.0} ms",
            bi + 1,
            batches.len(),
            end - start,
            opts.encrypt_mode.describe(),
            res.encrypt_ms,
            res.infer_ms,
            res.sanitize_ms,
            res.release_ms
        );
        bar.suspend(|| log(&line));
    }
    bar.finish_and_clear();
    let pipeline_ms = timings.encrypt_ms + timings.infer_ms + timings.sanitize_ms + timings.release_ms;
    // One patient, LATENCY_RUNS times with fresh encryptions (a warm service answering one
    // request after another): the run with the median total, and the range over all runs. The
    // total is the wall time of the batch less its measurement-only decryption.
    let single = if opts.single_patient_latency && !test_x.is_empty() {
        let mut runs = Vec::with_capacity(LATENCY_RUNS);
        for _ in 0..LATENCY_RUNS {
            let t = Instant::now();
            let r = run_batch(&setup, &test_x[..1], opts, &mut released_count, &mut rng)?;
            runs.push((
                t.elapsed().as_secs_f64() * 1e3 - r.measurement_ms,
                Timings {
                    encrypt_ms: r.encrypt_ms,
                    infer_ms: r.infer_ms,
                    sanitize_ms: r.sanitize_ms,
                    release_ms: r.release_ms,
                    ..Timings::default()
                },
            ));
        }
        runs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let range = (runs[0].0, runs[runs.len() - 1].0);
        let median = runs.swap_remove(runs.len() / 2);
        Some((median.0, median.1, range))
    } else {
        None
    };
    let single_range = single.as_ref().map(|s| s.2);
    let (single, single_timings) = (single.as_ref().map(|s| s.0), single.map(|s| s.1));

    released.truncate(test_x.len());
    enc_scores.truncate(test_x.len());
    // The reference of the encrypted path: the model at the box-clamped features the encoder
    // sends (the same scores as `plain_scores` for every test sample inside the box; the report
    // counts those outside).
    let ref_scores: Vec<Vec<f64>> = test_x.iter().map(|x| model.forward_in_box(x)).collect();
    let plain_pred: Vec<usize> = ref_scores.iter().map(|s| argmax(s)).collect();
    let n = test_x.len().max(1) as f64;
    let n_eval = eval_x.len().max(1) as f64;
    let agree = released.iter().zip(&plain_pred).filter(|(a, b)| a == b).count() as f64 / n;
    let agree_raw = enc_scores.iter().zip(&plain_pred).filter(|(s, b)| argmax(s) == **b).count() as f64 / n;
    let max_err = enc_scores
        .iter()
        .zip(&ref_scores)
        .flat_map(|(a, b)| a.iter().zip(b).map(|(x, y)| (x - y).abs()))
        .fold(0.0, f64::max);
    let enc = Metrics::from_scores(&enc_scores, test_y, classes)?;
    let released_acc = released.iter().zip(test_y).filter(|(a, b)| a == b).count() as f64 / n;
    let released_bal = clifhe_std::gnn::balanced_accuracy(&released, test_y, classes);
    let threads = rayon::current_num_threads();
    // The floods against the scores' gaps: what decides whether a near-tie can flip.
    let gaps: Vec<f64> = ref_scores.iter().map(|s| top_two_gap(s)).collect();
    let min_gap = gaps.iter().copied().fold(f64::INFINITY, f64::min);
    let flood_std =
        floods.map(|(v, r, _)| ((params.n() as f64 / 6.0) * ((2.0 * v as f64).exp2() + (2.0 * r as f64).exp2())).sqrt() / out_scale);
    let near_ties = flood_std.map_or(0, |f| gaps.iter().filter(|&&g| g < 6.0 * f).count());
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
        input_encryption: opts.encrypt_mode.describe().to_string(),
        input_level: if layout == BatchLayout::Blocks {
            blocks.schedule.input_level
        } else {
            schedule.input_level
        },
        input_scale_log2: if layout == BatchLayout::Blocks {
            blocks.schedule.input_scale
        } else {
            schedule.input_scale
        }
        .log2(),
        levels_left,
        output_level: floods.map_or(levels_left, |(_, _, l)| l as usize),
        output_scale_log2: out_scale.log2(),
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
        score_bound: analysis.ranges.score_bound(),
        noise_bound_log2: (!opts.no_flooding).then(|| noise_bound.log2()),
        noise_bound_relative_log2: (!opts.no_flooding).then(|| (noise_bound / out_scale).log2()),
        layout,
        vendor_flood_log2: floods.map(|f| f.0),
        release_flood_log2: floods.map(|f| f.1),
        flood_relative_log2: floods.map(|f| f.0 as f64 - out_scale.log2()),
        flood_score_std: flood_std,
        min_plaintext_score_gap: min_gap,
        flood_std_over_min_gap: flood_std.map(|f| f / min_gap),
        near_ties,
        test_samples_outside_box: test_x.iter().filter(|x| !ibox.contains(x)).count(),
        circuit_private,
        statistical_security: opts.statistical_security,
        patients_evaluated: eval_x.len(),
        latency_ms_per_patient: pipeline_ms / n_eval,
        single_patient_latency_ms: single,
        single_patient_latency_range_ms: single_range,
        single_patient_timings: single_timings,
        patients_per_second: n_eval / (pipeline_ms / 1e3),
        threads,
        timings,
        outcomes: super::report::Outcomes {
            class_names: data.class_names.clone(),
            labels: test_y.to_vec(),
            scores: ref_scores.clone(),
            released: released.clone(),
        },
    };
    log(&format!(
        "[hospital] released diagnoses: accuracy {:.3}, balanced {:.3} (plaintext {:.3}); argmax agreement with the plaintext model {:.4} ({:.4} before flooding); max |score error| {:.2e}",
        report.encrypted_accuracy, report.balanced_accuracy, report.plaintext_accuracy, report.argmax_agreement, report.argmax_agreement_before_flooding, report.max_abs_score_error
    ));
    if let (Some(f), Some(v), Some(r)) = (report.flood_score_std, report.vendor_flood_log2, report.noise_bound_log2) {
        log(&format!(
            "[privacy]  s = {}: proven noise bound 2^{:.1} at scale 2^{:.1} (level {}), floods 2^{} (vendor) and 2^{} (release): score noise std {:.2e}, {:.2e} of the smallest top-two gap {:.2e}; {} near-tie(s) within 6 std",
            report.statistical_security,
            r,
            report.output_scale_log2,
            report.output_level,
            v,
            report.release_flood_log2.unwrap_or(0),
            f,
            f / min_gap,
            min_gap,
            report.near_ties
        ));
    }
    log(&format!(
        "[timing]   {} encrypted records in {} full batch(es): {:.3} ms per patient amortised, {:.0} patients/s on {} thread(s){}",
        report.patients_evaluated,
        report.batches,
        report.latency_ms_per_patient,
        report.patients_per_second,
        threads,
        single.map_or(String::new(), |s| {
            let parts = report.single_patient_timings.as_ref().map_or(String::new(), |t| {
                format!(
                    " (encrypt {:.0}, infer {:.0}, sanitize {:.0}, release {:.0} ms)",
                    t.encrypt_ms, t.infer_ms, t.sanitize_ms, t.release_ms
                )
            });
            let range = report.single_patient_latency_range_ms.map_or(String::new(), |(lo, hi)| {
                format!(", range {lo:.0}-{hi:.0} ms over {LATENCY_RUNS} runs")
            });
            format!("; a single patient (block layout) takes {s:.0} ms end to end (median{range}){parts}")
        })
    ));
    Ok(report)
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or("n/a".to_string(), |x| format!("{x:.3}"))
}

fn top_two_gap(s: &[f64]) -> f64 {
    let mut v = s.to_vec();
    v.sort_by(|a, b| b.total_cmp(a));
    match v.as_slice() {
        [a, b, ..] => a - b,
        _ => f64::INFINITY,
    }
}

/// Human-readable summary lines are printed as they happen; this renders the final JSON.
pub fn to_json(r: &DemoReport) -> Result<String, CliError> {
    serde_json::to_string_pretty(r).map_err(|e| CliError::bad_input("demo report", e))
}
