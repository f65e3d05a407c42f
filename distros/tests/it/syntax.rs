//! The one harness over every script distros renders: each must parse with `/bin/sh -n` (dash
//! here), both as written and as the remote command line that runs it, and pass shellcheck
//! when it is installed (`SKIP: shellcheck not found` otherwise; CI installs it through
//! `scripts/deps.sh` and sets `NODEIMG_REQUIRE_TOOLS`, which turns the skip into a failure).

use std::time::Duration;

use child_process::Command;
use distros::batch;
use distros::bom_collect::{self, ComponentQuery, ComponentSource};
use distros::kubeadm_test::{self, KubeadmTest};
use distros::node_conformance::{self, ConformanceRun, OfflineSkip, Scope};
use distros::payload::{self, Install, Payload, PayloadItem};
use distros::{Distro, Step};

use crate::{every_check, every_step, releases, sample_role};

const TOOL_TIMEOUT: Duration = Duration::from_secs(60);

/// One rendered script: what it is, the script, and the command line that runs it.
struct Script {
    what: String,
    script: String,
    remote_command: Option<String>,
}

impl Script {
    fn step(distro: &str, step: &Step) -> Script {
        Script {
            what: format!("{distro} step {}", step.name),
            script: step.script.clone(),
            remote_command: Some(step.remote_command()),
        }
    }

    fn check(distro: &str, check: &distros::Check) -> Script {
        Script {
            what: format!("{distro} check {}", check.name),
            script: check.script.clone(),
            remote_command: Some(check.remote_command()),
        }
    }
}

/// Every kind of payload file, for the payload install steps: a held package, a copied
/// binary, an extracted archive and an image archive for each of the two releases.
fn payload_items(distro: &Distro) -> Vec<PayloadItem> {
    assert_eq!(distro.package_manager, distros::PackageManager::Apt);
    let item = |file: &str, install| PayloadItem {
        file: file.into(),
        install,
    };
    let mut items = vec![
        item(
            "deb/kubelet_1.30.2-1.1_amd64.deb",
            Install::Package { hold: true },
        ),
        item(
            "bin/kubectl",
            Install::Copy {
                dest: "/usr/local/bin/kubectl".into(),
                mode: 0o755,
            },
        ),
        item(
            "archive/crictl-v1.30.0-linux-amd64.tar.gz",
            Install::Extract {
                dest: "/usr/local/bin".into(),
            },
        ),
    ];
    for expect in releases() {
        for reference in expect.images {
            let file = reference
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .replace(':', "_");
            items.push(item(
                &format!("image/{file}.tar"),
                Install::Image { reference },
            ));
        }
    }
    items
}

/// The BOM collection's query with a component of every kind.
fn bom_query() -> bom_collect::Query {
    let component = |artifact: &str, how| ComponentQuery {
        artifact: artifact.into(),
        component: artifact.into(),
        version: "1.0".into(),
        source: "https://example.org/x".into(),
        how,
    };
    let components = vec![
        component(
            "deb-containerd",
            ComponentSource::Deb {
                file: "deb/containerd.deb".into(),
            },
        ),
        component(
            "kubeadm",
            ComponentSource::Installed {
                dest: "/usr/bin/kubeadm".into(),
            },
        ),
        component(
            "cni",
            ComponentSource::Archive {
                file: "archive/cni.tar.gz".into(),
                dest: "/opt/cni/bin/".into(),
            },
        ),
    ];
    bom_collect::Query::for_node_role(components, &sample_role())
}

