//! Issue 10, items 6, 12, 13, 15: the disk readers of `inspect`, `audit`, `verify`, `export`
//! and `boot` on hostile files — FIFOs, sockets and devices refused without blocking, reader
//! errors reported (never "no GPT"), a damaged primary GPT read from its backup and said so,
//! invalid partition tables warned about or refused, and `boot` refusing backing files and
//! corrupt qcow2 images before any QEMU starts.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{nodeimg, out_str, run_guarded};

/// `nodeimg ARGS… PATH`, guarded: (exit code, stdout, stderr).
fn run(args: &[&str], path: &Path) -> (i32, String, String) {
    let o = run_guarded(nodeimg().args(args).arg(path));
    let (stdout, stderr) = out_str(&o);
    (o.status.code().unwrap_or(-1), stdout, stderr)
}

/// One `error:` line naming `path` and every `wanted` piece.
fn one_error_line(stderr: &str, path: &Path, wanted: &[&str]) {
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    let line = errors[0];
    assert!(line.contains(&*path.to_string_lossy()), "{line}");
    for w in wanted {
        assert!(line.contains(w), "no {w:?} in {line}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
}

// ---- item 6: FIFOs, sockets, devices ----

/// A FIFO, a listening socket and `/dev/zero`, each with what the refusal must say.
fn special_files(
    dir: &Path,
) -> (
    Vec<(PathBuf, &'static str)>,
    std::os::unix::net::UnixListener,
) {
    let fifo = dir.join("x.raw");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let sock = dir.join("s.raw");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    (
        vec![
            (fifo, "is a FIFO, not a regular file"),
            (sock, "is a socket, not a regular file"),
            (
                PathBuf::from("/dev/zero"),
                "is a character device, not a regular file",
            ),
        ],
        listener,
    )
}

#[test]
fn inspect_audit_export_and_boot_refuse_fifos_sockets_and_devices_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let (files, _listener) = special_files(dir.path());
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    for (path, says) in &files {
        let (code, _, stderr) = run(&["inspect"], path);
        assert_eq!(code, 1, "inspect {}: {stderr}", path.display());
        one_error_line(&stderr, path, &[says]);
        assert!(!stderr.contains("empty"), "{stderr}");

        let (code, _, stderr) = run(&["audit"], path);
        assert_eq!(code, 2, "audit {}: {stderr}", path.display());
        one_error_line(&stderr, path, &[says]);

        let out = dir.path().join("out");
        let (code, _, stderr) = run(
            &[
                "export",
                "--out",
                out.to_str().unwrap(),
                "--formats",
                "raw",
                "--name",
                "n",
            ],
            path,
        );
        assert_eq!(code, 1, "export {}: {stderr}", path.display());
        one_error_line(&stderr, path, &[says]);

        let (code, _, stderr) = run(
            &[
                "boot",
                "--work-dir",
                work.to_str().unwrap(),
                "--accel",
                "tcg",
                "--exec",
                "true",
            ],
            path,
        );
        assert_eq!(code, 1, "boot {}: {stderr}", path.display());
        one_error_line(&stderr, path, &[says]);
        assert!(super::listing(&work).is_empty(), "boot left a VM directory");
    }
}

#[test]
fn verify_refuses_a_fifo_in_place_of_the_manifest_or_the_sums() {
    let dir = tempfile::tempdir().unwrap();
    let disk = super::disk(dir.path(), 16 << 20);
    let out = dir.path().join("out");
    let o = nodeimg()
        .arg("export")
        .arg(&disk)
        .arg("--out")
        .arg(&out)
        .args(["--formats", "raw"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", out_str(&o).1);
    for name in ["SHA256SUMS", "manifest.json"] {
        let file = out.join(name);
        std::fs::remove_file(&file).unwrap();
        nix::unistd::mkfifo(&file, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let (code, _, stderr) = run(&["verify"], &out);
        assert_eq!(code, 1, "{stderr}");
        one_error_line(&stderr, &file, &["is a FIFO, not a regular file"]);
    }
}

// ---- GPT helpers ----

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// Rewrites partition entry `index` (0-based) in both GPT copies of the raw disk `path` with
/// `edit`, and fixes the entry and header CRCs, so only the table's meaning is wrong.
fn patch_entry(path: &Path, index: usize, edit: impl Fn(&mut [u8])) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let sectors = f.metadata().unwrap().len() / 512;
    for header_lba in [1, sectors - 1] {
        let mut header = [0u8; 512];
        f.read_exact_at(&mut header, header_lba * 512).unwrap();
        assert_eq!(&header[..8], b"EFI PART");
        let entries_at = le64(&header, 72) * 512;
        let count = le32(&header, 80) as usize;
        let mut entries = vec![0u8; count * 128];
        f.read_exact_at(&mut entries, entries_at).unwrap();
        edit(&mut entries[index * 128..(index + 1) * 128]);
        f.write_all_at(&entries, entries_at).unwrap();
        header[88..92].copy_from_slice(&crc32(&entries).to_le_bytes());
        let size = le32(&header, 12) as usize;
        header[16..20].fill(0);
        let crc = crc32(&header[..size]);
        header[16..20].copy_from_slice(&crc.to_le_bytes());
        f.write_all_at(&header, header_lba * 512).unwrap();
    }
}

/// First and last LBA of partition entry `index` (0-based) in the primary GPT of `path`.
fn entry_lbas(path: &Path, index: usize) -> (u64, u64) {
    let bytes = std::fs::read(path).unwrap();
    let at = usize::try_from(le64(&bytes, 512 + 72)).unwrap() * 512 + index * 128;
    (le64(&bytes, at + 32), le64(&bytes, at + 40))
}

fn set_lbas(e: &mut [u8], first: u64, last: u64) {
    e[32..40].copy_from_slice(&first.to_le_bytes());
    e[40..48].copy_from_slice(&last.to_le_bytes());
}

fn have(tool: &str) -> bool {
    if fixtures::tools::have(tool) {
        return true;
    }
    fixtures::tools::skip(&format!("{tool} is not installed"));
    false
}

// ---- item 12: reader errors propagate; the backup GPT is used and said ----

/// A qcow2 of a 64 MiB GPT disk made by `qemu-img convert`, and its L1 table offset.
fn qcow2_of_gpt_disk(dir: &Path) -> Option<(PathBuf, u64)> {
    if !have("qemu-img") {
        return None;
    }
    let raw = super::disk(dir, 64 << 20);
    let qcow = dir.join("disk.qcow2");
    fixtures::tools::run_ok(
        Command::new("qemu-img")
            .args(["convert", "-q", "-f", "raw", "-O", "qcow2"])
            .arg(&raw)
            .arg(&qcow),
    );
    let head = std::fs::read(&qcow).unwrap();
    let l1 = u64::from_be_bytes(head[40..48].try_into().unwrap());
    Some((qcow, l1))
}

/// Points the data cluster of guest cluster 0 (the GPT) past the end of the file: the L2
/// table is fine, the read of LBA 1 fails. Returns the file offset of that L2 entry.
fn corrupt_first_data_cluster(qcow: &Path, l1: u64) -> u64 {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(qcow)
        .unwrap();
    let mut entry = [0u8; 8];
    f.read_exact_at(&mut entry, l1).unwrap();
    let l2 = u64::from_be_bytes(entry) & 0x00ff_ffff_ffff_fe00;
    assert_ne!(l2, 0, "guest cluster 0 is unallocated");
    let past = (f.metadata().unwrap().len() + (1 << 30)) & !0xffff;
    f.write_all_at(&(past | (1 << 63)).to_be_bytes(), l2)
        .unwrap();
    l2
}

#[test]
fn inspect_reports_the_read_error_of_a_corrupt_qcow2_not_no_gpt() {
    let dir = tempfile::tempdir().unwrap();
    let Some((qcow, l1)) = qcow2_of_gpt_disk(dir.path()) else {
        return;
    };
    let entry_at = corrupt_first_data_cluster(&qcow, l1);
    let (code, stdout, stderr) = run(&["inspect"], &qcow);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    one_error_line(
        &stderr,
        &qcow,
        &[
            &format!("offset {entry_at}"),
            "lies past the end of the file",
        ],
    );
    assert!(!stdout.contains("no GPT"), "{stdout}");
}

/// A 64 MiB patterned GPT disk with its primary header zeroed.
fn disk_without_primary_header(dir: &Path) -> PathBuf {
    let disk = super::disk(dir, 64 << 20);
    let f = std::fs::OpenOptions::new().write(true).open(&disk).unwrap();
    f.write_all_at(&[0u8; 512], 512).unwrap();
    disk
}

#[test]
fn inspect_reads_the_backup_gpt_when_the_primary_is_damaged_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let disk = disk_without_primary_header(dir.path());
    let (code, stdout, stderr) = run(&["inspect"], &disk);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stdout.contains("no GPT"), "{stdout}");
    let warning = stdout
        .lines()
        .find(|l| l.starts_with("warning:"))
        .unwrap_or_else(|| panic!("no warning line:\n{stdout}"));
    assert!(
        warning.contains("primary GPT header (LBA 1) is damaged")
            && warning.contains(&format!("backup header at LBA {}", (64 << 20) / 512 - 1)),
        "{warning}"
    );

    let (code, stdout, stderr) = run(&["inspect", "--json"], &disk);
    assert_eq!(code, 0, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["gpt"]["header"], "backup");
    let ours: Vec<(u64, u64)> = v["gpt"]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["first_lba"].as_u64().unwrap(),
                p["last_lba"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(ours.len(), 2, "{stdout}");
    assert!(
        v["warnings"][0]
            .as_str()
            .unwrap()
            .contains("read from the backup header"),
        "{stdout}"
    );

    // sfdisk reads the same table from the backup header.
    if have("sfdisk") {
        let o = Command::new("sfdisk")
            .arg("--json")
            .arg(&disk)
            .output()
            .unwrap();
        let theirs: serde_json::Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("sfdisk --json: {e}: {}", out_str(&o).1));
        let theirs: Vec<(u64, u64)> = theirs["partitiontable"]["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let start = p["start"].as_u64().unwrap();
                (start, start + p["size"].as_u64().unwrap() - 1)
            })
            .collect();
        assert_eq!(ours, theirs);
    }
}

#[test]
fn audit_reads_the_backup_gpt_and_logs_it() {
    if !have("mkfs.ext4") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("hello"), b"hi\n").unwrap();
    let disk = dir.path().join("root.raw");
    fixtures::ext4::ext4_disk(&disk, 64 << 20, &[src]).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&disk).unwrap();
    f.write_all_at(&[0u8; 512], 512).unwrap();
    let (code, stdout, stderr) = run(&["audit"], &disk);
    assert_ne!(code, 2, "the audit did not run: {stderr}");
    assert!(stdout.contains("checks"), "{stdout}");
    assert!(
        stderr.contains("primary GPT header (LBA 1) is damaged")
            && stderr.contains("backup header"),
        "{stderr}"
    );
}

