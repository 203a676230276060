import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { resolve } from 'node:path';
import { UserError, present } from '../errors.js';
import { identityKey, describeIdentity } from '../io/identity.js';
import { embeddingFormat, metaPath, writeEmbeddingOutput, type EmbeddingMeta } from '../io/embedding-output.js';
import { openEmbeddingRows, type EmbeddingRows, type RowChunk } from '../io/embedding-reader.js';
import type { RowBatch } from '../io/parquet.js';
import { parseCommand } from './args.js';
import { refuseToOverwrite } from './outputs.js';

const USAGE = `
Usage: whylesion merge --out ALL.npy|ALL.jsonl|ALL.parquet [--force] PART...

Puts the outputs of embed --shard i/n (or --shard auto) back together: the parts in any order and of any of the
three formats; ALL's extension picks the output's. The result (ALL and ALL.meta.json) is byte-identical to what one
unsharded whylesion embed DIR --out ALL writes. Refuses parts of different models or settings, of different
listings, overlapping or missing shards, an incomplete part, and a data file that does not match its sidecar's
sha256; ALL is written to a temporary file and renamed into place only when complete.
  --out FILE   the merged output (.npy, .jsonl or .parquet)
  --force      replace ALL if it exists (otherwise an existing ALL is refused)`;

/** Rows held per part at once: parts may be larger than memory, so they stream; together they stay near 64 MB. */
const MERGE_BUFFER_BYTES = 64 << 20;

export async function mergeCommand(argv: string[]): Promise<void> {
  const parsed = parseCommand('merge', argv, { out: { type: 'string' }, force: { type: 'boolean' } }, USAGE);
  if (!parsed) return;
  const { values, positionals: parts } = parsed;
  const out = values.out;
  if (!out) throw new UserError('merge needs --out ALL.npy, ALL.jsonl or ALL.parquet; see whylesion merge --help.');
  if (!embeddingFormat(out)) throw new UserError(`--out ${out} must end in .npy, .jsonl or .parquet.`);
  if (parts.length === 0)
    throw new UserError(
      'merge needs the parts to merge (the --out files of embed --shard); see whylesion merge --help.',
    );
  await refuseToOverwrite(out, values, '--out');
  const merged = await mergeEmbeddings(out, parts);
  process.stderr.write(
    `Merged ${parts.length} part(s), ${merged.rows.toLocaleString('en-US')} row(s)${merged.skipped.length > 0 ? ` (${merged.skipped.length} file(s) skipped by embed)` : ''}, into ${out} (file names and model in ${metaPath(out)}).\n`,
  );
}

/** Checks that the parts make up one whole listing, then writes them interleaved in listing order to `out`. */
export async function mergeEmbeddings(out: string, parts: readonly string[]): Promise<EmbeddingMeta> {
  const outPath = resolve(out);
  for (const part of parts) {
    if (resolve(part) === outPath)
      throw new UserError(`--out ${out} is also one of the parts; write the merge to a new file.`);
  }
  const opened: EmbeddingRows[] = [];
  for (const part of parts) opened.push(await openEmbeddingRows(part));
  const byShard = checkParts(
    parts,
    opened.map((o) => o.meta),
  );
  // Shard s's part, its rows and where the walk below is in its lists.
  const shards = byShard.map((index) => ({
    path: present(parts[index], `part ${index}`),
    rows: present(opened[index], `part ${index}`),
    row: 0,
    skip: 0,
  }));
  for (const { path, rows } of shards) await checkDataHash(path, rows.meta);

  const first = present(shards[0], 'shard 0').rows.meta;
  const count = shards.length;
  const files: string[] = [],
    indices: number[] = [];
  const skipped: EmbeddingMeta['skipped'] = [];
  // Position p belongs to shard p % count; walking the positions in order interleaves the parts' ascending lists.
  for (let p = 0; p < first.listing.total; p++) {
    const at = present(shards[p % count], `shard ${p % count}`);
    const meta = at.rows.meta;
    const file = at.row < meta.rows && meta.indices[at.row] === p ? meta.files[at.row] : undefined;
    const skip = at.skip < meta.skipped.length ? meta.skipped[at.skip] : undefined;
    if (file !== undefined) {
      files.push(file);
      indices.push(p);
      at.row++;
    } else if (skip?.index === p) {
      skipped.push(skip);
      at.skip++;
    } else {
      throw new UserError(
        `${at.path} does not account for position ${p} of the listing (neither a row nor a skipped file); embed that shard again.`,
      );
    }
  }
  const meta: Omit<EmbeddingMeta, 'dataSha256'> = {
    format: first.format,
    model: first.model,
    normalized: first.normalized,
    exifRotate: first.exifRotate,
    dim: first.dim,
    rows: files.length,
    listing: { total: first.listing.total, sha256: first.listing.sha256, shard: null },
    files,
    indices,
    skipped,
  };
  const rowsPerPart = Math.max(1, Math.floor(MERGE_BUFFER_BYTES / count / (first.dim * 4)));
  return writeEmbeddingOutput(
    out,
    meta,
    interleave(
      shards.map((s) => s.rows),
      meta,
      rowsPerPart,
    ),
    { diskFullAdvice: 'free some space and run the same merge again' },
  );
}

