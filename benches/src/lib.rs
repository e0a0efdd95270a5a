//! Shared set-up for the criterion benchmarks in `benches/`.
//!
//! Parameter sets: our presets, plus bench-only literals that reproduce the peers' settings of
//! `../shared/peers/bench_common.py` (q0 60 bits, 40-bit scale primes, 60-bit special primes) so
//! ratios compare the same work: N=2^13: 60 + 2x40, P 60; N=2^14: 60 + 7x40, P 60 (our
//! `leveled-n14`); N=2^15: 60 + 16x40, P 3x60. All are checked by `Params::new` (128-bit).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use clifhe_core::ciphertext::CiphertextOwned;
use clifhe_core::encrypt::{encrypt_pk, Plaintext};
use clifhe_core::params::{presets, primes, ParamsLiteral, SecretDistribution};
use clifhe_core::{Params, PublicKey, SecretKey};
use clifhe_std::EvalContext;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// Four more primes near 2^40 (= 1 mod 2^17), for the N=2^15 peer chain.
const Q40_EXTRA: [u64; 4] = [0x00ff_ff58_0001, 0x0100_00b6_0001, 0x00ff_ff48_0001, 0x00ff_ff42_0001];

const PEER_N13_Q: [u64; 3] = [primes::Q60, primes::Q40[0], primes::Q40[1]];
const PEER_N15_Q: [u64; 17] = [
    primes::Q60,
    primes::Q40[0],
    primes::Q40[1],
    primes::Q40[2],
    primes::Q40[3],
    primes::Q40[4],
    primes::Q40[5],
    primes::Q40[6],
    primes::Q40[7],
    primes::Q40[8],
    primes::Q40[9],
    primes::Q40[10],
    primes::Q40[11],
    Q40_EXTRA[0],
    Q40_EXTRA[1],
    Q40_EXTRA[2],
    Q40_EXTRA[3],
];

/// The peers' parameter set for log2 N in 13..=15.
pub fn peer_literal(log_n: u32) -> ParamsLiteral {
    match log_n {
        13 => ParamsLiteral {
            id: 0x7e0d,
            name: "bench-peer-n13",
            log_n: 13,
            q: &PEER_N13_Q,
            p: &[primes::P60],
            log_default_scale: 40,
            secret: SecretDistribution::UniformTernary,
            insecure: false,
        },
        15 => ParamsLiteral {
            id: 0x7e0f,
            name: "bench-peer-n15",
            log_n: 15,
            q: &PEER_N15_Q,
            p: &[primes::Q60_BOOT[0], primes::P60, primes::Q60_BOOT[1]],
            log_default_scale: 40,
            secret: SecretDistribution::UniformTernary,
            insecure: false,
        },
        _ => presets::LEVELED_N14,
    }
}

/// Keys and a full-slot ciphertext at the top level.
pub struct Fixture {
    pub ectx: EvalContext,
    pub sk: SecretKey<Vec<i8>>,
    pub pk: PublicKey<Vec<u64>>,
    pub ct: CiphertextOwned,
    pub rng: ChaCha20Rng,
}

pub fn fixture(lit: ParamsLiteral) -> Fixture {
    let params = Params::new(lit).unwrap();
    let ectx = EvalContext::new(params).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let sk = SecretKey::generate(&params, &mut rng).unwrap();
    let pk = PublicKey::generate(&params, ectx.q_tables(), &sk, &mut rng).unwrap();
    let values: Vec<f64> = (0..params.max_slots()).map(|i| ((i % 17) as f64 - 8.0) / 8.0).collect();
    let pt = Plaintext::encode_real(&params, &values, params.default_scale()).unwrap();
    let ct = encrypt_pk(&params, ectx.q_tables(), &pk, &pt, params.max_level(), &mut rng).unwrap();
    Fixture { ectx, sk, pk, ct, rng }
}

#[cfg(test)]
mod tests {
    #[test]
    fn peer_literals_are_valid_128_bit_sets() {
        for log_n in 13..=15 {
            let p = clifhe_core::Params::new(super::peer_literal(log_n)).unwrap();
            assert!(p.log_qp() <= p.security_bound().unwrap() as f64);
        }
    }
}
