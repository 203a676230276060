import { createHash } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { UserError } from '../errors.js';
import { embeddingFormat, metaPath, type EmbeddingMeta } from './embedding-reader.js';
import { writeNpyHeader } from './npy.js';
import { writeParquetEmbeddings, type RowBatch } from './parquet.js';

/**
 * Writes an embeddings output (CONTRACT.md part 2) from streamed rows: the data to OUT.<pid>.tmp (fsync), the
 * sidecar with the data's sha256 to OUT.meta.json.<pid>.tmp (fsync), then renames data and sidecar into place and
 * fsyncs the folder. On any failure both temporaries are removed and nothing at OUT changes. `rows` must yield
 * exactly meta.rows rows with meta.files' names. (`merge` uses this; the `state` branch's writer does the same
 * for `embed`.)
 */
export async function writeEmbeddingFile(out: string, meta: Omit<EmbeddingMeta, 'dataSha256'>, rows: AsyncIterable<RowBatch>): Promise<EmbeddingMeta> {
  const format = embeddingFormat(out);
  if (!format) throw new UserError(`--out ${out} must end in .npy, .jsonl or .parquet.`);
  const dataTmp = `${out}.${process.pid}.tmp`, metaTmp = `${metaPath(out)}.${process.pid}.tmp`;
  try {
    let sha256: string;
    if (format === 'parquet') sha256 = await writeParquetEmbeddings(dataTmp, meta, checkedRows(rows, meta));
    else sha256 = await writeStreamed(dataTmp, format, meta, checkedRows(rows, meta));
    const full: EmbeddingMeta = { ...meta, dataSha256: sha256 };
    const handle = await open(metaTmp, 'w');
    try {
      await handle.writeFile(`${JSON.stringify(full)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(dataTmp, out);
    await rename(metaTmp, metaPath(out));
    const folder = await open(dirname(resolve(out)), 'r');
    try {
      await folder.sync();
    } finally {
      await folder.close();
    }
    return full;
  } catch (error) {
    // Best effort: where the temporaries could not be created (no folder) there is nothing to remove.
    await rm(dataTmp, { force: true }).catch(() => undefined);
    await rm(metaTmp, { force: true }).catch(() => undefined);
    const code = (error as NodeJS.ErrnoException).code;
    if (code && ['ENOENT', 'EACCES', 'EPERM', 'EROFS', 'ENOSPC', 'EISDIR', 'ENOTDIR', 'EDQUOT'].includes(code)) {
      throw new UserError(`Cannot write ${out} (${code}); check that its folder exists, is writable and has room (nothing was written).`, { cause: error });
    }
    throw error;
  }
}

/** Checks the streamed rows against the sidecar they will be listed in (a bug otherwise). */
async function* checkedRows(rows: AsyncIterable<RowBatch>, meta: Omit<EmbeddingMeta, 'dataSha256'>): AsyncIterable<RowBatch> {
  let row = 0;
  for await (const batch of rows) {
    if (batch.data.length !== batch.files.length * meta.dim) throw new Error(`writeEmbeddingFile: a batch of ${batch.files.length} rows holds ${batch.data.length} values`);
    batch.files.forEach((file, k) => {
      if (file !== meta.files[row + k]) throw new Error(`writeEmbeddingFile: row ${row + k} is ${file}, the sidecar lists ${meta.files[row + k]}`);
    });
    row += batch.files.length;
    yield batch;
  }
  if (row !== meta.rows) throw new Error(`writeEmbeddingFile: ${row} rows written, the sidecar says ${meta.rows}`);
}

async function writeStreamed(path: string, format: 'npy' | 'jsonl', meta: Omit<EmbeddingMeta, 'dataSha256'>, rows: AsyncIterable<RowBatch>): Promise<string> {
  const hash = createHash('sha256');
  const handle = await open(path, 'w');
  const E = meta.dim;
  const write = async (bytes: Uint8Array): Promise<void> => {
    hash.update(bytes);
    await handle.write(bytes);
  };
  try {
    if (format === 'npy') await write(writeNpyHeader([meta.rows, E]));
    for await (const batch of rows) {
      if (format === 'npy') await write(new Uint8Array(batch.data.buffer, batch.data.byteOffset, batch.data.byteLength));
      // Per batch: a corpus of tens of thousands of rows is longer than the longest JavaScript string.
      else await write(Buffer.from(batch.files.map((file, k) => `${JSON.stringify({ file, embedding: Array.from(batch.data.subarray(k * E, (k + 1) * E)) })}\n`).join('')));
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
  return hash.digest('hex');
}
