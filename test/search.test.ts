import { cpSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EMBEDDINGS_FORMAT, type EmbeddingMeta } from '../src/io/embedding-output.js';
import { writeEmbeddingOutput } from '../src/io/embedding-output.js';
import type { ModelIdentity } from '../src/io/identity.js';
import { readNpy } from '../src/io/npy.js';
import { searchEmbeddings, TopK } from '../src/search/search.js';
import { UserError } from '../src/errors.js';
import { CLI_ENV, randomArray, runCli, TINY_IMAGES, TINY_MODEL } from './helpers.js';

const MODEL = TINY_MODEL;
const IMAGES = TINY_IMAGES;
const env = CLI_ENV;
const whylesion = (...args: string[]) => runCli(args, env);
const FORMATS = ['npy', 'jsonl', 'parquet'] as const;
const IDENTITY: ModelIdentity = {
  weights: `sha256:${'a'.repeat(64)}`,
  config: `sha256:${'b'.repeat(64)}`,
  dtype: 'f32',
  source: 'synthetic',
};

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'whylesion-search-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The exact order: cosine in float64, higher first, equal cosines by lower row. */
function reference(data: Float32Array, dim: number, query: ArrayLike<number>): { row: number; score: number }[] {
  const rows = data.length / dim;
  let qq = 0;
  for (let j = 0; j < dim; j++) qq += query[j]! * query[j]!;
  const scored = Array.from({ length: rows }, (_, row) => {
    let dot = 0,
      xx = 0;
    for (let j = 0; j < dim; j++) {
      dot += data[row * dim + j]! * query[j]!;
      xx += data[row * dim + j]! * data[row * dim + j]!;
    }
    return { row, score: xx > 0 ? dot / Math.sqrt(xx * qq) : 0 };
  });
  return scored.sort((a, b) => b.score - a.score || a.row - b.row);
}

async function syntheticIndex(
  out: string,
  data: Float32Array,
  dim: number,
  name = (i: number) => `img/${i}.png`,
): Promise<void> {
  const rows = data.length / dim;
  const files = Array.from({ length: rows }, (_, i) => name(i));
  const meta: Omit<EmbeddingMeta, 'dataSha256'> = {
    format: EMBEDDINGS_FORMAT,
    model: IDENTITY,
    normalized: false,
    exifRotate: false,
    dim,
    rows,
    listing: { total: rows, sha256: '0'.repeat(64), shard: null },
    files,
    indices: files.map((_, i) => i),
    skipped: [],
  };
  async function* batches() {
    for (let first = 0; first < rows; first += 700)
      yield {
        files: files.slice(first, first + 700),
        data: data.slice(first * dim, Math.min(rows, first + 700) * dim),
      };
  }
  await writeEmbeddingOutput(out, meta, batches());
}

describe('searchEmbeddings (library)', () => {
  const dim = 36,
    rows = 3000,
    top = 25;
  const data = randomArray(rows * dim, 7);
  // Exact ties: rows 2999, 1500 and 10 are copies of row 600 (and 1200 a scaled copy: same cosine); row 42 is all zero.
  for (const copy of [2999, 1500, 10]) data.copyWithin(copy * dim, 600 * dim, 601 * dim);
  for (let j = 0; j < dim; j++) data[1200 * dim + j] = data[600 * dim + j]! * 4;
  data.fill(0, 42 * dim, 43 * dim);
  const query = Float32Array.from(data.subarray(600 * dim, 601 * dim), (v, j) => v + (j % 3 === 0 ? 0.3 : -0.1));

  it('top-K over .npy, .jsonl and .parquet, in this thread and in 2 workers, equals the float64 brute force; ties by row', async () => {
    const want = reference(data, dim, query);
    // The f32 kernel and the f64 reference agree on the order only where neighbours differ by more than rounding:
    // check that this data set has no such near-tie in the top K other than the exact ties it was built with.
    const tied = new Set([10, 600, 1200, 1500, 2999]);
    for (let i = 0; i < top; i++)
      if (!(tied.has(want[i]!.row) && tied.has(want[i + 1]!.row)))
        expect(want[i]!.score - want[i + 1]!.score).toBeGreaterThan(1e-5);
    expect(want.slice(0, 5).map((w) => w.row)).toEqual([10, 600, 1200, 1500, 2999]);
    for (const format of FORMATS) {
      const out = join(work, `synthetic.${format}`);
      await syntheticIndex(out, data, dim);
      const runs =
        format === 'npy'
          ? [{ threads: 1 }, { threads: 2, workerMinBytes: 0 }, { threads: 3, workerMinBytes: 0 }]
          : [{}];
      for (const options of runs) {
        const { hits } = await searchEmbeddings(out, query, { top, model: IDENTITY, ...options });
        expect(
          hits.map((h) => h.row),
          `${format} ${JSON.stringify(options)}`,
        ).toEqual(want.slice(0, top).map((w) => w.row));
        hits.forEach((h, i) => {
          expect(Math.abs(h.score - want[i]!.score)).toBeLessThan(1e-6);
          expect(h.rank).toBe(i + 1);
          expect(h.file).toBe(`img/${h.row}.png`);
          expect(h.index).toBe(h.row);
        });
      }
    }
    // The whole index: the zero row scores 0, all rows come back once.
    const all = (
      await searchEmbeddings(join(work, 'synthetic.npy'), query, { top: rows + 5, threads: 2, workerMinBytes: 0 })
    ).hits;
    expect(all).toHaveLength(rows);
    expect(all.find((h) => h.row === 42)!.score).toBe(0);
    expect(new Set(all.map((h) => h.row)).size).toBe(rows);
  });

  it('names the hits from the sidecar without parsing it whole, whatever characters the names hold', async () => {
    const out = join(work, 'names.npy');
    const odd = ['a "quoted" \\\\ name\\.png', 'x],"indices":[1,2].png', 'ünï\u2028cödé, ok.png', '\\"\\.png'];
    await syntheticIndex(out, data, dim, (i) => (i % 700 < odd.length ? `${i}/${odd[i % 700]}` : `img/${i}.png`));
    const meta = JSON.parse(readFileSync(`${out}.meta.json`, 'utf8')) as EmbeddingMeta;
    const { hits } = await searchEmbeddings(out, query, { top: rows });
    for (const hit of hits) expect(hit.file).toBe(meta.files[hit.row]);
    expect(hits.filter((h) => odd.some((o) => h.file.endsWith(o)))).toHaveLength(odd.length * 5);
  });

  it('TopK keeps the K best, equal scores in row order whatever the arrival order, never NaN', () => {
    const k = new TopK(3);
    for (const [score, row] of [
      [0.5, 9],
      [0.9, 4],
      [0.5, 2],
      [Number.NaN, 0],
      [0.5, 7],
      [0.1, 1],
    ] as const)
      k.offer(score, row);
    expect(k.sorted()).toEqual([
      { score: 0.9, row: 4 },
      { score: 0.5, row: 2 },
      { score: 0.5, row: 7 },
    ]);
  });

  it('refuses a query of another model, of another width, and an index whose data disagrees with its sidecar', async () => {
    const out = join(work, 'synthetic.npy');
    await expect(searchEmbeddings(out, query, { model: { ...IDENTITY, dtype: 'f16' } })).rejects.toThrow(
      /was embedded by another model/,
    );
    await expect(searchEmbeddings(out, query.subarray(1))).rejects.toThrow(
      /The query has 35 values but .* holds rows of 36/,
    );
    const short = join(work, 'short.npy');
    cpSync(out, short);
    cpSync(`${out}.meta.json`, `${short}.meta.json`);
    truncateSync(short, readFileSync(out).length - dim * 4);
    const error = await searchEmbeddings(short, query).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toMatch(
      /short\.npy is \d+ bytes long, not \d+, but .* says 3000 rows of 36 values/,
    );
  });
});

