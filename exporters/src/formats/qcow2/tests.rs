//! Round trips through our reader and through qemu-img, reader rejections, determinism.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::*;
use crate::batch::{Batch, BatchContent, DataBatch, GRAIN_BYTES, GRAIN_SIZE, Grain, is_all_zero};
use crate::deflate::deflate_grain;
use crate::format::ExportOptions;
use crate::pipeline::{BATCH_SIZE, DiskWriter, FinishContext};
use diskimg::image::DiskImage;

/// A sparse test disk: grain index → grain bytes (the last grain may be short).
struct Disk {
    size: u64,
    grains: BTreeMap<u64, Vec<u8>>,
}

impl Disk {
    fn new(size: u64) -> Self {
        Disk {
            size,
            grains: BTreeMap::new(),
        }
    }

    fn grain_len(&self, index: u64) -> usize {
        usize::try_from((self.size - index * GRAIN_SIZE).min(GRAIN_SIZE)).unwrap()
    }

    /// Sets grain `index` to a compressible pattern seeded by `seed`.
    fn pattern(mut self, index: u64, seed: u8) -> Self {
        let len = self.grain_len(index);
        let bytes = (0..len)
            .map(|i| {
                u8::try_from((i / 64 + usize::from(seed)) % 7)
                    .unwrap()
                    .wrapping_add(seed)
            })
            .collect();
        self.grains.insert(index, bytes);
        self
    }

    /// Sets grain `index` to noise that deflate cannot shrink.
    fn noise(mut self, index: u64, seed: u32) -> Self {
        let len = self.grain_len(index);
        let bytes = fixtures::pattern(u64::from(seed), len);
        self.grains.insert(index, bytes);
        self
    }

    /// A compressible grain whose first `n` bytes are noise (varies the compressed size).
    fn speckled(self, index: u64, seed: u8, n: usize) -> Self {
        let noise = Disk::new(self.size)
            .noise(index, u32::from(seed) + 1)
            .grain(index);
        let mut disk = self.pattern(index, seed);
        if let Some(grain) = disk.grains.get_mut(&index) {
            let n = n.min(grain.len());
            grain[..n].copy_from_slice(&noise[..n]);
        }
        disk
    }

    /// 16 KiB of noise repeated: deflate's matches reach back 16 KiB (beyond qemu's 4 KiB
    /// window, which qemu still reads since it inflates a cluster in one call).
    fn echo(self, index: u64, seed: u32) -> Self {
        let mut disk = self.noise(index, seed);
        if let Some(grain) = disk.grains.get_mut(&index) {
            let first: Vec<u8> = grain.iter().take(16 << 10).copied().collect();
            for (i, b) in grain.iter_mut().enumerate() {
                *b = first[i % first.len()];
            }
        }
        disk
    }

    /// Sets grain `index` to explicit zeros (a data batch grain that is all zero).
    fn zeros(mut self, index: u64) -> Self {
        let len = self.grain_len(index);
        self.grains.insert(index, vec![0; len]);
        self
    }

    /// Writes `tail` at the very end of the disk, inside the last grain.
    fn tail(mut self, tail: &[u8]) -> Self {
        let last = (self.size - 1) / GRAIN_SIZE;
        let len = self.grain_len(last);
        let grain = self.grains.entry(last).or_insert_with(|| vec![0; len]);
        let from = grain.len() - tail.len();
        grain[from..].copy_from_slice(tail);
        self
    }

    fn grain(&self, index: u64) -> Vec<u8> {
        self.grains
            .get(&index)
            .cloned()
            .unwrap_or_else(|| vec![0; self.grain_len(index)])
    }

