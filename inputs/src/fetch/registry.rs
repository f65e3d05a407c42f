//! Pulling one image through the registry HTTP API v2: the manifest by tag (a manifest list
//! or OCI index resolves to its linux/amd64 manifest), then the config and every layer by
//! digest. Anonymous bearer tokens are requested when the registry answers 401 with
//! `WWW-Authenticate: Bearer`. Every manifest fetched by digest and every blob is verified;
//! blobs enter the cache (so a later pull skips the ones it has).

use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::error::FetchError;
use super::http::{Http, Small};
use super::plan::ImageRef;
use crate::cache::Cache;

const MANIFEST_LIMIT: u64 = 4 << 20;

const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
                      application/vnd.docker.distribution.manifest.list.v2+json, \
                      application/vnd.oci.image.manifest.v1+json, \
                      application/vnd.docker.distribution.manifest.v2+json";

/// A blob of the pulled image, in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// Hex SHA-256.
    pub sha256: String,
    /// Its size.
    pub size: u64,
    /// The cached file.
    pub path: PathBuf,
}

/// A pulled image: its platform manifest and the blobs it names.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The manifest's bytes, as served.
    pub manifest: Vec<u8>,
    /// Its media type.
    pub media_type: String,
    /// Its hex SHA-256 (what `@sha256:` pins).
    pub digest: String,
    /// Config and layers.
    pub blobs: Vec<Blob>,
    /// Bytes downloaded.
    pub downloaded: u64,
}

/// The parameters of a `WWW-Authenticate: Bearer k="v",…` challenge, or None for another
/// scheme.
pub fn bearer_params(challenge: &str) -> Option<Vec<(String, String)>> {
    let (scheme, rest) = challenge.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut out = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => value.extend(chars.next()),
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied().filter(|c| *c != ',') {
                value.push(c);
                chars.next();
            }
        }
        out.push((key.trim().to_ascii_lowercase(), value));
    }
    Some(out)
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn sha256_hex(digest: &str, url: &str) -> Result<String, FetchError> {
    digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_ascii_lowercase)
        .ok_or_else(|| FetchError::Registry {
            url: url.to_owned(),
            why: format!("digest {digest:?} is not a sha256 digest"),
        })
}

struct Session<'a> {
    http: &'a Http,
    base: String,
    image: &'a ImageRef,
    token: Option<String>,
}

