//! The node conformance run of the boot test: the read-only test disk made from the lock's
//! test suite (Kubernetes' `kubernetes-test-linux-<arch>.tar.gz`, whose
//! `kubernetes/test/bin/e2e_node.test` goes on the disk) and test images, the run's guest steps
//! (`distros::node_conformance`), and the suite's JUnit report turned into the build's cases
//! (class `conformance`) and counts.
//!
//! Everything is checked before a VM starts: a lock without a test suite, a test suite of
//! another Kubernetes version (`inputs::lock`), a file whose digest is not the locked one
//! (`inputs::cache`), or a tarball without the suite is one error naming the file.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use distros::node_conformance::{
    self, ConformanceRun, OfflineSkip, SUITE_BINARY, Scope, TEST_DISK,
};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::guest::GuestCommand;
use super::inputs::{Input, Inputs};
use super::payload::make_read_only_disk;
use super::payload_check::fs_uuid;
use super::validate::{self, NamedCheck};
use crate::junit::{CaseResult, Outcome};
use crate::report::Reporter;
use ::inputs::lock::Kind;

/// The JUnit class of the suite's tests.
pub const CLASS: &str = "conformance";
/// Where the suite is in Kubernetes' test tarball.
pub const SUITE_MEMBER: &str = "kubernetes/test/bin/e2e_node.test";
/// How long a quick run may take under TCG before it is stopped (it takes about ten minutes).
const QUICK_DEADLINE: Duration = Duration::from_secs(40 * 60);
/// How long a full run may take.
const FULL_DEADLINE: Duration = Duration::from_secs(4 * 60 * 60);

/// The lock's test inputs, checked.
#[derive(Debug, Clone)]
pub struct TestInputs {
    /// The test tarball.
    pub suite: Input,
    /// The test images.
    pub images: Vec<Input>,
}

/// The test suite and images of `inputs`, or an error saying what is missing and how to get it.
pub fn test_inputs(inputs: &Inputs) -> Result<TestInputs> {
    let lock = inputs.lock.path.display();
    let spec = inputs.spec.path.display();
    let suite = inputs
        .tests
        .iter()
        .find(|i| i.artifact.kind == Kind::TestSuite)
        .cloned()
        .ok_or_else(|| {
            anyhow!(
                "{lock}: no test-suite artifact: the node conformance run needs Kubernetes' test \
                 tarball and test images in the lock; set `conformance = \"quick\"` (or \"full\") \
                 under [kubernetes] in {spec} and run `nodeimg fetch {spec}`"
            )
        })?;
    let images: Vec<Input> = inputs
        .tests
        .iter()
        .filter(|i| i.artifact.kind == Kind::TestImage)
        .cloned()
        .collect();
    Ok(TestInputs { suite, images })
}

/// A test image's file on the test disk.
fn image_file(input: &Input) -> String {
    format!("images/{}.tar", input.artifact.name)
}

/// Extracts `members` (path in the tarball, file to write, mode 0755) from the test tarball
/// `tarball`; returns each one's SHA-256, in order. The error names the tarball and what it
/// lacks.
pub fn extract_members(tarball: &Path, members: &[(&str, &Path)]) -> Result<Vec<String>> {
    let shown = tarball.display();
    let file = std::fs::File::open(tarball).with_context(|| format!("opening {shown}"))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let entries = archive
        .entries()
        .with_context(|| format!("{shown}: not a tar.gz"))?;
    let mut found: Vec<Option<String>> = vec![None; members.len()];
    for entry in entries {
        let mut entry = entry.with_context(|| format!("{shown}: reading the tar.gz"))?;
        let path = entry.path()?.to_string_lossy().into_owned();
        let Some(at) = members
            .iter()
            .position(|(m, _)| *m == path.trim_start_matches("./"))
        else {
            continue;
        };
        let (member, to) = members[at];
        if !entry.header().entry_type().is_file() {
            bail!("{shown}: {member} is not a regular file");
        }
        let tmp = to.with_extension("partial");
        let mut out =
            std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = entry
                .read(&mut buf)
                .with_context(|| format!("{shown}: reading {member}"))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            std::io::Write::write_all(&mut out, &buf[..n])?;
        }
        out.sync_all()?;
        drop(out);
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
        std::fs::rename(&tmp, to)?;
        found[at] = Some(hex::encode(hasher.finalize()));
    }
    members
        .iter()
        .zip(found)
        .map(|((member, _), sha)| {
            sha.ok_or_else(|| anyhow!("{shown}: no {member} in it: not Kubernetes' test tarball"))
        })
        .collect()
}

