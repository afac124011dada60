//! Fuzz target: `medai_data::read_nifti_bytes` must return an error, never panic, hang or allocate
//! without bound, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = medai_data::read_nifti_bytes(data, std::path::Path::new("fuzz.nifti"));
});
