//! The protocol end to end through the binary: keygen -> evalkeys -> train -> encrypt ->
//! infer -> release, checked against the plaintext model (the circuit-private path with
//! `profile` and `encrypt --profile` at private-n15, and the interleaved `--no-flooding` path at
//! leveled-n14); and `demo --json`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{fails, ok, s, TempDir};

use clifhe_core::multivector::features::{scan_features, FeatureConfig};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// `infer --model M --keys K --input B --out O` plus `extra`.
fn infer_args<'a>(model: &'a Path, keys: &'a str, batch: &'a Path, out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["infer", "--model", s(model), "--keys", keys, "--input", s(batch), "--out", s(out)];
    args.extend_from_slice(extra);
    args
}

/// The circuit-private protocol on files, on the whole AdrenalMNIST3D test split: the vendor
/// publishes its model's input profile, the hospital encrypts box-encoded batches for it, the
/// vendor's `infer` floods at s = 30 from the proven noise bound, and the hospital's flooded
/// release equals the plaintext model's argmax on every patient.
#[test]
fn circuit_private_flow_on_files() {
    let Some(data) = dataset() else {
        println!("skipping: AdrenalMNIST3D not found");
        return;
    };
    let d = TempDir::new("proto-private");
    let keys = d.join("keys");
    let k = s(&keys);
    ok(&["keygen", "--preset", "private-n15", "--out", k]);
    // The box-encoded path needs no rotation keys.
    ok(&["evalkeys", "--keys", k, "--relin-only"]);
    assert_eq!(std::fs::read_dir(keys.join("eval")).unwrap().count(), 1);
    let model = d.join("model.json");
    ok(&["train", "--dataset", s(&data), "--out", s(&model)]);
    let profile = d.join("profile.json");
    ok(&["profile", "--model", s(&model), "--keys", k, "--out", s(&profile)]);
    let p: Value = serde_json::from_slice(&std::fs::read(&profile).unwrap()).unwrap();
    assert_eq!(p["circuit_private"], true);
    assert_eq!(p["input_log_scale"].as_f64().unwrap(), 80.0);
    // The profile is public: it must not carry the weights.
    assert!(p.get("hidden").is_none() && p.get("output").is_none() && p.get("layers").is_none());

    let batch = d.join("batch.clhe");
    let patients = 298;
    let spec = format!("{}#test:0..{patients}", data.display());
    ok(&[
        "encrypt",
        "--keys",
        k,
        "--profile",
        s(&profile),
        "--input",
        &spec,
        "--out",
        s(&batch),
    ]);
    // The hospital's own decryption of the batch gives back the features (inside the box).
    let m = clifhe_std::gnn::GnnModel::load(&model).unwrap();
    let ds = host_eval::data::npz::load_medmnist_npz(&data).unwrap();
    let features: Vec<_> = (0..patients)
        .map(|i| {
            scan_features(
                &ds.test.volume(i).unwrap().view().unwrap(),
                &FeatureConfig { intensity_scale: 255.0 },
            )
            .unwrap()
        })
        .collect();
    let dec: Value = serde_json::from_str(&ok(&["decrypt", "--keys", k, "--input", s(&batch), "--json", "--patients", "0..4"])).unwrap();
    for (row, f) in dec["patients"].as_array().unwrap().iter().zip(&features) {
        let c = m.input_box().clamp(&f.coeffs());
        for (name, want) in ["scalar", "e1", "e2", "e3", "e12", "e13", "e23", "e123"].iter().zip(c) {
            assert!((row[name].as_f64().unwrap() - want).abs() < 1e-9, "{name}: {} vs {want}", row[name]);
        }
    }

    let scores = d.join("scores");
    ok(&infer_args(&model, k, &batch, &scores, &[]));
    let manifest: Value = serde_json::from_slice(&std::fs::read(scores.join("scores.json")).unwrap()).unwrap();
    assert_eq!(manifest["circuit_private"], true);
    assert_eq!(manifest["stride"], 1);
    assert!(manifest["vendor_flood_log2"].as_u64().unwrap() >= 30);
    let out = ok(&["release", "--keys", k, "--scores", s(&scores), "--json"]);
    let preds: Value = serde_json::from_str(&out).unwrap();
    let preds = preds.as_array().unwrap();
    assert_eq!(preds.len(), patients);
    let wrong: Vec<usize> = preds
        .iter()
        .zip(&features)
        .enumerate()
        .filter(|(_, (pred, f))| {
            let scores = m.forward_in_box(f);
            let want = (0..scores.len()).fold(0, |b, c| if scores[c] > scores[b] { c } else { b });
            pred["class"].as_u64().unwrap() as usize != want
        })
        .map(|(i, _)| i)
        .collect();
    assert!(
        wrong.is_empty(),
        "released argmax differs from the plaintext model for patients {wrong:?}"
    );

    // Rounded scores: the same argmax, each score within 1e-3 of the plaintext model's.
    let out = ok(&["release", "--keys", k, "--scores", s(&scores), "--json", "--rounded", "4"]);
    let rounded: Value = serde_json::from_str(&out).unwrap();
    for ((r, p), f) in rounded.as_array().unwrap().iter().zip(preds).zip(&features) {
        assert_eq!(r["class"], p["class"]);
        let want = m.forward_in_box(f);
        for (got, want) in r["scores"].as_array().unwrap().iter().zip(&want) {
            assert!((got.as_f64().unwrap() - want).abs() <= 1e-3, "{got} vs {want}");
        }
    }
    // The hospital's `decrypt` does not open the vendor's scores: they go through `release`.
    fails(&["decrypt", "--keys", k, "--input", s(&scores)], 7, &["host-eval release"]);

    // Refusals, each before anything is written.
    let s2 = d.join("s2");
    let infer = |batch: &Path, model: &Path, extra: &[&str], code: i32, needle: &str| {
        fails(&infer_args(model, k, batch, &s2, extra), code, &[needle]);
        assert!(!s2.exists(), "{needle}: output written");
    };
    // A batch encrypted for another model's profile (a model trained on other data: another box).
    let other = d.join("other.json");
    ok(&["train", "--per-class", "30", "--out", s(&other)]);
    infer(&batch, &other, &[], 7, "another model's input profile");
    // An interleaved batch (raw features at the preset's scale) cannot be flooded soundly.
    let raw = d.join("raw.ct");
    ok(&[
        "encrypt",
        "--keys",
        k,
        "--input",
        &format!("{}#test:0..4", data.display()),
        "--out",
        s(&raw),
    ]);
    infer(&raw, &model, &[], 7, "encrypt --profile");
    // A --no-flooding profile's batch, flooded.
    let plain_profile = d.join("plain-profile.json");
    ok(&[
        "profile",
        "--model",
        s(&model),
        "--keys",
        k,
        "--no-flooding",
        "--out",
        s(&plain_profile),
    ]);
    // (Seeded secret-key encryption: the batch file carries seeded ciphertexts, half the size.)
    let plain_batch = d.join("plain.clhe");
    ok(&[
        "encrypt",
        "--keys",
        k,
        "--profile",
        s(&plain_profile),
        "--mode",
        "seeded",
        "--input",
        &spec,
        "--out",
        s(&plain_batch),
    ]);
    let (full, seeded) = (
        std::fs::metadata(&batch).unwrap().len(),
        std::fs::metadata(&plain_batch).unwrap().len(),
    );
    assert!(seeded < full * 6 / 10, "seeded batch {seeded} bytes, full {full}");
    infer(&plain_batch, &model, &[], 7, "--no-flooding profile");
    // A truncated batch.
    let bytes = std::fs::read(&batch).unwrap();
    let cut = d.join("cut.clhe");
    std::fs::write(&cut, &bytes[..bytes.len() - 100]).unwrap();
    infer(&cut, &model, &[], 4, "truncated");
    // The profile of another preset, at encryption time.
    let keys14 = d.join("keys14");
    ok(&["keygen", "--preset", "leveled-n14", "--out", s(&keys14)]);
    let o = d.join("x.clhe");
    fails(
        &[
            "encrypt",
            "--keys",
            s(&keys14),
            "--profile",
            s(&profile),
            "--input",
            &spec,
            "--out",
            s(&o),
        ],
        5,
        &["private-n15"],
    );
    assert!(!o.exists());
    // A damaged profile, at encryption time.
    let bad_profile = d.join("bad-profile.json");
    std::fs::write(&bad_profile, "{\"format\": \"clifhe-input-profile/1\"").unwrap();
    fails(
        &[
            "encrypt",
            "--keys",
            k,
            "--profile",
            s(&bad_profile),
            "--input",
            &spec,
            "--out",
            s(&o),
        ],
        4,
        &["input profile"],
    );
    assert!(!o.exists());
    // The --no-flooding profile's batch evaluates without flooding; its scores at the preset's
    // scale cannot take the release's s = 30 flood either (a typed refusal, not noise).
    ok(&infer_args(&model, k, &plain_batch, &s2, &["--no-flooding"]));
    let count = || std::fs::read_to_string(keys.join("releases.json")).unwrap();
    let before = count();
    fails(&["release", "--keys", k, "--scores", s(&s2)], 7, &["exceed the scale"]);
    assert_eq!(count(), before, "a refused release used budget");
    std::fs::remove_dir_all(&s2).unwrap();
    // --no-flooding on the circuit-private batch: masked only, still the plaintext model's argmax.
    ok(&infer_args(&model, k, &batch, &s2, &["--no-flooding"]));
    let out = ok(&["release", "--keys", k, "--scores", s(&s2), "--json"]);
    let plain: Value = serde_json::from_str(&out).unwrap();
    let agree = plain
        .as_array()
        .unwrap()
        .iter()
        .zip(preds)
        .filter(|(a, b)| a["class"] == b["class"])
        .count();
    assert_eq!(agree, patients);
}

