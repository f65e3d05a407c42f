//! dpkg version strings: `[epoch:]upstream[-revision]`, compared as dpkg does.

use std::cmp::Ordering;

/// The three parts of a version; missing epoch is `0`, missing revision is `""`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Parts<'a> {
    epoch: u64,
    upstream: &'a str,
    revision: &'a str,
}

/// Splits without validating: an unparsable epoch counts as 0 (use [`check`] to refuse it).
fn split(v: &str) -> Parts<'_> {
    let v = v.trim();
    let (epoch, rest) = match v.split_once(':') {
        Some((e, rest)) if e.bytes().all(|b| b.is_ascii_digit()) => (e.parse().unwrap_or(0), rest),
        _ => (0, v),
    };
    let (upstream, revision) = rest.rsplit_once('-').unwrap_or((rest, ""));
    Parts {
        epoch,
        upstream,
        revision,
    }
}

/// Compares two versions with dpkg's algorithm: epochs numerically, then upstream, then
/// revision, each by alternating non-digit runs (letters sort before non-letters, `~` before
/// everything, even the end) and digit runs compared as numbers.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (a, b) = (split(a), split(b));
    a.epoch
        .cmp(&b.epoch)
        .then_with(|| compare_part(a.upstream, b.upstream))
        .then_with(|| compare_part(a.revision, b.revision))
}

/// dpkg's weight of a byte in a non-digit run; `None` is the end of the run.
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c) + 256,
    }
}

fn compare_part(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        // Non-digit run.
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let ac = order(a.get(i).copied().filter(|c| !c.is_ascii_digit()));
            let bc = order(b.get(j).copied().filter(|c| !c.is_ascii_digit()));
            if ac != bc {
                return ac.cmp(&bc);
            }
            if i < a.len() && !a[i].is_ascii_digit() {
                i += 1;
            }
            if j < b.len() && !b[j].is_ascii_digit() {
                j += 1;
            }
        }
        // Digit run, compared as a number: skip leading zeros, then longer wins, then lexical.
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let a_end = i + a[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        let b_end = j + b[j..].iter().take_while(|c| c.is_ascii_digit()).count();
        let by_number = (a_end - i)
            .cmp(&(b_end - j))
            .then_with(|| a[i..a_end].cmp(&b[j..b_end]));
        if by_number != Ordering::Equal {
            return by_number;
        }
        i = a_end;
        j = b_end;
    }
    Ordering::Equal
}

/// Checks `v` is a version dpkg accepts without error or warning: not empty, no spaces, a
/// numeric epoch with something after the colon, an upstream part starting with a digit, only
/// `A-Za-z0-9.+~-:` in the upstream part and `A-Za-z0-9.+~` in the revision, no empty revision
/// after a `-`.
pub fn check(v: &str) -> Result<(), String> {
    if v.is_empty() {
        return Err("version string is empty".into());
    }
    if v.contains(|c: char| c.is_whitespace()) {
        return Err(format!("version {v:?} has embedded spaces"));
    }
    let rest = match v.split_once(':') {
        Some((epoch, rest)) => {
            if epoch.is_empty() {
                return Err(format!("epoch in version {v:?} is empty"));
            }
            if !epoch.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("epoch in version {v:?} is not a number"));
            }
            if epoch.parse::<i32>().is_err() {
                return Err(format!("epoch in version {v:?} is too big"));
            }
            if rest.is_empty() {
                return Err(format!("nothing after the colon in version {v:?}"));
            }
            rest
        }
        None => v,
    };
    let (upstream, revision) = match rest.rsplit_once('-') {
        Some((_, "")) => return Err(format!("revision in version {v:?} is empty")),
        Some((u, r)) => (u, Some(r)),
        None => (rest, None),
    };
    if upstream.is_empty() {
        return Err(format!("upstream part of version {v:?} is empty"));
    }
    if !upstream.as_bytes()[0].is_ascii_digit() {
        return Err(format!("version {v:?} does not start with a digit"));
    }
    let upstream_ok = |c: char| c.is_ascii_alphanumeric() || ".+~-:".contains(c);
    if let Some(c) = upstream.chars().find(|&c| !upstream_ok(c)) {
        return Err(format!("invalid character {c:?} in version {v:?}"));
    }
    let revision_ok = |c: char| c.is_ascii_alphanumeric() || ".+~".contains(c);
    if let Some(c) = revision.and_then(|r| r.chars().find(|&c| !revision_ok(c))) {
        return Err(format!(
            "invalid character {c:?} in the revision of version {v:?}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::{Equal, Greater, Less};

    /// Cases in the spirit of dpkg's `t-version.c` and `deb-version(7)`, written from the
    /// rules, not copied.
    #[test]
    fn compares_like_dpkg() {
        let cases = [
            ("1.0", "1.0", Equal),
            ("1.0", "1.0-0", Equal),
            ("0:1.0", "1.0", Equal),
            ("1:0.1", "2.0", Greater),
            ("1.0~rc1", "1.0", Less),
            ("1.0~~", "1.0~", Less),
            ("1.0~", "1.0", Less),
            ("1.0", "1.0+b1", Less),
            ("1.0a", "1.0", Greater),
            ("1.0a", "1.0.", Less),
            ("1.0-1", "1.0-2", Less),
            ("1.0-10", "1.0-9", Greater),
            ("1.002", "1.2", Equal),
            ("2.30-1", "2.3-1", Greater),
            ("1.2.3", "1.2.3.0", Less),
            ("1:1.2", "0:9.9", Greater),
            ("1.0-1~bpo1", "1.0-1", Less),
            ("7.88.1-10+deb12u8", "7.88.1-10+deb12u12", Less),
            ("a", "b", Less),
            ("1.0-a", "1.0-+", Less),
            ("1.18.1+dfsg1-1", "1.18.1-1", Greater),
        ];
        for (a, b, want) in cases {
            assert_eq!(compare(a, b), want, "{a} vs {b}");
            assert_eq!(compare(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn checks_like_dpkg() {
        for good in ["1", "1:2.3-4", "2.3-4-5", "1.0~rc1+dfsg", "0:1-a.b+c~d"] {
            assert_eq!(check(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "1 2",
            ":1",
            "a:1",
            "1:",
            "1.0-",
            "-1",
            "a1",
            "1_0",
            "1.0-a_b",
            "99999999999:1",
        ] {
            assert!(check(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
