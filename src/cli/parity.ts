import { execFile } from 'node:child_process';
import { access, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundledAsset, packageFile } from '../assets.js';
import { UserError } from '../errors.js';
import { readNpy, writeNpy } from '../io/npy.js';
import { compareTowers, rowCosines, maxAbsAndRelative, type ComparedPair } from '../parity/compare.js';
import { findPython } from '../parity/python.js';
import { openClip } from '../families/index.js';
import { openCheckpoint } from '../io/checkpoint.js';
import { resolveModelDir } from '../io/hub.js';
import { DEFAULT_MODEL, MODEL_OPTIONS, MODEL_USAGE, parseCommand, parseDtype, positiveInteger } from './args.js';
import { checkReadable, loadModelFromArgs } from './load.js';

const PROBE_IMAGES = ['lesion_rgb.png', 'lesion_q90.jpg', 'lesion_gray.png', 'lesion_portrait.png'];
const PROBE_TEXTS = ['dark brown', 'bleeding', 'irregular shape'];

const USAGE = `
Usage: whylesion parity [--model DIR|hf-hub:ID] [--image FILE]... [--text STR]... [--tokens FILE] [--batch B] [--tol 1e-4]
                        [--python PATH] [--reference-model DIR] [--json] [--dump DIR]

Runs the plain-PyTorch reference forward that ships in the package (reference/clip_reference.py; on CUDA when
torch sees a GPU) and this engine on identical inputs (the engine's preprocessing and tokens), and prints per
block and tower the max abs difference and that difference relative to the block's largest reference value,
the cosine of the final embeddings, and the first block over the tolerance. When open_clip is importable, the
images are also preprocessed by open_clip, to tell preprocessing differences from model differences.
Exit status 0 within tolerance, 1 otherwise.
  --image FILE           an image (repeatable; default: the four probe images the package ships)
  --text STR             a prompt (repeatable; default: ${PROBE_TEXTS.map((t) => JSON.stringify(t)).join(', ')})
  --tokens FILE          token-id rows instead of --text: JSON, a list of rows or {"tokens": [...]}, each row the
                         model's context length (for a model whose vocabulary is not the bundled one)
  --batch B              image rows per forward, cycling through the images (default: one per image)
  --tol T                largest allowed max abs / max |reference| of any step (default 1e-4; f16 weights need ~1e-2)
  --python PATH          Python with torch and numpy (default $WHYLESION_PYTHON, else python3, then /usr/bin/python3)
  --reference-model DIR  checkpoint folder the reference reads (default: the --model checkpoint)
  --json                 print one JSON object with every figure
  --dump DIR             write both sides' activations of every step as .npy, listed in DIR/index.json
${MODEL_USAGE}`;

interface ReferenceRun {
  torch: string;
  numpy: string;
  device: string;
  threads: number;
  open_clip: string | null;
}

