//! `encrypt`: features of one or more patients -> one ciphertext file.
//!
//! Two layouts (docs/architecture.md §6):
//! - **interleaved** (default): a full-slot encoding of N/2 slots, patient p's component k in
//!   slot 8p + k, zeros elsewhere, at the preset's scale, so a gateway's single-patient
//!   ciphertexts for distinct patient slots add up to a batch at the vendor without any
//!   rotation. The vendor's `infer` evaluates it only without flooding (not circuit-private).
//! - **box-encoded blade-major** (`--profile`, the vendor's public input profile of its
//!   model): 8 ciphertexts, blade k of patient p in slot p of ciphertext k, features clamped
//!   into the model's input box and encoded as (x - center) / half_width, at the level and
//!   scale the profile names (2^80 for a circuit-private result). Up to N/2 patients; the file
//!   is a batch file ([`clifhe_std::protocol::batch`]). This is what a flooded, circuit-private `infer`
//!   needs.
//! - **channel batch** (`--profile` of an equivariant model): each scan through the profile's
//!   preprocessing to its channel multivectors (`ChannelSpec`), clamped into the profile's
//!   public domain, one ciphertext per present blade of each channel, patient p in slot p, at the
//!   profile's level and scale ([`hospital::encrypt_channels_for_profile`]). Scans and dataset
//!   samples only: the channels need the volume.

use super::error::CliError;
use super::fsio;
use super::inputs::{load_inputs, Patient};
use super::keyset::KeySet;
use super::profile::{read_profile, InputProfile};
use clifhe_core::context::Context;
use clifhe_core::encrypt::{encrypt_pk, encrypt_sk_seeded, Plaintext};
use clifhe_core::params::log2_u64;
use clifhe_core::wire;
use clifhe_core::Params;
use clifhe_std::ga;
use clifhe_std::preprocess::Pipeline;
use clifhe_std::protocol::hospital::{self, EncryptionKey};
use clifhe_std::protocol::profile::ProfileInput;
use clifhe_std::protocol::{BatchLayout, BatchRecord};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// How the ciphertext is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Public-key encryption: needs only `public.key` (a gateway can hold just that).
    Pk,
    /// Seeded secret-key encryption: half the size (c1 travels as a 32-byte seed), but needs
    /// `secret.key`, so only for the hospital's own machines.
    Seeded,
}

impl Mode {
    pub fn describe(self) -> &'static str {
        match self {
            Self::Pk => "public-key",
            Self::Seeded => "seeded secret-key",
        }
    }
}

#[derive(Clone, Debug)]
pub struct EncryptOptions {
    pub keys: PathBuf,
    pub inputs: Vec<String>,
    pub out: PathBuf,
    pub mode: Mode,
    /// Default: the top of the chain.
    pub level: Option<usize>,
    /// Patient slot of the first patient.
    pub slot: usize,
    /// The vendor's input profile (`host-eval profile`): box-encoded blade-major batch.
    pub profile: Option<PathBuf>,
}

#[derive(Clone, Debug)]
pub struct EncryptReport {
    pub preset: &'static str,
    pub mode: Mode,
    pub level: usize,
    pub first_slot: usize,
    /// Where each patient came from (no feature values: they are patient data).
    pub sources: Vec<String>,
    /// Ciphertexts in the file (1, 8, or a channel batch's count).
    pub ciphertexts: usize,
    pub out: PathBuf,
    pub bytes: usize,
    pub layout: BatchLayout,
    /// The batch record written beside a box-encoded batch (`release --record`).
    pub record: Option<PathBuf>,
    pub log2_scale: f64,
    /// Patients outside the profile's input box (clamped into it; flagged in the record).
    pub out_of_box: Vec<usize>,
}

/// Patients one ciphertext holds: N/2 slots, 8 per patient.
pub fn max_patients(params: &Params) -> usize {
    params.max_slots() / 8
}

/// Largest |value| that encrypts at `level` without wrapping modulo Q_level: a quarter of
/// Q_level, over the scale, keeps the coefficients (bounded by the largest slot value times
/// the scale) and the encryption noise well inside (-Q/2, Q/2).
pub fn value_limit(params: &Params, level: usize) -> f64 {
    let log_q: f64 = params.q().iter().take(level + 1).map(|&q| log2_u64(q)).sum();
    (log_q - 2.0 - f64::from(params.log_default_scale())).exp2()
}

