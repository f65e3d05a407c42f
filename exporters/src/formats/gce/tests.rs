//! Writer ↔ GNU tar/gzip ↔ own reader, on sparse 1 GiB (and one 10 GiB) disks.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::oldgnu::{self, BLOCK};
use super::reader::{DiskSink, read_disk};
use super::{GceWriter, read_content};
use crate::batch::{Batch, BatchContent, DataBatch, GRAIN_BYTES, GRAIN_SIZE, Grain};
use crate::deflate::deflate_grain;
use crate::format::{ExportOptions, Format, GIB};
use crate::pipeline::{BATCH_SIZE, DiskWriter, FinishContext, Role};
use diskimg::Error;

/// A virtual disk: its size and the non-zero grains (index → content seed).
#[derive(Debug, Clone)]
struct Layout {
    size: u64,
    grains: BTreeMap<u64, u8>,
}

impl Layout {
    fn new(size: u64, grains: impl IntoIterator<Item = u64>) -> Self {
        Layout {
            size,
            grains: grains
                .into_iter()
                .map(|g| (g, u8::try_from(g % 251).unwrap()))
                .collect(),
        }
    }

    /// Maximal runs of consecutive data grains, as (offset, len).
    fn runs(&self) -> Vec<(u64, u64)> {
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for &g in self.grains.keys() {
            match runs.last_mut() {
                Some((off, len)) if *off + *len == g * GRAIN_SIZE => *len += GRAIN_SIZE,
                _ => runs.push((g * GRAIN_SIZE, GRAIN_SIZE)),
            }
        }
        runs
    }
}

/// Non-zero, partly compressible, distinct per grain and seed.
fn grain_bytes(index: u64, seed: u8) -> Vec<u8> {
    let mut x = index.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(seed) ^ 0x1234_5678;
    (0..GRAIN_BYTES)
        .map(|i| {
            if i < 2048 || i % 4096 == 7 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x.to_le_bytes()[0] | 1
            } else {
                u8::try_from(i % 13).unwrap().wrapping_add(seed)
            }
        })
        .collect()
}

/// The batches the pipeline would send: 4 MiB data batches where there is data (grains
/// deflated), zero batches elsewhere.
fn batches(layout: &Layout) -> Vec<Batch> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < layout.size {
        let len = BATCH_SIZE.min(layout.size - pos);
        let first = pos / GRAIN_SIZE;
        let in_batch: Vec<(u64, u8)> = layout
            .grains
            .range(first..(pos + len) / GRAIN_SIZE)
            .map(|(&g, &s)| (g, s))
            .collect();
        let content = if in_batch.is_empty() {
            BatchContent::Zero
        } else {
            let mut bytes = vec![0u8; usize::try_from(len).unwrap()];
            let mut grains = vec![
                Grain {
                    zero: true,
                    deflated: None
                };
                bytes.len() / GRAIN_BYTES
            ];
            for (g, seed) in in_batch {
                let at = usize::try_from(g - first).unwrap();
                let data = grain_bytes(g, seed);
                bytes[at * GRAIN_BYTES..(at + 1) * GRAIN_BYTES].copy_from_slice(&data);
                grains[at] = Grain {
                    zero: false,
                    deflated: Some(Arc::new(deflate_grain(&data))),
                };
            }
            BatchContent::Data(DataBatch { bytes, grains })
        };
        out.push(Batch {
            offset: pos,
            len,
            content,
        });
        pos += len;
    }
    out
}

fn ctx(dir: &Path, size: u64) -> FinishContext {
    FinishContext {
        content_digest: [0; 32],
        content_hasher: Sha256::new(),
        virtual_size: size,
        options: ExportOptions::new("t"),
        dir: dir.to_path_buf(),
    }
}

