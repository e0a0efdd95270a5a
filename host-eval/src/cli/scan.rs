//! Scans and dataset samples to multivector features: the data loaders (`crate::data`) read
//! the volume, the model's preprocessing pipeline (`clifhe_std::preprocess`) prepares it, and
//! `clifhe_core::multivector::features::scan_features` reduces it to 8 numbers.

use super::error::CliError;
use super::inputs::Patient;
use crate::data::{self, DataError, Volume};
use clifhe_core::multivector::features::{scan_features, VolumeView};
use clifhe_std::preprocess::Pipeline;
use std::path::Path;

/// The pipeline of a model file that records none (formats 1 and 2), as those models were
/// trained: MedMNIST volumes are 8-bit (masks in {0, 255}), so `.npz` sources are divided by
/// 255 and the scalar feature is the volume fraction, as in the dataset's README; other
/// formats are taken as they are. Models of format 3 record their pipeline and never use this.
pub fn legacy_pipeline(spec: &str) -> Pipeline {
    let file = spec.rsplit_once('#').map_or(spec, |(f, _)| f);
    Pipeline::scale(if file.to_ascii_lowercase().ends_with(".npz") { 255.0 } else { 1.0 })
}

/// The pipeline `spec`'s features go through: the one the model (or its profile) records, else
/// [`legacy_pipeline`].
pub fn pipeline_for(recorded: Option<&Pipeline>, spec: &str) -> Pipeline {
    recorded.cloned().unwrap_or_else(|| legacy_pipeline(spec))
}

/// The file part of a loader spec (`file.npz#test:3` -> `file.npz`), checked to exist so that a
/// missing file is reported as such (exit code 3), not as a format problem.
fn check_exists(spec: &str) -> Result<(), CliError> {
    let path = if Path::new(spec).exists() {
        spec
    } else {
        spec.rsplit_once('#').map_or(spec, |(p, _)| p)
    };
    std::fs::metadata(path).map(|_| ()).map_err(|e| CliError::io(path, "read", e))
}

fn data_error(spec: &str, e: DataError) -> CliError {
    match e {
        DataError::Io { path, source } => CliError::io(path, "read", source),
        other => CliError::bad_input(spec, other),
    }
}

/// Features of a loaded volume after `pipeline`.
pub fn volume_features(volume: &Volume, pipeline: &Pipeline, source: &str) -> Result<[f64; 8], CliError> {
    let prepared = pipeline
        .prepare(&volume.data, volume.dims, volume.spacing_mm)
        .map_err(|e| CliError::bad_input(source, e))?;
    let view = VolumeView::new(&prepared.data, prepared.dims, prepared.spacing_mm).map_err(|e| CliError::bad_input(source, e))?;
    let mv = scan_features(&view, &prepared.feature_config).map_err(|e| CliError::bad_input(source, e))?;
    let f = mv.coeffs();
    if f.iter().any(|v| !v.is_finite()) {
        return Err(CliError::bad_input(source, "features are not finite"));
    }
    Ok(f)
}

/// Features of one scan (`path`, or `file.npz#split:index`) after the recorded pipeline
/// ([`pipeline_for`]).
pub fn features_of(spec: &str, recorded: Option<&Pipeline>) -> Result<[f64; 8], CliError> {
    volume_features(&volume_of(spec)?, &pipeline_for(recorded, spec), spec)
}

/// One scan or dataset sample (`path`, or `file.npz#split:index`) as loaded, before any
/// preprocessing.
pub fn volume_of(spec: &str) -> Result<Volume, CliError> {
    check_exists(spec)?;
    data::load_volume(spec).map_err(|e| data_error(spec, e))
}

/// Features of samples `start..end` of `split` in a MedMNIST `.npz` file: the split is
/// decompressed once for the whole range.
pub fn dataset_range(path: &Path, split: &str, start: usize, end: usize, recorded: Option<&Pipeline>) -> Result<Vec<Patient>, CliError> {
    let pipeline = pipeline_for(recorded, &path.display().to_string());
    dataset_volumes(path, split, start, end)?
        .into_iter()
        .map(|(source, volume)| {
            Ok(Patient {
                features: volume_features(&volume, &pipeline, &source)?,
                source,
            })
        })
        .collect()
}

/// Samples `start..end` of `split` in a MedMNIST `.npz` file with their sources
/// (`file.npz#split:i`); the split is decompressed once for the whole range.
pub fn dataset_volumes(path: &Path, split: &str, start: usize, end: usize) -> Result<Vec<(String, Volume)>, CliError> {
    let name = path.display().to_string();
    check_exists(&name)?;
    if !matches!(split, "train" | "val" | "test") {
        return Err(CliError::bad_input(&name, format!("unknown split '{split}' (train, val or test)")));
    }
    let dataset = data::npz::load_medmnist_npz(path).map_err(|e| data_error(&name, e))?;
    let samples = match split {
        "train" => &dataset.train,
        "val" => &dataset.val,
        _ => &dataset.test,
    };
    if end > samples.len() {
        return Err(CliError::bad_input(
            format!("{name}#{split}:{start}..{end}"),
            format!("{split} has {} samples, the range ends at {end}", samples.len()),
        ));
    }
    (start..end)
        .map(|i| {
            let source = format!("{name}#{split}:{i}");
            let volume = samples
                .volume(i)
                .ok_or_else(|| CliError::bad_input(&source, "sample out of range"))?;
            Ok((source, volume))
        })
        .collect()
}
