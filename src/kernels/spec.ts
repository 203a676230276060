/**
 * Every kernel's spec in one list (each declared beside its WGSL), and what a kernel reads and writes by
 * name: the executor checks graphs with these, test/kernel-spec.test.ts checks each spec against its WGSL.
 */
import { ATTENTION_SPECS } from './attention/index.js';
import { ATTENTION_LAST_ROW_SPEC } from './attention_last_row/index.js';
import { ELEMENTWISE_SPEC } from './elementwise/index.js';
import { EMBED_TOKENS_SPEC } from './embed_tokens/index.js';
import { GATHER_ROWS_SPEC } from './gather_rows/index.js';
import type { KernelSpec } from './kernel-spec.js';
import { LAYERNORM_SPECS } from './layernorm/index.js';
import { MATMUL_SPECS } from './matmul/spec.js';
import { MEAN_ROWS_SPEC } from './mean_rows/index.js';
import { PATCHIFY_SPEC } from './patchify/index.js';
import { VISION_TOKENS_SPEC } from './vision_tokens/index.js';

export const KERNEL_SPECS: readonly KernelSpec[] = [
  ...Object.values(MATMUL_SPECS),
  ...Object.values(LAYERNORM_SPECS),
  ...Object.values(ATTENTION_SPECS),
  ELEMENTWISE_SPEC,
  EMBED_TOKENS_SPEC,
  PATCHIFY_SPEC,
  VISION_TOKENS_SPEC,
  GATHER_ROWS_SPEC,
  ATTENTION_LAST_ROW_SPEC,
  MEAN_ROWS_SPEC,
];

/** The spec of the kernel a Dispatch names (Dispatch.kernel). */
export function kernelSpec(kernel: string): KernelSpec {
  const found = KERNEL_SPECS.find((s) => s.kernel === kernel);
  if (!found) throw new Error(`No kernel spec named ${kernel}`);
  return found;
}

/** The launcher arguments whose buffers this kernel writes. */
export function kernelWrites(kernel: string): string[] {
  return kernelSpec(kernel)
    .bindings.filter((b) => b.access === 'read_write')
    .map((b) => b.arg);
}

/** The launcher arguments whose buffers this kernel reads: matmul reads `y` too when it accumulates into it. */
export function kernelReads(kernel: string, flags: { accumulate?: boolean } = {}): string[] {
  return kernelSpec(kernel)
    .bindings.filter((b) => b.access === 'read' || (b.readsOldValueWhen !== undefined && flags[b.readsOldValueWhen]))
    .map((b) => b.arg);
}
