//! Blocking HTTP(S) downloads with resume: a file is written to a `.part` file and resumed
//! with `Range: bytes=N-` after a broken connection or an earlier interrupted run.
//!
//! Every request is bounded twice: each attempt by [`Limits::timeout`] (to connect, to get the
//! response headers, and for each read of the body), and everything fetched for one artifact
//! (all its requests and attempts together, see [`Http::for_artifact`]) by
//! [`Limits::deadline`]. A failed attempt is logged as it happens (a `tracing` warning with
//! the attempt number, the URL and the reason) and retried up to [`ATTEMPTS`] times while the
//! deadline allows. Body bytes are reported to a [`Watch`]; the binary draws them
//! (`crate::report`), this module does not.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ureq::Agent;
use ureq::http::Response;

/// How many times one request is tried (a download resumes where the last try stopped).
pub const ATTEMPTS: u32 = 5;

/// The longest `--timeout` or `--deadline` accepted.
const LONGEST: Duration = Duration::from_secs(7 * 24 * 3600);

/// The time bounds of a fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// One attempt: connecting, waiting for the response headers, and each read of the body.
    pub timeout: Duration,
    /// One artifact: every request and attempt for it together.
    pub deadline: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            deadline: Duration::from_secs(30 * 60),
        }
    }
}

/// Parses a duration as the command line takes it: a whole number of seconds, with an
/// optional unit `s`, `m` or `h` (`90`, `90s`, `5m`, `2h`); more than zero, at most a week.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("`{text}` is not a duration such as 90s, 5m or 2h");
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, "s"),
    };
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(bad()),
    };
    if digits.is_empty() {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let d = Duration::from_secs(n.saturating_mul(scale));
    if d.is_zero() {
        return Err(format!("`{text}`: must be more than zero"));
    }
    if d > LONGEST {
        return Err(format!("`{text}`: must be at most 168h (a week)"));
    }
    Ok(d)
}

/// A duration the way [`parse_duration`] reads it back (`90s`, `5m`, `2h`; `250ms` below a
/// second).
pub fn show_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s == 0 {
        format!("{}ms", d.as_millis())
    } else if s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// Where the bytes of each successful response body are reported (`url` names the request).
pub trait Watch: std::fmt::Debug + Send + Sync {
    /// A body starts at byte `at` (non-zero when resuming) of `total`, if known.
    fn started(&self, url: &str, at: u64, total: Option<u64>);
    /// `at` bytes of the body (counting the resumed part) are in.
    fn advanced(&self, url: &str, at: u64);
    /// The body ended: complete (`ok`) or broken off.
    fn finished(&self, url: &str, at: u64, ok: bool);
}

/// Progress that goes nowhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unwatched;

impl Watch for Unwatched {
    fn started(&self, _: &str, _: u64, _: Option<u64>) {}
    fn advanced(&self, _: &str, _: u64) {}
    fn finished(&self, _: &str, _: u64, _: bool) {}
}

