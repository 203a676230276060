import { createHash } from 'node:crypto';
import { openAsBlob } from 'node:fs';
import { open } from 'node:fs/promises';
import type { DataType, FixedSizeList, RecordBatch } from 'apache-arrow';
import type { ParquetFile } from 'parquet-wasm/node';
import { UserError, present } from '../errors.js';
import { plainEmbeddingLayout, readPlainRowGroup } from './parquet-plain.js';

/*
 * Embeddings as Parquet (README, "Large collections"): columns `file` (UTF8, required) and `embedding`
 * (FixedSizeList<float32, dim>, stored by parquet-rs as a LIST with the Arrow schema in ARROW:schema so Arrow readers
 * get the fixed-size list back), the sidecar without its per-row lists in the key-value metadata `whylesion`.
 * Written by parquet-rs (the `parquet-wasm` package) from Arrow record batches built with `apache-arrow`.
 */

type Arrow = typeof import('apache-arrow');

/** Loaded on first use: most runs never touch Parquet, and parquet-wasm compiles 5 MB of WebAssembly on import. */
async function libraries(): Promise<{ arrow: Arrow; parquet: typeof import('parquet-wasm/node') }> {
  const [arrow, parquet] = await Promise.all([import('apache-arrow'), import('parquet-wasm/node')]);
  return { arrow, parquet };
}

/** Rows per row group: every row group is one batch, so the file's bytes depend only on the rows (merge = embed). */
export const PARQUET_ROW_GROUP_ROWS = 2048;
export const PARQUET_METADATA_KEY = 'whylesion';

/** Rows to write: consecutive rows, `data` holding files.length × dim float32 values. */
export interface RowBatch {
  files: readonly string[];
  data: Float32Array;
}

/** The key-value metadata: the sidecar's fields without files, indices, skipped and dataSha256, in its key order. */
export function parquetKeyValue(meta: {
  format: string;
  model: object;
  normalized: boolean;
  exifRotate: boolean;
  dim: number;
  rows: number;
  listing: object;
}): string {
  const { format, model, normalized, exifRotate, dim, rows, listing } = meta;
  return JSON.stringify({ format, model, normalized, exifRotate, dim, rows, listing });
}

function embeddingType(arrow: Arrow, dim: number): FixedSizeList {
  return new arrow.FixedSizeList(dim, new arrow.Field('item', new arrow.Float32(), false));
}

function arrowBatch(arrow: Arrow, files: readonly string[], values: Float32Array, dim: number): RecordBatch {
  const { Field, Float32, makeData, RecordBatch, Schema, Struct, Utf8, vectorFromArray } = arrow;
  const schema = new Schema([
    new Field('file', new Utf8(), false),
    new Field('embedding', embeddingType(arrow, dim), false),
  ]);
  const n = files.length;
  const fileData = present(vectorFromArray(files as string[], new Utf8()).data[0], 'the file column');
  const child = makeData({ type: new Float32(), length: n * dim, data: values });
  const embedding = makeData({ type: embeddingType(arrow, dim), length: n, nullCount: 0, child });
  return new RecordBatch(
    schema,
    makeData({ type: new Struct(schema.fields), length: n, nullCount: 0, children: [fileData, embedding] }),
  );
}

/** Re-cuts batches of any size into batches of exactly `size` rows (the last may be shorter). */
async function* rebatch(rows: AsyncIterable<RowBatch>, dim: number, size: number): AsyncIterable<RowBatch> {
  let files: string[] = [];
  let data = new Float32Array(size * dim);
  for await (const batch of rows) {
    let taken = 0;
    while (taken < batch.files.length) {
      const n = Math.min(size - files.length, batch.files.length - taken);
      data.set(batch.data.subarray(taken * dim, (taken + n) * dim), files.length * dim);
      files.push(...batch.files.slice(taken, taken + n));
      taken += n;
      if (files.length === size) {
        yield { files, data };
        files = [];
        data = new Float32Array(size * dim);
      }
    }
  }
  if (files.length > 0) yield { files, data: data.subarray(0, files.length * dim) };
}

/** The sidecar's fields the file needs; `files` names the rows when they come as bare float32 blocks. */
export type ParquetMeta = Parameters<typeof parquetKeyValue>[0] & { files?: readonly string[] };

