//! The registry HTTP API v2 calls nodeimg makes, on `ureq`: each request carries the
//! authorization got from the registry's `WWW-Authenticate` challenge (Bearer: a token from the
//! token server, asked with the auth file's `user:password` as Basic or its identity token as
//! an OAuth2 refresh token, or anonymously; Basic: the auth file's `user:password`), and each
//! answer is sorted: what the caller expects, a 401 that credentials cannot fix
//! ([`Error::Credentials`] naming the files tried or the file used), a 403/`DENIED` naming the
//! call, throttling, 5xx and unreachable registries retried by [`crate::retry`].

use std::time::Duration;

use serde::Deserialize;
use ureq::Agent;
use ureq::http::Response;

use super::auth::{self, Credentials};
use crate::error::{Error, Result};
use crate::retry::{self, Failure, Policy};
use crate::secret::{Secret, scrub};

/// Largest error body or token answer read.
const SMALL_LIMIT: u64 = 1 << 20;

/// One HTTP request.
pub struct Req<'a> {
    /// `GET`, `HEAD`, `POST`, `PATCH`, `PUT`, `DELETE`.
    pub method: &'static str,
    /// A path from `/v2/…` or an absolute URL (an upload's `Location`).
    pub url: String,
    /// The call's name in errors and retries: method and path, no query, no upload id.
    pub call: String,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
    /// The body, if any.
    pub body: Option<&'a [u8]>,
}

impl<'a> Req<'a> {
    /// A request without body, named by its method and `call_path`.
    pub fn new(method: &'static str, url: impl Into<String>, call_path: &str) -> Req<'a> {
        Req {
            method,
            url: url.into(),
            call: format!("{method} {call_path}"),
            headers: Vec::new(),
            body: None,
        }
    }

    /// With a header.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// With a body.
    pub fn body(mut self, body: &'a [u8]) -> Self {
        self.body = Some(body);
        self
    }
}

/// A registry and the repository published to.
pub struct Registry {
    agent: Agent,
    /// `http://HOST` or `https://HOST`.
    base: String,
    /// `HOST[:PORT]`.
    pub host: String,
    /// The repository.
    pub repo: String,
    /// Other repositories pull access is asked for (mount sources).
    pub pull_from: Vec<String>,
    /// `oci:REFERENCE`, for errors.
    pub target: String,
    creds: Credentials,
    authorization: Option<Secret>,
    /// The retry policy.
    pub policy: Policy,
}

/// Registries spoken to in plain http, as the containers tools treat them: loopback only.
pub fn insecure(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => host.split(':').next().unwrap_or(host),
    };
    matches!(name, "localhost" | "::1") || name.starts_with("127.")
}

pub use crate::url::encode as enc;

/// The OCI error body: `{"errors":[{"code":"DENIED","message":"…"}]}`.
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    token: String,
    #[serde(default)]
    access_token: String,
}

/// `key="value", key2=value2` of a challenge, quotes holding commas.
fn challenge_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"').unwrap_or(q.len());
            (q[..end].to_owned(), q.get(end + 1..).unwrap_or(""))
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        out.push((key, value));
        rest = next.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

fn transport(call: &str, e: &ureq::Error) -> Failure {
    match e {
        ureq::Error::Io(_)
        | ureq::Error::Timeout(_)
        | ureq::Error::ConnectionFailed
        | ureq::Error::HostNotFound
        | ureq::Error::Protocol(_) => Failure::Transient(format!("{call}: {e}")),
        other => Failure::Fatal(Error::Call {
            call: call.to_owned(),
            why: other.to_string(),
        }),
    }
}

