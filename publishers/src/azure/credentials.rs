//! The blob endpoint and the SAS, from the Azure CLI's standard environment variables and
//! nowhere else: `AZURE_STORAGE_CONNECTION_STRING` (`BlobEndpoint=…;SharedAccessSignature=…`),
//! else `AZURE_STORAGE_ACCOUNT` with `AZURE_STORAGE_SAS_TOKEN`. The endpoint is the SAS URL's
//! own host, so the same command works against Azure and against Azurite. Only a SAS is used:
//! an account key in the connection string is refused, never read.

use crate::error::{Error, Result};
use crate::secret::Secret;

/// The connection string variable.
pub const CONNECTION_STRING: &str = "AZURE_STORAGE_CONNECTION_STRING";
/// The account name variable.
pub const ACCOUNT: &str = "AZURE_STORAGE_ACCOUNT";
/// The SAS token variable.
pub const SAS_TOKEN: &str = "AZURE_STORAGE_SAS_TOKEN";

/// Where blobs go and the SAS that allows it.
#[derive(Debug, Clone)]
pub struct Access {
    /// The blob service endpoint without query or trailing slash:
    /// `https://ACCOUNT.blob.core.windows.net`, `http://127.0.0.1:10000/devstoreaccount1`.
    pub endpoint: String,
    /// The SAS query (without the leading `?`).
    pub sas: Secret,
    /// The variable(s) it came from, named in errors (never their values).
    pub source: String,
}

impl Access {
    /// From the process environment.
    pub fn from_env() -> Result<Access> {
        Access::from_lookup(|name| std::env::var(name).ok())
    }

    /// From `lookup` (the environment, or a test's map); empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Access> {
        let lookup = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        if let Some(cs) = lookup(CONNECTION_STRING) {
            return from_connection_string(&cs);
        }
        match (lookup(ACCOUNT), lookup(SAS_TOKEN)) {
            (Some(account), Some(sas)) => {
                let account = account.trim();
                if account.is_empty()
                    || !account
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                {
                    return Err(refused(
                        ACCOUNT,
                        "is not a storage account name (3-24 lowercase letters and digits)",
                    ));
                }
                Ok(Access {
                    endpoint: format!("https://{account}.blob.core.windows.net"),
                    sas: sas_of(&sas, &format!("{ACCOUNT} with {SAS_TOKEN}"))?,
                    source: SAS_TOKEN.to_owned(),
                })
            }
            (Some(_), None) => Err(refused(
                SAS_TOKEN,
                &format!("is not set ({ACCOUNT} is): nodeimg publishes with a SAS only"),
            )),
            _ => Err(refused(
                &format!("{CONNECTION_STRING}, {ACCOUNT} with {SAS_TOKEN}"),
                "none is set: set AZURE_STORAGE_CONNECTION_STRING=\"BlobEndpoint=https://ACCOUNT.blob.core.windows.net;SharedAccessSignature=SAS\" \
                 or AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_SAS_TOKEN (a SAS with read, create, write and delete on the container)",
            )),
        }
    }

    /// The secrets to scrub from anything a service sends back: the whole SAS and its
    /// signature, encoded and decoded.
    pub fn secrets(&self) -> Vec<Secret> {
        let mut v = vec![self.sas.clone()];
        for pair in self.sas.expose().split('&') {
            if let Some(sig) = pair.strip_prefix("sig=") {
                v.push(Secret::new(sig));
                v.push(Secret::new(percent_decode(sig)));
            }
        }
        v.retain(|s| !s.is_empty());
        v
    }
}

fn refused(tried: &str, why: &str) -> Error {
    Error::Credentials {
        target: "azure".into(),
        tried: tried.to_owned(),
        why: why.to_owned(),
    }
}

/// A SAS token as given (with or without its leading `?`), checked to look like one.
fn sas_of(value: &str, tried: &str) -> Result<Secret> {
    let sas = value.trim().trim_start_matches('?');
    if !sas.split('&').any(|p| p.starts_with("sig=")) {
        return Err(refused(
            tried,
            "the SAS has no signature (sig=): give the SAS token as `az storage container generate-sas` prints it",
        ));
    }
    Ok(Secret::new(sas))
}