/** Rows as RowBatch, naming bare float32 blocks (embedding-output's writer passes those) from meta.files. */
async function* named(
  rows: AsyncIterable<RowBatch | Float32Array> | Iterable<RowBatch | Float32Array>,
  meta: ParquetMeta,
): AsyncIterable<RowBatch> {
  let row = 0;
  for await (const block of rows) {
    if (!(block instanceof Float32Array)) {
      row += block.files.length;
      yield block;
      continue;
    }
    const n = block.length / meta.dim;
    if (!meta.files || row + n > meta.files.length)
      throw new Error(`writeParquetEmbeddings: rows ${row}..${row + n} have no names in meta.files`);
    yield { files: meta.files.slice(row, row + n), data: block };
    row += n;
  }
}

/**
 * Writes the rows to `path` as Parquet, one row group per PARQUET_ROW_GROUP_ROWS rows, streaming (memory holds about
 * one row group), and fsyncs it. `rows` are RowBatches, or float32 blocks of whole rows named by meta.files in
 * order. Returns the hex sha256 of the bytes written.
 */
export async function writeParquetEmbeddings(
  path: string,
  meta: ParquetMeta,
  rows: AsyncIterable<RowBatch | Float32Array> | Iterable<RowBatch | Float32Array>,
): Promise<string> {
  const dim = meta.dim;
  const { arrow, parquet } = await libraries();
  const properties = new parquet.WriterPropertiesBuilder()
    .setKeyValueMetadata(new Map([[PARQUET_METADATA_KEY, parquetKeyValue(meta)]]))
    .setMaxRowGroupSize(PARQUET_ROW_GROUP_ROWS)
    .setCompression(parquet.Compression.UNCOMPRESSED) // float32 embeddings do not compress; keep reads cheap
    .setDictionaryEnabled(false)
    .setCreatedBy('whylesion (parquet-rs via parquet-wasm 0.8.0)')
    .build();
  const batches = rebatch(named(rows, meta), dim, PARQUET_ROW_GROUP_ROWS)[Symbol.asyncIterator]();
  let wroteAny = false;
  const input = new ReadableStream({
    async pull(controller) {
      const next = await batches.next();
      if (next.done && wroteAny) return controller.close();
      // A file with no rows still needs its schema: one empty batch.
      const batch = next.done ? { files: [], data: new Float32Array(0) } : next.value;
      wroteAny = true;
      const table = parquet.Table.fromIPCStream(
        arrow.tableToIPC(new arrow.Table([arrowBatch(arrow, batch.files, batch.data, dim)]), 'stream'),
      );
      for (const recordBatch of table.recordBatches()) controller.enqueue(recordBatch);
      if (next.done) controller.close();
    },
  });
  const output = await parquet.transformParquetStream(input, properties);
  const hash = createHash('sha256');
  const handle = await open(path, 'w');
  try {
    for await (const chunk of output as unknown as AsyncIterable<Uint8Array>) {
      hash.update(chunk);
      await handle.write(chunk);
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
  return hash.digest('hex');
}

export interface ParquetEmbeddings {
  rows: number;
  dim: number;
  /** The `whylesion` key-value metadata, parsed, or undefined when absent. */
  keyValue: unknown;
  /** Row chunks of at most maxRows (cut at row-group ends), in file order. */
  chunks(maxRows: number): AsyncIterable<{ first: number; rows: number; data: Float32Array }>;
  /** The `file` column of one row group. */
  files(rowGroup: number): Promise<string[]>;
  rowGroups: number;
  /** Whether the embedding column is read straight from the file (parquet-plain.ts) rather than decoded by parquet-wasm. */
  direct: boolean;
}

/** Opens an embeddings Parquet file lazily (byte ranges of the file, one row group at a time). */
export async function openParquetEmbeddings(
  path: string,
  options: { direct?: boolean } = {},
): Promise<ParquetEmbeddings> {
  const { arrow, parquet } = await libraries();
  const { DataType, Precision, tableFromIPC } = arrow;
  let file: ParquetFile;
  try {
    file = await parquet.ParquetFile.fromFile(await openAsBlob(path));
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException)?.code) throw cause;
    throw new UserError(
      `${path} is not a readable Parquet file (${String((cause as Error)?.message ?? cause).split('\n')[0]}); embed the folder again.`,
      { cause },
    );
  }
  const metadata = file.metadata();
  const fileMetadata = metadata.fileMetadata();
  const schema = tableFromIPC(file.schema().intoIPCStream()).schema;
  const names = schema.fields.map((f) => f.name);
  const unknown = names.filter((n) => n !== 'file' && n !== 'embedding');
  if (unknown.length > 0 || !names.includes('file') || !names.includes('embedding')) {
    throw new UserError(
      `${path} has the columns ${names.join(', ')}; a whylesion embeddings file has exactly file and embedding.`,
    );
  }
  const type: DataType = schema.fields.find((f) => f.name === 'embedding')!.type;
  const child: DataType | undefined = (type as FixedSizeList).children?.[0]?.type;
  if (!DataType.isFixedSizeList(type) || !child || !DataType.isFloat(child) || child.precision !== Precision.SINGLE) {
    throw new UserError(
      `${path}'s embedding column is ${String(type)}, not a fixed-size list of float32; write it with whylesion embed or merge.`,
    );
  }
  const dim = type.listSize;
  const rowGroups = metadata.numRowGroups();
  const groupRows = Array.from({ length: rowGroups }, (_, i) => metadata.rowGroup(i).numRows());
  const text = fileMetadata.keyValueMetadata().get(PARQUET_METADATA_KEY) as string | undefined;
  let keyValue: unknown;
  try {
    keyValue = text === undefined ? undefined : JSON.parse(text);
  } catch {
    keyValue = undefined;
  }
  // options.direct === false always decodes with parquet-wasm (tests compare the two readers).
  const plain = options.direct === false ? undefined : await plainEmbeddingLayout(path, dim);
  const direct =
    plain !== undefined &&
    plain.rowGroups.length === rowGroups &&
    plain.rowGroups.every((g, i) => g.rows === groupRows[i]);
  const readGroup = async (group: number, columns: string[]) =>
    tableFromIPC((await file.read({ rowGroups: [group], columns, batchSize: groupRows[group] || 1 })).intoIPCStream());
  const decodedRowGroup = async (group: number): Promise<Float32Array> => {
    const table = await readGroup(group, ['embedding']);
    const data = new Float32Array(table.numRows * dim);
    let offset = 0;
    for (const batch of table.batches) {
      const list = batch.getChild('embedding')!.data[0]!;
      const values = list.children[0]!;
      if (list.offset !== 0) throw new Error('parquet: a sliced embedding batch');
      data.set((values.values as Float32Array).subarray(values.offset, values.offset + list.length * dim), offset);
      offset += list.length * dim;
    }
    return data;
  };
  return {
    rows: fileMetadata.numRows(),
    dim,
    keyValue,
    rowGroups,
    direct,
    async files(group) {
      return (await readGroup(group, ['file'])).getChild('file')!.toArray() as string[];
    },
    async *chunks(maxRows) {
      let first = 0;
      for (let group = 0; group < rowGroups; group++) {
        const data = direct
          ? await readPlainRowGroup(path, plain!.rowGroups[group]!, dim)
          : await decodedRowGroup(group);
        const rows = data.length / dim;
        for (let at = 0; at < rows; at += maxRows) {
          const n = Math.min(maxRows, rows - at);
          yield { first: first + at, rows: n, data: data.subarray(at * dim, (at + n) * dim) };
        }
        first += rows;
      }
    },
  };
}

/** Every row of a (small) embeddings Parquet file: names, the float32 rows, the key-value metadata. */
export async function readParquetEmbeddings(
  path: string,
  options: { direct?: boolean } = {},
): Promise<{ files: string[]; dim: number; data: Float32Array; keyValue: unknown; direct: boolean }> {
  const opened = await openParquetEmbeddings(path, options);
  const files: string[] = [];
  for (let g = 0; g < opened.rowGroups; g++) files.push(...(await opened.files(g)));
  const data = new Float32Array(opened.rows * opened.dim);
  for await (const chunk of opened.chunks(PARQUET_ROW_GROUP_ROWS)) data.set(chunk.data, chunk.first * opened.dim);
  return { files, dim: opened.dim, data, keyValue: opened.keyValue, direct: opened.direct };
}
