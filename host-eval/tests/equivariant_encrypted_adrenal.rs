//! The equivariant network on encrypted AdrenalMNIST3D channels at `private-n15`,
//! circuit-private: one layer of 8 channels without gates (what fits the preset's levels with
//! room for the flood; see `clifhe_std::gnn::equivariant_encrypted`), trained on the official
//! split. Every test scan (clamped into the public input domain) plus 100 random rotations of
//! one test scan's channels go in one batch: the released argmax must equal the plaintext
//! model's on every patient, the decrypted scores of the rotated copies must equal the
//! unrotated scan's to 1e-6, and the full-batch and one-patient times are reported.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use clifhe_core::encrypt::{encrypt_pk, Plaintext};
use clifhe_core::{Multivector, Params, PublicKey, SecretKey};
use clifhe_std::gnn::equivariant::EquivariantNet;
use clifhe_std::gnn::equivariant_blocks as blocks;
use clifhe_std::gnn::equivariant_encrypted::{evaluate, fitting_policy, InputBounds, ScalePolicy};
use clifhe_std::gnn::equivariant_policy::DOMAIN_MARGIN;
use clifhe_std::gnn::equivariant_train::{train_equivariant, with_constant_channel, EquivariantConfig};
use clifhe_std::gnn::roc_auc;
use clifhe_std::privacy::{sanitize, Release, ReleasePolicy, Releaser, ResultLayout, SanitizeConfig};
use clifhe_std::{EvalContext, Evaluator, GaloisKeys, RelinearizationKey};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::time::Instant;

mod adrenal;

use adrenal::{channels, dataset_path};

fn margin(net: &EquivariantNet, x: &[Multivector]) -> f64 {
    let v = net.scores(&with_constant_channel(x));
    v[1] - v[0]
}

fn argmax(v: &[f64]) -> usize {
    usize::from(v[1] > v[0])
}

/// Encrypts, evaluates, sanitises and releases one batch; returns the released classes, the
/// pre-sanitisation decrypted scores (measurement only) and the vendor's evaluation seconds.
#[allow(clippy::too_many_arguments)]
fn run_batch(
    params: &Params,
    ectx: &EvalContext,
    keys: (&SecretKey<Vec<i8>>, &PublicKey<Vec<u64>>, &RelinearizationKey),
    net: &EquivariantNet,
    bounds: &InputBounds,
    policy: ScalePolicy,
    patients: &[Vec<Multivector>],
    rng: &mut ChaCha20Rng,
) -> (Vec<usize>, Vec<Vec<f64>>, [f64; 4]) {
    let (sk, pk, rlk) = keys;
    let ev = Evaluator::new(ectx);
    let t = Instant::now();
    let slots = params.max_slots();
    let cts: Vec<[Option<clifhe_core::ciphertext::CiphertextOwned>; 8]> = (0..bounds.present.len())
        .map(|c| {
            core::array::from_fn(|k| {
                bounds.present[c][k].then(|| {
                    let mut v = vec![0.0; slots];
                    for (p, x) in patients.iter().enumerate() {
                        v[p] = x[c].coeffs()[k];
                    }
                    let pt = Plaintext::encode_real(params, &v, policy.log_input_scale.exp2()).unwrap();
                    encrypt_pk(params, ectx.q_tables(), pk, &pt, policy.level(params), rng).unwrap()
                })
            })
        })
        .collect();
    let encrypt_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let (scores, report) = evaluate(&ev, rlk, net, bounds, &policy, cts).unwrap();
    let eval_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut cfg = SanitizeConfig::new(report.per_coefficient_bound);
    cfg.used_slots = Some((0..slots).map(|s| s < patients.len()).collect());
    cfg.value_bound = Some(report.score_bound);
    cfg.mask_passes = 2;
    let sanitized: Vec<_> = scores.iter().map(|s| sanitize(ectx, pk, s, &cfg, rng).unwrap()).collect();
    let sanitize_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let bound = sanitized.iter().map(|s| s.release_noise_bound).fold(0.0, f64::max);
    let mut releaser = Releaser::new(ReleasePolicy::argmax(bound, 1));
    let refs: Vec<_> = sanitized.iter().map(|s| &s.ciphertext).collect();
    let layout = ResultLayout::CiphertextPerClass {
        groups: patients.len(),
        classes: 2,
    };
    let Release::Classes(got) = releaser.decrypt_for_release(ectx.core(), sk, &refs, &layout, rng).unwrap() else {
        panic!("argmax release")
    };
    let release_s = t.elapsed().as_secs_f64();
    let decrypted = scores
        .iter()
        .map(|s| clifhe_core::decrypt::decrypt(ectx.core(), sk, s).unwrap().decode_real().unwrap())
        .collect();
    (got, decrypted, [encrypt_s, eval_s, sanitize_s, release_s])
}

