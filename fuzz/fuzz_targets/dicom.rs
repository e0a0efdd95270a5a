//! DICOM files (Part 10 with preamble, or a bare data set), through to the volume.
#![no_main]

use host_eval::data::dicom::parse_dicom_volume;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let _ = parse_dicom_volume(Path::new("fuzz.dcm"), data);
});
