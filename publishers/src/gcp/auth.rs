//! Google application default credentials (ADC), from the standard places only:
//! `GOOGLE_APPLICATION_CREDENTIALS` (a service-account key file, an external-account file for
//! workload identity federation, or gcloud's authorized-user file), else gcloud's well-known
//! `~/.config/gcloud/application_default_credentials.json`, else the metadata server (on
//! Google Cloud). The access tokens come from Google's official `google-cloud-auth` crate
//! (a service-account key signs its own JWT locally; the others exchange tokens with Google).
//!
//! Nothing read here is ever formatted: an error names the source (the variable's name and the
//! file's path), never the file's content; the token is a [`Secret`].

use std::path::{Path, PathBuf};

use google_cloud_auth::credentials::{
    AccessTokenCredentials, external_account, mds, service_account, user_account,
};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::secret::{Secret, scrub};

/// The variable naming the credentials file.
pub const CREDENTIALS_ENV: &str = "GOOGLE_APPLICATION_CREDENTIALS";
/// The variable naming the project.
pub const PROJECT_ENV: &str = "GOOGLE_CLOUD_PROJECT";
/// The scope every call here needs (Cloud Storage and Compute Engine).
const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// Largest credentials file read (they are a few KiB).
const FILE_LIMIT: u64 = 1 << 20;
/// Fields of a credentials file that are secret (scrubbed from any error text).
const SECRET_FIELDS: &[&str] = &[
    "private_key",
    "private_key_id",
    "client_secret",
    "refresh_token",
];

/// Where the credentials come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialsSource {
    /// `GOOGLE_APPLICATION_CREDENTIALS=PATH`.
    Env(PathBuf),
    /// gcloud's `application_default_credentials.json` (`gcloud auth application-default login`).
    WellKnown(PathBuf),
    /// No file: the metadata server of the VM or CI runner on Google Cloud.
    MetadataServer,
}

impl CredentialsSource {
    /// The standard order: the variable, else gcloud's well-known file when it exists, else
    /// the metadata server.
    pub fn from_env() -> Self {
        if let Some(path) = std::env::var_os(CREDENTIALS_ENV).filter(|v| !v.is_empty()) {
            return CredentialsSource::Env(PathBuf::from(path));
        }
        match well_known() {
            Some(path) if path.is_file() => CredentialsSource::WellKnown(path),
            _ => CredentialsSource::MetadataServer,
        }
    }

    /// The source in words, for errors: the variable's name and the path, never the content.
    pub fn describe(&self) -> String {
        match self {
            CredentialsSource::Env(p) => format!("{CREDENTIALS_ENV}={}", p.display()),
            CredentialsSource::WellKnown(p) => {
                format!("gcloud's application default credentials {}", p.display())
            }
            CredentialsSource::MetadataServer => format!(
                "the metadata server ({CREDENTIALS_ENV} unset, no {})",
                well_known().map_or_else(
                    || "~/.config/gcloud/application_default_credentials.json".to_owned(),
                    |p| p.display().to_string()
                )
            ),
        }
    }

    fn file(&self) -> Option<&Path> {
        match self {
            CredentialsSource::Env(p) | CredentialsSource::WellKnown(p) => Some(p),
            CredentialsSource::MetadataServer => None,
        }
    }
}

/// gcloud's well-known ADC file: `$CLOUDSDK_CONFIG/application_default_credentials.json`, else
/// `~/.config/gcloud/application_default_credentials.json`.
fn well_known() -> Option<PathBuf> {
    const FILE: &str = "application_default_credentials.json";
    if let Some(dir) = std::env::var_os("CLOUDSDK_CONFIG").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(dir).join(FILE));
    }
    let home = std::env::var_os("HOME").filter(|v| !v.is_empty())?;
    Some(PathBuf::from(home).join(".config/gcloud").join(FILE))
}

