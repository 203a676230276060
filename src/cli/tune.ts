import { UserError } from '../errors.js';
import { checkTuningFileWritable, tuningFilePath } from '../api/tuning-store.js';
import { acquireLock } from '../io/lock.js';
import type { ShapeResult } from '../kernels/autotune.js';
import { MODEL_OPTIONS, MODEL_USAGE, parseCommand, positiveInteger } from './args.js';
import { loadModelFromArgs } from './load.js';

const USAGE = `
Usage: whylesion tune [--batch 1[,8,...]] [--runs 5] [--json]

Measures every matmul kernel this GPU adapter can run on the shapes of the model's forwards (image
batches of --batch, three short prompts), checks each against a CPU product, and saves the fastest per
shape for later runs on this adapter ($WHYLESION_TUNING_FILE, else ~/.cache/whylesion/kernel-tuning.json).
Later loads use the saved choices unless WHYLESION_KERNEL_TUNING=rules.
  --runs N    timed rounds per kernel (default 5)
  --json      print the measurements as JSON
${MODEL_USAGE}`;

export async function tuneCommand(argv: string[]): Promise<void> {
  const parsed = parseCommand(
    'tune',
    argv,
    { ...MODEL_OPTIONS, batch: { type: 'string' }, runs: { type: 'string' }, json: { type: 'boolean' } },
    USAGE,
  );
  if (!parsed) return;
  const { values } = parsed;
  const batches = (values.batch ?? '1').split(',').map((b) => positiveInteger('batch', b.trim(), 1, 64));
  const runs = values.runs ? positiveInteger('runs', values.runs, 1, 100) : 5;
  checkTuningFileWritable(); // before minutes of tuning, not after
  const lock = acquireLock(tuningFilePath(), `The kernel-tuning file ${tuningFilePath()}`);
  const model = await loadModelFromArgs(values).catch((error: unknown) => {
    lock.release();
    throw error;
  });
  try {
    const onShape = values.json ? undefined : (r: ShapeResult, i: number, n: number) => console.log(describe(r, i, n));
    const { results, file } = await model.tune({ batches, runs, onShape });
    if (results.length === 0) {
      throw new UserError(
        model.dtype === 'f16'
          ? 'With f16 weights every matmul on this adapter runs the one packed f16 kernel, so there is nothing to tune here (f32 weights can be tuned: --dtype f32).'
          : 'This adapter offers no alternative matmul kernels for these shapes, so there was nothing to tune.',
      );
    }
    if (values.json) console.log(JSON.stringify({ adapter: model.adapter, dtype: model.dtype, file, results }));
    else console.log(`saved ${results.filter((r) => r.choice).length} choices to ${file}`);
  } finally {
    model.dispose();
    lock.release();
  }
}

function describe(r: ShapeResult, i: number, n: number): string {
  const { M, N, K, wDtype, xDtype, yDtype } = r.shape;
  const io = `${xDtype === 'f16' ? ', X f16' : ''}${yDtype === 'f16' ? ', Y f16' : ''}`;
  const timed = r.candidates.filter((c) => c.ms !== undefined).sort((a, b) => a.ms! - b.ms!);
  const gflops = (ms: number) => ((2 * M * N * K) / ms / 1e6).toFixed(1);
  const parts = timed.map((c) => `${c.variant} ${c.ms!.toFixed(2)} ms (${gflops(c.ms!)} GFLOP/s)`);
  const failed = r.candidates.filter((c) => c.error).map((c) => `${c.variant} failed: ${c.error}`);
  return `[${i + 1}/${n}] M=${M} N=${N} K=${K} ${wDtype}${io}: ${r.choice ?? 'no working kernel'}\n    ${[...parts, ...failed].join('\n    ')}`;
}
