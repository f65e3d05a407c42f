//! The images a node needs, as the locked kubeadm itself lists them: `kubeadm config images
//! list --kubernetes-version V --image-repository registry.k8s.io`, run on the host from a
//! temporary executable copy of the cached binary (the cache's own files stay read-only). No
//! table of etcd/coredns tags: any version kubeadm knows works, and its list (pause included)
//! is exactly what `fetch` pulls.
//!
//! kubeadm's output differs between versions: 1.20 lists `registry.k8s.io/coredns:1.7.0` for
//! a custom repository, 1.21+ `registry.k8s.io/coredns/coredns:v1.8.0`; both parse, and both are
//! locked as `coredns` ([`ImageRef::name`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::plan::{ImageRef, K8S_REGISTRY};

/// How long `kubeadm config images list` may take (it reads nothing from the network when
/// given the version; this catches a hang, not slowness).
pub const LIST_TIMEOUT: Duration = Duration::from_secs(60);

/// The most stdout the list may be (a handful of short lines).
const LIST_STDOUT_CAP: usize = 64 * 1024;

/// Linux's `ETXTBSY`: the copy was still open for writing in a child another thread forked.
const ETXTBSY: i32 = 26;

/// kubeadm could not list the images.
#[derive(Debug, thiserror::Error)]
pub enum KubeadmError {
    /// The temporary executable copy could not be made.
    #[error("copying kubeadm {from} to {to}: {cause}")]
    Copy {
        /// The cached kubeadm.
        from: String,
        /// The copy.
        to: String,
        /// The error.
        cause: std::io::Error,
    },
    /// kubeadm did not run to a successful end on this host (not executable, another
    /// architecture, a non-zero exit, a timeout); the cause carries its stderr's tail.
    #[error(
        "the locked kubeadm {version} ({path}) cannot list its images on this host (it must run here: same architecture, executable): {cause}"
    )]
    Run {
        /// The Kubernetes version.
        version: String,
        /// The cached kubeadm.
        path: String,
        /// What the runner reported.
        #[source]
        cause: child_process::Error,
    },
    /// A line of its output is not an image of `registry.k8s.io`.
    #[error(
        "kubeadm {version} config images list, line {line_no}: {line:?} is not an image reference registry.k8s.io/REPOSITORY:TAG"
    )]
    BadLine {
        /// The Kubernetes version.
        version: String,
        /// 1-based.
        line_no: usize,
        /// The line as printed.
        line: String,
    },
    /// It printed no image at all.
    #[error("kubeadm {version} config images list printed no image")]
    Empty {
        /// The Kubernetes version.
        version: String,
    },
}

/// Runs the kubeadm at `kubeadm` (a cached, verified file) for Kubernetes `version` and returns
/// the images it lists, in its order. The executable copy goes in a temporary directory under
/// `work` and is removed afterwards.
pub fn list_images(
    kubeadm: &Path,
    version: &str,
    work: &Path,
) -> Result<Vec<ImageRef>, KubeadmError> {
    let run_error = |cause| KubeadmError::Run {
        version: version.to_owned(),
        path: kubeadm.display().to_string(),
        cause,
    };
    let dir = tempfile::Builder::new()
        .prefix("kubeadm-")
        .tempdir_in(work)
        .map_err(|cause| KubeadmError::Copy {
            from: kubeadm.display().to_string(),
            to: work.display().to_string(),
            cause,
        })?;
    let exe = executable_copy(kubeadm, dir.path())?;
    let mut command = child_process::Command::new(&exe, LIST_TIMEOUT);
    command
        .what(format!("kubeadm {version} config images list"))
        .args(["config", "images", "list", "--kubernetes-version", version])
        .args(["--image-repository", K8S_REGISTRY])
        .current_dir(dir.path())
        .stdout_cap(LIST_STDOUT_CAP);
    let mut tries = 0;
    let out = loop {
        match command.run() {
            Err(child_process::Error::Spawn { source, .. })
                if source.raw_os_error() == Some(ETXTBSY) && tries < 5 =>
            {
                tries += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            r => break r.map_err(run_error)?,
        }
    };
    parse_image_list(version, &out.stdout_lossy())
}

/// Copies `kubeadm` into `dir` with mode 0755.
fn executable_copy(kubeadm: &Path, dir: &Path) -> Result<PathBuf, KubeadmError> {
    use std::os::unix::fs::PermissionsExt;
    let exe = dir.join("kubeadm");
    let copy_error = |cause| KubeadmError::Copy {
        from: kubeadm.display().to_string(),
        to: exe.display().to_string(),
        cause,
    };
    std::fs::copy(kubeadm, &exe).map_err(copy_error)?;
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).map_err(copy_error)?;
    Ok(exe)
}

/// Parses `kubeadm config images list` output: one `registry.k8s.io/REPOSITORY:TAG` per line
/// (blank lines ignored). Any other line is an error naming it; so is an empty list.
pub fn parse_image_list(version: &str, stdout: &str) -> Result<Vec<ImageRef>, KubeadmError> {
    let mut images = Vec::new();
    for (i, line) in stdout.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        let image = parse_line(trimmed).ok_or_else(|| KubeadmError::BadLine {
            version: version.to_owned(),
            line_no: i + 1,
            line: line.to_owned(),
        })?;
        images.push(image);
    }
    if images.is_empty() {
        return Err(KubeadmError::Empty {
            version: version.to_owned(),
        });
    }
    Ok(images)
}

