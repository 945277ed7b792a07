//! A `pitcrew sandbox --config` file: loaded and checked, and its partners' faults read as
//! the sandbox applies them.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pitcrew::fuzzing::sandbox_config(data));
