//! `host-eval profile` (vendor) and the hospital's reading of a profile: thin file wrappers over
//! [`clifhe_std::protocol::profile`].

use super::error::CliError;
use super::fsio;
use clifhe_core::Params;
use clifhe_std::gnn::GnnModel;
use clifhe_std::protocol::model::is_equivariant;
pub use clifhe_std::protocol::profile::{InputProfile, PROFILE_FORMAT};
use clifhe_std::protocol::VendorModel;
use std::path::Path;

/// Reads a model file of either kind (capped read: a model is a few kilobytes of JSON).
pub fn read_vendor_model(path: &Path) -> Result<VendorModel, CliError> {
    let bytes = fsio::read(path)?;
    let text = std::str::from_utf8(&bytes).map_err(|e| CliError::corrupt(path, "model", e))?;
    Ok(VendorModel::from_json(text)?)
}

/// Reads a GNN model file, refusing an equivariant one by name (for the steps that evaluate
/// 8 features: the interleaved and device paths of `infer`, `features --model`).
pub fn read_model(path: &Path) -> Result<GnnModel, CliError> {
    let bytes = fsio::read(path)?;
    let text = std::str::from_utf8(&bytes).map_err(|e| CliError::corrupt(path, "model", e))?;
    if is_equivariant(text) {
        return Err(CliError::bad_input(
            path.display(),
            "an equivariant model (train --arch equivariant) reads channels of scans, not 8 features: it is evaluated on a \
             batch encrypted for its profile (`profile`, `encrypt --profile` with scans, `infer --batch`)",
        ));
    }
    Ok(GnnModel::from_json(text)?)
}

/// `host-eval profile`: reads the model (either kind), writes its profile for the key set's
/// preset in `layout`.
pub fn write_profile(
    model: &Path,
    params: &Params,
    circuit_private: bool,
    layout: clifhe_std::protocol::BatchLayout,
    out: &Path,
) -> Result<InputProfile, CliError> {
    let model = read_vendor_model(model)?;
    let p = InputProfile::of_model_in(&model, params, circuit_private, layout)?;
    fsio::write_atomic(out, &p.to_json()?)?;
    Ok(p)
}

/// Reads and checks a profile file against the key set's preset.
pub fn read_profile(path: &Path, params: &Params) -> Result<InputProfile, CliError> {
    let bytes = fsio::read(path)?;
    InputProfile::from_json_checked(&bytes, params).map_err(|e| CliError::protocol(path, e))
}

/// The batch layouts a profile can ask for (`profile --layout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ProfileLayout {
    /// Patient p in slot p of every ciphertext, up to N/2 patients (throughput).
    BladeMajor,
    /// Every channel of up to N/(64 Hp) patients in two ciphertexts per channel: a one-layer
    /// equivariant network at low latency, with rotation keys (`evalkeys --profile`).
    Blocks,
}

impl From<ProfileLayout> for clifhe_std::protocol::BatchLayout {
    fn from(l: ProfileLayout) -> Self {
        match l {
            ProfileLayout::BladeMajor => Self::BladeMajor,
            ProfileLayout::Blocks => Self::Blocks,
        }
    }
}
