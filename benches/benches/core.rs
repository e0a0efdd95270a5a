//! clifhe-core: NTT per N, public seed expansion, encoding, encryption (public-key and seeded),
//! decryption, keygen.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use clifhe_benches::{fixture, peer_literal};
use clifhe_core::arith::{F64Reducer, Modulus};
use clifhe_core::decrypt::decrypt;
use clifhe_core::encode::{encode_real, encode_scratch_len, Complex};
use clifhe_core::encrypt::{encrypt_pk, encrypt_sk_expanded, encrypt_sk_seeded, ExpandedSecretKey, Plaintext};
use clifhe_core::ntt::{set_avx2_on_avx512, set_ifma_enabled, set_simd_enabled, NttTable};
use clifhe_core::params::{presets, primes};
use clifhe_core::sample::{expand_public_into, expand_uniform, public_stream, SeedPurpose};
use clifhe_core::{PublicKey, SecretKey};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::time::Duration;

fn ntt(c: &mut Criterion) {
    let mut g = c.benchmark_group("ntt");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(1))
        .warm_up_time(Duration::from_millis(300));
    for log_n in 10..=16 {
        let n = 1usize << log_n;
        let t = NttTable::new(primes::Q60, n).unwrap();
        let mut v: Vec<u64> = (0..n as u64).map(|i| i * 7919 % primes::Q60).collect();
        g.bench_with_input(BenchmarkId::new("forward", n), &n, |b, _| b.iter(|| t.forward(&mut v).unwrap()));
        g.bench_with_input(BenchmarkId::new("inverse", n), &n, |b, _| b.iter(|| t.inverse(&mut v).unwrap()));
        // A 40-bit prime: the AVX-512 IFMA passes where the CPU has them.
        let t40 = NttTable::new(primes::Q40[0], n).unwrap();
        let mut v40: Vec<u64> = (0..n as u64).map(|i| i * 7919 % primes::Q40[0]).collect();
        g.bench_with_input(BenchmarkId::new("forward-q40", n), &n, |b, _| {
            b.iter(|| t40.forward(&mut v40).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("inverse-q40", n), &n, |b, _| {
            b.iter(|| t40.inverse(&mut v40).unwrap())
        });
        // The AVX2 passes (what a CPU without AVX-512 runs; on one with IFMA, both primes'
        // default is an IFMA path, `ntt_path`); same results.
        set_ifma_enabled(false);
        set_avx2_on_avx512(true);
        g.bench_with_input(BenchmarkId::new("forward-avx2", n), &n, |b, _| {
            b.iter(|| t.forward(&mut v).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("inverse-avx2", n), &n, |b, _| {
            b.iter(|| t.inverse(&mut v).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("forward-q40-avx2", n), &n, |b, _| {
            b.iter(|| t40.forward(&mut v40).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("inverse-q40-avx2", n), &n, |b, _| {
            b.iter(|| t40.inverse(&mut v40).unwrap())
        });
        set_ifma_enabled(true);
        set_avx2_on_avx512(false);
        // The scalar reference path (what the firmware and CPUs without AVX2 run).
        set_simd_enabled(false);
        g.bench_with_input(BenchmarkId::new("forward-scalar", n), &n, |b, _| {
            b.iter(|| t.forward(&mut v).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("inverse-scalar", n), &n, |b, _| {
            b.iter(|| t.inverse(&mut v).unwrap())
        });
        set_simd_enabled(true);
    }
    g.finish();
}

/// One uniform limb of 2^16 words from a public seed (what a compact key regenerates per limb
/// inside a key switch): the whole-limb expansion (sixteen ChaCha20 blocks per step on AVX-512
/// CPUs) against the same stream drawn word by word through `rand_chacha`, and the expansion
/// for a prime that rejects about half of the candidates.
fn expand(c: &mut Criterion) {
    let mut g = c.benchmark_group("expand");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(1))
        .warm_up_time(Duration::from_millis(300));
    let m = Modulus::new(primes::P61[0]).unwrap();
    let seed = [3u8; 32];
    let mut a = vec![0u64; 1 << 16];
    g.bench_function("limb-2^16", |b| {
        b.iter(|| expand_public_into(&seed, SeedPurpose::KeySwitchA, 7, &m, &mut a))
    });
    g.bench_function("limb-2^16-rand_chacha", |b| {
        b.iter(|| expand_uniform(&mut public_stream(&seed, SeedPurpose::KeySwitchA, 7), &m, &mut a))
    });
    // A prime just above a power of two (half of private-n15's scale primes, a third of the
    // bootstrap chain's 40-bit ones): about half the candidates are rejected.
    let half = Modulus::new(primes::Q55[0]).unwrap();
    g.bench_function("limb-2^16-half-accepted", |b| {
        b.iter(|| expand_public_into(&seed, SeedPurpose::KeySwitchA, 7, &half, &mut a))
    });
    g.finish();
}

/// The reduction of the f64 encoder's integer coefficients to one prime (what every encryption
/// at a scale beyond 2^63 does per coefficient and prime): a 2^15-slot vector encoded at 2^85.
fn reduce_f64(c: &mut Criterion) {
    let n = 1 << 16;
    let values: Vec<f64> = (0..n / 2).map(|i| ((i * 7919) % 1000) as f64 / 500.0 - 1.0).collect();
    let mut coeffs = vec![0f64; n];
    let mut scratch = vec![Complex::default(); encode_scratch_len(n / 2)];
    encode_real(&values, n, 2f64.powi(85), &mut coeffs, &mut scratch).unwrap();
    let m = Modulus::new(primes::Q55[0]).unwrap();
    let mut out = vec![0u64; n];
    let mut g = c.benchmark_group("arith");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(1))
        .warm_up_time(Duration::from_millis(300));
    g.bench_function("reduce f64 x 2^16 (scale 2^85)", |b| {
        b.iter(|| {
            let r = F64Reducer::new(&m);
            out.iter_mut().zip(&coeffs).for_each(|(o, &v)| *o = r.reduce(v))
        })
    });
    g.finish();
}

fn per_preset(c: &mut Criterion) {
    let lits = [
        peer_literal(13),
        presets::LEVELED_N14,
        peer_literal(15),
        peer_literal(16),
        presets::PRIVATE_N15,
        presets::BOOTSTRAP_N16,
        presets::DEVICE_N12,
    ];
    for lit in lits {
        let mut f = fixture(lit);
        let params = *f.ectx.params();
        let name = params.name();
        let mut g = c.benchmark_group(format!("core/{name}"));
        g.sample_size(10)
            .measurement_time(Duration::from_secs(2))
            .warm_up_time(Duration::from_millis(300));
        let values: Vec<f64> = (0..params.max_slots()).map(|i| ((i % 13) as f64 - 6.0) / 6.0).collect();
        let mut coeffs = vec![0f64; params.n()];
        let mut scratch = vec![Complex::default(); encode_scratch_len(values.len())];
        g.bench_function("encode", |b| {
            b.iter(|| encode_real(&values, params.n(), params.default_scale(), &mut coeffs, &mut scratch).unwrap())
        });
        let top = params.max_level();
        g.bench_function("encode+encrypt pk", |b| {
            b.iter(|| {
                let pt = Plaintext::encode_real(&params, &values, params.default_scale()).unwrap();
                encrypt_pk(&params, f.ectx.q_tables(), &f.pk, &pt, top, &mut f.rng).unwrap()
            })
        });
        g.bench_function("encode+encrypt seeded sk", |b| {
            b.iter(|| {
                let pt = Plaintext::encode_real(&params, &values, params.default_scale()).unwrap();
                encrypt_sk_seeded(&params, f.ectx.q_tables(), &f.sk, &pt, top, &mut f.rng).unwrap()
            })
        });
        // A host that holds its key transforms it once for all its encryptions.
        let key = ExpandedSecretKey::new(&params, f.ectx.q_tables(), &f.sk, top).unwrap();
        g.bench_function("encode+encrypt seeded sk, key expanded", |b| {
            b.iter(|| {
                let pt = Plaintext::encode_real(&params, &values, params.default_scale()).unwrap();
                encrypt_sk_expanded(&params, f.ectx.q_tables(), &key, &pt, top, &mut f.rng).unwrap()
            })
        });
        g.bench_function("decrypt+decode (top level)", |b| {
            b.iter(|| decrypt(f.ectx.core(), &f.sk, &f.ct).unwrap().decode().unwrap())
        });
        g.bench_function("keygen sk+pk", |b| {
            b.iter(|| {
                let sk = SecretKey::generate(&params, &mut f.rng).unwrap();
                PublicKey::generate(&params, f.ectx.q_tables(), &sk, &mut f.rng).unwrap()
            })
        });
        g.finish();
    }
}

criterion_group!(benches, ntt, expand, reduce_f64, per_preset);
criterion_main!(benches);
