/**
 * The kernels' public face: each kernel lives in its own folder (<kernel>/: its WGSL, its spec and launcher in
 * index.ts, its CPU reference in reference.ts); the graph names the launchers re-exported here.
 */
export { attention, attentionOperands, attentionTakesHalves, type AttentionArgs } from './attention/index.js';
export {
  attentionLastRow,
  attentionLastRowOperands,
  type AttentionLastRowArgs,
} from './attention_last_row/index.js';
export { Scope, dispatchKernel, type DispatchCost } from './dispatch.js';
export { elementwise, elementwiseOperands, type ElementwiseArgs, type ElementwiseOp } from './elementwise/index.js';
export { embedTokens, embedTokensOperands, type EmbedTokensArgs, type TableChunk } from './embed_tokens/index.js';
export { gatherRows, gatherRowsOperands, type GatherRowsArgs } from './gather_rows/index.js';
export type { KernelSpec } from './kernel-spec.js';
export { layerNorm, layerNormOperands, layerNormWritesHalves, type LayerNormArgs } from './layernorm/index.js';
export {
  dispatchMatmul,
  matmul,
  matmulKernelName,
  matmulOperands,
  matmulTakesHalves,
  packMatmulWeights,
  uploadMatmulWeights,
  type MatmulArgs,
  type MatmulWeight,
} from './matmul/index.js';
export type { Activation } from './matmul/spec.js';
export { meanRows, meanRowsOperands, type MeanRowsArgs } from './mean_rows/index.js';
export { patchify, patchifyOperands, type PatchifyArgs } from './patchify/index.js';
export { operandMismatch, type FloatDtype, type Operand, type OperandRule, type TensorDtype } from './operands.js';
export { kernelReads, kernelSpec, kernelWrites } from './spec.js';
export { KERNEL_FAMILIES, KernelPolicy, type KernelFamily, type MatmulVariant, type WeightDtype } from './policy.js';
export { visionTokens, visionTokensOperands, type VisionTokensArgs } from './vision_tokens/index.js';
