import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm, truncate, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { UserError } from '../errors.js';
import { writeNpy } from '../io/npy.js';
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
  --out FILE.npy|FILE.jsonl  float32 [N, E] .npy with FILE.npy.files.txt (one path per row), or JSON lines
                             {"file", "embedding"}
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
  if (!out) throw new UserError('Embedding a folder or glob needs --out FILE.npy or FILE.jsonl; see whylesion embed --help.');
  const format = out.endsWith('.npy') ? 'npy' : out.endsWith('.jsonl') ? 'jsonl' : undefined;
  if (!format) throw new UserError(`--out ${out} must end in .npy or .jsonl.`);
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
  finishSkipped(`Embedded ${ok.length.toLocaleString('en-US')} image(s) into ${out}${format === 'npy' ? ` (file names in ${out}.files.txt)` : ''}`, skipped, values);
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
