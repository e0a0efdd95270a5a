//! End-to-end runs of the built `host-eval` binary: presets, keygen -> encrypt -> decrypt for
//! single patients, batches, both encryption modes and a real MedMNIST sample.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{ok, s, TempDir};

use serde_json::Value;
use std::path::{Path, PathBuf};

fn keygen(dir: &TempDir, preset: &str) -> PathBuf {
    let keys = dir.join("keys");
    ok(&["keygen", "--preset", preset, "--out", s(&keys)]);
    keys
}

fn write_features(path: &Path, f: &[f64; 8]) {
    std::fs::write(path, serde_json::to_string(&f.to_vec()).unwrap()).unwrap();
}

/// `decrypt --json` -> (patient index, features) pairs.
fn decrypt_json(keys: &Path, ct: &Path, extra: &[&str]) -> Vec<(usize, [f64; 8])> {
    let mut args = vec!["decrypt", "--keys", s(keys), "--input", s(ct), "--json"];
    args.extend_from_slice(extra);
    let v: Value = serde_json::from_str(&ok(&args)).unwrap();
    v["patients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let names = ["scalar", "e1", "e2", "e3", "e12", "e13", "e23", "e123"];
            let mut f = [0f64; 8];
            for (o, n) in f.iter_mut().zip(names) {
                *o = p[n].as_f64().unwrap();
            }
            (p["patient"].as_u64().unwrap() as usize, f)
        })
        .collect()
}

fn assert_close(got: &[f64; 8], want: &[f64; 8]) {
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-5, "got {got:?}, want {want:?}");
    }
}

fn patient(k: usize) -> [f64; 8] {
    let k = k as f64;
    [0.3 + 0.01 * k, 0.5 - 0.1 * k, -0.25, 0.125 * k, 1e-3, -2e-3 * k, 0.75, -0.0625 + k]
}

#[test]
fn presets_lists_the_four_presets_with_log2_qp() {
    let table = ok(&["presets"]);
    for (name, qp, bound) in [
        ("leveled-n14", "400.00", "438"),
        ("private-n15", "788.00", "881"),
        ("bootstrap-n16", "1731.00", "1747"),
        ("device-n12", "100.00", "109"),
    ] {
        let line = table
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} missing:\n{table}"));
        assert!(line.contains(qp) && line.contains(bound), "{line}");
    }
    let json: Value = serde_json::from_str(&ok(&["presets", "--json"])).unwrap();
    let rows = json.as_array().unwrap();
    assert_eq!(rows.len(), 4);
    for r in rows {
        assert!(r["log2_qp"].as_f64().unwrap() <= r["bound_128"].as_f64().unwrap());
        assert_eq!(r["secure_128"], Value::Bool(true));
    }
    assert_eq!(rows[0]["chain"], "60 + 7x40");
}

