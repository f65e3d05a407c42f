//! Parsing the bill of materials the build guest printed in the `bom` phase
//! ([`super::collect_bom`]). The script is rendered in `distros` ([`distros::bom_collect`]);
//! everything the guest says is parsed strictly here: a missing section or a malformed line is
//! an error naming it.

use distros::bom_collect::{Query, SECTION_MARKER, SECTIONS};
use std::collections::BTreeMap;

use bom::model::{
    BOM_FORMAT, BOM_VERSION, Bom, ComponentFile, Image, Inputs, NodeConfig, Os, Package,
};

/// A guest's answer that does not make a BOM.
#[derive(Debug, thiserror::Error)]
#[error("the BOM collection's output: {0}")]
pub struct CollectError(String);

fn fail<T>(msg: impl Into<String>) -> Result<T, CollectError> {
    Err(CollectError(msg.into()))
}

/// Splits the script's output into its sections.
fn sections(output: &str) -> Result<BTreeMap<String, Vec<&str>>, CollectError> {
    let mut map: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in output.lines() {
        if let Some(name) = line.strip_prefix(SECTION_MARKER) {
            current = Some(name.trim().to_owned());
            map.entry(name.trim().to_owned()).or_default();
        } else if let Some(c) = &current {
            map.entry(c.clone()).or_default().push(line);
        }
    }
    for s in SECTIONS.iter().chain(&["end"]) {
        if !map.contains_key(*s) {
            return fail(format!("no `{s}` section (the script stopped early?)"));
        }
    }
    Ok(map)
}

fn os_release(lines: &[&str]) -> BTreeMap<String, String> {
    lines
        .iter()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| !k.trim().is_empty() && !k.trim_start().starts_with('#'))
        .map(|(k, v)| {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            (k.trim().to_owned(), v.to_owned())
        })
        .collect()
}

fn tab_fields<'a>(section: &str, line: &'a str, n: usize) -> Result<Vec<&'a str>, CollectError> {
    let f: Vec<&str> = line.split('\t').collect();
    if f.len() != n {
        return fail(format!(
            "`{section}` line {line:?} has {} tab-separated fields, not {n}",
            f.len()
        ));
    }
    Ok(f)
}

fn packages(lines: &[&str]) -> Result<Vec<Package>, CollectError> {
    let mut out = Vec::new();
    for line in lines.iter().filter(|l| !l.is_empty()) {
        let f = tab_fields("packages", line, 6)?;
        let status = f[0].as_bytes();
        // Installed packages only: the second letter of db:Status-Abbrev is `i`.
        if status.get(1) != Some(&b'i') {
            continue;
        }
        let source = if f[4].is_empty() { f[1] } else { f[4] };
        let source_version = if f[5].is_empty() { f[2] } else { f[5] };
        out.push(Package {
            name: f[1].to_owned(),
            version: f[2].to_owned(),
            architecture: f[3].to_owned(),
            source: source.to_owned(),
            source_version: source_version.to_owned(),
            held: status.first() == Some(&b'h'),
        });
    }
    if out.is_empty() {
        return fail("no installed package listed by dpkg-query");
    }
    Ok(out)
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

fn files(lines: &[&str], query: &Query) -> Result<Vec<ComponentFile>, CollectError> {
    let mut out = Vec::new();
    for line in lines.iter().filter(|l| !l.is_empty()) {
        let f = tab_fields("files", line, 4)?;
        let Some(c) = query.components.iter().find(|c| c.artifact == f[1]) else {
            return fail(format!("`files` names an unknown artifact {:?}", f[1]));
        };
        if f[0] != "F" || !is_sha256(f[3]) {
            return fail(format!(
                "`files` line {line:?} is not `F, artifact, path, sha256`"
            ));
        }
        out.push(ComponentFile {
            name: c.component.clone(),
            version: c.version.clone(),
            path: f[2].to_owned(),
            sha256: f[3].to_owned(),
            source: c.source.clone(),
        });
    }
    for c in &query.components {
        if !out.iter().any(|f| f.name == c.component) {
            return fail(format!(
                "no installed file found for {} ({})",
                c.component, c.artifact
            ));
        }
    }
    Ok(out)
}

fn images(lines: &[&str]) -> Result<Vec<Image>, CollectError> {
    let mut out = Vec::new();
    for line in lines.iter().filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.first() == Some(&"REF") {
            continue;
        }
        let (Some(reference), Some(digest)) = (cols.first(), cols.get(2)) else {
            return fail(format!("`images` line {line:?} has no REF and DIGEST"));
        };
        // containerd's CRI also names each image by its config digest: that is an id, not a
        // reference.
        if reference.starts_with("sha256:") {
            continue;
        }
        if !digest.strip_prefix("sha256:").is_some_and(is_sha256) {
            return fail(format!(
                "`images` line {line:?}: {digest:?} is not a digest"
            ));
        }
        out.push(Image {
            reference: (*reference).to_owned(),
            digest: (*digest).to_owned(),
        });
    }
    Ok(out)
}