/// A download problem, naming the URL (and the file where one is written).
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The request failed (connection, TLS, protocol).
    #[error("{url}: {cause}")]
    Request {
        /// The URL.
        url: String,
        /// The error (in the message, so not also the `source()`: no doubled chain).
        cause: ureq::Error,
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
    #[error("{url}: {path}: {cause}")]
    Io {
        /// The URL.
        url: String,
        /// The file being written.
        path: String,
        /// The error (in the message, so not also the `source()`).
        cause: io::Error,
    },
    /// A small response (checksum file, manifest, token) was larger than expected.
    #[error("{url}: the response is larger than {limit} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit.
        limit: u64,
    },
    /// Every attempt failed.
    #[error("{url}: gave up after {attempts} attempts; the last: {last}")]
    GaveUp {
        /// The URL.
        url: String,
        /// How many attempts were made.
        attempts: u32,
        /// Why the last one failed.
        last: String,
    },
    /// The artifact's deadline passed.
    #[error(
        "{url}: the deadline of {deadline} for this artifact passed (raise it with --deadline) \
         after {attempts} attempts; the last: {last}"
    )]
    Deadline {
        /// The URL.
        url: String,
        /// The deadline, as given.
        deadline: String,
        /// How many attempts were made on this URL.
        attempts: u32,
        /// Why the last one failed.
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

/// The client: one agent (connection pool) for a whole fetch, the limits, and the deadline
/// of the artifact being fetched.
#[derive(Debug, Clone)]
pub struct Http {
    agent: Agent,
    limits: Limits,
    deadline: Instant,
    watch: Arc<dyn Watch>,
}

impl Default for Http {
    fn default() -> Self {
        Self::new(Limits::default(), Arc::new(Unwatched))
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

/// Statuses worth another attempt: the server is busy or a gateway is.
fn transient(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// The attempts at one request: numbered, logged as they fail, bounded by [`ATTEMPTS`] (or
/// a smaller `max`) and the artifact's deadline.
#[derive(Debug)]
pub struct Tries<'a> {
    http: &'a Http,
    url: &'a str,
    max: u32,
    attempt: u32,
    last: String,
    /// The pause before another attempt would reach the deadline.
    out_of_time: bool,
}

impl Tries<'_> {
    /// Starts the next attempt, or says why there is none: the deadline passed or every
    /// attempt was made.
    pub fn start(&mut self) -> Result<(), HttpError> {
        if self.out_of_time || self.http.left().is_zero() {
            return Err(HttpError::Deadline {
                url: self.url.to_owned(),
                deadline: show_duration(self.http.limits.deadline),
                attempts: self.attempt,
                last: if self.last.is_empty() {
                    "no time was left to start one".to_owned()
                } else {
                    self.last.clone()
                },
            });
        }
        if self.attempt >= self.max {
            return Err(HttpError::GaveUp {
                url: self.url.to_owned(),
                attempts: self.attempt,
                last: self.last.clone(),
            });
        }
        self.attempt += 1;
        Ok(())
    }

    /// Whether this attempt is the last one [`Tries::start`] allows.
    pub fn last_chance(&self) -> bool {
        self.attempt >= self.max || self.out_of_time || self.http.left().is_zero()
    }

    /// The current attempt failed for `reason`: logs it and pauses before the next one.
    pub fn failed(&mut self, reason: String) {
        let (url, n, max) = (self.url, self.attempt, self.max);
        let wait = Duration::from_millis(500 * u64::from(n));
        if self.last_chance() {
            tracing::warn!("{url}: attempt {n} of {max} failed: {reason}");
        } else if wait >= self.http.left() {
            self.out_of_time = true;
            tracing::warn!(
                "{url}: attempt {n} of {max} failed: {reason}; no time is left for another \
                 before the deadline"
            );
        } else {
            tracing::warn!(
                "{url}: attempt {n} of {max} failed: {reason}; retrying in {}",
                show_duration(wait)
            );
            std::thread::sleep(wait);
        }
        self.last = reason;
    }
}

/// How copying a body ended when it did not complete.
enum Pumped {
    /// The connection broke or stalled after `n` bytes (worth another attempt).
    Broke { n: u64, reason: String },
    /// Writing the bytes failed.
    Write(io::Error),
    /// The body is larger than the limit.
    TooLarge,
}

impl Http {
    /// A client that follows redirects, reports every status to the caller, bounds each
    /// attempt by `limits.timeout` and reports body bytes to `watch`. Its deadline starts now;
    /// [`Http::for_artifact`] restarts it.
    pub fn new(limits: Limits, watch: Arc<dyn Watch>) -> Self {
        let t = Some(limits.timeout);
        let agent = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_resolve(t)
            .timeout_connect(t)
            .timeout_send_request(t)
            .timeout_recv_response(t)
            .timeout_per_read(t)
            .user_agent(concat!("nodeimg/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        let mut http = Self {
            agent,
            limits,
            deadline: Instant::now(),
            watch,
        };
        http.deadline = http.deadline_from_now();
        http
    }

    fn deadline_from_now(&self) -> Instant {
        let now = Instant::now();
        now.checked_add(self.limits.deadline)
            .or_else(|| now.checked_add(LONGEST))
            .unwrap_or(now)
    }

    /// The same client with the deadline of a new artifact, starting now.
    #[must_use]
    pub fn for_artifact(&self) -> Http {
        let mut h = self.clone();
        h.deadline = self.deadline_from_now();
        h
    }

    /// The time left before the deadline.
    pub fn left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// The attempts at a request for `url`, at most `max`.
    pub fn tries<'a>(&'a self, url: &'a str, max: u32) -> Tries<'a> {
        Tries {
            http: self,
            url,
            max,
            attempt: 0,
            last: String::new(),
            out_of_time: false,
        }
    }

    fn call(
        &self,
        url: &str,
        headers: &[(&str, String)],
    ) -> Result<Response<ureq::Body>, ureq::Error> {
        let mut req = self
            .agent
            .get(url)
            .config()
            .timeout_global(Some(self.left().max(Duration::from_millis(1))))
            .build();
        for (k, v) in headers {
            req = req.header(*k, v.as_str());
        }
        req.call()
    }

    /// Why a request failed, in words.
    fn reason(&self, e: &ureq::Error) -> String {
        let timeout = show_duration(self.limits.timeout);
        match e {
            ureq::Error::Timeout(ureq::Timeout::Global) => "timeout: the deadline passed".into(),
            ureq::Error::Timeout(ureq::Timeout::RecvResponse) => {
                format!("timeout: no response within {timeout} (--timeout)")
            }
            ureq::Error::Timeout(ureq::Timeout::PerRead) => {
                format!("timeout: no data for {timeout} (--timeout)")
            }
            ureq::Error::Timeout(t) => format!("timeout: {t} took longer than {timeout}"),
            ureq::Error::Io(io) if io.kind() == io::ErrorKind::ConnectionRefused => {
                "connection refused".into()
            }
            e => e.to_string(),
        }
    }

    /// Why reading a body failed after `at` of `total` bytes, in words.
    fn read_reason(&self, e: &io::Error, at: u64, total: Option<u64>) -> String {
        let of = total.map_or_else(String::new, |t| format!(" of {t}"));
        match e.get_ref().and_then(|x| x.downcast_ref::<ureq::Error>()) {
            Some(u @ ureq::Error::Timeout(_)) => {
                format!("{} after {at}{of} bytes", self.reason(u))
            }
            _ => format!("short read: the body broke off after {at}{of} bytes ({e})"),
        }
    }

    /// Copies the body into `sink`, reporting progress for a successful status; returns the
    /// bytes copied.
    fn pump(
        &self,
        url: &str,
        resp: &mut Response<ureq::Body>,
        sink: &mut dyn Write,
        start: u64,
        total: Option<u64>,
        limit: Option<u64>,
    ) -> Result<u64, Pumped> {
        let unwatched = Unwatched;
        let watch: &dyn Watch = if resp.status().is_success() {
            self.watch.as_ref()
        } else {
            &unwatched
        };
        watch.started(url, start, total);
        let mut reader = resp.body_mut().as_reader();
        let mut buf = vec![0u8; 256 << 10];
        let (mut n, mut at) = (0u64, start);
        let result = loop {
            match reader.read(&mut buf) {
                Ok(0) => break Ok(n),
                Ok(k) => {
                    let k64 = u64::try_from(k).unwrap_or(u64::MAX);
                    if limit.is_some_and(|l| n.saturating_add(k64) > l) {
                        break Err(Pumped::TooLarge);
                    }
                    if let Err(e) = sink.write_all(&buf[..k]) {
                        break Err(Pumped::Write(e));
                    }
                    n += k64;
                    at += k64;
                    watch.advanced(url, at);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    break Err(Pumped::Broke {
                        n,
                        reason: self.read_reason(&e, at, total),
                    });
                }
            }
        };
        watch.finished(url, at, result.is_ok());
        result
    }

    /// GETs `url` into memory (at most `limit` bytes), retrying broken connections, timeouts
    /// and transient statuses (408, 429, 500, 502–504). Any other status is returned; the
    /// caller decides.
    pub fn get_small(
        &self,
        url: &str,
        headers: &[(&str, String)],
        limit: u64,
    ) -> Result<Small, HttpError> {
        let mut tries = self.tries(url, ATTEMPTS);
        loop {
            tries.start()?;
            let mut resp = match self.call(url, headers) {
                Ok(r) => r,
                Err(e) if retryable(&e) => {
                    tries.failed(self.reason(&e));
                    continue;
                }
                Err(source) => {
                    return Err(HttpError::Request {
                        url: url.to_owned(),
                        cause: source,
                    });
                }
            };
            let status = resp.status().as_u16();
            if transient(status) {
                tries.failed(format!("HTTP {status}"));
                continue;
            }
            let total = header(&resp, "content-length").and_then(|l| l.parse::<u64>().ok());
            let mut body = Vec::new();
            match self.pump(url, &mut resp, &mut body, 0, total, Some(limit)) {
                Ok(_) => {}
                Err(Pumped::Broke { reason, .. }) => {
                    tries.failed(reason);
                    continue;
                }
                Err(Pumped::TooLarge) => {
                    return Err(HttpError::TooLarge {
                        url: url.to_owned(),
                        limit,
                    });
                }
                Err(Pumped::Write(source)) => {
                    return Err(HttpError::Io {
                        url: url.to_owned(),
                        path: "(memory)".to_owned(),
                        cause: source,
                    });
                }
            }
            return Ok(Small {
                status,
                content_type: header(&resp, "content-type"),
                www_authenticate: header(&resp, "www-authenticate"),
                docker_digest: header(&resp, "docker-content-digest"),
                body,
            });
        }
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
    /// broken or stalled connection and a transient status are retried (resuming) up to
    /// [`ATTEMPTS`] times within the deadline. Returns the bytes transferred.
    pub fn download(
        &self,
        url: &str,
        headers: &[(&str, String)],
        part: &Path,
    ) -> Result<u64, HttpError> {
        let io_err = |source| HttpError::Io {
            url: url.to_owned(),
            path: part.display().to_string(),
            cause: source,
        };
        let mut transferred = 0u64;
        let mut tries = self.tries(url, ATTEMPTS);
        loop {
            tries.start()?;
            let have = std::fs::metadata(part).map_or(0, |m| m.len());
            let mut hs = headers.to_vec();
            if have > 0 {
                hs.push(("Range", format!("bytes={have}-")));
                tracing::info!("resuming {url} at byte {have}");
            }
            let mut resp = match self.call(url, &hs) {
                Ok(r) => r,
                Err(e) if retryable(&e) => {
                    tries.failed(self.reason(&e));
                    continue;
                }
                Err(source) => {
                    return Err(HttpError::Request {
                        url: url.to_owned(),
                        cause: source,
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
                    std::fs::remove_file(part).map_err(io_err)?;
                    tries.failed(format!(
                        "HTTP {status} for a request from byte {have}; starting over"
                    ));
                    continue;
                }
                s if transient(s) => {
                    tries.failed(format!("HTTP {status}"));
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
            let pumped = self.pump(url, &mut resp, &mut file, start, total, None);
            file.sync_all().map_err(io_err)?;
            match pumped {
                Ok(n) => return Ok(transferred + n),
                Err(Pumped::Broke { n, reason }) => {
                    transferred += n;
                    tries.failed(reason);
                }
                Err(Pumped::Write(e)) => return Err(io_err(e)),
                Err(Pumped::TooLarge) => {
                    return Err(HttpError::TooLarge {
                        url: url.to_owned(),
                        limit: u64::MAX,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_parsed_strictly_and_shown_the_same_way() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("168h"), Ok(LONGEST));
        for bad in ["", "s", "1.5s", "-1", "5 m", "5d", "10ms", "1h30m", "x"] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.contains("is not a duration such as 90s"), "{bad}: {e}");
        }
        assert!(parse_duration("0s").unwrap_err().contains("more than zero"));
        assert!(parse_duration("169h").unwrap_err().contains("at most 168h"));
        assert!(
            parse_duration("99999999999999999999")
                .unwrap_err()
                .contains("is not a duration")
        );
        for (d, s) in [(90, "90s"), (300, "5m"), (7200, "2h"), (3601, "3601s")] {
            assert_eq!(show_duration(Duration::from_secs(d)), s);
            assert_eq!(parse_duration(s), Ok(Duration::from_secs(d)));
        }
        assert_eq!(show_duration(Duration::from_millis(250)), "250ms");
    }

    #[test]
    fn only_busy_statuses_are_retried() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(transient(s), "{s}");
        }
        for s in [200, 206, 301, 400, 401, 403, 404, 416, 501] {
            assert!(!transient(s), "{s}");
        }
    }
}
