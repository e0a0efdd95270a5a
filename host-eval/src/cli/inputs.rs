//! What `encrypt --input` accepts, turned into one 8-component feature vector per patient.
//!
//! * a features file: `.json` (an array of 8 numbers, an array of such arrays, an object with
//!   the 8 component names, or `{"patients": [...]}` of either — the shape `decrypt --json`
//!   prints) or `.csv`/`.tsv`/`.txt` (one patient per row, 8 numbers, an optional header row,
//!   and an optional leading `patient` column as `decrypt --csv` prints);
//! * a scan in any format the data loaders read (NIfTI, DICOM, raw), reduced to its
//!   multivector features;
//! * a dataset sample `file.npz#split:index` or a range `file.npz#split:a..b` (`a..=b`), one
//!   patient per sample.

use super::error::CliError;
use clifhe_std::preprocess::Pipeline;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Cl(3,0) basis order used everywhere (docs/architecture.md §6).
pub const COMPONENTS: [&str; 8] = ["scalar", "e1", "e2", "e3", "e12", "e13", "e23", "e123"];

/// Most samples one range may name; far above any preset's N/16 patients, it only stops a
/// typo such as `0..1000000000` from allocating before the patient-count check.
const MAX_RANGE: usize = 1 << 16;

/// One patient's features and where they came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Patient {
    pub source: String,
    pub features: [f64; 8],
}

/// A parsed `--input` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputSpec {
    /// A features file (JSON or CSV).
    Features(PathBuf),
    /// One scan, as the loader spells it (a path, or `file.npz#split:index`).
    Scan(String),
    /// Samples `range` of `split` in a dataset file.
    DatasetRange {
        path: PathBuf,
        split: String,
        start: usize,
        end: usize,
    },
}

fn is_features_file(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref(),
        Some("json" | "csv" | "tsv" | "txt")
    )
}

fn parse_index(s: &str, spec: &str) -> Result<usize, CliError> {
    s.trim()
        .parse()
        .map_err(|_| CliError::bad_input(spec, format!("'{s}' is not a sample index")))
}

/// Parses one `--input` value.
pub fn parse_spec(spec: &str) -> Result<InputSpec, CliError> {
    let whole = Path::new(spec);
    // A path that exists as written wins, so file names containing '#' still work.
    let fragment = if whole.exists() { None } else { spec.rsplit_once('#') };
    let Some((path, frag)) = fragment else {
        return Ok(if is_features_file(whole) {
            InputSpec::Features(whole.to_path_buf())
        } else {
            InputSpec::Scan(spec.to_string())
        });
    };
    // A raw volume's fragment is its shape and type (`vol.raw#64x64x32:u16[:spacing]`), which
    // the scan loader parses; only dataset files take SPLIT:INDEX selections.
    let is_raw = Path::new(path)
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("raw"));
    if is_raw {
        return Ok(InputSpec::Scan(spec.to_string()));
    }
    let (split, sel) = frag
        .split_once(':')
        .ok_or_else(|| CliError::bad_input(spec, "expected FILE#SPLIT:INDEX or FILE#SPLIT:A..B (e.g. data.npz#test:0..32)"))?;
    if split.is_empty() {
        return Err(CliError::bad_input(spec, "empty split name"));
    }
    if let Some((a, b)) = sel.split_once("..") {
        let start = parse_index(a, spec)?;
        let end = match b.strip_prefix('=') {
            Some(b) => parse_index(b, spec)?
                .checked_add(1)
                .ok_or_else(|| CliError::bad_input(spec, "range end overflows"))?,
            None => parse_index(b, spec)?,
        };
        if end <= start {
            return Err(CliError::bad_input(spec, format!("empty sample range {start}..{end}")));
        }
        if end - start > MAX_RANGE {
            return Err(CliError::bad_input(spec, format!("range of {} samples is too long", end - start)));
        }
        return Ok(InputSpec::DatasetRange {
            path: PathBuf::from(path),
            split: split.to_string(),
            start,
            end,
        });
    }
    let index = parse_index(sel, spec)?;
    Ok(InputSpec::Scan(format!("{path}#{split}:{index}")))
}

fn check_finite(features: [f64; 8], input: &str) -> Result<[f64; 8], CliError> {
    if let Some(k) = features.iter().position(|v| !v.is_finite()) {
        return Err(CliError::bad_input(
            input,
            format!("component {} is not a finite number", COMPONENTS[k]),
        ));
    }
    Ok(features)
}

