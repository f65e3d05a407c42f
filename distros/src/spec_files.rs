//! The spec's `[[files]]`: the host uploads each to [`upload_path`] (mode 0600), then
//! [`install_step`] installs it at its destination with its mode and removes the upload.

use std::time::Duration;

use crate::shell::quote;
use crate::step::Step;

/// Where the host uploads the spec's file number `index` before its install step.
pub fn upload_path(index: usize) -> String {
    format!("/tmp/nodeimg-file-{index}")
}

/// The step (`user-file-INDEX`) that installs the uploaded file number `index` at `dest`
/// (parent directories made) with permission bits `mode`, then removes the upload.
pub fn install_step(index: usize, mode: u32, dest: &str) -> Step {
    let tmp = upload_path(index);
    let body = format!(
        "install -D -m {mode:04o} {tmp} {dest}\nrm -f {tmp}",
        tmp = quote(&tmp),
        dest = quote(dest),
    );
    Step::new(format!("user-file-{index}"), Duration::from_secs(60), &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installs_with_mode_and_removes_the_upload() {
        let s = install_step(2, 0o644, "/etc/x y");
        assert_eq!(s.name, "user-file-2");
        assert_eq!(s.timeout, crate::step::MIN_STEP_TIMEOUT);
        assert!(s.script.ends_with(
            "install -D -m 0644 '/tmp/nodeimg-file-2' '/etc/x y'\nrm -f '/tmp/nodeimg-file-2'\n"
        ));
    }
}
