import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gpu, type Dispatch } from '../src/runtime/gpu.js';
import * as K from '../src/kernels/index.js';
import { ATTENTION_SPECS } from '../src/kernels/attention/index.js';
import { attentionRef } from '../src/kernels/attention/reference.js';
import { elementwiseRef, erf } from '../src/kernels/elementwise/reference.js';
import { embedTokensRef } from '../src/kernels/embed_tokens/reference.js';
import { gatherRowsRef } from '../src/kernels/gather_rows/reference.js';
import { LAYERNORM_SPECS } from '../src/kernels/layernorm/index.js';
import { layerNormRef } from '../src/kernels/layernorm/reference.js';
import { matmulRef } from '../src/kernels/matmul/reference.js';
import { matmulFlags, matmulLaunch } from '../src/kernels/matmul/spec.js';
import { patchifyRef } from '../src/kernels/patchify/reference.js';
import { visionTokensRef } from '../src/kernels/vision_tokens/reference.js';
import {
  defaultMatmulVariant,
  subgroupsOf4,
  subgroupsOf8,
  subgroupsOf16,
  type MatmulVariant,
} from '../src/kernels/tuning.js';
import { randomArray, relativeError } from './helpers.js';

let gpu: Gpu;
let policy: K.KernelPolicy;
let scope: K.Scope;
beforeAll(async () => {
  gpu = await Gpu.create();
  policy = K.KernelPolicy.create(gpu);
  scope = new K.Scope(policy);
});
afterAll(() => {
  scope.destroy();
  gpu.destroy();
});

async function runAndRead(d: Dispatch | Dispatch[], out: GPUBuffer, n: number): Promise<Float32Array> {
  const [bytes] = await gpu.run('test', Array.isArray(d) ? d : [d], [{ buffer: out, bytes: n * 4 }]);
  if (bytes === undefined) throw new Error('missing bytes');
  return new Float32Array(bytes);
}

describe('matmul Y = X·Wᵀ + b', () => {
  // Awkward shapes: M not a multiple of the 4×4 block or the 32×32 tile, N likewise, K of the scalar path.
  const shapes: [number, number, number][] = [
    [1, 7, 30],
    [7, 33, 588],
    [77, 65, 1024],
    [257, 50, 64],
    [1000, 9, 36],
    [3, 130, 4096],
  ];
  for (const [M, N, Kd] of shapes) {
    it(`M=${M} N=${N} K=${Kd}`, async () => {
      const x = randomArray(M * Kd, M + N, 1);
      const w = randomArray(N * Kd, Kd, 1 / Math.sqrt(Kd));
      const bias = randomArray(N, 7, 0.1);
      const X = scope.storage('x', x),
        W = scope.storage('w', w),
        Bi = scope.storage('b', bias);
      const Y = scope.storage('y', M * N * 4);
      const d = await K.matmul(scope, 'mm', { x: X, w: W, bias: Bi, y: Y, M, N, K: Kd });
      const got = await runAndRead(d, Y, M * N);
      expect(relativeError(got, matmulRef(x, w, M, N, Kd, { bias }))).toBeLessThan(1e-5);
    });
  }

  it('fuses GELU, QuickGELU and the residual add', async () => {
    const [M, N, Kd] = [37, 41, 64];
    const x = randomArray(M * Kd, 1),
      w = randomArray(N * Kd, 2, 0.2),
      bias = randomArray(N, 3, 0.5);
    const residual = randomArray(M * N, 4);
    const X = scope.storage('x', x),
      W = scope.storage('w', w),
      Bi = scope.storage('b', bias);
    for (const activation of ['gelu', 'quick_gelu'] as const) {
      const Y = scope.storage('y', residual);
      const d = await K.matmul(scope, 'mm', { x: X, w: W, bias: Bi, y: Y, M, N, K: Kd, activation, accumulate: true });
      const got = await runAndRead(d, Y, M * N);
      expect(relativeError(got, matmulRef(x, w, M, N, Kd, { bias, activation, residual }))).toBeLessThan(1e-5);
    }
  });

  it('reads f16 weights when the adapter has shader-f16', async (ctx) => {
    if (!gpu.hasF16) ctx.skip(); // adapters without shader-f16 cannot hold f16 storage
    const [M, N, Kd] = [19, 23, 40];
    const x = randomArray(M * Kd, 5),
      w32 = randomArray(N * Kd, 6, 0.3);
    const w16 = new Uint16Array(w32.length);
    const wRounded = new Float32Array(w32.length);
    for (let i = 0; i < w32.length; i++) {
      w16[i] = toHalf(w32[i]!);
      wRounded[i] = fromHalf(w16[i]!);
    }
    const Y = scope.storage('y', M * N * 4);
    const d = await K.matmul(scope, 'mm16', {
      x: scope.storage('x', x),
      w: scope.storage('w16', w16),
      y: Y,
      M,
      N,
      K: Kd,
      wDtype: 'f16',
    });
    expect(relativeError(await runAndRead(d, Y, M * N), matmulRef(x, wRounded, M, N, Kd))).toBeLessThan(1e-5);
  });
});

