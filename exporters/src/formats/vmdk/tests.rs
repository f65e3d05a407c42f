//! VMDK writer and reader tests, checked against qemu-img and (when installed) libvmdk.
//! The helpers are shared with the OVA tests.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::descriptor::{GD_AT_END, SparseHeader, le32, le64};
use super::descriptor_text::content_ids;
use super::*;
use crate::batch::{BatchContent, DataBatch, GRAIN_BYTES, Grain, is_all_zero};
use crate::deflate::deflate_grain;
use crate::pipeline::{BATCH_SIZE, Role};
use diskimg::image::DiskImage;

/// A test disk: its size and the non-zero extents (anything else reads as zero).
pub(crate) struct TestDisk {
    pub size: u64,
    pub extents: Vec<(u64, Vec<u8>)>,
}

impl TestDisk {
    /// The bytes of `[offset, offset + len)`.
    pub fn bytes(&self, offset: u64, len: u64) -> Vec<u8> {
        let mut out = vec![0u8; usize::try_from(len).unwrap()];
        for (at, data) in &self.extents {
            let end = at + data.len() as u64;
            let (lo, hi) = ((*at).max(offset), end.min(offset + len));
            if lo < hi {
                let dst = usize::try_from(lo - offset).unwrap();
                let src = usize::try_from(lo - at).unwrap();
                let n = usize::try_from(hi - lo).unwrap();
                out[dst..dst + n].copy_from_slice(&data[src..src + n]);
            }
        }
        out
    }

    fn touches(&self, offset: u64, len: u64) -> bool {
        self.extents
            .iter()
            .any(|(at, d)| *at < offset + len && at + d.len() as u64 > offset)
    }

    /// The batches the pipeline would hand a writer (grains deflated as the pipeline does).
    pub fn batches(&self) -> Vec<Batch> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < self.size {
            let len = BATCH_SIZE.min(self.size - pos);
            if !self.touches(pos, len) {
                match out.last_mut() {
                    Some(Batch {
                        content: BatchContent::Zero,
                        len: l,
                        ..
                    }) if *l < (1 << 30) => *l += len,
                    _ => out.push(Batch {
                        offset: pos,
                        len,
                        content: BatchContent::Zero,
                    }),
                }
            } else {
                let bytes = self.bytes(pos, len);
                let grains: Vec<Grain> = bytes
                    .chunks(GRAIN_BYTES)
                    .map(|c| {
                        let zero = is_all_zero(c);
                        Grain {
                            zero,
                            deflated: (!zero).then(|| Arc::new(deflate_grain(c))),
                        }
                    })
                    .collect();
                out.push(Batch {
                    offset: pos,
                    len,
                    content: BatchContent::Data(DataBatch { bytes, grains }),
                });
            }
            pos += len;
        }
        out
    }

    /// Writes the disk as a sparse raw file.
    pub fn write_raw(&self, path: &Path) {
        use std::os::unix::fs::FileExt;
        let f = std::fs::File::create(path).unwrap();
        f.set_len(self.size).unwrap();
        for (at, data) in &self.extents {
            f.write_all_at(data, *at).unwrap();
        }
    }
}

/// A hand-made finish context.
pub(crate) fn finish_context(dir: &Path, size: u64, options: &ExportOptions) -> FinishContext {
    FinishContext {
        content_digest: [7; 32],
        content_hasher: Sha256::new(),
        virtual_size: size,
        options: options.clone(),
        dir: dir.to_path_buf(),
    }
}

/// One committed artifact.
#[derive(Debug)]
pub(crate) struct Out {
    pub format: Format,
    pub role: Role,
    pub container: &'static str,
    pub size: u64,
    pub path: PathBuf,
}

