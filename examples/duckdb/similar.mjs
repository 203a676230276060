// The K images of a whylesion Parquet file most similar to one of them, by cosine, computed by DuckDB
// (array_cosine_similarity over the file as is). Prints JSON lines {"file", "cosine"}, best first.
//   npm install @duckdb/node-api    (not a dependency of whylesion)
//   node examples/duckdb/similar.mjs isic.parquet isic/ISIC_0000000.jpg [K]
import { DuckDBInstance } from '@duckdb/node-api';

const [file, image, k = '5'] = process.argv.slice(2);
if (!file || !image) throw new Error('usage: node examples/duckdb/similar.mjs FILE.parquet IMAGE_NAME [K]');
const connection = await (await DuckDBInstance.create(':memory:')).connect();
const quote = (s) => `'${s.replaceAll("'", "''")}'`;
// The width is in the file's own metadata (the sidecar's head, as JSON under the key `whylesion`).
const [{ meta }] = (
  await connection.runAndReadAll(
    `SELECT decode(value) AS meta FROM parquet_kv_metadata(${quote(file)}) WHERE decode(key) = 'whylesion'`,
  )
).getRowObjectsJson();
const { dim } = JSON.parse(meta);
const [{ found }] = (
  await connection.runAndReadAll(
    `SELECT count(*)::INTEGER AS found FROM read_parquet(${quote(file)}) WHERE file = ${quote(image)}`,
  )
).getRowObjectsJson();
if (found !== 1) throw new Error(`${image} is not in ${file}`);
const rows = (
  await connection.runAndReadAll(`
  SET VARIABLE query = (SELECT embedding::FLOAT[${dim}] FROM read_parquet(${quote(file)}) WHERE file = ${quote(image)});
  SELECT file, array_cosine_similarity(embedding::FLOAT[${dim}], getvariable('query')) AS cosine
  FROM read_parquet(${quote(file)}) ORDER BY cosine DESC, file LIMIT ${Number(k)}`)
).getRowObjectsJson();
for (const row of rows) console.log(JSON.stringify({ file: row.file, cosine: Number(row.cosine) }));
