//! The equivariant network evaluated on encrypted channels at `private-n15` (ciphertext x
//! ciphertext geometric products), circuit-private: the measured noise of the scores must sit
//! below the proven bound, the released argmax must equal the plaintext model's on every patient,
//! and scores of rotated inputs must equal the unrotated ones to 1e-6 after decryption.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use clifhe_core::ciphertext::{Ciphertext, CiphertextMeta, CiphertextOwned};
use clifhe_core::decrypt::decrypt;
use clifhe_core::encode::{encode, encode_scratch_len, Complex};
use clifhe_core::encrypt::{encrypt_pk, Plaintext};
use clifhe_core::rns::{Representation, RnsPoly};
use clifhe_core::{Multivector, Params, PublicKey, SecretKey};
use clifhe_std::gnn::equivariant::EquivariantNet;
use clifhe_std::gnn::equivariant_encrypted::{evaluate, fitting_policy, fresh_noise_slot, plan, InputBounds, ScalePolicy};
use clifhe_std::gnn::equivariant_train::{train_equivariant, with_constant_channel, EquivariantConfig};
use clifhe_std::privacy::{sanitize, Release, ReleasePolicy, Releaser, ResultLayout, SanitizeConfig};
use clifhe_std::{EvalContext, Evaluator, RelinearizationKey};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

fn uniform(rng: &mut ChaCha20Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

fn rotor(rng: &mut ChaCha20Rng) -> Multivector {
    let q: [f64; 4] = core::array::from_fn(|_| uniform(rng));
    let n = q.iter().map(|v| v * v).sum::<f64>().sqrt();
    Multivector::new([q[0] / n, 0.0, 0.0, 0.0, q[1] / n, q[2] / n, q[3] / n, 0.0])
}

fn rotate(r: &Multivector, x: &[Multivector]) -> Vec<Multivector> {
    x.iter().map(|c| r.gp(c).gp(&r.reverse())).collect()
}

/// Two channels: a "shell" (scalar, vector, pseudoscalar) and an "axis" (vector); the label is
/// a rotation-invariant function of both (the angle between the two vectors and a mass).
fn dataset(n: usize, seed: u64) -> (Vec<Vec<Multivector>>, Vec<usize>) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut xs = Vec::with_capacity(n);
    let mut ys = Vec::with_capacity(n);
    for _ in 0..n {
        let v: [f64; 3] = core::array::from_fn(|_| uniform(&mut rng));
        let w: [f64; 3] = core::array::from_fn(|_| uniform(&mut rng));
        let mass = 0.5 + 0.5 * uniform(&mut rng);
        let spread = 0.3 + 0.2 * uniform(&mut rng);
        let shell = Multivector::new([mass, v[0], v[1], v[2], 0.0, 0.0, 0.0, spread]);
        let axis = Multivector::new([0.0, w[0], w[1], w[2], 0.0, 0.0, 0.0, 0.0]);
        let dot = v[0] * w[0] + v[1] * w[1] + v[2] * w[2];
        ys.push(usize::from(dot + 0.3 * (mass - 0.5) > 0.0));
        xs.push(vec![shell, axis]);
    }
    (xs, ys)
}

struct Keys {
    params: Params,
    ectx: EvalContext,
    sk: SecretKey<Vec<i8>>,
    pk: PublicKey<Vec<u64>>,
    rlk: RelinearizationKey,
}

fn keys(rng: &mut ChaCha20Rng) -> Keys {
    let params = Params::from_name("private-n15").unwrap();
    let ectx = EvalContext::new(params).unwrap();
    let sk = SecretKey::generate(&params, rng).unwrap();
    let pk = PublicKey::generate(&params, ectx.q_tables(), &sk, rng).unwrap();
    let rlk = RelinearizationKey::generate(&ectx, &sk, rng).unwrap();
    Keys { params, ectx, sk, pk, rlk }
}

