//! `encrypt`: features of one or more patients -> one ciphertext file.
//!
//! Layout (DESIGN section 6, interleaved): a full-slot encoding of N/2 slots, patient p's
//! component k in slot 8p + k, zeros elsewhere, so a gateway's single-patient ciphertexts for
//! distinct patient slots add up to a batch at the vendor without any rotation.

use super::error::CliError;
use super::fsio;
use super::inputs::{load_inputs, Patient};
use super::keyset::KeySet;
use clifhe_core::context::Context;
use clifhe_core::encrypt::{encrypt_pk, encrypt_sk_seeded, Plaintext};
use clifhe_core::params::log2_u64;
use clifhe_core::wire;
use clifhe_core::Params;
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
}

#[derive(Clone, Debug)]
pub struct EncryptReport {
    pub preset: &'static str,
    pub mode: Mode,
    pub level: usize,
    pub first_slot: usize,
    pub patients: Vec<Patient>,
    pub out: PathBuf,
    pub bytes: usize,
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

/// Places the patients into a full slot vector (patient data: wiped on drop).
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
    let mut values = Zeroizing::new(vec![0f64; params.max_slots()]);
    for (block, patient) in values.chunks_exact_mut(8).skip(first_slot).zip(patients) {
        block.copy_from_slice(&patient.features);
    }
    Ok(values)
}

pub fn encrypt(opts: &EncryptOptions) -> Result<EncryptReport, CliError> {
    let keys = KeySet::open(&opts.keys)?;
    let params = keys.params;
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
    let patients = load_inputs(&opts.inputs)?;
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
    fsio::write_atomic(&opts.out, &bytes)?;
    Ok(EncryptReport {
        preset: params.name(),
        mode: opts.mode,
        level,
        first_slot: opts.slot,
        patients,
        out: opts.out.clone(),
        bytes: bytes.len(),
    })
}

/// One-paragraph summary for the terminal (no feature values: they are patient data).
pub fn summary(r: &EncryptReport) -> String {
    let last = r.first_slot + r.patients.len() - 1;
    let slots = if r.patients.len() == 1 {
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
        r.patients.len(),
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
