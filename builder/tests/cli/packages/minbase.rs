//! The same judge on a minimal base: the dpkg status of an mmdebstrap `minbase` with
//! cloud-init (`fixtures::minbase`), where far more of the node role's closure is missing than
//! on the cloud fixture. nodeimg's resolver, fed the archive as fetch reads it, and
//! `apt-get install -s` with that status and the same indexes must choose the same packages at
//! the same versions.

use super::{compare_node_sets_with_apt, read_distro_archive};

#[test]
fn a_minbase_with_cloud_init_resolves_as_apt_does() {
    let status_path = match fixtures::minbase::minbase_status() {
        Ok(path) => path,
        Err(e) => {
            fixtures::tools::skip(&format!("minbase status fixture unavailable: {e:#}"));
            return;
        }
    };
    let status = std::fs::read_to_string(&status_path).unwrap();
    let installed =
        debarchive::status::installed(&status, &status_path.display().to_string()).unwrap();
    assert!(installed.iter().any(|p| p.name == "cloud-init"));

    let archive = read_distro_archive(&distros::debian12::DEBIAN_12);
    compare_node_sets_with_apt(
        &format!(
            "mmdebstrap --variant=minbase --include=cloud-init bookworm ({} installed)",
            installed.len()
        ),
        &status,
        &installed,
        &archive,
    );
}