/// Per channel the present blades' slot vectors (patient p in slot p).
fn slot_vectors(params: &Params, bounds: &InputBounds, xs: &[Vec<Multivector>]) -> Vec<[Option<Vec<f64>>; 8]> {
    (0..bounds.present.len())
        .map(|c| {
            core::array::from_fn(|k| {
                bounds.present[c][k].then(|| {
                    let mut v = vec![0.0; params.max_slots()];
                    for (p, x) in xs.iter().enumerate() {
                        v[p] = x[c].coeffs()[k];
                    }
                    v
                })
            })
        })
        .collect()
}

/// A net trained for 30 epochs on `dataset(400, 1)` (seed 3).
fn trained(hidden: Vec<usize>, gates: bool) -> EquivariantNet {
    let (tx, ty) = dataset(400, 1);
    let cfg = EquivariantConfig {
        hidden,
        gates,
        epochs: 30,
        seed: 3,
        ..EquivariantConfig::default()
    };
    train_equivariant(&tx, &ty, None, 2, &cfg).unwrap().0
}

fn argmax(v: &[f64]) -> usize {
    v.iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |b, (i, &s)| if s > b.1 { (i, s) } else { b })
        .0
}

fn check_net(net: &EquivariantNet, label: &str, policy: ScalePolicy, release: bool) {
    let (xs, _) = dataset(300, 2);
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let k = keys(&mut rng);
    let (params, ectx) = (k.params, &k.ectx);
    let ev = Evaluator::new(ectx);
    let (tx, _) = dataset(400, 1);
    let bounds = InputBounds::covering(&tx, 1.25);
    let report = plan(&params, net, &bounds, &policy).unwrap();

    // Patients: 100 samples (clamped into the public domain), then 100 rotations of sample 0.
    let mut patients: Vec<Vec<Multivector>> = xs.iter().take(100).map(|x| bounds.clamp(x)).collect();
    for _ in 0..100 {
        let r = rotor(&mut rng);
        patients.push(bounds.clamp(&rotate(&r, &patients[0])));
    }
    let want: Vec<Vec<f64>> = patients.iter().map(|x| net.scores(&with_constant_channel(x))).collect();

    let scale = policy.log_input_scale.exp2();
    let vectors = slot_vectors(&params, &bounds, &patients);
    let noisy: Vec<[Option<CiphertextOwned>; 8]> = vectors
        .iter()
        .map(|ch| {
            core::array::from_fn(|b| {
                ch[b].as_ref().map(|v| {
                    let pt = Plaintext::encode_real(&params, v, scale).unwrap();
                    encrypt_pk(&params, ectx.q_tables(), &k.pk, &pt, policy.level(&params), &mut rng).unwrap()
                })
            })
        })
        .collect();
    // The same inputs without encryption noise (c1 = 0).
    let trivial: Vec<[Option<CiphertextOwned>; 8]> = vectors
        .iter()
        .map(|ch| {
            core::array::from_fn(|b| {
                ch[b].as_ref().map(|v| {
                    let level = policy.level(&params);
                    let pt = ev.encode_real(v, level, scale).unwrap();
                    Ciphertext {
                        c0: pt.poly,
                        c1: RnsPoly::zero(params.n(), level + 1, Representation::Ntt),
                        meta: CiphertextMeta::new(&params, level, scale, params.max_slots().trailing_zeros()),
                    }
                })
            })
        })
        .collect();
    let t = std::time::Instant::now();
    let (scores, got_report) = evaluate(&ev, &k.rlk, net, &bounds, &policy, noisy).unwrap();
    let seconds = t.elapsed().as_secs_f64();
    let (clean, _) = evaluate(&ev, &k.rlk, net, &bounds, &policy, trivial).unwrap();
    assert_eq!(got_report, report, "the dry run must predict the evaluation");
    assert_eq!(scores[0].meta.level, report.output_level);

    // Measured noise (noisy minus noise-free evaluation) against the proven bound.
    let noise_coefficients = |a: &CiphertextOwned, b: &CiphertextOwned| -> f64 {
        let d = ev.sub(a, b).unwrap();
        let slots = decrypt(ectx.core(), &k.sk, &d).unwrap().decode().unwrap();
        let mut coeffs = vec![0f64; params.n()];
        let mut scratch = vec![Complex::default(); encode_scratch_len(slots.len())];
        encode(&slots, params.n(), d.meta.scale, &mut coeffs, &mut scratch).unwrap();
        coeffs.iter().fold(0.0f64, |m, c| m.max(c.abs()))
    };
    let mut measured = 0f64;
    let mut max_err = 0f64;
    let mut decrypted: Vec<Vec<f64>> = Vec::new();
    for (c, s) in scores.iter().enumerate() {
        measured = measured.max(noise_coefficients(s, &clean[c]));
        let a = decrypt(ectx.core(), &k.sk, s).unwrap().decode_real().unwrap();
        for (p, w) in want.iter().enumerate() {
            max_err = max_err.max((a[p] - w[c]).abs());
        }
        decrypted.push(a);
    }
    // Encrypted invariance: patients 100..200 are rotations of patient 0.
    let mut invariance = 0f64;
    for p in 100..200 {
        for d in &decrypted {
            invariance = invariance.max((d[p] - d[0]).abs());
        }
    }
    println!(
        "{label}: {} input ciphertexts, {} relinearizations, {} rescales, {seconds:.2} s; scores at level {} scale 2^{:.1}, \
         |score| <= {:.3e}; noise max |coefficient| 2^{:.1}, proven bound 2^{:.1}; max |score error| {max_err:.2e}; \
         100 encrypted rotations: max |score(Rx) - score(x)| {invariance:.2e}",
        report.input_ciphertexts,
        report.relinearizations,
        report.rescales,
        report.output_level,
        report.output_scale.log2(),
        report.score_bound,
        measured.log2(),
        report.per_coefficient_bound.log2(),
    );
    assert!(measured <= report.per_coefficient_bound, "measured noise above the proven bound");
    assert!(max_err < 1e-6, "max |score error| {max_err:e}");
    assert!(invariance <= 1e-6, "encrypted invariance {invariance:e}");
    assert!(want.iter().flatten().all(|s| s.abs() <= report.score_bound));
    if !release {
        assert!(report.check_flood_fits(&params, 30, 12.0).is_err());
        return;
    }
    report.check_flood_fits(&params, 30, 12.0).unwrap();

    // Vendor: sanitise with the proven bounds; hospital: flooded argmax.
    let mut cfg = SanitizeConfig::new(report.per_coefficient_bound);
    cfg.used_slots = Some((0..params.max_slots()).map(|s| s < patients.len()).collect());
    cfg.value_bound = Some(report.score_bound);
    cfg.mask_passes = 2;
    let sanitized: Vec<_> = scores.iter().map(|s| sanitize(ectx, &k.pk, s, &cfg, &mut rng).unwrap()).collect();
    let bound = sanitized.iter().map(|s| s.release_noise_bound).fold(0.0, f64::max);
    let mut releaser = Releaser::new(ReleasePolicy::argmax(bound, 1));
    let refs: Vec<_> = sanitized.iter().map(|s| &s.ciphertext).collect();
    let layout = ResultLayout::CiphertextPerClass {
        groups: patients.len(),
        classes: scores.len(),
    };
    let Release::Classes(got) = releaser.decrypt_for_release(ectx.core(), &k.sk, &refs, &layout, &mut rng).unwrap() else {
        panic!("argmax release")
    };
    let disagree: Vec<usize> = (0..patients.len()).filter(|&p| got[p] != argmax(&want[p])).collect();
    assert!(disagree.is_empty(), "released argmax differs on {disagree:?}");
}

