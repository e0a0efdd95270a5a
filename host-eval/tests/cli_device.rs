//! Single-patient device ciphertexts through the vendor's `infer --device-ciphertexts`: each a
//! full-slot leveled-n14 encryption with its patient in slots 0..7 (what the N = 2^14 firmware
//! sends, and what `encrypt --input ONE` makes), merged into one batch by rotations, evaluated,
//! and checked against `predict` (the plaintext model) on the same features; and every way such
//! an input can be wrong, as a typed error with its exit code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{fails, ok, run, s, TempDir};

use clifhe_core::context::Context;
use clifhe_core::encrypt::{encrypt_pk, Plaintext};
use clifhe_core::params::Params;
use clifhe_core::wire;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The N = 2^14 firmware's two CT-like phantoms (with and without the lesion, as it reports
/// them) and a third patient in the same range.
const PATIENTS: [[f64; 8]; 3] = [
    [
        0.14748448966565775,
        0.008013484325849037,
        0.0015480221711963696,
        0.0025659914504299903,
        0.0006037108141939794,
        0.0005338355378850903,
        0.0001231667692127644,
        0.6253114025845936,
    ],
    [
        0.14335744156414876,
        0.0006668073157060657,
        -0.00041761655573607716,
        0.0002279051113157331,
        0.00014669038105091908,
        8.691909036733261e-6,
        -0.000012544461353025358,
        0.6309326021811423,
    ],
    [0.145, -0.004, 0.003, -0.002, 0.0004, -0.0003, 0.0002, 0.628],
];

/// A leveled-n14 key set (fixed test seed) with evaluation keys (`merge` device ciphertexts),
/// a small phantom model, and one single-patient ciphertext per patient (`encrypt`, slot 0).
struct Setup {
    dir: TempDir,
    keys: PathBuf,
    model: PathBuf,
    cts: Vec<PathBuf>,
}

fn setup(tag: &str, merge: Option<usize>) -> Setup {
    let dir = TempDir::new(tag);
    let keys = dir.join("keys");
    ok(&["keygen", "--preset", "leveled-n14", "--out", s(&keys)]);
    match merge {
        Some(m) => ok(&["evalkeys", "--keys", s(&keys), "--merge-patients", &m.to_string()]),
        None => ok(&["evalkeys", "--keys", s(&keys)]),
    };
    let model = dir.join("model.json");
    ok(&["train", "--per-class", "40", "--out", s(&model)]);
    let devices = dir.join("devices");
    std::fs::create_dir_all(&devices).unwrap();
    let cts = PATIENTS
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let feat = dir.join(&format!("p{i}.json"));
            std::fs::write(&feat, serde_json::to_string(&f.to_vec()).unwrap()).unwrap();
            let ct = devices.join(format!("patient{i}.ct"));
            ok(&["encrypt", "--keys", s(&keys), "--input", s(&feat), "--out", s(&ct)]);
            ct
        })
        .collect();
    Setup { dir, keys, model, cts }
}

/// Score of (patient, class) from `decrypt --json` of the class ciphertexts.
fn decrypted_scores(keys: &Path, scores: &Path, classes: usize, patients: usize) -> Vec<Vec<f64>> {
    common::raw_scores(keys, scores, classes, patients, 8)
}

