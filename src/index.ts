/// <reference types="@webgpu/types" preserve="true" />
/**
 * whylesion: WhyLesionCLIP (open_clip ViT-L/14) on WebGPU, in pure TypeScript.
 *
 * ```ts
 * const model = await loadModel('hf-hub:yyupenn/whylesionclip');
 * const images = await model.encodeImage(['lesion.jpg']);
 * const texts = await model.encodeText(['dark brown', 'bleeding', 'irregular shape']);
 * const probs = model.classify(images, texts);
 * model.dispose();
 * ```
 */
export {
  loadModel,
  WhyLesionModel,
  normalized,
  type ImageInput,
  type LoadOptions,
  type LoadProgress,
  type ModelSource,
  type TuneOptions,
} from './api/model.js';
export { tuneMatmuls, type ShapeResult, type CandidateResult } from './kernels/autotune.js';
export { applyCachedTuning, saveTuning, tuningFilePath } from './api/tuning-store.js';
export { UserError } from './errors.js';
export { Gpu } from './runtime/gpu.js';
export { ClipModel, type ComputeDtype, type StepDump } from './model/clip.js';
export { parseClipConfig, BUILTIN_CONFIGS, type ClipConfig } from './model/config.js';
export { ClipTokenizer, cleanText } from './tokenizer/index.js';
export { loadTokenizer } from './tokenizer/load.js';
export { preprocessImage, preprocessJimp, decodeImage, type PreprocessOptions } from './image/index.js';
export { preprocessImageFile } from './image/load.js';
export { openCheckpoint } from './io/checkpoint.js';
export { resolveModelDir, downloadHubFile, type HubOptions } from './io/hub.js';
export { readNpy, writeNpy } from './io/npy.js';
export { identityKey, describeIdentity, type ModelIdentity } from './io/identity.js';
export type { EmbeddingMeta } from './io/embedding-output.js';
export { openEmbeddingRows, readEmbeddingMeta, type EmbeddingRows } from './io/embedding-reader.js';
export { readParquetEmbeddings, writeParquetEmbeddings } from './io/parquet.js';
export { searchEmbeddings, type SearchHit, type SearchOptions } from './search/search.js';
export {
  trainProbe,
  loadProbe,
  parseProbe,
  Probe,
  knoboPrior,
  zeroShotScores,
  PROBE_MODES,
  type ProbeFile,
  type ProbeMode,
  type TrainProbeOptions,
  type Solver,
} from './eval/probe.js';
export { evaluateMode, EVAL_MODES, type EvalMode, type EvalInputs, type ModeResult } from './eval/evaluate.js';
export { trainAdam, trainLbfgs, logisticObjective, type LabeledFeatures, type LinearModel } from './eval/train.js';
export type { TrainingKernel } from './eval/linear-kernel.js';
export { confusionMatrix, accuracy, balancedAccuracy, recalls } from './eval/metrics.js';
export {
  readImageFolderDataset,
  readKnoboDataset,
  readSplitPickle,
  sampleShots,
  type EvalDataset,
} from './eval/splits.js';
export { FeatureCache, embedWithCache } from './eval/features.js';
export { loadConcepts, KNOBO_BOTTLENECKS } from './concepts/knobo.js';