impl Session<'_> {
    fn headers(&self, accept: bool) -> Vec<(&'static str, String)> {
        let mut h = Vec::new();
        if accept {
            h.push(("Accept", ACCEPT.to_owned()));
        }
        if let Some(t) = &self.token {
            h.push(("Authorization", format!("Bearer {t}")));
        }
        h
    }

    fn authenticate(&mut self, url: &str, challenge: Option<&str>) -> Result<(), FetchError> {
        let refused = |why: String| FetchError::Registry {
            url: url.to_owned(),
            why,
        };
        let params = challenge.and_then(bearer_params).ok_or_else(|| {
            refused(format!(
                "HTTP 401 and no bearer challenge ({}); nodeimg pulls anonymously only",
                challenge.unwrap_or("no WWW-Authenticate")
            ))
        })?;
        let get = |k: &str| {
            params
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        let realm = get("realm").ok_or_else(|| refused("bearer challenge without realm".into()))?;
        let scope =
            get("scope").unwrap_or_else(|| format!("repository:{}:pull", self.image.repository));
        let mut token_url = format!("{realm}?scope={}", encode(&scope));
        if let Some(service) = get("service") {
            token_url.push_str(&format!("&service={}", encode(&service)));
        }
        let body = self.http.get_ok(&token_url, MANIFEST_LIMIT)?;
        let json: Value = serde_json::from_slice(&body).map_err(|e| FetchError::Registry {
            url: token_url.clone(),
            why: format!("token response is not JSON: {e}"),
        })?;
        let token = json["token"]
            .as_str()
            .or_else(|| json["access_token"].as_str())
            .ok_or_else(|| FetchError::Registry {
                url: token_url.clone(),
                why: "token response has no token".into(),
            })?;
        self.token = Some(token.to_owned());
        Ok(())
    }

    /// GET a manifest, authenticating once on 401. A 404 for the image's own reference (not
    /// for a manifest its index names) is [`FetchError::NotInRegistry`].
    fn manifest(&mut self, reference: &str) -> Result<(String, Small), FetchError> {
        let url = format!(
            "{}/v2/{}/manifests/{reference}",
            self.base, self.image.repository
        );
        let mut r = self
            .http
            .get_small(&url, &self.headers(true), MANIFEST_LIMIT)?;
        if r.status == 401 && self.token.is_none() {
            self.authenticate(&url, r.www_authenticate.as_deref())?;
            r = self
                .http
                .get_small(&url, &self.headers(true), MANIFEST_LIMIT)?;
        }
        if r.status == 404 && reference == self.image.tag {
            return Err(FetchError::NotInRegistry {
                url,
                reference: self.image.reference(),
                detail: String::from_utf8_lossy(&r.body).trim().to_owned(),
            });
        }
        if r.status != 200 {
            return Err(FetchError::Registry {
                why: format!(
                    "HTTP {}: {}",
                    r.status,
                    String::from_utf8_lossy(&r.body).trim()
                ),
                url,
            });
        }
        Ok((url, r))
    }

    fn blob(
        &mut self,
        cache: &Cache,
        partial: &Path,
        desc: &Value,
    ) -> Result<(Blob, u64), FetchError> {
        let url_for = |d: &str| format!("{}/v2/{}/blobs/{d}", self.base, self.image.repository);
        let digest = desc["digest"].as_str().unwrap_or("");
        let url = url_for(digest);
        let hex = sha256_hex(digest, &url)?;
        let size = desc["size"].as_u64().ok_or_else(|| FetchError::Registry {
            url: url.clone(),
            why: "descriptor without size".into(),
        })?;
        let cached = cache.path_of(&hex);
        if std::fs::metadata(&cached).is_ok_and(|m| m.len() == size) {
            return Ok((
                Blob {
                    sha256: hex,
                    size,
                    path: cached,
                },
                0,
            ));
        }
        let part = partial.join(format!("blob-{hex}.part"));
        let expect = [super::Expect::sha256(&hex, "its digest")];
        let mut headers = self.headers(false);
        let mut got = super::download_verified(self.http, cache, &url, &headers, &part, &expect);
        if let Err(FetchError::Http(super::http::HttpError::Status { status: 401, .. })) = &got {
            let challenge = self.http.get_small(&url, &headers, MANIFEST_LIMIT).ok();
            self.authenticate(&url, challenge.and_then(|c| c.www_authenticate).as_deref())?;
            headers = self.headers(false);
            got = super::download_verified(self.http, cache, &url, &headers, &part, &expect);
        }
        let (path, _, _, n) = got?;
        Ok((
            Blob {
                sha256: hex,
                size,
                path,
            },
            n,
        ))
    }
}

fn media_type(manifest: &Value, served: Option<&str>) -> String {
    manifest["mediaType"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| served.map(|s| s.split(';').next().unwrap_or(s).trim().to_owned()))
        .unwrap_or_else(|| "application/vnd.oci.image.manifest.v1+json".to_owned())
}

fn parse(url: &str, body: &[u8]) -> Result<Value, FetchError> {
    serde_json::from_slice(body).map_err(|e| FetchError::Registry {
        url: url.to_owned(),
        why: format!("the manifest is not JSON: {e}"),
    })
}

/// A [`FetchError::Mismatch`] naming `url` unless the SHA-256 `actual` is `expected` (from
/// `what`).
fn same_sha256(url: &str, expected: &str, actual: &str, what: &str) -> Result<(), FetchError> {
    if expected == actual {
        return Ok(());
    }
    Err(FetchError::Mismatch {
        url: url.to_owned(),
        algorithm: "sha256",
        expected: expected.to_owned(),
        actual: actual.to_owned(),
        what: what.to_owned(),
    })
}

