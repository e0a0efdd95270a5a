//! The equivariant model as a file: which channels it reads ([`ChannelSpec`], one
//! implementation of the channel computation for every caller), its class names, the
//! preprocessing its channels went through, and the network. JSON like the GNN's model file
//! (`docs/model-format.md`), with its own `kind` so neither loader mistakes the other's file.

use clifhe_core::multivector::axes::{axis_channels, AXES};
use clifhe_core::multivector::channels::{shell_channels, ShellConfig, ShellWeighting, MAX_SHELLS};
use clifhe_core::multivector::depth::{depth_channel, depth_scratch_len};
use clifhe_core::multivector::features::{FeatureConfig, FeatureError, VolumeView, Voxel};
use clifhe_core::Multivector;
use serde::{Deserialize, Serialize};
use std::path::Path;

use super::equivariant::EquivariantNet;
use super::error::GnnError;
use super::model::{argmax, check_format_version, read_model_text};

/// Version of this file format.
pub const EQUIVARIANT_FORMAT_VERSION: u32 = 1;
/// The `kind` field of an equivariant model file.
pub const EQUIVARIANT_KIND: &str = "equivariant";

/// The input channels of a scan, in order: `shells` equal-width intensity shells over [0, 1]
/// of the scaled intensity ([`shell_channels`]), then, if `principal_axes`, the three
/// principal-axis channels ([`axis_channels`]), then, if `depth`, the interior depth channel
/// ([`depth_channel`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelSpec {
    /// Intensity shells K (0 ..= `MAX_SHELLS`).
    pub shells: usize,
    /// Whether the three principal axes follow.
    pub principal_axes: bool,
    /// Whether the interior depth channel follows (absent in files written before it existed:
    /// false).
    #[serde(default)]
    pub depth: bool,
    /// How the shells weight intensities (absent in files written before tents existed:
    /// `"Hard"`). `Tent` keeps the channels continuous under resampling.
    #[serde(default, with = "ShellWeightingDef")]
    pub shell_weighting: ShellWeighting,
}

/// The model file's spelling of core's [`ShellWeighting`] (core has no serde).
#[derive(Serialize, Deserialize)]
#[serde(remote = "ShellWeighting")]
enum ShellWeightingDef {
    Hard,
    Tent,
}

impl ChannelSpec {
    /// Channels per scan.
    #[must_use]
    pub fn count(&self) -> usize {
        self.shells + if self.principal_axes { AXES } else { 0 } + usize::from(self.depth)
    }

    fn check(&self) -> Result<(), FeatureError> {
        if self.shells > MAX_SHELLS || self.count() == 0 {
            return Err(FeatureError::BadConfig);
        }
        Ok(())
    }

    /// The channels of one prepared volume (`cfg`: its intensity scale).
    ///
    /// # Errors
    ///
    /// [`FeatureError::BadConfig`] for a spec with no channel or too many shells or a bad
    /// scale, [`FeatureError::NonFiniteVoxel`] for a NaN or infinite voxel.
    pub fn compute<T: Voxel>(&self, v: &VolumeView<'_, T>, cfg: &FeatureConfig) -> Result<Vec<Multivector>, FeatureError> {
        self.check()?;
        let mut out = vec![Multivector::zero(); self.count()];
        if self.shells > 0 {
            let shells = ShellConfig::uniform(cfg.intensity_scale, self.shells)?.with_weighting(self.shell_weighting);
            shell_channels(v, &shells, &mut out[..self.shells])?;
        }
        if self.principal_axes {
            axis_channels(v, cfg, &mut out[self.shells..])?;
        }
        if self.depth {
            let (voxels, line_len) = depth_scratch_len(v.dims())?;
            let (mut depths, mut line) = (vec![0u8; voxels], vec![0u16; line_len]);
            let last = out.len() - 1;
            depth_channel(v, cfg, &mut depths, &mut line, &mut out[last])?;
        }
        Ok(out)
    }
}

/// A trained equivariant model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EquivariantModel {
    /// [`EQUIVARIANT_FORMAT_VERSION`].
    pub format_version: u32,
    /// Always [`EQUIVARIANT_KIND`].
    pub kind: String,
    /// Names of the classes, index = class.
    pub class_names: Vec<String>,
    /// The channels the network reads (the constant channel 1 is appended after them).
    pub channels: ChannelSpec,
    /// The preprocessing the training scans went through (`None`: channels of unstated origin).
    pub preprocessing: Option<crate::preprocess::Pipeline>,
    /// The network.
    pub net: EquivariantNet,
    /// The public input domain (per channel and grade a norm bound, from the training and
    /// validation scans): what an encrypted evaluation's bounds and flood cover, and where the
    /// hospital clamps to. `None` in files written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_domain: Option<super::equivariant_policy::InputBounds>,
}

