// The whole model through each kernel family the adapter can run, against real open_clip: on this CPU
// adapter that includes the hardware-GPU route (workgroup-tiled matmul, portable attention and layernorm),
// so the kernels a GPU user gets are proven end to end in CI too.
import { describe, expect, it } from 'vitest';
import type { KernelFamily } from '../src/kernels/policy.js';
import {
  cases,
  expectedImage,
  expectedText,
  expectMatches,
  IMAGE_PATHS,
  loadTiny,
  pixelBatch,
  tokenBatch,
} from './reliability-shared.js';

const KERNELS_OF: Record<KernelFamily, { matmul: string; attention: string; layernorm: string }> = {
  gpu: { matmul: 'matmul_tiled', attention: 'attention', layernorm: 'layernorm' },
  portable: { matmul: 'matmul', attention: 'attention', layernorm: 'layernorm' },
  'cpu-subgroup': { matmul: 'matmul_subgroup', attention: 'attention_tile', layernorm: 'layernorm_subgroup' },
};

describe("every kernel family gives open_clip's embeddings", () => {
  for (const family of ['gpu', 'portable', 'cpu-subgroup'] as const) {
    it(`${family} kernels, both towers, all reference inputs`, async (ctx) => {
      const model = await loadTiny({ kernels: family, kernelTuning: 'rules' }).catch((error: Error) => {
        // Only the subgroup family depends on the adapter (4-16-lane subgroups); the others run anywhere.
        if (family === 'cpu-subgroup' && /subgroups of 4, 8 or 16 lanes/.test(error.message)) ctx.skip();
        throw error;
      });
      try {
        const n = IMAGE_PATHS.length;
        const indices = [...Array(n).keys()];
        expectMatches(await model.encodePixels(pixelBatch(indices), n), indices.map(expectedImage));
        const t = cases.texts.length;
        expectMatches(
          await model.encodeTokens(tokenBatch([...Array(t).keys()]), t),
          [...Array(t).keys()].map(expectedText),
        );
        const ran = new Set(await model.model.visionKernels(n));
        for (const kernel of Object.values(KERNELS_OF[family]))
          expect(ran, `${family} runs ${kernel}`).toContain(kernel);
      } finally {
        model.dispose();
      }
    });
  }

  // f16 weights with f16 activations between the kernels of a block, through the portable and GPU kernels
  // (the cpu-subgroup ones: test/model.test.ts). Cosine to open_clip's f32 embeddings, the f16 goal's bound.
  for (const family of ['gpu', 'portable'] as const) {
    it(`${family} kernels with f16 weights and f16 activations stay within the f16 bound`, async (ctx) => {
      const model = await loadTiny({ kernels: family, kernelTuning: 'rules', dtype: 'f16' }).catch((error: Error) => {
        if (/shader-f16/.test(error.message)) ctx.skip();
        throw error;
      });
      try {
        expect(model.activations).toEqual({ vision: 'f16', text: 'f16' });
        const n = IMAGE_PATHS.length;
        const indices = [...Array(n).keys()];
        const images = await model.encodePixels(pixelBatch(indices), n);
        const texts = await model.encodeTokens(tokenBatch([0, 1]), 2);
        const cosine = (a: Float32Array, b: Float32Array) => {
          let ab = 0,
            aa = 0,
            bb = 0;
          for (let i = 0; i < a.length; i++) {
            ab += a[i]! * b[i]!;
            aa += a[i]! ** 2;
            bb += b[i]! ** 2;
          }
          return ab / Math.sqrt(aa * bb);
        };
        for (const [i, row] of images.entries())
          expect(cosine(row, expectedImage(i)), `image ${i}`).toBeGreaterThanOrEqual(0.99999);
        for (const [i, row] of texts.entries())
          expect(cosine(row, expectedText(i)), `text ${i}`).toBeGreaterThanOrEqual(0.99999);
      } finally {
        model.dispose();
      }
    });
  }

  it('refuses an unknown family in one sentence', async () => {
    await expect(loadTiny({ kernels: 'fastest' as KernelFamily })).rejects.toThrow(
      /Kernel family 'fastest' is not one of auto, cpu-subgroup, gpu, portable\./,
    );
  });
});