export async function parityCommand(argv: string[]): Promise<number | undefined> {
  const parsed = parseCommand(
    'parity',
    argv,
    {
      ...MODEL_OPTIONS,
      image: { type: 'string', multiple: true },
      text: { type: 'string', multiple: true },
      tokens: { type: 'string' },
      batch: { type: 'string' },
      tol: { type: 'string' },
      python: { type: 'string' },
      'reference-model': { type: 'string' },
      json: { type: 'boolean' },
      dump: { type: 'string' },
    },
    USAGE,
  );
  if (!parsed) return undefined;
  const { values, positionals } = parsed;
  if (positionals.length > 0)
    throw new UserError(
      `Unexpected argument ${positionals[0]}; pass images with --image (see whylesion parity --help).`,
    );
  const dtype = parseDtype(values.dtype);
  const tol = values.tol === undefined ? 1e-4 : Number(values.tol);
  if (!(Number.isFinite(tol) && tol > 0))
    throw new UserError(`--tol ${values.tol} is not a positive number (e.g. 1e-4).`);
  const images = values.image ?? PROBE_IMAGES.map((name) => bundledAsset(`probes/${name}`));
  if (values.tokens !== undefined && values.text !== undefined)
    throw new UserError('Pass prompts with --text or token rows with --tokens, not both.');
  const batch = values.batch === undefined ? images.length : positiveInteger('batch', values.batch, 1, 4096);
  await checkReadable(images, 'image');
  const python = await findPython(values.python);

  const modelId = values.model ?? process.env.WHYLESION_MODEL ?? DEFAULT_MODEL;
  const dir = await resolveModelDir(modelId);
  const referenceDir = values['reference-model'] ?? dir;
  const referenceWeights = await weightsOf(referenceDir);
  const model = await loadModelFromArgs({ ...values, model: dir });
  const work = await mkdtemp(join(tmpdir(), 'whylesion-parity-'));
  try {
    // The per-block comparison follows clip_reference.py's open_clip layout, read through the family's config schema.
    // A transformers folder has no open_clip config: its reference, the open_clip checkpoint it came from, has it.
    const hasOwnConfig = await access(join(dir, openClip.configFile)).then(
      () => true,
      () => false,
    );
    const configPath = join(hasOwnConfig ? dir : referenceDir, openClip.configFile);
    const config = openClip.parseConfig(JSON.parse(await readFile(configPath, 'utf8')), configPath);
    const S = model.inputs.imageSize,
      imageSize = 3 * S * S;
    const used = images.slice(0, batch);
    const preprocessed = await Promise.all(used.map((path) => model.preprocess(path)));
    const pixels = new Float32Array(batch * imageSize);
    for (let b = 0; b < batch; b++) pixels.set(preprocessed[b % used.length]!, b * imageSize);
    const C = model.inputs.contextLength;
    const { texts, ids } =
      values.tokens === undefined
        ? { texts: values.text ?? PROBE_TEXTS, ids: await model.tokenize(values.text ?? PROBE_TEXTS) }
        : await readTokenRows(values.tokens, C);
    await writeFile(join(work, 'pixels.npy'), writeNpy([batch, 3, S, S], pixels));
    const tokenRows = texts.map((_, i) => Array.from(ids.subarray(i * C, (i + 1) * C)));
    await writeFile(join(work, 'tokens.json'), JSON.stringify({ tokens: tokenRows }));

    const refOut = join(work, 'reference');
    await runReference(python.path, [
      '--model',
      referenceDir,
      '--weights',
      referenceWeights,
      '--out',
      refOut,
      '--dump-blocks',
      '--device',
      'auto',
      '--threads',
      String(cpus().length),
      '--pixels',
      join(work, 'pixels.npy'),
      '--tokens',
      join(work, 'tokens.json'),
      '--open-clip-images',
      ...used,
    ]);
    const run = JSON.parse(await readFile(join(refOut, 'run.json'), 'utf8')) as ReferenceRun;
    const referenceArrays = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const name of (await readdir(refOut)).filter((n) => n.endsWith('.npy'))) {
      const array = readNpy(new Uint8Array(await readFile(join(refOut, name))), name);
      referenceArrays.set(name.slice(0, -4), { shape: array.shape, data: array.data as Float32Array });
    }
    const reference = (name: string): { shape: number[]; data: Float32Array } => {
      const array = referenceArrays.get(name);
      if (!array) throw new Error(`the reference wrote no ${name}.npy`);
      return array;
    };

    const imageEmbeddings = concat(await model.encodePixels(pixels, batch));
    const textEmbeddings = concat(await model.encodeTokens(ids, texts.length));
    const vision = await model.dumpPixels(pixels, batch);
    const text = await model.dumpTokens(ids, texts.length);
    const pairs = compareTowers(
      config,
      { vision, text, imageEmbeddings, textEmbeddings },
      reference,
      { images: batch, texts: texts.length },
      tol,
    );
    const E = config.embedDim;
    const cosines = {
      image: rowCosines(imageEmbeddings, reference('image_embeddings_raw').data, E),
      text: rowCosines(textEmbeddings, reference('text_embeddings_raw').data, E),
    };
    const failing = pairs.find((p) => p.comparison.exceeds)?.comparison;
    const preprocessing =
      run.open_clip === null
        ? null
        : openClipPreprocessing(pixels, preprocessed.length, imageSize, imageEmbeddings, reference, E);
    const report = {
      model: modelId,
      referenceModel: referenceDir,
      dtype,
      tol,
      batch,
      images: used,
      texts,
      engine: { adapter: Object.values(model.adapter).filter(Boolean).join(' / ') },
      reference: { python: python.path, ...run, script: 'reference/clip_reference.py' },
      steps: pairs.map((p) => p.comparison),
      cosine: { image: lowest(cosines.image), text: lowest(cosines.text) },
      cosines,
      first_failing: failing ? { tower: failing.tower, block: failing.block, step: failing.step } : null,
      preprocessing,
      pass: failing === undefined,
    };
    if (values.dump) await writeDump(values.dump, report, pairs, work);
    if (values.json) console.log(JSON.stringify(report, null, 2));
    else printReport(report);
    return report.pass ? 0 : 1;
  } finally {
    model.dispose();
    await rm(work, { recursive: true, force: true });
  }
}

