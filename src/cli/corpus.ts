import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm, truncate, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { UserError } from '../errors.js';
import { EMBEDDINGS_FORMAT, embeddingFormat } from '../io/embedding-reader.js';
import { writeEmbeddingFile } from '../io/embedding-writer.js';
import type { RowBatch } from '../io/parquet.js';
import { DEFAULT_MODEL } from './args.js';
import { BATCH_OPTIONS, BATCH_USAGE, batchSize as parseBatchSize, encodeImageBatch, finishSkipped, IMAGE_EXTENSIONS, listImages, Progress } from './images.js';
import { loadModelFromArgs } from './load.js';
import { parseShard } from './shard.js';

export const CORPUS_OPTIONS = {
  ...BATCH_OPTIONS,
  out: { type: 'string' },
  shard: { type: 'string' },
  shards: { type: 'string' },
  resume: { type: 'boolean' },
} as const;

export const CORPUS_USAGE = `
Corpus mode (folders and globs of images):
  --out FILE.npy|.jsonl|.parquet  float32 [N, E] .npy, JSON lines {"file", "embedding"}, or Parquet (file,
                             embedding as a fixed-size float32 list); FILE.meta.json lists the rows' files
                             and the model
  --shard i/n                embed only files i, i+n, i+2n, ... of the sorted list (i from 0), for job arrays
  --shard auto [--shards N]  i and n from a Slurm job array (SLURM_ARRAY_TASK_ID/_MIN/_COUNT) or a Kubernetes
                             Indexed Job (JOB_COMPLETION_INDEX, n = --shards N, the Job's completions)
  --resume                   continue an interrupted run without recomputing or duplicating rows
${BATCH_USAGE}`;

interface CorpusValues {
  out?: string; batch?: string; shard?: string; shards?: string; resume?: boolean; raw?: boolean; quiet?: boolean; strict?: boolean;
  model?: string; dtype?: string; vocab?: string; 'exif-rotate'?: boolean;
}

/**
 * Embeds every image under the given folders/globs into one output file. Rows go to `<out>.partial`
 * (raw float32) and a journal `<out>.partial.journal` records each file once its row is on disk, so a
 * killed run resumes exactly where the journal ends; the final file is written atomically at the end.
 */
export async function embedCorpus(patterns: string[], values: CorpusValues): Promise<void> {
  const out = values.out;
  if (!out) throw new UserError('Embedding a folder or glob needs --out FILE.npy, FILE.jsonl or FILE.parquet; see whylesion embed --help.');
  const format = embeddingFormat(out);
  if (!format) throw new UserError(`--out ${out} must end in .npy, .jsonl or .parquet.`);
  const batchSize = parseBatchSize(values.batch);
  const shard = parseShard(values.shard, values.shards);

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
  const identity = model.identity;
  const rowsDone = done.filter((e) => e.ok).length;
  if (journal) await truncate(partial, rowsDone * E * 4).catch(() => writeFile(partial, new Uint8Array(0)));
  const dataFd = openSync(partial, 'a');
  const journalFd = openSync(journalPath, 'a');
  const skipped = done.filter((e) => !e.ok).map((e) => ({ file: e.file, reason: e.reason ?? e.file }));
  const progress = new Progress('embedded', files.length, done.length, values.quiet);
  const killAfter = Number(process.env.WHYLESION_FAULT_KILL_AFTER_BATCHES ?? 0); // crash-test hook
  let batches = 0;
  try {
    for (let start = done.length; start < files.length; start += batchSize) {
      const names = files.slice(start, start + batchSize);
      const batch = await encodeImageBatch(model, names, { normalize: !values.raw });
      if (batch.rows.length > 0) {
        const bytes = new Float32Array(batch.rows.length * E);
        batch.rows.forEach((r, i) => bytes.set(r, i * E));
        writeSync(dataFd, new Uint8Array(bytes.buffer));
        fsyncSync(dataFd);
      }
      // The journal lists the files in corpus order, so a resumed run can check it against the listing.
      const reasons = new Map(batch.skipped.map((s) => [s.file, s.reason]));
      writeSync(journalFd, names.map((f) => (reasons.has(f) ? `skip\t${f}\t${reasons.get(f)}\n` : `ok\t${f}\n`)).join(''));
      fsyncSync(journalFd);
      skipped.push(...batch.skipped);
      progress.update(start + names.length, skipped.length);
      if (killAfter > 0 && ++batches === killAfter) process.kill(process.pid, 'SIGKILL');
    }
  } finally {
    closeSync(dataFd);
    closeSync(journalFd);
    progress.end();
    model.dispose();
  }
  // Position of files[j] in the full listing: shard i/n holds positions i, i+n, ...
  const entries = (await readJournal(journalPath))!.entries.map((e, j) => ({ ...e, index: j * shard.count + shard.index }));
  const ok = entries.filter((e) => e.ok);
  await writeEmbeddingFile(out, {
    format: EMBEDDINGS_FORMAT,
    model: identity,
    normalized: !values.raw,
    exifRotate: values['exif-rotate'] ?? false,
    dim: E,
    rows: ok.length,
    listing: { total: all.length, sha256: createHash('sha256').update(all.join('\n')).digest('hex'), shard: shard.count > 1 ? shard : null },
    files: ok.map((e) => e.file),
    indices: ok.map((e) => e.index),
    skipped: entries.filter((e) => !e.ok).map((e) => ({ file: e.file, index: e.index, reason: e.reason ?? e.file })),
  }, partialRows(partial, ok.map((e) => e.file), E));
  await rm(partial, { force: true });
  await rm(journalPath, { force: true });
  finishSkipped(`Embedded ${ok.length.toLocaleString('en-US')} image(s) into ${out} (file names and model in ${out}.meta.json)`, skipped, values);
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

/** The rows of the partial file (raw float32, in order), a thousand at a time. */
async function* partialRows(partial: string, files: string[], E: number): AsyncIterable<RowBatch> {
  const handle = await open(partial, 'r');
  try {
    for (let first = 0; first < files.length; first += 1024) {
      const names = files.slice(first, first + 1024);
      const data = new Float32Array(names.length * E);
      const { bytesRead } = await handle.read(new Uint8Array(data.buffer), 0, data.byteLength, first * E * 4);
      if (bytesRead !== data.byteLength) throw new Error(`${partial} is shorter than its journal`);
      yield { files: names, data };
    }
  } finally {
    await handle.close();
  }
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
