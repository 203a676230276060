import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../errors.js';
import { openClip } from '../families/index.js';
import { CONFIG_FILE, SAFETENSORS_FILE } from '../io/checkpoint.js';
import { writeSafetensors } from '../io/source.js';
import { synthesizeCheckpoint } from '../io/synth.js';
import { parseCommand, positiveInteger } from './args.js';

const USAGE = `Usage: whylesion synth --config NAME|PATH --out DIR [--seed N] [--dtype f32|f16]

Writes a synthetic open_clip checkpoint (${CONFIG_FILE} + ${SAFETENSORS_FILE}) with the full layout and
seeded random weights scaled like open_clip's initialisation, for testing and benchmarking without downloads.

  --config   ${Object.keys(openClip.builtinConfigs).join(', ')}, or the path of an open_clip_config.json
  --out      folder to write (created if needed)
  --seed     non-negative integer (default 0); the same seed gives the same bytes
  --dtype    f32 (default) or f16`;

async function loadConfig(spec: string): Promise<object> {
  const builtin = openClip.builtinConfigs[spec];
  if (builtin) return builtin;
  let text: string;
  try {
    text = await readFile(spec, 'utf8');
  } catch (error) {
    throw new UserError(
      `--config ${spec} is neither a built-in config (${Object.keys(openClip.builtinConfigs).join(', ')}) nor a readable file.`,
      { cause: error },
    );
  }
  try {
    return JSON.parse(text) as object;
  } catch (error) {
    throw new UserError(`${spec} is not valid JSON; pass an open_clip_config.json.`, { cause: error });
  }
}

export async function synthCommand(argv: string[]): Promise<void> {
  const parsed = parseCommand(
    'synth',
    argv,
    {
      config: { type: 'string' },
      out: { type: 'string' },
      seed: { type: 'string', default: '0' },
      dtype: { type: 'string', default: 'f32' },
    },
    USAGE,
  );
  if (!parsed) return;
  const { values, positionals } = parsed;
  if (positionals.length > 0)
    throw new UserError(
      `whylesion synth takes no positional arguments (got ${positionals.join(' ')}); see whylesion synth --help.`,
    );
  if (!values.config || !values.out)
    throw new UserError('whylesion synth needs --config and --out; see whylesion synth --help.');
  const seed = positiveInteger('seed', values.seed, 0, Number.MAX_SAFE_INTEGER);
  if (values.dtype !== 'f32' && values.dtype !== 'f16')
    throw new UserError(`--dtype ${values.dtype} is not f32 or f16.`);

  const rawConfig = await loadConfig(values.config);
  const config = openClip.parseConfig(rawConfig, values.config);
  await mkdir(values.out, { recursive: true });
  await writeFile(join(values.out, CONFIG_FILE), `${JSON.stringify(rawConfig, null, 2)}\n`);
  const tensors = synthesizeCheckpoint(config, seed, values.dtype === 'f32' ? 'F32' : 'F16');
  await writeSafetensors(join(values.out, SAFETENSORS_FILE), tensors, {
    format: 'pt',
    whylesion_synthetic_seed: String(seed),
  });
  console.log(
    `wrote a synthetic ${values.config} checkpoint (${tensors.length} tensors, ${values.dtype}, seed ${seed}) to ${values.out}`,
  );
}
