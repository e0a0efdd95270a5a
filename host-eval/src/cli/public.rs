//! The public half of a key set, as the vendor receives it: `public.bundle`.
//!
//! `keygen` writes `DIR/public.bundle` (`keyset.json` and `public.key`) and `evalkeys` rewrites
//! it with the evaluation keys (`eval/*.key`). It is one file in the canonical
//! [`clifhe_std::protocol::bundle`] format, the same bytes the service client uploads, so its
//! SHA-256 names the key set's public material everywhere. It never holds `secret.key` (the
//! bundle format refuses any name like a secret), so the hospital can hand it over without
//! handing over the directory that holds the secret key.
//!
//! [`PublicKeySet::open`] reads either that bundle or a key directory, and checks what both
//! forms share: the description's format and preset, and that `public.key` is the one its
//! fingerprint names.

use super::error::CliError;
use super::fsio;
use super::keyset::{KeysetMeta, FORMAT, META_FILE, PUBLIC_FILE, SECRET_FILE};
use clifhe_core::keys::PublicKeyOwned;
use clifhe_core::wire;
use clifhe_core::Params;
use clifhe_std::keys_wire::galois_key_file_name;
use clifhe_std::protocol::bundle::{self, Kind};
use clifhe_std::protocol::profile::sha256_hex;
use clifhe_std::{EvalContext, GaloisKeys, RelinearizationKey};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The bundle `keygen` and `evalkeys` keep beside the key set.
pub const BUNDLE_FILE: &str = "public.bundle";
/// The relinearization key's name inside the bundle (and under the key directory).
pub const RELIN_FILE: &str = "eval/relin.key";

/// A key set's public material: its description, public key and evaluation keys, loaded from a
/// public bundle or a key directory and checked against each other.
#[derive(Debug)]
pub struct PublicKeySet {
    /// Where it came from (for messages).
    pub source: PathBuf,
    /// `keyset.json`.
    pub meta: KeysetMeta,
    /// The preset.
    pub params: Params,
    files: BTreeMap<String, Vec<u8>>,
}

impl PublicKeySet {
    /// Opens `path`: a public bundle file, or a key directory (its `keyset.json`,
    /// `public.key` and `eval/` are read; its secret key is not).
    pub fn open(path: &Path) -> Result<Self, CliError> {
        if path.is_dir() {
            let files = dir_files(path)?;
            Self::from_files(path, files)
        } else {
            let bytes = fsio::read(path)?;
            Self::from_bundle(path, &bytes)
        }
    }

    /// Decodes a public bundle (`source` names it in errors).
    pub fn from_bundle(source: &Path, bytes: &[u8]) -> Result<Self, CliError> {
        let entries = bundle::decode(Kind::KeySet, bytes).map_err(|e| CliError::corrupt(source, "public key bundle", e))?;
        let files = entries.into_iter().map(|(e, b)| (e.name, b.to_vec())).collect();
        Self::from_files(source, files)
    }

    fn from_files(source: &Path, files: BTreeMap<String, Vec<u8>>) -> Result<Self, CliError> {
        let corrupt = |r: String| CliError::corrupt(source, "key set's public material", r);
        let file = |name: &str| files.get(name).ok_or_else(|| corrupt(format!("it lacks {name}")));
        let meta: KeysetMeta = serde_json::from_slice(file(META_FILE)?).map_err(|e| corrupt(format!("{META_FILE}: {e}")))?;
        if meta.format != FORMAT {
            return Err(corrupt(format!("{META_FILE}: unknown format '{}'", meta.format)));
        }
        if meta.insecure && !cfg!(feature = "insecure-test-params") {
            return Err(corrupt("it was made from a fixed, published test seed (INSECURE)".into()));
        }
        let params = Params::from_id(meta.preset_id).map_err(|e| corrupt(format!("{META_FILE}: {e}")))?;
        if params.name() != meta.preset {
            return Err(corrupt(format!("{META_FILE} names preset '{}' but its id is another", meta.preset)));
        }
        if sha256_hex(file(PUBLIC_FILE)?) != meta.fingerprint_sha256 {
            return Err(corrupt(format!(
                "{PUBLIC_FILE} does not match the fingerprint in {META_FILE} (a key from another key set?)"
            )));
        }
        Ok(Self {
            source: source.to_path_buf(),
            meta,
            params,
            files,
        })
    }

    /// The bundle's bytes: canonical, so equal material gives equal bytes (and digest).
    pub fn to_bundle(&self) -> Result<Vec<u8>, CliError> {
        let files: Vec<(String, Vec<u8>)> = self.files.iter().map(|(n, b)| (n.clone(), b.clone())).collect();
        bundle::encode(Kind::KeySet, &files).map_err(|e| CliError::bad_input(self.source.display(), e))
    }

    /// The public key (checked against the fingerprint when opened).
    pub fn public_key(&self) -> Result<PublicKeyOwned, CliError> {
        let bytes = &self.files[PUBLIC_FILE];
        wire::public_key_from_bytes(&self.params, bytes).map_err(|e| CliError::corrupt(&self.source, "public key", e))
    }

