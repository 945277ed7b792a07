//! A scenario file, loaded, checked and expanded as `pitcrew validate` and `pitcrew run` do:
//! no input may panic, overflow the stack, hang or take unbounded memory.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pitcrew::fuzzing::scenario(data));
