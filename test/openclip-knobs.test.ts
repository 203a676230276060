// The open_clip config knobs beyond WhyLesionCLIP's (layer scale, avg pooling with and without
// final_ln_after_pool, no ln_pre, text pooling argmax/last/first, no causal mask, text projection bias, image sizes,
// patch 14/16/32, context lengths, QuickGELU/GELU, LayerNorm eps), each checked against what real open_clip 2.24
// computed from the same weights (test/fixtures/openclip-knobs, made by reference/make_knob_fixtures.py).
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as K from '../src/kernels/index.js';
import { attentionLastRowRef } from '../src/kernels/attention_last_row/reference.js';
import { meanRowsRef } from '../src/kernels/mean_rows/reference.js';
import { ClipModel } from '../src/model/clip.js';
import { parseClipConfig, type ClipConfig } from '../src/model/config.js';
import { SafetensorsFile } from '../src/io/source.js';
import { encodeSafetensors, SafetensorsSource } from '../src/io/safetensors.js';
import { Gpu } from '../src/runtime/gpu.js';
import { loadModel } from '../src/api/model.js';
import { openClip } from '../src/families/index.js';
import { synthesizeCheckpoint } from '../src/io/synth.js';
import { loadNpy, maxAbsDiff, randomArray } from './helpers.js';

const FIXTURES = new URL('fixtures/openclip-knobs/', import.meta.url);
const NAMES = [
  'ls-avg-projbias',
  'nolnpre-avgafter-last',
  'p14-tok-first',
  'nocausal-argmax',
  'causal-last',
  'customtext-embedcls',
];

let gpu: Gpu;
beforeAll(async () => {
  gpu = await Gpu.create();
});
afterAll(() => gpu.destroy());

interface Fixture {
  config: ClipConfig;
  weights: string;
  pixels: Float32Array;
  images: number;
  tokens: Int32Array;
  texts: number;
  image: { data: Float32Array };
  text: { data: Float32Array };
}

function fixture(name: string): Fixture {
  const dir = new URL(`${name}/`, FIXTURES);
  const config = parseClipConfig(JSON.parse(readFileSync(new URL('open_clip_config.json', dir), 'utf8')), name);
  const pixels = loadNpy(new URL('pixels.npy', dir));
  const rows = (JSON.parse(readFileSync(new URL('tokens.json', dir), 'utf8')) as { tokens: number[][] }).tokens;
  return {
    config,
    weights: new URL('open_clip_model.safetensors', dir).pathname,
    pixels: pixels.data,
    images: pixels.shape[0]!,
    tokens: Int32Array.from(rows.flat()),
    texts: rows.length,
    image: loadNpy(new URL('image_embeddings_raw.npy', dir)),
    text: loadNpy(new URL('text_embeddings_raw.npy', dir)),
  };
}

/** |ours − open_clip's| ≤ 5e-6 of the largest expected value: float32 rounding, far below any knob's effect. */
function expectMatches(what: string, actual: Float32Array, expected: Float32Array): number {
  let largest = 0;
  for (const v of expected) largest = Math.max(largest, Math.abs(v));
  const diff = maxAbsDiff(actual, expected);
  console.info(`${what}: max abs diff ${diff.toExponential(2)}, largest value ${largest.toFixed(3)}`);
  expect(diff).toBeLessThanOrEqual(5e-6 * Math.max(1, largest));
  return diff;
}

async function embeddings(
  f: Fixture,
  load: () => Promise<SafetensorsFile | SafetensorsSource>,
  exactShortcuts = true,
): Promise<{ image: Float32Array; text: Float32Array }> {
  const source = await load();
  const model = await ClipModel.load(K.KernelPolicy.create(gpu), f.config, source, { exactShortcuts });
  await source.close();
  try {
    return {
      image: await model.encodePixels(f.pixels, f.images),
      text: await model.encodeTokens(f.tokens, f.texts),
    };
  } finally {
    model.dispose();
  }
}