/// Every script distros can render, for every distro, with representative inputs.
fn every_script() -> Vec<Script> {
    let mut out: Vec<Script> = every_step()
        .iter()
        .map(|(d, s)| Script::step(d.id, s))
        .collect();
    for d in distros::all() {
        out.push(Script {
            what: format!("{} seal part B", d.id),
            script: format!("#!/bin/sh\n{}", distros::seal_detached_script(d, "builder")),
            remote_command: None,
        });
        let payload = Payload {
            items: payload_items(d),
            fs_uuid: "0f1e2d3c-4b5a-8978-a695-b4c3d2e1f0ab".into(),
        };
        for s in payload::payload_install_steps(d, &payload).expect("payload renders") {
            out.push(Script::step(d.id, &s));
        }
        out.push(Script::step(d.id, &payload::cni_plugins_link_step(d)));
    }
    for (d, c) in every_check() {
        out.push(Script::check(d, &c));
    }
    out.push(Script::step("any", &payload::payload_unmount_step()));
    out.push(Script::step("any", &distros::checks::build_identity_step()));
    out.push(Script::step(
        "any",
        &Step::user_command(
            "user-command-",
            "motd",
            Duration::from_secs(600),
            "echo 'built by nodeimg' > /etc/motd",
        ),
    ));
    out.push(Script::step(
        "any",
        &distros::spec_files::install_step(0, 0o644, "/etc/x y/z"),
    ));
    out.push(Script::step(
        "any",
        &bom_collect::step(&bom_query()).expect("BOM collection renders"),
    ));
    for (version, repository, pod_image) in [
        ("v1.20.2", "k8s.gcr.io", "k8s.gcr.io/pause:3.2"),
        ("v1.30.2", "registry.k8s.io", "registry.k8s.io/pause:3.9"),
        ("v1.31.0", "registry.k8s.io", "registry.k8s.io/pause:3.10"),
    ] {
        let test = KubeadmTest {
            kubernetes_version: version.into(),
            image_repository: repository.into(),
            pod_image: pod_image.into(),
            skipped_addons: vec![kubeadm_test::SkippedAddon {
                addon: kubeadm_test::Addon::CoreDns,
                reason: "the spec's kubernetes.skip_addons leaves it out".into(),
            }],
        };
        for s in kubeadm_test::steps(&test).expect("kubeadm test renders") {
            out.push(Script::step(version, &s));
        }
    }
    for (scope, after_kubeadm) in [(Scope::Quick, true), (Scope::Full, false)] {
        let run = ConformanceRun {
            scope,
            fs_uuid: "0f1e2d3c-4b5a-4978-a695-b4c3d2e1f0ab".into(),
            images: vec![(
                "images/agnhost_2.21.tar".into(),
                "k8s.gcr.io/e2e-test-images/agnhost:2.21".into(),
            )],
            offline_skips: vec![OfflineSkip {
                name: "should be able to pull image [NodeConformance]".into(),
                reason: "pulls from a registry on the internet".into(),
            }],
            after_kubeadm,
            deadline: Duration::from_secs(1800),
        };
        for s in node_conformance::steps(&run).expect("conformance run renders") {
            out.push(Script::step(scope.name(), &s));
        }
    }
    // The scripts as the builder runs them: every step and check of a release as one batch.
    let steps: Vec<Script> = out
        .iter()
        .filter(|s| s.remote_command.is_some())
        .map(|s| Script {
            what: s.what.clone(),
            script: s.script.clone(),
            remote_command: None,
        })
        .collect();
    let items: Vec<batch::BatchItem<'_>> = steps
        .iter()
        .filter(|s| s.what.starts_with("debian-12 ") || s.what.starts_with("any "))
        .map(|s| batch::BatchItem {
            name: &s.what,
            script: &s.script,
            timeout: Duration::from_secs(60),
            stop_on_failure: false,
        })
        .collect();
    assert!(items.len() > 20, "{} items", items.len());
    for lanes in [1, 2] {
        let script = batch::render(&items, lanes);
        out.push(Script {
            what: format!("debian-12 batch of every step and check in {lanes} lane(s)"),
            remote_command: Some(batch::remote_command(&script)),
            script,
        });
    }
    out
}

