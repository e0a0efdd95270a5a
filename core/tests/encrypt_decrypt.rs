//! Encryption/decryption precision per preset and mode, streaming equivalence, key/params checks.

#![allow(clippy::unwrap_used, clippy::expect_used)]
use clifhe_core::context::Context;
use clifhe_core::decrypt::decrypt;
use clifhe_core::encrypt::{
    encrypt_pk, encrypt_pk_expanded, encrypt_sk_expanded, encrypt_sk_seeded, ExpandedPublicA, ExpandedSecretKey, PkEncryptionNoise,
    PkStreamEncryptor, Plaintext, SkStreamEncryptor,
};
use clifhe_core::params::presets;
use clifhe_core::wire;
use clifhe_core::{Error, Params, PublicKey, SecretKey};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// Precision in bits: -log2 of the absolute error, (min over slots, mean over slots).
fn precision_bits(got: &[f64], want: &[f64]) -> (f64, f64) {
    let bits: Vec<f64> = got
        .iter()
        .zip(want)
        .map(|(g, w)| -((g - w).abs().max(f64::EPSILON)).log2())
        .collect();
    let min = bits.iter().cloned().fold(f64::INFINITY, f64::min);
    (min, bits.iter().sum::<f64>() / bits.len() as f64)
}

fn random_values(rng: &mut ChaCha20Rng, k: usize) -> Vec<f64> {
    (0..k).map(|_| (rng.next_u64() as f64 / u64::MAX as f64) * 2.0 - 1.0).collect()
}

fn check_preset(lit: clifhe_core::ParamsLiteral, min_bits: f64, mean_bits: f64) {
    let params = Params::new(lit).unwrap();
    let ctx = Context::new(params).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(42);
    let sk = SecretKey::generate(&params, &mut rng).unwrap();
    let pk = PublicKey::generate(&params, ctx.q_tables(), &sk, &mut rng).unwrap();
    for log_slots in [3, params.log_n() - 1] {
        let values = random_values(&mut rng, 1 << log_slots);
        let pt = Plaintext::encode_real(&params, &values, params.default_scale()).unwrap();
        for level in [0, params.max_level()] {
            let ct = encrypt_pk(&params, ctx.q_tables(), &pk, &pt, level, &mut rng).unwrap();
            let got = decrypt(&ctx, &sk, &ct).unwrap().decode_real().unwrap();
            let (min, mean) = precision_bits(&got, &values);
            println!(
                "{} pk  slots 2^{log_slots} level {level}: min {min:.1} mean {mean:.1} bits",
                params.name()
            );
            assert!(min >= min_bits && mean >= mean_bits, "{} pk: min {min} mean {mean}", params.name());

            let sct = encrypt_sk_seeded(&params, ctx.q_tables(), &sk, &pt, level, &mut rng).unwrap();
            let got = decrypt(&ctx, &sk, &sct.expand(&params).unwrap()).unwrap().decode_real().unwrap();
            let (min, mean) = precision_bits(&got, &values);
            println!(
                "{} sk  slots 2^{log_slots} level {level}: min {min:.1} mean {mean:.1} bits",
                params.name()
            );
            assert!(
                min >= min_bits + 1.0 && mean >= mean_bits + 1.0,
                "{} sk: min {min} mean {mean}",
                params.name()
            );
        }
    }
}

#[test]
fn precision_leveled_n14() {
    check_preset(presets::LEVELED_N14, 19.0, 22.0);
}

#[test]
fn precision_device_n12() {
    check_preset(presets::DEVICE_N12, 20.0, 23.0);
}

#[test]
fn precision_private_n15() {
    // Scale 2^55: the same absolute noise is 15 bits smaller relative to the message.
    check_preset(presets::PRIVATE_N15, 33.0, 36.0);
}

#[test]
fn precision_test_presets() {
    check_preset(presets::INSECURE_TEST_N10, 22.0, 25.0);
    check_preset(presets::INSECURE_TEST_N12, 21.0, 24.0);
}

