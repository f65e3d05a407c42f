//! Percent-encoding for URL path segments and query values (RFC 3986: only the unreserved
//! characters are kept), shared by every target that builds URLs by hand.

/// `s` with everything but `A-Z a-z 0-9 - . _ ~` percent-encoded (the BOM's purl encoder:
/// one implementation of RFC 3986's rule).
pub use bom::cyclonedx::pct as encode;

#[cfg(test)]
mod tests {
    #[test]
    fn only_unreserved_characters_stay() {
        assert_eq!(super::encode("a-Z_0.~/ +=é"), "a-Z_0.~%2F%20%2B%3D%C3%A9");
    }
}
