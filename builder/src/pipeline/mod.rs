//! `nodeimg build SPEC`: the pipeline, planned before it boots, then one module per phase.
//!
//! inputs (spec, lock, cache) → the [`plan`] of everything the guests will run, rendered and
//! checked (`--dry-run` stops here) → working disk (`golden.raw`, grown) → payload disk → build VM
//! (network cut off, payload read-only) → provision → bill of materials → validate → seal →
//! QMP power-off → seal audit of the disk → boot test of the sealed disk (first boot, serial
//! scan, offline `kubeadm init`) with the export to every format running alongside it
//! ([`alongside`]) → `manifest.json` last, when both succeeded.
//!
//! Everything is written into `OUT/.NAME.partial/` and renamed to `OUT/NAME/` only when the
//! build succeeded. A failed build keeps the partial directory (no manifest in it) with its VM
//! directories and serial logs for inspection; Ctrl-C kills QEMU and removes it.

pub mod alongside;
pub mod bom_answer;
pub mod boot_test;
pub mod check_list;
pub mod collect_bom;
pub mod command;
pub mod conformance;
pub mod export;
pub mod guest;
pub mod inputs;
pub mod output;
pub mod payload;
pub mod payload_check;
pub mod peak_rss;
pub mod plan;
pub mod provision;
pub mod publish;
pub mod seal;
pub mod timeouts;
pub mod validate;
pub mod workdisk;

pub use check_list::BuildIdentity;
pub use command::run;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use diskimg::ImageFormat;
use qemu::accel::{self, Accel, AccelChoice};
use qemu::cmdline::ExtraDisk;
use qemu::host::{self, Host};
use qemu::vm::{GuestName, Vm, VmConfig};

use crate::junit::CaseResult;
use crate::report::Reporter;
use ::inputs::cache::Cache;
use plan::Plan;
use timeouts::{READY_TIMEOUT, SSH_TIMEOUT};

/// The build guest's hostname.
pub const BUILD_HOSTNAME: &str = "nodeimg-build";

/// What `nodeimg build` was asked.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The spec file.
    pub spec: PathBuf,
    /// Parent of the output directory `OUT/NAME`.
    pub out: PathBuf,
    /// The cache.
    pub cache: PathBuf,
    /// Accelerator choice.
    pub accel: AccelChoice,
    /// Guest memory (MiB).
    pub memory_mib: u32,
    /// Guest vCPUs.
    pub cpus: u32,
    /// Go on after failed checks (the build still fails at the end).
    pub keep_going: bool,
    /// Skip the offline `kubeadm init` of the boot test.
    pub no_kubeadm_test: bool,
    /// `--conformance`: `Some(None)` is off, `Some(Some(scope))` a scope, `None` the spec's.
    pub conformance: Option<Option<distros::node_conformance::Scope>>,
    /// SOURCE_DATE_EPOCH for the exports.
    pub source_date_epoch: u64,
}

/// The host side every VM of the build shares.
#[derive(Debug, Clone)]
pub struct Machine {
    /// QEMU and firmware.
    pub host: Host,
    /// qemu-img.
    pub qemu_img: PathBuf,
    /// The accelerator the probe chose.
    pub accel: Accel,
    /// vCPUs.
    pub cpus: u32,
    /// Memory.
    pub memory_mib: u32,
    /// Build user.
    pub user: String,
}

impl Machine {
    /// This host's QEMU, firmware and qemu-img, and the accelerator `accel` resolves to (said
    /// on `reporter`), for guests of `cpus` vCPUs and `memory_mib` MiB with `user` as login.
    pub fn discover(
        accel: AccelChoice,
        cpus: u32,
        memory_mib: u32,
        user: &str,
        reporter: &Reporter,
    ) -> Result<Machine> {
        let host = Host::discover()?;
        let qemu_img = host::find_qemu_img()?;
        let verdict = accel::resolve(accel, &host.qemu);
        reporter.info(&format!(
            "accelerator: {} ({})",
            verdict.accel, verdict.reason
        ));
        Ok(Machine {
            host,
            qemu_img,
            accel: verdict.accel,
            cpus,
            memory_mib,
            user: user.to_owned(),
        })
    }

    /// The config of one of the build's VMs: this machine's QEMU, firmware, accelerator and
    /// size, booting `root_disk` as `guest`.
    pub fn vm_config(
        &self,
        dir: PathBuf,
        root_disk: PathBuf,
        root_format: ImageFormat,
        guest: GuestName,
    ) -> VmConfig {
        VmConfig::new(dir, &self.host, self.accel, root_disk, root_format, guest)
            .with_size(self.cpus, self.memory_mib)
    }
}

/// What a successful build made.
#[derive(Debug)]
pub struct Built {
    /// `OUT/NAME`.
    pub dir: PathBuf,
    /// Every check.
    pub results: Vec<CaseResult>,
}

