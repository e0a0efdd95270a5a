//! The protocol steps on files, each a call of the function its `host-eval` subcommand calls
//! (`host_eval::cli::{keyset, protocol, profile, encrypt}`); reports are returned as the JSON
//! the subcommand prints with `--json`.

use crate::errors::{run, to_py, InputError};
use crate::model::rows;
use host_eval::cli::device_enroll as enrolled;
use host_eval::cli::encrypt::{self, EncryptOptions, Mode};
use host_eval::cli::inputs::Patient;
use host_eval::cli::keyset::{self, KeyRandomness, KeygenOptions};
use host_eval::cli::protocol::{self as proto, InferInput, InferOptions};
use host_eval::cli::public::PublicKeySet;
use host_eval::cli::CliError;
use numpy::{PyReadonlyArray2, PyReadonlyArray3};
use pyo3::prelude::*;
use std::path::PathBuf;

fn json(v: &impl serde::Serialize) -> PyResult<String> {
    serde_json::to_string(v).map_err(|e| InputError::new_err(e.to_string()))
}

/// `host-eval keygen --preset PRESET --out DIR [--force] [--rotate] [--leakage-budget-bits B]`.
#[pyfunction]
#[pyo3(signature = (keys_dir, preset, force, rotate, leakage_budget_bits))]
fn keygen(
    py: Python<'_>,
    keys_dir: PathBuf,
    preset: String,
    force: bool,
    rotate: bool,
    leakage_budget_bits: Option<u64>,
) -> PyResult<String> {
    let r = run(py, || {
        let opts = KeygenOptions {
            force,
            rotate,
            leakage_budget_bits,
        };
        keyset::keygen(&preset, &keys_dir, opts, KeyRandomness::Os).map_err(to_py)
    })?;
    json(&serde_json::json!({
        "dir": r.dir,
        "keyset": r.meta,
        "leakage_budget_bits": r.budget_bits,
        "public_bundle": r.bundle,
    }))
}

/// `host-eval evalkeys --keys DIR [--relin-only] [--merge-patients P] [--profile PROFILE]`.
#[pyfunction]
#[pyo3(signature = (keys_dir, relin_only, merge_patients, profile))]
fn evalkeys(
    py: Python<'_>,
    keys_dir: PathBuf,
    relin_only: bool,
    merge_patients: Option<usize>,
    profile: Option<PathBuf>,
) -> PyResult<String> {
    let (count, bytes, bundle) = run(py, || {
        proto::evalkeys(&keys_dir, merge_patients, relin_only && profile.is_none(), profile.as_deref()).map_err(to_py)
    })?;
    json(&serde_json::json!({
        "keys": count,
        "bytes": bytes,
        "eval_dir": keys_dir.join("eval"),
        "public_bundle": bundle,
    }))
}

/// `host-eval profile --model MODEL --keys KEYS --out OUT [--no-flooding] [--layout L]`.
#[pyfunction]
#[pyo3(signature = (model, keys, out, no_flooding, layout))]
fn profile(py: Python<'_>, model: PathBuf, keys: PathBuf, out: PathBuf, no_flooding: bool, layout: &str) -> PyResult<String> {
    let layout = batch_layout(layout)?;
    let p = run(py, || {
        let params = PublicKeySet::open(&keys).map_err(to_py)?.params;
        host_eval::cli::profile::write_profile(&model, &params, !no_flooding, layout, &out).map_err(to_py)
    })?;
    json(&p)
}

/// A profile's batch layout by its name (`profile --layout`).
pub(crate) fn batch_layout(name: &str) -> PyResult<clifhe_std::protocol::BatchLayout> {
    match name {
        "blade-major" => Ok(clifhe_std::protocol::BatchLayout::BladeMajor),
        "blocks" => Ok(clifhe_std::protocol::BatchLayout::Blocks),
        other => Err(InputError::new_err(format!("layout {other:?}: use \"blade-major\" or \"blocks\""))),
    }
}

/// The options of `encrypt --profile` (patients from slot 0, the profile's level).
fn profile_options(keys: PathBuf, profile: PathBuf, inputs: Vec<String>, out: PathBuf, mode_name: &str) -> PyResult<EncryptOptions> {
    Ok(EncryptOptions {
        keys,
        inputs,
        out,
        mode: mode(mode_name)?,
        level: None,
        slot: 0,
        profile: Some(profile),
    })
}

