import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UserError } from '../errors.js';

type Options = NonNullable<ParseArgsConfig['options']>;
const HELP = { help: { type: 'boolean', short: 'h' } } as const;
export type ParsedCommand<O extends Options> = ReturnType<typeof parseArgs<{ options: O & typeof HELP; allowPositionals: true; strict: true }>>;

/**
 * parseArgs for one subcommand, with `--help` built in: returns undefined after printing the usage
 * when help was asked for; unknown or malformed options become one-sentence UserErrors.
 */
export function parseCommand<O extends Options>(command: string, argv: string[], options: O, usage: string): ParsedCommand<O> | undefined {
  let parsed: ParsedCommand<O>;
  try {
    parsed = parseArgs({ args: argv, options: { ...options, ...HELP }, allowPositionals: true, strict: true }) as ParsedCommand<O>;
  } catch (error) {
    throw new UserError(`${(error as Error).message.replace(/\.$/, '')}; see whylesion ${command} --help.`, { cause: error });
  }
  if ((parsed.values as { help?: boolean }).help) {
    process.stdout.write(`${usage.trim()}\n`);
    return undefined;
  }
  return parsed;
}

/** Options every command that loads a model shares. */
export const MODEL_OPTIONS = {
  model: { type: 'string' },
  dtype: { type: 'string' },
  vocab: { type: 'string' },
  'exif-rotate': { type: 'boolean' },
  'max-image-pixels': { type: 'string' },
  kernels: { type: 'string' },
} as const;

export const DEFAULT_MODEL = 'hf-hub:yyupenn/whylesionclip';

export const MODEL_USAGE = `
  --model DIR|hf-hub:ID  checkpoint folder or Hub id (default $WHYLESION_MODEL, else ${DEFAULT_MODEL})
  --dtype f32|f16        weight precision on the GPU (default f32)
  --vocab PATH           CLIP BPE vocabulary (default $WHYLESION_BPE_VOCAB, else the bundled one)
  --exif-rotate          apply JPEG EXIF orientation first (open_clip does not)
  --max-image-pixels N   refuse (skip) images of more pixels, decoded or resized for the model (default
                         89478485, Pillow's MAX_IMAGE_PIXELS): a guard against decompression bombs
  --kernels FAMILY       auto (default, $WHYLESION_KERNELS), cpu-subgroup, gpu or portable: force a kernel family`;

/** --max-image-pixels, when given. */
export function parseMaxImagePixels(value: string | undefined): number | undefined {
  return value === undefined ? undefined : positiveInteger('max-image-pixels', value, 1, Number.MAX_SAFE_INTEGER);
}

export function parseDtype(value: string | undefined): 'f32' | 'f16' {
  if (value === undefined || value === 'f32' || value === 'f16') return value ?? 'f32';
  throw new UserError(`--dtype ${value} is not f32 or f16.`);
}

/** A whole-number option in [min, max], written in plain decimal digits. */
export function positiveInteger(name: string, value: string, min = 1, max = 1_000_000): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) throw new UserError(`--${name} ${value} is not a whole number from ${min} to ${max}.`);
  return n;
}
