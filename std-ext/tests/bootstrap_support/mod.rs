//! Helpers shared by the bootstrapping tests (`bootstrap.rs`) and the timing run at the real
//! N=2^16 preset (`bootstrap_heavy.rs`).
#![allow(dead_code)]

use super::common::precision;
use clifhe_core::ciphertext::CiphertextOwned;
use clifhe_core::decrypt::decrypt;
use clifhe_core::encode::Complex;
use clifhe_core::encrypt::{encrypt_sk_seeded, Plaintext};
use clifhe_core::{Params, ParamsLiteral, SecretKey};
use clifhe_std::bootstrap::{BootstrapLiteral, Bootstrapper};
use clifhe_std::{EvalContext, Evaluator, KeyStorage};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::cell::RefCell;
use std::time::Instant;

/// One parameter set's context, secret key and seeded generator.
pub struct Setup {
    pub ectx: EvalContext,
    pub sk: SecretKey<Vec<i8>>,
    pub rng: RefCell<ChaCha20Rng>,
}

pub fn setup(lit: ParamsLiteral) -> Setup {
    let params = Params::new(lit).unwrap();
    let ectx = EvalContext::new(params).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(21);
    let sk = SecretKey::generate(&params, &mut rng).unwrap();
    Setup {
        ectx,
        sk,
        rng: RefCell::new(rng),
    }
}

impl Setup {
    pub fn values(&self, slots: usize) -> Vec<Complex> {
        (0..slots)
            .map(|_| {
                let re = self.rng.borrow_mut().next_u64() as f64 / u64::MAX as f64 * 2.0 - 1.0;
                let im = self.rng.borrow_mut().next_u64() as f64 / u64::MAX as f64 * 2.0 - 1.0;
                Complex::new(re, im)
            })
            .collect()
    }
    pub fn encrypt_at(&self, v: &[Complex], level: usize, scale: f64) -> CiphertextOwned {
        let p = *self.ectx.params();
        let pt = Plaintext::encode(&p, v, scale).unwrap();
        encrypt_sk_seeded(&p, self.ectx.q_tables(), &self.sk, &pt, level, &mut *self.rng.borrow_mut())
            .unwrap()
            .expand(&p)
            .unwrap()
    }
    pub fn decrypt(&self, ct: &CiphertextOwned) -> Vec<Complex> {
        decrypt(self.ectx.core(), &self.sk, ct).unwrap().decode().unwrap()
    }
}

/// (user, system) CPU seconds of this process so far, from /proc (Linux; USER_HZ = 100).
pub fn process_cpu_seconds() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok().map(|t| t / 100.0);
    // Fields 14 and 15 of proc(5) (utime, stime), counted from the state field (field 3).
    Some((ticks(11)?, ticks(12)?))
}

/// The bootstrapper of `s`'s parameters for `log_slots` slots (None: full slots), with
/// expanded Galois keys where `CLIFHE_KEYS=expanded` (the timing runs' memory-for-time option).
pub fn bootstrapper<'a>(s: &'a Setup, log_slots: Option<u32>) -> Bootstrapper<'a> {
    let galois_key_storage = match std::env::var("CLIFHE_KEYS").as_deref() {
        Ok("expanded") => KeyStorage::Expanded,
        _ => KeyStorage::Compact,
    };
    Bootstrapper::new(
        &s.ectx,
        BootstrapLiteral {
            log_slots,
            galois_key_storage,
            ..BootstrapLiteral::default()
        },
    )
    .unwrap()
}

