// Seeded fuzzing of the two readers that take bytes from anywhere: the image header reader (and, on a
// subset, the whole decode and preprocessing) and the probe reader. Every case must end in a result or a
// UserError: never another exception, never a result above the pixel limit, never a probe that ranks NaN.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseProbe } from '../src/eval/probe.js';
import { UserError } from '../src/errors.js';
import { preprocessImage, readImageHeader } from '../src/image/index.js';
import { rng } from './helpers.js';

const FIXTURES = new URL('fixtures/image/src/', import.meta.url);
const SEEDS = [
  'gray.png',
  'rgba.png',
  'palette.png',
  'rgb16.png',
  's444.jpg',
  'progressive.jpg',
  'exif6.jpg',
  'anim.gif',
  'rgb.bmp',
  'lossless.webp',
  'lossy.webp',
  'lossless_rgba.webp',
].map((name) => new Uint8Array(readFileSync(new URL(name, FIXTURES))));
// A TIFF header (no fixture file): II*\0, IFD at 8 with width, height, samples per pixel.
const TIFF = Uint8Array.from([
  0x49, 0x49, 0x2a, 0, 8, 0, 0, 0, 3, 0, 0, 1, 3, 0, 1, 0, 0, 0, 64, 0, 0, 0, 1, 1, 3, 0, 1, 0, 0, 0, 48, 0, 0, 0, 0x15,
  1, 3, 0, 1, 0, 0, 0, 3, 0, 0, 0,
]);

type Random = ReturnType<typeof rng>;
const int = (r: Random, n: number): number => Math.floor(r.uniform() * n);

/** One mutated input: byte flips, overwritten 16/32-bit fields near the start (where sizes live), cuts, splices. */
function mutate(r: Random, seeds: readonly Uint8Array[]): Uint8Array {
  const seed = seeds[int(r, seeds.length)]!;
  const headerOnly = r.uniform() < 0.7;
  // Most cases keep only the first bytes (the header reader's domain); the rest keep the whole file.
  let bytes = seed.slice(0, headerOnly ? Math.min(seed.length, 64 + int(r, 200)) : seed.length);
  const edits = 1 + int(r, 4);
  for (let e = 0; e < edits; e++) {
    const kind = int(r, 5);
    const at = int(r, Math.min(bytes.length, kind === 4 ? bytes.length : 48));
    if (kind === 0) bytes[at] = int(r, 256);
    else if (kind === 1 && at + 2 <= bytes.length)
      new DataView(bytes.buffer).setUint16(at, [0, 1, 0xffff, int(r, 65536)][int(r, 4)]!, r.uniform() < 0.5);
    else if (kind === 2 && at + 4 <= bytes.length)
      new DataView(bytes.buffer).setUint32(
        at,
        [0, 0xffffffff, 0x7fffffff, int(r, 2 ** 32)][int(r, 4)]!,
        r.uniform() < 0.5,
      );
    else if (kind === 3) bytes = bytes.slice(0, at);
    else
      bytes = Uint8Array.from([
        ...bytes.subarray(0, at),
        ...Array.from({ length: int(r, 16) }, () => int(r, 256)),
        ...bytes.subarray(at),
      ]);
  }
  return bytes;
}

function outcome<T>(work: () => T): T | UserError {
  try {
    return work();
  } catch (error) {
    if (error instanceof UserError) return error;
    throw error; // anything else fails the test, with the case in the message below
  }
}

describe('fuzzing the image header reader', () => {
  it('12,000 mutated headers of every format: a header within the limit or a UserError', () => {
    const r = rng(2201);
    const limit = 1_000_000;
    const seeds = [...SEEDS, TIFF];
    const seen = { header: 0, refused: 0 };
    for (let i = 0; i < 12_000; i++) {
      const bytes = mutate(r, seeds);
      let result: ReturnType<typeof readImageHeader> | UserError;
      try {
        result = outcome(() => readImageHeader(bytes, `case-${i}`, { maxImagePixels: limit }));
      } catch (error) {
        throw new Error(`case ${i} (${Buffer.from(bytes.subarray(0, 40)).toString('hex')}) threw ${String(error)}`);
      }
      if (result instanceof UserError) {
        seen.refused++;
        expect(result.message).toMatch(/^(case-\d+|The image pixel limit)/);
        continue;
      }
      seen.header++;
      expect(Number.isInteger(result.width) && Number.isInteger(result.height)).toBe(true);
      expect(result.width).toBeGreaterThan(0);
      expect(result.height).toBeGreaterThan(0);
      expect(result.width * result.height).toBeLessThanOrEqual(limit);
    }
    // Both outcomes are exercised, not just one.
    expect(seen.header).toBeGreaterThan(1000);
    expect(seen.refused).toBeGreaterThan(1000);
  });

  it('600 mutated whole files through decode and preprocessing: pixels or a UserError', async () => {
    const r = rng(2202);
    let decoded = 0;
    for (let i = 0; i < 600; i++) {
      const seed = SEEDS[int(r, SEEDS.length)]!.slice();
      // Damage the body too: a few random bytes anywhere, sometimes a cut.
      for (let e = 0; e < 1 + int(r, 3); e++) seed[int(r, seed.length)] = int(r, 256);
      const bytes = r.uniform() < 0.2 ? seed.slice(0, int(r, seed.length)) : seed;
      let result: Float32Array | UserError;
      try {
        result = await preprocessImage(bytes, { size: 32, maxImagePixels: 1_000_000 }, `case-${i}`).catch(
          (e: unknown) => {
            if (e instanceof UserError) return e;
            throw e;
          },
        );
      } catch (error) {
        throw new Error(`case ${i} threw ${String(error)}`);
      }
      if (result instanceof Float32Array) {
        decoded++;
        expect(result.length).toBe(3 * 32 * 32);
        expect(result.every(Number.isFinite)).toBe(true);
      }
    }
    expect(decoded).toBeGreaterThan(50);
  });
});