/// Runs the family writer over `disk`, commits every artifact and returns them.
pub(crate) fn export_family(dir: &Path, disk: &TestDisk, options: &ExportOptions) -> Vec<Out> {
    let mut writer = vmdk_family_writer(dir, options, disk.size).unwrap();
    assert!(writer.needs_deflate());
    assert_eq!(writer.task(), "vmdk");
    for batch in disk.batches() {
        writer.consume(&batch).unwrap();
    }
    let produced = writer
        .finish(&finish_context(dir, disk.size, options))
        .unwrap();
    produced
        .into_iter()
        .map(|p| {
            let Produced {
                artifact,
                format,
                role,
                container,
                size,
                sha256,
            } = p;
            let path = artifact.commit().unwrap();
            assert_eq!(
                std::fs::metadata(&path).unwrap().len(),
                size,
                "{}",
                path.display()
            );
            let actual =
                crate::artifact::sha256_reader(std::fs::File::open(&path).unwrap()).unwrap();
            assert_eq!(actual, sha256, "{}", path.display());
            Out {
                format,
                role,
                container,
                size,
                path,
            }
        })
        .collect()
}

/// Writes only the VMDK (AWS format) and returns its committed path.
pub(crate) fn write_vmdk(dir: &Path, disk: &TestDisk, name: &str) -> PathBuf {
    let mut options = ExportOptions::new(name);
    options.formats = vec![Format::Aws];
    let out = export_family(dir, disk, &options);
    out.into_iter()
        .find(|o| o.container == "vmdk")
        .map(|o| o.path)
        .unwrap()
}

/// Runs a tool; `None` (after printing SKIP) when it is not installed.
pub(crate) fn tool(program: &str, args: &[&str]) -> Option<std::process::Output> {
    match Command::new(program).args(args).output() {
        Ok(out) => Some(out),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            println!("SKIP: {program} not found");
            None
        }
        Err(e) => panic!("running {program}: {e}"),
    }
}

fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (0..len)
        .map(|i| u8::try_from((i * 7 + seed) & 0xff).unwrap())
        .collect()
}

fn noise(len: usize, mut x: u32) -> Vec<u8> {
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_le_bytes()[0]
        })
        .collect()
}

