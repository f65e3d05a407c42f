//! The boot test's "basic sanity test": an offline `kubeadm init` on the booted sealed image,
//! the API server's `/healthz`, the node Ready, and a pod running from an imported image with
//! `imagePullPolicy: Never`. CoreDNS is skipped (and said so): the payload need not carry it.
//!
//! Everything these steps write lives in the boot test's throw-away overlay, never in the
//! golden disk: the dead-end default route user-mode networking lacks (kubelet and kube-proxy
//! need one), the `/etc/hosts` entry, the bridge CNI config and the kubeadm config.

use std::time::Duration;

use distros::shell::quote;

use super::guest::GuestCommand;

/// The guest's address on QEMU's user-mode network.
pub const GUEST_IP: &str = "10.0.2.15";
/// The host side of QEMU's user-mode network (packets to it go nowhere under `restrict=on`).
pub const GATEWAY: &str = "10.0.2.2";
/// The pod network the bridge CNI config hands out.
pub const POD_SUBNET: &str = "10.244.0.0/16";
/// The test pod's name.
pub const POD_NAME: &str = "nodeimg-sanity";

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

/// What the test needs to know.
#[derive(Debug, Clone)]
pub struct KubeadmTest {
    /// `v1.20.2`.
    pub kubernetes_version: String,
    /// Registry prefix of the control-plane images (`k8s.gcr.io`, `registry.k8s.io`).
    pub image_repository: String,
    /// The image the test pod runs (the pause image).
    pub pod_image: String,
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
        format!(
            "apiVersion: {api}\n\
             kind: InitConfiguration\n\
             localAPIEndpoint:\n  advertiseAddress: {GUEST_IP}\n  bindPort: 6443\n\
             nodeRegistration:\n  criSocket: {socket}\n{extra}\
             ---\n\
             apiVersion: {api}\n\
             kind: ClusterConfiguration\n\
             kubernetesVersion: {version}\n\
             imageRepository: {repo}\n\
             networking:\n  podSubnet: {POD_SUBNET}\n  serviceSubnet: 10.96.0.0/12\n\
             ---\n\
             apiVersion: kubelet.config.k8s.io/v1beta1\n\
             kind: KubeletConfiguration\n\
             cgroupDriver: systemd\n",
            version = self.kubernetes_version,
            repo = self.image_repository,
        )
    }

    fn cni_config() -> String {
        CNI_CONFIG.to_owned()
    }

    fn step(name: &str, secs: u64, body: &str) -> GuestCommand {
        let script = format!(
            "set -eu\nexec </dev/null\nexport KUBECONFIG=/etc/kubernetes/admin.conf\n{body}\n"
        );
        GuestCommand {
            name: name.to_owned(),
            command: format!(
                "sudo -n /bin/sh -c {} {}",
                quote(&script),
                quote(&format!("nodeimg-{name}"))
            ),
            timeout: Duration::from_secs(secs),
        }
    }

    /// The test's steps, in order.
    pub fn commands(&self) -> Vec<GuestCommand> {
        let prepare = format!(
            "ip -4 route show default | grep -q . || ip route add default via {GATEWAY}\n\
             grep -q \" $(hostname)\\$\" /etc/hosts || echo \"{GUEST_IP} $(hostname)\" >> /etc/hosts\n\
             mkdir -p /etc/cni/net.d\n\
             printf '%s' {cni} > /etc/cni/net.d/10-nodeimg-test.conflist\n\
             printf '%s' {config} > /root/kubeadm-config.yaml\n\
             echo 'CoreDNS is skipped: the payload carries no CoreDNS image'",
            cni = quote(&Self::cni_config()),
            config = quote(&self.config()),
        );
        let init = "kubeadm init --config /root/kubeadm-config.yaml \
                    --ignore-preflight-errors=NumCPU,Mem,ImagePull \
                    --skip-phases=addon/coredns";
        let healthz = "for i in $(seq 1 120); do\n\
             \tif [ \"$(kubectl get --raw /healthz 2>/dev/null)\" = ok ]; then echo 'healthz: ok'; exit 0; fi\n\
             \tsleep 1\n\
             done\n\
             kubectl get --raw /healthz\n\
             exit 1";
        let node_ready = "kubectl wait --for=condition=Ready node --all --timeout=420s\n\
             kubectl get nodes -o wide";
        let pod = format!(
            "kubectl taint nodes --all node-role.kubernetes.io/master- >/dev/null 2>&1 || true\n\
             kubectl taint nodes --all node-role.kubernetes.io/control-plane- >/dev/null 2>&1 || true\n\
             for i in $(seq 1 120); do kubectl get serviceaccount default >/dev/null 2>&1 && break; sleep 1; done\n\
             kubectl run {POD_NAME} --image={image} --image-pull-policy=Never --restart=Never\n\
             kubectl wait --for=condition=Ready pod/{POD_NAME} --timeout=300s\n\
             kubectl get pod {POD_NAME} -o wide",
            image = quote(&self.pod_image),
        );
        vec![
            Self::step("kubeadm-prepare", 60, &prepare),
            Self::step("kubeadm-init", 900, init),
            Self::step("api-healthz", 180, healthz),
            Self::step("node-ready", 480, node_ready),
            Self::step("pod-runs", 420, &pod),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test(version: &str) -> KubeadmTest {
        KubeadmTest {
            kubernetes_version: version.into(),
            image_repository: "k8s.gcr.io".into(),
            pod_image: "k8s.gcr.io/pause:3.2".into(),
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
        let c = test("v1.30.2").config();
        assert!(c.contains("kubeadm.k8s.io/v1beta3"), "{c}");
        assert!(c.contains("unix:///run/containerd/containerd.sock"));
        let c = test("v1.31.0").config();
        assert!(c.contains("kubeadm.k8s.io/v1beta4"), "{c}");
        assert!(c.contains("- name: node-ip"), "{c}");
    }

    #[test]
    fn steps_and_the_pod_pull_policy() {
        let cmds = test("v1.20.2").commands();
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
        assert!(cmds[1].command.contains("--skip-phases=addon/coredns"));
        assert!(cmds[4].command.contains("--image-pull-policy=Never"));
        assert_eq!(
            image_repository(&["registry.k8s.io/kube-apiserver:v1.30.2".into()]),
            Some("registry.k8s.io".into())
        );
    }

    /// The CNI config is JSON (kubelet ignores a broken one silently).
    #[test]
    fn cni_config_is_json() {
        let v: serde_json::Value = serde_json::from_str(&KubeadmTest::cni_config()).unwrap();
        assert_eq!(v["plugins"][0]["type"], "bridge");
    }
}
