import type { Dispatch } from '../../runtime/gpu.js';
import type { WeightDtype } from '../policy.js';
import { dispatchKernel, type Scope } from '../dispatch.js';
import { W_TYPES, spec, u32 } from '../kernel-spec.js';
import { f32Operand, u32Operand, type OperandRule } from '../operands.js';

export const EMBED_TOKENS_SPEC = spec({
  kernel: 'embed_tokens',
  shader: 'embed_tokens.wgsl',
  bindings: [
    { wgsl: 'ids', arg: 'ids', access: 'read' },
    // one dispatch per chunk of the table, each binding that chunk's buffer
    { wgsl: 'table', arg: 'chunks', access: 'read' },
    { wgsl: 'pos', arg: 'pos', access: 'read' },
    { wgsl: 'Y', arg: 'y', access: 'read_write' },
  ],
  uniforms: u32('rows', 'T', 'width', 'row_offset', 'chunk_rows', '_p0', '_p1', '_p2'),
  defineSets: W_TYPES.map((W_TYPE) => ({ W_TYPE })),
});

/** A slice of rows of an embedding table that fits in one storage binding. */
export interface TableChunk {
  buffer: GPUBuffer;
  rowOffset: number;
  rows: number;
}

export interface EmbedTokensArgs {
  ids: GPUBuffer;
  chunks: readonly TableChunk[];
  pos: GPUBuffer;
  y: GPUBuffer;
  rows: number;
  seq: number;
  width: number;
  wDtype?: WeightDtype;
}

/** Y[r] = table[ids[r]] + pos[r mod T], one dispatch per table chunk. */
export function embedTokens(scope: Scope, label: string, a: EmbedTokensArgs): Promise<Dispatch[]> {
  return Promise.all(
    a.chunks.map((chunk, i) =>
      dispatchKernel(
        scope,
        EMBED_TOKENS_SPEC,
        `${label}.chunk${i}`,
        { ids: a.ids, chunks: chunk.buffer, pos: a.pos, y: a.y },
        { rows: a.rows, T: a.seq, width: a.width, row_offset: chunk.rowOffset, chunk_rows: chunk.rows },
        { W_TYPE: a.wDtype ?? 'f32' },
        [Math.ceil(a.width / 64), a.rows, 1],
        { bytes: 12 * a.rows * a.width },
      ),
    ),
  );
}

/** ids [rows] (u32) → Y [rows, width]. */
export const embedTokensOperands: OperandRule<EmbedTokensArgs> = (a) => ({
  ids: u32Operand(a.rows),
  y: f32Operand(a.rows, a.width),
});
