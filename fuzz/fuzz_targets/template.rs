//! One template rendered as a scenario value is: every input renders or is refused with a
//! reason, within the size bound, never a panic or a hang.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pitcrew::fuzzing::template(data));
