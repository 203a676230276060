import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { expect } from 'vitest';
import { loadModel, type LoadOptions, type WhyLesionModel } from '../src/api/model.js';
import { loadNpy, maxAbsDiff, TINY, VOCAB_URL } from './helpers.js';

/** The open_clip tiny checkpoint and what real open_clip 2.24 computed from it (fixtures/openclip-tiny/README.md). */
export const MODEL = fileURLToPath(new URL('model', TINY));
export const VOCAB = fileURLToPath(VOCAB_URL);
export const cases = JSON.parse(readFileSync(new URL('cases.json', TINY), 'utf8')) as {
  images: string[];
  texts: string[];
  tokens: number[][];
  label_probs_first3_texts: number[][];
};
export const IMAGE_PATHS = cases.images.map((name) => fileURLToPath(new URL(`images/${name}`, TINY)));
/** open_clip's preprocessed pixels [3, 224, 224] of each image. */
export const PIXELS = cases.images.map(
  (name) => loadNpy(new URL(`expected/pixels224_${name.replace(/\.\w+$/, '')}.npy`, TINY)).data,
);
export const E = 32;
const expectedImages = loadNpy(new URL('expected/image_embeddings.npy', TINY)).data;
const expectedTexts = loadNpy(new URL('expected/text_embeddings.npy', TINY)).data;
export const expectedImage = (i: number): Float32Array => expectedImages.subarray(i * E, (i + 1) * E);
export const expectedText = (i: number): Float32Array => expectedTexts.subarray(i * E, (i + 1) * E);

export function loadTiny(options: LoadOptions = {}): Promise<WhyLesionModel> {
  return loadModel(MODEL, { vocabPath: VOCAB, ...options });
}

/** Concatenates rows [n, ...] into one batch. */
export function stack(
  rows: readonly ArrayLike<number>[],
  ctor: Float32ArrayConstructor | Int32ArrayConstructor,
): Float32Array | Int32Array {
  const size = rows[0]!.length;
  const out = new ctor(size * rows.length);
  rows.forEach((r, i) => {
    out.set(r, i * size);
  });
  return out;
}

export const pixelBatch = (indices: number[]): Float32Array =>
  stack(
    indices.map((i) => PIXELS[i]!),
    Float32Array,
  ) as Float32Array;
export const tokenBatch = (indices: number[]): Int32Array =>
  stack(
    indices.map((i) => cases.tokens[i]!),
    Int32Array,
  ) as Int32Array;

/** The float bits of every row, so comparisons are exact (NaN- and signed-zero-aware). */
export const bits = (rows: readonly Float32Array[]): number[][] =>
  rows.map((r) => Array.from(new Uint32Array(r.buffer, r.byteOffset, r.length)));

/** Unit rows against open_clip's normalized embeddings, at the reference suites' 1e-5. */
export function expectMatches(rows: readonly Float32Array[], expected: readonly Float32Array[]): void {
  expect(rows).toHaveLength(expected.length);
  rows.forEach((row, i) => {
    let norm = 0;
    for (const v of row) norm += v * v;
    norm = Math.sqrt(norm);
    expect(
      maxAbsDiff(
        row.map((v) => v / norm),
        expected[i]!,
      ),
      `row ${i}`,
    ).toBeLessThanOrEqual(1e-5);
  });
}

// A full collection on demand, so memory checks see retained memory rather than garbage not yet collected.
setFlagsFromString('--expose-gc');
export const collectGarbage = runInNewContext('gc') as () => void;