#[test]
fn streamed_encryption_is_byte_identical_to_one_shot() {
    let params = Params::new(presets::LEVELED_N14).unwrap();
    let ctx = Context::new(params).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let sk = SecretKey::generate(&params, &mut rng).unwrap();
    let pk = PublicKey::generate(&params, ctx.q_tables(), &sk, &mut rng).unwrap();
    let values = random_values(&mut rng, 8);
    let pt = Plaintext::encode_real(&params, &values, params.default_scale()).unwrap();
    let level = params.max_level();

    let one_shot = encrypt_pk(&params, ctx.q_tables(), &pk, &pt, level, &mut ChaCha20Rng::seed_from_u64(99)).unwrap();
    let one_shot_bytes = wire::ciphertext_to_bytes(&params, &one_shot).unwrap();

    // The device way: O(N) buffers, each prime packed and emitted as soon as it is ready.
    let n = params.n();
    let mut stream_rng = ChaCha20Rng::seed_from_u64(99);
    let noise = PkEncryptionNoise::sample_into(&mut stream_rng, vec![0i8; n], vec![0i8; n], vec![0i8; n]).unwrap();
    let enc = PkStreamEncryptor::new(&params, &pk, &pt, noise).unwrap();
    let (mut u_hat, mut limb) = (vec![0u64; n], vec![0u64; n]);
    let body = wire::body_bytes(&params, level, 2);
    let header = wire::Header {
        params_id: params.id(),
        kind: wire::Kind::Ciphertext,
        insecure: false,
        level: level as u16,
        log_slots: 3,
        scale: params.default_scale(),
        body_len: body as u64,
    };
    let mut streamed = header.to_bytes().to_vec();
    for (i, table) in ctx.q_tables().iter().enumerate() {
        let bits = 64 - params.q()[i].leading_zeros();
        let mut packed = vec![0u8; wire::limb_bytes(n, bits)];
        enc.prepare_prime(i, table, &mut u_hat).unwrap();
        enc.c0_limb(i, table, &u_hat, &mut limb).unwrap();
        wire::pack_limb(&limb, bits, &mut packed).unwrap();
        streamed.extend_from_slice(&packed);
        enc.c1_limb(i, table, &u_hat, &mut limb).unwrap();
        wire::pack_limb(&limb, bits, &mut packed).unwrap();
        streamed.extend_from_slice(&packed);
    }
    assert_eq!(streamed, one_shot_bytes);
    // With the key's `a` expanded once beforehand (a host encrypting many messages): the same
    // words, at the top level and below it.
    let a = ExpandedPublicA::new(&params, ctx.q_tables(), &pk, level).unwrap();
    for at in [level, 2] {
        let expanded = encrypt_pk_expanded(&params, ctx.q_tables(), &pk, &a, &pt, at, &mut ChaCha20Rng::seed_from_u64(99)).unwrap();
        let plain = encrypt_pk(&params, ctx.q_tables(), &pk, &pt, at, &mut ChaCha20Rng::seed_from_u64(99)).unwrap();
        assert_eq!(
            wire::ciphertext_to_bytes(&params, &expanded).unwrap(),
            wire::ciphertext_to_bytes(&params, &plain).unwrap()
        );
    }
    let back = wire::ciphertext_from_bytes(&params, &streamed).unwrap();
    let got = decrypt(&ctx, &sk, &back).unwrap().decode_real().unwrap();
    assert!(precision_bits(&got, &values).0 > 19.0);
}

