//! The plan: everything the guests of a build will run, rendered from the loaded inputs and
//! checked before any VM starts. The payload install, the node role (computed here, once), the
//! spec's files, commands and checks, the bill-of-materials collection, the validation checks,
//! the seal, the first-boot checks and the kubeadm test are all in it, in the order they run;
//! the phase modules only execute their part.
//!
//! [`Plan::validate`] parses every script with `sh -n` and checks every host-side file the build
//! will read; `nodeimg build --dry-run` prints [`Plan::phases`].

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use distros::NodeRole;
use serde_json::json;

use super::boot_test;
use super::check_list::{self, BuildIdentity};
use super::collect_bom;
use super::conformance::{self, TestInputs};
use super::guest::GuestCommand;
use super::inputs::Inputs;
use super::provision::{self, FileUpload};
use super::timeouts;
use super::validate::NamedCheck;
use distros::bom_collect::Query;
use distros::node_conformance::Scope;

/// What the plan is rendered for, beyond the inputs.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// The build user (removed by the seal).
    pub build_user: String,
    /// Whether the offline `kubeadm init` is wanted (`--no-kubeadm-test` says no).
    pub kubeadm_test: bool,
    /// Which node conformance tests run (`--conformance`, else the spec's), if any.
    pub conformance: Option<Scope>,
}

/// The node conformance run, as far as it is known before the test disk exists.
#[derive(Debug, Clone)]
pub struct ConformancePlan {
    /// Which tests.
    pub scope: Scope,
    /// The lock's test suite and images (checked).
    pub tests: TestInputs,
    /// Its steps rendered for the plan (`--dry-run`, `sh -n`) with a placeholder test disk
    /// UUID; the build renders them again with the disk's.
    pub preview: Vec<GuestCommand>,
}

/// The boot test's `kubeadm init`, or why it does not run.
#[derive(Debug, Clone)]
pub enum KubeadmPlan {
    /// Its steps, in order (each needs the one before).
    Run(Vec<GuestCommand>),
    /// Why it is skipped.
    Skipped(&'static str),
}

/// A file on the host the build reads.
#[derive(Debug, Clone)]
pub struct HostFile {
    /// What it is: `base image`, `artifact kubelet`, `files[0].source`.
    pub what: String,
    /// Where it is.
    pub path: PathBuf,
}

/// Everything the build's guests will run, in order.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The distro's facts.
    pub distro: &'static distros::Distro,
    /// The build user.
    pub build_user: String,
    /// The node role (pause image, provenance), computed once.
    pub role: NodeRole,
    /// The host files the build reads.
    pub host_files: Vec<HostFile>,
    /// Payload install, CNI path, node role: provisioning before the spec's files.
    pub provision: Vec<GuestCommand>,
    /// The spec's files, installed after the node role.
    pub files: Vec<FileUpload>,
    /// The spec's commands, after its files.
    pub commands: Vec<GuestCommand>,
    /// What the bill of materials asks of the guest.
    pub bom_query: Query,
    /// The step that asks it.
    pub bom_collect: GuestCommand,
    /// Unmounting the payload, which ends provisioning.
    pub payload_unmount: GuestCommand,
    /// The validation checks of the build VM.
    pub validation: Vec<NamedCheck>,
    /// Reading the build VM's identity before the seal.
    pub identity: GuestCommand,
    /// The seal's steps; the last detaches part B.
    pub seal: Vec<GuestCommand>,
    /// The first-boot checks as rendered before the build VM's identity is known (its machine
    /// id and host key fingerprints left empty); [`Plan::first_boot_checks`] fills them in.
    pub first_boot_preview: Vec<NamedCheck>,
    /// The kubeadm test.
    pub kubeadm: KubeadmPlan,
    /// The node conformance run, if any.
    pub conformance: Option<ConformancePlan>,
}

/// A step as the plan shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Its name.
    pub name: String,
    /// How long it may run.
    pub timeout: Duration,
    /// The remote command line (`sudo -n /bin/sh -c '<script>' '<$0>'`).
    pub command: String,
    /// The script the guest's shell runs.
    pub script: String,
}

/// A phase as the plan shows it.
#[derive(Debug, Clone)]
pub struct Phase {
    /// The phase's name, as the build reports it.
    pub name: &'static str,
    /// Its guest steps, in order.
    pub steps: Vec<Step>,
}

