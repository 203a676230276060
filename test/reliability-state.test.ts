/**
 * Saved state under faults (issue 22 items 2-3, issue 24 item 2): a full disk, kill -9, concurrent writers,
 * stale locks, weights replaced before --resume, damaged cache records, the text-embedding cache, file names
 * with TAB and newline, probes of another model. Every fault is real: a full tmpfs (where root may mount one),
 * SIGKILL / SIGSTOP of the writing process, flipped bytes on disk.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadModel } from '../src/api/model.js';
import { TextCache } from '../src/eval/text-cache.js';
import { fileHashCacheDir, fileSha256 } from '../src/io/file-hash.js';
import { identityKey, isModelIdentity } from '../src/io/identity.js';
import { acquireLock } from '../src/io/lock.js';
import { readEmbeddingMeta } from '../src/io/embedding-reader.js';
import { readNpy } from '../src/io/npy.js';
import { runCli, sliceEvalDataset, VOCAB_URL } from './helpers.js';
import { cases, E, expectedImage, IMAGE_PATHS, loadTiny, MODEL } from './reliability-shared.js';

const CLI = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));
const run = promisify(execFile);

let work: string, env: NodeJS.ProcessEnv;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'whylesion-state-'));
  env = {
    ...process.env,
    WHYLESION_BPE_VOCAB: fileURLToPath(VOCAB_URL),
    XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp',
    XDG_CACHE_HOME: join(work, 'xdg'),
    WHYLESION_TEXT_CACHE: join(work, 'texts'),
  };
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const whylesion = (args: string[], extra: NodeJS.ProcessEnv = {}) => runCli(args, { ...env, ...extra });
/** No stack trace: one "whylesion: ..." line. */
const oneSentence = (stderr: string): string[] => stderr.split('\n').filter((l) => l.startsWith('whylesion:'));
const strays = (dir: string): string[] => readdirSync(dir).filter((f) => f.endsWith('.tmp') || f.endsWith('.lock'));

/** `copies` copies of the four fixture images in folders set0, set1, ...: 4·copies files. */
function makeCorpus(name: string, copies: number): string {
  const dir = join(work, name);
  for (let i = 0; i < copies; i++)
    for (const image of cases.images)
      cpSync(IMAGE_PATHS[cases.images.indexOf(image)]!, join(dir, `set${String(i).padStart(2, '0')}`, image));
  return dir;
}

/** Runs embed once without faults: the bytes every interrupted-and-resumed run must reproduce. */
async function reference(corpus: string, out: string, ...args: string[]): Promise<{ data: Buffer; meta: string }> {
  const done = await whylesion(['embed', corpus, '--out', out, '--model', MODEL, ...args]);
  expect(done.code, done.stderr).toBe(0);
  return { data: readFileSync(out), meta: readFileSync(`${out}.meta.json`, 'utf8') };
}

/** Mounts a tmpfs of `bytes` at a new folder, or returns undefined where mounting is not permitted. */
function mountTmpfs(bytes: number): string | undefined {
  const dir = join(work, `tmpfs-${bytes}`);
  mkdirSync(dir, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir], { stdio: 'ignore' });
    return dir;
  } catch {
    return undefined;
  }
}

/** Fills a file system until a write fails, then frees `pages` pages of 4 KiB; returns the filler's path. */
function fillDisk(dir: string, pages: number): string {
  const filler = join(dir, 'filler');
  expect(() => execFileSync('sh', ['-c', `cat /dev/zero > '${filler}'`], { stdio: 'ignore' })).toThrow(); // cat ends on ENOSPC
  truncateSync(filler, statSync(filler).size - pages * 4096);
  return filler;
}

/** Two classes of the synthetic dataset: 4 train / 3 val / 3 test images each (20 distinct images). */
let dataset: string | undefined;
function makeDataset(): string {
  if (dataset) return dataset;
  dataset = sliceEvalDataset(join(work, 'lesions'), { train: 4, val: 3, test: 3 });
  return dataset;
}