/// Runs the writer over `layout` and commits `dir/t.tar.gz`.
fn export(dir: &Path, layout: &Layout) -> PathBuf {
    let mut writer = Box::new(GceWriter::new(dir, "t", layout.size).unwrap());
    assert!(writer.needs_deflate());
    for batch in batches(layout) {
        writer.consume(&batch).unwrap();
    }
    let mut produced = writer.finish(&ctx(dir, layout.size)).unwrap();
    assert_eq!(produced.len(), 1);
    let p = produced.pop().unwrap();
    assert_eq!(
        (p.format, p.role, p.container),
        (Format::Gce, Role::Disk, "tar.gz")
    );
    let path = p.artifact.commit().unwrap();
    assert_eq!(path, dir.join("t.tar.gz"));
    let bytes = fs::read(&path).unwrap();
    assert_eq!(p.size, u64::try_from(bytes.len()).unwrap());
    assert_eq!(
        p.sha256,
        <[u8; 32]>::from(Sha256::digest(&bytes)),
        "reported sha256 differs from the file's"
    );
    let names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["t.tar.gz"], "temporary data file left behind");
    path
}

/// Writes the expected raw image sparsely.
fn write_raw(path: &Path, layout: &Layout) {
    let mut f = fs::File::create(path).unwrap();
    f.set_len(layout.size).unwrap();
    for (&g, &seed) in &layout.grains {
        f.seek(SeekFrom::Start(g * GRAIN_SIZE)).unwrap();
        f.write_all(&grain_bytes(g, seed)).unwrap();
    }
}

fn expected_digest(layout: &Layout) -> [u8; 32] {
    let zeros = vec![0u8; GRAIN_BYTES];
    let mut h = Sha256::new();
    for g in 0..layout.size / GRAIN_SIZE {
        match layout.grains.get(&g) {
            Some(&seed) => h.update(grain_bytes(g, seed)),
            None => h.update(&zeros),
        }
    }
    h.finalize().into()
}

/// Records the data grains it is fed (the writer stores whole grains only).
#[derive(Default)]
struct GrainSink {
    pos: u64,
    grains: BTreeMap<u64, Vec<u8>>,
}

impl DiskSink for GrainSink {
    fn data(&mut self, bytes: &[u8]) {
        assert_eq!(self.pos % GRAIN_SIZE, 0);
        for chunk in bytes.chunks(GRAIN_BYTES) {
            assert_eq!(chunk.len(), GRAIN_BYTES);
            self.grains.insert(self.pos / GRAIN_SIZE, chunk.to_vec());
            self.pos += GRAIN_SIZE;
        }
    }
    fn zeros(&mut self, len: u64) {
        self.pos += len;
    }
}

fn check_grains(path: &Path, layout: &Layout) {
    let mut sink = GrainSink::default();
    let size = read_disk(path, &mut sink, &mut |_| {}).unwrap();
    assert_eq!((size, sink.pos), (layout.size, layout.size));
    let expect: BTreeMap<u64, Vec<u8>> = layout
        .grains
        .iter()
        .map(|(&g, &s)| (g, grain_bytes(g, s)))
        .collect();
    assert!(
        sink.grains == expect,
        "grains read back differ from the layout"
    );
}

fn gnu_tools() -> bool {
    let ok = |cmd: &str| {
        Command::new(cmd)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let gnu_tar = Command::new("tar")
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("GNU tar"));
    if !(gnu_tar && ok("gzip") && ok("cmp")) {
        println!("SKIP: GNU tar, gzip or cmp not found");
        return false;
    }
    true
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.is_empty(),
        "{cmd} {args:?} failed: {stderr}"
    );
    String::from_utf8(out.stdout).unwrap()
}

