#!/usr/bin/env bash
# Peak RSS and throughput of loading the synthetic ViT-L/14 fp32 checkpoint, beside `cat` of the same file;
# writes bench/results/load-<dtype>.json.
# Usage: bash bench/load.sh [f32|f16]   (after npm run build)
set -euo pipefail
cd "$(dirname "$0")/.."
dtype="${1:-f32}"
node dist/bench/load.js --prepare
file=weights/synth-ViT-L-14-f32-seed0/open_clip_model.safetensors
echo "file: $file ($(stat -c %s "$file") bytes)"
sync
cat_time=$( { /usr/bin/time -f '%e %M' cat "$file" > /dev/null; } 2>&1 | tail -n 1)
load_out=$( { /usr/bin/time -f 'TIME %e %M' node dist/bench/load.js --dtype "$dtype" | tail -n 1; } 2>&1 | grep -v 'artificially reduced')
echo "$load_out"
node -e '
  const [catTime, out, path] = process.argv.slice(1);
  const [catSeconds, catKB] = catTime.split(" ").map(Number);
  const lines = out.trim().split("\n");
  const result = JSON.parse(lines.find((l) => l.startsWith("{")));
  const [, , peakKB] = lines.find((l) => l.startsWith("TIME ")).split(" ").map(Number);
  const record = { ...result, peakRssMB: peakKB / 1024 * 1.048576, cat: { seconds: catSeconds, peakRssMB: catKB / 1024 * 1.048576 } };
  require("fs").writeFileSync(path, JSON.stringify(record, null, 2) + "\n");
  console.log(`wrote ${path}`);
' "$cat_time" "$load_out" "bench/results/load-$dtype.json"
