//! Resolver cases on small synthetic indexes (the same behaviours are checked against
//! `apt-get -s` in `tests/it/apt_synthetic.rs`).

use super::*;
use crate::packages;

const HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An index from stanzas without download fields.
fn index(suite: &str, stanzas: &str) -> Index {
    let text: Vec<String> = stanzas
        .trim()
        .split("\n\n")
        .map(|s| {
            let name = s.lines().find_map(|l| l.strip_prefix("Package: ")).unwrap();
            format!("{s}\nFilename: pool/{suite}/{name}.deb\nSize: 10\nSHA256: {HASH}\n")
        })
        .collect();
    Index {
        suite: suite.into(),
        label: format!("test {suite}"),
        packages: packages::parse_index(&text.join("\n"), suite).unwrap(),
    }
}

fn installed(stanzas: &str) -> Vec<Package> {
    let text: Vec<String> = stanzas
        .trim()
        .split("\n\n")
        .filter(|s| !s.trim().is_empty())
        .map(|s| format!("{s}\nStatus: install ok installed\n"))
        .collect();
    crate::status::installed(&text.join("\n"), "status").unwrap()
}

fn run(status: &str, indexes: &[Index], wanted: &[&str]) -> Result<Vec<String>, ResolveError> {
    let wanted: Vec<String> = wanted.iter().map(|w| (*w).to_owned()).collect();
    Ok(resolve("amd64", &installed(status), indexes, &wanted)?
        .into_iter()
        .map(|c| format!("{} {} {}", c.name, c.version, c.suite))
        .collect())
}

#[test]
fn highest_version_across_suites_sorted_by_name() {
    let main = index(
        "bookworm",
        "Package: zed\nVersion: 1\nArchitecture: amd64\nDepends: alpha\n\n\
         Package: alpha\nVersion: 2\nArchitecture: all\n\n\
         Package: beta\nVersion: 9\nArchitecture: i386\n",
    );
    let security = index(
        "bookworm-security",
        "Package: zed\nVersion: 1+deb12u1\nArchitecture: amd64\nDepends: alpha, beta\n\n\
         Package: beta\nVersion: 1\nArchitecture: amd64\n",
    );
    let got = run("", &[main, security], &["zed"]).unwrap();
    assert_eq!(
        got,
        [
            "alpha 2 bookworm",
            "beta 1 bookworm-security",
            "zed 1+deb12u1 bookworm-security"
        ]
    );
}

#[test]
fn choice_carries_the_download_fields() {
    let i = index("s", "Package: a\nVersion: 1\nArchitecture: amd64\n");
    let c = &resolve("amd64", &[], &[i], &["a".into()]).unwrap()[0];
    assert_eq!(c.filename, "pool/s/a.deb");
    assert_eq!((c.size, c.sha256.as_str()), (10, HASH));
    assert_eq!(c.architecture, "amd64");
}

#[test]
fn alternatives_take_the_first_installable() {
    let i = index(
        "s",
        "Package: app\nVersion: 1\nArchitecture: amd64\nDepends: gone | broken | ok | other\n\n\
         Package: broken\nVersion: 1\nArchitecture: amd64\nDepends: gone\n\n\
         Package: ok\nVersion: 1\nArchitecture: all\n\n\
         Package: other\nVersion: 1\nArchitecture: all\n",
    );
    assert_eq!(
        run("", std::slice::from_ref(&i), &["app"]).unwrap(),
        ["app 1 s", "ok 1 s"]
    );
    let status = "Package: other\nVersion: 1\nArchitecture: all\n";
    assert_eq!(run(status, &[i], &["app"]).unwrap(), ["app 1 s"]);
}

