//! Raw volumes: the input is `spec\nbytes`, the spec in the `XxYxZ:dtype[:SXxSYxSZ]` syntax of
//! `file.raw#spec`, so the fuzzer mutates the spec parser and the size checks together.
#![no_main]

use host_eval::data::raw::{parse_raw, RawSpec};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let (spec, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(spec) = std::str::from_utf8(spec) else { return };
    if let Ok(spec) = RawSpec::parse(spec) {
        let _ = parse_raw(Path::new("fuzz.raw"), body, &spec);
    }
});
