import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { UserError } from '../errors.js';
import { writeNpy } from '../io/npy.js';
import { DEFAULT_MODEL, positiveInteger } from './args.js';
import { loadModelFromArgs } from './load.js';
import { stderrIsTerminal } from './quiet-dawn.js';

export const CORPUS_OPTIONS = {
  out: { type: 'string' },
  batch: { type: 'string' },
  shard: { type: 'string' },
  resume: { type: 'boolean' },
} as const;

export const CORPUS_USAGE = `
Corpus mode (folders and globs of images):
  --out FILE.npy|FILE.jsonl  float32 [N, E] .npy with FILE.npy.files.txt (one path per row), or JSON lines
                             {"file", "embedding"}
  --batch N                  images per forward (default 16)
  --shard i/n                embed only files i, i+n, i+2n, ... of the sorted list (i from 0), for job arrays
  --resume                   continue an interrupted run without recomputing or duplicating rows
Unreadable files are skipped and listed at the end.`;

const IMAGE_EXTENSIONS = /\.(jpe?g|png|bmp|gif|tiff?)$/i;

interface CorpusValues {
  out?: string; batch?: string; shard?: string; resume?: boolean; raw?: boolean;
  model?: string; dtype?: string; vocab?: string; 'exif-rotate'?: boolean;
}

/**
 * Embeds every image under the given folders/globs into one output file. Rows go to `<out>.partial`
 * (raw float32) and a journal `<out>.partial.journal` records each file once its row is on disk, so a
 * killed run resumes exactly where the journal ends; the final file is written atomically at the end.
 */
export async function embedCorpus(patterns: string[], values: CorpusValues): Promise<void> {
  const out = values.out;
  if (!out) throw new UserError('Embedding a folder or glob needs --out FILE.npy or FILE.jsonl; see whylesion embed --help.');
  const format = out.endsWith('.npy') ? 'npy' : out.endsWith('.jsonl') ? 'jsonl' : undefined;
  if (!format) throw new UserError(`--out ${out} must end in .npy or .jsonl.`);
  const batchSize = values.batch ? positiveInteger('batch', values.batch) : 16;
  const shard = parseShard(values.shard);

  const all = await listImages(patterns);
  const files = all.filter((_, i) => i % shard.count === shard.index);
  if (files.length === 0) throw new UserError(`No image files (${IMAGE_EXTENSIONS.source}) found in ${patterns.join(', ')}${shard.count > 1 ? ` for shard ${shard.index}/${shard.count}` : ''}.`);

  const partial = `${out}.partial`, journalPath = `${out}.partial.journal`;
  // Rows of a resumed run must be computed the same way as the rows already written.
  const settings = `settings\t${JSON.stringify({ model: values.model ?? process.env.WHYLESION_MODEL ?? DEFAULT_MODEL, dtype: values.dtype ?? 'f32', raw: values.raw ?? false, exifRotate: values['exif-rotate'] ?? false })}`;
  const journal = await readJournal(journalPath);
  if (journal && !values.resume) {
    throw new UserError(`${partial} holds an interrupted run; pass --resume to continue it, or delete ${partial}* to start over.`);
  }
  if (journal && journal.settings !== settings) {
    throw new UserError(`${journalPath} was made with other settings (${journal.settings?.slice(9) ?? 'unknown'}); resume with the same --model/--dtype/--raw/--exif-rotate, or delete ${partial}* to start over.`);
  }
  const done = journal?.entries ?? [];
  if (done.some((entry, i) => entry.file !== files[i])) {
    throw new UserError(`${journalPath} was made for a different file list (the corpus or --shard changed); delete ${partial}* to start over.`);
  }
  // Make sure the output can be written before the (slow) model load.
  try {
    await mkdir(dirname(resolve(out)), { recursive: true });
    if (!journal) {
      await writeFile(partial, new Uint8Array(0));
      await writeFile(journalPath, `${settings}\n`);
    }
  } catch (cause) {
    throw new UserError(`Cannot write ${partial} (${(cause as NodeJS.ErrnoException).code ?? cause}); check that --out's folder is writable.`, { cause });
  }
  const model = await loadModelFromArgs(values);
  const E = model.embedDim;
  const rowsDone = done.filter((e) => e.ok).length;
  if (journal) await truncate(partial, rowsDone * E * 4).catch(() => writeFile(partial, new Uint8Array(0)));
  const dataFd = openSync(partial, 'a');
  const journalFd = openSync(journalPath, 'a');
  const skipped = done.filter((e) => !e.ok).map((e) => e.reason ?? e.file);
  const progress = new RateProgress(files.length, done.length);
  const killAfter = Number(process.env.WHYLESION_FAULT_KILL_AFTER_BATCHES ?? 0); // crash-test hook
  let batches = 0;
  try {
    for (let start = done.length; start < files.length; start += batchSize) {
      const names = files.slice(start, start + batchSize);
      const pixels: Float32Array[] = [];
      const entries: string[] = [];
      for (const file of names) {
        try {
          pixels.push(await model.preprocess(file));
          entries.push(`ok\t${file}`);
        } catch (e) {
          if (!(e instanceof UserError)) throw e;
          skipped.push(e.message); // the message names the file
          entries.push(`skip\t${file}\t${e.message.replace(/\s+/g, ' ')}`);
        }
      }
      if (pixels.length > 0) {
        const flat = new Float32Array(pixels.length * pixels[0].length);
        pixels.forEach((p, i) => flat.set(p, i * p.length));
        const rows = await model.encodePixels(flat, pixels.length, { normalize: !values.raw });
        const bytes = new Float32Array(rows.length * E);
        rows.forEach((r, i) => bytes.set(r, i * E));
        writeSync(dataFd, new Uint8Array(bytes.buffer));
        fsyncSync(dataFd);
      }
      writeSync(journalFd, entries.map((e) => `${e}\n`).join(''));
      fsyncSync(journalFd);
      progress.update(start + names.length);
      if (killAfter > 0 && ++batches === killAfter) process.kill(process.pid, 'SIGKILL');
    }
  } finally {
    closeSync(dataFd);
    closeSync(journalFd);
    progress.end();
    model.dispose();
  }
  const ok = (await readJournal(journalPath))!.entries.filter((e) => e.ok).map((e) => e.file);
  const data = new Float32Array((await readFile(partial)).buffer.slice(0, ok.length * E * 4));
  if (format === 'npy') {
    await writeAtomic(`${out}.files.txt`, ok.map((f) => `${f}\n`));
    await writeAtomic(out, [writeNpy([ok.length, E], data)]);
  } else {
    // One line at a time: a corpus of tens of thousands of rows is longer than the longest JavaScript string.
    await writeAtomic(out, ok.map((file, i) => `${JSON.stringify({ file, embedding: Array.from(data.subarray(i * E, (i + 1) * E)) })}\n`));
  }
  await rm(partial, { force: true });
  await rm(journalPath, { force: true });
  console.error(`Embedded ${ok.length} image(s) into ${out}${format === 'npy' ? ` (file names in ${out}.files.txt)` : ''}.`);
  if (skipped.length > 0) {
    console.error(`Skipped ${skipped.length} unreadable file(s):`);
    for (const s of skipped) console.error(`  ${s}`);
  }
}

