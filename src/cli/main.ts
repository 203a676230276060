#!/usr/bin/env node
import { packageVersion } from '../assets.js';
import { UserError } from '../errors.js';
import { holdLifeline, needsFilteredChild, runWithoutDawnNoise } from './quiet-dawn.js';
import { trace } from '../platform/trace.js';

/** A command resolves to its exit status (0 when it returns nothing). */
// biome-ignore lint/suspicious/noConfusingVoidType: most commands are `Promise<void>`; `undefined` would not accept them
const COMMANDS: Record<string, { summary: string; run: () => Promise<(argv: string[]) => Promise<void | number>> }> = {
  classify: {
    summary: 'zero-shot label probabilities for images',
    run: async () => (await import('./classify.js')).classifyCommand,
  },
  zeroshot: {
    summary: 'predict a class per image from a classes -> prompts file',
    run: async () => (await import('./classify.js')).zeroshotCommand,
  },
  explain: {
    summary: 'rank clinical concept questions by similarity to an image',
    run: async () => (await import('./classify.js')).explainCommand,
  },
  eval: {
    summary: "zero-shot, linear-probe and KnoBo accuracy on a dataset's val/test splits",
    run: async () => (await import('./eval.js')).evalCommand,
  },
  probe: {
    summary: 'train a linear or concept-bottleneck probe (probe train)',
    run: async () => (await import('./probe.js')).probeCommand,
  },
  embed: {
    summary: 'embed images, texts, or whole folders',
    run: async () => (await import('./embed.js')).embedCommand,
  },
  merge: {
    summary: 'put the parts of embed --shard back together, as one unsharded run writes',
    run: async () => (await import('./merge.js')).mergeCommand,
  },
  search: {
    summary: 'the rows of an embeddings file most similar to a text or image (exact cosine)',
    run: async () => (await import('./search.js')).searchCommand,
  },
  tokenize: { summary: 'CLIP token ids of texts', run: async () => (await import('./tokenize.js')).tokenizeCommand },
  preprocess: {
    summary: 'open_clip preprocessing of an image to .npy',
    run: async () => (await import('./preprocess.js')).preprocessCommand,
  },
  convert: {
    summary: 'convert a torch .bin checkpoint to safetensors',
    run: async () => (await import('./convert.js')).convertCommand,
  },
  synth: {
    summary: 'write a random-weight checkpoint with the real layout',
    run: async () => (await import('./synth.js')).synthCommand,
  },
  bench: {
    summary: 'time both towers; --profile for a per-kernel table',
    run: async () => (await import('./bench.js')).benchCommand,
  },
  tune: {
    summary: 'measure matmul kernels on this adapter and keep the fastest',
    run: async () => (await import('./tune.js')).tuneCommand,
  },
  'serve-demo': {
    summary: 'serve the browser demo page (needs npm run build:web)',
    run: async () => (await import('./serve-demo.js')).serveDemoCommand,
  },
  parity: {
    summary: 'per-block agreement with the PyTorch reference on a checkpoint',
    run: async () => (await import('./parity.js')).parityCommand,
  },
  info: {
    summary: 'WebGPU adapter, limits, features and model config',
    run: async () => (await import('./info.js')).infoCommand,
  },
};

/** Commands that never start WebGPU, so they never need a child that filters Dawn's stderr noise. */
const WITHOUT_GPU = new Set(['tokenize', 'preprocess', 'convert', 'synth', 'merge']);

const FILE_PROBLEMS: Record<string, string> = {
  ENOENT: 'no such file or folder',
  ENOTDIR: 'a part of the path is a file, not a folder',
  EEXIST: 'it already exists as a file',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device',
  EISDIR: 'it is a folder',
  ENAMETOOLONG: 'the name is too long',
};

const USAGE = `whylesion: WhyLesionCLIP (open_clip ViT-L/14) on WebGPU, in pure TypeScript.
Research use only; not for clinical diagnosis.

Usage: whylesion COMMAND [options]   (whylesion COMMAND --help for each; whylesion --version)

${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(11)} ${c.summary}`)
  .join('\n')}`;

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  trace('cli started', process.env.WHYLESION_CLI_CHILD === '1' ? '(child)' : '');
  if (name === '--version' || name === '-v' || name === 'version') {
    console.log(packageVersion());
    return 0;
  }
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(USAGE);
    return name ? 0 : 1;
  }
  const command = COMMANDS[name];
  if (!command) throw new UserError(`Unknown command '${name}'; run whylesion --help for the list.`);
  if (!WITHOUT_GPU.has(name) && needsFilteredChild()) return runWithoutDawnNoise();
  holdLifeline();
  return (await (await command.run())(rest)) ?? 0;
}

process.exitCode = await main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof UserError) {
    process.stderr.write(`whylesion: ${error.message}\n`);
    return 1;
  }
  // A file the user named that cannot be read or written (missing folder, permissions, full disk) is theirs to fix.
  const fsError = error as NodeJS.ErrnoException;
  if (fsError?.syscall && fsError.path && FILE_PROBLEMS[fsError.code ?? '']) {
    process.stderr.write(
      `whylesion: cannot ${fsError.syscall} ${fsError.path}: ${FILE_PROBLEMS[fsError.code!]}; check the path and its folder.\n`,
    );
    return 1;
  }
  if (process.env.WHYLESION_DEBUG) throw error;
  process.stderr.write(`whylesion: internal error: ${(error as Error)?.stack ?? error}\n`);
  return 70;
});
