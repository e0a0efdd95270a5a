//! Bootstrapping at the 128-bit N=2^16 preset (`bootstrap-n16`): key generation and one
//! bootstrap at full slots, then one bootstrap at 1024 and at 8 slots (each with its own keys,
//! generated even when a filter such as `-- "bootstrap full slots"` skips their timing).
//! Threads: `RAYON_NUM_THREADS=1` or `2`. Only under `cargo bench` (one
//! iteration is tens of seconds and the keys take several GiB); `cargo test --all-targets`
//! compiles it and returns at once. Precision, levels and memory of the same circuit are
//! printed by the timing run (`CLIFHE_HEAVY=1 cargo test --release -p clifhe-std --test
//! bootstrap_heavy`). Both run with the allocator tuning `host-eval` applies
//! (`clifhe_std::runtime::tune_allocator`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use clifhe_benches::fixture;
use clifhe_core::encrypt::{encrypt_pk, Plaintext};
use clifhe_core::params::presets;
use clifhe_std::bootstrap::{BootstrapLiteral, Bootstrapper};
use clifhe_std::Evaluator;
use criterion::{criterion_group, criterion_main, Criterion};
use std::time::Duration;

fn bootstrap_n16(c: &mut Criterion) {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("bootstrap-n16 benchmark: only under `cargo bench` (skipped in test mode)");
        return;
    }
    // criterion runs this on the main thread; as in host-eval's main (see its docs)
    clifhe_std::runtime::tune_allocator();
    let mut f = fixture(presets::BOOTSTRAP_N16);
    let ev = Evaluator::new(&f.ectx);
    let bt = Bootstrapper::new(&f.ectx, BootstrapLiteral::default()).unwrap();
    let threads = rayon_threads();
    let mut g = c.benchmark_group(format!("bootstrap/N=2^16/{threads}t"));
    g.sample_size(10)
        .measurement_time(Duration::from_secs(1))
        .warm_up_time(Duration::from_millis(1));
    // key generation first, so that only one key set is alive at a time (peak memory)
    g.bench_function("bootstrap key generation (relin + Galois + encapsulation)", |b| {
        b.iter(|| bt.generate_keys(&f.sk, &mut f.rng).unwrap())
    });
    let keys = bt.generate_keys(&f.sk, &mut f.rng).unwrap();
    eprintln!(
        "bootstrap-n16: {} Galois keys, key set {:.2} GiB in memory ({:.2} GiB seed-compressed on disk), diagonals {:.2} GiB, output level {}",
        keys.galois.len(),
        keys.memory_bytes() as f64 / (1u64 << 30) as f64,
        keys.serialized_bytes(&f.ectx) as f64 / (1u64 << 30) as f64,
        bt.transform_memory_bytes() as f64 / (1u64 << 30) as f64,
        bt.output_level()
    );
    let ct = ev.drop_to_level(&f.ct, 0).unwrap();
    g.bench_function("bootstrap full slots (32768)", |b| b.iter(|| bt.bootstrap(&ct, &keys).unwrap()));
    // one key set and one set of diagonals alive at a time
    drop((keys, bt));
    // Sparse slots (issue 14's "at most 5 s"): 2^10 and 2^3 slots, each with its own keys.
    for log_slots in [10u32, 3] {
        let literal = BootstrapLiteral {
            log_slots: Some(log_slots),
            ..BootstrapLiteral::default()
        };
        let bt = Bootstrapper::new(&f.ectx, literal).unwrap();
        let keys = bt.generate_keys(&f.sk, &mut f.rng).unwrap();
        let params = *f.ectx.params();
        let values: Vec<f64> = (0..1usize << log_slots).map(|i| ((i % 17) as f64 - 8.0) / 8.0).collect();
        let pt = Plaintext::encode_real(&params, &values, params.default_scale()).unwrap();
        let sparse = encrypt_pk(&params, f.ectx.q_tables(), &f.pk, &pt, 0, &mut f.rng).unwrap();
        g.bench_function(format!("bootstrap {} slots", 1u32 << log_slots), |b| {
            b.iter(|| bt.bootstrap(&sparse, &keys).unwrap())
        });
    }
    g.finish();
}

fn rayon_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

criterion_group!(benches, bootstrap_n16);
criterion_main!(benches);
