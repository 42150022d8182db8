//! Arbitrary bytes as one RPyC frame (length, compressed flag, payload,
//! trailer), read as an RPyC connection would read it: inflated within
//! the frame limit and ratio, the envelope parsed, brine decoded within
//! the decoding budget (or walked to its end past it). It must return Ok
//! or Err, never panic, overflow the stack or allocate what a length or a
//! compression ratio claims.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let config = tether::Config::default()
        .max_frame_len(1 << 20)
        .max_decoded_bytes(1 << 20);
    let _ = tether::__private::rpyc_read_frame(data, &config);
});
