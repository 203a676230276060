/**
 * The files of `whylesion embed DIR --out OUT` and `whylesion merge` (README, "Large collections"): the data file OUT (.npy, .jsonl or .parquet) and the
 * sidecar OUT.meta.json naming the model, the listing and every row's file. Written so that the pair always
 * matches: data then sidecar to temporary files, each synced, then renamed into place in that order.
 */
import { createHash } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { UserError } from '../errors.js';
import { fsyncFolder, isDiskFull } from './durable.js';
import type { ModelIdentity } from './identity.js';
import { writeNpyHeader } from './npy.js';
import { writeParquetEmbeddings, type RowBatch } from './parquet.js';

export const EMBEDDINGS_FORMAT = 'whylesion-embeddings/1';
export type EmbeddingFormat = 'npy' | 'jsonl' | 'parquet';

export interface EmbeddingMeta {
  format: typeof EMBEDDINGS_FORMAT;
  model: ModelIdentity;
  normalized: boolean;
  exifRotate: boolean;
  dim: number;
  rows: number;
  listing: { total: number; sha256: string; shard: { index: number; count: number } | null };
  files: string[];
  indices: number[];
  skipped: { file: string; index: number; reason: string }[];
  dataSha256: string;
}

/** The sidecar's path beside a data file. */
export const metaPath = (out: string): string => `${out}.meta.json`;

/** sha256 hex of the full sorted listing joined by '\n' (the sidecar's listing.sha256). */
export function listingSha256(files: readonly string[]): string {
  return createHash('sha256').update(files.join('\n')).digest('hex');
}

/** The sidecar in its fixed key order (merge reproduces it byte for byte). */
export function serializeMeta(meta: EmbeddingMeta): string {
  const { format, model, normalized, exifRotate, dim, rows, listing, files, indices, skipped, dataSha256 } = meta;
  const ordered = {
    format,
    model: { weights: model.weights, config: model.config, dtype: model.dtype, source: model.source },
    normalized,
    exifRotate,
    dim,
    rows,
    listing: {
      total: listing.total,
      sha256: listing.sha256,
      shard: listing.shard && { index: listing.shard.index, count: listing.shard.count },
    },
    files,
    indices,
    skipped: skipped.map((s) => ({ file: s.file, index: s.index, reason: s.reason })),
    dataSha256,
  };
  return `${JSON.stringify(ordered)}\n`;
}

/** The format an output path names by its extension, or undefined. */
export function embeddingFormat(path: string): EmbeddingFormat | undefined {
  return path.endsWith('.npy')
    ? 'npy'
    : path.endsWith('.jsonl')
      ? 'jsonl'
      : path.endsWith('.parquet')
        ? 'parquet'
        : undefined;
}

/**
 * Writes OUT and OUT.meta.json from `rows`: row blocks (float32 blocks of whole rows named by meta.files in order,
 * e.g. read piece by piece from a partial file, or RowBatches whose names are checked against meta.files), so a
 * corpus larger than memory streams through. `meta.dataSha256` is computed here. On failure nothing is left behind
 * (no .tmp) and whatever OUT held before stays; a full disk is a UserError ending in `diskFullAdvice`.
 */