fn json_vector(v: &Value, input: &str) -> Result<[f64; 8], CliError> {
    let mut out = [0f64; 8];
    match v {
        Value::Array(items) => {
            if items.len() != 8 {
                return Err(CliError::bad_input(
                    input,
                    format!("expected 8 feature values, found {}", items.len()),
                ));
            }
            for (o, item) in out.iter_mut().zip(items) {
                *o = item
                    .as_f64()
                    .ok_or_else(|| CliError::bad_input(input, format!("'{item}' is not a number")))?;
            }
        }
        Value::Object(map) => {
            for (o, name) in out.iter_mut().zip(COMPONENTS) {
                let item = map
                    .get(name)
                    .ok_or_else(|| CliError::bad_input(input, format!("missing component '{name}'")))?;
                *o = item
                    .as_f64()
                    .ok_or_else(|| CliError::bad_input(input, format!("component '{name}' is not a number")))?;
            }
        }
        _ => {
            return Err(CliError::bad_input(
                input,
                "expected an array of 8 numbers or an object of named components",
            ))
        }
    }
    check_finite(out, input)
}

/// Parses a JSON features document.
pub fn parse_features_json(text: &str, input: &str) -> Result<Vec<[f64; 8]>, CliError> {
    let v: Value = serde_json::from_str(text).map_err(|e| CliError::bad_input(input, format!("invalid JSON: {e}")))?;
    let v = match &v {
        Value::Object(map) if map.contains_key("patients") => map.get("patients").unwrap_or(&Value::Null),
        other => other,
    };
    match v {
        // An array of numbers is one patient; an array of arrays/objects is several.
        Value::Array(items) if items.iter().all(|x| x.is_array() || x.is_object()) && !items.is_empty() => {
            items.iter().map(|x| json_vector(x, input)).collect()
        }
        other => Ok(vec![json_vector(other, input)?]),
    }
}

/// Parses CSV/TSV features: one patient per row.
pub fn parse_features_csv(text: &str, input: &str) -> Result<Vec<[f64; 8]>, CliError> {
    let mut out = Vec::new();
    let mut skip_first_column = false;
    for (lineno, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let cells: Vec<&str> = line.split([',', '\t', ';']).map(str::trim).collect();
        if out.is_empty() && cells.iter().any(|c| c.parse::<f64>().is_err()) {
            // A header row: remember whether it starts with a patient column.
            skip_first_column = cells.len() == 9;
            continue;
        }
        let cells = if skip_first_column || cells.len() == 9 {
            &cells[1..]
        } else {
            &cells[..]
        };
        if cells.len() != 8 {
            return Err(CliError::bad_input(
                input,
                format!("line {}: expected 8 values, found {}", lineno + 1, cells.len()),
            ));
        }
        let mut f = [0f64; 8];
        for (o, c) in f.iter_mut().zip(cells) {
            *o = c
                .parse()
                .map_err(|_| CliError::bad_input(input, format!("line {}: '{c}' is not a number", lineno + 1)))?;
        }
        out.push(check_finite(f, input)?);
    }
    if out.is_empty() {
        return Err(CliError::bad_input(input, "no feature rows"));
    }
    Ok(out)
}

fn features_file(path: &Path) -> Result<Vec<Patient>, CliError> {
    let bytes = super::fsio::read(path)?;
    let input = path.display().to_string();
    let text = std::str::from_utf8(&bytes).map_err(|_| CliError::bad_input(&input, "not UTF-8 text"))?;
    let is_json = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let rows = if is_json {
        parse_features_json(text, &input)?
    } else {
        parse_features_csv(text, &input)?
    };
    let many = rows.len() > 1;
    Ok(rows
        .into_iter()
        .enumerate()
        .map(|(i, features)| Patient {
            source: if many { format!("{input}[{i}]") } else { input.clone() },
            features,
        })
        .collect())
}

