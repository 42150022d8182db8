//! Arbitrary bytes as one frame payload: the decoder must return Ok or Err,
//! never panic, overflow the stack or allocate what a length claims.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tether::__private::decode_frame(data);
});