impl EquivariantModel {
    /// Wraps a trained network; validates the whole.
    ///
    /// # Errors
    ///
    /// [`GnnError::InvalidModel`] if the parts do not fit together.
    pub fn new(
        class_names: Vec<String>,
        channels: ChannelSpec,
        preprocessing: Option<crate::preprocess::Pipeline>,
        net: EquivariantNet,
    ) -> Result<Self, GnnError> {
        let m = Self {
            format_version: EQUIVARIANT_FORMAT_VERSION,
            kind: EQUIVARIANT_KIND.into(),
            class_names,
            channels,
            preprocessing,
            net,
            input_domain: None,
        };
        m.validate()?;
        Ok(m)
    }

    /// The model with its public input domain recorded; validated.
    ///
    /// # Errors
    ///
    /// [`GnnError::InvalidModel`] if the domain does not fit the model's channels.
    pub fn with_input_domain(mut self, domain: super::equivariant_policy::InputBounds) -> Result<Self, GnnError> {
        self.input_domain = Some(domain);
        self.validate()?;
        Ok(self)
    }

    /// Whether one scan's channels lie in the recorded input domain (`true` without one).
    #[must_use]
    pub fn in_domain(&self, channels: &[Multivector]) -> bool {
        self.input_domain.as_ref().is_none_or(|d| d.contains(channels))
    }

    /// Checks every shape and value: the channel counts chain from the spec (plus the constant
    /// channel) through the layers to the readout, one bias and one name per class, all finite.
    ///
    /// # Errors
    ///
    /// [`GnnError::UnsupportedVersion`] or [`GnnError::InvalidModel`].
    pub fn validate(&self) -> Result<(), GnnError> {
        let bad = |m: String| Err(GnnError::InvalidModel(m));
        if self.format_version != EQUIVARIANT_FORMAT_VERSION {
            return Err(GnnError::UnsupportedVersion {
                found: self.format_version,
                supported: EQUIVARIANT_FORMAT_VERSION,
            });
        }
        if self.kind != EQUIVARIANT_KIND {
            return bad(format!("kind {:?} is not {EQUIVARIANT_KIND:?}", self.kind));
        }
        if self.channels.check().is_err() {
            return bad(format!("unusable channel spec {:?}", self.channels));
        }
        let classes = self.class_names.len();
        if classes < 2 {
            return bad(format!("{classes} class names (need at least 2)"));
        }
        if self.net.layers.is_empty() {
            return bad("no layer".into());
        }
        let finite = |v: &[f64]| v.iter().all(|x| x.is_finite());
        let mut width = self.channels.count() + 1;
        for (i, l) in self.net.layers.iter().enumerate() {
            let outputs = l.linear.outputs;
            for m in [&l.linear, &l.left, &l.right] {
                if m.inputs != width || m.outputs != outputs || Some(m.weights.len()) != width.checked_mul(outputs) || outputs == 0 {
                    return bad(format!(
                        "layer {i}: a map of {} -> {} channels does not chain from {width}",
                        m.inputs, m.outputs
                    ));
                }
                if !m.weights.iter().all(|w| finite(w)) {
                    return bad(format!("layer {i} has a non-finite weight"));
                }
            }
            if l.product.len() != outputs || l.gate.len() != outputs {
                return bad(format!("layer {i}: product or gate weights for other than {outputs} channels"));
            }
            if !l.product.iter().all(|w| finite(w)) || !l.gate.iter().all(|w| finite(w)) {
                return bad(format!("layer {i} has a non-finite weight"));
            }
            width = outputs;
        }
        let r = &self.net.readout;
        if r.bias.len() != classes || Some(r.weights.len()) != classes.checked_mul(width) {
            return bad(format!(
                "readout of {} weights and {} biases for {classes} classes of {width} channels",
                r.weights.len(),
                r.bias.len()
            ));
        }
        if !r.weights.iter().all(|w| finite(w)) || !finite(&r.bias) {
            return bad("readout has a non-finite weight".into());
        }
        if let Some(p) = &self.preprocessing {
            p.validate().map_err(|e| GnnError::InvalidModel(e.to_string()))?;
        }
        if let Some(d) = &self.input_domain {
            d.validate(self.channels.count())
                .map_err(|e| GnnError::InvalidModel(e.to_string()))?;
        }
        Ok(())
    }