    /// The batches the pipeline would send: zero runs between data, data in 64-grain batches.
    fn batches(&self, deflate: bool) -> Vec<Batch> {
        let mut out = Vec::new();
        let mut pos = 0u64;
        while pos < self.size {
            let index = pos / GRAIN_SIZE;
            let next_data = self
                .grains
                .range(index..)
                .next()
                .map_or(self.size, |(i, _)| i * GRAIN_SIZE);
            if next_data > pos {
                let len = (next_data - pos).min(1 << 30);
                out.push(Batch {
                    offset: pos,
                    len,
                    content: BatchContent::Zero,
                });
                pos += len;
                continue;
            }
            let len = BATCH_SIZE.min(self.size - pos);
            let mut bytes = Vec::new();
            let mut grains = Vec::new();
            for g in index..(pos + len).div_ceil(GRAIN_SIZE) {
                let chunk = self.grain(g);
                let zero = is_all_zero(&chunk);
                let deflated = (deflate && !zero).then(|| Arc::new(deflate_grain(&chunk)));
                grains.push(Grain { zero, deflated });
                bytes.extend_from_slice(&chunk);
            }
            let content = if grains.iter().all(|g| g.zero) {
                BatchContent::Zero
            } else {
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

    /// The same content as a sparse raw file.
    fn write_raw(&self, path: &Path) {
        let file = fs::File::create(path).unwrap();
        file.set_len(self.size).unwrap();
        for (index, bytes) in &self.grains {
            file.write_all_at(bytes, index * GRAIN_SIZE).unwrap();
        }
    }
}

fn finish_context(dir: &Path, size: u64) -> FinishContext {
    FinishContext {
        content_digest: [0; 32],
        content_hasher: Sha256::new(),
        virtual_size: size,
        options: ExportOptions::new("t"),
        dir: dir.to_path_buf(),
    }
}

/// Writes `disk` as `dir/NAME.qcow2` and commits it; checks the reported size and digest.
fn write(disk: &Disk, dir: &Path, name: &str, compress: bool) -> PathBuf {
    let mut writer = Box::new(Qcow2Writer::new(dir, name, compress, disk.size).unwrap());
    assert_eq!(writer.needs_deflate(), compress);
    for batch in disk.batches(compress) {
        writer.consume(&batch).unwrap();
    }
    let mut produced = writer.finish(&finish_context(dir, disk.size)).unwrap();
    assert_eq!(produced.len(), 1);
    let p = produced.remove(0);
    assert_eq!(
        (p.container, p.role),
        ("qcow2", crate::pipeline::Role::Disk)
    );
    let path = p.artifact.commit().unwrap();
    let bytes = fs::read(&path).unwrap();
    assert_eq!(p.size, u64::try_from(bytes.len()).unwrap());
    assert_eq!(p.sha256, <[u8; 32]>::from(Sha256::digest(&bytes)));
    assert_refcounts_exact(&bytes);
    path
}

/// Recounts the references to every host cluster from the header and the tables and
/// compares them with every entry of every refcount block (entries past the end included).
fn assert_refcounts_exact(bytes: &[u8]) {
    let be32 = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    let be64 = |at: usize| u64::from_be_bytes(bytes[at..at + 8].try_into().unwrap());
    let at = |offset: u64| usize::try_from(offset).unwrap();
    assert_eq!(bytes.len() % GRAIN_BYTES, 0);
    let mut refs = vec![0u16; bytes.len() / GRAIN_BYTES];
    let mut add = |from: u64, len: u64| {
        for c in from >> 16..=(from + len - 1) >> 16 {
            refs[at(c)] += 1;
        }
    };
    add(0, 1);
    let (l1_size, l1_offset) = (u64::from(be32(36)), be64(40));
    let (rt_offset, rt_clusters) = (be64(48), u64::from(be32(56)));
    add(l1_offset, (l1_size * 8).max(1));
    add(rt_offset, rt_clusters * GRAIN_SIZE);
    let blocks: Vec<u64> = (0..rt_clusters * 8192)
        .map(|i| be64(at(rt_offset + i * 8)))
        .collect();
    for &block in blocks.iter().filter(|&&b| b != 0) {
        add(block, GRAIN_SIZE);
    }
    for l1 in (0..l1_size)
        .map(|i| be64(at(l1_offset + i * 8)))
        .filter(|&e| e != 0)
    {
        let l2 = l1 & OFFSET_MASK;
        add(l2, GRAIN_SIZE);
        for entry in (0..8192).map(|i| be64(at(l2 + i * 8))).filter(|&e| e != 0) {
            if entry & OFLAG_COMPRESSED != 0 {
                let offset = entry & ((1 << 54) - 1);
                add(offset, (((entry >> 54) & 0xff) + 1) * 512 - (offset & 511));
            } else {
                add(entry & OFFSET_MASK, GRAIN_SIZE);
            }
        }
    }
    let mut covered = 0;
    for (b, &block) in (0u64..).zip(&blocks) {
        if block == 0 {
            continue;
        }
        for j in 0..32768u64 {
            let stored = u16::from_be_bytes(
                bytes[at(block + j * 2)..at(block + j * 2 + 2)]
                    .try_into()
                    .unwrap(),
            );
            let cluster = at(b * 32768 + j);
            assert_eq!(
                stored,
                refs.get(cluster).copied().unwrap_or(0),
                "refcount of cluster {cluster}"
            );
            covered += usize::from(cluster < refs.len());
        }
    }
    assert_eq!(covered, refs.len(), "clusters without a refcount block");
    assert!(
        refs.iter().all(|&r| r > 0),
        "unreferenced cluster inside the file"
    );
}

/// Reads every grain that holds data plus its neighbours and the last grain back through
/// [`Qcow2Image`] (the whole disk when it is small).
fn check_with_our_reader(disk: &Disk, path: &Path) {
    let mut image = Qcow2Image::open(path).unwrap();
    assert_eq!(image.virtual_size(), disk.size);
    let last = (disk.size - 1) / GRAIN_SIZE;
    let indices: Vec<u64> = if disk.size <= 64 << 20 {
        (0..=last).collect()
    } else {
        let mut v: Vec<u64> = disk
            .grains
            .keys()
            .flat_map(|&i| [i.saturating_sub(1), i, (i + 1).min(last)])
            .chain([0, last / 2, last])
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    for index in indices {
        let mut buf = vec![0u8; disk.grain_len(index)];
        image.read_at(index * GRAIN_SIZE, &mut buf).unwrap();
        assert!(buf == disk.grain(index), "grain {index} differs");
    }
    // A read straddling two clusters and one past the end.
    if disk.size > GRAIN_SIZE {
        let mut buf = vec![0u8; 1024];
        image.read_at(GRAIN_SIZE - 512, &mut buf).unwrap();
        assert_eq!(buf[..512], disk.grain(0)[GRAIN_BYTES - 512..]);
        assert_eq!(buf[512..], disk.grain(1)[..512]);
    }
    assert!(image.read_at(disk.size - 512, &mut [0u8; 1024]).is_err());
    if image.cluster_size() == GRAIN_SIZE {
        let data = disk.grains.values().filter(|g| !is_all_zero(g)).count();
        assert_eq!(
            image.allocated_clusters().unwrap(),
            u64::try_from(data).unwrap()
        );
    }
}

fn qemu_img_available() -> bool {
    let found = Command::new("qemu-img")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        println!("SKIP: qemu-img not found");
    }
    found
}

fn qemu_img(args: &[&str]) -> (bool, String) {
    let out = Command::new("qemu-img").args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `qemu-img check`, `compare` against the raw equivalent, and `info` virtual-size.
fn check_with_qemu(disk: &Disk, path: &Path) {
    let file = path.to_str().unwrap();
    let (ok, text) = qemu_img(&["check", "-f", "qcow2", file]);
    assert!(
        ok && text.contains("No errors were found"),
        "qemu-img check failed:\n{text}"
    );
    let raw = path.with_extension("raw");
    disk.write_raw(&raw);
    let (ok, text) = qemu_img(&[
        "compare",
        "-f",
        "raw",
        "-F",
        "qcow2",
        raw.to_str().unwrap(),
        file,
    ]);
    assert!(ok, "qemu-img compare failed:\n{text}");
    let (ok, text) = qemu_img(&["info", "-f", "qcow2", "--output=json", file]);
    assert!(ok, "qemu-img info failed:\n{text}");
    let info: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(info["virtual-size"].as_u64(), Some(disk.size), "{text}");
    fs::remove_file(raw).unwrap();
}

/// 1 MiB + 512: holes, an explicit zero grain, noise, data in the partial last grain.
fn small_disk() -> Disk {
    Disk::new((1 << 20) + 512)
        .pattern(0, 1)
        .zeros(1)
        .pattern(2, 2)
        .noise(3, 7)
        .pattern(4, 3)
        .pattern(9, 4)
        .pattern(15, 5)
        .echo(12, 11)
        .tail(&b"END!".repeat(64))
}

/// 6 GiB + 64 KiB + 512 with data scattered over several L2 ranges (512 MiB each).
fn big_sparse_disk() -> Disk {
    let g = |bytes: u64| bytes / GRAIN_SIZE;
    Disk::new((6 << 30) + GRAIN_SIZE + 512)
        .pattern(0, 1)
        .noise(1, 3)
        .pattern(g(700 << 20), 2)
        .pattern(g(3 << 30) - 1, 3)
        .pattern(g(4 << 30), 4)
        .noise(g(4 << 30) + 1, 9)
        .pattern(g(5 << 30) + 17, 5)
        .tail(b"LAST")
}

/// 80 MiB with 800 data grains (every other grain up to 50 MiB, then a run).
fn moderate_disk() -> Disk {
    let mut disk = Disk::new(80 << 20);
    for i in 0..800u64 {
        let index = if i < 400 { i * 2 } else { i + 400 };
        let seed = u8::try_from(i % 251).unwrap();
        disk = if i % 97 == 0 {
            disk.noise(index, u32::from(seed) + 1)
        } else {
            disk.speckled(index, seed, usize::try_from(i * 131 % 3000).unwrap())
        };
    }
    disk
}

#[test]
fn small_sparse_disk_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let disk = small_disk();
    for compress in [false, true] {
        let path = write(
            &disk,
            dir.path(),
            if compress { "c" } else { "u" },
            compress,
        );
        check_with_our_reader(&disk, &path);
    }
}

#[test]
fn compressed_output_is_smaller_and_packs_clusters() {
    let dir = tempfile::tempdir().unwrap();
    let disk = moderate_disk();
    let plain = write(&disk, dir.path(), "u", false);
    let packed = write(&disk, dir.path(), "c", true);
    let (plain, packed) = (
        fs::metadata(plain).unwrap().len(),
        fs::metadata(&packed).unwrap().len(),
    );
    assert!(packed * 4 < plain, "compressed {packed} vs {plain}");
    // Count L2 entries by kind, and compressed clusters that straddle two host clusters.
    let bytes = fs::read(dir.path().join("c.qcow2")).unwrap();
    let be64 = |at: usize| u64::from_be_bytes(bytes[at..at + 8].try_into().unwrap());
    let l1_offset = usize::try_from(be64(40)).unwrap();
    let l2 = usize::try_from(be64(l1_offset) & OFFSET_MASK).unwrap();
    let (mut compressed, mut standard, mut straddling) = (0, 0, 0);
    for slot in 0..GRAIN_BYTES / 8 {
        let entry = be64(l2 + slot * 8);
        if entry & OFLAG_COMPRESSED != 0 {
            assert_eq!(
                entry & OFLAG_COPIED,
                0,
                "compressed entry with OFLAG_COPIED"
            );
            let offset = entry & ((1 << 54) - 1);
            let end = offset + (((entry >> 54) & 0xff) + 1) * 512 - (offset & 511);
            compressed += 1;
            straddling += usize::from(offset >> 16 != (end - 1) >> 16);
        } else if entry != 0 {
            assert_eq!(entry & OFLAG_COPIED, OFLAG_COPIED);
            standard += 1;
        }
    }
    assert_eq!((compressed, standard), (791, 9));
    assert!(
        straddling > 5,
        "only {straddling} compressed clusters straddle host clusters"
    );
}

#[test]
fn empty_and_tiny_disks_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    for (n, disk) in [
        Disk::new(4 << 20),
        Disk::new(512).tail(b"x"),
        Disk::new(GRAIN_SIZE).pattern(0, 9),
    ]
    .iter()
    .enumerate()
    {
        for compress in [false, true] {
            let path = write(disk, dir.path(), &format!("d{n}{compress}"), compress);
            check_with_our_reader(disk, &path);
            if qemu_img_available() {
                check_with_qemu(disk, &path);
            }
        }
    }
}

#[test]
fn big_sparse_disk_round_trips_and_spans_several_l2_tables() {
    let dir = tempfile::tempdir().unwrap();
    let disk = big_sparse_disk();
    for compress in [false, true] {
        let path = write(
            &disk,
            dir.path(),
            if compress { "c" } else { "u" },
            compress,
        );
        let bytes = fs::read(&path).unwrap();
        let l1_size = u32::from_be_bytes(bytes[36..40].try_into().unwrap());
        assert_eq!(l1_size, 13);
        let l1_offset =
            usize::try_from(u64::from_be_bytes(bytes[40..48].try_into().unwrap())).unwrap();
        let used = bytes[l1_offset..l1_offset + 13 * 8]
            .chunks(8)
            .filter(|e| e.iter().any(|&b| b != 0))
            .count();
        assert_eq!(used, 6, "L2 tables in use");
        check_with_our_reader(&disk, &path);
        if qemu_img_available() {
            check_with_qemu(&disk, &path);
        }
    }
}

#[test]
fn qemu_img_accepts_what_we_write() {
    if !qemu_img_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (n, disk) in [small_disk(), moderate_disk()].iter().enumerate() {
        for compress in [false, true] {
            let path = write(disk, dir.path(), &format!("q{n}{compress}"), compress);
            check_with_qemu(disk, &path);
        }
    }
}

#[test]
fn our_reader_reads_what_qemu_writes() {
    if !qemu_img_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let disk = small_disk();
    let raw = dir.path().join("in.raw");
    disk.write_raw(&raw);
    let variants: [&[&str]; 5] = [
        &["-o", "compat=1.1"],
        &["-c"],
        &["-o", "compat=0.10,cluster_size=512"],
        &["-c", "-o", "cluster_size=2M"],
        &["-c", "-o", "compat=0.10,cluster_size=4096"],
    ];
    for (n, extra) in variants.iter().enumerate() {
        let out = dir.path().join(format!("qemu{n}.qcow2"));
        let mut args = vec!["convert", "-f", "raw", "-O", "qcow2"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[raw.to_str().unwrap(), out.to_str().unwrap()]);
        let (ok, text) = qemu_img(&args);
        assert!(ok, "qemu-img convert {extra:?}: {text}");
        check_with_our_reader(&disk, &out);
    }
}

#[test]
fn zero_flag_reads_as_zeros() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Disk::new(1 << 20).pattern(0, 1).pattern(1, 2);
    let path = write(&disk, dir.path(), "z", false);
    let bytes = fs::read(&path).unwrap();
    let l1_offset = u64::from_be_bytes(bytes[40..48].try_into().unwrap());
    let l1 = u64::from_be_bytes(
        bytes[usize::try_from(l1_offset).unwrap()..][..8]
            .try_into()
            .unwrap(),
    );
    let l2 = usize::try_from(l1 & OFFSET_MASK).unwrap();
    let second = u64::from_be_bytes(bytes[l2 + 8..l2 + 16].try_into().unwrap());
    assert_eq!(second & OFLAG_COPIED, OFLAG_COPIED);
    fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .write_all_at(
            &(second | OFLAG_ZERO).to_be_bytes(),
            (l2 + 8).try_into().unwrap(),
        )
        .unwrap();
    let mut image = Qcow2Image::open(&path).unwrap();
    let mut buf = vec![1u8; GRAIN_BYTES];
    image.read_at(GRAIN_SIZE, &mut buf).unwrap();
    assert!(is_all_zero(&buf));
    image.read_at(0, &mut buf).unwrap();
    assert_eq!(buf, disk.grain(0));
    assert_eq!(image.allocated_clusters().unwrap(), 1);
}

#[test]
fn writes_are_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let disk = small_disk();
    for compress in [false, true] {
        let a = fs::read(write(&disk, dir.path(), "a", compress)).unwrap();
        let b = fs::read(write(&disk, dir.path(), "b", compress)).unwrap();
        assert!(a == b, "compress={compress}: outputs differ");
    }
}

