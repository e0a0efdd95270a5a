//! Core wire format: ciphertext, seeded ciphertext, public key, secret key seed, and an enrolled
//! device's input image, each tried against every preset. All five encodings are canonical:
//! whatever decodes must re-encode to exactly the input bytes.
#![no_main]

use clifhe_core::wire;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for params in clifhe_fuzz::all_params() {
        if let Ok(ct) = wire::ciphertext_from_bytes(params, data) {
            let again = wire::ciphertext_to_bytes(params, &ct).expect("a decoded ciphertext re-encodes");
            assert!(again == data, "ciphertext: re-encoding differs from the input");
        }
        if let Ok(ct) = wire::seeded_ciphertext_from_bytes(params, data) {
            let again = wire::seeded_ciphertext_to_bytes(params, &ct).expect("a decoded seeded ciphertext re-encodes");
            assert!(again == data, "seeded ciphertext: re-encoding differs from the input");
        }
        if let Ok(pk) = wire::public_key_from_bytes(params, data) {
            let again = wire::public_key_to_bytes(params, &pk).expect("a decoded public key re-encodes");
            assert!(again == data, "public key: re-encoding differs from the input");
        }
        if let Ok(input) = clifhe_core::device_input::DeviceInput::from_image(params, data) {
            assert!(input.to_image().as_slice() == data, "device input image: re-encoding differs from the input");
        }
        if let Ok(sk) = wire::import_secret_key(params, data) {
            let again = wire::export_secret_key(params, &sk).expect("an imported secret key exports");
            assert!(again.as_slice() == data, "secret key seed: re-encoding differs from the input");
        }
    }
});
