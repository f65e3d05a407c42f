//! The node conformance run: Kubernetes' node e2e suite (`e2e_node.test`) with the
//! `[NodeConformance]` focus, run in the boot test's throw-away overlay against the image's own
//! containerd and kubelet, from a read-only test disk.
//!
//! Standalone node mode as the v1.20 suite runs it with `--conformance=true`: the suite starts
//! etcd, an API server and the namespace controller in-process (on `https://127.0.0.1:6443`,
//! accepting the bearer token given with `--bearer-token`) and does not start a kubelet; the
//! image's own `/usr/bin/kubelet` is started beside it (as a transient systemd unit) with a
//! kubeconfig for that API server and token. The kubelet flags follow
//! `test/e2e_node/conformance/run_test.sh` of that version, except its
//! `http://localhost:8080`: the v1.20 API server has no insecure port any more. The suite's
//! system validation chroots to `/rootfs`, a link to `/` in the overlay. When the kubeadm test
//! ran first, its kubelet is stopped and its containers are killed so the ports are free.
//!
//! Images come from the test disk (`--prepull-images=false`: the suite then lets pods use the
//! images as they are); tests that cannot run offline are skipped by name, each with its reason.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::kubeadm_test::{GUEST_IP, node_network};
use crate::payload::{ReadOnlyDisk, import_images_from, mount_disk};
use crate::shell::quote;
use crate::step::Step;

/// The read-only test disk: the suite's binary and the test images.
pub const TEST_DISK: ReadOnlyDisk = ReadOnlyDisk {
    step: "conformance-disk-mount",
    label: "nodeimg-tests",
    mount: "/run/nodeimg-conformance",
    what: "the conformance test disk",
};
/// The suite's binary, at the root of the test disk.
pub const SUITE_BINARY: &str = "e2e_node.test";

/// The suite's working directory in the guest (its token file, the kubelet's kubeconfig and
/// static pod directory, the report).
pub const WORK_DIR: &str = "/var/lib/nodeimg-conformance";
/// Where the suite writes its JUnit reports (`junit_nodeimg_NN.xml`, one per ginkgo node).
pub const REPORT_DIR: &str = "/var/lib/nodeimg-conformance/report";
/// The transient unit the kubelet runs in.
const KUBELET_UNIT: &str = "nodeimg-conformance-kubelet";
/// containerd's CRI socket.
const CRI_ENDPOINT: &str = "unix:///run/containerd/containerd.sock";

/// The focus of every run: the node conformance tests.
pub const FOCUS: &str = r"\[NodeConformance\]";
/// Tests no run takes, as upstream's node conformance runner skips them.
pub const SKIP: &str = r"\[Flaky\]|\[Slow\]|\[Serial\]|\[Disruptive\]";

/// Which tests run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// [`QUICK`]: pods and containers, probes, volumes, security context, lifecycle hooks and
    /// logs, about ten minutes under TCG.
    Quick,
    /// Every `[NodeConformance]` test of the version (minus [`SKIP`]).
    Full,
}

impl Scope {
    /// `quick` or `full`, as the command line and the spec write it.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Quick => "quick",
            Scope::Full => "full",
        }
    }

    /// The scope called `name`.
    pub fn from_name(name: &str) -> Option<Scope> {
        match name {
            "quick" => Some(Scope::Quick),
            "full" => Some(Scope::Full),
            _ => None,
        }
    }
}

/// The quick subset, by the tests' full names at v1.20 (each also carries `[NodeConformance]`,
/// so a name a later version renamed simply matches nothing and the run's count shows it).
pub const QUICK: &[&str] = &[
    "[k8s.io] Pods should be submitted and removed [NodeConformance] [Conformance]",
    "[k8s.io] Pods should get a host IP [NodeConformance] [Conformance]",
    "[k8s.io] Container Runtime blackbox test when starting a container that exits should run with the expected status [NodeConformance] [Conformance]",
    "[k8s.io] Probing container should be restarted with a exec \"cat /tmp/health\" liveness probe [NodeConformance] [Conformance]",
    "[sig-storage] ConfigMap should be consumable from pods in volume [NodeConformance] [Conformance]",
    "[sig-storage] Secrets should be consumable from pods in volume [NodeConformance] [Conformance]",
    "[sig-storage] EmptyDir volumes should support (root,0644,tmpfs) [LinuxOnly] [NodeConformance] [Conformance]",
    "[sig-storage] EmptyDir volumes volume on default medium should have the correct mode [LinuxOnly] [NodeConformance] [Conformance]",
    "[sig-storage] Projected configMap should be consumable from pods in volume [NodeConformance] [Conformance]",
    "[sig-storage] Projected secret should be consumable from pods in volume [NodeConformance] [Conformance]",
    "[k8s.io] Security Context When creating a container with runAsUser should run the container with uid 65534 [LinuxOnly] [NodeConformance] [Conformance]",
    "[k8s.io] Security Context When creating a pod with readOnlyRootFilesystem should run the container with readonly rootfs when readOnlyRootFilesystem=true [LinuxOnly] [NodeConformance]",
    "[k8s.io] Security Context when creating containers with AllowPrivilegeEscalation should not allow privilege escalation when false [LinuxOnly] [NodeConformance] [Conformance]",
    "[k8s.io] Container Lifecycle Hook when create a pod with lifecycle hook should execute poststart exec hook properly [NodeConformance] [Conformance]",
    "[k8s.io] Container Lifecycle Hook when create a pod with lifecycle hook should execute prestop http hook properly [NodeConformance] [Conformance]",
    "[k8s.io] Kubelet when scheduling a busybox command in a pod should print the output to logs [NodeConformance] [Conformance]",
    "[k8s.io] ContainerLogPath [NodeConformance] Pod with a container printed log to stdout should print log to correct cri log path",
];

