// The shipped PyTorch reference (reference/clip_reference.py, the reference side of `whylesion parity`) on the six
// open_clip knob fixtures: every knob it implements in plain torch must give what real open_clip 2.24 computed
// (test/fixtures/openclip-knobs, made by reference/make_knob_fixtures.py).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { readNpy } from '../src/io/npy.js';
import { relativeError } from './helpers.js';

const repoRoot = fileURLToPath(new URL('../', import.meta.url));
const KNOBS = join(repoRoot, 'test/fixtures/openclip-knobs');
const FIXTURES = readdirSync(KNOBS).filter((name) => statSync(join(KNOBS, name)).isDirectory());

const torchMissing = ((): string | undefined => {
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import torch, numpy'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return '/usr/bin/python3 has no torch/numpy (bash scripts/setup-webgpu.sh --with-python installs them)';
  }
})();

function load(path: string): { shape: number[]; data: Float32Array } {
  const array = readNpy(new Uint8Array(readFileSync(path)), path);
  if (array.dtype !== 'float32') throw new Error(`${path}: expected float32, got ${array.dtype}`);
  return { shape: array.shape, data: array.data as Float32Array };
}

const work = mkdtempSync(join(tmpdir(), 'whylesion-reference-knobs-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('clip_reference.py on the open_clip knob fixtures equals real open_clip 2.24', () => {
  it('covers all six fixtures', () => {
    expect(FIXTURES).toHaveLength(6);
  });

  for (const name of FIXTURES) {
    it(`${name}: image and text embeddings within 2e-6 of the largest value`, (ctx) => {
      if (torchMissing) ctx.skip(torchMissing);
      const dir = join(KNOBS, name);
      const out = join(work, name);
      execFileSync(
        '/usr/bin/python3',
        [
          join(repoRoot, 'reference/clip_reference.py'),
          '--model',
          dir,
          '--pixels',
          join(dir, 'pixels.npy'),
          '--tokens',
          join(dir, 'tokens.json'),
          '--out',
          out,
          '--threads',
          '1',
        ],
        { stdio: ['ignore', 'ignore', 'inherit'] },
      );
      for (const tower of ['image', 'text']) {
        const got = load(join(out, `${tower}_embeddings_raw.npy`));
        const want = load(join(dir, `${tower}_embeddings_raw.npy`));
        expect(got.shape, `${name} ${tower}`).toEqual(want.shape);
        // Measured: 1.2e-7 .. 4.1e-7 (float32 rounding); test/openclip-knobs.test.ts shows each knob moves far more.
        expect(relativeError(got.data, want.data), `${name} ${tower}`).toBeLessThanOrEqual(2e-6);
      }
    });
  }
});
