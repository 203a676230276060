import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PARQUET_ROW_GROUP_ROWS, readParquetEmbeddings, writeParquetEmbeddings } from '../src/io/parquet.js';
import { randomArray } from './helpers.js';

const work = mkdtempSync(join(tmpdir(), 'whylesion-parquet-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('Parquet embeddings', () => {
  const dim = 12,
    rows = PARQUET_ROW_GROUP_ROWS * 2 + 37; // three row groups, the last one short
  const data = randomArray(rows * dim, 3);
  const files = Array.from({ length: rows }, (_, i) => `dir/${i}.jpg`);
  const meta = {
    format: 'whylesion-embeddings/1',
    model: { weights: 'w', config: 'c', dtype: 'f32', source: 's' },
    normalized: false,
    exifRotate: false,
    dim,
    rows,
    listing: { total: rows, sha256: 'x', shard: null },
    files,
  };

  it('the bytes depend only on the rows: batches of any size, named or bare float32 blocks; read back exactly', async () => {
    async function* named(size: number) {
      for (let i = 0; i < rows; i += size)
        yield { files: files.slice(i, i + size), data: data.slice(i * dim, Math.min(rows, i + size) * dim) };
    }
    function* bare(size: number) {
      for (let i = 0; i < rows; i += size) yield data.slice(i * dim, Math.min(rows, i + size) * dim);
    }
    const a = join(work, 'a.parquet'),
      b = join(work, 'b.parquet'),
      c = join(work, 'c.parquet');
    const hashA = await writeParquetEmbeddings(a, meta, named(1000));
    await writeParquetEmbeddings(b, meta, named(1));
    await writeParquetEmbeddings(c, meta, bare(333));
    expect(readFileSync(b).equals(readFileSync(a))).toBe(true);
    expect(readFileSync(c).equals(readFileSync(a))).toBe(true);
    expect(hashA).toMatch(/^[0-9a-f]{64}$/);
    const back = await readParquetEmbeddings(a);
    expect(back.direct).toBe(true); // read straight from the file (parquet-plain.ts)
    const decoded = await readParquetEmbeddings(a, { direct: false });
    expect(decoded.direct).toBe(false);
    expect(Buffer.from(decoded.data.buffer).equals(Buffer.from(back.data.buffer))).toBe(true);
    expect(back.files).toEqual(files);
    expect(back.dim).toBe(dim);
    expect(Buffer.from(back.data.buffer).equals(Buffer.from(data.buffer))).toBe(true);
    const { files: _files, ...head } = meta;
    expect(back.keyValue).toEqual(head);
  });

  it('a file of another layout (dictionary pages, Snappy, nullable items, one big row group) is decoded by parquet-wasm, exactly', async () => {
    const arrow = await import('apache-arrow');
    const parquet = await import('parquet-wasm/node');
    // Nullable items with Snappy; required items with Snappy and dictionary pages.
    for (const [nullable, dictionary] of [
      [true, false],
      [false, true],
    ] as [boolean, boolean][]) {
      const listType = new arrow.FixedSizeList(dim, new arrow.Field('item', new arrow.Float32(), nullable));
      const schema = new arrow.Schema([
        new arrow.Field('file', new arrow.Utf8(), false),
        new arrow.Field('embedding', listType, nullable),
      ]);
      const embedding = arrow.makeData({
        type: listType,
        length: rows,
        nullCount: 0,
        child: arrow.makeData({ type: new arrow.Float32(), length: rows * dim, data }),
      });
      const batch = new arrow.RecordBatch(
        schema,
        arrow.makeData({
          type: new arrow.Struct(schema.fields),
          length: rows,
          nullCount: 0,
          children: [arrow.vectorFromArray(files, new arrow.Utf8()).data[0]!, embedding],
        }),
      );
      const properties = new parquet.WriterPropertiesBuilder()
        .setCompression(parquet.Compression.SNAPPY)
        .setDictionaryEnabled(dictionary)
        .build();
      const other = join(work, `other-${nullable}.parquet`);
      writeFileSync(
        other,
        parquet.writeParquet(
          parquet.Table.fromIPCStream(arrow.tableToIPC(new arrow.Table([batch]), 'stream')),
          properties,
        ),
      );
      const back = await readParquetEmbeddings(other);
      expect(back.direct).toBe(false);
      expect(back.files).toEqual(files);
      expect(Buffer.from(back.data.buffer).equals(Buffer.from(data.buffer))).toBe(true);
    }
  });
});
