//! Every user-caused failure of the built `host-eval` binary: a typed message, a distinct
//! non-zero exit code, no panic, and no partial output file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{fails, ok, run, s, TempDir};

use std::path::PathBuf;

const FEATURES: &str = "[0.5, 0.1, -0.2, 0.3, 0.01, 0.02, -0.03, 0.004]";

/// A temp dir with a device-n12 key set in `keys/`, a features file and a ciphertext.
fn setup(tag: &str) -> (TempDir, PathBuf, PathBuf, PathBuf) {
    let dir = TempDir::new(tag);
    let keys = dir.join("keys");
    ok(&["keygen", "--preset", "device-n12", "--out", s(&keys)]);
    let f = dir.join("f.json");
    std::fs::write(&f, FEATURES).unwrap();
    let ct = dir.join("c.ct");
    ok(&["encrypt", "--keys", s(&keys), "--input", s(&f), "--out", s(&ct)]);
    (dir, keys, f, ct)
}

#[test]
fn missing_files_exit_3() {
    let (dir, keys, f, _) = setup("missing");
    let out = dir.join("out.ct");
    let nowhere = dir.join("nowhere");
    fails(
        &["encrypt", "--keys", s(&nowhere), "--input", s(&f), "--out", s(&out)],
        3,
        &["keyset.json", "no such file"],
    );
    fails(
        &[
            "encrypt",
            "--keys",
            s(&keys),
            "--input",
            s(&dir.join("absent.json")),
            "--out",
            s(&out),
        ],
        3,
        &["absent.json"],
    );
    fails(
        &[
            "encrypt",
            "--keys",
            s(&keys),
            "--input",
            "/nonexistent/scan.nii.gz",
            "--out",
            s(&out),
        ],
        3,
        &["scan.nii.gz"],
    );
    fails(
        &[
            "encrypt",
            "--keys",
            s(&keys),
            "--input",
            "/nonexistent/d.npz#test:3",
            "--out",
            s(&out),
        ],
        3,
        &["d.npz"],
    );
    fails(
        &["decrypt", "--keys", s(&keys), "--input", s(&dir.join("absent.ct"))],
        3,
        &["absent.ct"],
    );
    // An output directory that does not exist.
    fails(
        &["encrypt", "--keys", s(&keys), "--input", s(&f), "--out", s(&nowhere.join("x.ct"))],
        3,
        &["x.ct"],
    );
    // Decrypting needs the secret key; a gateway copy without it says so.
    std::fs::remove_file(keys.join("secret.key")).unwrap();
    fails(
        &["decrypt", "--keys", s(&keys), "--input", s(&dir.join("c.ct"))],
        3,
        &["secret.key"],
    );
    assert_eq!(dir.names(), ["c.ct", "c.ct.record.json", "f.json", "keys"]);
}