fn dataset() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/adrenalmnist3d.npz");
    p.exists().then_some(p)
}

#[test]
fn keygen_evalkeys_train_encrypt_infer_release() {
    let Some(data) = dataset() else {
        println!("skipping: AdrenalMNIST3D not found");
        return;
    };
    let d = TempDir::new("proto-flow");
    let keys = d.join("keys");
    let k = keys.to_str().unwrap();
    ok(&["keygen", "--preset", "leveled-n14", "--out", k]);
    ok(&["evalkeys", "--keys", k]);
    let model = d.join("model.json");
    ok(&["train", "--dataset", data.to_str().unwrap(), "--out", model.to_str().unwrap()]);
    let batch = d.join("batch.ct");
    let spec = format!("{}#test:0..24", data.display());
    ok(&["encrypt", "--keys", k, "--input", &spec, "--out", batch.to_str().unwrap()]);
    let scores = d.join("scores");
    // leveled-n14 cannot absorb s = 30 flooding: the vendor skips it here (documented as not
    // circuit-private) and the hospital floods its release at s = 10.
    ok(&[
        "infer",
        "--model",
        model.to_str().unwrap(),
        "--keys",
        k,
        "--input",
        batch.to_str().unwrap(),
        "--out",
        scores.to_str().unwrap(),
        "--patients",
        "24",
        "--no-flooding",
    ]);
    let out = ok(&[
        "release",
        "--keys",
        k,
        "--scores",
        scores.to_str().unwrap(),
        "--statistical-security",
        "10",
        "--json",
    ]);
    let preds: Value = serde_json::from_str(&out).unwrap();
    let preds = preds.as_array().unwrap();
    assert_eq!(preds.len(), 24);
    // The plaintext model on the same features.
    let m = clifhe_std::gnn::GnnModel::load(&model).unwrap();
    let ds = host_eval::data::npz::load_medmnist_npz(&data).unwrap();
    let mut agree = 0;
    for (p, pred) in preds.iter().enumerate() {
        let v = ds.test.volume(p).unwrap();
        let f = scan_features(&v.view().unwrap(), &FeatureConfig { intensity_scale: 255.0 }).unwrap();
        let want = m.predict(&f);
        agree += usize::from(pred["class"].as_u64().unwrap() as usize == want);
    }
    assert!(agree >= 23, "released predictions agree with the plaintext model on {agree}/24");
    // The budget is counted and enforced.
    fails(&["release", "--keys", k, "--scores", s(&scores), "--budget", "1"], 7, &["budget"]);
    // Flooding at s = 30 on leveled-n14 is refused, not silently destroying the scores.
    let s2 = d.join("s2");
    fails(&infer_args(&model, k, &batch, &s2, &[]), 7, &["encrypt --profile"]);
}

