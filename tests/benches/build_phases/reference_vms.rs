//! The by-hand references, each one guest booted through the `qemu` crate (which owns QEMU's
//! process group, deadlines and kill-on-drop) and ONE root script run over ONE SSH command;
//! the script's markers give its timings on the guest's clock.
//!
//! - kubeadm: the new build's sealed golden disk, read-only behind a fresh qcow2 overlay, with
//!   a fresh NoCloud seed, user `benchref` and hostname `bench-kubeadm`;
//! - provisioning: the fixture base image as the build prepares it (a grown raw working copy,
//!   `builder::pipeline::workdisk::prepare`) with the same payload disk
//!   (`builder::pipeline::payload::make_payload_disk`) attached read-only.

use std::path::Path;
use std::time::Duration;

use builder::pipeline::inputs::Inputs;
use builder::pipeline::plan::Plan;
use diskimg::ImageFormat;
use qemu::accel::{self, Accel, AccelChoice};
use qemu::cmdline::ExtraDisk;
use qemu::host::Host;
use qemu::vm::{GuestName, READY_TIMEOUT, SSH_TIMEOUT, Vm, VmConfig};

use super::scripts::{self, KubeadmReference, ProvisionReference};

/// The reference guests' size: the build's defaults (`nodeimg build --cpus 2 --memory 4096`).
const CPUS: u32 = 2;
const MEMORY_MIB: u32 = 4096;
/// How long one reference script may run.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(3600);
/// The user the references log in as (not the build's).
const USER: &str = "benchref";

/// QEMU, firmware, qemu-img and the accelerator the build would pick.
pub struct Machine {
    host: Host,
    qemu_img: std::path::PathBuf,
    accel: Accel,
}

/// What a reference script printed.
#[derive(Debug, Default)]
pub struct ScriptRun {
    /// QEMU start to ready (seconds).
    pub ready: f64,
    /// Its markers on the guest's clock.
    pub markers: Vec<(String, f64)>,
}

/// The host side of the reference guests.
pub fn machine() -> Result<Machine, String> {
    let host = Host::discover().map_err(|e| e.to_string())?;
    let qemu_img = qemu::host::find_qemu_img().map_err(|e| e.to_string())?;
    let verdict = accel::resolve(AccelChoice::Auto, &host.qemu);
    println!(
        "reference guests: accelerator {} ({})",
        verdict.accel, verdict.reason
    );
    Ok(Machine {
        host,
        qemu_img,
        accel: verdict.accel,
    })
}

fn config(m: &Machine, dir: &Path, disk: &Path, format: ImageFormat, hostname: &str) -> VmConfig {
    VmConfig::new(
        dir.join("vm"),
        &m.host,
        m.accel,
        disk.to_path_buf(),
        format,
        GuestName {
            instance_id: format!("iid-{hostname}-{}", std::process::id()),
            hostname: hostname.to_owned(),
            user: USER.into(),
        },
    )
    .with_size(CPUS, MEMORY_MIB)
}

