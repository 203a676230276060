// Proves the PyTorch reference (reference/clip_reference.py, shipped for `whylesion parity`): live on openclip-tiny
// when torch is present, and through its committed fixtures without torch:
// on openclip-tiny they must equal what real open_clip computed (test/fixtures/openclip-tiny), and on every
// fixture the tail of the forward (final layer norm, pooling, projection) recomputed here from the
// dumped block outputs and the checkpoint's weights must give the committed embeddings.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readNpy } from '../src/io/npy.js';

const repoRoot = fileURLToPath(new URL('../', import.meta.url));
const fixtures = `${repoRoot}test/fixtures/reference/`;
const openclipTiny = `${repoRoot}test/fixtures/openclip-tiny/`;

interface Tensor {
  shape: number[];
  data: Float32Array;
}

function loadNpy(path: string): Tensor {
  // A plain Uint8Array copy: readNpy's bytes.slice() is a view (not a copy) on a pooled Node Buffer.
  const array = readNpy(new Uint8Array(readFileSync(path)), path);
  if (array.dtype !== 'float32') throw new Error(`${path}: expected float32, got ${array.dtype}`);
  return { shape: array.shape, data: array.data };
}

function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 31) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** The named tensors of a safetensors file (F32 or F16) as float32; an independent reader for this check. */
function loadSafetensors(path: string, names: string[]): Map<string, Tensor> {
  const bytes = readFileSync(path);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8')) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const tensors = new Map<string, Tensor>();
  for (const name of names) {
    const entry = header[name];
    if (!entry) throw new Error(`${name} is not in the checkpoint`);
    const {
      dtype,
      shape,
      data_offsets: [begin, end],
    } = entry;
    const raw = bytes.subarray(8 + headerLength + begin, 8 + headerLength + end);
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) {
      if (dtype === 'F32') data[i] = raw.readFloatLE(4 * i);
      else if (dtype === 'F16') data[i] = halfToFloat(raw.readUInt16LE(2 * i));
      else throw new Error(`${path}: ${name} has dtype ${dtype}`);
    }
    tensors.set(name, { shape, data });
  }
  return tensors;
}

function layerNormRow(row: Float32Array, gain: Float32Array, bias: Float32Array): Float64Array {
  let mean = 0;
  for (const v of row) mean += v;
  mean /= row.length;
  let variance = 0;
  for (const v of row) variance += (v - mean) ** 2;
  variance /= row.length;
  const scale = 1 / Math.sqrt(variance + 1e-5);
  return Float64Array.from(row, (v, i) => (v - mean) * scale * gain[i]! + bias[i]!);
}

/** row [W] @ matrix [W, E]. */
function project(row: ArrayLike<number>, matrix: Tensor): Float64Array {
  const [width, embed] = matrix.shape;
  if (embed === undefined || width === undefined) throw new Error('missing embed, width');
  const out = new Float64Array(embed);
  for (let k = 0; k < width; k++) for (let j = 0; j < embed; j++) out[j]! += row[k]! * matrix.data[k * embed + j]!;
  return out;
}

function rows(tensor: Tensor): Float32Array[] {
  const width = tensor.shape[tensor.shape.length - 1]!;
  return Array.from({ length: tensor.data.length / width }, (_, i) => tensor.data.subarray(i * width, (i + 1) * width));
}

function maxAbs(values: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < values.length; i++) max = Math.max(max, Math.abs(values[i]!));
  return max;
}

/** Asserts equal shapes and |actual − expected| ≤ relTol · max(1, max|expected|) everywhere. */
function expectClose(actual: { shape: number[]; data: ArrayLike<number> }, expected: Tensor, relTol: number): void {
  expect(actual.shape).toEqual(expected.shape);
  const tolerance = relTol * Math.max(1, maxAbs(expected.data));
  let worst = 0;
  for (let i = 0; i < expected.data.length; i++) worst = Math.max(worst, Math.abs(actual.data[i]! - expected.data[i]!));
  expect(worst).toBeLessThanOrEqual(tolerance);
}

