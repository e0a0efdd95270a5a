//! `host-eval device-enroll` and `host-eval device-record`: the hospital's side of enrolled
//! devices (`clifhe_std::protocol::device`, docs/device.md).
//!
//! - `device-enroll` draws a device key, writes the firmware's enrolment bundle (the device's
//!   secret key seed, mode 0600, and its input image, with a manifest of sizes and SHA-256 that
//!   the firmware build checks) and the key switching key the vendor needs for that device.
//! - `device-record` writes the batch record of a set of device ciphertexts, so that `release`
//!   can check the vendor's results against what the hospital knows it sent.
//! - `device-encrypt` runs the device's path on the host; `infer --device-key` is the vendor's
//!   side ([`infer_enrolled`]).

use super::device_bundle::{BundleFile, MANIFEST_FILE};
use super::error::CliError;
use super::fsio::{self, Overwrite, Staged};
use super::keyset::{os_rng, KeySet};
use super::profile::read_profile;
use super::public::PublicKeySet;
use clifhe_core::device_input::DeviceInput;
use clifhe_std::protocol::batch::BatchHeader;
use clifhe_std::protocol::device;
use clifhe_std::protocol::profile::sha256_hex;
use clifhe_std::protocol::BatchRecord;
use clifhe_std::protocol::ScoresManifest;
use clifhe_std::EvalContext;
use clifhe_std::Evaluator;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Format tag of an enrolment bundle's manifest.
pub const ENROLLMENT_FORMAT: &str = "clifhe-device-enrollment/1";
/// The device's secret key seed inside the bundle.
pub const DEVICE_KEY_FILE: &str = "device-key.seed";
/// The device's input image inside the bundle.
pub const INPUT_FILE: &str = "input.bin";

/// `device.json` of an enrolment bundle.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EnrollmentManifest {
    /// [`ENROLLMENT_FORMAT`].
    pub format: String,
    /// Preset name (the firmware checks it).
    pub preset: String,
    /// The hospital key set the device's ciphertexts are switched to.
    pub keyset_fingerprint_sha256: String,
    /// The vendor profile the device encrypts for.
    pub profile_fingerprint: String,
    /// SHA-256 of the switching key file: names the device to the vendor.
    pub switch_key_sha256: String,
    /// Level of the device's ciphertexts.
    pub level: usize,
    /// log2 of their scale.
    pub log_scale: u32,
    /// The files (`device-key.seed` is secret).
    pub files: Vec<BundleFile>,
}

/// What `device-enroll` reports.
#[derive(Clone, Debug, Serialize)]
pub struct EnrollReport {
    /// The bundle directory.
    pub out: PathBuf,
    /// The vendor's switching key file.
    pub switch_key: PathBuf,
    /// Its size.
    pub switch_key_bytes: usize,
    /// The bundle's manifest.
    pub manifest: EnrollmentManifest,
}