#[test]
fn one_layer_circuit_private_release_agrees_with_the_plaintext_model() {
    let (tx, _) = dataset(400, 1);
    let net = trained(vec![3], false);
    let params = Params::from_name("private-n15").unwrap();
    let (policy, _) = fitting_policy(&params, &net, &InputBounds::covering(&tx, 1.25), 30, 12.0).unwrap();
    check_net(&net, "1 layer of 3, circuit-private", policy, true);
}

/// A gate and a second layer evaluate correctly (noise below the proven bound, invariance) at a
/// lower scale, but their proven noise leaves no room for the circuit-private flood on
/// `private-n15`.
#[test]
fn gated_and_two_layer_nets_agree_encrypted_within_their_proven_noise() {
    let (tx, _) = dataset(400, 1);
    let policy = ScalePolicy {
        log_input_scale: 85.0,
        min_log_scale: 75.0,
        log_const_scale: 30.0,
        input_level: None,
    };
    for (hidden, gates, label) in [
        (vec![3], true, "1 gated layer of 3"),
        (vec![3, 2], false, "2 layers (3, 2) without gates"),
    ] {
        let net = trained(hidden, gates);
        if gates {
            assert!(net.layers[0].gate.iter().any(|g| g[0] != 0.0 || g[1] != 0.0));
        } else {
            assert!(net.layers.iter().all(|l| l.gate.iter().all(|g| *g == [0.0, 0.0])));
        }
        let params = Params::from_name("private-n15").unwrap();
        let fit = fitting_policy(&params, &net, &InputBounds::covering(&tx, 1.25), 30, 12.0);
        // Measured: no scale from 2^95 to 2^115 gives either a circuit-private flood on
        // private-n15 (the gated layer runs out of levels, the second layer's proven noise is
        // too large for the flood).
        assert!(fit.is_err(), "{label} now fits: {:?}", fit.map(|(p, _)| p));
        check_net(&net, label, policy, false);
    }
}

