//! Enrolled devices through the command line: the hospital enrols a device for the vendor's
//! circuit-private profile (`device-enroll`), the device encrypts (`device-encrypt`: the
//! firmware's own code path, run on the host; the QEMU firmware runs in
//! scripts/device-tests.sh), the vendor evaluates (`infer --device-ciphertexts --device-key`),
//! the hospital records what it sent (`device-record`) and releases: every released class equals
//! the plaintext model's. Then what a careless or cheating party can try.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{fails, ok, s, TempDir};
use serde_json::Value;

/// Patients inside the model's box, and one far outside it (the device clamps it).
fn features_in_box(profile: &Value) -> Vec<[f64; 8]> {
    let b = &profile["input_box"];
    let c: Vec<f64> = b["center"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let h: Vec<f64> = b["half_width"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let offsets = [-0.8, -0.35, 0.0, 0.3, 0.75];
    let mut rows: Vec<[f64; 8]> = offsets
        .iter()
        .enumerate()
        .map(|(i, o)| std::array::from_fn(|k| c[k] + h[k] * (o * if (k + i) % 2 == 0 { 1.0 } else { -0.7 })))
        .collect();
    rows.push(std::array::from_fn(|k| c[k] + 1.8 * h[k]));
    rows
}

#[test]
fn enrolled_device_ciphertexts_release_the_plaintext_models_classes() {
    let d = TempDir::new("device-enrolled");
    let keys = d.join("keys");
    let (model, profile, bundle, swk) = (d.join("model.json"), d.join("profile.json"), d.join("bundle"), d.join("device.swk"));
    ok(&["keygen", "--preset", "private-n15", "--out", s(&keys)]);
    ok(&["train", "--per-class", "60", "--seed", "3", "--out", s(&model)]);
    ok(&["profile", "--model", s(&model), "--keys", s(&keys), "--out", s(&profile)]);

    // Enrolment: the bundle (secret seed private to its owner) and the vendor's switching key.
    let report: Value = serde_json::from_str(&ok(&[
        "device-enroll",
        "--keys",
        s(&keys),
        "--profile",
        s(&profile),
        "--out",
        s(&bundle),
        "--switch-key",
        s(&swk),
        "--json",
    ]))
    .unwrap();
    let manifest = &report["manifest"];
    assert_eq!(manifest["format"], "clifhe-device-enrollment/1");
    let profile_doc: Value = serde_json::from_slice(&std::fs::read(&profile).unwrap()).unwrap();
    assert_eq!(
        manifest["level"].as_u64().unwrap(),
        profile_doc["input_level"].as_u64().unwrap() + 1
    );
    assert_eq!(manifest["profile_fingerprint"], profile_doc["fingerprint"]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(bundle.join("device-key.seed")).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the device key seed is readable by others: {mode:o}");
    }
    // The device key is not the hospital's: no 32-byte window of the hospital's secret key file
    // occurs in the bundle.
    let hospital_secret = std::fs::read(keys.join("secret.key")).unwrap();
    let device_seed = std::fs::read(bundle.join("device-key.seed")).unwrap();
    assert!(hospital_secret.windows(32).all(|w| w != device_seed.as_slice()));
    // Only a circuit-private blade-major profile can be enrolled for: a --no-flooding profile
    // is refused by name, and nothing is written.
    let unflooded = d.join("unflooded.json");
    ok(&[
        "profile",
        "--model",
        s(&model),
        "--keys",
        s(&keys),
        "--out",
        s(&unflooded),
        "--no-flooding",
    ]);
    let refused = d.join("refused");
    fails(
        &[
            "device-enroll",
            "--keys",
            s(&keys),
            "--profile",
            s(&unflooded),
            "--out",
            s(&refused),
            "--switch-key",
            s(&d.join("refused.swk")),
        ],
        7,
        &["circuit-private"],
    );
    assert!(!refused.exists() && !d.join("refused.swk").exists());
    // An enrolment never replaces a device key in place.
    fails(
        &[
            "device-enroll",
            "--keys",
            s(&keys),
            "--profile",
            s(&profile),
            "--out",
            s(&bundle),
            "--switch-key",
            s(&d.join("other.swk")),
        ],
        7,
        &["exists"],
    );

    // The device encrypts 6 patients (the last one outside the box: flagged).
    let features = features_in_box(&profile_doc);
    let features_file = d.join("features.json");
    std::fs::write(&features_file, serde_json::to_vec(&features).unwrap()).unwrap();
    let cts = d.join("device-out");
    let enc: Value = serde_json::from_str(&ok(&[
        "device-encrypt",
        "--bundle",
        s(&bundle),
        "--input",
        s(&features_file),
        "--out",
        s(&cts),
        "--json",
    ]))
    .unwrap();
    assert_eq!(enc["files"].as_array().unwrap().len(), 6);
    assert_eq!(enc["out_of_box"], serde_json::json!([5]));

    // Vendor: without the rotations the hospital registers, refused by name before any work.
    let scores = d.join("scores");
    fails(
        &[
            "infer",
            "--model",
            s(&model),
            "--keys",
            s(&keys),
            "--device-ciphertexts",
            s(&cts),
            "--device-key",
            s(&swk),
            "--out",
            s(&scores),
        ],
        5,
        &["rotation key for step 1", "--merge-patients"],
    );
    ok(&["evalkeys", "--keys", s(&keys), "--merge-patients", "2"]);
    // A truncated switching key is refused by its size, before it is read.
    let short = d.join("short.swk");
    std::fs::write(&short, &std::fs::read(&swk).unwrap()[..1000]).unwrap();
    fails(
        &[
            "infer",
            "--model",
            s(&model),
            "--keys",
            s(&keys),
            "--device-ciphertexts",
            s(&cts),
            "--device-key",
            s(&short),
            "--out",
            s(&scores),
        ],
        4,
        &["switching key", "1000 bytes"],
    );
    // Never --no-flooding on a device batch.
    fails(
        &[
            "infer",
            "--model",
            s(&model),
            "--keys",
            s(&keys),
            "--device-ciphertexts",
            s(&cts),
            "--device-key",
            s(&swk),
            "--out",
            s(&scores),
            "--no-flooding",
        ],
        7,
        &["circuit-private"],
    );
    let m: Value = serde_json::from_str(&ok(&[
        "infer",
        "--model",
        s(&model),
        "--keys",
        s(&keys),
        "--device-ciphertexts",
        s(&cts),
        "--device-key",
        s(&swk),
        "--out",
        s(&scores),
        "--json",
    ]))
    .unwrap();
    assert_eq!(m["circuit_private"], true);
    assert_eq!(m["patients"], 6);

    // Hospital: its record of what the device sent, then the release.
    let record = d.join("device.record.json");
    ok(&[
        "device-record",
        "--keys",
        s(&keys),
        "--profile",
        s(&profile),
        "--device-ciphertexts",
        s(&cts),
        "--out",
        s(&record),
    ]);
    let released: Value = serde_json::from_str(&ok(&[
        "release",
        "--keys",
        s(&keys),
        "--scores",
        s(&scores),
        "--record",
        s(&record),
        "--json",
    ]))
    .unwrap();
    let plain: Value = serde_json::from_str(&ok(&["predict", "--model", s(&model), "--input", s(&features_file), "--json"])).unwrap();
    let released = released.as_array().unwrap();
    let plain = plain["patients"].as_array().unwrap();
    assert_eq!(released.len(), 6);
    for (r, p) in released.iter().zip(plain) {
        assert_eq!(
            r["class"], p["class"],
            "patient {}: released {} vs plaintext {}",
            r["patient"], r["class"], p["class"]
        );
    }

    // A record for another number of patients than the vendor answered: refused.
    let one = d.join("one.record.json");
    ok(&[
        "device-record",
        "--keys",
        s(&keys),
        "--profile",
        s(&profile),
        "--device-ciphertexts",
        s(&cts.join("patient0000.clhe")),
        "--out",
        s(&one),
    ]);
    fails(
        &["release", "--keys", s(&keys), "--scores", s(&scores), "--record", s(&one)],
        4,
        &["another batch"],
    );

    // A damaged bundle is refused before anything is encrypted with it.
    let input_bin = bundle.join("input.bin");
    let mut image = std::fs::read(&input_bin).unwrap();
    image[20] ^= 1;
    std::fs::write(&input_bin, &image).unwrap();
    fails(
        &[
            "device-encrypt",
            "--bundle",
            s(&bundle),
            "--input",
            s(&features_file),
            "--out",
            s(&d.join("again")),
        ],
        4,
        &["SHA-256"],
    );
}
