//! Published checksum files and digests of downloaded files.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use distros::ChecksumAlgorithm;
use sha2::{Digest, Sha256, Sha512};

/// A checksum file that does not list the artifact, or lists it badly.
#[derive(Debug, thiserror::Error)]
pub enum ChecksumError {
    /// No line names the file.
    #[error("{url}: no {algorithm} checksum for {file_name}")]
    NotListed {
        /// The checksum file's URL.
        url: String,
        /// The algorithm.
        algorithm: &'static str,
        /// The file looked for.
        file_name: String,
    },
    /// Reading a file to hash it failed.
    /// (The cause is in the message, not also `source()`: `{:#}` would print it twice.)
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        cause: io::Error,
    },
}

/// The algorithm's name in messages.
pub fn algorithm_name(a: ChecksumAlgorithm) -> &'static str {
    match a {
        ChecksumAlgorithm::Sha512 => "sha512",
        _ => "sha256",
    }
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The digest `text` (a checksum file fetched from `url`) gives for `file_name`: a line
/// `<hex>  <name>` (GNU `*name` and `./name` too) whose name is `file_name`, or, in a file
/// with one digest and no names, that digest. Returned in lower case.
pub fn find(
    text: &str,
    url: &str,
    file_name: &str,
    algorithm: ChecksumAlgorithm,
) -> Result<String, ChecksumError> {
    let len = algorithm.hex_len();
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| !f.is_empty())
        .collect();
    let named = lines.iter().find_map(|f| match f.as_slice() {
        [hex, name] if is_hex(hex, len) => {
            let name = name.trim_start_matches('*').trim_start_matches("./");
            (name == file_name || name.rsplit('/').next() == Some(file_name)).then_some(*hex)
        }
        _ => None,
    });
    let single = match lines.as_slice() {
        [only] if only.len() == 1 && is_hex(only[0], len) => Some(only[0]),
        _ => None,
    };
    named
        .or(single)
        .map(str::to_ascii_lowercase)
        .ok_or_else(|| ChecksumError::NotListed {
            url: url.to_owned(),
            algorithm: algorithm_name(algorithm),
            file_name: file_name.to_owned(),
        })
}

/// SHA-256 (and SHA-512 when asked) of a file in one pass, with its length.
pub fn hash(path: &Path, sha512: bool) -> Result<(String, Option<String>, u64), ChecksumError> {
    let err = |cause| ChecksumError::Io {
        path: path.display().to_string(),
        cause,
    };
    let mut f = File::open(path).map_err(err)?;
    let mut h256 = Sha256::new();
    let mut h512 = sha512.then(Sha512::new);
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(err)?;
        if n == 0 {
            break;
        }
        h256.update(&buf[..n]);
        if let Some(h) = h512.as_mut() {
            h.update(&buf[..n]);
        }
        len += u64::try_from(n).unwrap_or(0);
    }
    Ok((
        hex::encode(h256.finalize()),
        h512.map(|h| hex::encode(h.finalize())),
        len,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    #[test]
    fn named_lines_single_digests_and_missing_entries() {
        let sums = format!("{}  runc.arm64\n{A}  runc.amd64\n", "1".repeat(64));
        assert_eq!(
            find(&sums, "u", "runc.amd64", ChecksumAlgorithm::Sha256).unwrap(),
            A
        );
        assert_eq!(
            find(
                &format!("{A} *x.tgz\n"),
                "u",
                "x.tgz",
                ChecksumAlgorithm::Sha256
            )
            .unwrap(),
            A
        );
        assert_eq!(
            find(
                &format!("{}\n", A.to_uppercase()),
                "u",
                "kubeadm",
                ChecksumAlgorithm::Sha256
            )
            .unwrap(),
            A
        );
        let e = find(
            &sums,
            "https://x/SUMS",
            "runc.s390x",
            ChecksumAlgorithm::Sha256,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(e, "https://x/SUMS: no sha256 checksum for runc.s390x");
        // A SHA-256 is not a SHA-512.
        assert!(find(A, "u", "f", ChecksumAlgorithm::Sha512).is_err());
        assert!(
            find(
                "<html>not found</html>",
                "u",
                "f",
                ChecksumAlgorithm::Sha256
            )
            .is_err()
        );
    }

    #[test]
    fn hashing_gives_both_digests() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, b"hello").unwrap();
        let (s256, s512, len) = hash(&p, true).unwrap();
        assert_eq!((s256.as_str(), len), (A, 5));
        assert!(s512.unwrap().starts_with("9b71d224bd62f378"));
        assert_eq!(hash(&p, false).unwrap().1, None);
    }
}
