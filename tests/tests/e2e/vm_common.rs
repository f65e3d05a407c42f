//! What the VM suites share: QEMU and the fixture cloud image (or a SKIP line saying why not),
//! and a look at the process table.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use diskimg::ImageFormat;
use qemu::accel::{self, AccelChoice};
use qemu::vm::{GuestName, VmConfig};

/// Prints `SKIP: test: why` ([`fixtures::tools::skip`]: fails instead in CI).
pub fn skip(test: &str, why: &str) {
    fixtures::tools::skip(&format!("{test}: {why}"));
}

/// QEMU, OVMF and qemu-img, or `None` after saying why.
pub fn host_or_skip(test: &str) -> Option<(qemu::host::Host, PathBuf)> {
    match qemu::host::Host::discover().and_then(|h| Ok((h, qemu::host::find_qemu_img()?))) {
        Ok(found) => Some(found),
        Err(e) => {
            skip(test, &e.to_string());
            None
        }
    }
}

/// The Debian 12 cloud-image fixture (built and cached on first use), or `None` after saying
/// why it cannot be built here.
pub fn fixture_or_skip(test: &str) -> Option<PathBuf> {
    let path = fixtures::cloud_image::debian12_cloud_path();
    if !path.is_file()
        && let Err(e) = fixtures::cloud_image::prerequisites()
    {
        skip(test, &format!("{e:#}"));
        return None;
    }
    let t = Instant::now();
    let image = fixtures::cloud_image::debian12_cloud_qcow2().expect("the Debian 12 cloud image");
    println!("fixture {} ready in {:.1?}", image.display(), t.elapsed());
    Some(image)
}

/// A guest booting `image` through a fresh qcow2 overlay `dir/overlay.qcow2`, its VM directory
/// `dir/vm`, under the accelerator the probe picks (printed), 2 vCPUs, 2 GiB, build user
/// `builder`, hostname `name` and an instance id made from `name` and the pid.
pub fn overlay_vm_config(
    host: &qemu::host::Host,
    qemu_img: &Path,
    image: &Path,
    dir: &Path,
    name: &str,
) -> VmConfig {
    let overlay = dir.join("overlay.qcow2");
    let format = builder::image_check::bootable_format(image).expect("the image's format");
    qemu::overlay::create_overlay(qemu_img, image, format, &overlay).expect("overlay");
    let verdict = accel::resolve(AccelChoice::Auto, &host.qemu);
    println!("accelerator: {} ({})", verdict.accel, verdict.reason);
    VmConfig::new(
        dir.join("vm"),
        host,
        verdict.accel,
        overlay,
        ImageFormat::Qcow2,
        GuestName {
            instance_id: format!("iid-{name}-{}", std::process::id()),
            hostname: name.to_owned(),
            user: "builder".into(),
        },
    )
}

/// The processes whose command line mentions `needle` (e.g. a VM directory), as `pgrep -af`
/// prints them; empty when there are none.
pub fn processes_mentioning(needle: &Path) -> String {
    let out = Command::new("pgrep")
        .arg("-af")
        .arg(needle)
        .output()
        .expect("pgrep (procps)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits up to `within` for no process to mention `needle`; returns what is left.
pub fn wait_no_processes(needle: &Path, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let left = processes_mentioning(needle);
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The sha256 of a file.
pub fn sha256(path: &Path) -> String {
    fixtures::cloud_image::file_sha256(path).expect("sha256 of the image")
}
