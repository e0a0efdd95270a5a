//! Evaluation-key readers (relinearization, Galois, bootstrapping encapsulation keys, enrolled
//! devices' switching keys) on the
//! INSECURE toy presets and leveled-n14. No panic, and decode -> encode == input (the key
//! readers accept canonical encodings only).
#![no_main]

use clifhe_std::bootstrap::encapsulation::EncapsulationKeys;
use clifhe_std::{GaloisKeys, RelinearizationKey};
use libfuzzer_sys::fuzz_target;

fn check(kind: &str, data: &[u8], again: Vec<u8>) {
    assert!(again == data, "{kind}: re-encoding differs from the input");
}

fuzz_target!(|data: &[u8]| {
    for ectx in clifhe_fuzz::eval_contexts() {
        if let Ok(k) = RelinearizationKey::from_bytes(ectx, data) {
            check("relinearization key", data, k.to_bytes(ectx).expect("a decoded key re-encodes"));
        }
        let mut keys = GaloisKeys::default();
        if let Ok(g) = keys.insert_from_bytes(ectx, data) {
            check("Galois key", data, keys.key_to_bytes(ectx, g).expect("a decoded key re-encodes"));
        }
        if let Ok(k) = clifhe_std::keys_wire::DeviceSwitchKey::from_bytes(ectx, data) {
            check("device switching key", data, k.to_bytes(ectx).expect("a decoded key re-encodes"));
        }
        if let Ok(k) = EncapsulationKeys::from_bytes(ectx, data) {
            check("encapsulation key", data, k.to_bytes(ectx).expect("a decoded key re-encodes"));
        }
    }
});
