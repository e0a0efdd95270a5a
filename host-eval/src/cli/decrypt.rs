//! `decrypt`: the hospital's own, local decryption of a ciphertext into per-patient features.
//!
//! The raw decryption ([`clifhe_core::decrypt::DecryptedPlaintext`]) never leaves this
//! function: it is decoded here and dropped (wiped), and only the decoded real slot values of
//! the selected patients are returned for printing on the key holder's terminal. Releasing
//! results to anyone else is a different path (flooded release, docs/architecture.md §8).

use super::error::CliError;
use super::fsio;
use super::inputs::COMPONENTS;
use super::keyset::KeySet;
use clifhe_core::ciphertext::CiphertextOwned;
use clifhe_core::context::Context;
use clifhe_core::decrypt::decrypt as core_decrypt;
use clifhe_core::encode::Complex;
use clifhe_core::params::Params;
use clifhe_std::protocol::batch;
use clifhe_std::protocol::manifest::MANIFEST_FILE;
use clifhe_std::protocol::BatchRecord;
use serde::Serialize;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Largest imaginary part a correct decryption of real data shows. Encryption noise is about
/// 2^-20 of the scale; a ciphertext decrypted under the wrong secret key decodes to values of
/// order Q / scale (2^20 and up), so the gap between the two is wide.
pub const NOISE_LIMIT: f64 = 1.0 / 256.0;

/// Blocks whose largest |component| is below this are treated as empty slots when patients
/// are chosen automatically: fresh noise is around 1e-6.
pub const EMPTY_BLOCK: f64 = 1e-4;

/// Which patients to print.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PatientSelection {
    /// Every patient slot holding a non-zero block.
    Auto,
    All,
    List(Vec<usize>),
}

impl PatientSelection {
    /// `auto`, `all`, `3`, `0..4`, `0..=3`, or a comma list of those.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim() {
            "auto" => return Ok(Self::Auto),
            "all" => return Ok(Self::All),
            _ => {}
        }
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim) {
            let num = |x: &str| x.trim().parse::<usize>().map_err(|_| format!("'{x}' is not a patient index"));
            if let Some((a, b)) = part.split_once("..") {
                let start = num(a)?;
                let end = match b.strip_prefix('=') {
                    Some(b) => num(b)?.saturating_add(1),
                    None => num(b)?,
                };
                if end <= start || end - start > 1 << 16 {
                    return Err(format!("bad patient range '{part}'"));
                }
                out.extend(start..end);
            } else {
                out.push(num(part)?);
            }
        }
        Ok(Self::List(out))
    }
}

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Csv,
}

/// One patient's decrypted features.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PatientRow {
    pub patient: usize,
    pub scalar: f64,
    pub e1: f64,
    pub e2: f64,
    pub e3: f64,
    pub e12: f64,
    pub e13: f64,
    pub e23: f64,
    pub e123: f64,
}

impl PatientRow {
    fn new(patient: usize, f: [f64; 8]) -> Self {
        let [scalar, e1, e2, e3, e12, e13, e23, e123] = f;
        Self {
            patient,
            scalar,
            e1,
            e2,
            e3,
            e12,
            e13,
            e23,
            e123,
        }
    }
    pub fn features(&self) -> [f64; 8] {
        [self.scalar, self.e1, self.e2, self.e3, self.e12, self.e13, self.e23, self.e123]
    }
}

/// The decoded result.
#[derive(Clone, Debug, Serialize)]
pub struct Decrypted {
    pub preset: &'static str,
    pub kind: &'static str,
    pub level: usize,
    pub log2_scale: f64,
    pub slots: usize,
    /// log2 of the largest imaginary part (all of it noise, since inputs are real).
    pub log2_noise: f64,
    pub patients: Vec<PatientRow>,
}

/// Reads a ciphertext file of preset `params`, full or seeded (expanded), with typed errors: a
/// file for another preset is [`CliError::PresetMismatch`], anything unparsable
/// [`CliError::Corrupt`]. Returns the ciphertext and whether it was seeded.
pub fn read_ciphertext(params: &Params, input: &Path) -> Result<(CiphertextOwned, bool), CliError> {
    let bytes = fsio::read(input)?;
    if batch::is_batch(&bytes) {
        return Err(CliError::corrupt(
            input,
            "ciphertext",
            "it is a box-encoded blade-major batch (from `encrypt --profile`), not a single ciphertext",
        ));
    }
    parse_ciphertext(params, &bytes, input)
}

