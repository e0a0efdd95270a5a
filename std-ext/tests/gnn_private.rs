//! The circuit-private pipeline at `private-n15`: box-encoded inputs at the schedule's scale,
//! the encrypted GNN, sanitisation with the proven noise bound (two mask passes, flood at
//! s = 30), flooded release. The released argmax must equal the plaintext model's on every
//! patient, and the measured evaluation noise must sit below the proven bound.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use clifhe_core::ciphertext::{Ciphertext, CiphertextMeta, CiphertextOwned};
use clifhe_core::decrypt::decrypt;
use clifhe_core::encode::{encode, encode_scratch_len, Complex};
use clifhe_core::encrypt::{encrypt_pk, Plaintext};
use clifhe_core::rns::{Representation, RnsPoly};
use clifhe_core::{Params, PublicKey, SecretKey};
use clifhe_std::gnn::blocks::{
    block_capacity, block_result_layout, block_rotation_steps, block_used_slots, evaluate_blocks, pack_blocks, pack_blocks_rotated,
    BlockConstants,
};
use clifhe_std::gnn::encrypted::{evaluate_scheduled, Schedule, PRIVATE_LOG_INPUT_SCALE_BLOCKS};
use clifhe_std::gnn::noise::Packing;
use clifhe_std::gnn::{train, GnnModel, Normalisation, TrainConfig};
use clifhe_std::privacy::{
    fresh_noise_bound, sanitize, Release, ReleasePolicy, Releaser, ResultLayout, SanitizeConfig, DEFAULT_STATISTICAL_SECURITY,
};
use clifhe_std::{EvalContext, Evaluator, GaloisKeys, RelinearizationKey};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

mod common;
use common::quadratic_classes as dataset;

