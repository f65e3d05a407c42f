//! OpenPGP verification as apt does it through `gpgv`: a keyring of trusted keys (binary, like
//! `/usr/share/keyrings/debian-archive-keyring.gpg`, or armored), and a clearsigned or detached
//! signature that is good when at least one of its signatures was made by a signing-capable key
//! or subkey of the keyring while that key was valid. Every other signature (unknown key, other
//! algorithms) is ignored, as apt ignores them.
//!
//! The OpenPGP packets and the cryptography are rPGP's (`pgp`); this module decides which key
//! may sign, when, and says why nothing verified.

use std::fmt::Write as _;

use pgp::composed::{
    CleartextSignedMessage, Deserializable, DetachedSignature, PublicOrSecret, SignedPublicKey,
    SignedPublicSubKey,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{Signature, SignatureType};
use pgp::types::{KeyDetails, Timestamp};

use crate::date;

/// Why a keyring or a signature was refused.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("keyring {keyring}: not an OpenPGP keyring: {reason}")]
    BadKeyring { keyring: String, reason: String },
    #[error("keyring {keyring}: holds no public key")]
    EmptyKeyring { keyring: String },
    #[error("{file}: not a clearsigned OpenPGP message (an InRelease file): {reason}")]
    NotClearsigned { file: String, reason: String },
    #[error("{file}: not an OpenPGP signature: {reason}")]
    NotSignature { file: String, reason: String },
    #[error("{file}: no good signature by a key in keyring {keyring}: {details}")]
    NoGoodSignature {
        file: String,
        keyring: String,
        details: String,
    },
}

/// The trusted keys, as read from one keyring file.
#[derive(Debug, Clone)]
pub struct Keyring {
    name: String,
    keys: Vec<SignedPublicKey>,
}

/// Who made the good signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    /// The fingerprint (upper-case hex) of the key or subkey that signed.
    pub fingerprint: String,
    /// When the signature was made, seconds since the epoch.
    pub created: u32,
}

/// A clearsigned message whose signature is good: the signed text and its signer.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The signed text, dash-unescaped, with `\n` line ends: what a Release parser reads.
    pub text: String,
    pub signer: Signer,
}

impl Keyring {
    /// Reads a keyring: binary OpenPGP packets (a `.gpg` keyring, keys concatenated) or one or
    /// more armored public key blocks (`.asc`). `name` (usually the path) appears in errors.
    pub fn parse(bytes: &[u8], name: &str) -> Result<Keyring, SignatureError> {
        let bad = |reason: String| SignatureError::BadKeyring {
            keyring: name.to_owned(),
            reason,
        };
        let mut keys = Vec::new();
        for block in armor_blocks(bytes) {
            let (items, _) =
                PublicOrSecret::from_reader_many(block).map_err(|error| bad(error.to_string()))?;
            for item in items {
                match item.map_err(|error| bad(error.to_string()))? {
                    PublicOrSecret::Public(key) => keys.push(key),
                    PublicOrSecret::Secret(key) => keys.push(key.to_public_key()),
                }
            }
        }
        if keys.is_empty() {
            return Err(SignatureError::EmptyKeyring {
                keyring: name.to_owned(),
            });
        }
        Ok(Keyring {
            name: name.to_owned(),
            keys,
        })
    }

