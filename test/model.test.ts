import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KernelPolicy } from '../src/kernels/policy.js';
import { Gpu } from '../src/runtime/gpu.js';
import { ClipModel } from '../src/model/clip.js';
import { parseClipConfig } from '../src/model/config.js';
import { SafetensorsFile } from '../src/io/source.js';
import { loadNpy, maxAbsDiff, TINY } from './helpers.js';

const cases = JSON.parse(readFileSync(new URL('cases.json', TINY), 'utf8')) as {
  images: string[];
  texts: string[];
  tokens: number[][];
};

function normalizeRows(x: Float32Array, dim: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < x.length / dim; r++) {
    let n = 0;
    for (let c = 0; c < dim; c++) n += x[r * dim + c]! ** 2;
    n = Math.sqrt(n);
    for (let c = 0; c < dim; c++) out[r * dim + c] = x[r * dim + c]! / n;
  }
  return out;
}

/** Rows 0, T, 2T, ... of a [B, T, W] dump: each image's class token. */
function classRows(x: Float32Array, T: number, W: number): Float32Array {
  const B = x.length / (T * W);
  const out = new Float32Array(B * W);
  for (let b = 0; b < B; b++) out.set(x.subarray(b * T * W, b * T * W + W), b * W);
  return out;
}

function minRowCosine(a: Float32Array, b: Float32Array, dim: number): number {
  let worst = 1;
  for (let r = 0; r < a.length / dim; r++) {
    let ab = 0,
      aa = 0,
      bb = 0;
    for (let c = 0; c < dim; c++) {
      ab += a[r * dim + c]! * b[r * dim + c]!;
      aa += a[r * dim + c]! ** 2;
      bb += b[r * dim + c]! ** 2;
    }
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
    model = await ClipModel.load(KernelPolicy.create(gpu), config, source);
    await source.close();
  });
  afterAll(() => {
    model.dispose();
    gpu.destroy();
  });

  it("image embeddings from open_clip's own pixels", async () => {
    const pixels = cases.images.map(
      (name) => loadNpy(new URL(`expected/pixels224_${name.replace(/\.\w+$/, '')}.npy`, TINY)).data,
    );
    const batch = new Float32Array(pixels.length * 3 * 224 * 224);
    pixels.forEach((p, i) => {
      batch.set(p, i * p.length);
    });
    const raw = await model.encodePixels(batch, pixels.length);
    const expectedRaw = loadNpy(new URL('expected/image_embeddings_raw.npy', TINY)).data;
    const expected = loadNpy(new URL('expected/image_embeddings.npy', TINY)).data;
    const got = normalizeRows(raw, E);
    expect(maxAbsDiff(got, expected)).toBeLessThanOrEqual(1e-5);
    expect(minRowCosine(got, expected, E)).toBeGreaterThanOrEqual(0.99999);
    expect(maxAbsDiff(raw, expectedRaw) / Math.max(...expectedRaw.map(Math.abs))).toBeLessThan(1e-5);
  });

  it("text embeddings from open_clip's own token ids", async () => {
    const ids = Int32Array.from(cases.tokens.flat());
    const raw = await model.encodeTokens(ids, cases.tokens.length);
    const expected = loadNpy(new URL('expected/text_embeddings.npy', TINY)).data;
    const got = normalizeRows(raw, E);
    expect(maxAbsDiff(got, expected)).toBeLessThanOrEqual(1e-5);
    expect(minRowCosine(got, expected, E)).toBeGreaterThanOrEqual(0.99999);
    expect(model.logitScale).toBeCloseTo(100, 4);
  });

  it('the exact shortcuts (text on max(EOT)+1 positions, class-token-only last block) change no bit', async () => {
    const config = parseClipConfig(JSON.parse(readFileSync(new URL('model/open_clip_config.json', TINY), 'utf8')));
    const source = await SafetensorsFile.open(fileURLToPath(new URL('model/open_clip_model.safetensors', TINY)));
    const full = await ClipModel.load(KernelPolicy.create(gpu), config, source, { exactShortcuts: false });
    await source.close();
    try {
      const ids = Int32Array.from(cases.tokens.flat()); // EOT at 2..~17: the shortcut runs far fewer than 77 positions
      expect(Array.from(await model.encodeTokens(ids, cases.tokens.length))).toEqual(
        Array.from(await full.encodeTokens(ids, cases.tokens.length)),
      );
      const pixels = loadNpy(new URL('expected/pixels224_lesion_rgb.npy', TINY)).data;
      const two = new Float32Array(2 * pixels.length);
      two.set(pixels);
      two.set(
        pixels.map((v) => -v),
        pixels.length,
      );
      expect(Array.from(await model.encodePixels(two, 2))).toEqual(Array.from(await full.encodePixels(two, 2)));
    } finally {
      full.dispose();
    }
  });

  it('f16 weights with f16 block activations (the default) stay within the f16 bound', async (ctx) => {
    if (!gpu.hasF16) ctx.skip('no shader-f16');
    // One f16 model only: each is a set of pipelines to compile (~1 min cold here). f16 weights with f32
    // activations are covered by the QuickGELU checkpoint below (head dim 16: its blocks keep f32).
    const config = parseClipConfig(JSON.parse(readFileSync(new URL('model/open_clip_config.json', TINY), 'utf8')));
    const source = await SafetensorsFile.open(fileURLToPath(new URL('model/open_clip_model.safetensors', TINY)));
    const halves = await ClipModel.load(KernelPolicy.create(gpu), config, source, { dtype: 'f16' }).finally(() =>
      source.close(),
    );
    try {
      expect(halves.activations).toEqual({ vision: 'f16', text: 'f16' });
      const pixels = loadNpy(new URL('expected/pixels224_lesion_rgb.npy', TINY)).data;
      const ids = Int32Array.from(cases.tokens.flat());
      const wantImage = normalizeRows(await model.encodePixels(pixels, 1), E);
      const wantText = normalizeRows(await model.encodeTokens(ids, cases.tokens.length), E);
      const image = normalizeRows(await halves.encodePixels(pixels, 1), E);
      const text = normalizeRows(await halves.encodeTokens(ids, cases.tokens.length), E);
      // Measured here: 1 − cosine ≤ 1e-6 (text); the bound is the f16 goal's.
      expect(minRowCosine(image, wantImage, E)).toBeGreaterThanOrEqual(0.99999);
      expect(minRowCosine(text, wantText, E)).toBeGreaterThanOrEqual(0.99999);
      expect(maxAbsDiff(image, wantImage)).toBeLessThan(1e-2);
    } finally {
      halves.dispose();
    }
    // A hang guard: ~50 s of pipeline compiles with Mesa's shader cache cold on an idle 2-core machine.
  }, 600_000);

  it('refuses f16 activations with f32 weights', async () => {
    const config = parseClipConfig(JSON.parse(readFileSync(new URL('model/open_clip_config.json', TINY), 'utf8')));
    const source = await SafetensorsFile.open(fileURLToPath(new URL('model/open_clip_model.safetensors', TINY)));
    try {
      await expect(
        ClipModel.load(KernelPolicy.create(gpu), config, source, { dtype: 'f32', activations: 'f16' }),
      ).rejects.toThrow(/f16 activations need f16 weights/);
    } finally {
      await source.close();
    }
  });

  it('splits batches larger than one forward holds and keeps row order', async () => {
    const ids = Int32Array.from(cases.tokens.flat());
    const n = cases.tokens.length;
    const whole = await model.encodeTokens(ids, n);
    const one = await Promise.all(cases.tokens.map((t) => model.encodeTokens(Int32Array.from(t), 1)));
    one.forEach((row, i) => {
      expect(maxAbsDiff(row, whole.subarray(i * E, (i + 1) * E))).toBeLessThan(1e-6);
    });
  });

  it('refuses token ids outside the vocabulary', async () => {
    const ids = new Int32Array(77);
    ids[0] = 50000;
    await expect(model.encodeTokens(ids, 1)).rejects.toThrow(/outside the vocabulary/);
  });
});