describe('open_clip 2.24 knobs on tiny random-weight models', () => {
  it('reads each fixture config into the knobs it exercises', () => {
    const knobs = NAMES.map((name) => {
      const { vision: v, text: t, quickGelu } = fixture(name).config;
      const vision = [v.imageSize, v.patchSize, v.layerScale, v.lnPre, v.pool, v.lnAfterPool, v.normEps, quickGelu];
      return [
        ...vision,
        t.contextLength,
        t.layerScale,
        t.pool,
        t.causal,
        t.projBias,
        t.normEps,
        t.customText,
        t.embedCls,
      ];
    });
    expect(knobs).toEqual([
      [64, 16, true, true, 'avg', false, 1e-6, false, 16, true, 'argmax', true, true, 1e-5, false, false],
      [64, 32, false, false, 'avg', true, 1e-5, true, 12, false, 'last', false, false, 1e-6, false, false],
      [56, 14, false, true, 'tok', true, 1e-5, false, 20, false, 'first', true, false, 1e-5, false, false],
      [32, 16, false, true, 'tok', false, 1e-5, true, 24, false, 'argmax', false, false, 1e-5, false, false],
      [32, 16, true, false, 'tok', false, 1e-5, false, 10, true, 'last', true, true, 1e-5, false, false],
      [32, 8, false, true, 'tok', false, 1e-5, false, 12, false, 'argmax', true, false, 1e-5, true, true],
    ]);
  });

  it('lists exactly the tensors open_clip saved, in state_dict order, for every fixture', async () => {
    for (const name of NAMES) {
      const f = fixture(name);
      const file = await SafetensorsFile.open(f.weights);
      const saved = [...file.tensors].map(([tensor, info]) => [tensor, info.shape]);
      await file.close();
      expect([...openClip.stateDict(f.config)], name).toEqual(saved);
    }
  });

  it('synthesizes a checkpoint for every fixture config that loads and gives finite embeddings', async () => {
    for (const name of NAMES) {
      const f = fixture(name);
      const tensors = synthesizeCheckpoint(f.config, 5, 'F32').map((t) => ({ ...t, data: t.data() }));
      const bytes = encodeSafetensors(tensors);
      const ours = await embeddings(f, () => SafetensorsSource.fromBytes(bytes, `synthetic ${name}`));
      expect([...ours.image, ...ours.text].every(Number.isFinite), name).toBe(true);
      expect(ours.image.some((v) => v !== 0)).toBe(true);
    }
  });

  for (const name of NAMES) {
    it(`${name}: image and text embeddings equal open_clip's, with and without the exact shortcuts`, async () => {
      const f = fixture(name);
      for (const exact of [true, false]) {
        const ours = await embeddings(f, () => SafetensorsFile.open(f.weights), exact);
        expectMatches(`${name} image (shortcuts ${exact})`, ours.image, f.image.data);
        expectMatches(`${name} text (shortcuts ${exact})`, ours.text, f.text.data);
      }
    });
  }

  it('folds layer-scale gammas whether the file holds them before or after their weights', async () => {
    const f = fixture('ls-avg-projbias');
    const file = await SafetensorsFile.open(f.weights);
    const tensors = [];
    for (const [name, info] of file.tensors)
      tensors.push({ name, dtype: 'F32' as const, shape: info.shape, data: await file.readF32(name) });
    await file.close();
    // Reversed: every gamma now comes before the out_proj / c_proj it scales (open_clip's order has it after).
    const reversed = encodeSafetensors(tensors.reverse());
    const ours = await embeddings(f, async () => SafetensorsSource.fromBytes(reversed, 'the reversed checkpoint'));
    expectMatches('ls-avg-projbias image (gammas first)', ours.image, f.image.data);
    expectMatches('ls-avg-projbias text (gammas first)', ours.text, f.text.data);
  });
});

describe('loadModel through the open_clip family', () => {
  it('takes shapes, preprocessing size and context length from the config', async () => {
    const f = fixture('ls-avg-projbias');
    const model = await loadModel(new URL('ls-avg-projbias/', FIXTURES).pathname);
    try {
      expect(model.inputs).toEqual({ embedDim: 24, imageSize: 64, contextLength: 16 });
      expect((await model.tokenize(['dark brown', 'a'.repeat(200)])).length).toBe(2 * 16);
      const image = (await model.encodePixels(f.pixels, f.images)).flatMap((row) => [...row]);
      expectMatches('ls-avg-projbias image (loadModel)', Float32Array.from(image), f.image.data);
      const text = (await model.encodeTokens(f.tokens, f.texts)).flatMap((row) => [...row]);
      expectMatches('ls-avg-projbias text (loadModel)', Float32Array.from(text), f.text.data);
    } finally {
      model.dispose();
    }
  });
});

