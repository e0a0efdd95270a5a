//! `train --arch equivariant`: the rotation-invariant network of issue 13 on the channels of
//! each scan (`clifhe_std::gnn::equivariant_model::ChannelSpec`), trained, scored on the test
//! split and written as an equivariant model file (`docs/model-format.md`).
//!
//! The channels are computed from the volumes, so the sources are those that hold volumes: the
//! built-in phantoms and MedMNIST files. `predict` scores scans and dataset samples with it
//! ([`predict`]). Encrypted, it runs end to end in `demo --arch equivariant`
//! (`super::equivariant_demo`), and a `--circuit-private` model goes through `profile`,
//! `encrypt --profile` (channels from [`input_channels`]), `infer` and `release` like a GNN
//! (`clifhe_std::protocol`).

use super::error::CliError;
use super::fsio;
use super::protocol::{PlainPrediction, PredictReport, TrainSource};
use clifhe_core::multivector::features::VolumeView;
use clifhe_core::Multivector;
use clifhe_std::gnn::equivariant_model::{ChannelSpec, EquivariantModel};
use clifhe_std::gnn::equivariant_policy::{InputBounds, DOMAIN_MARGIN};
use clifhe_std::gnn::equivariant_train::{train_equivariant, EquivariantConfig};
use clifhe_std::gnn::{ChannelLogisticRegression, Metrics};
use clifhe_std::preprocess::{Pipeline, PipelinePreset};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// The model architecture `train` builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    /// The 8-feature geometric-product network (1 -> 16 -> 8 -> C) that `infer` evaluates.
    Gnn,
    /// The rotation-invariant Clifford network on intensity shells and principal axes.
    Equivariant,
}

/// The channels `train --arch equivariant` uses: 4 tent-weighted intensity shells, the
/// principal axes and the interior depth (chosen by measurement on AdrenalMNIST3D and the
/// rotated phantoms, BENCHMARKS.md).
pub const CHANNELS: ChannelSpec = ChannelSpec {
    shells: 4,
    principal_axes: true,
    depth: true,
    shell_weighting: clifhe_core::multivector::channels::ShellWeighting::Tent,
};

/// What `train --arch equivariant` reports.
#[derive(Debug, serde::Serialize)]
pub struct EquivariantSummary {
    pub arch: Architecture,
    pub dataset: String,
    pub classes: usize,
    pub train_samples: usize,
    pub val_samples: usize,
    pub test_samples: usize,
    pub channels: ChannelSpec,
    /// Hidden channels per layer.
    pub hidden: Vec<usize>,
    /// Whether this is the network the circuit-private encrypted evaluation fits
    /// (`--circuit-private`: one layer of 8 channels without gates).
    pub circuit_private: bool,
    pub parameters: usize,
    pub epochs_run: usize,
    pub preprocessing: Pipeline,
    pub test_accuracy: f64,
    pub test_balanced_accuracy: f64,
    pub test_auc: Option<f64>,
    /// Logistic regression on the same channel coefficients (the linear baseline), test AUC.
    pub logistic_auc: Option<f64>,
    pub model: PathBuf,
}

pub(crate) type Split = (Vec<Vec<Multivector>>, Vec<usize>);

/// Channels of a labelled source, split.
pub(crate) struct LabelledChannels {
    pub class_names: Vec<String>,
    pub train: Split,
    pub val: Split,
    pub test: Split,
    pub pipeline: Pipeline,
    pub source: String,
}

fn channels_of(volume: &crate::data::Volume, pipeline: &Pipeline, source: &str) -> Result<Vec<Multivector>, CliError> {
    channels_with(volume, pipeline, CHANNELS, source)
}

/// A loaded volume to the channels `model` reads, through the preprocessing it records (or, for
/// a model that records none, the rule for `source`): what `predict` and the Python package
/// compute for a scan.
///
/// # Errors
///
/// [`CliError::BadInput`] naming `source` if the volume cannot be prepared or has non-finite
/// voxels.
pub fn model_channels(model: &EquivariantModel, volume: &crate::data::Volume, source: &str) -> Result<Vec<Multivector>, CliError> {
    let pipeline = super::scan::pipeline_for(model.preprocessing.as_ref(), source);
    channels_with(volume, &pipeline, model.channels, source)
}

/// A loaded volume through `pipeline` to the channels of `spec`.
fn channels_with(volume: &crate::data::Volume, pipeline: &Pipeline, spec: ChannelSpec, source: &str) -> Result<Vec<Multivector>, CliError> {
    let p = pipeline
        .prepare(&volume.data, volume.dims, volume.spacing_mm)
        .map_err(|e| CliError::bad_input(source, e))?;
    let view = VolumeView::new(&p.data, p.dims, p.spacing_mm).map_err(|e| CliError::bad_input(source, e))?;
    spec.compute(&view, &p.feature_config).map_err(|e| CliError::bad_input(source, e))
}

