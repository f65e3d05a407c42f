//! Identifiers derived from content, never random: UUIDs and VMDK content ids.

use sha2::{Digest, Sha256};

/// A version-8 (RFC 9562 custom) UUID: the first 16 bytes of SHA-256(purpose ‖ content digest)
/// with the version and variant bits set. Same disk, same purpose → same UUID.
pub fn content_uuid(content_digest: &[u8; 32], purpose: &str) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update(b"nodeimg:");
    h.update(purpose.as_bytes());
    h.update(b":");
    h.update(content_digest);
    let digest: [u8; 32] = h.finalize().into();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .into_bytes()
}

/// A VMDK content id (CID) from the content digest: never `ffffffff` or `fffffffe`.
pub fn vmdk_cid(content_digest: &[u8; 32]) -> u32 {
    let uuid = content_uuid(content_digest, "vmdk-cid");
    let cid = u32::from_be_bytes([uuid[12], uuid[13], uuid[14], uuid[15]]);
    if cid >= 0xffff_fffe { cid - 2 } else { cid }
}

/// Lower-case hex of a digest.
pub fn hex_digest(digest: &[u8; 32]) -> String {
    hex::encode(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_content_and_purpose() {
        let a = content_uuid(&[1; 32], "vhd");
        assert_eq!(a, content_uuid(&[1; 32], "vhd"));
        assert_ne!(a, content_uuid(&[2; 32], "vhd"));
        assert_ne!(a, content_uuid(&[1; 32], "ovf"));
        assert_eq!(a[6] >> 4, 8, "version 8");
        assert_eq!(a[8] >> 6, 0b10, "RFC variant");
        assert!(vmdk_cid(&[3; 32]) < 0xffff_fffe);
    }
}