#[test]
fn demo_json_reports_the_promised_fields() {
    let out = ok(&["demo", "--json", "--per-class", "40"]);
    let r: Value = serde_json::from_str(&out).unwrap();
    for key in [
        "preset",
        "log_n",
        "log_qp",
        "patients",
        "classes",
        "plaintext_accuracy",
        "encrypted_accuracy",
        "argmax_agreement",
        "max_abs_score_error",
        "balanced_accuracy",
        "latency_ms_per_patient",
        "patients_per_second",
        "threads",
    ] {
        assert!(!r[key].is_null(), "{key} missing in {out}");
    }
    assert_eq!(r["preset"], "private-n15");
    assert_eq!(r["classes"], 3);
    assert_eq!(r["argmax_agreement_before_flooding"].as_f64().unwrap(), 1.0);
    assert!(r["max_abs_score_error"].as_f64().unwrap() < 1e-3);
    // The circuit-private schedule keeps the floods' standard deviation far below the smallest
    // top-two score gap (`flood_std_over_min_gap`), so flooding flips no argmax.
    assert_eq!(r["argmax_agreement"].as_f64().unwrap(), 1.0, "{out}");
    assert!(r["flood_std_over_min_gap"].as_f64().unwrap() < 1.0 / 6.0, "{out}");
    assert!(r["circuit_private"].as_bool().unwrap());
}
