//! Bootstrapping, step by step and whole, against f64 references.
//!
//! CI runs these at `INSECURE-test-boot-n12` (N=2^12, the N=2^16 chain's shape). The same code
//! at the real 128-bit preset is the opt-in timing run in `bootstrap_heavy.rs`:
//! `CLIFHE_HEAVY=1 cargo test --release -p clifhe-std --test bootstrap_heavy`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bootstrap_support;
mod common;
use bootstrap_support::{bootstrapper, full_bootstrap, setup};
use clifhe_core::ciphertext::CiphertextOwned;
use clifhe_core::encode::Complex;
use clifhe_core::encrypt::Plaintext;
use clifhe_core::params::presets;
use clifhe_std::bootstrap::evalmod::EvalModPoly;
use clifhe_std::bootstrap::test_double::SecretKeyBootstrapper;
use clifhe_std::bootstrap::{BootstrapKeys, RealSlots};
use clifhe_std::keys::rotation_galois_element;
use clifhe_std::{EvalError, Evaluator};
use common::precision;
use std::time::Instant;

#[test]
fn reports_depth_levels_and_exact_galois_elements() {
    let s = setup(presets::INSECURE_TEST_BOOT_N12);
    let bt = bootstrapper(&s, None);
    // 3 CoeffsToSlots + 7 polynomial + 2 double angle + 3 SlotsToCoeffs
    assert_eq!(bt.depth(), 15);
    assert_eq!(bt.min_input_level(), 0);
    assert_eq!(bt.output_level(), s.ectx.max_level() - 15);
    let keys = bt.generate_keys(&s.sk, &mut *s.rng.borrow_mut()).unwrap();
    let mut have: Vec<usize> = keys.galois.elements().collect();
    have.sort_unstable();
    assert_eq!(have, bt.galois_elements().unwrap());
    // the dense-to-sparse key lives at q0 * p0 and nowhere else
    let enc = keys.encapsulation.as_ref().unwrap();
    let p = s.ectx.params();
    assert_eq!(enc.dense_to_sparse.moduli(), [p.q()[0], p.p()[0]]);
    assert!(keys.memory_bytes() > 0);
    // a key set without one of the elements is a typed error, not a panic
    let mut partial = BootstrapKeys {
        relinearization: keys.relinearization,
        galois: clifhe_std::GaloisKeys::default(),
        encapsulation: keys.encapsulation,
    };
    let v = s.values(1 << bt.log_slots());
    let ct = s.encrypt_at(&v, 0, p.default_scale());
    assert!(matches!(bt.bootstrap(&ct, &partial), Err(EvalError::MissingGaloisKey { .. })));
    partial.encapsulation = None;
    assert!(bt.bootstrap(&ct, &partial).is_err());
}

