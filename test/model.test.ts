import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gpu } from '../src/gpu/gpu.js';
import { ClipModel } from '../src/model/clip.js';
import { parseClipConfig } from '../src/model/config.js';
import { SafetensorsFile } from '../src/weights/source.js';
import { loadNpy, maxAbsDiff, TINY } from './helpers.js';

const cases = JSON.parse(readFileSync(new URL('cases.json', TINY), 'utf8')) as { images: string[]; texts: string[]; tokens: number[][] };

function normalizeRows(x: Float32Array, dim: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < x.length / dim; r++) {
    let n = 0;
    for (let c = 0; c < dim; c++) n += x[r * dim + c] ** 2;
    n = Math.sqrt(n);
    for (let c = 0; c < dim; c++) out[r * dim + c] = x[r * dim + c] / n;
  }
  return out;
}

function minRowCosine(a: Float32Array, b: Float32Array, dim: number): number {
  let worst = 1;
  for (let r = 0; r < a.length / dim; r++) {
    let ab = 0, aa = 0, bb = 0;
    for (let c = 0; c < dim; c++) { ab += a[r * dim + c] * b[r * dim + c]; aa += a[r * dim + c] ** 2; bb += b[r * dim + c] ** 2; }
    worst = Math.min(worst, ab / Math.sqrt(aa * bb));
  }
  return worst;
}

describe('open_clip tiny checkpoint (ViT-L/14 family at toy size) against real open_clip 2.24', () => {
  let gpu: Gpu;
  let model: ClipModel;
  const E = 32;
  beforeAll(async () => {
    gpu = await Gpu.create();
    const config = parseClipConfig(JSON.parse(readFileSync(new URL('model/open_clip_config.json', TINY), 'utf8')));
    const source = await SafetensorsFile.open(fileURLToPath(new URL('model/open_clip_model.safetensors', TINY)));
    model = await ClipModel.load(gpu, config, source);
    await source.close();
  });
  afterAll(() => {
    model.dispose();
    gpu.destroy();
  });

  it('image embeddings from open_clip\'s own pixels', async () => {
    const pixels = cases.images.map((name) => loadNpy(new URL(`expected/pixels224_${name.replace(/\.\w+$/, '')}.npy`, TINY)).data);
    const batch = new Float32Array(pixels.length * 3 * 224 * 224);
    pixels.forEach((p, i) => batch.set(p, i * p.length));
    const raw = await model.encodePixels(batch, pixels.length);
    const expectedRaw = loadNpy(new URL('expected/image_embeddings_raw.npy', TINY)).data;
    const expected = loadNpy(new URL('expected/image_embeddings.npy', TINY)).data;
    const got = normalizeRows(raw, E);
    expect(maxAbsDiff(got, expected)).toBeLessThanOrEqual(1e-5);
    expect(minRowCosine(got, expected, E)).toBeGreaterThanOrEqual(0.99999);
    expect(maxAbsDiff(raw, expectedRaw) / Math.max(...expectedRaw.map(Math.abs))).toBeLessThan(1e-5);
  });

  it('text embeddings from open_clip\'s own token ids', async () => {
    const ids = Int32Array.from(cases.tokens.flat());
    const raw = await model.encodeTokens(ids, cases.tokens.length);
    const expected = loadNpy(new URL('expected/text_embeddings.npy', TINY)).data;
    const got = normalizeRows(raw, E);
    expect(maxAbsDiff(got, expected)).toBeLessThanOrEqual(1e-5);
    expect(minRowCosine(got, expected, E)).toBeGreaterThanOrEqual(0.99999);
    expect(model.logitScale).toBeCloseTo(100, 4);
  });

  it('short prompts on max(EOT)+1 positions give exactly the full-context result', async () => {
    const ctx = 77;
    const short = Int32Array.from(cases.tokens[0]); // "dark brown": EOT at 3, runs on 4 positions alone
    const long = new Int32Array(ctx).fill(320); // a prompt that fills the context: EOT in the last slot
    long[0] = 49406;
    long[ctx - 1] = 49407;
    const alone = await model.encodeTokens(short, 1);
    const both = await model.encodeTokens(Int32Array.from([...short, ...long]), 2); // runs on all 77 positions
    expect(Array.from(alone)).toEqual(Array.from(both.subarray(0, E)));
  });

  it('splits batches larger than one forward holds and keeps row order', async () => {
    const ids = Int32Array.from(cases.tokens.flat());
    const n = cases.tokens.length;
    const whole = await model.encodeTokens(ids, n);
    const one = await Promise.all(cases.tokens.map((t) => model.encodeTokens(Int32Array.from(t), 1)));
    one.forEach((row, i) => expect(maxAbsDiff(row, whole.subarray(i * E, (i + 1) * E))).toBeLessThan(1e-6));
  });

  it('refuses token ids outside the vocabulary', async () => {
    const ids = new Int32Array(77);
    ids[0] = 50000;
    await expect(model.encodeTokens(ids, 1)).rejects.toThrow(/outside the vocabulary/);
  });
});
