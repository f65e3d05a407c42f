//! The boot test's "basic sanity test": an offline `kubeadm init` on the booted sealed image,
//! the API server's `/healthz`, the node Ready, and a pod running from an imported image with
//! `imagePullPolicy: Never`. An addon whose image the payload leaves out (the spec's
//! `kubernetes.skip_addons`, or a lock without it) is skipped, and the test says so and why.
//!
//! Everything these steps write lives in the boot test's throw-away overlay, never in the
//! golden disk: the dead-end default route user-mode networking lacks (kubelet and kube-proxy
//! need one), the `/etc/hosts` entry, the bridge CNI config and the kubeadm config.

use std::time::Duration;

use crate::error::Result;
use crate::shell::{self, quote};
use crate::step::Step;

/// The guest's address on QEMU's user-mode network.
pub const GUEST_IP: &str = "10.0.2.15";
/// The host side of QEMU's user-mode network (packets to it go nowhere under `restrict=on`).
pub const GATEWAY: &str = "10.0.2.2";
/// The pod network the bridge CNI config hands out.
pub const POD_SUBNET: &str = "10.244.0.0/16";
/// Lets the test pod run on the control-plane node without removing its taint.
const POD_OVERRIDES: &str = r#"{"apiVersion":"v1","spec":{"tolerations":[{"operator":"Exists"}]}}"#;
/// The test pod's name.
pub const POD_NAME: &str = "nodeimg-sanity";
/// Probe failures the kubelet tolerates before it restarts a control-plane static pod (10 s
/// apart): 20 minutes instead of kubeadm's 4 (startup) and 80 s (liveness).
const PROBE_FAILURES: u32 = 120;
/// Preflight errors the test ignores: a small test VM, images imported rather than pulled,
/// and the manifests and etcd directory the phases before `kubeadm init` made.
const PREFLIGHT_IGNORED: &[&str] = &[
    "NumCPU",
    "Mem",
    "ImagePull",
    "FileAvailable--etc-kubernetes-manifests-kube-apiserver.yaml",
    "FileAvailable--etc-kubernetes-manifests-kube-controller-manager.yaml",
    "FileAvailable--etc-kubernetes-manifests-kube-scheduler.yaml",
    "FileAvailable--etc-kubernetes-manifests-etcd.yaml",
    "DirAvailable--var-lib-etcd",
];
/// How long `kubeadm init` waits for the static-pod control plane to answer. kubeadm's own
/// default (4 minutes) is too short under TCG: a CI run saw the API server need more than that.
const CONTROL_PLANE_TIMEOUT: &str = "12m0s";

/// The bridge + host-local CNI config (containernetworking-plugins) that lets the node become
/// Ready.
const CNI_CONFIG: &str = r#"{
  "cniVersion": "0.4.0",
  "name": "nodeimg-test",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "10.244.0.0/24"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
"#;

/// A kubeadm addon whose image a payload may leave out (`kubeadm init` then skips its phase).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Addon {
    /// CoreDNS (`addon/coredns`), for clusters that bring their own DNS.
    CoreDns,
    /// kube-proxy (`addon/kube-proxy`), for clusters whose CNI replaces it.
    KubeProxy,
}

impl Addon {
    /// Every addon, in the order kubeadm installs them.
    pub const ALL: [Addon; 2] = [Addon::CoreDns, Addon::KubeProxy];

    /// The name a spec gives it (`coredns`, `kube-proxy`): also the last segment of its image's
    /// repository (`registry.k8s.io/coredns/coredns`, `registry.k8s.io/kube-proxy`).
    pub fn name(self) -> &'static str {
        match self {
            Addon::CoreDns => "coredns",
            Addon::KubeProxy => "kube-proxy",
        }
    }

    /// The addon named `name`, if it is one.
    pub fn from_name(name: &str) -> Option<Addon> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// How people write it (`CoreDNS`, `kube-proxy`).
    pub fn display_name(self) -> &'static str {
        match self {
            Addon::CoreDns => "CoreDNS",
            Addon::KubeProxy => "kube-proxy",
        }
    }

    /// The `kubeadm init` phase that installs it.
    pub fn phase(self) -> &'static str {
        match self {
            Addon::CoreDns => "addon/coredns",
            Addon::KubeProxy => "addon/kube-proxy",
        }
    }
}

