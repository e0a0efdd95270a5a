//! The protocol end to end through the binary: keygen -> evalkeys -> train -> encrypt ->
//! infer -> release, checked against the plaintext model (the circuit-private path with
//! `profile` and `encrypt --profile` at private-n15, and the interleaved `--no-flooding` path at
//! leveled-n14); and `demo --json`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{adrenal_dataset, fails, infer_args, ok, s, TempDir};

use clifhe_core::multivector::features::{scan_features, FeatureConfig};
use serde_json::Value;
use std::path::Path;

/// The circuit-private protocol on files, on the whole AdrenalMNIST3D test split: the vendor
/// publishes its model's input profile, the hospital encrypts box-encoded batches for it, the
/// vendor's `infer` floods at s = 30 from the proven noise bound, and the hospital's flooded
/// release equals the plaintext model's argmax on every patient.
#[test]
fn circuit_private_flow_on_files() {
    let Some(data) = adrenal_dataset() else {
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
    // The vendor gets public.bundle alone: the description, the public key and the
    // relinearization key, never the secret key.
    let vendor = d.join("vendor");
    std::fs::create_dir_all(&vendor).unwrap();
    let bundle = vendor.join("public.bundle");
    std::fs::copy(keys.join("public.bundle"), &bundle).unwrap();
    let names: Vec<String> =
        clifhe_std::protocol::bundle::decode(clifhe_std::protocol::bundle::Kind::KeySet, &std::fs::read(&bundle).unwrap())
            .unwrap()
            .into_iter()
            .map(|(e, _)| e.name)
            .collect();
    assert_eq!(names, ["eval/relin.key", "keyset.json", "public.key"]);
    let seed = std::fs::read(keys.join("secret.key")).unwrap();
    let b = std::fs::read(&bundle).unwrap();
    assert!(!b.windows(seed.len()).any(|w| w == seed.as_slice()));
    let vk = s(&bundle);
    let model = d.join("model.json");
    ok(&["train", "--dataset", s(&data), "--out", s(&model)]);
    let profile = d.join("profile.json");
    ok(&["profile", "--model", s(&model), "--keys", vk, "--out", s(&profile)]);
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
    ok(&infer_args(&model, vk, &batch, &scores, &[]));
    let manifest: Value = serde_json::from_slice(&std::fs::read(scores.join("scores.json")).unwrap()).unwrap();
    assert_eq!(manifest["circuit_private"], true);
    assert_eq!(manifest["stride"], 1);
    assert!(manifest["vendor_flood_log2"].as_u64().unwrap() >= 30);
    let record = d.join("batch.clhe.record.json");
    let r: Value = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    assert_eq!(r["patients"], patients);
    assert_eq!(r["result_level"], 1);
    let ledger = || -> Value { serde_json::from_slice(&std::fs::read(keys.join("leakage.json")).unwrap()).unwrap() };
    let budget = ledger()["budget_bits"].as_f64().unwrap();
    assert!(budget > 1000.0, "{budget}");
    let out = ok(&["release", "--keys", k, "--scores", s(&scores), "--record", s(&record), "--json"]);
    let preds: Value = serde_json::from_str(&out).unwrap();
    let preds = preds.as_array().unwrap();
    assert_eq!(preds.len(), patients);
    // An argmax over 2 classes costs 1 bit per patient.
    assert!(
        (ledger()["spent_bits"].as_f64().unwrap() - patients as f64).abs() < 1e-9,
        "{}",
        ledger()
    );
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

    // Rounded scores cost far more (log2(2 R 10^4 + 1) bits per score): a small batch of 12,
    // the same argmax, each score within 1e-3 of the plaintext model's.
    let small = d.join("small.clhe");
    let small_spec = format!("{}#test:0..12", data.display());
    ok(&[
        "encrypt",
        "--keys",
        k,
        "--profile",
        s(&profile),
        "--input",
        &small_spec,
        "--out",
        s(&small),
    ]);
    let small_scores = d.join("small-scores");
    ok(&infer_args(&model, k, &small, &small_scores, &[]));
    let before = ledger()["spent_bits"].as_f64().unwrap();
    let out = ok(&[
        "release",
        "--keys",
        k,
        "--scores",
        s(&small_scores),
        "--record",
        s(&d.join("small.clhe.record.json")),
        "--json",
        "--rounded",
        "4",
    ]);
    let cost = ledger()["spent_bits"].as_f64().unwrap() - before;
    assert!(
        (cost - 12.0 * 2.0 * (2.0 * 1024.0 * 1e4 + 1.0f64).log2()).abs() < 1e-6,
        "rounded release cost {cost}"
    );
    let rounded: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rounded.as_array().unwrap().len(), 12);
    for ((r, p), f) in rounded.as_array().unwrap().iter().zip(preds).zip(&features) {
        assert_eq!(r["class"], p["class"]);
        let want = m.forward_in_box(f);
        for (got, want) in r["scores"].as_array().unwrap().iter().zip(&want) {
            assert!((got.as_f64().unwrap() - want).abs() <= 1e-3, "{got} vs {want}");
        }
    }
    // The hospital's `decrypt` does not open the vendor's scores: they go through `release`.
    fails(&["decrypt", "--keys", k, "--input", s(&scores)], 7, &["host-eval release"]);
    fails(
        &["decrypt", "--keys", k, "--input", s(&scores.join("class-0.ct"))],
        7,
        &["host-eval release"],
    );

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
    // The --no-flooding profile's batch evaluates without flooding; its results have no proven
    // bound to flood from, so the release refuses them, from the hospital's own record (no
    // budget used: the decision does not depend on anything the vendor sent).
    ok(&infer_args(&model, k, &plain_batch, &s2, &["--no-flooding"]));
    let before = ledger()["spent_bits"].as_f64().unwrap();
    let plain_record = d.join("plain.clhe.record.json");
    fails(
        &["release", "--keys", k, "--scores", s(&s2), "--record", s(&plain_record)],
        7,
        &["not released"],
    );
    assert_eq!(
        ledger()["spent_bits"].as_f64().unwrap(),
        before,
        "a record-only refusal used budget"
    );
    std::fs::remove_dir_all(&s2).unwrap();
    // --no-flooding on the circuit-private batch: masked only, the plaintext model's argmax, but
    // its manifest and its level and scale disagree with the batch record: refused, one bit.
    ok(&infer_args(&model, k, &batch, &s2, &["--no-flooding"]));
    let raw = common::raw_scores(&keys, &s2, 2, patients, 1);
    let agree = raw
        .iter()
        .zip(preds)
        .filter(|(r, b)| u64::from(r[1] > r[0]) == b["class"].as_u64().unwrap())
        .count();
    assert_eq!(agree, patients);
    let before = ledger()["spent_bits"].as_f64().unwrap();
    fails(
        &["release", "--keys", k, "--scores", s(&s2), "--record", s(&record)],
        4,
        &["batch record"],
    );
    assert_eq!(
        ledger()["spent_bits"].as_f64().unwrap(),
        before + 1.0,
        "a refusal after reading the results costs one bit"
    );
}