describe('activations', () => {
  it('the reference erf is exact to 1e-14 at known values', () => {
    expect(Math.abs(erf(0.5) - 0.5204998778130465)).toBeLessThan(1e-14);
    expect(Math.abs(erf(1) - 0.8427007929497149)).toBeLessThan(1e-14);
    expect(Math.abs(erf(2.5) - 0.999593047982555)).toBeLessThan(1e-14);
    expect(Math.abs(erf(-3) + 0.9999779095030014)).toBeLessThan(1e-14);
  });

  it('GELU (erf) within 1e-6 absolute over [-10, 10]; QuickGELU likewise', async () => {
    const n = 20001;
    const x = new Float32Array(n).map((_, i) => -10 + (20 * i) / (n - 1));
    const X = scope.storage('x', x);
    for (const op of ['gelu', 'quick_gelu'] as const) {
      const Y = scope.storage('y', n * 4);
      const got = await runAndRead(await K.elementwise(scope, op, { x: X, y: Y, n, op }), Y, n);
      const want = elementwiseRef(x, op);
      let worst = 0;
      for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
      expect(worst).toBeLessThan(1e-6);
    }
  });
});

describe('layernorm', () => {
  for (const [rows, cols] of [
    [1, 30],
    [7, 1024],
    [257, 64],
    [13, 768],
  ] as [number, number][]) {
    it(`${rows}×${cols}, with an offset that defeats E[x²]−mean²`, async () => {
      const x = randomArray(rows * cols, rows, 1).map((v) => v + 100);
      const gain = randomArray(cols, 1, 0.1).map((v) => v + 1),
        shift = randomArray(cols, 2, 0.1);
      const Y = scope.storage('y', rows * cols * 4);
      const d = await K.layerNorm(scope, 'ln', {
        x: scope.storage('x', x),
        gain: scope.storage('g', gain),
        shift: scope.storage('s', shift),
        y: Y,
        rows,
        cols,
      });
      expect(relativeError(await runAndRead(d, Y, rows * cols), layerNormRef(x, gain, shift, rows, cols))).toBeLessThan(
        1e-5,
      );
    });
  }

  it('normalizes every k-th row (class tokens) with inRowStride', async () => {
    const [B, T, C] = [3, 5, 64];
    const x = randomArray(B * T * C, 9);
    const gain = randomArray(C, 1, 0.1).map((v) => v + 1),
      shift = randomArray(C, 2, 0.1);
    const cls = new Float32Array(B * C);
    for (let b = 0; b < B; b++) cls.set(x.subarray(b * T * C, b * T * C + C), b * C);
    const Y = scope.storage('y', B * C * 4);
    const d = await K.layerNorm(scope, 'ln', {
      x: scope.storage('x', x),
      gain: scope.storage('g', gain),
      shift: scope.storage('s', shift),
      y: Y,
      rows: B,
      cols: C,
      inRowStride: T,
    });
    expect(relativeError(await runAndRead(d, Y, B * C), layerNormRef(cls, gain, shift, B, C))).toBeLessThan(1e-5);
  });
});

describe('attention (packed qkv, online softmax)', () => {
  const cases: [number, number, number, number, boolean][] = [
    [1, 77, 2, 32, true],
    [2, 257, 2, 32, false],
    [2, 5, 3, 16, false],
    [1, 1, 1, 64, true],
    [1, 70, 4, 64, false],
  ];
  for (const [B, T, H, D, causal] of cases) {
    it(`B=${B} T=${T} heads=${H} headDim=${D}${causal ? ' causal' : ''}`, async () => {
      const qkv = randomArray(B * T * 3 * H * D, T + D, 1);
      const O = scope.storage('o', B * T * H * D * 4);
      const d = await K.attention(scope, 'attn', {
        qkv: scope.storage('qkv', qkv),
        out: O,
        batch: B,
        seq: T,
        heads: H,
        headDim: D,
        causal,
      });
      expect(relativeError(await runAndRead(d, O, B * T * H * D), attentionRef(qkv, B, T, H, D, causal))).toBeLessThan(
        1e-5,
      );
    });
  }
});

