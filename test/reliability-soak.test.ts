import { describe, expect, it } from 'vitest';
import { rng } from './helpers.js';
import {
  collectGarbage,
  expectedImage,
  expectedText,
  expectMatches,
  IMAGE_PATHS,
  loadTiny,
  pixelBatch,
  tokenBatch,
} from './reliability-shared.js';

const ENCODES = 500;
const WARM_UP = 100;
/**
 * Growth allowed from encode 100 to encode 500. The leaks these catch
 * grow far faster: on a CPU adapter GPU buffers live in process memory, and a forward plan of the tiny model
 * holds about 1 MB of activations (about 400 plans are made and freed here), an image batch 0.6 MB of pixels
 * per image. What legitimately grows is the text cache: about 240 new prompts of 32 floats.
 * Observed (lavapipe, 2 cores, 5 runs): RSS −8 to +18 MB, heap +0.4 MB, array buffers +0.1 MB; in a
 * 2000-encode run RSS stayed within 316–336 MB from encode 300 on (allocator warm-up, then flat).
 * At load averages of 20-40 (2026-12-06) RSS moved +6 to +60 MB with heap, array buffers and live GPU buffers
 * flat, before and after that day's changes alike (llvmpipe's worker threads grow malloc arenas under
 * contention), so the bound sits well above that and still far below one leaked plan or pixel batch per
 * encode (240-400 MB over these 400 encodes).
 */
const RSS_GROWTH_BOUND = 96 * 2 ** 20;
const HEAP_GROWTH_BOUND = 4 * 2 ** 20;

// Memory is sampled every 25 encodes after a full collection, so RSS shows retained memory rather than how
// much garbage V8 let pile up: with collections left to V8, RSS moved ±60 MB between runs of this test.
const SAMPLE_EVERY = 25;

async function memory(): Promise<{ rss: number; heapUsed: number; arrayBuffers: number }> {
  // Twice, a loop turn apart: memory whose wrappers a collection found dead (GPU buffers' mapped ranges) is
  // released by finalizers after it, and one collection left up to ~3.5 MB of array buffers counted.
  collectGarbage();
  await new Promise((resolve) => setImmediate(resolve));
  collectGarbage();
  const { rss, heapUsed, arrayBuffers } = process.memoryUsage();
  return { rss, heapUsed, arrayBuffers };
}

const mb = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MB`;

describe('soak', () => {
  it(`${ENCODES} mixed image and text encodes leave GPU buffers, pipelines and RSS flat`, async () => {
    // A plan budget no plan fits: every change of forward shape drops the last plan and makes a new one.
    const model = await loadTiny({ planBudgetBytes: 0 });
    const gpu = model.model.gpu;
    const random = rng(7);
    // Prompts of fixed token length ("lesion number 0 4 2 3": CLIP splits digits), each new, so none is served from the text cache.
    const prompt = (i: number, k: number): string => `lesion number ${String(i * 4 + k).padStart(4, '0')}`;
    // Random ids with the EOT at `eot`: the text tower runs eot+1 positions.
    const randomTokens = (batch: number, eot: number): Int32Array => {
      const ids = new Int32Array(batch * 77);
      for (let b = 0; b < batch; b++) {
        ids[b * 77] = 49406;
        for (let t = 1; t < eot; t++) ids[b * 77 + t] = 1 + Math.floor(random.uniform() * 49000);
        ids[b * 77 + eot] = 49407;
      }
      return ids;
    };
    // Ten calls in a cycle, nine forward shapes: plans are made and freed all along.
    const cycle: ((i: number) => Promise<Float32Array[]>)[] = [
      (i) => model.encodeImage(IMAGE_PATHS[i % 4]!),
      (i) => model.encodeText(prompt(i, 0)),
      () => model.encodePixels(pixelBatch([0, 1]), 2),
      (i) => model.encodeText([prompt(i, 0), prompt(i, 1)]),
      () => model.encodeTokens(randomTokens(1, 20), 1),
      () => model.encodePixels(pixelBatch([2]), 1),
      (i) => model.encodeText([prompt(i, 0), prompt(i, 1), prompt(i, 2)]),
      () => model.encodeTokens(randomTokens(2, 10), 2),
      () => model.encodeTokens(tokenBatch([4]), 1),
      () => model.encodeTokens(randomTokens(1, 76), 1),
    ];
    let buffersAfterWarmUp = 0,
      pipelinesAfterWarmUp = 0;
    let afterWarmUp = await memory(),
      atEnd = afterWarmUp;
    const started = performance.now();
    try {
      for (let i = 1; i <= ENCODES; i++) {
        const rows = await cycle[i % cycle.length]!(i);
        expect(rows.every((r) => r.every(Number.isFinite))).toBe(true);
        if (i % SAMPLE_EVERY === 0) atEnd = await memory();
        if (i === WARM_UP) {
          buffersAfterWarmUp = gpu.liveBufferCount;
          pipelinesAfterWarmUp = gpu.pipelineCount;
          afterWarmUp = atEnd;
        }
      }
      const seconds = (performance.now() - started) / 1000;
      expect(gpu.liveBufferCount).toBe(buffersAfterWarmUp);
      expect(gpu.pipelineCount).toBe(pipelinesAfterWarmUp);
      expect(atEnd.rss - afterWarmUp.rss).toBeLessThan(RSS_GROWTH_BOUND);
      expect(atEnd.heapUsed - afterWarmUp.heapUsed).toBeLessThan(HEAP_GROWTH_BOUND);
      expect(atEnd.arrayBuffers - afterWarmUp.arrayBuffers).toBeLessThan(HEAP_GROWTH_BOUND);
      console.log(
        `soak: ${ENCODES} encodes in ${seconds.toFixed(1)} s; ${buffersAfterWarmUp} live GPU buffers after encode ${WARM_UP} and at the end; ` +
          `from encode ${WARM_UP} to the end: RSS ${mb(afterWarmUp.rss)} → ${mb(atEnd.rss)}, heap ${mb(afterWarmUp.heapUsed)} → ${mb(atEnd.heapUsed)}, ` +
          `array buffers ${mb(afterWarmUp.arrayBuffers)} → ${mb(atEnd.arrayBuffers)}`,
      );
      // Still right at the end of the run.
      expectMatches(await model.encodePixels(pixelBatch([0, 1, 2, 3]), 4), [0, 1, 2, 3].map(expectedImage));
      expectMatches(await model.encodeTokens(tokenBatch([0, 5]), 2), [0, 5].map(expectedText));
    } finally {
      model.dispose();
    }
  });
});
