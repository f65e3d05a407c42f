//! Registry credentials from the Docker/Podman auth files and nowhere else, in the order
//! `containers-auth.json(5)` and Docker read them: `$REGISTRY_AUTH_FILE`,
//! `$XDG_RUNTIME_DIR/containers/auth.json`, `$XDG_CONFIG_HOME/containers/auth.json` (or
//! `~/.config/containers/auth.json`), then `$DOCKER_CONFIG/config.json` (or
//! `~/.docker/config.json`). The first file whose `auths` map has an entry for the registry
//! (by host, or by `host/repository` prefix, the longest first) is used; its `auth`
//! (base64 `user:password`) or `identitytoken` is kept as a [`Secret`]. No entry anywhere:
//! anonymous. Credential helpers (`credsStore`, `credHelpers`) are not run.

use std::path::{Path, PathBuf};

use base64::Engine;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::secret::Secret;

/// Largest auth file read.
const AUTH_FILE_LIMIT: u64 = 4 << 20;

/// What was found for one registry.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// The files looked in, in order (existing or not).
    pub tried: Vec<PathBuf>,
    /// The entry used, if any.
    pub found: Option<Found>,
}

/// An `auths` entry.
#[derive(Debug, Clone)]
pub struct Found {
    /// The file it came from.
    pub file: PathBuf,
    /// The user name (not a secret, but never printed either).
    pub user: Secret,
    /// The password, or empty with an identity token.
    pub password: Secret,
    /// `identitytoken`: an OAuth2 refresh token for the token server.
    pub identity_token: Secret,
}

