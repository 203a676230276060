#!/usr/bin/env bash
# Installs what is missing (lavapipe WebGPU driver, npm packages) and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"

if [ "$(id -u)" = 0 ]; then bash scripts/setup-webgpu.sh; else sudo -n bash scripts/setup-webgpu.sh 2>/dev/null || bash scripts/setup-webgpu.sh; fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
node scripts/embed-shaders.mjs --check
npx tsc --noEmit -p tsconfig.test.json
npx vitest run "$@"
