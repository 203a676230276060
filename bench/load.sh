#!/usr/bin/env bash
# Peak RSS and throughput of loading the synthetic ViT-L/14 fp32 checkpoint, beside `cat` of the same file.
# Usage: bash bench/load.sh [f32|f16]   (after npm run build)
set -euo pipefail
cd "$(dirname "$0")/.."
dtype="${1:-f32}"
node dist/bench/load.js --prepare
file=weights/synth-ViT-L-14-f32-seed0/open_clip_model.safetensors
echo "file: $file ($(stat -c %s "$file") bytes)"
sync; /usr/bin/time -f 'cat: %e s, peak RSS %M KB' cat "$file" > /dev/null
/usr/bin/time -f 'whylesion load: %e s wall, peak RSS %M KB' node dist/bench/load.js --dtype "$dtype"