/// The features CSV that `host-eval features` writes and `train --features` reads: a header,
/// then `source,scalar,e1,e2,e3,e12,e13,e23,e123` per patient, every value in Rust's shortest
/// round-trip form (parsing it back gives the same f64 bits). Sources containing a separator
/// or a quote cannot be written unambiguously and are refused.
pub fn features_to_csv(patients: &[Patient]) -> Result<String, CliError> {
    let mut out = String::from("id,scalar,e1,e2,e3,e12,e13,e23,e123\n");
    for p in patients {
        if p.source.contains([',', '\t', ';', '"', '\n', '\r']) {
            return Err(CliError::bad_input(&p.source, "a source name with a separator cannot be a CSV id"));
        }
        out.push_str(&p.source);
        for v in p.features {
            out.push(',');
            out.push_str(&v.to_string());
        }
        out.push('\n');
    }
    Ok(out)
}

/// Reads every input, in order, into patients; scans go through `pipeline` (the model's or the
/// profile's; `None`: `scan::legacy_pipeline`). Features files are taken as they are.
pub fn load_inputs(specs: &[String], pipeline: Option<&Pipeline>) -> Result<Vec<Patient>, CliError> {
    let mut patients = Vec::new();
    for spec in specs {
        match parse_spec(spec)? {
            InputSpec::Features(path) => patients.extend(features_file(&path)?),
            InputSpec::Scan(s) => patients.push(Patient {
                features: super::scan::features_of(&s, pipeline)?,
                source: s,
            }),
            InputSpec::DatasetRange { path, split, start, end } => {
                patients.extend(super::scan::dataset_range(&path, &split, start, end, pipeline)?);
            }
        }
    }
    if patients.is_empty() {
        return Err(CliError::bad_input("--input", "no patients"));
    }
    Ok(patients)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() {
        assert_eq!(parse_spec("a.json").ok(), Some(InputSpec::Features("a.json".into())));
        assert_eq!(parse_spec("scan.nii.gz").ok(), Some(InputSpec::Scan("scan.nii.gz".into())));
        assert_eq!(parse_spec("d.npz#test:5").ok(), Some(InputSpec::Scan("d.npz#test:5".into())));
        assert_eq!(
            parse_spec("d.npz#test:0..=3").ok(),
            Some(InputSpec::DatasetRange {
                path: "d.npz".into(),
                split: "test".into(),
                start: 0,
                end: 4
            })
        );
        assert!(parse_spec("d.npz#test:4..4").is_err());
        assert!(parse_spec("d.npz#test").is_err());
        // Raw volumes carry their shape in the fragment: handed to the scan loader as written.
        assert_eq!(
            parse_spec("v.raw#64x64x32:u16").ok(),
            Some(InputSpec::Scan("v.raw#64x64x32:u16".into()))
        );
        assert_eq!(
            parse_spec("v.RAW#8x8x8:i16:0.5x0.5x2").ok(),
            Some(InputSpec::Scan("v.RAW#8x8x8:i16:0.5x0.5x2".into()))
        );
        assert!(parse_spec("d.npz#test:x").is_err());
    }

    #[test]
    fn features_parse_in_every_shape() {
        let one = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        assert_eq!(parse_features_json("[1,2,3,4,5,6,7,8]", "x").ok(), Some(vec![one]));
        assert_eq!(
            parse_features_json("[[1,2,3,4,5,6,7,8],[1,2,3,4,5,6,7,8]]", "x").ok(),
            Some(vec![one, one])
        );
        let named = r#"{"patients":[{"patient":0,"scalar":1,"e1":2,"e2":3,"e3":4,"e12":5,"e13":6,"e23":7,"e123":8}]}"#;
        assert_eq!(parse_features_json(named, "x").ok(), Some(vec![one]));
        assert!(parse_features_json("[1,2,3]", "x").is_err());
        assert!(parse_features_json("[1,2,3,4,5,6,7,\"a\"]", "x").is_err());
        assert!(parse_features_json("{", "x").is_err());
        let csv = "patient,scalar,e1,e2,e3,e12,e13,e23,e123\n0,1,2,3,4,5,6,7,8\n";
        assert_eq!(parse_features_csv(csv, "x").ok(), Some(vec![one]));
        assert_eq!(
            parse_features_csv("1,2,3,4,5,6,7,8\n1,2,3,4,5,6,7,8", "x").ok(),
            Some(vec![one, one])
        );
        assert!(parse_features_csv("1,2,3", "x").is_err());
        assert!(parse_features_csv("1,2,3,4,5,6,7,nan", "x").is_err());
    }
}
