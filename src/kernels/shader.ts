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
 * Resolves `//!include other.wgsl` lines (each file once), `//!unroll` blocks and `{{NAME}}` placeholders; a
 * define equal to `f16` turns on `enable f16;`.
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
  let code = unroll(expand(shader), defines).replace(/\{\{(\w+)\}\}/g, (_, key: string) => {
    if (!(key in defines)) throw new Error(`Shader ${shader} needs the define ${key}`);
    return String(defines[key]);
  });
  if (Object.values(defines).includes('f16')) code = `enable f16;\n${code}`;
  return code;
}

/**
 * Expands `//!unroll VAR COUNT` … `//!end` blocks (nested blocks allowed): the body once per VAR = 0..COUNT-1,
 * with `{{VAR}}` replaced by the number; COUNT is a number or a `{{DEFINE}}`. For compilers that do not unroll
 * loops or scalarize arrays themselves (SwiftShader: an array indexed by a loop counter lives in memory, and
 * every access to it is a per-lane gather), so the kernel can name each accumulator.
 */
export function unroll(code: string, defines: ShaderDefines = {}): string {
  const lines = code.split('\n');
  let at = 0;
  const block = (vars: Record<string, number>, nested: boolean): string[] => {
    const out: string[] = [];
    while (at < lines.length) {
      const line = lines[at++] as string;
      if (/^\s*\/\/!end\s*$/.test(line)) {
        if (!nested) throw new Error(`Shader line ${at}: //!end without //!unroll`);
        return out;
      }
      const head = /^\s*\/\/!unroll ([a-z]\w*) (\S+)\s*$/.exec(line);
      if (!head) {
        out.push(
          line.replace(/\{\{([a-z]\w*)\}\}/g, (text, name: string) => (name in vars ? String(vars[name]) : text)),
        );
        continue;
      }
      const [, name = '', countText = ''] = head;
      const count = Number(countText.replace(/^\{\{(\w+)\}\}$/, (_, key: string) => String(defines[key] ?? NaN)));
      if (!Number.isInteger(count) || count < 0)
        throw new Error(`Shader line ${at}: unroll count ${countText} is not a count`);
      const start = at;
      if (count === 0) block({ ...vars }, true);
      for (let i = 0; i < count; i++) {
        at = start;
        out.push(...block({ ...vars, [name]: i }, true));
      }
    }
    if (nested) throw new Error('Shader: //!unroll without //!end');
    return out;
  };
  return block({}, false).join('\n');
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