/// An addon the test skips, and why (shown in the step's output).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedAddon {
    /// The addon.
    pub addon: Addon,
    /// Why, e.g. "the spec's kubernetes.skip_addons leaves it out".
    pub reason: String,
}

impl SkippedAddon {
    /// What the build says: `CoreDNS is skipped: <reason>`.
    pub fn message(&self) -> String {
        format!("{} is skipped: {}", self.addon.display_name(), self.reason)
    }
}

/// What the test needs to know.
#[derive(Debug, Clone)]
pub struct KubeadmTest {
    /// `v1.20.2`.
    pub kubernetes_version: String,
    /// Registry prefix of the control-plane images (`k8s.gcr.io`, `registry.k8s.io`).
    pub image_repository: String,
    /// The image the test pod runs (the pause image).
    pub pod_image: String,
    /// The addons `kubeadm init` skips (their images are not in the payload), in
    /// [`Addon::ALL`] order.
    pub skipped_addons: Vec<SkippedAddon>,
}

fn minor(version: &str) -> u32 {
    version
        .trim_start_matches('v')
        .split('.')
        .nth(1)
        .and_then(|m| m.parse().ok())
        .unwrap_or(0)
}

/// The registry prefix of the kube-apiserver image among `images`.
pub fn image_repository(images: &[String]) -> Option<String> {
    images.iter().find_map(|r| {
        r.split_once("/kube-apiserver:")
            .map(|(repo, _)| repo.to_owned())
    })
}

impl KubeadmTest {
    /// Checks every parameter that goes into a script; the error names the field.
    pub fn validate(&self) -> Result<()> {
        shell::check_version("kubernetes version", &self.kubernetes_version)?;
        shell::check_image_ref("image repository", &self.image_repository)?;
        shell::check_image_ref("pod image", &self.pod_image)?;
        for s in &self.skipped_addons {
            if s.reason.chars().any(char::is_control) {
                return Err(crate::error::Error::invalid(
                    "skipped addon reason",
                    &s.reason,
                    "must not contain control characters",
                ));
            }
        }
        Ok(())
    }

    fn config(&self) -> String {
        let minor = minor(&self.kubernetes_version);
        let api = match minor {
            0..=21 => "kubeadm.k8s.io/v1beta2",
            22..=30 => "kubeadm.k8s.io/v1beta3",
            _ => "kubeadm.k8s.io/v1beta4",
        };
        let socket = if minor < 24 {
            "/run/containerd/containerd.sock".to_owned()
        } else {
            "unix:///run/containerd/containerd.sock".to_owned()
        };
        let extra = if minor >= 31 {
            format!("  kubeletExtraArgs:\n  - name: node-ip\n    value: {GUEST_IP}\n")
        } else {
            format!("  kubeletExtraArgs:\n    node-ip: {GUEST_IP}\n")
        };
        // v1beta4 moved the control-plane wait into InitConfiguration.timeouts.
        let (init_timeout, cluster_timeout) = if minor >= 31 {
            (
                format!("timeouts:\n  controlPlaneComponentHealthCheck: {CONTROL_PLANE_TIMEOUT}\n"),
                String::new(),
            )
        } else {
            (
                String::new(),
                format!("apiServer:\n  timeoutForControlPlane: {CONTROL_PLANE_TIMEOUT}\n"),
            )
        };
        format!(
            "apiVersion: {api}\n\
             kind: InitConfiguration\n\
             localAPIEndpoint:\n  advertiseAddress: {GUEST_IP}\n  bindPort: 6443\n\
             nodeRegistration:\n  criSocket: {socket}\n{extra}\
             {init_timeout}\
             ---\n\
             apiVersion: {api}\n\
             kind: ClusterConfiguration\n\
             kubernetesVersion: {version}\n\
             imageRepository: {repo}\n\
             {cluster_timeout}\
             networking:\n  podSubnet: {POD_SUBNET}\n  serviceSubnet: 10.96.0.0/12\n\
             ---\n\
             apiVersion: kubelet.config.k8s.io/v1beta1\n\
             kind: KubeletConfiguration\n\
             cgroupDriver: systemd\n",
            version = self.kubernetes_version,
            repo = self.image_repository,
        )
    }

