use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use child_process::Command;
use distros::bom_collect::{ComponentQuery, ComponentSource};

use super::*;

const RUN_TIMEOUT: Duration = Duration::from_secs(60);

fn inputs() -> Inputs {
    Inputs {
        image: "img".into(),
        distro: "debian-12".into(),
        nodeimg_version: "0.1.0".into(),
        spec_sha256: "1".repeat(64),
        lock_sha256: "2".repeat(64),
        base_image_sha256: "3".repeat(64),
    }
}

fn query(payload: &str, root: &str) -> Query {
    Query {
        payload_mount: payload.into(),
        components: vec![
            ComponentQuery {
                artifact: "deb-containerd".into(),
                component: "containerd".into(),
                version: "1.6.20".into(),
                source: "debian".into(),
                how: ComponentSource::Deb {
                    file: "deb/deb-containerd.deb".into(),
                },
            },
            ComponentQuery {
                artifact: "kubeadm".into(),
                component: "kubeadm".into(),
                version: "v1.20.2".into(),
                source: "https://dl.k8s.io/kubeadm".into(),
                how: ComponentSource::Installed {
                    dest: format!("{root}/usr/bin/kubeadm"),
                },
            },
            ComponentQuery {
                artifact: "cni".into(),
                component: "cni_plugins".into(),
                version: "1.1.1".into(),
                source: "https://github.com/cni.tgz".into(),
                how: ComponentSource::Archive {
                    file: "archive/cni.tar.gz".into(),
                    dest: format!("{root}/opt/cni/bin/"),
                },
            },
        ],
        sysctls: vec!["net.ipv4.ip_forward".into()],
        modules: vec!["overlay".into(), "br_netfilter".into()],
    }
}

const DUMP: &str = r#"version = 2
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "k8s.gcr.io/pause:3.2"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = true
        BinaryName = ""
"#;

fn write_exec(path: &Path, body: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The script runs for real under sh, with stand-ins for dpkg, ctr, containerd and sysctl on
/// PATH, files in a scratch root and a real tar.gz on a scratch payload; the host's parser
/// turns its output into a BOM.
#[test]
fn the_script_runs_under_sh_and_its_output_parses() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let payload = dir.path().join("payload");
    let bin = dir.path().join("bin");
    let r = root.display().to_string();
    write_exec(&root.join("usr/bin/containerd"), "containerd");
    write_exec(&root.join("usr/bin/ctr"), "ctr");
    std::fs::create_dir_all(root.join("usr/share/doc/containerd")).unwrap();
    std::fs::write(root.join("usr/share/doc/containerd/copyright"), "c").unwrap();
    write_exec(&root.join("usr/bin/kubeadm"), "kubeadm");
    let cni_src = dir.path().join("cni");
    write_exec(&cni_src.join("bridge"), "bridge");
    write_exec(&cni_src.join("loopback"), "loopback");
    std::fs::create_dir_all(payload.join("archive")).unwrap();
    std::fs::create_dir_all(payload.join("deb")).unwrap();
    std::fs::write(payload.join("deb/deb-containerd.deb"), "deb").unwrap();
    Command::new("tar", RUN_TIMEOUT)
        .arg("-czf")
        .arg(payload.join("archive/cni.tar.gz"))
        .arg("-C")
        .arg(&cni_src)
        .args(["./bridge", "./loopback"])
        .run()
        .unwrap();
    std::fs::create_dir_all(root.join("opt/cni/bin")).unwrap();
    for p in ["bridge", "loopback"] {
        std::fs::copy(cni_src.join(p), root.join("opt/cni/bin").join(p)).unwrap();
    }
    write_exec(
        &bin.join("dpkg-query"),
        "#!/bin/sh\nprintf 'ii \\tbash\\t5.2.15-2+b7\\tamd64\\t\\t\\n'\nprintf 'hi \\tcontainerd\\t1.6.20~ds1-1+b1\\tamd64\\tcontainerd\\t1.6.20~ds1-1\\n'\nprintf 'rc \\tgone\\t1.0\\tamd64\\t\\t\\n'\n",
    );
    write_exec(
        &bin.join("dpkg-deb"),
        "#!/bin/sh\n[ \"$1\" = -f ] && [ -f \"$2\" ] && [ \"$3\" = Package ] && echo containerd\n",
    );
    write_exec(
        &bin.join("dpkg"),
        &format!(
            "#!/bin/sh\n[ \"$1 $2\" = '-L containerd' ] || exit 2\nprintf '%s\\n' {r}/usr {r}/usr/bin {r}/usr/bin/containerd {r}/usr/bin/ctr {r}/usr/share/doc/containerd/copyright\n"
        ),
    );
    let digest = format!("sha256:{}", "ab".repeat(32));
    write_exec(
        &bin.join("ctr"),
        &format!(
            "#!/bin/sh\necho 'REF TYPE DIGEST SIZE PLATFORMS LABELS'\necho 'k8s.gcr.io/pause:3.2 application/vnd.oci.image.manifest.v1+json {digest} 290.7 KiB linux/amd64 io.cri-containerd.image=managed'\necho 'sha256:{h} application/vnd.oci.image.manifest.v1+json {digest} 290.7 KiB linux/amd64 -'\n",
            h = "cd".repeat(32)
        ),
    );
    write_exec(
        &bin.join("containerd"),
        &format!("#!/bin/sh\ncat <<'EOF'\n{DUMP}EOF\n"),
    );
    write_exec(&bin.join("sysctl"), "#!/bin/sh\necho 1\n");
    let q = query(&payload.display().to_string(), &r);
    let step = distros::bom_collect::step(&q).unwrap();
    let out = Command::new("/bin/sh", RUN_TIMEOUT)
        .arg("-c")
        .arg(&step.script)
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        )
        .run_status()
        .unwrap();
    let stdout = out.stdout_lossy();
    assert!(out.status.success(), "{stdout}\n{}", out.stderr_tail);
    let bom = parse(&stdout, inputs(), &q).unwrap();
    let names: Vec<(&str, bool)> = bom
        .packages
        .iter()
        .map(|p| (p.name.as_str(), p.held))
        .collect();
    assert_eq!(names, [("bash", false), ("containerd", true)], "rc is gone");
    assert_eq!(
        bom.packages[0].source, "bash",
        "source defaults to the name"
    );
    assert_eq!(bom.packages[1].source_version, "1.6.20~ds1-1");
    let files: Vec<(&str, String)> = bom
        .components
        .iter()
        .map(|c| (c.name.as_str(), c.path.replace(&r, "")))
        .collect();
    assert_eq!(
        files,
        [
            ("cni_plugins", "/opt/cni/bin/bridge".to_owned()),
            ("cni_plugins", "/opt/cni/bin/loopback".to_owned()),
            ("containerd", "/usr/bin/containerd".to_owned()),
            ("containerd", "/usr/bin/ctr".to_owned()),
            ("kubeadm", "/usr/bin/kubeadm".to_owned()),
        ]
    );
    let kubeadm = bom.components.iter().find(|c| c.name == "kubeadm").unwrap();
    let real = Command::new("sha256sum", RUN_TIMEOUT)
        .arg(root.join("usr/bin/kubeadm"))
        .run()
        .unwrap();
    assert!(real.stdout_lossy().starts_with(&kubeadm.sha256));
    assert_eq!(kubeadm.version, "v1.20.2");
    assert_eq!(
        bom.images.len(),
        1,
        "the config-digest alias is not a reference"
    );
    assert_eq!(bom.images[0].digest, digest);
    assert_eq!(bom.config.sysctls["net.ipv4.ip_forward"], "1");
    assert_eq!(bom.config.modules.len(), 2);
    let key =
        "plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options.SystemdCgroup";
    let flat: Vec<&String> = bom.config.containerd.keys().collect();
    assert!(
        bom.config
            .containerd
            .iter()
            .any(|(k, v)| k.ends_with("SystemdCgroup") && v == "true"),
        "{flat:?} (want {key})"
    );
    assert!(!flat.iter().any(|k| k.ends_with("BinaryName")));
    assert!(bom.os.os_release.contains_key("ID"));
    assert!(!bom.os.kernel_release.is_empty());
}