describe('embedding and token assembly', () => {
  it('gathers token rows from a table split into chunks and adds positions', async () => {
    const [vocab, width, T, B] = [50, 12, 6, 2];
    const table = randomArray(vocab * width, 1),
      pos = randomArray(T * width, 2);
    const ids = new Uint32Array([0, 49, 17, 18, 3, 30, 7, 25, 24, 26, 49, 0]);
    const split = 25; // rows [0,25) and [25,50) live in different buffers
    const chunks = [
      { buffer: scope.storage('t0', table.subarray(0, split * width)), rowOffset: 0, rows: split },
      { buffer: scope.storage('t1', table.subarray(split * width)), rowOffset: split, rows: vocab - split },
    ];
    const Y = scope.storage('y', B * T * width * 4);
    const ds = await K.embedTokens(scope, 'emb', {
      ids: scope.storage('ids', ids),
      chunks,
      pos: scope.storage('pos', pos),
      y: Y,
      rows: B * T,
      seq: T,
      width,
    });
    const got = await runAndRead(ds, Y, B * T * width);
    // One f32 add per element: the GPU's sum rounds exactly as the reference's.
    expect(Array.from(got)).toEqual(Array.from(embedTokensRef(ids, table, pos, T, width)));
  });

  it('patchify + class token + positions reproduce a stride-P convolution', async () => {
    const [B, P, G, width] = [2, 4, 3, 8];
    const S = P * G,
      T = G * G + 1,
      cols = 3 * P * P;
    const pixels = randomArray(B * 3 * S * S, 1),
      conv = randomArray(width * cols, 2, 0.2);
    const cls = randomArray(width, 3),
      pos = randomArray(T * width, 4);
    const patches = scope.storage('patches', B * G * G * cols * 4);
    const embed = scope.storage('embed', B * G * G * width * 4);
    const Y = scope.storage('y', B * T * width * 4);
    const ds = [
      await K.patchify(scope, 'patchify', {
        pixels: scope.storage('px', pixels),
        patches,
        batch: B,
        patch: P,
        grid: G,
        imageSize: S,
      }),
      await K.matmul(scope, 'conv', {
        x: patches,
        w: scope.storage('conv', conv),
        y: embed,
        M: B * G * G,
        N: width,
        K: cols,
      }),
      await K.visionTokens(scope, 'tokens', {
        patchEmbed: embed,
        classEmbedding: scope.storage('cls', cls),
        pos: scope.storage('pos', pos),
        y: Y,
        batch: B,
        seq: T,
        width,
      }),
    ];
    // Each kernel against its reference: patchify moves values (exact), the tokens add one f32 each.
    const got = await runAndRead(ds, Y, B * T * width);
    const [patchesGot] = await gpu.run('patches', [], [{ buffer: patches, bytes: B * G * G * cols * 4 }]);
    const patchesWant = patchifyRef(pixels, B, P, G, S);
    expect(Array.from(new Float32Array(patchesGot!))).toEqual(Array.from(patchesWant));
    const viaRefs = visionTokensRef(matmulRef(patchesWant, conv, B * G * G, width, cols), cls, pos, B, T, width);
    expect(relativeError(got, viaRefs)).toBeLessThan(1e-5);
    // And the references together against the convolution written out directly.
    const want = new Float32Array(B * T * width);
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) {
        for (let o = 0; o < width; o++) {
          let v = pos[t * width + o]!;
          if (t === 0) v += cls[o]!;
          else {
            const gy = Math.floor((t - 1) / G),
              gx = (t - 1) % G;
            for (let c = 0; c < 3; c++)
              for (let ky = 0; ky < P; ky++)
                for (let kx = 0; kx < P; kx++) {
                  v +=
                    pixels[((b * 3 + c) * S + gy * P + ky) * S + gx * P + kx]! * conv[((o * 3 + c) * P + ky) * P + kx]!;
                }
          }
          want[(b * T + t) * width + o] = v;
        }
      }
    }
    expect(relativeError(got, want)).toBeLessThan(1e-5);
    expect(relativeError(viaRefs, want)).toBeLessThan(1e-6);
  });

  it('gathers chosen rows', async () => {
    const x = randomArray(10 * 7, 5);
    const index = new Uint32Array([9, 0, 4]);
    const Y = scope.storage('y', 3 * 7 * 4);
    const got = await runAndRead(
      await K.gatherRows(scope, 'g', {
        x: scope.storage('x', x),
        index: scope.storage('i', index),
        y: Y,
        rows: 3,
        width: 7,
      }),
      Y,
      21,
    );
    expect(Array.from(got)).toEqual(Array.from(gatherRowsRef(x, index, 7)));
  });
});

function toHalf(v: number): number {
  const f = new Float32Array([v]);
  const u = new Uint32Array(f.buffer)[0]!;
  const sign = (u >>> 16) & 0x8000;
  const exp = ((u >>> 23) & 0xff) - 127 + 15;
  let mant = u & 0x7fffff;
  if (exp <= 0) return sign; // tiny test values never reach here
  let h = sign | (exp << 10) | (mant >>> 13);
  mant &= 0x1fff;
  if (mant > 0x1000 || (mant === 0x1000 && h & 1)) h++;
  return h;
}

function fromHalf(h: number): number {
  const exp = (h >>> 10) & 0x1f,
    mant = h & 0x3ff;
  const v = exp === 0 ? mant * 2 ** -24 : (1 + mant / 1024) * 2 ** (exp - 15);
  return h & 0x8000 ? -v : v;
}

