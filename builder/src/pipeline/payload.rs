//! The payload disk: every locked artifact (but the base image) on a small ext4 filesystem
//! labelled `nodeimg-payload`, with a `SHA256SUMS`, attached read-only. Built with
//! `mkfs.ext4 -d` from a directory of hard links into the cache (copies when the cache is on
//! another filesystem), so nothing is mounted on the host; then read back on the host with
//! the project's ext4 reader and every file checked against `SHA256SUMS`
//! ([`super::payload_check`]), so the guest does not hash it again. The filesystem's UUID is
//! derived from `SHA256SUMS`: the guest's mount step checks it, so it mounts this disk.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use distros::payload::{Install, PAYLOAD_LABEL, PAYLOAD_SUMS, Payload, PayloadItem};

use super::inputs::{Input, Inputs};
use super::payload_check::{check_payload_disk, fs_uuid};
use ::inputs::lock::Kind;

/// The file name of `input` on the payload disk.
pub fn payload_file(input: &Input) -> String {
    let a = &input.artifact;
    match a.kind {
        Kind::Deb => format!("deb/{}.deb", a.name),
        Kind::Binary => format!("bin/{}", a.name),
        Kind::File => format!("file/{}", a.name),
        Kind::Archive => format!("archive/{}.tar.gz", a.name),
        Kind::Image => format!("image/{}.tar", a.name),
        Kind::BaseImage => format!("base/{}", a.name),
        // Never on the payload: on the conformance test disk.
        Kind::TestSuite => format!("test/{}.tar.gz", a.name),
        Kind::TestImage => format!("test-image/{}.tar", a.name),
        // Never in the build: fetch derives the test images from it.
        Kind::TestSource => format!("test-source/{}.tar.gz", a.name),
    }
}

/// The payload as the guest uses it: what it does with each file, and the UUID the mount
/// step checks.
pub fn payload_items(inputs: &Inputs) -> Payload {
    Payload {
        items: items(inputs),
        fs_uuid: fs_uuid(&payload_sums(inputs)),
    }
}

/// The payload's `SHA256SUMS` (`sha256sum -c` format): every payload file with its locked
/// digest, in the lock's order.
pub fn payload_sums(inputs: &Inputs) -> String {
    let mut sums = String::new();
    for input in &inputs.payload {
        let _ = writeln!(sums, "{}  {}", input.artifact.sha256, payload_file(input));
    }
    sums
}

/// What the guest does with each payload file.
fn items(inputs: &Inputs) -> Vec<PayloadItem> {
    let mut items = Vec::new();
    for input in &inputs.payload {
        let a = &input.artifact;
        let install = match a.kind {
            Kind::Deb => Install::Package {
                hold: a.component.is_some(),
            },
            Kind::Binary | Kind::File => Install::Copy {
                dest: a.dest.clone().unwrap_or_default(),
                mode: a.mode_bits().unwrap_or(0o644),
            },
            Kind::Archive => Install::Extract {
                dest: a.dest.clone().unwrap_or_default(),
            },
            Kind::Image => Install::Image {
                reference: a.image.clone().unwrap_or_default(),
            },
            Kind::BaseImage | Kind::TestSuite | Kind::TestImage | Kind::TestSource => continue,
        };
        items.push(PayloadItem {
            file: payload_file(input),
            install,
        });
    }
    items
}

/// Writes the payload disk image to `out` (a raw ext4 filesystem), using `work` as scratch,
/// and checks every file on it against its `SHA256SUMS`. Returns its size in bytes.
pub fn make_payload_disk(inputs: &Inputs, work: &Path, out: &Path) -> Result<u64> {
    let files: Vec<(String, PathBuf)> = inputs
        .payload
        .iter()
        .map(|i| (payload_file(i), i.path.clone()))
        .collect();
    let sums = payload_sums(inputs);
    make_read_only_disk(
        &files,
        &sums,
        PAYLOAD_LABEL,
        &work.join("payload-root"),
        out,
    )
}

/// Writes a raw ext4 image to `out` labelled `label` holding `files` (path on the disk, file
/// on the host: hard-linked into `root`, a scratch directory, or copied) and `sums` as its
/// `SHA256SUMS` (which must list every file with its digest); its UUID is derived from `sums`.
/// The image is read back with the project's ext4 reader and every file checked against
/// `sums` before it is renamed into place. Returns its size in bytes.
pub fn make_read_only_disk(
    files: &[(String, PathBuf)],
    sums: &str,
    label: &str,
    root: &Path,
    out: &Path,
) -> Result<u64> {
    if root.exists() {
        std::fs::remove_dir_all(root)?;
    }
    std::fs::create_dir_all(root)?;
    let mut total = 0u64;
    for (name, from) in files {
        let to = root.join(name);
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir)?;
        }
        ::inputs::cache::link_or_copy(from, &to)
            .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
        total += std::fs::metadata(&to)?.len();
    }
    std::fs::write(root.join(PAYLOAD_SUMS), sums)?;
    // Room for ext4's metadata: 10 % plus 32 MiB, in whole MiB.
    let size = ((total + total / 10 + (32 << 20)) >> 20) << 20;
    let tmp: PathBuf = out.with_extension("partial");
    let f = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    f.set_len(size)?;
    drop(f);
    let made = child_process::Command::new("mkfs.ext4", super::timeouts::PAYLOAD_MKFS)
        .what("mkfs.ext4 of a read-only disk")
        .args(["-q", "-F", "-L", label, "-O", "^has_journal"])
        .args(["-U", &fs_uuid(sums)])
        .args(["-E", "root_owner=0:0", "-d"])
        .arg(root)
        .arg(&tmp)
        .run();
    if let Err(e) = made {
        let _ = std::fs::remove_file(&tmp);
        let hint = if matches!(e, child_process::Error::Spawn { .. }) {
            " (install e2fsprogs)"
        } else {
            ""
        };
        return Err(e).with_context(|| format!("mkfs.ext4 -d {}{hint}", root.display()));
    }
    if let Err(e) = check_payload_disk(&tmp, sums) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, out)?;
    std::fs::remove_dir_all(root)?;
    Ok(size)
}