/// Places the patients into a full slot vector (patient data: wiped on drop), through the one
/// packing routine [`clifhe_std::ga::pack`].
pub fn pack(params: &Params, patients: &[Patient], first_slot: usize) -> Result<Zeroizing<Vec<f64>>, CliError> {
    let max = max_patients(params);
    if first_slot >= max {
        return Err(CliError::BadSlot { slot: first_slot, max });
    }
    if patients.len() > max - first_slot {
        return Err(CliError::TooManyPatients {
            patients: patients.len(),
            first_slot,
            max,
        });
    }
    let features: Zeroizing<Vec<[f64; 8]>> = Zeroizing::new(patients.iter().map(|p| p.features).collect());
    let mut vectors = ga::pack(params.max_slots(), BatchLayout::Interleaved.ga_layout(), first_slot, &features)?;
    vectors.pop().ok_or_else(|| CliError::bad_input("encrypt", "no slot vector"))
}

/// `host-eval encrypt`: the patients of `opts.inputs` ([`load_inputs`]; for an equivariant
/// model's profile, their channels).
pub fn encrypt(opts: &EncryptOptions) -> Result<EncryptReport, CliError> {
    if let Some(path) = &opts.profile {
        let keys = KeySet::open(&opts.keys)?;
        let profile = read_profile(path, &keys.params)?;
        if let ProfileInput::Channels(input) = &profile.input {
            check_profile_options(opts, &profile)?;
            let patients = super::equivariant::input_channels(&opts.inputs, input.spec, profile.preprocessing.as_ref())?;
            return encrypt_channels_for(opts, &keys, &profile, patients);
        }
    }
    encrypt_with(opts, |pipeline| load_inputs(&opts.inputs, pipeline))
}

/// [`encrypt`] of channels the caller computed (each patient's source and channel
/// multivectors, as the profile's channel spec gives them), for an equivariant model's profile
/// (`opts.profile`; `opts.inputs` is not read): how the Python package encrypts channels
/// through the same steps and files as the command.
pub fn encrypt_channels(opts: &EncryptOptions, patients: Vec<(String, Vec<clifhe_core::Multivector>)>) -> Result<EncryptReport, CliError> {
    let path = opts
        .profile
        .as_ref()
        .ok_or_else(|| CliError::bad_input("--profile", "channels are encrypted for an equivariant model's profile"))?;
    let keys = KeySet::open(&opts.keys)?;
    let profile = read_profile(path, &keys.params)?;
    profile.channels().map_err(|e| CliError::protocol(path, e))?;
    check_profile_options(opts, &profile)?;
    if patients.is_empty() {
        return Err(CliError::bad_input("channels", "no patients"));
    }
    encrypt_channels_for(opts, &keys, &profile, patients)
}

fn check_profile_options(opts: &EncryptOptions, profile: &InputProfile) -> Result<(), CliError> {
    if opts.slot != 0 || opts.level.is_some_and(|l| l != profile.input_level) {
        return Err(CliError::bad_input(
            "--profile",
            "the profile fixes the layout (patients from slot 0) and the level; drop --slot and --level",
        ));
    }
    Ok(())
}

/// The channel batch of an equivariant model's profile (module docs): a thin wrapper over
/// [`hospital::encrypt_channels_for_profile`], with the record beside it as for a GNN batch.
/// `patients`: each patient's source and channels.
fn encrypt_channels_for(
    opts: &EncryptOptions,
    keys: &KeySet,
    profile: &InputProfile,
    patients: Vec<(String, Vec<clifhe_core::Multivector>)>,
) -> Result<EncryptReport, CliError> {
    let params = keys.params;
    let (sources, channels): (Vec<String>, Vec<_>) = patients.into_iter().unzip();
    let ctx = Context::new(params)?;
    let mut rng = super::keyset::os_rng()?;
    let (header, bytes, out_of_box) = match opts.mode {
        Mode::Pk => {
            let pk = keys.public_key()?;
            hospital::encrypt_channels_for_profile(&ctx, profile, EncryptionKey::Public(&pk), &channels, &mut rng)?
        }
        Mode::Seeded => {
            let sk = keys.secret_key()?;
            hospital::encrypt_channels_for_profile(&ctx, profile, EncryptionKey::SecretSeeded(&sk), &channels, &mut rng)?
        }
    };
    drop(channels);
    write_profiled(opts, keys, profile, &header, &bytes, sources, out_of_box)
}

