//! The VHD's pages: which 512-byte pages hold data (holes by SEEK_DATA/SEEK_HOLE, then zero
//! pages skipped), written with Put Page in runs of at most 4 MiB by a few threads, and read
//! back through Get Page Ranges and ranged Get Blob into a SHA-256 of the whole blob.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use nix::unistd::{Whence, lseek};
use sha2::{Digest, Sha256};

use super::rest::BlobClient;
use crate::error::{Error, Result};

/// A page.
pub const PAGE: u64 = 512;
/// The most one Put Page may write.
pub const MAX_PUT: u64 = 4 << 20;
/// Concurrent Put Page calls.
const WORKERS: usize = 4;
/// Bytes per ranged Get Blob when reading back.
const GET_CHUNK: u64 = 8 << 20;

/// A length within a buffer of at most [`GET_CHUNK`] bytes as an index.
fn offset(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// `[start, end)` ranges.
pub type Ranges = Vec<(u64, u64)>;

fn input(path: &Path, why: impl std::fmt::Display) -> Error {
    Error::Input {
        path: path.to_owned(),
        why: why.to_string(),
    }
}

/// The file's ranges that may hold data (SEEK_DATA/SEEK_HOLE; the whole file where the
/// filesystem cannot say), widened to pages, with the last page (the VHD footer) always in.
pub fn data_windows(file: &File, path: &Path, size: u64) -> Result<Ranges> {
    let mut ranges = Vec::new();
    let mut pos = 0u64;
    while pos < size {
        let Ok(at) = i64::try_from(pos) else { break };
        let data = match lseek(file, at, Whence::SeekData) {
            Ok(d) => u64::try_from(d).unwrap_or(size),
            Err(nix::errno::Errno::ENXIO) => break,
            Err(nix::errno::Errno::EINVAL | nix::errno::Errno::EOPNOTSUPP) => {
                ranges = vec![(0, size)];
                break;
            }
            Err(e) => return Err(input(path, format!("seeking data: {e}"))),
        };
        let Ok(at) = i64::try_from(data) else { break };
        let hole = match lseek(file, at, Whence::SeekHole) {
            Ok(h) => u64::try_from(h).unwrap_or(size),
            Err(e) => return Err(input(path, format!("seeking a hole: {e}"))),
        };
        let end = hole.min(size);
        if end > data {
            ranges.push((data, end));
        }
        pos = end.max(data + 1);
    }
    ranges.push((size - PAGE, size));
    let mut aligned: Ranges = ranges
        .into_iter()
        .map(|(s, e)| {
            (
                s / PAGE * PAGE,
                e.div_ceil(PAGE).saturating_mul(PAGE).min(size),
            )
        })
        .collect();
    aligned.sort_unstable();
    Ok(merge(aligned))
}

/// Sorted ranges with overlapping and touching ones joined.
pub fn merge(ranges: Ranges) -> Ranges {
    let mut out: Ranges = Vec::with_capacity(ranges.len());
    for (s, e) in ranges {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// Total bytes of `ranges`.
pub fn bytes(ranges: &[(u64, u64)]) -> u64 {
    ranges.iter().map(|(s, e)| e - s).sum()
}

/// Runs of non-zero pages in `buf` (read at `base`), as blob ranges; the page at
/// `footer` is kept even when zero.
fn nonzero_runs(buf: &[u8], base: u64, footer: u64) -> Ranges {
    let mut out: Ranges = Vec::new();
    for (i, page) in buf.chunks(offset(PAGE)).enumerate() {
        let at = base + i as u64 * PAGE;
        if at == footer || page.iter().any(|&b| b != 0) {
            let end = at + page.len() as u64;
            match out.last_mut() {
                Some(last) if last.1 == at => last.1 = end,
                _ => out.push((at, end)),
            }
        }
    }
    out
}

/// Writes every non-zero page of `file` (`size` bytes) to the blob; returns the ranges
/// written, merged.
pub fn upload(client: &BlobClient, file: &File, path: &Path, size: u64) -> Result<Ranges> {
    let windows: Vec<(u64, u64)> = data_windows(file, path, size)?
        .into_iter()
        .flat_map(|(s, e)| {
            (s..e)
                .step_by(offset(MAX_PUT))
                .map(move |at| (at, (at + MAX_PUT).min(e)))
        })
        .collect();
    let footer = size - PAGE;
    let next = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let written = Mutex::new(Vec::new());
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    // The workers log (retries) to the caller's subscriber.
    let dispatch = tracing::dispatcher::get_default(Clone::clone);
    std::thread::scope(|scope| {
        for _ in 0..WORKERS.min(windows.len()) {
            scope.spawn(|| {
                let _log = tracing::dispatcher::set_default(&dispatch);
                let mut buf = vec![0u8; offset(MAX_PUT)];
                loop {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(start, end)) = usize::try_from(i).ok().and_then(|i| windows.get(i))
                    else {
                        return;
                    };
                    let len = offset(end - start);
                    let result = file
                        .read_exact_at(&mut buf[..len], start)
                        .map_err(|e| input(path, format!("reading at {start}: {e}")))
                        .and_then(|()| {
                            let runs = nonzero_runs(&buf[..len], start, footer);
                            for &(s, e) in &runs {
                                let from = offset(s - start);
                                let to = offset(e - start);
                                client.put_page(s, &buf[from..to])?;
                            }
                            Ok(runs)
                        });
                    match result {
                        Ok(runs) => {
                            if let Ok(mut w) = written.lock() {
                                w.extend(runs);
                            }
                        }
                        Err(e) => {
                            stop.store(true, Ordering::Relaxed);
                            if let Ok(mut slot) = first_error.lock() {
                                slot.get_or_insert(e);
                            }
                            return;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().ok().flatten() {
        return Err(e);
    }
    let mut written = written.into_inner().unwrap_or_default();
    written.sort_unstable();
    Ok(merge(written))
}

/// Reads the blob back: Get Page Ranges must list exactly `written`, and the SHA-256 of the
/// whole blob (the listed ranges by ranged Get Blob, zeros elsewhere as the service defines
/// unwritten pages) must be `want_sha256`. Returns nothing on a match, else
/// [`Error::ReadBack`].
pub fn read_back(
    client: &BlobClient,
    size: u64,
    written: &[(u64, u64)],
    want_sha256: &str,
) -> Result<()> {
    let listed = merge(client.page_ranges()?);
    if listed != written {
        return Err(Error::ReadBack {
            what: format!("page ranges of {}", client.url),
            got: format!("{} ranges, {} bytes", listed.len(), bytes(&listed)),
            want: format!(
                "the {} ranges, {} bytes written",
                written.len(),
                bytes(written)
            ),
        });
    }
    let got = blob_sha256(client, size, &listed)?;
    if got != want_sha256 {
        return Err(Error::ReadBack {
            what: format!("sha256 of {}", client.url),
            got,
            want: want_sha256.to_owned(),
        });
    }
    Ok(())
}

/// SHA-256 (hex) of the blob's `size` bytes: `ranges` read by ranged Get Blob, zeros between.
pub fn blob_sha256(client: &BlobClient, size: u64, ranges: &[(u64, u64)]) -> Result<String> {
    let mut hash = Sha256::new();
    let zeros = vec![0u8; offset(GET_CHUNK)];
    let hash_zeros = |hash: &mut Sha256, mut n: u64| {
        while n > 0 {
            let k = n.min(GET_CHUNK);
            hash.update(&zeros[..offset(k)]);
            n -= k;
        }
    };
    let mut at = 0u64;
    for &(s, e) in ranges {
        let e = e.min(size);
        if s < at || s >= e {
            continue;
        }
        hash_zeros(&mut hash, s - at);
        let mut p = s;
        while p < e {
            let q = (p + GET_CHUNK).min(e);
            hash.update(client.get_range(p, q)?);
            p = q;
        }
        at = e;
    }
    hash_zeros(&mut hash, size - at);
    Ok(hex::encode(hash.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn zero_pages_are_skipped_but_the_footer_is_kept() {
        let mut buf = vec![0u8; 8 * 512];
        buf[512 + 3] = 1;
        buf[1024] = 2;
        buf[4 * 512] = 3;
        assert_eq!(
            nonzero_runs(&buf, 4096, 4096 + 7 * 512),
            [(4608, 5632), (6144, 6656), (7680, 8192)]
        );
    }

    #[test]
    fn data_windows_follow_holes_and_keep_the_footer() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("f.vhd");
        let mut f = File::create(&path).unwrap();
        f.set_len(64 << 20).unwrap();
        f.write_all_at(b"x", (8 << 20) + 700).unwrap();
        f.write_all_at(b"conectix", (64 << 20) - 512).unwrap();
        f.flush().unwrap();
        let f = File::open(&path).unwrap();
        let w = data_windows(&f, &path, 64 << 20).unwrap();
        assert!(
            w.iter()
                .any(|&(s, e)| s <= (8 << 20) + 512 && e > (8 << 20) + 700),
            "{w:?}"
        );
        assert_eq!(w.last().unwrap().1, 64 << 20);
        assert!(bytes(&w) < 64 << 20, "{w:?}");
        assert!(w.iter().all(|(s, e)| s % 512 == 0 && e % 512 == 0));
    }

    #[test]
    fn merge_joins_touching_ranges() {
        assert_eq!(
            merge(vec![(0, 512), (512, 1024), (2048, 2560), (2048, 4096)]),
            [(0, 1024), (2048, 4096)]
        );
    }
}
