//! What is pushed: the disk artifact's manifest (the OCI empty config, a layer per disk
//! format), and the KubeVirt containerDisk (an image config and one uncompressed tar layer
//! holding `disk/NAME.qcow2`, made as a stream over the qcow2, never held in memory).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use exporters::Format;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::blobs::MANIFEST_TYPE;
use crate::error::{Error, Result};

/// The artifact's `artifactType`.
pub const ARTIFACT_TYPE: &str = "application/vnd.nodeimg.disk.v1";
/// The OCI empty descriptor's media type and content.
pub const EMPTY_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// `{}`.
pub const EMPTY: &[u8] = b"{}";
/// The containerDisk's config media type.
pub const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// Its (uncompressed) layer's.
pub const TAR_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";
/// The annotation the content digest is under: what finds an earlier publish.
pub const CONTENT_KEY: &str = "io.nodeimg.content-sha256";
/// The stage's.
pub const STAGE_KEY: &str = "io.nodeimg.stage";

/// KubeVirt runs QEMU as uid/gid 107 (`qemu`); the containerDisk's file must be readable by it.
pub const QEMU_ID: u64 = 107;

/// A blob to push and its descriptor.
#[derive(Debug, Clone)]
pub struct Blob {
    /// `sha256:HEX`.
    pub digest: String,
    /// Bytes.
    pub size: u64,
    /// Its media type in the manifest.
    pub media_type: String,
    /// Where its bytes come from.
    pub from: BlobSource,
    /// Descriptor annotations.
    pub annotations: BTreeMap<String, String>,
}

/// Where a blob's bytes are.
#[derive(Debug, Clone)]
pub enum BlobSource {
    /// In memory (configs).
    Bytes(Vec<u8>),
    /// A file, as it is.
    File(PathBuf),
    /// The containerDisk tar over this qcow2, its member named `disk/<name>`.
    DiskTar {
        /// The qcow2.
        qcow2: PathBuf,
        /// The member's file name.
        name: String,
        /// Its mtime.
        mtime: u64,
    },
}

impl Blob {
    /// A reader of the blob's bytes.
    pub fn open(&self) -> Result<Box<dyn Read>> {
        match &self.from {
            BlobSource::Bytes(b) => Ok(Box::new(Cursor::new(b.clone()))),
            BlobSource::File(p) => Ok(Box::new(open_file(p)?)),
            BlobSource::DiskTar { qcow2, name, mtime } => {
                Ok(Box::new(disk_tar(qcow2, name, *mtime)?.0))
            }
        }
    }

    /// The descriptor.
    pub fn descriptor(&self) -> Value {
        let mut d = json!({
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        });
        if !self.annotations.is_empty() {
            d["annotations"] = json!(self.annotations);
        }
        d
    }

    /// A blob held in memory.
    pub fn bytes(media_type: &str, bytes: Vec<u8>) -> Blob {
        Blob {
            digest: super::blobs::digest_of(&bytes),
            size: bytes.len() as u64,
            media_type: media_type.to_owned(),
            from: BlobSource::Bytes(bytes),
            annotations: BTreeMap::new(),
        }
    }
}

fn open_file(p: &Path) -> Result<File> {
    File::open(p).map_err(|e| Error::Input {
        path: p.to_owned(),
        why: e.to_string(),
    })
}

/// The media type of a disk format's layer.
pub fn layer_type(format: Format) -> &'static str {
    match format {
        Format::Raw => "application/vnd.nodeimg.disk.raw",
        Format::Qcow2 => "application/vnd.nodeimg.disk.qcow2",
        Format::Vhd => "application/vnd.nodeimg.disk.vhd",
        Format::Ova => "application/vnd.nodeimg.disk.ova",
        Format::Gce => "application/vnd.nodeimg.disk.gce.tar+gzip",
        Format::Aws => "application/vnd.nodeimg.disk.aws.vmdk",
    }
}

/// The image manifest with `config`, `layers` and `annotations` (and `artifactType`).
pub fn manifest(
    artifact_type: Option<&str>,
    config: &Blob,
    layers: &[Blob],
    annotations: &BTreeMap<String, String>,
) -> Vec<u8> {
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
    });
    if let Some(t) = artifact_type {
        m["artifactType"] = json!(t);
    }
    let mut config_descriptor = config.descriptor();
    if config.media_type == EMPTY_TYPE {
        // The empty descriptor as the image spec writes it, with its data inline.
        config_descriptor["data"] = json!("e30=");
    }
    m["config"] = config_descriptor;
    m["layers"] = Value::Array(layers.iter().map(Blob::descriptor).collect());
    m["annotations"] = json!(annotations);
    serde_json::to_vec_pretty(&m).unwrap_or_default()
}