#[test]
fn circuit_private_release_agrees_with_the_plaintext_model_on_every_patient() {
    let (tx, ty) = dataset(600, 1);
    let cfg = TrainConfig {
        epochs: 60,
        ..TrainConfig::default()
    };
    let (model, _) = train(&tx, &ty, None, 3, &cfg).unwrap();
    let (xs, _) = dataset(1000, 2);
    let want: Vec<Vec<f64>> = model.forward_batch(&xs);

    let params = Params::from_name("private-n15").unwrap();
    let ectx = EvalContext::new(params).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(21);
    let sk = SecretKey::generate(&params, &mut rng).unwrap();
    let pk = PublicKey::generate(&params, ectx.q_tables(), &sk, &mut rng).unwrap();
    let rlk = RelinearizationKey::generate(&ectx, &sk, &mut rng).unwrap();
    let ev = Evaluator::new(&ectx);

    let plan = model.encrypted_plan();
    let schedule = Schedule::circuit_private(&params, &plan, 2, 1).unwrap();
    let report = schedule.analyse(&params, &plan).unwrap();
    assert_eq!(schedule.input_level, 7);
    assert_eq!(schedule.output_level, 3);
    assert!(report.headroom_bits > 0.0);
    let out_scale = schedule.output_scale();

    // Hospital: box-encoded patients, empty slots u = 0.
    let ibox = model.input_box();
    let slots = params.max_slots();
    let blade = |k: usize| -> Vec<f64> {
        let mut v = vec![0.0; slots];
        for (p, x) in xs.iter().enumerate() {
            v[p] = ibox.encode(x)[k];
        }
        v
    };
    let cts: Vec<_> = (0..8)
        .map(|k| {
            let pt = Plaintext::encode_real(&params, &blade(k), schedule.input_scale).unwrap();
            encrypt_pk(&params, ectx.q_tables(), &pk, &pt, schedule.input_level, &mut rng).unwrap()
        })
        .collect();
    // The same inputs without encryption noise (c1 = 0): same constants, same quantisation.
    let trivial: Vec<_> = (0..8)
        .map(|k| {
            let pt = ev.encode_real(&blade(k), schedule.input_level, schedule.input_scale).unwrap();
            Ciphertext {
                c0: pt.poly,
                c1: RnsPoly::zero(params.n(), schedule.input_level + 1, Representation::Ntt),
                meta: CiphertextMeta::new(&params, schedule.input_level, schedule.input_scale, slots.trailing_zeros()),
            }
        })
        .collect();
    let scores = evaluate_scheduled(&ev, &rlk, &plan, &schedule, &cts).unwrap();
    let clean = evaluate_scheduled(&ev, &rlk, &plan, &schedule, &trivial).unwrap();
    assert_eq!(scores[0].meta.level, schedule.output_level);

    // Measured noise against the proven bound, exactly: the difference of the noisy and the
    // noise-free evaluation is a ciphertext of the noise alone (rounding of the noise-free run
    // included), small enough that its decryption is exact in f64; its coefficients are
    // recovered by re-encoding the decoded slots.
    let noise_coefficients = |a: &CiphertextOwned, b: &CiphertextOwned| -> f64 {
        let d = ev.sub(a, b).unwrap();
        let slots_v = decrypt(ectx.core(), &sk, &d).unwrap().decode().unwrap();
        let mut coeffs = vec![0f64; params.n()];
        let mut scratch = vec![Complex::default(); encode_scratch_len(slots_v.len())];
        encode(&slots_v, params.n(), d.meta.scale, &mut coeffs, &mut scratch).unwrap();
        coeffs.iter().fold(0.0f64, |m, c| m.max(c.abs()))
    };
    let fresh = (0..8).map(|k| noise_coefficients(&cts[k], &trivial[k])).fold(0.0f64, f64::max);
    let mut measured: f64 = 0.0;
    let mut max_err: f64 = 0.0;
    for c in 0..3 {
        measured = measured.max(noise_coefficients(&scores[c], &clean[c]));
        let a = decrypt(ectx.core(), &sk, &scores[c]).unwrap().decode_real().unwrap();
        for (p, w) in want.iter().enumerate() {
            max_err = max_err.max((a[p] - w[c]).abs());
        }
    }
    println!(
        "fresh noise max |coefficient| 2^{:.1} (bound 2^{:.1}); scores' noise max |coefficient| 2^{:.1}, proven bound 2^{:.1} at scale 2^{:.1}; max |score error| {max_err:.2e}",
        fresh.log2(),
        fresh_noise_bound(params.n()).log2(),
        measured.log2(),
        report.per_coefficient_bound.log2(),
        out_scale.log2()
    );
    assert!(fresh <= fresh_noise_bound(params.n()));
    assert!(measured <= report.per_coefficient_bound, "measured noise above the proven bound");
    assert!(max_err < 1e-8);

    // Vendor: sanitise with the proven bounds; hospital: flooded argmax.
    let mut cfg = SanitizeConfig::new(report.per_coefficient_bound);
    cfg.used_slots = Some((0..slots).map(|s| s < xs.len()).collect());
    cfg.value_bound = Some(report.slot_bound);
    cfg.mask_passes = 2;
    let sanitized: Vec<_> = scores.iter().map(|s| sanitize(&ectx, &pk, s, &cfg, &mut rng).unwrap()).collect();
    assert_eq!(sanitized[0].ciphertext.meta.level, 1);
    assert!(sanitized[0].mask_error < 2f64.powi(-35));
    let flood = sanitized[0].flood_log2;
    assert!(f64::from(flood) >= f64::from(DEFAULT_STATISTICAL_SECURITY) + report.per_coefficient_bound.log2());
    let bound = sanitized.iter().map(|s| s.release_noise_bound).fold(0.0, f64::max);
    let mut releaser = Releaser::new(ReleasePolicy::argmax(bound, 1));
    let refs: Vec<_> = sanitized.iter().map(|s| &s.ciphertext).collect();
    let layout = ResultLayout::CiphertextPerClass {
        groups: xs.len(),
        classes: 3,
    };
    let Release::Classes(got) = releaser.decrypt_for_release(ectx.core(), &sk, &refs, &layout, &mut rng).unwrap() else {
        panic!("argmax release")
    };
    let argmax = |v: &[f64]| {
        v.iter()
            .enumerate()
            .fold((0, f64::NEG_INFINITY), |b, (i, &s)| if s > b.1 { (i, s) } else { b })
            .0
    };
    let gaps: Vec<f64> = want
        .iter()
        .map(|s| {
            let mut v = s.clone();
            v.sort_by(|a, b| b.total_cmp(a));
            v[0] - v[1]
        })
        .collect();
    let min_gap = gaps.iter().copied().fold(f64::INFINITY, f64::min);
    let flood_std = (params.n() as f64 / 3.0).sqrt() * f64::from(flood).exp2() / out_scale;
    println!("flood 2^{flood}: score noise std {flood_std:.2e}, smallest top-two gap {min_gap:.2e}");
    let disagree: Vec<usize> = (0..xs.len()).filter(|&p| got[p] != argmax(&want[p])).collect();
    assert!(disagree.is_empty(), "released argmax differs on {disagree:?}");
    // The local view of the sanitised ciphertext: unused slots are zero up to the flood.
    let local = decrypt(ectx.core(), &sk, &sanitized[0].ciphertext).unwrap().decode_real().unwrap();
    assert!(local[xs.len()..].iter().all(|v| v.abs() < 1e3 * flood_std));
}

