#!/usr/bin/env bash
# The package as a user gets it: `npm pack`, then `npm install whylesion-*.tgz` in an empty folder, where the
# library imports and embeds, the CLI runs (without Dawn's limit warnings on its stderr), and a TypeScript
# consumer compiles with skipLibCheck: false, both with its own @types/node@20 and with none (the WebGPU and
# Node types reach consumers through the package's dependencies; without whylesion's own @types/node
# dependency, npm hoisted image-q's @types/node@16.9.1, which does not compile under today's TypeScript).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/whylesion-package.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$repo"
tarball=$(npm pack --silent --pack-destination "$work" 2>/dev/null | tail -n 1)
cd "$work"
npm init -y >/dev/null && npm pkg set type=module
npm install --prefer-offline --no-audit --no-fund --loglevel=error "./$tarball" "@types/node@^20" >/dev/null
cp -r "$repo/test/fixtures/openclip-tiny/model" tiny-model
cp "$repo/examples/lesion.png" lesion.png

cat > consumer.ts <<'TS'
import { loadModel, type LoadOptions, type WhyLesionModel } from 'whylesion';

const options: LoadOptions = { dtype: 'f32', kernels: 'auto' };
const model: WhyLesionModel = await loadModel('tiny-model', options);
const device: GPUDevice | undefined = undefined; // WebGPU's types come with the package
const [image] = await model.encodeImage('lesion.png', { normalize: true });
const texts = await model.encodeText(['dark brown', 'bleeding'], { normalize: true });
const [probs] = model.classify([image], texts);
console.log(JSON.stringify({ dim: image.length, probs, device: device ?? null }));
model.dispose();
TS
cat > tsconfig.json <<'JSON'
{ "compilerOptions": { "target": "ES2022", "module": "NodeNext", "moduleResolution": "NodeNext", "strict": true,
  "skipLibCheck": false, "outDir": "out" }, "files": ["consumer.ts"] }
JSON
"$repo/node_modules/.bin/tsc" -p tsconfig.json
result=$(node out/consumer.js 2>consumer.err)
node -e '
  const r = JSON.parse(process.argv[1]);
  const sum = r.probs.reduce((a, b) => a + b, 0);
  if (r.dim !== 32 || r.probs.length !== 2 || Math.abs(sum - 1) > 1e-6) { console.error("check-package: unexpected library result", r); process.exit(1); }
' "$result"

version=$(npx --no-install whylesion --version)
[ "$version" = "$(node -p "require('$repo/package.json').version")" ] || { echo "check-package: --version printed '$version'" >&2; exit 1; }
npx --no-install whylesion classify lesion.png --labels "dark brown,bleeding" --model tiny-model --json >classify.json 2>classify.err
node -e 'const r = JSON.parse(require("fs").readFileSync("classify.json", "utf8")); if (!Array.isArray(r) && typeof r !== "object") process.exit(1);'
if grep -q 'artificially reduced' classify.err; then echo "check-package: Dawn's warnings reached the user's stderr:" >&2; cat classify.err >&2; exit 1; fi
[ ! -s classify.err ] || { echo "check-package: classify wrote to stderr:" >&2; cat classify.err >&2; exit 1; }
# The PyTorch reference ships too: parity from the installed package (default probe image, default prompts).
npx --no-install whylesion parity --model tiny-model --batch 1 --json >parity.json 2>parity.err || { echo "check-package: parity failed:" >&2; cat parity.err >&2; exit 1; }
node -e 'const r = JSON.parse(require("fs").readFileSync("parity.json", "utf8")); if (!(r.pass && r.cosine.image >= 0.99999 && r.cosine.text >= 0.99999)) { console.error("check-package: parity result", r.cosine, r.first_failing); process.exit(1); }'
# A consumer with no @types/node of its own: the one whylesion brings must be the one TypeScript sees.
mkdir bare && cd bare
npm init -y >/dev/null && npm pkg set type=module
npm install --prefer-offline --no-audit --no-fund --loglevel=error "../$tarball" >/dev/null
cp ../consumer.ts ../tsconfig.json .
"$repo/node_modules/.bin/tsc" -p tsconfig.json || { echo "check-package: a consumer without its own @types/node does not compile with skipLibCheck: false" >&2; exit 1; }
cd ..
echo "check-package: $tarball installs; library, CLI (--version $version, classify, parity) and skipLibCheck:false consumers (with @types/node@20, and with none) pass"
