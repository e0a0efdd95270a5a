//! AdrenalMNIST3D channels for the equivariant tests: every scan through the MedMNIST
//! pipeline, then 4 intensity shells and the 3 principal axes.
#![allow(dead_code, clippy::unwrap_used)]

use clifhe_core::multivector::features::VolumeView;
use clifhe_core::Multivector;
use clifhe_std::gnn::equivariant_model::ChannelSpec;
use clifhe_std::preprocess::PipelinePreset;
use rayon::prelude::*;
use std::path::PathBuf;

pub const SPEC: ChannelSpec = host_eval::cli::equivariant::CHANNELS;

pub type Channels = Vec<Vec<Multivector>>;

/// The dataset file beside the repository.
pub fn dataset_path() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/adrenalmnist3d.npz")
}

/// Channels and labels of every scan of a split.
pub fn channels(split: &host_eval::data::npz::Split) -> (Channels, Vec<usize>) {
    let pipeline = PipelinePreset::Medmnist.pipeline();
    let xs = (0..split.len())
        .into_par_iter()
        .map(|i| {
            let v = split.volume(i).unwrap();
            let p = pipeline.prepare(&v.data, v.dims, v.spacing_mm).unwrap();
            let view = VolumeView::new(&p.data, p.dims, p.spacing_mm).unwrap();
            SPEC.compute(&view, &p.feature_config).unwrap()
        })
        .collect();
    (xs, split.labels.iter().map(|&l| l as usize).collect())
}
