//! One batch of the demo end to end: the hospital encrypts, the vendor evaluates and
//! sanitises, the hospital releases; each phase timed.

use super::{argmax, DemoOptions};
use crate::cli::CliError;
use clifhe_core::encrypt::Plaintext;
use clifhe_core::{Multivector, PublicKey, SecretKey};
use clifhe_std::gnn::blocks::{
    block_capacity, block_result_layout, block_used_slots, evaluate_blocks, pack_blocks_rotated, BlockConstants,
};
use clifhe_std::gnn::encrypted::{evaluate_scheduled, Schedule};
use clifhe_std::gnn::noise::NoiseReport;
use clifhe_std::gnn::{InferencePlan, InputBox};
use clifhe_std::privacy::{MaskMemo, Release, ReleasePolicy, Releaser, ResultLayout};
use clifhe_std::protocol::hospital::PreparedKey;
use clifhe_std::protocol::vendor::sanitize_scores;
use clifhe_std::protocol::BatchLayout;
use clifhe_std::{EvalContext, Evaluator, GaloisKeys, RelinearizationKey};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rayon::prelude::*;
use std::time::Instant;

/// Everything a batch needs that does not change between batches.
pub(super) struct BatchSetup<'a> {
    pub(super) ectx: &'a EvalContext,
    pub(super) ev: &'a Evaluator<'a>,
    pub(super) pk: &'a PublicKey<Vec<u64>>,
    /// The hospital's encryption key, prepared up to the input level.
    pub(super) key: &'a PreparedKey<'a>,
    /// The vendor's sanitisation masks of the batch shapes seen so far.
    pub(super) masks: &'a MaskMemo,
    pub(super) sk: &'a SecretKey<Vec<i8>>,
    pub(super) rlk: &'a RelinearizationKey,
    pub(super) plan: &'a InferencePlan,
    pub(super) schedule: &'a Schedule,
    pub(super) analysis: &'a NoiseReport,
    pub(super) ibox: &'a InputBox,
    pub(super) classes: usize,
    /// The block layout for batches of at most N/16 / C patients (the latency path).
    pub(super) blocks: &'a BlockSetup,
}

/// What the block layout needs: rotation keys (hospital), its schedule, bounds and plaintext
/// constants (vendor, once per model).
pub(super) struct BlockSetup {
    pub(super) gks: GaloisKeys,
    pub(super) schedule: Schedule,
    pub(super) analysis: NoiseReport,
    pub(super) constants: BlockConstants,
}

pub(super) struct BatchResult {
    pub(super) released: Vec<usize>,
    pub(super) scores: Vec<Vec<f64>>,
    pub(super) encrypt_ms: f64,
    pub(super) infer_ms: f64,
    pub(super) sanitize_ms: f64,
    pub(super) release_ms: f64,
    /// The measurement-only decryption before sanitisation: not part of the protocol, so not
    /// part of any timing the demo reports.
    pub(super) measurement_ms: f64,
    pub(super) levels_left: usize,
    pub(super) flooded: bool,
    /// (vendor flood log2, release flood log2, released level).
    pub(super) floods: Option<(u32, u32, u32)>,
    /// Scores' scale and proven noise bound of the layout this batch used, and the layout.
    pub(super) output_scale: f64,
    pub(super) noise_bound: f64,
    pub(super) layout: BatchLayout,
}

