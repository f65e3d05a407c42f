//! `cargo bench -p nodeimg-tests --bench build_phases`: the fixture build end to end, next to
//! the references the issue compares it with, all measured in this one run on this machine,
//! and a table of phases, references and ratios (targets printed as PASS/MISS, never asserted).
//!
//! 1. The reference build by the nodeimg of commit 1b668ee ([`old_nodeimg`]: a detached git
//!    worktree built once with `cargo build --release -p builder`, under
//!    `fixtures::cache_dir()/bench/nodeimg-1b668ee/` or `$NODEIMG_BENCH_OLD_DIR`), `build --json`
//!    on the same inputs as the new build.
//! 2. The current build, `target/release/nodeimg build SPEC --out DIR --cache CACHE --json`
//!    (run `cargo build --release -p builder` first), every event stamped on arrival
//!    ([`run_build`]), nodeimg's own peak RSS (VmHWM) read every 0.5 s, and the build's
//!    "peak RSS" info lines.
//! 3. A by-hand `kubeadm init` and pause pod on the golden disk that build just made
//!    ([`reference_vms`], script in [`scripts`]).
//! 4. The same payload installed by hand into the fixture base image as one script over one
//!    SSH session.
//!
//! The inputs of both builds: the fixture spec, lock and cache entries of
//! `fixtures::fixture_set::write_fixture_set` (Debian 12 fixture base image, the node debs,
//! Kubernetes v1.20.2 binaries and units, the crictl stand-in, six control-plane images; the
//! kubeadm test on). The 1b668ee build reads a copy of that spec without
//! `kubernetes.skip_addons = ["coredns"]` (1b668ee rejects the key, and always skipped
//! `addon/coredns`) and a copy of that lock without the informational `[packages]` record and
//! deb `architecture`/`suite` fields (which it also rejects); every artifact, digest and size
//! is the same, and both read the same cache (`CACHE/cas/sha256/<hex>`, unchanged since) —
//! see [`old_inputs`]. Both print the same `--json` phase and step events (1b668ee's reporter
//! already had them), so both are timed the same way.
//!
//! Needs what the VM tests need, plus the cached fixture inputs (built on first use). Work
//! files go under /var/tmp (the builds' outputs are several GiB).

#[path = "build_phases/old_inputs.rs"]
mod old_inputs;
#[path = "build_phases/old_nodeimg.rs"]
mod old_nodeimg;
#[path = "build_phases/reference_vms.rs"]
mod reference_vms;
#[path = "build_phases/run_build.rs"]
mod run_build;
#[path = "build_phases/scripts.rs"]
mod scripts;
#[path = "build_phases/table.rs"]
mod table;
#[path = "build_phases/timeline.rs"]
mod timeline;

use std::path::{Path, PathBuf};

use fixtures::fixture_set::{FixtureSet, IMAGE_NAME, SPEC_FILE};
use table::{Target, num, ratio};

/// The phase of the boot test's kubeadm steps.
const KUBEADM_PHASE: &str = "kubeadm test";
/// The kubeadm part compared with the by-hand run: init → healthz → node Ready → pod Running.
const KUBEADM_PART: [&str; 4] = ["kubeadm-init", "api-healthz", "node-ready", "pod-runs"];
/// How many slowest guest steps are listed per build.
const SLOWEST: usize = 12;

fn nodeimg() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>");
    dir.join("nodeimg")
}

