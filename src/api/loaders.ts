/** Node and Deno: models from folders or the Hugging Face cache, the tokenizer from a file, a kernel-tuning file. */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CONFIG_FILE, openCheckpoint } from '../io/checkpoint.js';
import { resolveModelDir } from '../io/hub.js';
import { openBlobCheckpoint } from '../io/remote.js';
import { loadTokenizer } from '../tokenizer/load.js';
import type { Loaders } from './loader-types.js';
import { applyKernelTuning, checkTuningFileWritable, saveTuning } from './tuning-store.js';

export const loaders: Loaders = {
  async openModel(source, options) {
    if (typeof source !== 'string') return openBlobCheckpoint(source);
    const onProgress = options.onDownload && ((p: { file: string; loaded: number; total: number | undefined }) => options.onDownload!(p.file, p.loaded, p.total));
    const dir = await resolveModelDir(source, { ...options.hub, onProgress });
    const checkpoint = await openCheckpoint(dir);
    // TEMP identity shim: hashes the files on every load (the state branch memoizes it).
    const sha = async (path: string) => `sha256:${createHash('sha256').update(await readFile(path)).digest('hex')}`;
    return { ...checkpoint, identityHashes: { weights: await sha(checkpoint.weightsPath), config: await sha(join(dir, CONFIG_FILE)), source } };
  },

  loadTokenizer: (vocabPath) => loadTokenizer({ vocabPath }),

  tuning: {
    apply: (gpu, mode) => applyKernelTuning(gpu, mode),
    checkWritable: () => checkTuningFileWritable(),
    save: (gpu, results) => saveTuning(gpu, results),
  },
};