/// Writes a profile's batch and, first, its record (`release` trusts the record instead of the
/// vendor's manifest; a batch on disk always has its record).
fn write_profiled(
    opts: &EncryptOptions,
    keys: &KeySet,
    profile: &InputProfile,
    header: &clifhe_std::protocol::batch::BatchHeader,
    bytes: &[u8],
    sources: Vec<String>,
    out_of_box: Vec<usize>,
) -> Result<EncryptReport, CliError> {
    let mut record = BatchRecord::new(profile, header, bytes, &keys.meta.fingerprint_sha256);
    record.out_of_box = out_of_box.clone();
    let record_path = record_path(&opts.out);
    fsio::write_atomic(&record_path, &record.to_json()?)?;
    fsio::write_atomic(&opts.out, bytes)?;
    Ok(EncryptReport {
        preset: keys.params.name(),
        mode: opts.mode,
        level: profile.input_level,
        first_slot: 0,
        sources,
        ciphertexts: header.encoding.ciphertexts(),
        out: opts.out.clone(),
        bytes: bytes.len(),
        layout: BatchLayout::BladeMajor,
        log2_scale: profile.input_log_scale,
        record: Some(record_path),
        out_of_box,
    })
}

/// [`encrypt`] of the patients `patients` gives (called with the pipeline of the profile, if any,
/// for scans), called once the key set and the layout
/// options have been checked (`opts.inputs` is not read): how a library caller, e.g. the Python
/// package, encrypts features it computed itself through the same steps as the command.
pub fn encrypt_with(
    opts: &EncryptOptions,
    patients: impl FnOnce(Option<&Pipeline>) -> Result<Vec<Patient>, CliError>,
) -> Result<EncryptReport, CliError> {
    let keys = KeySet::open(&opts.keys)?;
    let params = keys.params;
    if let Some(profile) = &opts.profile {
        return encrypt_profiled(opts, &keys, profile, patients);
    }
    let level = opts.level.unwrap_or(params.max_level());
    if level > params.max_level() {
        return Err(CliError::BadLevel {
            level,
            max: params.max_level(),
        });
    }
    if opts.slot >= max_patients(&params) {
        return Err(CliError::BadSlot {
            slot: opts.slot,
            max: max_patients(&params),
        });
    }
    // No model, no recorded pipeline: scans take the legacy rule (an interleaved batch is the
    // --no-flooding path for models of any format).
    let patients = patients(None)?;
    let values = pack(&params, &patients, opts.slot)?;
    let limit = value_limit(&params, level);
    if let Some(&value) = values.iter().find(|v| v.abs() >= limit) {
        return Err(CliError::ValueOutOfRange { value, limit, level });
    }
    let pt = Plaintext::encode_real(&params, &values, params.default_scale())?;
    drop(values);
    let ctx = Context::new(params)?;
    let mut rng = super::keyset::os_rng()?;
    let bytes = match opts.mode {
        Mode::Pk => {
            let pk = keys.public_key()?;
            let ct = encrypt_pk(&params, ctx.q_tables(), &pk, &pt, level, &mut rng)?;
            wire::ciphertext_to_bytes(&params, &ct)
        }
        Mode::Seeded => {
            let sk = keys.secret_key()?;
            let ct = encrypt_sk_seeded(&params, ctx.q_tables(), &sk, &pt, level, &mut rng)?;
            wire::seeded_ciphertext_to_bytes(&params, &ct)
        }
    }
    .map_err(|e| CliError::corrupt(&opts.out, "ciphertext", e))?;
    // The record marks the file as the hospital's own: `decrypt` opens nothing else.
    let record = BatchRecord::interleaved(&params, patients.len(), &bytes, &keys.meta.fingerprint_sha256);
    let record_path = record_path(&opts.out);
    fsio::write_atomic(&record_path, &record.to_json()?)?;
    fsio::write_atomic(&opts.out, &bytes)?;
    Ok(EncryptReport {
        preset: params.name(),
        mode: opts.mode,
        level,
        first_slot: opts.slot,
        sources: patients.into_iter().map(|p| p.source).collect(),
        ciphertexts: 1,
        out: opts.out.clone(),
        bytes: bytes.len(),
        layout: BatchLayout::Interleaved,
        record: Some(record_path),
        log2_scale: params.default_scale().log2(),
        out_of_box: Vec::new(),
    })
}