    /// Class scores of one scan's channels (as [`ChannelSpec::compute`] gives them).
    ///
    /// # Errors
    ///
    /// [`GnnError::InvalidInput`] for the wrong number of channels or a non-finite value.
    pub fn scores(&self, channels: &[Multivector]) -> Result<Vec<f64>, GnnError> {
        if channels.len() != self.channels.count() {
            return Err(GnnError::InvalidInput(format!(
                "{} channels for a model that reads {}",
                channels.len(),
                self.channels.count()
            )));
        }
        if channels.iter().any(|c| c.coeffs().iter().any(|v| !v.is_finite())) {
            return Err(GnnError::InvalidInput("non-finite channel".into()));
        }
        Ok(self.net.scores(&super::equivariant_train::with_constant_channel(channels)))
    }

    /// The predicted class of one scan's channels.
    ///
    /// # Errors
    ///
    /// As [`Self::scores`].
    pub fn predict(&self, channels: &[Multivector]) -> Result<usize, GnnError> {
        Ok(argmax(&self.scores(channels)?))
    }

    /// Pretty JSON.
    ///
    /// # Errors
    ///
    /// [`GnnError::Json`] (not expected for a validated model).
    pub fn to_json(&self) -> Result<String, GnnError> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// Parses and validates. The version and kind are read first, so a newer file or a GNN
    /// model file gets a precise error rather than a schema error.
    ///
    /// # Errors
    ///
    /// [`GnnError::Json`], [`GnnError::UnsupportedVersion`] or [`GnnError::InvalidModel`].
    pub fn from_json(s: &str) -> Result<Self, GnnError> {
        let v: serde_json::Value = serde_json::from_str(s)?;
        if v.get("kind").and_then(serde_json::Value::as_str) != Some(EQUIVARIANT_KIND) {
            return Err(GnnError::InvalidModel(format!(
                "not an equivariant model file (kind is not {EQUIVARIANT_KIND:?})"
            )));
        }
        check_format_version(&v, EQUIVARIANT_FORMAT_VERSION, EQUIVARIANT_FORMAT_VERSION)?;
        let m: Self = serde_json::from_value(v)?;
        m.validate()?;
        Ok(m)
    }

    /// Writes the JSON file.
    ///
    /// # Errors
    ///
    /// [`GnnError::Io`] or [`GnnError::Json`].
    pub fn save(&self, path: &Path) -> Result<(), GnnError> {
        std::fs::write(path, self.to_json()?)?;
        Ok(())
    }