/// `registry.k8s.io/REPOSITORY:TAG` ([`ImageRef::parse`]: repository segments of
/// `[a-z0-9._-]` starting with a letter or digit, a tag of 1–128 `[A-Za-z0-9._-]` starting
/// with a letter, digit or `_`), not pinned by digest.
fn parse_line(line: &str) -> Option<ImageRef> {
    ImageRef::parse(line).filter(|r| r.registry == K8S_REGISTRY && r.pinned_digest().is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(images: &[ImageRef]) -> Vec<String> {
        images.iter().map(ImageRef::reference).collect()
    }

    /// What kubeadm v1.20.2 prints with `--image-repository registry.k8s.io`: coredns directly
    /// under the repository.
    const V1_20: &str = "registry.k8s.io/kube-apiserver:v1.20.2\n\
        registry.k8s.io/kube-controller-manager:v1.20.2\n\
        registry.k8s.io/kube-scheduler:v1.20.2\n\
        registry.k8s.io/kube-proxy:v1.20.2\n\
        registry.k8s.io/pause:3.2\n\
        registry.k8s.io/etcd:3.4.13-0\n\
        registry.k8s.io/coredns:1.7.0\n";

    /// What kubeadm v1.30.2 prints: coredns under `coredns/`.
    const V1_30: &str = "registry.k8s.io/kube-apiserver:v1.30.2\n\
        registry.k8s.io/kube-controller-manager:v1.30.2\n\
        registry.k8s.io/kube-scheduler:v1.30.2\n\
        registry.k8s.io/kube-proxy:v1.30.2\n\
        registry.k8s.io/coredns/coredns:v1.11.1\n\
        registry.k8s.io/pause:3.9\n\
        registry.k8s.io/etcd:3.5.12-0\n";

    #[test]
    fn both_shapes_of_the_list_parse_with_stable_names() {
        let v120 = parse_image_list("v1.20.2", V1_20).unwrap();
        assert_eq!(refs(&v120), V1_20.lines().collect::<Vec<_>>());
        let names: Vec<&str> = v120.iter().map(ImageRef::name).collect();
        assert_eq!(
            names,
            [
                "kube-apiserver",
                "kube-controller-manager",
                "kube-scheduler",
                "kube-proxy",
                "pause",
                "etcd",
                "coredns"
            ]
        );
        let v130 = parse_image_list("v1.30.2", &format!("{V1_30}\n")).unwrap();
        let coredns = &v130[4];
        assert_eq!(
            (
                coredns.repository.as_str(),
                coredns.tag.as_str(),
                coredns.name()
            ),
            ("coredns/coredns", "v1.11.1", "coredns")
        );
        assert_eq!(v130.len(), 7);
    }

    #[test]
    fn a_junk_line_is_named_and_an_empty_list_refused() {
        for (junk, line_no) in [
            ("I1204 12:00:00 some log line", 3),
            ("k8s.gcr.io/pause:3.2", 3),
            ("registry.k8s.io/pause", 3),
            ("registry.k8s.io/Pause:3.2", 3),
            ("registry.k8s.io/pause:3.2; reboot", 3),
            ("registry.k8s.io//pause:3.2", 3),
        ] {
            let text = format!("registry.k8s.io/etcd:3.5.12-0\n\n{junk}\n");
            let e = parse_image_list("v1.30.2", &text).unwrap_err().to_string();
            assert_eq!(
                e,
                format!(
                    "kubeadm v1.30.2 config images list, line {line_no}: {junk:?} is not an image reference registry.k8s.io/REPOSITORY:TAG"
                )
            );
        }
        for empty in ["", "\n\n  \n"] {
            let e = parse_image_list("v1.30.2", empty).unwrap_err().to_string();
            assert_eq!(e, "kubeadm v1.30.2 config images list printed no image");
        }
    }

    fn script(dir: &Path, body: &str) -> PathBuf {
        let p = dir.join("kubeadm-cached");
        // Mode 0644, as in the cache: list_images runs a 0755 copy.
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        p
    }

    /// A shell script stands in for kubeadm here (the real one is run in the builder's
    /// fetch tests): it checks the arguments it is given and prints a list.
    #[test]
    fn the_list_comes_from_running_the_binary_with_the_version_and_repository() {
        let d = tempfile::tempdir().unwrap();
        let k = script(
            d.path(),
            "[ \"$*\" = 'config images list --kubernetes-version v1.30.2 --image-repository registry.k8s.io' ] || { echo \"bad args: $*\" >&2; exit 3; }\n\
             printf 'registry.k8s.io/pause:3.9\\nregistry.k8s.io/etcd:3.5.12-0\\n'",
        );
        let images = list_images(&k, "v1.30.2", d.path()).unwrap();
        assert_eq!(
            refs(&images),
            ["registry.k8s.io/pause:3.9", "registry.k8s.io/etcd:3.5.12-0"]
        );
        let e = list_images(&k, "v1.29.0", d.path()).unwrap_err();
        let shown = format!("{e}: {}", std::error::Error::source(&e).unwrap());
        assert!(
            shown.contains("the locked kubeadm v1.29.0")
                && shown.contains("cannot list its images on this host")
                && shown.contains("bad args: config images list --kubernetes-version v1.29.0"),
            "{shown}"
        );
        // Not a program this host runs: said so, not a panic.
        let junk = d.path().join("kubeadm-arm");
        std::fs::write(&junk, [0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0]).unwrap();
        let e = list_images(&junk, "v1.30.2", d.path()).unwrap_err();
        assert!(matches!(e, KubeadmError::Run { .. }), "{e}");
        // The temporary copies are gone.
        let left: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("kubeadm-"))
            .filter(|e| e.path().is_dir())
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
