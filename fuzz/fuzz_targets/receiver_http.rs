//! Raw bytes on a connection to the receiver (callbacks and its `/api`), read by the same HTTP
//! server and router `pitcrew run` and `pitcrew receive` use, with time paused.
#![no_main]

use std::sync::LazyLock;

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
});

libfuzzer_sys::fuzz_target!(|data: &[u8]| pitcrew::fuzzing::receiver_http(&RUNTIME, data));