function flatten(rowList: Float64Array[]): { shape: number[]; data: Float64Array } {
  const width = rowList[0]!.length;
  const data = new Float64Array(rowList.length * width);
  rowList.forEach((row, i) => {
    data.set(row, i * width);
  });
  return { shape: [rowList.length, width], data };
}

function normalizeRows(tensor: Tensor): { shape: number[]; data: Float64Array } {
  return flatten(
    rows(tensor).map((row) => {
      const norm = Math.hypot(...row);
      return Float64Array.from(row, (v) => v / norm);
    }),
  );
}

const EMBEDDINGS = ['image_embeddings', 'image_embeddings_raw', 'text_embeddings', 'text_embeddings_raw'];

describe('openclip-tiny: reference outputs equal real open_clip 2.24', () => {
  for (const name of EMBEDDINGS) {
    it(`${name} matches within 1e-6 (relative to the largest value)`, () => {
      const expected = loadNpy(`${openclipTiny}expected/${name}.npy`);
      expectClose(loadNpy(`${fixtures}openclip-tiny/${name}.npy`), expected, 1e-6);
    });

    it(`${name} of the block-dump run (image 0, texts 0-1) matches its open_clip rows`, () => {
      const dumped = loadNpy(`${fixtures}openclip-tiny/blocks/${name}.npy`);
      const expected = loadNpy(`${openclipTiny}expected/${name}.npy`);
      const count = dumped.shape[0]!;
      const width = expected.shape[1]!;
      expectClose(dumped, { shape: [count, width], data: expected.data.subarray(0, count * width) }, 1e-6);
    });
  }
});

