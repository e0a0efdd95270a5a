//! Labelled training data for `train` and `demo`: the built-in phantoms, a MedMNIST `.npz`, a
//! folder of scans with a labels CSV, or a features CSV with a labels CSV. Every source ends as
//! [`LabelledFeatures`]: features split into train / validation / test, class names, and the
//! preprocessing pipeline the features went through (the model records it, so the hospital's
//! scans go through the same one).
//!
//! Labels CSV (`--labels`): one row per sample, `id,label` or `id,label,split`, with an
//! optional header row whose first cell is `id`, `file`, `scan`, `path` or `patient`. The id is
//! the scan's path relative to `--scans` (a file, or a folder holding a DICOM series), or the
//! first column of `--features`. Labels are class names, or integers 0..C-1 (then named
//! `class 0` ...); names are sorted, so the class order does not depend on the row order. A
//! split column (`train`, `val`, `test`) fixes the split; without one, each class is shuffled
//! with the seed and split 70/15/15, as the phantoms are.

use super::error::CliError;
use super::scan::volume_features;
use crate::data;
use clifhe_core::Multivector;
use clifhe_std::preprocess::{Pipeline, PipelinePreset};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Labelled features, split.
pub struct LabelledFeatures {
    /// Where they came from (for reports).
    pub source: String,
    /// Class names, index = label.
    pub class_names: Vec<String>,
    /// Training split.
    pub train: (Vec<Multivector>, Vec<usize>),
    /// Validation split (early stopping).
    pub val: Option<(Vec<Multivector>, Vec<usize>)>,
    /// Test split (the reported figures).
    pub test: (Vec<Multivector>, Vec<usize>),
    /// The pipeline the features went through (`None`: a features file of unstated origin).
    pub pipeline: Option<Pipeline>,
}

/// Reads `--pipeline`: a preset name (`medmnist`, `raw`, `ct`, `mr`) or a JSON file.
pub fn read_pipeline(arg: &str) -> Result<Pipeline, CliError> {
    if let Some(p) = PipelinePreset::from_name(arg) {
        return Ok(p.pipeline());
    }
    let path = Path::new(arg);
    if !path.exists() {
        let names: Vec<&str> = PipelinePreset::ALL.iter().map(|p| p.name()).collect();
        return Err(CliError::bad_input(
            "--pipeline",
            format!("'{arg}' is neither a preset ({}) nor a file", names.join(", ")),
        ));
    }
    let bytes = super::fsio::read(path)?;
    let p: Pipeline = serde_json::from_slice(&bytes).map_err(|e| CliError::bad_input(path.display(), e))?;
    p.validate().map_err(|e| CliError::bad_input(path.display(), e))?;
    Ok(p)
}

/// Features of a MedMNIST file through the `medmnist` pipeline: train (+ val for early
/// stopping) and test.
pub fn medmnist_features(path: &Path) -> Result<LabelledFeatures, CliError> {
    let pipeline = PipelinePreset::Medmnist.pipeline();
    let d = data::npz::load_medmnist_npz(path).map_err(|e| CliError::bad_input(path.display(), e))?;
    let source = path.display().to_string();
    let feats = |s: &data::npz::Split| -> Result<(Vec<Multivector>, Vec<usize>), CliError> {
        let mut xs = Vec::with_capacity(s.len());
        for i in 0..s.len() {
            let v = s.volume(i).ok_or_else(|| CliError::bad_input(&source, "sample out of range"))?;
            xs.push(Multivector::new(volume_features(&v, &pipeline, &source)?));
        }
        Ok((xs, s.labels.iter().map(|&l| l as usize).collect()))
    };
    let classes = d
        .train
        .labels
        .iter()
        .chain(&d.test.labels)
        .max()
        .map_or(2, |&m| m as usize + 1)
        .max(2);
    let names = if classes == 2 {
        vec!["normal".to_string(), "abnormal".to_string()]
    } else {
        (0..classes).map(|c| format!("class {c}")).collect()
    };
    let (train, val, test) = (feats(&d.train)?, feats(&d.val)?, feats(&d.test)?);
    Ok(LabelledFeatures {
        source,
        class_names: names,
        train,
        val: Some(val),
        test,
        pipeline: Some(pipeline),
    })
}

/// How the built-in phantoms are named in reports.
pub fn phantom_source(per_class: usize, seed: u64, max_tilt_deg: f64) -> String {
    let tilt = if max_tilt_deg > 0.0 {
        format!(", tilted up to {max_tilt_deg} deg")
    } else {
        String::new()
    };
    format!("built-in phantoms ({per_class} per class, 32^3, seed {seed}{tilt})")
}