// ---- item 13: invalid partition tables ----

/// The three kinds of invalid table, each made from a fresh 64 MiB GPT disk by patching
/// partition 2 (CRCs fixed), with the fault the message must name.
fn invalid_tables(dir: &Path) -> Vec<(PathBuf, String)> {
    let sectors = (64u64 << 20) / 512;
    let mut out = Vec::new();
    for name in ["past-end", "overlap", "first-after-last"] {
        let sub = dir.join(name);
        std::fs::create_dir(&sub).unwrap();
        let disk = super::disk(&sub, 64 << 20);
        let (f1, l1) = entry_lbas(&disk, 0);
        let (f2, l2) = entry_lbas(&disk, 1);
        let (first, last) = match name {
            "past-end" => (f2, sectors + 100),
            "overlap" => (f1.midpoint(l1), l2),
            _ => (l2, f2),
        };
        patch_entry(&disk, 1, |e| set_lbas(e, first, last));
        let fault = match name {
            "past-end" => format!(
                "partition 2: ends at LBA {last}, past the end of the disk (last LBA {})",
                sectors - 1
            ),
            "overlap" => "partitions 1 and 2 overlap".to_string(),
            _ => format!("partition 2: first LBA {first} is after its last LBA {last}"),
        };
        out.push((disk, fault));
    }
    out
}

