//! Fuzz target: see `lynn_proto::fuzzing::connection`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| lynn_proto::fuzzing::connection(data));