/// gzip -t, tar -tvf, tar --list --format=oldgnu, tar -xSzf (+ cmp unless `cmp_all` is off).
fn check_with_gnu(path: &Path, layout: &Layout, cmp_all: bool) {
    if !gnu_tools() {
        return;
    }
    let p = path.to_str().unwrap();
    run("gzip", &["-t", p]);
    let listing = run("tar", &["-tvf", p]);
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 1, "tar -tv lists {listing:?}");
    let fields: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(fields.len(), 6, "{listing:?}");
    assert_eq!((fields[0], fields[1]), ("-rw-r--r--", "0/0"));
    assert_eq!(fields[2], layout.size.to_string());
    assert_eq!(fields[5], "disk.raw");
    assert_eq!(
        run("tar", &["--list", "--format=oldgnu", "-f", p]),
        "disk.raw\n"
    );

    let out = tempfile::tempdir().unwrap();
    let dest = out.path().to_str().unwrap();
    run("tar", &["-xSzf", p, "-C", dest]);
    let extracted = out.path().join("disk.raw");
    assert_eq!(fs::metadata(&extracted).unwrap().len(), layout.size);
    if cmp_all {
        let expected = out.path().join("expected.raw");
        write_raw(&expected, layout);
        run(
            "cmp",
            &[extracted.to_str().unwrap(), expected.to_str().unwrap()],
        );
    } else {
        let mut f = fs::File::open(&extracted).unwrap();
        let mut buf = vec![0u8; GRAIN_BYTES];
        for (&g, &seed) in &layout.grains {
            f.seek(SeekFrom::Start(g * GRAIN_SIZE)).unwrap();
            f.read_exact(&mut buf).unwrap();
            assert!(
                buf == grain_bytes(g, seed),
                "grain {g} differs after tar -x"
            );
        }
    }
}

/// The full check of one 1 GiB layout: GNU tools, own reader digest, map as designed.
fn round_trip(layout: &Layout) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = export(dir.path(), layout);
    check_with_gnu(&path, layout, true);
    let mut seen = Vec::new();
    let content = read_content(&path, &mut |done| seen.push(done)).unwrap();
    assert_eq!(content.virtual_size, layout.size);
    assert_eq!(content.content_digest, expected_digest(layout));
    assert!(
        seen.len() >= 8 && seen.is_sorted() && seen.last() == Some(&layout.size),
        "progress {seen:?}"
    );
    check_grains(&path, layout);
    check_map(&path, layout);
    fs::read(&path).unwrap()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// The header's map is the layout's runs (+ terminator), record-padded, size = stored.
fn check_map(path: &Path, layout: &Layout) {
    let tar = gunzip(&fs::read(path).unwrap());
    assert_eq!(tar.len() % 10240, 0);
    let header = oldgnu::parse_member_header(tar[..BLOCK].try_into().unwrap()).unwrap();
    let mut map = header.entries.clone();
    let mut at = BLOCK;
    let mut extended = header.extended;
    while extended {
        let (entries, more) =
            oldgnu::parse_extension(tar[at..at + BLOCK].try_into().unwrap()).unwrap();
        map.extend(entries);
        extended = more;
        at += BLOCK;
    }
    let mut expect: Vec<oldgnu::SparseEntry> = layout
        .runs()
        .into_iter()
        .map(|(offset, len)| oldgnu::SparseEntry { offset, len })
        .collect();
    if expect.last().and_then(oldgnu::SparseEntry::end) != Some(layout.size) {
        expect.push(oldgnu::SparseEntry {
            offset: layout.size,
            len: 0,
        });
    }
    assert_eq!(map, expect);
    assert_eq!(
        header.stored,
        GRAIN_SIZE * u64::try_from(layout.grains.len()).unwrap()
    );
    assert_eq!(header.realsize, layout.size);
}

#[test]
fn data_at_offset_zero_only() {
    round_trip(&Layout::new(GIB, [0]));
}

#[test]
fn data_in_the_very_last_grain() {
    round_trip(&Layout::new(GIB, [GIB / GRAIN_SIZE - 1]));
}

#[test]
fn more_than_four_chunks_and_merged_runs() {
    // Six single grains, one run of six grains crossing a batch boundary, one lone grain.
    let grains = [0, 2, 4, 6, 8, 10].into_iter().chain(61..67).chain([5000]);
    round_trip(&Layout::new(GIB, grains));
}

