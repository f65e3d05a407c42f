//! `nodeimg conformance IMAGE --spec SPEC`: Kubernetes' node conformance suite on an existing
//! image (a build's `golden.raw`, its qcow2, or any node image with cloud-init's NoCloud
//! datasource), with the test suite and images the spec's lock pins, read from the cache.
//!
//! The image is never written: it boots through a copy-on-write overlay with a fresh seed and
//! no network, the suite runs as in a build's boot test (without a kubeadm test before it),
//! and OUT gets `conformance.junit.xml` (class `conformance`, plus the setup steps and the
//! serial console scan) and `conformance.json` (the counts), each written atomically, and
//! `conformance.log` (every guest command's output, also when the run failed). Bad input
//! — an unreadable image, a lock without the suite, a file whose digest is not the locked one,
//! a tarball without the suite — is one error before any VM starts.

use std::path::Path;

use anyhow::{Context, Result, bail};
use distros::node_conformance::Scope;
use inputs::cache::Cache;

use crate::args::ConformanceArgs;
use crate::interrupt;
use crate::pipeline::{Machine, boot_test, conformance, inputs as build_inputs, validate};
use crate::report::{Mode, Reporter};

/// The JUnit report it writes in OUT.
pub const JUNIT_FILE: &str = "conformance.junit.xml";
/// The counts it writes in OUT.
pub const COUNTS_FILE: &str = "conformance.json";
/// Every guest command's output, moved into OUT when the run ends (well or not).
pub const LOG_FILE: &str = "conformance.log";

/// `nodeimg conformance`.
pub fn run(args: &ConformanceArgs) -> Result<()> {
    if args.quick && args.full {
        bail!("--quick and --full exclude each other");
    }
    args.guest.check()?;
    let scope = if args.full { Scope::Full } else { Scope::Quick };
    let image = args.image.as_path();
    let format = crate::image_check::bootable_format(image)?;
    let cache = args
        .cache
        .clone()
        .unwrap_or_else(::inputs::cache::default_dir);
    let inputs = build_inputs::load(&args.spec, &Cache::new(&cache))?;
    let tests = conformance::test_inputs(&inputs)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let work = tempfile::Builder::new()
        .prefix(".nodeimg-conformance-")
        .tempdir_in(&args.out)
        .with_context(|| format!("creating a work directory in {}", args.out.display()))?
        .keep();
    let cleanup = work.clone();
    interrupt::on_interrupt(move || interrupt::remove_dir(&cleanup));
    let reporter = Reporter::new(Mode::detect(args.json));
    let log = work.join(LOG_FILE);
    reporter
        .open_log(&log)
        .with_context(|| format!("creating {}", log.display()))?;
    let result = run_in(
        args,
        &inputs,
        &tests,
        scope,
        (image, format),
        &work,
        &reporter,
    );
    reporter.finish();
    if reporter.close_log().is_ok() && log.is_file() {
        let kept = args.out.join(LOG_FILE);
        if std::fs::rename(&log, &kept).is_ok() {
            eprintln!("log: {}", kept.display());
        }
    }
    if result.is_err() {
        interrupt::yield_to_handler();
    }
    interrupt::remove_dir(&work);
    result
}

fn run_in(
    args: &ConformanceArgs,
    inputs: &build_inputs::Inputs,
    tests: &conformance::TestInputs,
    scope: Scope,
    image: (&Path, diskimg::ImageFormat),
    work: &Path,
    reporter: &Reporter,
) -> Result<()> {
    // The test disk first: a tarball without the suite is named before QEMU is looked for.
    let version = &inputs.spec.kubernetes_version;
    let setup = reporter.phase("test disk", || {
        conformance::prepare(tests, version, scope, false, work)
    })?;
    let machine = reporter.phase("host", || {
        Machine::discover(
            args.guest.accel,
            args.guest.cpus,
            args.guest.memory,
            boot_test::BOOT_TEST_USER,
            reporter,
        )
    })?;
    let outcome = reporter.phase("conformance", || {
        boot_test::run(
            &machine,
            image,
            &work.join("vm"),
            &[],
            None,
            Some(&setup),
            reporter,
        )
    })?;
    let mut results = outcome.results;
    results.push(validate::console_result("serial-console", &outcome.serial));
    let junit = args.out.join(JUNIT_FILE);
    let text = crate::junit::render("nodeimg conformance", &results);
    ::inputs::atomic::write_atomic(&junit, text.as_bytes())
        .with_context(|| format!("writing {}", junit.display()))?;
    let counts = serde_json::to_string_pretty(&outcome.conformance)? + "\n";
    let counts_path = args.out.join(COUNTS_FILE);
    ::inputs::atomic::write_atomic(&counts_path, counts.as_bytes())
        .with_context(|| format!("writing {}", counts_path.display()))?;
    if results.iter().any(|r| r.failed()) {
        bail!(
            "node conformance failed ({}); see {}",
            validate::summary(&results),
            junit.display()
        );
    }
    match &outcome.conformance {
        Some(c) => println!(
            "node conformance ({}, Kubernetes {}): {} focused, {} passed, {} failed, {} skipped; {}",
            c.scope,
            c.version,
            c.focused,
            c.passed,
            c.failed,
            c.skipped,
            junit.display()
        ),
        None => bail!("the suite did not report; see {}", junit.display()),
    }
    Ok(())
}
