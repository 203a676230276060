import { access } from 'node:fs/promises';
import { loadModel, type LoadOptions, type WhyLesionModel } from '../api/model.js';
import { UserError } from '../errors.js';
import { DEFAULT_MODEL, parseActivations, parseDtype, parseMaxImagePixels } from './args.js';
import type { StatusLine } from './status.js';

/**
 * Loads the model named by the shared --model/--dtype/--activations/--vocab/--exif-rotate/--max-image-pixels options; `status` (a terminal's
 * live line) shows the download, the weights and, from then on, kernel compiles.
 */
export async function loadModelFromArgs(
  values: {
    model?: string;
    dtype?: string;
    activations?: string;
    vocab?: string;
    'exif-rotate'?: boolean;
    'max-image-pixels'?: string;
    kernels?: string;
  },
  status?: StatusLine,
  extra: Pick<LoadOptions, 'preloadTokenizer' | 'warmShaders'> = {},
): Promise<WhyLesionModel> {
  const maxImagePixels = parseMaxImagePixels(values['max-image-pixels']);
  status?.phase('loading the model');
  try {
    return await loadModel(values.model ?? process.env.WHYLESION_MODEL ?? DEFAULT_MODEL, {
      onProgress: status?.live ? status.onLoadProgress : undefined,
      dtype: parseDtype(values.dtype),
      activations: parseActivations(values.activations),
      vocabPath: values.vocab,
      exifRotate: values['exif-rotate'] ?? false,
      maxImagePixels,
      kernels: values.kernels as LoadOptions['kernels'], // checked by Gpu.create
      ...extra,
    });
  } catch (error) {
    status?.stop(); // the error's sentence starts on a clean line
    throw error;
  }
}

/** Fails fast, before the (slow) model load, when an input file is missing or unreadable. */
export async function checkReadable(paths: readonly string[], what: string): Promise<void> {
  for (const path of paths) {
    await access(path).catch((cause: unknown) => {
      throw new UserError(
        `Cannot read the ${what} ${path} (${(cause as NodeJS.ErrnoException).code ?? cause}); check the path.`,
        { cause },
      );
    });
  }
}