    /// A step with `KUBECONFIG` set for kubectl. Its timeout is exactly `secs`, not raised to
    /// [`crate::step::MIN_STEP_TIMEOUT`]: each is sized for its work (`kubeadm-prepare` has
    /// 60 s), as when the builder rendered them.
    fn step(name: &str, secs: u64, body: &str) -> Step {
        let body = format!("export KUBECONFIG=/etc/kubernetes/admin.conf\n{body}\n");
        let mut step = Step::new(name, Duration::ZERO, &body);
        step.timeout = Duration::from_secs(secs);
        step
    }

    /// The test's steps, in order (see [`steps`]).
    fn commands(&self) -> Vec<Step> {
        let prepare = format!(
            "{network}printf '%s' {config} > /root/kubeadm-config.yaml",
            network = node_network(),
            config = quote(&self.config()),
        );
        let mut prepare = prepare;
        let mut skip_phases = "certs,kubeconfig,control-plane,etcd".to_owned();
        for s in &self.skipped_addons {
            prepare.push_str(&format!("\necho {}", quote(&s.message())));
            skip_phases.push(',');
            skip_phases.push_str(s.addon.phase());
        }
        // The static-pod manifests are written first and their probes given room: under TCG
        // the API server can need longer than kubeadm's startup-probe window (24 × 10 s), and
        // the kubelet would then kill it over and over. Then `kubeadm init` does the rest.
        let init = format!(
            "cfg=/root/kubeadm-config.yaml\n\
             kubeadm init phase certs all --config \"$cfg\"\n\
             kubeadm init phase kubeconfig all --config \"$cfg\"\n\
             kubeadm init phase control-plane all --config \"$cfg\"\n\
             kubeadm init phase etcd local --config \"$cfg\"\n\
             sed -i -E 's/^( *failureThreshold:) *[0-9]+$/\\1 {PROBE_FAILURES}/; s/^( *timeoutSeconds:) *[0-9]+$/\\1 60/' \\\n\
             \t/etc/kubernetes/manifests/*.yaml\n\
             grep -H 'failureThreshold' /etc/kubernetes/manifests/*.yaml\n\
             kubeadm init --config \"$cfg\" \\\n\
             \t--ignore-preflight-errors={ignored} \\\n\
             \t--skip-phases={skip_phases}",
            ignored = PREFLIGHT_IGNORED.join(","),
        );
        let healthz = "for _ in $(seq 1 120); do\n\
             \tif [ \"$(kubectl get --raw /healthz 2>/dev/null)\" = ok ]; then echo 'healthz: ok'; exit 0; fi\n\
             \tsleep 1\n\
             done\n\
             kubectl get --raw /healthz\n\
             exit 1";
        let node_ready = "kubectl wait --for=condition=Ready node --all --timeout=420s\n\
             kubectl get nodes -o wide";
        // The pod tolerates the control-plane taint rather than removing it, and its creation
        // is retried until the default service account exists (the controller manager makes
        // it; under TCG that takes minutes). Every kubectl call has a request timeout.
        let pod = format!(
            "k() {{ kubectl --request-timeout=60s \"$@\"; }}\n\
             start=$(date +%s)\n\
             until k run {POD_NAME} --image={image} --image-pull-policy=Never --restart=Never --overrides={overrides}; do\n\
             \tif [ $(($(date +%s) - start)) -ge 480 ]; then\n\
             \t\techo 'the pod could not be created within 480s'\n\
             \t\tk get serviceaccounts,pods -A -o wide || true\n\
             \t\texit 1\n\
             \tfi\n\
             \tsleep 5\n\
             done\n\
             echo \"pod created after $(($(date +%s) - start))s\"\n\
             if ! k wait --for=condition=Ready pod/{POD_NAME} --timeout=300s; then\n\
             \tk describe pod {POD_NAME} | tail -n 25 || true\n\
             \texit 1\n\
             fi\n\
             echo \"pod ready after $(($(date +%s) - start))s\"\n\
             # Evidence for the log: every pod with its restarts and age.\n\
             k get pods -A -o wide",
            image = quote(&self.pod_image),
            overrides = quote(POD_OVERRIDES),
        );
        vec![
            Self::step("kubeadm-prepare", 60, &prepare),
            Self::step("kubeadm-init", 1080, &init),
            Self::step("api-healthz", 180, healthz),
            Self::step("node-ready", 480, node_ready),
            Self::step("pod-runs", 960, &pod),
        ]
    }
}

