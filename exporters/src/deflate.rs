//! Deflating a grain once so the VMDK, the GCE gzip stream and compressed qcow2 can all reuse it.

use flate2::{Compress, Compression, FlushCompress};

use crate::batch::Deflated;

/// The deflate level used for every compressed artifact. Pinned: together with the pinned
/// backend (zlib-rs) it makes compressed output reproducible.
pub const LEVEL: u32 = 6;

/// Deflates `bytes` to a sync-flushed raw deflate stream with a 32 KiB window.
pub fn deflate_grain(bytes: &[u8]) -> Deflated {
    let mut compress = Compress::new_with_window_bits(Compression::new(LEVEL), false, 15);
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 8 + 128);
    loop {
        let consumed = usize::try_from(compress.total_in())
            .unwrap_or(bytes.len())
            .min(bytes.len());
        // An error here would mean a corrupt stream state, impossible for a fresh stream fed
        // in order; the length check below would then fail loudly in every reader.
        let failed = compress
            .compress_vec(&bytes[consumed..], &mut out, FlushCompress::Sync)
            .is_err();
        let all_in = u64::try_from(bytes.len()).is_ok_and(|n| compress.total_in() == n);
        // The flush is complete once the encoder stopped with output space left over.
        if failed || (all_in && out.len() < out.capacity()) {
            break;
        }
        out.reserve(out.capacity());
    }
    let mut adler = adler2::Adler32::new();
    adler.write_slice(bytes);
    let mut crc = flate2::Crc::new();
    crc.update(bytes);
    Deflated {
        raw: out,
        adler32: adler.checksum(),
        crc32: crc.sum(),
        len: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
    }
}

/// A complete zlib (RFC 1950) stream for a deflated grain, as VMDK grains hold.
pub fn zlib_stream(grain: &Deflated) -> Vec<u8> {
    let mut out = Vec::with_capacity(grain.raw.len() + 8);
    out.extend_from_slice(&[0x78, 0x9c]);
    out.extend_from_slice(&grain.raw);
    out.extend_from_slice(&crate::batch::FINAL_EMPTY_BLOCK);
    out.extend_from_slice(&grain.adler32.to_be_bytes());
    out
}

/// A complete raw deflate stream for a deflated grain, as qcow2 compressed clusters hold.
pub fn raw_stream(grain: &Deflated) -> Vec<u8> {
    let mut out = Vec::with_capacity(grain.raw.len() + 2);
    out.extend_from_slice(&grain.raw);
    out.extend_from_slice(&crate::batch::FINAL_EMPTY_BLOCK);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| u8::try_from((i * 7 + i / 300) % 251).unwrap_or(0))
            .collect()
    }

    #[test]
    fn zlib_stream_inflates_to_the_grain() {
        for len in [1, 512, 4096, 65536] {
            let bytes = sample(len);
            let z = zlib_stream(&deflate_grain(&bytes));
            let mut back = Vec::new();
            flate2::read::ZlibDecoder::new(&z[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, bytes, "len {len}");
        }
    }

    #[test]
    fn raw_stream_inflates_and_concatenation_continues_one_stream() {
        let a = sample(65536);
        let b: Vec<u8> = sample(70000)[3000..].to_vec();
        let (da, db) = (deflate_grain(&a), deflate_grain(&b));
        let mut joined = da.raw.clone();
        joined.extend_from_slice(&raw_stream(&db));
        let mut back = Vec::new();
        flate2::read::DeflateDecoder::new(&joined[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, [a, b].concat());
    }

    #[test]
    fn incompressible_grain_still_round_trips() {
        let bytes = fixtures::pattern(1, 65536);
        let z = zlib_stream(&deflate_grain(&bytes));
        let mut back = Vec::new();
        flate2::read::ZlibDecoder::new(&z[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, bytes);
    }
}