/// The node role for these inputs: the lock's pause image, and a provenance file naming the
/// image, the tool, the spec and lock digests and every pinned version.
pub fn node_role(inputs: &Inputs) -> NodeRole {
    let spec = &inputs.spec;
    let c = &spec.components;
    NodeRole {
        pause_image: inputs.pause_image().unwrap_or_default().to_owned(),
        held_packages: Vec::new(),
        provenance: vec![
            ("NODEIMG_IMAGE".into(), spec.image.name.clone()),
            ("NODEIMG_VERSION".into(), env!("CARGO_PKG_VERSION").into()),
            ("NODEIMG_SPEC_SHA256".into(), spec.sha256.clone()),
            ("NODEIMG_LOCK_SHA256".into(), inputs.lock.sha256.clone()),
            (
                "NODEIMG_BASE_SHA256".into(),
                inputs.lock.base().sha256.clone(),
            ),
            ("KUBERNETES_VERSION".into(), spec.kubernetes_version.clone()),
            ("CONTAINERD_VERSION".into(), c.containerd.clone()),
            ("RUNC_VERSION".into(), c.runc.clone()),
            ("CRICTL_VERSION".into(), c.crictl.clone()),
            ("CNI_PLUGINS_VERSION".into(), c.cni_plugins.clone()),
            (
                "PAUSE_VERSION".into(),
                inputs.pause_version().unwrap_or_default().to_owned(),
            ),
        ],
        extra_sysctls: Vec::new(),
    }
}

/// Renders the plan for `inputs`. Every script is rendered here; a pin or name a script
/// cannot carry fails here, before anything is written or booted.
pub fn plan(inputs: &Inputs, options: &PlanOptions) -> Result<Plan> {
    let role = node_role(inputs);
    let mut provision = provision::commands(inputs, &role)?;
    let first_user = provision
        .iter()
        .position(|c| c.name.starts_with("user-command-"))
        .unwrap_or(provision.len());
    let commands = provision.split_off(first_user);
    let files = inputs
        .spec
        .files
        .iter()
        .enumerate()
        .map(|(i, f)| provision::file_upload(i, f))
        .collect();
    let bom_query = collect_bom::query(inputs, &role);
    let bom_collect = GuestCommand::from(&distros::bom_collect::step(&bom_query)?);
    let payload_unmount = GuestCommand::from(&distros::payload::payload_unmount_step());
    let validation = check_list::validation_checks(inputs, &role)?;
    let identity = GuestCommand::from(&distros::checks::build_identity_step());
    let seal = distros::seal_steps(inputs.distro, &options.build_user)?
        .iter()
        .map(GuestCommand::from)
        .collect();
    let first_boot_preview = check_list::first_boot_checks(
        inputs.distro,
        &BuildIdentity::default(),
        &options.build_user,
    )?;
    let kubeadm = if !options.kubeadm_test {
        KubeadmPlan::Skipped("the kubeadm test is skipped (--no-kubeadm-test)")
    } else {
        match boot_test::kubeadm_test(inputs) {
            Some(test) => KubeadmPlan::Run(
                distros::kubeadm_test::steps(&test)?
                    .iter()
                    .map(GuestCommand::from)
                    .collect(),
            ),
            None => KubeadmPlan::Skipped(
                "the kubeadm test is skipped: the payload lacks kubeadm or the control-plane images",
            ),
        }
    };
    let conformance = match options.conformance {
        None => None,
        Some(scope) => {
            let tests = conformance::test_inputs(inputs)?;
            let after_kubeadm = matches!(kubeadm, KubeadmPlan::Run(_));
            let run = conformance::run_plan(&tests, scope, PREVIEW_UUID.into(), after_kubeadm);
            let preview = distros::node_conformance::steps(&run)?
                .iter()
                .map(GuestCommand::from)
                .collect();
            Some(ConformancePlan {
                scope,
                tests,
                preview,
            })
        }
    };
    Ok(Plan {
        distro: inputs.distro,
        build_user: options.build_user.clone(),
        role,
        host_files: host_files(inputs),
        provision,
        files,
        commands,
        bom_query,
        bom_collect,
        payload_unmount,
        validation,
        identity,
        seal,
        first_boot_preview,
        kubeadm,
        conformance,
    })
}

/// The test disk UUID the plan's preview shows (the real one is derived from the disk).
const PREVIEW_UUID: &str = "00000000-0000-0000-0000-000000000000";

fn host_files(inputs: &Inputs) -> Vec<HostFile> {
    let mut files = vec![HostFile {
        what: "base image".into(),
        path: inputs.base.clone(),
    }];
    for input in &inputs.payload {
        files.push(HostFile {
            what: format!("artifact {}", input.artifact.name),
            path: input.path.clone(),
        });
    }
    for (i, f) in inputs.spec.files.iter().enumerate() {
        files.push(HostFile {
            what: format!("files[{i}].source"),
            path: f.source.clone(),
        });
    }
    files
}

