//! Shared set-up for the criterion benchmarks in `benches/`.
//!
//! Parameter sets: our presets, plus bench-only literals that reproduce the peers' settings of
//! `../shared/peers/bench_common.py` (q0 60 bits, 40-bit scale primes, 60-bit special primes) so
//! ratios compare the same work: N=2^13: 60 + 2x40, P 60; N=2^14: 60 + 7x40, P 60 (our
//! `leveled-n14`); N=2^15: 60 + 16x40, P 3x60; N=2^16: 60 + 35x40, P 60 (as SEAL's script; log2 QP
//! = 1520 <= 1761). All are checked by `Params::new` (128-bit).
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

/// Nineteen more primes near 2^40 (= 1 mod 2^17, alternating above and below), for the N=2^16
/// peer chain. Found by searching outward from 2^40 in steps of 2^17 with Miller-Rabin;
/// `Params::new` re-checks primality.
const Q40_MORE: [u64; 19] = [
    0x0100_00ce_0001,
    0x00ff_ff34_0001,
    0x0100_00de_0001,
    0x00ff_feb6_0001,
    0x0100_010a_0001,
    0x00ff_feb0_0001,
    0x0100_0168_0001,
    0x00ff_fe9e_0001,
    0x0100_0176_0001,
    0x00ff_fe86_0001,
    0x0100_018c_0001,
    0x00ff_fe68_0001,
    0x0100_0194_0001,
    0x00ff_fe62_0001,
    0x0100_01bc_0001,
    0x00ff_fe4a_0001,
    0x0100_01be_0001,
    0x00ff_fe2c_0001,
    0x0100_01e0_0001,
];

const fn peer_n16_q() -> [u64; 36] {
    let mut out = [0u64; 36];
    out[0] = primes::Q60;
    let mut i = 0;
    while i < 12 {
        out[1 + i] = primes::Q40[i];
        i += 1;
    }
    let mut i = 0;
    while i < 4 {
        out[13 + i] = Q40_EXTRA[i];
        i += 1;
    }
    let mut i = 0;
    while i < 19 {
        out[17 + i] = Q40_MORE[i];
        i += 1;
    }
    out
}
const PEER_N16_Q: [u64; 36] = peer_n16_q();

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

/// The peers' parameter set for log2 N in 13..=16 (anything else: `leveled-n14`).
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
        16 => ParamsLiteral {
            id: 0x7e10,
            name: "bench-peer-n16",
            log_n: 16,
            q: &PEER_N16_Q,
            p: &[primes::P60],
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
        for log_n in 13..=16 {
            let p = clifhe_core::Params::new(super::peer_literal(log_n)).unwrap();
            assert!(p.log_qp() <= p.security_bound().unwrap() as f64);
        }
    }
}