/// The seal audit of the golden disk, read offline (`nodeimg audit`), as check results: each
/// finding fails the build at the end like a failed check.
fn audit_golden(golden: &Path, user: &str, reporter: &Reporter) -> Result<Vec<CaseResult>> {
    let options = crate::audit::AuditOptions {
        build_user: user.to_owned(),
        ..Default::default()
    };
    let report = crate::audit::audit_disk(golden, &options)?;
    let results: Vec<CaseResult> = report
        .junit_cases()
        .into_iter()
        .map(|case| CaseResult {
            name: format!("audit-{}", case.name),
            ..case
        })
        .collect();
    let failed = results.iter().filter(|r| r.failed()).count();
    reporter.info(&format!(
        "seal audit of {}: {} checks, {failed} failed",
        golden.display(),
        results.len()
    ));
    for r in results.iter().filter(|r| r.failed()) {
        reporter.info(&format!("FAILED {}: {}", r.name, r.failure().unwrap_or("")));
    }
    Ok(results)
}

/// Where a build writes while it runs: `OUT/.NAME.partial`.
pub fn staging_dir(out: &Path, name: &str) -> PathBuf {
    out.join(format!(".{name}.partial"))
}

/// The lock file a build of `name` holds in `OUT` for its whole run (`OUT/.NAME.lock`): a
/// second build of the same name into the same `OUT` fails at once, naming the holder, and
/// never touches the first one's staging directory.
pub fn lock_file(name: &str) -> String {
    format!(".{name}.lock")
}

/// Loads the inputs and renders and checks the plan: everything a build does before it writes
/// anything (and all `--dry-run` does).
pub fn load_and_plan(opts: &BuildOptions) -> Result<(inputs::Inputs, Plan)> {
    let inputs = inputs::load(&opts.spec, &Cache::new(&opts.cache))?;
    let plan = plan::plan(
        &inputs,
        &plan::PlanOptions {
            build_user: distros::BUILD_USER.into(),
            kubeadm_test: !opts.no_kubeadm_test,
            conformance: opts.conformance.unwrap_or(inputs.spec.conformance),
        },
    )?;
    plan.validate()?;
    Ok((inputs, plan))
}

/// Runs the whole build.
pub fn build(opts: &BuildOptions, reporter: &Reporter) -> Result<Built> {
    let (inputs, plan) = reporter.phase("inputs", || load_and_plan(opts))?;
    let spec = &inputs.spec;
    for a in inputs.lock.artifacts.iter().filter(|a| a.note.is_some()) {
        reporter.info(&format!(
            "note: {}: {}",
            a.name,
            a.note.as_deref().unwrap_or("")
        ));
    }
    let final_dir = opts.out.join(&spec.image.name);
    let staging = staging_dir(&opts.out, &spec.image.name);
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("creating {}", opts.out.display()))?;
    // Held until the build is published or has failed; a stale staging directory is removed
    // only under it.
    let lock = exporters::dir_lock::DirLock::acquire(&opts.out, &lock_file(&spec.image.name))?;
    if staging.exists() {
        std::fs::remove_dir_all(&staging)
            .with_context(|| format!("removing the stale {}", staging.display()))?;
    }
    std::fs::create_dir_all(&staging).with_context(|| format!("creating {}", staging.display()))?;
    let cleanup = staging.clone();
    let lock_path = lock.path().to_path_buf();
    crate::interrupt::on_interrupt(move || {
        let done = crate::interrupt::remove_dir(&cleanup);
        // The process exits next, releasing the lock.
        let _ = std::fs::remove_file(&lock_path);
        done
    });
    reporter.open_log(&staging.join(output::BUILD_LOG))?;
    reporter.log(&format!(
        "nodeimg {} build {} (spec sha256 {}, lock sha256 {})",
        env!("CARGO_PKG_VERSION"),
        opts.spec.display(),
        spec.sha256,
        inputs.lock.sha256
    ));

    let result = build_in(opts, &inputs, &plan, &staging, reporter);
    if result.is_err() {
        crate::interrupt::yield_to_handler();
        peak_rss::report(reporter);
    }
    let _ = reporter.close_log();
    let results = match result {
        Ok(r) => r,
        Err(e) => {
            return Err(e.context(format!(
                "the build failed; its partial output (no manifest) is kept for inspection in {}",
                staging.display()
            )));
        }
    };
    reporter.phase("publish", || publish::publish(&staging, &final_dir))?;
    Ok(Built {
        dir: final_dir,
        results,
    })
}

