//! The service's request and response bodies: the `clifhe-bundle/1` container as a key set
//! upload (decoded and checked as public material: description, fingerprint, public key) and
//! as a scores download (decoded, its `scores.json` checked as a manifest). Batch uploads are
//! the `batchfile` target.
#![no_main]

use clifhe_std::protocol::bundle::{self, Kind};
use clifhe_std::protocol::manifest::MANIFEST_FILE;
use clifhe_std::protocol::ScoresManifest;
use host_eval::cli::public::PublicKeySet;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(set) = PublicKeySet::from_bundle(Path::new("fuzz.bundle"), data) {
        let again = set.to_bundle().expect("a decoded bundle re-encodes");
        assert!(again == data, "key set bundle: re-encoding differs from the input");
        let _ = set.public_key();
    }
    if let Ok(entries) = bundle::decode(Kind::Scores, data) {
        let params = clifhe_fuzz::params("INSECURE-test-n10");
        for (e, body) in entries {
            if e.name == MANIFEST_FILE {
                let _ = ScoresManifest::from_json_checked(body, &params);
            }
        }
    }
});
