//! The ext4 reader and root filesystem finder on bad input: one clear error naming the file and
//! what is wrong, never a panic — also under thousands of random byte flips in the metadata.

use std::path::{Path, PathBuf};
use std::process::Command;

use diskimg::error::Result as XResult;
use diskimg::ext4::Ext4;
use diskimg::image::{DiskImage, RawImage};
use diskimg::rootfs::open_root_fs;

use crate::common::{have, run_ok};

/// A small ext4 image (8 MiB, 1 KiB blocks so every structure is near the start) with a few
/// files, directories and symlinks. `features` are passed with `-O`.
fn small_fs(work: &Path, features: &str) -> PathBuf {
    let src = work.join("src");
    std::fs::create_dir_all(src.join("etc/ssh")).unwrap();
    std::fs::write(src.join("etc/machine-id"), b"0123456789abcdef\n").unwrap();
    std::fs::write(src.join("etc/ssh/key"), vec![b'k'; 30_000]).unwrap();
    for i in 0..200 {
        std::fs::write(src.join(format!("etc/f{i}")), format!("{i}")).unwrap();
    }
    let _ = std::os::unix::fs::symlink("/etc/ssh", src.join("link"));
    let img = work.join("small.img");
    run_ok(
        Command::new("mkfs.ext4")
            .args([
                "-q",
                "-F",
                "-b",
                "1024",
                "-O",
                features,
                "-E",
                "root_owner=0:0",
                "-d",
            ])
            .arg(&src)
            .arg(&img)
            .arg("8M"),
    );
    img
}

fn open_err(img: &Path) -> String {
    let len = std::fs::metadata(img).unwrap().len();
    let image = Box::new(RawImage::open(img).unwrap());
    let err = Ext4::open(image, img, 0, len)
        .expect_err("open must fail")
        .to_string();
    assert!(
        err.contains(&img.display().to_string()),
        "error does not name the file: {err}"
    );
    err
}

fn patch(img: &Path, at: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt as _;
    let f = std::fs::OpenOptions::new().write(true).open(img).unwrap();
    f.write_all_at(bytes, at).unwrap();
}

#[test]
fn corrupt_superblocks_are_named() {
    if !have("mkfs.ext4") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let csum = small_fs(work.path(), "metadata_csum");
    // Bad checksum: change the write time without updating s_checksum.
    patch(&csum, 1024 + 0x30, &[1, 2, 3, 4]);
    assert!(open_err(&csum).contains("superblock checksum mismatch"));
    // Bad magic.
    patch(&csum, 1024 + 0x38, &[0x12, 0x34]);
    let err = open_err(&csum);
    assert!(err.contains("magic 0x3412"), "{err}");

    let plain = work.path().join("plain");
    std::fs::create_dir(&plain).unwrap();
    let img = small_fs(&plain, "^metadata_csum");
    let good = std::fs::read(&img).unwrap();
    // Absurd block count.
    patch(&img, 1024 + 0x4, &u32::MAX.to_le_bytes());
    assert!(open_err(&img).contains("does not fit the partition"));
    std::fs::write(&img, &good).unwrap();
    // Block size 2^(10+20).
    patch(&img, 1024 + 0x18, &20u32.to_le_bytes());
    assert!(open_err(&img).contains("block size"));
    std::fs::write(&img, &good).unwrap();
    // Unsupported incompatible features are refused by name.
    let incompat = u32::from_le_bytes(good[1024 + 0x60..1024 + 0x64].try_into().unwrap());
    patch(
        &img,
        1024 + 0x60,
        &(incompat | 0x8000 | 0x10000).to_le_bytes(),
    );
    let err = open_err(&img);
    assert!(
        err.contains("inline_data") && err.contains("encrypt"),
        "{err}"
    );
    std::fs::write(&img, &good).unwrap();
    // Inode size 100.
    patch(&img, 1024 + 0x58, &100u16.to_le_bytes());
    assert!(open_err(&img).contains("inode size 100"));
    // Truncated image: the superblock's block count no longer fits.
    std::fs::write(&img, &good[..4 << 20]).unwrap();
    assert!(open_err(&img).contains("does not fit the partition"));
    // Too short to hold a superblock at all.
    std::fs::write(&img, &good[..1500]).unwrap();
    assert!(open_err(&img).contains("too small"));
}