#[test]
fn keygen_evalkeys_train_encrypt_infer_release() {
    let Some(data) = adrenal_dataset() else {
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
    // The scores are NOT circuit-private: checked here by the test's own decryption; the
    // release refuses them (no proven bound to flood from).
    let raw = common::raw_scores(&keys, &scores, 2, 24, 8);
    // The plaintext model on the same features.
    let m = clifhe_std::gnn::GnnModel::load(&model).unwrap();
    let ds = host_eval::data::npz::load_medmnist_npz(&data).unwrap();
    let mut agree = 0;
    for (p, row) in raw.iter().enumerate() {
        let v = ds.test.volume(p).unwrap();
        let f = scan_features(&v.view().unwrap(), &FeatureConfig { intensity_scale: 255.0 }).unwrap();
        let want = m.predict(&f);
        agree += usize::from(usize::from(row[1] > row[0]) == want);
    }
    assert!(agree >= 23, "encrypted argmax agrees with the plaintext model on {agree}/24");
    let record = d.join("batch.ct.record.json");
    fails(
        &["release", "--keys", k, "--scores", s(&scores), "--record", s(&record)],
        7,
        &["not released"],
    );
    // Flooding at s = 30 on leveled-n14 is refused, not silently destroying the scores.
    let s2 = d.join("s2");
    fails(&infer_args(&model, k, &batch, &s2, &[]), 7, &["encrypt --profile"]);
}

#[test]
fn demo_json_reports_the_promised_fields() {
    let d = TempDir::new("demo-report");
    let report_dir = d.join("report");
    let out = ok(&["demo", "--json", "--per-class", "40", "--report", s(&report_dir)]);
    let r: Value = serde_json::from_str(&out).unwrap();
    // --report: the ROC curves and the released diagnoses' confusion matrix, as PNG and JSON.
    let png = std::fs::read(report_dir.join("report.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let rep: Value = serde_json::from_slice(&std::fs::read(report_dir.join("report.json")).unwrap()).unwrap();
    let confusion: u64 = rep["confusion"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap())
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(confusion, r["patients"].as_u64().unwrap());
    assert_eq!(rep["balanced_accuracy"], r["balanced_accuracy"]);
    assert_eq!(
        rep["curves"].as_array().unwrap().len(),
        3,
        "one-vs-rest curves of the three classes"
    );
    // A report path that cannot be a directory fails before the run, with a typed error.
    let file = d.join("a-file");
    std::fs::write(&file, b"x").unwrap();
    fails(
        &["demo", "--per-class", "40", "--report", s(&file.join("sub"))],
        3,
        &["report directory"],
    );
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

#[test]
fn demo_equivariant_on_tilted_phantoms_releases_the_plaintext_argmax() {
    let d = TempDir::new("demo-equivariant");
    let report_dir = d.join("report");
    let out = ok(&[
        "demo",
        "--arch",
        "equivariant",
        "--per-class",
        "40",
        "--tilt",
        "180",
        "--single-patient-latency",
        "--json",
        "--report",
        s(&report_dir),
    ]);
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["arch"], "equivariant");
    assert_eq!(r["classes"], 3);
    assert_eq!(r["patients"], 30);
    assert!(r["dataset"].as_str().unwrap().contains("tilted up to 180 deg"), "{out}");
    // Circuit-private release of ciphertext x ciphertext products: every argmax as in plaintext.
    assert_eq!(r["argmax_agreement"].as_f64().unwrap(), 1.0, "{out}");
    assert!(r["max_abs_score_error"].as_f64().unwrap() < 1e-5, "{out}");
    assert!(r["relinearizations"].as_u64().unwrap() > 0);
    // One patient in the block layout: 2 relinearizations, released class as in plaintext.
    let one = &r["single_patient"];
    assert_eq!(one["relinearizations"], 2, "{out}");
    assert_eq!(one["argmax_equal"], true, "{out}");
    assert!(one["end_to_end_ms"].as_f64().unwrap() > 0.0);
    let rep: Value = serde_json::from_slice(&std::fs::read(report_dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(rep["balanced_accuracy"], r["balanced_accuracy"]);
    assert!(std::fs::metadata(report_dir.join("report.png")).unwrap().len() > 1000);
    // --tilt is an angle of the built-in phantoms only.
    fails(&["demo", "--tilt", "200"], 7, &["--tilt"]);
    fails(&["demo", "--arch", "equivariant", "--no-flooding"], 7, &["circuit-private"]);
    fails(
        &["demo", "--arch", "equivariant", "--per-class", "4"],
        7,
        &["validation split is empty"],
    );
    fails(
        &["demo", "--arch", "equivariant", "--tilt", "30", "--dataset", s(&d.join("x.npz"))],
        7,
        &["--tilt"],
    );
}