/// The box-encoded blade-major batch of a profile (module docs): a thin wrapper over
/// [`hospital::encrypt_for_profile`]. The level and the scale come from the profile; `--level`
/// and `--slot` do not apply.
fn encrypt_profiled(
    opts: &EncryptOptions,
    keys: &KeySet,
    profile_path: &Path,
    patients: impl FnOnce(Option<&Pipeline>) -> Result<Vec<Patient>, CliError>,
) -> Result<EncryptReport, CliError> {
    let params = keys.params;
    let profile = read_profile(profile_path, &params)?;
    check_profile_options(opts, &profile)?;
    let patients = patients(profile.preprocessing.as_ref())?;
    let features: Zeroizing<Vec<[f64; 8]>> = Zeroizing::new(patients.iter().map(|p| p.features).collect());
    let ctx = Context::new(params)?;
    let mut rng = super::keyset::os_rng()?;
    let (header, bytes) = match opts.mode {
        Mode::Pk => {
            let pk = keys.public_key()?;
            hospital::encrypt_for_profile(&ctx, &profile, EncryptionKey::Public(&pk), &features, &mut rng)?
        }
        Mode::Seeded => {
            let sk = keys.secret_key()?;
            hospital::encrypt_for_profile(&ctx, &profile, EncryptionKey::SecretSeeded(&sk), &features, &mut rng)?
        }
    };
    let out_of_box = profile.out_of_box(&features);
    drop(features);
    let sources = patients.into_iter().map(|p| p.source).collect();
    write_profiled(opts, keys, &profile, &header, &bytes, sources, out_of_box)
}

/// Where `encrypt --profile` writes the record of the batch at `batch`: `BATCH.record.json`.
pub fn record_path(batch: &Path) -> PathBuf {
    let mut name = batch.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".record.json");
    batch.with_file_name(name)
}

/// One-paragraph summary for the terminal (no feature values: they are patient data).
pub fn summary(r: &EncryptReport) -> String {
    let last = r.first_slot + r.sources.len() - 1;
    if r.layout == BatchLayout::BladeMajor {
        let mut s = format!(
            "encrypted {} patient(s) into a blade-major batch ({} ciphertexts, patient p in slot p): preset {}, {} encryption, level {}, scale 2^{} -> {} ({} bytes); keep its record {} for `release --record`",
            r.sources.len(),
            r.ciphertexts,
            r.preset,
            r.mode.describe(),
            r.level,
            r.log2_scale,
            display(&r.out),
            r.bytes,
            r.record.as_deref().map(display).unwrap_or_default()
        );
        if !r.out_of_box.is_empty() {
            s.push_str(&format!(
                "\nwarning: {} patient(s) outside the model's input box (features clamped into it; their diagnoses will be flagged): {}",
                r.out_of_box.len(),
                index_list(&r.out_of_box)
            ));
        }
        return s;
    }
    let slots = if r.sources.len() == 1 {
        format!(
            "patient slot {} (slots {}..{})",
            r.first_slot,
            8 * r.first_slot,
            8 * r.first_slot + 7
        )
    } else {
        format!(
            "patient slots {}..={last} (slots {}..{})",
            r.first_slot,
            8 * r.first_slot,
            8 * last + 7
        )
    };
    format!(
        "encrypted {} patient(s) into {slots}: preset {}, {} encryption, level {} -> {} ({} bytes)",
        r.sources.len(),
        r.preset,
        r.mode.describe(),
        r.level,
        display(&r.out),
        r.bytes
    )
}

fn display(p: &Path) -> String {
    p.display().to_string()
}

/// [`summary`] as JSON: what was written where, never a feature value (patient data).
pub fn summary_json(r: &EncryptReport) -> serde_json::Value {
    serde_json::json!({
        "preset": r.preset,
        "mode": r.mode.describe(),
        "layout": r.layout,
        "level": r.level,
        "log2_scale": r.log2_scale,
        "patients": r.sources.len(),
        "first_slot": r.first_slot,
        "ciphertexts": r.ciphertexts,
        "sources": r.sources,
        "out": r.out,
        "bytes": r.bytes,
        "record": r.record,
        "out_of_box": r.out_of_box,
    })
}

/// `0, 3, 17` (the first 20, then `... (N in all)`).
pub fn index_list(ix: &[usize]) -> String {
    let shown: Vec<String> = ix.iter().take(20).map(ToString::to_string).collect();
    if ix.len() > 20 {
        format!("{}, ... ({} in all)", shown.join(", "), ix.len())
    } else {
        shown.join(", ")
    }
}