function parseShard(value: string | undefined): { index: number; count: number } {
  if (value === undefined) return { index: 0, count: 1 };
  const m = /^(\d+)\/(\d+)$/.exec(value);
  const index = Number(m?.[1]), count = Number(m?.[2]);
  if (!m || count < 1 || index >= count) throw new UserError(`--shard ${value} must be i/n with 0 <= i < n, e.g. 0/4.`);
  return { index, count };
}

interface Journal { settings: string | undefined; entries: { file: string; ok: boolean; reason?: string }[] }

async function readJournal(path: string): Promise<Journal | undefined> {
  const text = await readFile(path, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  // A line cut by a crash has no newline yet: it never counted.
  const lines = text.split('\n').slice(0, -1);
  const settings = lines[0]?.startsWith('settings\t') ? lines.shift() : undefined;
  return {
    settings,
    entries: lines.map((line) => {
      const [status, file, reason] = line.split('\t');
      return { file, ok: status === 'ok', reason };
    }),
  };
}

/** Writes the pieces into a temporary file beside `path`, then renames it into place. */
export async function writeAtomic(path: string, pieces: readonly (string | Uint8Array)[]): Promise<void> {
  const temporary = `${path}.${process.pid}.tmp`;
  const handle = await open(temporary, 'w');
  try {
    for (const piece of pieces) await handle.appendFile(piece);
  } finally {
    await handle.close();
  }
  await rename(temporary, path);
}

/** Sorted image paths under folders (recursively), plain files, and globs with *, ? and **. */
export async function listImages(patterns: string[]): Promise<string[]> {
  const found = new Set<string>();
  for (const pattern of patterns) {
    if (!/[*?[]/.test(pattern)) {
      const info = await stat(pattern).catch(() => undefined);
      if (!info) throw new UserError(`${pattern} does not exist; pass image folders, files or globs.`);
      if (info.isDirectory()) for (const f of await walk(pattern)) { if (IMAGE_EXTENSIONS.test(f)) found.add(f); }
      else found.add(pattern);
      continue;
    }
    const parts = pattern.split(/[\\/]/);
    const fixed = parts.findIndex((p) => /[*?[]/.test(p));
    const root = parts.slice(0, fixed).join(sep) || '.';
    const matcher = globRegExp(parts.slice(fixed).join('/'));
    for (const f of await walk(root).catch(() => [])) {
      if (matcher.test(relative(root, f).split(sep).join('/')) && IMAGE_EXTENSIONS.test(f)) found.add(f);
    }
  }
  return [...found].sort();
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    const kind = entry.isSymbolicLink() ? await stat(path).catch(() => undefined) : entry;
    if (kind?.isDirectory()) out.push(...(await walk(path)));
    else if (kind?.isFile()) out.push(path);
  }
  return out;
}

function globRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*' && glob[i + 1] === '*') { re += '.*'; i++; if (glob[i + 1] === '/') i++; }
    else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** images/s and ETA on a TTY's stderr, at most ~10 redraws a second. */
class RateProgress {
  private readonly started = Date.now();
  private lastDraw = 0;
  constructor(private readonly total: number, private readonly first: number) {}

  update(done: number): void {
    if (!stderrIsTerminal()) return;
    const now = Date.now();
    if (now - this.lastDraw < 100 && done < this.total) return;
    this.lastDraw = now;
    const rate = (done - this.first) / Math.max((now - this.started) / 1000, 1e-3);
    const eta = rate > 0 ? (this.total - done) / rate : 0;
    process.stderr.write(`\r${done}/${this.total} images  ${rate.toFixed(2)} images/s  ETA ${Math.round(eta)} s   `);
  }

  end(): void {
    if (stderrIsTerminal()) process.stderr.write('\n');
  }
}