#[test]
fn disks_without_gpt_or_without_ext4_root_are_named() {
    let work = tempfile::tempdir().unwrap();
    let zeros = work.path().join("zeros.raw");
    std::fs::File::create(&zeros)
        .unwrap()
        .set_len(16 << 20)
        .unwrap();
    let err = open_root_fs(&zeros).unwrap_err().to_string();
    assert!(err.contains("zeros.raw") && err.contains("no GPT"), "{err}");

    // A GPT disk whose Linux partition holds patterned data, not ext4.
    let patterned = work.path().join("patterned.raw");
    fixtures::gpt_disk::patterned_gpt_disk(&patterned, 32 << 20, 5).unwrap();
    let err = open_root_fs(&patterned).unwrap_err().to_string();
    assert!(
        err.contains("patterned.raw") && err.contains("partition 2 is not ext4 (found magic"),
        "{err}"
    );

    let missing = work.path().join("missing.raw");
    let err = open_root_fs(&missing).unwrap_err().to_string();
    assert!(err.contains("missing.raw"), "{err}");

    if !have("mkfs.ext4") {
        return;
    }
    // A truncated GPT disk: the backup header is gone, so there is no readable GPT; a disk cut
    // inside the filesystem fails on the filesystem.
    let src = work.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"x").unwrap();
    let disk = work.path().join("disk.raw");
    fixtures::ext4::ext4_disk(&disk, 64 << 20, &[src]).unwrap();
    let full = std::fs::read(&disk).unwrap();
    std::fs::write(&disk, &full[..40 << 20]).unwrap();
    let err = open_root_fs(&disk).unwrap_err().to_string();
    assert!(err.contains("disk.raw"), "{err}");
}

/// A disk image in memory.
#[derive(Debug)]
struct MemImage(Vec<u8>);

impl DiskImage for MemImage {
    fn virtual_size(&self) -> u64 {
        self.0.len() as u64
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> XResult<()> {
        let start = usize::try_from(offset).unwrap();
        match self.0.get(start..start + buf.len()) {
            Some(src) => {
                buf.copy_from_slice(src);
                Ok(())
            }
            None => Err(diskimg::Error::corrupt(
                Path::new("mem"),
                offset,
                "past the end",
            )),
        }
    }
}

/// Opens `data` and walks it all (bounded), reading every file; returns whether it worked.
fn walk_all(data: Vec<u8>) -> bool {
    let len = data.len() as u64;
    let Ok(mut fs) = Ext4::open(Box::new(MemImage(data)), Path::new("mem"), 0, len) else {
        return false;
    };
    let Ok(root) = fs.root() else { return false };
    let mut todo = vec![(root, 0)];
    let mut visited = 0;
    while let Some((dir, depth)) = todo.pop() {
        let Ok(entries) = fs.read_dir(&dir) else {
            continue;
        };
        for e in entries.iter().filter(|e| !e.is_dot()) {
            visited += 1;
            if visited > 5000 {
                return true;
            }
            let Ok(inode) = fs.inode(e.ino) else { continue };
            if inode.is_dir() && depth < 8 {
                todo.push((inode, depth + 1));
            } else {
                let _ = fs.read_file(&inode, 1 << 20);
            }
        }
    }
    let _ = fs.lookup("/link/key");
    true
}

#[test]
fn random_byte_flips_in_the_metadata_never_panic() {
    if !have("mkfs.ext4") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let img = small_fs(work.path(), "^metadata_csum");
    let good = std::fs::read(&img).unwrap();
    assert!(walk_all(good.clone()));
    // Where the metadata is: the first 300 KiB hold superblock, descriptors, bitmaps, the inode
    // table and the first directory blocks of this 1 KiB-block filesystem.
    let meta = 300 << 10;
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut opened = 0;
    for _ in 0..1500 {
        let mut data = good.clone();
        for _ in 0..1 + next() % 8 {
            let at = usize::try_from(next() % meta).unwrap();
            data[at] ^= u8::try_from(1 + next() % 255).unwrap();
        }
        if walk_all(data) {
            opened += 1;
        }
    }
    assert!(
        opened > 100,
        "only {opened} corrupted images opened: the flips missed the walk"
    );
}
