//! Debian package versions (`[epoch:]upstream[-revision]`) and their ordering, as deb-version(7)
//! defines it and `dpkg --compare-versions` implements it.
//!
//! Parsing follows dpkg: surrounding whitespace is ignored; an empty version, whitespace inside
//! it, an epoch that is not a number (or is larger than dpkg's limit, 2147483647), an empty
//! upstream part and an empty revision after a hyphen are errors. An upstream part that does not
//! start with a digit, and characters outside deb-version(7)'s set, are only warnings in dpkg
//! (it still compares such versions); they are accepted here and compared exactly as dpkg
//! compares them, so that a feed or BOM that dpkg accepts is never refused.

use std::cmp::Ordering;
use std::fmt;

use super::version_error::{Scheme, VersionError};

/// dpkg refuses epochs above `INT_MAX`.
const MAX_EPOCH: u32 = 2_147_483_647;

/// A parsed Debian version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebVersion {
    epoch: u32,
    upstream: String,
    revision: String,
}

impl DebVersion {
    /// Parses `text` the way dpkg does (see the module documentation for what is refused).
    pub fn parse(text: &str) -> Result<Self, VersionError> {
        let err = |reason| Scheme::Debian.refuse(text, reason);
        let s = text.trim();
        if s.is_empty() {
            return Err(err("the version string is empty"));
        }
        if s.chars().any(char::is_whitespace) {
            return Err(err("the version string has embedded spaces"));
        }
        let (epoch, rest) = match s.split_once(':') {
            Some((e, rest)) => {
                if e.is_empty() {
                    return Err(err("the epoch is empty"));
                }
                if !e.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(err("the epoch is not a number"));
                }
                let epoch = e
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n <= MAX_EPOCH)
                    .ok_or_else(|| err("the epoch is too big"))?;
                if rest.is_empty() {
                    return Err(err("nothing after the colon"));
                }
                (epoch, rest)
            }
            None => (0, s),
        };
        let (upstream, revision) = match rest.rsplit_once('-') {
            Some((u, r)) => {
                if r.is_empty() {
                    return Err(err("the revision is empty"));
                }
                (u, r)
            }
            None => (rest, ""),
        };
        if upstream.is_empty() {
            return Err(err("the upstream version is empty"));
        }
        Ok(Self {
            epoch,
            upstream: upstream.to_owned(),
            revision: revision.to_owned(),
        })
    }

    /// The epoch (0 when absent).
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The upstream version.
    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    /// The Debian revision ("" when absent, which orders like "0").
    pub fn revision(&self) -> &str {
        &self.revision
    }
}

impl fmt::Display for DebVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A colon anywhere after the epoch needs the epoch, even 0, to read back the same
        // (found by the `debian_version` fuzz target: a revision with a colon).
        if self.epoch != 0 || self.upstream.contains(':') || self.revision.contains(':') {
            write!(f, "{}:", self.epoch)?;
        }
        f.write_str(&self.upstream)?;
        if !self.revision.is_empty() {
            write!(f, "-{}", self.revision)?;
        }
        Ok(())
    }
}

impl Ord for DebVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| compare_part(&self.upstream, &other.upstream))
            .then_with(|| compare_part(&self.revision, &other.revision))
    }
}

impl PartialOrd for DebVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Compares two version strings, both of which must parse.
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    Ok(DebVersion::parse(a)?.cmp(&DebVersion::parse(b)?))
}

/// The weight of one byte of a non-digit run: the end and digits weigh 0, `~` less than
/// anything (even the end), letters their code, everything else after all letters.
fn weight(byte: Option<u8>) -> i32 {
    match byte {
        None => 0,
        Some(b) if b.is_ascii_digit() => 0,
        Some(b'~') => -1,
        Some(b) if b.is_ascii_alphabetic() => i32::from(b),
        Some(b) => i32::from(b) + 256,
    }
}

fn is_digit(byte: Option<u8>) -> bool {
    byte.is_some_and(|b| b.is_ascii_digit())
}

