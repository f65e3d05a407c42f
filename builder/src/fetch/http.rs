//! Blocking HTTP(S) downloads with resume: a file is written to a `.part` file and resumed
//! with `Range: bytes=N-` after a broken connection or an earlier interrupted run.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::Duration;

use ureq::Agent;
use ureq::http::Response;

/// How many times a download is tried (each try resumes where the last one stopped).
const ATTEMPTS: u32 = 5;

/// A download problem, naming the URL (and the file where one is written).
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The request failed (connection, TLS, protocol).
    #[error("{url}: {source}")]
    Request {
        /// The URL.
        url: String,
        /// The error.
        source: ureq::Error,
    },
    /// The server answered with an unusable status.
    #[error("{url}: HTTP {status}{detail}")]
    Status {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
        /// Extra detail (e.g. a registry's error message).
        detail: String,
    },
    /// Reading the response or writing the file failed.
    #[error("{url}: {path}: {source}")]
    Io {
        /// The URL.
        url: String,
        /// The file being written.
        path: String,
        /// The error.
        source: io::Error,
    },
    /// A small response (checksum file, manifest, token) was larger than expected.
    #[error("{url}: the response is larger than {limit} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit.
        limit: u64,
    },
    /// Every attempt broke off.
    #[error("{url}: gave up after {ATTEMPTS} attempts: {last}")]
    GaveUp {
        /// The URL.
        url: String,
        /// The last error.
        last: String,
    },
}