/// Features of the built-in phantom dataset (healthy / benign / malignant), split 60/15/25,
/// through the `raw` pipeline (the phantoms' intensities are already in [0, 1]); patients tilted
/// by up to `max_tilt_deg` (0: upright).
pub fn phantom_features(per_class: usize, seed: u64, max_tilt_deg: f64) -> Result<LabelledFeatures, CliError> {
    use crate::phantom::{generate, split_of, PhantomClass, PhantomConfig, Split};
    let pipeline = PipelinePreset::Raw.pipeline();
    let cfg = PhantomConfig {
        seed,
        max_tilt_deg,
        ..PhantomConfig::default()
    };
    let items: Vec<(usize, PhantomClass)> = (0..per_class).flat_map(|i| PhantomClass::ALL.map(|c| (i, c))).collect();
    let feats: Vec<(Split, Multivector, usize)> = items
        .par_iter()
        .map(|&(i, c)| {
            let v = generate(&cfg, c, i as u64);
            let f = volume_features(&v, &pipeline, "phantom")?;
            Ok((split_of(i as u64, per_class), Multivector::new(f), c.label() as usize))
        })
        .collect::<Result<_, CliError>>()?;
    let pick = |split: Split| -> (Vec<Multivector>, Vec<usize>) { feats.iter().filter(|f| f.0 == split).map(|f| (f.1, f.2)).unzip() };
    Ok(LabelledFeatures {
        source: phantom_source(per_class, seed, max_tilt_deg),
        class_names: PhantomClass::ALL.iter().map(|c| c.name().to_string()).collect(),
        train: pick(Split::Train),
        val: Some(pick(Split::Val)),
        test: pick(Split::Test),
        pipeline: Some(pipeline),
    })
}

/// Features and labels of one split.
type SplitData = (Vec<Multivector>, Vec<usize>);

/// Which split a labelled row belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SplitName {
    Train,
    Val,
    Test,
}

/// One row of a labels CSV.
struct LabelRow {
    id: String,
    label: String,
    split: Option<SplitName>,
    line: usize,
}

fn parse_labels(text: &str, input: &str) -> Result<Vec<LabelRow>, CliError> {
    let mut rows = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let cells: Vec<&str> = line.split([',', '\t', ';']).map(str::trim).collect();
        let first = cells.first().map(|c| c.to_ascii_lowercase()).unwrap_or_default();
        if rows.is_empty() && matches!(first.as_str(), "id" | "file" | "scan" | "path" | "patient") {
            continue;
        }
        let at = |what: String| CliError::bad_input(input, format!("line {}: {what}", i + 1));
        if !(2..=3).contains(&cells.len()) || cells[0].is_empty() || cells[1].is_empty() {
            return Err(at(format!("expected id,label[,split], found {} cell(s)", cells.len())));
        }
        let split = match cells.get(2).map(|s| s.to_ascii_lowercase()) {
            None => None,
            Some(s) => Some(match s.as_str() {
                "train" => SplitName::Train,
                "val" | "valid" | "validation" => SplitName::Val,
                "test" => SplitName::Test,
                _ => return Err(at(format!("split '{s}' (train, val or test)"))),
            }),
        };
        if !seen.insert(cells[0].to_string()) {
            return Err(at(format!("id '{}' appears twice", cells[0])));
        }
        rows.push(LabelRow {
            id: cells[0].to_string(),
            label: cells[1].to_string(),
            split,
            line: i + 1,
        });
    }
    if rows.is_empty() {
        return Err(CliError::bad_input(input, "no labelled rows"));
    }
    let with_split = rows.iter().filter(|r| r.split.is_some()).count();
    if with_split != 0 && with_split != rows.len() {
        return Err(CliError::bad_input(input, "either every row names its split or none does"));
    }
    Ok(rows)
}

/// Class names and each row's class index (module docs: integers, else sorted names).
fn classes_of(rows: &[LabelRow], input: &str) -> Result<(Vec<String>, Vec<usize>), CliError> {
    let ints: Option<Vec<usize>> = rows.iter().map(|r| r.label.parse::<usize>().ok()).collect();
    let (names, labels) = match ints {
        Some(labels) => {
            let classes = labels.iter().max().map_or(0, |m| m + 1).max(2);
            if classes > 1000 {
                return Err(CliError::bad_input(input, format!("label {} (at most 999 classes)", classes - 1)));
            }
            ((0..classes).map(|c| format!("class {c}")).collect(), labels)
        }
        None => {
            let names: Vec<String> = rows.iter().map(|r| r.label.clone()).collect::<BTreeSet<_>>().into_iter().collect();
            let labels = rows.iter().map(|r| names.iter().position(|n| *n == r.label).unwrap_or(0)).collect();
            (names, labels)
        }
    };
    if names.len() < 2 || labels.iter().collect::<BTreeSet<_>>().len() < 2 {
        return Err(CliError::bad_input(input, "the labels name fewer than two classes"));
    }
    Ok((names, labels))
}