/// Boots `config`, uploads `script` and runs it as root in one SSH command; the guest is
/// killed (by the qemu crate) when this returns, whatever happened.
fn boot_and_run(config: &VmConfig, name: &str, script: &str) -> Result<ScriptRun, String> {
    let mut vm = Vm::start(config).map_err(|e| format!("{name}: {e}"))?;
    let ready = vm
        .wait_ready(READY_TIMEOUT)
        .map_err(|e| format!("{name}: {e}"))?
        .as_secs_f64();
    let fail = |vm: &Vm, what: String| format!("{name}: {}", vm.failure(what));
    let ssh = vm.ssh(SSH_TIMEOUT).map_err(|e| format!("{name}: {e}"))?;
    let remote = format!("/tmp/{name}.sh");
    ssh.upload_bytes(script.as_bytes(), &remote, 0o755)
        .map_err(|e| fail(&vm, format!("uploading the script: {e}")))?;
    let out = ssh
        .output(
            &format!("sudo -n /bin/sh {remote} </dev/null"),
            Some(SCRIPT_TIMEOUT),
        )
        .map_err(|e| fail(&vm, format!("running the script: {e}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.exit.success() {
        let text = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(fail(
            &vm,
            format!(
                "the script ended with {}; its output ends:\n{}",
                out.exit,
                tail.join("\n")
            ),
        ));
    }
    ssh.close();
    vm.kill()
        .map_err(|e| format!("{name}: stopping the guest: {e}"))?;
    Ok(ScriptRun {
        ready,
        markers: scripts::markers(&stdout),
    })
}

/// The by-hand kubeadm reference's script inputs, from the build's inputs.
pub fn kubeadm_reference(inputs: &Inputs) -> Result<KubeadmReference, String> {
    let refs = inputs.image_refs();
    let apiserver = refs
        .iter()
        .find(|r| r.contains("/kube-apiserver:"))
        .ok_or("the lock has no kube-apiserver image")?;
    Ok(KubeadmReference {
        kubernetes_version: inputs.spec.kubernetes_version.clone(),
        image_repository: scripts::image_repository(apiserver)
            .ok_or_else(|| format!("{apiserver}: no repository"))?
            .to_owned(),
        pause_image: inputs
            .pause_image()
            .ok_or("the lock has no pause image")?
            .to_owned(),
        skip_phases: inputs
            .skipped_addons()
            .iter()
            .map(|s| format!("addon/{}", s.addon.name()))
            .collect(),
    })
}

/// The by-hand `kubeadm init` and pause pod on `golden` (raw, only read).
pub fn kubeadm_on_golden(
    m: &Machine,
    golden: &Path,
    r: &KubeadmReference,
    work: &Path,
) -> Result<ScriptRun, String> {
    let overlay = work.join("golden-overlay.qcow2");
    qemu::overlay::create_overlay(&m.qemu_img, golden, ImageFormat::Raw, &overlay)
        .map_err(|e| format!("overlay on {}: {e}", golden.display()))?;
    let config = config(m, work, &overlay, ImageFormat::Qcow2, "bench-kubeadm");
    boot_and_run(&config, "bench-kubeadm", &scripts::kubeadm_script(r))
}

/// The by-hand provisioning reference's script inputs: the payload as the build installs it,
/// the CNI link the build makes, the node role's steps.
pub fn provision_reference(inputs: &Inputs, plan: &Plan) -> Result<ProvisionReference, String> {
    let distro = inputs.distro;
    let cni_dir = distro.container_packages.cni_plugins_dir;
    let cni_from_package = inputs
        .lock
        .component("cni_plugins")
        .any(|a| a.kind == ::inputs::lock::Kind::Deb);
    let role_steps = distros::node_role_steps(plan.distro, &plan.role)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|s| (s.name, s.script))
        .collect();
    Ok(ProvisionReference {
        items: builder::pipeline::payload::payload_items(inputs).items,
        cni_link_from: (cni_from_package && cni_dir != distros::payload::CNI_BIN_DIR)
            .then(|| cni_dir.to_owned()),
        role_steps,
    })
}

/// The by-hand provisioning of the base image from the payload disk.
pub fn provision_base(
    m: &Machine,
    inputs: &Inputs,
    r: &ProvisionReference,
    work: &Path,
) -> Result<ScriptRun, String> {
    let disk = work.join("base-work.raw");
    builder::pipeline::workdisk::prepare(
        &m.qemu_img,
        &inputs.base,
        inputs.spec.base.format,
        &inputs.lock.base().sha256,
        &disk,
        inputs.spec.image.disk_gib << 30,
    )
    .map_err(|e| format!("the base working copy: {e:#}"))?;
    let payload = work.join("payload.img");
    builder::pipeline::payload::make_payload_disk(inputs, work, &payload)
        .map_err(|e| format!("the payload disk: {e:#}"))?;
    let config =
        config(m, work, &disk, ImageFormat::Raw, "bench-provision").with_extra_disk(ExtraDisk {
            name: "payload".into(),
            path: payload,
            format: ImageFormat::Raw,
        });
    boot_and_run(&config, "bench-provision", &scripts::provision_script(r))
}