    /// The name given to [`Keyring::parse`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many primary keys the keyring holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the keyring holds no key (never true for a parsed keyring).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Verifies a clearsigned message (an `InRelease` file) named `file`, and returns the signed
/// text. Nothing outside the signed part is returned.
pub fn verify_clearsigned(
    message: &[u8],
    keyring: &Keyring,
    file: &str,
) -> Result<Verified, SignatureError> {
    let not_clearsigned = |reason: String| SignatureError::NotClearsigned {
        file: file.to_owned(),
        reason,
    };
    let text = std::str::from_utf8(message)
        .map_err(|error| not_clearsigned(format!("not UTF-8 text: {error}")))?;
    let (parsed, _) =
        CleartextSignedMessage::from_string(text).map_err(|e| not_clearsigned(e.to_string()))?;
    let signed = parsed.signed_text();
    let signer = first_good(parsed.signatures(), signed.as_bytes(), keyring, file)?;
    Ok(Verified {
        text: dash_unescape(parsed.text()),
        signer,
    })
}

/// Verifies a detached signature (binary or armored, e.g. Ubuntu's `SHA256SUMS.gpg`) named
/// `file` over `data`.
pub fn verify_detached(
    data: &[u8],
    signature: &[u8],
    keyring: &Keyring,
    file: &str,
) -> Result<Signer, SignatureError> {
    let not_signature = |reason: String| SignatureError::NotSignature {
        file: file.to_owned(),
        reason,
    };
    let (items, _) = DetachedSignature::from_reader_many(signature)
        .map_err(|error| not_signature(error.to_string()))?;
    let mut signatures = Vec::new();
    for item in items {
        signatures.push(
            item.map_err(|error| not_signature(error.to_string()))?
                .signature,
        );
    }
    if signatures.is_empty() {
        return Err(not_signature("holds no signature packet".to_owned()));
    }
    first_good(&signatures, data, keyring, file)
}

/// The first signature over `data` that a key of `keyring` made while allowed to; otherwise an
/// error listing why each one failed.
fn first_good(
    signatures: &[Signature],
    data: &[u8],
    keyring: &Keyring,
    file: &str,
) -> Result<Signer, SignatureError> {
    let mut details = String::new();
    for signature in signatures {
        match check_one(signature, data, keyring) {
            Ok(signer) => return Ok(signer),
            Err(why) => {
                if !details.is_empty() {
                    details.push_str("; ");
                }
                let _ = write!(details, "signature by {}: {why}", issuer(signature));
            }
        }
    }
    if details.is_empty() {
        details.push_str("the message carries no signature");
    }
    Err(SignatureError::NoGoodSignature {
        file: file.to_owned(),
        keyring: keyring.name.clone(),
        details,
    })
}

fn issuer(signature: &Signature) -> String {
    if let Some(fingerprint) = signature.issuer_fingerprint().first() {
        return format!("{fingerprint:X}");
    }
    match signature.issuer_key_id().first() {
        Some(id) => format!("key id {}", hex::encode_upper(id.as_ref())),
        None => "an unnamed key".to_owned(),
    }
}

/// Why one signature is not good, or who made it.
fn check_one(signature: &Signature, data: &[u8], keyring: &Keyring) -> Result<Signer, String> {
    let created = signature
        .created()
        .ok_or_else(|| "carries no creation time".to_owned())?;
    match signature.hash_alg() {
        Some(HashAlgorithm::Md5 | HashAlgorithm::Sha1 | HashAlgorithm::Ripemd160) | None => {
            return Err(format!(
                "uses a weak digest ({:?}), which apt refuses",
                signature.hash_alg()
            ));
        }
        Some(_) => {}
    }
    let mut reasons = Vec::new();
    for key in &keyring.keys {
        if issued_by(signature, &key.primary_key) {
            match primary_may_sign(key, created) {
                Ok(()) => {
                    return verified(signature, &key.primary_key, data, created);
                }
                Err(why) => reasons.push(why),
            }
        }
        for subkey in &key.public_subkeys {
            if issued_by(signature, &subkey.key) {
                match subkey_may_sign(key, subkey, created) {
                    Ok(()) => return verified(signature, &subkey.key, data, created),
                    Err(why) => reasons.push(why),
                }
            }
        }
    }
    if reasons.is_empty() {
        Err("no such key in the keyring".to_owned())
    } else {
        Err(reasons.join(", "))
    }
}

fn verified(
    signature: &Signature,
    key: &impl pgp::types::VerifyingKey,
    data: &[u8],
    created: Timestamp,
) -> Result<Signer, String> {
    signature
        .verify(key, data)
        .map_err(|error| format!("bad signature: the text does not match it ({error})"))?;
    Ok(Signer {
        fingerprint: format!("{:X}", key.fingerprint()),
        created: created.as_secs(),
    })
}

fn issued_by(signature: &Signature, key: &impl KeyDetails) -> bool {
    let fingerprint = key.fingerprint();
    let id = key.legacy_key_id();
    signature
        .issuer_fingerprint()
        .iter()
        .any(|f| **f == fingerprint)
        || signature.issuer_key_id().iter().any(|k| **k == id)
}

/// The primary key may sign at `at`: it has a good self-signature allowing signing, it is not
/// revoked, and it had not expired at `at`.
fn primary_may_sign(key: &SignedPublicKey, at: Timestamp) -> Result<(), String> {
    primary_valid_at(key, at, true)
}

fn primary_valid_at(key: &SignedPublicKey, at: Timestamp, to_sign: bool) -> Result<(), String> {
    let primary = &key.primary_key;
    let name = format!("key {:X}", primary.fingerprint());
    if key
        .details
        .revocation_signatures
        .iter()
        .any(|revocation| revocation.verify_key(primary).is_ok())
    {
        return Err(format!("{name} is revoked"));
    }
    let self_signatures = key
        .details
        .users
        .iter()
        .flat_map(|user| {
            user.signatures.iter().filter(|signature| {
                signature
                    .verify_certification(primary, pgp::types::Tag::UserId, &user.id)
                    .is_ok()
            })
        })
        .chain(
            key.details
                .direct_signatures
                .iter()
                .filter(|signature| signature.verify_key(primary).is_ok()),
        );
    let newest = newest_before(self_signatures, at)
        .ok_or_else(|| format!("{name} has no good self-signature made before the signature"))?;
    if to_sign && !flags_allow_signing(newest) {
        return Err(format!("{name} is not allowed to sign"));
    }
    not_expired(&name, primary.created_at(), newest, at)
}

/// A subkey may sign at `at`: its primary key is valid then, and the subkey has a good binding
/// signature (with the subkey's back-signature) allowing signing, unrevoked and unexpired.
fn subkey_may_sign(
    key: &SignedPublicKey,
    subkey: &SignedPublicSubKey,
    at: Timestamp,
) -> Result<(), String> {
    primary_valid_at(key, at, false)?;
    let primary = &key.primary_key;
    let name = format!("subkey {:X}", subkey.key.fingerprint());
    let mut bindings = Vec::new();
    for signature in &subkey.signatures {
        if signature
            .verify_subkey_binding(primary, &subkey.key)
            .is_err()
        {
            continue;
        }
        if signature.typ() == Some(SignatureType::SubkeyRevocation) {
            return Err(format!("{name} is revoked"));
        }
        bindings.push(signature);
    }
    let newest = newest_before(bindings.into_iter(), at)
        .ok_or_else(|| format!("{name} has no good binding signature made before the signature"))?;
    if !newest.key_flags().sign() {
        return Err(format!("{name} is not allowed to sign"));
    }
    let backsig_good = newest.embedded_signature().is_some_and(|backsig| {
        backsig
            .verify_primary_key_binding(&subkey.key, primary)
            .is_ok()
    });
    if !backsig_good {
        return Err(format!("{name} lacks a good back-signature"));
    }
    not_expired(&name, subkey.key.created_at(), newest, at)
}

fn newest_before<'a>(
    signatures: impl Iterator<Item = &'a Signature>,
    at: Timestamp,
) -> Option<&'a Signature> {
    signatures
        .filter(|signature| signature.created().is_some_and(|created| created <= at))
        .max_by_key(|signature| signature.created())
}

