//! The hospital's key directory: `secret.key` (the exported 32-byte seed, owner-only),
//! `public.key` (wire format) and `keyset.json` (preset, creation time, fingerprint).
//!
//! The fingerprint is the SHA-256 of the public key's bytes. It names the key set in logs and
//! lets every command detect a `public.key` swapped in from another key set before using it.
//! A gateway that only encrypts needs `public.key` and `keyset.json`; the secret key is read
//! only by the commands that need it (seeded encryption, decryption).

use super::error::CliError;
use super::fsio::{self, Overwrite, Staged};
use clifhe_core::context::Context;
use clifhe_core::keys::{PublicKeyOwned, SecretKeyOwned};
use clifhe_core::wire::{self, Kind};
use clifhe_core::{Params, PublicKey, SecretKey};
use rand_chacha::ChaCha20Rng;
use rand_core::{OsRng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const SECRET_FILE: &str = "secret.key";
pub const PUBLIC_FILE: &str = "public.key";
pub const META_FILE: &str = "keyset.json";
pub const FORMAT: &str = "clifhe-keyset/1";

/// Contents of `keyset.json`. Public metadata only: nothing here is secret.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct KeysetMeta {
    pub format: String,
    pub preset: String,
    pub preset_id: u16,
    pub n: usize,
    pub log2_qp: f64,
    /// RFC 3339, UTC.
    pub created: String,
    pub created_unix: u64,
    /// SHA-256 of `public.key`, lowercase hex.
    pub fingerprint_sha256: String,
    pub public_key: String,
    pub public_key_bytes: usize,
    pub secret_key: String,
    /// Made from a fixed test seed (`keygen --insecure-test-seed`, test builds only): every
    /// command except in such builds refuses the key set.
    #[serde(default)]
    pub insecure: bool,
}

pub use clifhe_std::protocol::batch::{kind_name, peek, preset_name, WirePeek as Peek};
pub use clifhe_std::protocol::profile::sha256_hex;

/// An opened key directory.
#[derive(Debug)]
pub struct KeySet {
    pub dir: PathBuf,
    pub meta: KeysetMeta,
    pub params: Params,
}

