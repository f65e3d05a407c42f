//! `version::compare` against `dpkg --compare-versions` on every pair of a set of tricky
//! versions.

use std::cmp::Ordering;
use std::time::Duration;

use debarchive::version;

const VERSIONS: &[&str] = &[
    "0",
    "1",
    "1.0",
    "1.0-0",
    "1.0-1",
    "1.0-1+b1",
    "1.0-1~bpo12+1",
    "1.0~rc1",
    "1.0~~",
    "1.0~",
    "1.0a",
    "1.0.",
    "1.0+",
    "1.00",
    "1.0.0",
    "1:0.1",
    "2:0",
    "0:1.0",
    "1.0-a",
    "1.0-+",
    "10",
    "9.9",
    "2.36-9+deb12u10",
    "2.36-9+deb12u9",
    "1.18.1+dfsg1-1",
    "1.18.1-1",
    "a",
    "Z9",
];

fn dpkg_says(a: &str, op: &str, b: &str) -> bool {
    child_process::Command::new("dpkg", Duration::from_secs(30))
        .args(["--compare-versions", a, op, b])
        .run_status()
        .unwrap_or_else(|e| panic!("dpkg --compare-versions: {e}"))
        .status
        .success()
}

#[test]
fn compare_agrees_with_dpkg() {
    let mut disagreements = Vec::new();
    for (i, a) in VERSIONS.iter().enumerate() {
        for b in &VERSIONS[i..] {
            let dpkg = if dpkg_says(a, "lt", b) {
                Ordering::Less
            } else if dpkg_says(a, "gt", b) {
                Ordering::Greater
            } else {
                Ordering::Equal
            };
            let ours = version::compare(a, b);
            if ours != dpkg {
                disagreements.push(format!("{a} vs {b}: ours {ours:?}, dpkg {dpkg:?}"));
            }
        }
    }
    assert!(disagreements.is_empty(), "{disagreements:#?}");
}