#[test]
fn keys_round_trip_seed_compressed_one_file_per_key() {
    let s = setup(presets::INSECURE_TEST_BOOT_N12);
    let bt = bootstrapper(&s, Some(5));
    let keys = bt.generate_keys(&s.sk, &mut *s.rng.borrow_mut()).unwrap();
    let dir = std::env::temp_dir().join(format!("clifhe-boot-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    keys.write_dir(&s.ectx, &dir).unwrap();
    let on_disk: u64 = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    let files = std::fs::read_dir(&dir).unwrap().count();
    // relinearization + encapsulation + one per Galois element
    assert_eq!(files, 2 + bt.galois_elements().unwrap().len());
    // seed compression: b only, bit-packed (the Galois keys are held compact in memory too)
    assert!(on_disk < keys.memory_bytes() as u64, "{on_disk} vs {}", keys.memory_bytes());
    assert_eq!(on_disk as usize, keys.serialized_bytes(&s.ectx));
    let loaded = BootstrapKeys::read_dir(&bt, &dir).unwrap();
    let p = *s.ectx.params();
    let v = s.values(1 << bt.log_slots());
    let ct = s.encrypt_at(&v, 0, p.default_scale());
    let a = bt.bootstrap(&ct, &keys).unwrap();
    let b = bt.bootstrap(&ct, &loaded).unwrap();
    assert_eq!(a.c0.as_slice(), b.c0.as_slice());
    assert_eq!(a.c1.as_slice(), b.c1.as_slice());
    // a truncated encapsulation file is a typed error
    let enc = dir.join(clifhe_std::bootstrap::ENCAPSULATION_KEY_FILE);
    let bytes = std::fs::read(&enc).unwrap();
    std::fs::write(&enc, &bytes[..bytes.len() - 1]).unwrap();
    assert!(matches!(BootstrapKeys::read_dir(&bt, &dir), Err(EvalError::Wire(_))));
    std::fs::remove_file(dir.join(clifhe_std::bootstrap::RELINEARIZATION_KEY_FILE)).unwrap();
    assert!(matches!(BootstrapKeys::read_dir(&bt, &dir), Err(EvalError::Io(_))));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn compact_keys_switch_bit_for_bit_like_expanded_ones() {
    let s = setup(presets::INSECURE_TEST_BOOT_N12);
    let ev = Evaluator::new(&s.ectx);
    let mut gk = clifhe_std::GaloisKeys::for_rotations(&s.ectx, &s.sk, &[3], true, &mut *s.rng.borrow_mut()).unwrap();
    let v = s.values(s.ectx.n() / 2);
    let ct = s.encrypt_at(&v, s.ectx.max_level(), (1u64 << 40) as f64);
    let full = (
        ev.rotate(&ct, 3, &gk).unwrap(),
        ev.conjugate(&ct, &gk).unwrap(),
        ev.rotate_hoisted(&ct, &[3], &gk).unwrap(),
    );
    let before = gk.memory_bytes();
    gk.compact();
    assert_eq!(gk.memory_bytes() * 2, before);
    let compact = (
        ev.rotate(&ct, 3, &gk).unwrap(),
        ev.conjugate(&ct, &gk).unwrap(),
        ev.rotate_hoisted(&ct, &[3], &gk).unwrap(),
    );
    for (a, b) in [(&full.0, &compact.0), (&full.1, &compact.1), (&full.2[0], &compact.2[0])] {
        assert_eq!(a.c0.as_slice(), b.c0.as_slice());
        assert_eq!(a.c1.as_slice(), b.c1.as_slice());
    }
}

/// `KeyStorage::Expanded` keeps the Galois keys' `a` halves (twice the memory, also after
/// `read_dir`) and bootstraps to the same words as the default compact keys.
#[test]
fn expanded_bootstrap_keys_bootstrap_bit_for_bit_like_compact_ones() {
    use clifhe_std::{BootstrapLiteral, Bootstrapper, KeyStorage};
    use rand_chacha::rand_core::SeedableRng;
    let s = setup(presets::INSECURE_TEST_BOOT_N12);
    let lit = |galois_key_storage| BootstrapLiteral {
        log_slots: Some(4),
        galois_key_storage,
        ..BootstrapLiteral::default()
    };
    let compact = Bootstrapper::new(&s.ectx, lit(KeyStorage::Compact)).unwrap();
    let expanded = Bootstrapper::new(&s.ectx, lit(KeyStorage::Expanded)).unwrap();
    // the same seed: the same keys, held two ways
    let keys_c = compact
        .generate_keys(&s.sk, &mut rand_chacha::ChaCha20Rng::seed_from_u64(5))
        .unwrap();
    let keys_e = expanded
        .generate_keys(&s.sk, &mut rand_chacha::ChaCha20Rng::seed_from_u64(5))
        .unwrap();
    assert_eq!(keys_e.galois.memory_bytes(), 2 * keys_c.galois.memory_bytes());
    let v = s.values(1 << 4);
    let ct = s.encrypt_at(&v, 0, (1u64 << 40) as f64);
    let (a, b) = (compact.bootstrap(&ct, &keys_c).unwrap(), expanded.bootstrap(&ct, &keys_e).unwrap());
    assert!(a.c0.as_slice() == b.c0.as_slice() && a.c1.as_slice() == b.c1.as_slice());
    let dir = std::env::temp_dir().join(format!("clifhe-boot-storage-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    keys_c.write_dir(&s.ectx, &dir).unwrap();
    let read_e = BootstrapKeys::read_dir(&expanded, &dir).unwrap();
    let read_c = BootstrapKeys::read_dir(&compact, &dir).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(read_e.galois.memory_bytes(), keys_e.galois.memory_bytes());
    assert_eq!(read_c.galois.memory_bytes(), keys_c.galois.memory_bytes());
}

#[test]
fn coeffs_to_slots_then_slots_to_coeffs_is_the_identity() {
    let s = setup(presets::INSECURE_TEST_BOOT_N12);
    let bt = bootstrapper(&s, None);
    let keys = bt.generate_keys(&s.sk, &mut *s.rng.borrow_mut()).unwrap();
    let ev = Evaluator::new(&s.ectx);
    let v = s.values(1 << bt.log_slots());
    let top = s.ectx.max_level();
    let ct = s.encrypt_at(&v, top, (1u64 << 50) as f64);
    let parts = bt.coeffs_to_slots(&ct, &keys).unwrap();
    assert!(matches!(parts, RealSlots::Split { .. }));
    let stc_level = bt.output_level() + 3;
    let parts = parts.try_map(|c| ev.drop_to_level(c, stc_level)).unwrap();
    let back = bt.slots_to_coeffs(&parts, &keys).unwrap();
    assert_eq!(back.meta.level, bt.output_level());
    let (min, mean) = precision(&s.decrypt(&back), &v);
    println!("CtS o StC: min {min:.1} mean {mean:.1} bits");
    assert!(min > 20.0, "{min}");
}

#[test]
fn mod_raise_adds_multiples_of_q0_bounded_by_k() {
    // ModRaise (with encapsulation), SubSum for sparse slots, then CoeffsToSlots: every slot is
    // t_k / (q0 K) with t_k = m_k + q0 I_k, |I_k| <= K, and t_k mod q0 = the message coefficient.
    let s = setup(presets::INSECURE_TEST_BOOT_N12);
    for log_slots in [None, Some(5)] {
        let bt = bootstrapper(&s, log_slots);
        let keys = bt.generate_keys(&s.sk, &mut *s.rng.borrow_mut()).unwrap();
        let p = *s.ectx.params();
        let slots = 1usize << bt.log_slots();
        let v = s.values(slots);
        let ct = s.encrypt_at(&v, 0, p.default_scale());
        let down = bt.scale_down(&ct).unwrap();
        assert_eq!(down.meta.level, 0);
        let raised = bt.raise(&down, &keys).unwrap();
        assert_eq!(raised.meta.level, p.max_level());
        let summed = bt.sub_sum(&raised, &keys).unwrap();
        // the real parts then the imaginary parts: two ciphertexts at full slots, one of 2n
        // slots for sparse slots
        let got: Vec<Complex> = match bt.coeffs_to_slots(&summed, &keys).unwrap() {
            RealSlots::Split { re, im } => {
                assert_eq!(slots, p.n() / 2);
                [s.decrypt(&re), s.decrypt(&im)].concat()
            }
            RealSlots::Packed(w) => {
                assert!(slots < p.n() / 2);
                assert_eq!(w.meta.log_slots, bt.log_slots() + 1);
                s.decrypt(&w)
            }
        };
        assert_eq!(got.len(), 2 * slots);
        let k = bt.literal().k;
        let q0 = p.q()[0] as f64;
        // the message coefficients in bit-reversed order, as fractions of q0
        let pt = Plaintext::encode(&p, &v, down.meta.scale).unwrap();
        let gap = p.n() / (2 * slots);
        let bits = slots.trailing_zeros();
        let mut max_i: f64 = 0.0;
        let mut worst_frac: f64 = 0.0;
        for (part, got) in got.chunks(slots).enumerate() {
            for (slot, g) in got.iter().enumerate() {
                let x = g.re * k; // t / q0
                let i = x.round();
                max_i = max_i.max(i.abs());
                let j = if bits == 0 {
                    0
                } else {
                    slot.reverse_bits() >> (usize::BITS - bits)
                };
                let coeff = (j + part * slots) * gap;
                worst_frac = worst_frac.max(((x - i) - pt.coeffs()[coeff] / q0).abs());
            }
        }
        println!("{} slots: max |I| = {max_i}, worst fractional error {worst_frac:e}", slots);
        assert!(max_i <= k, "{max_i}");
        assert!(worst_frac < 1e-7, "{worst_frac}");
    }
}

#[test]
fn eval_mod_matches_its_plaintext_polynomial() {
    let s = setup(presets::INSECURE_TEST_BOOT_N12);
    let ev = Evaluator::new(&s.ectx);
    let rlk = clifhe_std::RelinearizationKey::generate(&s.ectx, &s.sk, &mut *s.rng.borrow_mut()).unwrap();
    // the uniform interpolant and the default near-integer fit
    for poly in [
        EvalModPoly::new(16.0, 63, 2),
        EvalModPoly::near_integers(16.0, 31, 3, (33.0f64 / 12.0).sqrt()),
    ] {
        let slots = s.ectx.n() / 2;
        let level = s.ectx.max_level() - 3;
        let q = s.ectx.params().q()[level] as f64;
        // y = (I + e) / K: integers plus small offsets, and a few arbitrary points
        let y: Vec<Complex> = (0..slots)
            .map(|j| {
                let i = (j % 33) as f64 - 16.0;
                let e = ((j * 7919) % 1000) as f64 * 1e-6 - 5e-4;
                Complex::from_real(if j % 5 == 0 {
                    (j as f64 / slots as f64) * 2.0 - 1.0
                } else {
                    (i + e) / 16.0
                })
            })
            .collect();
        let ct = s.encrypt_at(&y, level, q);
        let out = poly.eval(&ev, &ct, &rlk).unwrap();
        assert_eq!(out.meta.level, level - poly.depth());
        let got = s.decrypt(&out);
        let want: Vec<Complex> = y.iter().map(|v| Complex::from_real(poly.eval_plain(v.re))).collect();
        let (min, mean) = precision(&got, &want);
        println!("EvalMod vs plaintext polynomial: min {min:.1} mean {mean:.1} bits");
        assert!(min > 25.0, "degree {}: {min}", poly.coeffs.len() - 1);
    }
}

#[test]
fn bootstraps_full_slots_at_the_test_preset() {
    let s = setup(presets::INSECURE_TEST_BOOT_N12);
    full_bootstrap(&s, None, 8.0, 12.0);
}

#[test]
fn bootstraps_sparse_slots_at_the_test_preset() {
    let s = setup(presets::INSECURE_TEST_BOOT_N12);
    for log_slots in [3, 7] {
        full_bootstrap(&s, Some(log_slots), 8.0, 12.0);
    }
}

#[test]
fn secret_key_double_returns_the_same_message_at_the_output_level() {
    let s = setup(presets::INSECURE_TEST_BOOT_N12);
    let bt = bootstrapper(&s, None);
    let p = *s.ectx.params();
    let double = SecretKeyBootstrapper::new(&s.ectx, &s.sk, bt.output_level(), p.default_scale()).unwrap();
    let v = s.values(p.n() / 2);
    let ct = s.encrypt_at(&v, 0, p.default_scale());
    let out = double.bootstrap(&ct, &mut *s.rng.borrow_mut()).unwrap();
    assert_eq!(out.meta.level, bt.output_level());
    let (min, _) = precision(&s.decrypt(&out), &v);
    assert!(min > 20.0);
}

/// Several sparse-slot ciphertexts through one bootstrap (`Bootstrapper::bootstrap_packed`):
/// each comes back with its own message at the output level, at about the precision of a
/// bootstrap of its own; fewer inputs than the capacity prune the unpacking tree.
#[test]
fn packed_bootstrap_refreshes_several_sparse_ciphertexts_at_once() {
    let s = setup(presets::INSECURE_TEST_BOOT_N12);
    let p = *s.ectx.params();
    // (bootstrapper slots, input slots, inputs): 8 x 256 = full slots; 3 x 256 in 1024 slots
    for (log_bt, log_in, count) in [(None, 8u32, 8usize), (Some(10), 8, 3)] {
        let bt = bootstrapper(&s, log_bt);
        let mut keys = bt.generate_keys(&s.sk, &mut *s.rng.borrow_mut()).unwrap();
        let vs: Vec<Vec<Complex>> = (0..count).map(|_| s.values(1 << log_in)).collect();
        let cts: Vec<CiphertextOwned> = vs.iter().map(|v| s.encrypt_at(v, 0, p.default_scale())).collect();
        if bt
            .packing_rotations(log_in)
            .unwrap()
            .iter()
            .any(|&r| keys.galois.get(rotation_galois_element(r, p.n()).unwrap()).is_err())
        {
            // without the packing keys the unpacking is a typed error, not a wrong answer
            assert!(matches!(bt.bootstrap_packed(&cts, &keys), Err(EvalError::MissingGaloisKey { .. })));
        }
        bt.generate_packing_keys(&mut keys, &s.sk, log_in, &mut *s.rng.borrow_mut())
            .unwrap();
        let t = Instant::now();
        let out = bt.bootstrap_packed(&cts, &keys).unwrap();
        let elapsed = t.elapsed();
        assert_eq!(out.len(), count);
        let steps = bt.packing_rotations(log_in).unwrap().len();
        let want_scale = bt.output_scale(p.default_scale()).unwrap() * (1u64 << steps) as f64;
        let mut worst = (f64::INFINITY, f64::INFINITY);
        for (o, v) in out.iter().zip(&vs) {
            assert_eq!((o.meta.level, o.meta.log_slots), (bt.output_level(), log_in));
            assert!((o.meta.scale / want_scale - 1.0).abs() < 1e-9);
            let (min, mean) = precision(&s.decrypt(o), v);
            worst = (worst.0.min(min), worst.1.min(mean));
        }
        println!(
            "{count} ciphertexts of {} slots in one bootstrap of {} slots: {elapsed:.2?}; worst min {:.2} / mean {:.2} bits",
            1 << log_in,
            1 << bt.log_slots(),
            worst.0,
            worst.1
        );
        assert!(worst.0 >= 7.0 && worst.1 >= 11.0, "{worst:?}");
        // more inputs than the slots hold, and inputs of mixed slot counts, are refused
        let mut too_many = cts.clone();
        too_many.extend(cts.iter().cloned().cycle().take((1 << steps) + 1 - count));
        assert!(matches!(bt.bootstrap_packed(&too_many, &keys), Err(EvalError::Invalid(_))));
        let mut mixed = cts.clone();
        mixed[0].meta.log_slots -= 1;
        assert!(matches!(bt.bootstrap_packed(&mixed, &keys), Err(EvalError::SlotsMismatch)));
    }
}