#[test]
fn header_fields_are_the_documented_ones() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = fs::read(write(&small_disk(), dir.path(), "h", false)).unwrap();
    assert_eq!(&bytes[0..4], &MAGIC);
    let be32 = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    let be64 = |at: usize| u64::from_be_bytes(bytes[at..at + 8].try_into().unwrap());
    assert_eq!(
        (be32(4), be64(8), be32(20), be64(24), be32(32)),
        (3, 0, 16, (1 << 20) + 512, 0)
    );
    assert_eq!(
        (be32(60), be64(72), be64(80), be64(88), be32(96), be32(100)),
        (0, 0, 0, 0, 4, 104)
    );
    assert_eq!(be64(104), 0, "end-of-extensions marker");
    assert_eq!(bytes.len() % GRAIN_BYTES, 0);
    // Data starts right after the header cluster.
    assert_eq!(
        bytes[GRAIN_BYTES..2 * GRAIN_BYTES],
        small_disk().grain(0)[..]
    );
}

#[test]
fn out_of_order_batches_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = Qcow2Writer::new(dir.path(), "o", false, 1 << 20).unwrap();
    let err = writer
        .consume(&Batch {
            offset: GRAIN_SIZE,
            len: GRAIN_SIZE,
            content: BatchContent::Zero,
        })
        .unwrap_err();
    assert!(err.to_string().contains("out of order"), "{err}");
    let short = Box::new(Qcow2Writer::new(dir.path(), "p", false, 1 << 20).unwrap());
    assert!(short.finish(&finish_context(dir.path(), 1 << 20)).is_err());
}

