//! Compression bombs, made fast: the zlib stream of `prefix`, then `zeros`
//! zero bytes, then `suffix`, built from one compressed megabyte of zeros
//! repeated (a full flush ends each piece so it stands alone), so a debug
//! build need not compress 60 MiB. The decompressor checks the Adler-32
//! at the end, so a wrong stream fails the test that inflates it.
//!
//! Included with `#[path]` by the tests that need it.
#![allow(dead_code)]

use flate2::{Compress, Compression, FlushCompress, Status};

const CHUNK: usize = 1 << 20;
const ADLER_MOD: u64 = 65521;

/// The zlib stream of `prefix ++ [0; zeros] ++ suffix` at `level`.
pub fn zlib_with_zeros(prefix: &[u8], zeros: usize, suffix: &[u8], level: u32) -> Vec<u8> {
    let level = Compression::new(level);
    let mut out = vec![0x78, 0x9c];
    let mut z = Compress::new(level, false);
    deflate(&mut z, prefix, FlushCompress::Full, &mut out);
    let mut chunk = Vec::new();
    deflate(
        &mut Compress::new(level, false),
        &vec![0; CHUNK],
        FlushCompress::Full,
        &mut chunk,
    );
    for _ in 0..zeros / CHUNK {
        out.extend_from_slice(&chunk);
    }
    deflate(
        &mut z,
        &vec![0; zeros % CHUNK],
        FlushCompress::Full,
        &mut out,
    );
    deflate(&mut z, suffix, FlushCompress::Finish, &mut out);
    let adler = adler32(adler_zeros(adler32((1, 0), prefix), zeros as u64), suffix);
    out.extend_from_slice(&((adler.1 << 16 | adler.0) as u32).to_be_bytes());
    out
}

fn deflate(z: &mut Compress, mut input: &[u8], flush: FlushCompress, out: &mut Vec<u8>) {
    loop {
        out.reserve(64 * 1024);
        let before = z.total_in();
        let status = z.compress_vec(input, out, flush).unwrap();
        input = &input[(z.total_in() - before) as usize..];
        let drained = out.len() < out.capacity();
        let finishing = matches!(flush, FlushCompress::Finish);
        if status == Status::StreamEnd || (!finishing && input.is_empty() && drained) {
            return;
        }
    }
}

fn adler32((mut a, mut b): (u64, u64), bytes: &[u8]) -> (u64, u64) {
    for &byte in bytes {
        a = (a + byte as u64) % ADLER_MOD;
        b = (b + a) % ADLER_MOD;
    }
    (a, b)
}

/// Adler-32 after `n` zero bytes: `a` stays, `b` gains `a` for each.
fn adler_zeros((a, b): (u64, u64), n: u64) -> (u64, u64) {
    (a, (b + (n % ADLER_MOD) * a) % ADLER_MOD)
}
