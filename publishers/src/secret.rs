//! Credentials in memory: a [`Secret`] prints as `<redacted>` whatever formats it, and
//! [`scrub`] removes known secrets from text a service sent back before it goes into an error.
//! URLs that carry a credential (an Azure SAS) are shown by [`without_query`].

use std::fmt;

/// A credential's value. `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// `text` with every non-empty secret replaced by `<redacted>` (a service may echo a token or
/// a signature back in an error body).
pub fn scrub(text: &str, secrets: &[&Secret]) -> String {
    let mut out = text.to_owned();
    for s in secrets {
        if !s.is_empty() {
            out = out.replace(s.expose(), "<redacted>");
        }
    }
    out
}

/// `url` without its query string and fragment (an Azure SAS is the query).
pub fn without_query(url: &str) -> &str {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    &url[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_formats_its_value() {
        let s = Secret::new("hunter2-value");
        assert_eq!(
            format!("{s} {s:?} {:?}", Some(&s)),
            "<redacted> <redacted> Some(<redacted>)"
        );
        assert_eq!(s.expose(), "hunter2-value");
    }

    #[test]
    fn scrub_removes_every_occurrence_and_ignores_empty_secrets() {
        let a = Secret::new("AKIAEXAMPLE");
        let empty = Secret::default();
        assert_eq!(
            scrub("key AKIAEXAMPLE bad; AKIAEXAMPLE", &[&a, &empty]),
            "key <redacted> bad; <redacted>"
        );
    }

    #[test]
    fn without_query_drops_the_sas() {
        assert_eq!(
            without_query("https://a.blob.core.windows.net/c/d.vhd?sv=1&sig=abc"),
            "https://a.blob.core.windows.net/c/d.vhd"
        );
        assert_eq!(without_query("http://h/p#x"), "http://h/p");
        assert_eq!(without_query("http://h/p"), "http://h/p");
    }
}
