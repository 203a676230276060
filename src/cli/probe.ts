import { DEFAULT_BOTTLENECK, loadConcepts } from '../concepts/knobo.js';
import { UserError } from '../errors.js';
import { evaluateMode } from '../eval/evaluate.js';
import { knoboPrior, PROBE_MODES } from '../eval/probe.js';
import { parseCommand } from './args.js';
import { writeAtomic } from './corpus.js';
import { DATASET_OPTIONS, DATASET_USAGE, openDataset, parseModes, prepareInputs, trainingSettings } from './eval.js';
import { MODEL_USAGE } from './args.js';

const USAGE = `
Usage: whylesion probe train DATASET --mode linear|concepts|knobo --out probe.json [options]

Trains a probe on DATASET's train split (choosing the epoch on val), prints its val and test accuracy and
writes it as JSON, for whylesion classify IMG --probe probe.json and explain IMG --probe probe.json.
  --mode MODE    linear (the image embedding), concepts (cosines with --bottleneck's questions) or knobo
                 (concepts with KnoBo's prior loss)
  --out FILE     where to write the probe (written whole or not at all)
${DATASET_USAGE}
${MODEL_USAGE}`;

export async function probeCommand(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub === '--help' || sub === '-h') {
    console.log(USAGE.trim());
    return;
  }
  if (sub !== 'train') throw new UserError(`probe needs a subcommand: whylesion probe train DATASET --mode linear --out probe.json.`);
  const parsed = parseCommand('probe train', rest, { ...DATASET_OPTIONS, mode: { type: 'string' }, out: { type: 'string' } }, USAGE);
  if (!parsed) return;
  const { values, positionals } = parsed;
  if (positionals.length !== 1) throw new UserError('probe train needs one DATASET; see whylesion probe --help.');
  if (!values.mode) throw new UserError(`probe train needs --mode ${PROBE_MODES.join('|')}.`);
  const [mode, ...more] = parseModes(values.mode, PROBE_MODES);
  if (more.length > 0) throw new UserError('probe train trains one --mode at a time.');
  if (!values.out) throw new UserError('probe train needs --out FILE.json for the probe.');
  const settings = trainingSettings(values);
  const dataset = await openDataset(positionals[0], values);
  const concepts = mode === 'linear' ? undefined : await loadConcepts(values.bottleneck ?? DEFAULT_BOTTLENECK);
  if (mode === 'knobo') await knoboPrior(dataset.classes, concepts!);
  const inputs = await prepareInputs(dataset, values, { concepts }, settings);
  const { result, probe } = await evaluateMode(mode, inputs);
  probe!.file.training.dataset = dataset.name;
  await writeAtomic(values.out, [`${JSON.stringify(probe!.file)}\n`]);
  console.log(`${mode} probe on ${dataset.name} (${dataset.classes.length} classes, ${inputs.train.labels.length} training images): val ${result.val_acc.toFixed(1)}%, test ${result.test_acc.toFixed(1)}%${result.best_epoch ? `, epoch ${result.best_epoch}` : ''}; wrote ${values.out}`);
}
