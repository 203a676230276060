import { describe, expect, it, vi } from 'vitest';
import { UserError } from '../src/errors.js';
import { Gpu } from '../src/runtime/gpu.js';
import {
  bits,
  cases,
  expectedImage,
  expectedText,
  expectMatches,
  IMAGE_PATHS,
  loadTiny,
  pixelBatch,
  tokenBatch,
} from './reliability-shared.js';

const DEVICE_LOST = /GPU device was lost .*load the model again/;

/** Settles a promise into its error (or undefined), so several pending calls can be checked after the fact. */
const failure = (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  );

describe('device loss', () => {
  // Two moments of loss inside one forward: just after its submission, and while its readback (mapAsync) waits.
  const loseDevice = {
    // Each returns how many forwards reached that moment.
    'after submit': (gpu: Gpu): (() => number) => {
      const queue = gpu.device.queue;
      const submit = queue.submit.bind(queue);
      const spy = vi.spyOn(queue, 'submit').mockImplementationOnce((buffers) => {
        submit(buffers);
        gpu.device.destroy();
      });
      return () => spy.mock.calls.length;
    },
    'during readback': (gpu: Gpu): (() => number) => {
      const device = gpu.device;
      const createBuffer = device.createBuffer.bind(device);
      let readbacks = 0;
      vi.spyOn(device, 'createBuffer').mockImplementation((descriptor) => {
        const buffer = createBuffer(descriptor);
        if (descriptor.usage & GPUBufferUsage.MAP_READ) {
          readbacks++;
          const mapAsync = buffer.mapAsync.bind(buffer);
          buffer.mapAsync = (...args) => {
            const mapped = mapAsync(...args);
            device.destroy();
            return mapped;
          };
        }
        return buffer;
      });
      return () => readbacks;
    },
  };

  for (const [moment, lose] of Object.entries(loseDevice)) {
    it(`a loss ${moment}: the forward in flight, the calls queued behind it and every later call reject naming device loss; a new load works`, async () => {
      const model = await loadTiny();
      const gpu = model.model.gpu;
      await model.encodeImage(IMAGE_PATHS[0]!); // warm: the vision plan exists, so the next forward goes straight to submit
      const forwardsReached = lose(gpu);
      const inFlight = failure(model.encodeImage(IMAGE_PATHS[1]!));
      const queuedText = failure(model.encodeText(['bleeding']));
      const queuedTokens = failure(model.encodeTokens(tokenBatch([0, 1]), 2));
      const errors = await Promise.all([inFlight, queuedText, queuedTokens]);
      expect(forwardsReached()).toBe(1); // the loss hit the first forward; the queued ones never ran
      for (const error of errors) {
        expect(error).toBeInstanceOf(Error);
        expect((error as Error).message).toMatch(DEVICE_LOST);
        expect((error as Error).message).toMatch(/device was destroyed/);
      }
      // A call after the loss fails the same way, before touching the GPU.
      await expect(model.encodePixels(pixelBatch([2]), 1)).rejects.toThrow(DEVICE_LOST);
      expect(forwardsReached()).toBe(1);
      expect(() => model.dispose()).not.toThrow();

      const again = await loadTiny();
      try {
        expectMatches(
          await again.encodeImage(IMAGE_PATHS),
          cases.images.map((_, i) => expectedImage(i)),
        );
        expectMatches(
          await again.encodeText(cases.texts),
          cases.texts.map((_, i) => expectedText(i)),
        );
      } finally {
        again.dispose();
      }
    });
  }

  it('a loss between calls, with nothing in flight, fails the next call at once', async () => {
    const model = await loadTiny();
    await model.encodeText('dark brown');
    model.model.gpu.device.destroy();
    const started = performance.now();
    await expect(model.encodeText('irregular shape')).rejects.toThrow(DEVICE_LOST);
    await expect(model.encodeImage(IMAGE_PATHS[0]!)).rejects.toThrow(DEVICE_LOST);
    expect(performance.now() - started).toBeLessThan(5000);
    model.dispose();
  });

  it('a loss while weights upload fails the load with the same message', async () => {
    const gpu = await Gpu.create();
    let uploaded = 0;
    const load = loadTiny({
      device: gpu.device,
      onProgress: (p) => {
        if (p.stage === 'weights' && ++uploaded === 10) gpu.device.destroy();
      },
    });
    await expect(load).rejects.toThrow(DEVICE_LOST);
    expect(uploaded).toBeGreaterThanOrEqual(10);
    gpu.destroy();
  });
});

