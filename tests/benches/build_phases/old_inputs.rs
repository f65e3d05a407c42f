//! Today's fixture spec and lock in the format the nodeimg of commit 1b668ee reads.
//!
//! At 1b668ee the spec (`builder/src/spec.rs`) and the lock (`builder/src/lock.rs`) were
//! parsed with `deny_unknown_fields` everywhere, and the cache was the same
//! `CACHE/cas/sha256/<hex>`. Since then the `inputs` crate added optional fields; of those,
//! the fixture set writes only `kubernetes.skip_addons = ["coredns"]`, which 1b668ee rejects
//! ("unknown field") but whose effect it always had: its kubeadm test ran `kubeadm init
//! --skip-phases=…,addon/coredns` unconditionally. So the old-format spec is today's without
//! that key, and the lock is today's without the informational `[packages]` record and the
//! `architecture`/`suite` of debs (the fixture lock has none of them; a fetched lock may).
//! Any other key the old format does not know is an error: the old binary would not build the
//! same thing from it.

use toml::{Table, Value};

/// The keys of each spec table 1b668ee accepts.
const OLD_SPEC_KEYS: &[(&str, &[&str])] = &[
    ("image", &["name", "distro", "firmware", "disk_gib"]),
    ("base", &["path", "url", "sha256", "format"]),
    ("kubernetes", &["version"]),
    (
        "components",
        &["containerd", "runc", "crictl", "cni_plugins", "pause"],
    ),
    ("export", &["formats"]),
    ("files", &["source", "dest", "mode"]),
    ("commands", &["name", "run"]),
    ("checks", &["name", "run"]),
    ("fetch", &["mirror"]),
];

/// The keys of a lock's `[[artifact]]` 1b668ee accepts.
const OLD_ARTIFACT_KEYS: &[&str] = &[
    "name",
    "kind",
    "component",
    "version",
    "source",
    "size",
    "sha256",
    "dest",
    "mode",
    "image",
    "note",
];

/// The addons 1b668ee's kubeadm test always skipped.
const OLD_SKIPPED_ADDONS: &[&str] = &["coredns"];

fn parse(what: &str, text: &str) -> Result<Table, String> {
    toml::from_str::<Table>(text).map_err(|e| format!("{what} does not parse: {e}"))
}

/// Every table of `value` (one table, or an array of tables).
fn tables_mut<'a>(what: &str, value: &'a mut Value) -> Result<Vec<&'a mut Table>, String> {
    match value {
        Value::Table(t) => Ok(vec![t]),
        Value::Array(items) => items
            .iter_mut()
            .map(|v| match v {
                Value::Table(t) => Ok(t),
                _ => Err(format!("{what}: an entry is not a table")),
            })
            .collect(),
        _ => Err(format!("{what} is not a table")),
    }
}

fn check_keys(what: &str, table: &Table, known: &[&str]) -> Result<(), String> {
    match table.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(format!(
            "{what}.{k}: the nodeimg of 1b668ee does not know this key, so it would not build the same image"
        )),
        None => Ok(()),
    }
}

/// Today's spec `text` as 1b668ee reads it (see the module doc).
pub fn old_format_spec(text: &str) -> Result<String, String> {
    let mut spec = parse("the spec", text)?;
    if let Some(Value::Table(k8s)) = spec.get_mut("kubernetes")
        && let Some(skip) = k8s.remove("skip_addons")
    {
        let names: Vec<&str> = skip
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if let Some(other) = names.iter().find(|n| !OLD_SKIPPED_ADDONS.contains(n)) {
            return Err(format!(
                "kubernetes.skip_addons: 1b668ee skips only {OLD_SKIPPED_ADDONS:?}, not {other:?}"
            ));
        }
    }
    let top: Vec<&str> = OLD_SPEC_KEYS.iter().map(|(k, _)| *k).collect();
    check_keys("spec", &spec, &top)?;
    for (name, keys) in OLD_SPEC_KEYS {
        if let Some(value) = spec.get_mut(*name) {
            for table in tables_mut(name, value)? {
                check_keys(name, table, keys)?;
            }
        }
    }
    toml::to_string(&spec).map_err(|e| format!("rendering the old-format spec: {e}"))
}

/// Today's lock `text` as 1b668ee reads it (see the module doc).
pub fn old_format_lock(text: &str) -> Result<String, String> {
    let mut lock = parse("the lock", text)?;
    lock.remove("packages");
    check_keys("lock", &lock, &["version", "artifact"])?;
    if let Some(artifacts) = lock.get_mut("artifact") {
        for artifact in tables_mut("artifact", artifacts)? {
            artifact.remove("architecture");
            artifact.remove("suite");
            check_keys("artifact", artifact, OLD_ARTIFACT_KEYS)?;
        }
    }
    let body = toml::to_string(&lock).map_err(|e| format!("rendering the old-format lock: {e}"))?;
    Ok(format!(
        "# The bench's old-format copy of a nodeimg lock, for the nodeimg of 1b668ee.\n{body}"
    ))
}