fn sample_output() -> String {
    format!(
        "@@nodeimg-bom os-release\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n\
         @@nodeimg-bom kernel\nrelease\t6.1.0-28-cloud-amd64\ncmdline\troot=UUID=x ro\n\
         @@nodeimg-bom packages\nii \tbash\t5.2\tamd64\t\t\n\
         @@nodeimg-bom files\nF\tkubeadm\t/usr/bin/kubeadm\t{h}\nF\tdeb-containerd\t/usr/bin/ctr\t{h}\nF\tcni\t/opt/cni/bin/bridge\t{h}\n\
         @@nodeimg-bom images\nREF TYPE DIGEST\n\
         @@nodeimg-bom sysctls\nnet.ipv4.ip_forward\t1\n\
         @@nodeimg-bom modules\noverlay\tyes\nbr_netfilter\tno\n\
         @@nodeimg-bom containerd\n{DUMP}\
         @@nodeimg-bom end\n",
        h = "0".repeat(64)
    )
}

#[test]
fn a_well_formed_answer_parses() {
    let q = query("/p", "");
    let bom = parse(&sample_output(), inputs(), &q).unwrap();
    assert_eq!(
        bom.os.os_release["PRETTY_NAME"],
        "Debian GNU/Linux 12 (bookworm)"
    );
    assert_eq!(bom.os.kernel_cmdline, "root=UUID=x ro");
    assert!(!bom.config.modules["br_netfilter"]);
    assert!(bom.images.is_empty());
}

/// Each way the guest's answer can be wrong is an error naming what is wrong.
#[test]
fn malformed_answers_are_errors_naming_the_fault() {
    let q = query("/p", "");
    let good = sample_output();
    let cases = [
        (good.replace("@@nodeimg-bom end\n", ""), "no `end` section"),
        (
            good.replace("\t/usr/bin/kubeadm", "\t/usr/bin/kubeadm\textra"),
            "tab-separated fields",
        ),
        (good.replace("F\tkubeadm", "F\tmystery"), "unknown artifact"),
        (
            good.replace(
                &format!("/usr/bin/kubeadm\t{}", "0".repeat(64)),
                "/usr/bin/kubeadm\tzz",
            ),
            "not `F, artifact, path, sha256`",
        ),
        (
            good.replace("F\tkubeadm\t/usr/bin/kubeadm", "F\tcni\t/opt/cni/bin/x"),
            "no installed file found for kubeadm",
        ),
        (
            good.replace("ii \tbash", "rc \tbash"),
            "no installed package",
        ),
        (good.replace("ID=debian\n", ""), "no ID"),
        (
            good.replace("REF TYPE DIGEST\n", "k8s.gcr.io/pause:3.2 x notadigest\n"),
            "is not a digest",
        ),
        (
            good.replace("SystemdCgroup = true", ""),
            "no runc SystemdCgroup",
        ),
        (good.replace("version = 2", "version = = 2"), "not TOML"),
        (good.replace("release\t", "release "), "has no tab"),
    ];
    for (text, want) in cases {
        let e = parse(&text, inputs(), &q).unwrap_err().to_string();
        assert!(e.contains(want), "want {want:?}, got {e}");
    }
}
