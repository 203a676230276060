/**
 * Gpu.profile on a device without timestamp queries (as Chromium's OpenGL ES backend offers): one submit per
 * dispatch timed on the wall clock, the same dispatches in the same order as the timestamp profile.
 */
import { describe, expect, it } from 'vitest';
import { loadModel } from '../src/api/model.js';
import { platform } from '../src/platform/index.js';
import { TINY_MODEL } from './helpers.js';

describe('profile without timestamp queries', () => {
  it('times every dispatch of an image forward, in order, and leaves the forward unchanged', async () => {
    const gpu = await platform.webgpu();
    const adapter = await gpu.requestAdapter();
    if (!adapter) throw new Error('no WebGPU adapter');
    const device = await adapter.requestDevice({ requiredFeatures: [] });
    expect(device.features.has('timestamp-query')).toBe(false);
    const plain = await loadModel(TINY_MODEL, { device, kernels: 'portable', kernelTuning: 'rules' });
    const timed = await loadModel(TINY_MODEL, { kernels: 'portable', kernelTuning: 'rules' });
    try {
      expect(plain.model.gpu.hasTimestamps).toBe(false);
      const image = new URL('fixtures/openclip-tiny/images/lesion_rgb.png', import.meta.url).pathname;
      const pixels = await plain.preprocess(image);
      const [before] = await plain.encodePixels(pixels, 1);
      const wallClock = await plain.model.profilePixels(pixels, 1);
      const [after] = await plain.encodePixels(pixels, 1);
      expect(after).toEqual(before);
      const reference = timed.model.gpu.hasTimestamps ? await timed.model.profilePixels(pixels, 1) : undefined;
      if (reference) expect(wallClock.map((t) => t.label)).toEqual(reference.map((t) => t.label));
      expect(wallClock.length).toBeGreaterThan(10);
      expect(wallClock.every((t) => Number.isFinite(t.ms) && t.ms >= 0)).toBe(true);
    } finally {
      plain.dispose();
      timed.dispose();
      device.destroy();
    }
  }, 180_000);
});
