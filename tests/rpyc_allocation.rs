//! What reading a hostile RPyC frame allocates: the frame is read as a
//! connection would read it (`tether::__private::rpyc_read_frame`: frame
//! header, inflating, envelope, brine within the decoding budget) on the
//! test's own thread, and `allocation_counter` counts that thread's
//! allocations only, so other tests running at the same time do not
//! disturb the figures.

#[path = "support/zlib_bomb.rs"]
mod zlib_bomb;

use tether::rpyc::{Brine, MAX_INFLATE_RATIO};

use tether::{Config, ErrorKind};

const MIB: u64 = 1 << 20;

/// The outcome of reading `frame`, and the most bytes allocated at once.
fn read(frame: &[u8], config: &Config) -> (tether::Result<()>, u64) {
    let mut outcome = None;
    let info = allocation_counter::measure(|| {
        outcome = Some(tether::__private::rpyc_read_frame(frame, config));
    });
    (outcome.unwrap(), info.bytes_max)
}

/// A reply to request 1 whose value is a tuple of `n` `None`s, compressed
/// at zlib `level`, as one frame.
fn compressed_reply_of_nones(n: usize, level: u32) -> (Vec<u8>, usize) {
    // 2 (reply), (seq 1, (1, <tuple of n>))
    let mut prefix = vec![2u8, 0x11, 0x51, 0x11, 0x51, 0x15];
    prefix.extend((n as u32).to_be_bytes());
    let compressed = zlib_bomb::zlib_with_zeros(&prefix, n, &[], level);
    let mut frame = (compressed.len() as u32).to_be_bytes().to_vec();
    frame.push(1);
    frame.extend_from_slice(&compressed);
    frame.push(b'\n');
    (frame, compressed.len())
}

#[test]
fn the_issues_zlib_bomb_is_refused_having_allocated_nothing_in_proportion_to_it() {
    // 60 MiB of `None`s in about 61 KB. Before: inflated whole, then
    // decoded to ~2 GB of values.
    let (frame, compressed) = compressed_reply_of_nones(60 << 20, 9);
    assert!(compressed < 70_000, "{compressed}");
    let (outcome, peak) = read(&frame, &Config::default());
    let err = outcome.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err:#}");
    assert!(err.message().contains("compression bomb"), "{err:#}");
    let bound = compressed * MAX_INFLATE_RATIO;
    eprintln!("bomb of {compressed} bytes: peak {peak} bytes (refused past {bound})");
    // The frame's copy, the first 64 KiB inflated, scratch space and
    // zlib's window: nothing in proportion to the bomb.
    assert!(peak <= MIB / 2, "peak {peak}");
}

#[test]
fn a_bomb_within_the_ratio_is_refused_by_the_budget_before_its_values_are_reserved() {
    // Level 1, as rpyc compresses: 8 MiB of `None`s inflate (about 229:1),
    // but 8 Mi values would take 256 MiB: over the default 128 MiB budget,
    // so the tuple's slots are never reserved.
    let (frame, compressed) = compressed_reply_of_nones(8 << 20, 1);
    let (outcome, peak) = read(&frame, &Config::default());
    let err = outcome.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LimitExceeded, "{err:#}");
    assert!(err.message().contains("max_decoded_bytes"), "{err:#}");
    eprintln!("level-1 bomb of {compressed} bytes: peak {peak} bytes");
    // The inflated payload (8 MiB, in a buffer of exactly its size) and
    // little else.
    assert!(peak <= 9 * MIB, "peak {peak}");
}

#[test]
fn nested_count_headers_reserve_no_more_than_the_frame_can_hold() {
    // 60 tuple headers each declaring a million items, then a million
    // `None`s. Before, every level reserved a million slots: ~2 GB.
    let mut payload = vec![2u8, 0x11, 0x51];
    for _ in 0..60 {
        payload.push(0x15);
        payload.extend(1_000_000u32.to_be_bytes());
    }
    payload.extend(std::iter::repeat_n(0u8, 1_000_000));
    let mut frame = (payload.len() as u32).to_be_bytes().to_vec();
    frame.push(0);
    frame.extend_from_slice(&payload);
    frame.push(b'\n');
    let (outcome, peak) = read(&frame, &Config::default());
    let err = outcome.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Protocol, "{err:#}");
    eprintln!("nested headers: peak {peak} bytes");
    // The frame's copy and one level's slots (a million values).
    let one_level = 1_000_000 * std::mem::size_of::<Brine>() as u64;
    assert!(peak <= one_level + 4 * MIB, "peak {peak}");
}

#[test]
fn a_plain_request_over_the_budget_is_walked_without_building_it() {
    // A reply of 4 million `None`s and one object of the sender's, within
    // the frame limit, over a 1 MiB budget: refused, having allocated
    // little beyond the frame itself.
    let n = 4_000_000usize;
    let mut payload = vec![2u8, 0x11, 0x51, 0x11, 0x52, 0x12];
    payload.extend([0x11, 0x51, 0x15]);
    payload.extend((n as u32).to_be_bytes());
    payload.extend(std::iter::repeat_n(0u8, n));
    let object = Brine::Tuple(vec![
        Brine::Int(4),
        Brine::Tuple(vec![
            Brine::Str("builtins.object".into()),
            Brine::Int(1),
            Brine::Int(2),
        ]),
    ]);
    payload.extend(object.encode());
    payload.extend(Brine::Tuple(vec![Brine::Int(1), Brine::None]).encode());
    let mut frame = (payload.len() as u32).to_be_bytes().to_vec();
    frame.push(0);
    frame.extend_from_slice(&payload);
    frame.push(b'\n');
    let config = Config::default().max_decoded_bytes(1 << 20);
    let (outcome, peak) = read(&frame, &config);
    assert_eq!(outcome.unwrap_err().kind(), ErrorKind::LimitExceeded);
    eprintln!(
        "plain over budget: peak {peak} bytes for a frame of {}",
        frame.len()
    );
    assert!(peak <= frame.len() as u64 + 2 * MIB, "peak {peak}");
}