pub(crate) fn labelled_channels(source: &TrainSource, seed: u64) -> Result<LabelledChannels, CliError> {
    match source {
        TrainSource::Phantoms { per_class, max_tilt_deg } => {
            use crate::phantom::{generate, split_of, PhantomClass, PhantomConfig, Split as Part};
            let pipeline = PipelinePreset::Raw.pipeline();
            let cfg = PhantomConfig {
                seed,
                max_tilt_deg: *max_tilt_deg,
                ..PhantomConfig::default()
            };
            let items: Vec<(usize, PhantomClass)> = (0..*per_class).flat_map(|i| PhantomClass::ALL.map(|c| (i, c))).collect();
            let all: Vec<(Part, Vec<Multivector>, usize)> = items
                .par_iter()
                .map(|&(i, c)| {
                    let v = generate(&cfg, c, i as u64);
                    Ok((split_of(i as u64, *per_class), channels_of(&v, &pipeline, "phantom")?, c.label() as usize))
                })
                .collect::<Result<_, CliError>>()?;
            let pick = |part: Part| -> Split { all.iter().filter(|s| s.0 == part).map(|s| (s.1.clone(), s.2)).unzip() };
            Ok(LabelledChannels {
                class_names: PhantomClass::ALL.iter().map(|c| c.name().to_string()).collect(),
                train: pick(Part::Train),
                val: pick(Part::Val),
                test: pick(Part::Test),
                pipeline,
                source: super::labelled::phantom_source(*per_class, seed, *max_tilt_deg),
            })
        }
        TrainSource::Medmnist(path) => {
            let pipeline = PipelinePreset::Medmnist.pipeline();
            let name = path.display().to_string();
            let d = crate::data::npz::load_medmnist_npz(path).map_err(|e| CliError::bad_input(&name, e))?;
            let split = |s: &crate::data::npz::Split| -> Result<Split, CliError> {
                let xs = (0..s.len())
                    .into_par_iter()
                    .map(|i| {
                        let v = s.volume(i).ok_or_else(|| CliError::bad_input(&name, "sample out of range"))?;
                        channels_of(&v, &pipeline, &name)
                    })
                    .collect::<Result<_, CliError>>()?;
                Ok((xs, s.labels.iter().map(|&l| l as usize).collect()))
            };
            let (train, val, test) = (split(&d.train)?, split(&d.val)?, split(&d.test)?);
            let classes = train.1.iter().chain(&test.1).max().map_or(2, |&m| m + 1).max(2);
            let names = if classes == 2 {
                vec!["normal".to_string(), "abnormal".to_string()]
            } else {
                (0..classes).map(|c| format!("class {c}")).collect()
            };
            Ok(LabelledChannels {
                class_names: names,
                train,
                val,
                test,
                pipeline,
                source: name,
            })
        }
        TrainSource::Scans { .. } | TrainSource::Features { .. } => Err(CliError::bad_input(
            "--arch equivariant",
            "reads the channels of volumes: use the built-in phantoms or --dataset FILE.npz (a features CSV has no volumes; scan folders are not wired to this architecture yet)",
        )),
    }
}

/// Trains on the source's train split (validation split for early stopping; three seeds from
/// `seed`, the best validation loss kept), scores the test split, writes the model file.
///
/// # Errors
///
/// Bad or unreadable data, a source without volumes, training failure, or the file write.
pub fn train(source: &TrainSource, seed: u64, circuit_private: bool, out: &Path) -> Result<EquivariantSummary, CliError> {
    let LabelledChannels {
        class_names: names,
        train,
        val,
        test,
        pipeline,
        source: dataset,
    } = labelled_channels(source, seed)?;
    let classes = names.len();
    let valset = (!val.0.is_empty()).then_some((val.0.as_slice(), val.1.as_slice()));
    let mut best: Option<(f64, EquivariantModel, usize, usize)> = None;
    for s in seed..seed + 3 {
        let cfg = if circuit_private {
            EquivariantConfig::circuit_private(s)
        } else {
            EquivariantConfig {
                hidden: vec![8, 8],
                gates: true,
                ..EquivariantConfig::circuit_private(s)
            }
        };
        let (net, rep) = train_equivariant(&train.0, &train.1, valset, classes, &cfg)?;
        let loss = rep.best_val_loss.unwrap_or(f64::INFINITY);
        if best.as_ref().is_none_or(|b| loss < b.0) {
            let model = EquivariantModel::new(names.clone(), CHANNELS, Some(pipeline.clone()), net)?;
            best = Some((loss, model, rep.parameters, rep.epochs_run));
        }
    }
    let (_, model, parameters, epochs_run) = best.ok_or_else(|| CliError::bad_input("train", "no model trained"))?;
    // The public input domain: the training and validation scans' grade norms with a margin.
    let seen: Vec<Vec<Multivector>> = train.0.iter().chain(&val.0).cloned().collect();
    let model = model.with_input_domain(InputBounds::covering(&seen, DOMAIN_MARGIN))?;
    let scores = test.0.iter().map(|x| model.scores(x)).collect::<Result<Vec<_>, _>>()?;
    let m = Metrics::from_scores(&scores, &test.1, classes)?;
    let lr = ChannelLogisticRegression::train(&train.0, &train.1, classes, 1e-3, true, 2000)?;
    let lr_scores: Vec<Vec<f64>> = test.0.iter().map(|x| lr.scores(x)).collect();
    let baseline = Metrics::from_scores(&lr_scores, &test.1, classes)?.auc;
    fsio::write_atomic(out, model.to_json()?.as_bytes())?;
    Ok(EquivariantSummary {
        arch: Architecture::Equivariant,
        dataset,
        classes,
        train_samples: train.0.len(),
        val_samples: val.0.len(),
        test_samples: test.0.len(),
        channels: CHANNELS,
        hidden: model.net.layers.iter().map(|l| l.linear.outputs).collect(),
        circuit_private,
        parameters,
        epochs_run,
        preprocessing: pipeline,
        test_accuracy: m.accuracy,
        test_balanced_accuracy: m.balanced_accuracy,
        test_auc: m.auc,
        logistic_auc: baseline,
        model: out.to_path_buf(),
    })
}

