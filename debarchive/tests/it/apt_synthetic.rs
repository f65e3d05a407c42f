//! The resolver against real apt on small synthetic archives: each case is a flat `file:`
//! repository and a dpkg status in a sandbox, resolved by us and by
//! `apt-get -s install --no-install-recommends`; the installed sets must be identical, or
//! both must fail.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use debarchive::packages;
use debarchive::resolve::{self, Index, ResolveError};
use debarchive::status;

const HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// `Package: name\nVersion: v\n…` stanzas without the download fields, which are added.
fn index_text(stanzas: &str) -> String {
    stanzas
        .trim()
        .split("\n\n")
        .map(|s| {
            let name = s
                .lines()
                .find_map(|l| l.strip_prefix("Package: "))
                .expect("stanza has a Package");
            format!("{s}\nFilename: pool/{name}.deb\nSize: 10\nSHA256: {HASH}\n")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Status stanzas get `Status: install ok installed`.
fn status_text(stanzas: &str) -> String {
    stanzas
        .trim()
        .split("\n\n")
        .filter(|s| !s.trim().is_empty())
        .map(|s| format!("{s}\nStatus: install ok installed\n"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// apt's choice in a sandbox that reads nothing of the host's configuration or lists.
fn apt_choice(
    dir: &Path,
    index: &str,
    status: &str,
    wanted: &[&str],
) -> Result<BTreeMap<String, String>, String> {
    for sub in ["repo", "lists/partial", "cache/archives/partial", "parts"] {
        std::fs::create_dir_all(dir.join(sub)).expect("sandbox dirs");
    }
    std::fs::write(dir.join("repo/Packages"), index).expect("Packages");
    std::fs::write(dir.join("status"), status).expect("status");
    std::fs::write(
        dir.join("sources.list"),
        format!("deb [trusted=yes] file:{} ./\n", dir.join("repo").display()),
    )
    .expect("sources.list");
    let d = dir.display();
    let options = [
        format!("Dir::Etc::sourcelist={d}/sources.list"),
        format!("Dir::Etc::sourceparts={d}/parts"),
        format!("Dir::Etc::preferences={d}/parts/none"),
        format!("Dir::Etc::preferencesparts={d}/parts"),
        format!("Dir::Etc::main={d}/parts/none"),
        format!("Dir::Etc::parts={d}/parts"),
        format!("Dir::State::lists={d}/lists"),
        format!("Dir::State::extended_states={d}/extended_states"),
        format!("Dir::State::status={d}/status"),
        format!("Dir::Cache={d}/cache"),
        "Dir::Cache::pkgcache=".into(),
        "Dir::Cache::srcpkgcache=".into(),
        "APT::Architecture=amd64".into(),
        "APT::Architectures::=amd64".into(),
        "Debug::NoLocking=1".into(),
    ];
    let apt = |args: &[&str]| {
        let mut cmd = child_process::Command::new("apt-get", Duration::from_secs(120));
        for o in &options {
            cmd.arg("-o").arg(o);
        }
        cmd.args(args).env("LC_ALL", "C");
        cmd.run_status().expect("apt-get runs")
    };
    let update = apt(&["-qq", "update"]);
    assert!(
        update.status.success(),
        "apt-get update: {}",
        update.stderr_tail
    );
    let mut args = vec!["-s", "-qq", "--no-install-recommends", "install"];
    args.extend(wanted);
    let out = apt(&args);
    if !out.status.success() {
        return Err(format!("{}{}", out.stdout_lossy(), out.stderr_tail));
    }
    crate::simulated_installs(&out.stdout_lossy())
}

fn ours(
    index: &str,
    status: &str,
    wanted: &[&str],
) -> Result<BTreeMap<String, String>, ResolveError> {
    let indexes = [Index {
        suite: "synthetic".into(),
        label: "file:repo ./".into(),
        packages: packages::parse_index(index, "Packages").expect("synthetic Packages parse"),
    }];
    let installed = status::installed(status, "status").expect("synthetic status parses");
    let wanted: Vec<String> = wanted.iter().map(|w| (*w).to_owned()).collect();
    Ok(resolve::resolve("amd64", &installed, &indexes, &wanted)?
        .into_iter()
        .map(|c| (c.name, c.version))
        .collect())
}

/// Resolves with both and compares; returns our result for further checks.
fn case(
    what: &str,
    index: &str,
    status: &str,
    wanted: &[&str],
) -> Result<BTreeMap<String, String>, ResolveError> {
    let (index, status) = (index_text(index), status_text(status));
    let dir = tempfile::tempdir().expect("tempdir");
    let apt = apt_choice(dir.path(), &index, &status, wanted);
    let ours = ours(&index, &status, wanted);
    match (&ours, &apt) {
        (Ok(o), Ok(a)) => assert_eq!(o, a, "{what}: ours (left) and apt-get -s (right) differ"),
        (Err(_), Err(_)) => {}
        _ => panic!("{what}: ours {ours:?}, apt-get -s {apt:?}"),
    }
    ours
}

fn set(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn virtual_first_alternative_with_several_providers() {
    let index = "Package: app\nVersion: 1\nArchitecture: amd64\nDepends: mta | fallback\n\n\
                 Package: exim\nVersion: 1\nArchitecture: all\nProvides: mta\nPriority: optional\n\n\
                 Package: postfix\nVersion: 1\nArchitecture: all\nProvides: mta\nPriority: optional\n\n\
                 Package: fallback\nVersion: 1\nArchitecture: all\n";
    // Equal priority: apt takes the provider it met last, not the real second alternative.
    let got = case("equal priority", index, "", &["app"]).unwrap();
    assert_eq!(got, set(&[("app", "1"), ("postfix", "1")]));
    let index = index.replacen("Priority: optional", "Priority: standard", 1);
    let got = case("priority decides", &index, "", &["app"]).unwrap();
    assert_eq!(got, set(&[("app", "1"), ("exim", "1")]));
}

#[test]
fn virtual_wanted_names() {
    let one = "Package: exim\nVersion: 1\nArchitecture: all\nProvides: mta\n";
    let got = case("one provider", one, "", &["mta"]).unwrap();
    assert_eq!(got, set(&[("exim", "1")]));
    let two = format!("{one}\nPackage: postfix\nVersion: 1\nArchitecture: all\nProvides: mta\n");
    let err = case("several providers", &two, "", &["mta"]).unwrap_err();
    assert!(
        matches!(&err, ResolveError::AmbiguousVirtual { providers, .. } if providers == &["exim", "postfix"]),
        "{err}"
    );
    let err = case("unknown", one, "", &["nosuch"]).unwrap_err();
    assert!(
        matches!(&err, ResolveError::UnknownPackage { name, searched } if name == "nosuch" && searched == &["file:repo ./"]),
        "{err}"
    );
}

#[test]
fn versioned_provides() {
    let index = "Package: app\nVersion: 1\nArchitecture: amd64\nDepends: libfoo (>= 2)\n\n\
                 Package: foo-old\nVersion: 5\nArchitecture: amd64\nProvides: libfoo\n\n\
                 Package: foo-older\nVersion: 5\nArchitecture: amd64\nProvides: libfoo (= 1.0)\n\n\
                 Package: foo-new\nVersion: 1\nArchitecture: amd64\nProvides: libfoo (= 2.1)\n";
    let got = case("versioned provides", index, "", &["app"]).unwrap();
    assert_eq!(got, set(&[("app", "1"), ("foo-new", "1")]));
    let unversioned = index.replace("libfoo (= 2.1)", "libfoo");
    case(
        "unversioned provides cannot meet a versioned dependency",
        &unversioned,
        "",
        &["app"],
    )
    .unwrap_err();
}

#[test]
fn upgrades_only_what_needs_it() {
    let index = "Package: app\nVersion: 1\nArchitecture: amd64\nDepends: lib (>= 2), other (>= 1)\n\n\
                 Package: lib\nVersion: 2\nArchitecture: amd64\n\n\
                 Package: other\nVersion: 3\nArchitecture: amd64\n";
    let status = "Package: lib\nVersion: 1\nArchitecture: amd64\n\n\
                  Package: other\nVersion: 1\nArchitecture: amd64\n";
    let got = case("versioned dependency upgrades", index, status, &["app"]).unwrap();
    assert_eq!(got, set(&[("app", "1"), ("lib", "2")]));
    let got = case(
        "wanted and installed at the candidate",
        index,
        "Package: app\nVersion: 1\nArchitecture: amd64\nDepends: lib (>= 2), other (>= 1)\n\nPackage: lib\nVersion: 2\nArchitecture: amd64\n\nPackage: other\nVersion: 1\nArchitecture: amd64\n",
        &["app"],
    )
    .unwrap();
    assert!(got.is_empty(), "{got:?}");
    let got = case("wanted and older installed", index, status, &["other"]).unwrap();
    assert_eq!(got, set(&[("other", "3")]));
}

#[test]
fn upgrades_follow_source_and_reverse_dependencies() {
    let index = "Package: x-bin\nSource: x\nVersion: 2-1\nArchitecture: amd64\nDepends: libx\n\n\
                 Package: libx\nSource: x\nVersion: 2-1\nArchitecture: amd64\n\n\
                 Package: lib\nVersion: 2\nArchitecture: amd64\n\n\
                 Package: lib-dev\nVersion: 2\nArchitecture: amd64\nDepends: lib (= 2)\n";
    let status = "Package: libx\nSource: x\nVersion: 1-1\nArchitecture: amd64\n\n\
                  Package: lib\nVersion: 1\nArchitecture: amd64\n\n\
                  Package: lib-dev\nVersion: 1\nArchitecture: amd64\nDepends: lib (= 1)\n";
    let got = case("same source upgraded", index, status, &["x-bin"]).unwrap();
    assert_eq!(got, set(&[("x-bin", "2-1"), ("libx", "2-1")]));
    let got = case("reverse dependency upgraded", index, status, &["lib"]).unwrap();
    assert_eq!(got, set(&[("lib", "2"), ("lib-dev", "2")]));
}

#[test]
fn multi_arch_any() {
    let index = "Package: app\nVersion: 1\nArchitecture: amd64\nDepends: perl:any\n\n\
                 Package: perl\nVersion: 1\nArchitecture: amd64\nMulti-Arch: allowed\n\n\
                 Package: tool\nVersion: 1\nArchitecture: amd64\nDepends: python:any\n\n\
                 Package: python\nVersion: 1\nArchitecture: amd64\n";
    let got = case(":any with Multi-Arch: allowed", index, "", &["app"]).unwrap();
    assert_eq!(got, set(&[("app", "1"), ("perl", "1")]));
    case(":any without Multi-Arch: allowed", index, "", &["tool"]).unwrap_err();
}

#[test]
fn alternatives_fall_through() {
    let index = "Package: app\nVersion: 1\nArchitecture: amd64\nPre-Depends: x | y\n\n\
                 Package: x\nVersion: 1\nArchitecture: amd64\nDepends: missing\n\n\
                 Package: y\nVersion: 1\nArchitecture: all\n\n\
                 Package: z\nVersion: 1\nArchitecture: amd64\nDepends: app, x | y\n";
    let got = case("first alternative not installable", index, "", &["app"]).unwrap();
    assert_eq!(got, set(&[("app", "1"), ("y", "1")]));
    let got = case(
        "alternative met by installed",
        index,
        "Package: y\nVersion: 0.5\nArchitecture: all\n",
        &["z"],
    )
    .unwrap();
    assert_eq!(got, set(&[("app", "1"), ("z", "1")]));
}

#[test]
fn unsatisfiable_names_the_chain() {
    let index = "Package: a\nVersion: 1\nArchitecture: amd64\nDepends: b\n\n\
                 Package: b\nVersion: 1\nArchitecture: amd64\nDepends: c (>= 2) | d\n\n\
                 Package: c\nVersion: 1\nArchitecture: amd64\n\n\
                 Package: d\nVersion: 1\nArchitecture: i386\n";
    let err = case("unsatisfiable", index, "", &["a"]).unwrap_err();
    let ResolveError::Unsatisfiable {
        chain,
        relation,
        why,
    } = &err
    else {
        panic!("{err}");
    };
    assert_eq!(chain, &["a", "b"], "{err}");
    assert_eq!(relation, "c (>= 2) | d");
    assert!(
        why.contains("candidate 1") && why.contains("no package is or provides d"),
        "{why}"
    );
}

#[test]
fn breaks_resolved_by_upgrade_or_reported() {
    let index = "Package: new\nVersion: 1\nArchitecture: amd64\nBreaks: old (<< 2)\n\n\
                 Package: old\nVersion: 2\nArchitecture: amd64\n";
    let status = "Package: old\nVersion: 1\nArchitecture: amd64\n";
    let got = case(
        "breaks ended by upgrading the installed package",
        index,
        status,
        &["new"],
    )
    .unwrap();
    assert_eq!(got, set(&[("new", "1"), ("old", "2")]));
    let index = index.replace("old (<< 2)", "old (<< 3)");
    // apt removes `old`; we refuse and name both.
    let err = case("breaks that only a removal ends", &index, status, &["new"]).unwrap_err();
    assert!(
        matches!(&err, ResolveError::Conflict(c) if c.package == "new" && c.other == "old" && c.kind == "Breaks"),
        "{err}"
    );
}