/// A small response read into memory.
#[derive(Debug)]
pub struct Small {
    /// The status code.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `WWW-Authenticate`.
    pub www_authenticate: Option<String>,
    /// `Docker-Content-Digest`.
    pub docker_digest: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

/// The client: one agent (connection pool) for a whole fetch.
#[derive(Debug, Clone)]
pub struct Http {
    agent: Agent,
}

impl Default for Http {
    fn default() -> Self {
        Self::new()
    }
}

fn header(resp: &Response<ureq::Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn retryable(e: &ureq::Error) -> bool {
    matches!(
        e,
        ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::Protocol(_)
    )
}

fn pause(attempt: u32) {
    std::thread::sleep(Duration::from_millis(200 * u64::from(attempt)));
}

impl Http {
    /// A client that follows redirects and reports every status to the caller.
    pub fn new() -> Self {
        let agent = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(120)))
            .user_agent(concat!("nodeimg/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Self { agent }
    }

    fn call(
        &self,
        url: &str,
        headers: &[(&str, String)],
    ) -> Result<Response<ureq::Body>, ureq::Error> {
        let mut req = self.agent.get(url);
        for (k, v) in headers {
            req = req.header(*k, v.as_str());
        }
        req.call()
    }

    /// GETs `url` into memory (at most `limit` bytes), retrying broken connections. Any
    /// status is returned; the caller decides.
    pub fn get_small(
        &self,
        url: &str,
        headers: &[(&str, String)],
        limit: u64,
    ) -> Result<Small, HttpError> {
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            let mut resp = match self.call(url, headers) {
                Ok(r) => r,
                Err(e) if retryable(&e) => {
                    last = e.to_string();
                    pause(attempt);
                    continue;
                }
                Err(source) => {
                    return Err(HttpError::Request {
                        url: url.to_owned(),
                        source,
                    });
                }
            };
            let status = resp.status().as_u16();
            let mut body = Vec::new();
            let read = resp
                .body_mut()
                .as_reader()
                .take(limit + 1)
                .read_to_end(&mut body);
            if let Err(e) = read {
                last = e.to_string();
                pause(attempt);
                continue;
            }
            if u64::try_from(body.len()).unwrap_or(u64::MAX) > limit {
                return Err(HttpError::TooLarge {
                    url: url.to_owned(),
                    limit,
                });
            }
            return Ok(Small {
                status,
                content_type: header(&resp, "content-type"),
                www_authenticate: header(&resp, "www-authenticate"),
                docker_digest: header(&resp, "docker-content-digest"),
                body,
            });
        }
        Err(HttpError::GaveUp {
            url: url.to_owned(),
            last,
        })
    }

    /// Like [`Http::get_small`] but any status other than 200 is an error.
    pub fn get_ok(&self, url: &str, limit: u64) -> Result<Vec<u8>, HttpError> {
        let r = self.get_small(url, &[], limit)?;
        if r.status != 200 {
            return Err(HttpError::Status {
                url: url.to_owned(),
                status: r.status,
                detail: String::new(),
            });
        }
        Ok(r.body)
    }

    /// Downloads `url` into `part`, continuing what `part` already holds with a `Range`
    /// request (206 continues, 200 starts over, 416 deletes the part and starts over). A
    /// broken connection is resumed up to [`ATTEMPTS`] times. Returns the bytes transferred.
    pub fn download(
        &self,
        url: &str,
        headers: &[(&str, String)],
        part: &Path,
    ) -> Result<u64, HttpError> {
        let io_err = |source| HttpError::Io {
            url: url.to_owned(),
            path: part.display().to_string(),
            source,
        };
        let mut transferred = 0u64;
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            let have = std::fs::metadata(part).map_or(0, |m| m.len());
            let mut hs = headers.to_vec();
            if have > 0 {
                hs.push(("Range", format!("bytes={have}-")));
                tracing::info!("resuming {url} at byte {have}");
            } else {
                tracing::info!("downloading {url}");
            }
            let mut resp = match self.call(url, &hs) {
                Ok(r) => r,
                Err(e) if retryable(&e) => {
                    last = e.to_string();
                    pause(attempt);
                    continue;
                }
                Err(source) => {
                    return Err(HttpError::Request {
                        url: url.to_owned(),
                        source,
                    });
                }
            };
            let status = resp.status().as_u16();
            let mut file = match status {
                200 => File::create(part).map_err(io_err)?,
                206 if header(&resp, "content-range")
                    .is_some_and(|r| r.starts_with(&format!("bytes {have}-"))) =>
                {
                    OpenOptions::new().append(true).open(part).map_err(io_err)?
                }
                206 | 416 => {
                    tracing::warn!("{url}: HTTP {status} for bytes={have}-; starting over");
                    std::fs::remove_file(part).map_err(io_err)?;
                    last = format!("HTTP {status} for a range request");
                    continue;
                }
                _ => {
                    return Err(HttpError::Status {
                        url: url.to_owned(),
                        status,
                        detail: String::new(),
                    });
                }
            };
            let start = if status == 206 { have } else { 0 };
            let total = header(&resp, "content-length")
                .and_then(|l| l.parse::<u64>().ok())
                .map(|l| l + start);
            let mut at = start;
            let mut next_tenth = 1u64;
            let mut reader = resp.body_mut().as_reader();
            let mut buf = vec![0u8; 256 << 10];
            let broke = loop {
                match reader.read(&mut buf) {
                    Ok(0) => break None,
                    Ok(n) => {
                        file.write_all(&buf[..n]).map_err(io_err)?;
                        let n = u64::try_from(n).unwrap_or(0);
                        transferred += n;
                        at += n;
                        if let Some(total) = total.filter(|t| *t >= 16 << 20)
                            && at * 10 >= next_tenth * total
                        {
                            next_tenth = at * 10 / total + 1;
                            tracing::info!("{url}: {}% ({at} of {total} bytes)", at * 100 / total);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => break Some(e),
                }
            };
            file.sync_all().map_err(io_err)?;
            match broke {
                None => return Ok(transferred),
                Some(e) => {
                    tracing::warn!("{url}: the transfer broke off ({e}); resuming");
                    last = e.to_string();
                    pause(attempt);
                }
            }
        }
        Err(HttpError::GaveUp {
            url: url.to_owned(),
            last,
        })
    }
}
