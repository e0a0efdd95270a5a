//! Enrolled devices at `private-n15`: the hospital enrols a device for the vendor's
//! circuit-private profile, the device's per-patient path (`clifhe_core::device_input`, the code
//! the firmware runs) encrypts under the device key, the vendor switches the ciphertexts to the
//! hospital's key and builds the profile's batch, evaluates and sanitises with the widened
//! bounds, and the hospital's flooded release agrees with the plaintext model on every patient.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use clifhe_core::ciphertext::CiphertextOwned;
use clifhe_core::decrypt::decrypt;
use clifhe_core::device_input::{EnrolledBuffers, EnrolledEncryptor, PrimeRoots, MESSAGE_COEFFS};
use clifhe_core::encode::fixed::{fixed_scratch_len, to_fixed};
use clifhe_core::wire::seeded_ciphertext_from_bytes;
use clifhe_core::{Multivector, Params, PublicKey, SecretKey};
use clifhe_std::gnn::{train, TrainConfig};
use clifhe_std::protocol::batch::BatchHeader;
use clifhe_std::protocol::device::{batch_from_devices, enroll_device, infer_devices, DeviceEnrollment, DEVICE_ROTATIONS};
use clifhe_std::protocol::hospital::{prepare_release, release_scores, ReleaseRequest};
use clifhe_std::protocol::leakage::Disclosure;
use clifhe_std::protocol::model::PreparedModel;
use clifhe_std::protocol::vendor::{InferOptions, VendorKeys};
use clifhe_std::protocol::{BatchLayout, BatchRecord, VendorModel};
use clifhe_std::{EvalContext, Evaluator, GaloisKeys, RelinearizationKey};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

mod common;
use common::quadratic_classes as dataset;

/// The device's side: one patient's features (fixed point) -> wire bytes of the enrolled
/// ciphertext, exactly as the firmware computes them.
fn device_encrypt(params: &Params, enrollment: &DeviceEnrollment, x: &Multivector, rng: &mut ChaCha20Rng) -> Vec<u8> {
    let n = params.n();
    let level = usize::from(enrollment.input.level);
    let roots: Vec<PrimeRoots> = (0..=level).map(|i| PrimeRoots::new(params, i).unwrap()).collect();
    let device_key = SecretKey::from_seed(params, &enrollment.seed).unwrap();
    let features: [i64; 8] = std::array::from_fn(|k| to_fixed(x.coeffs()[k]));
    let (mut e, mut limb) = (vec![0i8; n], vec![0u64; n]);
    let (mut message, mut scratch) = ([0i128; MESSAGE_COEFFS], vec![0i64; fixed_scratch_len(8)]);
    let mut out = Vec::new();
    let bufs = EnrolledBuffers {
        e: &mut e,
        limb: &mut limb,
        message: &mut message,
        scratch: &mut scratch,
    };
    let encryptor = EnrolledEncryptor::new(params, &enrollment.input, &roots, &device_key).unwrap();
    encryptor
        .encrypt::<_, ()>(&features, bufs, rng, &mut |b: &[u8]| {
            out.extend_from_slice(b);
            Ok(())
        })
        .unwrap();
    assert_eq!(out.len(), encryptor.ciphertext_bytes());
    out
}

