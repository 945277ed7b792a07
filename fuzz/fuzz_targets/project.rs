//! `pitcrew.yaml`: loaded, and every target compiled as `pitcrew targets` and `pitcrew run
//! --target NAME` do.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pitcrew::fuzzing::project(data));
