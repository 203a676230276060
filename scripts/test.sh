#!/usr/bin/env bash
# Installs what is missing (lavapipe WebGPU driver, the PyTorch reference's python3-torch and numpy, npm packages)
# and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"

if [ "$(id -u)" = 0 ]; then bash scripts/setup-webgpu.sh --with-python; else sudo -n bash scripts/setup-webgpu.sh --with-python 2>/dev/null || bash scripts/setup-webgpu.sh --with-python; fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
node scripts/embed-shaders.mjs --check
node scripts/build-wasm.mjs --check
node scripts/render-tables.mjs --check
npx biome check .  # formatter + linter (biome.jsonc); npx biome check --write . applies the safe fixes
npm run -s lint:layers
npx tsc --noEmit -p tsconfig.test.json
npx vitest run "$@"

# The engine runs llvmpipe at 512 bits on AVX-512 CPUs (16-lane subgroups) and at Mesa's 256 elsewhere: where
# the CPU has both, the kernel and model parity tests run once more at the width the first run did not use.
if grep -qw avx512f /proc/cpuinfo 2>/dev/null; then
  other=256
  [ "${LP_NATIVE_VECTOR_WIDTH:-512}" = 512 ] || other=512
  echo "== kernel and model parity again at LP_NATIVE_VECTOR_WIDTH=$other =="
  LP_NATIVE_VECTOR_WIDTH=$other npx vitest run test/kernels.test.ts test/model.test.ts test/gpu-subgroups.test.ts
fi
# 128 bits (ARM's NEON, CPUs without AVX): 4-lane subgroups, where the 4-lane matmul, attention and layernorm run.
echo "== kernel and model parity again at LP_NATIVE_VECTOR_WIDTH=128 =="
LP_NATIVE_VECTOR_WIDTH=128 npx vitest run test/kernels.test.ts test/model.test.ts test/gpu-subgroups.test.ts test/tuning.test.ts \
  test/kernel-families.test.ts

# The package as users install it: npm pack → npm install in an empty folder → library, CLI, TypeScript consumer.
bash scripts/check-package.sh

# The library on Deno (built-in WebGPU: wgpu), as npm users get it: the compiled dist/ against open_clip's numbers,
# then the one-sentence errors for refused permissions. --allow-env because jimp's `debug` dependency lists the
# environment when it loads.
npm run -s build
export DENO_NO_UPDATE_CHECK=1
node_modules/.bin/deno run --no-prompt --allow-read=./dist,./node_modules,./test --allow-env test/deno/permissions.js
node_modules/.bin/deno run --no-prompt --allow-read=. --allow-env test/deno/parity.js
node_modules/.bin/deno run --no-prompt --allow-read=. test/deno/train.js
# From a user's own folder outside the checkout (the README's recipe: --node-modules-dir=manual).
outside=$(mktemp -d /tmp/whylesion-deno-outside.XXXXXX)
cp test/deno/outside.js "$outside/"
(cd "$outside" && "$OLDPWD/node_modules/.bin/deno" run --no-prompt --node-modules-dir=manual --allow-read --allow-env outside.js "$OLDPWD")
rm -rf "$outside"
