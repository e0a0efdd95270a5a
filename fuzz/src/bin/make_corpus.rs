//! Writes the seed corpora under `fuzz/corpus/<target>/` (small, valid files of each format,
//! built like the host-eval tests build theirs; deterministic). Run from `fuzz/`:
//! `cargo run --features make-corpus --bin make_corpus`. Existing seeds with the same names are
//! overwritten; other files in the corpus folders are left alone.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use clifhe_core::context::Context;
use clifhe_core::encrypt::{encrypt_pk, encrypt_sk_seeded, Plaintext};
use clifhe_core::{wire, Params, PublicKey, SecretKey};
use clifhe_std::bootstrap::encapsulation::EncapsulationKeys;
use clifhe_std::gnn::{GnnModel, InputBox, Normalisation};
use clifhe_std::{EvalContext, GaloisKeys, RelinearizationKey};
use clifhe_std::protocol::batch::{self as batchfile, BatchHeader};
use clifhe_std::protocol::profile::{ChannelInput, InputProfile, ProfileInput, PROFILE_FORMAT};
use clifhe_std::protocol::BatchLayout;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use std::io::Write;
use std::path::{Path, PathBuf};

fn out(target: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(target);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn put(target: &str, name: &str, bytes: &[u8]) {
    std::fs::write(out(target).join(name), bytes).unwrap();
}

fn main() {
    wire_and_keys();
    models_and_profiles();
    batch();
    bundle();
    features();
    raw();
    nifti();
    npz();
    dicom();
    check();
    println!(
        "seeds written under {}",
        Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").display()
    );
}

fn box8() -> InputBox {
    InputBox {
        center: [0.5, 0.0, -0.25, 1.0, 0.0, 0.0, 0.125, 0.0],
        half_width: [0.25, 1.0, 0.5, 2.0, 0.5, 0.5, 0.25, 1.0],
    }
}

fn wire_and_keys() {
    let params = Params::from_name("INSECURE-test-n10").unwrap();
    let ctx = Context::new(params).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(12);
    let sk = SecretKey::generate(&params, &mut rng).unwrap();
    let pk = PublicKey::generate(&params, ctx.q_tables(), &sk, &mut rng).unwrap();
    let v: Vec<f64> = (0..8).map(|i| i as f64 * 0.125).collect();
    let pt = Plaintext::encode_real(&params, &v, 2f64.powi(30)).unwrap();
    let ct = encrypt_pk(&params, ctx.q_tables(), &pk, &pt, 0, &mut rng).unwrap();
    put("wire", "ct-n10-level0", &wire::ciphertext_to_bytes(&params, &ct).unwrap());
    let sct = encrypt_sk_seeded(&params, ctx.q_tables(), &sk, &pt, 1, &mut rng).unwrap();
    put(
        "wire",
        "seeded-ct-n10-level1",
        &wire::seeded_ciphertext_to_bytes(&params, &sct).unwrap(),
    );
    put("wire", "pk-n10", &wire::public_key_to_bytes(&params, &pk).unwrap());
    put("wire", "sk-seed-n10", &wire::export_secret_key(&params, &sk).unwrap());
    for name in ["leveled-n14", "device-n12"] {
        let p = Params::from_name(name).unwrap();
        let k = SecretKey::generate(&p, &mut rng).unwrap();
        put("wire", &format!("sk-seed-{name}"), &wire::export_secret_key(&p, &k).unwrap());
    }

    let ectx = EvalContext::new(params).unwrap();
    let rlk = RelinearizationKey::generate(&ectx, &sk, &mut rng).unwrap();
    put("eval_keys", "relin-n10", &rlk.to_bytes(&ectx).unwrap());
    let gk = GaloisKeys::for_rotations(&ectx, &sk, &[1], false, &mut rng).unwrap();
    let g = gk.elements().next().unwrap();
    put("eval_keys", "galois-n10", &gk.key_to_bytes(&ectx, g).unwrap());
    let ek = EncapsulationKeys::generate(&ectx, &sk, 32, &mut rng).unwrap();
    put("eval_keys", "encapsulation-n10", &ek.to_bytes(&ectx).unwrap());
    // A device switching key has the relinearization key's layout under its own kind byte.
    let mut swk = rlk.to_bytes(&ectx).unwrap();
    swk[8] = clifhe_core::wire::Kind::SwitchingKey as u8;
    put("eval_keys", "device-switch-n10", &swk);
    let p15 = Params::from_name("private-n15").unwrap();
    let q32 = |x: f64| clifhe_core::encode::fixed::to_fixed(x);
    let input_box = clifhe_core::device_input::FixedInputBox::new([0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.6].map(q32), [0.01; 8].map(q32)).unwrap();
    let image = clifhe_core::device_input::DeviceInput::new(&p15, 8, 102, input_box).unwrap().to_image();
    put("wire", "device-input-n15", &image);
}

fn models_and_profiles() {
    let labels = |k: usize| (0..k).map(|i| format!("class {i}")).collect::<Vec<_>>();
    let m = GnnModel::new_random(&[2], 2, labels(2), Normalisation::identity(), 0.5, 1.0, 1).unwrap();
    let json = m.to_json().unwrap();
    put("model_json", "model-2-2", json.as_bytes());
    // Format 1 (no input box): the oldest version the reader accepts.
    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["format_version"] = 1.into();
    put("model_json", "model-2-2-format1", serde_json::to_string(&v).unwrap().as_bytes());
    let mut m = GnnModel::new_random(&[3, 2], 3, labels(3), Normalisation::identity(), 0.25, 0.5, 2).unwrap();
    m.set_input_box(box8()).unwrap();
    put("model_json", "model-3-2-3-box", m.to_json().unwrap().as_bytes());
    put("model_json", "equivariant-2-4-2-domain", equivariant_model().as_bytes());

    for (name, level, log_scale) in [("INSECURE-test-n10", 1, 30.0), ("leveled-n14", 3, 40.0)] {
        let params = Params::from_name(name).unwrap();
        let p = profile(&params, level, log_scale);
        put("profile_json", &format!("profile-{name}"), &serde_json::to_vec_pretty(&p).unwrap());
    }
    let params = Params::from_name("INSECURE-test-n10").unwrap();
    put(
        "profile_json",
        "profile-INSECURE-test-n10-channels",
        &serde_json::to_vec_pretty(&channel_profile(&params)).unwrap(),
    );
}

/// An equivariant model's profile: 2 shell channels, 3 present blades.
fn channel_profile(params: &Params) -> InputProfile {
    use clifhe_std::gnn::equivariant_model::ChannelSpec;
    use clifhe_std::gnn::equivariant_policy::InputBounds;
    let input = ProfileInput::Channels(ChannelInput {
        spec: ChannelSpec {
            shells: 2,
            principal_axes: false,
            depth: false,
            shell_weighting: clifhe_core::multivector::channels::ShellWeighting::Hard,
        },
        domain: InputBounds {
            present: vec![
                [true, true, false, false, false, false, false, false],
                [true, false, false, false, false, false, false, false],
            ],
            grade_norm: vec![[1.5, 0.5, 0.0, 0.0], [2.0, 0.0, 0.0, 0.0]],
        },
    });
    InputProfile {
        format: PROFILE_FORMAT.into(),
        preset: params.name().into(),
        circuit_private: true,
        layout: BatchLayout::BladeMajor,
        input_level: 1,
        input_log_scale: 30.0,
        result_level: 0,
        result_log_scale: 30.0,
        fingerprint: String::new(),
        input,
        preprocessing: None,
        capacity: params.max_slots(),
        rotations: Vec::new(),
        classes: 2,
        labels: vec!["a".into(), "b".into()],
    }
    .with_fingerprint()
}

/// An equivariant model file (`kind: "equivariant"`): 2 channels (2 intensity shells, no axes),
/// one layer of 4, 2 classes, trained a few epochs on fixed samples, with its recorded input
/// domain.
fn equivariant_model() -> String {
    use clifhe_core::Multivector;
    use clifhe_std::gnn::equivariant_model::{ChannelSpec, EquivariantModel};
    use clifhe_std::gnn::equivariant_policy::{InputBounds, DOMAIN_MARGIN};
    use clifhe_std::gnn::equivariant_train::{train_equivariant, EquivariantConfig};
    let xs: Vec<Vec<Multivector>> = (0..12)
        .map(|i| {
            let t = f64::from(i) / 12.0;
            vec![
                Multivector::new([0.5 + t, t - 0.5, 0.25 * t, -0.1, 0.0, 0.0, 0.0, 0.05 * t]),
                Multivector::new([0.2, 0.3 * t, -0.2, 0.1 + t, 0.0, 0.0, 0.0, 0.0]),
            ]
        })
        .collect();
    let ys: Vec<usize> = (0..12).map(|i| usize::from(i >= 6)).collect();
    let cfg = EquivariantConfig {
        hidden: vec![4],
        epochs: 5,
        seed: 1,
        ..EquivariantConfig::default()
    };
    let (net, _) = train_equivariant(&xs, &ys, None, 2, &cfg).unwrap();
    let spec = ChannelSpec {
        shells: 2,
        principal_axes: false,
        depth: false,
        shell_weighting: clifhe_core::multivector::channels::ShellWeighting::Hard,
    };
    let m = EquivariantModel::new(vec!["a".into(), "b".into()], spec, None, net)
        .unwrap()
        .with_input_domain(InputBounds::covering(&xs, DOMAIN_MARGIN))
        .unwrap();
    m.to_json().unwrap()
}

fn profile(params: &Params, input_level: usize, input_log_scale: f64) -> InputProfile {
    InputProfile {
        format: PROFILE_FORMAT.into(),
        preset: params.name().into(),
        circuit_private: false,
        layout: BatchLayout::BladeMajor,
        input_level,
        input_log_scale,
        result_level: 0,
        result_log_scale: input_log_scale,
        fingerprint: String::new(),
        input: ProfileInput::InputBox(box8()),
        preprocessing: None,
        capacity: params.max_slots(),
        rotations: Vec::new(),
        classes: 2,
        labels: vec!["a".into(), "b".into()],
    }
    .with_fingerprint()
}

fn batch() {
    let params = Params::from_name("INSECURE-test-n10").unwrap();
    let ctx = Context::new(params).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(13);
    let sk = SecretKey::generate(&params, &mut rng).unwrap();
    let blades: Vec<Vec<u8>> = (0..8)
        .map(|k| {
            let v: Vec<f64> = (0..params.max_slots()).map(|s| ((s + k) % 5) as f64 * 0.1).collect();
            let pt = Plaintext::encode_real(&params, &v, 2f64.powi(30)).unwrap();
            let ct = encrypt_sk_seeded(&params, ctx.q_tables(), &sk, &pt, 0, &mut rng).unwrap();
            wire::seeded_ciphertext_to_bytes(&params, &ct).unwrap()
        })
        .collect();
    let header = BatchHeader::new(&profile(&params, 0, 30.0), 3);
    put("batchfile", "batch-n10-seeded", &batchfile::to_bytes(&header, &blades).unwrap());
    // A channel batch: one ciphertext per present blade of the channel profile.
    let header = BatchHeader::new(&channel_profile(&params), 3);
    put("batchfile", "batch-n10-channels", &batchfile::to_bytes(&header, &blades[..3]).unwrap());
}

/// A key set bundle as the service receives it: a toy key set made by the CLI's own keygen and
/// evalkeys (relinearization key only) in a temporary directory.
fn bundle() {
    use host_eval::cli::keyset::{keygen, KeyRandomness, KeygenOptions};
    let dir = std::env::temp_dir().join(format!("clifhe-fuzz-corpus-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    keygen("INSECURE-test-n10", &dir, KeygenOptions::default(), KeyRandomness::TestSeed(7)).unwrap();
    host_eval::cli::protocol::evalkeys(&dir, None, true, None).unwrap();
    let set = host_eval::cli::public::PublicKeySet::open(&dir.join("public.bundle")).unwrap();
    put("bundle", "keyset-n10-relin", &set.to_bundle().unwrap());
    std::fs::remove_dir_all(&dir).unwrap();
}

fn features() {
    let t = "features";
    put(t, "one.json", b"[1.0, 0.5, -0.25, 0, 0, 0, 0.125, 2e-3]");
    put(
        t,
        "patients.json",
        br#"{"patients": [[1, 2, 3, 4, 5, 6, 7, 8], {"scalar": 1, "e1": 0, "e2": 0, "e3": 0, "e12": 0.5, "e13": 0, "e23": 0, "e123": -1}]}"#,
    );
    put(
        t,
        "header.csv",
        b"patient,scalar,e1,e2,e3,e12,e13,e23,e123\n0,1,2,3,4,5,6,7,8\n1,0.5,0,0,0,0,0,0,-0.5\n",
    );
    put(t, "plain.tsv", b"# comment\n1\t2\t3\t4\t5\t6\t7\t8\n");
}

fn raw() {
    put("raw", "u8-2x2x2", b"2x2x2:u8\n\x00\x01\x02\x03\x04\x05\x06\x07");
    let mut f = b"2x1x1:f32:0.5x0.5x2\n".to_vec();
    f.extend(1.5f32.to_le_bytes());
    f.extend((-2.0f32).to_le_bytes());
    put("raw", "f32-spacing", &f);
    let mut i = b"1x2x1:i16\n".to_vec();
    i.extend((-5i16).to_le_bytes());
    i.extend(7u16.to_le_bytes());
    put("raw", "i16-1x2x1", &i);
}

/// Single-file NIfTI-1, values v[i] = i (as in host-eval's tests).
fn nifti_bytes(big: bool, datatype: i16, dims: &[i16], vox_offset: f32, units: u8) -> Vec<u8> {
    let mut h = vec![0u8; vox_offset.max(352.0) as usize];
    let b16 = |v: i16| if big { v.to_be_bytes() } else { v.to_le_bytes() };
    let b32 = |v: i32| if big { v.to_be_bytes() } else { v.to_le_bytes() };
    let bf = |v: f32| if big { v.to_be_bytes() } else { v.to_le_bytes() };
    h[0..4].copy_from_slice(&b32(348));
    h[40..42].copy_from_slice(&b16(dims.len() as i16));
    for (i, d) in dims.iter().enumerate() {
        h[42 + 2 * i..44 + 2 * i].copy_from_slice(&b16(*d));
    }
    h[70..72].copy_from_slice(&b16(datatype));
    for (i, s) in [0.5f32, 0.25, 2.0].iter().enumerate() {
        h[80 + 4 * i..84 + 4 * i].copy_from_slice(&bf(*s));
    }
    h[108..112].copy_from_slice(&bf(vox_offset));
    h[112..116].copy_from_slice(&bf(2.0));
    h[116..120].copy_from_slice(&bf(-1.0));
    h[123] = units;
    h[344..348].copy_from_slice(b"n+1\0");
    let n: usize = dims.iter().map(|&d| d as usize).product();
    for i in 0..n {
        let mut b: Vec<u8> = match datatype {
            2 => vec![i as u8],
            4 => (i as i16).to_le_bytes().to_vec(),
            16 => (i as f32).to_le_bytes().to_vec(),
            64 => (i as f64).to_le_bytes().to_vec(),
            _ => vec![0],
        };
        if big {
            b.reverse();
        }
        h.extend_from_slice(&b);
    }
    h
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn nifti() {
    let t = "nifti";
    put(t, "le-i16-2x2x2.nii", &nifti_bytes(false, 4, &[2, 2, 2], 352.0, 2));
    put(t, "be-f32-3x1x2.nii", &nifti_bytes(true, 16, &[3, 1, 2], 352.0, 2));
    put(t, "le-u8-4d-one-volume.nii", &nifti_bytes(false, 2, &[2, 1, 2, 1], 0.0, 3));
    put(t, "le-f64-extension.nii", &nifti_bytes(false, 64, &[1, 2, 1], 368.0, 1));
    put(t, "le-i16-2x2x2.nii.gz", &gz(&nifti_bytes(false, 4, &[2, 2, 2], 352.0, 2)));
}

fn npy(descr: &str, shape: &str, body: &[u8]) -> Vec<u8> {
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(body);
    out
}

/// A MedMNIST-like archive: n samples of shape (1, 2, 2) per split (as in host-eval's tests).
fn tiny_npz(n: usize, method: zip::CompressionMethod) -> Vec<u8> {
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(method);
    for (si, split) in ["train", "val", "test"].iter().enumerate() {
        let images: Vec<u8> = (0..n).flat_map(|s| (0..4).map(move |i| (10 * s + i) as u8)).collect();
        z.start_file(format!("{split}_images.npy"), opts).unwrap();
        z.write_all(&npy("|u1", &format!("({n}, 1, 2, 2)"), &images)).unwrap();
        z.start_file(format!("{split}_labels.npy"), opts).unwrap();
        if si == 1 {
            let labels: Vec<u8> = (0..n).flat_map(|s| ((s % 2) as i64).to_le_bytes()).collect();
            z.write_all(&npy("<i8", &format!("({n},)"), &labels)).unwrap();
        } else {
            let labels: Vec<u8> = (0..n).map(|s| (s % 2) as u8).collect();
            z.write_all(&npy("|u1", &format!("({n}, 1)"), &labels)).unwrap();
        }
    }
    z.finish().unwrap().into_inner()
}

fn npz() {
    let t = "npz";
    put(t, "medmnist-stored.npz", &tiny_npz(2, zip::CompressionMethod::Stored));
    put(t, "medmnist-deflated.npz", &tiny_npz(2, zip::CompressionMethod::Deflated));
    put(t, "bare-i2.npy", &npy("<i2", "(2, 2)", &[1, 0, 0xff, 0xff, 2, 0, 0, 0x80]));
    put(t, "bare-be-f4.npy", &npy(">f4", "(1,)", &1.5f32.to_be_bytes()));
}

const EXPLICIT: &str = "1.2.840.10008.1.2.1";
const IMPLICIT: &str = "1.2.840.10008.1.2";

/// Element encoder (as in host-eval's DICOM tests); `len` overrides the length field.
fn el(out: &mut Vec<u8>, explicit: bool, g: u16, e: u16, vr: &str, value: &[u8], len: Option<u32>) {
    out.extend_from_slice(&g.to_le_bytes());
    out.extend_from_slice(&e.to_le_bytes());
    let n = len.unwrap_or(value.len() as u32);
    if explicit && g != 0xFFFE {
        out.extend_from_slice(vr.as_bytes());
        if matches!(vr, "OB" | "OW" | "SQ" | "UN" | "UT" | "OF") {
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&n.to_le_bytes());
        } else {
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
    } else {
        out.extend_from_slice(&n.to_le_bytes());
    }
    out.extend_from_slice(value);
}

fn text(v: &str, pad: u8) -> Vec<u8> {
    let mut b = v.as_bytes().to_vec();
    if b.len() % 2 == 1 {
        b.push(pad);
    }
    b
}

/// A 2 x 3 slice (16-bit signed, 12 stored, rescaled) or a 2-frame 8-bit image.
fn dicom_bytes(explicit: bool, frames: Option<u32>, preamble: bool) -> Vec<u8> {
    let x = explicit;
    let mut out = Vec::new();
    if preamble {
        out.extend_from_slice(&[0u8; 128]);
        out.extend_from_slice(b"DICM");
        let mut meta = Vec::new();
        el(&mut meta, true, 0x0002, 0x0001, "OB", &[0, 1], None);
        el(&mut meta, true, 0x0002, 0x0002, "UI", &text("1.2.840.10008.5.1.4.1.1.2", 0), None);
        el(
            &mut meta,
            true,
            0x0002,
            0x0010,
            "UI",
            &text(if x { EXPLICIT } else { IMPLICIT }, 0),
            None,
        );
        el(&mut out, true, 0x0002, 0x0000, "UL", &(meta.len() as u32).to_le_bytes(), None);
        out.extend_from_slice(&meta);
    }
    let d = &mut out;
    el(d, x, 0x0008, 0x0016, "UI", &text("1.2.840.10008.5.1.4.1.1.2", 0), None);
    el(d, x, 0x0008, 0x0060, "CS", &text("CT", b' '), None);
    // An undefined-length sequence with a nested item, as real files have.
    el(d, x, 0x0008, 0x1140, "SQ", &[], Some(u32::MAX));
    el(d, x, 0xFFFE, 0xE000, "", &[], Some(u32::MAX));
    el(d, x, 0x0008, 0x1150, "UI", &text("1.2.3", 0), None);
    el(d, x, 0xFFFE, 0xE00D, "", &[], Some(0));
    el(d, x, 0xFFFE, 0xE0DD, "", &[], Some(0));
    el(d, x, 0x0018, 0x0050, "DS", &text("2.5", b' '), None);
    el(d, x, 0x0020, 0x000E, "UI", &text("1.2.3.4.5", 0), None);
    el(d, x, 0x0020, 0x0013, "IS", &text("1", b' '), None);
    el(d, x, 0x0020, 0x0032, "DS", &text("-10\\-20\\30", b' '), None);
    el(d, x, 0x0020, 0x0037, "DS", &text("1\\0\\0\\0\\1\\0", b' '), None);
    el(d, x, 0x0028, 0x0002, "US", &1u16.to_le_bytes(), None);
    el(d, x, 0x0028, 0x0004, "CS", &text("MONOCHROME2", b' '), None);
    let (bits, pixels): (u16, Vec<u8>) = match frames {
        Some(f) => {
            el(d, x, 0x0028, 0x0008, "IS", &text(&f.to_string(), b' '), None);
            (8, (0..6 * f as u8).collect())
        }
        None => (
            16,
            [0u16, 1, 0xFFFF, 2047, 0xF800, 0xF005]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
        ),
    };
    el(d, x, 0x0028, 0x0010, "US", &2u16.to_le_bytes(), None);
    el(d, x, 0x0028, 0x0011, "US", &3u16.to_le_bytes(), None);
    el(d, x, 0x0028, 0x0030, "DS", &text("0.7\\0.5", b' '), None);
    el(d, x, 0x0028, 0x0100, "US", &bits.to_le_bytes(), None);
    el(d, x, 0x0028, 0x0101, "US", &(if bits == 8 { 8u16 } else { 12 }).to_le_bytes(), None);
    el(d, x, 0x0028, 0x0103, "US", &u16::from(bits != 8).to_le_bytes(), None);
    el(d, x, 0x0028, 0x1052, "DS", &text("-1024", b' '), None);
    el(d, x, 0x0028, 0x1053, "DS", &text("2", b' '), None);
    el(d, x, 0x7FE0, 0x0010, if bits == 8 { "OB" } else { "OW" }, &pixels, None);
    out
}

fn dicom() {
    let t = "dicom";
    put(t, "explicit-slice.dcm", &dicom_bytes(true, None, true));
    put(t, "implicit-slice.dcm", &dicom_bytes(false, None, true));
    put(t, "explicit-2-frames-u8.dcm", &dicom_bytes(true, Some(2), true));
    put(t, "bare-implicit-dataset.dcm", &dicom_bytes(false, None, false));
}

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(out(target))
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap())
        })
        .collect();
    v.sort();
    v
}

