//! Features files: the same text through the JSON and the CSV/TSV parser.
#![no_main]

use host_eval::cli::inputs::{parse_features_csv, parse_features_json};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = parse_features_json(text, "fuzz.json");
    let _ = parse_features_csv(text, "fuzz.csv");
});
