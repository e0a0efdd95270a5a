//! `train --scans DIR --labels CSV --pipeline P`, `train --features CSV --labels CSV`, the
//! `features` command, and the pipeline travelling from the model to the profile and to the
//! hospital's features.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{fails, ok, s, TempDir};
use host_eval::phantom::{generate, PhantomClass, PhantomConfig};
use std::path::Path;

/// A single-file NIfTI-1 (float32, little endian, no qform/sform: voxel axes as they are).
fn write_nifti(path: &Path, v: &host_eval::data::Volume) {
    let mut h = vec![0u8; 352];
    h[0..4].copy_from_slice(&348i32.to_le_bytes());
    h[40..42].copy_from_slice(&3i16.to_le_bytes());
    for (i, d) in v.dims.iter().enumerate() {
        h[42 + 2 * i..44 + 2 * i].copy_from_slice(&(*d as i16).to_le_bytes());
    }
    h[70..72].copy_from_slice(&16i16.to_le_bytes()); // float32
    h[72..74].copy_from_slice(&32i16.to_le_bytes()); // bitpix
    for (i, sp) in v.spacing_mm.iter().enumerate() {
        h[80 + 4 * i..84 + 4 * i].copy_from_slice(&(*sp as f32).to_le_bytes());
    }
    h[108..112].copy_from_slice(&352f32.to_le_bytes());
    h[112..116].copy_from_slice(&1f32.to_le_bytes()); // scl_slope
    h[344..348].copy_from_slice(b"n+1\0");
    for x in &v.data {
        h.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(path, h).unwrap();
}

/// `per_class` phantoms of each class as NIfTI files in `dir/scans`, and a labels CSV.
fn scans(dir: &TempDir, per_class: usize) -> Vec<(String, &'static str)> {
    std::fs::create_dir_all(dir.join("scans/sub")).unwrap();
    let cfg = PhantomConfig::default();
    let mut rows = Vec::new();
    for i in 0..per_class {
        for c in PhantomClass::ALL {
            // One folder level deep for some, to show ids are paths under --scans.
            let id = if i % 2 == 0 {
                format!("{}-{i}.nii", c.name())
            } else {
                format!("sub/{}-{i}.nii", c.name())
            };
            write_nifti(&dir.join(&format!("scans/{id}")), &generate(&cfg, c, 1000 + i as u64));
            rows.push((id, c.name()));
        }
    }
    rows
}

#[test]
fn scans_and_their_features_train_the_same_model_with_the_pipeline_recorded() {
    let dir = TempDir::new("train-scans");
    let rows = scans(&dir, 12);
    let labels: String = std::iter::once("id,label\n".to_string())
        .chain(rows.iter().map(|(id, l)| format!("{id},{l}\n")))
        .collect();
    std::fs::write(dir.join("labels.csv"), labels).unwrap();
    let scans_dir = dir.join("scans");
    let model_a = dir.join("a.json");
    let out = ok(&[
        "train",
        "--scans",
        s(&scans_dir),
        "--labels",
        s(&dir.join("labels.csv")),
        "--pipeline",
        "raw",
        "--out",
        s(&model_a),
        "--json",
    ]);
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    // 12 per class, 15% (rounded up) each to test and validation: 2 + 2, 8 to training.
    assert_eq!(
        (
            summary["train_samples"].as_u64(),
            summary["val_samples"].as_u64(),
            summary["test_samples"].as_u64()
        ),
        (Some(24), Some(6), Some(6))
    );
    assert_eq!(summary["classes"], 3);
    let model: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&model_a).unwrap()).unwrap();
    assert_eq!(model["format_version"], 3);
    assert_eq!(model["preprocessing"]["intensity"]["kind"], "scale");
    assert_eq!(model["preprocessing"]["intensity"]["divisor"], 1.0);
    assert_eq!(model["label_names"], serde_json::json!(["benign", "healthy", "malignant"]));

    // The features command with the model's pipeline, then train --features on them: the
    // same features bit for bit, so the same split and the same model.
    let inputs: Vec<String> = rows.iter().map(|(id, _)| s(&scans_dir.join(id)).to_string()).collect();
    let fcsv = dir.join("f.csv");
    let mut args = vec!["features", "--model", s(&model_a), "--out", s(&fcsv), "--input"];
    args.extend(inputs.iter().map(String::as_str));
    ok(&args);
    let feature_labels: String = rows.iter().zip(&inputs).map(|((_, l), path)| format!("{path},{l}\n")).collect();
    std::fs::write(dir.join("flabels.csv"), feature_labels).unwrap();
    let model_b = dir.join("b.json");
    ok(&[
        "train",
        "--features",
        s(&dir.join("f.csv")),
        "--labels",
        s(&dir.join("flabels.csv")),
        "--pipeline",
        "raw",
        "--out",
        s(&model_b),
    ]);
    assert_eq!(std::fs::read(&model_a).unwrap(), std::fs::read(&model_b).unwrap());

    // predict runs the scan through the model's pipeline: another pipeline gives other features.
    let ct = dir.join("ct.json");
    ok(&[
        "train",
        "--scans",
        s(&scans_dir),
        "--labels",
        s(&dir.join("labels.csv")),
        "--pipeline",
        "ct",
        "--out",
        s(&ct),
    ]);
    let raw_f = ok(&["features", "--model", s(&model_a), "--input", &inputs[0]]);
    let ct_f = ok(&["features", "--model", s(&ct), "--input", &inputs[0]]);
    let preset_f = ok(&["features", "--pipeline", "ct", "--input", &inputs[0]]);
    assert_ne!(raw_f, ct_f);
    assert_eq!(ct_f, preset_f);
}

