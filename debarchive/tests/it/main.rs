//! Integration tests of the `debarchive` crate.

mod apt_host;
mod apt_synthetic;
mod release;
mod release_archive;
mod version_dpkg;

use std::collections::BTreeMap;

/// The packages `apt-get -s` output installs or upgrades (`Inst NAME [OLD] (VERSION SUITES
/// [ARCH])`): name -> version. An error when apt would also remove packages, which our
/// resolver never does.
pub(crate) fn simulated_installs(text: &str) -> Result<BTreeMap<String, String>, String> {
    if text.lines().any(|l| l.starts_with("Remv ")) {
        return Err(format!("apt removes packages:\n{text}"));
    }
    Ok(text
        .lines()
        .filter_map(|l| l.strip_prefix("Inst "))
        .map(|rest| {
            let (name, rest) = rest.split_once(' ').expect("Inst NAME …");
            let version = rest
                .split_once('(')
                .and_then(|(_, v)| v.split_whitespace().next())
                .expect("Inst … (VERSION …)");
            (name.to_owned(), version.to_owned())
        })
        .collect())
}