#[test]
fn enrolled_device_batches_release_the_plaintext_models_classes() {
    let (tx, ty) = dataset(600, 1);
    let cfg = TrainConfig {
        epochs: 60,
        ..TrainConfig::default()
    };
    let (model, _) = train(&tx, &ty, None, 3, &cfg).unwrap();
    let prepared = PreparedModel::new(VendorModel::Gnn(model.clone()));

    let params = Params::from_name("private-n15").unwrap();
    let ectx = EvalContext::new(params).unwrap();
    let ev = Evaluator::new(&ectx);
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let sk = SecretKey::generate(&params, &mut rng).unwrap();
    let pk = PublicKey::generate(&params, ectx.q_tables(), &sk, &mut rng).unwrap();
    let rlk = RelinearizationKey::generate(&ectx, &sk, &mut rng).unwrap();
    let gks = GaloisKeys::for_rotations(&ectx, &sk, &DEVICE_ROTATIONS, false, &mut rng).unwrap();
    let profile = prepared.profile(&params, true, BatchLayout::BladeMajor).unwrap();

    // Hospital: enrol the device; the device encrypts 6 patients (the last one far outside the
    // box, so the clamp is exercised).
    let enrollment = enroll_device(&ectx, &sk, &profile, &mut rng).unwrap();
    assert_eq!(usize::from(enrollment.input.level), profile.input_level + 1);
    let (mut xs, _) = dataset(5, 9);
    xs.push(Multivector::new([5.0, -3.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]));
    let files: Vec<Vec<u8>> = xs.iter().map(|x| device_encrypt(&params, &enrollment, x, &mut rng)).collect();
    let cts: Vec<CiphertextOwned> = files
        .iter()
        .map(|b| seeded_ciphertext_from_bytes(&params, b).unwrap().expand(&params).unwrap())
        .collect();

    // The assembled batch decrypts (test-only, with the hospital key) to the box-encoded
    // features in slots 0..5 and to (almost) zero elsewhere.
    let input_box = profile.input_box().unwrap();
    let batch = batch_from_devices(&ev, &profile, &enrollment.switch_key, &gks, &cts).unwrap();
    assert_eq!(batch.blades.len(), 8);
    let mut worst: f64 = 0.0;
    let mut worst_other: f64 = 0.0;
    for (b, ct) in batch.blades.iter().enumerate() {
        assert_eq!(ct.meta.level, profile.input_level);
        assert_eq!(ct.meta.scale, clifhe_std::gnn::encrypted::PRIVATE_LOG_INPUT_SCALE_DEVICE.exp2());
        let slots = decrypt(ectx.core(), &sk, ct).unwrap().decode().unwrap();
        for (p, x) in xs.iter().enumerate() {
            let want = input_box.encode(x)[b].clamp(-1.0 + 2f64.powi(-24), 1.0 - 2f64.powi(-24));
            worst = worst.max((slots[p].re - want).abs());
        }
        for s in &slots[xs.len()..] {
            worst_other = worst_other.max(s.re.abs().max(s.im.abs()));
        }
    }
    println!("device batch: max |slot - u| = {worst:.3e}, max |unused slot| = {worst_other:.3e}");
    assert!(worst < 1e-8, "assembled slots off by {worst:e}");
    // The mask's encoding rounding leaves at most 2^-29 |u| in the other slots (the
    // sanitiser clears them before anything is released).
    assert!(worst_other < 1e-8, "unused slots hold {worst_other:e}");

    // Vendor: the whole circuit-private inference on the device ciphertexts.
    let keys = VendorKeys {
        pk: &pk,
        rlk: &rlk,
        gks: Some(&gks),
    };
    let opts = InferOptions {
        statistical_security: 30,
        no_flooding: false,
        patients: None,
    };
    let t = std::time::Instant::now();
    let scored = infer_devices(&ev, &keys, &prepared, &enrollment.switch_key, &cts, &opts, &mut rng).unwrap();
    println!("infer_devices, {} patients: {:.2?}", xs.len(), t.elapsed());
    assert!(scored.manifest.circuit_private);
    assert_eq!(scored.manifest.patients, xs.len());

    // Hospital: release from its own record of what the device sent.
    let header = BatchHeader::new(&profile, xs.len());
    let record = BatchRecord::new(&profile, &header, &files.concat(), "test-keyset");
    let request = ReleaseRequest {
        disclosure: Disclosure::Argmax,
        statistical_security: 30,
    };
    let release = prepare_release(ectx.core(), &record, scored.manifest.noise_bound, &scored.scores, &request).unwrap();
    let predictions = release_scores(ectx.core(), &sk, &record, &scored.scores, &release, &mut rng).unwrap();
    assert_eq!(predictions.len(), xs.len());
    for (p, x) in xs.iter().enumerate() {
        let scores = model.forward(&Multivector::new(input_box.clamp(&x.coeffs())));
        let want = (0..scores.len()).max_by(|&a, &b| scores[a].total_cmp(&scores[b])).unwrap();
        assert_eq!(
            predictions[p].class, want,
            "patient {p}: released {} vs plaintext {want}",
            predictions[p].class
        );
    }
}

#[test]
fn the_vendor_refuses_device_ciphertexts_it_cannot_place() {
    let (tx, ty) = dataset(200, 3);
    let cfg = TrainConfig {
        epochs: 10,
        ..TrainConfig::default()
    };
    let (model, _) = train(&tx, &ty, None, 3, &cfg).unwrap();
    let prepared = PreparedModel::new(VendorModel::Gnn(model));
    let params = Params::from_name("private-n15").unwrap();
    let ectx = EvalContext::new(params).unwrap();
    let ev = Evaluator::new(&ectx);
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let sk = SecretKey::generate(&params, &mut rng).unwrap();
    let profile = prepared.profile(&params, true, BatchLayout::BladeMajor).unwrap();
    let enrollment = enroll_device(&ectx, &sk, &profile, &mut rng).unwrap();
    let (xs, _) = dataset(1, 4);
    let bytes = device_encrypt(&params, &enrollment, &xs[0], &mut rng);
    let ct = seeded_ciphertext_from_bytes(&params, &bytes).unwrap().expand(&params).unwrap();

    // Without the rotation keys: refused by name, before any work.
    let none = GaloisKeys::for_rotations(&ectx, &sk, &[1], false, &mut rng).unwrap();
    let err = batch_from_devices(&ev, &profile, &enrollment.switch_key, &none, std::slice::from_ref(&ct))
        .err()
        .unwrap();
    assert!(err.to_string().contains("rotation key for step 2"), "{err}");

    // A ciphertext at another level (one prime dropped) or of another slot count: refused.
    let gks = GaloisKeys::for_rotations(&ectx, &sk, &DEVICE_ROTATIONS, false, &mut rng).unwrap();
    let lower = ev.rescale(&ct).unwrap();
    let err = batch_from_devices(&ev, &profile, &enrollment.switch_key, &gks, &[lower])
        .err()
        .unwrap();
    assert!(err.to_string().contains("level"), "{err}");
    let mut other_slots = ct.clone();
    other_slots.meta.log_slots = 4;
    let err = batch_from_devices(&ev, &profile, &enrollment.switch_key, &gks, &[other_slots])
        .err()
        .unwrap();
    assert!(err.to_string().contains("slots"), "{err}");

    // --no-flooding is never offered on device batches.
    let pk = PublicKey::generate(&params, ectx.q_tables(), &sk, &mut rng).unwrap();
    let rlk = RelinearizationKey::generate(&ectx, &sk, &mut rng).unwrap();
    let keys = VendorKeys {
        pk: &pk,
        rlk: &rlk,
        gks: Some(&gks),
    };
    let opts = InferOptions {
        statistical_security: 30,
        no_flooding: true,
        patients: None,
    };
    let err = infer_devices(&ev, &keys, &prepared, &enrollment.switch_key, &[ct], &opts, &mut rng)
        .err()
        .unwrap();
    assert!(err.to_string().contains("circuit-private"), "{err}");
}