/** The parts' rows in listing order: position p comes from shard p % n. */
async function* interleave(
  parts: EmbeddingRows[],
  merged: Omit<EmbeddingMeta, 'dataSha256'>,
  rowsPerPart: number,
): AsyncIterable<RowBatch> {
  const E = merged.dim,
    n = parts.length;
  const readers = parts.map((part) => ({
    chunks: part.chunks(rowsPerPart)[Symbol.asyncIterator](),
    chunk: undefined as RowChunk | undefined,
    row: 0,
    meta: part.meta,
  }));
  const nextRow = async (shard: number): Promise<Float32Array> => {
    const r = readers[shard]!;
    while (!r.chunk || r.row >= r.chunk.first + r.chunk.rows) {
      const next = await r.chunks.next();
      if (next.done) throw new Error(`merge: shard ${shard} ran out of rows`);
      r.chunk = next.value;
    }
    const k = r.row - r.chunk.first;
    r.row++;
    return r.chunk.data.subarray(k * E, (k + 1) * E);
  };
  const batchRows = 1024;
  for (let start = 0; start < merged.rows; start += batchRows) {
    const files = merged.files.slice(start, start + batchRows);
    const data = new Float32Array(files.length * E);
    for (let k = 0; k < files.length; k++) data.set(await nextRow(merged.indices[start + k]! % n), k * E);
    yield { files, data };
  }
}

/** One sentence per way the parts can fail to make one whole; returns the part index of each shard 0..n-1. */
function checkParts(parts: readonly string[], metas: readonly EmbeddingMeta[]): number[] {
  const [first] = metas;
  if (!first) throw new Error('Bug: checkParts needs at least one part.');
  const name = (i: number) => parts[i];
  for (const [i, meta] of metas.entries()) {
    if (identityKey(meta.model) !== identityKey(first.model)) {
      throw new UserError(
        `${name(i)} was embedded by another model (${describeIdentity(meta.model)}) than ${name(0)} (${describeIdentity(first.model)}); merge only parts of one run.`,
      );
    }
    for (const setting of ['normalized', 'exifRotate', 'dim'] as const) {
      if (meta[setting] !== first[setting])
        throw new UserError(
          `${name(i)} has ${setting} ${meta[setting]} but ${name(0)} has ${first[setting]}; merge only parts embedded with the same settings.`,
        );
    }
    if (meta.listing.sha256 !== first.listing.sha256 || meta.listing.total !== first.listing.total) {
      throw new UserError(
        `${name(i)} was embedded from another file listing (${meta.listing.total} files) than ${name(0)} (${first.listing.total} files); merge only parts of one run over the same folder.`,
      );
    }
    const count = meta.listing.shard?.count ?? 1,
      firstCount = first.listing.shard?.count ?? 1;
    if (count !== firstCount)
      throw new UserError(
        `${name(i)} is a shard of ${count} but ${name(0)} of ${firstCount}; merge only parts of one --shard i/n split.`,
      );
  }
  const count = first.listing.shard?.count ?? 1;
  const byShard = new Array<number | undefined>(count).fill(undefined);
  for (const [i, meta] of metas.entries()) {
    const index = meta.listing.shard?.index ?? 0;
    const seen = byShard[index];
    if (seen !== undefined)
      throw new UserError(
        `${name(i)} and ${name(seen)} are both shard ${index}/${count} (overlapping parts); pass each shard once.`,
      );
    byShard[index] = i;
  }
  const missing = byShard.flatMap((part, index) => (part === undefined ? [`${index}/${count}`] : []));
  if (missing.length > 0)
    throw new UserError(
      `Shard${missing.length > 1 ? 's' : ''} ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', …' : ''} ${missing.length > 1 ? 'are' : 'is'} missing from the parts; embed ${missing.length > 1 ? 'them' : 'it'} with --shard and pass every part.`,
    );
  for (const [index, part] of byShard.entries()) {
    const meta = metas[part!]!;
    const owned = Math.max(0, Math.ceil((meta.listing.total - index) / count));
    const accounted = meta.rows + meta.skipped.length;
    const wrong = [...meta.indices, ...meta.skipped.map((s) => s.index)].find(
      (p) => p % count !== index || p >= meta.listing.total,
    );
    if (accounted !== owned || wrong !== undefined) {
      throw new UserError(
        `${name(part!)} is incomplete: shard ${index}/${count} owns ${owned} of the ${meta.listing.total} files but it holds ${meta.rows} rows and ${meta.skipped.length} skipped${wrong !== undefined ? ` (and position ${wrong}, not its own)` : ''}; finish it with embed --resume or embed that shard again.`,
      );
    }
  }
  return byShard as number[];
}

async function checkDataHash(part: string, meta: EmbeddingMeta): Promise<void> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(part, { highWaterMark: 4 << 20 })) hash.update(chunk as Buffer);
  if (hash.digest('hex') !== meta.dataSha256) {
    throw new UserError(
      `${part} does not match the sha256 in ${metaPath(part)} (changed or damaged after embed wrote it); embed that shard again.`,
    );
  }
}
