//! The payload disk's identity and the host's check of it: its filesystem UUID derived from
//! its `SHA256SUMS`; the image read back with the project's own ext4 reader (no mount), its
//! `SHA256SUMS` the one the build wrote, its UUID the one derived from it, and every file
//! listed there hashed as a stream and compared. The guest then only checks the UUID of what
//! it mounts.

use std::os::unix::fs::FileExt as _;
use std::path::Path;

use anyhow::{Context, Result, bail};
use diskimg::ext4::Ext4;
use diskimg::image::RawImage;
use distros::payload::PAYLOAD_SUMS;
use sha2::{Digest, Sha256};

/// Where ext4 keeps the filesystem UUID: `s_uuid`, 0x68 bytes into the superblock at 1024.
const UUID_OFFSET: u64 = 1024 + 0x68;

/// The payload filesystem's UUID, derived from its `SHA256SUMS`: the same content gives the
/// same UUID, other content another one (a version-8 UUID of the digest, as the exporters
/// derive theirs).
pub fn fs_uuid(sums: &str) -> String {
    let digest: [u8; 32] = Sha256::digest(sums.as_bytes()).into();
    let b = exporters::ids::content_uuid(&digest, "payload-filesystem");
    format!(
        "{}-{}-{}-{}-{}",
        hex::encode(&b[..4]),
        hex::encode(&b[4..6]),
        hex::encode(&b[6..8]),
        hex::encode(&b[8..10]),
        hex::encode(&b[10..])
    )
}

/// Checks the payload filesystem image `image` against `sums` (the `SHA256SUMS` the build
/// wrote into it); returns how many files were checked. Errors name the image and the file.
pub fn check_payload_disk(image: &Path, sums: &str) -> Result<usize> {
    let shown = image.display();
    let len = std::fs::metadata(image)
        .with_context(|| format!("reading metadata of {shown}"))?
        .len();
    check_uuid(image, &fs_uuid(sums))?;
    let raw = RawImage::open(image)?;
    let mut fs = Ext4::open(Box::new(raw), image, 0, len)?;
    let on_disk = fs
        .lookup(&format!("/{PAYLOAD_SUMS}"))?
        .with_context(|| format!("payload disk {shown}: no {PAYLOAD_SUMS}"))?;
    let limit = u64::try_from(sums.len()).unwrap_or(u64::MAX);
    if on_disk.size != limit || fs.read_file(&on_disk, limit)? != sums.as_bytes() {
        bail!("payload disk {shown}: {PAYLOAD_SUMS} differs from the one the build wrote");
    }
    let mut checked = 0;
    for line in sums.lines() {
        let Some((want, file)) = line.split_once("  ") else {
            bail!("payload disk {shown}: {PAYLOAD_SUMS}: malformed line {line:?}");
        };
        let inode = fs
            .lookup(&format!("/{file}"))?
            .with_context(|| format!("payload disk {shown}: {file}: missing"))?;
        let reader = fs
            .file_reader(&inode)
            .with_context(|| format!("payload disk {shown}: {file}"))?;
        let got = hex::encode(
            exporters::artifact::sha256_reader(reader)
                .with_context(|| format!("payload disk {shown}: reading {file}"))?,
        );
        if got != want {
            bail!(
                "payload disk {shown}: {file}: sha256 {got} differs from {PAYLOAD_SUMS} ({want})"
            );
        }
        checked += 1;
    }
    Ok(checked)
}

/// Checks that the filesystem in `image` has the UUID `want` (what `mkfs.ext4 -U` was given).
fn check_uuid(image: &Path, want: &str) -> Result<()> {
    let mut raw = [0u8; 16];
    std::fs::File::open(image)
        .and_then(|f| f.read_exact_at(&mut raw, UUID_OFFSET))
        .with_context(|| format!("reading the filesystem UUID of {}", image.display()))?;
    let got = hex::encode(raw);
    if got != want.replace('-', "") {
        bail!(
            "payload disk {}: filesystem UUID {got} is not {want}",
            image.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A payload image made as the build makes it (`mkfs.ext4 -d`, the derived UUID): two
    /// files, one of them larger than a read chunk.
    fn payload_image(dir: &Path) -> (std::path::PathBuf, String, Vec<u8>) {
        let root = dir.join("root");
        std::fs::create_dir_all(root.join("deb")).unwrap();
        let marker: Vec<u8> = b"nodeimg payload check marker "
            .iter()
            .copied()
            .cycle()
            .take(3 << 20)
            .collect();
        std::fs::write(root.join("deb/big.deb"), &marker).unwrap();
        std::fs::write(root.join("small"), b"small file\n").unwrap();
        let hash = |data: &[u8]| hex::encode(sha2::Sha256::digest(data));
        let sums = format!(
            "{}  deb/big.deb\n{}  small\n",
            hash(&marker),
            hash(b"small file\n")
        );
        std::fs::write(root.join(PAYLOAD_SUMS), &sums).unwrap();
        let image = dir.join("payload.img");
        std::fs::File::create(&image)
            .unwrap()
            .set_len(16 << 20)
            .unwrap();
        child_process::Command::new("mkfs.ext4", Duration::from_secs(120))
            .args(["-q", "-F", "-L", "nodeimg-payload", "-O", "^has_journal"])
            .args(["-U", &fs_uuid(&sums)])
            .args(["-E", "root_owner=0:0", "-d"])
            .arg(&root)
            .arg(&image)
            .run()
            .unwrap();
        (image, sums, marker)
    }

    #[test]
    fn a_good_payload_image_passes_and_a_flipped_data_byte_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let (image, sums, marker) = payload_image(dir.path());
        assert_eq!(check_payload_disk(&image, &sums).unwrap(), 2);

        let mut bytes = std::fs::read(&image).unwrap();
        let at = bytes
            .windows(64)
            .position(|w| w == &marker[..64])
            .expect("the file's data is in the image");
        bytes[at + 1_000_000] ^= 0x20;
        std::fs::write(&image, &bytes).unwrap();
        let e = format!("{:#}", check_payload_disk(&image, &sums).unwrap_err());
        assert!(
            e.contains("deb/big.deb: sha256 ") && e.contains("differs from SHA256SUMS"),
            "{e}"
        );
    }

    #[test]
    fn other_sums_or_another_uuid_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (image, sums, _) = payload_image(dir.path());
        let other = sums.replace("  small", "  other");
        let e = format!("{:#}", check_payload_disk(&image, &other).unwrap_err());
        assert!(e.contains("filesystem UUID"), "{e}");
        assert!(check_uuid(&image, &fs_uuid(&sums)).is_ok());
    }

    #[test]
    fn the_uuid_follows_the_content() {
        let a = fs_uuid("aa  deb/x.deb\n");
        assert_eq!(a, fs_uuid("aa  deb/x.deb\n"));
        assert_ne!(a, fs_uuid("ab  deb/x.deb\n"));
        assert_eq!(a.len(), 36);
        assert_eq!(
            a.split('-').map(str::len).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(a.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f' | '-')));
    }
}
