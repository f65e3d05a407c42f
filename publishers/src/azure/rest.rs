//! The few Blob service REST calls a page-blob upload needs, over `ureq` with the SAS as the
//! query: Get Blob Properties, Put Blob (page blob), Put Page, Get Page Ranges, Get Blob (by
//! range), Set Blob Metadata, Delete Blob. Throttling, 5xx and unreachable endpoints are
//! retried through [`crate::retry`]; a 403 names the call and the variable the SAS came from;
//! no URL with its query and no secret reaches an error or a log line.

use std::collections::BTreeMap;
use std::time::Duration;

use ureq::Agent;
use ureq::http::Response;

use super::credentials::Access;
use crate::error::{Error, Result};
use crate::retry::{self, Failure, Policy};
use crate::secret::{Secret, scrub};

/// The REST API version sent (`x-ms-version`); Azurite 3.37 accepts it without
/// `--skipApiVersionCheck`.
pub const API_VERSION: &str = "2021-08-06";

/// Largest response body read for a listing or an error.
const SMALL_BODY: u64 = 16 << 20;

/// One blob, addressed by the SAS.
#[derive(Clone)]
pub struct BlobClient {
    agent: Agent,
    /// `ENDPOINT/CONTAINER/BLOB`, no query: what records and errors show.
    pub url: String,
    sas: Secret,
    secrets: Vec<Secret>,
    source: String,
    policy: Policy,
}

/// What Get Blob Properties found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Properties {
    /// `Content-Length`.
    pub size: u64,
    /// `x-ms-blob-type`.
    pub blob_type: String,
    /// `ETag`.
    pub etag: String,
    /// `x-ms-meta-*`, names lowercased.
    pub metadata: BTreeMap<String, String>,
}

