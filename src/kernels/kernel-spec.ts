/**
 * What a kernel spec is: its shader, its storage bindings in order (the WGSL variable, its access, the
 * launcher argument that fills it), its uniform struct `Params` field by field. Each kernel declares its own
 * beside its WGSL (<kernel>/index.ts, matmul/spec.ts); launchers build bind groups and uniforms from it
 * (dispatch.ts), and test/kernel-spec.test.ts checks every spec against its WGSL (registry: spec.ts).
 */
import type { WeightDtype } from './policy.js';
import type { ShaderDefines } from './shader.js';

export type Access = 'read' | 'read_write';

export interface BindingSpec<Arg extends string = string> {
  /** The variable's name in the WGSL (`var<storage, ...> NAME`). */
  wgsl: string;
  /** The launcher argument whose buffer is bound here. */
  arg: Arg;
  access: Access;
  /** A flag under which a read_write binding's previous contents are read too (matmul's `accumulate`). */
  readsOldValueWhen?: 'accumulate';
}

/** A field of the shader's `struct Params`; fields named `_…` are padding, written as 0. */
export interface UniformField<Name extends string = string> {
  name: Name;
  type: 'u32' | 'f32';
}

export interface KernelSpec<Arg extends string = string, Field extends string = string> {
  /** Dispatch.kernel of its dispatches (the shader's name without .wgsl). */
  kernel: string;
  shader: string;
  /** Storage bindings 0..n-1; the uniform `p: Params` is binding n. */
  bindings: readonly BindingSpec<Arg>[];
  uniforms: readonly UniformField<Field>[];
  /** Every define set the launcher can pass (sizes that only fill a constant are given by example). */
  defineSets: readonly ShaderDefines[];
}

/** The uniform values a launcher supplies: every field but the padding. */
export type UniformValues<S extends KernelSpec> =
  S extends KernelSpec<string, infer F> ? Record<Exclude<F, `_${string}`>, number> : never;
/** The buffers a launcher supplies, by argument name. */
export type BindingArgs<S extends KernelSpec> = S extends KernelSpec<infer A, string> ? Record<A, GPUBuffer> : never;

/** Keeps the literal types of a spec's argument and field names. */
export function spec<const A extends string, const F extends string>(s: KernelSpec<A, F>): KernelSpec<A, F> {
  return s;
}

export const u32 = <N extends string>(...names: N[]): UniformField<N>[] => names.map((name) => ({ name, type: 'u32' }));
export const f32 = <N extends string>(name: N): UniformField<N> => ({ name, type: 'f32' });
/** The weight dtypes a kernel reading weights compiles for. */
export const W_TYPES: readonly WeightDtype[] = ['f32', 'f16'];

/** A spec's uniform words in field order, padding as 0 and f32 fields as floats (see uniformWords). */
export function uniformValues<S extends KernelSpec>(s: S, values: UniformValues<S>): (number | { f: number })[] {
  const given = values as Record<string, number>;
  return s.uniforms.map((field) => {
    if (field.name.startsWith('_')) return 0;
    const v = given[field.name];
    if (v === undefined) throw new Error(`${s.kernel}: no value for the uniform ${field.name}`);
    return field.type === 'f32' ? { f: v } : v;
  });
}

/** A spec's buffers in binding order. */
export function bindingBuffers<S extends KernelSpec>(s: S, args: BindingArgs<S>): GPUBuffer[] {
  const given = args as Record<string, GPUBuffer>;
  return s.bindings.map((b) => {
    const buffer = given[b.arg];
    if (!buffer) throw new Error(`${s.kernel}: no buffer for ${b.arg} (binding ${b.wgsl})`);
    return buffer;
  });
}
