//! The key set's leakage ledger on disk: `DIR/leakage.json`, created by `keygen`, updated by
//! every `release` under an exclusive lock on `DIR/leakage.lock` and written atomically and
//! synced before anything is decrypted. A missing or unreadable ledger fails closed: nothing is
//! released. The arithmetic lives in [`clifhe_std::protocol::leakage`].

use super::error::CliError;
use super::fsio;
use clifhe_core::Params;
use clifhe_std::protocol::leakage::LeakageLedger;
use std::fs::OpenOptions;
use std::path::Path;

/// The ledger's file in a key directory.
pub const LEDGER_FILE: &str = "leakage.json";
const LOCK_FILE: &str = "leakage.lock";

/// The ledger's bytes for a new key set (`keygen` stages them with the keys).
pub fn initial(params: &Params, fingerprint: &str, budget_bits: Option<u64>) -> Result<Vec<u8>, CliError> {
    let ledger = LeakageLedger::new(params, fingerprint, budget_bits)?;
    to_json(&ledger)
}

fn to_json(l: &LeakageLedger) -> Result<Vec<u8>, CliError> {
    let mut json = serde_json::to_vec_pretty(l).map_err(|e| CliError::bad_input(LEDGER_FILE, e))?;
    json.push(b'\n');
    Ok(json)
}

/// Reads the ledger (no lock: for reports).
pub fn read(dir: &Path, params: &Params, fingerprint: &str) -> Result<LeakageLedger, CliError> {
    let path = dir.join(LEDGER_FILE);
    let bytes = fsio::read(&path).map_err(|e| match e {
        CliError::Io { path, .. } => CliError::InconsistentKeys {
            dir: dir.to_path_buf(),
            reason: format!(
                "{} is missing or unreadable: nothing is released without a leakage ledger \
                 (a key set from before leakage budgets: rotate it with `host-eval keygen --rotate --out {}`)",
                path.display(),
                dir.display()
            ),
        },
        other => other,
    })?;
    LeakageLedger::from_json_checked(&bytes, params, fingerprint).map_err(|e| CliError::protocol(&path, e))
}

/// Runs `f` on the ledger under the key set's exclusive lock and stores what `f` left in it
/// (written to a temporary file, synced, renamed) before the lock is released, so two
/// concurrent releases see each other's charges and never exceed the budget together.
pub fn with_locked<T>(dir: &Path, params: &Params, fingerprint: &str, f: impl FnOnce(&mut LeakageLedger) -> T) -> Result<T, CliError> {
    let lock = lock(dir)?;
    let mut ledger = read(dir, params, fingerprint)?;
    let out = f(&mut ledger);
    fsio::write_atomic(&dir.join(LEDGER_FILE), &to_json(&ledger)?)?;
    drop(lock);
    Ok(out)
}

/// Takes the key set's exclusive ledger lock (held until the returned file is dropped). Key
/// rotation holds it while it moves the key set away, so a release never charges a ledger that
/// is being retired: one waiting for the lock then finds no ledger (or the new key set's) and
/// fails closed.
pub fn lock(dir: &Path) -> Result<std::fs::File, CliError> {
    let lock_path = dir.join(LOCK_FILE);
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| CliError::io(&lock_path, "open", e))?;
    lock.lock().map_err(|e| CliError::io(&lock_path, "lock", e))?;
    Ok(lock)
}
