//! Cloud Storage through its JSON API: an object's metadata (`storage.objects.get`), a
//! resumable upload in chunks of a multiple of 256 KiB (`storage.objects.insert`,
//! `uploadType=resumable`), and the object read back (`storage.objects.get`, `alt=media`)
//! and hashed.
//!
//! An interrupted chunk (a connection that broke, a 5xx) is followed by a status query of the
//! session (`PUT` with `Content-Range: bytes */TOTAL`): a `308` with `Range: bytes=0-N` says
//! where to go on; an expired session (404/410), or one the service finalized short of the
//! whole file (fake-gcs-server finalizes on a status query), starts the upload over in a new
//! session, which replaces the object. No image is registered from an object that was not read
//! back whole, so a half upload never reaches Compute Engine.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use ureq::Agent;

use super::auth::Auth;
use super::http::{Call, encode, header};
use crate::error::{Error, Result};
use crate::retry::{self, Failure, Policy};
use crate::secret::Secret;

/// The granularity of resumable upload chunks.
pub const CHUNK_UNIT: u64 = 256 << 10;
/// Default chunk: 32 units (8 MiB).
pub const DEFAULT_CHUNK: u64 = 32 * CHUNK_UNIT;
/// New sessions after an interrupted one before giving up.
const MAX_RESTARTS: u32 = 2;
/// The content type of the GCE tarball.
const CONTENT_TYPE: &str = "application/gzip";

const GET: &str = "storage.objects.get";
const INSERT: &str = "storage.objects.insert";

/// Cloud Storage at one endpoint.
pub struct Storage<'a> {
    /// The shared agent.
    pub agent: &'a Agent,
    /// `https://storage.googleapis.com`, or the emulator's `http://HOST:PORT`.
    pub base: String,
    /// The credentials; `None` for the emulator (no `Authorization` header, as Google's
    /// clients do with `STORAGE_EMULATOR_HOST`).
    pub auth: Option<&'a Auth>,
    /// The retry policy.
    pub policy: Policy,
    /// Upload chunk size, a multiple of [`CHUNK_UNIT`].
    pub chunk: u64,
}

/// What was read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadBack {
    /// Bytes.
    pub size: u64,
    /// SHA-256, hex.
    pub sha256: String,
}