#[test]
fn device_ciphertexts_merge_and_match_the_plaintext_model() {
    let st = setup("flow", Some(3));
    let k = s(&st.keys);
    let m = s(&st.model);
    let feats = st.dir.join("all.json");
    std::fs::write(
        &feats,
        serde_json::to_string(&PATIENTS.iter().map(|f| f.to_vec()).collect::<Vec<_>>()).unwrap(),
    )
    .unwrap();
    let plain: Value = serde_json::from_str(&ok(&["predict", "--model", m, "--input", s(&feats), "--json"])).unwrap();
    assert!(plain["max_abs_intermediate"].as_f64().unwrap() < 1e3, "{plain}");
    let classes = plain["labels"].as_array().unwrap().len();

    // Three device ciphertexts (listed as files) and the same three as a directory.
    let scores = st.dir.join("scores");
    let out = ok(&[
        "infer",
        "--model",
        m,
        "--keys",
        k,
        "--device-ciphertexts",
        s(&st.cts[0]),
        s(&st.cts[1]),
        s(&st.cts[2]),
        "--out",
        s(&scores),
        "--no-flooding",
    ]);
    assert!(out.contains("3 patients"), "{out}");
    let manifest: Value = serde_json::from_slice(&std::fs::read(scores.join("scores.json")).unwrap()).unwrap();
    assert_eq!(manifest["patients"], 3);
    let got = decrypted_scores(&st.keys, &scores, classes, 3);
    let mut max_err = 0f64;
    for (p, row) in got.iter().enumerate() {
        let want: Vec<f64> = plain["patients"][p]["scores"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        for (g, w) in row.iter().zip(&want) {
            max_err = max_err.max((g - w).abs());
        }
        let argmax = row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
        assert_eq!(
            argmax as u64,
            plain["patients"][p]["class"].as_u64().unwrap(),
            "patient {p}: {row:?} vs {want:?}"
        );
    }
    // Fresh noise 2^-22 per slot, amplified by the model's input normalisation: about 1e-3.
    assert!(max_err < 1e-2, "max |encrypted - plaintext score| = {max_err:e}");

    let scores_dir = st.dir.join("scores-dir");
    ok(&[
        "infer",
        "--model",
        m,
        "--keys",
        k,
        "--device-ciphertexts",
        s(&st.dir.join("devices")),
        "--out",
        s(&scores_dir),
        "--no-flooding",
    ]);
    let again = decrypted_scores(&st.keys, &scores_dir, classes, 3);
    for (a, b) in again.iter().flatten().zip(got.iter().flatten()) {
        assert!((a - b).abs() < 1e-2);
    }

    // One device ciphertext needs no merge key; the scores agree with the model. They are NOT
    // circuit-private (--no-flooding): `decrypt` refuses them and there is no batch record to
    // release them with.
    let one = st.dir.join("one");
    ok(&[
        "infer",
        "--model",
        m,
        "--keys",
        k,
        "--device-ciphertexts",
        s(&st.cts[2]),
        "--out",
        s(&one),
        "--no-flooding",
    ]);
    let row = &decrypted_scores(&st.keys, &one, classes, 1)[0];
    let argmax = row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
    assert_eq!(argmax as u64, plain["patients"][2]["class"].as_u64().unwrap());
    fails(&["decrypt", "--keys", k, "--input", s(&one.join("class-0.ct"))], 7, &["release"]);
}

#[test]
fn bad_device_ciphertexts_are_typed_errors() {
    // Evaluation keys without merge rotations.
    let st = setup("errors", None);
    let k = s(&st.keys);
    let m = s(&st.model);
    let out = st.dir.join("out");
    let infer = |inputs: &[&str], extra: &[&str], code: i32, needles: &[&str]| {
        let mut args = vec![
            "infer",
            "--model",
            m,
            "--keys",
            k,
            "--out",
            s(&out),
            "--no-flooding",
            "--device-ciphertexts",
        ];
        args.extend_from_slice(inputs);
        args.extend_from_slice(extra);
        fails(&args, code, needles);
        assert!(!out.join("scores.json").exists(), "no output after a failure");
    };
    // Two ciphertexts need the -8 rotation: named, with the command that makes it.
    infer(
        &[s(&st.cts[0]), s(&st.cts[1])],
        &[],
        5,
        &["rotation key for step -8", "--merge-patients 2"],
    );
    // --patients must match the number of device ciphertexts.
    infer(&[s(&st.cts[0])], &["--patients", "2"], 7, &["1 device ciphertexts hold 1 patients"]);
    // A directory without ciphertexts.
    let empty = st.dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    infer(&[s(&empty)], &[], 7, &["no .ct or .clhe"]);
    // A missing file.
    infer(&[s(&st.dir.join("nope.ct"))], &[], 3, &["nope.ct"]);
    // Not a ciphertext at all (the public key).
    infer(&[s(&st.keys.join("public.key"))], &[], 4, &["holds a public key"]);

    // A sparse (8-slot) encryption, as the N = 2^12 firmware packs: refused with the reason.
    let params = Params::from_name("leveled-n14").unwrap();
    let ctx = Context::new(params).unwrap();
    let pk = wire::public_key_from_bytes(&params, &std::fs::read(st.keys.join("public.key")).unwrap()).unwrap();
    let pt = Plaintext::encode_real(&params, &PATIENTS[0], params.default_scale()).unwrap();
    let mut rng = ChaCha20Rng::from_seed([7; 32]);
    let ct = encrypt_pk(&params, ctx.q_tables(), &pk, &pt, params.max_level(), &mut rng).unwrap();
    let sparse = st.dir.join("sparse.ct");
    std::fs::write(&sparse, wire::ciphertext_to_bytes(&params, &ct).unwrap()).unwrap();
    infer(&[s(&sparse)], &[], 7, &["full-slot", "has 8 slots"]);

    // Device ciphertexts at different levels cannot be merged (checked before any key is used).
    let feat = st.dir.join("p0.json");
    let low = st.dir.join("low.ct");
    // Level 5: below the need of the depth-4 model (layout 1 + depth 4 + mask 1 = 6 levels).
    ok(&["encrypt", "--keys", k, "--input", s(&feat), "--out", s(&low), "--level", "5"]);
    infer(&[s(&st.cts[0]), s(&low)], &[], 7, &["level 5", "same level"]);
    // One ciphertext below the model's level need.
    infer(&[s(&low)], &[], 6, &["bad level"]);

    // A ciphertext of another preset.
    let n12 = st.dir.join("keys-n12");
    ok(&["keygen", "--preset", "device-n12", "--out", s(&n12)]);
    let other = st.dir.join("n12.ct");
    ok(&["encrypt", "--keys", s(&n12), "--input", s(&feat), "--out", s(&other)]);
    infer(&[s(&other)], &[], 5, &["device-n12", "leveled-n14"]);

    // --input and --device-ciphertexts exclude each other; one of them is required.
    let o = run(&[
        "infer",
        "--model",
        m,
        "--keys",
        k,
        "--out",
        s(&out),
        "--input",
        s(&st.cts[0]),
        "--device-ciphertexts",
        s(&st.cts[0]),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["infer", "--model", m, "--keys", k, "--out", s(&out)]);
    assert_eq!(o.status.code(), Some(2));

    // evalkeys refuses a merge count no batch holds.
    assert_eq!(run(&["evalkeys", "--keys", k, "--merge-patients", "0"]).status.code(), Some(2));
    fails(&["evalkeys", "--keys", k, "--merge-patients", "1025"], 6, &["at most 1024"]);
}
