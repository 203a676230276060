import type { Dispatch } from '../../runtime/gpu.js';
import { dispatchKernel, spread, type Scope } from '../dispatch.js';
import { spec, u32 } from '../kernel-spec.js';
import { f32Operand, type OperandRule } from '../operands.js';

export const VISION_TOKENS_SPEC = spec({
  kernel: 'vision_tokens',
  shader: 'vision_tokens.wgsl',
  bindings: [
    { wgsl: 'patch_embed', arg: 'patchEmbed', access: 'read' },
    { wgsl: 'class_embedding', arg: 'classEmbedding', access: 'read' },
    { wgsl: 'pos', arg: 'pos', access: 'read' },
    { wgsl: 'Y', arg: 'y', access: 'read_write' },
  ],
  uniforms: u32('B', 'T', 'width', '_p'),
  defineSets: [{}],
});

export interface VisionTokensArgs {
  patchEmbed: GPUBuffer;
  classEmbedding: GPUBuffer;
  pos: GPUBuffer;
  y: GPUBuffer;
  batch: number;
  seq: number;
  width: number;
}

/** [class_embedding; patch embeddings] + positional embedding → [B·T, width]. */
export function visionTokens(scope: Scope, label: string, a: VisionTokensArgs): Promise<Dispatch> {
  const [gy, gz] = spread(a.batch * a.seq);
  return dispatchKernel(
    scope,
    VISION_TOKENS_SPEC,
    label,
    { patchEmbed: a.patchEmbed, classEmbedding: a.classEmbedding, pos: a.pos, y: a.y },
    { B: a.batch, T: a.seq, width: a.width },
    {},
    [Math.ceil(a.width / 64), gy, gz],
    { bytes: 12 * a.batch * a.seq * a.width },
  );
}

/** patch embeddings [B·(T−1), width] → Y [B·T, width] (class embedding and positions are weights). */
export const visionTokensOperands: OperandRule<VisionTokensArgs> = (a) => ({
  patchEmbed: f32Operand(a.batch * (a.seq - 1), a.width),
  y: f32Operand(a.batch * a.seq, a.width),
});
