//! NIfTI-1 single files, as `.nii` (plain unless the bytes start with the gzip magic) and as
//! `.nii.gz` (always through the gzip decoder).
#![no_main]

use host_eval::data::nifti::parse_nifti;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let _ = parse_nifti(Path::new("fuzz.nii"), data);
    let _ = parse_nifti(Path::new("fuzz.nii.gz"), data);
});
