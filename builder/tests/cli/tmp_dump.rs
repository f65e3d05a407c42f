//! TEMPORARY (issue 11 safety net): dumps every script the pipeline renders for a fixture-like
//! input, to compare the old rendering with the plan's. Removed before the branch is done.

use builder::pipeline as p;

/// The build fixture plus a file, a command, a check and the control-plane images.
pub(super) fn rich_fixture() -> super::build::Fixture {
    let f = super::build::fixture();
    let dir = f.spec.parent().unwrap().to_path_buf();
    std::fs::write(dir.join("motd"), b"hello\n").unwrap();
    let mut spec = std::fs::read_to_string(&f.spec).unwrap();
    spec.push_str("\n[[files]]\nsource = \"motd\"\ndest = \"/etc/motd\"\nmode = \"0644\"\n\n[[commands]]\nname = \"motd-readable\"\nrun = \"chmod 0644 /etc/motd\"\n\n[[checks]]\nname = \"motd-present\"\nrun = \"grep -q nodeimg /etc/motd\"\n");
    std::fs::write(&f.spec, spec).unwrap();
    let mut lock = std::fs::read_to_string(&f.lock).unwrap();
    for name in [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "etcd",
    ] {
        let data = format!("{name} image\n");
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(data.as_bytes()));
        let d = f.cache.join("cas/sha256");
        std::fs::write(d.join(&sha), &data).unwrap();
        lock.push_str(&format!(
            "\n[[artifact]]\nname = \"{name}\"\nkind = \"image\"\nsource = \"test\"\nsize = {}\nsha256 = \"{sha}\"\nimage = \"k8s.gcr.io/{name}:v1.20.2\"\n",
            data.len()
        ));
    }
    std::fs::write(&f.lock, lock).unwrap();
    f
}

fn line(out: &mut String, phase: &str, name: &str, timeout: std::time::Duration, command: &str) {
    out.push_str(&format!("== {phase} / {name} / {timeout:?}\n{command}\n"));
}

#[test]
fn dump_plan_scripts() {
    let f = rich_fixture();
    let inputs = p::inputs::load(&f.spec, &builder::cache::Cache::new(&f.cache)).unwrap();
    let plan = p::plan::plan(
        &inputs,
        &p::plan::PlanOptions {
            build_user: "nodeimg".into(),
            kubeadm_test: true,
        },
    )
    .unwrap();
    plan.validate().unwrap();
    let mut out = String::new();
    for c in plan
        .provision
        .iter()
        .chain(plan.files.iter().map(|f| &f.install))
        .chain(&plan.commands)
    {
        line(&mut out, "provision", &c.name, c.timeout, &c.command);
    }
    for c in [&plan.bom_collect, &plan.payload_unmount] {
        line(&mut out, "bom", &c.name, c.timeout, &c.command);
    }
    for c in &plan.validation {
        line(
            &mut out,
            &c.class,
            &c.command.name,
            c.command.timeout,
            &c.command.command,
        );
    }
    line(
        &mut out,
        "identity",
        &plan.identity.name,
        plan.identity.timeout,
        &plan.identity.command,
    );
    for c in &plan.seal {
        line(&mut out, "seal", &c.name, c.timeout, &c.command);
    }
    let id = p::BuildIdentity {
        machine_id: Some("0123456789abcdef0123456789abcdef".into()),
        host_key_fingerprints: vec!["SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into()],
    };
    for c in plan.first_boot_checks(&id).unwrap() {
        line(
            &mut out,
            &c.class,
            &c.command.name,
            c.command.timeout,
            &c.command.command,
        );
    }
    for c in plan.kubeadm_steps().expect("kubeadm") {
        line(&mut out, "kubeadm", &c.name, c.timeout, &c.command);
    }
    std::fs::write(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../target/new-scripts.txt"),
        out,
    )
    .unwrap();
}