describe('matmul variants', () => {
  // Each kernel dispatched directly (matmul() picks only one per device), laid out by its spec (spec.ts:
  // bindings, Params, flag bits, tile geometry).
  const variants: { variant: MatmulVariant; subgroups: boolean; lanes16?: boolean }[] = [
    { variant: 'subgroup-3x3', subgroups: true },
    { variant: 'subgroup16-2x2', subgroups: true, lanes16: true },
    // 4 lanes (SwiftShader): a workgroup of 4 is one subgroup where subgroups have 4 lanes, and a subgroup's
    // first 4 lanes (the rest inactive) on llvmpipe's 8 or 16
    { variant: 'subgroup4-4x4', subgroups: true },
    { variant: 'subgroup4-1x4', subgroups: true },
    // the same tile spelled out (SwiftShader's; its rule's 32×48 tile takes minutes to compile on llvmpipe, and
    // test/browser.test.ts runs it in Chromium): the rule's small-M tile and one with several X rows per lane
    { variant: 'unrolled4-2x8', subgroups: true },
    { variant: 'unrolled4-1x8', subgroups: true },
    { variant: 'block', subgroups: false },
    { variant: 'tiled', subgroups: false },
  ];
  // M below, at and past the tile; N not a multiple of 24 or 32; K of the CLIP widths and patches.
  const cases: {
    M: number;
    N: number;
    K: number;
    activation?: 'gelu' | 'quick_gelu';
    accumulate?: boolean;
    f16?: boolean;
  }[] = [
    { M: 1, N: 50, K: 1024 },
    { M: 7, N: 25, K: 588, activation: 'quick_gelu' },
    { M: 77, N: 97, K: 1024, activation: 'gelu', accumulate: true },
    { M: 257, N: 50, K: 588, f16: true },
    { M: 24, N: 24, K: 1024, accumulate: true, f16: true },
    { M: 12, N: 30, K: 64, activation: 'gelu', f16: true },
  ];

  for (const v of variants) {
    for (const c of cases) {
      const name = `${matmulLaunch(v.variant, 'f32').spec.shader} ${v.variant} M=${c.M} N=${c.N} K=${c.K}${c.activation ? ` ${c.activation}` : ''}${c.accumulate ? ' +=Y' : ''}${c.f16 ? ' f16 weights' : ''}`;
      it(name, async (ctx) => {
        // The subgroup kernels are written for 8-16-lane subgroups (CPU adapters); no shader-f16, no f16 storage.
        const fourLanes = /^(subgroup|unrolled)4-/.test(v.variant) && policy.subgroupLanes === 4;
        if (v.subgroups && !gpu.hasCpuSizedSubgroups && !fourLanes) ctx.skip();
        if (v.lanes16 && !subgroupsOf16(policy))
          ctx.skip(true, 'subgroups are not 16 lanes here (llvmpipe below 512 bits, or a GPU)');
        if (c.f16 && !gpu.hasF16) ctx.skip();
        const { M, N, K: Kd } = c;
        const x = randomArray(M * Kd, M + 3 * N, 1);
        let w = randomArray(N * Kd, Kd + N, 1 / Math.sqrt(Kd));
        let wData: Float32Array | Uint16Array = w;
        if (c.f16) {
          wData = Uint16Array.from(w, toHalf);
          w = Float32Array.from(wData, fromHalf);
        }
        const bias = randomArray(N, N, 0.3),
          residual = randomArray(M * N, M, 1);
        const Y = scope.storage('y', c.accumulate ? residual : new Float32Array(M * N));
        const launch = matmulLaunch(v.variant, c.f16 ? 'f16' : 'f32');
        const flags = matmulFlags({ bias: true, activation: c.activation, accumulate: c.accumulate });
        const d = await K.dispatchMatmul(
          scope,
          launch,
          'mm',
          { x: scope.storage('x', x), w: scope.storage('w', wData), bias: scope.storage('b', bias), y: Y },
          { M, N, K: Kd, flags },
        );
        const want = matmulRef(x, w, M, N, Kd, {
          bias,
          activation: c.activation,
          residual: c.accumulate ? residual : undefined,
        });
        expect(relativeError(await runAndRead(d, Y, M * N), want)).toBeLessThan(1e-5);
      });
    }
  }

  // The library path for f16 model weights: uploadMatmulWeights packs them where the device runs
  // 8-lane subgroup kernels, and matmul() then runs matmul_packed.wgsl (elsewhere both keep [N, K]).
  for (const c of cases) {
    const name = `uploadMatmulWeights + matmul() M=${c.M} N=${c.N} K=${c.K}${c.activation ? ` ${c.activation}` : ''}${c.accumulate ? ' +=Y' : ''} f16 weights`;
    it(name, async (ctx) => {
      if (!gpu.hasF16) ctx.skip(); // adapters without shader-f16 cannot hold f16 storage
      const { M, N, K: Kd } = c;
      const x = randomArray(M * Kd, M + 5 * N, 1);
      const wData = Uint16Array.from(randomArray(N * Kd, Kd + 2 * N, 1 / Math.sqrt(Kd)), toHalf);
      const w = Float32Array.from(wData, fromHalf);
      const bias = randomArray(N, N + 1, 0.3),
        residual = randomArray(M * N, M + 1, 1);
      const Y = scope.storage('y', c.accumulate ? residual : new Float32Array(M * N));
      const W = K.uploadMatmulWeights(scope, 'w', wData, N, Kd);
      const packs = policy.matmulWeightLayout('f16', Kd) === 'packed';
      expect(packs).toBe(subgroupsOf8(policy) && !subgroupsOf16(policy));
      expect(W).toMatchObject({ packed: packs, dtype: 'f16', N, K: Kd });
      const d = await K.matmul(scope, 'mm', {
        x: scope.storage('x', x),
        w: W,
        bias: scope.storage('b', bias),
        y: Y,
        M,
        N,
        K: Kd,
        activation: c.activation,
        accumulate: c.accumulate,
        wDtype: 'f16',
      });
      expect(d.kernel).toBe(packs ? 'matmul_packed' : K.matmulKernelName(defaultMatmulVariant(policy, M)));
      const want = matmulRef(x, w, M, N, Kd, {
        bias,
        activation: c.activation,
        residual: c.accumulate ? residual : undefined,
      });
      expect(relativeError(await runAndRead(d, Y, M * N), want)).toBeLessThan(1e-5);
    });
  }

  it("lays matmul weights out for the plan's kernel family and refuses them under another", async (ctx) => {
    if (!gpu.hasF16) ctx.skip(); // adapters without shader-f16 cannot hold f16 storage
    const [M, N, Kd] = [9, 30, 64];
    const x = randomArray(M * Kd, 21, 1);
    const wData = Uint16Array.from(randomArray(N * Kd, 22, 1 / Math.sqrt(Kd)), toHalf);
    const portable = new K.Scope(K.KernelPolicy.create(gpu, 'portable'));
    try {
      const X = portable.storage('x', x),
        Y = portable.storage('y', M * N * 4);
      const rows = K.uploadMatmulWeights(portable, 'w', wData, N, Kd);
      expect(rows).toMatchObject({ packed: false, family: 'portable' });
      const d = await K.matmul(portable, 'mm', { x: X, w: rows, y: Y, M, N, K: Kd });
      expect(d.kernel).toBe('matmul');
      const want = matmulRef(x, Float32Array.from(wData, fromHalf), M, N, Kd);
      expect(relativeError(await runAndRead(d, Y, M * N), want)).toBeLessThan(1e-5);
      if (policy.matmulWeightLayout('f16', Kd) !== 'packed') return; // only the 8-lane cpu-subgroup kernels pack
      const packed = K.uploadMatmulWeights(scope, 'w', wData, N, Kd);
      expect(packed).toMatchObject({ packed: true, family: 'cpu-subgroup' });
      expect(() => K.matmul(portable, 'mm', { x: X, w: packed, y: Y, M, N, K: Kd })).toThrow(
        'mm: weights were laid out for the cpu-subgroup kernels, but this plan runs the portable kernels',
      );
      expect(() => K.matmul(scope, 'mm', { x: X, w: rows, y: Y, M, N, K: Kd })).toThrow(
        'mm: weights were laid out for the portable kernels, but this plan runs the cpu-subgroup kernels',
      );
    } finally {
      portable.destroy();
    }
  });

  it("packMatmulWeights puts each 24-row tile's f16 rows side by side per 4 values of K, zero past N", () => {
    const N = 26,
      Kd = 8,
      w = Uint16Array.from({ length: N * Kd }, (_, i) => i + 1);
    const packed = K.packMatmulWeights(w, N, Kd);
    expect(packed.length).toBe(2 * 2 * 24 * 4);
    // row n, k: tile ⌊n/24⌋, step ⌊k/4⌋, slot n mod 24, component k mod 4
    const at = (n: number, k: number) =>
      packed[((Math.floor(n / 24) * 2 + Math.floor(k / 4)) * 24 + (n % 24)) * 4 + (k % 4)];
    for (let n = 0; n < N; n++) for (let k = 0; k < Kd; k++) expect(at(n, k)).toBe(n * Kd + k + 1);
    for (let n = N; n < 48; n++) for (let k = 0; k < Kd; k++) expect(at(n, k)).toBe(0);
    // a view at an odd element offset (not 4-byte aligned) packs the same
    const shifted = new Uint16Array(N * Kd + 1);
    shifted.set(w, 1);
    expect(K.packMatmulWeights(shifted.subarray(1), N, Kd)).toEqual(packed);
  });

  it('matmul() runs the kernel of the built-in rule for this adapter, the scalar kernel when K is not a multiple of 4', async () => {
    const X = scope.storage('x', 16 * 4),
      W = scope.storage('w', 16 * 4),
      Y = scope.storage('y', 16 * 4);
    const d = await K.matmul(scope, 'mm', { x: X, w: W, y: Y, M: 4, N: 4, K: 4 });
    expect(d.kernel).toBe(K.matmulKernelName(defaultMatmulVariant(policy, 4)));
    expect((await K.matmul(scope, 'mm', { x: X, w: W, y: Y, M: 4, N: 4, K: 3 })).kernel).toBe('matmul_scalar');
  });
});

