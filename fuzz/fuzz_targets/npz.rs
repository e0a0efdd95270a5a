//! MedMNIST `.npz` archives (zip of `.npy`) and bare `.npy` arrays, from memory.
#![no_main]

use host_eval::data::npz::{parse_medmnist_npz, parse_medmnist_sample, parse_npy};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.npz");
    let _ = parse_npy(path, data);
    let _ = parse_medmnist_npz(path, data);
    for (split, index) in [("test", 0), ("train", 1)] {
        let _ = parse_medmnist_sample(path, data, split, index);
    }
});
