//! The hospital's release against a malicious vendor (issue: the release must not be a
//! decryption oracle). The vendor holds only what it legitimately has: the public key, the key
//! set's description and a legitimate scores directory. Each test plays one attack:
//! - the key-oracle ciphertext c = (b', Delta + a') for a fresh encryption of zero (b', a'),
//!   which decrypts to Delta * s + e: through `release --rounded` (refused: it would exceed the
//!   leakage budget) and through argmax releases repeated adaptively (each charged, stopped at
//!   the budget, with the advice to rotate keys);
//! - manifests that lie about patients, classes, level and scale (refused, one bit each), and
//!   stated noise bounds that are tiny (the hospital's flood stays its own) or huge (refused);
//! - two concurrent releases on a budget that pays for one (exactly one succeeds).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{fails, ok, run, s, TempDir};

use clifhe_core::ciphertext::CiphertextOwned;
use clifhe_core::context::Context;
use clifhe_core::encrypt::{encrypt_pk, Plaintext};
use clifhe_core::wire;
use clifhe_std::protocol::hospital::{self, ReleaseRequest};
use clifhe_std::protocol::leakage::{self, Disclosure};
use clifhe_std::protocol::BatchRecord;
use host_eval::cli::keyset::KeySet;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::Value;
use std::path::{Path, PathBuf};

const PATIENTS: usize = 12;

/// A hospital (private-n15 key set with `budget` bits), a vendor model on the phantoms (3
/// classes), a batch of 12 patients encrypted for its profile, and the vendor's honest scores.
struct Setup {
    dir: TempDir,
    keys: PathBuf,
    record: PathBuf,
    scores: PathBuf,
}

fn setup(tag: &str, budget: u64) -> Setup {
    let dir = TempDir::new(tag);
    let keys = dir.join("keys");
    let k = s(&keys);
    ok(&[
        "keygen",
        "--preset",
        "private-n15",
        "--out",
        k,
        "--leakage-budget-bits",
        &budget.to_string(),
    ]);
    ok(&["evalkeys", "--keys", k, "--relin-only"]);
    // The vendor holds the public bundle only.
    let bundle = keys.join("public.bundle");
    let vk = s(&bundle);
    let model = dir.join("model.json");
    ok(&["train", "--per-class", "30", "--out", s(&model)]);
    let profile = dir.join("profile.json");
    ok(&["profile", "--model", s(&model), "--keys", vk, "--out", s(&profile)]);
    let data = host_eval::cli::labelled::phantom_features(30, 3, 0.0).unwrap();
    let rows: Vec<Vec<f64>> = data.test.0.iter().take(PATIENTS).map(|m| m.coeffs().to_vec()).collect();
    let feats = dir.join("features.json");
    std::fs::write(&feats, serde_json::to_string(&rows).unwrap()).unwrap();
    let batch = dir.join("batch.clhe");
    ok(&[
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
    let scores = dir.join("scores");
    ok(&[
        "infer",
        "--model",
        s(&model),
        "--keys",
        vk,
        "--input",
        s(&batch),
        "--out",
        s(&scores),
    ]);
    Setup {
        record: dir.join("batch.clhe.record.json"),
        keys,
        scores,
        dir,
    }
}

fn ledger(keys: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(keys.join("leakage.json")).unwrap()).unwrap()
}

fn spent(keys: &Path) -> f64 {
    ledger(keys)["spent_bits"].as_f64().unwrap()
}

/// `release` of `scores` against the setup's record, expected to fail with `code` and to say
/// each of `needles`.
fn refused(st: &Setup, scores: &Path, extra: &[&str], code: i32, needles: &[&str]) -> String {
    let mut args = vec!["release", "--keys", s(&st.keys), "--scores", s(scores), "--record", s(&st.record)];
    args.extend_from_slice(extra);
    fails(&args, code, needles)
}

fn release(st: &Setup, scores: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "release",
        "--keys",
        s(&st.keys),
        "--scores",
        s(scores),
        "--record",
        s(&st.record),
        "--json",
    ];
    args.extend_from_slice(extra);
    run(&args)
}

/// The vendor's key-oracle ciphertext at `level` and `scale` from the public key alone: a fresh
/// public-key encryption of zero (b', a') with Delta added to a' (every NTT limb: a constant).
fn key_oracle(keys: &Path, level: usize, scale: f64, seed: u64) -> CiphertextOwned {
    let ks = KeySet::open(keys).unwrap();
    let params = ks.params;
    let pk = ks.public_key().unwrap();
    let ctx = Context::new(params).unwrap();
    let zero = Plaintext::from_coeffs(vec![0f64; params.n()], scale, params.log_n() - 1).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut ct = encrypt_pk(&params, ctx.q_tables(), &pk, &zero, level, &mut rng).unwrap();
    let delta = scale.round() as u128;
    for i in 0..=level {
        let q = params.q()[i];
        let d = (delta % u128::from(q)) as u64;
        for x in ct.c1.limb_mut(i).unwrap() {
            *x = ((u128::from(*x) + u128::from(d)) % u128::from(q)) as u64;
        }
    }
    ct
}