/// Runs `program args` with `script` on stdin: (success, stdout and stderr).
fn feed(program: &str, args: &[&str], script: &str) -> (bool, String) {
    let out = Command::new(program, TOOL_TIMEOUT)
        .args(args)
        .stdin_bytes(script.as_bytes().to_vec())
        .run_status()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    (
        out.status.success(),
        format!("{}{}", out.stdout_lossy(), out.stderr_tail),
    )
}

fn sh_n(script: &str) -> (bool, String) {
    feed("/bin/sh", &["-n"], script)
}

/// Parses the script a remote command line carries: `sudo` is stood in for by a function that
/// drops `-n /bin/sh` and runs `/bin/sh -n -c SCRIPT ZEROTH`, so the script is parsed exactly
/// as the remote shell unquotes it.
fn sh_n_remote(remote_command: &str) -> (bool, String) {
    let wrapped = format!("sudo() {{ shift 2; /bin/sh -n \"$@\"; }}\n{remote_command}\n");
    feed("/bin/sh", &["-s"], &wrapped)
}

fn shellcheck(script: &str) -> (bool, String) {
    feed(
        "shellcheck",
        &["--shell=sh", "--severity=warning", "-"],
        script,
    )
}

#[test]
fn sh_n_rejects_a_broken_script() {
    // The check itself must be able to fail.
    let (ok, err) = sh_n("set -eu\nif true; then\n  echo 'unterminated\n");
    assert!(!ok, "sh -n accepted a broken script");
    assert!(!err.is_empty());
    let broken = Step::new("broken", Duration::ZERO, "if true; then echo");
    assert!(!sh_n(&broken.script).0);
    assert!(
        sh_n(&broken.remote_command()).0,
        "the quoting hides the script"
    );
    assert!(!sh_n_remote(&broken.remote_command()).0);
}

#[test]
fn every_script_parses() {
    let scripts = every_script();
    assert!(scripts.len() >= 4 * 15, "{} scripts", scripts.len());
    for kind in [
        "step kubeadm-init",
        "step bom-collect",
        "check no-outbound-network",
        "step user-command-motd",
        "step user-file-0",
        "step cni-plugins-path",
        "step build-identity",
        "check user-etc-hosts",
        "seal part B",
        "batch of every step and check in 2 lane(s)",
    ] {
        assert!(
            scripts.iter().any(|s| s.what.ends_with(kind)),
            "{kind} is not covered"
        );
    }
    for s in &scripts {
        let (ok, err) = sh_n(&s.script);
        assert!(ok, "{}: sh -n: {err}\n{}", s.what, s.script);
        if let Some(rc) = &s.remote_command {
            let (ok, err) = sh_n(rc);
            assert!(ok, "{} remote command: sh -n: {err}", s.what);
            let (ok, err) = sh_n_remote(rc);
            assert!(ok, "{} script of the remote command: sh -n: {err}", s.what);
        }
    }
}

#[test]
fn every_script_passes_shellcheck_if_installed() {
    if Command::new("shellcheck", TOOL_TIMEOUT)
        .arg("--version")
        .run()
        .is_err()
    {
        assert!(
            std::env::var_os("NODEIMG_REQUIRE_TOOLS").is_none(),
            "shellcheck missing and NODEIMG_REQUIRE_TOOLS is set"
        );
        println!("SKIP: shellcheck not found (apt-get install shellcheck)");
        return;
    }
    let (ok, _) = shellcheck(
        "#!/bin/sh\nx=$(ls)\nif [ $x = 1 ]; then echo \"$undefined_var\"; fi\nfor f in $(ls *.txt); do :; done\n",
    );
    assert!(!ok, "shellcheck must be able to fail");
    let failures: Vec<String> = every_script()
        .into_iter()
        .filter_map(|s| {
            let (ok, out) = shellcheck(&s.script);
            (!ok).then(|| format!("{}: shellcheck:\n{out}\n{}", s.what, s.script))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