#[test]
fn seeded_secret_key_encryption_is_the_same_words_every_way() {
    let params = Params::new(presets::LEVELED_N14).unwrap();
    let ctx = Context::new(params).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let sk = SecretKey::generate(&params, &mut rng).unwrap();
    let values = random_values(&mut rng, 8);
    let pt = Plaintext::encode_real(&params, &values, params.default_scale()).unwrap();
    let n = params.n();
    let key = ExpandedSecretKey::new(&params, ctx.q_tables(), &sk, params.max_level()).unwrap();
    for level in [params.max_level(), 2] {
        let seeded = encrypt_sk_seeded(&params, ctx.q_tables(), &sk, &pt, level, &mut ChaCha20Rng::seed_from_u64(7)).unwrap();
        // The device's two streaming ways, prime by prime.
        let mut stream_rng = ChaCha20Rng::seed_from_u64(7);
        let enc = SkStreamEncryptor::new(&params, &sk, &pt, vec![0i8; n], &mut stream_rng).unwrap();
        assert_eq!(enc.c1_seed(), &seeded.c1_seed);
        let (mut s_hat, mut limb, mut in_place) = (vec![0u64; n], vec![0u64; n], vec![0u64; n]);
        for (i, table) in ctx.q_tables().iter().enumerate().take(level + 1) {
            enc.c0_limb(i, table, &mut s_hat, &mut limb).unwrap();
            enc.c0_limb_in_place(i, table, &mut in_place).unwrap();
            assert_eq!(Some(&limb[..]), seeded.c0.limb(i), "prime {i}");
            assert_eq!(limb, in_place, "prime {i}");
        }
        // The host's way with the key transformed once: the same c0 and seed, and its c1 is the
        // seed's expansion.
        let expanded = encrypt_sk_expanded(&params, ctx.q_tables(), &key, &pt, level, &mut ChaCha20Rng::seed_from_u64(7)).unwrap();
        let regenerated = seeded.expand(&params).unwrap();
        assert_eq!(
            wire::ciphertext_to_bytes(&params, &expanded.ciphertext).unwrap(),
            wire::ciphertext_to_bytes(&params, &regenerated).unwrap()
        );
        let got = decrypt(&ctx, &sk, &expanded.ciphertext).unwrap().decode_real().unwrap();
        assert!(precision_bits(&got, &values).0 > 20.0);
        let back = expanded.into_seeded();
        assert_eq!(back.c1_seed, seeded.c1_seed);
        assert_eq!(back.c0.limbs(), level + 1);
        for i in 0..=level {
            assert_eq!(back.c0.limb(i), seeded.c0.limb(i));
        }
    }
    // Typed refusals: a key transformed for another parameter set, or below the level asked for.
    let p12 = Params::new(presets::DEVICE_N12).unwrap();
    let ctx12 = Context::new(p12).unwrap();
    let sk12 = SecretKey::generate(&p12, &mut rng).unwrap();
    let key12 = ExpandedSecretKey::new(&p12, ctx12.q_tables(), &sk12, 0).unwrap();
    assert!(matches!(
        encrypt_sk_expanded(&params, ctx.q_tables(), &key12, &pt, 0, &mut rng),
        Err(Error::ParamsMismatch { .. })
    ));
    let pt12 = Plaintext::encode_real(&p12, &values, p12.default_scale()).unwrap();
    assert!(matches!(
        encrypt_sk_expanded(&p12, ctx12.q_tables(), &key12, &pt12, 1, &mut rng),
        Err(Error::LevelOutOfRange { .. })
    ));
    assert!(matches!(
        ExpandedSecretKey::new(&params, ctx.q_tables(), &sk12, 0),
        Err(Error::ParamsMismatch { .. })
    ));
    assert!(matches!(
        ExpandedSecretKey::new(&p12, ctx12.q_tables(), &sk12, 2),
        Err(Error::LevelOutOfRange { .. })
    ));
}

#[test]
fn mismatches_are_typed_errors() {
    let p14 = Params::new(presets::LEVELED_N14).unwrap();
    let p12 = Params::new(presets::DEVICE_N12).unwrap();
    let ctx14 = Context::new(p14).unwrap();
    let ctx12 = Context::new(p12).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let sk14 = SecretKey::generate(&p14, &mut rng).unwrap();
    let sk12 = SecretKey::generate(&p12, &mut rng).unwrap();
    let pk12 = PublicKey::generate(&p12, ctx12.q_tables(), &sk12, &mut rng).unwrap();
    // A key for another parameter set.
    assert!(matches!(
        PublicKey::generate(&p14, ctx14.q_tables(), &sk12, &mut rng),
        Err(Error::ParamsMismatch { .. })
    ));
    let pt = Plaintext::encode_real(&p12, &[0.5; 8], p12.default_scale()).unwrap();
    let ct = encrypt_pk(&p12, ctx12.q_tables(), &pk12, &pt, 1, &mut rng).unwrap();
    assert!(matches!(decrypt(&ctx14, &sk14, &ct), Err(Error::ParamsMismatch { .. })));
    assert!(matches!(decrypt(&ctx12, &sk14, &ct), Err(Error::ParamsMismatch { .. })));
    // Level past the chain.
    assert!(matches!(
        encrypt_pk(&p12, ctx12.q_tables(), &pk12, &pt, 2, &mut rng),
        Err(Error::LevelOutOfRange { .. })
    ));
    // An expanded `a` of another key, or one that stops below the level asked for.
    let pk12b = PublicKey::generate(&p12, ctx12.q_tables(), &sk12, &mut rng).unwrap();
    let a0 = ExpandedPublicA::new(&p12, ctx12.q_tables(), &pk12b, 0).unwrap();
    assert!(matches!(
        encrypt_pk_expanded(&p12, ctx12.q_tables(), &pk12, &a0, &pt, 0, &mut rng),
        Err(Error::KeyMismatch)
    ));
    assert!(matches!(
        encrypt_pk_expanded(&p12, ctx12.q_tables(), &pk12b, &a0, &pt, 1, &mut rng),
        Err(Error::LevelOutOfRange { .. })
    ));
    assert!(matches!(
        ExpandedPublicA::new(&p14, ctx14.q_tables(), &pk12, 0),
        Err(Error::ParamsMismatch { .. })
    ));
    // Wrong-size plaintext buffer (a power of two below N is a compact message, not an error).
    let bad = Plaintext::from_coeffs(vec![0.0; 24], 2f64.powi(40), 3).unwrap();
    assert!(matches!(
        encrypt_pk(&p12, ctx12.q_tables(), &pk12, &bad, 0, &mut rng),
        Err(Error::BufferLength { .. })
    ));
    assert!(Plaintext::from_coeffs(vec![f64::NAN; 4096], 2f64.powi(40), 3).is_err());
}