/// Reads and validates an equivariant model file (a GNN model file is refused by name).
///
/// # Errors
///
/// The file unreadable ([`CliError::Io`]), not UTF-8, or not a valid equivariant model.
pub fn read_model(path: &Path) -> Result<EquivariantModel, CliError> {
    let bytes = fsio::read(path)?;
    let text = std::str::from_utf8(&bytes).map_err(|e| CliError::corrupt(path, "model", e))?;
    Ok(EquivariantModel::from_json(text)?)
}

/// The volumes of `--input` specs (scans and dataset samples, each with its source), in order:
/// what the channels are computed from.
///
/// # Errors
///
/// Unreadable or malformed inputs, a features file (the channels need the volume), or an empty
/// input list.
pub fn input_volumes(inputs: &[String]) -> Result<Vec<(String, crate::data::Volume)>, CliError> {
    use super::inputs::{parse_spec, InputSpec};
    let mut volumes = Vec::new();
    for spec in inputs {
        match parse_spec(spec)? {
            InputSpec::Features(path) => {
                return Err(CliError::bad_input(
                    path.display(),
                    "an equivariant model reads the scan's channels: give scans or dataset samples, not features",
                ))
            }
            InputSpec::Scan(s) => volumes.push((s.clone(), super::scan::volume_of(&s)?)),
            InputSpec::DatasetRange { path, split, start, end } => {
                volumes.extend(super::scan::dataset_volumes(&path, &split, start, end)?);
            }
        }
    }
    if volumes.is_empty() {
        return Err(CliError::bad_input("--input", "no patients"));
    }
    Ok(volumes)
}

/// The channels of `spec` for every `--input` ([`input_volumes`]), each scan through
/// `preprocessing` (an equivariant profile's, at the hospital, which has no model; a profile
/// that records none takes the rule for the source): source and channels per patient, in
/// order, computed in parallel.
///
/// # Errors
///
/// As [`input_volumes`], and a volume that cannot be prepared.
pub fn input_channels(
    inputs: &[String],
    spec: ChannelSpec,
    preprocessing: Option<&Pipeline>,
) -> Result<Vec<(String, Vec<Multivector>)>, CliError> {
    input_volumes(inputs)?
        .into_par_iter()
        .map(|(source, volume)| {
            let pipeline = super::scan::pipeline_for(preprocessing, &source);
            let channels = channels_with(&volume, &pipeline, spec, &source)?;
            Ok((source, channels))
        })
        .collect()
}

/// `predict` with an equivariant model: scans and dataset samples (`--input` as for
/// `encrypt`) through the model's pipeline to its channels, then scores and argmax. Features
/// files are refused: the channels need the volume. `out_of_box` flags a patient whose channels
/// lie outside the model's recorded input domain (the hospital's clamp would move them);
/// `max_abs_intermediate` is the largest |coefficient| of a hidden channel.
///
/// # Errors
///
/// Unreadable or malformed inputs, a features file, or an empty input list.
pub fn predict(model: &EquivariantModel, inputs: &[String]) -> Result<PredictReport, CliError> {
    let volumes = input_volumes(inputs)?;
    let labels = model.class_names.clone();
    let mut largest = 0f64;
    let patients = volumes
        .into_iter()
        .enumerate()
        .map(|(i, (source, volume))| {
            let channels = model_channels(model, &volume, &source)?;
            let scores = model.scores(&channels)?;
            largest = largest.max(
                model
                    .net
                    .max_abs_intermediate(&clifhe_std::gnn::equivariant_train::with_constant_channel(&channels)),
            );
            let class = model.predict(&channels)?;
            Ok(PlainPrediction {
                patient: i,
                source,
                scores,
                class,
                label: labels.get(class).cloned().unwrap_or_default(),
                out_of_box: !model.in_domain(&channels),
            })
        })
        .collect::<Result<Vec<_>, CliError>>()?;
    Ok(PredictReport {
        labels,
        max_abs_intermediate: largest,
        patients,
    })
}
