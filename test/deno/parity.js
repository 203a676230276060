/**
 * Runs the library as Deno users get it (the compiled dist/, on Deno's built-in WebGPU, wgpu) against
 * what real open_clip computed for the tiny reference checkpoint: tokenizer ids, image preprocessing
 * and L2-normalized image and text embeddings. Prints `N passed, M failed` and exits non-zero on a failure.
 *
 *   npm run -s build && deno run --allow-read --allow-env test/deno/parity.js
 *
 * Plain JavaScript over dist/ (not TypeScript over src/) so it checks the published files and needs no build
 * for the type-check. Uses node: builtins only, so it also runs on Node to tell a Deno problem from a
 * library one.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadModel, preprocessImage, readNpy } from '../../dist/src/index.js';
import { check, report } from './report.js';

const TINY = new URL('../fixtures/openclip-tiny/', import.meta.url);
const EMBEDDING_ABS_TOLERANCE = 1e-5;
const EMBEDDING_MIN_COSINE = 0.99999;
const PIXEL_ABS_TOLERANCE = 1e-6;

const npy = (name) => readNpy(readFileSync(new URL(`expected/${name}`, TINY)), name);
const pixelsFile = (image) => `pixels224_${image.replace(/\.[^.]+$/, '')}.npy`;

function maxAbsDiff(a, b) {
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(a[i] - b[i]));
  return diff;
}

function cosine(a, b) {
  let ab = 0,
    aa = 0,
    bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / Math.sqrt(aa * bb);
}

function checkEmbeddings(what, rows, expected) {
  const dim = expected.shape[1];
  check(
    `${what} embedding count`,
    rows.length === expected.shape[0],
    `${rows.length} rows, expected ${expected.shape[0]}`,
  );
  rows.forEach((row, i) => {
    const want = expected.data.subarray(i * dim, (i + 1) * dim);
    const diff = row.length === dim ? maxAbsDiff(row, want) : Infinity;
    const cos = row.length === dim ? cosine(row, want) : 0;
    check(
      `${what} embedding ${i}`,
      diff <= EMBEDDING_ABS_TOLERANCE && cos >= EMBEDDING_MIN_COSINE,
      `max abs diff ${diff.toExponential(2)}, cosine ${cos.toFixed(8)}`,
    );
  });
}

async function main() {
  const cases = JSON.parse(readFileSync(new URL('cases.json', TINY), 'utf8'));
  const started = performance.now();
  const model = await loadModel(fileURLToPath(new URL('model', TINY)), {});
  try {
    const a = model.adapter;
    const gpu = model.model.gpu;
    console.log(
      `# adapter: ${a.description || a.device} (vendor ${a.vendor}); device features: ${[...gpu.device.features].join(', ')}; ` +
        `subgroup kernels: ${gpu.hasSubgroups ? 'yes' : 'no'}`,
    );

    const tokens = await model.tokenize(cases.texts);
    cases.tokens.forEach((want, i) => {
      const got = Array.from(tokens.subarray(i * 77, (i + 1) * 77));
      const firstDiff = got.findIndex((id, j) => id !== want[j]);
      check(
        `tokens of ${JSON.stringify(cases.texts[i])}`,
        firstDiff < 0,
        firstDiff < 0 ? '77 ids equal' : `id ${firstDiff} is ${got[firstDiff]}, expected ${want[firstDiff]}`,
      );
    });

    const { size, mean, std } = model.preprocessing;
    const preprocessOptions = { size, mean, std };
    for (const image of cases.images.filter((name) => name === 'lesion_rgb.png' || name.endsWith('.jpg'))) {
      const got = await preprocessImage(readFileSync(new URL(`images/${image}`, TINY)), preprocessOptions, image);
      const want = npy(pixelsFile(image)).data;
      const diff = got.length === want.length ? maxAbsDiff(got, want) : Infinity;
      check(`preprocess ${image}`, diff <= PIXEL_ABS_TOLERANCE, `max abs diff ${diff.toExponential(2)}`);
    }

    const pixelRows = cases.images.map((image) => npy(pixelsFile(image)).data);
    const pixels = new Float32Array(pixelRows.reduce((n, p) => n + p.length, 0));
    pixelRows.forEach((p, i) => {
      pixels.set(p, i * p.length);
    });
    checkEmbeddings(
      'image',
      await model.encodePixels(pixels, pixelRows.length, { normalize: true }),
      npy('image_embeddings.npy'),
    );

    const ids = Int32Array.from(cases.tokens.flat());
    checkEmbeddings(
      'text',
      await model.encodeTokens(ids, cases.tokens.length, { normalize: true }),
      npy('text_embeddings.npy'),
    );
  } finally {
    model.dispose();
  }
  console.log(`# ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

await report(main);
