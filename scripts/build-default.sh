#!/usr/bin/env bash
# The default image through the real input path, end to end: install what is missing, write
# the upstream-shaped local mirror from real bits (the Debian 12 cloud image built from Debian's
# packages, Kubernetes v1.20.2 built from Debian's source package, containerd, runc and the CNI
# plugins in their upstream release layouts made from Debian's, the control-plane images in a
# local registry; cached under ~/.cache/nodeimg, the first time takes about 25 minutes), serve
# it on 127.0.0.1, run `nodeimg fetch --mirror` (upstream files and images from the mirror, the
# node's Debian packages resolved and verified from Debian's archive) and `nodeimg build`, and
# print where the artifacts are.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
install_deps
cargo build --release -p fixtures --bin make-disk -p builder --bin nodeimg
mirror="${NODEIMG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nodeimg}/upstream-mirror"
target/release/make-disk upstream-mirror "$mirror"
mkdir -p target/upstream
url_file=target/upstream/mirror.url
rm -f "$url_file"
target/release/make-disk serve-mirror "$mirror" > "$url_file" &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  [ -s "$url_file" ] && break
  kill -0 "$server" 2>/dev/null || { echo "make-disk serve-mirror exited" >&2; exit 1; }
  sleep 0.1
done
url=$(head -n 1 "$url_file")
spec=target/upstream/upstream.toml
cp "$mirror/upstream.toml" "$spec"
target/release/nodeimg fetch "$spec" --mirror "$url"
target/release/nodeimg build "$spec" --out target/out
echo "artifacts: $(pwd)/target/out/$(sed -n 's/^name = "\(.*\)"/\1/p' "$spec" | head -n 1)"