/// The containerDisk's image config: amd64/linux, the tar layer's diff id, the labels.
pub fn containerdisk_config(
    created: &str,
    diff_id: &str,
    labels: &BTreeMap<String, String>,
) -> Vec<u8> {
    let c = json!({
        "created": created,
        "architecture": "amd64",
        "os": "linux",
        "config": { "Labels": labels },
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
        "history": [{ "created": created, "created_by": "nodeimg publish" }],
    });
    serde_json::to_vec_pretty(&c).unwrap_or_default()
}

fn header(path: &str, dir: bool, size: u64, mtime: u64) -> Result<tar::Header> {
    let mut h = tar::Header::new_ustar();
    h.set_path(path).map_err(|e| Error::Input {
        path: PathBuf::from(path),
        why: format!("cannot be a tar member name: {e}"),
    })?;
    h.set_entry_type(if dir {
        tar::EntryType::Directory
    } else {
        tar::EntryType::Regular
    });
    h.set_mode(if dir { 0o555 } else { 0o440 });
    h.set_uid(QEMU_ID);
    h.set_gid(QEMU_ID);
    h.set_size(size);
    h.set_mtime(mtime);
    h.set_cksum();
    Ok(h)
}

/// The containerDisk layer as a stream and its size: `disk/` and `disk/<name>` (the qcow2),
/// owned 107:107, mode 0555 and 0440, mtime `mtime`, then the two zero blocks that end a tar.
pub fn disk_tar(qcow2: &Path, name: &str, mtime: u64) -> Result<(impl Read + use<>, u64)> {
    let file = open_file(qcow2)?;
    let size = file
        .metadata()
        .map_err(|e| Error::Input {
            path: qcow2.to_owned(),
            why: e.to_string(),
        })?
        .len();
    let mut head = Vec::with_capacity(1024);
    head.extend_from_slice(header("disk/", true, 0, mtime)?.as_bytes());
    head.extend_from_slice(header(&format!("disk/{name}"), false, size, mtime)?.as_bytes());
    let pad = usize::try_from((512 - size % 512) % 512).unwrap_or(0);
    let tail = vec![0u8; pad + 1024];
    let total = head.len() as u64 + size + tail.len() as u64;
    let reader = Cursor::new(head)
        .chain(file.take(size))
        .chain(Cursor::new(tail));
    Ok((reader, total))
}

/// The containerDisk layer's blob: its digest found by streaming the tar once through SHA-256.
pub fn disk_tar_blob(qcow2: &Path, name: &str, mtime: u64) -> Result<Blob> {
    let (mut reader, size) = disk_tar(qcow2, name, mtime)?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n: u64 = 0;
    loop {
        let k = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Error::Input {
                    path: qcow2.to_owned(),
                    why: e.to_string(),
                });
            }
        };
        hash.update(&buf[..k]);
        n += k as u64;
    }
    if n != size {
        return Err(Error::Input {
            path: qcow2.to_owned(),
            why: format!("changed while read ({n} bytes, expected {size})"),
        });
    }
    Ok(Blob {
        digest: format!("sha256:{}", hex::encode(hash.finalize())),
        size,
        media_type: TAR_TYPE.into(),
        from: BlobSource::DiskTar {
            qcow2: qcow2.to_owned(),
            name: name.to_owned(),
            mtime,
        },
        annotations: BTreeMap::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_disk_tar_is_a_tar_with_the_qcow2_owned_by_qemu() {
        let d = tempfile::tempdir().unwrap();
        let q = d.path().join("n.qcow2");
        std::fs::write(&q, vec![7u8; 1000]).unwrap();
        let (mut r, size) = disk_tar(&q, "n.qcow2", 1_700_000_000).unwrap();
        let mut bytes = Vec::new();
        r.read_to_end(&mut bytes).unwrap();
        assert_eq!(bytes.len() as u64, size);
        assert_eq!(size % 512, 0);
        let mut a = tar::Archive::new(Cursor::new(&bytes));
        let entries: Vec<_> = a
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let h = e.header().clone();
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    h.uid().unwrap(),
                    h.mode().unwrap(),
                    h.mtime().unwrap(),
                    data.len(),
                )
            })
            .collect();
        assert_eq!(
            entries,
            [
                ("disk/".into(), 107, 0o555, 1_700_000_000, 0),
                ("disk/n.qcow2".into(), 107, 0o440, 1_700_000_000, 1000)
            ]
        );
        let blob = disk_tar_blob(&q, "n.qcow2", 1_700_000_000).unwrap();
        assert_eq!(blob.digest, super::super::blobs::digest_of(&bytes));
    }
}
