import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UserError } from '../errors.js';

type Options = NonNullable<ParseArgsConfig['options']>;
const HELP = { help: { type: 'boolean', short: 'h' } } as const;
export type ParsedCommand<O extends Options> = ReturnType<
  typeof parseArgs<{ options: O & typeof HELP; allowPositionals: true; strict: true }>
>;

/**
 * parseArgs for one subcommand, with `--help` built in: returns undefined after printing the usage
 * when help was asked for; unknown or malformed options become one-sentence UserErrors.
 */
export function parseCommand<O extends Options>(
  command: string,
  argv: string[],
  options: O,
  usage: string,
): ParsedCommand<O> | undefined {
  let parsed: ParsedCommand<O>;
  try {
    parsed = parseArgs({
      args: argv,
      options: { ...options, ...HELP },
      allowPositionals: true,
      strict: true,
    }) as ParsedCommand<O>;
  } catch (error) {
    const unknown = /^Unknown option '(-{1,2}[^']+)'/.exec((error as Error).message)?.[1];
    if (unknown) {
      const nearest = nearestOption(unknown.replace(/^-+/, ''), Object.keys({ ...options, ...HELP }));
      const message = nearest
        ? `Unknown option ${unknown} for ${command}: did you mean --${nearest} (see whylesion ${command} --help)?`
        : `Unknown option ${unknown} for ${command}; see whylesion ${command} --help for the options.`;
      throw new UserError(message, { cause: error });
    }
    throw new UserError(`${(error as Error).message.replace(/\.$/, '')}; see whylesion ${command} --help.`, {
      cause: error,
    });
  }
  if ((parsed.values as { help?: boolean }).help) {
    process.stdout.write(`${usage.trim()}\n`);
    return undefined;
  }
  return parsed;
}

/** The option closest to a mistyped one (typos, swapped letters), if any is close enough to be what was meant. */
export function nearestOption(typed: string, options: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const option of options) {
    const distance = editDistance(typed.toLowerCase(), option.toLowerCase());
    if (distance < bestDistance) [best, bestDistance] = [option, distance];
  }
  // A third of the name may be wrong (at least one edit): 'lables' -> 'labels', not 'x' -> 'top'.
  if (best !== undefined && bestDistance <= Math.max(1, Math.floor(typed.length / 3))) return best;
  // Else a shortened name: 'img' -> 'image', when just one option starts that way.
  const longer =
    typed.length >= 3
      ? options.filter(
          (o) =>
            o.toLowerCase().startsWith(typed.toLowerCase().slice(0, 2)) &&
            [...typed.toLowerCase()].every((c) => o.toLowerCase().includes(c)),
        )
      : [];
  return longer.length === 1 ? longer[0] : undefined;
}

/** Optimal string alignment distance: insertions, deletions, substitutions and swaps of neighbours cost 1. */
function editDistance(a: string, b: string): number {
  const rows = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      rows[i]![j] = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        rows[i]![j] = Math.min(rows[i]![j]!, rows[i - 2]![j - 2]! + 1);
    }
  }
  return rows[a.length]![b.length]!;
}

/** Options every command that loads a model shares. */
export const MODEL_OPTIONS = {
  model: { type: 'string' },
  dtype: { type: 'string' },
  activations: { type: 'string' },
  vocab: { type: 'string' },
  'exif-rotate': { type: 'boolean' },
  'max-image-pixels': { type: 'string' },
  kernels: { type: 'string' },
} as const;

export const DEFAULT_MODEL = 'hf-hub:yyupenn/whylesionclip';

export const MODEL_USAGE = `
  --model DIR|hf-hub:ID  checkpoint folder or Hub id (default $WHYLESION_MODEL, else ${DEFAULT_MODEL})
  --dtype f32|f16        weight precision on the GPU (default f32)
  --activations f32|f16  precision between the kernels of a transformer block (default: f16 with --dtype f16,
                         else f32; f32 keeps f16 weights' numbers closer to f32's)
  --vocab PATH           CLIP BPE vocabulary (default: a transformers model's own vocab.json + merges.txt,
                         else $WHYLESION_BPE_VOCAB, else the bundled one)
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

export function parseActivations(value: string | undefined): 'f32' | 'f16' | undefined {
  if (value === undefined || value === 'f32' || value === 'f16') return value;
  throw new UserError(`--activations ${value} is not f32 or f16.`);
}

/** A whole-number option in [min, max], written in plain decimal digits. */
export function positiveInteger(name: string, value: string, min = 1, max = 1_000_000): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max)
    throw new UserError(`--${name} ${value} is not a whole number from ${min} to ${max}.`);
  return n;
}
