//! The chain of trust on a local archive laid out as Ubuntu's and signed in the test with real
//! `gpg`: `gpgv` and [`debarchive::release`] must agree on every signature, and the Packages
//! index is taken only by its SHA-256 in the Release.

use debarchive::release::{self, Compression, ReleaseError};
use debarchive::signature::{self, Keyring, SignatureError};

use crate::release_archive::{Gpg, Layout, gpgv_accepts, sha256};

/// 2022-04-21, the Release's `Date`, plus a day.
const NOW: u64 = 1_650_600_000;
const FUTURE: &str = "Sat, 01 Jan 2050 00:00:00 UTC";

struct Signed {
    gpg: Gpg,
    layout: Layout,
    release: String,
    good_key: String,
    other_key: String,
}

/// The archive, an RSA key that signs it and an Ed25519 key that does not.
fn signed_archive(valid_until: &str) -> Signed {
    let gpg = Gpg::new();
    let good_key = gpg.generate("Archive Key <archive@example.test>", "rsa2048", "sign");
    let other_key = gpg.generate("Other Key <other@example.test>", "ed25519", "sign");
    let (layout, release) = Layout::ubuntu(valid_until);
    Signed {
        gpg,
        layout,
        release,
        good_key,
        other_key,
    }
}

impl Signed {
    fn keyring(&self, keys: &[&str], armor: bool, name: &str) -> (Keyring, std::path::PathBuf) {
        let bytes = self.gpg.export(keys, armor);
        let path = self.layout.root.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        (Keyring::parse(&bytes, name).unwrap(), path)
    }
}

#[test]
fn a_good_signature_passes_and_picks_the_by_hash_xz_index() {
    let archive = signed_archive(FUTURE);
    let in_release = archive
        .gpg
        .clearsign(&archive.release, &[&archive.good_key], &[]);
    let in_release_path = archive.layout.write("InRelease", &in_release);
    for armor in [false, true] {
        let (keyring, keyring_path) =
            archive.keyring(&[&archive.good_key], armor, &format!("ring-{armor}.gpg"));
        if !armor {
            assert!(gpgv_accepts(&keyring_path, &in_release_path, None));
        }
        let (parsed, signer) =
            release::verify_in_release(&in_release, &keyring, "dists/jammy/InRelease", NOW)
                .unwrap();
        assert_eq!(signer.fingerprint, archive.good_key);
        assert_eq!(parsed.suite.as_deref(), Some("jammy"));
        assert_eq!(parsed.codename.as_deref(), Some("jammy"));
        assert_eq!(parsed.components, ["main", "universe"]);
        assert_eq!(parsed.architectures, ["amd64", "arm64"]);
        assert!(parsed.acquire_by_hash);
        assert_eq!(parsed.sha256.len(), 6);
        // The signed text is what was signed, nothing of the armor around it.
        assert_eq!(
            release::parse(&archive.release, "x").unwrap(),
            parsed,
            "the verified text parses as the Release that was signed"
        );

        for (component, text) in &archive.layout.packages {
            let index = parsed
                .packages_index(component, "amd64", "InRelease")
                .unwrap();
            assert_eq!(index.compression, Compression::Xz);
            assert_eq!(index.path, format!("{component}/binary-amd64/Packages.xz"));
            assert_eq!(
                index.download_path,
                format!("{component}/binary-amd64/by-hash/SHA256/{}", index.sha256)
            );
            let bytes = std::fs::read(archive.layout.dists().join(&index.download_path)).unwrap();
            let plain = index
                .check_and_decompress(&bytes, &index.download_path, "InRelease")
                .unwrap();
            assert_eq!(String::from_utf8(plain).unwrap(), *text);
            let packages = debarchive::packages::parse_index(text, "Packages").unwrap();
            assert!(!packages.is_empty());
        }
    }
}

