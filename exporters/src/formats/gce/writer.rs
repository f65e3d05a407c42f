//! The GCE writer: one pass, one compression. Grains arrive deflated once by the pipeline
//! (sync-flushed raw deflate, no final block); their streams are appended to a hidden data
//! file while the sparse map, CRC-32 and length accumulate. At the end the tarball is
//! assembled: gzip header ‖ deflated tar header(s) ‖ the data file verbatim ‖ deflated
//! trailer with the final block ‖ CRC-32 ‖ ISIZE.

use std::io::{self, Seek, SeekFrom, Write};
use std::path::Path;

use flate2::{Compress, Compression, FlushCompress, Status};

use super::oldgnu::{SparseEntry, map_with_terminator, sparse_header, trailer_len};
use diskimg::ImageFormat;

use crate::artifact::TempArtifact;
use crate::batch::{Batch, GRAIN_SIZE};
use crate::deflate::LEVEL;
use crate::error::{Error, IoContext, Result};
use crate::format::{Format, GIB};
use crate::pipeline::{DiskWriter, FinishContext, Produced};

/// The fixed gzip member header: deflate, no flags, mtime 0, XFL 0, OS 3 (Unix).
pub const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03];

/// Writes `NAME.tar.gz`: a gzip of an old-GNU tar holding the single sparse member
/// `disk.raw`, whose map has 64 KiB grain granularity.
#[derive(Debug)]
pub struct GceWriter {
    name: String,
    virtual_size: u64,
    /// Concatenated deflate streams of the data grains, in disk order.
    data: TempArtifact,
    /// Maximal runs of non-zero grains.
    chunks: Vec<SparseEntry>,
    /// CRC-32 and length of the uncompressed stored data.
    data_crc: u32,
    stored: u64,
    /// Offset the next batch must start at.
    next: u64,
}

impl GceWriter {
    /// Starts `dir/NAME.tar.gz` for a disk of `virtual_size` bytes (a positive whole number of
    /// GiB, as GCE requires).
    pub fn new(dir: &Path, name: &str, virtual_size: u64) -> Result<Self> {
        if virtual_size == 0 || !virtual_size.is_multiple_of(GIB) {
            return Err(Error::Pipeline(format!(
                "gce: disk.raw must be a positive whole number of GiB, got {virtual_size} bytes"
            )));
        }
        let data = TempArtifact::create(dir, &format!("{name}.tar.gz.data"))?;
        Ok(GceWriter {
            name: name.to_string(),
            virtual_size,
            data,
            chunks: Vec::new(),
            data_crc: 0,
            stored: 0,
            next: 0,
        })
    }
}

impl DiskWriter for GceWriter {
    fn task(&self) -> &'static str {
        "gce"
    }

    fn needs_deflate(&self) -> bool {
        true
    }

    fn consume(&mut self, batch: &Batch) -> Result<()> {
        if batch.offset != self.next || batch.end() > self.virtual_size {
            return Err(Error::Pipeline(format!(
                "gce: batch {}..{} out of order (expected offset {} of {})",
                batch.offset,
                batch.end(),
                self.next,
                self.virtual_size
            )));
        }
        self.next = batch.end();
        let path = self.data.temp_path().to_path_buf();
        for (offset, grain, bytes) in batch.data_grains() {
            let len = u64::try_from(bytes.len()).unwrap_or(GRAIN_SIZE);
            let deflated = grain.deflated.as_ref().ok_or_else(|| {
                Error::Pipeline(format!(
                    "gce: grain at {offset} reached the writer without being deflated"
                ))
            })?;
            if u64::from(deflated.len) != len {
                return Err(Error::Pipeline(format!(
                    "gce: grain at {offset} deflated from {} bytes, holds {len}",
                    deflated.len
                )));
            }
            self.data
                .file()
                .write_all(&deflated.raw)
                .at("writing", &path)?;
            self.data_crc = crc32_combine(self.data_crc, deflated.crc32, len);
            self.stored += len;
            match self.chunks.last_mut() {
                Some(last) if last.end() == Some(offset) => last.len += len,
                _ => self.chunks.push(SparseEntry { offset, len }),
            }
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>, ctx: &FinishContext) -> Result<Vec<Produced>> {
        ctx.check_covered(self.task(), self.next, self.virtual_size)?;
        let map = map_with_terminator(&self.chunks, self.virtual_size);
        let header = sparse_header(
            &map,
            self.stored,
            self.virtual_size,
            ctx.options.source_date_epoch,
        );
        let header_len = u64::try_from(header.len()).unwrap_or(u64::MAX);
        let before_trailer = header_len + self.stored;
        let trailer = vec![0u8; usize::try_from(trailer_len(before_trailer)).unwrap_or(0)];
        let trailer_len = u64::try_from(trailer.len()).unwrap_or(0);
        let tar_len = before_trailer + trailer_len;

        let mut header_crc = flate2::Crc::new();
        header_crc.update(&header);
        let mut trailer_crc = flate2::Crc::new();
        trailer_crc.update(&trailer);
        let crc = crc32_combine(
            crc32_combine(header_crc.sum(), self.data_crc, self.stored),
            trailer_crc.sum(),
            trailer_len,
        );
        let isize = u32::try_from(tar_len % (1 << 32)).unwrap_or(0);

        let data_path = self.data.temp_path().to_path_buf();
        let data_file = self.data.file();
        data_file.flush().at("flushing", &data_path)?;
        data_file
            .seek(SeekFrom::Start(0))
            .at("seeking", &data_path)?;

        let mut out = TempArtifact::create(&ctx.dir, &format!("{}.tar.gz", self.name))?;
        let (size, sha256) = out.write_hashed(|w, out_path| {
            w.write_all(&GZIP_HEADER).at("writing", out_path)?;
            w.write_all(&deflate_raw(&header, FlushCompress::Sync))
                .at("writing", out_path)?;
            io::copy(data_file, w)
                .map_err(|e| Error::io("copying grain data into", out_path, e))?;
            w.write_all(&deflate_raw(&trailer, FlushCompress::Finish))
                .at("writing", out_path)?;
            w.write_all(&crc.to_le_bytes()).at("writing", out_path)?;
            w.write_all(&isize.to_le_bytes()).at("writing", out_path)?;
            Ok(())
        })?;
        tracing::debug!(
            chunks = self.chunks.len(),
            stored = self.stored,
            tar_len,
            gz_len = size,
            "gce: wrote {}",
            out.file_name()
        );
        Ok(vec![Produced::disk(
            out,
            Format::Gce,
            ImageFormat::GceTarGz,
            size,
            sha256,
        )])
    }
}