/// Writes `bytes` to `dir/name` and returns the error of opening it (or reading it all).
fn open_error(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    fs::File::create(&path).unwrap().write_all(bytes).unwrap();
    let err = match Qcow2Image::open(&path) {
        Err(e) => e,
        Ok(mut image) => diskimg::image::content_digest(&mut image, |_| {}).unwrap_err(),
    };
    let text = err.to_string();
    assert!(
        text.contains(path.to_str().unwrap()) && text.contains("offset "),
        "{text}"
    );
    text
}

#[test]
fn reader_rejects_broken_images_with_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let good = fs::read(write(&small_disk(), dir.path(), "g", false)).unwrap();
    let patched = |at: usize, value: &[u8]| {
        let mut b = good.clone();
        b[at..at + value.len()].copy_from_slice(value);
        b
    };
    let l1_offset = usize::try_from(u64::from_be_bytes(good[40..48].try_into().unwrap())).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("magic", patched(0, b"QFI\0"), "not qcow2"),
        ("empty", Vec::new(), "truncated"),
        ("header", good[..50].to_vec(), "truncated"),
        ("v3header", good[..90].to_vec(), "truncated"),
        ("version", patched(4, &4u32.to_be_bytes()), "version 4"),
        ("backing", patched(8, &512u64.to_be_bytes()), "backing file"),
        (
            "clusterbits",
            patched(20, &30u32.to_be_bytes()),
            "cluster_bits",
        ),
        ("size", patched(24, &u64::MAX.to_be_bytes()), "virtual size"),
        (
            "l1small",
            patched(24, &(1u64 << 40).to_be_bytes()),
            "cannot map",
        ),
        ("crypt", patched(32, &1u32.to_be_bytes()), "encrypted"),
        (
            "l1eof",
            patched(40, &(1u64 << 40).to_be_bytes()),
            "past the end",
        ),
        (
            "datafile",
            patched(72, &4u64.to_be_bytes()),
            "external data file",
        ),
        ("extl2", patched(72, &16u64.to_be_bytes()), "extended L2"),
        (
            "unknown",
            patched(72, &(1u64 << 40).to_be_bytes()),
            "unknown incompatible",
        ),
        (
            "l2eof",
            patched(l1_offset, &((1u64 << 40) | OFLAG_COPIED).to_be_bytes()),
            "L2 table at",
        ),
        ("truncated", good[..good.len() / 2].to_vec(), "past the end"),
    ];
    for (name, bytes, expect) in cases {
        let text = open_error(dir.path(), name, &bytes);
        assert!(text.contains(expect), "{name}: {text}");
    }
}