/// Enrols one device for the vendor's `profile` under the key set in `keys` (needs
/// `secret.key`): writes the bundle into the new directory `out` and the switching key to
/// `switch_key` (refused if either exists, so an enrolment is never half replaced).
pub fn enroll(keys: &Path, profile: &Path, out: &Path, switch_key: &Path) -> Result<EnrollReport, CliError> {
    let set = KeySet::open(keys)?;
    let params = set.params;
    let profile_doc = read_profile(profile, &params)?;
    if out.exists() {
        return Err(CliError::bad_input(
            out.display(),
            "exists: write each enrolment to a new directory (a device key is never replaced in place)",
        ));
    }
    if switch_key.exists() {
        return Err(CliError::bad_input(
            switch_key.display(),
            "exists: each enrolment writes a new switching key",
        ));
    }
    let sk = set.secret_key()?;
    let ectx = EvalContext::new(params)?;
    let mut rng = os_rng()?;
    let enrollment = device::enroll_device(&ectx, &sk, &profile_doc, &mut rng).map_err(|e| CliError::protocol(profile, e))?;
    drop(sk);
    let key_bytes = enrollment.switch_key.to_bytes(&ectx)?;
    let seed = zeroize::Zeroizing::new(*enrollment.seed.as_bytes());
    let image = enrollment.input.to_image();

    std::fs::create_dir_all(out).map_err(|e| CliError::io(out, "create", e))?;
    // The secret seed is created private (0600) from its first byte on.
    Staged::write(&out.join(DEVICE_KEY_FILE), seed.as_slice(), true)?.publish(Overwrite::Refuse)?;
    fsio::write_atomic(&out.join(INPUT_FILE), &image)?;
    Staged::write(switch_key, &key_bytes, false)?.publish(Overwrite::Refuse)?;
    let manifest = EnrollmentManifest {
        format: ENROLLMENT_FORMAT.into(),
        preset: params.name().into(),
        keyset_fingerprint_sha256: set.meta.fingerprint_sha256.clone(),
        profile_fingerprint: profile_doc.fingerprint.clone(),
        switch_key_sha256: sha256_hex(&key_bytes),
        level: usize::from(enrollment.input.level),
        log_scale: enrollment.input.log_scale,
        files: vec![
            BundleFile {
                name: DEVICE_KEY_FILE.into(),
                bytes: seed.len(),
                sha256: sha256_hex(seed.as_slice()),
            },
            BundleFile {
                name: INPUT_FILE.into(),
                bytes: image.len(),
                sha256: sha256_hex(&image),
            },
        ],
    };
    let mut json = serde_json::to_vec_pretty(&manifest).map_err(|e| CliError::bad_input("enrolment manifest", e))?;
    json.push(b'\n');
    // The manifest last: a directory without it is an interrupted enrolment.
    fsio::write_atomic(&out.join(MANIFEST_FILE), &json)?;
    Ok(EnrollReport {
        out: out.to_path_buf(),
        switch_key: switch_key.to_path_buf(),
        switch_key_bytes: key_bytes.len(),
        manifest,
    })
}

/// Reads and checks an enrolment bundle's input image (for tools that play the device on the
/// host, and for tests).
pub fn read_input_image(bundle: &Path, params: &clifhe_core::Params) -> Result<DeviceInput, CliError> {
    let path = bundle.join(INPUT_FILE);
    let bytes = fsio::read(&path)?;
    DeviceInput::from_image(params, &bytes).map_err(|e| CliError::corrupt(&path, "device input image", e))
}

/// Writes the batch record of the device ciphertexts `files` (patient i = file i, in the order
/// `infer --device-ciphertexts` reads them) for `profile` under the key set `keys`: what
/// `release --record` checks the vendor's results against. The record's digest covers the
/// ciphertext files in order.
pub fn device_record(keys: &Path, profile: &Path, files: &[PathBuf], out: &Path) -> Result<BatchRecord, CliError> {
    let set = KeySet::open(keys)?;
    let params = set.params;
    let profile_doc = read_profile(profile, &params)?;
    // The same checks the enrolment made: a profile no device can encrypt for has no record.
    device::device_input(&params, &profile_doc).map_err(|e| CliError::protocol(profile, e))?;
    let files = super::protocol::device_files(files)?;
    let mut all = Vec::new();
    for f in &files {
        all.extend_from_slice(&fsio::read(f)?);
    }
    let header = BatchHeader::new(&profile_doc, files.len());
    let record = BatchRecord::new(&profile_doc, &header, &all, &set.meta.fingerprint_sha256);
    fsio::write_atomic(out, &record.to_json().map_err(|e| CliError::protocol(out, e))?)?;
    Ok(record)
}

/// What `device-encrypt` reports.
#[derive(Clone, Debug, Serialize)]
pub struct DeviceEncryptReport {
    /// One ciphertext file per patient, in input order.
    pub files: Vec<PathBuf>,
    /// Bytes per ciphertext.
    pub ciphertext_bytes: usize,
    /// Patients whose features lay outside the profile's box (clamped by the device).
    pub out_of_box: Vec<usize>,
}

