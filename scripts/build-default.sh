#!/usr/bin/env bash
# The default image, end to end, offline: install what is missing, prepare the fixture inputs
# from Debian's packages (the Debian 12 cloud image, Kubernetes v1.20.2 built from Debian's
# source package, the control-plane images, Debian's containerd/runc/CNI plugins — each cached
# under ~/.cache/nodeimg, the first time takes about 20 minutes), write the fixture spec and its
# lock, run `nodeimg build` on it, and print where the artifacts are.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
install_deps
cargo build --release -p fixtures --bin make-disk -p builder --bin nodeimg
spec=$(target/release/make-disk fixture-spec target/fixture)
target/release/nodeimg build "$spec" --out target/out
echo "artifacts: $(pwd)/target/out/$(sed -n 's/^name = "\(.*\)"/\1/p' "$spec" | head -n 1)"
