//! Fuzz target: see `lynn_proto::fuzzing::client_calls`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| lynn_proto::fuzzing::client_calls(data));