    /// Reads and validates a model file.
    ///
    /// # Errors
    ///
    /// As [`Self::from_json`], or [`GnnError::Io`].
    pub fn load(path: &Path) -> Result<Self, GnnError> {
        Self::from_json(&read_model_text(path)?)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::gnn::equivariant_train::{train_equivariant, EquivariantConfig};
    use rand_chacha::rand_core::{RngCore, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    fn small_model() -> (EquivariantModel, Vec<Vec<Multivector>>) {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let mut u = || (rng.next_u64() as f64 / u64::MAX as f64) - 0.5;
        let xs: Vec<Vec<Multivector>> = (0..30)
            .map(|_| (0..4).map(|_| Multivector::new(core::array::from_fn(|_| u()))).collect())
            .collect();
        let ys: Vec<usize> = (0..30).map(|i| i % 2).collect();
        let cfg = EquivariantConfig {
            hidden: vec![3, 2],
            epochs: 3,
            ..EquivariantConfig::default()
        };
        let net = train_equivariant(&xs, &ys, None, 2, &cfg).unwrap().0;
        let spec = ChannelSpec {
            shells: 1,
            principal_axes: true,
            depth: false,
            shell_weighting: ShellWeighting::Tent,
        };
        let m = EquivariantModel::new(vec!["normal".into(), "abnormal".into()], spec, None, net).unwrap();
        (m, xs)
    }

    #[test]
    fn file_round_trip_gives_the_same_scores() {
        let (m, xs) = small_model();
        let back = EquivariantModel::from_json(&m.to_json().unwrap()).unwrap();
        assert_eq!(back, m);
        for x in &xs {
            assert_eq!(back.scores(x).unwrap(), m.scores(x).unwrap());
        }
        assert!(m.scores(&xs[0][..3]).is_err());
        let mut nan = xs[0].clone();
        nan[1] = Multivector::new([f64::NAN; 8]);
        assert!(m.scores(&nan).is_err());
    }

    #[test]
    fn inconsistent_or_foreign_files_are_typed_errors() {
        let (m, _) = small_model();
        let json: serde_json::Value = serde_json::from_str(&m.to_json().unwrap()).unwrap();
        let with = |path: &[&str], value: serde_json::Value| {
            let mut j = json.clone();
            let mut at = &mut j;
            for p in &path[..path.len() - 1] {
                at = if let Ok(i) = p.parse::<usize>() { &mut at[i] } else { &mut at[*p] };
            }
            at[path[path.len() - 1]] = value;
            EquivariantModel::from_json(&j.to_string())
        };
        assert!(matches!(
            with(&["format_version"], 2.into()),
            Err(GnnError::UnsupportedVersion { found: 2, .. })
        ));
        assert!(matches!(with(&["kind"], "gnn".into()), Err(GnnError::InvalidModel(_))));
        assert!(matches!(
            with(&["class_names"], serde_json::json!(["one"])),
            Err(GnnError::InvalidModel(_))
        ));
        assert!(matches!(
            with(&["channels", "shells"], 2.into()),
            Err(GnnError::InvalidModel(m)) if m.contains("chain")
        ));
        assert!(matches!(with(&["channels", "shells"], 99.into()), Err(GnnError::InvalidModel(_))));
        // the weighting is written by name; files from before it existed mean hard shells
        assert_eq!(json["channels"]["shell_weighting"], "Tent");
        let mut old = json.clone();
        old["channels"].as_object_mut().unwrap().remove("shell_weighting");
        let loaded = EquivariantModel::from_json(&old.to_string()).unwrap();
        assert_eq!(loaded.channels.shell_weighting, ShellWeighting::Hard);
        assert!(with(&["channels", "shell_weighting"], "Soft".into()).is_err());
        assert!(matches!(
            with(&["net", "readout", "bias"], serde_json::json!([0.0])),
            Err(GnnError::InvalidModel(_))
        ));
        assert!(with(&["net", "layers"], serde_json::json!([])).is_err());
        // Declared widths whose product overflows are refused, not multiplied.
        let huge = serde_json::json!(u64::MAX / 2);
        assert!(matches!(
            with(&["net", "layers", "0", "linear", "outputs"], huge.clone()),
            Err(GnnError::InvalidModel(_))
        ));
        assert!(matches!(
            with(&["net", "layers", "1", "linear", "inputs"], huge),
            Err(GnnError::InvalidModel(_))
        ));
        assert!(with(&["net"], serde_json::json!("x")).is_err());
        // A GNN model file and garbage.
        assert!(matches!(
            EquivariantModel::from_json(r#"{"format_version": 3, "classes": 2}"#),
            Err(GnnError::InvalidModel(_))
        ));
        assert!(matches!(EquivariantModel::from_json("{"), Err(GnnError::Json(_))));
        let text = m.to_json().unwrap();
        for cut in [1, text.len() / 3, text.len() - 2] {
            assert!(EquivariantModel::from_json(&text[..cut]).is_err());
        }
    }

    #[test]
    fn channel_spec_counts_and_computes() {
        let n = 8;
        let v: Vec<f32> = (0..n * n * n).map(|i| ((i * 7 % 11) as f32) / 10.0).collect();
        let view = VolumeView::new(&v[..], [n; 3], [1.0; 3]).unwrap();
        let cfg = FeatureConfig::default();
        for (shells, axes, depth) in [
            (1, true, true),
            (4, false, false),
            (0, true, false),
            (3, true, true),
            (0, false, true),
        ] {
            let spec = ChannelSpec {
                shells,
                principal_axes: axes,
                depth,
                shell_weighting: if depth { ShellWeighting::Tent } else { ShellWeighting::Hard },
            };
            let ch = spec.compute(&view, &cfg).unwrap();
            assert_eq!(ch.len(), spec.count());
        }
        let none = ChannelSpec {
            shells: 0,
            principal_axes: false,
            depth: false,
            shell_weighting: ShellWeighting::Hard,
        };
        assert!(none.compute(&view, &cfg).is_err());
    }
}
