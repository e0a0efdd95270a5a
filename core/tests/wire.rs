//! Wire format: round trips, a golden hash pinning format and algorithms, and fuzz-style
//! robustness (random, truncated and bit-flipped input never panics the reader).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use clifhe_core::context::Context;
use clifhe_core::encrypt::{encrypt_pk, encrypt_sk_seeded, Plaintext};
use clifhe_core::params::presets;
use clifhe_core::wire::{self, WireError};
use clifhe_core::{Params, PublicKey, SecretKey};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha256};

struct Fixture {
    params: Params,
    pk: Vec<u8>,
    ct: Vec<u8>,
    sct: Vec<u8>,
}

/// Everything derived from fixed seeds, so the bytes are a pure function of the code.
fn fixture(lit: clifhe_core::ParamsLiteral) -> Fixture {
    let params = Params::new(lit).unwrap();
    let ctx = Context::new(params).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(2026);
    let sk = SecretKey::generate(&params, &mut rng).unwrap();
    let pk = PublicKey::generate(&params, ctx.q_tables(), &sk, &mut rng).unwrap();
    // Integer coefficients, independent of the encoder: 1000 * (i mod 7) - 3000.
    let coeffs: Vec<f64> = (0..params.n()).map(|i| 1000.0 * (i % 7) as f64 - 3000.0).collect();
    let pt = Plaintext::from_coeffs(coeffs, params.default_scale(), 3).unwrap();
    let ct = encrypt_pk(&params, ctx.q_tables(), &pk, &pt, params.max_level(), &mut rng).unwrap();
    let sct = encrypt_sk_seeded(&params, ctx.q_tables(), &sk, &pt, 0, &mut rng).unwrap();
    Fixture {
        params,
        pk: wire::public_key_to_bytes(&params, &pk).unwrap(),
        ct: wire::ciphertext_to_bytes(&params, &ct).unwrap(),
        sct: wire::seeded_ciphertext_to_bytes(&params, &sct).unwrap(),
    }
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn round_trips_are_exact() {
    let f = fixture(presets::DEVICE_N12);
    let pk = wire::public_key_from_bytes(&f.params, &f.pk).unwrap();
    assert_eq!(wire::public_key_to_bytes(&f.params, &pk).unwrap(), f.pk);
    let ct = wire::ciphertext_from_bytes(&f.params, &f.ct).unwrap();
    assert_eq!(wire::ciphertext_to_bytes(&f.params, &ct).unwrap(), f.ct);
    let sct = wire::seeded_ciphertext_from_bytes(&f.params, &f.sct).unwrap();
    assert_eq!(wire::seeded_ciphertext_to_bytes(&f.params, &sct).unwrap(), f.sct);
    // Sizes: 60- and 40-bit... primes bit-packed; the seeded form is about half.
    let n = f.params.n();
    assert_eq!(f.ct.len(), 32 + 2 * n * (60 + 41) / 8);
    assert_eq!(f.sct.len(), 32 + 32 + n * 60 / 8);
}

/// Golden hashes: any change to the byte format, the samplers, the NTT or the key/encryption
/// algorithms changes them. Update only with a format version bump or a documented reason.
#[test]
fn golden_hashes() {
    let f = fixture(presets::DEVICE_N12);
    let got = [
        hex(&Sha256::digest(&f.pk)),
        hex(&Sha256::digest(&f.ct)),
        hex(&Sha256::digest(&f.sct)),
    ];
    println!("golden: {got:?}");
    assert_eq!(got, GOLDEN);
}

const GOLDEN: [&str; 3] = [
    "dd0ae98b8e9a7451f105e8d4ad62551282ac3b7d070a41b6c0225cad34aaf5c4",
    "e9d20db5b1de95c525d59f139fa8dccde1e4bb21b07c04916e69f8cf098d689e",
    "4664b31f61cb420f4c68923873097eb74d5253f3cd938374c94337c823a02e1b",
];

#[test]
fn wrong_params_kind_and_insecure_flag_are_refused() {
    let f = fixture(presets::DEVICE_N12);
    let p14 = Params::new(presets::LEVELED_N14).unwrap();
    assert!(matches!(
        wire::ciphertext_from_bytes(&p14, &f.ct),
        Err(WireError::ParamsMismatch { .. })
    ));
    assert!(matches!(
        wire::ciphertext_from_bytes(&f.params, &f.pk),
        Err(WireError::WrongKind { .. })
    ));
    let mut flagged = f.ct.clone();
    flagged[9] |= wire::FLAG_INSECURE;
    assert!(matches!(
        wire::ciphertext_from_bytes(&f.params, &flagged),
        Err(WireError::InsecureRefused)
    ));
    let mut trailing = f.ct.clone();
    trailing.push(0);
    assert!(matches!(
        wire::ciphertext_from_bytes(&f.params, &trailing),
        Err(WireError::TrailingBytes)
    ));
    // A coefficient >= q: set the first 60 bits of c0 to all ones.
    let mut bad = f.ct.clone();
    for b in &mut bad[32..40] {
        *b = 0xff;
    }
    assert!(matches!(wire::ciphertext_from_bytes(&f.params, &bad), Err(WireError::NonCanonical)));
}

#[test]
fn insecure_objects_carry_the_flag() {
    let f = fixture(presets::INSECURE_TEST_N10);
    assert_eq!(f.ct[9] & wire::FLAG_INSECURE, wire::FLAG_INSECURE);
    // Accepted here only because tests build with `insecure-test-params`.
    assert!(wire::ciphertext_from_bytes(&f.params, &f.ct).is_ok());
}

#[test]
fn truncated_random_and_flipped_input_never_panics() {
    let f = fixture(presets::INSECURE_TEST_N10);
    let p = f.params;
    for obj in [&f.pk, &f.ct, &f.sct] {
        for len in (0..obj.len()).step_by(7).chain([obj.len() - 1]) {
            let cut = &obj[..len];
            assert!(wire::ciphertext_from_bytes(&p, cut).is_err());
            assert!(wire::seeded_ciphertext_from_bytes(&p, cut).is_err());
            assert!(wire::public_key_from_bytes(&p, cut).is_err());
            assert!(wire::import_secret_key(&p, cut).is_err() || len == 64);
        }
    }
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    for _ in 0..3000 {
        let pick = [&f.pk, &f.ct, &f.sct][(rng.next_u32() % 3) as usize];
        let mut m = pick.clone();
        // Flip a few bits, biased toward the header where the checks are.
        for _ in 0..1 + rng.next_u32() % 4 {
            let pos = if rng.next_u32() % 2 == 0 {
                (rng.next_u32() % 32) as usize
            } else {
                (rng.next_u64() % m.len() as u64) as usize
            };
            m[pos] ^= 1 << (rng.next_u32() % 8);
        }
        let _ = wire::ciphertext_from_bytes(&p, &m);
        let _ = wire::seeded_ciphertext_from_bytes(&p, &m);
        let _ = wire::public_key_from_bytes(&p, &m);
        let _ = wire::import_secret_key(&p, &m);
        let len = (rng.next_u32() % 200) as usize;
        let junk: Vec<u8> = (0..len).map(|_| rng.next_u32() as u8).collect();
        assert!(wire::ciphertext_from_bytes(&p, &junk).is_err());
    }
    // A header declaring an enormous body is refused before any allocation.
    let mut huge = f.ct[..32].to_vec();
    huge[24..32].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(wire::ciphertext_from_bytes(&p, &huge), Err(WireError::BodyLength { .. })));
}