/// Every seed must be accepted by its reader: a seed the reader refuses would start the fuzzer
/// in the error paths only.
fn check() {
    use host_eval::data::{dicom, nifti, npz, raw};
    let n10 = Params::from_name("INSECURE-test-n10").unwrap();
    let ectx = EvalContext::new(n10).unwrap();
    for (name, b) in seeds("wire") {
        let ok = clifhe_fuzz::all_params().iter().any(|p| {
            wire::ciphertext_from_bytes(p, &b).is_ok()
                || wire::seeded_ciphertext_from_bytes(p, &b).is_ok()
                || wire::public_key_from_bytes(p, &b).is_ok()
                || wire::import_secret_key(p, &b).is_ok()
                || clifhe_core::device_input::DeviceInput::from_image(p, &b).is_ok()
        });
        assert!(ok, "wire seed {name} does not decode");
    }
    for (name, b) in seeds("eval_keys") {
        let ok = RelinearizationKey::from_bytes(&ectx, &b).is_ok()
            || GaloisKeys::default().insert_from_bytes(&ectx, &b).is_ok()
            || EncapsulationKeys::from_bytes(&ectx, &b).is_ok()
            || clifhe_std::keys_wire::DeviceSwitchKey::from_bytes(&ectx, &b).is_ok();
        assert!(ok, "key seed {name} does not decode");
    }
    for (name, b) in seeds("model_json") {
        let text = std::str::from_utf8(&b).unwrap();
        let ok = GnnModel::from_json(text).is_ok() || clifhe_std::gnn::equivariant_model::EquivariantModel::from_json(text).is_ok();
        assert!(ok, "model seed {name} parses as neither kind");
    }
    for (name, b) in seeds("batchfile") {
        batchfile::parse(&n10, &b).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for (name, b) in seeds("profile_json") {
        let preset = name.trim_start_matches("profile-").trim_end_matches("-channels");
        InputProfile::from_json_checked(&b, &Params::from_name(preset).unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for (name, b) in seeds("bundle") {
        host_eval::cli::public::PublicKeySet::from_bundle(Path::new(&name), &b).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for (name, b) in seeds("features") {
        let t = std::str::from_utf8(&b).unwrap();
        let r = if name.ends_with(".json") {
            host_eval::cli::inputs::parse_features_json(t, &name)
        } else {
            host_eval::cli::inputs::parse_features_csv(t, &name)
        };
        r.unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for (name, b) in seeds("raw") {
        let i = b.iter().position(|&c| c == b'\n').unwrap();
        let spec = raw::RawSpec::parse(std::str::from_utf8(&b[..i]).unwrap()).unwrap();
        raw::parse_raw(Path::new(&name), &b[i + 1..], &spec).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for (name, b) in seeds("nifti") {
        nifti::parse_nifti(Path::new(&name), &b).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for (name, b) in seeds("npz") {
        let p = Path::new(&name);
        if name.ends_with(".npy") {
            npz::parse_npy(p, &b).map(|_| ()).unwrap_or_else(|e| panic!("{name}: {e}"));
        } else {
            npz::parse_medmnist_npz(p, &b).map(|_| ()).unwrap_or_else(|e| panic!("{name}: {e}"));
            npz::parse_medmnist_sample(p, &b, "val", 1)
                .map(|_| ())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
    for (name, b) in seeds("dicom") {
        dicom::parse_dicom_volume(Path::new(&name), &b).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
