//! POSIX sh quoting and the input checks that run before anything is interpolated into a script.
//!
//! Every parameter goes into a script through [`quote`], and is validated first with a narrow
//! allow-list, so a script can neither be broken by a stray quote nor carry a second command.

use crate::error::{Error, Result};

/// Quotes `s` as one POSIX sh word: wrapped in single quotes, each `'` written as `'\''`.
///
/// The result is always quoted (even for "safe" strings) and is inert in sh, dash and bash:
/// no expansion, globbing or word splitting happens inside single quotes. A NUL byte cannot be
/// passed to a program at all; callers validate their inputs before quoting.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Quotes each word with [`quote`] and joins them with single spaces.
pub fn quote_words<I, S>(words: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    words
        .into_iter()
        .map(|w| quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The shape most inputs share: a length in bytes, an allowed first character and an allowed
/// set for every character; each rule broken is its own error reason.
struct Word {
    /// Shortest and longest, in bytes.
    len: (usize, usize),
    len_reason: &'static str,
    first: fn(char) -> bool,
    first_reason: &'static str,
    /// Every character (the first one included) must pass.
    rest: fn(char) -> bool,
    rest_reason: &'static str,
}

impl Word {
    fn check(&self, field: &'static str, value: &str) -> Result<()> {
        let (min, max) = self.len;
        if value.len() < min || value.len() > max {
            return Err(Error::invalid(field, value, self.len_reason));
        }
        if !value.starts_with(self.first) {
            return Err(Error::invalid(field, value, self.first_reason));
        }
        if !value.chars().all(self.rest) {
            return Err(Error::invalid(field, value, self.rest_reason));
        }
        Ok(())
    }
}

/// A login name the seal may delete: `[a-z_][a-z0-9_-]*`, at most 32 bytes, not `root`.
pub fn check_user_name(field: &'static str, name: &str) -> Result<()> {
    Word {
        len: (1, 32),
        len_reason: "must be 1 to 32 characters",
        first: |c| c.is_ascii_lowercase() || c == '_',
        first_reason: "must start with a lower-case letter or '_'",
        rest: |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-',
        rest_reason: "only lower-case letters, digits, '_' and '-' are allowed",
    }
    .check(field, name)?;
    if name == "root" {
        return Err(Error::invalid(field, name, "the seal deletes this user"));
    }
    Ok(())
}

/// An OCI image reference such as `registry.k8s.io/pause:3.10` or `name@sha256:<hex>`:
/// letters, digits and `.`, `_`, `-`, `/`, `:`, `@`; at most 255 bytes; starting with a letter
/// or digit. The same set keeps the reference inert in a `sed` replacement and in TOML quotes.
pub fn check_image_ref(field: &'static str, reference: &str) -> Result<()> {
    Word {
        len: (1, 255),
        len_reason: "must be 1 to 255 characters",
        first: |c| c.is_ascii_alphanumeric(),
        first_reason: "must start with a letter or digit",
        rest: |c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':' | '@'),
        rest_reason: "only letters, digits and . _ - / : @ are allowed",
    }
    .check(field, reference)
}

/// A Debian package name (Debian policy §5.6.1): `[a-z0-9][a-z0-9+.-]+`.
pub fn check_package_name(field: &'static str, name: &str) -> Result<()> {
    Word {
        len: (2, 128),
        len_reason: "must be 2 to 128 characters",
        first: |c| c.is_ascii_lowercase() || c.is_ascii_digit(),
        first_reason: "must start with a lower-case letter or digit",
        rest: |c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '.' | '-'),
        rest_reason: "only lower-case letters, digits and + . - are allowed",
    }
    .check(field, name)
}

/// A sysctl key as written in `/etc/sysctl.d`: `[a-z0-9_]` segments joined by `.` (or `/`),
/// no empty segment.
pub fn check_sysctl_key(field: &'static str, key: &str) -> Result<()> {
    if key.is_empty() || key.len() > 200 {
        return Err(Error::invalid(field, key, "must be 1 to 200 characters"));
    }
    let segments_ok = key.split(['.', '/']).all(|seg| {
        !seg.is_empty()
            && seg
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'))
    });
    if !segments_ok {
        return Err(Error::invalid(
            field,
            key,
            "must be non-empty segments of a-z 0-9 _ - joined by '.'",
        ));
    }
    Ok(())
}

/// A sysctl value: letters, digits, single spaces and `_ . : , -`, no leading or trailing space.
pub fn check_sysctl_value(field: &'static str, value: &str) -> Result<()> {
    if value.is_empty() || value.len() > 200 {
        return Err(Error::invalid(field, value, "must be 1 to 200 characters"));
    }
    if value.starts_with(' ') || value.ends_with(' ') {
        return Err(Error::invalid(
            field,
            value,
            "must not start or end with a space",
        ));
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '_' | '.' | ':' | ',' | '-'))
    {
        return Err(Error::invalid(
            field,
            value,
            "only letters, digits, spaces and _ . : , - are allowed",
        ));
    }
    Ok(())
}

/// A provenance key: `[A-Za-z_][A-Za-z0-9_]*`, at most 64 bytes (an os-release style name).
pub fn check_provenance_key(field: &'static str, key: &str) -> Result<()> {
    Word {
        len: (1, 64),
        len_reason: "must be 1 to 64 characters",
        first: |c| c.is_ascii_alphabetic() || c == '_',
        first_reason: "must start with a letter or '_'",
        rest: |c| c.is_ascii_alphanumeric() || c == '_',
        rest_reason: "only letters, digits and '_' are allowed",
    }
    .check(field, key)
}

