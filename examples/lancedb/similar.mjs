// Creates a LanceDB table from a whylesion Parquet file and asks it for the K images most similar to one of them
// (cosine distance; a table without an index is searched exactly). The file's `embedding` column is Arrow's
// FixedSizeList<float32, dim> (kept in the file's ARROW:schema), which LanceDB takes as its vector column as is.
// Prints JSON lines {"file", "cosine"}, best first (cosine = 1 - LanceDB's cosine distance).
//   npm install @lancedb/lancedb@0.31.0 apache-arrow@18.1.0 parquet-wasm@0.8.0    (not dependencies of whylesion)
//   node examples/lancedb/similar.mjs isic.parquet isic/ISIC_0000000.jpg [K] [DB_DIR]
import { mkdtempSync, openAsBlob } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as lancedb from '@lancedb/lancedb';
import { ParquetFile } from 'parquet-wasm/node';

// LanceDB is CommonJS and checks `instanceof` against its own apache-arrow: take the same (CommonJS) copy.
const { tableFromIPC } = createRequire(import.meta.url)('apache-arrow');

const [file, image, k = '5', dbDir = mkdtempSync(join(tmpdir(), 'whylesion-lancedb-'))] = process.argv.slice(2);
if (!file || !image) throw new Error('usage: node examples/lancedb/similar.mjs FILE.parquet IMAGE_NAME [K] [DB_DIR]');
// Row group by row group, so a file larger than memory goes in piece by piece.
const parquet = await ParquetFile.fromFile(await openAsBlob(file));
const db = await lancedb.connect(dbDir);
let table;
for (let group = 0; group < parquet.metadata().numRowGroups(); group++) {
  const batch = tableFromIPC((await parquet.read({ rowGroups: [group] })).intoIPCStream());
  if (table) await table.add(batch);
  else table = await db.createTable('images', batch, { mode: 'overwrite' });
}
const [row] = await table
  .query()
  .where(`file = '${image.replaceAll("'", "''")}'`)
  .limit(1)
  .toArray();
if (!row) throw new Error(`${image} is not in ${file}`);
const hits = await table.search(Array.from(row.embedding)).distanceType('cosine').limit(Number(k)).toArray();
for (const hit of hits) console.log(JSON.stringify({ file: hit.file, cosine: 1 - hit._distance }));