/// The test disk written to `out` (scratch in `work`): the suite at its root and the images
/// under `images/`, with a `SHA256SUMS`. Returns the filesystem's UUID.
pub fn make_test_disk(tests: &TestInputs, work: &Path, out: &Path) -> Result<String> {
    std::fs::create_dir_all(work)?;
    let suite = work.join(SUITE_BINARY);
    let shas = extract_members(&tests.suite.path, &[(SUITE_MEMBER, &suite)])?;
    let mut files: Vec<(String, PathBuf)> = vec![(SUITE_BINARY.to_owned(), suite.clone())];
    let mut sums = format!("{}  {SUITE_BINARY}\n", shas[0]);
    for image in &tests.images {
        files.push((image_file(image), image.path.clone()));
        let _ = writeln!(sums, "{}  {}", image.artifact.sha256, image_file(image));
    }
    make_read_only_disk(&files, &sums, TEST_DISK.label, &work.join("root"), out)?;
    std::fs::remove_file(&suite)?;
    Ok(fs_uuid(&sums))
}

/// Tests skipped by name because they cannot run without a network, at every version (their
/// names are stable): they pull images from registries on the internet by design.
fn offline_skips() -> Vec<OfflineSkip> {
    [(
        "when running a container with a new image",
        "pulls images from registries on the internet (gcr.io, docker.io); the boot test's guest has no network",
    )]
    .into_iter()
    .map(|(name, reason)| OfflineSkip {
        name: name.into(),
        reason: reason.into(),
    })
    .collect()
}

/// The run for `scope` with the test disk `fs_uuid`.
pub fn run_plan(
    tests: &TestInputs,
    scope: Scope,
    fs_uuid: String,
    after_kubeadm: bool,
) -> ConformanceRun {
    ConformanceRun {
        scope,
        fs_uuid,
        images: tests
            .images
            .iter()
            .map(|i| (image_file(i), i.artifact.image.clone().unwrap_or_default()))
            .collect(),
        offline_skips: offline_skips(),
        after_kubeadm,
        deadline: match scope {
            Scope::Quick => QUICK_DEADLINE,
            Scope::Full => FULL_DEADLINE,
        },
    }
}

/// What the run found, for `manifest.json`'s build record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// `quick` or `full`.
    pub scope: String,
    /// The Kubernetes version of the suite.
    pub version: String,
    /// The `--ginkgo.focus` used.
    pub focus: String,
    /// The `--ginkgo.skip` used.
    pub skip: String,
    /// Tests the focus selected (without upstream's skipped tags).
    pub focused: usize,
    /// Of those, passed.
    pub passed: usize,
    /// Of those, failed (and suite-level failures such as a failed `BeforeSuite`).
    pub failed: usize,
    /// Of those, skipped (offline skips by name, or skipped by the test itself).
    pub skipped: usize,
}

/// Turns the suite's JUnit report `xml` into the build's cases (class [`CLASS`]) and counts:
/// every failed case, and every passed or skipped case the run's focus selected (ginkgo also
/// lists every unfocused spec as skipped: those are left out). A skipped case says why when
/// an offline skip named it.
pub fn cases(xml: &str, run: &ConformanceRun, version: &str) -> Result<(Vec<CaseResult>, Counts)> {
    let doc = roxmltree::Document::parse(xml).context("the suite's JUnit report")?;
    let focus = regex::Regex::new(&run.focus()).context("the focus")?;
    let upstream_skip = regex::Regex::new(node_conformance::SKIP).context("the skip")?;
    let mut results = Vec::new();
    let mut counts = Counts {
        scope: run.scope.name().into(),
        version: version.into(),
        focus: run.focus(),
        skip: run.skip(),
        focused: 0,
        passed: 0,
        failed: 0,
        skipped: 0,
    };
    // A retried flaky test appears once per attempt: the last one counts.
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    // Whether the run's focus selects each result (the same name in every attempt).
    let mut selected_at: Vec<bool> = Vec::new();
    for case in doc.descendants().filter(|n| n.has_tag_name("testcase")) {
        let name = case.attribute("name").unwrap_or_default().trim().to_owned();
        let duration = case
            .attribute("time")
            .and_then(|t| t.parse::<f64>().ok())
            .filter(|t| t.is_finite() && *t >= 0.0)
            .map_or(Duration::ZERO, Duration::from_secs_f64);
        let failure = case
            .children()
            .find(|c| c.has_tag_name("failure") || c.has_tag_name("error"));
        let skipped = case.children().any(|c| c.has_tag_name("skipped"));
        let selected = focus.is_match(&name) && !upstream_skip.is_match(&name);
        let outcome = if let Some(f) = failure {
            let text = f.text().unwrap_or_default().trim().to_owned();
            let first = text.lines().next().unwrap_or("failed").to_owned();
            Outcome::Failed {
                message: f.attribute("message").map_or(first, str::to_owned),
                output: text,
            }
        } else if skipped {
            if !selected {
                continue;
            }
            let why = run
                .offline_skips
                .iter()
                .find(|s| name.contains(&s.name))
                .map(|s| format!("skipped offline: {}", s.reason))
                .unwrap_or_else(|| "skipped by the suite (see its output)".to_owned());
            Outcome::Skipped { message: why }
        } else {
            Outcome::Passed
        };
        let result = CaseResult {
            name: name.clone(),
            classname: CLASS.into(),
            duration,
            outcome,
        };
        match seen.get(&name) {
            Some(&at) => results[at] = result,
            None => {
                seen.insert(name, results.len());
                results.push(result);
                selected_at.push(selected);
            }
        }
    }
    for (r, &selected) in results.iter().zip(&selected_at) {
        if selected {
            counts.focused += 1;
        }
        match &r.outcome {
            Outcome::Passed => counts.passed += 1,
            Outcome::Failed { .. } => counts.failed += 1,
            Outcome::Skipped { .. } => counts.skipped += 1,
        }
    }
    if results.is_empty() {
        bail!("the suite's JUnit report lists no test its focus selects: the suite ran nothing");
    }
    Ok((results, counts))
}

