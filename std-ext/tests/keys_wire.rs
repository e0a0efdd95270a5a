//! Evaluation-key files: one canonical encoding per key, capped reads, and typed errors (not
//! index panics) for parameter sets without special primes or with a too-sparse ephemeral
//! secret (security review, issue 12).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use clifhe_core::encrypt::{encrypt_pk, Plaintext};
use clifhe_core::params::presets;
use clifhe_core::wire::{Header, KeyField, Kind, WireError};
use clifhe_core::{Params, PublicKey, SecretKey};
use clifhe_std::bootstrap::encapsulation::EncapsulationKeys;
use clifhe_std::bootstrap::MIN_EPHEMERAL_HAMMING_WEIGHT;
use clifhe_std::keys_wire::{encapsulation_key_file_bytes, galois_key_file_name, switching_key_file_bytes};
use clifhe_std::{BootstrapLiteral, Bootstrapper, EvalContext, EvalError, Evaluator, GaloisKeys, RelinearizationKey};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// `bytes` with `value` written at `at`.
fn with(bytes: &[u8], at: usize, value: &[u8]) -> Vec<u8> {
    let mut m = bytes.to_vec();
    m[at..at + value.len()].copy_from_slice(value);
    m
}

/// Every header field a key writer fixes, edited to another value the generic header check
/// accepts: (offset, new bytes, field).
fn key_field_edits(params: &Params) -> Vec<(usize, Vec<u8>, KeyField)> {
    let other_level = params.max_level() as u16 - 1;
    vec![
        (10, other_level.to_le_bytes().to_vec(), KeyField::Level),
        (12, vec![1], KeyField::LogSlots),
        (16, 2.0f64.to_bits().to_le_bytes().to_vec(), KeyField::Scale),
        (16, (1.0f64.to_bits() + 1).to_le_bytes().to_vec(), KeyField::Scale),
    ]
}

fn is_field(r: Result<impl Sized, EvalError>, field: KeyField) -> bool {
    matches!(r, Err(EvalError::Wire(WireError::NonCanonicalKeyHeader(f))) if f == field)
}