/// A copy of the honest scores directory with every class file replaced by `ct` and the
/// manifest edited by `edit`.
fn forged(st: &Setup, tag: &str, ct: &CiphertextOwned, edit: impl Fn(&mut Value)) -> PathBuf {
    let params = KeySet::open(&st.keys).unwrap().params;
    let out = st.dir.join(tag);
    std::fs::create_dir_all(&out).unwrap();
    let mut m: Value = serde_json::from_slice(&std::fs::read(st.scores.join("scores.json")).unwrap()).unwrap();
    edit(&mut m);
    let classes = m["classes"].as_u64().unwrap() as usize;
    m["files"] = (0..classes).map(|c| Value::from(format!("class-{c}.ct"))).collect();
    std::fs::write(out.join("scores.json"), serde_json::to_vec(&m).unwrap()).unwrap();
    for c in 0..classes {
        std::fs::write(out.join(format!("class-{c}.ct")), wire::ciphertext_to_bytes(&params, ct).unwrap()).unwrap();
    }
    out
}

/// The level and scale of the honest results.
fn honest_meta(st: &Setup) -> (usize, f64) {
    let params = KeySet::open(&st.keys).unwrap().params;
    let ct = wire::ciphertext_from_bytes(&params, &std::fs::read(st.scores.join("class-0.ct")).unwrap()).unwrap();
    (ct.meta.level, ct.meta.scale)
}

#[test]
fn key_oracle_is_bounded_by_the_leakage_budget() {
    let budget = 120;
    let st = setup("attack-oracle", budget);
    let (level, scale) = honest_meta(&st);
    let oracle = forged(&st, "oracle", &key_oracle(&st.keys, level, scale, 1), |_| {});
    let per_release = PATIENTS as f64 * 3f64.log2();

    // --rounded 6: 12 patients x 3 scores x log2(2 * 1024 * 10^6 + 1) bits, far beyond the
    // budget: refused before anything is decrypted, and nothing is charged.
    let out = release(&st, &oracle, &["--rounded", "6"]);
    assert_eq!(out.status.code(), Some(7), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("leakage budget") && err.contains("keygen --rotate"), "{err}");
    assert_eq!(spent(&st.keys), 0.0);

    // Argmax releases, repeated as an adaptive attacker would (each a new forged ciphertext):
    // every one is charged log2(3) bits per patient of the record, and they stop at the budget.
    let mut released = 0;
    for round in 0..50u64 {
        let dir = forged(
            &st,
            &format!("oracle-{round}"),
            &key_oracle(&st.keys, level, scale, 10 + round),
            |_| {},
        );
        let out = release(&st, &dir, &[]);
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("keygen --rotate"), "{err}");
            break;
        }
        let preds: Value = serde_json::from_slice(&out.stdout).unwrap();
        // Only the record's patients are released, whatever the ciphertext holds.
        assert_eq!(preds.as_array().unwrap().len(), PATIENTS);
        released += 1;
    }
    let total = spent(&st.keys);
    assert_eq!(
        released,
        (budget as f64 / per_release).floor() as usize,
        "releases before the budget stopped them"
    );
    assert!(total <= budget as f64 + 1e-9, "spent {total} of {budget}");
    assert!((total - released as f64 * per_release).abs() < 1e-6);
    // Everything the oracle released, over all attempts, is at most the budget: the key keeps
    // its 128-bit margin (docs/leakage.md).
    refused(&st, &st.scores, &[], 7, &["leakage budget"]);
}