#[test]
fn keygen_writes_a_private_seed_a_public_key_and_its_fingerprint() {
    let dir = TempDir::new("keygen");
    let keys = keygen(&dir, "device-n12");
    let secret = std::fs::read(keys.join("secret.key")).unwrap();
    assert_eq!(secret.len(), 32 + 32, "header + seed only");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(keys.join("secret.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let public = std::fs::read(keys.join("public.key")).unwrap();
    let meta: Value = serde_json::from_slice(&std::fs::read(keys.join("keyset.json")).unwrap()).unwrap();
    assert_eq!(meta["preset"], "device-n12");
    assert_eq!(meta["preset_id"], 4);
    assert_eq!(
        meta["fingerprint_sha256"].as_str().unwrap(),
        host_eval::cli::keyset::sha256_hex(&public)
    );
    assert!(meta["created"].as_str().unwrap().ends_with('Z'));
    // Only the three files: no temporaries left behind.
    let mut names: Vec<String> = std::fs::read_dir(&keys)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["keyset.json", "leakage.json", "public.bundle", "public.key", "secret.key"]);
    // Two key generations from the OS generator differ.
    let other = dir.join("other");
    ok(&["keygen", "--preset", "device-n12", "--out", s(&other)]);
    assert_ne!(std::fs::read(other.join("secret.key")).unwrap(), secret);
    // --force replaces the key set.
    ok(&["keygen", "--preset", "device-n12", "--out", s(&keys), "--force"]);
    assert_ne!(std::fs::read(keys.join("secret.key")).unwrap(), secret);
}

#[test]
fn features_json_round_trip_in_both_modes_and_presets() {
    let dir = TempDir::new("roundtrip");
    for preset in ["leveled-n14", "device-n12"] {
        let keys = dir.join(preset);
        ok(&["keygen", "--preset", preset, "--out", s(&keys)]);
        let f = patient(1);
        let input = dir.join("f.json");
        write_features(&input, &f);
        for mode in ["pk", "seeded"] {
            let ct = dir.join(&format!("{preset}-{mode}.ct"));
            let summary = ok(&["encrypt", "--keys", s(&keys), "--input", s(&input), "--out", s(&ct), "--mode", mode]);
            assert!(summary.contains("encrypted 1 patient"), "{summary}");
            let got = decrypt_json(&keys, &ct, &[]);
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].0, 0);
            assert_close(&got[0].1, &f);
        }
        // Seeded ciphertexts are about half the size of public-key ones.
        let pk = std::fs::metadata(dir.join(&format!("{preset}-pk.ct"))).unwrap().len();
        let sd = std::fs::metadata(dir.join(&format!("{preset}-seeded.ct"))).unwrap().len();
        assert!(sd * 2 < pk + 1024, "{sd} vs {pk}");
    }
}

#[test]
fn table_and_csv_outputs_name_the_components() {
    let dir = TempDir::new("formats");
    let keys = keygen(&dir, "device-n12");
    let input = dir.join("f.csv");
    std::fs::write(&input, "scalar,e1,e2,e3,e12,e13,e23,e123\n0.5,0.1,-0.2,0.3,0.01,0.02,-0.03,0.004\n").unwrap();
    let ct = dir.join("c.ct");
    ok(&[
        "encrypt",
        "--keys",
        s(&keys),
        "--input",
        s(&input),
        "--out",
        s(&ct),
        "--slot",
        "2",
        "--level",
        "0",
    ]);
    let table = ok(&["decrypt", "--keys", s(&keys), "--input", s(&ct)]);
    assert!(
        table.contains("scalar") && table.contains("e123") && table.contains("0.500000"),
        "{table}"
    );
    assert!(table.contains("level 0"), "{table}");
    let csv = ok(&["decrypt", "--keys", s(&keys), "--input", s(&ct), "--csv"]);
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("patient,scalar,e1,e2,e3,e12,e13,e23,e123"));
    let row: Vec<f64> = lines.next().unwrap().split(',').map(|c| c.parse().unwrap()).collect();
    assert_eq!(row[0], 2.0);
    assert_close(&row[1..].try_into().unwrap(), &[0.5, 0.1, -0.2, 0.3, 0.01, 0.02, -0.03, 0.004]);
    assert!(lines.next().is_none());
    // The CSV that decrypt prints is itself a valid features input.
    let again = dir.join("again.csv");
    std::fs::write(&again, &csv).unwrap();
    let ct2 = dir.join("c2.ct");
    ok(&["encrypt", "--keys", s(&keys), "--input", s(&again), "--out", s(&ct2)]);
    assert_eq!(decrypt_json(&keys, &ct2, &[]).len(), 1);
}

