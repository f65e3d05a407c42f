//! A pulled image as an OCI image layout in a tar file, the form `ctr -n k8s.io images import`
//! and `skopeo … oci-archive:` read: `oci-layout`, `index.json` (one manifest, annotated with
//! `io.containerd.image.name` = the full reference and `org.opencontainers.image.ref.name` =
//! the tag, as `ctr images export` writes them) and `blobs/sha256/<hex>` holding the manifest,
//! the config and the layers exactly as the registry served them. Entries are sorted by name,
//! owned by 0:0 with mtime 0, so the same image always gives the same bytes.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use serde_json::json;

use super::registry::Pulled;

/// The index annotation containerd names an imported image by.
pub const CONTAINERD_NAME: &str = "io.containerd.image.name";
/// The OCI reference-name annotation.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

fn header(path: &str, size: u64, dir: bool) -> io::Result<tar::Header> {
    let mut h = tar::Header::new_ustar();
    h.set_path(path)?;
    h.set_size(size);
    h.set_mode(if dir { 0o755 } else { 0o644 });
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_entry_type(if dir {
        tar::EntryType::Directory
    } else {
        tar::EntryType::Regular
    });
    h.set_cksum();
    Ok(h)
}

/// The `index.json` for `pulled` imported as `reference` (`registry/repo:tag`).
pub fn index_json(pulled: &Pulled, reference: &str, tag: &str) -> Vec<u8> {
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": pulled.media_type,
            "digest": format!("sha256:{}", pulled.digest),
            "size": pulled.manifest.len(),
            "annotations": { CONTAINERD_NAME: reference, REF_NAME: tag },
        }],
    });
    serde_json::to_vec(&index).unwrap_or_default()
}

/// Writes the archive to `out` (created or truncated) and fsyncs it.
pub fn write(out: &Path, pulled: &Pulled, reference: &str, tag: &str) -> io::Result<()> {
    enum Data<'a> {
        Bytes(&'a [u8]),
        File(&'a Path),
    }
    let index = index_json(pulled, reference, tag);
    let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
    let mut files: Vec<(String, u64, Data<'_>)> = vec![
        (
            format!("blobs/sha256/{}", pulled.digest),
            u64::try_from(pulled.manifest.len()).unwrap_or(u64::MAX),
            Data::Bytes(&pulled.manifest),
        ),
        (
            "index.json".into(),
            u64::try_from(index.len()).unwrap_or(u64::MAX),
            Data::Bytes(&index),
        ),
        (
            "oci-layout".into(),
            u64::try_from(layout.len()).unwrap_or(u64::MAX),
            Data::Bytes(layout),
        ),
    ];
    for b in &pulled.blobs {
        files.push((
            format!("blobs/sha256/{}", b.sha256),
            b.size,
            Data::File(&b.path),
        ));
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files.dedup_by(|a, b| a.0 == b.0);

    let file = File::create(out)?;
    let mut tar = tar::Builder::new(BufWriter::new(file));
    for dir in ["blobs/", "blobs/sha256/"] {
        tar.append(&header(dir, 0, true)?, io::empty())?;
    }
    for (name, size, data) in &files {
        let h = header(name, *size, false)?;
        match data {
            Data::Bytes(b) => tar.append(&h, *b)?,
            Data::File(p) => {
                let f = File::open(p)?;
                let actual = f.metadata()?.len();
                if actual != *size {
                    return Err(io::Error::other(format!(
                        "{}: {actual} bytes, the manifest says {size}",
                        p.display()
                    )));
                }
                tar.append(&h, f.take(*size))?;
            }
        }
    }
    let mut w = tar.into_inner()?;
    w.flush()?;
    w.into_inner().map_err(|e| e.into_error())?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::registry::Blob;
    use sha2::{Digest, Sha256};

    fn pulled(dir: &Path) -> Pulled {
        let layer = dir.join("layer");
        std::fs::write(&layer, b"layer bytes").unwrap();
        let manifest = br#"{"schemaVersion":2}"#.to_vec();
        Pulled {
            digest: hex::encode(Sha256::digest(&manifest)),
            manifest,
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            blobs: vec![Blob {
                sha256: hex::encode(Sha256::digest(b"layer bytes")),
                size: 11,
                path: layer,
            }],
            downloaded: 0,
        }
    }

    #[test]
    fn the_archive_is_a_sorted_oci_layout_with_fixed_metadata_and_stable_bytes() {
        let d = tempfile::tempdir().unwrap();
        let p = pulled(d.path());
        let a = d.path().join("a.tar");
        let b = d.path().join("b.tar");
        write(&a, &p, "registry.k8s.io/pause:3.9", "3.9").unwrap();
        write(&b, &p, "registry.k8s.io/pause:3.9", "3.9").unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());

        let mut archive = tar::Archive::new(File::open(&a).unwrap());
        let mut names = Vec::new();
        for e in archive.entries().unwrap() {
            let mut e = e.unwrap();
            let name = e.path().unwrap().display().to_string();
            assert_eq!(
                (e.header().mtime().unwrap(), e.header().uid().unwrap()),
                (0, 0)
            );
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            if let Some(hex) = name.strip_prefix("blobs/sha256/").filter(|h| !h.is_empty()) {
                assert_eq!(hex::encode(Sha256::digest(&data)), hex, "{name}");
            }
            if name == "index.json" {
                let v: serde_json::Value = serde_json::from_slice(&data).unwrap();
                let m = &v["manifests"][0];
                assert_eq!(m["digest"], format!("sha256:{}", p.digest));
                assert_eq!(
                    m["annotations"][CONTAINERD_NAME],
                    "registry.k8s.io/pause:3.9"
                );
                assert_eq!(m["annotations"][REF_NAME], "3.9");
            }
            names.push(name);
        }
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert_eq!(names.len(), 6, "{names:?}");
        assert!(names.contains(&"oci-layout".to_owned()));

        std::fs::write(&p.blobs[0].path, b"short").unwrap();
        let e = write(&a, &p, "r/x:1", "1").unwrap_err().to_string();
        assert!(e.contains("5 bytes, the manifest says 11"), "{e}");
    }
}