describe('concurrency', () => {
  it('8 overlapping encodes of every kind and batch size give bitwise the rows of the same calls made one by one', async () => {
    // Mixed batch sizes share one activation arena that grows under queued calls; with a plan budget of 0
    // bytes, plans are also evicted while others queue.
    const calls: ((m: Awaited<ReturnType<typeof loadTiny>>) => Promise<Float32Array[]>)[] = [
      (m) => m.encodeImage(IMAGE_PATHS.slice(0, 2)),
      (m) => m.encodeText(cases.texts.slice(0, 3)),
      (m) => m.encodePixels(pixelBatch([0, 1, 2, 3]), 4),
      (m) => m.encodeTokens(tokenBatch([0, 1, 2, 3, 4, 5, 6]), 7),
      (m) => m.encodeImage(IMAGE_PATHS[3]!),
      (m) => m.encodeText([...cases.texts.slice(3), 'bleeding']), // 'bleeding' is also in flight in call 2
      (m) => m.encodePixels(pixelBatch([2]), 1),
      (m) => m.encodeTokens(tokenBatch([5, 4]), 2),
    ];
    const sequentialModel = await loadTiny();
    const sequential: Float32Array[][] = [];
    for (const call of calls) sequential.push(await call(sequentialModel));
    sequentialModel.dispose();

    const model = await loadTiny({ planBudgetBytes: 0 });
    try {
      const overlapping = await Promise.all(calls.map((call) => call(model)));
      overlapping.forEach((rows, i) => {
        expect(bits(rows), `call ${i + 1}`).toEqual(bits(sequential[i]!));
      });
      // And the rows are the right ones, not merely repeatable.
      expectMatches(overlapping[2]!, [0, 1, 2, 3].map(expectedImage));
      expectMatches(overlapping[3]!, [0, 1, 2, 3, 4, 5, 6].map(expectedText));
      expectMatches(overlapping[5]!, [3, 4, 5, 6, 1].map(expectedText));
    } finally {
      model.dispose();
    }
  });
});

describe('batch splitting', () => {
  it('with maxBatch 2, batches of 5 images and 7 prompts run as forwards of at most 2 and give the rows of single calls', async () => {
    const capped = await loadTiny({ maxBatch: 2 });
    const single = await loadTiny({ maxBatch: 1 });
    try {
      expect(capped.model.maxBatch('image')).toBe(2);
      expect(capped.model.maxBatch('text')).toBe(2);
      const runs = vi.spyOn(capped.model.gpu, 'run');
      const images = [0, 1, 2, 3, 0];
      const split = await capped.encodePixels(pixelBatch(images), 5);
      expect(runs.mock.calls.map(([label]) => label)).toEqual(['vision[B=2]', 'vision[B=2]', 'vision[B=1]']);
      const prompts = [0, 1, 2, 3, 4, 5, 6];
      const splitText = await capped.encodeTokens(tokenBatch(prompts), 7);
      expect(runs).toHaveBeenCalledTimes(3 + 4);

      const one = await single.encodePixels(pixelBatch(images), 5);
      const oneText = await single.encodeTokens(tokenBatch(prompts), 7);
      // Rows do not depend on which other rows share a forward.
      expect(bits(split)).toEqual(bits(one));
      expect(bits(splitText)).toEqual(bits(oneText));
      expectMatches(split, images.map(expectedImage));
      expectMatches(splitText, prompts.map(expectedText));
    } finally {
      capped.dispose();
      single.dispose();
    }
  });

  it('refuses a maxBatch that is not a positive whole number', async () => {
    for (const maxBatch of [0, 1.5, Number.NaN]) {
      const error = await failure(loadTiny({ maxBatch }));
      expect(error, String(maxBatch)).toBeInstanceOf(UserError);
      expect((error as Error).message).toMatch(/maximum batch .* is not a positive whole number/);
    }
  });
});