fn mode(name: &str) -> PyResult<Mode> {
    match name {
        "pk" => Ok(Mode::Pk),
        "seeded" => Ok(Mode::Seeded),
        other => Err(InputError::new_err(format!("mode '{other}': expected 'pk' or 'seeded'"))),
    }
}

/// `host-eval encrypt --keys DIR --profile PROFILE --out OUT` on feature rows (n, 8) computed by
/// the caller: the same steps and files (batch and `OUT.record.json`) as the command.
#[pyfunction]
#[pyo3(signature = (keys_dir, profile, features, out, mode_name))]
fn encrypt_features(
    py: Python<'_>,
    keys_dir: PathBuf,
    profile: PathBuf,
    features: PyReadonlyArray2<'_, f64>,
    out: PathBuf,
    mode_name: &str,
) -> PyResult<String> {
    let patients: Vec<Patient> = rows(&features)?
        .into_iter()
        .enumerate()
        .map(|(i, features)| Patient {
            source: format!("array[{i}]"),
            features,
        })
        .collect();
    let opts = profile_options(keys_dir, profile, Vec::new(), out, mode_name)?;
    let r = run(py, || {
        encrypt::encrypt_with(&opts, |_| {
            if patients.is_empty() {
                return Err(CliError::BadInput {
                    input: "features".into(),
                    reason: "no patients".into(),
                });
            }
            Ok(patients)
        })
        .map_err(to_py)
    })?;
    json(&encrypt::summary_json(&r))
}

/// `host-eval encrypt --keys DIR --profile PROFILE --out OUT` on channel arrays (n, K, 8)
/// computed by the caller (`EquivariantModel.channels`), for an equivariant model's profile:
/// the same steps and files as the command on scans.
#[pyfunction]
#[pyo3(signature = (keys_dir, profile, channels, out, mode_name))]
fn encrypt_channels(
    py: Python<'_>,
    keys_dir: PathBuf,
    profile: PathBuf,
    channels: PyReadonlyArray3<'_, f64>,
    out: PathBuf,
    mode_name: &str,
) -> PyResult<String> {
    let patients: Vec<_> = crate::equivariant::channel_arrays(channels.as_array())?
        .into_iter()
        .enumerate()
        .map(|(p, xs)| (format!("array[{p}]"), xs))
        .collect();
    let opts = profile_options(keys_dir, profile, Vec::new(), out, mode_name)?;
    let r = run(py, || encrypt::encrypt_channels(&opts, patients).map_err(to_py))?;
    json(&encrypt::summary_json(&r))
}

/// `host-eval encrypt --keys DIR --profile PROFILE --input SPEC... --out OUT`: scans, dataset
/// samples or features files, exactly as the command reads them.
#[pyfunction]
#[pyo3(signature = (keys_dir, profile, inputs, out, mode_name))]
fn encrypt_inputs(
    py: Python<'_>,
    keys_dir: PathBuf,
    profile: PathBuf,
    inputs: Vec<String>,
    out: PathBuf,
    mode_name: &str,
) -> PyResult<String> {
    let opts = profile_options(keys_dir, profile, inputs, out, mode_name)?;
    let r = run(py, || encrypt::encrypt(&opts).map_err(to_py))?;
    json(&encrypt::summary_json(&r))
}

/// `host-eval infer --model MODEL --keys KEYS --input BATCH --out DIR`: the vendor's encrypted
/// inference (flooded unless `no_flooding`); returns the scores manifest.
#[pyfunction]
#[pyo3(signature = (model, keys, batch, out, statistical_security, no_flooding, patients))]
#[allow(clippy::too_many_arguments)]
fn infer(
    py: Python<'_>,
    model: PathBuf,
    keys: PathBuf,
    batch: PathBuf,
    out: PathBuf,
    statistical_security: u32,
    no_flooding: bool,
    patients: Option<usize>,
) -> PyResult<String> {
    let o = InferOptions {
        model,
        keys,
        input: InferInput::Batch(batch),
        out,
        patients,
        statistical_security,
        no_flooding,
    };
    let m = run(py, || proto::infer(&o).map_err(to_py))?;
    json(&m)
}

