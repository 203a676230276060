import type { KernelTiming } from '../families/index.js';
import { MODEL_OPTIONS, MODEL_USAGE, parseCommand, positiveInteger } from './args.js';
import { loadModelFromArgs } from './load.js';

const USAGE = `
Usage: whylesion bench [--batch 1] [--iters 3] [--profile] [--json]

Times the model load, the image tower on a batch of seeded random pixels and the text tower on three
prompts: the first call (cold, pipeline compilation included) and the median of --iters warm calls.
  --iters N   warm calls per tower (default 3; --runs is the same)
  --profile   per-kernel table from GPU timestamp queries (ms, GFLOP/s or GB/s, share of total); on adapters
              without them each dispatch is one submit timed on the wall clock (submit overhead included)
  --json      print one line of JSON: image_ms_per_batch, text_ms_per_batch, batch, load_ms, cold_ms
              (first image batch), adapter, and the details
${MODEL_USAGE}`;

const PROMPTS = ['dark brown', 'bleeding', 'irregular shape'];

export async function benchCommand(argv: string[]): Promise<void> {
  const parsed = parseCommand(
    'bench',
    argv,
    {
      ...MODEL_OPTIONS,
      batch: { type: 'string' },
      runs: { type: 'string' },
      iters: { type: 'string' },
      profile: { type: 'boolean' },
      json: { type: 'boolean' },
    },
    USAGE,
  );
  if (!parsed) return;
  const { values } = parsed;
  const batch = values.batch ? positiveInteger('batch', values.batch) : 1;
  const iters = values.iters ?? values.runs;
  const runs = iters ? positiveInteger(values.iters ? 'iters' : 'runs', iters, 1, 1000) : 3;
  const loadStart = performance.now();
  const model = await loadModelFromArgs(values);
  const loadMs = performance.now() - loadStart;
  try {
    const S = model.inputs.imageSize;
    const pixels = new Float32Array(batch * 3 * S * S);
    let seed = 1;
    for (let i = 0; i < pixels.length; i++) {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      pixels[i] = (seed / 2 ** 32) * 4 - 2;
    }
    const ids = await model.tokenize(PROMPTS);
    const time = async (f: () => Promise<unknown>): Promise<number> => {
      const t0 = performance.now();
      await f();
      return (performance.now() - t0) / 1000;
    };
    const measure = async (f: () => Promise<unknown>): Promise<{ cold: number; warm: number }> => {
      const cold = await time(f);
      const warm: number[] = [];
      for (let r = 0; r < runs; r++) warm.push(await time(f));
      return { cold, warm: warm.sort((a, b) => a - b)[Math.floor(runs / 2)]! };
    };
    const image = await measure(() => model.encodePixels(pixels, batch));
    const text = await measure(() => model.encodeTokens(ids, PROMPTS.length));
    // Without timestamp queries Gpu.profile times one submit per dispatch on the wall clock (submit overhead included).
    const clock = model.model.gpu.hasTimestamps ? 'timestamps' : 'wall clock per submit';
    const profile = values.profile
      ? {
          clock,
          image: await model.model.profilePixels(pixels, batch),
          text: await model.model.profileTokens(ids, PROMPTS.length),
        }
      : undefined;
    if (values.json) {
      const ms = (s: number) => Number((s * 1000).toFixed(1));
      console.log(
        JSON.stringify({
          image_ms_per_batch: ms(image.warm),
          text_ms_per_batch: ms(text.warm),
          batch,
          load_ms: Number(loadMs.toFixed(1)),
          cold_ms: ms(image.cold),
          adapter: model.adapter,
          dtype: model.dtype,
          activations: model.activations,
          iters: runs,
          text_prompts: PROMPTS.length,
          text_cold_ms: ms(text.cold),
          profile,
        }),
      );
      return;
    }
    const act = model.activations;
    const halves = act.vision === 'f16' || act.text === 'f16' ? ', f16 block activations' : '';
    console.log(`load: ${(loadMs / 1000).toFixed(3)} s (${model.dtype} weights${halves})`);
    console.log(
      `image tower, batch ${batch}: cold ${image.cold.toFixed(3)} s, warm ${image.warm.toFixed(3)} s (${(image.warm / batch).toFixed(3)} s/image)`,
    );
    console.log(
      `text tower, ${PROMPTS.length} prompts: cold ${text.cold.toFixed(3)} s, warm ${text.warm.toFixed(3)} s`,
    );
    if (profile) {
      printProfile(`image tower, batch ${batch}`, profile.image, clock);
      printProfile(`text tower, ${PROMPTS.length} prompts`, profile.text, clock);
    }
  } finally {
    model.dispose();
  }
}

/** Per-kernel totals, then the slowest dispatches. */
function printProfile(title: string, timings: KernelTiming[], clock: string): void {
  const total = timings.reduce((s, t) => s + t.ms, 0);
  const byKernel = new Map<string, { ms: number; flops: number; bytes: number; count: number }>();
  for (const t of timings) {
    const k = byKernel.get(t.kernel) ?? { ms: 0, flops: 0, bytes: 0, count: 0 };
    k.ms += t.ms;
    k.flops += t.flops ?? 0;
    k.bytes += t.bytes ?? 0;
    k.count++;
    byKernel.set(t.kernel, k);
  }
  const what = clock === 'timestamps' ? 'GPU time' : 'wall-clock time, one submit per dispatch,';
  console.log(`\n${title}: ${total.toFixed(1)} ms of ${what} in ${timings.length} dispatches`);
  console.log(`  ${'kernel'.padEnd(14)} ${'calls'.padStart(5)} ${'ms'.padStart(9)} ${'share'.padStart(6)}  rate`);
  for (const [kernel, k] of [...byKernel].sort((a, b) => b[1].ms - a[1].ms)) {
    const rate =
      k.flops > 0
        ? `${(k.flops / k.ms / 1e6).toFixed(1)} GFLOP/s`
        : k.bytes > 0
          ? `${(k.bytes / k.ms / 1e6).toFixed(2)} GB/s`
          : '';
    console.log(
      `  ${kernel.padEnd(14)} ${String(k.count).padStart(5)} ${k.ms.toFixed(2).padStart(9)} ${((100 * k.ms) / total).toFixed(1).padStart(5)}%  ${rate}`,
    );
  }
  console.log('  slowest dispatches:');
  for (const t of [...timings].sort((a, b) => b.ms - a.ms).slice(0, 5))
    console.log(`    ${t.label.padEnd(34)} ${t.ms.toFixed(2).padStart(9)} ms`);
}