impl Registry {
    /// A client for `host`/`repo` with `creds`.
    pub fn new(host: &str, repo: &str, creds: Credentials, target: &str) -> Registry {
        let agent: Agent = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(300)))
            .user_agent(concat!("nodeimg/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let scheme = if insecure(host) { "http" } else { "https" };
        Registry {
            agent,
            base: format!("{scheme}://{host}"),
            host: host.to_owned(),
            repo: repo.to_owned(),
            pull_from: Vec::new(),
            target: target.to_owned(),
            creds,
            authorization: None,
            policy: Policy::from_env(),
        }
    }

    /// `url` absolute: a `/v2/…` path joined to the registry's base.
    pub fn absolute(&self, url: &str) -> String {
        if url.starts_with("http://") || url.starts_with("https://") {
            url.to_owned()
        } else if url.starts_with('/') {
            format!("{}{url}", self.base)
        } else {
            format!("{}/{url}", self.base)
        }
    }

    /// Every secret in play, for scrubbing what the registry sends back.
    fn secrets(&self) -> Vec<&Secret> {
        let mut s = self.creds.secrets();
        if let Some(a) = &self.authorization {
            s.push(a);
        }
        s
    }

    fn raw(
        &self,
        req: &Req<'_>,
        authorization: Option<&Secret>,
    ) -> Result<Response<ureq::Body>, Failure> {
        let mut b = ureq::http::Request::builder()
            .method(req.method)
            .uri(self.absolute(&req.url));
        for (k, v) in &req.headers {
            b = b.header(*k, v.as_str());
        }
        if let Some(a) = authorization {
            b = b.header("Authorization", a.expose());
        }
        let built = |e: ureq::http::Error| {
            Failure::Fatal(Error::Call {
                call: req.call.clone(),
                why: e.to_string(),
            })
        };
        let sent = match req.body {
            Some(body) => self.agent.run(b.body(body).map_err(built)?),
            None => self.agent.run(b.body(()).map_err(built)?),
        };
        sent.map_err(|e| transport(&req.call, &e))
    }

    /// One attempt at `req`: its answer when the status is one of `ok`, after answering a
    /// 401 challenge once.
    pub fn once(&mut self, req: &Req<'_>, ok: &[u16]) -> Result<Response<ureq::Body>, Failure> {
        let mut resp = self.raw(req, self.authorization.as_ref())?;
        if resp.status().as_u16() == 401 {
            let challenge = header(&resp, "www-authenticate").unwrap_or_default();
            self.authenticate(&challenge, &req.call)?;
            resp = self.raw(req, self.authorization.as_ref())?;
            if resp.status().as_u16() == 401 {
                return Err(Failure::Fatal(self.refused(&req.call)));
            }
        }
        let status = resp.status().as_u16();
        if ok.contains(&status) {
            return Ok(resp);
        }
        let why = self.error_text(&mut resp);
        Err(match status {
            429 | 500..=599 => Failure::Transient(format!("{}: {why}", req.call)),
            403 => Failure::Fatal(Error::Call {
                call: req.call.clone(),
                why: format!("permission denied: {why}"),
            }),
            _ if why.contains("DENIED") => Failure::Fatal(Error::Call {
                call: req.call.clone(),
                why: format!("permission denied: {why}"),
            }),
            _ => Failure::Fatal(Error::Call {
                call: req.call.clone(),
                why,
            }),
        })
    }

    /// `req` with bounded retries of transient failures.
    pub fn call(&mut self, req: &Req<'_>, ok: &[u16]) -> Result<Response<ureq::Body>> {
        let policy = self.policy;
        let call = req.call.clone();
        retry::run(&call, &policy, || self.once(req, ok))
    }

    /// `STATUS Reason: CODE: message`, scrubbed.
    fn error_text(&self, resp: &mut Response<ureq::Body>) -> String {
        let status = resp.status();
        let body = resp
            .body_mut()
            .with_config()
            .limit(SMALL_LIMIT)
            .read_to_string()
            .unwrap_or_default();
        let detail = match serde_json::from_str::<ErrorBody>(&body) {
            Ok(e) if !e.errors.is_empty() => e
                .errors
                .iter()
                .map(|x| format!("{}: {}", x.code, x.message))
                .collect::<Vec<_>>()
                .join("; "),
            _ => body.trim().chars().take(300).collect(),
        };
        scrub(
            &format!(
                "{} {}{}{}",
                status.as_u16(),
                status.canonical_reason().unwrap_or(""),
                if detail.is_empty() { "" } else { ": " },
                detail
            ),
            &self.secrets(),
        )
    }

    /// The error for a 401 the credentials did not fix (or there were none).
    fn refused(&self, call: &str) -> Error {
        match &self.creds.found {
            Some(f) => Error::Credentials {
                target: self.target.clone(),
                tried: f.file.display().to_string(),
                why: format!(
                    "the registry {} refused the credentials for it, or they give no access to this repository ({call} answered 401)",
                    self.host
                ),
            },
            None => Error::Credentials {
                target: self.target.clone(),
                tried: self.creds.tried_text(),
                why: format!(
                    "the registry {} asks for credentials ({call} answered 401) and no auth file has an entry for it",
                    self.host
                ),
            },
        }
    }

    /// The scopes asked for: push on the repository, pull on the mount sources, and what the
    /// challenge names.
    fn scopes(&self, challenge_scope: Option<&str>) -> Vec<String> {
        let mut s = vec![format!("repository:{}:pull,push", self.repo)];
        for from in &self.pull_from {
            s.push(format!("repository:{from}:pull"));
        }
        if let Some(c) = challenge_scope {
            for part in c.split(' ').filter(|p| !p.is_empty()) {
                if !s.iter().any(|x| x == part) {
                    s.push(part.to_owned());
                }
            }
        }
        s
    }

    /// Answers a 401's challenge: sets the authorization to send.
    fn authenticate(&mut self, challenge: &str, call: &str) -> Result<(), Failure> {
        let (scheme, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
        let params = challenge_params(params);
        let param = |k: &str| {
            params
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => match &self.creds.found {
                Some(f) if !f.password.is_empty() => {
                    self.authorization = Some(auth::basic(f));
                    Ok(())
                }
                _ => Err(Failure::Fatal(self.refused(call))),
            },
            "bearer" => {
                let realm = param("realm").ok_or_else(|| {
                    Failure::Fatal(Error::Call {
                        call: call.to_owned(),
                        why: "the registry's Bearer challenge has no realm".into(),
                    })
                })?;
                let token = self.token(realm, param("service"), param("scope"), call)?;
                self.authorization = Some(Secret::new(format!("Bearer {}", token.expose())));
                Ok(())
            }
            _ => Err(Failure::Fatal(self.refused(call))),
        }
    }

    /// A token from the token server at `realm` (the distribution token authentication spec;
    /// with an identity token, its OAuth2 form).
    fn token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: Option<&str>,
        call: &str,
    ) -> Result<Secret, Failure> {
        let scopes = self.scopes(scope);
        let token_call = format!(
            "token for {call} from {}",
            crate::secret::without_query(realm)
        );
        let found = self.creds.found.as_ref();
        let mut resp = match found {
            Some(f) if !f.identity_token.is_empty() => {
                let mut form = format!(
                    "grant_type=refresh_token&client_id=nodeimg&refresh_token={}&scope={}",
                    enc(f.identity_token.expose()),
                    enc(&scopes.join(" "))
                );
                if let Some(s) = service {
                    form.push_str(&format!("&service={}", enc(s)));
                }
                let req = Req::new("POST", realm, &token_call)
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(form.as_bytes());
                self.raw(&req, None)?
            }
            _ => {
                let mut url = realm.to_owned();
                let mut sep = if url.contains('?') { '&' } else { '?' };
                if let Some(s) = service {
                    url.push_str(&format!("{sep}service={}", enc(s)));
                    sep = '&';
                }
                for s in &scopes {
                    url.push_str(&format!("{sep}scope={}", enc(s)));
                    sep = '&';
                }
                let basic = found.filter(|f| !f.password.is_empty()).map(auth::basic);
                self.raw(&Req::new("GET", url, &token_call), basic.as_ref())?
            }
        };
        match resp.status().as_u16() {
            200 => {}
            401 | 403 => return Err(Failure::Fatal(self.refused(call))),
            429 | 500..=599 => {
                return Err(Failure::Transient(format!(
                    "{token_call}: {}",
                    self.error_text(&mut resp)
                )));
            }
            _ => {
                return Err(Failure::Fatal(Error::Call {
                    call: token_call,
                    why: self.error_text(&mut resp),
                }));
            }
        }
        let text = resp
            .body_mut()
            .with_config()
            .limit(SMALL_LIMIT)
            .read_to_string()
            .map_err(|e| Failure::Transient(format!("{token_call}: {e}")))?;
        let answer: TokenAnswer = serde_json::from_str(&text).map_err(|e| {
            Failure::Fatal(Error::Call {
                call: token_call.clone(),
                why: format!("the token server's answer is not a token: {e}"),
            })
        })?;
        let token = if answer.token.is_empty() {
            answer.access_token
        } else {
            answer.token
        };
        if token.is_empty() {
            return Err(Failure::Fatal(Error::Call {
                call: token_call,
                why: "the token server's answer has no token".into(),
            }));
        }
        Ok(Secret::new(token))
    }
}

/// A header's value as text.
pub fn header(resp: &Response<ureq::Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse_with_commas_inside_quotes() {
        let p = challenge_params(
            r#"realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(
            p,
            [
                ("realm".into(), "https://auth.example/token".into()),
                ("service".into(), "registry.example".into()),
                ("scope".into(), "repository:a/b:pull,push".into()),
            ]
        );
        assert_eq!(
            challenge_params("realm=x, a=\"b\""),
            [("realm".into(), "x".into()), ("a".into(), "b".into())]
        );
    }

    #[test]
    fn only_loopback_is_plain_http() {
        for h in [
            "127.0.0.1:5000",
            "localhost",
            "localhost:5000",
            "[::1]:5000",
        ] {
            assert!(insecure(h), "{h}");
        }
        for h in ["ghcr.io", "registry.local:5000", "10.0.0.1:5000"] {
            assert!(!insecure(h), "{h}");
        }
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(
            enc("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }
}
