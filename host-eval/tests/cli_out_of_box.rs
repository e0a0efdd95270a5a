//! Out-of-distribution inputs are said, never silently absorbed: a patient whose features lie
//! outside the model's input box is named by `encrypt --profile` (which clamps it), flagged in
//! the batch record, in `release` and in `predict`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{ok, s, TempDir};

use serde_json::Value;

#[test]
fn patients_outside_the_input_box_are_flagged_from_encrypt_to_release() {
    let d = TempDir::new("ood");
    let keys = d.join("keys");
    let k = s(&keys);
    ok(&["keygen", "--preset", "private-n15", "--out", k]);
    ok(&["evalkeys", "--keys", k, "--relin-only"]);
    let bundle = keys.join("public.bundle");
    let model = d.join("model.json");
    ok(&["train", "--per-class", "30", "--out", s(&model)]);
    let profile = d.join("profile.json");
    ok(&["profile", "--model", s(&model), "--keys", s(&bundle), "--out", s(&profile)]);
    let p: Value = serde_json::from_slice(&std::fs::read(&profile).unwrap()).unwrap();
    let center: Vec<f64> = p["input_box"]["center"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let half: Vec<f64> = p["input_box"]["half_width"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    // Patients 0 and 2 at the box's centre; patient 1 far outside it in blade e1 (like the
    // MNI template through the demo model: a scan unlike anything the model was trained on).
    let mut far = center.clone();
    far[1] += 1e6 * half[1];
    let feats = d.join("features.json");
    std::fs::write(&feats, serde_json::to_string(&vec![center.clone(), far, center]).unwrap()).unwrap();

    let batch = d.join("batch.clhe");
    let out = ok(&[
        "encrypt",
        "--keys",
        k,
        "--profile",
        s(&profile),
        "--input",
        s(&feats),
        "--out",
        s(&batch),
    ]);
    assert!(out.contains("warning: 1 patient(s) outside the model's input box"), "{out}");
    assert!(out.trim_end().ends_with(": 1"), "{out}");
    let record = d.join("batch.clhe.record.json");
    let r: Value = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    assert_eq!(r["out_of_box"], serde_json::json!([1]));

    let pred: Value = serde_json::from_str(&ok(&["predict", "--model", s(&model), "--input", s(&feats), "--json"])).unwrap();
    let flags: Vec<bool> = pred["patients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["out_of_box"].as_bool().unwrap())
        .collect();
    assert_eq!(flags, [false, true, false]);
    let text = ok(&["predict", "--model", s(&model), "--input", s(&feats)]);
    assert!(
        text.contains("# warning: patients outside the model's input box (scores extrapolated): 1"),
        "{text}"
    );

    let scores = d.join("scores");
    ok(&[
        "infer",
        "--model",
        s(&model),
        "--keys",
        s(&bundle),
        "--input",
        s(&batch),
        "--out",
        s(&scores),
    ]);
    let rel: Value = serde_json::from_str(&ok(&[
        "release",
        "--keys",
        k,
        "--scores",
        s(&scores),
        "--record",
        s(&record),
        "--json",
    ]))
    .unwrap();
    let flags: Vec<bool> = rel.as_array().unwrap().iter().map(|p| p["out_of_box"].as_bool().unwrap()).collect();
    assert_eq!(flags, [false, true, false]);
}

/// Every command that reports results speaks JSON for scripts (`--json`), and the encrypt
/// report carries no feature value.
#[test]
fn every_result_command_speaks_json() {
    let d = TempDir::new("json");
    let keys = d.join("keys");
    let k = s(&keys);
    let j = |args: &[&str]| -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        let out = ok(&a);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {out}"))
    };
    let kg = j(&["keygen", "--preset", "private-n15", "--out", k]);
    assert_eq!(kg["keyset"]["preset"], "private-n15");
    assert!(kg["leakage_budget_bits"].as_u64().unwrap() > 0);
    let ek = j(&["evalkeys", "--keys", k, "--relin-only"]);
    assert_eq!(ek["keys"], 1);
    let bundle = std::path::PathBuf::from(ek["public_bundle"].as_str().unwrap());
    assert_eq!(ek["public_bundle_sha256"].as_str().unwrap().len(), 64);
    let model = d.join("model.json");
    ok(&["train", "--per-class", "20", "--out", s(&model)]);
    let profile = d.join("profile.json");
    let pr = j(&["profile", "--model", s(&model), "--keys", s(&bundle), "--out", s(&profile)]);
    assert_eq!(pr["circuit_private"], true);
    let feats = d.join("f.json");
    let c: Vec<f64> = pr["input_box"]["center"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let mut row = c.clone();
    row[0] = c[0] + 0.5 * pr["input_box"]["half_width"][0].as_f64().unwrap();
    std::fs::write(&feats, serde_json::to_string(&vec![row]).unwrap()).unwrap();
    let batch = d.join("b.clhe");
    let en = j(&[
        "encrypt",
        "--keys",
        k,
        "--profile",
        s(&profile),
        "--input",
        s(&feats),
        "--out",
        s(&batch),
    ]);
    assert_eq!((en["patients"].as_u64(), en["layout"].as_str()), (Some(1), Some("blade-major")));
    let mut fields: Vec<&str> = en.as_object().unwrap().keys().map(String::as_str).collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            "bytes",
            "ciphertexts",
            "first_slot",
            "layout",
            "level",
            "log2_scale",
            "mode",
            "out",
            "out_of_box",
            "patients",
            "preset",
            "record",
            "sources"
        ],
        "the report names files and counts only"
    );
    let scores = d.join("scores");
    let inf = j(&[
        "infer",
        "--model",
        s(&model),
        "--keys",
        s(&bundle),
        "--input",
        s(&batch),
        "--out",
        s(&scores),
    ]);
    assert_eq!((inf["patients"].as_u64(), inf["circuit_private"].as_bool()), (Some(1), Some(true)));
}
