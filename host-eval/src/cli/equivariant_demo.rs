//! `host-eval demo --arch equivariant`: the rotation-invariant model end to end, every role in
//! one process, measured.
//!
//! 1. **Data**: the built-in phantoms (optionally tilted, `--tilt DEG`) or a MedMNIST `.npz`;
//!    every scan -> 4 intensity shells and 3 principal axes (`equivariant::CHANNELS`).
//! 2. **Vendor, training**: one layer of 8 channels without gates (`EquivariantConfig`), what
//!    `private-n15` evaluates with room for the circuit-private flood
//!    (`clifhe_std::gnn::equivariant_encrypted`). The public input domain: each channel's
//!    grade norms over the training and validation scans, with a 25% margin (`DOMAIN_MARGIN`, as
//!    `train --arch equivariant` records it).
//! 3. **Hospital**: keys; the test patients' channels clamped into the domain (a
//!    rotation-invariant clamp) and encrypted, one ciphertext per present blade of each channel,
//!    patient p in slot p.
//! 4. **Vendor**: the encrypted network (ciphertext x ciphertext geometric products) and
//!    sanitisation with the proven noise bound (two mask passes, flood at s bits).
//! 5. **Hospital**: the flooded argmax release.
//! 6. With `--single-patient-latency`: one test patient end to end in the block layout
//!    (`clifhe_std::gnn::equivariant_blocks`: every channel of a few patients in one
//!    ciphertext, 2 relinearizations and a few rotations), after the hospital's rotation keys and
//!    the vendor's weight plaintexts (once per key set and model, timed apart).
//!
//! As in the GNN demo, the vendor's scores are also decrypted before sanitisation, in this
//! process only, to report how close they are to the plaintext model.