#[test]
fn virtual_packages_and_provider_order() {
    let i = index(
        "s",
        "Package: app\nVersion: 1\nArchitecture: amd64\nDepends: mta\n\n\
         Package: exim\nVersion: 1\nArchitecture: all\nProvides: mta\nPriority: standard\n\n\
         Package: postfix\nVersion: 1\nArchitecture: all\nProvides: mta\nPriority: optional\n",
    );
    let i = [i];
    assert_eq!(run("", &i, &["app"]).unwrap(), ["app 1 s", "exim 1 s"]);
    // An installed provider meets the dependency.
    let status = "Package: postfix\nVersion: 1\nArchitecture: all\nProvides: mta\n";
    assert_eq!(run(status, &i, &["app"]).unwrap(), ["app 1 s"]);
    let err = run("", &i, &["mta"]).unwrap_err();
    assert_eq!(
        err,
        ResolveError::AmbiguousVirtual {
            name: "mta".into(),
            providers: vec!["exim".into(), "postfix".into()]
        }
    );
    assert!(err.to_string().contains("exim, postfix"), "{err}");
}

#[test]
fn wanted_virtual_with_one_provider() {
    let i = index(
        "s",
        "Package: exim\nVersion: 1\nArchitecture: all\nProvides: mta\n",
    );
    assert_eq!(run("", &[i], &["mta"]).unwrap(), ["exim 1 s"]);
}

#[test]
fn versioned_provides() {
    let i = index(
        "s",
        "Package: app\nVersion: 1\nArchitecture: amd64\nDepends: libfoo (>= 2)\n\n\
         Package: plain\nVersion: 9\nArchitecture: amd64\nProvides: libfoo\n\n\
         Package: new\nVersion: 1\nArchitecture: amd64\nProvides: libfoo (= 2.1)\n",
    );
    assert_eq!(run("", &[i], &["app"]).unwrap(), ["app 1 s", "new 1 s"]);
}

#[test]
fn upgrades_an_installed_package_only_when_needed() {
    let i = [index(
        "s",
        "Package: app\nVersion: 1\nArchitecture: amd64\nDepends: lib (>= 2), tool\n\n\
         Package: lib\nVersion: 3\nArchitecture: amd64\n\n\
         Package: tool\nVersion: 3\nArchitecture: amd64\n",
    )];
    let status = "Package: lib\nVersion: 1\nArchitecture: amd64\n\n\
                  Package: tool\nVersion: 1\nArchitecture: amd64\n";
    assert_eq!(run(status, &i, &["app"]).unwrap(), ["app 1 s", "lib 3 s"]);
    // Wanted and older: upgraded; wanted and at the candidate: nothing.
    assert_eq!(run(status, &i, &["tool"]).unwrap(), ["tool 3 s"]);
    let current = "Package: tool\nVersion: 3\nArchitecture: amd64\n";
    assert_eq!(run(current, &i, &["tool"]).unwrap(), Vec::<String>::new());
    let newer = "Package: tool\nVersion: 4\nArchitecture: amd64\n";
    assert_eq!(run(newer, &i, &["tool"]).unwrap(), Vec::<String>::new());
}

#[test]
fn upgrade_by_source_and_of_broken_dependers() {
    let i = [index(
        "s",
        "Package: x-bin\nSource: x (2-1)\nVersion: 2-1+b1\nArchitecture: amd64\n\n\
         Package: libx\nSource: x\nVersion: 2-1\nArchitecture: amd64\n\n\
         Package: lib\nVersion: 2\nArchitecture: amd64\n\n\
         Package: lib-dev\nVersion: 2\nArchitecture: amd64\nDepends: lib (= 2)\n",
    )];
    let status = "Package: libx\nSource: x\nVersion: 1-1\nArchitecture: amd64\n\n\
                  Package: lib\nVersion: 1\nArchitecture: amd64\n\n\
                  Package: lib-dev\nVersion: 1\nArchitecture: amd64\nDepends: lib (= 1)\n";
    assert_eq!(
        run(status, &i, &["x-bin"]).unwrap(),
        ["libx 2-1 s", "x-bin 2-1+b1 s"]
    );
    assert_eq!(
        run(status, &i, &["lib"]).unwrap(),
        ["lib 2 s", "lib-dev 2 s"]
    );
}

