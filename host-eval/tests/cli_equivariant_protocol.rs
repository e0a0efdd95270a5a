//! The rotation-invariant model through the protocol commands, on AdrenalMNIST3D as shipped:
//! `train --arch equivariant --circuit-private` -> `profile` (channels, domain, level, scale;
//! no weights) -> `encrypt --profile` on scans (channels computed at the hospital, clamped into
//! the domain, one ciphertext per present blade) -> `infer` (ciphertext x ciphertext geometric
//! products, sanitised and flooded) -> `release`, whose argmax must equal `predict`'s on every
//! patient; and the refusals a mixed-up or tampered batch gets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{adrenal_dataset, fails, infer_args, ok, s, TempDir};
use serde_json::Value;
use std::path::Path;

#[test]
fn equivariant_model_through_profile_encrypt_infer_release() {
    let Some(data) = adrenal_dataset() else {
        println!("skipping: AdrenalMNIST3D not found");
        return;
    };
    let d = TempDir::new("eq-proto");
    let keys = d.join("keys");
    let k = s(&keys);
    ok(&["keygen", "--preset", "private-n15", "--out", k]);
    ok(&["evalkeys", "--keys", k, "--relin-only"]);
    let vendor = d.join("vendor");
    std::fs::create_dir_all(&vendor).unwrap();
    let bundle = vendor.join("public.bundle");
    std::fs::copy(keys.join("public.bundle"), &bundle).unwrap();
    let vk = s(&bundle);

    let model = d.join("eq.json");
    ok(&[
        "train",
        "--arch",
        "equivariant",
        "--circuit-private",
        "--dataset",
        s(&data),
        "--out",
        s(&model),
    ]);
    let profile = d.join("profile.json");
    ok(&["profile", "--model", s(&model), "--keys", vk, "--out", s(&profile)]);
    let p: Value = serde_json::from_slice(&std::fs::read(&profile).unwrap()).unwrap();
    assert_eq!(p["circuit_private"], true);
    assert!(p.get("input_box").is_none(), "{p}");
    let present = p["channels"]["domain"]["present"].as_array().unwrap();
    assert_eq!(present.len(), 8);
    let ciphertexts = present.iter().flat_map(|c| c.as_array().unwrap()).filter(|b| **b == true).count();
    assert_eq!(ciphertexts, 15);
    // Public: channels, domain, level and scale; never the network.
    let text = String::from_utf8(std::fs::read(&profile).unwrap()).unwrap();
    assert!(
        !text.contains("\"net\"") && !text.contains("weights") && !text.contains("readout"),
        "{text}"
    );

    let patients = 48;
    let spec = format!("{}#test:0..{patients}", data.display());
    let batch = d.join("batch.clhe");
    let out = ok(&[
        "encrypt",
        "--keys",
        k,
        "--profile",
        s(&profile),
        "--input",
        &spec,
        "--out",
        s(&batch),
        "--json",
    ]);
    let e: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(e["patients"], patients);
    assert_eq!(e["ciphertexts"], ciphertexts);
    let record = d.join("batch.clhe.record.json");
    assert!(record.exists());

    let scores = d.join("scores");
    let t = std::time::Instant::now();
    ok(&infer_args(&model, vk, &batch, &scores, &[]));
    eprintln!("infer of {patients} patients: {:.2} s", t.elapsed().as_secs_f64());
    let manifest: Value = serde_json::from_slice(&std::fs::read(scores.join("scores.json")).unwrap()).unwrap();
    eprintln!(
        "profile: inputs level {} at 2^{}, results level <= {} at 2^{}; manifest {manifest}",
        p["input_level"], p["input_log_scale"], p["result_level"], p["result_log_scale"]
    );
    for c in 0..2 {
        let b = std::fs::read(scores.join(format!("class-{c}.ct"))).unwrap();
        let params = clifhe_core::Params::from_name("private-n15").unwrap();
        let ct = clifhe_core::wire::ciphertext_from_bytes(&params, &b).unwrap();
        eprintln!("class {c}: level {} scale 2^{:.2}", ct.meta.level, ct.meta.scale.log2());
    }
    assert_eq!(manifest["circuit_private"], true);
    assert_eq!(manifest["patients"], patients);
    assert!(manifest["vendor_flood_log2"].as_u64().unwrap() >= 30);
    let out = ok(&["release", "--keys", k, "--scores", s(&scores), "--record", s(&record), "--json"]);
    let preds: Value = serde_json::from_str(&out).unwrap();
    let preds = preds.as_array().unwrap();
    assert_eq!(preds.len(), patients);
    // The plaintext model on the same scans (its channels clamped as the hospital clamps them:
    // AdrenalMNIST3D's test scans lie inside the recorded domain).
    let plain: Value = serde_json::from_str(&ok(&["predict", "--model", s(&model), "--input", &spec, "--json"])).unwrap();
    let plain = plain["patients"].as_array().unwrap();
    for (r, w) in preds.iter().zip(plain) {
        assert_eq!(r["class"], w["class"], "released {r} vs plaintext {w}");
        assert_eq!(r["out_of_box"], w["out_of_box"], "{r} vs {w}");
    }

    // Refusals, each before anything is written.
    let s2 = d.join("s2");
    let refuse = |batch: &Path, model: &Path, extra: &[&str], needle: &str| {
        fails(&infer_args(model, vk, batch, &s2, extra), 7, &[needle]);
        assert!(!s2.exists(), "{needle}: output written");
    };
    // Only flooded results leave.
    refuse(&batch, &model, &["--no-flooding"], "circuit-private");
    // A GNN model given the channel batch, and the equivariant model given a GNN batch.
    let gnn = d.join("gnn.json");
    ok(&["train", "--per-class", "30", "--out", s(&gnn)]);
    refuse(&batch, &gnn, &[], "another model's input profile");
    let gprofile = d.join("gprofile.json");
    ok(&["profile", "--model", s(&gnn), "--keys", vk, "--out", s(&gprofile)]);
    let gbatch = d.join("gbatch.clhe");
    let feats = d.join("f.json");
    std::fs::write(&feats, "[[1,0.1,0.2,0.3,0,0,0,0],[1,0,0,0,0,0,0,0]]").unwrap();
    ok(&[
        "encrypt",
        "--keys",
        k,
        "--profile",
        s(&gprofile),
        "--input",
        s(&feats),
        "--out",
        s(&gbatch),
    ]);
    refuse(&gbatch, &model, &[], "another model's input profile");
    // A tampered header: a blade mask that is not the profile's.
    let bytes = std::fs::read(&batch).unwrap();
    let h = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
    let header = String::from_utf8(bytes[12..12 + h].to_vec()).unwrap();
    let forged = header.replacen("true", "false", 1);
    assert_ne!(forged, header);
    let mut t = bytes[..8].to_vec();
    t.extend_from_slice(&(forged.len() as u32).to_le_bytes());
    t.extend_from_slice(forged.as_bytes());
    t.extend_from_slice(&bytes[12 + h..]);
    let tampered = d.join("tampered.clhe");
    std::fs::write(&tampered, &t).unwrap();
    fails(&infer_args(&model, vk, &tampered, &s2, &[]), 4, &["batch"]);
    assert!(!s2.exists());
    // The hospital side: a features file has no volume, and the channel batch is not shown as
    // 8 features by `decrypt`.
    fails(
        &[
            "encrypt",
            "--keys",
            k,
            "--profile",
            s(&profile),
            "--input",
            s(&feats),
            "--out",
            s(&d.join("x.clhe")),
        ],
        7,
        &["not features"],
    );
    assert!(!d.join("x.clhe").exists());
    fails(&["decrypt", "--keys", k, "--input", s(&batch)], 7, &["channel batch"]);

    // The block layout (a few patients at low latency): the profile lists the rotations, the
    // hospital registers their keys, and the released argmax is the same.
    let bprofile = d.join("bprofile.json");
    ok(&[
        "profile",
        "--model",
        s(&model),
        "--keys",
        vk,
        "--layout",
        "blocks",
        "--out",
        s(&bprofile),
    ]);
    let bp: Value = serde_json::from_slice(&std::fs::read(&bprofile).unwrap()).unwrap();
    assert_eq!((bp["layout"].as_str(), bp["capacity"].as_u64()), (Some("blocks"), Some(32)), "{bp}");
    assert_eq!(bp["rotations"].as_array().unwrap().len(), 9);
    let bspec = format!("{}#test:200..203", data.display());
    let bbatch = d.join("bbatch.clhe");
    ok(&[
        "encrypt",
        "--keys",
        k,
        "--profile",
        s(&bprofile),
        "--input",
        &bspec,
        "--out",
        s(&bbatch),
    ]);
    // Without the rotation keys the vendor says which to ask for.
    fails(&infer_args(&model, vk, &bbatch, &s2, &[]), 5, &["evalkeys --keys DIR --profile"]);
    assert!(!s2.exists());
    ok(&["evalkeys", "--keys", k, "--profile", s(&bprofile)]);
    std::fs::copy(keys.join("public.bundle"), &bundle).unwrap();
    let bscores = d.join("bscores");
    let t = std::time::Instant::now();
    ok(&infer_args(&model, vk, &bbatch, &bscores, &[]));
    eprintln!("infer of 3 patients in the block layout: {:.2} s", t.elapsed().as_secs_f64());
    let bm: Value = serde_json::from_slice(&std::fs::read(bscores.join("scores.json")).unwrap()).unwrap();
    assert_eq!(
        (bm["layout"].as_str(), bm["files"].as_array().unwrap().len()),
        (Some("blocks"), 1),
        "{bm}"
    );
    let brecord = d.join("bbatch.clhe.record.json");
    let out = ok(&["release", "--keys", k, "--scores", s(&bscores), "--record", s(&brecord), "--json"]);
    let bpreds: Value = serde_json::from_str(&out).unwrap();
    let bplain: Value = serde_json::from_str(&ok(&["predict", "--model", s(&model), "--input", &bspec, "--json"])).unwrap();
    let got: Vec<&Value> = bpreds.as_array().unwrap().iter().map(|p| &p["class"]).collect();
    let want: Vec<&Value> = bplain["patients"].as_array().unwrap().iter().map(|p| &p["class"]).collect();
    assert_eq!(got, want);
    // A vendor that answers the block record with other results gets a refusal: the
    // blade-major batch's scores (another patient count), or a block result whose ciphertext
    // claims another scale than the record pins (the genuine result with its header's scale
    // doubled; bytes 16..24 of the wire header). A substitute at the pinned level and scale
    // cannot be told apart; what it can reveal is still bounded by the release policy (the
    // argmax of flooded scores).
    let err = fails(
        &["release", "--keys", k, "--scores", s(&scores), "--record", s(&brecord)],
        4,
        &["patients"],
    );
    assert!(err.contains("another batch"), "{err}");
    let lying = d.join("lying");
    std::fs::create_dir_all(&lying).unwrap();
    std::fs::copy(bscores.join("scores.json"), lying.join("scores.json")).unwrap();
    let mut ct = std::fs::read(bscores.join("scores.ct")).unwrap();
    let scale = f64::from_le_bytes(ct[16..24].try_into().unwrap());
    ct[16..24].copy_from_slice(&(2.0 * scale).to_le_bytes());
    std::fs::write(lying.join("scores.ct"), ct).unwrap();
    fails(
        &["release", "--keys", k, "--scores", s(&lying), "--record", s(&brecord)],
        7,
        &["scale"],
    );
    // A block batch is not a blade-major one: the blade-major profile's fingerprint differs.
    let mut forged: Value = serde_json::from_slice(&std::fs::read(&bprofile).unwrap()).unwrap();
    forged["capacity"] = 64.into();
    let fp = d.join("forged-profile.json");
    std::fs::write(&fp, serde_json::to_vec(&forged).unwrap()).unwrap();
    fails(
        &[
            "encrypt",
            "--keys",
            k,
            "--profile",
            s(&fp),
            "--input",
            &bspec,
            "--out",
            s(&d.join("z.clhe")),
        ],
        4,
        &["profile"],
    );
    // An equivariant model reads only its profile's batches, not interleaved ciphertexts.
    let raw = d.join("raw.ct");
    ok(&["encrypt", "--keys", k, "--input", s(&feats), "--out", s(&raw)]);
    refuse(&raw, &model, &["--no-flooding"], "equivariant model");
}
