/** Node and Deno: models from folders or the Hugging Face cache, the tokenizer from a file, a kernel-tuning file. */
import { basename } from 'node:path';
import { openCheckpoint } from '../io/checkpoint.js';
import { resolveModelDir } from '../io/hub.js';
import { openBlobCheckpoint } from '../io/remote.js';
import { loadTokenizer } from '../tokenizer/load.js';
import type { Loaders } from './loader-types.js';
import { applyKernelTuning, checkTuningFileWritable, saveTuning } from './tuning-store.js';

export const loaders: Loaders = {
  async openModel(source, options) {
    if (typeof source !== 'string') return openBlobCheckpoint(source);
    const onProgress =
      options.onDownload &&
      ((p: { file: string; loaded: number; total: number | undefined }) =>
        options.onDownload!(p.file, p.loaded, p.total));
    const dir = await resolveModelDir(source, { ...options.hub, onProgress });
    const checkpoint = await openCheckpoint(dir);
    // A Hub snapshot folder is named by its commit; the weights' hash is their blob name (see io/file-hash.ts).
    if (source.startsWith('hf-hub:')) checkpoint.identity.source = `${source.split('@')[0]}@${basename(dir)}`;
    return checkpoint;
  },

  loadTokenizer: (vocabPath) => loadTokenizer({ vocabPath }),

  tuning: {
    apply: (policy, mode) => applyKernelTuning(policy, mode),
    checkWritable: () => checkTuningFileWritable(),
    save: (policy, results) => saveTuning(policy, results),
  },
};