describe('subgroup attention and layernorm (llvmpipe) and their portable fallbacks', () => {
  // T around the 8/4-query workgroup and 24/16-key block edges and past 257; head dims of CLIP and the tiny
  // reference (64, 32), and 16/80/128 (which keep the portable kernel); q/k scaled up so the running max
  // changes between key blocks.
  const attentionCases: [number, number, number, number, boolean][] = [
    [1, 300, 2, 64, false],
    [2, 257, 1, 64, true],
    [1, 77, 2, 80, true],
    [1, 70, 1, 128, false],
    [3, 1, 2, 16, false],
    [1, 5, 2, 32, true],
    [1, 16, 1, 64, true],
    [1, 17, 2, 32, false],
    [1, 25, 1, 64, true],
    [2, 48, 2, 32, false],
  ];
  for (const [B, T, H, D, causal] of attentionCases) {
    it(`attention() B=${B} T=${T} heads=${H} headDim=${D}${causal ? ' causal' : ''}`, async () => {
      const qkv = randomArray(B * T * 3 * H * D, 7 * T + D, 3);
      const O = scope.storage('o', B * T * H * D * 4);
      const d = await K.attention(scope, 'attn', {
        qkv: scope.storage('qkv', qkv),
        out: O,
        batch: B,
        seq: T,
        heads: H,
        headDim: D,
        causal,
      });
      const tiled = (subgroupsOf8(policy) || subgroupsOf4(policy)) && D % 32 === 0 && D <= 64;
      expect(d.kernel).toBe(tiled ? 'attention_tile' : 'attention');
      expect(relativeError(await runAndRead(d, O, B * T * H * D), attentionRef(qkv, B, T, H, D, causal))).toBeLessThan(
        1e-5,
      );
    });
  }

  /** One attention kernel dispatched directly on random q/k/v, against the CPU reference. */
  async function expectAttentionKernel(
    kernel: 'attention' | 'attention_tile_unrolled',
    [B, T, H, D, causal]: [number, number, number, number, boolean],
    seed: number,
  ): Promise<void> {
    const qkv = randomArray(B * T * 3 * H * D, seed, 3);
    const O = scope.storage('o', B * T * H * D * 4);
    const tile = kernel === 'attention_tile_unrolled';
    const d = await K.dispatchKernel(
      scope,
      ATTENTION_SPECS[kernel],
      'attn',
      { qkv: scope.storage('qkv', qkv), out: O },
      { T, W: H * D, causal: causal ? 1 : 0, scale: 1 / Math.sqrt(D) },
      { HEAD_DIM: D, ...(tile ? { LANES: 4, KEYS: 4, OUT4: D / 16 } : {}), IO_TYPE: 'f32' },
      [Math.ceil(T / (tile ? 4 : 64)), H, B],
    );
    expect(relativeError(await runAndRead(d, O, B * T * H * D), attentionRef(qkv, B, T, H, D, causal))).toBeLessThan(
      1e-5,
    );
  }

  it('attention.wgsl (the fallback without subgroups) dispatched directly', async () => {
    for (const causal of [false, true]) await expectAttentionKernel('attention', [2, 70, 2, 32, causal], 11);
  });

  // SwiftShader's attention (KernelPolicy.needsUnrolledKernels), run here on llvmpipe as a workgroup of 4 lanes:
  // query and key blocks with partial ends, causal and not, both head dims it takes.
  const unrolledCases: [number, number, number, number, boolean][] = [
    [1, 300, 2, 64, false],
    [2, 77, 2, 64, true],
    [1, 17, 3, 32, true],
    [1, 5, 1, 32, false],
  ];
  for (const c of unrolledCases) {
    const [B, T, H, D, causal] = c;
    it(`attention_tile_unrolled.wgsl (SwiftShader's) B=${B} T=${T} heads=${H} headDim=${D}${causal ? ' causal' : ''}`, async (ctx) => {
      if (!gpu.hasCpuSizedSubgroups && policy.subgroupLanes !== 4) ctx.skip();
      await expectAttentionKernel('attention_tile_unrolled', c, 13 * T + D);
    });
  }

  // 1030 rows take the 4-rows-per-workgroup path with a partial last workgroup; 36 columns end in a
  // partial 8-lane chunk; 30 columns (not a multiple of 4) take the fallback.
  const layerNormCases: [number, number, number][] = [
    [1030, 64, 1],
    [77, 768, 1],
    [3, 36, 1],
    [1025, 64, 2],
    [5, 1024, 3],
    [4, 30, 1],
  ];
  for (const [rows, cols, stride] of layerNormCases) {
    it(`layerNorm() ${rows}×${cols}${stride > 1 ? ` every ${stride}th row` : ''}, offset +100`, async () => {
      const x = randomArray(rows * stride * cols, rows + cols, 1).map((v) => v + 100);
      const gain = randomArray(cols, 3, 0.1).map((v) => v + 1),
        shift = randomArray(cols, 4, 0.1);
      const picked = new Float32Array(rows * cols);
      for (let r = 0; r < rows; r++) picked.set(x.subarray(r * stride * cols, r * stride * cols + cols), r * cols);
      const Y = scope.storage('y', rows * cols * 4);
      const d = await K.layerNorm(scope, 'ln', {
        x: scope.storage('x', x),
        gain: scope.storage('g', gain),
        shift: scope.storage('s', shift),
        y: Y,
        rows,
        cols,
        inRowStride: stride,
      });
      expect(d.kernel).toBe(
        (subgroupsOf8(policy) || subgroupsOf4(policy)) && cols % 4 === 0 ? 'layernorm_subgroup' : 'layernorm',
      );
      expect(
        relativeError(await runAndRead(d, Y, rows * cols), layerNormRef(picked, gain, shift, rows, cols)),
      ).toBeLessThan(1e-5);
    });
  }

  it('layernorm.wgsl (the fallback without subgroups) dispatched directly', async () => {
    const [rows, cols] = [13, 768];
    const x = randomArray(rows * cols, 5, 1).map((v) => v + 100);
    const gain = randomArray(cols, 6, 0.1).map((v) => v + 1),
      shift = randomArray(cols, 7, 0.1);
    const Y = scope.storage('y', rows * cols * 4);
    const d = await K.dispatchKernel(
      scope,
      LAYERNORM_SPECS.layernorm,
      'ln',
      { x: scope.storage('x', x), gain: scope.storage('g', gain), shift: scope.storage('s', shift), y: Y },
      { rows, cols, in_row_stride: 1, eps: 1e-5 },
      { Y_TYPE: 'f32' },
      [rows, 1, 1],
    );
    expect(relativeError(await runAndRead(d, Y, rows * cols), layerNormRef(x, gain, shift, rows, cols))).toBeLessThan(
      1e-5,
    );
  });
});