/// Old keys carry no key-flags subpacket at all; such a key may sign.
fn flags_allow_signing(signature: &Signature) -> bool {
    let flags = signature.key_flags();
    flags.sign()
        || !(flags.certify()
            || flags.encrypt_comms()
            || flags.encrypt_storage()
            || flags.authentication())
}

fn not_expired(
    name: &str,
    key_created: Timestamp,
    self_signature: &Signature,
    at: Timestamp,
) -> Result<(), String> {
    let Some(lifetime) = self_signature.key_expiration_time() else {
        return Ok(());
    };
    if lifetime.as_secs() == 0 {
        return Ok(());
    }
    let expires = u64::from(key_created.as_secs()) + u64::from(lifetime.as_secs());
    if u64::from(at.as_secs()) >= expires {
        return Err(format!(
            "{name} had expired ({}) when the signature was made ({})",
            date::format(expires),
            date::format(u64::from(at.as_secs()))
        ));
    }
    Ok(())
}

/// An armored keyring may hold several armor blocks one after the other (keys exported
/// separately and concatenated); each is read on its own. Binary keyrings are one block.
fn armor_blocks(bytes: &[u8]) -> Vec<&[u8]> {
    const BEGIN: &[u8] = b"-----BEGIN PGP ";
    let starts: Vec<usize> = (0..bytes.len())
        .filter(|&at| bytes[at..].starts_with(BEGIN) && (at == 0 || bytes[at - 1] == b'\n'))
        .collect();
    if starts.len() <= 1
        || starts[0] != bytes.iter().take_while(|b| b.is_ascii_whitespace()).count()
    {
        return vec![bytes];
    }
    let mut blocks = Vec::with_capacity(starts.len());
    for (index, &start) in starts.iter().enumerate() {
        let end = starts.get(index + 1).copied().unwrap_or(bytes.len());
        blocks.push(&bytes[start..end]);
    }
    blocks
}

/// The clearsigned text as it was signed: `- ` removed from dash-escaped lines, `\n` line ends.
fn dash_unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let line = line.strip_prefix("- ").unwrap_or(line);
        out.push_str(&line.replace("\r\n", "\n"));
    }
    out
}