/// Checks `vmdk` against `disk` with qemu-img, libvmdk and this crate's reader.
fn check_everywhere(dir: &Path, vmdk: &Path, disk: &TestDisk) {
    let raw = dir.join("disk.raw");
    disk.write_raw(&raw);
    let (v, r) = (vmdk.to_str().unwrap(), raw.to_str().unwrap());
    if let Some(out) = tool("qemu-img", &["check", "-f", "vmdk", v]) {
        assert!(
            out.status.success(),
            "qemu-img check: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let out = tool("qemu-img", &["compare", "-f", "raw", "-F", "vmdk", r, v]).unwrap();
        assert!(
            out.status.success(),
            "qemu-img compare: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let out = tool("qemu-img", &["info", "-f", "vmdk", "--output=json", v]).unwrap();
        let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(info["virtual-size"], disk.size, "qemu-img info: {info}");
    }
    if let Some(out) = tool("vmdkinfo", &[v]) {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "vmdkinfo: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("Disk type:\t\t\tStream optimized"),
            "vmdkinfo: {text}"
        );
        assert!(
            text.contains(&format!("({} bytes)", disk.size)),
            "vmdkinfo media size: {text}"
        );
    }
    pyvmdk_matches(vmdk, &raw, disk);
    let mut image = VmdkImage::open(vmdk).unwrap();
    assert_eq!(image.virtual_size(), disk.size);
    if disk.size <= 256 << 20 {
        let mut all = vec![0u8; usize::try_from(disk.size).unwrap()];
        image.read_at(0, &mut all).unwrap();
        assert!(
            all == disk.bytes(0, disk.size),
            "own reader differs from the input"
        );
    }
    for (at, data) in &disk.extents {
        let mut back = vec![0u8; data.len()];
        image.read_at(*at, &mut back).unwrap();
        assert!(&back == data, "extent at {at} differs");
    }
}

/// libvmdk's Python binding (an independent full-content reader) reads the ranges that matter
/// (the whole disk when small) exactly as the raw file holds them.
fn pyvmdk_matches(vmdk: &Path, raw: &Path, disk: &TestDisk) {
    const SCRIPT: &str = r#"
import sys
try:
    import pyvmdk
except ImportError:
    sys.exit(77)
h = pyvmdk.handle()
h.open(sys.argv[1])
h.open_extent_data_files()
assert h.get_media_size() == int(sys.argv[3]), h.get_media_size()
raw = open(sys.argv[2], "rb")
for r in sys.argv[4:]:
    off, ln = map(int, r.split(":"))
    while ln > 0:
        n = min(ln, 1 << 24)
        h.seek_offset(off)
        raw.seek(off)
        if h.read_buffer(n) != raw.read(n):
            sys.exit("differs at %d" % off)
        off += n
        ln -= n
"#;
    let mut ranges: Vec<String> = if disk.size <= 256 << 20 {
        vec![format!("0:{}", disk.size)]
    } else {
        disk.extents
            .iter()
            .map(|(at, d)| format!("{at}:{}", d.len()))
            .collect()
    };
    ranges.insert(0, disk.size.to_string());
    let mut args = vec!["-c", SCRIPT, vmdk.to_str().unwrap(), raw.to_str().unwrap()];
    args.extend(ranges.iter().map(String::as_str));
    let Some(out) = tool("/usr/bin/python3", &args) else {
        return;
    };
    if out.status.code() == Some(77) {
        println!("SKIP: pyvmdk not importable");
        return;
    }
    assert!(
        out.status.success(),
        "pyvmdk: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Structural facts of the spec streaming layout.
fn check_layout(vmdk: &Path, disk: &TestDisk, gts_expected: usize) {
    let bytes = std::fs::read(vmdk).unwrap();
    let len = bytes.len();
    assert_eq!(len % 512, 0);
    let block = |at: usize| -> [u8; 512] { bytes[at..at + 512].try_into().unwrap() };
    let header = SparseHeader::parse(vmdk, 0, &block(0)).unwrap();
    assert_eq!(
        (header.version, header.flags, header.gd_offset),
        (3, 0x0003_0001, GD_AT_END)
    );
    assert_eq!(header.capacity, disk.size.div_ceil(512));
    assert_eq!(
        (
            header.grain_size,
            header.descriptor_offset,
            header.descriptor_size
        ),
        (128, 1, 20)
    );
    assert_eq!(
        (
            header.num_gtes_per_gt,
            header.overhead,
            header.compress_algorithm
        ),
        (512, 128, 1)
    );
    assert!(
        block(len - 512).iter().all(|&b| b == 0),
        "last sector is not EOS"
    );
    assert_eq!(le32(&block(len - 1536), 12), 3, "footer marker");
    let footer = SparseHeader::parse(vmdk, 0, &block(len - 1024)).unwrap();
    assert_eq!(
        footer,
        SparseHeader {
            gd_offset: footer.gd_offset,
            ..header
        }
    );
    let gd_sector = usize::try_from(footer.gd_offset).unwrap();
    let gd_marker = block((gd_sector - 1) * 512);
    assert_eq!(
        (le64(&gd_marker, 0), le32(&gd_marker, 12)),
        (header.grain_tables().div_ceil(128), 2)
    );
    let gd: Vec<u32> = bytes[gd_sector * 512..]
        [..usize::try_from(header.grain_tables()).unwrap() * 4]
        .chunks(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(
        gd.iter().filter(|&&s| s != 0).count(),
        gts_expected,
        "grain tables written: {gd:?}"
    );
    for &gt in gd.iter().filter(|&&s| s != 0) {
        let m = block((usize::try_from(gt).unwrap() - 1) * 512);
        assert_eq!(
            (le64(&m, 0), le32(&m, 8), le32(&m, 12)),
            (4, 0, 1),
            "GT marker"
        );
    }
    let descriptor = String::from_utf8(bytes[512..512 * 21].to_vec()).unwrap();
    let (cid, long) = content_ids(&[7; 32]);
    assert!(descriptor.starts_with("# Disk DescriptorFile\n"));
    assert!(descriptor.contains(&format!("CID={cid:08x}\n")));
    assert!(descriptor.contains(&format!("ddb.longContentID = \"{long}\"")));
    let name = vmdk.file_name().unwrap().to_str().unwrap();
    assert!(descriptor.contains(&format!("RW {} SPARSE \"{name}\"\n", header.capacity)));
    assert!(bytes[512 * 21..512 * 128].iter().all(|&b| b == 0));
}

#[test]
fn reference_layout_with_holes_zero_grains_and_last_sector() {
    let dir = tempfile::tempdir().unwrap();
    let size = 4 << 20;
    let disk = TestDisk {
        size,
        extents: vec![
            (0, pattern(65536, 3)),
            // An explicitly zero grain inside a data batch, then a half-filled one.
            (65536, vec![0; 65536]),
            ((1 << 20) + 512, vec![0xab; 4096]),
            (size - 512, b"END!".repeat(128)),
        ],
    };
    let vmdk = write_vmdk(dir.path(), &disk, "ref");
    check_layout(&vmdk, &disk, 1);
    check_everywhere(dir.path(), &vmdk, &disk);
    // Three grains: the first marker sits at overHead and carries LBA 0.
    let bytes = std::fs::read(&vmdk).unwrap();
    assert_eq!(&bytes[128 * 512..128 * 512 + 8], &0u64.to_le_bytes());
    assert_eq!(&bytes[128 * 512 + 12..128 * 512 + 14], &[0x78, 0x9c]);
}

#[test]
fn partial_last_grain_and_incompressible_data() {
    let dir = tempfile::tempdir().unwrap();
    let size = (1 << 20) + 512;
    let disk = TestDisk {
        size,
        extents: vec![
            (0, noise(65536 * 2 + 100, 9)),
            (size - 512, b"LAST".repeat(128)),
        ],
    };
    let vmdk = write_vmdk(dir.path(), &disk, "partial");
    check_layout(&vmdk, &disk, 1);
    check_everywhere(dir.path(), &vmdk, &disk);
}

#[test]
fn sparse_disk_with_several_grain_tables_and_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let size = (100 << 20) + 4096;
    let disk = TestDisk {
        size,
        extents: vec![
            (4096, pattern(3000, 1)),
            ((32 << 20) - 512, pattern(1024, 2)), // straddles GT 0 and GT 1
            ((70 << 20) + 65536 * 3, pattern(65536, 5)),
            (size - 512, b"TAIL".repeat(128)),
        ],
    };
    let vmdk = write_vmdk(dir.path(), &disk, "sparse");
    check_layout(&vmdk, &disk, 4);
    check_everywhere(dir.path(), &vmdk, &disk);

    // GT 2 (64..96 MiB) has data, GT 3 has the tail; now a disk that leaves GT 1 and 2 empty.
    let disk = TestDisk {
        size,
        extents: vec![(0, pattern(512, 1)), (size - 512, b"TAIL".repeat(128))],
    };
    let vmdk = write_vmdk(dir.path(), &disk, "gaps");
    check_layout(&vmdk, &disk, 2);
    check_everywhere(dir.path(), &vmdk, &disk);
}

#[test]
fn large_sparse_disk_has_a_multi_sector_grain_directory() {
    let dir = tempfile::tempdir().unwrap();
    let size = (5u64 << 30) + 512;
    let disk = TestDisk {
        size,
        extents: vec![
            (1 << 20, pattern(8192, 4)),
            (size - 512, b"BIG!".repeat(128)),
        ],
    };
    let vmdk = write_vmdk(dir.path(), &disk, "big");
    check_layout(&vmdk, &disk, 2);
    check_everywhere(dir.path(), &vmdk, &disk);
}

#[test]
fn empty_disk_is_a_valid_vmdk() {
    let dir = tempfile::tempdir().unwrap();
    let disk = TestDisk {
        size: 3 << 20,
        extents: vec![],
    };
    let vmdk = write_vmdk(dir.path(), &disk, "empty");
    check_layout(&vmdk, &disk, 0);
    check_everywhere(dir.path(), &vmdk, &disk);
}

#[test]
fn two_runs_give_identical_bytes() {
    let disk = TestDisk {
        size: 2 << 20,
        extents: vec![(100, pattern(200_000, 7))],
    };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (va, vb) = (
        write_vmdk(a.path(), &disk, "d"),
        write_vmdk(b.path(), &disk, "d"),
    );
    assert!(
        std::fs::read(va).unwrap() == std::fs::read(vb).unwrap(),
        "VMDK not reproducible"
    );
}

#[test]
fn only_aws_keeps_the_vmdk_and_only_ova_drops_it() {
    let disk = TestDisk {
        size: 1 << 20,
        extents: vec![(0, pattern(512, 1))],
    };
    let dir = tempfile::tempdir().unwrap();
    let mut options = ExportOptions::new("n");
    options.formats = vec![Format::Aws];
    let out = export_family(dir.path(), &disk, &options);
    let mut names: Vec<String> = out
        .iter()
        .map(|o| o.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["aws-import.json", "n.vmdk", "register-image.json"]);
    assert!(out.iter().all(|o| o.format == Format::Aws));
    let dir = tempfile::tempdir().unwrap();
    options.formats = vec![Format::Ova];
    let out = export_family(dir.path(), &disk, &options);
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].format, out[0].role, out[0].container),
        (Format::Ova, Role::Disk, "ova")
    );
    assert_eq!(out[0].size, std::fs::metadata(&out[0].path).unwrap().len());
    let left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        left,
        ["n.ova"],
        "the VMDK temporary must not survive an OVA-only export"
    );
}

