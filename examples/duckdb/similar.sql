-- The 5 images most similar to one of them, by cosine, straight from the Parquet file that whylesion embed or
-- merge writes (no import step). DuckDB reads the embedding column as FLOAT[]; array_cosine_similarity takes
-- fixed-size arrays, so cast to FLOAT[768] (the model's width: the file's key-value metadata `whylesion` says "dim").
--   duckdb -c ".read examples/duckdb/similar.sql"      (edit the file and image names first)
SET VARIABLE query = (SELECT embedding::FLOAT[768] FROM 'isic.parquet' WHERE file = 'isic/ISIC_0000000.jpg');
SELECT file, array_cosine_similarity(embedding::FLOAT[768], getvariable('query')) AS cosine
FROM 'isic.parquet'
ORDER BY cosine DESC, file
LIMIT 5;

-- What the file says about itself: model identity, dtype, normalization, rows, listing.
SELECT decode(value) AS whylesion FROM parquet_kv_metadata('isic.parquet') WHERE decode(key) = 'whylesion';
