/**
 * The browser entry (dist/web/whylesion.js, built by scripts/build-web.mjs): the same library API as Node
 * and Deno, minus what needs a file system (checkpoint conversion, the Hub cache, tuning files, .npy).
 */
export {
  loadModel,
  WhyLesionModel,
  normalized,
  dot,
  type ImageInput,
  type LoadOptions,
  type LoadProgress,
  type ModelSource,
  type TuneOptions,
} from './api/model.js';
export { UserError } from './errors.js';
export { ClipTokenizer, cleanText } from './tokenizer/index.js';
export { preprocessImage, decodeImage, type PreprocessOptions } from './image/index.js';
export { loadConcepts, KNOBO_BOTTLENECKS, DEFAULT_BOTTLENECK } from './concepts/knobo.js';
export { parseClipConfig, BUILTIN_CONFIGS, type ClipConfig } from './model/config.js';
export { formatBytes } from './io/progress.js';
export { Probe, loadProbe, parseProbe, type ProbeFile } from './eval/probe.js';
