//! Model files of both kinds: `GnnModel::from_json` and `EquivariantModel::from_json`. A model
//! that validates must also serialise and run a plaintext forward pass (and, for the
//! equivariant kind, its input-domain check) without panicking: validation is what makes its
//! shapes consistent.
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
    if let Ok(model) = clifhe_std::gnn::equivariant_model::EquivariantModel::from_json(text) {
        let _ = model.to_json();
        let zero = vec![Multivector::zero(); model.channels.count()];
        let _ = model.scores(&zero);
        let _ = model.in_domain(&zero);
    }
});