#[test]
fn a_wrong_key_or_tampered_text_fails_as_gpgv_says() {
    let archive = signed_archive(FUTURE);
    let in_release = archive
        .gpg
        .clearsign(&archive.release, &[&archive.good_key], &[]);
    let (other_ring, other_path) = archive.keyring(&[&archive.other_key], false, "other.gpg");
    let (good_ring, good_path) = archive.keyring(&[&archive.good_key], false, "good.gpg");

    let signed_path = archive.layout.write("InRelease", &in_release);
    assert!(!gpgv_accepts(&other_path, &signed_path, None));
    let error = release::verify_in_release(&in_release, &other_ring, "dists/jammy/InRelease", NOW)
        .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("dists/jammy/InRelease")
            && text.contains("keyring other.gpg")
            && text.contains("no such key in the keyring"),
        "{text}"
    );

    // One digit of the Packages.xz line changed inside the signed text.
    let tampered = String::from_utf8(in_release.clone()).unwrap();
    let xz_line = tampered
        .lines()
        .find(|line| line.ends_with("main/binary-amd64/Packages.xz"))
        .unwrap();
    let first = xz_line.trim_start().as_bytes()[0];
    let replacement = if first == b'0' { "1" } else { "0" };
    let changed = format!("{replacement}{}", &xz_line.trim_start()[1..]);
    let tampered = tampered.replace(xz_line.trim_start(), &changed);
    let tampered_path = archive
        .layout
        .write("InRelease.tampered", tampered.as_bytes());
    assert!(!gpgv_accepts(&good_path, &tampered_path, None));
    let error = release::verify_in_release(
        tampered.as_bytes(),
        &good_ring,
        "dists/jammy/InRelease",
        NOW,
    )
    .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("bad signature") && text.contains("keyring good.gpg"),
        "{text}"
    );

    // Text outside the signed part is refused, not ignored.
    let mut prefixed = b"Suite: evil\n\n".to_vec();
    prefixed.extend_from_slice(&in_release);
    assert!(matches!(
        release::verify_in_release(&prefixed, &good_ring, "InRelease", NOW),
        Err(ReleaseError::Signature(
            SignatureError::NotClearsigned { .. }
        ))
    ));
}

#[test]
fn one_good_signature_among_several_keys_and_signatures_is_enough() {
    let archive = signed_archive(FUTURE);
    let stranger = Gpg::new();
    let unknown = stranger.generate("Stranger <s@example.test>", "ed25519", "sign");
    // Signed by the good key and by one the keyring does not hold.
    let both = archive.gpg.clearsign(
        &archive.release,
        &[&archive.other_key, &archive.good_key],
        &[],
    );
    let (ring, path) = archive.keyring(&[&archive.good_key], false, "good.gpg");
    let both_path = archive.layout.write("InRelease", &both);
    assert!(gpgv_accepts(&path, &both_path, None));
    release::verify_in_release(&both, &ring, "InRelease", NOW).unwrap();

    // A keyring of several keys (one of them another home's), armored blocks concatenated.
    let mut armored = stranger.export(&[&unknown], true);
    armored.extend(
        archive
            .gpg
            .export(&[&archive.other_key, &archive.good_key], true),
    );
    let ring = Keyring::parse(&armored, "three.asc").unwrap();
    assert_eq!(ring.len(), 3);
    let only_good = archive
        .gpg
        .clearsign(&archive.release, &[&archive.good_key], &[]);
    release::verify_in_release(&only_good, &ring, "InRelease", NOW).unwrap();
}

#[test]
fn a_signing_subkey_signs_for_its_certify_only_primary() {
    let gpg = Gpg::new();
    let primary = gpg.generate("Ubuntu-like <u@example.test>", "ed25519", "cert");
    let subkey = gpg.add_signing_subkey(&primary);
    let (layout, release) = Layout::ubuntu(FUTURE);
    let in_release = gpg.clearsign(&release, &[&subkey], &[]);
    let bytes = gpg.export(&[&primary], false);
    let ring_path = layout.root.path().join("sub.gpg");
    std::fs::write(&ring_path, &bytes).unwrap();
    let in_release_path = layout.write("InRelease", &in_release);
    assert!(gpgv_accepts(&ring_path, &in_release_path, None));
    let ring = Keyring::parse(&bytes, "sub.gpg").unwrap();
    let (_, signer) = release::verify_in_release(&in_release, &ring, "InRelease", NOW).unwrap();
    assert_eq!(signer.fingerprint, subkey);
}

