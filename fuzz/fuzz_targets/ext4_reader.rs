//! Arbitrary bytes as an ext4 filesystem (at offset 0 of an in-memory disk): open it, walk the
//! tree from the root (bounded), read every file and symlink (bounded), look up a few paths.
//! Any panic, endless loop or huge allocation is a bug.
#![no_main]

use std::path::Path;

use diskimg::ext4::Ext4;
use diskimg::image::DiskImage;
use libfuzzer_sys::fuzz_target;

#[derive(Debug)]
struct MemImage(Vec<u8>);

impl DiskImage for MemImage {
    fn virtual_size(&self) -> u64 {
        u64::try_from(self.0.len()).unwrap_or(u64::MAX)
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> diskimg::Result<()> {
        let src = usize::try_from(offset)
            .ok()
            .and_then(|start| self.0.get(start..start.checked_add(buf.len())?));
        match src {
            Some(src) => {
                buf.copy_from_slice(src);
                Ok(())
            }
            None => Err(diskimg::Error::corrupt(Path::new("fuzz"), offset, "past the end")),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let len = u64::try_from(data.len()).unwrap_or(0);
    let image = Box::new(MemImage(data.to_vec()));
    let Ok(mut fs) = Ext4::open(image, Path::new("fuzz"), 0, len) else {
        return;
    };
    let Ok(root) = fs.root() else { return };
    let mut todo = vec![(root, 0u32)];
    let mut visited = 0u32;
    while let Some((dir, depth)) = todo.pop() {
        let Ok(entries) = fs.read_dir(&dir) else { continue };
        for e in entries.iter().filter(|e| !e.is_dot()) {
            visited += 1;
            if visited > 2000 {
                return;
            }
            let Ok(inode) = fs.inode(e.ino) else { continue };
            let _ = inode.metadata();
            if inode.is_dir() {
                if depth < 6 {
                    todo.push((inode, depth + 1));
                }
            } else if inode.is_symlink() {
                let _ = fs.read_link(&inode);
            } else {
                let _ = fs.read_file(&inode, 1 << 16);
            }
        }
    }
    for path in ["/etc/machine-id", "/a/b/c", "/lost+found/../.", "/x/../../y"] {
        let _ = fs.lookup(path);
        let _ = fs.lookup_follow(path);
    }
});
