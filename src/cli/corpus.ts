import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync } from 'node:fs';
import { appendFile, mkdir, open, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { UserError, present } from '../errors.js';
import { isDiskFull, writeAllSync, writeDurable } from '../io/durable.js';
import {
  EMBEDDINGS_FORMAT,
  embeddingFormat,
  listingSha256,
  metaPath,
  writeEmbeddingOutput,
} from '../io/embedding-output.js';
import { describeIdentity, identityKey, isModelIdentity, type ModelIdentity } from '../io/identity.js';
import { acquireLock } from '../io/lock.js';
import {
  BATCH_OPTIONS,
  BATCH_USAGE,
  batchSize as parseBatchSize,
  encodeImageBatch,
  finishSkipped,
  listImages,
  Progress,
} from './images.js';
import { SUPPORTED_FORMATS } from '../image/index.js';
import { loadModelFromArgs } from './load.js';
import { refuseToOverwrite } from './outputs.js';
import { parseShard } from './shard.js';

export const CORPUS_OPTIONS = {
  ...BATCH_OPTIONS,
  out: { type: 'string' },
  shard: { type: 'string' },
  shards: { type: 'string' },
  resume: { type: 'boolean' },
  force: { type: 'boolean' },
} as const;

export const CORPUS_USAGE = `
Corpus mode (folders and globs of images):
  --out FILE.npy|.jsonl|.parquet  float32 [N, E] .npy, JSON lines {"file", "embedding"}, or Parquet (file,
                             embedding as a fixed-size float32 list); beside it FILE.meta.json names the model
                             (weights sha256), each row's file and index, the skipped files and the data's
                             sha256 (the two are renamed into place together)
  --shard i/n                embed only files i, i+n, i+2n, ... of the sorted list (i from 0), for job arrays
  --shard auto [--shards N]  i and n from a Slurm job array (SLURM_ARRAY_TASK_ID/_MIN/_COUNT) or a Kubernetes
                             Indexed Job (JOB_COMPLETION_INDEX, n = --shards N, the Job's completions)
  --resume                   continue an interrupted run (killed, or a full disk) without recomputing or
                             duplicating rows; refused if the model's weights changed meanwhile
  --force                    replace an existing --out (otherwise an existing output is refused)
${BATCH_USAGE}`;

interface CorpusValues {
  out?: string;
  batch?: string;
  shard?: string;
  shards?: string;
  resume?: boolean;
  force?: boolean;
  raw?: boolean;
  quiet?: boolean;
  strict?: boolean;
  model?: string;
  dtype?: string;
  vocab?: string;
  'exif-rotate'?: boolean;
}

/** Rows read back from the partial file per step of the final write. */
const ROWS_PER_READ = 1024;

/**
 * Embeds every image under the given folders/globs into one output file. Rows go to `<out>.partial` (raw
 * float32, synced) and only then does the journal `<out>.partial.journal` (JSON lines) record their files, so a
 * killed run resumes exactly where the journal ends. The journal also records the model's identity, and a
 * resume with other weights is refused. The final files are written by io/embedding-output.ts.
 */
export async function embedCorpus(patterns: string[], values: CorpusValues): Promise<void> {
  const out = values.out;
  if (!out)
    throw new UserError(
      'Embedding a folder or glob needs --out FILE.npy, FILE.jsonl or FILE.parquet; see whylesion embed --help.',
    );
  if (!embeddingFormat(out)) throw new UserError(`--out ${out} must end in .npy, .jsonl or .parquet.`);
  await refuseToOverwrite(out, values, '--out');
  const batchSize = parseBatchSize(values.batch);
  const shard = parseShard(values.shard, values.shards);

  const all = await listImages(patterns);
  const positions = all.map((_, i) => i).filter((i) => i % shard.count === shard.index);
  const files = positions.map((i) => present(all[i], `listed file ${i}`));
  if (files.length === 0)
    throw new UserError(
      `No image files (${SUPPORTED_FORMATS}) found in ${patterns.join(', ')}${shard.count > 1 ? ` for shard ${shard.index}/${shard.count}` : ''}.`,
    );

  try {
    await mkdir(dirname(resolve(out)), { recursive: true });
  } catch (cause) {
    throw new UserError(
      `Cannot write ${out}.partial (${(cause as NodeJS.ErrnoException).code ?? cause}); check that --out's folder is writable.`,
      { cause },
    );
  }
  const lock = acquireLock(out);
  try {
    await embedLocked(out, files, positions, all, shard, batchSize, values);
  } finally {
    lock.release();
  }
}

async function embedLocked(
  out: string,
  files: string[],
  positions: number[],
  all: string[],
  shard: { index: number; count: number },
  batchSize: number,
  values: CorpusValues,
): Promise<void> {
  const partial = `${out}.partial`,
    journalPath = `${out}.partial.journal`;
  // Rows of a resumed run must be computed the same way as the rows already written (the model is checked by identity).
  const settings = {
    dtype: values.dtype ?? 'f32',
    raw: values.raw ?? false,
    exifRotate: values['exif-rotate'] ?? false,
  };
  const journal = await readJournal(journalPath);
  if (journal && !values.resume) {
    throw new UserError(
      `${partial} holds an interrupted run; pass --resume to continue it, or delete ${partial}* to start over.`,
    );
  }
  if (journal && JSON.stringify(journal.settings) !== JSON.stringify(settings)) {
    throw new UserError(
      `${journalPath} was made with other settings (${JSON.stringify(journal.settings)}); resume with the same --dtype/--raw/--exif-rotate, or delete ${partial}* to start over.`,
    );
  }
  let done = journal?.entries ?? [];
  if (done.some((entry, i) => entry.file !== files[i])) {
    throw new UserError(
      `${journalPath} was made for a different file list (the corpus or --shard changed); delete ${partial}* to start over.`,
    );
  }
  // Make sure the output can be written before the (slow) model load.
  try {
    if (!journal) {
      await writeFile(partial, new Uint8Array(0));
      await writeFile(journalPath, `${JSON.stringify({ settings })}\n`);
    }
  } catch (cause) {
    await rm(partial, { force: true });
    await rm(journalPath, { force: true });
    const code = (cause as NodeJS.ErrnoException).code;
    throw new UserError(
      isDiskFull(cause)
        ? `The disk holding ${out} is full, so nothing was written; free some space and run again.`
        : `Cannot write ${partial} (${code ?? cause}); check that --out's folder is writable.`,
      { cause },
    );
  }
  const model = await loadModelFromArgs(values, undefined, { warmShaders: done.length < files.length });
  const E = model.embedDim,
    rowBytes = E * 4;
  let dataFd: number | undefined, journalFd: number | undefined;
  const progress = new Progress('embedded', files.length, done.length, values.quiet);
  try {
    if (journal?.model && identityKey(journal.model) !== identityKey(model.identity)) {
      throw new UserError(
        `${partial} was embedded with other weights (${describeIdentity(journal.model)}, now ${describeIdentity(model.identity)}); restore those weights to resume, or delete ${partial}* to start over.`,
      );
    }
    if (!journal?.model) {
      await appendFile(journalPath, `${JSON.stringify({ model: model.identity })}\n`).catch((cause: unknown) => {
        if (!isDiskFull(cause)) throw cause;
        throw new UserError(
          `The disk holding ${out} is full, so the run could not start; free some space and run the same command with --resume.`,
          { cause },
        );
      });
    }
    // Rows on disk must be the rows the journal lists: rows past them (a batch the journal never got) are cut;
    // rows it lists but the file lacks are dropped from the journal and computed again, never filled in.
    const size = await stat(partial).then(
      (info) => info.size,
      () => undefined,
    );
    if (size === undefined) await writeFile(partial, new Uint8Array(0)); // deleted since: every row is missing
    const onDisk = Math.floor((size ?? 0) / rowBytes);
    let listed = done.filter((e) => e.ok).length;
    if (onDisk < listed) {
      let ok = 0;
      const keep = done.findIndex((e) => e.ok && ++ok > onDisk);
      process.stderr.write(
        `${partial} holds ${onDisk} of the ${listed} rows its journal lists; embedding the other ${listed - onDisk} again.\n`,
      );
      done = done.slice(0, keep);
      listed = onDisk;
      await rewriteJournal(journalPath, settings, model.identity, done);
    }
    await truncate(partial, listed * rowBytes);
    dataFd = openSync(partial, 'a');
    journalFd = openSync(journalPath, 'a');
    let journalBytes = fstatSync(journalFd).size;
    // Fault-test hooks: die (SIGKILL) or stop (SIGSTOP, holding the lock until SIGCONT) after N batches.
    const killAfter = Number(process.env.WHYLESION_FAULT_KILL_AFTER_BATCHES ?? 0);
    const stopAfter = Number(process.env.WHYLESION_FAULT_STOP_AFTER_BATCHES ?? 0);
    let batches = 0,
      skippedCount = done.filter((e) => !e.ok).length;
    for (let start = done.length; start < files.length; start += batchSize) {
      const names = files.slice(start, start + batchSize);
      const batch = await encodeImageBatch(model, names, { normalize: !values.raw });
      const reasons = new Map(batch.skipped.map((s) => [s.file, s.reason]));
      const entries: JournalEntry[] = names.map((file) =>
        reasons.has(file) ? { file, ok: false, reason: reasons.get(file) } : { file, ok: true },
      );
      try {
        const bytes = new Float32Array(batch.rows.length * E);
        batch.rows.forEach((r, i) => {
          bytes.set(r, i * E);
        });
        writeAllSync(dataFd, new Uint8Array(bytes.buffer));
        fsyncSync(dataFd);
        // The journal lists the files in corpus order, so a resumed run can check it against the listing.
        const lines = new TextEncoder().encode(entries.map(journalLine).join(''));
        writeAllSync(journalFd, lines);
        fsyncSync(journalFd);
        journalBytes += lines.length;
      } catch (error) {
        // Neither file may keep a piece of this batch: the journal would read it as done, or the data run ahead.
        ftruncateSync(dataFd, listed * rowBytes);
        ftruncateSync(journalFd, journalBytes);
        if (!isDiskFull(error)) throw error;
        throw new UserError(
          `The disk holding ${out} is full: ${start.toLocaleString('en-US')} of ${files.length.toLocaleString('en-US')} images are saved in ${partial}; free some space and run the same command with --resume to continue.`,
          { cause: error },
        );
      }
      done.push(...entries);
      listed += batch.rows.length;
      skippedCount += batch.skipped.length;
      progress.update(start + names.length, skippedCount);
      batches++;
      if (batches === killAfter) process.kill(process.pid, 'SIGKILL');
      if (batches === stopAfter) process.kill(process.pid, 'SIGSTOP');
    }
  } finally {
    if (dataFd !== undefined) closeSync(dataFd);
    if (journalFd !== undefined) closeSync(journalFd);
    progress.end();
    model.dispose();
  }
  const okIndex: number[] = [],
    skipped: { file: string; index: number; reason: string }[] = [];
  done.forEach((e, i) => {
    if (e.ok) okIndex.push(i);
    else skipped.push({ file: e.file, index: positions[i]!, reason: e.reason ?? '' });
  });
  // Nothing readable is the user's to fix, and an empty file would pass for a result. A shard keeps its empty
  // part: merge needs every shard, and the other shards may hold rows.
  if (okIndex.length === 0 && shard.count === 1) {
    await rm(partial, { force: true });
    await rm(journalPath, { force: true });
    throw new UserError(
      `None of the ${files.length.toLocaleString('en-US')} image(s) could be read (${skipped[0]!.reason.replace(/\.$/, '')}), so ${out} was not written; check the files.`,
    );
  }
  await writeEmbeddingOutput(
    out,
    {
      format: EMBEDDINGS_FORMAT,
      model: model.identity,
      normalized: !values.raw,
      exifRotate: values['exif-rotate'] ?? false,
      dim: E,
      rows: okIndex.length,
      listing: { total: all.length, sha256: listingSha256(all), shard: shard.count > 1 ? shard : null },
      files: okIndex.map((i) => present(files[i], 'embedded file')),
      indices: okIndex.map((i) => present(positions[i], 'embedded file position')),
      skipped,
    },
    readRows(partial, okIndex.length, E),
  );
  await rm(partial, { force: true });
  await rm(journalPath, { force: true });
  finishSkipped(
    `Embedded ${okIndex.length.toLocaleString('en-US')} image(s) into ${out} (file names and model in ${metaPath(out)})`,
    skipped,
    values,
  );
}

/** The partial file's first `rows` rows, a block at a time. */
async function* readRows(partial: string, rows: number, E: number): AsyncGenerator<Float32Array> {
  const handle = await open(partial, 'r');
  try {
    for (let row = 0; row < rows; row += ROWS_PER_READ) {
      const count = Math.min(ROWS_PER_READ, rows - row);
      const block = new Float32Array(count * E);
      const { bytesRead } = await handle.read(new Uint8Array(block.buffer), 0, block.byteLength, row * E * 4);
      if (bytesRead !== block.byteLength)
        throw new Error(`${partial} ended at row ${row} of ${rows}, after the journal was checked against it`);
      yield block;
    }
  } finally {
    await handle.close();
  }
}

interface JournalEntry {
  file: string;
  ok: boolean;
  reason?: string;
}
interface Journal {
  settings: unknown;
  model?: ModelIdentity;
  entries: JournalEntry[];
}

/** One JSON line per file, so any name (tabs, newlines) is kept exactly. */
const journalLine = (e: JournalEntry): string =>
  `${JSON.stringify(e.ok ? { file: e.file, ok: true } : { file: e.file, ok: false, reason: e.reason })}\n`;

async function rewriteJournal(
  path: string,
  settings: unknown,
  model: ModelIdentity,
  entries: readonly JournalEntry[],
): Promise<void> {
  await writeDurable(path, [
    `${JSON.stringify({ settings })}\n${JSON.stringify({ model })}\n`,
    ...entries.map(journalLine),
  ]);
}

async function readJournal(path: string): Promise<Journal | undefined> {
  const text = await readFile(path, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  // A line cut by a crash has no newline yet: it never counted.
  const journal: Journal = { settings: undefined, entries: [] };
  for (const line of text.split('\n').slice(0, -1)) {
    let value: { settings?: unknown; model?: unknown; file?: unknown; ok?: unknown; reason?: unknown };
    try {
      value = JSON.parse(line) as typeof value;
    } catch {
      throw new UserError(
        `${path} is damaged (a line is not JSON); delete ${path.replace(/\.journal$/, '')}* to start over.`,
      );
    }
    if ('settings' in value) journal.settings = value.settings;
    else if ('model' in value && isModelIdentity(value.model)) journal.model = value.model;
    else if (typeof value.file === 'string')
      journal.entries.push({
        file: value.file,
        ok: value.ok === true,
        reason: typeof value.reason === 'string' ? value.reason : undefined,
      });
  }
  return journal;
}

/** Writes the pieces into a temporary file beside `path`, synced, then renames it into place. */
export async function writeAtomic(path: string, pieces: readonly (string | Uint8Array)[]): Promise<void> {
  await writeDurable(path, pieces);
}