/// `host-eval device-enroll --keys DIR --profile PROFILE --out BUNDLE --switch-key FILE --json`:
/// a device key for one device (its firmware bundle) and the vendor's switching key.
#[pyfunction]
fn device_enroll(py: Python<'_>, keys_dir: PathBuf, profile: PathBuf, out: PathBuf, switch_key: PathBuf) -> PyResult<String> {
    let r = run(py, || enrolled::enroll(&keys_dir, &profile, &out, &switch_key).map_err(to_py))?;
    json(&r)
}

/// `host-eval device-encrypt --bundle BUNDLE --out DIR` on feature rows (n, 8) computed by the
/// caller: the enrolled device's own encryption path, run on the host.
#[pyfunction]
fn device_encrypt(py: Python<'_>, bundle: PathBuf, features: PyReadonlyArray2<'_, f64>, out: PathBuf) -> PyResult<String> {
    let patients: Vec<Patient> = rows(&features)?
        .into_iter()
        .enumerate()
        .map(|(i, features)| Patient {
            source: format!("array[{i}]"),
            features,
        })
        .collect();
    let r = run(py, || enrolled::device_encrypt_with(&bundle, &out, || Ok(patients)).map_err(to_py))?;
    json(&r)
}

/// `host-eval device-record --keys DIR --profile PROFILE --device-ciphertexts FILES --out RECORD`.
#[pyfunction]
fn device_record(py: Python<'_>, keys_dir: PathBuf, profile: PathBuf, ciphertexts: Vec<PathBuf>, out: PathBuf) -> PyResult<String> {
    let r = run(py, || {
        enrolled::device_record(&keys_dir, &profile, &ciphertexts, &out).map_err(to_py)
    })?;
    json(&r)
}

/// `host-eval infer --model MODEL --keys KEYS --device-ciphertexts FILES --device-key FILE --out
/// DIR`: the vendor's circuit-private inference on an enrolled device's ciphertexts.
#[pyfunction]
#[pyo3(signature = (model, keys, ciphertexts, switch_key, out, statistical_security))]
fn infer_devices(
    py: Python<'_>,
    model: PathBuf,
    keys: PathBuf,
    ciphertexts: Vec<PathBuf>,
    switch_key: PathBuf,
    out: PathBuf,
    statistical_security: u32,
) -> PyResult<String> {
    let o = InferOptions {
        model,
        keys,
        input: InferInput::EnrolledDevice {
            files: ciphertexts,
            switch_key,
        },
        out,
        patients: None,
        statistical_security,
        no_flooding: false,
    };
    let m = run(py, || proto::infer(&o).map_err(to_py))?;
    json(&m)
}

/// `host-eval release --keys DIR --scores SCORES --record RECORD [--rounded D]`: the hospital's
/// flooded, budgeted release (the key set's leakage ledger is charged first).
#[pyfunction]
#[pyo3(signature = (keys_dir, scores_dir, record, statistical_security, rounded))]
fn release(
    py: Python<'_>,
    keys_dir: PathBuf,
    scores_dir: PathBuf,
    record: PathBuf,
    statistical_security: u32,
    rounded: Option<u32>,
) -> PyResult<String> {
    if rounded.is_some_and(|d| !(1..=6).contains(&d)) {
        return Err(InputError::new_err("rounded: 1 to 6 decimals"));
    }
    let r = run(py, || {
        proto::release(&keys_dir, &scores_dir, &record, statistical_security, rounded).map_err(to_py)
    })?;
    json(&serde_json::json!({
        "predictions": r.predictions,
        "labels": r.labels,
        "cost_bits": r.cost_bits,
        "remaining_bits": r.remaining_bits,
        "budget_bits": r.budget_bits,
    }))
}

/// `host-eval predict --model MODEL --input SPEC... --json`.
#[pyfunction]
fn predict_inputs(py: Python<'_>, model: PathBuf, inputs: Vec<String>) -> PyResult<String> {
    let r = run(py, || proto::predict(&model, &inputs).map_err(to_py))?;
    json(&r)
}

