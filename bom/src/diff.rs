//! `nodeimg bom diff A B`: what was added, removed and changed between two BOMs, grouped by
//! inputs, OS, packages, components, images and configuration.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::Bom;

/// One changed entry: `key` had `from` in A and has `to` in B.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// What changed (`containerd /usr/bin/ctr sha256`).
    pub key: String,
    /// Its value in A.
    pub from: String,
    /// Its value in B.
    pub to: String,
}

/// The differences in one group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Group {
    /// Entries only in B.
    pub added: Vec<String>,
    /// Entries only in A.
    pub removed: Vec<String>,
    /// Entries in both with another value.
    pub changed: Vec<Change>,
}

impl Group {
    /// No difference.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// Every difference, by group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BomDiff {
    /// Spec, lock, base image and tool.
    pub inputs: Group,
    /// os-release and the kernel.
    pub os: Group,
    /// Distro packages (by name and architecture).
    pub packages: Group,
    /// Component files (by component and path).
    pub components: Group,
    /// Images (by reference).
    pub images: Group,
    /// Sysctls, modules and containerd settings.
    pub config: Group,
}

/// The groups in the order they are shown.
const GROUPS: [&str; 6] = ["inputs", "os", "packages", "components", "images", "config"];

impl BomDiff {
    /// Every group with its name, in the order they are shown.
    pub fn groups(&self) -> [(&'static str, &Group); 6] {
        [
            (GROUPS[0], &self.inputs),
            (GROUPS[1], &self.os),
            (GROUPS[2], &self.packages),
            (GROUPS[3], &self.components),
            (GROUPS[4], &self.images),
            (GROUPS[5], &self.config),
        ]
    }

    /// No difference at all.
    pub fn is_identical(&self) -> bool {
        self.groups().iter().all(|(_, g)| g.is_empty())
    }

    /// The machine-readable report.
    pub fn to_json(&self) -> String {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(map) = v.as_object_mut() {
            map.insert("identical".into(), self.is_identical().into());
        }
        let mut text = serde_json::to_string_pretty(&v).unwrap_or_default();
        text.push('\n');
        text
    }
}

/// Compares two keyed maps of fields: a key only in one side is added or removed (shown as
/// `key (summary)`), a key in both with different fields is one change per field.
fn compare(
    a: &BTreeMap<String, BTreeMap<&'static str, String>>,
    b: &BTreeMap<String, BTreeMap<&'static str, String>>,
    summary: &dyn Fn(&BTreeMap<&'static str, String>) -> String,
) -> Group {
    let mut g = Group::default();
    for (k, fb) in b {
        match a.get(k) {
            None => g.added.push(with_summary(k, &summary(fb))),
            Some(fa) => {
                for (field, vb) in fb {
                    let va = fa.get(field).cloned().unwrap_or_default();
                    if &va != vb {
                        let key = if field.is_empty() {
                            k.clone()
                        } else {
                            format!("{k} {field}")
                        };
                        g.changed.push(Change {
                            key,
                            from: va,
                            to: vb.clone(),
                        });
                    }
                }
            }
        }
    }
    for (k, fa) in a {
        if !b.contains_key(k) {
            g.removed.push(with_summary(k, &summary(fa)));
        }
    }
    g
}

fn with_summary(key: &str, summary: &str) -> String {
    if summary.is_empty() {
        key.to_owned()
    } else {
        format!("{key} {summary}")
    }
}

type Keyed = BTreeMap<String, BTreeMap<&'static str, String>>;

fn single(map: impl IntoIterator<Item = (String, String)>) -> Keyed {
    map.into_iter()
        .map(|(k, v)| (k, BTreeMap::from([("", v)])))
        .collect()
}

fn value_summary(f: &BTreeMap<&'static str, String>) -> String {
    f.get("").map(|v| format!("= {v}")).unwrap_or_default()
}

fn inputs(b: &Bom) -> Keyed {
    let i = &b.inputs;
    single([
        ("image".to_owned(), i.image.clone()),
        ("distro".to_owned(), i.distro.clone()),
        ("nodeimg_version".to_owned(), i.nodeimg_version.clone()),
        ("spec_sha256".to_owned(), i.spec_sha256.clone()),
        ("lock_sha256".to_owned(), i.lock_sha256.clone()),
        ("base_image_sha256".to_owned(), i.base_image_sha256.clone()),
    ])
}

fn os(b: &Bom) -> Keyed {
    let mut map: Vec<(String, String)> =
        b.os.os_release
            .iter()
            .map(|(k, v)| (format!("os-release {k}"), v.clone()))
            .collect();
    map.push(("kernel release".into(), b.os.kernel_release.clone()));
    map.push(("kernel cmdline".into(), b.os.kernel_cmdline.clone()));
    single(map)
}

/// Each item under its key, with its named fields.
fn keyed<T, const N: usize>(
    items: &[T],
    entry: impl Fn(&T) -> (String, [(&'static str, String); N]),
) -> Keyed {
    items
        .iter()
        .map(|item| {
            let (key, fields) = entry(item);
            (key, BTreeMap::from(fields))
        })
        .collect()
}

fn packages(b: &Bom) -> Keyed {
    keyed(&b.packages, |p| {
        (
            format!("{}:{}", p.name, p.architecture),
            [
                ("version", p.version.clone()),
                ("source", format!("{} {}", p.source, p.source_version)),
                ("held", p.held.to_string()),
            ],
        )
    })
}

fn components(b: &Bom) -> Keyed {
    keyed(&b.components, |c| {
        (
            format!("{} {}", c.name, c.path),
            [
                ("version", c.version.clone()),
                ("sha256", c.sha256.clone()),
                ("source", c.source.clone()),
            ],
        )
    })
}

fn images(b: &Bom) -> Keyed {
    single(
        b.images
            .iter()
            .map(|i| (i.reference.clone(), i.digest.clone())),
    )
}

fn config(b: &Bom) -> Keyed {
    let c = &b.config;
    let mut map: Vec<(String, String)> = Vec::new();
    map.extend(
        c.sysctls
            .iter()
            .map(|(k, v)| (format!("sysctl {k}"), v.clone())),
    );
    map.extend(c.modules.iter().map(|(k, v)| {
        (
            format!("module {k}"),
            if *v { "loaded" } else { "not loaded" }.to_owned(),
        )
    }));
    map.extend(
        c.containerd
            .iter()
            .map(|(k, v)| (format!("containerd {k}"), v.clone())),
    );
    single(map)
}

fn version_summary(f: &BTreeMap<&'static str, String>) -> String {
    f.get("version").cloned().unwrap_or_default()
}

/// The differences from `a` to `b`.
pub fn diff(a: &Bom, b: &Bom) -> BomDiff {
    BomDiff {
        inputs: compare(&inputs(a), &inputs(b), &value_summary),
        os: compare(&os(a), &os(b), &value_summary),
        packages: compare(&packages(a), &packages(b), &version_summary),
        components: compare(&components(a), &components(b), &version_summary),
        images: compare(&images(a), &images(b), &value_summary),
        config: compare(&config(a), &config(b), &value_summary),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::sample;
    use crate::model::{Image, Package};

    #[test]
    fn identical_boms_have_no_difference() {
        let d = diff(&sample(), &sample());
        assert!(d.is_identical());
        let v: serde_json::Value = serde_json::from_str(&d.to_json()).unwrap();
        assert_eq!(v["identical"], true);
    }

    #[test]
    fn each_kind_of_change_lands_in_its_group() {
        let a = sample();
        let mut b = sample();
        b.packages.retain(|p| p.name != "bash");
        b.packages.push(Package {
            name: "zsh".into(),
            version: "5.9-4".into(),
            architecture: "amd64".into(),
            source: "zsh".into(),
            source_version: "5.9-4".into(),
            held: false,
        });
        b.packages[0].held = false;
        b.components[0].version = "v1.20.3".into();
        b.components[0].sha256 = "f".repeat(64);
        b.images[0].digest = format!("sha256:{}", "1".repeat(64));
        b.images.push(Image {
            reference: "k8s.gcr.io/etcd:3.4.13-0".into(),
            digest: format!("sha256:{}", "2".repeat(64)),
        });
        b.config
            .sysctls
            .insert("vm.overcommit_memory".into(), "1".into());
        b.inputs.lock_sha256 = "9".repeat(64);
        b.os.kernel_release = "6.1.0-29-cloud-amd64".into();
        b.normalize();
        let d = diff(&a, &b);
        assert!(!d.is_identical());
        assert_eq!(d.packages.added, ["zsh:amd64 5.9-4"]);
        assert_eq!(d.packages.removed, ["bash:amd64 5.2.15-2+b7"]);
        assert_eq!(
            d.packages.changed,
            [Change {
                key: "runc:amd64 held".into(),
                from: "true".into(),
                to: "false".into()
            }]
        );
        let keys: Vec<&str> = d
            .components
            .changed
            .iter()
            .map(|c| c.key.as_str())
            .collect();
        assert_eq!(
            keys,
            [
                "kubeadm /usr/bin/kubeadm sha256",
                "kubeadm /usr/bin/kubeadm version"
            ]
        );
        assert_eq!(
            d.images.added,
            [format!(
                "k8s.gcr.io/etcd:3.4.13-0 = sha256:{}",
                "2".repeat(64)
            )]
        );
        assert_eq!(d.images.changed.len(), 1);
        assert_eq!(d.config.added, ["sysctl vm.overcommit_memory = 1"]);
        assert_eq!(d.inputs.changed[0].key, "lock_sha256");
        assert_eq!(d.os.changed[0].key, "kernel release");
        let v: serde_json::Value = serde_json::from_str(&d.to_json()).unwrap();
        assert_eq!(v["identical"], false);
        assert_eq!(v["packages"]["added"][0], "zsh:amd64 5.9-4");
    }
}
