//! The distro packages step against the REAL Debian archive (`deb.debian.org`, reachable
//! here): the base is the Debian 12 cloud fixture, whose dpkg status is read through
//! `diskimg` (no mount), and apt itself is the independent judge: `apt-get install -s` with
//! that status and the very InRelease and Packages files fetch downloaded must choose the same
//! packages at the same versions.

pub(super) mod local_archive;
mod minbase;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use child_process::Command;
use debarchive::packages::Package;
use debarchive::resolve::{Choice, Index};
use inputs::cache::Cache;
use inputs::fetch::archive::{self, Suite};
use inputs::fetch::base_status;
use inputs::fetch::http::{Http, Limits, Unwatched};
use inputs::fetch::packages::{self, Context};
use inputs::lock::{self, Artifact, Kind};

/// The Debian 12 cloud fixture, or `None` (after saying why) when it cannot be had here.
pub(super) fn fixture_base() -> Option<std::path::PathBuf> {
    match fixtures::cloud_image::debian12_cloud_qcow2() {
        Ok(path) => Some(path),
        Err(e) => {
            fixtures::tools::skip(&format!("Debian 12 fixture image unavailable: {e:#}"));
            None
        }
    }
}

/// The lock entry of the base image at `path`.
pub(super) fn base_artifact(path: &Path, sha256: &str, size: u64) -> Artifact {
    Artifact {
        name: "base".into(),
        kind: Kind::BaseImage,
        component: None,
        version: None,
        architecture: None,
        suite: None,
        source: path.display().to_string(),
        size,
        sha256: sha256.to_owned(),
        dest: None,
        mode: None,
        image: None,
        note: None,
    }
}

/// apt's name for a file of `url` (`http://deb.debian.org/debian` + `dists/bookworm/InRelease`
/// → `deb.debian.org_debian_dists_bookworm_InRelease`).
fn apt_list_name(url: &str, path: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    format!("{rest}/{path}").replace('/', "_")
}

/// `apt-get install -s --no-install-recommends wanted…` with `status` as the dpkg database and
/// `suites` as the only lists: the `(name, version)` pairs apt would install.
fn apt_simulate(
    dir: &Path,
    status: &str,
    suites: &[Suite],
    wanted: &[String],
) -> BTreeSet<(String, String)> {
    let lists = dir.join("lists");
    let state = dir.join("state");
    let cache = dir.join("cache");
    let parts = dir.join("empty");
    for d in [&lists, &state, &cache, &parts, &lists.join("partial")] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(state.join("status"), status).unwrap();
    let mut sources = String::new();
    for suite in suites {
        std::fs::write(
            lists.join(apt_list_name(
                &suite.url,
                &format!("dists/{}/InRelease", suite.suite),
            )),
            &suite.in_release,
        )
        .unwrap();
        for (component, text) in &suite.packages {
            std::fs::write(
                lists.join(apt_list_name(
                    &suite.url,
                    &format!("dists/{}/{component}/binary-amd64/Packages", suite.suite),
                )),
                text,
            )
            .unwrap();
        }
        let components: Vec<&str> = suite.packages.iter().map(|(c, _)| c.as_str()).collect();
        sources.push_str(&format!(
            "deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] {} {} {}\n",
            suite.url,
            suite.suite,
            components.join(" ")
        ));
    }
    let source_list = dir.join("sources.list");
    std::fs::write(&source_list, sources).unwrap();
    let option = |key: &str, value: &Path| format!("-o{key}={}", value.display());
    let out = Command::new("apt-get", Duration::from_secs(300))
        .args(["-s", "-qq", "--no-install-recommends"])
        .arg(option("Dir::State", &state))
        .arg(option("Dir::State::status", &state.join("status")))
        .arg(option("Dir::State::Lists", &lists))
        .arg(option("Dir::Cache", &cache))
        .arg(option("Dir::Etc::SourceList", &source_list))
        .arg("-oDir::Etc::SourceParts=/dev/null")
        .arg(option("Dir::Etc::PreferencesParts", &parts))
        .arg("-oDir::Etc::Preferences=/dev/null")
        .args([
            "-oDebug::NoLocking=1",
            "-oAPT::Architecture=amd64",
            "-oAPT::Architectures::=amd64",
        ])
        .arg("install")
        .args(wanted)
        .run()
        .unwrap();
    out.stdout_lossy()
        .lines()
        .filter_map(|line| line.strip_prefix("Inst "))
        .map(|rest| {
            let mut words = rest.split_whitespace();
            let name = words.next().unwrap().to_owned();
            // `Inst NAME [OLD] (VERSION SUITE [ARCH])`
            let version = rest
                .split_once('(')
                .and_then(|(_, v)| v.split_whitespace().next())
                .unwrap()
                .to_owned();
            (name, version)
        })
        .collect()
}