impl Storage<'_> {
    fn token(&self) -> Result<Option<Secret>> {
        self.auth.map(Auth::token).transpose()
    }

    fn tried(&self) -> String {
        self.auth.map_or_else(
            || "STORAGE_EMULATOR_HOST (no credentials)".to_owned(),
            Auth::describe,
        )
    }

    fn object_url(&self, bucket: &str, object: &str) -> String {
        format!(
            "{}/storage/v1/b/{}/o/{}",
            self.base,
            encode(bucket),
            encode(object)
        )
    }

    /// The object's resource, or `None` when there is none.
    pub fn get(&self, bucket: &str, object: &str) -> Result<Option<Value>> {
        let token = self.token()?;
        let tried = self.tried();
        let call = Call {
            name: GET,
            tried: &tried,
            token: token.as_ref(),
        };
        let url = self.object_url(bucket, object);
        retry::run(GET, &self.policy, || {
            let mut req = self.agent.get(&url);
            if let Some(a) = call.auth() {
                req = req.header("Authorization", a);
            }
            let mut resp = req.call().map_err(|e| call.transport(&e))?;
            match resp.status().as_u16() {
                200 => call.json(&mut resp).map(Some),
                404 => Ok(None),
                _ => Err(call.failed(&mut resp)),
            }
        })
    }

    /// Uploads `path` (`size` bytes) as `bucket/object` with `metadata`, resumably; returns
    /// the object's resource.
    pub fn upload(
        &self,
        bucket: &str,
        object: &str,
        path: &Path,
        size: u64,
        metadata: &BTreeMap<String, String>,
    ) -> Result<Value> {
        let mut restarts = 0;
        loop {
            let session = self.start(bucket, object, size, metadata)?;
            match self.send(&session, path, size)? {
                Sent::Done(v) => return Ok(v),
                Sent::Restart(why) if restarts < MAX_RESTARTS => {
                    restarts += 1;
                    tracing::warn!(
                        "{INSERT}: {why}; starting the upload over in a new session ({restarts} of {MAX_RESTARTS})"
                    );
                }
                Sent::Restart(why) => {
                    return Err(Error::Call {
                        call: INSERT.into(),
                        why: format!("{why}, after {MAX_RESTARTS} new sessions"),
                    });
                }
            }
        }
    }

    /// Starts a resumable session; its URI (which authorizes the upload by itself) as a secret.
    fn start(
        &self,
        bucket: &str,
        object: &str,
        size: u64,
        metadata: &BTreeMap<String, String>,
    ) -> Result<Secret> {
        let token = self.token()?;
        let tried = self.tried();
        let call = Call {
            name: INSERT,
            tried: &tried,
            token: token.as_ref(),
        };
        let url = format!(
            "{}/upload/storage/v1/b/{}/o?uploadType=resumable&name={}",
            self.base,
            encode(bucket),
            encode(object)
        );
        let body = json!({"name": object, "contentType": CONTENT_TYPE, "metadata": metadata});
        retry::run(INSERT, &self.policy, || {
            let mut req = self
                .agent
                .post(&url)
                .header("X-Upload-Content-Type", CONTENT_TYPE)
                .header("X-Upload-Content-Length", size.to_string());
            if let Some(a) = call.auth() {
                req = req.header("Authorization", a);
            }
            let mut resp = req
                .header("Content-Type", "application/json; charset=UTF-8")
                .send(body.to_string().as_bytes())
                .map_err(|e| call.transport(&e))?;
            if !resp.status().is_success() {
                return Err(call.failed(&mut resp));
            }
            header(&resp, "location").map(Secret::new).ok_or_else(|| {
                Failure::Fatal(Error::Call {
                    call: INSERT.into(),
                    why: "the service started no upload session (no Location header)".into(),
                })
            })
        })
    }

    /// Sends the file through `session`, chunk by chunk.
    fn send(&self, session: &Secret, path: &Path, size: u64) -> Result<Sent> {
        let mut file = File::open(path).map_err(|e| Error::Input {
            path: path.to_owned(),
            why: e.to_string(),
        })?;
        let tried = self.tried();
        // The session URI is the credential of the upload: no token, and scrubbed.
        let call = Call {
            name: INSERT,
            tried: &tried,
            token: Some(session),
        };
        let chunk = self.chunk.max(CHUNK_UNIT) / CHUNK_UNIT * CHUNK_UNIT;
        let mut buf = Vec::new();
        let mut offset = 0u64;
        let mut query_first = false;
        loop {
            let step = retry::run(INSERT, &self.policy, || {
                if query_first {
                    match self.query(&call, session, size)? {
                        Step::Next(n) => offset = n,
                        other => return Ok(other),
                    }
                    query_first = false;
                }
                let len = chunk.min(size - offset);
                read_chunk(&mut file, path, offset, len, &mut buf)?;
                let range = if len == 0 {
                    // Nothing left to send (an empty file, or the service holds it all):
                    // finalize.
                    format!("bytes */{size}")
                } else {
                    let last = if offset + len == size {
                        size.to_string()
                    } else {
                        "*".into()
                    };
                    format!("bytes {offset}-{}/{last}", offset + len - 1)
                };
                let sent = self
                    .agent
                    .put(session.expose())
                    .header("Content-Range", range)
                    .send(&buf[..]);
                let mut resp = match sent {
                    Ok(r) => r,
                    Err(e) => {
                        query_first = true;
                        return Err(call.transport(&e));
                    }
                };
                match resp.status().as_u16() {
                    200 | 201 => call.json(&mut resp).map(Step::Done),
                    308 => Ok(Step::Next(next_offset(&resp))),
                    404 | 410 => Ok(Step::Restart(
                        "the upload session is gone (expired or cancelled)".into(),
                    )),
                    _ => {
                        let f = call.failed(&mut resp);
                        if matches!(f, Failure::Transient(_)) {
                            query_first = true;
                        }
                        Err(f)
                    }
                }
            })?;
            match step {
                Step::Next(n) if n > size => {
                    return Err(Error::Call {
                        call: INSERT.into(),
                        why: format!("the service says it holds {n} bytes of {size}"),
                    });
                }
                Step::Next(n) => offset = n,
                Step::Done(v) => {
                    let held = v
                        .get("size")
                        .and_then(Value::as_str)
                        .and_then(|s| s.parse::<u64>().ok());
                    return Ok(match held {
                        Some(h) if h != size => Sent::Restart(format!(
                            "the service finalized the object at {h} of {size} bytes"
                        )),
                        _ => Sent::Done(v),
                    });
                }
                Step::Restart(why) => return Ok(Sent::Restart(why)),
            }
        }
    }

    /// Asks the session how much it holds.
    fn query(&self, call: &Call<'_>, session: &Secret, size: u64) -> Result<Step, Failure> {
        let mut resp = self
            .agent
            .put(session.expose())
            .header("Content-Range", format!("bytes */{size}"))
            .send_empty()
            .map_err(|e| call.transport(&e))?;
        match resp.status().as_u16() {
            308 => Ok(Step::Next(next_offset(&resp))),
            200 | 201 => call.json(&mut resp).map(Step::Done),
            404 | 410 => Ok(Step::Restart(
                "the upload session is gone (expired or cancelled)".into(),
            )),
            _ => Err(call.failed(&mut resp)),
        }
    }

    /// Reads the object back through the API and hashes it; stops after `limit` + 1 bytes
    /// (the object is then too long, which the size shows).
    pub fn read_back(&self, bucket: &str, object: &str, limit: u64) -> Result<ReadBack> {
        let token = self.token()?;
        let tried = self.tried();
        let call = Call {
            name: GET,
            tried: &tried,
            token: token.as_ref(),
        };
        let url = format!("{}?alt=media", self.object_url(bucket, object));
        retry::run(GET, &self.policy, || {
            let mut req = self.agent.get(&url);
            if let Some(a) = call.auth() {
                req = req.header("Authorization", a);
            }
            let mut resp = req.call().map_err(|e| call.transport(&e))?;
            if resp.status().as_u16() != 200 {
                return Err(call.failed(&mut resp));
            }
            let mut reader = resp
                .body_mut()
                .with_config()
                .limit(limit.saturating_add(1))
                .reader();
            let mut hash = Sha256::new();
            let mut buf = vec![0u8; 1 << 20];
            let mut n = 0u64;
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => break,
                    Err(e) if n > limit || is_over_limit(&e) => {
                        n = limit.saturating_add(1);
                        break;
                    }
                    Ok(k) => {
                        hash.update(&buf[..k]);
                        n += k as u64;
                    }
                    Err(e) => {
                        return Err(Failure::Transient(format!(
                            "the download broke off after {n} bytes: {}",
                            call.scrub(&e.to_string())
                        )));
                    }
                }
            }
            Ok(ReadBack {
                size: n,
                sha256: hex::encode(hash.finalize()),
            })
        })
    }
}