impl BlobClient {
    /// The client of `container/blob` (`blob` already percent-encoded) at `access`.
    pub fn new(access: &Access, container: &str, blob: &str, policy: Policy) -> BlobClient {
        let agent: Agent = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(20)))
            .timeout_recv_response(Some(Duration::from_secs(120)))
            .timeout_recv_body(Some(Duration::from_secs(300)))
            .build()
            .into();
        BlobClient {
            agent,
            url: format!("{}/{container}/{blob}", access.endpoint),
            sas: access.sas.clone(),
            secrets: access.secrets(),
            source: access.source.clone(),
            policy,
        }
    }

    fn full_url(&self, query: &str) -> String {
        let sep = if query.is_empty() { "" } else { "&" };
        format!("{}?{query}{sep}{}", self.url, self.sas.expose())
    }

    /// `text` without any secret.
    pub fn scrub(&self, text: &str) -> String {
        let refs: Vec<&Secret> = self.secrets.iter().collect();
        scrub(text, &refs)
    }

    /// One call with retries: `send` makes one attempt; statuses in `accept` are returned,
    /// other answers become errors naming `call`.
    fn call(
        &self,
        call: &str,
        accept: &[u16],
        send: impl Fn(&Agent, &str) -> Result<Response<ureq::Body>, ureq::Error>,
        query: &str,
    ) -> Result<Response<ureq::Body>> {
        let url = self.full_url(query);
        retry::run(call, &self.policy, || match send(&self.agent, &url) {
            Ok(resp) if accept.contains(&resp.status().as_u16()) => Ok(resp),
            Ok(resp) => Err(self.failure(call, resp)),
            Err(e) => Err(self.transport(call, &e)),
        })
    }

    fn transport(&self, call: &str, e: &ureq::Error) -> Failure {
        let why = match e {
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                "connection refused".to_owned()
            }
            e => e.to_string(),
        };
        let why = format!("{} ({})", self.scrub(&why), self.url);
        match e {
            ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::HostNotFound
            | ureq::Error::Protocol(_)
            | ureq::Error::BodyStalled => Failure::Transient(why),
            _ => Failure::Fatal(Error::Call {
                call: call.to_owned(),
                why,
            }),
        }
    }

    fn failure(&self, call: &str, mut resp: Response<ureq::Body>) -> Failure {
        let status = resp.status().as_u16();
        let code = header(&resp, "x-ms-error-code").unwrap_or_default();
        let body = resp
            .body_mut()
            .with_config()
            .limit(SMALL_BODY)
            .read_to_string()
            .unwrap_or_default();
        let message = between(&body, "<Message>", "</Message>")
            .map(|m| m.lines().next().unwrap_or_default().to_owned())
            .unwrap_or_default();
        let code = if code.is_empty() {
            between(&body, "<Code>", "</Code>")
                .unwrap_or_default()
                .to_owned()
        } else {
            code
        };
        let mut why = format!("HTTP {status}");
        for part in [code.as_str(), message.as_str()] {
            if !part.is_empty() {
                why = format!("{why} {part}");
            }
        }
        let why = self.scrub(&format!("{why} ({})", self.url));
        match status {
            408 | 429 | 500 | 502 | 503 | 504 => Failure::Transient(why),
            401 | 403 => Failure::Fatal(Error::Credentials {
                target: "azure".into(),
                tried: self.source.clone(),
                why: format!(
                    "{call} refused: {why}; the SAS must be valid now and allow read, create, \
                     write and delete on the container"
                ),
            }),
            _ => Failure::Fatal(Error::Call {
                call: call.to_owned(),
                why,
            }),
        }
    }

    /// Get Blob Properties (`HEAD`): `None` when there is no such blob.
    pub fn properties(&self) -> Result<Option<Properties>> {
        let resp = self.call(
            "Get Blob Properties",
            &[200, 404],
            |a, u| a.head(u).header("x-ms-version", API_VERSION).call(),
            "",
        )?;
        if resp.status().as_u16() == 404 {
            return Ok(None);
        }
        let mut metadata = BTreeMap::new();
        for (name, value) in resp.headers() {
            if let Some(key) = name.as_str().strip_prefix("x-ms-meta-") {
                metadata.insert(
                    key.to_ascii_lowercase(),
                    value.to_str().unwrap_or_default().to_owned(),
                );
            }
        }
        Ok(Some(Properties {
            size: header(&resp, "content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            blob_type: header(&resp, "x-ms-blob-type").unwrap_or_default(),
            etag: header(&resp, "etag").unwrap_or_default(),
            metadata,
        }))
    }

    /// Put Blob: a new, empty page blob of `size` bytes with `metadata` (replacing any blob
    /// of the name).
    pub fn create_page_blob(&self, size: u64, metadata: &BTreeMap<String, String>) -> Result<()> {
        self.call(
            "Put Blob",
            &[201],
            |a, u| {
                let mut r = a
                    .put(u)
                    .header("x-ms-version", API_VERSION)
                    .header("x-ms-blob-type", "PageBlob")
                    .header("x-ms-blob-content-length", size.to_string())
                    .header("x-ms-blob-content-type", "application/octet-stream")
                    .header("x-ms-blob-sequence-number", "0");
                for (k, v) in metadata {
                    r = r.header(format!("x-ms-meta-{k}"), v.as_str());
                }
                r.send_empty()
            },
            "",
        )?;
        Ok(())
    }

    /// Put Page: `data` written at `offset` (both 512-aligned, at most 4 MiB).
    pub fn put_page(&self, offset: u64, data: &[u8]) -> Result<()> {
        let range = format!("bytes={offset}-{}", offset + data.len() as u64 - 1);
        self.call(
            "Put Page",
            &[201],
            |a, u| {
                a.put(u)
                    .header("x-ms-version", API_VERSION)
                    .header("x-ms-page-write", "update")
                    .header("x-ms-range", range.as_str())
                    .send(data)
            },
            "comp=page",
        )?;
        Ok(())
    }

    /// Get Page Ranges: the `[start, end)` ranges that hold pages, in order, across every
    /// page of the listing.
    pub fn page_ranges(&self) -> Result<Vec<(u64, u64)>> {
        let mut out = Vec::new();
        let mut marker = String::new();
        loop {
            let query = if marker.is_empty() {
                "comp=pagelist".to_owned()
            } else {
                format!("comp=pagelist&marker={}", encode(&marker))
            };
            let mut resp = self.call(
                "Get Page Ranges",
                &[200],
                |a, u| a.get(u).header("x-ms-version", API_VERSION).call(),
                &query,
            )?;
            let body = resp
                .body_mut()
                .with_config()
                .limit(SMALL_BODY)
                .read_to_string()
                .map_err(|e| Error::Call {
                    call: "Get Page Ranges".into(),
                    why: self.scrub(&e.to_string()),
                })?;
            let mut rest = body.as_str();
            while let Some(at) = rest.find("<PageRange>") {
                rest = &rest[at + "<PageRange>".len()..];
                let start = between(rest, "<Start>", "</Start>").and_then(|v| v.parse().ok());
                let end = between(rest, "<End>", "</End>").and_then(|v| v.parse::<u64>().ok());
                match (start, end) {
                    (Some(s), Some(e)) if e >= s => out.push((s, e + 1)),
                    _ => {
                        return Err(Error::Call {
                            call: "Get Page Ranges".into(),
                            why: format!(
                                "a page range the listing does not spell as <Start>N</Start><End>M</End> ({})",
                                self.url
                            ),
                        });
                    }
                }
            }
            marker = between(&body, "<NextMarker>", "</NextMarker>")
                .unwrap_or_default()
                .to_owned();
            if marker.is_empty() {
                break;
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// Get Blob of `[start, end)` (`x-ms-range`), the bytes.
    pub fn get_range(&self, start: u64, end: u64) -> Result<Vec<u8>> {
        let range = format!("bytes={start}-{}", end - 1);
        let want = end - start;
        let url = self.full_url("");
        retry::run("Get Blob", &self.policy, || {
            let resp = self
                .agent
                .get(&url)
                .header("x-ms-version", API_VERSION)
                .header("x-ms-range", range.as_str())
                .call();
            let mut resp = match resp {
                Ok(r) if r.status().as_u16() == 206 => r,
                Ok(r) => return Err(self.failure("Get Blob", r)),
                Err(e) => return Err(self.transport("Get Blob", &e)),
            };
            match resp.body_mut().with_config().limit(want).read_to_vec() {
                Ok(v) if v.len() as u64 == want => Ok(v),
                Ok(v) => Err(Failure::Transient(format!(
                    "short body: {} of {want} bytes at {start} ({})",
                    v.len(),
                    self.url
                ))),
                Err(e) => Err(self.transport("Get Blob", &e)),
            }
        })
    }

    /// Set Blob Metadata: replaces all of the blob's metadata with `metadata`.
    pub fn set_metadata(&self, metadata: &BTreeMap<String, String>) -> Result<()> {
        self.call(
            "Set Blob Metadata",
            &[200],
            |a, u| {
                let mut r = a.put(u).header("x-ms-version", API_VERSION);
                for (k, v) in metadata {
                    r = r.header(format!("x-ms-meta-{k}"), v.as_str());
                }
                r.send_empty()
            },
            "comp=metadata",
        )?;
        Ok(())
    }

    /// Delete Blob (a missing blob is not an error).
    pub fn delete(&self) -> Result<()> {
        self.call(
            "Delete Blob",
            &[202, 404],
            |a, u| a.delete(u).header("x-ms-version", API_VERSION).call(),
            "",
        )?;
        Ok(())
    }
}

fn header(resp: &Response<ureq::Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The text between the first `open` and the following `close`.
fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let len = text[start..].find(close)?;
    Some(&text[start..start + len])
}

pub use crate::url::encode;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn between_and_encode() {
        assert_eq!(
            between("<a><Start>0</Start><End>511</End>", "<End>", "</End>"),
            Some("511")
        );
        assert_eq!(between("<Start>0", "<Start>", "</Start>"), None);
        assert_eq!(encode("node 1+2.vhd"), "node%201%2B2.vhd");
    }
}