/// Where the work files go: /var/tmp when there (it has room), else the temp dir.
fn work_parent() -> PathBuf {
    let var_tmp = Path::new("/var/tmp");
    if var_tmp.is_dir() {
        var_tmp.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// Writes the old-format copy of the fixture spec and lock into `dir`; returns the spec.
fn write_old_inputs(set: &FixtureSet, dir: &Path) -> Result<PathBuf, String> {
    let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let spec = dir.join(SPEC_FILE);
    let lock = inputs::lock::path_for_spec(&spec);
    let write = |p: &Path, text: String| {
        std::fs::write(p, text).map_err(|e| format!("{}: {e}", p.display()))
    };
    write(&spec, old_inputs::old_format_spec(&read(&set.spec)?)?)?;
    write(&lock, old_inputs::old_format_lock(&read(&set.lock)?)?)?;
    Ok(spec)
}

/// The by-hand references' results (each may have failed).
struct References {
    kubeadm: Result<reference_vms::ScriptRun, String>,
    provision: Result<reference_vms::ScriptRun, String>,
}

fn references(set: &FixtureSet, golden: Option<PathBuf>, work: &Path) -> References {
    let opts = builder::pipeline::BuildOptions {
        spec: set.spec.clone(),
        out: work.join("plan-out"),
        cache: set.cache.clone(),
        accel: qemu::accel::AccelChoice::Auto,
        memory_mib: 4096,
        cpus: 2,
        keep_going: false,
        no_kubeadm_test: false,
        conformance: None,
        source_date_epoch: 0,
    };
    let loaded = builder::pipeline::load_and_plan(&opts)
        .map_err(|e| format!("loading the fixture inputs: {e:#}"))
        .and_then(|loaded| Ok((loaded, reference_vms::machine()?)));
    let ((inputs, plan), machine) = match loaded {
        Ok(found) => found,
        Err(why) => {
            return References {
                kubeadm: Err(why.clone()),
                provision: Err(why),
            };
        }
    };
    let dir = |name: &str| {
        let d = work.join(name);
        std::fs::create_dir_all(&d)
            .map(|()| d)
            .map_err(|e| e.to_string())
    };
    println!("\nby-hand kubeadm reference on the new golden disk ...");
    let kubeadm = match golden {
        Some(golden) => reference_vms::kubeadm_reference(&inputs).and_then(|r| {
            reference_vms::kubeadm_on_golden(&machine, &golden, &r, &dir("hand-kubeadm")?)
        }),
        None => Err("no golden disk: the new build failed".to_owned()),
    };
    println!("by-hand provisioning reference on the base image ...");
    let provision = reference_vms::provision_reference(&inputs, &plan).and_then(|r| {
        reference_vms::provision_base(&machine, &inputs, &r, &dir("hand-provision")?)
    });
    References { kubeadm, provision }
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
    let work = tempfile::Builder::new()
        .prefix("buildbench")
        .tempdir_in(work_parent())
        .expect("temp dir");
    let w = work.path();
    let cache = fixtures::cache_dir();
    let set = fixtures::fixture_set::write_fixture_set(&w.join("inputs"), &cache)
        .expect("the fixture spec, lock and cache");
    let mut problems = Vec::new();

    let old_bin = old_nodeimg::binary();
    let old_spec = write_old_inputs(&set, &w.join("old-inputs"));
    // The old binary must accept the inputs before a long build is spent on it.
    let old_ready = old_bin.and_then(|bin| {
        let spec = old_spec?;
        old_nodeimg::accepts_inputs(&bin, &spec, &cache, &w.join("old-check"))?;
        Ok((bin, spec))
    });
    let old = match old_ready {
        Ok((old_bin, old_spec)) => {
            println!(
                "reference build by the nodeimg of {} ...",
                old_nodeimg::OLD_COMMIT
            );
            let out = w.join("old-out");
            let run = run_build::run(
                "the 1b668ee build",
                &old_bin,
                &old_spec,
                &cache,
                &out,
                &w.join("old-build.log"),
            );
            // Its output is not needed, and the new build wants the room.
            let _ = std::fs::remove_dir_all(&out);
            Some(run)
        }
        Err(e) => {
            problems.push(format!("the 1b668ee reference build: {e}"));
            None
        }
    };
    println!("the current build ...");
    let out = w.join("new-out");
    let new = run_build::run(
        "nodeimg build",
        &bin,
        &set.spec,
        &cache,
        &out,
        &w.join("new-build.log"),
    );
    for (what, run) in [
        ("the 1b668ee build", old.as_ref()),
        ("the current build", Some(&new)),
    ] {
        if let Some(why) = run.and_then(|r| r.failure.as_ref()) {
            problems.push(format!("{what}: {why}"));
        }
    }
    let golden = out.join(IMAGE_NAME).join(builder::pipeline::output::GOLDEN);
    let golden = (new.failure.is_none() && golden.is_file()).then_some(golden);
    let refs = references(&set, golden, w);
    for (what, r) in [
        ("by-hand kubeadm", &refs.kubeadm),
        ("by-hand provisioning", &refs.provision),
    ] {
        if let Err(e) = r {
            problems.push(format!("{what} reference: {e}"));
        }
    }

    report(old.as_ref(), &new, &refs);
    // The work directory holds several GiB; `exit` would skip its removal.
    drop(work);
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("\nFAILED: {p}");
        }
        std::process::exit(1);
    }
}