/// A test skipped by name because it cannot run offline, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfflineSkip {
    /// A part of the test's full name (matched literally).
    pub name: String,
    /// Why it cannot run here.
    pub reason: String,
}

/// What a conformance run needs.
#[derive(Debug, Clone)]
pub struct ConformanceRun {
    /// Which tests.
    pub scope: Scope,
    /// The test disk's filesystem UUID (derived by the host from its content).
    pub fs_uuid: String,
    /// The test images on the disk: (file under the disk's root, reference).
    pub images: Vec<(String, String)>,
    /// Tests skipped by name, with the reason.
    pub offline_skips: Vec<OfflineSkip>,
    /// Whether the kubeadm test ran before in the same guest (its kubelet and containers are
    /// then stopped first).
    pub after_kubeadm: bool,
    /// How long the suite may run before it is stopped.
    pub deadline: Duration,
}

/// `s` as a regular expression that matches it literally (RE2 syntax, as ginkgo's Go regexp).
pub fn literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl ConformanceRun {
    /// The `--ginkgo.focus` regular expression.
    pub fn focus(&self) -> String {
        match self.scope {
            Scope::Full => FOCUS.to_owned(),
            Scope::Quick => QUICK
                .iter()
                .map(|n| literal(n))
                .collect::<Vec<_>>()
                .join("|"),
        }
    }

    /// The `--ginkgo.skip` regular expression: [`SKIP`] and every offline skip.
    pub fn skip(&self) -> String {
        let mut skip = SKIP.to_owned();
        for s in &self.offline_skips {
            skip.push('|');
            skip.push_str(&literal(&s.name));
        }
        skip
    }

    fn validate(&self) -> Result<()> {
        for (file, reference) in &self.images {
            crate::shell::check_image_ref("test image", reference)?;
            if file.is_empty()
                || file.contains("..")
                || !file
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._/-".contains(c))
            {
                return Err(Error::invalid(
                    "test image file",
                    file,
                    "must be a relative path of [A-Za-z0-9._/-] without ..",
                ));
            }
        }
        for s in &self.offline_skips {
            if s.name.is_empty()
                || format!("{}{}", s.name, s.reason)
                    .chars()
                    .any(char::is_control)
            {
                return Err(Error::invalid(
                    "offline skip",
                    &s.name,
                    "must be a non-empty name, without control characters in it or its reason",
                ));
            }
        }
        if !self
            .fs_uuid
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c == '-')
        {
            return Err(Error::invalid(
                "test disk UUID",
                &self.fs_uuid,
                "must be hex digits and dashes",
            ));
        }
        Ok(())
    }

    /// Stops what the kubeadm test left running (its kubelet, then every container it started)
    /// and waits until the API server's and etcd's ports are free; without the kubeadm test,
    /// only the (idle) kubelet service is stopped.
    fn node_reset(&self) -> Step {
        let mut body = String::from("systemctl stop kubelet || true\n");
        if self.after_kubeadm {
            body.push_str(
                "for t in $(ctr -n k8s.io tasks ls -q); do ctr -n k8s.io tasks kill -s KILL \"$t\" || true; done\n\
                 for _ in $(seq 1 60); do\n\
                 \tss -Htln | grep -Eq ':(6443|2379|2380|10250|10248|10257|10259) ' || break\n\
                 \tsleep 1\n\
                 done\n\
                 if ss -Htln | grep -E ':(6443|2379|2380|10250|10248|10257|10259) '; then\n\
                 \techo 'the kubeadm test left these ports in use after 60 s' >&2; exit 1\n\
                 fi\n\
                 echo \"stopped the kubeadm test's kubelet and $(ctr -n k8s.io tasks ls -q | wc -l) running containers left\"\n",
            );
        }
        Step::new("conformance-node-reset", Duration::ZERO, &body)
    }

    /// The kubelet for the suite: the node's network (route, hosts entry, CNI config), a
    /// kubeconfig with a fresh bearer token for the suite's API server, `/rootfs`, then the
    /// image's kubelet in a transient unit, checked to answer on its health port.
    fn kubelet(&self) -> Step {
        let body = format!(
            "{network}\
             C={work}\n\
             mkdir -p \"$C/manifests\" \"$C/report\"\n\
             rm -f \"$C\"/report/*\n\
             token=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \\n')\n\
             umask 077\n\
             printf '%s' \"$token\" > \"$C/token\"\n\
             cat > \"$C/kubeconfig\" <<EOF\n\
             apiVersion: v1\n\
             kind: Config\n\
             clusters:\n\
             - cluster:\n\
             \x20   server: https://127.0.0.1:6443\n\
             \x20   insecure-skip-tls-verify: true\n\
             \x20 name: local\n\
             contexts:\n\
             - context:\n\
             \x20   cluster: local\n\
             \x20   user: local\n\
             \x20 name: local\n\
             current-context: local\n\
             users:\n\
             - name: local\n\
             \x20 user:\n\
             \x20   token: $token\n\
             EOF\n\
             umask 022\n\
             [ -e /rootfs ] || ln -s / /rootfs\n\
             systemctl stop {unit} 2>/dev/null || true\n\
             systemctl reset-failed {unit} 2>/dev/null || true\n\
             systemd-run --unit={unit} --description='kubelet for the node conformance suite' \\\n\
             \t/usr/bin/kubelet --kubeconfig=\"$C/kubeconfig\" --pod-manifest-path=\"$C/manifests\" \\\n\
             \t--container-runtime=remote --container-runtime-endpoint={cri} \\\n\
             \t--cgroup-driver=systemd --cgroup-root=/ --node-ip={GUEST_IP} \\\n\
             \t--volume-stats-agg-period=10s --serialize-image-pulls=false --file-check-frequency=10s --v=2\n\
             for _ in $(seq 1 120); do\n\
             \tss -Htln | grep -q ':10248 ' && {{ echo 'kubelet is up'; exit 0; }}\n\
             \tsystemctl is-active -q {unit} || break\n\
             \tsleep 1\n\
             done\n\
             journalctl -u {unit} --no-pager | tail -n 30 >&2\n\
             echo 'the kubelet did not start listening on 127.0.0.1:10248' >&2\n\
             exit 1\n",
            network = node_network(),
            work = WORK_DIR,
            unit = KUBELET_UNIT,
            cri = CRI_ENDPOINT,
        );
        Step::new("conformance-kubelet", Duration::ZERO, &body)
    }

    /// The suite itself, one ginkgo node with upstream's flake retry: its exit status is
    /// whether every focused test passed; each test's result is in the JUnit report in
    /// [`REPORT_DIR`]. (Run by `ginkgo -nodes=2`, the suite's services process exited at once
    /// in the guest, failing the `BeforeSuite` on both nodes: one node it is.)
    fn suite(&self) -> Step {
        let body = format!(
            "cd {work}\n\
             rm -f {work}/suite-status {reports}/junit_nodeimg_*.xml\n\
             {{ {bin} --ginkgo.noColor --ginkgo.succinct --ginkgo.flakeAttempts=2 \\\n\
             \t--ginkgo.focus={focus} \\\n\
             \t--ginkgo.skip={skip} \\\n\
             \t--conformance=true --prepull-images=false \\\n\
             \t--container-runtime=remote --container-runtime-endpoint={cri} --image-service-endpoint={cri} \\\n\
             \t--bearer-token=\"$(cat {work}/token)\" --report-dir={reports} --report-prefix=nodeimg \\\n\
             \t|| echo $? > {work}/suite-status; }} 2>&1 | {{ grep -v 'util.go:10[46]\\] Health check on' || true; }}\n\
             systemctl stop {unit} || true\n\
             ls {reports}/junit_nodeimg_*.xml >/dev/null 2>&1 || {{ echo 'the suite wrote no JUnit report' >&2; exit 1; }}\n\
             if [ -e {work}/suite-status ]; then exit \"$(cat {work}/suite-status)\"; fi\n",
            work = WORK_DIR,
            reports = REPORT_DIR,
            bin = quote(&format!("{}/{SUITE_BINARY}", TEST_DISK.mount)),
            focus = quote(&self.focus()),
            skip = quote(&self.skip()),
            cri = CRI_ENDPOINT,
            unit = KUBELET_UNIT,
        );
        let mut step = Step::new("conformance-suite", Duration::ZERO, &body);
        step.timeout = self.deadline;
        step
    }
}

/// The shell command (run as root) that prints every JUnit report of the run as one XML
/// document: `<reports>`, each report without its XML declaration, `</reports>`.
pub fn reports_command() -> String {
    format!(
        "echo '<reports>'; for f in {REPORT_DIR}/junit_nodeimg_*.xml; do [ -f \"$f\" ] && sed '1{{/^<?xml/d}}' \"$f\"; done; echo '</reports>'"
    )
}

/// The run's steps, in order (each needs the one before): reset the node, mount the test disk,
/// import the test images, start the kubelet, run the suite. The parameters are validated first.
pub fn steps(run: &ConformanceRun) -> Result<Vec<Step>> {
    run.validate()?;
    let images: Vec<(&str, &str)> = run
        .images
        .iter()
        .map(|(f, r)| (f.as_str(), r.as_str()))
        .collect();
    Ok(vec![
        run.node_reset(),
        mount_disk(&TEST_DISK, &run.fs_uuid),
        import_images_from("conformance-images", TEST_DISK.mount, &images),
        run.kubelet(),
        run.suite(),
    ])
}

#[cfg(test)]
mod tests;
