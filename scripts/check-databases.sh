#!/usr/bin/env bash
# Checks that DuckDB and LanceDB read whylesion's Parquet output as is: embeds a small folder with the tiny test
# model to Parquet, runs examples/duckdb/similar.mjs and examples/lancedb/similar.mjs on it, and compares their
# ranking and cosines with `whylesion search` on the same file. DuckDB and LanceDB are not dependencies of the
# package: they are installed into a temporary folder, at these versions (the ones that install here).
#   bash scripts/check-databases.sh
set -euo pipefail
DUCKDB=@duckdb/node-api@1.5.6-r.1
LANCEDB=@lancedb/lancedb@0.31.0
ARROW=apache-arrow@18.1.0   # the newest that @lancedb/lancedb 0.31.0 accepts
PARQUET=parquet-wasm@0.8.0

repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d -t whylesion-check-databases-XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$repo"
echo "== installing $DUCKDB $LANCEDB $ARROW $PARQUET into $work"
(cd "$work" && echo '{"private": true, "type": "module"}' > package.json && npm install --no-audit --no-fund --loglevel=error --save-exact "$DUCKDB" "$LANCEDB" "$ARROW" "$PARQUET" >/dev/null)
echo "== building whylesion"
npx tsc -p tsconfig.json
whylesion() { node "$repo/dist/src/cli/main.js" "$@"; }
model="$repo/test/fixtures/openclip-tiny/model"
# Two copies of the fixture images: exact duplicates make ties, and every engine must agree on them too.
for set in a b; do mkdir -p "$work/images/$set" && cp "$repo"/test/fixtures/openclip-tiny/images/* "$work/images/$set/"; done
whylesion embed "$work/images" --out "$work/lesions.parquet" --model "$model" --quiet
query="$work/images/a/lesion_rgb.png"
k=8   # every row, so no tie is cut at the last rank
whylesion search "$work/lesions.parquet" --image "$query" --top "$k" --json --model "$model" > "$work/whylesion.json"
# The examples resolve their packages from the folder they sit in.
cp examples/duckdb/similar.mjs "$work/duckdb-similar.mjs"
cp examples/lancedb/similar.mjs "$work/lancedb-similar.mjs"
echo "== DuckDB: examples/duckdb/similar.mjs"
node "$work/duckdb-similar.mjs" "$work/lesions.parquet" "$query" "$k" | tee "$work/duckdb.jsonl"
echo "== LanceDB: examples/lancedb/similar.mjs"
node "$work/lancedb-similar.mjs" "$work/lesions.parquet" "$query" "$k" "$work/lance" 2>/dev/null | tee "$work/lancedb.jsonl"
echo "== comparing with whylesion search"
node - "$work" <<'JS'
const { readFileSync } = require('node:fs');
const work = process.argv[2];
const ours = JSON.parse(readFileSync(`${work}/whylesion.json`, 'utf8')).hits.map((h) => ({ file: h.file, cosine: h.score }));
const lines = (name) => readFileSync(`${work}/${name}`, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
// Equal cosines may come in any order from LanceDB: compare in (cosine to 1e-5, file) order.
const canonical = (hits) => [...hits].sort((a, b) => (Math.abs(a.cosine - b.cosine) > 1e-5 ? b.cosine - a.cosine : a.file.localeCompare(b.file)));
let failed = false;
for (const [engine, hits] of [['DuckDB', lines('duckdb.jsonl')], ['LanceDB', lines('lancedb.jsonl')]]) {
  const a = canonical(ours), b = canonical(hits);
  const sameFiles = a.length === b.length && a.every((h, i) => h.file === b[i].file);
  const worst = Math.max(...a.map((h) => Math.abs(h.cosine - (hits.find((x) => x.file === h.file)?.cosine ?? Infinity))));
  const ok = sameFiles && worst < 1e-5;
  failed ||= !ok;
  console.log(`${engine}: ${ok ? 'OK' : 'MISMATCH'}: ${b.length} rows, same ranking as whylesion search: ${sameFiles}, largest cosine difference ${worst.toExponential(2)}`);
}
process.exit(failed ? 1 : 0);
JS
echo "check-databases: DuckDB and LanceDB read the Parquet file as is and agree with whylesion search."
