//! Every rendered script must parse with `/bin/sh -n` (dash here) and, when installed, pass
//! shellcheck.

use std::io::Write as _;
use std::process::{Command, Stdio};

use crate::every_step;

fn sh_n(script: &str) -> (bool, String) {
    let mut child = Command::new("/bin/sh")
        .arg("-n")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("/bin/sh runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn sh_n_rejects_a_broken_script() {
    // The check itself must be able to fail.
    let (ok, err) = sh_n("set -eu\nif true; then\n  echo 'unterminated\n");
    assert!(!ok, "sh -n accepted a broken script");
    assert!(!err.is_empty());
}

#[test]
fn every_script_parses() {
    let steps = every_step();
    assert!(steps.len() >= 4 * 15, "{} steps", steps.len());
    for (d, step) in &steps {
        let (ok, err) = sh_n(&step.script);
        assert!(ok, "{} {}: sh -n: {err}\n{}", d.id, step.name, step.script);
        let (ok, err) = sh_n(&step.remote_command());
        assert!(ok, "{} {} remote command: sh -n: {err}", d.id, step.name);
    }
    for d in distros::all() {
        let b = distros::seal_detached_script(d, "builder");
        let (ok, err) = sh_n(&b);
        assert!(ok, "{} seal part B: sh -n: {err}\n{b}", d.id);
    }
}

#[test]
fn every_script_passes_shellcheck_if_installed() {
    let Ok(probe) = Command::new("shellcheck").arg("--version").output() else {
        println!("SKIP: shellcheck not found");
        return;
    };
    assert!(probe.status.success());
    let mut scripts: Vec<(String, String)> = every_step()
        .into_iter()
        .map(|(d, s)| (format!("{} {}", d.id, s.name), s.script))
        .collect();
    for d in distros::all() {
        scripts.push((
            format!("{} seal part B", d.id),
            format!("#!/bin/sh\n{}", distros::seal_detached_script(d, "builder")),
        ));
    }
    for (what, script) in scripts {
        let mut child = Command::new("shellcheck")
            .args(["--shell=sh", "--severity=warning", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{what}: shellcheck:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}