#[test]
fn inspect_warns_about_an_invalid_partition_table() {
    let dir = tempfile::tempdir().unwrap();
    for (disk, fault) in invalid_tables(dir.path()) {
        let (code, stdout, stderr) = run(&["inspect"], &disk);
        assert_eq!(code, 0, "{stderr}");
        assert!(
            stdout.lines().any(|l| l.starts_with("warning:")
                && l.contains("invalid partition table")
                && l.contains(&fault)),
            "no warning {fault:?} in:\n{stdout}"
        );
        let (code, stdout, _) = run(&["inspect", "--json"], &disk);
        assert_eq!(code, 0);
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        let warnings = v["warnings"].as_array().unwrap();
        assert!(
            warnings
                .iter()
                .any(|w| w.as_str().unwrap().contains(&fault)),
            "{stdout}"
        );
    }
}

#[test]
fn audit_and_export_pad_refuse_an_invalid_partition_table() {
    let dir = tempfile::tempdir().unwrap();
    for (disk, fault) in invalid_tables(dir.path()) {
        let (code, _, stderr) = run(&["audit"], &disk);
        assert_eq!(code, 2, "{stderr}");
        one_error_line(&stderr, &disk, &["invalid partition table", &fault]);

        let out = disk.with_file_name("out");
        let (code, _, stderr) = run(
            &[
                "export",
                "--out",
                out.to_str().unwrap(),
                "--formats",
                "qcow2,gce",
                "--pad",
                "--name",
                "n",
            ],
            &disk,
        );
        assert_eq!(code, 1, "{stderr}");
        one_error_line(&stderr, &disk, &["invalid partition table", &fault]);
        assert!(
            super::listing(&out).iter().all(|f| !f.starts_with('n')),
            "artifacts written: {:?}",
            super::listing(&out)
        );
    }
}