describe('fuzzing the probe reader', () => {
  const linear = {
    format: 'whylesion-probe',
    version: 1,
    mode: 'linear',
    classes: ['nevus', 'melanoma', 'bcc'],
    normalize: true,
    weight: [
      [0.5, -1, 2, 0],
      [1, 1, -1, 0.25],
      [0, 0, 0, 1],
    ],
    bias: [0.1, -0.2, 0],
    training: { solver: 'adam' },
  };
  const concepts = {
    format: 'whylesion-probe',
    version: 1,
    mode: 'concepts',
    classes: ['nevus', 'melanoma'],
    normalize: true,
    concepts: ['dark', 'irregular', 'bleeding'],
    conceptEmbeddings: [
      [1, 0, 0, 0],
      [0, 1, 0, 0],
      [0, 0, 0.6, 0.8],
    ],
    weight: [
      [1, -1, 0.5],
      [-1, 2, 0],
    ],
    bias: [0, 0.3],
    model: 'tiny',
  };
  const VALUES: unknown[] = [
    'NaN',
    'Infinity',
    null,
    true,
    'x',
    '',
    [],
    {},
    [[]],
    [1, 2],
    -0,
    0,
    1e308,
    -1e308,
    5e-324,
    3,
    'melanoma',
    [null],
    { 0: 1 },
  ];

  function paths(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
    if (Array.isArray(value)) return [prefix, ...value.flatMap((v, i) => paths(v, [...prefix, i]))];
    if (value && typeof value === 'object')
      return [prefix, ...Object.entries(value).flatMap(([k, v]) => paths(v, [...prefix, k]))];
    return [prefix];
  }

  function mutateProbe(r: Random): string {
    const probe = structuredClone(r.uniform() < 0.5 ? linear : concepts) as Record<string, unknown>;
    for (let e = 0; e < 1 + int(r, 3); e++) {
      const all = paths(probe).filter((p) => p.length > 0);
      const path = all[int(r, all.length)]!;
      // biome-ignore lint/suspicious/noExplicitAny: walks an arbitrary JSON path of the probe document
      const parent = path.slice(0, -1).reduce<any>((node, key) => node[key], probe);
      const key = path[path.length - 1]!;
      const kind = int(r, 4);
      if (kind === 0) parent[key] = structuredClone(VALUES[int(r, VALUES.length)]);
      else if (kind === 1 && Array.isArray(parent)) parent.splice(key as number, 1);
      else if (kind === 1) delete parent[key];
      else if (kind === 2 && Array.isArray(parent[key]))
        parent[key].push(structuredClone(VALUES[int(r, VALUES.length)]));
      else if (typeof parent[key] === 'number') parent[key] = parent[key] * [1e300, -1, 0, 1e-300][int(r, 4)]!;
    }
    let text = JSON.stringify(probe);
    const textual = int(r, 10);
    if (textual === 0)
      text = text.replace(/(-?\d+(\.\d+)?)/, '1e999'); // JSON reads this as Infinity
    else if (textual === 1) text = text.slice(0, int(r, text.length));
    else if (textual === 2) {
      const at = int(r, text.length);
      text = text.slice(0, at) + String.fromCharCode(32 + int(r, 95)) + text.slice(at + 1);
    }
    return text;
  }

  it('12,000 mutated probes: a probe whose predictions are finite, or a UserError', () => {
    const r = rng(2203);
    const seen = { probe: 0, refused: 0 };
    for (let i = 0; i < 12_000; i++) {
      const text = mutateProbe(r);
      let result: ReturnType<typeof parseProbe> | UserError;
      try {
        result = outcome(() => parseProbe(text, 'fuzz.json'));
        if (result instanceof UserError) {
          seen.refused++;
          continue;
        }
        seen.probe++;
        const dim =
          result.mode === 'linear' ? result.file.weight[0]!.length : result.file.conceptEmbeddings![0]!.length;
        const embedding = Float32Array.from({ length: dim }, () => r.normal());
        const prediction = outcome(() =>
          result instanceof UserError ? undefined : (result as ReturnType<typeof parseProbe>).predict([embedding]),
        );
        if (prediction instanceof UserError || prediction === undefined) continue;
        const [probabilities] = prediction.probabilities;
        if (probabilities === undefined) throw new Error('missing probabilities');
        expect(probabilities.every(Number.isFinite)).toBe(true);
        expect(Math.abs(probabilities.reduce((a, b) => a + b, 0) - 1)).toBeLessThan(1e-9);
        expect(result.classes).toContain(prediction.labels[0]);
      } catch (error) {
        throw new Error(`case ${i} (${text.slice(0, 300)}) failed: ${String(error)}`);
      }
    }
    expect(seen.probe).toBeGreaterThan(500);
    expect(seen.refused).toBeGreaterThan(5000);
  });
});