/** `--tokens FILE`: the rows as one [rows, context] table, each labelled `tokens[i]` in the report. */
async function readTokenRows(path: string, context: number): Promise<{ texts: string[]; ids: Int32Array }> {
  await checkReadable([path], 'token file');
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'));
  } catch {
    throw new UserError(`--tokens ${path} is not JSON; write a list of token-id rows, or {"tokens": [...]}.`);
  }
  const rows = Array.isArray(parsed) ? parsed : (parsed as { tokens?: unknown } | null)?.tokens;
  const valid =
    Array.isArray(rows) &&
    rows.length > 0 &&
    rows.every((row) => Array.isArray(row) && row.length === context && row.every((id) => Number.isInteger(id)));
  if (!valid)
    throw new UserError(
      `--tokens ${path} must hold a non-empty list of rows of ${context} integer token ids (the model's context length).`,
    );
  const table = rows as number[][];
  return { texts: table.map((_, i) => `tokens[${i}]`), ids: Int32Array.from(table.flat()) };
}

/** The safetensors file the reference should read (a .bin-only folder is converted once, as loadModel does). */
async function weightsOf(dir: string): Promise<string> {
  const checkpoint = await openCheckpoint(dir);
  await checkpoint.source.close();
  if (checkpoint.layout !== 'open_clip') {
    throw new UserError(
      `The PyTorch reference reads open_clip checkpoints, and ${dir} is a transformers CLIP one; pass the open_clip checkpoint it came from with --reference-model DIR.`,
    );
  }
  return checkpoint.weightsPath;
}

function runReference(python: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(
      python,
      [packageFile('reference/clip_reference.py'), ...args],
      { encoding: 'utf8', maxBuffer: 1 << 26 },
      (error, _stdout, stderr) => {
        if (!error) return resolve();
        const last = stderr.trim().split('\n').pop() ?? String(error);
        reject(
          new UserError(
            `The PyTorch reference (${python} reference/clip_reference.py) failed: ${last.replace(/\.$/, '')}; fix that and run again.`,
            { cause: error },
          ),
        );
      },
    );
  });
}

function concat(rows: Float32Array[]): Float32Array {
  const out = new Float32Array(rows.reduce((n, r) => n + r.length, 0));
  let at = 0;
  for (const r of rows) {
    out.set(r, at);
    at += r.length;
  }
  return out;
}

const lowest = (values: number[]): number | null =>
  values.length === 0 ? null : values.reduce((a, b) => (b < a || Number.isNaN(b) ? b : a));

/**
 * The engine's preprocessing against open_clip's, through the same reference model: the pixels' largest
 * difference, and the cosine of the reference embeddings of both (a preprocessing difference, not a model one),
 * and of the engine's embeddings against open_clip end to end.
 */
function openClipPreprocessing(
  pixels: Float32Array,
  images: number,
  imageSize: number,
  imageEmbeddings: Float32Array,
  reference: (name: string) => { data: Float32Array },
  E: number,
) {
  const ours = pixels.subarray(0, images * imageSize);
  const theirs = reference('openclip_pixels').data;
  const viaOpenClip = reference('openclip_image_embeddings_raw').data;
  const referenceOnOurs = reference('image_embeddings_raw').data.subarray(0, images * E);
  return {
    pixels: maxAbsAndRelative(ours, theirs),
    referenceCosine: lowest(rowCosines(referenceOnOurs, viaOpenClip, E)),
    engineCosine: lowest(rowCosines(imageEmbeddings.subarray(0, images * E), viaOpenClip, E)),
  };
}