/// The latency path: all blades of a patient in one ciphertext (block layout, the last form on
/// its principal axes), same checks: the measured noise stays below the bound proven for that
/// packing, and the released argmax equals the plaintext model's, for a full ciphertext of
/// patients and for a single one.
#[test]
fn block_layout_release_agrees_with_the_plaintext_model() {
    let (tx, ty) = dataset(600, 1);
    let cfg = TrainConfig {
        epochs: 60,
        ..TrainConfig::default()
    };
    let (model, _) = train(&tx, &ty, None, 3, &cfg).unwrap();
    let BlockKeys {
        params,
        ectx,
        mut rng,
        sk,
        pk,
        rlk,
        gks,
    } = BlockKeys::new(22);
    let ev = Evaluator::new(&ectx);
    let plan = model.encrypted_plan();
    // One ciphertext: its rotations add key switching at the input scale, so inputs at 2^85;
    // encrypted rotations: the blade-major schedule (2^80, constants at 2^37) is enough.
    let one = Schedule::circuit_private_at(&params, &plan, 2, 1, PRIVATE_LOG_INPUT_SCALE_BLOCKS).unwrap();
    let rotated = Schedule::circuit_private(&params, &plan, 2, 1).unwrap();
    let one_constants = BlockConstants::new(&ev, &plan, &one).unwrap();
    let rotated_constants = BlockConstants::new(&ev, &plan, &rotated).unwrap();
    let capacity = block_capacity(&params, 3);
    assert_eq!(capacity, 682);
    let ibox = model.input_box();
    let argmax = |v: &[f64]| {
        v.iter()
            .enumerate()
            .fold((0, f64::NEG_INFINITY), |b, (i, &s)| if s > b.1 { (i, s) } else { b })
            .0
    };
    // One ciphertext (rotated by the vendor) or its 8 rotations (encrypted by the hospital).
    for (patients, packing) in [
        (capacity, Packing::Blocks),
        (capacity, Packing::BlocksEncryptedRotations),
        (1, Packing::BlocksEncryptedRotations),
    ] {
        let (schedule, constants) = match packing {
            Packing::Blocks => (&one, &one_constants),
            _ => (&rotated, &rotated_constants),
        };
        let report = schedule.analyse_packed(&params, &plan, packing).unwrap();
        let (xs, _) = dataset(patients, 3);
        let encoded: Vec<[f64; 8]> = xs.iter().map(|x| ibox.encode(x)).collect();
        let vs = match packing {
            Packing::Blocks => vec![pack_blocks(&params, &encoded, 3).unwrap()],
            _ => pack_blocks_rotated(&params, &encoded, 3).unwrap(),
        };
        let cts = encrypt_vectors(&ectx, &pk, &vs, schedule, &mut rng);
        let scores = evaluate_blocks(&ev, &rlk, &gks, schedule, constants, &cts).unwrap();
        assert_eq!(scores.meta.level, schedule.output_level);
        let dec = decrypt(ectx.core(), &sk, &scores).unwrap().decode_real().unwrap();
        let want: Vec<Vec<f64>> = model.forward_batch(&xs);
        let mut max_err: f64 = 0.0;
        for (p, w) in want.iter().enumerate() {
            for c in 0..3 {
                max_err = max_err.max((dec[3 * p + c] - w[c]).abs());
            }
        }
        // Exact noise: against the same evaluation of noise-free (c1 = 0) inputs.
        let clean = evaluate_blocks(&ev, &rlk, &gks, schedule, constants, &noise_free(&ev, &vs, schedule)).unwrap();
        let measured = noise_max_coefficient(&ev, &sk, &scores, &clean);
        println!(
            "block layout ({packing:?}), {patients} patient(s): max |score error| {max_err:.2e}; noise max |coefficient| 2^{:.1}, proven bound 2^{:.1} at scale 2^{:.1}",
            measured.log2(),
            report.per_coefficient_bound.log2(),
            schedule.output_scale().log2()
        );
        // Slot-wise constants are rounded coefficient by coefficient when encoded, so they carry
        // about sqrt(N) / s of relative quantisation (s = 2^30 with one ciphertext, 2^37 with
        // encrypted rotations) where the blade-major layout's scalar constants carry 1 / s: a
        // deterministic error of the evaluated function, far below any score gap.
        assert!(max_err < if packing == Packing::Blocks { 1e-5 } else { 1e-7 });
        assert!(measured <= report.per_coefficient_bound);
        // Sanitise (mask every slot but 3 p + c, c < 3, p < patients) and release.
        let mut cfg = SanitizeConfig::new(report.per_coefficient_bound);
        cfg.used_slots = Some(block_used_slots(&params, patients, 3));
        cfg.value_bound = Some(report.slot_bound);
        cfg.mask_passes = 2;
        let san = sanitize(&ectx, &pk, &scores, &cfg, &mut rng).unwrap();
        let mut releaser = Releaser::new(ReleasePolicy::argmax(san.release_noise_bound, 1));
        let layout = block_result_layout(patients, 3);
        let Release::Classes(got) = releaser
            .decrypt_for_release(ectx.core(), &sk, &[&san.ciphertext], &layout, &mut rng)
            .unwrap()
        else {
            panic!("argmax release")
        };
        let disagree: Vec<usize> = (0..patients).filter(|&p| got[p] != argmax(&want[p])).collect();
        assert!(disagree.is_empty(), "released argmax differs on {disagree:?}");
    }
}

