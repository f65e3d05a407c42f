//! Versions of upstream components (`v1.28.3`, `1.7.13`, `v1.2.0-rc.1`), ordered like semantic
//! versions: a leading `v` and build metadata (`+…`) are ignored, the release is a dot-separated
//! list of numbers (of any length; missing trailing parts count as 0, so `1.2` = `1.2.0`), and a
//! pre-release (`-rc.1`) sorts before its release, its identifiers compared as semver says
//! (numbers numerically and before words, words by their bytes).

use std::cmp::Ordering;

use super::version_error::{Scheme, VersionError};

/// A parsed upstream version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamVersion {
    release: Vec<String>,
    pre: Vec<String>,
}

impl UpstreamVersion {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Self, VersionError> {
        let err = |reason| Scheme::Upstream.refuse(text, reason);
        let s = text.trim();
        let s = s.strip_prefix('v').unwrap_or(s);
        let s = s.split_once('+').map_or(s, |(v, _build)| v);
        let (release, pre) = match s.split_once('-') {
            Some((r, p)) => (r, Some(p)),
            None => (s, None),
        };
        if release.is_empty() {
            return Err(err("no release number"));
        }
        let mut parts = Vec::new();
        for part in release.split('.') {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err("the release is not dot-separated numbers"));
            }
            parts.push(strip_zeros(part).to_owned());
        }
        while parts.last().is_some_and(|p| p.is_empty()) && parts.len() > 1 {
            parts.pop();
        }
        let pre = match pre {
            None => Vec::new(),
            Some(p) => {
                let ids: Vec<String> = p.split('.').map(str::to_owned).collect();
                if ids.iter().any(String::is_empty) {
                    return Err(err("an empty pre-release identifier"));
                }
                ids
            }
        };
        Ok(Self {
            release: parts,
            pre,
        })
    }
}

fn strip_zeros(digits: &str) -> &str {
    digits.trim_start_matches('0')
}

/// Compares two runs of ASCII digits (leading zeros already stripped) numerically.
fn compare_numbers(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn compare_identifier(a: &str, b: &str) -> Ordering {
    let numeric = |s: &str| s.bytes().all(|c| c.is_ascii_digit());
    match (numeric(a), numeric(b)) {
        (true, true) => compare_numbers(strip_zeros(a), strip_zeros(b)),
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.cmp(b),
    }
}

impl Ord for UpstreamVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        let n = self.release.len().max(other.release.len());
        for k in 0..n {
            let a = self.release.get(k).map_or("", String::as_str);
            let b = other.release.get(k).map_or("", String::as_str);
            let o = compare_numbers(a, b);
            if o != Ordering::Equal {
                return o;
            }
        }
        match (self.pre.is_empty(), other.pre.is_empty()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => {
                for (a, b) in self.pre.iter().zip(&other.pre) {
                    let o = compare_identifier(a, b);
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                self.pre.len().cmp(&other.pre.len())
            }
        }
    }
}

impl PartialOrd for UpstreamVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(a: &str, b: &str) -> Ordering {
        UpstreamVersion::parse(a)
            .unwrap()
            .cmp(&UpstreamVersion::parse(b).unwrap())
    }

    #[test]
    fn orders_like_semver_with_a_leading_v() {
        assert_eq!(cmp("v1.28.3", "1.28.3"), Ordering::Equal);
        assert_eq!(cmp("1.2", "1.2.0"), Ordering::Equal);
        assert_eq!(cmp("1.10.0", "1.9.9"), Ordering::Greater);
        assert_eq!(cmp("1.2.0-rc.1", "1.2.0"), Ordering::Less);
        assert_eq!(cmp("1.2.0-rc.2", "1.2.0-rc.10"), Ordering::Less);
        assert_eq!(cmp("1.2.0-alpha", "1.2.0-1"), Ordering::Greater);
        assert_eq!(cmp("1.2.0-rc.1", "1.2.0-rc.1.1"), Ordering::Less);
        assert_eq!(cmp("1.2.0+build5", "1.2.0"), Ordering::Equal);
        assert_eq!(cmp("0", "0.0.1"), Ordering::Less);
        assert_eq!(
            cmp("1.99999999999999999999999", "1.100000000000000000000000"),
            Ordering::Less
        );
    }

    #[test]
    fn refuses_what_is_not_a_version() {
        for v in ["", "v", "x1.0", "1..2", "1.0-", "1.0-rc..1", "abc"] {
            assert!(UpstreamVersion::parse(v).is_err(), "{v:?}");
        }
    }
}
