import { readFile } from 'node:fs/promises';
import type { WhyLesionModel } from '../api/model.js';
import { UserError } from '../errors.js';
import { readNpy } from '../io/npy.js';
import { MODEL_OPTIONS, MODEL_USAGE, parseCommand } from './args.js';
import { embedCorpus, CORPUS_OPTIONS, CORPUS_USAGE } from './corpus.js';
import { checkReadable, loadModelFromArgs } from './load.js';

const USAGE = `
Usage: whylesion embed [--image FILE]... [--pixels FILE.npy]... [--text STR]... [--tokens FILE.json] [--json] [--raw]
       whylesion embed DIR|GLOB... --out FILE.npy|FILE.jsonl|FILE.parquet [--batch 16] [--shard i/n|auto] [--resume]

Embeds images and texts. Rows come in argument order: every --image/--pixels row, then every --text/--tokens row.
  --image FILE        an image file (PNG, JPEG, BMP, GIF, TIFF)
  --pixels FILE.npy   preprocessed float32 pixels [3,S,S] or [B,3,S,S]
  --text STR          a prompt
  --tokens FILE.json  token ids: a JSON array of id arrays (zero-padded to the context length if shorter)
  --json              print {"image": [[...]], "text": [[...]]}
  --raw               unnormalized embeddings (default: L2-normalized)
${CORPUS_USAGE}${MODEL_USAGE}`;

export async function embedCommand(argv: string[]): Promise<void> {
  const parsed = parseCommand(
    'embed',
    argv,
    {
      ...MODEL_OPTIONS,
      ...CORPUS_OPTIONS,
      image: { type: 'string', multiple: true },
      pixels: { type: 'string', multiple: true },
      text: { type: 'string', multiple: true },
      tokens: { type: 'string', multiple: true },
      json: { type: 'boolean' },
      raw: { type: 'boolean' },
    },
    USAGE,
  );
  if (!parsed) return;
  const { values, positionals } = parsed;
  const given = (names: readonly string[]): string[] =>
    names.filter((n) => (values as Record<string, unknown>)[n] !== undefined).map((n) => `--${n}`);
  if (positionals.length > 0) {
    const stray = given(['image', 'pixels', 'text', 'tokens', 'json']);
    if (stray.length > 0)
      throw new UserError(
        `${stray.join(', ')} cannot be combined with a folder or glob (corpus mode writes --out); run them separately.`,
      );
    await embedCorpus(positionals, values);
    return;
  }
  const corpusOnly = given(Object.keys(CORPUS_OPTIONS));
  if (corpusOnly.length > 0)
    throw new UserError(
      `${corpusOnly.join(', ')} apply only to embedding a folder or glob; pass one (e.g. whylesion embed images/ --out vectors.npy).`,
    );
  const images = values.image ?? [],
    pixelFiles = values.pixels ?? [],
    texts = values.text ?? [],
    tokenFiles = values.tokens ?? [];
  if (images.length + pixelFiles.length + texts.length + tokenFiles.length === 0) {
    throw new UserError(
      'Nothing to embed; pass --image, --pixels, --text or --tokens (or a folder with --out); see whylesion embed --help.',
    );
  }
  await checkReadable(images, 'image');
  await checkReadable(pixelFiles, 'pixels file');
  await checkReadable(tokenFiles, 'tokens file');
  const model = await loadModelFromArgs(values, undefined, { warmShaders: images.length + pixelFiles.length > 0 });
  try {
    const normalize = !values.raw;
    const imageRows: { name: string; row: Float32Array }[] = [];
    for (const [i, row] of (await model.encodeImage(images, { normalize })).entries())
      imageRows.push({ name: images[i]!, row });
    for (const file of pixelFiles) {
      const { pixels, batch } = await readPixels(file, model);
      (await model.encodePixels(pixels, batch, { normalize })).forEach((row, i) => {
        imageRows.push({ name: batch > 1 ? `${file}[${i}]` : file, row });
      });
    }
    const textRows: { name: string; row: Float32Array }[] = [];
    (await model.encodeText(texts, { normalize })).forEach((row, i) => {
      textRows.push({ name: JSON.stringify(texts[i]), row });
    });
    for (const file of tokenFiles) {
      const { ids, batch } = await readTokens(file, model.inputs.contextLength);
      (await model.encodeTokens(ids, batch, { normalize })).forEach((row, i) => {
        textRows.push({ name: `${file}[${i}]`, row });
      });
    }
    if (values.json) {
      console.log(
        JSON.stringify({
          image: imageRows.map((r) => Array.from(r.row)),
          text: textRows.map((r) => Array.from(r.row)),
        }),
      );
    } else {
      for (const [kind, rows] of [
        ['image', imageRows],
        ['text', textRows],
      ] as const) {
        for (const { name, row } of rows)
          console.log(
            `${kind}\t${name}\t[${Array.from(row.subarray(0, 4), (v) => v.toFixed(4)).join(', ')}, ...] (${row.length} dims)`,
          );
      }
    }
  } finally {
    model.dispose();
  }
}

async function readPixels(file: string, model: WhyLesionModel): Promise<{ pixels: Float32Array; batch: number }> {
  const bytes = await readFile(file).catch((cause: unknown) => {
    throw new UserError(`Cannot read the pixels file ${file}; check the path.`, { cause });
  });
  const array = readNpy(bytes, file);
  const s = model.inputs.imageSize;
  const shape = array.shape.length === 3 ? [1, ...array.shape] : array.shape;
  if (array.dtype !== 'float32' || shape.length !== 4 || shape[1] !== 3 || shape[2] !== s || shape[3] !== s) {
    throw new UserError(
      `${file} holds ${array.dtype} (${array.shape.join(', ')}); the model needs float32 [3, ${s}, ${s}] or [B, 3, ${s}, ${s}] (see whylesion preprocess).`,
    );
  }
  return { pixels: array.data as Float32Array, batch: shape[0]! };
}

async function readTokens(file: string, context: number): Promise<{ ids: Int32Array; batch: number }> {
  let rows: unknown;
  try {
    rows = JSON.parse(await readFile(file, 'utf8'));
  } catch (cause) {
    throw new UserError(
      `Cannot read ${file} as JSON token ids; it must be an array of id arrays like [[49406, 320, 49407]].`,
      { cause },
    );
  }
  if (
    !Array.isArray(rows) ||
    rows.length === 0 ||
    !rows.every((r) => Array.isArray(r) && r.every((v) => Number.isInteger(v)))
  ) {
    throw new UserError(`${file} must hold a non-empty JSON array of integer id arrays like [[49406, 320, 49407]].`);
  }
  const ids = new Int32Array(rows.length * context);
  (rows as number[][]).forEach((row, i) => {
    if (row.length > context)
      throw new UserError(`${file} row ${i} has ${row.length} ids; the context length is ${context}.`);
    ids.set(row, i * context);
  });
  return { ids, batch: rows.length };
}
