//! Fuzz target: see `lynn_proto::fuzzing::decoder`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| lynn_proto::fuzzing::decoder(data));
