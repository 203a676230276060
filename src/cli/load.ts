import { loadModel, type WhyLesionModel } from '../api/model.js';
import { DEFAULT_MODEL, parseDtype } from './args.js';

/** Loads the model named by the shared --model/--dtype/--vocab/--exif-rotate options. */
export function loadModelFromArgs(values: { model?: string; dtype?: string; vocab?: string; 'exif-rotate'?: boolean }): Promise<WhyLesionModel> {
  return loadModel(values.model ?? process.env.WHYLESION_MODEL ?? DEFAULT_MODEL, {
    dtype: parseDtype(values.dtype),
    vocabPath: values.vocab,
    exifRotate: values['exif-rotate'] ?? false,
  });
}