/// [`read_ciphertext`] on bytes already read (`path` names them in errors).
pub fn parse_ciphertext(params: &Params, bytes: &[u8], path: &Path) -> Result<(CiphertextOwned, bool), CliError> {
    batch::parse_ciphertext(params, bytes).map_err(|e| CliError::protocol(path, e))
}

/// Decrypts `input` (a single ciphertext, or a box-encoded batch from `encrypt --profile`)
/// with the key set in `keys` and returns the selected patients' features.
pub fn decrypt(keys: &Path, input: &Path, selection: &PatientSelection, from_device: bool) -> Result<Decrypted, CliError> {
    let keys = KeySet::open(keys)?;
    let params = keys.params;
    if input.join(MANIFEST_FILE).is_file() {
        // The vendor's scores leave the hospital's keys only through the flooded release.
        return Err(CliError::bad_input(
            input.display(),
            "this is the vendor's scores directory: release it with `host-eval release --keys KEYS --scores DIR` \
             (flooded decryption, argmax or --rounded scores, counted against the release budget)",
        ));
    }
    if input.parent().is_some_and(|d| d.join(MANIFEST_FILE).is_file()) {
        return Err(CliError::bad_input(
            input.display(),
            "this file is in a vendor's scores directory: vendor results leave the hospital's keys only through \
             `host-eval release --keys KEYS --scores DIR --record RECORD`",
        ));
    }
    let bytes = fsio::read(input)?;
    let (cts, seeded, header) = if batch::is_batch(&bytes) {
        let (h, cts) = batch::parse(&params, &bytes).map_err(|e| CliError::protocol(input, e))?;
        (cts, false, Some(h))
    } else {
        let (ct, seeded) = parse_ciphertext(&params, &bytes, input)?;
        (vec![ct], seeded, None)
    };
    // Only the hospital's own ciphertexts: what its `encrypt` wrote (the record beside the file
    // names its digest and key set), or, with --from-device, what its own devices sent. A
    // vendor's output decrypted here at full precision would hand the vendor m + e, and with it
    // the key (Li and Micciancio, EUROCRYPT 2021).
    if !from_device {
        let rpath = super::encrypt::record_path(input);
        let own = fsio::read(&rpath)
            .ok()
            .and_then(|b| BatchRecord::from_json_checked(&b, &params, &keys.meta.fingerprint_sha256).ok())
            .is_some_and(|r| r.describes(&bytes));
        if !own {
            return Err(CliError::bad_input(
                input.display(),
                format!(
                    "not one of this key set's own ciphertexts: `decrypt` opens only what `host-eval encrypt` wrote \
                     (its record {} must sit beside it and match it), or with --from-device a ciphertext from the \
                     hospital's own device; vendor results go through `host-eval release`",
                    rpath.display()
                ),
            ));
        }
    }
    drop(bytes);
    let sk = keys.secret_key()?;
    let ctx = Context::new(params)?;
    let mut noise = 0f64;
    let mut real: Vec<Zeroizing<Vec<f64>>> = Vec::with_capacity(cts.len());
    for ct in &cts {
        let plain = core_decrypt(&ctx, &sk, ct)?;
        let slots = Slots(plain.decode()?);
        noise = slots
            .0
            .iter()
            .map(|c| c.im.abs())
            .fold(noise, |a, b| if b.is_nan() { f64::INFINITY } else { a.max(b) });
        real.push(Zeroizing::new(slots.0.iter().map(|c| c.re).collect()));
    }
    if noise > NOISE_LIMIT {
        return Err(CliError::WrongSecretKey {
            path: input.to_path_buf(),
            noise,
        });
    }
    let slots = real.first().map_or(0, |r| r.len());
    // Interleaved: patient p in slots 8p..8p+7. Batch: blade k of patient p in slot p of
    // ciphertext k, box-encoded (mapped back to features here).
    let (blocks, block): (usize, Box<dyn Fn(usize) -> [f64; 8]>) = match &header {
        None => (
            slots.div_ceil(8),
            Box::new(|p: usize| {
                let mut f = [0f64; 8];
                for (o, v) in f.iter_mut().zip(real[0].iter().skip(8 * p)) {
                    *o = *v;
                }
                f
            }),
        ),
        Some(h) => {
            let Some(input_box) = h.input_box.clone() else {
                return Err(CliError::bad_input(
                    input.display(),
                    "a channel batch (an equivariant model's profile): `decrypt` shows 8-feature batches; `host-eval predict` \
                     on the same scans gives their channels' scores in plaintext",
                ));
            };
            (
                slots,
                Box::new(move |p: usize| {
                    let mut f = [0f64; 8];
                    for (k, o) in f.iter_mut().enumerate() {
                        *o = input_box.center[k] + real[k].get(p).copied().unwrap_or(0.0) * input_box.half_width[k];
                    }
                    f
                }),
            )
        }
    };
    let chosen: Vec<usize> = match (selection, &header) {
        (PatientSelection::All, _) => (0..blocks).collect(),
        (PatientSelection::Auto, None) => (0..blocks).filter(|&p| block(p).iter().any(|v| v.abs() > EMPTY_BLOCK)).collect(),
        (PatientSelection::Auto, Some(h)) => (0..h.patients.min(blocks)).collect(),
        (PatientSelection::List(list), _) => {
            if let Some(&bad) = list.iter().find(|&&p| p >= blocks) {
                return Err(CliError::BadSlot { slot: bad, max: blocks });
            }
            list.clone()
        }
    };
    let patients = chosen.into_iter().map(|p| PatientRow::new(p, block(p))).collect();
    Ok(Decrypted {
        preset: params.name(),
        kind: match (&header, seeded) {
            (Some(_), _) => "box-encoded blade-major batch (8 ciphertexts)",
            (None, true) => "seeded ciphertext",
            (None, false) => "ciphertext",
        },
        level: cts[0].meta.level,
        log2_scale: cts[0].meta.scale.log2(),
        slots,
        log2_noise: noise.max(f64::MIN_POSITIVE).log2(),
        patients,
    })
}