export async function writeEmbeddingOutput(
  out: string,
  meta: Omit<EmbeddingMeta, 'dataSha256'>,
  rows: AsyncIterable<RowBatch | Float32Array> | Iterable<RowBatch | Float32Array>,
  options: { diskFullAdvice?: string } = {},
): Promise<EmbeddingMeta> {
  const format = embeddingFormat(out);
  if (!format) throw new UserError(`--out ${out} must end in .npy, .jsonl or .parquet.`);
  const dataTmp = `${out}.${process.pid}.tmp`,
    sidecar = metaPath(out),
    sidecarTmp = `${sidecar}.${process.pid}.tmp`;
  let full: EmbeddingMeta;
  try {
    const checked = checkedBlocks(rows, meta);
    const dataSha256 =
      format === 'parquet'
        ? await writeParquetEmbeddings(dataTmp, meta, checked)
        : await writeStreamed(dataTmp, format, meta, checked);
    full = { ...meta, dataSha256 };
    const metaHandle = await open(sidecarTmp, 'w');
    try {
      await metaHandle.appendFile(serializeMeta(full));
      await metaHandle.sync();
    } finally {
      await metaHandle.close();
    }
    await rename(dataTmp, out);
    await rename(sidecarTmp, sidecar);
  } catch (error) {
    // Best effort: where the temporaries could not be created (no folder) there is nothing to remove.
    await rm(dataTmp, { force: true }).catch(() => undefined);
    await rm(sidecarTmp, { force: true }).catch(() => undefined);
    if (isDiskFull(error)) {
      throw new UserError(
        `The disk holding ${out} is full, so it was not written; ${options.diskFullAdvice ?? 'free some space and run the same command with --resume to finish'}.`,
        { cause: error },
      );
    }
    const code = (error as NodeJS.ErrnoException).code;
    if (code && ['ENOENT', 'EACCES', 'EPERM', 'EROFS', 'EISDIR', 'ENOTDIR'].includes(code)) {
      throw new UserError(
        `Cannot write ${out} (${code}); check that its folder exists, is writable and has room (nothing was written).`,
        { cause: error },
      );
    }
    throw error;
  }
  fsyncFolder(dirname(out));
  return full;
}

/** The rows as float32 blocks, checked against the sidecar they will be listed in (a mismatch is a bug). */
async function* checkedBlocks(
  rows: AsyncIterable<RowBatch | Float32Array> | Iterable<RowBatch | Float32Array>,
  meta: Omit<EmbeddingMeta, 'dataSha256'>,
): AsyncIterable<Float32Array> {
  let row = 0;
  for await (const item of rows) {
    const block = item instanceof Float32Array ? item : item.data;
    const n = block.length / meta.dim;
    if (!Number.isInteger(n))
      throw new Error(`writeEmbeddingOutput: a block of ${block.length} values is not whole rows of ${meta.dim}`);
    if (!(item instanceof Float32Array)) {
      if (item.files.length !== n)
        throw new Error(`writeEmbeddingOutput: a batch of ${item.files.length} names holds ${n} rows`);
      item.files.forEach((file, k) => {
        if (file !== meta.files[row + k])
          throw new Error(`writeEmbeddingOutput: row ${row + k} is ${file}, the sidecar lists ${meta.files[row + k]}`);
      });
    }
    row += n;
    yield block;
  }
  if (row !== meta.rows) throw new Error(`writeEmbeddingOutput: ${row} rows written, the sidecar says ${meta.rows}`);
}

/** .npy or .jsonl to `path`, synced; returns the hex sha256 of the bytes written. */
async function writeStreamed(
  path: string,
  format: 'npy' | 'jsonl',
  meta: Omit<EmbeddingMeta, 'dataSha256'>,
  blocks: AsyncIterable<Float32Array>,
): Promise<string> {
  const hash = createHash('sha256');
  const handle = await open(path, 'w');
  try {
    const put = async (bytes: Uint8Array): Promise<void> => {
      hash.update(bytes);
      await handle.appendFile(bytes);
    };
    if (format === 'npy') await put(writeNpyHeader([meta.rows, meta.dim]));
    let row = 0;
    for await (const block of blocks) {
      if (format === 'npy') {
        await put(new Uint8Array(block.buffer, block.byteOffset, block.byteLength));
      } else {
        // Per block: a corpus of tens of thousands of rows is longer than the longest JavaScript string.
        let text = '';
        for (let r = 0; r < block.length / meta.dim; r++, row++) {
          text += `${JSON.stringify({ file: meta.files[row], embedding: Array.from(block.subarray(r * meta.dim, (r + 1) * meta.dim)) })}\n`;
        }
        await put(new TextEncoder().encode(text));
      }
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
  return hash.digest('hex');
}