impl Credentials {
    /// The files tried, for an error: `a, b, c`.
    pub fn tried_text(&self) -> String {
        if self.tried.is_empty() {
            return "no auth file (none of REGISTRY_AUTH_FILE, XDG_RUNTIME_DIR, DOCKER_CONFIG, HOME is set)".into();
        }
        self.tried
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Every secret held, for [`crate::secret::scrub`].
    pub fn secrets(&self) -> Vec<&Secret> {
        match &self.found {
            Some(f) => vec![&f.user, &f.password, &f.identity_token],
            None => vec![],
        }
    }
}

/// The auth files in the order they are read, from the environment.
pub fn auth_files() -> Vec<PathBuf> {
    auth_files_from(|k| std::env::var_os(k))
}

/// The auth files in the order they are read, with `var` giving the environment.
fn auth_files_from(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> Vec<PathBuf> {
    let env = |k: &str| var(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    let home = env("HOME");
    let mut files = Vec::new();
    if let Some(f) = env("REGISTRY_AUTH_FILE") {
        files.push(f);
    }
    if let Some(d) = env("XDG_RUNTIME_DIR") {
        files.push(d.join("containers/auth.json"));
    }
    match (env("XDG_CONFIG_HOME"), &home) {
        (Some(d), _) => files.push(d.join("containers/auth.json")),
        (None, Some(h)) => files.push(h.join(".config/containers/auth.json")),
        (None, None) => {}
    }
    match (env("DOCKER_CONFIG"), &home) {
        (Some(d), _) => files.push(d.join("config.json")),
        (None, Some(h)) => files.push(h.join(".docker/config.json")),
        (None, None) => {}
    }
    files
}

#[derive(Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: std::collections::BTreeMap<String, AuthEntry>,
}

#[derive(Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// `https://host/v1/` → `host`; `host/repo` stays.
fn normalize_key(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let key = key.trim_end_matches('/');
    key.strip_suffix("/v1")
        .or_else(|| key.strip_suffix("/v2"))
        .unwrap_or(key)
}

/// Looks `host` and `repo` up in `files`; `target` names the publish in errors.
pub fn lookup(files: &[PathBuf], host: &str, repo: &str, target: &str) -> Result<Credentials> {
    let mut creds = Credentials {
        tried: files.to_vec(),
        found: None,
    };
    let full = format!("{host}/{repo}");
    for file in files {
        if !file.is_file() {
            continue;
        }
        let parsed = read(file, target)?;
        let best = parsed
            .auths
            .iter()
            .filter(|(k, _)| {
                let k = normalize_key(k);
                k == host || full == k || (k.contains('/') && full.starts_with(&format!("{k}/")))
            })
            .max_by_key(|(k, _)| normalize_key(k).len());
        if let Some((_, entry)) = best {
            creds.found = Some(decode(entry, file, target)?);
            return Ok(creds);
        }
    }
    Ok(creds)
}

fn read(file: &Path, target: &str) -> Result<AuthFile> {
    let bad = |why: String| Error::Credentials {
        target: target.to_owned(),
        tried: file.display().to_string(),
        why,
    };
    let text = diskimg::input_file::read_bounded_string(file, AUTH_FILE_LIMIT, "an auth file")
        .map_err(|e| bad(e.to_string()))?;
    // serde_json's message quotes no input value, only positions and expectations.
    serde_json::from_str(&text).map_err(|e| {
        bad(format!(
            "not an auth file (line {}, column {})",
            e.line(),
            e.column()
        ))
    })
}

fn decode(entry: &AuthEntry, file: &Path, target: &str) -> Result<Found> {
    let bad = |why: &str| Error::Credentials {
        target: target.to_owned(),
        tried: file.display().to_string(),
        why: why.to_owned(),
    };
    let identity_token = Secret::new(entry.identitytoken.clone().unwrap_or_default());
    let (user, password) = match (&entry.auth, &entry.username, &entry.password) {
        (Some(auth), _, _) if !auth.is_empty() => {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| bad("the entry's auth is not base64"))?;
            let text =
                String::from_utf8(raw).map_err(|_| bad("the entry's auth is not UTF-8 text"))?;
            let (u, p) = text
                .split_once(':')
                .ok_or_else(|| bad("the entry's auth is not user:password"))?;
            (Secret::new(u), Secret::new(p))
        }
        (_, Some(u), Some(p)) => (Secret::new(u.clone()), Secret::new(p.clone())),
        _ if !identity_token.is_empty() => (Secret::default(), Secret::default()),
        _ => return Err(bad("the entry has neither auth nor identitytoken")),
    };
    Ok(Found {
        file: file.to_owned(),
        user,
        password,
        identity_token,
    })
}

/// `Basic base64(user:password)`.
pub fn basic(found: &Found) -> Secret {
    Secret::new(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            found.user.expose(),
            found.password.expose()
        ))
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn the_first_file_with_an_entry_wins_and_keys_are_normalized() {
        let d = tempfile::tempdir().unwrap();
        let enc = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let a = write(
            d.path(),
            "a.json",
            r#"{"auths":{"other:5000":{"auth":"eDp5"}}}"#,
        );
        let b = write(
            d.path(),
            "b.json",
            &format!(
                r#"{{"auths":{{"https://reg:5000/v1/":{{"auth":"{}"}},"reg:5000/team":{{"auth":"{}"}}}}}}"#,
                enc("u1:p1"),
                enc("u2:p2:x")
            ),
        );
        let missing = d.path().join("missing.json");
        let files = [missing.clone(), a, b.clone()];
        let c = lookup(&files, "reg:5000", "team/img", "oci:x").unwrap();
        let f = c.found.unwrap();
        assert_eq!((f.user.expose(), f.password.expose()), ("u2", "p2:x"));
        assert_eq!(f.file, b);
        let c = lookup(&files, "reg:5000", "solo", "oci:x").unwrap();
        assert_eq!(c.found.unwrap().user.expose(), "u1");
        let c = lookup(&files, "nowhere:1", "r", "oci:x").unwrap();
        assert!(c.found.is_none());
        assert!(c.tried_text().contains("missing.json"));
    }

    #[test]
    fn the_files_follow_the_containers_and_docker_order() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        let all = auth_files_from(env(&[
            ("REGISTRY_AUTH_FILE", "/a.json"),
            ("XDG_RUNTIME_DIR", "/run/user/1"),
            ("XDG_CONFIG_HOME", "/cfg"),
            ("DOCKER_CONFIG", "/dk"),
            ("HOME", "/home/u"),
        ]));
        let want: Vec<PathBuf> = [
            "/a.json",
            "/run/user/1/containers/auth.json",
            "/cfg/containers/auth.json",
            "/dk/config.json",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(all, want);
        let home = auth_files_from(env(&[("HOME", "/home/u"), ("REGISTRY_AUTH_FILE", "")]));
        let want: Vec<PathBuf> = [
            "/home/u/.config/containers/auth.json",
            "/home/u/.docker/config.json",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(home, want);
    }

    #[test]
    fn a_bad_entry_names_the_file_and_not_the_value() {
        let d = tempfile::tempdir().unwrap();
        let f = write(
            d.path(),
            "c.json",
            r#"{"auths":{"reg":{"auth":"U0VDUkVULW5vY29sb24="}}}"#,
        );
        let e = lookup(&[f], "reg", "r", "oci:reg/r")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("c.json") && e.contains("not user:password"),
            "{e}"
        );
        assert!(!e.contains("SECRET") && !e.contains("U0VDUkVU"), "{e}");
    }
}
