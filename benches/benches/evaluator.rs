//! clifhe-std: evaluator primitives on the peers' parameter sets, geometric products in the
//! blade-major layout (the peers' "GP" workloads) and the encrypted GNN on a full batch.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use clifhe_benches::{fixture, peer_literal};
use clifhe_core::multivector::{left_mul_matrix, Multivector};
use clifhe_core::params::presets;
use clifhe_std::gnn::encrypted::evaluate_blade_major;
use clifhe_std::gnn::{GnnModel, Normalisation};
use clifhe_std::{Evaluator, GaloisKeys, RelinearizationKey};
use criterion::{criterion_group, criterion_main, Criterion};
use std::time::Duration;

/// `CLIFHE_NTT=avx2` (no AVX-512 IFMA; AVX2 for every prime, as on a CPU without AVX-512) or `CLIFHE_NTT=scalar` measures the other NTT paths
/// on a host that has IFMA (the key-switching comparison reports both); results are the same.
fn ntt_path_from_env() {
    match std::env::var("CLIFHE_NTT").as_deref() {
        Ok("avx2") => {
            clifhe_core::ntt::set_ifma_enabled(false);
            clifhe_core::ntt::set_avx2_on_avx512(true);
        }
        Ok("scalar") => clifhe_core::ntt::set_simd_enabled(false),
        _ => {}
    }
}