fn build_in(
    opts: &BuildOptions,
    inputs: &inputs::Inputs,
    plan: &Plan,
    staging: &Path,
    reporter: &Reporter,
) -> Result<Vec<CaseResult>> {
    let spec = &inputs.spec;
    let work = staging.join("work");
    std::fs::create_dir_all(&work)?;
    let machine = reporter.phase("host", || {
        Machine::discover(
            opts.accel,
            opts.cpus,
            opts.memory_mib,
            &plan.build_user,
            reporter,
        )
    })?;
    let golden = staging.join(output::GOLDEN);
    reporter.phase("disk", || {
        workdisk::prepare(
            &machine.qemu_img,
            &inputs.base,
            spec.base.format,
            &inputs.lock.base().sha256,
            &golden,
            spec.image.disk_gib << 30,
        )
    })?;
    let payload_img = work.join("payload.img");
    reporter.phase("payload", || {
        payload::make_payload_disk(inputs, &work, &payload_img)
    })?;
    // The conformance test disk, before any VM: a tarball without the suite stops here.
    let conformance = match &plan.conformance {
        Some(c) => Some(reporter.phase("test disk", || {
            conformance::prepare(
                &c.tests,
                &spec.kubernetes_version,
                c.scope,
                plan.kubeadm_steps().is_some(),
                &work,
            )
        })?),
        None => None,
    };

    let vm_dir = work.join("build-vm");
    let config = machine
        .vm_config(
            vm_dir.clone(),
            golden.clone(),
            ImageFormat::Raw,
            GuestName {
                instance_id: format!("iid-nodeimg-build-{}", &spec.sha256[..16]),
                hostname: BUILD_HOSTNAME.into(),
                user: machine.user.clone(),
            },
        )
        .with_extra_disk(ExtraDisk {
            name: "payload".into(),
            path: payload_img.clone(),
            format: ImageFormat::Raw,
        });
    let mut vm = reporter.phase("boot", || -> Result<Vm> {
        let mut vm = Vm::start(&config)?;
        vm.wait_ready(READY_TIMEOUT)?;
        Ok(vm)
    })?;
    let ssh = vm.ssh(SSH_TIMEOUT)?;
    reporter.phase("provision", || {
        provision::provision(
            &vm,
            &ssh,
            provision::ProvisionSteps {
                before_files: &plan.provision,
                files: &plan.files,
                commands: &plan.commands,
            },
            reporter,
        )
    })?;
    reporter.phase("bom", || -> Result<()> {
        let bom = collect_bom::collect(
            &vm,
            &ssh,
            (&plan.bom_collect, &plan.bom_query),
            inputs,
            reporter,
        )?;
        collect_bom::write(staging, &bom, opts.source_date_epoch)?;
        provision::unmount_payload(&vm, &ssh, &plan.payload_unmount, reporter)
    })?;
    let mut results = reporter.phase("validate", || -> Result<Vec<CaseResult>> {
        let results = validate::run_checks(&ssh, "validate", &plan.validation, false, reporter)?;
        reporter.info(&format!("validation: {}", validate::summary(&results)));
        Ok(results)
    })?;
    let identity = seal::read_identity(&ssh, &plan.identity)?;
    let failed_validation = results.iter().any(|r| r.failed());
    if failed_validation && !opts.keep_going {
        validate::write_junit(staging, &spec.image.name, &results)?;
        bail!(vm.failure(format!(
            "validation failed ({}); see {}",
            validate::summary(&results),
            staging.join(output::JUNIT).display()
        )));
    }
    reporter.phase("seal", || seal::seal(&mut vm, ssh, &plan.seal, reporter))?;
    reporter.phase("shutdown", || seal::shut_down(&mut vm))?;
    let audit = reporter.phase("audit", || audit_golden(&golden, &machine.user, reporter))?;
    std::fs::copy(&vm.paths().serial_log, staging.join(output::SERIAL_LOG))?;
    let build_serial = std::fs::read(staging.join(output::SERIAL_LOG))?;
    drop(vm);
    std::fs::remove_file(&payload_img)?;

    if let plan::KubeadmPlan::Skipped(why) = &plan.kubeadm {
        reporter.info(why);
    } else {
        for skipped in inputs.skipped_addons() {
            reporter.info(&skipped.message());
        }
    }
    let first_boot = plan.first_boot_checks(&identity)?;
    let (outcome, exported) = alongside::boot_test_and_export(
        reporter,
        || {
            reporter.phase("boot test", || {
                boot_test::run(
                    &machine,
                    (&golden, ImageFormat::Raw),
                    &work.join("boot-test-vm"),
                    &first_boot,
                    plan.kubeadm_steps(),
                    conformance.as_ref(),
                    reporter,
                )
            })
        },
        || {
            reporter.side_phase(export::PHASE, || {
                export::export(opts, inputs, staging, reporter)
            })
        },
    );
    let outcome = outcome?;
    std::fs::write(staging.join(output::BOOT_TEST_SERIAL_LOG), &outcome.serial)?;
    results.extend(audit);
    results.extend(outcome.results);
    results.push(validate::console_result(
        "build-vm-serial-console",
        &String::from_utf8_lossy(&build_serial),
    ));
    results.push(validate::console_result(
        "boot-test-serial-console",
        &outcome.serial,
    ));
    validate::write_junit(staging, &spec.image.name, &results)?;
    if results.iter().any(|r| r.failed()) {
        bail!(
            "checks failed ({}); see {}",
            validate::summary(&results),
            staging.join(output::JUNIT).display()
        );
    }
    let manifest = exported?;
    std::fs::remove_dir_all(&work)?;
    peak_rss::report(reporter);
    reporter.close_log()?;
    publish::write_manifest(
        manifest,
        inputs,
        staging,
        reporter,
        &publish::BootTestRecord {
            kubeadm_ran: outcome.kubeadm_ran,
            conformance: outcome.conformance,
        },
    )?;
    Ok(results)
}