describe('the fixtures tell each knob apart', () => {
  /** The largest change, relative to the largest expected value, that a wrong knob makes to either tower. */
  async function effect(
    name: string,
    change: { config?: (c: ClipConfig) => ClipConfig; tensor?: (name: string, data: Float32Array) => void },
  ): Promise<number> {
    const f = fixture(name);
    const file = await SafetensorsFile.open(f.weights);
    const tensors = [];
    for (const [tensor, info] of file.tensors) {
      const data = await file.readF32(tensor);
      change.tensor?.(tensor, data);
      tensors.push({ name: tensor, dtype: 'F32' as const, shape: info.shape, data });
    }
    await file.close();
    const bytes = encodeSafetensors(tensors);
    const changed = { ...f, config: change.config ? change.config(f.config) : f.config };
    const ours = await embeddings(changed, () => SafetensorsSource.fromBytes(bytes, name));
    const relative = (a: Float32Array, b: Float32Array): number =>
      maxAbsDiff(a, b) / Math.max(1, ...Array.from(b, Math.abs));
    return Math.max(relative(ours.image, f.image.data), relative(ours.text, f.text.data));
  }
  const vision = (c: ClipConfig, v: Partial<ClipConfig['vision']>): ClipConfig => ({
    ...c,
    vision: { ...c.vision, ...v },
  });
  const text = (c: ClipConfig, t: Partial<ClipConfig['text']>): ClipConfig => ({ ...c, text: { ...c.text, ...t } });
  const cases: [string, string, Parameters<typeof effect>[1]][] = [
    ['layer scale ignored', 'ls-avg-projbias', { tensor: (n, d) => n.endsWith('.gamma') && d.fill(1) }],
    [
      'text projection bias ignored',
      'ls-avg-projbias',
      { tensor: (n, d) => n === 'text_projection.bias' && d.fill(0) },
    ],
    ['avg pool taken as tok', 'ls-avg-projbias', { config: (c) => vision(c, { pool: 'tok' }) }],
    ['final_ln_after_pool ignored', 'nolnpre-avgafter-last', { config: (c) => vision(c, { lnAfterPool: false }) }],
    ['text LayerNorm eps 1e-5 for 1e-6', 'nolnpre-avgafter-last', { config: (c) => text(c, { normEps: 1e-5 }) }],
    ['QuickGELU taken as GELU', 'nolnpre-avgafter-last', { config: (c) => ({ ...c, quickGelu: false }) }],
    ['no_causal_mask ignored', 'nocausal-argmax', { config: (c) => text(c, { causal: true }) }],
    ['last pooled as argmax', 'causal-last', { config: (c) => text(c, { pool: 'argmax' }) }],
    ['first pooled as argmax', 'p14-tok-first', { config: (c) => text(c, { pool: 'argmax' }) }],
    ["embed_cls's mask ignored (pad_id 7, absent)", 'customtext-embedcls', { config: (c) => text(c, { padId: 7 }) }],
  ];
  for (const [what, name, change] of cases) {
    it(`${what} moves ${name}'s embeddings far beyond the 5e-6 tolerance`, async () => {
      const moved = await effect(name, change);
      console.info(`${what} (${name}): moves the embeddings by ${moved.toExponential(2)} of the largest value`);
      expect(moved).toBeGreaterThan(1e-4);
    });
  }
});

describe('attention_last_row kernel', () => {
  it("recomputes each sequence's last row over the allowed keys like its CPU reference, leaving the others", async () => {
    const scope = new K.Scope(K.KernelPolicy.create(gpu));
    try {
      for (const [B, T, heads, D] of [
        [1, 2, 1, 4],
        [3, 13, 2, 16],
        [2, 78, 12, 64],
      ] as const) {
        const W = heads * D;
        const qkv = randomArray(B * T * 3 * W, B + T + D, 1);
        const allowed = Uint32Array.from({ length: B * T }, (_, i) => (i % T === 0 || (i * 7) % 5 !== 0 ? 1 : 0));
        const before = randomArray(B * T * W, 3);
        const out = scope.storage('out', before);
        const d = await K.attentionLastRow(scope, 'cls', {
          qkv: scope.storage('qkv', qkv),
          allowed: scope.storage('allowed', allowed),
          out,
          batch: B,
          seq: T,
          heads,
          headDim: D,
        });
        const [bytes] = await gpu.run('cls', [d], [{ buffer: out, bytes: B * T * W * 4 }]);
        const got = new Float32Array(bytes!);
        const want = before.slice();
        const lastRows = attentionLastRowRef(qkv, B, T, heads, D, allowed);
        for (let b = 0; b < B; b++) want.set(lastRows.subarray(b * W, (b + 1) * W), (b * T + T - 1) * W);
        expect(maxAbsDiff(got, want)).toBeLessThanOrEqual(2e-6 * Math.max(1, ...Array.from(want, Math.abs)));
      }
    } finally {
      scope.destroy();
    }
  });
});

describe('mean_rows kernel', () => {
  it('averages rows [first, T) of each block like its CPU reference', async () => {
    const scope = new K.Scope(K.KernelPolicy.create(gpu));
    try {
      for (const [B, T, width, first] of [
        [1, 2, 1, 1],
        [3, 17, 70, 1],
        [2, 577, 64, 1],
        [4, 5, 130, 0],
      ] as const) {
        const x = randomArray(B * T * width, B * T + width, 1);
        const X = scope.storage('x', x);
        const Y = scope.storage('y', B * width * 4);
        const d = await K.meanRows(scope, 'mean', { x: X, y: Y, batch: B, seq: T, width, first });
        const [bytes] = await gpu.run('mean', [d], [{ buffer: Y, bytes: B * width * 4 }]);
        const want = meanRowsRef(x, B, T, width, first);
        let largest = 0;
        for (const v of want) largest = Math.max(largest, Math.abs(v));
        expect(maxAbsDiff(new Float32Array(bytes!), want)).toBeLessThanOrEqual(1e-6 * Math.max(1, largest));
      }
    } finally {
      scope.destroy();
    }
  });
});
