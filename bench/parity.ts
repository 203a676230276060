// npm run bench:parity -- --config ViT-L-14 [--batch 8] [--dtype f32|f16] [--activations f32|f16] [--seed 0]
// Synthesizes a full-size checkpoint, runs the PyTorch reference and the engine on the same inputs in one run,
// and prints per-block errors (both towers), final max abs diff and cosine, and both wall times.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Gpu } from '../src/runtime/gpu.js';
import { readNpy, writeNpy } from '../src/io/npy.js';
import { ClipModel } from '../src/model/clip.js';
import { compareTowers, rowCosines } from '../src/parity/compare.js';
import { loadTokenizer } from '../src/tokenizer/load.js';
import { openCheckpoint } from '../src/io/checkpoint.js';
import { flag, machine, PROMPTS, REPO, runReference, syntheticCheckpoint, writeResult } from './common.js';
import { KernelPolicy } from '../src/kernels/policy.js';

const TINY = join(REPO, 'test', 'fixtures', 'openclip-tiny');
const IMAGES = ['lesion_rgb', 'lesion_q90', 'lesion_gray', 'lesion_portrait'];

const argv = process.argv.slice(2);
const config = flag(argv, 'config', 'ViT-L-14');
const batch = Number(flag(argv, 'batch', '1'));
const dtype = flag(argv, 'dtype', 'f32') as 'f32' | 'f16';
// Default: the engine's (f16 block activations with f16 weights where the kernels take them).
const asked = argv.includes('--activations') ? (flag(argv, 'activations', 'f32') as 'f32' | 'f16') : undefined;
const seed = Number(flag(argv, 'seed', '0'));

const dir = await syntheticCheckpoint(config, seed, 'f32');
const work = mkdtempSync(join(tmpdir(), 'whylesion-parity-'));
const pixelsOne = IMAGES.map(
  (n) => readNpy(readFileSync(join(TINY, `expected/pixels224_${n}.npy`))).data as Float32Array,
);
const S = 224,
  imageSize = 3 * S * S;
const pixels = new Float32Array(batch * imageSize);
for (let b = 0; b < batch; b++) pixels.set(pixelsOne[b % pixelsOne.length]!, b * imageSize);
writeFileSync(join(work, 'pixels.npy'), writeNpy([batch, 3, S, S], pixels));
const tokenizer = await loadTokenizer();
const ids = tokenizer.tokenize(PROMPTS, 77);
writeFileSync(
  join(work, 'tokens.json'),
  JSON.stringify({
    tokens: Array.from({ length: PROMPTS.length }, (_, i) => Array.from(ids.subarray(i * 77, (i + 1) * 77))),
  }),
);

console.error('running the PyTorch reference ...');
const refOut = join(work, 'ref');
const refTiming = runReference([
  '--model',
  dir,
  '--pixels',
  join(work, 'pixels.npy'),
  '--tokens',
  join(work, 'tokens.json'),
  '--out',
  refOut,
  '--dump-blocks',
]);

console.error('loading the engine ...');
const gpu = await Gpu.create();
const policy = KernelPolicy.create(gpu);
const checkpoint = await openCheckpoint(dir);
const model = await ClipModel.load(policy, checkpoint.config, checkpoint.source, { dtype, activations: asked });
const halves = model.activations.vision === 'f16' || model.activations.text === 'f16';
await checkpoint.source.close();

const time = async <T>(f: () => Promise<T>): Promise<[T, number]> => {
  const t0 = performance.now();
  const r = await f();
  return [r, (performance.now() - t0) / 1000];
};
console.error('engine: image tower ...');
const [, imageCold] = await time(() => model.encodePixels(pixels, batch));
const [imageRaw, imageWarm] = await time(() => model.encodePixels(pixels, batch));
console.error('engine: text tower ...');
const [, textCold] = await time(() => model.encodeTokens(ids, PROMPTS.length));
const [textRaw, textWarm] = await time(() => model.encodeTokens(ids, PROMPTS.length));
const visionDump = await model.dumpPixels(pixels, batch);
const textDump = await model.dumpTokens(ids, PROMPTS.length);

