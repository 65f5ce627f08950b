#!/usr/bin/env bash
# Builds the tenant-runtime binary statically and the tenant image FROM scratch, locally
# (no registry is reachable), and prints the image's tag.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)"
tag="${WEBSPLAT_TENANT_IMAGE:-websplat/tenant-runtime:$version}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
triple="$(rustc -vV | sed -n 's/^host: //p')"
RUSTFLAGS='-C target-feature=+crt-static' cargo build --release -p tenant-runtime --target "$triple" >&2
context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
cp "$target_dir/$triple/release/tenant-runtime" "$context/tenant-runtime"
mkdir "$context/data"
docker build -q -t "$tag" -f docker/tenant-runtime.Dockerfile "$context" >&2
echo "$tag"