#[test]
fn a_model_too_deep_for_the_preset_is_refused_before_any_ciphertext() {
    let (tx, ty) = dataset(200, 1);
    let cfg = EquivariantConfig {
        hidden: vec![2, 2, 2],
        epochs: 3,
        ..EquivariantConfig::default()
    };
    let (mut net, _) = train_equivariant(&tx, &ty, None, 2, &cfg).unwrap();
    for l in &mut net.layers {
        l.gate.iter_mut().for_each(|g| *g = [0.1, 0.1]);
    }
    let params = Params::from_name("private-n15").unwrap();
    let bounds = InputBounds::covering(&tx, 1.25);
    let err = plan(&params, &net, &bounds, &ScalePolicy::circuit_private(95.0)).unwrap_err();
    assert!(err.to_string().contains("modulus") || err.to_string().contains("level"), "{err}");
}

#[test]
fn the_fresh_noise_bound_covers_a_real_encryption() {
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let k = keys(&mut rng);
    let params = k.params;
    let ev = Evaluator::new(&k.ectx);
    let scale = 2f64.powi(90);
    let v: Vec<f64> = (0..params.max_slots()).map(|_| uniform(&mut rng)).collect();
    let pt = Plaintext::encode_real(&params, &v, scale).unwrap();
    let ct = encrypt_pk(&params, k.ectx.q_tables(), &k.pk, &pt, params.max_level(), &mut rng).unwrap();
    let exact = ev.encode_real(&v, params.max_level(), scale).unwrap();
    let d = ev
        .sub(
            &ct,
            &Ciphertext {
                c0: exact.poly,
                c1: RnsPoly::zero(params.n(), params.max_level() + 1, Representation::Ntt),
                meta: ct.meta,
            },
        )
        .unwrap();
    let slots = decrypt(k.ectx.core(), &k.sk, &d).unwrap().decode().unwrap();
    let worst = slots.iter().fold(0f64, |m, z| m.max(z.re.abs()).max(z.im.abs())) * scale;
    println!(
        "fresh noise: largest slot 2^{:.1}, bound 2^{:.1}",
        worst.log2(),
        fresh_noise_slot(params.n()).log2()
    );
    assert!(worst <= fresh_noise_slot(params.n()));
}