/** Both sides of every compared step as .npy, the inputs, and index.json (written last: its presence means complete). */
async function writeDump(dir: string, report: object, pairs: ComparedPair[], work: string): Promise<void> {
  await mkdir(join(dir, 'engine'), { recursive: true });
  await mkdir(join(dir, 'reference'), { recursive: true });
  const write = async (path: string, bytes: Uint8Array): Promise<void> => {
    const temporary = `${path}.partial`;
    await writeFile(temporary, bytes);
    await rename(temporary, path);
  };
  const entries = [];
  for (const { comparison: c, engine, reference } of pairs) {
    const file = `${c.tower}_${c.step.replace(/\./g, '_')}.npy`;
    await write(join(dir, 'engine', file), writeNpy(c.engine.shape, engine));
    const referenceShape = reference.length === product(c.reference.shape) ? c.reference.shape : c.engine.shape;
    await write(join(dir, 'reference', file), writeNpy(referenceShape, reference));
    entries.push({
      ...c,
      engineFile: `engine/${file}`,
      referenceFile: `reference/${file}`,
      referenceShapeWritten: referenceShape,
    });
  }
  await write(join(dir, 'pixels.npy'), await readFile(join(work, 'pixels.npy')));
  await write(join(dir, 'tokens.json'), await readFile(join(work, 'tokens.json')));
  const index = {
    about:
      'engine/ and reference/ hold the same rows of each step (the rows field says which: with class-token pooling the engine computes only the class token in the last image block, and under the causal mask the text positions through the last pooled row); pixels.npy and tokens.json are the inputs both sides ran',
    ...report,
    steps: entries,
  };
  await write(join(dir, 'index.json'), new TextEncoder().encode(`${JSON.stringify(index, null, 2)}\n`));
}

const product = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

function printReport(report: {
  model: string;
  dtype: string;
  tol: number;
  batch: number;
  texts: string[];
  engine: { adapter: string };
  reference: ReferenceRun & { python: string };
  steps: ComparedPair['comparison'][];
  cosine: { image: number | null; text: number | null };
  first_failing: { tower: string; step: string } | null;
  preprocessing: ReturnType<typeof openClipPreprocessing> | null;
}): void {
  const r = report.reference;
  console.log(
    `parity: ${report.model}, ${report.dtype} weights on WebGPU (${report.engine.adapter}) vs PyTorch ${r.torch} on ${r.device} (${r.python}); ${report.batch} images, ${report.texts.length} prompts; tolerance ${report.tol} (max abs / max |reference|)`,
  );
  console.log('| tower | step | rows | max abs | max abs / max |ref| | |');
  console.log('| --- | --- | --- | --- | --- | --- |');
  for (const s of report.steps)
    console.log(
      `| ${s.tower} | ${s.step} | ${s.rows} | ${s.maxAbs.toExponential(2)} | ${s.relative.toExponential(2)} | ${s.exceeds ? 'OVER' : 'ok'} |`,
    );
  const cos = (c: number | null): string => (c === null ? 'n/a' : c.toFixed(7));
  console.log(
    `\ncosine of the final embeddings (lowest row): image ${cos(report.cosine.image)}, text ${cos(report.cosine.text)}`,
  );
  if (report.preprocessing) {
    const p = report.preprocessing;
    console.log(
      `open_clip ${r.open_clip} preprocessing: pixels differ by at most ${p.pixels.maxAbs.toExponential(2)}; reference embedding cosine, engine vs open_clip pixels ${cos(p.referenceCosine)}; engine end to end vs open_clip ${cos(p.engineCosine)}`,
    );
  } else {
    console.log(
      "open_clip is not importable by that Python, so preprocessing was not compared with it (both sides used the engine's pixels).",
    );
  }
  const f = report.first_failing;
  console.log(f ? `first step over the tolerance: ${f.tower} ${f.step}` : 'every step is within the tolerance');
}