impl KeySet {
    /// Reads and checks `keyset.json`; key files are read on demand.
    pub fn open(dir: &Path) -> Result<Self, CliError> {
        let meta_path = dir.join(META_FILE);
        let bytes = fsio::read(&meta_path)?;
        let meta: KeysetMeta = serde_json::from_slice(&bytes).map_err(|e| CliError::corrupt(&meta_path, "key set description", e))?;
        if meta.format != FORMAT {
            return Err(CliError::corrupt(
                &meta_path,
                "key set description",
                format!("unknown format '{}'", meta.format),
            ));
        }
        if meta.insecure && !cfg!(feature = "insecure-test-params") {
            return Err(CliError::InconsistentKeys {
                dir: dir.to_path_buf(),
                reason: "it was made from a fixed, published test seed (INSECURE); make a real key set with `host-eval keygen`".into(),
            });
        }
        let params = Params::from_id(meta.preset_id).map_err(|e| CliError::corrupt(&meta_path, "key set description", e))?;
        if params.name() != meta.preset {
            return Err(CliError::InconsistentKeys {
                dir: dir.to_path_buf(),
                reason: format!(
                    "{META_FILE} names preset '{}' but its id {} is '{}'",
                    meta.preset,
                    meta.preset_id,
                    params.name()
                ),
            });
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            meta,
            params,
        })
    }

    fn key_bytes(&self, file: &str, what: &'static str, kind: Kind) -> Result<(PathBuf, Vec<u8>), CliError> {
        let path = self.dir.join(file);
        let bytes = fsio::read(&path)?;
        let h = peek(&bytes).map_err(|r| CliError::corrupt(&path, what, r))?;
        if h.kind != kind as u8 {
            return Err(CliError::corrupt(&path, what, format!("it holds a {}", kind_name(h.kind))));
        }
        if h.params_id != self.params.id() {
            return Err(CliError::InconsistentKeys {
                dir: self.dir.clone(),
                reason: format!(
                    "{file} is for preset '{}' but {META_FILE} says '{}'",
                    preset_name(h.params_id),
                    self.params.name()
                ),
            });
        }
        Ok((path, bytes))
    }

    /// Reads `public.key`, checking it against the fingerprint in `keyset.json`.
    pub fn public_key(&self) -> Result<PublicKeyOwned, CliError> {
        let (path, bytes) = self.key_bytes(PUBLIC_FILE, "public key", Kind::PublicKey)?;
        let pk = wire::public_key_from_bytes(&self.params, &bytes).map_err(|e| CliError::corrupt(&path, "public key", e))?;
        if sha256_hex(&bytes) != self.meta.fingerprint_sha256 {
            return Err(CliError::InconsistentKeys {
                dir: self.dir.clone(),
                reason: format!("{PUBLIC_FILE} does not match the fingerprint in {META_FILE} (a key from another key set?)"),
            });
        }
        Ok(pk)
    }

    /// Reads `secret.key` (the exported seed) and expands the key, after checking that the
    /// file is private to its owner and that the key is the one `public.key` was made from.
    pub fn secret_key(&self) -> Result<SecretKeyOwned, CliError> {
        self.check_private(SECRET_FILE)?;
        let (path, bytes) = self.key_bytes(SECRET_FILE, "secret key", Kind::SecretKeySeed)?;
        let bytes = zeroize::Zeroizing::new(bytes);
        let sk = wire::import_secret_key(&self.params, &bytes).map_err(|e| CliError::corrupt(&path, "secret key", e))?;
        self.check_pair(&sk)?;
        Ok(sk)
    }

    /// Refuses a secret file that its group or others may read or write: a key another local
    /// user could copy is not the hospital's alone (keygen writes it 0600).
    #[cfg(unix)]
    fn check_private(&self, file: &str) -> Result<(), CliError> {
        use std::os::unix::fs::PermissionsExt;
        let path = self.dir.join(file);
        let mode = std::fs::metadata(&path)
            .map_err(|e| CliError::io(&path, "read", e))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(CliError::InconsistentKeys {
                dir: self.dir.clone(),
                reason: format!(
                    "{file} is open to other users (mode {:04o}); make it owner-only with `chmod 600 {}`",
                    mode & 0o7777,
                    path.display()
                ),
            });
        }
        Ok(())
    }

    #[cfg(not(unix))]
    fn check_private(&self, _file: &str) -> Result<(), CliError> {
        Ok(())
    }

    /// Checks that `sk` opens `public.key`: an encryption of zero under the public key must
    /// decrypt to small noise (about 2^20 at most), not to values spread over the first prime
    /// (what a secret key from another key set gives). Catches a `secret.key` swapped in from
    /// another key set before it decrypts anything or seeds a ciphertext nobody can open.
    fn check_pair(&self, sk: &SecretKeyOwned) -> Result<(), CliError> {
        let params = self.params;
        let pk = self.public_key()?;
        let ctx = Context::new(params)?;
        let zero = clifhe_core::encrypt::Plaintext::encode_real(&params, &[0.0], 1.0)?;
        let mut rng = os_rng()?;
        let ct = clifhe_core::encrypt::encrypt_pk(&params, ctx.q_tables(), &pk, &zero, 0, &mut rng)?;
        let plain = clifhe_core::decrypt::decrypt(&ctx, sk, &ct)?;
        let largest = plain.decode()?.iter().fold(0f64, |m, c| m.max(c.re.abs()).max(c.im.abs()));
        // Right key: the decoded noise is at most N * |e| (well under 2^30 for every preset).
        // Wrong key: uniform coefficients mod q_0 decode to about sqrt(N) * q_0 / 4.
        let limit = params.q()[0] as f64 / 16.0;
        if largest.is_nan() || largest >= limit {
            return Err(CliError::InconsistentKeys {
                dir: self.dir.clone(),
                reason: format!("{SECRET_FILE} does not belong to {PUBLIC_FILE} (a secret key from another key set?)"),
            });
        }
        Ok(())
    }
}

/// What `keygen` made.
#[derive(Debug)]
pub struct KeygenReport {
    pub dir: PathBuf,
    /// `public.bundle`: what the vendor receives.
    pub bundle: PathBuf,
    pub meta: KeysetMeta,
    /// The new key set's leakage budget.
    pub budget_bits: u64,
}

/// Where keygen's randomness comes from.
#[derive(Clone, Copy, Debug)]
pub enum KeyRandomness {
    /// ChaCha20 seeded from the operating system: the only choice for real keys.
    Os,
    /// INSECURE, tests only: a fixed seed makes the key predictable by anyone who knows it.
    TestSeed(u64),
}

/// What `keygen` does besides generating.
#[derive(Clone, Copy, Debug, Default)]
pub struct KeygenOptions {
    /// Replace an existing secret key.
    pub force: bool,
    /// Retire the existing key set first (`rotate`).
    pub rotate: bool,
    /// Leakage budget in bits (default: the preset's maximum).
    pub leakage_budget_bits: Option<u64>,
}

/// Moves the key set in `dir` (its keys, description, ledger and evaluation keys) to
/// `dir/retired/<fingerprint>/`, so a fresh one can take its place; the old secret key stays
/// there for decrypting the hospital's own old batches locally.
fn retire(dir: &Path) -> Result<PathBuf, CliError> {
    let old = KeySet::open(dir)?;
    let _lock = super::ledger::lock(dir)?;
    let to = dir.join("retired").join(&old.meta.fingerprint_sha256);
    std::fs::create_dir_all(&to).map_err(|e| CliError::io(&to, "create directory", e))?;
    for name in [
        SECRET_FILE,
        PUBLIC_FILE,
        super::ledger::LEDGER_FILE,
        "eval",
        super::public::BUNDLE_FILE,
        META_FILE,
    ] {
        let from = dir.join(name);
        if from.symlink_metadata().is_ok() {
            std::fs::rename(&from, to.join(name)).map_err(|e| CliError::io(&from, "move", e))?;
        }
    }
    Ok(to)
}