#[test]
fn more_than_twenty_five_chunks_use_two_extension_blocks() {
    // 40 chunks ending in data: 4 + 21 + 15 entries, no terminator.
    let grains = (0..39)
        .map(|i| i * 400 + i % 3)
        .chain([GIB / GRAIN_SIZE - 1]);
    round_trip(&Layout::new(GIB, grains));
}

#[test]
fn exactly_twenty_five_entries_fill_one_extension_block() {
    // 24 chunks + terminator = 4 + 21: one full extension block whose isextended is 0.
    let layout = Layout::new(GIB, (0..24).map(|i| i * 100 + 3));
    let tar = gunzip(&round_trip(&layout));
    assert_eq!(tar[482], 1);
    assert_eq!(tar[BLOCK + 504], 0);
    assert!(
        tar[2 * BLOCK..2 * BLOCK + GRAIN_BYTES] == grain_bytes(3, 3)[..],
        "data does not follow one ext block"
    );
}

#[test]
fn all_zero_disk() {
    let layout = Layout::new(GIB, []);
    let tar = gunzip(&round_trip(&layout));
    assert_eq!(tar.len(), 10240);
    assert_eq!(
        &tar[386..410],
        b"10000000000\x0000000000000\0",
        "terminator {{realsize = 1 GiB, 0}}"
    );
    assert_eq!(&tar[124..136], b"00000000000\0");
}

#[test]
fn ten_gib_disk_uses_base256_sizes() {
    let grains = [0, 9 * GIB / GRAIN_SIZE + 17, 10 * GIB / GRAIN_SIZE - 2];
    let layout = Layout::new(10 * GIB, grains);
    let dir = tempfile::tempdir().unwrap();
    let path = export(dir.path(), &layout);
    check_with_gnu(&path, &layout, false);
    check_grains(&path, &layout);
    check_map(&path, &layout);
    let tar = gunzip(&fs::read(&path).unwrap());
    assert_eq!(
        hex::encode(&tar[483..495]),
        "800000000000000280000000",
        "realsize not base-256"
    );
}

#[test]
fn output_is_deterministic_and_gzip_header_fixed() {
    let layout = Layout::new(GIB, [1, 2, 3, 700, 9000]);
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = fs::read(export(a.path(), &layout)).unwrap();
    let second = fs::read(export(b.path(), &layout)).unwrap();
    assert!(first == second, "two exports differ");
    assert_eq!(first[..10], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
    let tar = gunzip(&first);
    assert_eq!(&tar[100..124], b"0000644\x000000000\x000000000\0");
    assert_eq!(
        &tar[136..148],
        b"07033241600\0",
        "mtime is not SOURCE_DATE_EPOCH"
    );
    assert_eq!(&tar[257..265], b"ustar  \0");
}

#[test]
fn sizes_that_are_not_whole_gib_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for size in [0, GIB + 512, GIB - GRAIN_SIZE] {
        assert!(
            GceWriter::new(dir.path(), "t", size).is_err(),
            "{size} accepted"
        );
    }
}

/// A small good tarball and its decompressed tar.
fn sample() -> (tempfile::TempDir, PathBuf, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let path = export(dir.path(), &Layout::new(GIB, [0, 1, 50]));
    let tar = gunzip(&fs::read(&path).unwrap());
    (dir, path, tar)
}

fn assert_corrupt(path: &Path, needle: &str) {
    let err = read_content(path, &mut |_| {}).unwrap_err();
    assert!(
        matches!(&err, Error::Corrupt { path: p, .. } if p == path),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains(path.to_str().unwrap()) && text.contains(needle),
        "{text}"
    );
}

