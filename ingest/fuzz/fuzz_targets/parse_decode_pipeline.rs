//! Fuzz target: arbitrary bytes through DICOM parsing, pixel decoding and the
//! pixel pipeline. Any input must end in `Ok` or a reject, never a panic,
//! hang or unbounded allocation.
#![no_main]

use chess_ingest::pipeline::PipelineOptions;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let opts = PipelineOptions { size: 32, ..Default::default() };
    // Both with and without a preamble, as the detector accepts both.
    let _ = chess_ingest::decode_and_process(data, &opts);
    if data.len() < 4 || &data[..4] != b"DICM" {
        let mut with_magic = b"DICM".to_vec();
        with_magic.extend_from_slice(data);
        let _ = chess_ingest::decode_and_process(&with_magic, &opts);
    }
});