/// Pulls `image` from the registry API at `base` (`scheme://host[:port]`), linux/amd64.
/// Blobs are downloaded to `partial` and moved into `cache` once verified.
pub fn pull(
    http: &Http,
    base: &str,
    image: &ImageRef,
    cache: &Cache,
    partial: &Path,
) -> Result<Pulled, FetchError> {
    let mut s = Session {
        http,
        base: base.trim_end_matches('/').to_owned(),
        image,
        token: None,
    };
    let (mut url, mut r) = s.manifest(&image.tag)?;
    let mut digest = hex::encode(Sha256::digest(&r.body));
    if let Some(pinned) = image.pinned_digest() {
        same_sha256(&url, pinned, &digest, "the reference's digest")?;
    }
    if let Some(served) = r.docker_digest.as_deref() {
        let want = sha256_hex(served, &url)?;
        same_sha256(&url, &want, &digest, "Docker-Content-Digest")?;
    }
    let mut json = parse(&url, &r.body)?;
    if let Some(list) = json["manifests"].as_array() {
        let pick = list
            .iter()
            .find(|m| {
                m["platform"]["os"] == "linux"
                    && m["platform"]["architecture"] == "amd64"
                    && m["platform"]["variant"].is_null()
            })
            .or_else(|| {
                list.iter().find(|m| {
                    m["platform"]["os"] == "linux" && m["platform"]["architecture"] == "amd64"
                })
            })
            .ok_or_else(|| FetchError::Registry {
                url: url.clone(),
                why: format!("{} has no linux/amd64 manifest", image.reference()),
            })?;
        let want = sha256_hex(pick["digest"].as_str().unwrap_or(""), &url)?;
        (url, r) = s.manifest(&format!("sha256:{want}"))?;
        digest = hex::encode(Sha256::digest(&r.body));
        same_sha256(&url, &want, &digest, "the manifest list")?;
        json = parse(&url, &r.body)?;
    }
    let media_type = media_type(&json, r.content_type.as_deref());
    let layers = json["layers"]
        .as_array()
        .ok_or_else(|| FetchError::Registry {
            url: url.clone(),
            why: format!("{media_type} manifest without layers (schema 1 is not supported)"),
        })?;
    let mut blobs = Vec::new();
    let mut downloaded = 0;
    for desc in std::iter::once(&json["config"]).chain(layers) {
        let (blob, n) = s.blob(cache, partial, desc)?;
        downloaded += n;
        blobs.push(blob);
    }
    Ok(Pulled {
        manifest: r.body,
        media_type,
        digest,
        blobs,
        downloaded,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges_are_parsed_and_others_refused() {
        let p = bearer_params(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:pause:pull""#,
        )
        .unwrap();
        assert_eq!(
            p,
            [
                ("realm".into(), "https://auth.example/token".into()),
                ("service".into(), "registry.example".into()),
                ("scope".into(), "repository:pause:pull".into()),
            ]
        );
        assert_eq!(
            bearer_params("bearer realm=x, service=\"a\\\"b\"").unwrap(),
            [
                ("realm".into(), "x".into()),
                ("service".into(), "a\"b".into())
            ]
        );
        assert!(bearer_params(r#"Basic realm="r""#).is_none());
        assert_eq!(encode("repository:a/b:pull"), "repository%3Aa%2Fb%3Apull");
    }

    #[test]
    fn only_sha256_digests_are_accepted() {
        let h = "ab".repeat(32);
        assert_eq!(sha256_hex(&format!("sha256:{h}"), "u").unwrap(), h);
        for bad in ["sha512:ab", "sha256:../../etc", "", "sha256:"] {
            let e = sha256_hex(bad, "https://r/v2/x").unwrap_err().to_string();
            assert!(e.starts_with("https://r/v2/x: digest"), "{e}");
        }
    }
}
