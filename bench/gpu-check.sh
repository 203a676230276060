#!/usr/bin/env bash
# bash bench/gpu-check.sh OUT_DIR [--batches 1,8] [--runs 3] [--tune-runs 3] [--torch-runs 3] [--config ViT-L-14]
# The prepared check for a machine with a WebGPU adapter and no internet (bench/README.md, "GPU check"):
# synthesizes ViT-L/14, checks the engine against the plain-PyTorch reference (CUDA when torch sees a GPU),
# times both towers at batch 1 and 8 with f32 and f16 weights, runs the kernel tuner, and writes
# OUT_DIR/gpu-check.json. Runs from a checkout (after npm install) or from the bundle that
# scripts/make-gpu-bundle.sh makes (its own Node binary, dist/ and runtime packages).
set -euo pipefail
if [ $# -lt 1 ] || [[ "$1" == -* ]]; then
  echo "usage: bash bench/gpu-check.sh OUT_DIR [--batches 1,8] [--runs N] [--tune-runs N] [--torch-runs N] [--config NAME]" >&2
  exit 2
fi
out=$(mkdir -p "$1" && cd "$1" && pwd)
shift
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"

# The bundle's Node where there is one, else the machine's; its Vulkan loader only where the machine has none.
node=node
[ -x bin/node ] && node=bin/node
if [ -f lib/libvulkan.so.1 ] && ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1 '; then
  export LD_LIBRARY_PATH="$PWD/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
if [ ! -f dist/bench/gpu-check.js ]; then
  [ -d node_modules/typescript ] || { echo "gpu-check: dist/ is missing and cannot be built here (run npm install, or use the bundle)" >&2; exit 1; }
  npx tsc -p tsconfig.json
fi

# A Python that has torch: $WHYLESION_TORCH_PYTHON, else python3 on PATH, else Debian's.
if [ -z "${WHYLESION_TORCH_PYTHON:-}" ]; then
  for candidate in python3 /usr/bin/python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import torch, numpy' 2>/dev/null; then
      export WHYLESION_TORCH_PYTHON=$(command -v "$candidate")
      break
    fi
  done
fi
[ -n "${WHYLESION_TORCH_PYTHON:-}" ] || echo "gpu-check: no Python with torch and numpy found; the JSON will say parity and PyTorch timings were not run" >&2

"$node" dist/bench/gpu-check.js --out "$out" "$@"
