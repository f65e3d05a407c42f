//! The ext4 reader against debugfs (e2fsprogs) as the real reader: filesystems made by
//! `mkfs.ext4 -d` from a directory with small files, an htree directory of 1500 entries, a big
//! sparse file, a file of many extents (an extent tree of depth 1), fast and slow symlinks,
//! unwritten extents (debugfs `fallocate`), and an old block-mapped (no `extent`) filesystem.

use std::collections::BTreeMap;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use diskimg::ext4::{Ext4, FileKind};
use diskimg::image::RawImage;

use crate::common::{have, run_ok};

/// Size of the test filesystems.
const FS_BYTES: u64 = 256 << 20;

/// Fills `dir` with the test tree.
fn populate(dir: &Path) {
    let w = |p: &str, data: &[u8]| {
        let path = dir.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    };
    w("etc/hostname", b"node\n");
    w("etc/empty", b"");
    w("etc/ssh/sshd_config", b"PermitRootLogin no\n");
    let text: Vec<u8> = (0..300_000u32)
        .flat_map(|i| format!("line {i}\n").into_bytes())
        .collect();
    w("usr/share/big.txt", &text);
    for i in 0..1500 {
        w(
            &format!("deep/a/b/c/many/entry-with-a-longish-name-{i:05}"),
            format!("{i}").as_bytes(),
        );
    }
    // A 100 MiB sparse file with data in 8 separate places: more than the 4 extents an inode
    // holds, so its extent tree has depth 1.
    let sparse = dir.join("var/sparse.img");
    std::fs::create_dir_all(sparse.parent().unwrap()).unwrap();
    let f = std::fs::File::create(&sparse).unwrap();
    f.set_len(100 << 20).unwrap();
    for k in 0..8u64 {
        let data: Vec<u8> = (0..5000u64)
            .map(|i| u8::try_from((i * 7 + k) % 251).unwrap())
            .collect();
        f.write_all_at(&data, k * (12 << 20) + 1234).unwrap();
    }
    drop(f);
    std::os::unix::fs::symlink("../etc/hostname", dir.join("var/fast-link")).unwrap();
    let long = format!("/usr/share/{}/../big.txt", "x".repeat(80));
    std::fs::create_dir_all(dir.join(format!("usr/share/{}", "x".repeat(80)))).unwrap();
    std::os::unix::fs::symlink(&long, dir.join("var/slow-link")).unwrap();
    std::os::unix::fs::symlink("/deep/a", dir.join("shortcut")).unwrap();
    std::os::unix::fs::symlink("loop2", dir.join("loop1")).unwrap();
    std::os::unix::fs::symlink("loop1", dir.join("loop2")).unwrap();
}

/// `mkfs.ext4 -d` of the test tree into a plain filesystem image, with `features` (`-O`).
fn make_fs(work: &Path, features: Option<&str>) -> PathBuf {
    let src = work.join("src");
    if !src.exists() {
        populate(&src);
    }
    let img = work.join(format!(
        "fs-{}.img",
        features.unwrap_or("default").replace(['^', ','], "_")
    ));
    let mut cmd = Command::new("mkfs.ext4");
    cmd.args(["-q", "-F", "-b", "4096", "-E", "root_owner=0:0"]);
    if let Some(f) = features {
        cmd.args(["-O", f]);
    }
    cmd.arg("-d")
        .arg(&src)
        .arg(&img)
        .arg(format!("{}k", FS_BYTES >> 10));
    run_ok(&mut cmd);
    // mkfs.ext4 -d writes linear directories; e2fsck -D rebuilds big ones as htrees.
    let status = Command::new("e2fsck")
        .args(["-f", "-y", "-D"])
        .arg(&img)
        .output()
        .unwrap()
        .status;
    assert!(
        matches!(status.code(), Some(0 | 1)),
        "e2fsck -fyD: {status}"
    );
    img
}