#[test]
fn corrupt_and_truncated_files_exit_4() {
    let (dir, keys, f, ct) = setup("corrupt");
    let bytes = std::fs::read(&ct).unwrap();
    let bad = dir.join("bad.ct");
    std::fs::write(&bad, &bytes[..bytes.len() / 2]).unwrap();
    fails(
        &["decrypt", "--keys", s(&keys), "--input", s(&bad)],
        4,
        &["not a valid ciphertext", "truncated"],
    );
    std::fs::write(&bad, &bytes[..10]).unwrap();
    fails(&["decrypt", "--keys", s(&keys), "--input", s(&bad)], 4, &["truncated"]);
    std::fs::write(&bad, b"hello, this is not a ciphertext at all, just text").unwrap();
    fails(&["decrypt", "--keys", s(&keys), "--input", s(&bad)], 4, &["bad magic"]);
    let mut extra = bytes.clone();
    extra.push(0);
    std::fs::write(&bad, &extra).unwrap();
    fails(&["decrypt", "--keys", s(&keys), "--input", s(&bad)], 4, &["after the object"]);
    // A key file given as the ciphertext.
    fails(
        &["decrypt", "--keys", s(&keys), "--input", s(&keys.join("public.key"))],
        4,
        &["public key"],
    );

    // Damaged key files.
    let good_secret = std::fs::read(keys.join("secret.key")).unwrap();
    std::fs::write(keys.join("secret.key"), &good_secret[..40]).unwrap();
    fails(
        &["decrypt", "--keys", s(&keys), "--input", s(&ct)],
        4,
        &["secret.key", "not a valid secret key"],
    );
    std::fs::write(keys.join("secret.key"), &good_secret).unwrap();

    let good_public = std::fs::read(keys.join("public.key")).unwrap();
    let out = dir.join("out.ct");
    std::fs::write(keys.join("public.key"), &good_public[..good_public.len() - 1]).unwrap();
    fails(
        &["encrypt", "--keys", s(&keys), "--input", s(&f), "--out", s(&out)],
        4,
        &["public.key", "not a valid public key"],
    );
    let mut flipped = good_public.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x01;
    std::fs::write(keys.join("public.key"), &flipped).unwrap();
    fails(
        &["encrypt", "--keys", s(&keys), "--input", s(&f), "--out", s(&out)],
        4,
        &["fingerprint"],
    );
    std::fs::write(keys.join("public.key"), &good_public).unwrap();

    let meta = std::fs::read_to_string(keys.join("keyset.json")).unwrap();
    std::fs::write(keys.join("keyset.json"), &meta[..meta.len() / 2]).unwrap();
    fails(
        &["encrypt", "--keys", s(&keys), "--input", s(&f), "--out", s(&out)],
        4,
        &["keyset.json"],
    );
    std::fs::write(keys.join("keyset.json"), meta.replace("\"preset_id\": 4", "\"preset_id\": 1")).unwrap();
    fails(
        &["encrypt", "--keys", s(&keys), "--input", s(&f), "--out", s(&out)],
        4,
        &["inconsistent"],
    );
    std::fs::write(keys.join("keyset.json"), &meta).unwrap();
    // Everything restored: the key set works again, and no failed run left an output.
    assert!(!out.exists());
    ok(&["decrypt", "--keys", s(&keys), "--input", s(&ct)]);
    assert_eq!(dir.names(), ["bad.ct", "c.ct", "c.ct.record.json", "f.json", "keys"]);
}

#[test]
fn wrong_keys_exit_5_and_name_both_presets() {
    let (dir, keys, f, ct) = setup("wrong");
    // Another preset.
    let big = dir.join("big");
    ok(&["keygen", "--preset", "leveled-n14", "--out", s(&big)]);
    fails(
        &["decrypt", "--keys", s(&big), "--input", s(&ct)],
        5,
        &["device-n12", "leveled-n14", "wrong keys"],
    );
    // A seeded ciphertext too.
    let seeded = dir.join("s.ct");
    ok(&[
        "encrypt",
        "--keys",
        s(&keys),
        "--input",
        s(&f),
        "--out",
        s(&seeded),
        "--mode",
        "seeded",
    ]);
    fails(
        &["decrypt", "--keys", s(&big), "--input", s(&seeded)],
        5,
        &["device-n12", "leveled-n14"],
    );
    // The same preset, another secret key: detected from the decryption noise, not printed.
    let other = dir.join("other");
    ok(&["keygen", "--preset", "device-n12", "--out", s(&other)]);
    // Its record names the other key set, so `decrypt` refuses before touching the secret key ...
    fails(
        &["decrypt", "--keys", s(&other), "--input", s(&ct)],
        7,
        &["not one of this key set's own ciphertexts"],
    );
    // ... and a device ciphertext (no record) under the wrong key is caught by its noise.
    let err = fails(
        &["decrypt", "--keys", s(&other), "--input", s(&ct), "--from-device"],
        5,
        &["does not decrypt under this key set"],
    );
    assert!(!err.contains("0.5"), "{err}");
    fails(
        &["decrypt", "--keys", s(&other), "--input", s(&seeded), "--from-device"],
        5,
        &["does not decrypt"],
    );
    // A public key from another key set dropped into this one.
    std::fs::copy(other.join("public.key"), keys.join("public.key")).unwrap();
    let out = dir.join("out.ct");
    fails(
        &["encrypt", "--keys", s(&keys), "--input", s(&f), "--out", s(&out)],
        4,
        &["fingerprint"],
    );
    assert!(!out.exists());
}

