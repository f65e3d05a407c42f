//! The reference build's binary: the nodeimg of commit 1b668ee, from a detached git worktree
//! of this repository built once with `cargo build --release -p builder` and reused.
//!
//! Where: `$NODEIMG_BENCH_OLD_DIR`, else `fixtures::cache_dir()/bench/nodeimg-1b668ee/`, holding
//! `src/` (the worktree), `target/` (its CARGO_TARGET_DIR) and `build.log`. Concurrent bench
//! runs wait on `fixtures::build_lock("bench-nodeimg-1b668ee")` for one build.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The commit the issue compares with.
pub const OLD_COMMIT: &str = "1b668ee";

/// How long the release build may take on a cold 2-core machine.
const CARGO_BUILD_TIMEOUT: Duration = Duration::from_secs(2 * 3600);
/// How long one git command may take.
const GIT_TIMEOUT: Duration = Duration::from_secs(600);
/// How long the old binary's input check (hashing every cached artifact) may take.
const INPUTS_TIMEOUT: Duration = Duration::from_secs(900);

/// The directory holding the worktree, its target directory and the build log.
pub fn root() -> PathBuf {
    match std::env::var_os("NODEIMG_BENCH_OLD_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => fixtures::cache_dir()
            .join("bench")
            .join(format!("nodeimg-{OLD_COMMIT}")),
    }
}

/// This repository's root (the tests crate sits in `tests/`).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    child_process::Command::new("git", GIT_TIMEOUT)
        .arg("-C")
        .arg(dir)
        .args(args)
        .run()
        .map(|o| o.stdout_lossy().trim().to_owned())
        .map_err(|e| format!("git -C {} {}: {e}", dir.display(), args.join(" ")))
}

/// The worktree at [`OLD_COMMIT`], made (detached) when missing.
fn worktree(root: &Path) -> Result<PathBuf, String> {
    let src = root.join("src");
    if !src.join(".git").exists() {
        std::fs::create_dir_all(root).map_err(|e| format!("creating {}: {e}", root.display()))?;
        let repo = repo_root();
        // A worktree directory deleted by hand is still registered until pruned.
        git(&repo, &["worktree", "prune"])?;
        let path = src.to_string_lossy().into_owned();
        git(&repo, &["worktree", "add", "--detach", &path, OLD_COMMIT])?;
    }
    let head = git(&src, &["rev-parse", "HEAD"])?;
    let want = git(&src, &["rev-parse", &format!("{OLD_COMMIT}^{{commit}}")])?;
    if head != want {
        return Err(format!(
            "{}: HEAD is {head}, not {OLD_COMMIT} ({want}); remove it and run the bench again",
            src.display()
        ));
    }
    Ok(src)
}

/// The old `nodeimg` binary, built first if missing.
pub fn binary() -> Result<PathBuf, String> {
    let root = root();
    let target = root.join("target");
    let bin = target.join("release").join("nodeimg");
    if bin.is_file() {
        return Ok(bin);
    }
    let _lock = fixtures::build_lock(&format!("bench-nodeimg-{OLD_COMMIT}"))
        .map_err(|e| format!("{e:#}"))?;
    if bin.is_file() {
        return Ok(bin);
    }
    let src = worktree(&root)?;
    let log = root.join("build.log");
    println!(
        "building the nodeimg of {OLD_COMMIT} in {} (once; log {})",
        src.display(),
        log.display()
    );
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    child_process::Command::new(cargo, CARGO_BUILD_TIMEOUT)
        .what(format!("cargo build of the nodeimg of {OLD_COMMIT}"))
        .args(["build", "--release", "-p", "builder"])
        .current_dir(&src)
        .env("CARGO_TARGET_DIR", &target)
        .log_to(&log)
        .run()
        .map_err(|e| format!("{e}"))?;
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!("{} missing after the build", bin.display()))
    }
}

/// Whether the old binary at `bin` accepts `spec`, the lock next to it and `cache`: its
/// `build --json` runs with `NODEIMG_QEMU` naming a missing file, so the `inputs` phase (spec,
/// lock, every cached artifact against its size and digest) runs in full and the `host` phase
/// then stops the build before anything is written but an empty staging directory in `out`.
pub fn accepts_inputs(bin: &Path, spec: &Path, cache: &Path, out: &Path) -> Result<(), String> {
    let output = child_process::Command::new(bin, INPUTS_TIMEOUT)
        .what(format!("the {OLD_COMMIT} nodeimg's input check"))
        .arg("build")
        .arg(spec)
        .arg("--out")
        .arg(out)
        .arg("--cache")
        .arg(cache)
        .arg("--json")
        .env("NODEIMG_QEMU", out.join("no-qemu-here"))
        .run_status()
        .map_err(|e| e.to_string())?;
    let stdout = output.stdout_lossy();
    let timeline = super::timeline::Timeline::from_lines(stdout.lines().map(|l| (0.0, l)));
    match timeline.phase_secs("inputs") {
        Some(_) => Ok(()),
        None => Err(format!(
            "the nodeimg of {OLD_COMMIT} refuses {}:\n{stdout}{}",
            spec.display(),
            output.stderr_tail
        )),
    }
}
