//! The blade-major batch file (header JSON + 8 wire ciphertexts), on the toy preset its seeds
//! use and on device-n12.
#![no_main]

use clifhe_std::protocol::batch;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for name in ["INSECURE-test-n10", "device-n12"] {
        let _ = batch::parse(&clifhe_fuzz::params(name), data);
    }
});