fn report(old: Option<&run_build::BuildRun>, new: &run_build::BuildRun, refs: &References) {
    let t = &new.timeline;
    let hand_kubeadm = refs.kubeadm.as_ref().ok();
    let hand_provision = refs.provision.as_ref().ok();
    let hand_kubeadm_secs = hand_kubeadm.and_then(|r| {
        scripts::between(
            &r.markers,
            scripts::KUBEADM_MARKS[0],
            scripts::KUBEADM_MARKS[4],
        )
    });
    let hand_provision_secs =
        hand_provision.and_then(|r| scripts::between(&r.markers, "start", "end"));
    let kubeadm_part = t.steps_sum(KUBEADM_PHASE, &KUBEADM_PART);
    let peak_mib = new.peak_rss_kib.map(|k| k as f64 / 1024.0);

    println!("\n== build phases: 1b668ee vs now (seconds as each build reported them) ==");
    print!(
        "{}",
        table::phases(
            old.map(|o| &o.timeline),
            t,
            (old.map(|o| o.wall), Some(new.wall))
        )
    );
    println!("\n== references ==");
    println!(
        "nodeimg kubeadm part ({}): {} s; kubeadm-prepare: {} s",
        KUBEADM_PART.join(" + "),
        num(kubeadm_part, 1),
        num(t.step_secs(KUBEADM_PHASE, "kubeadm-prepare"), 1)
    );
    println!(
        "by-hand kubeadm, init start -> pod Running: {} s (guest ready after {} s)",
        num(hand_kubeadm_secs, 1),
        num(hand_kubeadm.map(|r| r.ready), 1)
    );
    print!(
        "{}",
        table::segments(
            "  by-hand kubeadm, each marker since the one before",
            &hand_kubeadm
                .map(|r| scripts::segments(&r.markers))
                .unwrap_or_default()
        )
    );
    println!(
        "nodeimg provision phase: {} s; by-hand provisioning script: {} s (guest ready after {} s)",
        num(t.phase_secs("provision"), 1),
        num(hand_provision_secs, 1),
        num(hand_provision.map(|r| r.ready), 1)
    );
    print!(
        "{}",
        table::segments(
            "  by-hand provisioning, each marker since the one before",
            &hand_provision
                .map(|r| scripts::segments(&r.markers))
                .unwrap_or_default()
        )
    );
    println!(
        "nodeimg peak RSS (VmHWM, polled): {} MiB; the build says: {}",
        num(peak_mib, 0),
        match t.infos_mentioning("peak RSS").as_slice() {
            [] => "n/a".to_owned(),
            lines => lines.join(" | "),
        }
    );
    println!();
    for (title, run) in [
        ("slowest guest steps, 1b668ee", old),
        ("slowest guest steps, now", Some(new)),
    ] {
        match run {
            Some(r) => print!("{}", table::slowest_steps(title, &r.timeline, SLOWEST)),
            None => println!("{title}:\n  n/a"),
        }
    }
    println!();
    print!(
        "{}",
        table::targets(&[
            Target {
                what: "whole build, new / 1b668ee".into(),
                value: ratio(Some(new.wall), old.map(|o| o.wall)),
                unit: "x",
                limit: 0.6,
            },
            Target {
                what: "boot test kubeadm part / by-hand kubeadm".into(),
                value: ratio(kubeadm_part, hand_kubeadm_secs),
                unit: "x",
                limit: 1.1,
            },
            Target {
                what: "provision / by-hand provisioning".into(),
                value: ratio(t.phase_secs("provision"), hand_provision_secs),
                unit: "x",
                limit: 1.3,
            },
            Target {
                what: "validate phase".into(),
                value: t.phase_secs("validate"),
                unit: "s",
                limit: 8.0,
            },
            Target {
                what: "export's wall time after the boot test".into(),
                value: t.added_after("export", "boot test"),
                unit: "s",
                limit: 5.0,
            },
            Target {
                what: "nodeimg peak RSS (well under 1 GiB)".into(),
                value: peak_mib,
                unit: "MiB",
                limit: 1024.0,
            },
        ])
    );
}
