//! Output sanitisation and flooded release: results survive, secrets are hidden, budgets hold.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use clifhe_core::decrypt::decrypt;
use clifhe_core::encrypt::{encrypt_pk, Plaintext};
use clifhe_core::params::presets;
use clifhe_core::{Params, PublicKey, SecretKey};
use clifhe_std::privacy::{
    evaluation_noise_bound, sanitize, sanitize_memoised, sanitize_output, MaskMemo, Release, ReleasePolicy, Releaser, ResultLayout,
    SanitizeConfig, MASK_MEMO_ENTRIES,
};
use clifhe_std::{EvalContext, EvalError};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

#[test]
fn sanitized_scores_keep_their_argmax_and_unused_slots_are_zero() {
    let params = Params::new(presets::PRIVATE_N15).unwrap();
    let ectx = EvalContext::new(params).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let sk = SecretKey::generate(&params, &mut rng).unwrap();
    let pk = PublicKey::generate(&params, ectx.q_tables(), &sk, &mut rng).unwrap();
    // 64 patients x 3 class scores in slots 4p..4p+2; slot 4p+3 unused (and holds junk).
    let patients = 64;
    let slots = 256;
    let mut values = vec![0.0; slots];
    let mut truth = Vec::new();
    for p in 0..patients {
        let best = p % 3;
        for c in 0..3 {
            values[4 * p + c] = if c == best { 1.0 } else { -1.0 + 0.1 * c as f64 };
        }
        values[4 * p + 3] = 7.0; // must not survive sanitisation
        truth.push(best);
    }
    // A large-scale result (as the circuit-private schedule produces): scale 2^100 on level 3.
    let scale = 100f64.exp2();
    let pt = Plaintext::encode_real(&params, &values, scale).unwrap();
    let ct = encrypt_pk(&params, ectx.q_tables(), &pk, &pt, 3, &mut rng).unwrap();
    let mut cfg = SanitizeConfig::new(evaluation_noise_bound(params.n(), 3));
    cfg.used_slots = Some((0..slots).map(|s| s % 4 != 3).collect());
    cfg.value_bound = Some(7.0);
    cfg.mask_passes = 2;
    let s = sanitize(&ectx, &pk, &ct, &cfg, &mut rng).unwrap();
    let out = s.ciphertext.clone();
    // Two mask passes (levels 3 -> 1), and level 1 is the lowest that holds 7 * 2^100.
    assert_eq!(out.meta.level, 1);
    assert_eq!(out.meta.scale, scale);
    assert!(out.c1 != ct.c1.prefix(2).unwrap().to_owned_poly(), "re-randomised");
    assert!(s.mask_error > 0.0 && s.mask_error < 2f64.powi(-35), "{}", s.mask_error);
    // The flood covers the bound carried through the masks: W >= 2^30 B'.
    assert!(f64::from(s.flood_log2) >= 30.0 + s.hidden_noise_bound.log2());

    // The hospital's local view (never released): masked slots are ~0, scores are close.
    let local = decrypt(ectx.core(), &sk, &out).unwrap().decode_real().unwrap();
    let mut worst: f64 = 0.0;
    for s in 0..slots {
        let want = if s % 4 == 3 { 0.0 } else { values[s] };
        worst = worst.max((local[s] - want).abs());
    }
    println!("max slot error after flooding: {worst:.2e} ({:.1} bits)", -worst.log2());
    assert!(worst < 1e-6, "flooding left {worst}");

    let layout = ResultLayout::Interleaved {
        groups: patients,
        classes: 3,
        stride: 4,
    };
    let mut releaser = Releaser::new(ReleasePolicy::argmax(s.release_noise_bound, 2));
    let rel = releaser.decrypt_for_release(ectx.core(), &sk, &[&out], &layout, &mut rng).unwrap();
    assert_eq!(rel, Release::Classes(truth.clone()));
    releaser.decrypt_for_release(ectx.core(), &sk, &[&out], &layout, &mut rng).unwrap();
    assert_eq!(releaser.remaining(), 0);
    assert!(releaser.decrypt_for_release(ectx.core(), &sk, &[&out], &layout, &mut rng).is_err());

    // At the preset's scale (2^55) the same sanitisation has nothing left: the mask's rescale
    // rounding alone (up to sqrt(N) (1 + N) / 2 in 2-norm) times 2^30 exceeds the scale. An
    // error, not noise.
    let pt = Plaintext::encode_real(&params, &values, params.default_scale()).unwrap();
    let ct = encrypt_pk(&params, ectx.q_tables(), &pk, &pt, 3, &mut rng).unwrap();
    assert!(matches!(
        sanitize_output(&ectx, &pk, &ct, &cfg, &mut rng),
        Err(EvalError::Invalid(_))
    ));
}