pub(super) fn run_batch(
    b: &BatchSetup<'_>,
    xs: &[Multivector],
    opts: &DemoOptions,
    released_count: &mut u64,
    rng: &mut ChaCha20Rng,
) -> Result<BatchResult, CliError> {
    let (ectx, ev, classes) = (b.ectx, b.ev, b.classes);
    let params = *ectx.params();
    let slots = params.max_slots();
    // At most N/16 / C patients: the block layout (all blades of a patient in one ciphertext,
    // one relinearization per layer; the hospital uploads its 8 block rotations): the latency
    // path. More: the blade-major layout (8 ciphertexts of N/2 patients), the throughput path.
    let use_blocks = xs.len() <= block_capacity(&params, classes);
    let (schedule, analysis) = if use_blocks {
        (&b.blocks.schedule, &b.blocks.analysis)
    } else {
        (b.schedule, b.analysis)
    };
    // Hospital devices: the box-encoded features (empty slots: u = 0, the box centre), public-key
    // encryption at the schedule's level and scale; blade-major: one blade per task (each with
    // its own ChaCha20 stream seeded from the main generator).
    let t = Instant::now();
    let encoded: Vec<[f64; 8]> = xs.iter().map(|x| b.ibox.encode(x)).collect();
    let vectors: Vec<Vec<f64>> = if use_blocks {
        pack_blocks_rotated(&params, &encoded, classes)?
    } else {
        clifhe_std::ga::pack(slots, BatchLayout::BladeMajor.ga_layout(), 0, &encoded)?
            .iter()
            .map(|v| v.to_vec())
            .collect()
    };
    let seeds: Vec<[u8; 32]> = (0..vectors.len())
        .map(|_| {
            let mut s = [0u8; 32];
            rng.fill_bytes(&mut s);
            s
        })
        .collect();
    let cts = vectors
        .par_iter()
        .zip(&seeds)
        .map(|(v, seed)| {
            let pt = Plaintext::encode_real(&params, v, schedule.input_scale)?;
            let mut r = ChaCha20Rng::from_seed(*seed);
            Ok(b.key.encrypt(ectx.core(), &pt, schedule.input_level, &mut r)?.into_ciphertext())
        })
        .collect::<Result<Vec<_>, CliError>>()?;
    let encrypt_ms = t.elapsed().as_secs_f64() * 1e3;

    // Vendor: inference.
    let t = Instant::now();
    let scores = if use_blocks {
        vec![evaluate_blocks(ev, b.rlk, &b.blocks.gks, schedule, &b.blocks.constants, &cts)?]
    } else {
        evaluate_scheduled(ev, b.rlk, b.plan, schedule, &cts)?
    };
    let infer_ms = t.elapsed().as_secs_f64() * 1e3;
    let levels_left = scores.first().map_or(0, |c| c.meta.level);
    // Where score (p, c) sits: (ciphertext, slot).
    let layout = if use_blocks {
        block_result_layout(xs.len(), classes)
    } else {
        ResultLayout::CiphertextPerClass { groups: xs.len(), classes }
    };

    // Measurement only (see module docs): the scores before sanitisation.
    let t = Instant::now();
    let raw: Vec<Vec<f64>> = scores
        .iter()
        .map(|c| clifhe_core::decrypt::decrypt(ectx.core(), b.sk, c).and_then(|d| d.decode_real()))
        .collect::<Result<_, _>>()?;
    let per_patient: Vec<Vec<f64>> = (0..xs.len())
        .map(|p| {
            (0..classes)
                .map(|c| {
                    let (i, s) = layout.position(p, c);
                    raw[i][s]
                })
                .collect()
        })
        .collect();
    let measurement_ms = t.elapsed().as_secs_f64() * 1e3;
    if opts.no_flooding {
        return Ok(BatchResult {
            released: per_patient.iter().map(|s| argmax(s)).collect(),
            scores: per_patient,
            encrypt_ms,
            infer_ms,
            sanitize_ms: 0.0,
            release_ms: 0.0,
            measurement_ms,
            levels_left,
            flooded: false,
            floods: None,
            output_scale: schedule.output_scale(),
            noise_bound: analysis.per_coefficient_bound,
            layout: if use_blocks { BatchLayout::Blocks } else { BatchLayout::BladeMajor },
        });
    }

    // Vendor: sanitisation before anything leaves, with the proven bounds of this model.
    let t = Instant::now();
    let used = if use_blocks {
        block_used_slots(&params, xs.len(), classes)
    } else {
        (0..slots).map(|s| s < xs.len()).collect()
    };
    let sanitized = sanitize_scores(
        ectx,
        b.pk,
        &scores,
        analysis.into(),
        used,
        opts.statistical_security,
        Some(b.masks),
        rng,
    )?;
    let sanitize_ms = t.elapsed().as_secs_f64() * 1e3;

    // Hospital: flooded release of the argmax only.
    let t = Instant::now();
    let release_bound = sanitized.iter().map(|s| s.release_noise_bound).fold(0.0, f64::max);
    let policy = ReleasePolicy {
        statistical_security: opts.statistical_security,
        ..ReleasePolicy::argmax(release_bound, u64::MAX)
    };
    let mut releaser = Releaser::with_count(policy, *released_count);
    let refs: Vec<_> = sanitized.iter().map(|s| &s.ciphertext).collect();
    let released = match releaser.decrypt_for_release(ectx.core(), b.sk, &refs, &layout, rng)? {
        Release::Classes(c) => c,
        Release::Scores(_) => return Err(CliError::bad_input("release", "expected classes")),
    };
    *released_count = releaser.released();
    let release_ms = t.elapsed().as_secs_f64() * 1e3;
    let vendor = sanitized.iter().map(|s| s.flood_log2).max().unwrap_or(0);
    let release = (opts.statistical_security as f64 + release_bound.max(1.0).log2()).ceil() as u32;
    let level = sanitized.first().map_or(0, |s| s.ciphertext.meta.level as u32);
    Ok(BatchResult {
        released,
        scores: per_patient,
        encrypt_ms,
        infer_ms,
        sanitize_ms,
        release_ms,
        measurement_ms,
        levels_left,
        flooded: true,
        floods: Some((vendor, release, level)),
        output_scale: schedule.output_scale(),
        noise_bound: analysis.per_coefficient_bound,
        layout: if use_blocks { BatchLayout::Blocks } else { BatchLayout::BladeMajor },
    })
}