/// Loaded credentials: tokens on demand, and the project the file names.
pub struct Auth {
    source: CredentialsSource,
    credentials: AccessTokenCredentials,
    runtime: tokio::runtime::Runtime,
    /// `project_id`, else `quota_project_id`, of the file.
    pub file_project: Option<String>,
    /// Secret values of the file, scrubbed from any error text.
    secrets: Vec<Secret>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("source", &self.source)
            .field("file_project", &self.file_project)
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// Loads the credentials of `source`; an error names the source and what is wrong.
    pub fn load(source: &CredentialsSource) -> Result<Auth> {
        let fail = |why: String| Error::Credentials {
            target: "gcp".into(),
            tried: source.describe(),
            why,
        };
        // reqwest (inside google-cloud-auth) and the key signer need a rustls provider; the
        // workspace's is ring (as ureq's). Already installed is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| fail(format!("cannot start the token runtime: {e}")))?;
        let Some(path) = source.file() else {
            let credentials = runtime
                .block_on(async {
                    mds::Builder::default()
                        .with_scopes([SCOPE])
                        .build_access_token_credentials()
                })
                .map_err(|e| fail(e.to_string()))?;
            return Ok(Auth {
                source: source.clone(),
                credentials,
                runtime,
                file_project: None,
                secrets: Vec::new(),
            });
        };
        let text = diskimg::input_file::read_bounded_string(path, FILE_LIMIT, "a credentials file")
            .map_err(|e| {
                fail(format!(
                    "cannot read it: {}",
                    io_reason(&e.to_string(), path)
                ))
            })?;
        let json: Value = serde_json::from_str(&text).map_err(|e| {
            fail(format!(
                "not JSON (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        let secrets: Vec<Secret> = SECRET_FIELDS
            .iter()
            .filter_map(|k| json.get(*k).and_then(Value::as_str))
            .filter(|v| !v.is_empty())
            .map(Secret::new)
            .collect();
        let field = |k: &str| {
            json.get(k)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let file_project = field("project_id").or_else(|| field("quota_project_id"));
        let kind = field("type").unwrap_or_default();
        let built = runtime.block_on(async {
            match kind.as_str() {
                "service_account" => Ok(service_account::Builder::new(json)
                    .with_access_specifier(service_account::AccessSpecifier::from_scopes([
                        SCOPE,
                    ]))
                    .build_access_token_credentials()),
                "external_account" => Ok(external_account::Builder::new(json)
                    .with_scopes([SCOPE])
                    .build_access_token_credentials()),
                "authorized_user" => Ok(user_account::Builder::new(json)
                    .with_scopes([SCOPE])
                    .build_access_token_credentials()),
                "" => Err("it has no \"type\"".to_owned()),
                other => Err(format!(
                    "type {other:?} is not supported here (service_account, external_account, authorized_user are)"
                )),
            }
        });
        let refs: Vec<&Secret> = secrets.iter().collect();
        let credentials = built
            .map_err(&fail)?
            .map_err(|e| fail(scrub(&e.to_string(), &refs)))?;
        Ok(Auth {
            source: source.clone(),
            credentials,
            runtime,
            file_project,
            secrets,
        })
    }

    /// The source, in words.
    pub fn describe(&self) -> String {
        self.source.describe()
    }

    /// A fresh (or cached, still valid) access token.
    pub fn token(&self) -> Result<Secret> {
        let got = self
            .runtime
            .block_on(async { self.credentials.access_token().await });
        match got {
            Ok(t) => Ok(Secret::new(t.token)),
            Err(e) => {
                let refs: Vec<&Secret> = self.secrets.iter().collect();
                Err(Error::Credentials {
                    target: "gcp".into(),
                    tried: self.describe(),
                    why: format!("no access token: {}", scrub(&e.to_string(), &refs)),
                })
            }
        }
    }
}

/// An I/O error's text without repeating the path (the source already names it).
fn io_reason(text: &str, path: &Path) -> String {
    text.replace(&path.display().to_string(), "")
        .trim_start_matches([':', ' '])
        .to_owned()
}

/// The project: `GOOGLE_CLOUD_PROJECT` (given as `env_project`), else the credentials file's
/// `project_id` or `quota_project_id`. None → an error naming what was tried.
pub fn project(env_project: Option<&str>, auth: &Auth) -> Result<String> {
    if let Some(p) = env_project.filter(|p| !p.is_empty()) {
        return Ok(p.to_owned());
    }
    auth.file_project.clone().ok_or_else(|| Error::Credentials {
        target: "gcp".into(),
        tried: format!(
            "{PROJECT_ENV}, then project_id and quota_project_id of {}",
            auth.describe()
        ),
        why: format!("no project: set {PROJECT_ENV}"),
    })
}