/// One bootstrap at `log_slots` slots, timed and checked against `min_bits` / `mean_bits`, then
/// products down to level 0.
pub fn full_bootstrap(s: &Setup, log_slots: Option<u32>, min_bits: f64, mean_bits: f64) {
    let t = Instant::now();
    let bt = bootstrapper(s, log_slots);
    let t_setup = t.elapsed();
    let t = Instant::now();
    let keys = bt.generate_keys(&s.sk, &mut *s.rng.borrow_mut()).unwrap();
    let t_keys = t.elapsed();
    let p = *s.ectx.params();
    let v = s.values(1 << bt.log_slots());
    let ct = s.encrypt_at(&v, 0, p.default_scale());
    let t = Instant::now();
    let cpu0 = process_cpu_seconds();
    let (out, phases) = bt.bootstrap_timed(&ct, &keys).unwrap();
    let t_boot = t.elapsed();
    println!("phases: {phases:.2?}");
    if let (Some((u0, s0)), Some((u1, s1))) = (cpu0, process_cpu_seconds()) {
        // System time is mostly page faults from large temporaries (issue 14's allocation lever).
        println!("bootstrap CPU time: user {:.2} s, system {:.2} s", u1 - u0, s1 - s0);
    }
    // The same input again: what a service that refreshes ciphertexts pays per bootstrap once
    // the first has grown the heap (`clifhe_std::runtime`), and the same words (no randomness).
    let t = Instant::now();
    let cpu0 = process_cpu_seconds();
    let (again, phases_again) = bt.bootstrap_timed(&ct, &keys).unwrap();
    let t_again = t.elapsed();
    println!("phases again: {phases_again:.2?}");
    if let (Some((u0, s0)), Some((u1, s1))) = (cpu0, process_cpu_seconds()) {
        println!("bootstrap again CPU time: user {:.2} s, system {:.2} s", u1 - u0, s1 - s0);
    }
    assert!(again.c0.as_slice() == out.c0.as_slice() && again.c1.as_slice() == out.c1.as_slice());
    assert_eq!(out.meta.level, bt.output_level());
    assert_eq!(out.meta.scale, bt.output_scale(ct.meta.scale).unwrap());
    let got = s.decrypt(&out);
    let (min, mean) = precision(&got, &v);
    // the peers' "mean-error precision": -log2 of the mean absolute error
    let mean_err = got.iter().zip(&v).map(|(g, w)| (*g - *w).abs()).sum::<f64>() / v.len() as f64;
    let (cts, em, stc, ss) = bt.key_switch_counts();
    println!(
        "{} log_slots {}: min {min:.2} mean {mean:.2} bits (-log2 mean error {:.2}); output level {}; setup {:.2?}, keygen {:.2?} ({} Galois keys, {:.1} MiB in memory, {:.1} MiB on disk), bootstrap {:.2?} (again {:.2?}); key switches CtS {cts} EvalMod {em} StC {stc} SubSum {ss}; diagonals {:.1} MiB",
        p.name(),
        bt.log_slots(),
        -mean_err.log2(),
        out.meta.level,
        t_setup,
        t_keys,
        keys.galois.len(),
        keys.memory_bytes() as f64 / (1 << 20) as f64,
        keys.serialized_bytes(&s.ectx) as f64 / (1 << 20) as f64,
        t_boot,
        t_again,
        bt.transform_memory_bytes() as f64 / (1 << 20) as f64,
    );
    assert!(min >= min_bits && mean >= mean_bits, "min {min} mean {mean}");

    // every remaining level, by successive products with a plaintext-known factor
    let ev = Evaluator::new(&s.ectx);
    let mut ct = out;
    let mut want = v.clone();
    let w = s.values(1 << bt.log_slots());
    let mut level_bits = Vec::new();
    while ct.meta.level > 0 {
        let f = s.encrypt_at(&w, ct.meta.level, ct.meta.scale);
        ct = ev.rescale(&ev.mul_relin(&ct, &f, &keys.relinearization).unwrap()).unwrap();
        for (x, y) in want.iter_mut().zip(&w) {
            *x *= *y;
        }
        let (lmin, lmean) = precision(&s.decrypt(&ct), &want);
        level_bits.push((ct.meta.level, lmin, lmean));
        assert!(lmin > min_bits - 6.0, "level {} min {lmin}", ct.meta.level);
    }
    println!("after bootstrapping, products down to level 0 (level, min, mean): {level_bits:.1?}");
}
