//! `cargo bench -p nodeimg-tests --bench build_phases`: the fixture build end to end
//! (`nodeimg build --json` on the fixture spec, boot test with `kubeadm init` and export
//! included), each phase's duration and each guest step's, next to the hand-run reference of
//! kubeadm-offline.md/guest-recipe.md on this kind of machine, and the total against the
//! 5-minute target under TCG.
//!
//! Needs what the VM tests need, plus the cached fixture inputs (built on first use).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

/// Hand-run references (seconds) from the issue and the recipes, TCG, 2 cores.
const REFERENCE: &[(&str, &str)] = &[
    ("boot", "~40 (QEMU start to cloud-init done)"),
    (
        "provision",
        "27 (install) + 54-62 (binaries, containerd restart, image import)",
    ),
    ("seal", "6"),
    ("shutdown", "1.3"),
    (
        "boot test",
        "~40 re-boot + 81-88 kubeadm init + ~20 node Ready/pod",
    ),
];

/// The whole build's target under TCG on 2 cores.
const TARGET_SECS: f64 = 300.0;

fn nodeimg() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>");
    dir.join("nodeimg")
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for a list; this bench runs only under `cargo bench`.
    }
    let bin = nodeimg();
    if !bin.is_file() {
        eprintln!(
            "{} not built: run `cargo build --release -p builder` first",
            bin.display()
        );
        std::process::exit(1);
    }
    let dir = tempfile::Builder::new()
        .prefix("buildbench")
        .tempdir()
        .expect("temp dir");
    let set = fixtures::fixture_set::write_fixture_set(dir.path(), &fixtures::cache_dir())
        .expect("the fixture spec, lock and cache");
    let t = Instant::now();
    let mut child = Command::new(&bin)
        .arg("build")
        .arg(&set.spec)
        .arg("--out")
        .arg(dir.path().join("out"))
        .arg("--json")
        .stdout(Stdio::piped())
        .spawn()
        .expect("nodeimg build");
    let stdout = child.stdout.take().expect("stdout");
    let mut phases: Vec<(String, f64)> = Vec::new();
    let mut steps: Vec<(String, f64)> = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let done = event["state"] == "done";
        let secs = event["seconds"].as_f64().unwrap_or(0.0);
        match event["event"].as_str() {
            Some("phase") if done => {
                phases.push((event["phase"].as_str().unwrap_or("?").to_owned(), secs));
            }
            Some("step") if done => steps.push((
                format!(
                    "{}/{}",
                    event["phase"].as_str().unwrap_or("?"),
                    event["step"].as_str().unwrap_or("?")
                ),
                secs,
            )),
            _ => {}
        }
    }
    let status = child.wait().expect("wait");
    let total = t.elapsed().as_secs_f64();
    assert!(status.success(), "the fixture build failed: {status}");
    println!("\nfixture build, phase by phase (nodeimg) | hand reference");
    for (phase, secs) in &phases {
        let reference = REFERENCE
            .iter()
            .find(|(p, _)| p == phase)
            .map_or("", |(_, r)| r);
        println!("  {phase:<12} {secs:>7.1}s | {reference}");
    }
    println!("\nslowest guest steps:");
    steps.sort_by(|a, b| b.1.total_cmp(&a.1));
    for (step, secs) in steps.iter().take(12) {
        println!("  {step:<40} {secs:>7.1}s");
    }
    println!(
        "\ntotal {total:.1}s = {:.2} x the {TARGET_SECS:.0}s target",
        total / TARGET_SECS
    );
}
