//! Tests of [`super::old_inputs`].

use super::old_inputs::*;
use toml::{Table, Value};

const SPEC: &str = "# a comment\n[image]\nname = \"x\"\ndistro = \"debian-12\"\n\
    firmware = \"uefi\"\ndisk_gib = 4\n\n[base]\npath = \"/b.qcow2\"\nsha256 = \"ab\"\n\
    format = \"qcow2\"\n\n[kubernetes]\nversion = \"v1.20.2\"\nskip_addons = [\"coredns\"]\n\n\
    [components]\ncontainerd = \"1.6.20\"\nruncc = \"\"\n";

#[test]
fn the_spec_loses_only_skip_addons_and_keeps_everything_else() {
    let good = SPEC.replace("runcc = \"\"\n", "runc = \"1.1.5\"\n");
    let old: Table = toml::from_str(&old_format_spec(&good).unwrap()).unwrap();
    let mut want: Table = toml::from_str(&good).unwrap();
    let k8s = want.get_mut("kubernetes").and_then(Value::as_table_mut);
    assert!(k8s.unwrap().remove("skip_addons").is_some());
    assert_eq!(old, want);
    let with_checks = format!("{good}\n[[checks]]\nname = \"c\"\nrun = \"true\"\n");
    assert!(old_format_spec(&with_checks).is_ok());
}

#[test]
fn what_the_old_format_cannot_say_is_an_error() {
    assert!(
        old_format_spec(SPEC)
            .unwrap_err()
            .contains("components.runcc")
    );
    let proxy = SPEC
        .replace("[\"coredns\"]", "[\"coredns\", \"kube-proxy\"]")
        .replace("runcc = \"\"\n", "");
    assert!(old_format_spec(&proxy).unwrap_err().contains("kube-proxy"));
    let keyring = SPEC
        .replace(
            "format = \"qcow2\"",
            "format = \"qcow2\"\nkeyring = \"k.gpg\"",
        )
        .replace("runcc = \"\"\n", "");
    assert!(
        old_format_spec(&keyring)
            .unwrap_err()
            .contains("base.keyring")
    );
    let packages = format!(
        "{}\n[packages]\nfetch = true\n",
        SPEC.replace("runcc = \"\"\n", "")
    );
    assert!(
        old_format_spec(&packages)
            .unwrap_err()
            .contains("spec.packages")
    );
}

fn artifact(name: &str, kind: inputs::lock::Kind) -> inputs::lock::Artifact {
    inputs::lock::Artifact {
        name: name.into(),
        kind,
        component: None,
        version: None,
        architecture: None,
        suite: None,
        source: "s".into(),
        size: 1,
        sha256: "a".repeat(64),
        dest: None,
        mode: None,
        image: None,
        note: Some("n".into()),
    }
}

#[test]
fn a_lock_rendered_by_todays_code_keeps_its_artifacts() {
    let mut deb = artifact("deb-x", inputs::lock::Kind::Deb);
    deb.architecture = Some("amd64".into());
    deb.suite = Some("bookworm".into());
    let mut kubeadm = artifact("kubeadm", inputs::lock::Kind::Binary);
    kubeadm.dest = Some("/usr/bin/kubeadm".into());
    kubeadm.mode = Some("0755".into());
    let set = inputs::lock::PackageSet {
        wanted: vec!["x".into()],
        base_sha256: "b".repeat(64),
        sources: vec!["http://m bookworm | main | k".into()],
    };
    let text = inputs::lock::render_with_packages(
        &[
            artifact("base", inputs::lock::Kind::BaseImage),
            deb,
            kubeadm,
        ],
        Some(&set),
    );
    assert!(
        text.contains("[packages]") && text.contains("suite"),
        "{text}"
    );
    let old: Table = toml::from_str(&old_format_lock(&text).unwrap()).unwrap();
    assert!(!old.contains_key("packages"));
    let artifacts = old["artifact"].as_array().unwrap();
    assert_eq!(artifacts.len(), 3);
    assert!(artifacts[1].get("architecture").is_none() && artifacts[1].get("suite").is_none());
    assert_eq!(artifacts[2]["dest"].as_str(), Some("/usr/bin/kubeadm"));
    assert_eq!(old["version"].as_integer(), Some(1));
    let unknown = text.replace("note = \"n\"", "note = \"n\"\nsigned_by = \"k\"");
    assert!(
        old_format_lock(&unknown)
            .unwrap_err()
            .contains("artifact.signed_by")
    );
}