// ---- item 15: boot checks the image with the project's reader before any QEMU ----

/// A `NODEIMG_QEMU` that leaves a mark when it is run at all.
fn loud_qemu(dir: &Path) -> (PathBuf, PathBuf) {
    let mark = dir.join("qemu-was-run");
    let script = dir.join("qemu-system-x86_64");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ntouch {}\necho 'QEMU RAN' >&2\nexit 99\n",
            mark.display()
        ),
    )
    .unwrap();
    let mut perms = std::fs::metadata(&script).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&script, perms).unwrap();
    (script, mark)
}

fn boot_refuses(dir: &Path, image: &Path, wanted: &[&str]) {
    let (qemu, mark) = loud_qemu(dir);
    let work = dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let o = run_guarded(
        nodeimg()
            .env("NODEIMG_QEMU", &qemu)
            .arg("boot")
            .arg(image)
            .arg("--work-dir")
            .arg(&work)
            .args(["--accel", "tcg", "--exec", "true", "--ready-timeout", "5"]),
    );
    let (stdout, stderr) = out_str(&o);
    assert_eq!(o.status.code(), Some(1), "{stdout}\n{stderr}");
    one_error_line(&stderr, image, wanted);
    assert!(!mark.exists(), "QEMU was run: {stderr}");
    assert!(super::listing(&work).is_empty(), "boot left a VM directory");
}

#[test]
fn boot_refuses_a_qcow2_with_a_backing_file_before_qemu() {
    if !have("qemu-img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("host-secret.raw");
    std::fs::write(&secret, vec![7u8; 2 << 20]).unwrap();
    let image = dir.path().join("innocent.qcow2");
    fixtures::tools::run_ok(
        Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-F", "raw", "-b"])
            .arg(&secret)
            .arg(&image),
    );
    boot_refuses(dir.path(), &image, &["offset 8", "has a backing file"]);
}

#[test]
fn boot_refuses_a_qcow2_whose_l1_or_data_lies_past_the_end_before_qemu() {
    let dir = tempfile::tempdir().unwrap();
    let Some((qcow, l1)) = qcow2_of_gpt_disk(dir.path()) else {
        return;
    };
    let bytes = std::fs::read(&qcow).unwrap();
    let len = bytes.len() as u64;

    let l1_past = dir.path().join("l1-past-end.qcow2");
    let mut b = bytes.clone();
    let far = (len + (1 << 30)) & !0xffff;
    b[40..48].copy_from_slice(&far.to_be_bytes());
    std::fs::write(&l1_past, b).unwrap();
    boot_refuses(
        dir.path(),
        &l1_past,
        &[
            "offset 40",
            &format!("L1 table at {far}"),
            "runs past the end of the file",
        ],
    );

    let data_past = dir.path().join("data-past-end.qcow2");
    std::fs::write(&data_past, &bytes).unwrap();
    let entry_at = corrupt_first_data_cluster(&data_past, l1);
    boot_refuses(
        dir.path(),
        &data_past,
        &[
            &format!("offset {entry_at}"),
            "lies past the end of the file",
        ],
    );
}

#[test]
fn boot_refuses_formats_it_cannot_boot_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let vhdx = dir.path().join("disk.vhdx");
    let mut head = b"vhdxfile".to_vec();
    head.resize(4 << 20, 0);
    std::fs::write(&vhdx, &head).unwrap();
    boot_refuses(dir.path(), &vhdx, &["VHDX"]);
    let small = dir.path().join("small.raw");
    std::fs::write(&small, vec![0u8; 4096]).unwrap();
    boot_refuses(dir.path(), &small, &["too small"]);
}