/// Plays the enrolled device on the host: the firmware's own per-patient path
/// (`clifhe_core::device_input::EnrolledEncryptor`: fixed-point box encoding, integer encoder,
/// one-limb seeded encryption with the compact NTT) under the bundle's device key, one file
/// `patient<i>.clhe` per patient of `inputs` (any `encrypt --input` spec; features as the
/// default pipeline computes them) in the new directory `out`. For testing a vendor's device
/// path, and the reference the firmware tests compare with.
pub fn device_encrypt(bundle: &Path, inputs: &[String], out: &Path) -> Result<DeviceEncryptReport, CliError> {
    device_encrypt_with(bundle, out, || super::inputs::load_inputs(inputs, None))
}

/// [`device_encrypt`] on patients `load` gives (features computed by the caller: the Python
/// package's arrays); `load` runs after the bundle is checked.
pub fn device_encrypt_with(
    bundle: &Path,
    out: &Path,
    load: impl FnOnce() -> Result<Vec<super::inputs::Patient>, CliError>,
) -> Result<DeviceEncryptReport, CliError> {
    use clifhe_core::device_input::{EnrolledBuffers, EnrolledEncryptor, PrimeRoots, DEVICE_SLOTS, MESSAGE_COEFFS};
    let manifest_path = bundle.join(MANIFEST_FILE);
    let manifest: EnrollmentManifest =
        serde_json::from_slice(&fsio::read(&manifest_path)?).map_err(|e| CliError::corrupt(&manifest_path, "enrolment manifest", e))?;
    if manifest.format != ENROLLMENT_FORMAT {
        return Err(CliError::corrupt(
            &manifest_path,
            "enrolment manifest",
            format!("format {}", manifest.format),
        ));
    }
    let params = clifhe_core::Params::from_name(&manifest.preset)
        .ok_or_else(|| CliError::corrupt(&manifest_path, "enrolment manifest", format!("unknown preset {}", manifest.preset)))?;
    for f in &manifest.files {
        let bytes = zeroize::Zeroizing::new(fsio::read(&bundle.join(&f.name))?);
        if bytes.len() != f.bytes || sha256_hex(&bytes) != f.sha256 {
            return Err(CliError::corrupt(
                bundle.join(&f.name),
                "enrolment bundle file",
                "size or SHA-256 differs from device.json",
            ));
        }
    }
    let input = read_input_image(bundle, &params)?;
    let seed_path = bundle.join(DEVICE_KEY_FILE);
    let seed_bytes = zeroize::Zeroizing::new(fsio::read(&seed_path)?);
    let seed =
        clifhe_core::SecretSeed::from_slice(&seed_bytes).ok_or_else(|| CliError::corrupt(&seed_path, "device key seed", "not 32 bytes"))?;
    let key = clifhe_core::SecretKey::from_seed(&params, &seed)?;
    let roots = (0..=usize::from(input.level))
        .map(|i| PrimeRoots::new(&params, i).ok_or_else(|| CliError::bad_input("preset", "a prime without a 2N-th root")))
        .collect::<Result<Vec<_>, _>>()?;
    let encryptor = EnrolledEncryptor::new(&params, &input, &roots, &key)?;
    let patients = load()?;
    if patients.is_empty() {
        return Err(CliError::bad_input("device-encrypt", "no patients"));
    }
    if out.exists() {
        return Err(CliError::bad_input(
            out.display(),
            "exists: device ciphertexts go to a new directory",
        ));
    }
    std::fs::create_dir_all(out).map_err(|e| CliError::io(out, "create", e))?;
    let n = params.n();
    let (mut e, mut limb) = (zeroize::Zeroizing::new(vec![0i8; n]), zeroize::Zeroizing::new(vec![0u64; n]));
    let (mut message, mut scratch) = (
        [0i128; MESSAGE_COEFFS],
        vec![0i64; clifhe_core::encode::fixed::fixed_scratch_len(DEVICE_SLOTS)],
    );
    let mut rng = os_rng()?;
    let mut report = DeviceEncryptReport {
        files: Vec::new(),
        ciphertext_bytes: encryptor.ciphertext_bytes(),
        out_of_box: Vec::new(),
    };
    for (i, p) in patients.iter().enumerate() {
        let features = zeroize::Zeroizing::new(p.features.map(clifhe_core::encode::fixed::to_fixed));
        let mut bytes = Vec::with_capacity(encryptor.ciphertext_bytes());
        let bufs = EnrolledBuffers {
            e: &mut e,
            limb: &mut limb,
            message: &mut message,
            scratch: &mut scratch,
        };
        let moved = encryptor
            .encrypt::<_, std::convert::Infallible>(&features, bufs, &mut rng, &mut |b: &[u8]| {
                bytes.extend_from_slice(b);
                Ok(())
            })
            .map_err(|e| CliError::bad_input(&p.source, format!("device encryption failed: {e:?}")))?;
        if moved {
            report.out_of_box.push(i);
        }
        let path = out.join(format!("patient{i:04}.clhe"));
        fsio::write_atomic(&path, &bytes)?;
        report.files.push(path);
    }
    Ok(report)
}