#[test]
fn encrypted_adrenal_release_equals_the_plaintext_argmax_and_is_rotation_invariant() {
    let p = dataset_path();
    let d = host_eval::data::npz::load_medmnist_npz(&p).unwrap();
    let (tx, ty) = channels(&d.train);
    let (vx, vy) = channels(&d.val);
    let (sx, sy) = channels(&d.test);
    let mut best: Option<(f64, EquivariantNet)> = None;
    for seed in 1..=3 {
        let cfg = EquivariantConfig::circuit_private(seed);
        let (net, rep) = train_equivariant(&tx, &ty, Some((&vx, &vy)), 2, &cfg).unwrap();
        let loss = rep.best_val_loss.unwrap();
        if best.as_ref().is_none_or(|b| loss < b.0) {
            best = Some((loss, net));
        }
    }
    let net = best.unwrap().1;

    // The public input domain: every training scan's grade norms with a 25% margin; test scans
    // are clamped into it (a rotation-invariant clamp) before the plaintext and encrypted runs.
    let seen: Vec<Vec<Multivector>> = tx.iter().chain(&vx).cloned().collect();
    let bounds = InputBounds::covering(&seen, DOMAIN_MARGIN);
    let clamped: Vec<Vec<Multivector>> = sx.iter().map(|x| bounds.clamp(x)).collect();
    let changed = clamped.iter().zip(&sx).filter(|(a, b)| a != b).count();
    let pos: Vec<bool> = sy.iter().map(|&y| y == 1).collect();
    let auc_raw = roc_auc(&sx.iter().map(|x| margin(&net, x)).collect::<Vec<_>>(), &pos).unwrap();
    let auc = roc_auc(&clamped.iter().map(|x| margin(&net, x)).collect::<Vec<_>>(), &pos).unwrap();
    let params = Params::from_name("private-n15").unwrap();
    let (policy, report) = fitting_policy(&params, &net, &bounds, 30, 12.0).unwrap();
    eprintln!(
        "1 layer x 8 channels, no gates: test AUC {auc:.4} ({changed} of {} test scans clamped; unclamped {auc_raw:.4}); \
         inputs at 2^{:.0} on level {}, {} input ciphertexts, {} relinearizations, scores at level {} scale 2^{:.0}, |score| <= {:.3e}, proven noise 2^{:.1}",
        sx.len(),
        policy.log_input_scale,
        policy.level(&params),
        report.input_ciphertexts,
        report.relinearizations,
        report.output_level,
        report.output_scale.log2(),
        report.score_bound,
        report.noise_bound.log2()
    );
    assert!(auc >= 0.84, "test AUC {auc:.4}");

    // One batch: the 298 test scans, then 100 random rotations of test scan 0's channels.
    let mut rng = ChaCha20Rng::seed_from_u64(13);
    let mut patients = clamped.clone();
    for _ in 0..100 {
        let q: [f64; 4] = core::array::from_fn(|_| rng.next_u64() as f64 / u64::MAX as f64 - 0.5);
        let n = q.iter().map(|v| v * v).sum::<f64>().sqrt();
        let r = Multivector::new([q[0] / n, 0.0, 0.0, 0.0, q[1] / n, q[2] / n, q[3] / n, 0.0]);
        let rx: Vec<Multivector> = sx[0].iter().map(|c| r.gp(c).gp(&r.reverse())).collect();
        patients.push(bounds.clamp(&rx));
    }
    let want: Vec<Vec<f64>> = patients.iter().map(|x| net.scores(&with_constant_channel(x))).collect();
    let ectx = EvalContext::new(params).unwrap();
    let sk = SecretKey::generate(&params, &mut rng).unwrap();
    let pk = PublicKey::generate(&params, ectx.q_tables(), &sk, &mut rng).unwrap();
    let rlk = RelinearizationKey::generate(&ectx, &sk, &mut rng).unwrap();
    let (got, decrypted, t) = run_batch(&params, &ectx, (&sk, &pk, &rlk), &net, &bounds, policy, &patients, &mut rng);
    let disagree: Vec<usize> = (0..patients.len()).filter(|&i| got[i] != argmax(&want[i])).collect();
    let mut max_err = 0f64;
    for (c, d) in decrypted.iter().enumerate() {
        for (i, w) in want.iter().enumerate() {
            max_err = max_err.max((d[i] - w[c]).abs());
        }
    }
    let base = clamped.len();
    let invariance = (base..base + 100)
        .flat_map(|i| decrypted.iter().map(move |d| (d[i] - d[0]).abs()))
        .fold(0f64, f64::max);
    let capacity = params.max_slots();
    eprintln!(
        "batch of {} patients (capacity {capacity}): encrypt {:.2} s, evaluate {:.2} s, sanitise {:.2} s, release {:.2} s \
         -> {:.0} patients/s at full batches (evaluation); max |score error| {max_err:.2e}; 100 encrypted rotations: \
         max |score(Rx) - score(x)| {invariance:.2e}; released argmax differs on {} patients",
        patients.len(),
        t[0],
        t[1],
        t[2],
        t[3],
        capacity as f64 / t[1],
        disagree.len()
    );
    assert!(disagree.is_empty(), "released argmax differs on {disagree:?}");
    assert!(invariance <= 1e-6, "encrypted invariance {invariance:e}");
    assert!(max_err <= 1e-6, "max |score error| {max_err:e}");

    // One patient, and a full block of patients, end to end in the block layout (encrypt,
    // evaluate, sanitise, release): `equivariant_blocks`, 2 relinearizations and a few
    // rotations instead of the batch's 72 relinearizations.
    let layout = blocks::BlockLayout::new(&params, &net).unwrap();
    let (bpolicy, breport) = blocks::fitting_policy(&params, &net, &bounds, 30, 12.0).unwrap();
    let t = Instant::now();
    let gks = GaloisKeys::for_rotations(&ectx, &sk, &layout.rotation_steps(), false, &mut rng).unwrap();
    let ev = Evaluator::new(&ectx);
    let constants = blocks::BlockConstants::new(&ev, &net, &bounds, &bpolicy).unwrap();
    let setup_s = t.elapsed().as_secs_f64();
    eprintln!(
        "block layout: {} patients per ciphertext, {} Galois keys and the weight plaintexts in {setup_s:.2} s (once per key and model); \
         inputs at 2^{:.0} on level {}, {} input ciphertexts, {} relinearizations, {} rotations, scores at level {} scale 2^{:.0}, \
         |slot| <= {:.3e}, proven noise 2^{:.1}",
        layout.capacity(),
        gks.len(),
        bpolicy.log_input_scale,
        bpolicy.level(&params),
        breport.input_ciphertexts,
        breport.relinearizations,
        breport.rotations,
        breport.output_level,
        breport.output_scale.log2(),
        breport.score_bound,
        breport.noise_bound.log2()
    );
    for count in [1, 1, 1, layout.capacity()] {
        let group = &patients[..count];
        let t0 = Instant::now();
        let cts = blocks::encrypt_block_inputs(&ectx, &pk, &layout, &bpolicy, group, &mut rng).unwrap();
        let encrypt_s = t0.elapsed().as_secs_f64();
        let t = Instant::now();
        let (scores, _) = blocks::evaluate(&ev, &rlk, &gks, &net, &bounds, &bpolicy, &constants, cts).unwrap();
        let eval_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let mut cfg = SanitizeConfig::new(breport.per_coefficient_bound);
        cfg.used_slots = Some(layout.used_slots(count, 2));
        cfg.value_bound = Some(breport.score_bound);
        cfg.mask_passes = 2;
        let s = sanitize(&ectx, &pk, &scores, &cfg, &mut rng).unwrap();
        let sanitize_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let mut releaser = Releaser::new(ReleasePolicy::argmax(s.release_noise_bound, 1));
        let result = layout.result_layout(count, 2);
        let Release::Classes(got) = releaser
            .decrypt_for_release(ectx.core(), &sk, &[&s.ciphertext], &result, &mut rng)
            .unwrap()
        else {
            panic!("argmax release")
        };
        let release_s = t.elapsed().as_secs_f64();
        let total = t0.elapsed().as_secs_f64();
        eprintln!(
            "block layout, {count} patient(s): {total:.3} s end to end (encrypt {encrypt_s:.3}, evaluate {eval_s:.3}, sanitise \
             {sanitize_s:.3}, release {release_s:.3}) = {:.1} patients/s",
            count as f64 / total
        );
        let disagree: Vec<usize> = (0..count).filter(|&i| got[i] != argmax(&want[i])).collect();
        assert!(disagree.is_empty(), "block layout: released argmax differs on {disagree:?}");
    }
}