const cfg = checkpoint.config;
const reference = (name: string): { shape: number[]; data: Float32Array } => {
  const array = readNpy(readFileSync(join(refOut, `${name}.npy`)));
  return { shape: array.shape, data: array.data as Float32Array };
};
const rows = compareTowers(
  cfg,
  { vision: visionDump, text: textDump, imageEmbeddings: imageRaw, textEmbeddings: textRaw },
  reference,
  { images: batch, texts: PROMPTS.length },
  Infinity,
).map(({ comparison: c }) => ({
  step: `${c.tower === 'image' ? 'vision' : 'text'}.${c.step}${c.rows === 'all' ? '' : ` (${c.rows})`}`,
  maxAbs: c.maxAbs,
  relative: c.relative,
}));

function finalStats(raw: Float32Array, want: Float32Array, E: number): { maxAbsNormalized: number; minCosine: number } {
  let maxAbsNormalized = 0;
  for (let r = 0; r < raw.length / E; r++) {
    const a = raw.subarray(r * E, (r + 1) * E),
      b = want.subarray(r * E, (r + 1) * E);
    const na = Math.hypot(...a),
      nb = Math.hypot(...b);
    for (let i = 0; i < E; i++) maxAbsNormalized = Math.max(maxAbsNormalized, Math.abs(a[i]! / na - b[i]! / nb));
  }
  return { maxAbsNormalized, minCosine: Math.min(...rowCosines(raw, want, E)) };
}
const E = cfg.embedDim;
const image = finalStats(imageRaw, reference('image_embeddings_raw').data, E);
const text = finalStats(textRaw, reference('text_embeddings_raw').data, E);
const result = {
  config,
  batch,
  dtype,
  activations: model.activations,
  seed,
  prompts: PROMPTS,
  machine: machine(gpu.adapterInfo),
  date: new Date().toISOString(),
  image: {
    ...image,
    engineSecondsWarm: imageWarm,
    engineSecondsCold: imageCold,
    torchSeconds: refTiming.image_seconds,
    ratio: imageWarm / refTiming.image_seconds!,
  },
  text: {
    ...text,
    engineSecondsWarm: textWarm,
    engineSecondsCold: textCold,
    torchSeconds: refTiming.text_seconds,
    ratio: textWarm / refTiming.text_seconds!,
  },
  torchThreads: refTiming.threads,
  steps: rows,
};
model.dispose();
gpu.destroy();
rmSync(work, { recursive: true, force: true });

console.log(
  `parity: ${config}, batch ${batch}, ${dtype} weights${halves ? ', f16 block activations' : ''} on the GPU; ${result.machine}`,
);
console.log('| step | max abs diff | max abs / max |ref| |');
console.log('| --- | --- | --- |');
for (const r of rows) console.log(`| ${r.step} | ${r.maxAbs.toExponential(2)} | ${r.relative.toExponential(2)} |`);
console.log('');
console.log(
  '| tower | max abs diff (normalized) | min cosine | engine warm s | engine cold s | PyTorch s | engine / PyTorch |',
);
console.log('| --- | --- | --- | --- | --- | --- | --- |');
for (const [name, t] of [
  ['image', result.image],
  ['text', result.text],
] as const) {
  console.log(
    `| ${name} (${name === 'image' ? `batch ${batch}` : `${PROMPTS.length} prompts`}) | ${t.maxAbsNormalized.toExponential(2)} | ${t.minCosine.toFixed(7)} | ${t.engineSecondsWarm.toFixed(2)} | ${t.engineSecondsCold.toFixed(2)} | ${t.torchSeconds?.toFixed(2)} | ${t.ratio.toFixed(2)} |`,
  );
}
console.log(
  `\nwrote ${writeResult(`parity-${config}-b${batch}-${dtype}${dtype === 'f16' && !halves ? '-f32-activations' : ''}`, result)}`,
);
