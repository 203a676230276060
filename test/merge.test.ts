import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Field,
  FixedSizeList,
  Float32,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  Table,
  tableToIPC,
  Utf8,
  vectorFromArray,
} from 'apache-arrow';
import * as parquetWasm from 'parquet-wasm/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EmbeddingMeta } from '../src/io/embedding-output.js';
import { readNpy, writeNpy } from '../src/io/npy.js';
import { readParquetEmbeddings } from '../src/io/parquet.js';
import { CLI_ENV, runCli, TINY_IMAGES, TINY_MODEL } from './helpers.js';

const MODEL = TINY_MODEL;
const IMAGES = TINY_IMAGES;
const env = CLI_ENV;
const whylesion = (...args: string[]) => runCli(args, env);
const FORMATS = ['npy', 'jsonl', 'parquet'] as const;

let work: string, corpus: string;
const whole = (format: string) => join(work, `whole.${format}`);
/** The three shards of the corpus, each in another format (so merge also mixes formats) and split another way. */
const parts = (): [string, string, string] => [
  join(work, 'part0.jsonl'),
  join(work, 'part1.parquet'),
  join(work, 'part2.npy'),
];
const readMeta = (out: string) => JSON.parse(readFileSync(`${out}.meta.json`, 'utf8')) as EmbeddingMeta;
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'whylesion-merge-'));
  corpus = join(work, 'corpus');
  for (let i = 0; i < 2; i++) cpSync(IMAGES, join(corpus, `set${i}`), { recursive: true });
  writeFileSync(join(corpus, 'set0', 'broken.png'), 'not an image'); // a skipped file: 9 listed, 8 rows
  for (const format of FORMATS)
    expect((await whylesion('embed', corpus, '--out', whole(format), '--model', MODEL, '-q')).code).toBe(0);
  // Shard 0 by --shard i/n, shard 1 as pod 1 of a Kubernetes Indexed Job, shard 2 as task 7 of a Slurm array 5-7.
  const [a, b, c] = parts();
  if (a === undefined || b === undefined || c === undefined) throw new Error('missing a, b, c');
  expect((await whylesion('embed', corpus, '--out', a, '--shard', '0/3', '--model', MODEL, '-q')).code).toBe(0);
  expect(
    (
      await runCli(['embed', corpus, '--out', b, '--shard', 'auto', '--shards', '3', '--model', MODEL, '-q'], {
        ...env,
        JOB_COMPLETION_INDEX: '1',
      })
    ).code,
  ).toBe(0);
  const slurm = {
    SLURM_ARRAY_TASK_ID: '7',
    SLURM_ARRAY_TASK_MIN: '5',
    SLURM_ARRAY_TASK_MAX: '7',
    SLURM_ARRAY_TASK_COUNT: '3',
  };
  expect(
    (await runCli(['embed', corpus, '--out', c, '--shard', 'auto', '--model', MODEL, '-q'], { ...env, ...slurm })).code,
  ).toBe(0);
}, 600_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Runs merge expecting a refusal: one sentence, exit 1, and nothing at --out (nor a temporary beside it). */
async function refused(out: string, ...partPaths: string[]): Promise<string> {
  const result = await whylesion('merge', '--out', out, ...partPaths);
  expect(result.code, result.stderr).toBe(1);
  const message = result.stderr.trim();
  expect(message).toMatch(/^whylesion: [^\n]+$/);
  expect(message.replace(/^whylesion: /, ''), 'one sentence').not.toMatch(/\.\s+[A-Z]/);
  expect(message).not.toMatch(/\n\s+at /);
  expect(existsSync(out)).toBe(false);
  expect(existsSync(`${out}.meta.json`)).toBe(false);
  expect(readdirSync(work).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  return message;
}

describe('whylesion merge', () => {
  it('embeds with a skipped file record it with its listing position', () => {
    const meta = readMeta(whole('npy'));
    expect(meta.rows).toBe(8);
    expect(meta.listing.total).toBe(9);
    expect(meta.listing.shard).toBeNull();
    expect(meta.skipped.map((s) => s.file.split('/').pop())).toEqual(['broken.png']);
    expect([...meta.indices, meta.skipped[0]!.index].sort((a, b) => a - b)).toEqual([...Array(9).keys()]);
    expect(meta.dataSha256).toBe(sha256(readFileSync(whole('npy'))));
    expect(parts().map((p) => readMeta(p).listing.shard)).toEqual([0, 1, 2].map((index) => ({ index, count: 3 })));
  });

  for (const format of FORMATS) {
    it(`3 shards (jsonl, parquet, npy) merged in any order to .${format} are byte-identical to one unsharded embed`, async () => {
      const out = join(work, `merged.${format}`);
      const [a, b, c] = parts();
      if (a === undefined || c === undefined) throw new Error('missing a, c');
      const result = await whylesion('merge', '--out', out, c, a, b);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stderr).toMatch(/Merged 3 part\(s\), 8 row\(s\) \(1 file\(s\) skipped by embed\)/);
      expect(readFileSync(out).equals(readFileSync(whole(format)))).toBe(true);
      expect(readFileSync(`${out}.meta.json`, 'utf8')).toBe(readFileSync(`${whole(format)}.meta.json`, 'utf8'));
    });
  }

  it('Parquet read back by our reader equals the .npy rows exactly, with the sidecar in its key-value metadata', async () => {
    const npy = readNpy(readFileSync(whole('npy')));
    const parquet = await readParquetEmbeddings(whole('parquet'));
    const meta = readMeta(whole('parquet'));
    expect(parquet.dim).toBe(npy.shape[1]);
    expect(parquet.files).toEqual(meta.files);
    expect(Buffer.from(parquet.data.buffer).equals(Buffer.from((npy.data as Float32Array).buffer))).toBe(true);
    const { files: _f, indices: _i, skipped: _s, dataSha256: _d, ...rest } = meta;
    expect(JSON.stringify(parquet.keyValue)).toBe(JSON.stringify(rest));
  });

  it('refuses a part embedded by another model', async () => {
    const [a, b, c] = parts();
    if (b === undefined || c === undefined || a === undefined) throw new Error('missing b, c, a');
    const other = join(work, 'other-model.npy');
    cpSync(c, other);
    const meta = readMeta(c);
    meta.model.weights = `sha256:${'0'.repeat(64)}`;
    writeFileSync(`${other}.meta.json`, `${JSON.stringify(meta)}\n`);
    expect(await refused(join(work, 'x.npy'), a, b, other)).toMatch(/other-model\.npy was embedded by another model/);
  });

  it('refuses a missing shard and an overlapping one', async () => {
    const [a, b, c] = parts();
    if (c === undefined || b === undefined || a === undefined) throw new Error('missing c, b, a');
    expect(await refused(join(work, 'x.npy'), a, c)).toMatch(/Shard 1\/3 is missing/);
    const again = join(work, 'again.jsonl');
    cpSync(a, again);
    cpSync(`${a}.meta.json`, `${again}.meta.json`);
    expect(await refused(join(work, 'x.npy'), a, b, c, again)).toMatch(/both shard 0\/3 \(overlapping parts\)/);
  });

  it('refuses a part from another run (another listing) and a shard of another split', async () => {
    const [a, b] = parts();
    if (b === undefined || a === undefined) throw new Error('missing b, a');
    const small = join(work, 'small');
    cpSync(IMAGES, small, { recursive: true });
    const foreign = join(work, 'foreign.npy');
    expect((await whylesion('embed', small, '--out', foreign, '--shard', '2/3', '--model', MODEL, '-q')).code).toBe(0);
    expect(await refused(join(work, 'x.npy'), a, b, foreign)).toMatch(
      /foreign\.npy was embedded from another file listing \(4 files\)/,
    );
    const split = join(work, 'split4.npy');
    expect((await whylesion('embed', corpus, '--out', split, '--shard', '2/4', '--model', MODEL, '-q')).code).toBe(0);
    expect(await refused(join(work, 'x.npy'), a, b, split)).toMatch(/is a shard of 4 but/);
  });

  it('refuses an incomplete part: rows + skipped short of the positions its shard owns', async () => {
    const [a, b, c] = parts();
    if (b === undefined || c === undefined || a === undefined) throw new Error('missing b, c, a');
    const cut = join(work, 'cut.npy');
    const meta = readMeta(c);
    const npy = readNpy(readFileSync(c));
    const E = meta.dim;
    const bytes = writeNpy([meta.rows - 1, E], (npy.data as Float32Array).slice(0, (meta.rows - 1) * E));
    writeFileSync(cut, bytes);
    meta.rows -= 1;
    meta.files.pop();
    meta.indices.pop();
    meta.dataSha256 = sha256(bytes);
    writeFileSync(`${cut}.meta.json`, `${JSON.stringify(meta)}\n`);
    expect(await refused(join(work, 'x.npy'), a, b, cut)).toMatch(
      /cut\.npy is incomplete: shard 2\/3 owns 3 of the 9 files but it holds 2 rows and 0 skipped/,
    );
  });

  it('refuses a data file with one corrupted byte (sha256 differs from the sidecar)', async () => {
    const [a, b, c] = parts();
    if (b === undefined || c === undefined || a === undefined) throw new Error('missing b, c, a');
    const bad = join(work, 'bad.npy');
    const bytes = readFileSync(c);
    bytes[bytes.length - 5]! ^= 0x40;
    writeFileSync(bad, bytes);
    cpSync(`${c}.meta.json`, `${bad}.meta.json`);
    expect(await refused(join(work, 'x.parquet'), a, b, bad)).toMatch(
      /bad\.npy does not match the sha256 in .*bad\.npy\.meta\.json/,
    );
  });

  it('refuses a Parquet part with an unknown column', async () => {
    const [a, b, c] = parts();
    if (c === undefined || b === undefined || a === undefined) throw new Error('missing c, b, a');
    const extra = join(work, 'extra.parquet');
    const meta = readMeta(b);
    const E = meta.dim;
    const listType = new FixedSizeList(E, new Field('item', new Float32(), false));
    const schema = new Schema([
      new Field('file', new Utf8(), false),
      new Field('embedding', listType, false),
      new Field('label', new Utf8(), false),
    ]);
    const n = meta.rows;
    const embedding = makeData({
      type: listType,
      length: n,
      nullCount: 0,
      child: makeData({ type: new Float32(), length: n * E, data: new Float32Array(n * E) }),
    });
    const batch = new RecordBatch(
      schema,
      makeData({
        type: new Struct(schema.fields),
        length: n,
        nullCount: 0,
        children: [
          vectorFromArray(meta.files, new Utf8()).data[0]!,
          embedding,
          vectorFromArray(
            meta.files.map(() => 'x'),
            new Utf8(),
          ).data[0]!,
        ],
      }),
    );
    const bytes = parquetWasm.writeParquet(parquetWasm.Table.fromIPCStream(tableToIPC(new Table([batch]), 'stream')));
    writeFileSync(extra, bytes);
    writeFileSync(`${extra}.meta.json`, `${JSON.stringify({ ...meta, dataSha256: sha256(bytes) })}\n`);
    expect(await refused(join(work, 'x.npy'), a, extra, c)).toMatch(
      /extra\.parquet has the columns file, embedding, label; a whylesion embeddings file has exactly file and embedding/,
    );
  });

  it('refuses an unwritable output in one sentence and leaves nothing behind', async () => {
    const [a, b, c] = parts();
    if (b === undefined || a === undefined) throw new Error('missing b, a');
    const result = await whylesion('merge', '--out', join(whole('npy'), 'inside-a-file.npy'), a, b, c);
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toMatch(
      /^whylesion: Cannot write .*inside-a-file\.npy \(ENOTDIR\); check that its folder exists, is writable and has room \(nothing was written\)\.$/,
    );
    expect(readdirSync(work).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(await refused(join(work, 'x.txt'), a, b, c)).toMatch(
      /--out .*x\.txt must end in \.npy, \.jsonl or \.parquet/,
    );
  });
});