/// A private-n15 key set with the block layout's rotation keys, from a fixed test seed.
struct BlockKeys {
    params: Params,
    ectx: EvalContext,
    rng: ChaCha20Rng,
    sk: SecretKey<Vec<i8>>,
    pk: PublicKey<Vec<u64>>,
    rlk: RelinearizationKey,
    gks: GaloisKeys,
}

impl BlockKeys {
    fn new(seed: u64) -> Self {
        let params = Params::from_name("private-n15").unwrap();
        let ectx = EvalContext::new(params).unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let sk = SecretKey::generate(&params, &mut rng).unwrap();
        let pk = PublicKey::generate(&params, ectx.q_tables(), &sk, &mut rng).unwrap();
        let rlk = RelinearizationKey::generate(&ectx, &sk, &mut rng).unwrap();
        let gks = GaloisKeys::for_rotations(&ectx, &sk, &block_rotation_steps(&params), false, &mut rng).unwrap();
        Self {
            params,
            ectx,
            rng,
            sk,
            pk,
            rlk,
            gks,
        }
    }
}

/// Slot vectors encrypted under the public key at the schedule's input level and scale.
fn encrypt_vectors(
    ectx: &EvalContext,
    pk: &PublicKey<Vec<u64>>,
    vs: &[Vec<f64>],
    schedule: &Schedule,
    rng: &mut ChaCha20Rng,
) -> Vec<CiphertextOwned> {
    let params = *ectx.params();
    vs.iter()
        .map(|v| {
            let pt = Plaintext::encode_real(&params, v, schedule.input_scale).unwrap();
            encrypt_pk(&params, ectx.q_tables(), pk, &pt, schedule.input_level, rng).unwrap()
        })
        .collect()
}