/// dpkg's `verrevcmp`: alternating non-digit runs (by [`weight`]) and digit runs (numerically,
/// of any length).
fn compare_part(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        while (i < a.len() && !is_digit(a.get(i).copied()))
            || (j < b.len() && !is_digit(b.get(j).copied()))
        {
            let (wa, wb) = (weight(a.get(i).copied()), weight(b.get(j).copied()));
            if wa != wb {
                return wa.cmp(&wb);
            }
            i += 1;
            j += 1;
        }
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while is_digit(a.get(i).copied()) && is_digit(b.get(j).copied()) {
            if first_diff == Ordering::Equal {
                first_diff = a.get(i).cmp(&b.get(j));
            }
            i += 1;
            j += 1;
        }
        if is_digit(a.get(i).copied()) {
            return Ordering::Greater;
        }
        if is_digit(b.get(j).copied()) {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// How long one `dpkg --compare-versions` may take (it answers in milliseconds).
    const DPKG_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

    /// What `dpkg --compare-versions` says about `a` and `b`, or `None` without dpkg.
    fn dpkg(a: &str, b: &str) -> Option<Ordering> {
        let run = |op: &str| {
            child_process::Command::new("dpkg", DPKG_TIMEOUT)
                .args(["--compare-versions", a, op, b])
                .run_status()
                .ok()
                .map(|out| out.status.success())
        };
        if run("lt")? {
            Some(Ordering::Less)
        } else if run("gt")? {
            Some(Ordering::Greater)
        } else {
            Some(Ordering::Equal)
        }
    }

    const EDGES: &[(&str, &str, Ordering)] = &[
        ("1.0~rc1", "1.0", Ordering::Less),
        ("1.0", "1.0+b1", Ordering::Less),
        ("1:0.9", "2.0", Ordering::Greater),
        ("1.0-1", "1.0-1~bpo", Ordering::Greater),
        ("1.0-1~bpo11+1", "1.0-1", Ordering::Less),
        ("1.0a", "1.0+", Ordering::Less),
        ("1.0.0", "1.0", Ordering::Greater),
        ("1.0", "1.00", Ordering::Equal),
        ("1.001", "1.1", Ordering::Equal),
        ("0:1.0", "1.0", Ordering::Equal),
        ("1.0", "1.0-0", Ordering::Equal),
        ("1.0~~", "1.0~", Ordering::Less),
        ("1.0~~a", "1.0~~", Ordering::Greater),
        ("1.0~", "1.0", Ordering::Less),
        ("1.0", "1.0a", Ordering::Less),
        ("1.0a", "1.0A", Ordering::Greater),
        ("1.0-1", "1.0-1.1", Ordering::Less),
        ("2.30-1+deb12u1", "2.30-1", Ordering::Greater),
        ("1.1.5+ds1-1+deb12u1", "1.1.5+ds1-1", Ordering::Greater),
        (
            "123456789012345678901234567890",
            "123456789012345678901234567891",
            Ordering::Less,
        ),
        (
            "99999999999999999999999",
            "100000000000000000000000",
            Ordering::Less,
        ),
        ("000000000000000000000001", "1", Ordering::Equal),
        ("1:1.0", "2.0", Ordering::Greater),
        ("1.2-3-4", "1.2-3-3", Ordering::Greater),
        ("1.0+dfsg-1", "1.0-1", Ordering::Greater),
        ("7.6p2-4", "7.6-0", Ordering::Greater),
        ("1.0.", "1.0", Ordering::Greater),
        ("a", "1", Ordering::Greater),
    ];

    #[test]
    fn edge_cases_order_as_dpkg_says() {
        let have_dpkg = dpkg("1", "2").is_some();
        for &(a, b, want) in EDGES {
            assert_eq!(compare(a, b).unwrap(), want, "{a} vs {b}");
            assert_eq!(compare(b, a).unwrap(), want.reverse(), "{b} vs {a}");
            if have_dpkg {
                assert_eq!(dpkg(a, b), Some(want), "dpkg: {a} vs {b}");
            }
        }
    }

    #[test]
    fn invalid_versions_are_refused_with_a_reason() {
        for (v, reason) in [
            ("", "empty"),
            ("   ", "empty"),
            ("1.0 2", "spaces"),
            (":1.0", "epoch is empty"),
            ("x:1.0", "not a number"),
            ("-1:1.0", "not a number"),
            ("99999999999:1.0", "too big"),
            ("1:", "nothing after the colon"),
            ("1.0-", "revision is empty"),
            ("-1", "upstream version is empty"),
        ] {
            let e = DebVersion::parse(v).unwrap_err();
            assert!(e.to_string().contains(reason), "{v:?}: {e}");
        }
        assert_eq!(
            DebVersion::parse(" 1:2.0-3 ").unwrap().to_string(),
            "1:2.0-3"
        );
    }

    fn version() -> impl Strategy<Value = String> {
        (
            prop::option::of(0u32..3),
            "[0-9][0-9a-z.+~]{0,6}",
            prop::option::of("[0-9a-z+~.]{1,4}"),
        )
            .prop_map(|(e, u, r)| {
                let mut s = e.map(|e| format!("{e}:")).unwrap_or_default();
                s.push_str(&u);
                if let Some(r) = r {
                    s.push('-');
                    s.push_str(&r);
                }
                s
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
        #[test]
        fn random_versions_order_as_dpkg_says(a in version(), b in version()) {
            let ours = compare(&a, &b).unwrap();
            if let Some(theirs) = dpkg(&a, &b) {
                prop_assert_eq!(ours, theirs, "{} vs {}", a, b);
            }
            prop_assert_eq!(compare(&b, &a).unwrap(), ours.reverse());
        }
    }
}
