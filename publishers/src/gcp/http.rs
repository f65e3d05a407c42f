//! The JSON API calls of Cloud Storage and Compute Engine over `ureq` (rustls), each named by
//! its IAM permission (`storage.objects.insert`, `compute.images.insert`) in errors and retry
//! lines. An answer is sorted into success, a failure worth retrying (429, 5xx, 408, a
//! connection that failed: [`Failure::Transient`]) and one that is not (401 → the credentials'
//! source named, 403 and other 4xx → the call named).

use std::time::Duration;

use serde_json::Value;
use ureq::Agent;
use ureq::http::Response;

use crate::error::Error;
use crate::retry::Failure;
use crate::secret::{Secret, scrub};

/// Longest error text kept from an answer.
const WHY_LIMIT: usize = 400;
/// Largest JSON answer read (object and image resources are a few KiB).
const JSON_LIMIT: u64 = 4 << 20;
/// Longest one request may take (a chunk of the upload, an API call). The download reads on
/// as long as data comes.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// The agent every call uses: statuses are answers (not errors), no redirects (a resumable
/// upload's `308 Resume Incomplete` is an answer too).
pub fn agent() -> Agent {
    Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .timeout_recv_response(Some(REQUEST_TIMEOUT))
        .timeout_send_body(Some(REQUEST_TIMEOUT))
        .timeout_connect(Some(Duration::from_secs(30)))
        .user_agent(concat!("nodeimg-publish/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// What one call is: its name for errors, the source of its credentials for a 401, and the
/// secrets to scrub from any answer.
#[derive(Debug, Clone)]
pub struct Call<'a> {
    /// `storage.objects.insert`, …
    pub name: &'a str,
    /// The credentials' source in words (for a 401).
    pub tried: &'a str,
    /// The bearer token, when the call carries one.
    pub token: Option<&'a Secret>,
}

impl Call<'_> {
    /// `Authorization: Bearer …` when there is a token.
    pub fn auth(&self) -> Option<String> {
        self.token.map(|t| format!("Bearer {}", t.expose()))
    }

    /// A transport error, sorted: connection trouble and timeouts are worth a retry.
    pub fn transport(&self, e: &ureq::Error) -> Failure {
        let why = self.scrub(&e.to_string());
        match e {
            ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::HostNotFound
            | ureq::Error::Protocol(_) => Failure::Transient(why),
            _ => Failure::Fatal(Error::Call {
                call: self.name.to_owned(),
                why,
            }),
        }
    }

    /// A non-success status with its (read) body, sorted.
    pub fn status(&self, status: u16, body: &str) -> Failure {
        let why = format!("HTTP {status}: {}", self.message(body));
        match status {
            408 | 429 | 500..=599 => Failure::Transient(why),
            401 => Failure::Fatal(Error::Credentials {
                target: "gcp".into(),
                tried: self.tried.to_owned(),
                why: format!("{} refused them: {why}", self.name),
            }),
            _ => Failure::Fatal(Error::Call {
                call: self.name.to_owned(),
                why,
            }),
        }
    }

    /// The answer's `error.message` (Google's JSON error form), else its start; scrubbed.
    fn message(&self, body: &str) -> String {
        let text = serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|v| {
                v.pointer("/error/message")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| body.trim().to_owned());
        let mut text = self.scrub(&text);
        if text.len() > WHY_LIMIT {
            let mut end = WHY_LIMIT;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
            text.push('…');
        }
        if text.is_empty() {
            "(no message)".to_owned()
        } else {
            text
        }
    }

    /// `text` without the token.
    pub fn scrub(&self, text: &str) -> String {
        match self.token {
            Some(t) => scrub(text, &[t]),
            None => text.to_owned(),
        }
    }

    /// Reads a JSON answer of a successful call.
    pub fn json(&self, resp: &mut Response<ureq::Body>) -> Result<Value, Failure> {
        let text = self.text(resp)?;
        serde_json::from_str(&text).map_err(|e| {
            Failure::Fatal(Error::Call {
                call: self.name.to_owned(),
                why: format!("the answer is not JSON: {e}"),
            })
        })
    }

    /// Reads an answer's body as text (bounded); a broken body is worth a retry.
    pub fn text(&self, resp: &mut Response<ureq::Body>) -> Result<String, Failure> {
        resp.body_mut()
            .with_config()
            .limit(JSON_LIMIT)
            .read_to_string()
            .map_err(|e| {
                Failure::Transient(format!(
                    "reading the answer: {}",
                    self.scrub(&e.to_string())
                ))
            })
    }

    /// The failure for a non-success answer (its body read for the message).
    pub fn failed(&self, resp: &mut Response<ureq::Body>) -> Failure {
        let status = resp.status().as_u16();
        let body = self.text(resp).unwrap_or_default();
        self.status(status, &body)
    }
}

/// A header of an answer as text.
pub fn header(resp: &Response<ureq::Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

pub use crate::url::encode;
