/**
 * open_clip's CLIP with its native towers (VisionTransformer + TextTransformer): the family of WhyLesionCLIP and
 * of every checkpoint io/ opens. Config knobs are read in one place, model/config.ts's parseClipConfig, which
 * the Hugging Face CLIPModel mapping in io/ feeds too.
 */
import { ClipModel } from '../../model/clip.js';
import { BUILTIN_CONFIGS, parseClipConfig, type ClipConfig } from '../../model/config.js';
import { expectedTensors } from '../../model/layout.js';
import type { ModelFamily } from '../family.js';

export const openClip: ModelFamily<ClipConfig> = {
  name: 'open_clip',
  configFile: 'open_clip_config.json',
  parseConfig: parseClipConfig,
  builtinConfigs: BUILTIN_CONFIGS,
  stateDict: expectedTensors,
  inputs: (config) => ({
    embedDim: config.embedDim,
    imageSize: config.vision.imageSize,
    contextLength: config.text.contextLength,
  }),
  tokenizer: 'clip-bpe',
  preprocessing: (config) => ({
    size: config.vision.imageSize,
    mean: config.preprocess.mean,
    std: config.preprocess.std,
  }),
  // Depth and vocabulary size reach no shader, except that the last block differs from the others (the exact
  // shortcuts run its MLP on the pooled row only): two blocks run every kernel a deeper tower does. The token
  // table is indexed, not compiled in.
  kernelTwin: (config) => ({
    ...config,
    vision: { ...config.vision, layers: Math.min(2, config.vision.layers) },
    text: { ...config.text, layers: 1, vocabSize: 1 },
  }),
  load: (policy, config, source, options) => ClipModel.load(policy, config, source, options),
};