fn pairs(section: &str, lines: &[&str]) -> Result<Vec<(String, String)>, CollectError> {
    lines
        .iter()
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.split_once('\t')
                .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
                .ok_or_else(|| CollectError(format!("`{section}` line {l:?} has no tab")))
        })
        .collect()
}

/// The last path segments of containerd settings the BOM records.
const CONTAINERD_KEYS: &[&str] = &[
    "SystemdCgroup",
    "sandbox_image",
    "sandbox",
    "snapshotter",
    "default_runtime_name",
    "runtime_type",
    "bin_dir",
    "conf_dir",
];

fn flatten(prefix: &str, value: &toml::Value, out: &mut BTreeMap<String, String>) {
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        leaf => {
            let last = prefix.rsplit('.').next().unwrap_or(prefix);
            if prefix.contains("cri") && CONTAINERD_KEYS.contains(&last) {
                let value = match leaf {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                out.insert(prefix.to_owned(), value);
            }
        }
    }
}

fn containerd(lines: &[&str]) -> Result<BTreeMap<String, String>, CollectError> {
    let text = lines.join("\n");
    let value: toml::Value = toml::from_str(&text)
        .map_err(|e| CollectError(format!("`containerd config dump` is not TOML: {e}")))?;
    let mut out = BTreeMap::new();
    flatten("", &value, &mut out);
    if !out.keys().any(|k| k.ends_with("SystemdCgroup")) {
        return fail("`containerd config dump` has no runc SystemdCgroup setting");
    }
    Ok(out)
}

/// Makes the BOM from the script's `output`, the build's `inputs` and the `query` the script
/// was made from.
pub fn parse(output: &str, inputs: Inputs, query: &Query) -> Result<Bom, CollectError> {
    let s = sections(output)?;
    let get = |name: &str| s.get(name).map(Vec::as_slice).unwrap_or_default();
    let kernel: BTreeMap<String, String> = pairs("kernel", get("kernel"))?.into_iter().collect();
    let (Some(release), Some(cmdline)) = (kernel.get("release"), kernel.get("cmdline")) else {
        return fail("`kernel` lacks release or cmdline");
    };
    let os_release = os_release(get("os-release"));
    if !os_release.contains_key("ID") {
        return fail("`os-release` has no ID");
    }
    let mut sysctls = BTreeMap::new();
    for (k, v) in pairs("sysctls", get("sysctls"))? {
        sysctls.insert(k, v);
    }
    let mut modules = BTreeMap::new();
    for (k, v) in pairs("modules", get("modules"))? {
        modules.insert(k, v == "yes");
    }
    let mut bom = Bom {
        format: BOM_FORMAT.into(),
        version: BOM_VERSION,
        inputs,
        os: Os {
            os_release,
            kernel_release: release.clone(),
            kernel_cmdline: cmdline.clone(),
        },
        packages: packages(get("packages"))?,
        components: files(get("files"), query)?,
        images: images(get("images"))?,
        config: NodeConfig {
            sysctls,
            modules,
            containerd: containerd(get("containerd"))?,
        },
    };
    bom.normalize();
    Ok(bom)
}

#[cfg(test)]
#[path = "bom_answer_tests.rs"]
mod tests;
