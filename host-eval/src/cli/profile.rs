//! `host-eval profile` (vendor) and the hospital's reading of a profile: thin file wrappers over
//! [`clifhe_std::protocol::profile`].

use super::error::CliError;
use super::fsio;
use clifhe_core::Params;
use clifhe_std::gnn::GnnModel;
pub use clifhe_std::protocol::profile::{fingerprint, InputProfile, PROFILE_FORMAT};
use std::path::Path;

/// Reads a model file (capped read: a model is a few kilobytes of JSON).
pub fn read_model(path: &Path) -> Result<GnnModel, CliError> {
    let bytes = fsio::read(path)?;
    let text = std::str::from_utf8(&bytes).map_err(|e| CliError::corrupt(path, "model", e))?;
    if super::equivariant::is_equivariant_model(text) {
        return Err(CliError::bad_input(
            path.display(),
            "an equivariant model (train --arch equivariant): predict evaluates it in plaintext and `demo --arch equivariant` shows its encrypted evaluation, but profile and infer read GNN models only so far",
        ));
    }
    Ok(GnnModel::from_json(text)?)
}

/// `host-eval profile`: reads the model, writes its profile for the key set's preset.
pub fn write_profile(model: &Path, params: &Params, circuit_private: bool, out: &Path) -> Result<InputProfile, CliError> {
    let model = read_model(model)?;
    let p = InputProfile::of_model(&model, params, circuit_private)?;
    fsio::write_atomic(out, &p.to_json()?)?;
    Ok(p)
}

/// Reads and checks a profile file against the key set's preset.
pub fn read_profile(path: &Path, params: &Params) -> Result<InputProfile, CliError> {
    let bytes = fsio::read(path)?;
    InputProfile::from_json_checked(&bytes, params).map_err(|e| CliError::protocol(path, e))
}