fn fix_checksum(block: &mut [u8]) {
    block[148..156].fill(b' ');
    let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
    block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

#[test]
fn truncated_gzip_is_rejected() {
    let (dir, path, _) = sample();
    let bytes = fs::read(&path).unwrap();
    let bad = dir.path().join("cut.tar.gz");
    for keep in [
        5,
        40,
        bytes.len() / 2,
        bytes.len() - 30,
        bytes.len() - 4,
        bytes.len() - 1,
    ] {
        fs::write(&bad, &bytes[..keep]).unwrap();
        let err = read_content(&bad, &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains(bad.to_str().unwrap()), "{err}");
        assert!(matches!(err, Error::Corrupt { .. }), "{keep}: {err:?}");
    }
}

#[test]
fn a_second_member_is_rejected() {
    let (dir, _, tar) = sample();
    let stored = 3 * GRAIN_BYTES;
    let member_end = BLOCK + stored;
    assert!(tar[member_end..].iter().all(|&b| b == 0));
    let mut extra = [0u8; BLOCK];
    extra[..9].copy_from_slice(b"extra.txt");
    extra[100..108].copy_from_slice(b"0000644\0");
    extra[124..136].copy_from_slice(b"00000000000\0");
    extra[156] = b'0';
    extra[257..265].copy_from_slice(b"ustar  \0");
    fix_checksum(&mut extra);
    let mut two = tar[..member_end].to_vec();
    two.extend_from_slice(&extra);
    two.extend_from_slice(&[0u8; 2 * BLOCK]);
    let bad = dir.path().join("two.tar.gz");
    fs::write(&bad, gzip(&two)).unwrap();
    assert_corrupt(&bad, "second member \"extra.txt\"");
}

#[test]
fn a_member_with_another_name_is_rejected() {
    let (dir, _, mut tar) = sample();
    tar[..8].copy_from_slice(b"disk.img");
    fix_checksum(&mut tar[..BLOCK]);
    let bad = dir.path().join("img.tar.gz");
    fs::write(&bad, gzip(&tar)).unwrap();
    assert_corrupt(&bad, "\"disk.img\"");
}

#[test]
fn a_corrupted_header_checksum_is_rejected() {
    let (dir, _, mut tar) = sample();
    tar[140] ^= 1; // an mtime digit, checksum not updated
    let bad = dir.path().join("sum.tar.gz");
    fs::write(&bad, gzip(&tar)).unwrap();
    assert_corrupt(&bad, "checksum");
}

#[test]
fn other_garbage_is_rejected() {
    let (dir, _, tar) = sample();
    let bad = dir.path().join("plain.tar");
    fs::write(&bad, &tar).unwrap();
    assert_corrupt(&bad, "not a gzip file");
    let mut extra = tar.clone();
    extra.extend_from_slice(b"trailing");
    fs::write(&bad, gzip(&extra)).unwrap();
    assert_corrupt(&bad, "after the end-of-archive");
    fs::write(&bad, gzip(&tar[..BLOCK + 2 * GRAIN_BYTES])).unwrap();
    assert_corrupt(&bad, "truncated");
    fs::write(&bad, gzip(&[0u8; 10240])).unwrap();
    assert_corrupt(&bad, "empty archive");
}

#[test]
fn a_plain_ustar_regular_member_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..5000u32)
        .map(|i| u8::try_from(i % 256).unwrap())
        .collect();
    let mut h = [0u8; BLOCK];
    h[..8].copy_from_slice(b"disk.raw");
    h[100..108].copy_from_slice(b"0000644\0");
    h[124..136].copy_from_slice(b"00000011610\0");
    h[156] = b'0';
    h[257..265].copy_from_slice(oldgnu::USTAR_MAGIC);
    fix_checksum(&mut h);
    let mut tar = h.to_vec();
    tar.extend_from_slice(&data);
    tar.resize(10240, 0);
    let path = dir.path().join("u.tar.gz");
    fs::write(&path, gzip(&tar)).unwrap();
    let content = read_content(&path, &mut |_| {}).unwrap();
    assert_eq!(content.virtual_size, 5000);
    assert_eq!(
        content.content_digest,
        <[u8; 32]>::from(Sha256::digest(&data))
    );
}

