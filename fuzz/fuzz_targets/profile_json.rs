//! The input profile JSON (`profile` output, `encrypt --profile` input), checked against a toy
//! preset and leveled-n14.
#![no_main]

use clifhe_std::protocol::profile::InputProfile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for name in ["INSECURE-test-n10", "leveled-n14"] {
        let _ = InputProfile::from_json_checked(data, &clifhe_fuzz::params(name));
    }
});