fn from_connection_string(cs: &str) -> Result<Access> {
    let mut endpoint = None;
    let mut sas = None;
    let mut account = None;
    let mut protocol = None;
    let mut suffix = None;
    let mut has_key = false;
    for part in cs.split(';') {
        let Some((k, v)) = part.split_once('=') else {
            continue;
        };
        match k.trim() {
            "BlobEndpoint" => endpoint = Some(v.trim().to_owned()),
            "SharedAccessSignature" => sas = Some(v.to_owned()),
            "AccountName" => account = Some(v.trim().to_owned()),
            "DefaultEndpointsProtocol" => protocol = Some(v.trim().to_owned()),
            "EndpointSuffix" => suffix = Some(v.trim().to_owned()),
            "AccountKey" => has_key = true,
            _ => {}
        }
    }
    let Some(sas) = sas else {
        let why = if has_key {
            "has an AccountKey and no SharedAccessSignature: nodeimg publishes with a SAS only, \
             and does not use account keys"
        } else {
            "has no SharedAccessSignature"
        };
        return Err(refused(CONNECTION_STRING, why));
    };
    let endpoint = match (endpoint, account) {
        (Some(e), _) => e,
        (None, Some(a)) => format!(
            "{}://{a}.blob.{}",
            protocol.as_deref().unwrap_or("https"),
            suffix.as_deref().unwrap_or("core.windows.net")
        ),
        (None, None) => {
            return Err(refused(
                CONNECTION_STRING,
                "has neither BlobEndpoint nor AccountName",
            ));
        }
    };
    let endpoint = crate::secret::without_query(&endpoint)
        .trim_end_matches('/')
        .to_owned();
    if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
        return Err(refused(
            CONNECTION_STRING,
            "BlobEndpoint is not an http(s) URL",
        ));
    }
    Ok(Access {
        endpoint,
        sas: sas_of(&sas, CONNECTION_STRING)?,
        source: CONNECTION_STRING.to_owned(),
    })
}

/// `%XX` decoded (for the signature, which a service may echo decoded).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn a_connection_string_gives_the_endpoint_and_the_sas() {
        let a = Access::from_lookup(env(&[(
            CONNECTION_STRING,
            "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1/;SharedAccessSignature=sv=2021-08-06&sig=ab%2Bc%3D",
        )]))
        .unwrap();
        assert_eq!(a.endpoint, "http://127.0.0.1:10000/devstoreaccount1");
        assert_eq!(a.sas.expose(), "sv=2021-08-06&sig=ab%2Bc%3D");
        assert_eq!(a.source, CONNECTION_STRING);
        let secrets: Vec<String> = a.secrets().iter().map(|s| s.expose().to_owned()).collect();
        assert!(secrets.contains(&"ab+c=".to_owned()), "{secrets:?}");
    }

    #[test]
    fn account_and_token_give_the_public_endpoint() {
        let a = Access::from_lookup(env(&[
            (ACCOUNT, "nodeimgci"),
            (SAS_TOKEN, "?sv=2021-08-06&sp=rcwd&sig=xyz"),
        ]))
        .unwrap();
        assert_eq!(a.endpoint, "https://nodeimgci.blob.core.windows.net");
        assert_eq!(a.sas.expose(), "sv=2021-08-06&sp=rcwd&sig=xyz");
    }

    #[test]
    fn missing_or_keyed_credentials_name_the_variables_only() {
        let e = Access::from_lookup(env(&[])).unwrap_err().to_string();
        assert!(
            e.contains(CONNECTION_STRING) && e.contains(ACCOUNT) && e.contains(SAS_TOKEN),
            "{e}"
        );
        let e = Access::from_lookup(env(&[(
            CONNECTION_STRING,
            "AccountName=a;AccountKey=SECRET-KEY-123;EndpointSuffix=core.windows.net",
        )]))
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("SAS only") && !e.contains("SECRET-KEY-123"),
            "{e}"
        );
        let e = Access::from_lookup(env(&[(ACCOUNT, "a"), (SAS_TOKEN, "sv=1&sp=r")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no signature") && !e.contains("sp=r"), "{e}");
    }
}