#[test]
fn lying_manifests_and_results_are_refused() {
    let st = setup("attack-lies", 400);
    let (level, scale) = honest_meta(&st);
    let honest_ct = wire::ciphertext_from_bytes(
        &KeySet::open(&st.keys).unwrap().params,
        &std::fs::read(st.scores.join("class-0.ct")).unwrap(),
    )
    .unwrap();
    // A 12-patient batch whose manifest claims a full batch (the review's attack released
    // 16 384 slots this way).
    let d = forged(&st, "patients", &honest_ct, |m| m["patients"] = Value::from(16384));
    let before = spent(&st.keys);
    refused(&st, &d, &[], 4, &["batch record"]);
    assert_eq!(spent(&st.keys), before + 1.0, "a refusal costs one bit");
    // More classes than the model has.
    let d = forged(&st, "classes", &honest_ct, |m| {
        m["classes"] = Value::from(5);
        m["labels"] = (0..5).map(|c| Value::from(format!("c{c}"))).collect();
    });
    refused(&st, &d, &[], 4, &["batch record"]);
    // A result above the level the record expects (more primes: more room for a message).
    let d = forged(&st, "level", &key_oracle(&st.keys, level + 2, scale, 5), |_| {});
    refused(&st, &d, &[], 7, &["batch record expects"]);
    // Another scale (the flood is sized from the record's scale; a smaller one would shrink it
    // relative to the message).
    let d = forged(&st, "scale", &key_oracle(&st.keys, level, scale / 1024.0, 6), |_| {});
    refused(&st, &d, &[], 7, &["batch record expects"]);
    // A tiny stated noise bound does not shrink the hospital's flood; a huge one that the
    // requested precision cannot cover is refused.
    let d = forged(&st, "bound", &honest_ct, |m| m["noise_bound"] = Value::from(1e30));
    refused(&st, &d, &[], 7, &["noise bound"]);
    assert_eq!(ledger(&st.keys)["refusals"].as_u64().unwrap(), 5);
    // A tiny (or zero) stated bound does not shrink the hospital's flood: the flood is the
    // hospital's own width for the record's scale and the disclosure's precision.
    let params = KeySet::open(&st.keys).unwrap().params;
    let fingerprint = KeySet::open(&st.keys).unwrap().meta.fingerprint_sha256;
    let record = BatchRecord::from_json_checked(&std::fs::read(&st.record).unwrap(), &params, &fingerprint).unwrap();
    let cts: Vec<CiphertextOwned> = (0..record.classes)
        .map(|c| wire::ciphertext_from_bytes(&params, &std::fs::read(st.scores.join(format!("class-{c}.ct"))).unwrap()).unwrap())
        .collect();
    let ctx = Context::new(params).unwrap();
    let request = ReleaseRequest {
        disclosure: Disclosure::Argmax,
        statistical_security: 30,
    };
    let stated: Value = serde_json::from_slice(&std::fs::read(st.scores.join("scores.json")).unwrap()).unwrap();
    let honest = hospital::prepare_release(&ctx, &record, stated["noise_bound"].as_f64().unwrap(), &cts, &request).unwrap();
    let own = leakage::hospital_flood_log2(&params, record.result_log_scale.exp2(), Disclosure::Argmax.precision_bits());
    for bound in [0.0, 1.0, 1e-300] {
        let p = hospital::prepare_release(&ctx, &record, bound, &cts, &request).unwrap();
        assert_eq!((p.flood_log2, honest.flood_log2), (own, own), "stated bound {bound}");
    }
    // s below 30 is refused from the request alone, before the results are read: no charge.
    let before = spent(&st.keys);
    refused(&st, &st.scores, &["--statistical-security", "20"], 7, &["below 30"]);
    assert_eq!(spent(&st.keys), before);
    // The honest results still release.
    let out = release(&st, &st.scores, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let _ = (level, scale);
}

#[test]
fn concurrent_releases_never_exceed_the_budget() {
    // A budget that pays for one argmax release of 12 patients over 3 classes (19.02 bits), not two.
    let st = setup("attack-concurrent", 30);
    let spawn = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_host-eval"))
            .args([
                "release",
                "--keys",
                s(&st.keys),
                "--scores",
                s(&st.scores),
                "--record",
                s(&st.record),
                "--json",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let wins = [&a, &b].iter().filter(|o| o.status.success()).count();
    assert_eq!(
        wins,
        1,
        "{} / {}",
        String::from_utf8_lossy(&a.stderr),
        String::from_utf8_lossy(&b.stderr)
    );
    assert!(spent(&st.keys) <= 30.0);
    assert_eq!(ledger(&st.keys)["releases"].as_u64().unwrap(), 1);
}

#[test]
fn budgets_are_capped_and_ledgers_fail_closed() {
    let d = TempDir::new("attack-ledger");
    let keys = d.join("keys");
    // Above what private-n15 can disclose and stay at 128 bits: refused, nothing written.
    fails(
        &[
            "keygen",
            "--preset",
            "private-n15",
            "--out",
            s(&keys),
            "--leakage-budget-bits",
            "100000",
        ],
        7,
        &["128-bit"],
    );
    assert!(!keys.join("secret.key").exists());
    // A missing ledger: nothing is released (the record is checked first, so use a real one).
    let st = setup("attack-ledger-missing", 100);
    std::fs::remove_file(st.keys.join("leakage.json")).unwrap();
    refused(&st, &st.scores, &[], 4, &["leakage ledger"]);
    // A ledger edited to claim a larger budget than the preset allows: refused.
    std::fs::write(
        st.keys.join("leakage.json"),
        format!(
            "{{\"format\":\"clifhe-leakage/1\",\"keyset_fingerprint\":\"{}\",\"preset\":\"private-n15\",\"budget_bits\":1e9,\"spent_bits\":0,\"releases\":0,\"refusals\":0}}",
            KeySet::open(&st.keys).unwrap().meta.fingerprint_sha256
        ),
    )
    .unwrap();
    refused(&st, &st.scores, &[], 4, &["leakage ledger"]);
    // Rotation: one command, a fresh key set and budget; the old one is kept aside.
    let old = KeySet::open(&st.keys).unwrap().meta.fingerprint_sha256;
    ok(&["keygen", "--preset", "private-n15", "--out", s(&st.keys), "--rotate"]);
    assert!(st.keys.join("retired").join(&old).join("secret.key").exists());
    assert_eq!(ledger(&st.keys)["spent_bits"].as_f64().unwrap(), 0.0);
    // The old batch's record names the old key set: refused with the new one.
    refused(&st, &st.scores, &[], 7, &["another key set"]);
}
