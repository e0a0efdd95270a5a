//! The manifest of the vendor's scores: one file per class and what they hold.

use super::{BatchLayout, ProtocolError};
use clifhe_core::params::Params;
use serde::{Deserialize, Serialize};

/// Format tag of a manifest (2: `noise_bound` is what the release flood must hide).
pub const SCORES_FORMAT: &str = "clifhe-scores/2";
/// File name of the manifest in a scores directory.
pub const MANIFEST_FILE: &str = "scores.json";

/// The manifest of a scores directory (or of a service result).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScoresManifest {
    /// [`SCORES_FORMAT`].
    pub format: String,
    /// Preset name.
    pub preset: String,
    /// Classes scored.
    pub classes: usize,
    /// Class labels.
    pub labels: Vec<String>,
    /// Patients scored.
    pub patients: usize,
    /// Patient p's score of class c is slot p * stride of `files[c]`.
    pub stride: usize,
    /// One file per class.
    pub files: Vec<String>,
    /// Whether the vendor sanitised and flooded the scores.
    pub circuit_private: bool,
    /// The vendor's statistical security parameter s.
    pub statistical_security: u32,
    /// Bound (coefficient units) on the key-dependent noise of the score ciphertexts, which the
    /// hospital's release flood must hide: the sanitiser's `release_noise_bound` on the
    /// circuit-private path, rounded up to a power of two (the exact value depends on the
    /// model's weights; the hospital needs only its order of magnitude, and uses it only as a
    /// lower limit on its own flood).
    pub noise_bound: f64,
    /// log2 of the vendor's flood width (circuit-private path).
    #[serde(default)]
    pub vendor_flood_log2: Option<u32>,
    /// [`BatchLayout::Blocks`]: one file holds every class (class c of patient p in slot
    /// c N/16 + p, `gnn::equivariant_blocks`); absent otherwise (one file per class).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<BatchLayout>,
}

impl ScoresManifest {
    /// The manifest of a model's scores (`labels`: its class labels) for `patients` patients of
    /// a `layout` batch, with the class files named `class-<c>.ct` (one `scores.ct` for the
    /// block layout).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        params: &Params,
        labels: &[String],
        patients: usize,
        layout: BatchLayout,
        circuit_private: bool,
        statistical_security: u32,
        noise_bound: f64,
        vendor_flood_log2: Option<u32>,
    ) -> Self {
        Self {
            format: SCORES_FORMAT.into(),
            preset: params.name().into(),
            classes: labels.len(),
            labels: labels.to_vec(),
            patients,
            stride: layout.score_stride(),
            files: score_file_names(layout, labels.len()),
            circuit_private,
            statistical_security,
            noise_bound: round_up_pow2(noise_bound),
            vendor_flood_log2,
            layout: (layout == BatchLayout::Blocks).then_some(BatchLayout::Blocks),
        }
    }

    /// Score files the manifest must list: one per class, or one for the block layout.
    #[must_use]
    pub fn expected_files(&self) -> usize {
        if self.layout == Some(BatchLayout::Blocks) {
            1
        } else {
            self.classes
        }
    }

    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> Result<Vec<u8>, ProtocolError> {
        let mut json = serde_json::to_vec_pretty(self).map_err(|e| ProtocolError::corrupt("scores manifest", e))?;
        json.push(b'\n');
        Ok(json)
    }

    /// Parses a manifest and checks that it is self-consistent for `params`: the format, the
    /// preset, one plain file name per class, labels for every class, a finite non-negative
    /// bound, and patients that fit the slots at their stride.
    pub fn from_json_checked(bytes: &[u8], params: &Params) -> Result<Self, ProtocolError> {
        let m: Self = serde_json::from_slice(bytes).map_err(|e| ProtocolError::corrupt("scores manifest", e))?;
        if m.preset != params.name() {
            return Err(ProtocolError::PresetMismatch {
                found: m.preset,
                expected: params.name().into(),
            });
        }
        let bad = |r: String| Err(ProtocolError::corrupt("scores manifest", r));
        if m.format != SCORES_FORMAT {
            return bad(format!("format {}, expected {SCORES_FORMAT} (re-run `infer`)", m.format));
        }
        if !(m.noise_bound.is_finite() && m.noise_bound >= 0.0) {
            return bad("noise bound is not a finite non-negative number".into());
        }
        if !matches!(m.layout, None | Some(BatchLayout::Blocks))
            || m.files.len() != m.expected_files()
            || m.labels.len() != m.classes
            || m.stride == 0
        {
            return bad("classes, labels and files disagree".into());
        }
        // Only plain file names: the manifest must not point outside its directory.
        if let Some(f) = m
            .files
            .iter()
            .find(|f| f.contains('/') || f.contains('\\') || f.starts_with('.') || f.is_empty())
        {
            return bad(format!("bad file name {f}"));
        }
        if m.patients.saturating_mul(m.stride) > params.max_slots() {
            return bad("more patients than slots".into());
        }
        Ok(m)
    }
}

/// The names of a scores directory's ciphertext files, which the hospital derives from its own
/// record (never from the vendor's manifest): `class-<c>.ct` per class, or one `scores.ct` for
/// the block layout.
#[must_use]
pub fn score_file_names(layout: BatchLayout, classes: usize) -> Vec<String> {
    if layout == BatchLayout::Blocks {
        vec!["scores.ct".to_string()]
    } else {
        (0..classes).map(|c| format!("class-{c}.ct")).collect()
    }
}

/// The least power of two >= `x` (0 stays 0; non-finite values pass through, and the reader
/// refuses them).
fn round_up_pow2(x: f64) -> f64 {
    if x > 0.0 && x.is_finite() {
        2f64.powi(x.log2().ceil() as i32)
    } else {
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_noise_bound_is_a_power_of_two_above_the_exact_one() {
        let params = Params::from_name("device-n12").unwrap();
        let labels = vec!["a".to_string(), "b".to_string()];
        for (exact, published) in [(1234.5, 2048.0), (4096.0, 4096.0), (0.3, 0.5), (0.0, 0.0)] {
            let m = ScoresManifest::new(&params, &labels, 3, BatchLayout::BladeMajor, true, 30, exact, Some(40));
            assert_eq!(m.noise_bound, published, "{exact}");
        }
    }
}