#[test]
fn secret_key_round_trips_only_through_its_seed() {
    let params = Params::new(presets::DEVICE_N12).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let sk = SecretKey::generate(&params, &mut rng).unwrap();
    let bytes = wire::export_secret_key(&params, &sk).unwrap();
    assert_eq!(bytes.len(), wire::HEADER_BYTES + 32);
    let back = wire::import_secret_key(&params, &bytes).unwrap();
    assert_eq!(back.coeffs(), sk.coeffs());
    assert!(format!("{sk:?}").find("coeffs").is_none());
}

/// The device's integer path (fixed-point values -> `encode_real_fixed` -> `i64` plaintext)
/// gives the float path's coefficients, hence byte-identical ciphertexts for the same
/// randomness, at the device preset and at the host's N=2^14 preset.
#[test]
fn integer_encoded_plaintext_encrypts_like_the_float_one() {
    use clifhe_core::encode::fixed::{encode_real_fixed, fixed_scratch_len, to_fixed, FRAC_BITS};
    for lit in [presets::DEVICE_N12, presets::LEVELED_N14] {
        let params = Params::new(lit).unwrap();
        let ctx = Context::new(params).unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let sk = SecretKey::generate(&params, &mut rng).unwrap();
        let pk = PublicKey::generate(&params, ctx.q_tables(), &sk, &mut rng).unwrap();
        // Feature-like values, exactly representable in both formats.
        let fixed: Vec<i64> = random_values(&mut rng, 8).iter().map(|v| to_fixed(v * 3.0)).collect();
        let values: Vec<f64> = fixed.iter().map(|&v| v as f64 / 2f64.powi(FRAC_BITS as i32)).collect();
        let n = params.n();
        let mut coeffs = vec![0i64; n];
        let mut scratch = vec![0i64; fixed_scratch_len(8)];
        encode_real_fixed(&fixed, 8, n, params.log_default_scale(), &mut coeffs, &mut scratch).unwrap();
        let pt_int = Plaintext::from_fixed(coeffs, params.log_default_scale(), 3).unwrap();
        assert_eq!(pt_int.scale(), params.default_scale());
        let pt_float = Plaintext::encode_real(&params, &values, params.default_scale()).unwrap();
        let level = params.max_level();
        let a = encrypt_pk(&params, ctx.q_tables(), &pk, &pt_int, level, &mut ChaCha20Rng::seed_from_u64(5)).unwrap();
        let b = encrypt_pk(&params, ctx.q_tables(), &pk, &pt_float, level, &mut ChaCha20Rng::seed_from_u64(5)).unwrap();
        assert_eq!(
            wire::ciphertext_to_bytes(&params, &a).unwrap(),
            wire::ciphertext_to_bytes(&params, &b).unwrap(),
            "{}",
            params.name()
        );
        let got = decrypt(&ctx, &sk, &a).unwrap().decode_real().unwrap();
        assert!(precision_bits(&got, &values).0 > 19.0, "{}", params.name());
    }
}

