//! Debian version parsing and ordering on arbitrary pairs: no panic, and the ordering is a
//! total order's (antisymmetric, consistent with equality of the printed form's reparse).
#![no_main]

use bom::scan::debian_version::DebVersion;
use bom::scan::upstream_version::UpstreamVersion;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (a, b) = text.split_once('\n').unwrap_or((&text, "1.0"));
    if let (Ok(x), Ok(y)) = (DebVersion::parse(a), DebVersion::parse(b)) {
        assert_eq!(x.cmp(&y), y.cmp(&x).reverse());
        let again = DebVersion::parse(&x.to_string()).expect("printed versions reparse");
        assert_eq!(again.cmp(&x), std::cmp::Ordering::Equal);
    }
    if let (Ok(x), Ok(y)) = (UpstreamVersion::parse(a), UpstreamVersion::parse(b)) {
        assert_eq!(x.cmp(&y), y.cmp(&x).reverse());
    }
});