#[test]
fn memoised_masks_give_the_same_words_and_stay_bounded() {
    let params = Params::new(presets::PRIVATE_N15).unwrap();
    let ectx = EvalContext::new(params).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let sk = SecretKey::generate(&params, &mut rng).unwrap();
    let pk = PublicKey::generate(&params, ectx.q_tables(), &sk, &mut rng).unwrap();
    let slots = 64;
    let values: Vec<f64> = (0..slots).map(|s| if s % 4 == 3 { 5.0 } else { 0.25 * (s % 3) as f64 }).collect();
    let scale = 100f64.exp2();
    let pt = Plaintext::encode_real(&params, &values, scale).unwrap();
    let ct = encrypt_pk(&params, ectx.q_tables(), &pk, &pt, 3, &mut rng).unwrap();
    let cfg_for = |period: usize| {
        let mut cfg = SanitizeConfig::new(evaluation_noise_bound(params.n(), 3));
        cfg.used_slots = Some((0..slots).map(|s| s % period != period - 1).collect());
        cfg.value_bound = Some(5.0);
        cfg.mask_passes = 2;
        cfg
    };
    let memo = MaskMemo::new();
    let cfg = cfg_for(4);
    let plain = sanitize(&ectx, &pk, &ct, &cfg, &mut ChaCha20Rng::seed_from_u64(9)).unwrap();
    // A miss (the two passes' masks are encoded and kept), then a hit: the same words as
    // without the memo each time, and the same bounds.
    for expected_entries in [2, 2] {
        let memoised = sanitize_memoised(&ectx, &pk, &ct, &cfg, &memo, &mut ChaCha20Rng::seed_from_u64(9)).unwrap();
        assert_eq!(memo.len(), expected_entries);
        assert_eq!(memoised.ciphertext.c0, plain.ciphertext.c0);
        assert_eq!(memoised.ciphertext.c1, plain.ciphertext.c1);
        assert_eq!(memoised.ciphertext.meta, plain.ciphertext.meta);
        assert_eq!(memoised.flood_log2, plain.flood_log2);
        assert_eq!(memoised.mask_error, plain.mask_error);
        assert_eq!(memoised.hidden_noise_bound, plain.hidden_noise_bound);
    }
    // Another slot pattern is another mask, and the result keeps its own unused slots at zero
    // (not the first pattern's).
    let cfg5 = cfg_for(5);
    let other = sanitize_memoised(&ectx, &pk, &ct, &cfg5, &memo, &mut rng).unwrap();
    assert_eq!(memo.len(), 4);
    let local = decrypt(ectx.core(), &sk, &other.ciphertext).unwrap().decode_real().unwrap();
    for (s, (&got, &v)) in local.iter().zip(&values).enumerate() {
        let want = if s % 5 == 4 { 0.0 } else { v };
        assert!((got - want).abs() < 1e-6, "slot {s}: {got} against {want}");
    }
    // Bounded: the oldest shapes are dropped.
    for period in 6..6 + MASK_MEMO_ENTRIES {
        sanitize_memoised(&ectx, &pk, &ct, &cfg_for(period), &memo, &mut rng).unwrap();
    }
    assert_eq!(memo.len(), MASK_MEMO_ENTRIES);
}

#[test]
fn flooding_that_would_destroy_the_result_is_refused() {
    let params = Params::new(presets::LEVELED_N14).unwrap();
    let ectx = EvalContext::new(params).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let sk = SecretKey::generate(&params, &mut rng).unwrap();
    let pk = PublicKey::generate(&params, ectx.q_tables(), &sk, &mut rng).unwrap();
    let pt = Plaintext::encode_real(&params, &[0.5; 8], params.default_scale()).unwrap();
    let ct = encrypt_pk(&params, ectx.q_tables(), &pk, &pt, 2, &mut rng).unwrap();
    // s = 30 at scale 2^40 leaves nothing: an error, not garbage.
    let cfg = SanitizeConfig::new(evaluation_noise_bound(params.n(), 3));
    assert!(matches!(
        sanitize_output(&ectx, &pk, &ct, &cfg, &mut rng),
        Err(EvalError::Invalid(_))
    ));
}
