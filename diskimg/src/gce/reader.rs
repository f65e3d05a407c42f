//! An independent streaming reader for GCE tarballs: gunzip, parse the one header (old-GNU
//! sparse or regular), expand `disk.raw` in order without materializing holes, and insist
//! on exactly one member. Every problem is an [`Error::Corrupt`]; nothing panics.

use std::io::{self, BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;
use sha2::{Digest, Sha256};

use super::GceContent;
use super::oldgnu::{
    BLOCK, BLOCK_BYTES, SparseEntry, member_name, parse_extension, parse_member_header,
};
use crate::error::{Error, IoContext, Result};

/// Upper bound on sparse map entries held in memory (128 MiB of map).
pub const MAX_ENTRIES: usize = 1 << 23;
/// How often progress is reported, in bytes of the disk.
const PROGRESS_STEP: u64 = 64 << 20;

/// Receives the expanded `disk.raw`, in order.
pub trait DiskSink {
    /// `bytes` of data.
    fn data(&mut self, bytes: &[u8]);
    /// `len` zero bytes (a hole).
    fn zeros(&mut self, len: u64);
}

/// Hashes the expanded disk.
#[derive(Debug, Default)]
pub struct HashSink(pub Sha256);

impl DiskSink for HashSink {
    fn data(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    fn zeros(&mut self, len: u64) {
        static ZEROS: [u8; 1 << 16] = [0; 1 << 16];
        let mut left = len;
        while left > 0 {
            let n = usize::try_from(left)
                .unwrap_or(ZEROS.len())
                .min(ZEROS.len());
            self.0.update(&ZEROS[..n]);
            left -= u64::try_from(n).unwrap_or(left);
        }
    }
}

/// Decompresses and parses `path`, checking that it holds exactly `disk.raw`, and hashes it.
pub fn read_content(path: &Path, on_progress: &mut dyn FnMut(u64)) -> Result<GceContent> {
    let mut sink = HashSink::default();
    let virtual_size = read_disk(path, &mut sink, on_progress)?;
    Ok(GceContent {
        virtual_size,
        content_digest: sink.0.finalize().into(),
    })
}

/// Streams the `disk.raw` of the tarball at `path` into `sink`; returns its size.
pub fn read_disk(
    path: &Path,
    sink: &mut dyn DiskSink,
    on_progress: &mut dyn FnMut(u64),
) -> Result<u64> {
    let mut file = crate::input_file::open_regular(path).at("opening", path)?;
    let mut magic = [0u8; 2];
    let got = read_full(&mut file, &mut magic).at("reading", path)?;
    if got < 2 || magic != [0x1f, 0x8b] {
        return Err(Error::corrupt(path, 0, "not a gzip file (no 1f 8b magic)"));
    }
    let file = crate::input_file::open_regular(path).at("opening", path)?;
    let mut tar = TarStream {
        inner: MultiGzDecoder::new(BufReader::with_capacity(1 << 20, file)),
        pos: 0,
        path,
    };
    expand(&mut tar, sink, on_progress)
}

/// The decompressed tar, with the position for messages.
struct TarStream<'a, R> {
    inner: R,
    pos: u64,
    path: &'a Path,
}

impl<R: Read> TarStream<'_, R> {
    fn corrupt(&self, at: u64, reason: impl Into<String>) -> Error {
        Error::corrupt(
            self.path,
            at,
            format!("{} (offset in the decompressed tar)", reason.into()),
        )
    }

    /// Fills `buf` completely or fails, naming `what` was being read.
    fn read_exact(&mut self, buf: &mut [u8], what: &str) -> Result<()> {
        match read_full(&mut self.inner, buf) {
            Ok(n) if n == buf.len() => {
                self.pos += u64::try_from(n).unwrap_or(0);
                Ok(())
            }
            Ok(n) => {
                let at = self.pos + u64::try_from(n).unwrap_or(0);
                Err(self.corrupt(at, format!("truncated: the archive ends inside {what}")))
            }
            Err(e) => Err(self.gzip_error(&e, what)),
        }
    }

    fn gzip_error(&self, e: &io::Error, what: &str) -> Error {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            self.corrupt(
                self.pos,
                format!("truncated gzip stream while reading {what}: {e}"),
            )
        } else {
            self.corrupt(
                self.pos,
                format!("bad gzip stream while reading {what}: {e}"),
            )
        }
    }

    fn read_block(&mut self, what: &str) -> Result<[u8; BLOCK]> {
        let mut block = [0u8; BLOCK];
        self.read_exact(&mut block, what)?;
        Ok(block)
    }
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn expand<R: Read>(
    tar: &mut TarStream<'_, R>,
    sink: &mut dyn DiskSink,
    on_progress: &mut dyn FnMut(u64),
) -> Result<u64> {
    let header_at = tar.pos;
    let block = tar.read_block("the first tar header")?;
    if block.iter().all(|&b| b == 0) {
        return Err(tar.corrupt(header_at, "empty archive: no disk.raw member"));
    }
    let header = parse_member_header(&block)
        .map_err(|(at, reason)| tar.corrupt(header_at + offset(at), reason))?;
    let mut map = header.entries;
    let mut extended = header.extended;
    while extended {
        let at = tar.pos;
        let ext = tar.read_block("a sparse extension header")?;
        let (entries, more) =
            parse_extension(&ext).map_err(|(i, reason)| tar.corrupt(at + offset(i), reason))?;
        map.extend(entries);
        if map.len() > MAX_ENTRIES {
            return Err(tar.corrupt(
                at,
                format!("sparse map has more than {MAX_ENTRIES} entries"),
            ));
        }
        extended = more;
    }
    check_map(&map, header.stored, header.realsize)
        .map_err(|reason| tar.corrupt(header_at, reason))?;
    tracing::debug!(
        entries = map.len(),
        stored = header.stored,
        realsize = header.realsize,
        "gce: reading disk.raw"
    );

    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    let mut reported = 0u64;
    for entry in &map {
        zeros_until(sink, &mut done, entry.offset, &mut reported, on_progress);
        let mut left = entry.len;
        while left > 0 {
            let n = usize::try_from(left).unwrap_or(buf.len()).min(buf.len());
            tar.read_exact(&mut buf[..n], "the data of disk.raw")?;
            sink.data(&buf[..n]);
            let step = u64::try_from(n).unwrap_or(left);
            left -= step;
            done += step;
            if done - reported >= PROGRESS_STEP {
                reported = done;
                on_progress(done);
            }
        }
        if done - reported >= PROGRESS_STEP {
            reported = done;
            on_progress(done);
        }
    }
    zeros_until(sink, &mut done, header.realsize, &mut reported, on_progress);
    on_progress(header.realsize);

    let pad = (BLOCK_BYTES - header.stored % BLOCK_BYTES) % BLOCK_BYTES;
    let mut padding = [0u8; BLOCK];
    tar.read_exact(
        &mut padding[..usize::try_from(pad).unwrap_or(0)],
        "the padding of disk.raw",
    )?;
    check_end(tar)?;
    Ok(header.realsize)
}