describe('openclip-tiny: the shipped reference script, run now, equals real open_clip 2.24', () => {
  it('embeddings of the four probe images and seven texts within 1e-6 (relative to the largest value)', (ctx) => {
    try {
      execFileSync('/usr/bin/python3', ['-c', 'import torch, numpy'], { stdio: 'ignore' });
    } catch {
      ctx.skip('/usr/bin/python3 has no torch/numpy (bash scripts/setup-webgpu.sh --with-python installs them)');
    }
    const out = mkdtempSync(join(tmpdir(), 'whylesion-reference-'));
    try {
      const cases = JSON.parse(readFileSync(`${openclipTiny}cases.json`, 'utf8')) as { images: string[] };
      const pixels = cases.images.map(
        (image) => `${openclipTiny}expected/pixels224_${image.replace(/\.\w+$/, '')}.npy`,
      );
      execFileSync(
        '/usr/bin/python3',
        [
          `${repoRoot}reference/clip_reference.py`,
          '--model',
          `${openclipTiny}model`,
          '--pixels',
          ...pixels,
          '--tokens',
          `${openclipTiny}cases.json`,
          '--out',
          out,
          '--threads',
          '2',
        ],
        { stdio: ['ignore', 'ignore', 'inherit'] },
      );
      for (const name of EMBEDDINGS)
        expectClose(loadNpy(join(out, `${name}.npy`)), loadNpy(`${openclipTiny}expected/${name}.npy`), 1e-6);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});

/** Recomputes ln_post/ln_final, pooling, projection and normalization from the dumps and the weights. */
function checkForwardTail(dumpDir: string, modelDir: string, tokens: number[][], layers: number): void {
  const weights = loadSafetensors(`${modelDir}open_clip_model.safetensors`, [
    'visual.ln_post.weight',
    'visual.ln_post.bias',
    'visual.proj',
    'ln_final.weight',
    'ln_final.bias',
    'text_projection',
  ]);
  const w = (name: string): Tensor => weights.get(name)!;
  const last = String(layers - 1).padStart(2, '0');

  const visionLast = loadNpy(`${dumpDir}vision_block${last}.npy`);
  const [images, visionTokens] = visionLast.shape;
  if (images === undefined || visionTokens === undefined) throw new Error('vision_block dump is not 2-D');
  const visionRows = rows(visionLast);
  const pooled = Array.from({ length: images }, (_, b) =>
    layerNormRow(visionRows[b * visionTokens]!, w('visual.ln_post.weight').data, w('visual.ln_post.bias').data),
  );
  expectClose(flatten(pooled), loadNpy(`${dumpDir}vision_pooled.npy`), 1e-5);
  const imageRaw = loadNpy(`${dumpDir}image_embeddings_raw.npy`);
  expectClose(flatten(pooled.map((row) => project(row, w('visual.proj')))), imageRaw, 1e-5);
  expectClose(normalizeRows(imageRaw), loadNpy(`${dumpDir}image_embeddings.npy`), 1e-6);

  const textLast = loadNpy(`${dumpDir}text_block${last}.npy`);
  const lnFinal = rows(textLast).map((row) => layerNormRow(row, w('ln_final.weight').data, w('ln_final.bias').data));
  const lnFinalDump = loadNpy(`${dumpDir}text_ln_final.npy`);
  expectClose({ shape: textLast.shape, data: flatten(lnFinal).data }, lnFinalDump, 1e-5);
  const context = textLast.shape[1]!;
  const eotRows = tokens.map((ids, b) => lnFinal[b * context + ids.indexOf(Math.max(...ids))]!);
  const textRaw = loadNpy(`${dumpDir}text_embeddings_raw.npy`);
  expectClose(flatten(eotRows.map((row) => project(row, w('text_projection')))), textRaw, 1e-5);
  expectClose(normalizeRows(textRaw), loadNpy(`${dumpDir}text_embeddings.npy`), 1e-6);
}

describe('reference fixtures: forward tail recomputed from block dumps and weights', () => {
  it('openclip-tiny (F32 weights, exact GELU)', () => {
    const cases = JSON.parse(readFileSync(`${openclipTiny}cases.json`, 'utf8')) as { tokens: number[][] };
    checkForwardTail(`${fixtures}openclip-tiny/blocks/`, `${openclipTiny}model/`, cases.tokens.slice(0, 2), 2);
  });

  it('quickgelu-f16 (F16 weights, QuickGELU)', () => {
    const dir = `${fixtures}quickgelu-f16/`;
    const { tokens } = JSON.parse(readFileSync(`${dir}tokens.json`, 'utf8')) as { tokens: number[][] };
    checkForwardTail(dir, `${dir}model/`, tokens, 2);
  });
});

describe('quickgelu-f16 fixture layout', () => {
  const dir = `${fixtures}quickgelu-f16/`;

  it('has the QuickGELU tiny config the engine tests rely on', () => {
    const config = JSON.parse(readFileSync(`${dir}model/open_clip_config.json`, 'utf8'));
    expect(config.model_cfg).toEqual({
      embed_dim: 24,
      quick_gelu: true,
      vision_cfg: { image_size: 224, layers: 2, width: 48, head_width: 16, patch_size: 16 },
      text_cfg: { context_length: 77, vocab_size: 1000, width: 48, heads: 3, layers: 2 },
    });
  });

  it('has token rows of 77 ids below the vocabulary whose unique maximum is EOT 999', () => {
    const { tokens, eot } = JSON.parse(readFileSync(`${dir}tokens.json`, 'utf8')) as {
      tokens: number[][];
      eot: number;
    };
    expect(eot).toBe(999);
    expect(tokens).toHaveLength(4);
    for (const ids of tokens) {
      expect(ids).toHaveLength(77);
      expect(ids.filter((id) => id === eot)).toHaveLength(1);
      expect(Math.max(...ids)).toBe(eot);
      expect(Math.min(...ids)).toBeGreaterThanOrEqual(0);
    }
    // EOT positions cover an empty text and a full row (EOT in the last slot).
    expect(tokens.map((ids) => ids.indexOf(eot))).toEqual([1, 8, 29, 76]);
  });
});
