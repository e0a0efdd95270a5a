//! `host-eval device-bundle`: what a hospital device needs to encrypt under the hospital's real
//! key set, as files the firmware build embeds (`CLIFHE_DEVICE_BUNDLE=DIR cargo build ...` in
//! `device-examples/`, see its README).
//!
//! The bundle is public material only: the public key's `b` limbs and `a` seed, the preset's
//! forward and inverse NTT tables (`clifhe_core::flash_image`, the format the firmware views in
//! place) and a manifest naming the preset, the key set's fingerprint and each file's size and SHA-256.
//! It is made from `public.bundle` or a key directory through [`PublicKeySet`], which never
//! reads `secret.key`, so no secret can end up in device flash this way.

use super::error::CliError;
use super::fsio;
use super::public::PublicKeySet;
use clifhe_core::flash_image;
use clifhe_std::protocol::profile::sha256_hex;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Format tag of the manifest.
pub const DEVICE_BUNDLE_FORMAT: &str = "clifhe-device-bundle/1";
/// The manifest's file name inside the bundle directory.
pub const MANIFEST_FILE: &str = "device.json";

/// One image of the bundle.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BundleFile {
    /// File name inside the bundle directory.
    pub name: String,
    /// Size in bytes.
    pub bytes: usize,
    /// Lowercase hex SHA-256 of the contents.
    pub sha256: String,
}

/// `device.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeviceManifest {
    /// [`DEVICE_BUNDLE_FORMAT`].
    pub format: String,
    /// Preset name (the firmware checks it against the preset it is built for).
    pub preset: String,
    /// Ring degree N.
    pub n: usize,
    /// The ciphertext primes, in order (one NTT table each).
    pub primes: Vec<u64>,
    /// SHA-256 of the key set's `public.key`: the hospital matches device ciphertexts to the
    /// key set they were made for.
    pub keyset_fingerprint_sha256: String,
    /// The images.
    pub files: Vec<BundleFile>,
}

/// What `device-bundle` reports.
#[derive(Clone, Debug, Serialize)]
pub struct DeviceBundleReport {
    /// Where the bundle was written.
    pub out: PathBuf,
    /// Its manifest.
    pub manifest: DeviceManifest,
    /// Flash the images take (bytes).
    pub flash_bytes: usize,
}

/// Writes the device bundle of the key set at `keys` (a `public.bundle` or a key directory)
/// into the directory `out` (created; an existing non-empty directory is refused, so an older
/// bundle is never half overwritten).
pub fn write_device_bundle(keys: &Path, out: &Path) -> Result<DeviceBundleReport, CliError> {
    let set = PublicKeySet::open(keys)?;
    let params = set.params;
    let pk = set.public_key()?;
    let mut images: Vec<(String, Vec<u8>)> = vec![
        ("pk_b.bin".into(), flash_image::public_key_b_image(&pk)),
        ("pk_a_seed.bin".into(), pk.a_seed().to_vec()),
    ];
    for i in 0..params.q().len() {
        // Full tables: the device computes each limb in one buffer through the inverse NTT.
        images.push((
            format!("ntt_q{i}.bin"),
            flash_image::ntt_image(&params, i, flash_image::NttImage::Full)?,
        ));
    }
    if out.exists() && std::fs::read_dir(out).map_err(|e| CliError::io(out, "read", e))?.next().is_some() {
        return Err(CliError::bad_input(
            out.display(),
            "the output directory exists and is not empty (write each bundle to a new directory)",
        ));
    }
    std::fs::create_dir_all(out).map_err(|e| CliError::io(out, "create", e))?;
    let mut files = Vec::with_capacity(images.len());
    for (name, bytes) in &images {
        fsio::write_atomic(&out.join(name), bytes)?;
        files.push(BundleFile {
            name: name.clone(),
            bytes: bytes.len(),
            sha256: sha256_hex(bytes),
        });
    }
    let manifest = DeviceManifest {
        format: DEVICE_BUNDLE_FORMAT.into(),
        preset: params.name().into(),
        n: params.n(),
        primes: params.q().to_vec(),
        keyset_fingerprint_sha256: set.meta.fingerprint_sha256.clone(),
        files,
    };
    let mut json = serde_json::to_vec_pretty(&manifest).map_err(|e| CliError::bad_input("device manifest", e))?;
    json.push(b'\n');
    // The manifest last: a directory without it is an interrupted write, not a bundle.
    fsio::write_atomic(&out.join(MANIFEST_FILE), &json)?;
    Ok(DeviceBundleReport {
        out: out.to_path_buf(),
        flash_bytes: images.iter().map(|(_, b)| b.len()).sum(),
        manifest,
    })
}
