//! Shared set-up for the fuzz targets: the parameter presets every wire reader is tried
//! against, and the evaluation contexts for the key readers (built once per process).

use clifhe_core::params::presets;
use clifhe_core::Params;
use clifhe_std::EvalContext;
use std::sync::OnceLock;

/// Every preset compiled in (the production ones and the INSECURE toy ones): a wire object
/// names its preset in its header, so trying each lets the fuzzer reach every reader body.
pub fn all_params() -> &'static [Params] {
    static ALL: OnceLock<Vec<Params>> = OnceLock::new();
    ALL.get_or_init(|| presets::ALL.iter().filter_map(|lit| Params::new(*lit).ok()).collect())
}

/// A preset by name; the targets only name presets that exist.
pub fn params(name: &str) -> Params {
    match Params::from_name(name) {
        Some(p) => p,
        None => panic!("fuzz set-up: no preset {name}"),
    }
}

/// Evaluation contexts for the key readers: the small INSECURE presets (whose keys a fuzzer can
/// mutate) and leveled-n14, the production preset with key switching.
pub fn eval_contexts() -> &'static [EvalContext] {
    static CTX: OnceLock<Vec<EvalContext>> = OnceLock::new();
    CTX.get_or_init(|| {
        ["INSECURE-test-n10", "INSECURE-test-boot-n12", "leveled-n14"]
            .iter()
            .filter_map(|n| EvalContext::new(params(n)).ok())
            .collect()
    })
}
