//! The blade-major batch file (header JSON + 8 wire ciphertexts), on the toy preset its seeds
//! use and on device-n12.
#![no_main]

use host_eval::cli::batchfile::parse as parse_batch;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    for name in ["INSECURE-test-n10", "device-n12"] {
        let _ = parse_batch(&clifhe_fuzz::params(name), data, Path::new("fuzz.batch"));
    }
});