fn primitives(c: &mut Criterion) {
    ntt_path_from_env();
    for log_n in 13..=15 {
        let mut f = fixture(peer_literal(log_n));
        let ev = Evaluator::new(&f.ectx);
        let rlk = RelinearizationKey::generate(&f.ectx, &f.sk, &mut f.rng).unwrap();
        let steps: Vec<i64> = (1..=8).collect();
        let gks = GaloisKeys::for_rotations(&f.ectx, &f.sk, &steps, false, &mut f.rng).unwrap();
        let pt = ev
            .encode_real(&vec![0.5; f.ectx.params().max_slots()], f.ct.meta.level, f.ct.meta.scale)
            .unwrap();
        let mut g = c.benchmark_group(format!("eval/N=2^{log_n}"));
        g.sample_size(10)
            .measurement_time(Duration::from_secs(3))
            .warm_up_time(Duration::from_millis(300));
        g.bench_function("relin-key gen", |b| {
            b.iter(|| RelinearizationKey::generate(&f.ectx, &f.sk, &mut f.rng).unwrap())
        });
        g.bench_function("ct*ct mul+relin", |b| b.iter(|| ev.mul_relin(&f.ct, &f.ct, &rlk).unwrap()));
        g.bench_function("rescale", |b| b.iter(|| ev.rescale(&f.ct).unwrap()));
        g.bench_function("rotate 1", |b| b.iter(|| ev.rotate(&f.ct, 1, &gks).unwrap()));
        g.bench_function("rotate hoisted x8", |b| b.iter(|| ev.rotate_hoisted(&f.ct, &steps, &gks).unwrap()));
        g.bench_function("ct*pt mul", |b| b.iter(|| ev.mul_plain(&f.ct, &pt).unwrap()));
        g.bench_function("ct*scalar mul", |b| b.iter(|| ev.mul_const_lazy(&f.ct, 0.37, 1024.0).unwrap()));
        if log_n == 15 {
            // The block layout's quadratic form, as one patient's first layer runs it on the
            // circuit-private preset: 8 rotations at level 7, 36 pair and 8 linear plaintexts
            // (44 distinct constant vectors, 2 MiB each).
            let level = 7.min(f.ct.meta.level);
            let z = ev.drop_to_level(&f.ct, level).unwrap();
            let zs: Vec<_> = (0..8).map(|_| z.clone()).collect();
            let slots = f.ectx.params().max_slots();
            let constant = |k: usize, scale: f64| {
                let v: Vec<f64> = (0..slots).map(|i| ((i * 7 + k * 13) % 17) as f64 / 17.0 - 0.5).collect();
                ev.encode_real(&v, level, scale).unwrap()
            };
            let quad: Vec<_> = (0..36).map(|k| constant(k, 2f64.powi(20))).collect();
            let lin: Vec<_> = (0..8).map(|k| constant(36 + k, 2f64.powi(20) * z.meta.scale)).collect();
            let (zr, qr, lr): (Vec<_>, Vec<_>, Vec<_>) = (zs.iter().collect(), quad.iter().collect(), lin.iter().collect());
            g.bench_function("block quadratic form (8 inputs, 44 plaintexts, level 7)", |b| {
                b.iter(|| ev.rotation_quadratic_form(&zr, &qr, &lr).unwrap())
            });
        }
        // Blade-major GP with a plaintext multivector: 8 outputs, each 8 scalar products
        // summed, one rescale each (the peers' "GP ct x scalar" workload).
        let x: Vec<_> = (0..8).map(|_| f.ct.clone()).collect();
        let w = left_mul_matrix(&Multivector::new([0.5, -0.25, 0.125, 0.3, -0.2, 0.1, 0.05, -0.4]));
        let top = f.ectx.params().q()[f.ct.meta.level] as f64;
        g.bench_function("GP blade-major ct x plaintext (64 mul-adds + 8 rescales)", |b| {
            b.iter(|| {
                let refs: Vec<_> = x.iter().collect();
                (0..8)
                    .map(|k| ev.rescale(&ev.linear_combination(&refs, &w[k], top).unwrap()).unwrap())
                    .collect::<Vec<_>>()
            })
        });
        // Blade-major GP ct x ct: 64 tensor products, 8 lazy relinearizations, 8 rescales.
        g.bench_function("GP blade-major ct x ct (64 tensors + 8 relin + 8 rescales)", |b| {
            b.iter(|| {
                (0..8)
                    .map(|k| {
                        let mut acc = None;
                        for (a, row) in clifhe_core::multivector::GP_TABLE.iter().enumerate() {
                            for (bb, &(r, _sign)) in row.iter().enumerate() {
                                if r as usize == k {
                                    let t = ev.tensor(&x[a], &x[bb]).unwrap();
                                    match &mut acc {
                                        None => acc = Some(t),
                                        Some(s) => ev.add_assign3(s, &t).unwrap(),
                                    }
                                }
                            }
                        }
                        ev.rescale(&ev.relinearize(&acc.unwrap(), &rlk).unwrap()).unwrap()
                    })
                    .collect::<Vec<_>>()
            })
        });
        g.finish();
    }
}

/// N=2^16 on the bootstrappable chain (28 primes at the top level, 6 special primes: 5 digits).
/// The peers' N=2^16 setting (60 + 35 x 40) needs more 40-bit primes than our chain has, so
/// these figures are ours alone.
fn primitives_n16(c: &mut Criterion) {
    let mut f = fixture(presets::BOOTSTRAP_N16);
    let ev = Evaluator::new(&f.ectx);
    let rlk = RelinearizationKey::generate(&f.ectx, &f.sk, &mut f.rng).unwrap();
    let gks = GaloisKeys::for_rotations(&f.ectx, &f.sk, &[1], false, &mut f.rng).unwrap();
    let mut g = c.benchmark_group("eval/N=2^16 bootstrap chain");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_millis(300));
    g.bench_function("ct*ct mul+relin (28 primes)", |b| {
        b.iter(|| ev.mul_relin(&f.ct, &f.ct, &rlk).unwrap())
    });
    g.bench_function("rescale (28 primes)", |b| b.iter(|| ev.rescale(&f.ct).unwrap()));
    g.bench_function("rotate 1 (28 primes)", |b| b.iter(|| ev.rotate(&f.ct, 1, &gks).unwrap()));
    g.finish();
}

