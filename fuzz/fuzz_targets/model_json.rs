//! Model files: `GnnModel::from_json`. A model that validates must also serialise and run a
//! plaintext forward pass without panicking (validation is what makes its shapes consistent).
#![no_main]

use clifhe_core::Multivector;
use clifhe_std::gnn::GnnModel;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(model) = GnnModel::from_json(text) {
        let _ = model.to_json();
        let _ = model.forward(&Multivector::zero());
        let _ = model.input_box();
    }
});