/// A device's low-RAM public-key path: the message held compactly (the 2s coefficients of an
/// s-slot plaintext instead of N) and each limb computed in one N-word buffer through an
/// inverse transform. Both give exactly the words of the usual path, prime by prime, and the
/// seeded secret-key stream takes the compact message too.
#[test]
fn compact_message_and_in_place_limbs_equal_the_usual_path() {
    use clifhe_core::encode::fixed::{encode_real_fixed, fixed_scratch_len, to_fixed};
    use clifhe_core::encrypt::SkStreamEncryptor;
    for lit in [presets::DEVICE_N12, presets::LEVELED_N14] {
        let params = Params::new(lit).unwrap();
        let ctx = Context::new(params).unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let sk = SecretKey::generate(&params, &mut rng).unwrap();
        let pk = PublicKey::generate(&params, ctx.q_tables(), &sk, &mut rng).unwrap();
        let values: Vec<i64> = random_values(&mut rng, 8).iter().map(|v| to_fixed(*v)).collect();
        let (n, log_scale) = (params.n(), params.log_default_scale());
        let mut scratch = vec![0i64; fixed_scratch_len(8)];
        let mut full = vec![0i64; n];
        encode_real_fixed(&values, 8, n, log_scale, &mut full, &mut scratch).unwrap();
        let mut compact = vec![0i64; 16];
        encode_real_fixed(&values, 8, 16, log_scale, &mut compact, &mut scratch).unwrap();
        let gap = n / 16;
        assert!(full
            .iter()
            .enumerate()
            .all(|(i, &c)| if i % gap == 0 { c == compact[i / gap] } else { c == 0 }));
        let pt_full = Plaintext::from_fixed(full, log_scale, 3).unwrap();
        let pt_compact = Plaintext::from_fixed(compact, log_scale, 3).unwrap();

        let noise =
            |seed| PkEncryptionNoise::sample_into(&mut ChaCha20Rng::seed_from_u64(seed), vec![0i8; n], vec![0i8; n], vec![0i8; n]).unwrap();
        let usual = PkStreamEncryptor::new(&params, &pk, &pt_full, noise(3)).unwrap();
        let low_ram = PkStreamEncryptor::new(&params, &pk, &pt_compact, noise(3)).unwrap();
        let (mut u_hat, mut a, mut b) = (vec![0u64; n], vec![0u64; n], vec![0u64; n]);
        for (i, table) in ctx.q_tables().iter().enumerate() {
            usual.prepare_prime(i, table, &mut u_hat).unwrap();
            usual.c0_limb(i, table, &u_hat, &mut a).unwrap();
            low_ram.c0_limb_in_place(i, table, &mut b).unwrap();
            assert_eq!(a, b, "{} c0 prime {i}", params.name());
            usual.c1_limb(i, table, &u_hat, &mut a).unwrap();
            low_ram.c1_limb_in_place(i, table, &mut b).unwrap();
            assert_eq!(a, b, "{} c1 prime {i}", params.name());
        }
        let sk_full = SkStreamEncryptor::new(&params, &sk, &pt_full, vec![0i8; n], &mut ChaCha20Rng::seed_from_u64(4)).unwrap();
        let sk_compact = SkStreamEncryptor::new(&params, &sk, &pt_compact, vec![0i8; n], &mut ChaCha20Rng::seed_from_u64(4)).unwrap();
        let mut s_hat = vec![0u64; n];
        let table = &ctx.q_tables()[0];
        sk_full.c0_limb(0, table, &mut s_hat, &mut a).unwrap();
        sk_compact.c0_limb(0, table, &mut s_hat, &mut b).unwrap();
        assert_eq!(a, b, "{} seeded sk c0", params.name());
    }
    // Not a power of two, or longer than N: refused.
    let params = Params::new(presets::DEVICE_N12).unwrap();
    let ctx = Context::new(params).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let sk = SecretKey::generate(&params, &mut rng).unwrap();
    let pk = PublicKey::generate(&params, ctx.q_tables(), &sk, &mut rng).unwrap();
    let n = params.n();
    for len in [0, 12, 2 * n] {
        let pt = Plaintext::from_fixed(vec![0i64; len], 40, 3).unwrap();
        let noise = PkEncryptionNoise::sample_into(&mut rng, vec![0i8; n], vec![0i8; n], vec![0i8; n]).unwrap();
        assert!(
            matches!(PkStreamEncryptor::new(&params, &pk, &pt, noise), Err(Error::BufferLength { .. })),
            "len {len}"
        );
    }
}
