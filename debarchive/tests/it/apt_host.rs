//! The resolver against real apt: the host's apt lists and `apt-get -s install`, which reads
//! the same lists, must choose the same package set (name and version).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use debarchive::control;
use debarchive::packages::{self, Package};
use debarchive::relation::Relation;
use debarchive::resolve::{self, Index};
use debarchive::status;

const LISTS: &str = "/var/lib/apt/lists";
const HOST_STATUS: &str = "/var/lib/dpkg/status";
/// As `fixtures::payload::NODE_PACKAGES` (not a dependency of this layer-0 crate).
const NODE_PACKAGES: &[&str] = &[
    "containerd",
    "runc",
    "containernetworking-plugins",
    "iptables",
    "conntrack",
    "socat",
    "ethtool",
    "ebtables",
];
const TRICKY: &[&str] = &["nfs-common", "cloud-init", "openssh-server", "python3-yaml"];

/// The host's `Packages` lists in the order apt reads them (its sources), decompressed by
/// apt's own helper.
fn host_indexes() -> Vec<Index> {
    let out = child_process::Command::new("apt-get", Duration::from_secs(60))
        .args([
            "indextargets",
            "--format",
            "$(FILENAME)",
            "Identifier: Packages",
        ])
        .run()
        .unwrap_or_else(|e| panic!("apt-get indextargets: {e}"));
    let files: Vec<PathBuf> = out
        .stdout_lossy()
        .lines()
        .filter(|l| l.starts_with(LISTS))
        .filter_map(|l| {
            // The list may be stored compressed: FILENAME names it without the suffix.
            ["", ".lz4", ".gz", ".xz", ".zst"]
                .iter()
                .map(|ext| PathBuf::from(format!("{l}{ext}")))
                .find(|p| p.exists())
        })
        .collect();
    assert!(
        !files.is_empty(),
        "no Packages lists in {LISTS}: run apt-get update"
    );
    files.iter().map(|file| read_index(file)).collect()
}

fn read_index(file: &Path) -> Index {
    let out = child_process::Command::new("/usr/lib/apt/apt-helper", Duration::from_secs(300))
        .arg("cat-file")
        .arg(file)
        .stdout_cap(1 << 30)
        .run()
        .unwrap_or_else(|e| panic!("apt-helper cat-file {}: {e}", file.display()));
    let text = String::from_utf8(out.stdout).expect("Packages is UTF-8");
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .expect("file name");
    // deb.debian.org_debian_dists_<suite>_<component>_binary-<arch>_Packages.lz4
    let suite = name
        .split_once("_dists_")
        .and_then(|(_, rest)| rest.split('_').next())
        .unwrap_or_else(|| panic!("no suite in {name}"))
        .to_owned();
    let packages = packages::parse_index(&text, name).unwrap_or_else(|e| panic!("{e}"));
    Index {
        suite,
        label: name.to_owned(),
        packages,
    }
}

/// What `apt-get -s install --no-install-recommends wanted` would install: name -> version.
fn apt_choice(status_file: &Path, wanted: &[&str]) -> BTreeMap<String, String> {
    let out = child_process::Command::new("apt-get", Duration::from_secs(600))
        .args(["-s", "-qq", "--no-install-recommends", "-o"])
        .arg(format!("Dir::State::status={}", status_file.display()))
        .arg("install")
        .args(wanted)
        .env("LC_ALL", "C")
        .run()
        .unwrap_or_else(|e| panic!("apt-get -s install {wanted:?}: {e}"));
    crate::simulated_installs(&out.stdout_lossy())
        .unwrap_or_else(|e| panic!("apt-get -s install {wanted:?}: {e}"))
}

fn compare_with_apt(what: &str, status_file: &Path, wanted: &[&str], indexes: &[Index]) -> usize {
    let text = std::fs::read_to_string(status_file).expect("status file");
    let installed = status::installed(&text, &status_file.display().to_string())
        .unwrap_or_else(|e| panic!("{e}"));
    let wanted_owned: Vec<String> = wanted.iter().map(|w| (*w).to_owned()).collect();
    let ours: BTreeMap<String, String> =
        resolve::resolve("amd64", &installed, indexes, &wanted_owned)
            .unwrap_or_else(|e| panic!("{what}: resolve failed: {e}"))
            .into_iter()
            .map(|c| (c.name, c.version))
            .collect();
    let apt = apt_choice(status_file, wanted);
    if ours != apt {
        let names: BTreeSet<&String> = ours.keys().chain(apt.keys()).collect();
        let mut table = format!("{:<40} {:<30} {:<30}\n", "package", "ours", "apt-get -s");
        for name in names {
            let o = ours.get(name).map_or("-", String::as_str);
            let a = apt.get(name).map_or("-", String::as_str);
            let mark = if o == a { "" } else { "  <<<" };
            table.push_str(&format!("{name:<40} {o:<30} {a:<30}{mark}\n"));
        }
        panic!(
            "{what}: the resolver ({} packages) and apt ({} packages) differ:\n{table}",
            ours.len(),
            apt.len()
        );
    }
    eprintln!("{what}: {} packages, identical to apt-get -s", ours.len());
    ours.len()
}

