//! `Bom::parse` on arbitrary bytes: an error or a BOM, never a panic; a parsed BOM round-trips.
#![no_main]

use std::path::Path;

use bom::Bom;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(bom) = Bom::parse(Path::new("bom.json"), data) {
        let text = bom.to_json();
        let back = Bom::parse(Path::new("bom.json"), text.as_bytes()).expect("round trip");
        assert_eq!(back, bom);
    }
});
