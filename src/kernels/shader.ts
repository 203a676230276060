import type { Gpu } from '../runtime/gpu.js';
import { WGSL_SOURCES } from './wgsl.generated.js';

/** `{{NAME}}` values substituted into a shader before it compiles. */
export type ShaderDefines = Record<string, string | number>;

/** The compute pipeline of the shader file SHADER (src/kernels/<kernel>/SHADER) with its defines (compiled once per distinct text by the Gpu). */
export function shaderPipeline(gpu: Gpu, shader: string, defines: ShaderDefines = {}): Promise<GPUComputePipeline> {
  return gpu.pipeline(shaderLabel(shader, defines), buildShader(shader, defines));
}

export function shaderLabel(shader: string, defines: ShaderDefines): string {
  const suffix = Object.entries(defines)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  return suffix ? `${shader.replace(/\.wgsl$/, '')}[${suffix}]` : shader.replace(/\.wgsl$/, '');
}

/**
 * Resolves `//!include other.wgsl` lines (each file once) and `{{NAME}}` placeholders; a define
 * equal to `f16` turns on `enable f16;`.
 */
export function buildShader(shader: string, defines: ShaderDefines = {}): string {
  const included = new Set<string>();
  const expand = (name: string): string => {
    const source = WGSL_SOURCES[name];
    if (source === undefined) throw new Error(`No shader named ${name} in src/kernels/<kernel>/`);
    included.add(name);
    // An include may name a define (subgroup_lanes_{{LANES}}.wgsl): the variant is picked before compiling.
    return source.replace(/^\/\/!include (\S+)$/gm, (_, name: string) => {
      const dep = name.replace(/\{\{(\w+)\}\}/g, (__, key: string) => {
        if (!(key in defines)) throw new Error(`Shader ${shader} needs the define ${key}`);
        return String(defines[key]);
      });
      return included.has(dep) ? '' : expand(dep);
    });
  };
  let code = expand(shader).replace(/\{\{(\w+)\}\}/g, (_, key: string) => {
    if (!(key in defines)) throw new Error(`Shader ${shader} needs the define ${key}`);
    return String(defines[key]);
  });
  if (Object.values(defines).includes('f16')) code = `enable f16;\n${code}`;
  return code;
}

/** The names of every file buildShader would splice into this shader with these defines (the shader first). */
export function shaderFiles(
  shader: string,
  defines: ShaderDefines = {},
  sources: Readonly<Record<string, string>> = WGSL_SOURCES,
): string[] {
  const files: string[] = [];
  const visit = (name: string): void => {
    if (files.includes(name)) return;
    const source = sources[name];
    if (source === undefined) throw new Error(`No shader named ${name} in src/kernels/<kernel>/`);
    files.push(name);
    for (const [, include = ''] of source.matchAll(/^\/\/!include (\S+)$/gm)) {
      visit(include.replace(/\{\{(\w+)\}\}/g, (__, key: string) => String(defines[key] ?? `{{${key}}}`)));
    }
  };
  visit(shader);
  return files;
}