/// Keys have exactly one encoding: every header field the writer fixes (level, log2(slots),
/// scale) is refused with a typed error when it holds anything else, and every accepted key
/// re-encodes to the same bytes.
#[test]
fn key_headers_are_canonical() {
    use wire::KeyField;
    let f = fixture(presets::DEVICE_N12);
    let p = f.params;
    let mut rng = ChaCha20Rng::seed_from_u64(12);
    let sk = SecretKey::generate(&p, &mut rng).unwrap();
    let sk_bytes = wire::export_secret_key(&p, &sk).unwrap();
    let again = wire::import_secret_key(&p, &sk_bytes).unwrap();
    assert_eq!(*wire::export_secret_key(&p, &again).unwrap(), *sk_bytes);
    assert_eq!(sk_bytes.len(), 64);

    let with = |bytes: &[u8], at: usize, value: &[u8]| {
        let mut m = bytes.to_vec();
        m[at..at + value.len()].copy_from_slice(value);
        m
    };
    // A level that passes the generic header check but is not the one keys carry.
    assert!(p.max_level() > 0, "the preset needs a second level for this test");
    let other_level = p.max_level() as u16 - 1;
    let cases: [(usize, Vec<u8>, KeyField); 5] = [
        (10, 1u16.to_le_bytes().to_vec(), KeyField::Level),
        (12, vec![1], KeyField::LogSlots),
        (16, 2.0f64.to_bits().to_le_bytes().to_vec(), KeyField::Scale),
        (16, (1.0f64.to_bits() + 1).to_le_bytes().to_vec(), KeyField::Scale),
        (12, vec![(p.log_n() - 1) as u8], KeyField::LogSlots),
    ];
    for (at, value, field) in &cases {
        let bad_sk = with(&sk_bytes, *at, value);
        assert!(
            matches!(wire::import_secret_key(&p, &bad_sk), Err(WireError::NonCanonicalKeyHeader(x)) if x == *field),
            "secret key seed, {field:?}"
        );
    }
    for (at, value, field) in &cases {
        let value = if *field == KeyField::Level {
            other_level.to_le_bytes().to_vec()
        } else {
            value.clone()
        };
        let bad_pk = with(&f.pk, *at, &value);
        assert!(
            matches!(wire::public_key_from_bytes(&p, &bad_pk), Err(WireError::NonCanonicalKeyHeader(x)) if x == *field),
            "public key, {field:?}"
        );
    }
    // Ciphertexts keep their level, slots and scale: the same edits are accepted there.
    let ct = with(&f.sct, 12, &[1]);
    assert!(wire::seeded_ciphertext_from_bytes(&p, &ct).is_ok());
    // A coefficient of the public key >= its prime is refused too.
    let mut bad = f.pk.clone();
    for b in &mut bad[64..72] {
        *b = 0xff;
    }
    assert!(matches!(wire::public_key_from_bytes(&p, &bad), Err(WireError::NonCanonical)));
}