#[test]
fn an_expired_release_is_refused_naming_the_date() {
    let archive = signed_archive("Fri, 22 Apr 2022 00:00:00 UTC");
    let in_release = archive
        .gpg
        .clearsign(&archive.release, &[&archive.good_key], &[]);
    let (ring, path) = archive.keyring(&[&archive.good_key], false, "good.gpg");
    // The signature is good; only the date is wrong.
    let in_release_path = archive.layout.write("InRelease", &in_release);
    assert!(gpgv_accepts(&path, &in_release_path, None));
    let before = NOW - 86_400;
    release::verify_in_release(&in_release, &ring, "InRelease", before).unwrap();
    let error =
        release::verify_in_release(&in_release, &ring, "dists/jammy/InRelease", NOW).unwrap_err();
    assert!(matches!(error, ReleaseError::Expired { .. }));
    let text = error.to_string();
    assert!(
        text.contains("dists/jammy/InRelease") && text.contains("2022-04-22 00:00:00 UTC"),
        "{text}"
    );
}

#[test]
fn a_sha1_signature_is_refused_as_apt_refuses_it() {
    let archive = signed_archive(FUTURE);
    let in_release = archive.gpg.clearsign(
        &archive.release,
        &[&archive.good_key],
        &["--digest-algo", "SHA1"],
    );
    let (ring, _) = archive.keyring(&[&archive.good_key], false, "good.gpg");
    let text = release::verify_in_release(&in_release, &ring, "InRelease", NOW)
        .unwrap_err()
        .to_string();
    assert!(text.contains("weak digest"), "{text}");
}

#[test]
fn an_index_that_differs_from_the_release_is_refused_with_both_digests() {
    let archive = signed_archive(FUTURE);
    let parsed = release::parse(&archive.release, "Release").unwrap();
    let index = parsed.packages_index("main", "amd64", "Release").unwrap();
    let mut bytes = std::fs::read(archive.layout.dists().join(&index.path)).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    let error = index
        .check_and_decompress(
            &bytes,
            "main/binary-amd64/Packages.xz",
            "dists/jammy/InRelease",
        )
        .unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains(&index.sha256) && text.contains(&sha256(&bytes)),
        "{text}"
    );
    let short = &bytes[..bytes.len() - 1];
    assert!(matches!(
        index.check_and_decompress(short, "x", "y"),
        Err(ReleaseError::SizeMismatch { .. })
    ));
    assert!(matches!(
        parsed.packages_index("restricted", "amd64", "Release"),
        Err(ReleaseError::NoIndex { .. })
    ));
}

#[test]
fn detached_signatures_verify_over_their_data() {
    let archive = signed_archive(FUTURE);
    let sums = b"0123  ubuntu-22.04-server-cloudimg-amd64.img\n".to_vec();
    let (ring, ring_path) = archive.keyring(&[&archive.good_key], false, "good.gpg");
    let data_path = archive.layout.write("SHA256SUMS", &sums);
    for armor in [false, true] {
        let signature = archive.gpg.detach_sign(&sums, &archive.good_key, armor);
        let signature_path = archive.layout.write("SHA256SUMS.gpg", &signature);
        assert!(gpgv_accepts(&ring_path, &signature_path, Some(&data_path)));
        signature::verify_detached(&sums, &signature, &ring, "SHA256SUMS.gpg").unwrap();
        let mut changed = sums.clone();
        changed[0] = b'9';
        let changed_path = archive.layout.write("SHA256SUMS.changed", &changed);
        assert!(!gpgv_accepts(
            &ring_path,
            &signature_path,
            Some(&changed_path)
        ));
        let text = signature::verify_detached(&changed, &signature, &ring, "SHA256SUMS.gpg")
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("SHA256SUMS.gpg") && text.contains("good.gpg"),
            "{text}"
        );
    }
}

#[test]
fn garbage_keyrings_and_signatures_are_errors_not_panics() {
    assert!(matches!(
        Keyring::parse(b"not a key", "junk.gpg"),
        Err(SignatureError::BadKeyring { .. } | SignatureError::EmptyKeyring { .. })
    ));
    assert!(Keyring::parse(b"", "empty.gpg").is_err());
    let gpg = Gpg::new();
    let key = gpg.generate("K <k@example.test>", "ed25519", "sign");
    let ring = Keyring::parse(&gpg.export(&[&key], false), "k.gpg").unwrap();
    for junk in [
        &b""[..],
        b"Suite: x\n",
        b"-----BEGIN PGP SIGNED MESSAGE-----\n",
    ] {
        assert!(signature::verify_clearsigned(junk, &ring, "InRelease").is_err());
        assert!(signature::verify_detached(b"x", junk, &ring, "x.gpg").is_err());
    }
}