/// `host-eval train --out MODEL --json` from one source: `--dataset NPZ`, `--scans DIR --labels
/// CSV --pipeline P`, `--features CSV --labels CSV [--pipeline P]`, or the built-in phantoms
/// (optionally tilted); `arch` as `--arch` (`gnn` or `equivariant`).
#[pyfunction]
#[pyo3(signature = (out, dataset, per_class, seed, scans=None, features=None, labels=None, pipeline=None, arch="gnn", max_tilt_deg=0.0, circuit_private=false))]
#[allow(clippy::too_many_arguments)]
fn train(
    py: Python<'_>,
    out: PathBuf,
    dataset: Option<PathBuf>,
    per_class: usize,
    seed: u64,
    scans: Option<PathBuf>,
    features: Option<PathBuf>,
    labels: Option<PathBuf>,
    pipeline: Option<String>,
    arch: &str,
    max_tilt_deg: f64,
    circuit_private: bool,
) -> PyResult<String> {
    let equivariant = match arch {
        "gnn" => false,
        "equivariant" => true,
        other => return Err(InputError::new_err(format!("unknown architecture {other:?} (gnn or equivariant)"))),
    };
    if !(0.0..=180.0).contains(&max_tilt_deg) {
        return Err(InputError::new_err("max_tilt_deg is an angle in degrees from 0 to 180"));
    }
    if circuit_private && !equivariant {
        return Err(InputError::new_err(
            "circuit_private chooses the equivariant network's shape (arch=\"equivariant\")",
        ));
    }
    let s = run(py, || {
        let pipeline = super::pipeline_of(pipeline.as_deref())?;
        let source = match (dataset, scans, features, labels) {
            (Some(p), None, None, None) if pipeline.is_none() => proto::TrainSource::Medmnist(p),
            (None, Some(dir), None, Some(labels)) => proto::TrainSource::Scans {
                dir,
                labels,
                pipeline: pipeline.ok_or_else(|| InputError::new_err("scans need a pipeline"))?,
            },
            (None, None, Some(features), Some(labels)) => proto::TrainSource::Features {
                features,
                labels,
                pipeline,
            },
            (None, None, None, None) if pipeline.is_none() => proto::TrainSource::Phantoms { per_class, max_tilt_deg },
            _ => {
                return Err(InputError::new_err(
                    "train from one source: dataset, scans + labels + pipeline, features + labels [+ pipeline], or none (phantoms)",
                ))
            }
        };
        if max_tilt_deg > 0.0 && !matches!(source, proto::TrainSource::Phantoms { .. }) {
            return Err(InputError::new_err("max_tilt_deg tilts the built-in phantoms only"));
        }
        if equivariant {
            host_eval::cli::equivariant::train(&source, seed, circuit_private, &out)
                .map_err(to_py)
                .and_then(|s| json(&s))
        } else {
            proto::train(&source, seed, &out).map_err(to_py).and_then(|s| json(&s))
        }
    })?;
    Ok(s)
}

/// The parameter presets (`host-eval presets --json`).
#[pyfunction]
fn presets() -> PyResult<String> {
    json(&host_eval::cli::presets::all())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(keygen, m)?)?;
    m.add_function(wrap_pyfunction!(evalkeys, m)?)?;
    m.add_function(wrap_pyfunction!(profile, m)?)?;
    m.add_function(wrap_pyfunction!(encrypt_features, m)?)?;
    m.add_function(wrap_pyfunction!(encrypt_inputs, m)?)?;
    m.add_function(wrap_pyfunction!(encrypt_channels, m)?)?;
    m.add_function(wrap_pyfunction!(infer, m)?)?;
    m.add_function(wrap_pyfunction!(release, m)?)?;
    m.add_function(wrap_pyfunction!(device_enroll, m)?)?;
    m.add_function(wrap_pyfunction!(device_encrypt, m)?)?;
    m.add_function(wrap_pyfunction!(device_record, m)?)?;
    m.add_function(wrap_pyfunction!(infer_devices, m)?)?;
    m.add_function(wrap_pyfunction!(predict_inputs, m)?)?;
    m.add_function(wrap_pyfunction!(train, m)?)?;
    m.add_function(wrap_pyfunction!(presets, m)?)?;
    m.add_function(wrap_pyfunction!(crate::model::input_box_from_samples, m)?)?;
    Ok(())
}