describe('our QuickGELU / patch 16 / 3-head / F16-storage config against the PyTorch reference', () => {
  const dir = new URL('fixtures/reference/quickgelu-f16/', import.meta.url);
  const E = 24;
  let gpu: Gpu;
  beforeAll(async () => {
    gpu = await Gpu.create();
  });
  afterAll(() => gpu.destroy());

  async function load(dtype: 'f32' | 'f16'): Promise<ClipModel> {
    const config = parseClipConfig(JSON.parse(readFileSync(new URL('model/open_clip_config.json', dir), 'utf8')));
    const source = await SafetensorsFile.open(fileURLToPath(new URL('model/open_clip_model.safetensors', dir)));
    try {
      // f32 activations: this checks f16 weights alone against the reference's bounds (f16 activations: above).
      return await ClipModel.load(KernelPolicy.create(gpu), config, source, { dtype, activations: 'f32' });
    } finally {
      await source.close();
    }
  }

  const pixels = loadNpy(new URL('pixels.npy', dir));
  const { tokens } = JSON.parse(readFileSync(new URL('tokens.json', dir), 'utf8')) as { tokens: number[][] };
  const ids = Int32Array.from(tokens.flat());

  for (const dtype of ['f32', 'f16'] as const) {
    it(`embeddings match with ${dtype} weights on the GPU (F16-exact weights, f32 arithmetic)`, async (ctx) => {
      if (dtype === 'f16' && !gpu.hasF16) ctx.skip(); // adapters without shader-f16 cannot run f16 storage
      const model = await load(dtype);
      try {
        const image = normalizeRows(await model.encodePixels(pixels.data, pixels.shape[0]!), E);
        const text = normalizeRows(await model.encodeTokens(ids, tokens.length), E);
        const wantImage = loadNpy(new URL('image_embeddings.npy', dir)).data;
        const wantText = loadNpy(new URL('text_embeddings.npy', dir)).data;
        expect(maxAbsDiff(image, wantImage)).toBeLessThanOrEqual(1e-5);
        expect(maxAbsDiff(text, wantText)).toBeLessThanOrEqual(1e-5);
        expect(minRowCosine(image, wantImage, E)).toBeGreaterThanOrEqual(0.99999);
        expect(minRowCosine(text, wantText, E)).toBeGreaterThanOrEqual(0.99999);
      } finally {
        model.dispose();
      }
    });
  }

  it('every block output matches the reference dump (debug readback by name)', async () => {
    const model = await load('f32');
    try {
      const vision = await model.dumpPixels(pixels.data, pixels.shape[0]!);
      const text = await model.dumpTokens(ids, tokens.length); // EOT at 76 in one row: all 77 positions run
      const pairs: [string, Float32Array | undefined][] = [
        ['vision_ln_pre', vision.get('vision.ln_pre')],
        ['vision_block00', vision.get('vision.block00')],
        ['vision_block01_class_rows', vision.get('vision.block01.kept')], // the last block finishes only the class tokens
        ['vision_pooled', vision.get('vision.pooled')],
        ['text_embed', text.get('text.embed')],
        ['text_block00', text.get('text.block00')],
        ['text_block01', text.get('text.block01')],
      ];
      for (const [file, got] of pairs) {
        const want = file.endsWith('_class_rows')
          ? classRows(loadNpy(new URL(`${file.replace('_class_rows', '')}.npy`, dir)).data, 197, 48)
          : loadNpy(new URL(`${file}.npy`, dir)).data;
        expect(got, file).toBeDefined();
        const scale = Math.max(...want.map(Math.abs));
        expect(maxAbsDiff(got!, want) / scale, file).toBeLessThan(1e-5);
      }
    } finally {
      model.dispose();
    }
  });
});
