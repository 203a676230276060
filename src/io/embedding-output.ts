/**
 * The files of `whylesion embed DIR --out OUT` (CONTRACT.md part 2): the data file OUT (.npy or .jsonl) and the
 * sidecar OUT.meta.json naming the model, the listing and every row's file. Written so that the pair always
 * matches: data then sidecar to temporary files, each synced, then renamed into place in that order.
 */
import { createHash } from 'node:crypto';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { UserError } from '../errors.js';
import { fsyncFolder, isDiskFull } from './durable.js';
import type { ModelIdentity } from './identity.js';
import { writeNpyHeader } from './npy.js';

export const EMBEDDINGS_FORMAT = 'whylesion-embeddings/1';

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
function serializeMeta(meta: EmbeddingMeta): string {
  const { format, model, normalized, exifRotate, dim, rows, listing, files, indices, skipped, dataSha256 } = meta;
  const ordered = {
    format,
    model: { weights: model.weights, config: model.config, dtype: model.dtype, source: model.source },
    normalized, exifRotate, dim, rows,
    listing: { total: listing.total, sha256: listing.sha256, shard: listing.shard && { index: listing.shard.index, count: listing.shard.count } },
    files, indices,
    skipped: skipped.map((s) => ({ file: s.file, index: s.index, reason: s.reason })),
    dataSha256,
  };
  return `${JSON.stringify(ordered)}\n`;
}

/**
 * Writes OUT and OUT.meta.json from `rows` (an iterable of row blocks, e.g. read piece by piece from a partial
 * file: a corpus may exceed memory). `meta.dataSha256` is computed here. On failure nothing is left behind
 * (no .tmp) and whatever OUT held before stays; a full disk is a UserError.
 */
export async function writeEmbeddingOutput(out: string, meta: Omit<EmbeddingMeta, 'dataSha256'>, rows: AsyncIterable<Float32Array> | Iterable<Float32Array>): Promise<EmbeddingMeta> {
  if (out.endsWith('.parquet')) return writeParquetOutput(out);
  const format = out.endsWith('.npy') ? 'npy' : out.endsWith('.jsonl') ? 'jsonl' : undefined;
  if (!format) throw new UserError(`--out ${out} must end in .npy or .jsonl.`);
  const dataTmp = `${out}.${process.pid}.tmp`, sidecar = metaPath(out), sidecarTmp = `${sidecar}.${process.pid}.tmp`;
  const hash = createHash('sha256');
  let full: EmbeddingMeta;
  try {
    const handle = await open(dataTmp, 'w');
    try {
      const put = async (bytes: Uint8Array): Promise<void> => {
        hash.update(bytes);
        await handle.appendFile(bytes);
      };
      if (format === 'npy') await put(writeNpyHeader([meta.rows, meta.dim]));
      let row = 0;
      for await (const block of rows) {
        if (format === 'npy') {
          await put(new Uint8Array(block.buffer, block.byteOffset, block.byteLength));
        } else {
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
    full = { ...meta, dataSha256: hash.digest('hex') };
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
    await rm(dataTmp, { force: true });
    await rm(sidecarTmp, { force: true });
    if (isDiskFull(error)) throw new UserError(`The disk holding ${out} is full, so it was not written; free some space and run the same command with --resume to finish.`, { cause: error });
    throw error;
  }
  fsyncFolder(dirname(out));
  return full;
}

/** Until the Parquet writer (src/io/parquet.ts) lands: .parquet is refused. */
function writeParquetOutput(out: string): never {
  throw new UserError(`--out ${out}: Parquet output is not available in this build; use .npy or .jsonl.`);
}

/** Reads and checks OUT.meta.json (a UserError naming the file when it is missing or not a sidecar). */
export async function readEmbeddingMeta(out: string): Promise<EmbeddingMeta> {
  const path = metaPath(out);
  let meta: Partial<EmbeddingMeta>;
  try {
    meta = JSON.parse(await readFile(path, 'utf8')) as Partial<EmbeddingMeta>;
  } catch (cause) {
    throw new UserError(`Cannot read ${path} (${(cause as NodeJS.ErrnoException).code ?? 'not JSON'}); it must be the sidecar whylesion embed wrote beside ${out}.`, { cause });
  }
  if (meta?.format !== EMBEDDINGS_FORMAT || !Array.isArray(meta.files) || !Array.isArray(meta.indices) || typeof meta.dim !== 'number' ||
      typeof meta.rows !== 'number' || meta.files.length !== meta.rows || typeof meta.dataSha256 !== 'string') {
    throw new UserError(`${path} is not a ${EMBEDDINGS_FORMAT} sidecar (or is damaged); embed ${out} again.`);
  }
  return meta as EmbeddingMeta;
}
