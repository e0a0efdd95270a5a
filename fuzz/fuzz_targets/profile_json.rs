//! The input profile JSON (`profile` output, `encrypt --profile` input). The reader takes a
//! path, so the input goes through a per-process temp file.
#![no_main]

use host_eval::cli::profile::read_profile;
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

fn tmp() -> &'static PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| std::env::temp_dir().join(format!("clifhe-fuzz-profile-{}.json", std::process::id())))
}

fuzz_target!(|data: &[u8]| {
    if std::fs::write(tmp(), data).is_err() {
        return;
    }
    for name in ["INSECURE-test-n10", "leveled-n14"] {
        let _ = read_profile(tmp(), &clifhe_fuzz::params(name));
    }
});