/// Splits `xs` by the rows' split column, or 70/15/15 per class with the seed.
fn split_rows(
    rows: &[LabelRow],
    xs: Vec<Multivector>,
    labels: Vec<usize>,
    classes: usize,
    seed: u64,
    input: &str,
) -> Result<[SplitData; 3], CliError> {
    let mut which = vec![SplitName::Train; rows.len()];
    if rows.iter().all(|r| r.split.is_some()) {
        for (w, r) in which.iter_mut().zip(rows) {
            *w = r.split.unwrap_or(SplitName::Train);
        }
    } else {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        for c in 0..classes {
            let mut idx: Vec<usize> = (0..rows.len()).filter(|&i| labels[i] == c).collect();
            shuffle(&mut idx, &mut rng);
            let n = idx.len();
            let n_val = (n * 15).div_ceil(100);
            let n_test = (n * 15).div_ceil(100);
            for (k, &i) in idx.iter().enumerate() {
                which[i] = if k < n_test {
                    SplitName::Test
                } else if k < n_test + n_val {
                    SplitName::Val
                } else {
                    SplitName::Train
                };
            }
        }
    }
    let mut out: [SplitData; 3] = Default::default();
    for ((x, y), w) in xs.into_iter().zip(labels).zip(which) {
        let slot = &mut out[w as usize];
        slot.0.push(x);
        slot.1.push(y);
    }
    if out.iter().any(|s| s.0.is_empty()) {
        return Err(CliError::bad_input(
            input,
            format!(
                "train / val / test hold {} / {} / {} samples: each split needs at least one",
                out[0].0.len(),
                out[1].0.len(),
                out[2].0.len()
            ),
        ));
    }
    Ok(out)
}

/// Fisher-Yates with the seeded generator (the split must not depend on the platform).
fn shuffle(v: &mut [usize], rng: &mut ChaCha20Rng) {
    use rand_chacha::rand_core::RngCore;
    for i in (1..v.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}

fn assemble(
    source: String,
    rows: &[LabelRow],
    xs: Vec<Multivector>,
    seed: u64,
    labels_input: &str,
    pipeline: Option<Pipeline>,
) -> Result<LabelledFeatures, CliError> {
    let (class_names, labels) = classes_of(rows, labels_input)?;
    let [train, val, test] = split_rows(rows, xs, labels, class_names.len(), seed, labels_input)?;
    Ok(LabelledFeatures {
        source,
        class_names,
        train,
        val: Some(val),
        test,
        pipeline,
    })
}

/// `train --scans DIR --labels CSV --pipeline P`: every labelled scan loaded, run through the
/// pipeline and reduced to features (in parallel).
pub fn scan_features(dir: &Path, labels: &Path, pipeline: &Pipeline, seed: u64) -> Result<LabelledFeatures, CliError> {
    let input = labels.display().to_string();
    let text = String::from_utf8(super::fsio::read(labels)?).map_err(|_| CliError::bad_input(&input, "not UTF-8 text"))?;
    let rows = parse_labels(&text, &input)?;
    let xs: Vec<Multivector> = rows
        .par_iter()
        .map(|r| {
            let rel = Path::new(&r.id);
            if rel.is_absolute() || rel.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
                return Err(CliError::bad_input(
                    &input,
                    format!("line {}: '{}' must be a path inside --scans", r.line, r.id),
                ));
            }
            let path = dir.join(rel);
            let spec = path.display().to_string();
            std::fs::metadata(&path).map_err(|e| CliError::io(&path, "read", e))?;
            let volume = data::load_volume(&spec).map_err(|e| CliError::bad_input(&spec, e))?;
            Ok(Multivector::new(volume_features(&volume, pipeline, &spec)?))
        })
        .collect::<Result<_, CliError>>()?;
    let source = format!("{} scans in {} ({input})", rows.len(), dir.display());
    assemble(source, &rows, xs, seed, &input, Some(pipeline.clone()))
}