#[test]
fn out_of_range_arguments_exit_6() {
    let (dir, keys, f, ct) = setup("range");
    let out = dir.join("out.ct");
    let o = s(&out);
    // device-n12: N = 4096, 2048 slots, 256 patient slots, levels 0..=1.
    fails(
        &["encrypt", "--keys", s(&keys), "--input", s(&f), "--out", o, "--slot", "256"],
        6,
        &["bad patient slot 256", "0..=255"],
    );
    fails(
        &["encrypt", "--keys", s(&keys), "--input", s(&f), s(&f), "--out", o, "--slot", "255"],
        6,
        &["too many patients", "256"],
    );
    let rows: String = (0..257).map(|_| "1,2,3,4,5,6,7,8\n").collect();
    let many = dir.join("many.csv");
    std::fs::write(&many, rows).unwrap();
    fails(
        &["encrypt", "--keys", s(&keys), "--input", s(&many), "--out", o],
        6,
        &["too many patients: 257"],
    );
    fails(
        &["encrypt", "--keys", s(&keys), "--input", s(&f), "--out", o, "--level", "2"],
        6,
        &["bad level 2", "0..=1"],
    );
    // Values that would wrap modulo q0 at level 0.
    let huge = dir.join("huge.json");
    std::fs::write(&huge, "[1e9, 0, 0, 0, 0, 0, 0, 0]").unwrap();
    fails(
        &["encrypt", "--keys", s(&keys), "--input", s(&huge), "--out", o, "--level", "0"],
        6,
        &["too large"],
    );
    fails(
        &["keygen", "--preset", "no-such-preset", "--out", s(&dir.join("k2"))],
        6,
        &["unknown preset", "leveled-n14"],
    );
    fails(
        &["decrypt", "--keys", s(&keys), "--input", s(&ct), "--patients", "256"],
        6,
        &["bad patient slot 256"],
    );
    assert!(!out.exists());
    assert!(!dir.join("k2").exists());
    assert_eq!(dir.names(), ["c.ct", "c.ct.record.json", "f.json", "huge.json", "keys", "many.csv"]);
}

#[test]
fn unusable_inputs_exit_7() {
    let (dir, keys, _, _) = setup("inputs");
    let out = dir.join("out.ct");
    let bad = dir.join("bad.json");
    for (content, needle) in [
        ("[1, 2, 3]", "expected 8 feature values, found 3"),
        ("[1, 2, 3, 4, 5, 6, 7, \"x\"]", "not a number"),
        ("{not json", "invalid JSON"),
        ("{\"scalar\": 1}", "missing component 'e1'"),
    ] {
        std::fs::write(&bad, content).unwrap();
        fails(
            &["encrypt", "--keys", s(&keys), "--input", s(&bad), "--out", s(&out)],
            7,
            &[needle, "bad.json"],
        );
    }
    let csv = dir.join("bad.csv");
    std::fs::write(&csv, "1,2,3,4,5,6,7,inf\n").unwrap();
    fails(
        &["encrypt", "--keys", s(&keys), "--input", s(&csv), "--out", s(&out)],
        7,
        &["not a finite number"],
    );
    std::fs::write(&csv, "").unwrap();
    fails(
        &["encrypt", "--keys", s(&keys), "--input", s(&csv), "--out", s(&out)],
        7,
        &["no feature rows"],
    );
    fails(
        &["encrypt", "--keys", s(&keys), "--input", "x.npz#test:5..2", "--out", s(&out)],
        7,
        &["empty sample range"],
    );
    // A file that is no scan at all.
    let junk = dir.join("junk.nii");
    std::fs::write(&junk, b"definitely not a NIfTI volume").unwrap();
    fails(
        &["encrypt", "--keys", s(&keys), "--input", s(&junk), "--out", s(&out)],
        7,
        &["junk.nii"],
    );
    assert!(!out.exists());
    // A failed run leaves an existing output untouched.
    std::fs::write(&out, b"previous ciphertext").unwrap();
    fails(
        &["encrypt", "--keys", s(&keys), "--input", s(&bad), "--out", s(&out)],
        7,
        &["bad.json"],
    );
    assert_eq!(std::fs::read(&out).unwrap(), b"previous ciphertext");
    assert_eq!(
        dir.names(),
        [
            "bad.csv",
            "bad.json",
            "c.ct",
            "c.ct.record.json",
            "f.json",
            "junk.nii",
            "keys",
            "out.ct"
        ]
    );
}