#[test]
fn multi_arch_any_needs_allowed() {
    let i = [index(
        "s",
        "Package: app\nVersion: 1\nArchitecture: amd64\nDepends: perl:any, tool:native\n\n\
         Package: perl\nVersion: 1\nArchitecture: amd64\nMulti-Arch: allowed\n\n\
         Package: tool\nVersion: 1\nArchitecture: all\n\n\
         Package: bad\nVersion: 1\nArchitecture: amd64\nDepends: python:any\n\n\
         Package: python\nVersion: 1\nArchitecture: amd64\nMulti-Arch: foreign\n",
    )];
    assert_eq!(
        run("", &i, &["app"]).unwrap(),
        ["app 1 s", "perl 1 s", "tool 1 s"]
    );
    let err = run("", &i, &["bad"]).unwrap_err();
    assert!(
        matches!(&err, ResolveError::Unsatisfiable { relation, .. } if relation == "python:any"),
        "{err}"
    );
}

#[test]
fn unknown_names_the_indexes() {
    let i = [
        index("a", "Package: x\nVersion: 1\nArchitecture: amd64\n"),
        index("b", "Package: y\nVersion: 1\nArchitecture: amd64\n"),
    ];
    let err = run("", &i, &["nope"]).unwrap_err();
    assert_eq!(
        err,
        ResolveError::UnknownPackage {
            name: "nope".into(),
            searched: vec!["test a".into(), "test b".into()]
        }
    );
    assert!(err.to_string().contains("test a; test b"), "{err}");
}

#[test]
fn unsatisfiable_chain_from_the_wanted_package() {
    let i = [index(
        "s",
        "Package: top\nVersion: 1\nArchitecture: amd64\nDepends: mid\n\n\
         Package: mid\nVersion: 1\nArchitecture: amd64\nPre-Depends: leaf (>= 2)\n\n\
         Package: leaf\nVersion: 1\nArchitecture: amd64\n",
    )];
    let err = run("", &i, &["top"]).unwrap_err();
    let ResolveError::Unsatisfiable {
        chain,
        relation,
        why,
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(chain, &["top", "mid"]);
    assert_eq!(relation, "leaf (>= 2)");
    assert!(why.contains("candidate 1"), "{why}");
    assert!(
        err.to_string()
            .starts_with("top -> mid: depends on \"leaf (>= 2)\""),
        "{err}"
    );
}

#[test]
fn dependency_cycles_terminate() {
    let i = [index(
        "s",
        "Package: a\nVersion: 1\nArchitecture: amd64\nDepends: b\n\n\
         Package: b\nVersion: 1\nArchitecture: amd64\nDepends: a (= 1)\n",
    )];
    assert_eq!(run("", &i, &["a"]).unwrap(), ["a 1 s", "b 1 s"]);
}

#[test]
fn conflicts_upgrade_or_report_both() {
    let i = [index(
        "s",
        "Package: new\nVersion: 1\nArchitecture: amd64\nBreaks: old (<< 2)\n\n\
         Package: old\nVersion: 2\nArchitecture: amd64\n\n\
         Package: chrony\nVersion: 1\nArchitecture: amd64\nConflicts: time-daemon\nProvides: time-daemon\n\n\
         Package: timesyncd\nVersion: 1\nArchitecture: amd64\nConflicts: time-daemon\nProvides: time-daemon\n\n\
         Package: both\nVersion: 1\nArchitecture: amd64\nDepends: chrony, timesyncd\n",
    )];
    let status = "Package: old\nVersion: 1\nArchitecture: amd64\n";
    assert_eq!(run(status, &i, &["new"]).unwrap(), ["new 1 s", "old 2 s"]);
    // A package conflicting with what it provides itself is fine.
    assert_eq!(run("", &i, &["chrony"]).unwrap(), ["chrony 1 s"]);
    let status = "Package: timesyncd\nVersion: 1\nArchitecture: amd64\nConflicts: time-daemon\nProvides: time-daemon\n";
    let err = run(status, &i, &["chrony"]).unwrap_err();
    assert!(
        matches!(&err, ResolveError::Conflict(c) if c.package == "chrony" && c.other == "timesyncd" && c.other_state == "installed"),
        "{err}"
    );
    let err = run("", &i, &["both"]).unwrap_err();
    assert!(
        matches!(&err, ResolveError::Conflict(c) if c.kind == "Conflicts" && c.other_state == "chosen"),
        "{err}"
    );
}