fn step(c: &GuestCommand) -> Step {
    Step {
        name: c.name.clone(),
        timeout: c.timeout,
        command: c.command.clone(),
        script: c.script.clone(),
    }
}

fn checks(checks: &[NamedCheck]) -> Vec<Step> {
    checks.iter().map(|c| step(&c.command)).collect()
}

impl Plan {
    /// The first-boot checks of the sealed disk against the build VM's `identity`.
    pub fn first_boot_checks(&self, identity: &BuildIdentity) -> Result<Vec<NamedCheck>> {
        check_list::first_boot_checks(self.distro, identity, &self.build_user)
    }

    /// The kubeadm test's steps, if it runs.
    pub fn kubeadm_steps(&self) -> Option<&[GuestCommand]> {
        match &self.kubeadm {
            KubeadmPlan::Run(steps) => Some(steps),
            KubeadmPlan::Skipped(_) => None,
        }
    }

    /// Every guest phase and its steps, in the order the build runs them.
    pub fn phases(&self) -> Vec<Phase> {
        let mut provision: Vec<Step> = self.provision.iter().map(step).collect();
        provision.extend(self.files.iter().map(|f| step(&f.install)));
        provision.extend(self.commands.iter().map(step));
        let mut seal = vec![step(&self.identity)];
        seal.extend(self.seal.iter().map(step));
        let mut phases = vec![
            Phase {
                name: "provision",
                steps: provision,
            },
            Phase {
                name: "bom",
                steps: vec![step(&self.bom_collect), step(&self.payload_unmount)],
            },
            Phase {
                name: "validate",
                steps: checks(&self.validation),
            },
            Phase {
                name: "seal",
                steps: seal,
            },
            Phase {
                name: "boot test",
                steps: checks(&self.first_boot_preview),
            },
        ];
        if let Some(steps) = self.kubeadm_steps() {
            phases.push(Phase {
                name: "kubeadm test",
                steps: steps.iter().map(step).collect(),
            });
        }
        if let Some(c) = &self.conformance {
            phases.push(Phase {
                name: "conformance",
                steps: c.preview.iter().map(step).collect(),
            });
        }
        phases
    }

    /// Checks the plan before any VM starts: every script parses with `sh -n`, every host file
    /// the build reads is a regular file.
    pub fn validate(&self) -> Result<()> {
        for f in &self.host_files {
            let meta = std::fs::metadata(&f.path)
                .with_context(|| format!("{}: {}", f.what, f.path.display()))?;
            if !meta.is_file() {
                return Err(anyhow!(
                    "{}: {}: not a regular file",
                    f.what,
                    f.path.display()
                ));
            }
        }
        for phase in self.phases() {
            for s in &phase.steps {
                syntax_check(&s.script)
                    .with_context(|| format!("the plan's {} step `{}`", phase.name, s.name))?;
            }
        }
        Ok(())
    }

    /// The plan as JSON: phases with their steps (name, timeout, script), the host files, and
    /// whether the kubeadm test runs.
    pub fn to_json(&self) -> serde_json::Value {
        let phases: Vec<serde_json::Value> = self
            .phases()
            .iter()
            .map(|p| {
                json!({
                    "name": p.name,
                    "steps": p.steps.iter().map(|s| json!({
                        "name": s.name,
                        "timeout_seconds": s.timeout.as_secs(),
                        "script": s.script,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({
            "phases": phases,
            "host_files": self.host_files.iter().map(|f| json!({
                "what": f.what, "path": f.path,
            })).collect::<Vec<_>>(),
            "kubeadm_test": match &self.kubeadm {
                KubeadmPlan::Run(_) => "runs".to_owned(),
                KubeadmPlan::Skipped(why) => (*why).to_owned(),
            },
            "conformance": self.conformance.as_ref().map_or("off", |c| c.scope.name()),
        })
    }
}

/// `sh -n` of `script` on the host.
fn syntax_check(script: &str) -> Result<()> {
    let out = child_process::Command::new("sh", timeouts::SYNTAX_CHECK)
        .what("sh -n")
        .arg("-n")
        .stdin_bytes(script.as_bytes().to_vec())
        .run_status()?;
    if !out.status.success() {
        return Err(anyhow!(
            "does not parse (sh -n): {}",
            out.stderr_tail.trim()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_that_does_not_parse_is_named() {
        syntax_check("if true; then echo ok; fi\n").unwrap();
        let e = syntax_check("if true; then echo ok\n").unwrap_err();
        assert!(e.to_string().contains("does not parse"), "{e}");
    }
}
