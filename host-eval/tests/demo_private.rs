//! The demo's circuit-private release (flooding at s = 30, `private-n15`) agrees with the
//! plaintext model on every test sample: the built-in phantoms (300 test patients) and, when
//! the file is present, AdrenalMNIST3D's official test split.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use clifhe_std::protocol::BatchLayout;
use host_eval::cli::demo::{run_demo, DemoOptions};
use host_eval::cli::encrypt::Mode;
use host_eval::cli::labelled::{medmnist_features, phantom_features, LabelledFeatures};
use std::path::Path;

/// Full batches encrypt with the public key, the block layout with seeded secret-key
/// encryption: both of the hospital's ways are checked.
fn opts(fill_batches: bool) -> DemoOptions {
    DemoOptions {
        preset: "private-n15".into(),
        dataset: None,
        per_class: 400,
        seed: 1,
        statistical_security: 30,
        no_flooding: false,
        single_patient_latency: false,
        encrypt_mode: if fill_batches { Mode::Pk } else { Mode::Seeded },
        fill_batches,
        progress: false,
    }
}

/// `fill`: the test patients repeated to a full batch (blade-major layout); otherwise the test
/// set alone, at most N/16 patients (block layout, the latency path).
fn check(data: LabelledFeatures, fill: bool) {
    let r = run_demo(&opts(fill), data, 0.0, &mut |_| {}).unwrap();
    assert_eq!(r.layout, if fill { BatchLayout::BladeMajor } else { BatchLayout::Blocks });
    println!(
        "{} ({}): agreement {} ({} patients); flood std {:.2e} = {:.2e} of the smallest gap {:.2e}; noise bound 2^{:.1} at scale 2^{:.1}",
        r.dataset,
        r.layout.name(),
        r.argmax_agreement,
        r.patients,
        r.flood_score_std.unwrap(),
        r.flood_std_over_min_gap.unwrap(),
        r.min_plaintext_score_gap,
        r.noise_bound_log2.unwrap(),
        r.output_scale_log2
    );
    assert!(r.circuit_private);
    assert_eq!(r.statistical_security, 30);
    assert_eq!(r.argmax_agreement, 1.0);
    assert_eq!(r.argmax_agreement_before_flooding, 1.0);
    // The margin: the floods' standard deviation is a tiny fraction of the smallest gap, so no
    // test sample is a near-tie at risk.
    assert!(r.flood_std_over_min_gap.unwrap() < 1e-2);
    assert_eq!(r.near_ties, 0);
    assert_eq!(r.test_samples_outside_box, 0);
    // Blade-major constants are scalars (quantised once, 2^-37); the block layout's are slot
    // vectors rounded coefficient by coefficient (about sqrt(N) 2^-31): both far below any gap.
    assert!(r.max_abs_score_error < if fill { 1e-8 } else { 1e-5 });
}

#[test]
fn phantom_release_agrees_with_the_plaintext_model_on_every_test_sample() {
    check(phantom_features(400, 1, 0.0).unwrap(), true);
    check(phantom_features(400, 1, 0.0).unwrap(), false);
}

#[test]
fn adrenal_release_agrees_with_the_plaintext_model_on_every_test_sample() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/adrenalmnist3d.npz");
    if !p.exists() {
        println!("skipping: AdrenalMNIST3D not found");
        return;
    }
    check(medmnist_features(&p).unwrap(), false);
}
