//! The build bench's pure parts (event timeline, old-format inputs, reference scripts and
//! markers, the printed tables), compiled here as an ordinary test target so their `#[test]`s
//! run: the bench itself is `harness = false` and runs none.

// The bench uses every item; this target only its tests.
#[allow(dead_code)]
mod old_inputs;
#[allow(dead_code)]
mod scripts;
#[allow(dead_code)]
mod table;
#[allow(dead_code)]
mod timeline;
