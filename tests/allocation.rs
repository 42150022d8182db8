//! Review: allocations sized by what a hostile peer declares.
//!
//! - The decoder bounds each list's `with_capacity` by the bytes left in
//!   the frame, but nested lists each get that bound: 129 levels of
//!   "a list of (rest of frame) items" reserve ~129 x 40 bytes per frame
//!   byte before the decode fails (src/protocol/codec.rs `len` + `value`).
//! - tokio-util's `LengthDelimitedCodec` reserves the declared frame length
//!   as soon as it reads a header, so 4 bytes claiming `max_frame_len`
//!   (64 MiB by default) reserve 64 MiB per connection.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use support::wire::{hello, read_frame};
use tether::Builder;
use tokio::io::AsyncWriteExt;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static LARGEST: AtomicUsize = AtomicUsize::new(0);

fn grew(n: usize) {
    let live = LIVE.fetch_add(n, Ordering::Relaxed) + n;
    PEAK.fetch_max(live, Ordering::Relaxed);
    LARGEST.fetch_max(n, Ordering::Relaxed);
}

// SAFETY: forwards every call to `System` unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        grew(new_size);
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Tests in this file measure process-wide counters: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[test]
fn nested_lists_cannot_reserve_far_more_than_the_frame() {
    let _g = SERIAL.blocking_lock();
    const Z: u32 = 64 * 1024;
    let mut payload = vec![1u8, 1]; // Reply Ok, seq 1
    for _ in 0..=tether::protocol::MAX_DEPTH {
        payload.push(7); // VAL_LIST
        payload.push(252); // u32 varint
        payload.extend_from_slice(&Z.to_le_bytes());
    }
    payload.extend(std::iter::repeat_n(0u8, Z as usize)); // None items
    let frame_len = payload.len();

    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let result = tether::__private::decode_frame(&payload);
    let peak = PEAK.load(Ordering::Relaxed) - base;
    assert!(result.is_err());
    eprintln!("frame of {frame_len} bytes, decoder peak {peak} bytes");
    // Each 1-byte `None` decodes to a 32-byte `Value`, and the list's growth
    // doubles that: about 64x (4.23 MB here), plus whatever other threads of
    // the test process allocate meanwhile. Reserving each level's declared
    // 64 Ki entries would be about 129 x 2 MiB: the bound is 128x, well
    // between the two.
    assert!(
        peak < 128 * frame_len,
        "decoding a {frame_len}-byte frame reserved {peak} bytes ({}x)",
        peak / frame_len
    );
}

/// Over a pipe that holds only 4 bytes, so the test knows when the reader
/// has taken the header: the byte written after it goes through only then.
/// The default (current-thread) runtime runs the reader's whole poll, the
/// header's decoding included, before the writer goes on.
#[tokio::test]
async fn a_frame_header_alone_does_not_reserve_the_claimed_length() {
    let _g = SERIAL.lock().await;
    let (mut a, b) = tokio::io::duplex(4);
    let server = tokio::spawn(Builder::default().accept_io(b, None));
    a.write_all(&hello(tether::protocol::PROTOCOL_VERSION, "Raw"))
        .await
        .unwrap();
    read_frame(&mut a).await; // the server's answer
    let conn = server.await.unwrap().unwrap();

    LARGEST.store(0, Ordering::Relaxed);
    // Four bytes: "a frame of 64 MiB follows" (exactly the default limit),
    // then the first byte of that frame, which waits for the reader.
    a.write_all(&(64u32 << 20).to_be_bytes()).await.unwrap();
    a.write_all(&[0]).await.unwrap();
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(!conn.is_closed());
    assert!(
        largest < 1 << 20,
        "a 4-byte header made the reader allocate {largest} bytes"
    );
}