fn gnn(c: &mut Criterion) {
    for lit in [presets::LEVELED_N14, presets::PRIVATE_N15] {
        let mut f = fixture(lit);
        let ev = Evaluator::new(&f.ectx);
        let rlk = RelinearizationKey::generate(&f.ectx, &f.sk, &mut f.rng).unwrap();
        let model = GnnModel::new_random(
            &[16, 8],
            3,
            vec!["a".into(), "b".into(), "c".into()],
            Normalisation::identity(),
            0.1,
            1.0,
            5,
        )
        .unwrap();
        let plan = model.plan();
        let x: Vec<_> = (0..8).map(|_| f.ct.clone()).collect();
        let mut g = c.benchmark_group(format!("gnn/{}", f.ectx.params().name()));
        g.sample_size(10)
            .measurement_time(Duration::from_secs(10))
            .warm_up_time(Duration::from_millis(500));
        g.bench_function(
            format!("encrypted GNN 1-16-8-3, full batch of {} patients", f.ectx.params().max_slots()),
            |b| b.iter(|| evaluate_blade_major(&ev, &rlk, &plan, &x).unwrap()),
        );
        g.finish();
    }
}

/// The basis conversion's sum of products at N = 2^16, one target limb: from a digit of six
/// 40-bit primes and from bootstrap-n16's six 61-bit special primes (ModDown) into a 40-bit
/// and a 60-bit prime, and from a digit of two 55-bit primes into a 61-bit one (private-n15's
/// ModUp). The AVX-512 IFMA kernels (`clifhe_core::lincomb`, where the CPU has them) against
/// the scalar Montgomery sums; same residues.
fn conversion(c: &mut Criterion) {
    use clifhe_core::arith::Modulus;
    use clifhe_core::params::primes;
    use clifhe_std::keyswitch::basis::BasisConverter;
    let n = 1 << 16;
    let mut g = c.benchmark_group("conversion/N=2^16");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(300));
    let cases: [(&str, &[u64], u64); 5] = [
        ("6 x 40-bit -> 40-bit", &primes::Q40[..6], primes::Q40[11]),
        ("6 x 61-bit -> 40-bit", &primes::P61, primes::Q40[11]),
        ("6 x 40-bit -> 60-bit", &primes::Q40[..6], primes::Q60),
        ("6 x 61-bit -> 60-bit", &primes::P61, primes::Q60),
        ("2 x 55-bit -> 61-bit", &primes::Q55[..2], primes::Q61),
    ];
    for (name, src, t) in cases {
        let target = [Modulus::new(t).unwrap()];
        let source: Vec<Modulus> = src.iter().map(|&q| Modulus::new(q).unwrap()).collect();
        let conv = BasisConverter::new(&source, &target);
        let m = src.len();
        let mut y: Vec<u64> = (0..m * n).map(|i| (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 4).collect();
        for (i, limb) in y.chunks_exact_mut(n).enumerate() {
            limb.iter_mut().for_each(|x| *x %= src[i]);
            conv.scale_input_limb(i, limb);
        }
        conv.centre_scaled(n, &mut y);
        let mut out = vec![0u64; n];
        let label = match clifhe_core::ntt::ntt_path(t) {
            clifhe_core::ntt::NttPath::IfmaNarrow | clifhe_core::ntt::NttPath::IfmaWide => "IFMA",
            _ => "no IFMA on this CPU",
        };
        g.bench_function(format!("{name} ({label})"), |b| {
            b.iter(|| conv.convert_scaled_to(n, &y, 0, &mut out))
        });
        clifhe_core::ntt::set_ifma_enabled(false);
        g.bench_function(format!("{name} (scalar)"), |b| {
            b.iter(|| conv.convert_scaled_to(n, &y, 0, &mut out))
        });
        clifhe_core::ntt::set_ifma_enabled(true);
    }
    g.finish();
}

criterion_group!(benches, primitives, primitives_n16, conversion, gnn);
criterion_main!(benches);