#[test]
fn the_profile_carries_the_pipeline_and_its_fingerprint_covers_it() {
    let dir = TempDir::new("train-profile");
    let model = dir.join("m.json");
    ok(&["train", "--per-class", "30", "--out", s(&model)]);
    let keys = dir.join("keys");
    ok(&["keygen", "--preset", "private-n15", "--out", s(&keys)]);
    let profile = dir.join("profile.json");
    ok(&["profile", "--model", s(&model), "--keys", s(&keys), "--out", s(&profile)]);
    let mut p: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&profile).unwrap()).unwrap();
    assert_eq!(p["preprocessing"]["intensity"]["kind"], "scale");
    // A profile whose pipeline was changed after the vendor signed off its fingerprint.
    p["preprocessing"]["intensity"]["divisor"] = serde_json::json!(2.0);
    let tampered = dir.join("tampered.json");
    std::fs::write(&tampered, serde_json::to_vec(&p).unwrap()).unwrap();
    let features = dir.join("f.csv");
    std::fs::write(&features, "0.1,0,0,0,0,0,0,0.3\n").unwrap();
    fails(
        &[
            "encrypt",
            "--keys",
            s(&keys),
            "--profile",
            s(&tampered),
            "--input",
            s(&features),
            "--out",
            s(&dir.join("b.ct")),
        ],
        4,
        &["fingerprint"],
    );
}

#[test]
fn bad_training_inputs_are_typed_errors() {
    let dir = TempDir::new("train-bad");
    scans(&dir, 1);
    let scans_dir = dir.join("scans");
    let out = dir.join("m.json");
    let labels = dir.join("l.csv");
    let case = |text: &str, pipeline: &str, code: i32, needles: &[&str]| {
        std::fs::write(&labels, text).unwrap();
        fails(
            &[
                "train",
                "--scans",
                s(&scans_dir),
                "--labels",
                s(&labels),
                "--pipeline",
                pipeline,
                "--out",
                s(&out),
            ],
            code,
            needles,
        );
    };
    case("missing.nii,healthy\nbenign-0.nii,benign\n", "raw", 3, &["missing.nii"]);
    case("../x.nii,healthy\nbenign-0.nii,benign\n", "raw", 7, &["inside --scans"]);
    case(
        "healthy-0.nii,healthy\nbenign-0.nii,healthy\n",
        "raw",
        7,
        &["fewer than two classes"],
    );
    case(
        "healthy-0.nii,healthy\nbenign-0.nii,benign\n",
        "raw",
        7,
        &["each split needs at least one"],
    );
    case("healthy-0.nii,healthy\nhealthy-0.nii,benign\n", "raw", 7, &["appears twice"]);
    case("healthy-0.nii,healthy\nbenign-0.nii,benign\n", "gamma", 7, &["neither a preset"]);
    std::fs::write(
        dir.join("p.json"),
        r#"{"version":1,"resample_mm":0,"intensity":{"kind":"scale","divisor":1},"crop":{"kind":"none"}}"#,
    )
    .unwrap();
    case(
        "healthy-0.nii,healthy\nbenign-0.nii,benign\n",
        s(&dir.join("p.json")),
        7,
        &["resample_mm"],
    );
    // --scans without --pipeline is a usage error.
    let out2 = common::run(&["train", "--scans", s(&scans_dir), "--labels", s(&labels), "--out", s(&out)]);
    assert_eq!(out2.status.code(), Some(2));
    assert!(!out.exists(), "nothing written on error");
}