/// The shell lines (each ending in a newline) that give a throw-away test node what a kubelet
/// needs and a cut-off user-mode network lacks: a dead-end default route, the hostname in
/// `/etc/hosts`, and the bridge CNI config. Shared by the kubeadm test and the node
/// conformance run.
pub fn node_network() -> String {
    format!(
        "ip -4 route show default | grep -q . || ip route add default via {GATEWAY}\n\
         grep -q \" $(hostname)\\$\" /etc/hosts || echo \"{GUEST_IP} $(hostname)\" >> /etc/hosts\n\
         mkdir -p /etc/cni/net.d\n\
         printf '%s' {cni} > /etc/cni/net.d/10-nodeimg-test.conflist\n",
        cni = quote(CNI_CONFIG),
    )
}

/// The boot test's kubeadm steps, in order: prepare (route, hosts entry, CNI and kubeadm
/// config), `kubeadm init`, the API server's `/healthz`, the node Ready, a pod running. The
/// parameters are validated first.
pub fn steps(test: &KubeadmTest) -> Result<Vec<Step>> {
    test.validate()?;
    Ok(test.commands())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test(version: &str) -> KubeadmTest {
        KubeadmTest {
            kubernetes_version: version.into(),
            image_repository: "k8s.gcr.io".into(),
            pod_image: "k8s.gcr.io/pause:3.2".into(),
            skipped_addons: vec![SkippedAddon {
                addon: Addon::CoreDns,
                reason: "the payload carries no CoreDNS image".into(),
            }],
        }
    }

    #[test]
    fn config_follows_the_kubeadm_api_of_the_version() {
        let c = test("v1.20.2").config();
        assert!(c.contains("apiVersion: kubeadm.k8s.io/v1beta2"), "{c}");
        assert!(
            c.contains("criSocket: /run/containerd/containerd.sock"),
            "{c}"
        );
        assert!(c.contains("kubernetesVersion: v1.20.2"));
        assert!(c.contains("imageRepository: k8s.gcr.io"));
        assert!(c.contains("cgroupDriver: systemd"));
        assert!(
            c.contains("apiServer:\n  timeoutForControlPlane: 12m0s\n"),
            "{c}"
        );
        let c = test("v1.30.2").config();
        assert!(c.contains("timeoutForControlPlane: 12m0s"), "{c}");
        assert!(c.contains("kubeadm.k8s.io/v1beta3"), "{c}");
        assert!(c.contains("unix:///run/containerd/containerd.sock"));
        let c = test("v1.31.0").config();
        assert!(c.contains("kubeadm.k8s.io/v1beta4"), "{c}");
        assert!(c.contains("- name: node-ip"), "{c}");
        assert!(c.contains("controlPlaneComponentHealthCheck: 12m0s"), "{c}");
        assert!(!c.contains("timeoutForControlPlane"), "{c}");
    }

    #[test]
    fn steps_and_the_pod_pull_policy() {
        let cmds = steps(&test("v1.20.2")).unwrap();
        let names: Vec<&str> = cmds.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "kubeadm-prepare",
                "kubeadm-init",
                "api-healthz",
                "node-ready",
                "pod-runs"
            ]
        );
        assert!(
            cmds[1]
                .remote_command()
                .contains("--skip-phases=certs,kubeconfig,control-plane,etcd,addon/coredns")
        );
        assert!(
            cmds[0]
                .script
                .ends_with("\necho 'CoreDNS is skipped: the payload carries no CoreDNS image'\n"),
            "{}",
            cmds[0].script
        );
        assert!(cmds[4].script.contains("--image-pull-policy=Never"));
        let timeouts: Vec<u64> = cmds.iter().map(|c| c.timeout.as_secs()).collect();
        assert_eq!(timeouts, [60, 1080, 180, 480, 960]);
        assert!(cmds[0].script.starts_with(
            "#!/bin/sh\n# nodeimg step: kubeadm-prepare\nset -eu\nexec </dev/null\nexport KUBECONFIG=/etc/kubernetes/admin.conf\n"
        ));
        assert_eq!(
            image_repository(&["registry.k8s.io/kube-apiserver:v1.30.2".into()]),
            Some("registry.k8s.io".into())
        );
    }

    #[test]
    fn each_skipped_addon_is_a_skipped_phase_said_with_its_reason() {
        let mut t = test("v1.30.2");
        t.skipped_addons.clear();
        let cmds = steps(&t).unwrap();
        assert!(
            cmds[1]
                .script
                .contains("--skip-phases=certs,kubeconfig,control-plane,etcd\n"),
            "{}",
            cmds[1].script
        );
        assert!(!cmds[0].script.contains("skipped"), "{}", cmds[0].script);
        t.skipped_addons = vec![
            SkippedAddon {
                addon: Addon::CoreDns,
                reason: "the spec's kubernetes.skip_addons leaves it out".into(),
            },
            SkippedAddon {
                addon: Addon::KubeProxy,
                reason: "the lock has no kube-proxy image".into(),
            },
        ];
        let cmds = steps(&t).unwrap();
        assert!(
            cmds[1].script.contains(
                "--skip-phases=certs,kubeconfig,control-plane,etcd,addon/coredns,addon/kube-proxy\n"
            ),
            "{}",
            cmds[1].script
        );
        assert!(
            cmds[0].script.contains(
                "echo 'CoreDNS is skipped: the spec'\\''s kubernetes.skip_addons leaves it out'\n\
                 echo 'kube-proxy is skipped: the lock has no kube-proxy image'\n"
            ),
            "{}",
            cmds[0].script
        );
        t.skipped_addons[0].reason = "a\nb".into();
        assert!(steps(&t).is_err());
        assert_eq!(Addon::from_name("kube-proxy"), Some(Addon::KubeProxy));
        assert_eq!(Addon::from_name("dns"), None);
    }

    /// The pod's overrides are JSON (`kubectl run --overrides`). Every step parsing under
    /// `sh -n` and shellcheck is shown by the harness in `tests/it/syntax.rs`.
    #[test]
    fn pod_overrides_are_json() {
        let overrides: serde_json::Value = serde_json::from_str(POD_OVERRIDES).unwrap();
        assert_eq!(overrides["spec"]["tolerations"][0]["operator"], "Exists");
    }

    #[test]
    fn bad_parameters_are_refused() {
        let mut t = test("v1.20.2");
        t.pod_image = "pause; reboot".into();
        assert!(steps(&t).is_err());
        let mut t = test("v1.20.2");
        t.kubernetes_version = "1.20 2".into();
        assert!(steps(&t).is_err());
        assert_eq!(steps(&test("v1.20.2")).unwrap().len(), 5);
    }

    /// The CNI config is JSON (kubelet ignores a broken one silently).
    #[test]
    fn cni_config_is_json() {
        let v: serde_json::Value = serde_json::from_str(CNI_CONFIG).unwrap();
        assert_eq!(v["plugins"][0]["type"], "bridge");
    }
}