#[test]
fn same_choice_as_apt_on_the_host_status() {
    let indexes = host_indexes();
    let status = Path::new(HOST_STATUS);
    let n = compare_with_apt(
        "host status, node packages",
        status,
        NODE_PACKAGES,
        &indexes,
    );
    assert!(
        n > 0,
        "the node packages should need something on this host"
    );
    for tricky in TRICKY {
        let mut wanted = NODE_PACKAGES.to_vec();
        wanted.push(tricky);
        compare_with_apt(
            &format!("host status, node packages + {tricky}"),
            status,
            &wanted,
            &indexes,
        );
    }
    let mut all = NODE_PACKAGES.to_vec();
    all.extend(TRICKY);
    compare_with_apt(
        "host status, node packages + all tricky",
        status,
        &all,
        &indexes,
    );
}

#[test]
fn same_choice_as_apt_on_a_minimal_status() {
    let indexes = host_indexes();
    let dir = tempfile::tempdir().expect("tempdir");
    let status = dir.path().join("status");
    let (text, kept) = minimal_status();
    std::fs::write(&status, text).expect("write status");
    assert!(kept > 20, "only {kept} required packages kept");
    let mut wanted = vec!["cloud-init"];
    wanted.extend(NODE_PACKAGES);
    let n = compare_with_apt(
        "required-only status, cloud-init + node packages",
        &status,
        &wanted,
        &indexes,
    );
    assert!(
        n > 50,
        "a minimal system should need many packages, got {n}"
    );
    let mut all = wanted.clone();
    all.extend(TRICKY);
    compare_with_apt("required-only status, everything", &status, &all, &indexes);
    // Virtual alternatives (default-mta | mail-transport-agent, time-daemon), many providers.
    let extra = ["mailutils", "chrony", "apache2", "docker.io"];
    compare_with_apt(
        "required-only status, virtual-heavy set",
        &status,
        &extra,
        &indexes,
    );
}

/// The host's status reduced to its installed `Priority: required` and `Essential: yes`
/// packages plus what their dependencies need among the installed ones, so that apt sees a
/// consistent system. Returns the text and how many packages it keeps.
fn minimal_status() -> (String, usize) {
    let text = std::fs::read_to_string(HOST_STATUS).expect("host status");
    let paragraphs = control::parse(&text, HOST_STATUS).unwrap_or_else(|e| panic!("{e}"));
    let installed = status::installed(&text, HOST_STATUS).unwrap_or_else(|e| panic!("{e}"));
    let by_name: BTreeMap<&str, &Package> =
        installed.iter().map(|p| (p.name.as_str(), p)).collect();
    let mut keep: BTreeSet<&str> = installed
        .iter()
        .filter(|p| p.essential || p.priority.as_deref() == Some("required"))
        .map(|p| p.name.as_str())
        .collect();
    let met = |keep: &BTreeSet<&str>, r: &Relation| {
        keep.contains(r.name.as_str())
            || keep
                .iter()
                .any(|k| by_name[k].provides.iter().any(|p| p.name == r.name))
    };
    loop {
        let mut add = BTreeSet::new();
        for name in &keep {
            let p = by_name[name];
            for group in p.pre_depends.iter().chain(&p.depends) {
                if group.0.iter().any(|r| met(&keep, r)) {
                    continue;
                }
                let provider = group.0.iter().find_map(|r| {
                    by_name
                        .get(r.name.as_str())
                        .map(|p| p.name.as_str())
                        .or_else(|| {
                            installed
                                .iter()
                                .find(|p| p.provides.iter().any(|v| v.name == r.name))
                                .map(|p| p.name.as_str())
                        })
                });
                let provider =
                    provider.unwrap_or_else(|| panic!("{name}: {group} is not met on the host"));
                add.insert(provider);
            }
        }
        if add.is_empty() {
            break;
        }
        keep.extend(add);
    }
    let mut out = String::new();
    for p in &paragraphs {
        let name = p.get("Package").unwrap_or_default();
        let ok = installed.iter().any(|i| i.name == name && i.line == p.line);
        if ok && keep.contains(name) {
            for f in &p.fields {
                out.push_str(&f.name);
                out.push(':');
                for (i, line) in f.value.split('\n').enumerate() {
                    match (i, line.is_empty()) {
                        (0, true) => {}
                        (0, false) => {
                            out.push(' ');
                            out.push_str(line);
                        }
                        (_, true) => out.push_str("\n ."),
                        (_, false) => {
                            out.push_str("\n ");
                            out.push_str(line);
                        }
                    }
                }
                out.push('\n');
            }
            out.push('\n');
        }
    }
    (out, keep.len())
}
