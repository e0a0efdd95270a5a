//! `host-eval device-bundle`: a device's flash images from a real key set, public material only.
//! (The firmware side, a QEMU image built with the bundle whose ciphertext the hospital
//! decrypts, runs in scripts/device-tests.sh.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{fails, ok, s, TempDir};
use serde_json::Value;
use sha2::{Digest, Sha256};

#[test]
fn bundle_holds_the_public_images_and_no_secret() {
    let d = TempDir::new("device-bundle");
    let keys = d.join("keys");
    ok(&["keygen", "--preset", "device-n12", "--out", s(&keys)]);
    let from_dir = d.join("b1");
    let report: Value = serde_json::from_str(&ok(&["device-bundle", "--keys", s(&keys), "--out", s(&from_dir), "--json"])).unwrap();
    let m = &report["manifest"];
    assert_eq!(m["format"], "clifhe-device-bundle/1");
    assert_eq!(m["preset"], "device-n12");
    assert_eq!(m["n"], 4096);
    let keyset: Value = serde_json::from_slice(&std::fs::read(keys.join("keyset.json")).unwrap()).unwrap();
    assert_eq!(m["keyset_fingerprint_sha256"], keyset["fingerprint_sha256"]);
    let mut flash = 0;
    for f in m["files"].as_array().unwrap() {
        let bytes = std::fs::read(from_dir.join(f["name"].as_str().unwrap())).unwrap();
        assert_eq!(f["bytes"].as_u64(), Some(bytes.len() as u64));
        let digest: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(f["sha256"], digest.as_str());
        flash += bytes.len();
    }
    // b (2 limbs), the seed, and per prime the full NTT table (forward and inverse, 4N words).
    assert_eq!(flash, 2 * 4096 * 8 + 32 + 2 * 4 * 4096 * 8);
    assert_eq!(report["flash_bytes"].as_u64(), Some(flash as u64));

    // The images are those of the key set's public key.
    let set = host_eval::cli::public::PublicKeySet::open(&keys).unwrap();
    let pk = set.public_key().unwrap();
    assert_eq!(
        std::fs::read(from_dir.join("pk_b.bin")).unwrap(),
        clifhe_core::flash_image::public_key_b_image(&pk)
    );
    assert_eq!(std::fs::read(from_dir.join("pk_a_seed.bin")).unwrap(), pk.a_seed().to_vec());
    assert_eq!(
        std::fs::read(from_dir.join("ntt_q1.bin")).unwrap(),
        clifhe_core::flash_image::ntt_image(&set.params, 1, clifhe_core::flash_image::NttImage::Full).unwrap()
    );

    // From the public bundle alone: the same bytes.
    let from_bundle = d.join("b2");
    ok(&["device-bundle", "--keys", s(&keys.join("public.bundle")), "--out", s(&from_bundle)]);
    for name in ["pk_b.bin", "pk_a_seed.bin", "ntt_q0.bin", "ntt_q1.bin", "device.json"] {
        assert_eq!(
            std::fs::read(from_dir.join(name)).unwrap(),
            std::fs::read(from_bundle.join(name)).unwrap(),
            "{name}"
        );
    }

    // No byte string of the secret key file (its 32-byte seed) occurs in any image.
    let secret = std::fs::read(keys.join("secret.key")).unwrap();
    let seed = &secret[secret.len() - 32..];
    for entry in std::fs::read_dir(&from_dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!bytes.windows(32).any(|w| w == seed));
    }

    // An existing, non-empty output directory is refused and left as it was.
    let before = std::fs::read(from_dir.join("device.json")).unwrap();
    fails(&["device-bundle", "--keys", s(&keys), "--out", s(&from_dir)], 7, &["not empty"]);
    assert_eq!(std::fs::read(from_dir.join("device.json")).unwrap(), before);
    // A secret-only directory is not a key set's public material.
    let lone = d.join("lone");
    std::fs::create_dir_all(&lone).unwrap();
    std::fs::copy(keys.join("secret.key"), lone.join("secret.key")).unwrap();
    let out = common::run(&["device-bundle", "--keys", s(&lone), "--out", s(&d.join("b3"))]);
    assert!(!out.status.success());
    assert!(!d.join("b3").exists());
}
