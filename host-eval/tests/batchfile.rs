//! The batch reader (`clifhe_std::protocol::batch`) (`encrypt --profile` output) on damaged input: every truncation, bit
//! flips and random bytes are typed errors, never a panic or a huge allocation; an intact file
//! round trips.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use clifhe_core::context::Context;
use clifhe_core::encrypt::{encrypt_pk, Plaintext};
use clifhe_core::{wire, Params, PublicKey, SecretKey};
use clifhe_std::gnn::InputBox;
use clifhe_std::protocol::batch::{self as batchfile, BatchHeader};
use clifhe_std::protocol::profile::{InputProfile, ProfileInput, PROFILE_FORMAT};
use clifhe_std::protocol::{BatchLayout, ProtocolError};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

fn fixture() -> (Params, Vec<u8>) {
    let params = Params::from_name("device-n12").unwrap();
    let ctx = Context::new(params).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let sk = SecretKey::generate(&params, &mut rng).unwrap();
    let pk = PublicKey::generate(&params, ctx.q_tables(), &sk, &mut rng).unwrap();
    let input = ProfileInput::InputBox(InputBox {
        center: [0.5; 8],
        half_width: [0.25; 8],
    });
    let profile = InputProfile {
        format: PROFILE_FORMAT.into(),
        preset: params.name().into(),
        circuit_private: false,
        layout: BatchLayout::BladeMajor,
        input_level: 1,
        input_log_scale: 30.0,
        result_level: 0,
        result_log_scale: 30.0,
        fingerprint: String::new(),
        preprocessing: None,
        input,
        capacity: params.max_slots(),
        rotations: Vec::new(),
        classes: 2,
        labels: vec!["a".into(), "b".into()],
    }
    .with_fingerprint();
    let blades: Vec<Vec<u8>> = (0..8)
        .map(|k| {
            let v: Vec<f64> = (0..params.max_slots()).map(|s| ((s + k) % 5) as f64 * 0.1).collect();
            let pt = Plaintext::encode_real(&params, &v, 2f64.powi(30)).unwrap();
            let ct = encrypt_pk(&params, ctx.q_tables(), &pk, &pt, 1, &mut rng).unwrap();
            wire::ciphertext_to_bytes(&params, &ct).unwrap()
        })
        .collect();
    let bytes = batchfile::to_bytes(&BatchHeader::new(&profile, 3), &blades).unwrap();
    (params, bytes)
}

fn parse(params: &Params, bytes: &[u8]) -> Result<(), ProtocolError> {
    batchfile::parse(params, bytes).map(|_| ())
}

#[test]
fn intact_batch_round_trips() {
    let (params, bytes) = fixture();
    let (h, cts) = batchfile::parse(&params, &bytes).unwrap();
    assert_eq!(h.patients, 3);
    assert_eq!(cts.len(), 8);
    assert!(cts.iter().all(|c| c.meta.level == 1));
    // Another preset's key set: named, not "corrupt".
    let other = Params::from_name("leveled-n14").unwrap();
    assert!(matches!(
        batchfile::parse(&other, &bytes),
        Err(ProtocolError::PresetMismatch { .. })
    ));
}

#[test]
fn every_truncation_and_trailing_bytes_are_errors() {
    let (params, bytes) = fixture();
    // Every prefix through the header and the first length fields, then a stride over the body.
    let cuts = (0..400.min(bytes.len())).chain((400..bytes.len()).step_by(997));
    for cut in cuts {
        assert!(parse(&params, &bytes[..cut]).is_err(), "prefix of {cut} bytes accepted");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(parse(&params, &longer).is_err());
}

#[test]
fn flipped_bits_and_random_bytes_never_panic() {
    let (params, bytes) = fixture();
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let header_end = 12 + u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
    for i in 0..2000 {
        let mut b = bytes.clone();
        // Half the flips in the magic, header and length fields, where parsing decisions are made.
        let pos = if i % 2 == 0 {
            rng.next_u32() as usize % (header_end + 16)
        } else {
            rng.next_u32() as usize % b.len()
        };
        b[pos] ^= 1 << (rng.next_u32() % 8);
        let _ = parse(&params, &b);
    }
    // Length fields set to huge values: refused without allocating.
    let mut b = bytes.clone();
    b[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(parse(&params, &b).is_err());
    let mut b = bytes.clone();
    b[header_end..header_end + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(parse(&params, &b).is_err());
    for len in [0, 7, 8, 12, 100, 5000] {
        let mut r = vec![0u8; len];
        rng.fill_bytes(&mut r);
        assert!(parse(&params, &r).is_err());
        if len >= 8 {
            r[..8].copy_from_slice(&batchfile::MAGIC);
            assert!(parse(&params, &r).is_err());
        }
    }
}