#[test]
fn evaluation_key_headers_are_canonical() {
    let params = Params::new(presets::INSECURE_TEST_N10).unwrap();
    let ectx = EvalContext::new(params).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(12);
    let sk = SecretKey::generate(&params, &mut rng).unwrap();
    let rlk = RelinearizationKey::generate(&ectx, &sk, &mut rng).unwrap();
    let gks = GaloisKeys::for_rotations(&ectx, &sk, &[1], false, &mut rng).unwrap();
    let g = gks.elements().next().unwrap();
    let enc = EncapsulationKeys::generate(&ectx, &sk, MIN_EPHEMERAL_HAMMING_WEIGHT, &mut rng).unwrap();
    let rbytes = rlk.to_bytes(&ectx).unwrap();
    let gbytes = gks.key_to_bytes(&ectx, g).unwrap();
    let ebytes = enc.to_bytes(&ectx).unwrap();

    // Accepted bytes re-encode to themselves.
    assert_eq!(
        RelinearizationKey::from_bytes(&ectx, &rbytes).unwrap().to_bytes(&ectx).unwrap(),
        rbytes
    );
    let mut loaded = GaloisKeys::default();
    assert_eq!(loaded.insert_from_bytes(&ectx, &gbytes).unwrap(), g);
    assert_eq!(loaded.key_to_bytes(&ectx, g).unwrap(), gbytes);
    assert_eq!(
        EncapsulationKeys::from_bytes(&ectx, &ebytes).unwrap().to_bytes(&ectx).unwrap(),
        ebytes
    );

    for (at, value, field) in key_field_edits(&params) {
        assert!(
            is_field(RelinearizationKey::from_bytes(&ectx, &with(&rbytes, at, &value)), field),
            "relin {field:?}"
        );
        let mut keys = GaloisKeys::default();
        assert!(
            is_field(keys.insert_from_bytes(&ectx, &with(&gbytes, at, &value)), field),
            "galois {field:?}"
        );
        assert!(
            is_field(EncapsulationKeys::from_bytes(&ectx, &with(&ebytes, at, &value)), field),
            "encapsulation {field:?}"
        );
    }
    // Non-canonical body values: a residue >= its prime, a nonzero relinearization element.
    let mut bad = rbytes.clone();
    for b in &mut bad[32 + 8 + 32..32 + 8 + 32 + 8] {
        *b = 0xff;
    }
    assert!(matches!(
        RelinearizationKey::from_bytes(&ectx, &bad),
        Err(EvalError::Wire(WireError::NonCanonical))
    ));
    let relin_as_nonzero = with(&rbytes, 32, &1u64.to_le_bytes());
    assert!(matches!(
        RelinearizationKey::from_bytes(&ectx, &relin_as_nonzero),
        Err(EvalError::Wire(WireError::NonCanonical))
    ));

    // Galois key files are read with a cap of one key file.
    let dir = std::env::temp_dir().join(format!("clifhe-keys-wire-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    gks.write_dir(&ectx, &dir).unwrap();
    assert_eq!(GaloisKeys::read_dir(&ectx, &dir, &[g]).unwrap().len(), 1);
    let path = dir.join(galois_key_file_name(g));
    let limit = switching_key_file_bytes(&ectx) as u64;
    let mut longer = gbytes.clone();
    longer.push(0);
    std::fs::write(&path, &longer).unwrap();
    assert!(matches!(GaloisKeys::read_dir(&ectx, &dir, &[g]), Err(EvalError::FileTooLarge { limit: l }) if l == limit));
    std::fs::write(&path, vec![0u8; 4 * limit as usize]).unwrap();
    assert!(matches!(
        GaloisKeys::read_dir(&ectx, &dir, &[g]),
        Err(EvalError::FileTooLarge { .. })
    ));
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(
        GaloisKeys::read_dir(&ectx, &dir, &[g]),
        Err(EvalError::MissingGaloisKey { galois_element }) if galois_element == g
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ephemeral_weight_below_32_is_refused() {
    let params = Params::new(presets::INSECURE_TEST_N10).unwrap();
    let ectx = EvalContext::new(params).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(13);
    let sk = SecretKey::generate(&params, &mut rng).unwrap();
    let too_small = MIN_EPHEMERAL_HAMMING_WEIGHT - 1;
    assert!(matches!(
        EncapsulationKeys::generate(&ectx, &sk, too_small, &mut rng),
        Err(EvalError::EphemeralWeightTooSmall { weight, min: 32 }) if weight == too_small
    ));
    let lit = BootstrapLiteral {
        ephemeral_hamming_weight: Some(4),
        ..BootstrapLiteral::default()
    };
    assert!(matches!(
        Bootstrapper::new(&ectx, lit),
        Err(EvalError::EphemeralWeightTooSmall { weight: 4, min: 32 })
    ));
}

/// A context for a parameter set without special primes can be built (it still adds and
/// rescales), but everything that needs them is a typed error, never an index panic.
#[test]
fn no_special_primes_is_a_typed_error() {
    let params = Params::new(presets::DEVICE_N12).unwrap();
    assert!(params.p().is_empty());
    let ectx = EvalContext::new(params).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(14);
    let sk = SecretKey::generate(&params, &mut rng).unwrap();
    let no_p = |r: Result<_, EvalError>| matches!(r, Err(EvalError::NoSpecialPrimes));
    assert!(no_p(ectx.p0_table().map(|_| ())));
    assert!(no_p(encapsulation_key_file_bytes(&ectx).map(|_| ())));
    assert!(no_p(EncapsulationKeys::from_bytes(&ectx, &[0u8; 64]).map(|_| ())));
    assert!(no_p(RelinearizationKey::generate(&ectx, &sk, &mut rng).map(|_| ())));
    assert!(no_p(EncapsulationKeys::generate(&ectx, &sk, 32, &mut rng).map(|_| ())));
    assert!(no_p(Bootstrapper::new(&ectx, BootstrapLiteral::default()).map(|_| ())));

    // A forged relinearization key file (all-zero body, canonical header) decodes, but
    // using it switches keys, which needs the special primes: a typed error.
    let body = switching_key_file_bytes(&ectx) - 32;
    let header = Header {
        params_id: params.id(),
        kind: Kind::RelinearizationKey,
        insecure: false,
        level: params.max_level() as u16,
        log_slots: 0,
        scale: 1.0,
        body_len: body as u64,
    };
    let mut forged = header.to_bytes().to_vec();
    forged.resize(32 + body, 0);
    let rlk = RelinearizationKey::from_bytes(&ectx, &forged).unwrap();
    let pk = PublicKey::generate(&params, ectx.q_tables(), &sk, &mut rng).unwrap();
    let pt = Plaintext::encode(&params, &[clifhe_core::encode::Complex::new(0.5, 0.0)], params.default_scale()).unwrap();
    let ct = encrypt_pk(&params, ectx.q_tables(), &pk, &pt, params.max_level(), &mut rng).unwrap();
    assert!(no_p(Evaluator::new(&ectx).mul_relin(&ct, &ct, &rlk).map(|_| ())));
}