/// Raw deflate (window 15, level [`LEVEL`]) of `bytes` with a fresh compressor, ended with
/// `flush`: `Sync` leaves the stream open and byte-aligned, `Finish` writes the final block.
pub fn deflate_raw(bytes: &[u8], flush: FlushCompress) -> Vec<u8> {
    let mut compress = Compress::new_with_window_bits(Compression::new(LEVEL), false, 15);
    let mut out = Vec::with_capacity(bytes.len() / 4 + 256);
    let total = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    loop {
        let consumed = usize::try_from(compress.total_in())
            .unwrap_or(bytes.len())
            .min(bytes.len());
        let status = compress.compress_vec(&bytes[consumed..], &mut out, flush);
        let all_in = compress.total_in() == total;
        let done = match (status, flush) {
            (Err(_), _) | (Ok(Status::StreamEnd), _) => true,
            (Ok(_), FlushCompress::Finish) => false,
            // The flush is complete once the encoder stopped with output space left over.
            (Ok(_), _) => all_in && out.len() < out.capacity(),
        };
        if done {
            return out;
        }
        out.reserve(out.capacity().max(256));
    }
}

/// `x^(2^k)` modulo the CRC-32 polynomial (reflected), for k = 0..32.
const X2N: [u32; 32] = {
    let mut table = [0u32; 32];
    let mut p: u32 = 1 << 30; // x^1
    let mut k = 0;
    while k < 32 {
        table[k] = p;
        p = multmodp(p, p);
        k += 1;
    }
    table
};

/// Product of two polynomials modulo the CRC-32 polynomial (zlib's `multmodp`).
const fn multmodp(a: u32, mut b: u32) -> u32 {
    let mut m: u32 = 1 << 31;
    let mut p: u32 = 0;
    loop {
        if a & m != 0 {
            p ^= b;
            if a & (m - 1) == 0 {
                break;
            }
        }
        m >>= 1;
        b = if b & 1 != 0 {
            (b >> 1) ^ 0xedb8_8320
        } else {
            b >> 1
        };
        if m == 0 {
            break;
        }
    }
    p
}

/// CRC-32 of `A ‖ B` from `crc_a`, `crc_b` and the length of `B` (zlib's `crc32_combine`).
pub fn crc32_combine(crc_a: u32, crc_b: u32, len_b: u64) -> u32 {
    // x^(8·len_b) mod P, by squaring.
    let mut op: u32 = 1 << 31;
    let mut n = len_b;
    let mut k = 3usize;
    while n != 0 {
        if n & 1 != 0 {
            op = multmodp(X2N[k % 32], op);
        }
        n >>= 1;
        k += 1;
    }
    multmodp(op, crc_a) ^ crc_b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crc(bytes: &[u8]) -> u32 {
        let mut c = flate2::Crc::new();
        c.update(bytes);
        c.sum()
    }

    #[test]
    fn crc_combine_matches_crc_of_the_concatenation() {
        let a: Vec<u8> = (0..70_001u32)
            .map(|i| u8::try_from(i * 31 % 251).unwrap())
            .collect();
        let b: Vec<u8> = (0..65_536u32)
            .map(|i| u8::try_from(i * 17 % 241).unwrap())
            .collect();
        for (x, y) in [
            (&a[..], &b[..]),
            (&a[..0], &b[..]),
            (&a[..], &b[..0]),
            (&a[..1], &b[..3]),
        ] {
            let joined = [x, y].concat();
            assert_eq!(
                crc32_combine(crc(x), crc(y), u64::try_from(y.len()).unwrap()),
                crc(&joined)
            );
        }
    }

    #[test]
    fn raw_deflate_of_header_and_trailer_inflates() {
        use std::io::Read;
        let head: Vec<u8> = (0..1536u32).map(|i| u8::try_from(i % 7).unwrap()).collect();
        let mut stream = deflate_raw(&head, FlushCompress::Sync);
        stream.extend(deflate_raw(&[0u8; 9216], FlushCompress::Finish));
        let mut back = Vec::new();
        flate2::read::DeflateDecoder::new(&stream[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back.len(), 1536 + 9216);
        assert_eq!(&back[..1536], &head[..]);
    }
}
