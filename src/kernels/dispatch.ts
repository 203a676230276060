import { uniformWords, type Dispatch, type Gpu } from '../runtime/gpu.js';
import { bindingBuffers, uniformValues, type BindingArgs, type KernelSpec, type UniformValues } from './kernel-spec.js';
import type { KernelPolicy } from './policy.js';
import { shaderPipeline, type ShaderDefines } from './shader.js';

/**
 * Buffers made for one recorded program (uniforms, scratch), destroyed together with it, and the kernel policy
 * its launchers choose kernels by (and uploadMatmulWeights lays weights out by).
 */
export class Scope {
  readonly buffers: GPUBuffer[] = [];
  readonly gpu: Gpu;
  constructor(readonly policy: KernelPolicy) {
    this.gpu = policy.gpu;
  }

  uniform(label: string, values: readonly (number | { f: number })[]): GPUBuffer {
    const buffer = this.gpu.uniformBuffer(`${label}.params`, uniformWords(values));
    this.buffers.push(buffer);
    return buffer;
  }

  storage(label: string, data: ArrayBufferView | number): GPUBuffer {
    const buffer = this.gpu.storageBuffer(label, data);
    this.buffers.push(buffer);
    return buffer;
  }

  destroy(): void {
    for (const b of this.buffers) this.gpu.destroyBuffer(b);
    this.buffers.length = 0;
  }
}

/** Work counted for a dispatch's profile (GFLOP/s, GB/s). */
export interface DispatchCost {
  flops?: number;
  bytes?: number;
}

/**
 * One dispatch of a kernel with these defines, its buffers and uniform words laid out as its spec declares
 * (kernel-spec.ts), so the order matches the shader's bindings and `struct Params` by construction. Every
 * launcher dispatches through this; tests and the kernel ladder call it to run one kernel variant directly.
 */
export async function dispatchKernel<S extends KernelSpec>(
  scope: Scope,
  spec: S,
  label: string,
  args: BindingArgs<S>,
  uniforms: UniformValues<S>,
  defines: ShaderDefines,
  workgroups: [number, number, number],
  cost: DispatchCost = {},
): Promise<Dispatch> {
  const pipeline = await shaderPipeline(scope.gpu, spec.shader, defines);
  const buffers = [...bindingBuffers(spec, args), scope.uniform(label, uniformValues(spec, uniforms))];
  return {
    label,
    kernel: spec.kernel,
    pipeline,
    bindGroup: scope.gpu.bindGroup(label, pipeline, buffers),
    workgroups,
    ...cost,
  };
}

/** Splits a workgroup count over x and y when it passes the 65535 per-dimension limit. */
export function spread(count: number): [number, number] {
  return count <= 65535 ? [count, 1] : [65535, Math.ceil(count / 65535)];
}