describe('embed DIR --out under faults', () => {
  it('a full disk ends in one sentence with the count saved, no .tmp; --resume after freeing space gives the uninterrupted bytes', async () => {
    const corpus = makeCorpus('corpus-full', 12); // 48 images: 6 KiB of rows, 4 KiB or more of journal
    const whole = await reference(corpus, join(work, 'full-reference.npy'), '--batch', '4');
    const disk = mountTmpfs(256 * 1024);
    let out: string, filler: string | undefined;
    let fault: NodeJS.ProcessEnv = {};
    if (disk) {
      // Three pages: the lock, the journal and the partial data get one each; the data outgrows its page at row 33.
      filler = fillDisk(disk, 3);
      out = join(disk, 'vectors.npy');
    } else {
      console.warn('tmpfs could not be mounted (not root?): simulating the full disk with WHYLESION_FAULT_DISK_BYTES');
      out = join(work, 'simulated', 'vectors.npy');
      fault = { WHYLESION_FAULT_DISK_BYTES: String(20 * E * 4 + 700) }; // about 20 rows and their journal lines, then a short write
    }
    try {
      const full = await whylesion(['embed', corpus, '--out', out, '--model', MODEL, '--batch', '4'], fault);
      expect(full.code).toBe(1);
      const [sentence, ...more] = oneSentence(full.stderr);
      if (sentence === undefined) throw new Error('missing sentence');
      expect(more).toEqual([]);
      expect(sentence).toMatch(
        /The disk holding .*vectors\.npy is full: \d+ of 48 images are saved in .*vectors\.npy\.partial; free some space and run the same command with --resume to continue\./,
      );
      expect(full.stderr).not.toMatch(/\n\s+at /); // no stack trace
      expect(existsSync(out)).toBe(false);
      expect(strays(join(out, '..'))).toEqual([]);
      const saved = Number(/full: (\d+) of/.exec(sentence)![1]);
      expect(saved).toBeGreaterThan(0);
      expect(saved).toBeLessThan(48);

      if (filler) rmSync(filler); // free the space
      const resumed = await whylesion(['embed', corpus, '--out', out, '--model', MODEL, '--batch', '4', '--resume']);
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(readFileSync(out).equals(whole.data)).toBe(true);
      expect(readFileSync(`${out}.meta.json`, 'utf8')).toBe(whole.meta);
      expect(readdirSync(join(out, '..')).sort()).toEqual(['vectors.npy', 'vectors.npy.meta.json']);
    } finally {
      if (disk) execFileSync('umount', [disk]);
    }
  });

  it('kill -9 mid-run, then --resume: the bytes of an uninterrupted run, with TAB and newline file names kept exactly (.jsonl)', async () => {
    const corpus = join(work, 'odd-names');
    const names = [
      'plain.png',
      'tab\there.png',
      'new\nline.png',
      'both\t\n.jpg',
      'ünïcode ✓.png',
      'quote".png',
      'back\\slash.png',
    ];
    names.forEach((n, i) => {
      cpSync(IMAGE_PATHS[i % 4]!, join(corpus, n));
    });
    const whole = await reference(corpus, join(work, 'odd-reference.jsonl'), '--batch', '2');
    const out = join(work, 'odd.jsonl');
    const killed = await run('node', [CLI, 'embed', corpus, '--out', out, '--model', MODEL, '--batch', '2'], {
      env: { ...env, WHYLESION_FAULT_KILL_AFTER_BATCHES: '2' },
    }).catch((e: { signal?: string }) => e);
    expect((killed as { signal?: string }).signal).toBe('SIGKILL');
    expect(existsSync(out)).toBe(false);
    const resumed = await whylesion(['embed', corpus, '--out', out, '--model', MODEL, '--batch', '2', '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/Taking over the stale lock .* of PID \d+, which no longer runs/);
    expect(readFileSync(out).equals(whole.data)).toBe(true);
    expect(readFileSync(`${out}.meta.json`, 'utf8')).toBe(whole.meta);
    const meta = await readEmbeddingMeta(out);
    expect(meta.dataSha256).toBe(createHash('sha256').update(readFileSync(out)).digest('hex'));
    expect(Object.keys(meta)).toEqual([
      'format',
      'model',
      'normalized',
      'exifRotate',
      'dim',
      'rows',
      'listing',
      'files',
      'indices',
      'skipped',
      'dataSha256',
    ]);
    expect(meta.listing).toEqual({
      total: names.length,
      sha256: createHash('sha256')
        .update(
          names
            .map((n) => join(corpus, n))
            .sort()
            .join('\n'),
        )
        .digest('hex'),
      shard: null,
    });
    const sorted = names.map((n) => join(corpus, n)).sort();
    expect(new Set(meta.files)).toEqual(new Set(sorted));
    expect(meta.files.map((f, k) => sorted[meta.indices[k]!] === f)).toEqual(meta.files.map(() => true));
    const rows = readFileSync(out, 'utf8')
      .split('\n')
      .slice(0, -1)
      .map((l) => JSON.parse(l) as { file: string; embedding: number[] });
    expect(rows.map((r) => r.file)).toEqual(meta.files);
    rows.forEach((r) => {
      const k = names.indexOf(r.file.slice(corpus.length + 1)) % 4;
      const want = expectedImage(k),
        n = Math.hypot(...want);
      r.embedding.forEach((v, d) => {
        expect(Math.abs(v - want[d]! / n)).toBeLessThanOrEqual(1e-5);
      });
    });
  });

  it('partial data shorter than the journal says: the missing rows are embedded again, never zero-filled', async () => {
    const corpus = makeCorpus('corpus-short', 3);
    const whole = await reference(corpus, join(work, 'short-reference.npy'), '--batch', '4');
    const out = join(work, 'short.npy');
    const killed = await run('node', [CLI, 'embed', corpus, '--out', out, '--model', MODEL, '--batch', '4'], {
      env: { ...env, WHYLESION_FAULT_KILL_AFTER_BATCHES: '2' },
    }).catch((e: { signal?: string }) => e);
    expect((killed as { signal?: string }).signal).toBe('SIGKILL');
    expect(statSync(`${out}.partial`).size).toBe(8 * E * 4);
    truncateSync(`${out}.partial`, 5 * E * 4 + 10); // rows 6-8 lost, row 6 torn
    const resumed = await whylesion(['embed', corpus, '--out', out, '--model', MODEL, '--batch', '4', '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain(
      `${out}.partial holds 5 of the 8 rows its journal lists; embedding the other 3 again.`,
    );
    expect(readFileSync(out).equals(whole.data)).toBe(true);
    expect(readFileSync(`${out}.meta.json`, 'utf8')).toBe(whole.meta);
  });

  it('a second embed on the same --out while the first runs exits 1 naming the holder; the first finishes correctly', async () => {
    const corpus = makeCorpus('corpus-concurrent', 3);
    const whole = await reference(corpus, join(work, 'concurrent-reference.npy'), '--batch', '4');
    const out = join(work, 'concurrent.npy');
    // The first writer stops itself (SIGSTOP) after one batch, holding the lock: no timing involved.
    const first = spawn('node', [CLI, 'embed', corpus, '--out', out, '--model', MODEL, '--batch', '4'], {
      env: { ...env, WHYLESION_FAULT_STOP_AFTER_BATCHES: '1' },
      stdio: 'ignore',
    });
    const exited = new Promise<number | null>((resolve) => first.on('exit', (code) => resolve(code)));
    let holder = 0;
    await vi.waitFor(
      () => {
        const lock = JSON.parse(readFileSync(`${out}.lock`, 'utf8')) as { pid: number };
        expect(readFileSync(`/proc/${lock.pid}/stat`, 'utf8')).toMatch(/\) T /); // stopped
        holder = lock.pid;
      },
      { timeout: 120_000, interval: 100 },
    );
    const second = await whylesion(['embed', corpus, '--out', out, '--model', MODEL, '--batch', '4']);
    expect(second.code).toBe(1);
    expect(oneSentence(second.stderr)).toEqual([
      expect.stringMatching(
        new RegExp(
          `^whylesion: .*concurrent\\.npy is being written by whylesion PID ${holder} \\(started \\d\\d:\\d\\d:\\d\\d\\); wait for it or stop it\\.$`,
        ),
      ),
    ]);
    const resumeToo = await whylesion(['embed', corpus, '--out', out, '--model', MODEL, '--batch', '4', '--resume']);
    expect(resumeToo.code).toBe(1);
    expect(resumeToo.stderr).toMatch(new RegExp(`PID ${holder}`));
    process.kill(holder, 'SIGCONT');
    expect(await exited).toBe(0);
    expect(readFileSync(out).equals(whole.data)).toBe(true);
    expect(readFileSync(`${out}.meta.json`, 'utf8')).toBe(whole.meta);
    expect(strays(work)).toEqual([]);
  });

  it('a lock naming a dead PID, or a live PID with another start time (reused), is taken over with a notice', async () => {
    const corpus = makeCorpus('corpus-stale', 1);
    const dead = spawn('node', ['-e', '']);
    await new Promise((resolve) => dead.on('exit', resolve));
    for (const [what, holder] of [
      ['dead', { pid: dead.pid, start: '1', host: hostname(), since: new Date().toISOString() }],
      ['reused', { pid: process.pid, start: '1', host: hostname(), since: new Date().toISOString() }],
    ] as const) {
      const out = join(work, `stale-${what}.npy`);
      writeFileSync(`${out}.lock`, `${JSON.stringify(holder)}\n`);
      const done = await whylesion(['embed', corpus, '--out', out, '--model', MODEL]);
      expect(done.code, done.stderr).toBe(0);
      expect(done.stderr).toContain(
        `Taking over the stale lock ${out}.lock of PID ${holder.pid}, which no longer runs.`,
      );
      expect(existsSync(`${out}.lock`)).toBe(false);
      expect(readNpy(readFileSync(out)).shape).toEqual([4, E]);
    }
  });

  it('weights replaced between a kill and --resume: refused in one sentence, the partial kept', async () => {
    const model = join(work, 'model-copy');
    cpSync(MODEL, model, { recursive: true });
    const corpus = makeCorpus('corpus-weights', 2);
    const out = join(work, 'weights.npy');
    const killed = await run('node', [CLI, 'embed', corpus, '--out', out, '--model', model, '--batch', '2'], {
      env: { ...env, WHYLESION_FAULT_KILL_AFTER_BATCHES: '1' },
    }).catch((e: { signal?: string }) => e);
    expect((killed as { signal?: string }).signal).toBe('SIGKILL');
    // Change one float's lowest mantissa byte (the last tensor's last value): finite, but other weights.
    const weights = join(model, 'open_clip_model.safetensors');
    const bytes = readFileSync(weights);
    bytes[bytes.length - 4]! ^= 0x01;
    writeFileSync(weights, bytes);
    const refused = await whylesion(['embed', corpus, '--out', out, '--model', model, '--batch', '2', '--resume']);
    expect(refused.code).toBe(1);
    expect(oneSentence(refused.stderr)).toEqual([
      expect.stringMatching(
        /weights\.npy\.partial was embedded with other weights \(sha256:[0-9a-f]{8}… \(f32, from .*\), now sha256:[0-9a-f]{8}… .*\); restore those weights to resume, or delete .*weights\.npy\.partial\* to start over\./,
      ),
    ]);
    expect(existsSync(`${out}.partial`)).toBe(true);
    bytes[bytes.length - 4]! ^= 0x01; // restored: the resume goes on
    writeFileSync(weights, bytes);
    const resumed = await whylesion(['embed', corpus, '--out', out, '--model', model, '--batch', '2', '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(readNpy(readFileSync(out)).shape).toEqual([8, E]);
  });
});

describe('lock files', () => {
  it('a held lock refuses a second taker; release removes only the lock this process wrote; a damaged lock is taken over', () => {
    const target = join(work, 'locked.out');
    const lock = acquireLock(target, 'The test output');
    const text = readFileSync(`${target}.lock`, 'utf8');
    expect(JSON.parse(text)).toMatchObject({ pid: process.pid, host: hostname() });
    expect(() => acquireLock(target, 'The test output')).toThrow(
      new RegExp(
        `^The test output is being written by whylesion PID ${process.pid} \\(started \\d\\d:\\d\\d:\\d\\d\\); wait for it or stop it\\.$`,
      ),
    );
    writeFileSync(`${target}.lock`, text.replace(`"pid":${process.pid}`, '"pid":1')); // someone else's lock now
    lock.release();
    expect(existsSync(`${target}.lock`)).toBe(true); // not ours: left alone
    writeFileSync(`${target}.lock`, '{"pid":'); // damaged, as a torn write would leave it
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const again = acquireLock(target);
    expect(stderr.mock.calls.map((c) => String(c[0]))).toEqual([
      `Taking over the stale lock ${target}.lock (damaged).\n`,
    ]);
    stderr.mockRestore();
    again.release();
    expect(readdirSync(work).filter((f) => f.startsWith('locked.out'))).toEqual([]);
  });
});

describe('model identity', () => {
  it('is the sha256 of the weights and config, remembered across processes by file stat and re-hashed when the file changes', async () => {
    const file = join(work, 'weights.bin');
    writeFileSync(file, Buffer.alloc(1 << 20, 7));
    const want = `sha256:${createHash('sha256').update(readFileSync(file)).digest('hex')}`;
    process.env.XDG_CACHE_HOME = join(work, 'xdg-identity');
    try {
      expect(await fileSha256(file)).toBe(want);
      const memos = readdirSync(fileHashCacheDir());
      expect(memos).toHaveLength(1);
      // The memo is what a second load reads: a (planted) memo value is returned without reading the file.
      const planted = `sha256:${'ab'.repeat(32)}`;
      writeFileSync(join(fileHashCacheDir(), memos[0]!), `${planted}\n`);
      expect(await fileSha256(file)).toBe(planted);
      // A write to the file changes its stat key: hashed again.
      writeFileSync(file, Buffer.alloc(1 << 20, 8));
      utimesSync(file, new Date(2001, 1, 1), new Date(2001, 1, 1));
      expect(await fileSha256(file)).toBe(`sha256:${createHash('sha256').update(readFileSync(file)).digest('hex')}`);
      // A Hub blob is named by its sha256 (the LFS etag): that name is the hash.
      const blob = join(work, 'hub', 'blobs', 'cd'.repeat(32));
      mkdirSync(join(blob, '..'), { recursive: true });
      writeFileSync(blob, 'x');
      expect(await fileSha256(blob)).toBe(`sha256:${'cd'.repeat(32)}`);
    } finally {
      delete process.env.XDG_CACHE_HOME;
    }

    const model = await loadTiny();
    try {
      const hash = (name: string) =>
        `sha256:${createHash('sha256')
          .update(readFileSync(join(MODEL, name)))
          .digest('hex')}`;
      expect(model.identity).toEqual({
        weights: hash('open_clip_model.safetensors'),
        config: hash('open_clip_config.json'),
        dtype: 'f32',
        source: MODEL,
      });
      expect(identityKey(model.identity)).toBe(
        `${hash('open_clip_model.safetensors')} ${hash('open_clip_config.json')} f32`,
      );
    } finally {
      model.dispose();
    }
  });

  it('for hf-hub: the weights blob name (its LFS sha256) and the snapshot commit, from the Hugging Face cache', async () => {
    const cacheDir = join(work, 'hf-cache'),
      commit = 'c0ffee'.padEnd(40, '0');
    const repo = join(cacheDir, 'models--org--tiny');
    const sha = (name: string) =>
      createHash('sha256')
        .update(readFileSync(join(MODEL, name)))
        .digest('hex');
    mkdirSync(join(repo, 'blobs'), { recursive: true });
    mkdirSync(join(repo, 'snapshots', commit), { recursive: true });
    mkdirSync(join(repo, 'refs'), { recursive: true });
    writeFileSync(join(repo, 'refs', 'main'), commit);
    for (const [name, blob] of [
      ['open_clip_config.json', 'a1'.repeat(20)],
      ['open_clip_model.safetensors', sha('open_clip_model.safetensors')],
    ] as [string, string][]) {
      cpSync(join(MODEL, name), join(repo, 'blobs', blob));
      symlinkSync(`../../blobs/${blob}`, join(repo, 'snapshots', commit, name));
    }
    const model = await loadModel('hf-hub:org/tiny', {
      hub: { cacheDir, offline: true },
      vocabPath: fileURLToPath(VOCAB_URL),
    });
    try {
      expect(model.identity).toEqual({
        weights: `sha256:${sha('open_clip_model.safetensors')}`,
        config: `sha256:${sha('open_clip_config.json')}`,
        dtype: 'f32',
        source: `hf-hub:org/tiny@${commit}`,
      });
    } finally {
      model.dispose();
    }
  });

  it('names f16 activations, so state made with f16 weights before them (or with f32 activations) is not mixed in', async () => {
    const model = await loadModel(MODEL, { dtype: 'f16', vocabPath: fileURLToPath(VOCAB_URL) });
    const f32Activations = await loadModel(MODEL, {
      dtype: 'f16',
      activations: 'f32',
      vocabPath: fileURLToPath(VOCAB_URL),
    });
    try {
      const halves = model.model.activations.vision === 'f16';
      expect(model.identity.activations).toBe(halves ? 'f16' : undefined);
      expect(f32Activations.identity.activations).toBeUndefined();
      expect(identityKey(f32Activations.identity).endsWith(' f16')).toBe(true);
      if (halves) {
        expect(identityKey(model.identity)).toBe(`${identityKey(f32Activations.identity)} f16-activations`);
        expect(isModelIdentity(JSON.parse(JSON.stringify(model.identity)))).toBe(true);
        expect(isModelIdentity({ ...model.identity, activations: 'bf16' })).toBe(false);
      }
    } finally {
      model.dispose();
      f32Activations.dispose();
    }
  });
});

describe('caches', () => {
  it('a flipped byte in a feature-cache record: dropped with a notice, recomputed, the same accuracy', async () => {
    const dataset = makeDataset();
    const cache = join(work, 'features');
    const args = [
      'eval',
      dataset,
      '--model',
      MODEL,
      '--cache',
      cache,
      '--mode',
      'linear',
      '--solver',
      'lbfgs',
      '--json',
    ];
    const first = await whylesion(args);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toContain('20 embedded now, 0 from the cache');
    const [rowsFile] = readdirSync(cache).filter((f) => f.endsWith('.f32rows'));
    if (rowsFile === undefined) throw new Error('missing rowsFile');
    const bytes = readFileSync(join(cache, rowsFile));
    const record = 32 + E * 4 + 8;
    expect(bytes.length).toBe(20 * record);
    bytes[3 * record + 32 + 17]! ^= 0x40; // a float of the fourth record's row
    writeFileSync(join(cache, rowsFile), bytes);
    const second = await whylesion(args);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toContain(
      `The feature cache ${join(cache, rowsFile)} had 1 damaged record(s); they were dropped and those images will be embedded again.`,
    );
    expect(second.stderr).toContain('1 embedded now, 19 from the cache');
    expect(second.stdout).toBe(first.stdout);
    expect(readFileSync(join(cache, rowsFile)).length).toBe(20 * record);
  });

  it('text cache: a second explain encodes no text and prints the same; --no-cache bypasses it; a damaged record is encoded again', async () => {
    const textCache = join(work, 'texts-explain');
    const args = ['explain', IMAGE_PATHS[0]!, '--concepts', 'StatPearls', '--top', '5', '--model', MODEL, '--json'];
    const extra = {
      WHYLESION_TEXT_CACHE: textCache,
      WHYLESION_KNOBO_DIR: fileURLToPath(new URL('../assets/knobo/', import.meta.url)),
    };
    const first = await whylesion(args, extra);
    expect(first.code, first.stderr).toBe(0);
    const [file] = readdirSync(textCache);
    if (file === undefined) throw new Error('missing file');
    const size = statSync(join(textCache, file)).size;
    expect(size % (32 + E * 4 + 8)).toBe(0);
    expect(size).toBeGreaterThan(0);
    const second = await whylesion(args, extra);
    expect(second.stdout).toBe(first.stdout);
    expect(statSync(join(textCache, file)).size).toBe(size); // nothing encoded, so nothing appended
    const bypass = await whylesion([...args, '--no-cache'], {
      ...extra,
      WHYLESION_TEXT_CACHE: join(work, 'texts-unused'),
    });
    expect(bypass.stdout).toBe(first.stdout);
    expect(existsSync(join(work, 'texts-unused'))).toBe(false);

    // In process: the rows are the model's own, and a second cache over the same file encodes nothing.
    const model = await loadTiny();
    try {
      const dir = join(work, 'texts-library');
      const encodeTokens = vi.spyOn(model, 'encodeTokens');
      const cold = await TextCache.open(dir, model);
      const rows = await cold.encode(model, [...cases.texts, cases.texts[0]!]);
      expect(cold.encoded).toBe(cases.texts.length); // a repeated text once
      expect(encodeTokens).toHaveBeenCalledTimes(1);
      expect(rows.map((r) => Array.from(r))).toEqual(
        (await model.encodeText([...cases.texts, cases.texts[0]!])).map((r) => Array.from(r)),
      );
      const warm = await TextCache.open(dir, model);
      encodeTokens.mockClear();
      expect((await warm.encode(model, cases.texts)).map((r) => Array.from(r))).toEqual(
        rows.slice(0, -1).map((r) => Array.from(r)),
      );
      expect(warm.encoded).toBe(0);
      expect(encodeTokens).not.toHaveBeenCalled();
      const [name] = readdirSync(dir);
      if (name === undefined) throw new Error('missing name');
      const bytes = readFileSync(join(dir, name));
      bytes[40]! ^= 0x10; // first record's row
      writeFileSync(join(dir, name), bytes);
      const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
      const damaged = await TextCache.open(dir, model);
      expect(stderr.mock.calls.map((c) => String(c[0]))).toEqual([
        expect.stringMatching(/has 1 damaged record\(s\); those texts will be encoded again/),
      ]);
      stderr.mockRestore();
      expect((await damaged.encode(model, cases.texts)).map((r) => Array.from(r))).toEqual(
        rows.slice(0, -1).map((r) => Array.from(r)),
      );
      expect(damaged.encoded).toBe(1);
    } finally {
      model.dispose();
    }
  });
});

describe('probes of another model', () => {
  it('classify --probe refuses a probe whose model identity differs, and runs one of this model', async () => {
    const model = await loadTiny();
    const identity = model.identity;
    model.dispose();
    const probe = (modelIdentity: object) => ({
      format: 'whylesion-probe',
      version: 1,
      mode: 'linear',
      classes: ['a', 'b'],
      normalize: true,
      weight: [Array.from({ length: E }, (_, i) => Math.sin(i)), Array.from({ length: E }, (_, i) => Math.cos(i))],
      bias: [0, 0.1],
      modelIdentity,
      training: {},
    });
    const mine = join(work, 'probe-mine.json'),
      other = join(work, 'probe-other.json');
    writeFileSync(mine, JSON.stringify(probe(identity)));
    writeFileSync(other, JSON.stringify(probe({ ...identity, weights: `sha256:${'0'.repeat(64)}` })));
    const refused = await whylesion(['classify', IMAGE_PATHS[0]!, '--probe', other, '--model', MODEL]);
    expect(refused.code).toBe(1);
    expect(oneSentence(refused.stderr)).toEqual([
      expect.stringMatching(
        /probe-other\.json was trained on another model \(sha256:00000000… \(f32, .*\)\), not sha256:[0-9a-f]{8}… .*; pass that model with --model, or train a probe on this one\./,
      ),
    ]);
    const ran = await whylesion(['classify', IMAGE_PATHS[0]!, '--probe', mine, '--model', MODEL, '--json']);
    expect(ran.code, ran.stderr).toBe(0);
    expect((JSON.parse(ran.stdout) as { labels: string[] }[])[0]!.labels).toEqual(['a', 'b']);
  });
});

describe('other writers on a full disk', () => {
  it('eval --report and probe train --out end in one sentence, leave no .tmp and no lock', async () => {
    const disk = mountTmpfs(64 * 1024);
    if (!disk) {
      console.warn('tmpfs could not be mounted (not root?): the full-disk report/probe case is not run here');
      return;
    }
    try {
      fillDisk(disk, 1); // the lock file's page
      const dataset = makeDataset();
      const cache = join(work, 'features-full-disk');
      const report = await whylesion([
        'eval',
        dataset,
        '--model',
        MODEL,
        '--cache',
        cache,
        '--mode',
        'linear',
        '--solver',
        'lbfgs',
        '--report',
        join(disk, 'r.html'),
      ]);
      expect(report.code).toBe(1);
      expect(oneSentence(report.stderr)).toEqual([
        expect.stringMatching(
          /The disk holding .*r\.html is full, so it was not written \(nothing was changed\); free some space and run again\./,
        ),
      ]);
      const probe = await whylesion([
        'probe',
        'train',
        dataset,
        '--mode',
        'linear',
        '--solver',
        'lbfgs',
        '--out',
        join(disk, 'p.json'),
        '--model',
        MODEL,
        '--cache',
        cache,
      ]);
      expect(probe.code).toBe(1);
      expect(oneSentence(probe.stderr)).toEqual([expect.stringMatching(/The disk holding .*p\.json is full/)]);
      expect(readdirSync(disk)).toEqual(['filler']);
      // The feature cache: one more free page holds its lock and its key file; the first rows it appends fail.
      truncateSync(join(disk, 'filler'), statSync(join(disk, 'filler')).size - 4096);
      const cached = await whylesion([
        'eval',
        dataset,
        '--model',
        MODEL,
        '--cache',
        join(disk, 'cache'),
        '--mode',
        'linear',
        '--solver',
        'lbfgs',
      ]);
      expect(cached.code).toBe(1);
      expect(oneSentence(cached.stderr)).toEqual([
        expect.stringMatching(
          /The disk holding the feature cache .*\.f32rows is full; the images embedded so far are kept there: free some space \(or pass --cache with another folder\) and run again to continue\./,
        ),
      ]);
      expect(cached.stderr).not.toMatch(/\n\s+at /);
      expect(readdirSync(join(disk, 'cache')).filter((f) => f.endsWith('.lock') || f.endsWith('.tmp'))).toEqual([]);
    } finally {
      execFileSync('umount', [disk]);
    }
  });
});