/// Everything the boot test needs for the run: the test disk, the run and its guest steps.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The read-only test disk (raw ext4).
    pub disk: PathBuf,
    /// The run.
    pub run: ConformanceRun,
    /// Its guest steps, the suite last.
    pub steps: Vec<GuestCommand>,
    /// The Kubernetes version of the suite.
    pub version: String,
}

/// Makes the test disk in `work` for `scope` and renders the run's steps (after the kubeadm
/// test when `after_kubeadm`). Errors name the input.
pub fn prepare(
    tests: &TestInputs,
    version: &str,
    scope: Scope,
    after_kubeadm: bool,
    work: &Path,
) -> Result<Setup> {
    let disk = work.join("conformance.img");
    let uuid = make_test_disk(tests, &work.join("conformance-disk"), &disk)?;
    let run = run_plan(tests, scope, uuid, after_kubeadm);
    let steps = node_conformance::steps(&run)?
        .iter()
        .map(GuestCommand::from)
        .collect();
    Ok(Setup {
        disk,
        run,
        steps,
        version: version.to_owned(),
    })
}

/// What a run in the guest found: every case (setup steps as class `conformance-setup`, then
/// the suite's tests as class [`CLASS`]) and the counts, when the suite wrote its report.
#[derive(Debug, Clone)]
pub struct Found {
    /// The cases, in order.
    pub results: Vec<CaseResult>,
    /// The counts, when the suite reported.
    pub counts: Option<Counts>,
}

/// Runs `setup`'s steps over `ssh`: the setup steps stop at the first failure; then the suite,
/// whose report is read back and turned into cases. A suite that fails without a failed test
/// in its report (stopped at its deadline, crashed) is a failed case with its last output.
pub fn run_in_guest(ssh: &qemu::ssh::Ssh, setup: &Setup, reporter: &Reporter) -> Result<Found> {
    let Some((suite, prepare)) = setup.steps.split_last() else {
        bail!("the conformance run has no steps");
    };
    let named = |class: &str, c: &GuestCommand| NamedCheck {
        class: class.into(),
        command: c.clone(),
    };
    let prepare: Vec<NamedCheck> = prepare
        .iter()
        .map(|c| named("conformance-setup", c))
        .collect();
    let mut results = validate::run_checks(ssh, "conformance", &prepare, true, reporter)?;
    if results.len() < prepare.len() || results.iter().any(|r| !r.passed()) {
        return Ok(Found {
            results,
            counts: None,
        });
    }
    reporter.info(&format!(
        "node conformance ({}): the suite runs; it may take {} minutes at most",
        setup.run.scope.name(),
        setup.run.deadline.as_secs() / 60
    ));
    let ran = validate::run_checks(
        ssh,
        "conformance",
        &[named("conformance-run", suite)],
        true,
        reporter,
    )?;
    let report = ssh.output(
        &distros::sudo_sh(&node_conformance::reports_command(), "nodeimg-reports"),
        Some(Duration::from_secs(120)),
    )?;
    let parsed = if report.exit.success() {
        cases(
            &String::from_utf8_lossy(&report.stdout),
            &setup.run,
            &setup.version,
        )
    } else {
        Err(anyhow!(
            "no report in {}: {}",
            node_conformance::REPORT_DIR,
            String::from_utf8_lossy(&report.stderr).trim()
        ))
    };
    let mut counts = None;
    match parsed {
        Ok((cases, c)) => {
            reporter.info(&format!(
                "node conformance ({}): {} focused, {} passed, {} failed, {} skipped",
                c.scope, c.focused, c.passed, c.failed, c.skipped
            ));
            let any_failed = cases
                .iter()
                .any(|c| matches!(c.outcome, Outcome::Failed { .. }));
            results.extend(cases);
            counts = Some(c);
            // The suite failed but no test did: its own failure is the evidence.
            if !any_failed {
                results.extend(ran.into_iter().filter(|r| !r.passed()));
            }
        }
        Err(e) => {
            results.extend(ran.into_iter().map(|mut r| {
                if let Outcome::Failed { message, .. } = &mut r.outcome {
                    message.push_str(&format!(" ({e:#})"));
                } else {
                    r.outcome = Outcome::Failed {
                        message: format!("the suite passed but its report is unusable: {e:#}"),
                        output: String::new(),
                    };
                }
                r
            }));
        }
    }
    Ok(Found { results, counts })
}

#[cfg(test)]
mod tests;
