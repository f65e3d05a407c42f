//! The packages a base image already has, read offline from its `/var/lib/dpkg/status` with
//! the project's own readers (`diskimg`: qcow2 or raw, GPT, ext4): no mount, no qemu-img.

use std::path::Path;

use debarchive::packages::Package;

use super::error::FetchError;

/// Where dpkg keeps its database of installed packages.
pub const DPKG_STATUS: &str = "/var/lib/dpkg/status";
/// The largest status file read (a full desktop's is a few MiB).
const STATUS_LIMIT: u64 = 256 << 20;

/// The dpkg status file of the disk image at `image`, as text.
pub fn read_status(image: &Path) -> Result<String, FetchError> {
    let bad = |why: String| FetchError::BaseStatus {
        image: image.display().to_string(),
        file: DPKG_STATUS,
        why,
    };
    let mut root = diskimg::rootfs::open_root_fs(image).map_err(|e| bad(e.to_string()))?;
    let inode = root
        .fs
        .lookup_follow(DPKG_STATUS)
        .map_err(|e| bad(e.to_string()))?
        .ok_or_else(|| bad("the root filesystem has no such file".to_owned()))?;
    if !inode.is_file() {
        return Err(bad("is not a regular file".to_owned()));
    }
    if inode.size > STATUS_LIMIT {
        return Err(bad(format!(
            "is {} bytes, more than the {STATUS_LIMIT} read",
            inode.size
        )));
    }
    let bytes = root
        .fs
        .read_file(&inode, STATUS_LIMIT)
        .map_err(|e| bad(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| bad(format!("is not UTF-8 text: {e}")))
}

/// The installed packages of the disk image at `image` (what dpkg's status says is installed).
pub fn installed(image: &Path) -> Result<Vec<Package>, FetchError> {
    let text = read_status(image)?;
    let name = format!("{}:{DPKG_STATUS}", image.display());
    Ok(debarchive::status::installed(&text, &name)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_status_names_the_image_the_file_and_why() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("fake.qcow2");
        std::fs::write(&image, vec![0x5a; 1 << 20]).unwrap();
        let text = installed(&image).unwrap_err().to_string();
        assert!(
            text.starts_with(&format!("base image {}: {DPKG_STATUS}: ", image.display()))
                && text.contains("GPT"),
            "{text}"
        );
        let missing = dir.path().join("absent.qcow2");
        let text = read_status(&missing).unwrap_err().to_string();
        assert!(
            text.contains("absent.qcow2") && text.contains(DPKG_STATUS),
            "{text}"
        );
    }
}