#[test]
fn batch_of_four_patients_lands_in_consecutive_blocks() {
    let dir = TempDir::new("batch");
    let keys = keygen(&dir, "leveled-n14");
    let files: Vec<PathBuf> = (0..4)
        .map(|k| {
            let p = dir.join(&format!("p{k}.json"));
            write_features(&p, &patient(k));
            p
        })
        .collect();
    let ct = dir.join("batch.ct");
    let mut args = vec!["encrypt", "--keys", s(&keys), "--out", s(&ct), "--input"];
    args.extend(files.iter().map(|p| s(p)));
    let summary = ok(&args);
    assert!(
        summary.contains("encrypted 4 patient(s) into patient slots 0..=3 (slots 0..31)"),
        "{summary}"
    );
    let got = decrypt_json(&keys, &ct, &[]);
    assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), [0, 1, 2, 3]);
    for (k, (_, f)) in got.iter().enumerate() {
        assert_close(f, &patient(k));
    }
    // One JSON document holding several patients, placed from patient slot 10, seeded mode.
    let many = dir.join("many.json");
    let doc: Vec<Vec<f64>> = (0..4).map(|k| patient(k).to_vec()).collect();
    std::fs::write(&many, serde_json::to_string(&doc).unwrap()).unwrap();
    let ct = dir.join("batch2.ct");
    ok(&[
        "encrypt",
        "--keys",
        s(&keys),
        "--input",
        s(&many),
        "--out",
        s(&ct),
        "--slot",
        "10",
        "--mode",
        "seeded",
    ]);
    let got = decrypt_json(&keys, &ct, &["--patients", "9..=14"]);
    assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), [9, 10, 11, 12, 13, 14]);
    assert_close(&got[0].1, &[0.0; 8]);
    assert_close(&got[5].1, &[0.0; 8]);
    for k in 0..4 {
        assert_close(&got[k + 1].1, &patient(k));
    }
}

/// Plaintext features of a dataset sample, computed in-process straight from the loader and
/// the core feature function (8-bit MedMNIST masks: intensities divided by 255).
fn expected_sample_features(spec: &str) -> [f64; 8] {
    use clifhe_core::multivector::features::{scan_features, FeatureConfig};
    let volume = host_eval::data::load_volume(spec).unwrap();
    scan_features(&volume.view().unwrap(), &FeatureConfig { intensity_scale: 255.0 })
        .unwrap()
        .coeffs()
}

#[test]
fn medmnist_sample_round_trip() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let npz = root.join("../shared/data/adrenalmnist3d.npz");
    if !npz.exists() {
        eprintln!("skipping: {} not present", npz.display());
        return;
    }
    let spec = format!("{}#test:0", npz.display());
    let want = expected_sample_features(&spec);
    // A binary mask: the scalar feature is the volume fraction.
    assert!(want[0] > 0.0 && want[0] < 1.0, "{want:?}");
    let dir = TempDir::new("npz");
    let keys = keygen(&dir, "leveled-n14");
    let ct = dir.join("sample.ct");
    ok(&["encrypt", "--keys", s(&keys), "--input", &spec, "--out", s(&ct)]);
    let got = decrypt_json(&keys, &ct, &["--patients", "0"]);
    assert_close(&got[0].1, &want);

    // A dataset range makes one batch, patient p = sample p.
    let range = format!("{}#test:0..4", npz.display());
    let ct = dir.join("range.ct");
    let summary = ok(&["encrypt", "--keys", s(&keys), "--input", &range, "--out", s(&ct)]);
    assert!(summary.contains("encrypted 4 patient(s)"), "{summary}");
    let got = decrypt_json(&keys, &ct, &["--patients", "0..4"]);
    for (p, f) in got {
        let want = expected_sample_features(&format!("{}#test:{p}", npz.display()));
        assert_close(&f, &want);
    }
}

#[test]
fn help_explains_the_roles() {
    let help = ok(&["--help"]);
    for word in ["hospital", "vendor", "keygen", "encrypt", "decrypt", "presets", "Exit codes"] {
        assert!(help.contains(word), "{word} missing from --help:\n{help}");
    }
    assert!(!help.contains("insecure-test-seed"), "the test-only seed flag must stay hidden");
    let enc = ok(&["encrypt", "--help"]);
    assert!(enc.contains("--mode") && enc.contains("--slot") && enc.contains("#SPLIT"), "{enc}");
}