#[test]
fn reader_survives_corrupted_bytes_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let disk = small_disk();
    for compress in [false, true] {
        let good = fs::read(write(&disk, dir.path(), "f", compress)).unwrap();
        let l1_offset =
            usize::try_from(u64::from_be_bytes(good[40..48].try_into().unwrap())).unwrap();
        let l2 = usize::try_from(
            u64::from_be_bytes(good[l1_offset..l1_offset + 8].try_into().unwrap()) & OFFSET_MASK,
        )
        .unwrap();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let path = dir.path().join("fuzz.qcow2");
        for _ in 0..300 {
            let mut bytes = good.clone();
            for _ in 0..1 + next() % 4 {
                // Hit the header, the L1 table, the first L2 entries or the first data cluster.
                let region = match next() % 4 {
                    0 => 0..112,
                    1 => l1_offset..l1_offset + 8,
                    2 => l2..l2 + 160,
                    _ => GRAIN_BYTES..GRAIN_BYTES + 4096,
                };
                let at = region.start + usize::try_from(next()).unwrap() % region.len();
                bytes[at] ^= u8::try_from(next() % 255 + 1).unwrap();
            }
            fs::write(&path, &bytes).unwrap();
            if let Ok(mut image) = Qcow2Image::open(&path) {
                let size = image.virtual_size().min(4 << 20);
                let mut buf = vec![0u8; usize::try_from(size).unwrap()];
                let _ = image.read_at(0, &mut buf);
                let _ = image.allocated_clusters();
            }
        }
    }
}

#[test]
fn the_real_pipeline_feeds_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let disk = small_disk();
    let raw = dir.path().join("src.raw");
    disk.write_raw(&raw);
    let source = crate::source::DiskSource::open(&raw).unwrap();
    for compress in [false, true] {
        let out = dir.path().join(format!("out{compress}"));
        fs::create_dir(&out).unwrap();
        let writer: Box<dyn DiskWriter> =
            Box::new(Qcow2Writer::new(&out, "p", compress, disk.size).unwrap());
        let options = ExportOptions::new("p");
        let progress = crate::progress::NoProgress;
        let (ctx, mut produced) =
            crate::pipeline::run(&source, vec![writer], &options, &out, &progress).unwrap();
        let path = produced.remove(0).artifact.commit().unwrap();
        let mut image = Qcow2Image::open(&path).unwrap();
        assert_eq!(
            diskimg::image::content_digest(&mut image, |_| {}).unwrap(),
            ctx.content_digest
        );
        assert_refcounts_exact(&fs::read(&path).unwrap());
        if qemu_img_available() {
            check_with_qemu(&disk, &path);
        }
    }
}