/// The block layout (`equivariant_blocks`): one ciphertext holds every channel of up to 64
/// patients; same guarantees as the blade-major path (dry run = evaluation, measured noise below
/// the proven bound, exact invariance, released argmax equal to the plaintext model).
#[test]
fn block_layout_for_a_few_patients_agrees_and_releases_circuit_privately() {
    use clifhe_std::gnn::equivariant_blocks as blocks;
    use clifhe_std::GaloisKeys;
    let (tx, _) = dataset(400, 1);
    let net = trained(vec![3], false);
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let k = keys(&mut rng);
    let (params, ectx) = (k.params, &k.ectx);
    let ev = Evaluator::new(ectx);
    let bounds = InputBounds::covering(&tx, 1.25);
    let (policy, report) = blocks::fitting_policy(&params, &net, &bounds, 30, 12.0).unwrap();
    let layout = blocks::BlockLayout::new(&params, &net).unwrap();
    assert_eq!(layout.capacity(), 64, "3 hidden channels pad to 4: 256 positions of 16 384 slots");
    let gks = GaloisKeys::for_rotations(ectx, &k.sk, &layout.rotation_steps(), false, &mut rng).unwrap();
    let constants = blocks::BlockConstants::new(&ev, &net, &bounds, &policy).unwrap();
    assert_eq!(constants.report(), &report);

    // 32 samples, then 32 rotations of sample 0, all clamped into the public domain.
    let (xs, _) = dataset(32, 2);
    let mut patients: Vec<Vec<Multivector>> = xs.iter().map(|x| bounds.clamp(x)).collect();
    for _ in 0..32 {
        let r = rotor(&mut rng);
        patients.push(bounds.clamp(&rotate(&r, &patients[0])));
    }
    let want: Vec<Vec<f64>> = patients.iter().map(|x| net.scores(&with_constant_channel(x))).collect();
    let vectors = blocks::pack_block_inputs(&layout, &patients).unwrap();
    let scale = policy.log_input_scale.exp2();
    let level = policy.level(&params);
    let noisy = blocks::encrypt_block_inputs(ectx, &k.pk, &layout, &policy, &patients, &mut rng).unwrap();
    let trivial: Vec<CiphertextOwned> = vectors
        .iter()
        .map(|v| Ciphertext {
            c0: ev.encode_real(v, level, scale).unwrap().poly,
            c1: RnsPoly::zero(params.n(), level + 1, Representation::Ntt),
            meta: CiphertextMeta::new(&params, level, scale, params.max_slots().trailing_zeros()),
        })
        .collect();
    let t = std::time::Instant::now();
    let (scores, got) = blocks::evaluate(&ev, &k.rlk, &gks, &net, &bounds, &policy, &constants, noisy).unwrap();
    let seconds = t.elapsed().as_secs_f64();
    let (clean, _) = blocks::evaluate(&ev, &k.rlk, &gks, &net, &bounds, &policy, &constants, trivial).unwrap();
    assert_eq!(got, report, "the dry run must predict the evaluation");

    let d = ev.sub(&scores, &clean).unwrap();
    let slots = decrypt(ectx.core(), &k.sk, &d).unwrap().decode().unwrap();
    let mut coeffs = vec![0f64; params.n()];
    let mut scratch = vec![Complex::default(); encode_scratch_len(slots.len())];
    encode(&slots, params.n(), d.meta.scale, &mut coeffs, &mut scratch).unwrap();
    let measured = coeffs.iter().fold(0.0f64, |m, c| m.max(c.abs()));
    let dec = decrypt(ectx.core(), &k.sk, &scores).unwrap().decode_real().unwrap();
    let at = |p: usize, c: usize| dec[c * layout.copy_len() + p];
    let mut max_err = 0f64;
    for (p, w) in want.iter().enumerate() {
        for (c, v) in w.iter().enumerate() {
            max_err = max_err.max((at(p, c) - v).abs());
        }
    }
    let invariance = (32..64)
        .flat_map(|p| (0..2).map(move |c| (p, c)))
        .fold(0f64, |m, (p, c)| m.max((at(p, c) - at(0, c)).abs()));
    println!(
        "block layout, 1 layer of 3: {} input ciphertexts, {} relinearizations, {} rotations, {} rescales, {seconds:.2} s for \
         {} patients; inputs 2^{:.0} at level {level}, scores at level {} scale 2^{:.1}, |slot| <= {:.3e}; noise max |coefficient| \
         2^{:.1}, proven bound 2^{:.1}; max |score error| {max_err:.2e}; 32 encrypted rotations: {invariance:.2e}",
        report.input_ciphertexts,
        report.relinearizations,
        report.rotations,
        report.rescales,
        patients.len(),
        policy.log_input_scale,
        report.output_level,
        report.output_scale.log2(),
        report.score_bound,
        measured.log2(),
        report.per_coefficient_bound.log2(),
    );
    // 3 rotations sum the copies, 5 the 32 positions (4 padded channels x 8 blades).
    assert_eq!((report.relinearizations, report.rotations), (2, 3 + 5));
    assert!(measured <= report.per_coefficient_bound, "measured noise above the proven bound");
    assert!(max_err < 1e-6, "max |score error| {max_err:e}");
    assert!(invariance <= 1e-6, "encrypted invariance {invariance:e}");
    assert!(
        dec.iter().all(|v| v.abs() <= report.score_bound),
        "a slot above the proven value bound"
    );

    // Sanitise (every slot but the scores masked) and release.
    let result = layout.result_layout(patients.len(), 2);
    let mut cfg = SanitizeConfig::new(report.per_coefficient_bound);
    cfg.used_slots = Some(layout.used_slots(patients.len(), 2));
    cfg.value_bound = Some(report.score_bound);
    cfg.mask_passes = 2;
    let s = sanitize(ectx, &k.pk, &scores, &cfg, &mut rng).unwrap();
    let mut releaser = Releaser::new(ReleasePolicy::argmax(s.release_noise_bound, 1));
    let Release::Classes(released) = releaser
        .decrypt_for_release(ectx.core(), &k.sk, &[&s.ciphertext], &result, &mut rng)
        .unwrap()
    else {
        panic!("argmax release")
    };
    let disagree: Vec<usize> = (0..patients.len()).filter(|&p| released[p] != argmax(&want[p])).collect();
    assert!(disagree.is_empty(), "released argmax differs on {disagree:?}");

    // Inputs or constants that do not belong to this model and policy are refused before any
    // key switching: a missing channel ciphertext, constants made under another policy (the
    // constants of another model are caught by the dry run's report).
    let short = blocks::encrypt_block_inputs(ectx, &k.pk, &layout, &policy, &patients[..1], &mut rng).unwrap();
    let err = blocks::evaluate(&ev, &k.rlk, &gks, &net, &bounds, &policy, &constants, short[..3].to_vec()).unwrap_err();
    assert!(err.to_string().contains("two ciphertexts per input channel"), "{err}");
    let other = ScalePolicy {
        input_level: Some(level + 1),
        ..policy
    };
    let other_constants = blocks::BlockConstants::new(&ev, &net, &bounds, &other).unwrap();
    let err = blocks::evaluate(&ev, &k.rlk, &gks, &net, &bounds, &policy, &other_constants, short).unwrap_err();
    assert!(err.to_string().contains("another model or policy"), "{err}");

    // A model the layout cannot hold is refused by name.
    let mut two = net.clone();
    two.layers.push(net.layers[0].clone());
    assert!(blocks::BlockLayout::new(&params, &two)
        .unwrap_err()
        .to_string()
        .contains("one layer"));
}