/// The same slot vectors encrypted without noise (c1 = 0) at the schedule's input.
fn noise_free(ev: &Evaluator<'_>, vs: &[Vec<f64>], schedule: &Schedule) -> Vec<CiphertextOwned> {
    let params = *ev.context().params();
    vs.iter()
        .map(|v| {
            let pt = ev.encode_real(v, schedule.input_level, schedule.input_scale).unwrap();
            Ciphertext {
                c0: pt.poly,
                c1: RnsPoly::zero(params.n(), schedule.input_level + 1, Representation::Ntt),
                meta: CiphertextMeta::new(&params, schedule.input_level, schedule.input_scale, params.log_n() - 1),
            }
        })
        .collect()
}

/// Largest coefficient of the noise of `noisy`, exactly: its difference with the same
/// evaluation of noise-free inputs, decrypted, decoded and re-encoded.
fn noise_max_coefficient(ev: &Evaluator<'_>, sk: &SecretKey<Vec<i8>>, noisy: &CiphertextOwned, clean: &CiphertextOwned) -> f64 {
    let n = ev.context().n();
    let d = ev.sub(noisy, clean).unwrap();
    let slots = decrypt(ev.context().core(), sk, &d).unwrap().decode().unwrap();
    let mut coeffs = vec![0f64; n];
    let mut scratch = vec![Complex::default(); encode_scratch_len(slots.len())];
    encode(&slots, n, d.meta.scale, &mut coeffs, &mut scratch).unwrap();
    coeffs.iter().fold(0.0f64, |m, c| m.max(c.abs()))
}

/// Plans of one form (affine, or quadratic: the scores straight into their lanes, no tail) and
/// of three (two hidden forms read through rotations, then the principal-axis tail) in the
/// block layout: the plaintext model's scores, with noise under the proven bound.
#[test]
fn block_layout_takes_plans_of_one_and_three_forms() {
    let BlockKeys {
        params,
        ectx,
        mut rng,
        sk,
        pk,
        rlk,
        gks,
    } = BlockKeys::new(23);
    let ev = Evaluator::new(&ectx);
    let (xs, _) = dataset(7, 5);
    for (hidden, classes) in [(&[][..], 2usize), (&[5][..], 4), (&[4, 4, 4][..], 3)] {
        let names = (0..classes).map(|c| format!("c{c}")).collect();
        let model = GnnModel::new_random(hidden, classes, names, Normalisation::identity(), 0.1, 0.3, 5).unwrap();
        let plan = model.encrypted_plan();
        let schedule = Schedule::circuit_private(&params, &plan, 2, 1).unwrap();
        let report = schedule.analyse_packed(&params, &plan, Packing::BlocksEncryptedRotations).unwrap();
        assert!(report.headroom_bits > 0.0);
        let constants = BlockConstants::new(&ev, &plan, &schedule).unwrap();
        let ibox = model.input_box();
        let encoded: Vec<[f64; 8]> = xs.iter().map(|x| ibox.encode(x)).collect();
        let vs = pack_blocks_rotated(&params, &encoded, classes).unwrap();
        let cts = encrypt_vectors(&ectx, &pk, &vs, &schedule, &mut rng);
        let scores = evaluate_blocks(&ev, &rlk, &gks, &schedule, &constants, &cts).unwrap();
        assert_eq!(scores.meta.level, schedule.output_level);
        let dec = decrypt(ectx.core(), &sk, &scores).unwrap().decode_real().unwrap();
        let want = model.forward_batch(&xs);
        let mut max_err = 0.0f64;
        for (p, w) in want.iter().enumerate() {
            for (c, wc) in w.iter().enumerate() {
                max_err = max_err.max((dec[classes * p + c] - wc).abs() / (1.0 + wc.abs()));
            }
        }
        let clean = evaluate_blocks(&ev, &rlk, &gks, &schedule, &constants, &noise_free(&ev, &vs, &schedule)).unwrap();
        let measured = noise_max_coefficient(&ev, &sk, &scores, &clean);
        println!(
            "hidden {hidden:?}, {classes} classes: max relative score error {max_err:.2e}; noise 2^{:.1}, proven bound 2^{:.1}",
            measured.log2(),
            report.per_coefficient_bound.log2()
        );
        assert!(max_err < 1e-6);
        assert!(measured <= report.per_coefficient_bound);
    }
}