/// `train --features CSV --labels CSV`: features rows `id,8 values` (optional header); rows
/// without a label are left out (and counted in the source line).
pub fn features_csv(features: &Path, labels: &Path, pipeline: Option<Pipeline>, seed: u64) -> Result<LabelledFeatures, CliError> {
    let input = labels.display().to_string();
    let finput = features.display().to_string();
    let text = String::from_utf8(super::fsio::read(labels)?).map_err(|_| CliError::bad_input(&input, "not UTF-8 text"))?;
    let rows = parse_labels(&text, &input)?;
    let ftext = String::from_utf8(super::fsio::read(features)?).map_err(|_| CliError::bad_input(&finput, "not UTF-8 text"))?;
    let mut by_id: BTreeMap<String, [f64; 8]> = BTreeMap::new();
    for (i, line) in ftext.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let cells: Vec<&str> = line.split([',', '\t', ';']).map(str::trim).collect();
        let at = |what: String| CliError::bad_input(&finput, format!("line {}: {what}", i + 1));
        if cells.len() != 9 {
            return Err(at(format!("expected id and 8 values, found {} cell(s)", cells.len())));
        }
        let values: Result<Vec<f64>, _> = cells[1..].iter().map(|c| c.parse::<f64>()).collect();
        let Ok(values) = values else {
            if by_id.is_empty() {
                continue; // the header row
            }
            return Err(at("a value is not a number".into()));
        };
        let mut f = [0.0; 8];
        f.copy_from_slice(&values);
        if !f.iter().all(|v| v.is_finite()) {
            return Err(at("a value is not finite".into()));
        }
        if by_id.insert(cells[0].to_string(), f).is_some() {
            return Err(at(format!("id '{}' appears twice", cells[0])));
        }
    }
    let mut xs = Vec::with_capacity(rows.len());
    for r in &rows {
        let f = by_id
            .remove(&r.id)
            .ok_or_else(|| CliError::bad_input(&input, format!("line {}: no features for '{}' in {finput}", r.line, r.id)))?;
        xs.push(Multivector::new(f));
    }
    let source = format!(
        "{} labelled feature rows of {finput} ({} unlabelled left out)",
        rows.len(),
        by_id.len()
    );
    assemble(source, &rows, xs, seed, &input, pipeline)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_parse_with_and_without_header_and_split() {
        let rows = parse_labels("id,label\na.nii,benign\nb.nii,malignant\n", "l").unwrap_or_default();
        assert_eq!(rows.len(), 2);
        let rows = parse_labels("a,0,train\nb,1,test\n# note\nc,1,val\n", "l").unwrap_or_default();
        assert_eq!(
            rows.iter().map(|r| r.split).collect::<Vec<_>>(),
            vec![Some(SplitName::Train), Some(SplitName::Test), Some(SplitName::Val)]
        );
        for bad in ["", "a\n", "a,0\na,1\n", "a,0,train\nb,1\n", "a,0,later\n", "a,0,train,x\n"] {
            assert!(parse_labels(bad, "l").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn class_names_are_sorted_or_numbered() {
        let rows = parse_labels("a,zeta\nb,alpha\nc,zeta\n", "l").unwrap_or_default();
        let (names, labels) = classes_of(&rows, "l").unwrap_or_default();
        assert_eq!(names, ["alpha", "zeta"]);
        assert_eq!(labels, [1, 0, 1]);
        let rows = parse_labels("a,2\nb,0\n", "l").unwrap_or_default();
        let (names, _) = classes_of(&rows, "l").unwrap_or_default();
        assert_eq!(names, ["class 0", "class 1", "class 2"]);
        let rows = parse_labels("a,x\nb,x\n", "l").unwrap_or_default();
        assert!(classes_of(&rows, "l").is_err());
    }

    #[test]
    fn seeded_split_is_stratified_and_reproducible() {
        let text: String = (0..40).map(|i| format!("s{i},{}\n", i % 2)).collect();
        let rows = parse_labels(&text, "l").unwrap_or_default();
        let xs: Vec<Multivector> = (0..40).map(|i| Multivector::new([i as f64; 8])).collect();
        let labels: Vec<usize> = (0..40).map(|i| i % 2).collect();
        let a = split_rows(&rows, xs.clone(), labels.clone(), 2, 7, "l").unwrap_or_default();
        let b = split_rows(&rows, xs, labels, 2, 7, "l").unwrap_or_default();
        assert_eq!(a.iter().map(|s| s.0.len()).collect::<Vec<_>>(), [28, 6, 6]);
        assert_eq!(a[2].1.iter().filter(|&&l| l == 1).count(), 3);
        assert_eq!(a[2].0, b[2].0);
    }
}
