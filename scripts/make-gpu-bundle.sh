#!/usr/bin/env bash
# bash scripts/make-gpu-bundle.sh [OUT.tar.xz]   (default: whylesion-gpu-check.tar.xz)
# Packs what bench/gpu-check.sh needs on a linux-x64 machine without npm or internet: this Node binary,
# the compiled dist/, the runtime npm packages (Dawn's linux-x64 binary only), the assets, the PyTorch
# reference scripts and the Vulkan loader. The target needs glibc, a Vulkan driver for its GPU and, for
# parity and PyTorch timings, a Python with torch and numpy. How to run it: bench/README.md, "GPU check".
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-whylesion-gpu-check.tar.xz}")
limit_mb=60

npm run -s build
stage=$(mktemp -d /tmp/whylesion-bundle.XXXXXX)
trap 'rm -rf "$stage"' EXIT
root="$stage/whylesion-gpu-check"
mkdir -p "$root/bin" "$root/lib" "$root/bench" "$root/node_modules"

cp "$(node -p process.execPath)" "$root/bin/node"
cp package.json README.md "$root/"
cp -r assets "$root/"
# Compiled JavaScript only (no source maps or declarations).
(cd dist && find . -name '*.js' -print0 | tar --null -T - -cf -) | (mkdir -p "$root/dist" && tar -xf - -C "$root/dist")
cp bench/gpu-check.sh bench/README.md "$root/bench/"
mkdir -p "$root/reference"
cp -r reference/*.py reference/configs "$root/reference/"

# The production dependency tree as npm resolved it, then Dawn without its other platforms' binaries.
npm ls --omit=dev --all --parseable 2>/dev/null | tail -n +2 | while read -r dir; do
  rel=${dir#"$PWD/"}
  mkdir -p "$root/$(dirname "$rel")"
  cp -r "$dir" "$root/$rel"
done
find "$root/node_modules/webgpu/dist" -mindepth 1 -maxdepth 1 ! -name linux-x64 -exec rm -rf {} +

# Dawn loads libvulkan.so.1; GPU containers often have the driver's ICD but no loader.
loader=$(ldconfig -p | awk '/libvulkan\.so\.1 .*x86-64/ {found = $NF} END {print found}')
if [ -n "$loader" ]; then cp -L "$loader" "$root/lib/libvulkan.so.1"; else echo "make-gpu-bundle: no libvulkan.so.1 here; the bundle will rely on the target's" >&2; fi

cat > "$root/RUN.txt" <<'EOF'
whylesion GPU check (no npm or internet needed)
  tar -xJf whylesion-gpu-check.tar.xz && cd whylesion-gpu-check
  bash bench/gpu-check.sh OUT_DIR            # writes OUT_DIR/gpu-check.json (about 5-8 min on an H100)
Needs: linux-x64 with glibc, a Vulkan driver for the GPU (NVIDIA: the driver's Vulkan ICD, i.e. a container
with NVIDIA_DRIVER_CAPABILITIES including graphics), and for parity and PyTorch timings a python3 with torch
and numpy (or set WHYLESION_TORCH_PYTHON). The synthetic ViT-L/14 checkpoint (1.7 GB) is written to weights/.
EOF

tmp="$out.tmp"
tar -C "$stage" -cf - whylesion-gpu-check | xz -T0 -6 > "$tmp"
size_mb=$(( $(stat -c %s "$tmp") / 1048576 ))
if [ "$size_mb" -gt "$limit_mb" ]; then rm -f "$tmp"; echo "make-gpu-bundle: the bundle is $size_mb MB, over $limit_mb MB" >&2; exit 1; fi
mv "$tmp" "$out"
echo "wrote $out ($size_mb MB)"