    /// The relinearization key, or a hint to run `evalkeys`.
    pub fn relin_key(&self, ectx: &EvalContext) -> Result<RelinearizationKey, CliError> {
        let bytes = self.files.get(RELIN_FILE).ok_or_else(|| CliError::MissingEvalKeys {
            dir: self.source.clone(),
            what: "relinearization key".into(),
            hint: "run `host-eval evalkeys --keys DIR --relin-only` at the hospital and send its public.bundle".into(),
        })?;
        RelinearizationKey::from_bytes(ectx, bytes).map_err(|e| CliError::corrupt(&self.source, "relinearization key", e))
    }

    /// Whether the material holds the Galois key for element `g`.
    pub fn has_galois(&self, g: usize) -> bool {
        self.files.contains_key(&format!("eval/{}", galois_key_file_name(g)))
    }

    /// The Galois keys a batch needs (none for a blade-major batch; the block layout's rotations
    /// for an equivariant model's block batch), or a hint to run `evalkeys --profile`.
    pub fn keys_for_batch(
        &self,
        ectx: &EvalContext,
        model: &clifhe_std::protocol::VendorModel,
        header: &clifhe_std::protocol::batch::BatchHeader,
    ) -> Result<Option<GaloisKeys>, CliError> {
        let clifhe_std::protocol::VendorModel::Equivariant(m) = model else {
            return Ok(None);
        };
        if header.layout != clifhe_std::protocol::BatchLayout::Blocks {
            return Ok(None);
        }
        let layout = clifhe_std::gnn::equivariant_blocks::BlockLayout::new(ectx.params(), &m.net)?;
        let mut elements = Vec::new();
        for step in layout.rotation_steps() {
            let g = clifhe_std::keys::rotation_galois_element(step, ectx.params().n())?;
            if !self.has_galois(g) {
                return Err(CliError::MissingEvalKeys {
                    dir: self.source.clone(),
                    what: format!("rotation key for step {step} (block layout)"),
                    hint: "run `host-eval evalkeys --keys DIR --profile PROFILE` at the hospital with the block-layout profile \
                           and send its public.bundle"
                        .into(),
                });
            }
            elements.push(g);
        }
        Ok(Some(self.galois_keys(ectx, &elements)?))
    }

    /// The Galois keys for `elements` (each must be present).
    pub fn galois_keys(&self, ectx: &EvalContext, elements: &[usize]) -> Result<GaloisKeys, CliError> {
        let mut keys = GaloisKeys::default();
        for &g in elements {
            let name = format!("eval/{}", galois_key_file_name(g));
            let bytes = self.files.get(&name).ok_or_else(|| CliError::MissingEvalKeys {
                dir: self.source.clone(),
                what: format!("Galois key {g}"),
                hint: "run `host-eval evalkeys` at the hospital and send its public.bundle".into(),
            })?;
            let got = keys
                .insert_from_bytes(ectx, bytes)
                .map_err(|e| CliError::corrupt(&self.source, "Galois key", e))?;
            if got != g {
                return Err(CliError::corrupt(&self.source, "Galois key", format!("{name} holds element {got}")));
            }
        }
        Ok(keys)
    }
}

/// The public files of a key directory: `keyset.json`, `public.key`, `eval/*.key`; a file
/// named like a secret key under `eval/` is refused.
fn dir_files(dir: &Path) -> Result<BTreeMap<String, Vec<u8>>, CliError> {
    let mut files = BTreeMap::new();
    for name in [META_FILE, PUBLIC_FILE] {
        files.insert(name.to_string(), fsio::read(&dir.join(name))?);
    }
    let eval = dir.join("eval");
    if eval.is_dir() {
        for entry in std::fs::read_dir(&eval).map_err(|e| CliError::io(&eval, "list", e))? {
            let entry = entry.map_err(|e| CliError::io(&eval, "list", e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let key = format!("eval/{name}");
            if bundle::is_secret_name(&name) {
                return Err(CliError::bad_input(
                    entry.path().display(),
                    "a file named like a secret key among the evaluation keys: secret keys never leave the hospital, \
                     so it is not put into the public material",
                ));
            }
            if entry.path().is_file() && bundle::allowed(Kind::KeySet, &key) {
                files.insert(key, fsio::read(&entry.path())?);
            }
        }
    }
    Ok(files)
}

/// Rewrites `dir/public.bundle` from the key directory's public files (atomically); returns
/// its path and SHA-256. `keygen` and `evalkeys` call it, so the bundle always matches.
pub fn write_bundle(dir: &Path) -> Result<(PathBuf, String), CliError> {
    debug_assert!(!bundle::allowed(Kind::KeySet, SECRET_FILE));
    let set = PublicKeySet::from_files(dir, dir_files(dir)?)?;
    let bytes = set.to_bundle()?;
    let path = dir.join(BUNDLE_FILE);
    fsio::write_atomic(&path, &bytes)?;
    Ok((path, bundle::digest(&bytes)))
}