describe('whylesion search (CLI, tiny model)', () => {
  it('--text over .npy, .jsonl and .parquet lists the rows the float64 brute force ranks first; another model is refused', async () => {
    const corpus = join(work, 'corpus');
    cpSync(IMAGES, corpus, { recursive: true });
    for (const format of FORMATS)
      expect(
        (await whylesion('embed', corpus, '--out', join(work, `tiny.${format}`), '--model', MODEL, '-q')).code,
      ).toBe(0);
    const text = 'a dark irregular lesion';
    const [query] = (
      JSON.parse((await whylesion('embed', '--text', text, '--model', MODEL, '--json')).stdout) as { text: number[][] }
    ).text;
    if (query === undefined) throw new Error('missing query');
    const npy = readNpy(readFileSync(join(work, 'tiny.npy')));
    const want = reference(npy.data as Float32Array, npy.shape[1]!, query);
    const files = (JSON.parse(readFileSync(join(work, 'tiny.npy.meta.json'), 'utf8')) as EmbeddingMeta).files;
    for (const format of FORMATS) {
      const result = await whylesion(
        'search',
        join(work, `tiny.${format}`),
        '--text',
        text,
        '--top',
        '3',
        '--model',
        MODEL,
        '--json',
      );
      expect(result.code, result.stderr).toBe(0);
      const { hits } = JSON.parse(result.stdout) as {
        hits: { rank: number; row: number; file: string; score: number }[];
      };
      expect(hits.map((h) => h.row)).toEqual(want.slice(0, 3).map((w) => w.row));
      hits.forEach((h, i) => {
        expect(h.file).toBe(files[h.row]);
        expect(Math.abs(h.score - want[i]!.score)).toBeLessThan(1e-5);
      });
    }
    const plain = await whylesion(
      'search',
      join(work, 'tiny.npy'),
      '--image',
      join(IMAGES, 'lesion_rgb.png'),
      '--top',
      '2',
      '--model',
      MODEL,
    );
    expect(plain.code, plain.stderr).toBe(0);
    const lines = plain.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^1\t1\.0000\d\d\t.*lesion_rgb\.png$/); // an image is its own nearest row

    const other = join(work, 'other.npy');
    cpSync(join(work, 'tiny.npy'), other);
    const meta = JSON.parse(readFileSync(join(work, 'tiny.npy.meta.json'), 'utf8')) as EmbeddingMeta;
    meta.model.weights = `sha256:${'9'.repeat(64)}`;
    writeFileSync(`${other}.meta.json`, `${JSON.stringify(meta)}\n`);
    const refused = await whylesion('search', other, '--text', text, '--model', MODEL);
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim()).toMatch(
      /^whylesion: \S*other\.npy was embedded by another model \(.*\) than --model's \(.*\); search it with the model that embedded it\.$/,
    );
    expect(refused.stdout).toBe('');
  });
});