#[test]
fn reader_rejects_damage_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let disk = TestDisk {
        size: 1 << 20,
        extents: vec![(0, noise(70_000, 3))],
    };
    let vmdk = write_vmdk(dir.path(), &disk, "r");
    let good = std::fs::read(&vmdk).unwrap();
    let bad = dir.path().join("bad.vmdk");
    let open_err = |bytes: &[u8]| -> String {
        std::fs::write(&bad, bytes).unwrap();
        let err = VmdkImage::open(&bad).and_then(|mut img| {
            let mut buf = vec![0u8; 1 << 20];
            img.read_at(0, &mut buf)
        });
        let msg = err.expect_err("damage accepted").to_string();
        assert!(msg.contains("bad.vmdk"), "{msg}");
        msg
    };
    let mut b = good.clone();
    b[1] = b'X';
    assert!(open_err(&b).contains("magic"));
    assert!(open_err(&good[..good.len() - 700]).contains("truncated"));
    assert!(open_err(&good[..good.len() - 512]).contains("end-of-stream"));
    let mut b = good.clone();
    b.extend_from_slice(&[0; 512]);
    assert!(open_err(&b).contains("footer marker"));
    let mut b = good.clone();
    b[128 * 512 + 100] ^= 0x55;
    let msg = open_err(&b);
    assert!(msg.contains("inflate") || msg.contains("grain"), "{msg}");
    let mut b = good.clone();
    b[128 * 512] = 9; // marker LBA
    assert!(open_err(&b).contains("LBA"));
    assert!(open_err(&[]).contains("shorter"));
}