/// Decoded complex slots, overwritten on drop (patient data).
struct Slots(Vec<Complex>);

impl Drop for Slots {
    fn drop(&mut self) {
        for c in self.0.iter_mut() {
            *c = Complex::default();
        }
        // Keep the writes from being optimised away as dead stores.
        std::hint::black_box(&self.0);
    }
}

/// Renders the result.
pub fn render(d: &Decrypted, format: Format) -> Result<String, CliError> {
    match format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(d).map_err(|e| CliError::bad_input("output", e))?;
            s.push('\n');
            Ok(s)
        }
        Format::Csv => {
            let mut s = format!("patient,{}\n", COMPONENTS.join(","));
            for row in &d.patients {
                let cells: Vec<String> = row.features().iter().map(|v| v.to_string()).collect();
                s.push_str(&format!("{},{}\n", row.patient, cells.join(",")));
            }
            Ok(s)
        }
        Format::Table => {
            let mut s = format!(
                "# preset {}, {}, level {}, scale 2^{:.1}, {} slots, noise 2^{:.1}\n",
                d.preset, d.kind, d.level, d.log2_scale, d.slots, d.log2_noise
            );
            s.push_str(&format!("{:>7}", "patient"));
            for name in COMPONENTS {
                s.push_str(&format!(" {name:>12}"));
            }
            s.push('\n');
            for row in &d.patients {
                s.push_str(&format!("{:>7}", row.patient));
                for v in row.features() {
                    s.push_str(&format!(" {v:>12.6}"));
                }
                s.push('\n');
            }
            if d.patients.is_empty() {
                s.push_str("# no non-empty patient slots (use --patients all to print every slot)\n");
            }
            Ok(s)
        }
    }
}

/// Arguments of `decrypt`, as the command line gives them.
#[derive(Clone, Debug)]
pub struct DecryptOptions {
    pub keys: PathBuf,
    pub input: PathBuf,
    pub format: Format,
    pub patients: PatientSelection,
}
