//! The sidecar's HTTP/1.1 fast path parsers: the caller's request head, the app's response head and
//! where a body ends (Content-Length, chunked with extensions and trailers, until close).
//!
//! Input: a selector byte, a byte seeding the read sizes bodies are split into, then the bytes; the
//! assertions live in the entry point (`muster_exchange_sidecar::fuzzing::http1::run`), so the
//! sidecar's `cargo test` checks the same on the committed seeds.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    muster_exchange_sidecar::fuzzing::http1::run(data);
});