/// `infer` on an enrolled device's ciphertexts: the switching key, the rotations
/// `protocol::device::DEVICE_ROTATIONS`, then [`device::infer_devices`] (circuit-private).
pub(super) fn infer_enrolled(
    o: &super::protocol::InferOptions,
    keys: &PublicKeySet,
    ev: &Evaluator<'_>,
    model: &clifhe_std::protocol::model::PreparedModel,
    files: &[PathBuf],
    switch_key: &Path,
) -> Result<ScoresManifest, CliError> {
    let params = keys.params;
    let ectx = ev.context();
    let files = super::protocol::device_files(files)?;
    let mut cts = Vec::with_capacity(files.len());
    for f in &files {
        cts.push(super::decrypt::read_ciphertext(&params, f)?.0);
    }
    // A switching key has one exact size per preset: anything else is refused before it is read.
    let expected = clifhe_std::keys_wire::switching_key_file_bytes(ectx);
    let found = std::fs::metadata(switch_key)
        .map_err(|e| CliError::io(switch_key, "read", e))?
        .len();
    if found != expected as u64 {
        return Err(CliError::corrupt(
            switch_key,
            "device switching key",
            format!("{found} bytes, a {} switching key has {expected}", params.name()),
        ));
    }
    let key_bytes = fsio::read(switch_key)?;
    let swk = clifhe_std::keys_wire::DeviceSwitchKey::from_bytes(ectx, &key_bytes)
        .map_err(|e| CliError::corrupt(switch_key, "device switching key", e))?;
    let elements: Vec<usize> = device::DEVICE_ROTATIONS
        .iter()
        .map(|&s| clifhe_std::keys::rotation_galois_element(s, params.n()))
        .collect::<Result<_, _>>()?;
    if let Some((step, _)) = device::DEVICE_ROTATIONS.iter().zip(&elements).find(|&(_, &g)| !keys.has_galois(g)) {
        return Err(CliError::MissingEvalKeys {
            dir: o.keys.clone(),
            what: format!("rotation key for step {step}, needed to place device patients in their slots"),
            hint: format!(
                "run `host-eval evalkeys --keys {} --merge-patients 2` (or more) at the hospital",
                o.keys.display()
            ),
        });
    }
    let gks = keys.galois_keys(ectx, &elements)?;
    let pk = keys.public_key()?;
    let rlk = keys.relin_key(ectx)?;
    let vk = clifhe_std::protocol::vendor::VendorKeys {
        pk: &pk,
        rlk: &rlk,
        gks: Some(&gks),
    };
    let opts = clifhe_std::protocol::vendor::InferOptions {
        statistical_security: o.statistical_security,
        no_flooding: o.no_flooding,
        patients: o.patients,
    };
    if o.patients.is_some_and(|p| p != cts.len()) {
        return Err(CliError::bad_input(
            "--patients",
            format!("{} device ciphertexts hold {} patients", cts.len(), cts.len()),
        ));
    }
    let mut rng = os_rng()?;
    let scored = device::infer_devices(ev, &vk, model, &swk, &cts, &opts, &mut rng).map_err(|e| CliError::protocol(&files[0], e))?;
    super::protocol::write_scores(&o.out, &params, &scored)
}