/// Every suite of `distro`'s archive, read and verified as fetch reads it, and their indexes.
pub(super) fn read_distro_archive(distro: &distros::Distro) -> (Vec<Suite>, Vec<Index>) {
    let http = Http::new(Limits::default(), Arc::new(Unwatched));
    let started = Instant::now();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut suites = Vec::new();
    for source in archive::distro_sources(distro) {
        let keyring = archive::load_keyring(&source.keyring).unwrap();
        for suite in &source.suites {
            suites.push(
                archive::read_suite(&http, None, &source, &keyring, suite, "amd64", now).unwrap(),
            );
        }
    }
    let indexes = suites
        .iter()
        .flat_map(|suite| suite.indexes("amd64").unwrap())
        .collect();
    eprintln!(
        "read and verified {} suites in {:.1?}",
        suites.len(),
        started.elapsed()
    );
    (suites, indexes)
}

/// The names fetch wants for a Debian 12 spec whose `[packages] extra` is `extra`, as
/// `packages::wanted` computes them from the parsed spec.
fn wanted_for(extra: &[&str]) -> Vec<String> {
    let section = if extra.is_empty() {
        String::new()
    } else {
        let quoted: Vec<String> = extra.iter().map(|name| format!("{name:?}")).collect();
        format!("[packages]\nextra = [{}]\n", quoted.join(", "))
    };
    let path = Path::new("/nonexistent/node.toml");
    let text = local_archive::spec_text(
        Path::new("/nonexistent/base.qcow2"),
        &"0".repeat(64),
        &section,
    );
    let spec = inputs::spec::parse(path, &text).unwrap();
    packages::wanted(&spec, &distros::debian12::DEBIAN_12)
}