/// Whether a body read failed on the reader's limit.
fn is_over_limit(e: &std::io::Error) -> bool {
    e.get_ref()
        .and_then(|x| x.downcast_ref::<ureq::Error>())
        .is_some_and(|u| matches!(u, ureq::Error::BodyExceedsLimit(_)))
}

/// One chunk's outcome.
enum Step {
    /// The service holds the bytes before this offset.
    Next(u64),
    /// The object is complete: its resource.
    Done(Value),
    /// The session cannot go on.
    Restart(String),
}

/// A session's outcome.
enum Sent {
    Done(Value),
    Restart(String),
}

/// The offset after a `308`'s `Range: bytes=0-N` (none: nothing held).
fn next_offset(resp: &ureq::http::Response<ureq::Body>) -> u64 {
    header(resp, "range")
        .and_then(|r| {
            r.trim()
                .strip_prefix("bytes=")
                .and_then(|r| r.split_once('-'))
                .and_then(|(_, end)| end.trim().parse::<u64>().ok())
        })
        .map_or(0, |end| end + 1)
}

fn read_chunk(
    file: &mut File,
    path: &Path,
    offset: u64,
    len: u64,
    buf: &mut Vec<u8>,
) -> Result<(), Failure> {
    let fail = |e: std::io::Error| {
        Failure::Fatal(Error::Input {
            path: path.to_owned(),
            why: e.to_string(),
        })
    };
    let len = usize::try_from(len)
        .map_err(|_| fail(std::io::Error::other("chunk larger than memory")))?;
    buf.resize(len, 0);
    file.seek(SeekFrom::Start(offset)).map_err(fail)?;
    file.read_exact(buf).map_err(fail)
}