fn open(img: &Path) -> Ext4 {
    let len = std::fs::metadata(img).unwrap().len();
    Ext4::open(Box::new(RawImage::open(img).unwrap()), img, 0, len).expect("open ext4")
}

/// The file read through [`Ext4::file_reader`] with an odd-sized buffer (reads that straddle
/// block, run and hole boundaries).
fn streamed(fs: &mut Ext4, inode: &diskimg::ext4::Inode) -> Vec<u8> {
    let mut reader = fs.file_reader(inode).unwrap();
    let mut out = Vec::new();
    let mut buf = vec![0u8; 4093];
    loop {
        let n = std::io::Read::read(&mut reader, &mut buf).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

fn debugfs(img: &Path, request: &str) -> Vec<u8> {
    let out = Command::new("debugfs")
        .arg("-R")
        .arg(request)
        .arg(img)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "debugfs {request}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `debugfs ls -p DIR`: name → (inode, mode, uid, gid, size).
fn debugfs_ls(img: &Path, dir: &str) -> BTreeMap<String, (u32, u32, u32, u32, u64)> {
    let text = String::from_utf8(debugfs(img, &format!("ls -p {dir}"))).unwrap();
    let mut map = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with('/')) {
        let f: Vec<&str> = line.split('/').collect();
        // /ino/mode/uid/gid/name/size/
        if f[1] == "0" {
            // Unused space (deleted or never-used entries) that debugfs also lists.
            continue;
        }
        let size = f[6].parse().unwrap_or(0);
        map.insert(
            f[5].to_string(),
            (
                f[1].parse().unwrap(),
                u32::from_str_radix(f[2], 8).unwrap(),
                f[3].parse().unwrap(),
                f[4].parse().unwrap(),
                size,
            ),
        );
    }
    map
}

/// Compares every directory listing (names, inodes, modes, owners, sizes) with debugfs,
/// recursively, and the content of every regular file of at most 4 MiB outside `many/`.
fn compare_tree(img: &Path) {
    let mut fs = open(img);
    let mut dirs = vec!["/".to_string()];
    let mut files_checked = 0;
    while let Some(dir) = dirs.pop() {
        let expected = debugfs_ls(img, &dir);
        let inode = fs.lookup(&dir).unwrap().unwrap();
        let entries = fs.read_dir(&inode).unwrap();
        let mut ours = BTreeMap::new();
        for e in &entries {
            let child = fs.inode(e.ino).unwrap();
            let m = child.metadata();
            assert_eq!(
                FileKind::from_mode(child.mode),
                e.kind,
                "{dir}/{}",
                e.name()
            );
            // debugfs `ls -p` shows 0 as the size of a directory.
            let size = if child.is_dir() { 0 } else { m.size };
            ours.insert(
                e.name().into_owned(),
                (e.ino, u32::from(child.mode), m.uid, m.gid, size),
            );
            let path = format!("{}/{}", dir.trim_end_matches('/'), e.name());
            if e.is_dot() {
                continue;
            }
            if child.is_dir() {
                dirs.push(path);
            } else if child.is_file() && m.size <= 4 << 20 && !dir.ends_with("many") {
                let data = fs.read_file(&child, u64::MAX).unwrap();
                assert_eq!(data, debugfs(img, &format!("cat {path}")), "{path}");
                assert_eq!(streamed(&mut fs, &child), data, "{path} streamed");
                files_checked += 1;
            }
        }
        // debugfs shows sizes of directories and devices; compare everything it lists.
        assert_eq!(ours, expected, "listing of {dir}");
    }
    assert!(files_checked >= 4, "only {files_checked} files compared");
}

#[test]
fn listings_metadata_and_contents_match_debugfs() {
    if !have("mkfs.ext4") || !have("debugfs") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let img = make_fs(work.path(), None);
    let features = String::from_utf8(debugfs(&img, "features")).unwrap();
    for f in [
        "64bit",
        "flex_bg",
        "extent",
        "metadata_csum",
        "dir_index",
        "filetype",
    ] {
        assert!(features.contains(f), "mkfs did not enable {f}: {features}");
    }
    compare_tree(&img);
}

#[test]
fn htree_directory_with_1500_entries_reads_completely() {
    if !have("mkfs.ext4") || !have("debugfs") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let img = make_fs(work.path(), None);
    let stat = String::from_utf8(debugfs(&img, "stat /deep/a/b/c/many")).unwrap();
    assert!(
        stat.contains("Flags: 0x81000"),
        "not an htree (INDEX flag): {stat}"
    );
    let mut fs = open(&img);
    let dir = fs.lookup("/deep/a/b/c/many").unwrap().unwrap();
    let entries = fs.read_dir(&dir).unwrap();
    assert_eq!(entries.iter().filter(|e| !e.is_dot()).count(), 1500);
    let expected = debugfs_ls(&img, "/deep/a/b/c/many");
    assert_eq!(expected.len(), 1502);
    for e in &entries {
        assert_eq!(expected[&*e.name()].0, e.ino);
    }
    let f = fs
        .lookup("/deep/a/b/c/many/entry-with-a-longish-name-01234")
        .unwrap()
        .unwrap();
    assert_eq!(fs.read_file(&f, 100).unwrap(), b"1234");
}

#[test]
fn sparse_file_with_an_extent_tree_matches_debugfs() {
    if !have("mkfs.ext4") || !have("debugfs") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let img = make_fs(work.path(), None);
    let stat = String::from_utf8(debugfs(&img, "ex /var/sparse.img")).unwrap();
    assert!(
        stat.lines().any(|l| l.trim_start().starts_with("0/ 1")),
        "depth > 0 expected:\n{stat}"
    );
    let mut fs = open(&img);
    let f = fs.lookup("/var/sparse.img").unwrap().unwrap();
    assert_eq!(f.size, 100 << 20);
    let ours = fs.read_file(&f, u64::MAX).unwrap();
    let theirs = debugfs(&img, "cat /var/sparse.img");
    assert_eq!(ours.len(), theirs.len());
    assert!(ours == theirs, "sparse file content differs from debugfs");
    assert!(
        streamed(&mut fs, &f) == theirs,
        "streamed sparse file differs"
    );
    assert_eq!(
        ours,
        std::fs::read(work.path().join("src/var/sparse.img")).unwrap()
    );
    // A bounded read returns the prefix.
    assert_eq!(fs.read_file(&f, 2000).unwrap(), theirs[..2000]);
}

#[test]
fn unwritten_extents_read_as_zeros() {
    if !have("mkfs.ext4") || !have("debugfs") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let img = make_fs(work.path(), None);
    // Preallocate blocks 0..99 of a new empty file: unwritten extents.
    run_ok(
        Command::new("debugfs")
            .args(["-w", "-R", "write /dev/null /prealloc"])
            .arg(&img),
    );
    run_ok(
        Command::new("debugfs")
            .args(["-w", "-R", "fallocate /prealloc 0 99"])
            .arg(&img),
    );
    run_ok(
        Command::new("debugfs")
            .args(["-w", "-R", "sif /prealloc size 409600"])
            .arg(&img),
    );
    let ex = String::from_utf8(debugfs(&img, "ex /prealloc")).unwrap();
    assert!(ex.contains("Uninit"), "no unwritten extent:\n{ex}");
    let mut fs = open(&img);
    let f = fs.lookup("/prealloc").unwrap().unwrap();
    let data = fs.read_file(&f, u64::MAX).unwrap();
    assert_eq!(data.len(), 409_600);
    assert!(data.iter().all(|&b| b == 0));
    assert_eq!(data, debugfs(&img, "cat /prealloc"));
    assert_eq!(streamed(&mut fs, &f), data);
}

#[test]
fn fast_and_slow_symlinks_and_lookups_through_them() {
    if !have("mkfs.ext4") || !have("debugfs") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let img = make_fs(work.path(), None);
    let mut fs = open(&img);
    for (link, dest) in [
        ("/var/fast-link", "../etc/hostname".to_string()),
        (
            "/var/slow-link",
            format!("/usr/share/{}/../big.txt", "x".repeat(80)),
        ),
    ] {
        let l = fs.lookup(link).unwrap().unwrap();
        assert!(l.is_symlink());
        assert_eq!(fs.read_link(&l).unwrap(), dest.as_bytes(), "{link}");
        let host = std::fs::read_link(work.path().join(format!("src{link}"))).unwrap();
        assert_eq!(host.to_str().unwrap(), dest);
    }
    let stat = String::from_utf8(debugfs(&img, "stat /var/fast-link")).unwrap();
    assert!(
        stat.contains("Fast link dest: \"../etc/hostname\""),
        "{stat}"
    );
    let hostname = fs.lookup_follow("/var/fast-link").unwrap().unwrap();
    assert_eq!(fs.read_file(&hostname, 100).unwrap(), b"node\n");
    let big = fs.lookup_follow("/var/slow-link").unwrap().unwrap();
    assert_eq!(
        fs.read_file(&big, u64::MAX).unwrap(),
        debugfs(&img, "cat /usr/share/big.txt")
    );
    // Intermediate symlinks are followed; the last one is not, unless asked.
    let via = fs
        .lookup("/shortcut/b/c/many/entry-with-a-longish-name-00007")
        .unwrap()
        .unwrap();
    assert_eq!(fs.read_file(&via, 10).unwrap(), b"7");
    assert!(fs.lookup("/shortcut").unwrap().unwrap().is_symlink());
    assert!(fs.lookup_follow("/shortcut").unwrap().unwrap().is_dir());
    assert!(fs.lookup("/var/nothing").unwrap().is_none());
    assert!(fs.lookup("/etc/hostname/below").unwrap().is_none());
    let err = fs.lookup("/loop1/x").unwrap_err().to_string();
    assert!(err.contains("levels of symbolic links"), "{err}");
}

#[test]
fn block_mapped_filesystem_without_extents_matches_debugfs() {
    if !have("mkfs.ext4") || !have("debugfs") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let img = make_fs(work.path(), Some("^extent,^64bit,^flex_bg,^metadata_csum"));
    let stat = String::from_utf8(debugfs(&img, "stat /usr/share/big.txt")).unwrap();
    assert!(
        stat.contains("(IND)") || stat.contains("(DIND)"),
        "not block-mapped:\n{stat}"
    );
    compare_tree(&img);
    let mut fs = open(&img);
    let f = fs.lookup("/var/sparse.img").unwrap().unwrap();
    let theirs = debugfs(&img, "cat /var/sparse.img");
    assert_eq!(fs.read_file(&f, u64::MAX).unwrap(), theirs);
    assert!(
        streamed(&mut fs, &f) == theirs,
        "streamed block-mapped file differs"
    );
    let dir = fs.lookup("/etc").unwrap().unwrap();
    assert!(fs.file_reader(&dir).is_err(), "a directory is not streamed");
}

#[test]
fn root_filesystem_is_found_in_a_gpt_disk_and_a_qcow2_of_it() {
    if !have("mkfs.ext4") || !have("qemu-img") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    populate(&src);
    let disk = work.path().join("disk.raw");
    fixtures::ext4::ext4_disk(&disk, 400 << 20, &[src.join("etc")]).unwrap();
    let qcow = work.path().join("disk.qcow2");
    run_ok(
        Command::new("qemu-img")
            .args(["convert", "-O", "qcow2"])
            .arg(&disk)
            .arg(&qcow),
    );
    for path in [&disk, &qcow] {
        let mut root = diskimg::rootfs::open_root_fs(path).unwrap();
        assert_eq!(root.partition.number, 2);
        let f = root.fs.lookup("/0-etc/hostname").unwrap().unwrap();
        assert_eq!(root.fs.read_file(&f, 100).unwrap(), b"node\n");
        assert_eq!(root.fs.superblock().label, "root");
    }
}