#[test]
fn reader_never_panics_on_damaged_input() {
    let dir = tempfile::tempdir().unwrap();
    let disk = TestDisk {
        size: (1 << 20) + 512,
        extents: vec![(0, pattern(70_000, 1)), ((1 << 20) - 512, pattern(1024, 2))],
    };
    let vmdk = write_vmdk(dir.path(), &disk, "f");
    let good = std::fs::read(&vmdk).unwrap();
    let bad = dir.path().join("fuzz.vmdk");
    let mut x = 0x1234_5678u32;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    let interesting: Vec<usize> = (0..80)
        .chain(512..600)
        .chain(128 * 512..128 * 512 + 16)
        .chain(good.len() - 1536..good.len())
        .collect();
    for round in 0..400 {
        let mut b = good.clone();
        for _ in 0..1 + round % 4 {
            let at = if round % 2 == 0 {
                interesting[usize::try_from(next()).unwrap() % interesting.len()]
            } else {
                usize::try_from(next()).unwrap() % b.len()
            };
            b[at] = next().to_le_bytes()[0];
        }
        if round % 7 == 0 {
            b.truncate(usize::try_from(next()).unwrap() % b.len());
        }
        std::fs::write(&bad, &b).unwrap();
        if let Ok(mut img) = VmdkImage::open(&bad) {
            let size = img.virtual_size().min(4 << 20);
            let mut buf = vec![0u8; usize::try_from(size).unwrap()];
            let _ = img.read_at(0, &mut buf);
        }
    }
}