use super::demo::{argmax, DemoOptions, Timings};
use super::equivariant::{labelled_channels, Architecture, LabelledChannels};
use super::protocol::TrainSource;
use super::report::Outcomes;
use super::CliError;
use clifhe_core::ciphertext::CiphertextOwned;
use clifhe_core::encrypt::{encrypt_pk_expanded, ExpandedPublicA, Plaintext};
use clifhe_core::{Multivector, Params, PublicKey, SecretKey};
use clifhe_std::ga::{pack, Layout};
use clifhe_std::gnn::equivariant::EquivariantNet;
use clifhe_std::gnn::equivariant_blocks as blocks;
use clifhe_std::gnn::equivariant_encrypted::{evaluate, fitting_policy, EquivariantReport, InputBounds, ScalePolicy};
use clifhe_std::gnn::equivariant_policy::DOMAIN_MARGIN;
use clifhe_std::gnn::equivariant_train::{train_equivariant, with_constant_channel, EquivariantConfig};
use clifhe_std::gnn::{balanced_accuracy, ChannelLogisticRegression, Metrics};
use clifhe_std::privacy::{sanitize, Release, ReleasePolicy, Releaser, ResultLayout, SanitizeConfig};
use clifhe_std::{EvalContext, Evaluator, GaloisKeys, RelinearizationKey};
use rand_chacha::rand_core::{OsRng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::Serialize;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

/// Bits below the score unit that the flood's standard deviation must stay (2^-12).
const FLOOD_PRECISION_BITS: f64 = 12.0;

/// The machine-readable result (`--json`).
#[derive(Clone, Debug, Serialize)]
pub struct EquivariantDemoReport {
    pub arch: Architecture,
    pub dataset: String,
    pub preset: String,
    pub classes: usize,
    pub class_names: Vec<String>,
    pub train_samples: usize,
    pub patients: usize,
    pub parameters: usize,
    /// Test scans that the public input domain clamped.
    pub clamped: usize,
    pub plaintext_accuracy: f64,
    pub plaintext_balanced_accuracy: f64,
    pub plaintext_auc: Option<f64>,
    /// Logistic regression on the same channel coefficients (the linear baseline), test AUC.
    pub baseline_logistic_auc: Option<f64>,
    pub encrypted_accuracy: f64,
    pub balanced_accuracy: f64,
    pub argmax_agreement: f64,
    pub max_abs_score_error: f64,
    pub input_ciphertexts: usize,
    pub relinearizations: usize,
    pub input_level: usize,
    pub input_scale_log2: f64,
    pub output_level: usize,
    pub output_scale_log2: f64,
    pub score_bound: f64,
    pub noise_bound_relative_log2: f64,
    pub vendor_flood_log2: u32,
    pub statistical_security: u32,
    pub train_ms: f64,
    pub keygen_ms: f64,
    pub encrypt_ms: f64,
    pub infer_ms: f64,
    pub sanitize_ms: f64,
    pub release_ms: f64,
    /// Capacity of one batch over the evaluation time: full-batch throughput.
    pub patients_per_second_full_batch: f64,
    /// One patient end to end in the block layout (`--single-patient-latency`).
    pub single_patient: Option<SinglePatient>,
    pub threads: usize,
    #[serde(skip)]
    pub outcomes: Outcomes,
}

/// One patient through the block layout: the one-off setup and the end-to-end phases.
#[derive(Clone, Debug, Serialize)]
pub struct SinglePatient {
    /// Patients one block ciphertext holds.
    pub block_capacity: usize,
    pub input_ciphertexts: usize,
    pub relinearizations: usize,
    pub rotations: usize,
    pub input_level: usize,
    pub input_scale_log2: f64,
    pub output_level: usize,
    pub noise_bound_relative_log2: f64,
    /// The rotation keys and weight plaintexts (once per key set and model), then the patient's
    /// phases.
    pub timings: Timings,
    /// Encrypt + evaluate + sanitise + release.
    pub end_to_end_ms: f64,
    /// Whether the released class equals the plaintext model's.
    pub argmax_equal: bool,
}

/// Step 6 of the module docs: `patient` (clamped) end to end in the block layout.
#[allow(clippy::too_many_arguments)]
fn single_patient<R: RngCore + rand_chacha::rand_core::CryptoRng + Send>(
    ectx: &EvalContext,
    keys: (&SecretKey<Vec<i8>>, &PublicKey<Vec<u64>>, &RelinearizationKey),
    net: &EquivariantNet,
    bounds: &InputBounds,
    classes: usize,
    statistical_security: u32,
    patient: &[Multivector],
    rng: &mut R,
) -> Result<SinglePatient, CliError> {
    let (sk, pk, rlk) = keys;
    let params = *ectx.params();
    let layout = blocks::BlockLayout::new(&params, net)?;
    let (policy, plan) = blocks::fitting_policy(&params, net, bounds, statistical_security, FLOOD_PRECISION_BITS)?;
    let t = Instant::now();
    let gks = GaloisKeys::for_rotations(ectx, sk, &layout.rotation_steps(), false, rng)?;
    let galois_keygen_ms = t.elapsed().as_secs_f64() * 1e3;
    let ev = Evaluator::new(ectx);
    let t = Instant::now();
    let constants = blocks::BlockConstants::new(&ev, net, bounds, &policy)?;
    let block_setup_ms = t.elapsed().as_secs_f64() * 1e3;

    let start = Instant::now();
    let group = [patient.to_vec()];
    let cts = blocks::encrypt_block_inputs(ectx, pk, &layout, &policy, &group, rng)?;
    let encrypt_ms = start.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let (scores, report) = blocks::evaluate(&ev, rlk, &gks, net, bounds, &policy, &constants, cts)?;
    let infer_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let mut scfg = SanitizeConfig::new(report.per_coefficient_bound);
    scfg.statistical_security = statistical_security;
    scfg.used_slots = Some(layout.used_slots(1, classes));
    scfg.value_bound = Some(report.score_bound);
    scfg.mask_passes = 2;
    let sanitized = sanitize(ectx, pk, &scores, &scfg, rng)?;
    let sanitize_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let mut policy_r = ReleasePolicy::argmax(sanitized.release_noise_bound, 1);
    policy_r.statistical_security = statistical_security;
    let released = match Releaser::new(policy_r).decrypt_for_release(
        ectx.core(),
        sk,
        &[&sanitized.ciphertext],
        &layout.result_layout(1, classes),
        rng,
    )? {
        Release::Classes(c) => c,
        Release::Scores(_) => return Err(CliError::bad_input("release", "an argmax release returned scores")),
    };
    let release_ms = t.elapsed().as_secs_f64() * 1e3;
    let end_to_end_ms = start.elapsed().as_secs_f64() * 1e3;
    let want = argmax(&net.scores(&with_constant_channel(patient)));
    Ok(SinglePatient {
        block_capacity: layout.capacity(),
        input_ciphertexts: plan.input_ciphertexts,
        relinearizations: plan.relinearizations,
        rotations: plan.rotations,
        input_level: policy.level(&params),
        input_scale_log2: policy.log_input_scale,
        output_level: plan.output_level,
        noise_bound_relative_log2: plan.noise_bound.log2(),
        timings: Timings {
            galois_keygen_ms,
            block_setup_ms,
            encrypt_ms,
            infer_ms,
            sanitize_ms,
            release_ms,
            ..Timings::default()
        },
        end_to_end_ms,
        argmax_equal: released.first() == Some(&want),
    })
}

/// Per channel, the present blades of `patients` encrypted at the policy's scale.
fn encrypt_channels<R: RngCore + rand_chacha::rand_core::CryptoRng>(
    params: &Params,
    ectx: &EvalContext,
    pk: &PublicKey<Vec<u64>>,
    bounds: &InputBounds,
    policy: &ScalePolicy,
    patients: &[Vec<Multivector>],
    rng: &mut R,
) -> Result<Vec<[Option<CiphertextOwned>; 8]>, CliError> {
    let mut out = Vec::with_capacity(bounds.present.len());
    // One expansion of the key's `a` for every channel's blades.
    let a = ExpandedPublicA::new(params, ectx.q_tables(), pk, policy.level(params))?;
    for (c, present) in bounds.present.iter().enumerate() {
        // Channel c of every patient in the blade-major slot layout (the one host-side packing).
        let coeffs: zeroize::Zeroizing<Vec<[f64; 8]>> =
            zeroize::Zeroizing::new(patients.iter().map(|x| x.get(c).map_or([0.0; 8], Multivector::coeffs)).collect());
        let vectors = pack(params.max_slots(), Layout::BladeMajor { stride: 1 }, 0, &coeffs)?;
        let mut blades: [Option<CiphertextOwned>; 8] = Default::default();
        for ((blade, v), _) in blades.iter_mut().zip(&vectors).zip(present).filter(|(_, p)| **p) {
            let pt = Plaintext::encode_real(params, v, policy.log_input_scale.exp2())?;
            *blade = Some(encrypt_pk_expanded(
                params,
                ectx.q_tables(),
                pk,
                &a,
                &pt,
                policy.level(params),
                rng,
            )?);
        }
        out.push(blades);
    }
    Ok(out)
}

/// Runs the demo (module docs).
pub fn run(opts: &DemoOptions, max_tilt_deg: f64, log: &mut dyn FnMut(&str)) -> Result<EquivariantDemoReport, CliError> {
    let source = match &opts.dataset {
        Some(p) => TrainSource::Medmnist(p.clone()),
        None => TrainSource::Phantoms {
            per_class: opts.per_class,
            max_tilt_deg,
        },
    };
    let LabelledChannels {
        class_names,
        train,
        val,
        test,
        source,
        ..
    } = labelled_channels(&source, opts.seed)?;
    let classes = class_names.len();
    for (name, split) in [("train", &train), ("validation", &val), ("test", &test)] {
        if split.0.is_empty() {
            return Err(CliError::bad_input(
                &source,
                format!("the {name} split is empty (the built-in phantoms need --per-class 7 or more)"),
            ));
        }
    }
    log(&format!(
        "[data]     {source}: {} train, {} validation, {} test scans -> 4 intensity shells + 3 principal axes + interior depth each",
        train.0.len(),
        val.0.len(),
        test.0.len()
    ));
    let t = Instant::now();
    let cfg = EquivariantConfig::circuit_private(opts.seed);
    let (net, rep) = train_equivariant(&train.0, &train.1, Some((&val.0, &val.1)), classes, &cfg)?;
    let train_ms = t.elapsed().as_secs_f64() * 1e3;
    let seen: Vec<Vec<Multivector>> = train.0.iter().chain(&val.0).cloned().collect();
    let bounds = InputBounds::covering(&seen, DOMAIN_MARGIN);
    let clamped: Vec<Vec<Multivector>> = test.0.iter().map(|x| bounds.clamp(x)).collect();
    let changed = clamped.iter().zip(&test.0).filter(|(a, b)| a != b).count();
    let want: Vec<Vec<f64>> = clamped.iter().map(|x| net.scores(&with_constant_channel(x))).collect();
    let plain = Metrics::from_scores(&want, &test.1, classes)?;
    let lr = ChannelLogisticRegression::train(&train.0, &train.1, classes, 1e-3, true, 2000)?;
    let base = Metrics::from_scores(&clamped.iter().map(|x| lr.scores(x)).collect::<Vec<_>>(), &test.1, classes)?;
    let auc_text = |m: &Metrics| m.auc.map_or("-".into(), |a| format!("{a:.3}"));
    log(&format!(
        "[vendor]   trained the equivariant network (1 layer x 8 channels, {} parameters, {} iterations) in {train_ms:.0} ms; \
         plaintext test accuracy {:.3}, balanced {:.3}, AUC {}; logistic regression on the same channels: AUC {}",
        rep.parameters,
        rep.epochs_run,
        plain.accuracy,
        plain.balanced_accuracy,
        auc_text(&plain),
        auc_text(&base)
    ));

    let params = Params::from_name(&opts.preset).ok_or_else(|| CliError::UnknownPreset { name: opts.preset.clone() })?;
    let (policy, analysis): (ScalePolicy, EquivariantReport) =
        fitting_policy(&params, &net, &bounds, opts.statistical_security, FLOOD_PRECISION_BITS)?;
    log(&format!(
        "[vendor]   plan at {}: inputs at 2^{:.0} on level {}; scores at level {} scale 2^{:.0}, |score| <= {:.3e}, proven noise 2^{:.1} of a unit, {} relinearizations",
        params.name(),
        policy.log_input_scale,
        policy.level(&params),
        analysis.output_level,
        analysis.output_scale.log2(),
        analysis.score_bound,
        analysis.noise_bound.log2(),
        analysis.relinearizations
    ));
    if clamped.len() > params.max_slots() {
        return Err(CliError::TooManyPatients {
            patients: clamped.len(),
            first_slot: 0,
            max: params.max_slots(),
        });
    }
    let mut rng = ChaCha20Rng::from_rng(OsRng).map_err(|e| CliError::bad_input("OS random generator", e))?;
    let t = Instant::now();
    let ectx = EvalContext::new(params)?;
    let sk = SecretKey::generate(&params, &mut rng)?;
    let pk = PublicKey::generate(&params, ectx.q_tables(), &sk, &mut rng)?;
    let rlk = RelinearizationKey::generate(&ectx, &sk, &mut rng)?;
    let keygen_ms = t.elapsed().as_secs_f64() * 1e3;

    let t = Instant::now();
    let cts = encrypt_channels(&params, &ectx, &pk, &bounds, &policy, &clamped, &mut rng)?;
    let encrypt_ms = t.elapsed().as_secs_f64() * 1e3;
    let ev = Evaluator::new(&ectx);
    let t = Instant::now();
    let (scores, report) = evaluate(&ev, &rlk, &net, &bounds, &policy, cts)?;
    let infer_ms = t.elapsed().as_secs_f64() * 1e3;
    log(&format!(
        "[vendor]   {} patients, {} input ciphertexts: encrypted evaluation with {} relinearizations in {infer_ms:.0} ms \
         (encryption {encrypt_ms:.0} ms, keys {keygen_ms:.0} ms)",
        clamped.len(),
        report.input_ciphertexts,
        report.relinearizations
    ));
    // Measurement only (module docs): the vendor's scores before sanitisation.
    let mut max_err = 0f64;
    for (c, s) in scores.iter().enumerate() {
        let d = clifhe_core::decrypt::decrypt(ectx.core(), &sk, s)?.decode_real()?;
        for (p, w) in want.iter().enumerate() {
            max_err = max_err.max((d[p] - w[c]).abs());
        }
    }

    let t = Instant::now();
    let mut scfg = SanitizeConfig::new(report.per_coefficient_bound);
    scfg.statistical_security = opts.statistical_security;
    scfg.used_slots = Some((0..params.max_slots()).map(|s| s < clamped.len()).collect());
    scfg.value_bound = Some(report.score_bound);
    scfg.mask_passes = 2;
    let sanitized = scores
        .iter()
        .map(|s| sanitize(&ectx, &pk, s, &scfg, &mut rng))
        .collect::<Result<Vec<_>, _>>()?;
    let sanitize_ms = t.elapsed().as_secs_f64() * 1e3;
    let vendor_flood_log2 = sanitized.iter().map(|s| s.flood_log2).max().unwrap_or(0);
    let t = Instant::now();
    let bound = sanitized.iter().map(|s| s.release_noise_bound).fold(0.0, f64::max);
    let mut policy_r = ReleasePolicy::argmax(bound, 1);
    policy_r.statistical_security = opts.statistical_security;
    let mut releaser = Releaser::new(policy_r);
    let refs: Vec<&CiphertextOwned> = sanitized.iter().map(|s| &s.ciphertext).collect();
    let layout = ResultLayout::CiphertextPerClass {
        groups: clamped.len(),
        classes,
    };
    let released = match releaser.decrypt_for_release(ectx.core(), &sk, &refs, &layout, &mut rng)? {
        Release::Classes(c) => c,
        Release::Scores(_) => return Err(CliError::bad_input("release", "an argmax release returned scores")),
    };
    let release_ms = t.elapsed().as_secs_f64() * 1e3;
    let n = clamped.len().max(1) as f64;
    let agree = released.iter().zip(&want).filter(|(r, w)| **r == argmax(w)).count() as f64 / n;
    let acc = released.iter().zip(&test.1).filter(|(r, y)| r == y).count() as f64 / n;
    let bal = balanced_accuracy(&released, &test.1, classes);
    log(&format!(
        "[hospital] released diagnoses: accuracy {acc:.3}, balanced {bal:.3}; argmax agreement with the plaintext model {agree:.4}; \
         max |score error| before sanitisation {max_err:.2e}"
    ));
    log(&format!(
        "[privacy]  s = {}: proven noise 2^{:.1} of the scores' unit at scale 2^{:.0} (level {}), vendor flood 2^{vendor_flood_log2}",
        opts.statistical_security,
        report.noise_bound.log2(),
        report.output_scale.log2(),
        report.output_level
    ));
    let full = params.max_slots() as f64 / (infer_ms / 1e3);
    log(&format!(
        "[timing]   evaluation of one batch ({} slots) in {infer_ms:.0} ms: {full:.0} patients/s at full batches on {} thread(s)",
        params.max_slots(),
        rayon::current_num_threads()
    ));
    let single = match (opts.single_patient_latency, clamped.first()) {
        (true, Some(patient)) => {
            let s = single_patient(
                &ectx,
                (&sk, &pk, &rlk),
                &net,
                &bounds,
                classes,
                opts.statistical_security,
                patient,
                &mut rng,
            )?;
            log(&format!(
                "[timing]   one patient in the block layout ({} per ciphertext, {} input ciphertexts, {} relinearizations, {} rotations, \
                 inputs at 2^{:.0} on level {}, proven noise 2^{:.1}): {:.0} ms end to end (encrypt {:.0}, evaluate {:.0}, \
                 sanitise {:.0}, release {:.0}); released class {} the plaintext model's; once per key set and model: \
                 rotation keys {:.0} ms, weight plaintexts {:.0} ms",
                s.block_capacity,
                s.input_ciphertexts,
                s.relinearizations,
                s.rotations,
                s.input_scale_log2,
                s.input_level,
                s.noise_bound_relative_log2,
                s.end_to_end_ms,
                s.timings.encrypt_ms,
                s.timings.infer_ms,
                s.timings.sanitize_ms,
                s.timings.release_ms,
                if s.argmax_equal { "equals" } else { "DIFFERS from" },
                s.timings.galois_keygen_ms,
                s.timings.block_setup_ms
            ));
            Some(s)
        }
        _ => None,
    };
    Ok(EquivariantDemoReport {
        arch: Architecture::Equivariant,
        dataset: source,
        preset: params.name().to_string(),
        classes,
        class_names: class_names.clone(),
        train_samples: train.0.len(),
        patients: clamped.len(),
        parameters: rep.parameters,
        clamped: changed,
        plaintext_accuracy: plain.accuracy,
        plaintext_balanced_accuracy: plain.balanced_accuracy,
        plaintext_auc: plain.auc,
        baseline_logistic_auc: base.auc,
        encrypted_accuracy: acc,
        balanced_accuracy: bal,
        argmax_agreement: agree,
        max_abs_score_error: max_err,
        input_ciphertexts: report.input_ciphertexts,
        relinearizations: report.relinearizations,
        input_level: policy.level(&params),
        input_scale_log2: policy.log_input_scale,
        output_level: report.output_level,
        output_scale_log2: report.output_scale.log2(),
        score_bound: report.score_bound,
        noise_bound_relative_log2: report.noise_bound.log2(),
        vendor_flood_log2,
        statistical_security: opts.statistical_security,
        train_ms,
        keygen_ms,
        encrypt_ms,
        infer_ms,
        sanitize_ms,
        release_ms,
        patients_per_second_full_batch: full,
        single_patient: single,
        threads: rayon::current_num_threads(),
        outcomes: Outcomes {
            class_names,
            labels: test.1.clone(),
            scores: want,
            released,
        },
    })
}

/// The CLI wrapper: narrative on stderr (or one JSON object on stdout), the report files.
pub fn run_cli(
    opts: &DemoOptions,
    max_tilt_deg: f64,
    report_dir: Option<&Path>,
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CliError> {
    let mut log = |line: &str| {
        if !json {
            let _ = writeln!(err, "{line}");
        }
    };
    let r = run(opts, max_tilt_deg, &mut log)?;
    if let Some(dir) = report_dir {
        let title = format!("{} - equivariant model - {}", r.dataset, r.preset);
        let files = super::report::write(dir, &title, &r.outcomes)?;
        log(&format!("[report]   {} and {}", files.png.display(), files.json.display()));
    }
    if json {
        let text = serde_json::to_string_pretty(&r).map_err(|e| CliError::bad_input("demo", e))?;
        writeln!(out, "{text}").map_err(|e| CliError::io("standard output", "write", e))?;
    }
    Ok(())
}