/// Counts nothing: expanding a huge hole costs nothing.
struct NullSink;

impl DiskSink for NullSink {
    fn data(&mut self, _: &[u8]) {}
    fn zeros(&mut self, _: u64) {}
}

#[test]
fn every_header_byte_mangled_never_panics() {
    let (dir, _, tar) = sample();
    let bad = dir.path().join("m.tar.gz");
    let mut rejected = 0;
    for at in 0..BLOCK {
        for value in [0xff, b'9'] {
            let mut t = tar.clone();
            if t[at] == value {
                continue;
            }
            t[at] = value;
            fix_checksum(&mut t[..BLOCK]);
            fs::write(&bad, gzip(&t)).unwrap();
            if read_disk(&bad, &mut NullSink, &mut |_| {}).is_err() {
                rejected += 1;
            }
        }
    }
    assert!(rejected > 100, "only {rejected} mangled headers rejected");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(8))]
    #[test]
    fn random_layouts_round_trip(grains in proptest::collection::btree_map(0..GIB / GRAIN_SIZE, proptest::prelude::any::<u8>(), 0..60)) {
        let layout = Layout { size: GIB, grains };
        let dir = tempfile::tempdir().unwrap();
        let path = export(dir.path(), &layout);
        check_grains(&path, &layout);
        check_map(&path, &layout);
    }
}

#[test]
fn decompressed_tar_is_byte_identical_to_gnu_tar() {
    // Every 512-byte block of a data grain is non-zero, so GNU tar's content-based map
    // (512-byte granular, adjacent chunks merged) equals our grain map.
    if !gnu_tools() {
        return;
    }
    let layout = Layout::new(GIB, (0..30).map(|i| i * 300 + i % 2).chain(9000..9010));
    let dir = tempfile::tempdir().unwrap();
    let ours = gunzip(&fs::read(export(dir.path(), &layout)).unwrap());
    let src = tempfile::tempdir().unwrap();
    write_raw(&src.path().join("disk.raw"), &layout);
    let gnu_path = dir.path().join("gnu.tar");
    let args = [
        "--format=oldgnu",
        "-S",
        "--hole-detection=raw",
        "--numeric-owner",
        "--owner=0",
        "--group=0",
        "--mode=0644",
        "--mtime=@946684800",
        "-cf",
        gnu_path.to_str().unwrap(),
        "-C",
        src.path().to_str().unwrap(),
        "disk.raw",
    ];
    run("tar", &args);
    let gnu = fs::read(&gnu_path).unwrap();
    assert_eq!(ours.len(), gnu.len());
    let first_diff = ours.iter().zip(&gnu).position(|(a, b)| a != b);
    assert_eq!(first_diff, None, "our tar differs from GNU tar's");

    // Our reader on GNU tar + gzip output with sub-grain chunks (data not a block multiple).
    let raw = src.path().join("disk.raw");
    let mut f = fs::OpenOptions::new().write(true).open(&raw).unwrap();
    f.seek(SeekFrom::Start(12_345)).unwrap();
    f.write_all(&[7u8; 70_000]).unwrap();
    f.seek(SeekFrom::Start(GIB - 100)).unwrap();
    f.write_all(b"tail").unwrap();
    drop(f);
    let gz = dir.path().join("gnu.tar.gz");
    run(
        "tar",
        &[
            &args[..8],
            &[
                "-czf",
                gz.to_str().unwrap(),
                "-C",
                src.path().to_str().unwrap(),
                "disk.raw",
            ],
        ]
        .concat(),
    );
    let expect = crate::artifact::sha256_reader(fs::File::open(&raw).unwrap()).unwrap();
    let content = read_content(&gz, &mut |_| {}).unwrap();
    assert_eq!(
        (content.virtual_size, content.content_digest),
        (GIB, expect)
    );
}