/// nodeimg's choices and apt's `(name, version)` set, side by side: one row per package either
/// chose, `!=` marking a row where they differ.
pub(super) fn side_by_side(
    base: &str,
    wanted: &[String],
    ours: &[Choice],
    apt: &BTreeSet<(String, String)>,
) -> String {
    let mut names: BTreeSet<&str> = ours.iter().map(|c| c.name.as_str()).collect();
    names.extend(apt.iter().map(|(name, _)| name.as_str()));
    let rows: Vec<[String; 5]> = names
        .into_iter()
        .map(|name| {
            let choice = ours.iter().find(|c| c.name == name);
            let theirs = apt.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
            let version = choice.map(|c| c.version.clone());
            let mark = if version == theirs { "" } else { "!=" };
            [
                name.to_owned(),
                version.unwrap_or_else(|| "-".to_owned()),
                choice.map_or_else(|| "-".to_owned(), |c| c.suite.clone()),
                theirs.unwrap_or_else(|| "-".to_owned()),
                mark.to_owned(),
            ]
        })
        .collect();
    let header = [
        "package",
        "nodeimg version",
        "nodeimg suite",
        "apt version",
        "diff",
    ]
    .map(str::to_owned);
    let widths: Vec<usize> = (0..5)
        .map(|i| {
            rows.iter()
                .chain([&header])
                .map(|row| row[i].len())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |row: &[String; 5]| {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        format!("| {} |\n", cells.join(" | "))
    };
    let mut table = format!(
        "base: {base}\nwanted: {}\n{}{}",
        wanted.join(" "),
        line(&header),
        line(
            &widths
                .iter()
                .map(|w| "-".repeat(*w))
                .collect::<Vec<_>>()
                .try_into()
                .unwrap()
        )
    );
    for row in &rows {
        table.push_str(&line(row));
    }
    table.push_str(&format!(
        "{} packages by nodeimg, {} by apt\n",
        ours.len(),
        apt.len()
    ));
    table
}

/// For the node role's packages, then those and `nfs-common`: resolves them with nodeimg's
/// resolver against `installed` (the dpkg status `status`) and the archive's indexes, has apt
/// simulate the same install against the same status and the very same InRelease and Packages
/// files, prints both side by side and asserts that they chose the same packages at the same
/// versions.
pub(super) fn compare_node_sets_with_apt(
    base: &str,
    status: &str,
    installed: &[Package],
    archive: &(Vec<Suite>, Vec<Index>),
) {
    let (suites, indexes) = archive;
    let dir = tempfile::tempdir().unwrap();
    for extra in [&[][..], &["nfs-common"][..]] {
        let wanted = wanted_for(extra);
        let choices = debarchive::resolve::resolve("amd64", installed, indexes, &wanted).unwrap();
        let ours: BTreeSet<(String, String)> = choices
            .iter()
            .map(|choice| (choice.name.clone(), choice.version.clone()))
            .collect();
        assert_eq!(
            ours.len(),
            choices.len(),
            "a package chosen twice: {choices:?}"
        );
        let apt_dir = dir.path().join(format!("apt{}", extra.len()));
        let apt = apt_simulate(&apt_dir, status, suites, &wanted);
        eprintln!("{}", side_by_side(base, &wanted, &choices, &apt));
        assert!(!apt.is_empty(), "{base} lacks none of {wanted:?}");
        assert_eq!(
            ours, apt,
            "nodeimg and apt chose differently for {wanted:?} on {base}"
        );
    }
}

#[test]
fn the_real_debian_archive_resolves_as_apt_does_and_a_second_fetch_downloads_nothing() {
    let Some(base_image) = fixture_base() else {
        return;
    };
    let distro = &distros::debian12::DEBIAN_12;
    let status = base_status::read_status(&base_image).unwrap();
    let installed = base_status::installed(&base_image).unwrap();
    assert!(
        installed.len() > 100,
        "{} installed packages",
        installed.len()
    );
    assert!(installed.iter().any(|p| p.name == "libc6"));

    let archive = read_distro_archive(distro);
    compare_node_sets_with_apt(
        &format!(
            "the Debian 12 cloud fixture ({} installed)",
            installed.len()
        ),
        &status,
        &installed,
        &archive,
    );
    let dir = tempfile::tempdir().unwrap();
    let http = Http::new(Limits::default(), Arc::new(Unwatched));

    // The whole step twice: cold (indexes and .debs downloaded), then warm from the lock.
    let cache = Cache::new(dir.path().join("cache"));
    let (base_sha256, size) = inputs::cache::hash_file(&base_image).unwrap();
    std::fs::create_dir_all(cache.path_of(&base_sha256).parent().unwrap()).unwrap();
    inputs::cache::link_or_copy(&base_image, &cache.path_of(&base_sha256)).unwrap();
    let base = base_artifact(&base_image, &base_sha256, size);
    let spec_path = dir.path().join("node.toml");
    std::fs::write(
        &spec_path,
        local_archive::spec_text(&base_image, &base_sha256, ""),
    )
    .unwrap();
    let spec = inputs::spec::load(&spec_path).unwrap();
    let partial = cache.root().join("partial");
    std::fs::create_dir_all(&partial).unwrap();
    let context = |refresh| Context {
        http: &http,
        cache: &cache,
        partial: &partial,
        mirror: None,
        refresh,
    };
    let started = Instant::now();
    let mut stored = Vec::new();
    let cold = packages::fetch_packages(&spec, &base, None, &context(false), &mut |a| {
        stored.push(a.name.clone());
    })
    .unwrap();
    let cold_time = started.elapsed();
    assert!(cold.resolved_now && cold.downloaded_debs == cold.debs.len());
    assert_eq!(stored.len(), cold.debs.len());
    for deb in &cold.debs {
        cache.verified(deb, "").unwrap();
        assert!(
            deb.source.starts_with("http://deb.debian.org/debian"),
            "{}",
            deb.source
        );
    }
    let mut artifacts = vec![base.clone()];
    artifacts.extend(cold.debs.clone());
    let text = lock::render_with_packages(&artifacts, Some(&cold.record));
    let old = lock::parse(&dir.path().join("node.lock"), &text).unwrap();

    let started = Instant::now();
    let warm = packages::fetch_packages(&spec, &base, Some(&old), &context(false), &mut |_| {
        panic!("a warm fetch stores nothing")
    })
    .unwrap();
    let warm_time = started.elapsed();
    assert!(!warm.resolved_now);
    assert_eq!((warm.downloaded_bytes, warm.downloaded_debs), (0, 0));
    assert_eq!(warm.debs, cold.debs);
    eprintln!(
        "packages step: cold {:.1} s ({} debs, {} bytes), warm {:.3} s",
        cold_time.as_secs_f64(),
        cold.debs.len(),
        cold.downloaded_bytes,
        warm_time.as_secs_f64()
    );

    // --refresh-packages reads the archive again (the .debs are cached: none downloaded).
    let refreshed =
        packages::fetch_packages(&spec, &base, Some(&old), &context(true), &mut |_| {}).unwrap();
    assert!(refreshed.resolved_now);
    assert_eq!(refreshed.downloaded_debs, 0);
    assert_eq!(refreshed.debs, cold.debs);
}