/// Feeds the hole `done..to` to `sink` in steps, reporting progress as it goes.
fn zeros_until(
    sink: &mut dyn DiskSink,
    done: &mut u64,
    to: u64,
    reported: &mut u64,
    on_progress: &mut dyn FnMut(u64),
) {
    while *done < to {
        let step = (to - *done).min(PROGRESS_STEP);
        sink.zeros(step);
        *done += step;
        if *done - *reported >= PROGRESS_STEP {
            *reported = *done;
            on_progress(*done);
        }
    }
}

/// After the member: two zero blocks, then only zeros up to the end of the gzip stream (whose
/// CRC-32 and length the decoder checks when it reaches the end).
fn check_end<R: Read>(tar: &mut TarStream<'_, R>) -> Result<()> {
    for i in 0..2 {
        let at = tar.pos;
        let block = tar.read_block("the end-of-archive blocks")?;
        if block.iter().any(|&b| b != 0) {
            let reason = if i == 0 {
                format!(
                    "a second member {:?} follows disk.raw; a GCE tarball holds exactly one",
                    member_name(&block)
                )
            } else {
                "a lone zero block is followed by more data; expected two zero blocks".to_string()
            };
            return Err(tar.corrupt(at, reason));
        }
    }
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let at = tar.pos;
        let n = match tar.inner.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(tar.gzip_error(&e, "the end of the archive")),
        };
        if let Some(i) = buf[..n].iter().position(|&b| b != 0) {
            return Err(tar.corrupt(at + offset(i), "data after the end-of-archive blocks"));
        }
        tar.pos += u64::try_from(n).unwrap_or(0);
    }
}

/// Entries must be in order, not overlap, stay within `realsize`, and add up to `stored`.
fn check_map(map: &[SparseEntry], stored: u64, realsize: u64) -> std::result::Result<(), String> {
    let mut prev_end = 0u64;
    let mut sum = 0u64;
    for (i, e) in map.iter().enumerate() {
        let end = e
            .end()
            .ok_or_else(|| format!("sparse entry {i} ({} + {}) overflows", e.offset, e.len))?;
        if e.offset < prev_end {
            return Err(format!(
                "sparse entry {i} at {} starts before the end of the previous one ({prev_end}): out of order or overlapping",
                e.offset
            ));
        }
        if end > realsize {
            return Err(format!(
                "sparse entry {i} ({}..{end}) runs past the file size {realsize}",
                e.offset
            ));
        }
        prev_end = end;
        sum = sum
            .checked_add(e.len)
            .ok_or("sparse entry lengths overflow")?;
    }
    if sum != stored {
        return Err(format!(
            "the sparse map holds {sum} bytes but the header size field says {stored} are stored"
        ));
    }
    Ok(())
}

fn offset(i: usize) -> u64 {
    u64::try_from(i).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(offset: u64, len: u64) -> SparseEntry {
        SparseEntry { offset, len }
    }

    #[test]
    fn map_checks_catch_disorder_overlap_overflow_and_size_mismatch() {
        assert!(check_map(&[e(0, 10), e(20, 5), e(100, 0)], 15, 100).is_ok());
        let bad: [(&[SparseEntry], u64, u64, &str); 5] = [
            (&[e(20, 5), e(0, 10)], 15, 100, "out of order"),
            (&[e(0, 10), e(5, 10)], 20, 100, "overlapping"),
            (&[e(95, 10)], 10, 100, "past the file size"),
            (&[e(u64::MAX, 10)], 10, u64::MAX, "overflows"),
            (&[e(0, 10)], 11, 100, "header size field"),
        ];
        for (map, stored, realsize, needle) in bad {
            let err = check_map(map, stored, realsize).unwrap_err();
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }
}
