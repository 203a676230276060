import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import { parseTorchPickle } from '../src/io/pickle.js';
import { SafetensorsSource, encodeSafetensors } from '../src/io/safetensors.js';
import { BytesAccess, type TensorSource } from '../src/io/tensor-source.js';
import { openTorchBin } from '../src/io/torch-bin.js';
import { readZipDirectory } from '../src/io/zip.js';

const FIXTURES = join(import.meta.dirname, 'fixtures', 'weights');
const ROUNDS = 2000;

/** mulberry32: a small seeded generator so failures reproduce. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A copy of `good` with a few random edits inside its first `focus` bytes: byte flips, digit swaps, or a truncation. */
function mutate(good: Uint8Array, focus: number, rand: () => number): Uint8Array {
  const pick = (n: number) => Math.floor(rand() * n);
  if (rand() < 0.15) return good.slice(0, pick(good.length));
  const bytes = good.slice();
  const edits = 1 + pick(4);
  for (let e = 0; e < edits; e++) {
    const at = pick(Math.min(focus, bytes.length));
    const isDigit = bytes[at]! >= 0x30 && bytes[at]! <= 0x39;
    // Swapping digits keeps JSON well-formed and reaches the offset/shape checks; flips reach everything else.
    bytes[at] = isDigit && rand() < 0.7 ? 0x30 + pick(10) : rand() < 0.5 ? pick(256) : bytes[at]! ^ (1 << pick(8));
  }
  return bytes;
}

async function readEverything(source: TensorSource): Promise<void> {
  for (const name of source.tensors.keys()) {
    await source.readF32(name);
    await source.readF16(name);
  }
}

/** Runs `attempt` on each mutation; only UserErrors may escape, and every run must finish. */
async function fuzz(
  good: Uint8Array,
  focus: number,
  seed: number,
  attempt: (bytes: Uint8Array) => Promise<void>,
): Promise<{ refused: number }> {
  const rand = random(seed);
  let refused = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const bytes = mutate(good, focus, rand);
    try {
      await attempt(bytes);
    } catch (error) {
      if (!(error instanceof UserError)) throw new Error(`round ${round}: ${String(error)}`, { cause: error });
      refused++;
    }
  }
  return { refused };
}

describe('fuzzing the readers with damaged files', () => {
  it('the safetensors header parser only ever raises UserErrors', async () => {
    const good = encodeSafetensors(
      [
        { name: 'w', dtype: 'F32', shape: [2, 3], data: Float32Array.of(1, 2, 3, 4, 5, 6) },
        { name: 'h', dtype: 'F16', shape: [4], data: Uint16Array.of(0x3c00, 0x7c00, 0x0001, 0x8000) },
        { name: 'b', dtype: 'BF16', shape: [2], data: Uint16Array.of(0x3f80, 0x7fc0) },
      ],
      { format: 'pt' },
    );
    const headerEnd = 8 + Number(new DataView(good.buffer).getBigUint64(0, true));
    const { refused } = await fuzz(good, headerEnd, 1, async (bytes) =>
      readEverything(await SafetensorsSource.fromBytes(bytes)),
    );
    // Most damage must be caught, yet some edits (in metadata text, a digit swapped for itself) leave a valid file.
    expect(refused).toBeGreaterThan(ROUNDS / 2);
    expect(refused).toBeLessThan(ROUNDS);
  });

  it('the pickle reader only ever raises UserErrors', async () => {
    const archive = new Uint8Array(await readFile(join(FIXTURES, 'basic-f32.bin')));
    const entries = await readZipDirectory(new BytesAccess(archive), 'basic-f32.bin');
    const pkl = entries.get('basic-f32/data.pkl')!;
    const pickle = archive.slice(pkl.dataStart, pkl.dataStart + pkl.size);
    expect(parseTorchPickle(pickle, 'good').size).toBe(7);
    const { refused } = await fuzz(
      pickle,
      pickle.length,
      2,
      async (bytes) => void parseTorchPickle(bytes, 'fuzzed.pkl'),
    );
    expect(refused).toBeGreaterThan(ROUNDS / 2);
  });

  it('the zip + pickle .bin reader only ever raises UserErrors', async () => {
    const archive = new Uint8Array(await readFile(join(FIXTURES, 'basic-f16.bin')));
    const { refused } = await fuzz(archive, archive.length, 3, async (bytes) =>
      readEverything(await openTorchBin(new BytesAccess(bytes, 'fuzzed.bin'), 'fuzzed.bin')),
    );
    expect(refused).toBeGreaterThan(0);
  });
});