/// Generates a key set for `preset` into `dir`, with its leakage ledger.
pub fn keygen(preset: &str, dir: &Path, opts: KeygenOptions, randomness: KeyRandomness) -> Result<KeygenReport, CliError> {
    let params = Params::from_name(preset).ok_or_else(|| CliError::UnknownPreset { name: preset.to_string() })?;
    let force = opts.force;
    // Refuse a budget the preset cannot afford before anything is retired or written.
    clifhe_std::protocol::leakage::LeakageLedger::new(&params, "", opts.leakage_budget_bits)?;
    if opts.rotate {
        retire(dir)?;
    }
    std::fs::create_dir_all(dir).map_err(|e| CliError::io(dir, "create directory", e))?;
    let secret_path = dir.join(SECRET_FILE);
    // Checked before the (possibly slow) key generation for a quick answer; publishing
    // re-checks atomically, so a key created in between is still never overwritten.
    if !force && secret_path.symlink_metadata().is_ok() {
        return Err(CliError::KeyExists { path: secret_path });
    }
    let mut rng = match randomness {
        KeyRandomness::Os => os_rng()?,
        KeyRandomness::TestSeed(seed) => ChaCha20Rng::seed_from_u64(seed),
    };
    let ctx = Context::new(params)?;
    let sk = SecretKey::generate(&params, &mut rng)?;
    let pk = PublicKey::generate(&params, ctx.q_tables(), &sk, &mut rng)?;
    let secret_bytes = wire::export_secret_key(&params, &sk).map_err(|e| CliError::corrupt(&secret_path, "secret key", e))?;
    let public_path = dir.join(PUBLIC_FILE);
    let public_bytes = wire::public_key_to_bytes(&params, &pk).map_err(|e| CliError::corrupt(&public_path, "public key", e))?;

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let meta = KeysetMeta {
        format: FORMAT.into(),
        preset: params.name().into(),
        preset_id: params.id(),
        n: params.n(),
        log2_qp: (params.log_qp() * 100.0).round() / 100.0,
        created: rfc3339_utc(now),
        created_unix: now,
        fingerprint_sha256: sha256_hex(&public_bytes),
        public_key: PUBLIC_FILE.into(),
        public_key_bytes: public_bytes.len(),
        secret_key: SECRET_FILE.into(),
        insecure: matches!(randomness, KeyRandomness::TestSeed(_)),
    };
    let ledger = super::ledger::initial(&params, &meta.fingerprint_sha256, opts.leakage_budget_bits)?;
    let mut meta_json = serde_json::to_vec_pretty(&meta).map_err(|e| CliError::bad_input(META_FILE, e))?;
    meta_json.push(b'\n');

    // Stage everything first so that a failure (disk full) publishes nothing; the secret is
    // published first because it is the one file that must never be silently replaced.
    let secret = Staged::write(&secret_path, &secret_bytes, true)?;
    let public = Staged::write(&public_path, &public_bytes, false)?;
    let meta_file = Staged::write(&dir.join(META_FILE), &meta_json, false)?;
    let ledger_file = Staged::write(&dir.join(super::ledger::LEDGER_FILE), &ledger, false)?;
    secret.publish(if force { Overwrite::Allow } else { Overwrite::Refuse })?;
    public.publish(Overwrite::Allow)?;
    ledger_file.publish(Overwrite::Allow)?;
    meta_file.publish(Overwrite::Allow)?;
    // Evaluation keys of a replaced key set are useless with the new one: drop them, so the
    // public bundle never pairs them with the new public key.
    let stale = dir.join("eval");
    if stale.is_dir() {
        std::fs::remove_dir_all(&stale).map_err(|e| CliError::io(&stale, "remove stale evaluation keys in", e))?;
    }
    let (bundle, _) = super::public::write_bundle(dir)?;
    Ok(KeygenReport {
        dir: dir.to_path_buf(),
        bundle,
        meta,
        budget_bits: opts
            .leakage_budget_bits
            .unwrap_or_else(|| clifhe_std::protocol::leakage::default_budget_bits(&params)),
    })
}

/// ChaCha20 keyed from the operating system's generator: every real key and encryption.
pub fn os_rng() -> Result<ChaCha20Rng, CliError> {
    ChaCha20Rng::from_rng(OsRng).map_err(|e| {
        CliError::io(
            "the operating system's random generator",
            "read",
            std::io::Error::other(e.to_string()),
        )
    })
}

/// Formats Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian, Hinnant's
/// days-to-civil algorithm), to avoid a date-time dependency for one timestamp.
pub fn rfc3339_utc(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_format_as_rfc3339() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_utc(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