/// A provenance value: any text without control characters (so one line), at most 1024 bytes.
pub fn check_provenance_value(field: &'static str, value: &str) -> Result<()> {
    if value.len() > 1024 {
        return Err(Error::invalid(field, value, "must be at most 1024 bytes"));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(
            field,
            value,
            "control characters (newline, tab, NUL …) are not allowed",
        ));
    }
    Ok(())
}

/// A pinned version as written in a spec or lock, e.g. `v1.20.2`, `1.6.20`,
/// `1.20.0-nodeimg-standin`: letters, digits and `. + ~ _ -`, starting with a letter or digit,
/// at most 64 bytes.
pub fn check_version(field: &'static str, version: &str) -> Result<()> {
    Word {
        len: (1, 64),
        len_reason: "must be 1 to 64 characters",
        first: |c| c.is_ascii_alphanumeric(),
        first_reason: "must start with a letter or digit",
        rest: |c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '~' | '_' | '-'),
        rest_reason: "only letters, digits and . + ~ _ - are allowed",
    }
    .check(field, version)
}

/// A check or unit name: `[A-Za-z0-9]` first, then letters, digits and `. _ - @ :`, at most
/// 128 bytes (`sysctl-net.ipv4.ip_forward`, `kubelet.service`, `getty@ttyS0.service`).
pub fn check_name(field: &'static str, name: &str) -> Result<()> {
    Word {
        len: (1, 128),
        len_reason: "must be 1 to 128 characters",
        first: |c| c.is_ascii_alphanumeric(),
        first_reason: "must start with a letter or digit",
        rest: |c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | ':'),
        rest_reason: "only letters, digits and . _ - @ : are allowed",
    }
    .check(field, name)
}

/// A machine id as in `/etc/machine-id`: 32 lower-case hex digits.
pub fn check_machine_id(field: &'static str, id: &str) -> Result<()> {
    if id.len() != 32 || !id.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')) {
        return Err(Error::invalid(
            field,
            id,
            "must be 32 lower-case hex digits",
        ));
    }
    Ok(())
}

/// An SSH key fingerprint as `ssh-keygen -l` prints it: `SHA256:` then 43 base64 characters.
pub fn check_ssh_fingerprint(field: &'static str, fp: &str) -> Result<()> {
    let ok = fp.strip_prefix("SHA256:").is_some_and(|b64| {
        b64.len() == 43
            && b64
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/')
    });
    if !ok {
        return Err(Error::invalid(
            field,
            fp,
            "must be SHA256: followed by 43 base64 characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_wraps_and_escapes_single_quotes() {
        assert_eq!(quote(""), "''");
        assert_eq!(quote("abc"), "'abc'");
        assert_eq!(quote("a'b"), r"'a'\''b'");
        assert_eq!(quote("$(x) `y` \"z\""), "'$(x) `y` \"z\"'");
        assert_eq!(quote_words(["a", "b c"]), "'a' 'b c'");
    }

    #[test]
    fn user_names() {
        assert!(check_user_name("build user", "builder").is_ok());
        assert!(check_user_name("build user", "_svc-1").is_ok());
        for bad in [
            "",
            "root",
            "Builder",
            "1abc",
            "a b",
            "a;b",
            "a'b",
            &"a".repeat(33),
        ] {
            let err = check_user_name("build user", bad).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::InvalidInput {
                        field: "build user",
                        ..
                    }
                ),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn image_refs() {
        for ok in [
            "registry.k8s.io/pause:3.10",
            "k8s.gcr.io/pause:3.2",
            "localhost:5000/a/b@sha256:0123abcd",
        ] {
            assert!(check_image_ref("pause image", ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "-x", "/abs", "a b", "a|b", "a&b", "a\"b", "a\\b", "a\nb", "a'b",
        ] {
            let err = check_image_ref("pause image", bad).unwrap_err();
            assert_eq!(
                err.to_string().split(' ').take(3).collect::<Vec<_>>(),
                ["invalid", "pause", "image"],
                "{bad:?}"
            );
        }
    }

    #[test]
    fn package_names() {
        for ok in [
            "kubelet",
            "libstdc++6",
            "containernetworking-plugins",
            "g++-12",
        ] {
            assert!(check_package_name("held package", ok).is_ok(), "{ok}");
        }
        for bad in ["k", "Kubelet", "-x", "a b", "a;b", "kubelet:amd64"] {
            assert!(check_package_name("held package", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sysctls() {
        assert!(check_sysctl_key("sysctl key", "net.ipv4.ip_forward").is_ok());
        assert!(check_sysctl_key("sysctl key", "net/ipv4/conf/eth0/rp_filter").is_ok());
        for bad in ["", "net..x", ".net", "net.x=1", "net x", "NET.x"] {
            assert!(check_sysctl_key("sysctl key", bad).is_err(), "{bad}");
        }
        assert!(check_sysctl_value("sysctl value", "1").is_ok());
        assert!(check_sysctl_value("sysctl value", "4096 87380 6291456").is_ok());
        for bad in ["", " 1", "1 ", "1\n2", "$(x)", "1;2"] {
            assert!(check_sysctl_value("sysctl value", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn provenance() {
        assert!(check_provenance_key("provenance key", "NODEIMG_VERSION").is_ok());
        for bad in ["", "1A", "A-B", "A=B", "A B"] {
            assert!(
                check_provenance_key("provenance key", bad).is_err(),
                "{bad}"
            );
        }
        assert!(check_provenance_value("provenance value", "v1.2 'quoted' $(x)").is_ok());
        assert!(check_provenance_value("provenance value", "").is_ok());
        for bad in ["a\nb", "a\tb", "a\0b"] {
            assert!(
                check_provenance_value("provenance value", bad).is_err(),
                "{bad:?}"
            );
        }
    }
}
