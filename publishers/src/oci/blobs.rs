//! Blobs and manifests: HEAD before upload, cross-repository mount, chunked upload (POST a
//! session, PATCH each chunk with its `Content-Range`, PUT `?digest=`), the read back (GET,
//! streamed through SHA-256), and the manifest GET and PUT.

use std::io::Read;

use sha2::{Digest, Sha256};

use super::registry::{Registry, Req, enc, header};
use crate::error::{Error, Result};
use crate::retry::{self, Failure};

/// Bytes sent per PATCH (each chunk is held in memory while it is sent).
pub const CHUNK: usize = 16 << 20;

/// Largest manifest read.
const MANIFEST_LIMIT: u64 = 4 << 20;

/// The OCI image manifest media type.
pub const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// How a blob came to be in the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It was there already.
    Existed,
    /// Mounted from this repository.
    Mounted(String),
    /// Uploaded.
    Uploaded,
}

/// `sha256:HEX` of `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Reads until `buf` is full or the reader ends; the bytes read.
fn fill(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl Registry {
    fn blob_path(&self, repo: &str, digest: &str) -> String {
        format!("/v2/{repo}/blobs/{digest}")
    }

    /// The blob's size when `repo` has it.
    pub fn blob_size(&mut self, repo: &str, digest: &str) -> Result<Option<u64>> {
        let path = self.blob_path(repo, digest);
        let resp = self.call(&Req::new("HEAD", path.clone(), &path), &[200, 404])?;
        if resp.status().as_u16() == 404 {
            return Ok(None);
        }
        Ok(Some(
            header(&resp, "content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        ))
    }

    /// Tries to mount `digest` from `from` into the repository: `Ok(None)` when mounted, or the
    /// upload session the registry opened instead.
    fn mount(&mut self, digest: &str, from: &str) -> Result<Option<String>> {
        let path = format!("/v2/{}/blobs/uploads/", self.repo);
        let url = format!("{path}?mount={}&from={}", enc(digest), enc(from));
        let resp = self.call(&Req::new("POST", url, &path), &[201, 202])?;
        if resp.status().as_u16() == 201 {
            return Ok(None);
        }
        header(&resp, "location")
            .map(Some)
            .ok_or_else(|| Error::Call {
                call: format!("POST {path}"),
                why: "202 without a Location".into(),
            })
    }

    /// Makes `digest` (`size` bytes, read from `open()`) present in the repository: nothing
    /// when it is there, a mount from the first of `sources` that has it, or a chunked upload
    /// (started over on a transient failure, bounded).
    pub fn ensure_blob<R: Read>(
        &mut self,
        digest: &str,
        size: u64,
        sources: &[String],
        mut open: impl FnMut() -> Result<R>,
    ) -> Result<Outcome> {
        if self.blob_size(&self.repo.clone(), digest)? == Some(size) {
            return Ok(Outcome::Existed);
        }
        let mut session = None;
        for from in sources {
            // A source this login may not read is skipped: the blob is uploaded instead.
            match self.blob_size(from, digest) {
                Ok(Some(s)) if s == size => {}
                Ok(_) => continue,
                Err(e @ (Error::Call { .. } | Error::Credentials { .. })) => {
                    tracing::warn!("not mounting {digest} from {from}: {e}");
                    continue;
                }
                Err(e) => return Err(e),
            }
            match self.mount(digest, from)? {
                None => return Ok(Outcome::Mounted(from.clone())),
                Some(location) => {
                    session = Some(location);
                    break;
                }
            }
        }
        let uploads = format!("/v2/{}/blobs/uploads", self.repo);
        let policy = self.policy;
        retry::run(
            &format!("upload {digest} to {uploads}"),
            &policy,
            || -> Result<(), Failure> {
                let reader = open().map_err(Failure::Fatal)?;
                self.upload(digest, size, reader, session.take())
            },
        )?;
        Ok(Outcome::Uploaded)
    }

    /// One chunked upload.
    fn upload(
        &mut self,
        digest: &str,
        size: u64,
        mut reader: impl Read,
        session: Option<String>,
    ) -> Result<(), Failure> {
        let uploads = format!("/v2/{}/blobs/uploads", self.repo);
        let mut location = match session {
            Some(l) => l,
            None => {
                let resp = self.once(&Req::new("POST", format!("{uploads}/"), &uploads), &[202])?;
                header(&resp, "location").ok_or_else(|| {
                    Failure::Fatal(Error::Call {
                        call: format!("POST {uploads}"),
                        why: "202 without a Location".into(),
                    })
                })?
            }
        };
        let mut buf = vec![0u8; CHUNK.min(usize::try_from(size).unwrap_or(CHUNK)).max(1)];
        let mut hash = Sha256::new();
        let mut sent: u64 = 0;
        loop {
            let n = fill(&mut reader, &mut buf).map_err(|e| {
                Failure::Fatal(Error::Call {
                    call: format!("reading the blob {digest}"),
                    why: e.to_string(),
                })
            })?;
            if n == 0 {
                break;
            }
            let chunk = &buf[..n];
            hash.update(chunk);
            let end = sent + n as u64 - 1;
            let req = Req::new("PATCH", location.clone(), &uploads)
                .header("Content-Type", "application/octet-stream")
                .header("Content-Range", format!("{sent}-{end}"))
                .header("Content-Length", n.to_string())
                .body(chunk);
            let resp = self.once(&req, &[202])?;
            location = header(&resp, "location").unwrap_or(location);
            sent += n as u64;
        }
        let got = format!("sha256:{}", hex::encode(hash.finalize()));
        if got != digest || sent != size {
            return Err(Failure::Fatal(Error::ReadBack {
                what: format!(
                    "the bytes sent for {digest} (the file changed since it was verified?)"
                ),
                got: format!("{got}, {sent} bytes"),
                want: format!("{digest}, {size} bytes"),
            }));
        }
        let sep = if location.contains('?') { '&' } else { '?' };
        let req = Req::new(
            "PUT",
            format!("{location}{sep}digest={}", enc(digest)),
            &uploads,
        )
        .header("Content-Length", "0");
        self.once(&req, &[201])?;
        Ok(())
    }

    /// GETs the blob back and compares its SHA-256 and size with `digest` and `size`.
    pub fn read_back(&mut self, digest: &str, size: u64) -> Result<()> {
        let path = self.blob_path(&self.repo.clone(), digest);
        let policy = self.policy;
        let (got, n) = retry::run(&format!("GET {path}"), &policy, || {
            let mut resp = self.once(&Req::new("GET", path.clone(), &path), &[200])?;
            let mut reader = resp.body_mut().as_reader();
            let mut hash = Sha256::new();
            let mut buf = vec![0u8; 1 << 20];
            let mut n: u64 = 0;
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(k) => {
                        hash.update(&buf[..k]);
                        n += k as u64;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(Failure::Transient(format!("GET {path}: {e}"))),
                }
            }
            Ok((format!("sha256:{}", hex::encode(hash.finalize())), n))
        })?;
        if got != digest || n != size {
            return Err(Error::ReadBack {
                what: format!("{}{path}", self.host),
                got: format!("{got}, {n} bytes"),
                want: format!("{digest}, {size} bytes"),
            });
        }
        Ok(())
    }

    /// The manifest at `reference` (tag or digest), or `None`.
    pub fn get_manifest(&mut self, reference: &str) -> Result<Option<Vec<u8>>> {
        let path = format!("/v2/{}/manifests/{reference}", self.repo);
        let req = Req::new("GET", path.clone(), &path).header("Accept", MANIFEST_TYPE);
        let mut resp = self.call(&req, &[200, 404])?;
        if resp.status().as_u16() == 404 {
            return Ok(None);
        }
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(MANIFEST_LIMIT)
            .read_to_vec()
            .map_err(|e| Error::Call {
                call: format!("GET {path}"),
                why: e.to_string(),
            })?;
        Ok(Some(bytes))
    }

    /// PUTs `manifest` at `reference`; checks the digest the registry reports.
    pub fn put_manifest(&mut self, reference: &str, manifest: &[u8]) -> Result<String> {
        let path = format!("/v2/{}/manifests/{reference}", self.repo);
        let req = Req::new("PUT", path.clone(), &path)
            .header("Content-Type", MANIFEST_TYPE)
            .body(manifest);
        let resp = self.call(&req, &[201])?;
        let want = digest_of(manifest);
        match header(&resp, "docker-content-digest") {
            Some(got) if got != want => Err(Error::ReadBack {
                what: format!(
                    "{}{path} (the registry's digest of the manifest)",
                    self.host
                ),
                got,
                want,
            }),
            _ => Ok(want),
        }
    }
}