#[test]
fn keygen_never_overwrites_a_secret_key_without_force() {
    let (dir, keys, _, ct) = setup("overwrite");
    let before: Vec<Vec<u8>> = ["secret.key", "public.key", "keyset.json"]
        .iter()
        .map(|n| std::fs::read(keys.join(n)).unwrap())
        .collect();
    fails(
        &["keygen", "--preset", "device-n12", "--out", s(&keys)],
        8,
        &["refusing to overwrite", "--force"],
    );
    fails(&["keygen", "--preset", "leveled-n14", "--out", s(&keys)], 8, &["secret.key"]);
    let after: Vec<Vec<u8>> = ["secret.key", "public.key", "keyset.json"]
        .iter()
        .map(|n| std::fs::read(keys.join(n)).unwrap())
        .collect();
    assert_eq!(before, after);
    let mut names: Vec<String> = std::fs::read_dir(&keys)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["keyset.json", "leakage.json", "public.bundle", "public.key", "secret.key"]);
    ok(&["decrypt", "--keys", s(&keys), "--input", s(&ct)]);
    drop(dir);
}

#[test]
fn usage_errors_exit_2() {
    let out = run(&["encrypt", "--keys", "k"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["decrypt", "--keys", "k", "--input", "c", "--json", "--csv"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["decrypt", "--keys", "k", "--input", "c", "--patients", "x"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_shared_or_swapped_secret_key_is_refused_before_use() {
    let (dir, keys, _f, ct) = setup("secret");
    let secret = keys.join("secret.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777, 0o600);
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
        fails(
            &["decrypt", "--keys", s(&keys), "--input", s(&ct)],
            4,
            &["secret.key is open to other users", "0644", "chmod 600"],
        );
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    ok(&["decrypt", "--keys", s(&keys), "--input", s(&ct)]);
    // Another key set's secret key in this directory (same preset, mode 0600 kept by copy).
    let other = dir.join("other");
    ok(&["keygen", "--preset", "device-n12", "--out", s(&other)]);
    std::fs::copy(other.join("secret.key"), &secret).unwrap();
    fails(
        &["decrypt", "--keys", s(&keys), "--input", s(&ct)],
        4,
        &["secret.key does not belong to public.key"],
    );
}

/// A key set made from the published test seed (`keygen --insecure-test-seed`, only in builds
/// with `insecure-test-params`) is marked in keyset.json; this build refuses it everywhere.
#[test]
fn an_insecure_test_key_set_is_refused_by_the_shipped_build() {
    let (dir, keys, f, ct) = setup("insecure");
    let meta = std::fs::read_to_string(keys.join("keyset.json")).unwrap();
    assert!(meta.contains("\"insecure\": false"), "{meta}");
    let marked = meta.replace("\"insecure\": false", "\"insecure\": true");
    std::fs::write(keys.join("keyset.json"), marked).unwrap();
    let out = dir.join("out.ct");
    for args in [
        vec!["encrypt", "--keys", s(&keys), "--input", s(&f), "--out", s(&out)],
        vec!["decrypt", "--keys", s(&keys), "--input", s(&ct)],
        vec!["evalkeys", "--keys", s(&keys), "--relin-only"],
    ] {
        fails(&args, 4, &["INSECURE"]);
    }
    // The vendor's side refuses it too (public material read from the key directory).
    fails(
        &["profile", "--model", "m.json", "--keys", s(&keys), "--out", s(&out)],
        4,
        &["INSECURE"],
    );
    assert!(!out.exists());
}