describe('f16 activations between the kernels of a block', () => {
  // Inputs are f16 values (so the kernels' exact widening and the reference see the same numbers); outputs are
  // halves rounded from f32 sums, so they may differ from the rounded reference by the rounding: 2^-11 relative.
  const HALF_ROUNDING = 2 ** -10;
  const halves = (a: Float32Array): Uint16Array => Uint16Array.from(a, toHalf);
  const widen = (h: Uint16Array): Float32Array => Float32Array.from(h, fromHalf);
  /** Rounds values to their f16 neighbours, as the kernels see f16 inputs. */
  const asHalves = (a: Float32Array): Float32Array => widen(halves(a));
  /** f16 data as the kernels store it: two halves per u32, the lower index first (little-endian words). */
  const halfBuffer = (a: Float32Array): Uint32Array => {
    const h = halves(a.length % 2 ? Float32Array.of(...a, 0) : a);
    return new Uint32Array(h.buffer, h.byteOffset, h.length / 2);
  };
  async function readHalves(d: Dispatch, out: GPUBuffer, n: number): Promise<Float32Array> {
    const [bytes] = await gpu.run('test', [d], [{ buffer: out, bytes: 4 * Math.ceil(n / 2) }]);
    if (bytes === undefined) throw new Error('missing bytes');
    return widen(new Uint16Array(bytes, 0, n));
  }
  // f16 weights need shader-f16 (the portable kernels declare f16 arrays); the halves of X and Y do not.
  const skipWithoutF16 = (ctx: { skip: (note?: string) => void }): void => {
    if (!gpu.hasF16) ctx.skip('no shader-f16');
  };
  /** The device's own kernels ('auto'), or another family's on the same adapter. */
  async function inFamily<T>(family: 'auto' | 'portable' | 'gpu', work: (s: K.Scope) => Promise<T>): Promise<T> {
    if (family === 'auto') return work(scope);
    const other = new K.Scope(K.KernelPolicy.create(gpu, family));
    try {
      return await work(other);
    } finally {
      other.destroy();
    }
  }

  const matmulCases: {
    M: number;
    N: number;
    K: number;
    x: K.FloatDtype;
    y: K.FloatDtype;
    activation?: 'gelu';
    accumulate?: boolean;
    family?: 'portable' | 'gpu';
  }[] = [
    { M: 257, N: 96, K: 1024, x: 'f16', y: 'f16', activation: 'gelu' },
    { M: 7, N: 50, K: 64, x: 'f16', y: 'f32', accumulate: true },
    { M: 33, N: 30, K: 588, x: 'f32', y: 'f16' },
    { M: 24, N: 26, K: 1024, x: 'f16', y: 'f16', accumulate: true },
    { M: 1, N: 10, K: 768, x: 'f16', y: 'f16' },
    // the block kernel (Deno; SwiftShader without subgroups) and the tiled one (GPUs) on the same adapter
    { M: 37, N: 66, K: 64, x: 'f16', y: 'f16', activation: 'gelu', family: 'portable' },
    { M: 37, N: 66, K: 64, x: 'f16', y: 'f32', accumulate: true, family: 'portable' },
    { M: 70, N: 66, K: 64, x: 'f16', y: 'f16', activation: 'gelu', family: 'gpu' },
    { M: 70, N: 66, K: 64, x: 'f16', y: 'f16', accumulate: true, family: 'gpu' },
  ];
  for (const c of matmulCases) {
    const name = `matmul()${c.family ? ` (${c.family} kernels)` : ''} ${c.x} X → ${c.y} Y, M=${c.M} N=${c.N} K=${c.K}${c.activation ? ` ${c.activation}` : ''}${c.accumulate ? ' +=Y' : ''}, f16 weights`;
    it(name, async (ctx) => {
      skipWithoutF16(ctx);
      const { M, N, K: Kd } = c;
      let x = randomArray(M * Kd, M + N, 1);
      if (c.x === 'f16') x = asHalves(x);
      const wData = halves(randomArray(N * Kd, Kd + N, 1 / Math.sqrt(Kd)));
      const bias = randomArray(N, N, 0.3);
      let residual = randomArray(M * N, M, 1);
      if (c.y === 'f16') residual = asHalves(residual);
      const start = c.accumulate ? residual : new Float32Array(M * N);
      const want = matmulRef(x, widen(wData), M, N, Kd, {
        bias,
        activation: c.activation,
        residual: c.accumulate ? residual : undefined,
      });
      const got = await inFamily(c.family ?? 'auto', async (s) => {
        const Y = s.storage('y', c.y === 'f16' ? halfBuffer(start) : start);
        const d = await K.matmul(s, 'mm', {
          x: s.storage('x', c.x === 'f16' ? halfBuffer(x) : x),
          w: K.uploadMatmulWeights(s, 'w', wData, N, Kd),
          bias: s.storage('b', bias),
          y: Y,
          M,
          N,
          K: Kd,
          activation: c.activation,
          accumulate: c.accumulate,
          xDtype: c.x,
          yDtype: c.y,
        });
        if (c.family) expect(d.kernel).toBe(c.family === 'gpu' ? 'matmul_tiled' : 'matmul');
        return c.y === 'f16' ? readHalves(d, Y, M * N) : runAndRead(d, Y, M * N);
      });
      expect(relativeError(got, want)).toBeLessThan(c.y === 'f16' ? HALF_ROUNDING : 1e-5);
      // Every element, not only the largest: within its own half's rounding (plus the f32 sum's error).
      if (c.y === 'f16') {
        const worst = Math.max(
          ...Array.from(got, (g, i) => Math.abs(g - want[i]!) / Math.max(Math.abs(want[i]!), 1e-3)),
        );
        expect(worst).toBeLessThan(HALF_ROUNDING);
      }
    });
  }

  for (const family of ['auto', 'portable'] as const) {
    it(`layerNorm() writes f16 rows (${family === 'auto' ? "the device's kernel" : 'the portable kernel'})`, async () => {
      const [rows, cols] = [37, 768];
      const x = randomArray(rows * cols, 41, 2).map((v) => v + 3);
      const gain = randomArray(cols, 42, 0.1).map((v) => v + 1),
        shift = randomArray(cols, 43, 0.1);
      const got = await inFamily(family, async (s) => {
        const Y = s.storage('y', Math.ceil((rows * cols) / 2) * 4);
        const d = await K.layerNorm(s, 'ln', {
          x: s.storage('x', x),
          gain: s.storage('g', gain),
          shift: s.storage('s', shift),
          y: Y,
          rows,
          cols,
          yDtype: 'f16',
        });
        if (family === 'portable') expect(d.kernel).toBe('layernorm');
        return readHalves(d, Y, rows * cols);
      });
      expect(relativeError(got, layerNormRef(x, gain, shift, rows, cols))).toBeLessThan(HALF_ROUNDING);
    });
  }

  for (const [family, causal] of [
    ['auto', false],
    ['auto', true],
    ['portable', true],
  ] as const) {
    it(`attention() reads and writes f16${causal ? ', causal' : ''} (${family === 'auto' ? "the device's kernel" : 'the portable kernel'})`, async () => {
      const [B, T, H, D] = [2, 37, 2, 64];
      const qkv = asHalves(randomArray(B * T * 3 * H * D, 51, 2));
      const got = await inFamily(family, async (s) => {
        const O = s.storage('o', ((B * T * H * D) / 2) * 4);
        const d = await K.attention(s, 'attn', {
          qkv: s.storage('qkv', halfBuffer(qkv)),
          out: O,
          batch: B,
          seq: T,
          heads: H,
          headDim: D,
          causal,
          dtype: 'f16',
        });
        if (family === 'portable') expect(d.kernel).toBe('attention');
        return readHalves(d, O, B * T * H * D);
      });
      expect(relativeError(got, attentionRef(qkv, B, T, H, D, causal))).toBeLessThan(HALF_ROUNDING);
    });
  }

  it('gatherRows() copies f16 rows bit for bit', async () => {
    const width = 10;
    const x = asHalves(randomArray(5 * width, 61, 1));
    const index = new Uint32Array([4, 0, 2]);
    const Y = scope.storage('y', ((3 * width) / 2) * 4);
    const d = await K.gatherRows(scope, 'g', {
      x: scope.storage('x', halfBuffer(x)),
      index: scope.storage('i', index),
      y: Y,
      rows: 3,
      width,
      dtype: 'f16',
    });
    expect(Array.from(await readHalves(d, Y, 3 * width))).toEqual(Array.from(gatherRowsRef(x, index, width)));
  });

  it('refuses f16 activations where no kernel takes them', () => {
    expect(K.matmulTakesHalves(64, 2)).toBe(true);
    expect(K.matmulTakesHalves(30, 2)).toBe(false); // K not a multiple of 4: the scalar kernel reads f32 only
    expect(K.matmulTakesHalves(64, 3)).toBe(false); // an odd N splits a pair of halves
    expect(K.layerNormWritesHalves(63)).toBe(false);
    const [M, N, Kd] = [4, 8, 30];
    expect(() =>
      K.matmul(scope, 'mm', {
        x: scope.storage('x', M * Kd * 2),
        w: scope.storage('w', N * Kd * 4),
        y: scope.storage('y', M * N * 4),
        M,
        N,
        K: Kd,
        xDtype: 'f16',
      }),
    ).toThrow(/f16 activations need K a multiple of 4/);
    expect(() =>
      K.layerNorm(scope, 'ln', {
        x: scope.storage('x', 63 * 4),
        gain: scope.storage('g', 63 * 4),
        shift: scope.storage('s', 63 * 4),
        y: scope.storage('y', 64 * 2),
        rows: 1,
        cols: 63,
        yDtype: 'f16',
      }),
    ).toThrow(/f16 output needs an even number of columns/);
  });
});
