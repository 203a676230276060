// The kernel specs (each beside its WGSL in src/kernels/<kernel>/, listed in src/kernels/spec.ts) against the WGSL they describe: every shader with every define
// set its launcher can pass is built and its bindings and `struct Params` are read back from the text.
// No GPU needed.
import { describe, expect, it } from 'vitest';
import { buildShader } from '../src/kernels/shader.js';
import { ELEMENTWISE_OPS } from '../src/kernels/elementwise/index.js';
import type { KernelSpec } from '../src/kernels/kernel-spec.js';
import {
  ACTIVATION_CODES,
  MATMUL_FLAGS,
  MATMUL_SPECS,
  matmulFlags,
  matmulLaunch,
  packedMatmulLaunch,
  scalarMatmulLaunch,
  SUBGROUP16_TILES,
  SUBGROUP8_TILES,
} from '../src/kernels/matmul/spec.js';
import { KERNEL_SPECS, kernelReads, kernelWrites } from '../src/kernels/spec.js';
import type { MatmulVariant } from '../src/kernels/tuning.js';

interface WgslBinding {
  index: number;
  space: string;
  access?: string;
  name: string;
  type: string;
}

function wgslBindings(code: string): WgslBinding[] {
  const found = [
    ...code.matchAll(/@group\(0\)\s*@binding\((\d+)\)\s*var<(\w+)(?:,\s*(\w+))?>\s*(\w+)\s*:\s*([^;]+);/g),
  ].map(([, index, space = '', access, name = '', type = '']) => ({
    index: Number(index),
    space,
    access,
    name,
    type: type.trim(),
  }));
  return found.sort((a, b) => a.index - b.index);
}

function paramsFields(code: string): { name: string; type: string }[] {
  const body = /struct Params\s*\{([^}]*)\}/.exec(code)?.[1];
  if (body === undefined) throw new Error('no struct Params');
  return [...body.matchAll(/(\w+)\s*:\s*(\w+)/g)].map(([, name = '', type = '']) => ({ name, type }));
}

/** What the WGSL declares, in the spec's shape, so one toEqual shows every difference. */
function declared(_spec: KernelSpec, code: string) {
  const bindings = wgslBindings(code);
  return {
    indices: bindings.map((b) => b.index),
    storage: bindings.filter((b) => b.space === 'storage').map((b) => ({ wgsl: b.name, access: b.access ?? 'read' })),
    uniform: bindings.filter((b) => b.space === 'uniform').map((b) => ({ index: b.index, name: b.name, type: b.type })),
    uniforms: paramsFields(code),
  };
}

function expected(spec: KernelSpec) {
  return {
    indices: Array.from({ length: spec.bindings.length + 1 }, (_, i) => i),
    storage: spec.bindings.map((b) => ({ wgsl: b.wgsl, access: b.access })),
    uniform: [{ index: spec.bindings.length, name: 'p', type: 'Params' }],
    uniforms: spec.uniforms.map((f) => ({ name: f.name, type: f.type })),
  };
}

describe('kernel specs match their shaders', () => {
  for (const spec of KERNEL_SPECS) {
    it(`${spec.kernel}: bindings and Params for each of its ${spec.defineSets.length} define sets`, () => {
      expect(spec.defineSets.length).toBeGreaterThan(0);
      expect(spec.shader).toBe(`${spec.kernel}.wgsl`);
      for (const defines of spec.defineSets) {
        const code = buildShader(spec.shader, defines);
        expect({ defines, ...declared(spec, code) }).toEqual({ defines, ...expected(spec) });
      }
    });
  }

  it('every launch matmul() can make passes a define set its spec lists', () => {
    const variants: MatmulVariant[] = [
      'block',
      'tiled',
      ...SUBGROUP8_TILES.map((t): MatmulVariant => `subgroup-${t.rows}x${t.cols}`),
      ...SUBGROUP16_TILES.map((t): MatmulVariant => `subgroup16-${t.rows}x${t.cols}`),
    ];
    const launches = (['f32', 'f16'] as const).flatMap((d) => [
      ...variants.map((v) => matmulLaunch(v, d)),
      scalarMatmulLaunch(d),
    ]);
    for (const launch of [...launches, ...[1, 2, 3].map((rows) => packedMatmulLaunch(rows))]) {
      expect(launch.spec.defineSets).toContainEqual(launch.defines);
    }
  });

  it('matmul tiles: 8 or 16 lanes × rows/cols per lane for subgroup variants, fixed tiles elsewhere', () => {
    expect(matmulLaunch('subgroup-3x3', 'f32').tile).toEqual({ rows: 24, cols: 24 });
    expect(matmulLaunch('subgroup16-2x3', 'f16').tile).toEqual({ rows: 32, cols: 48 });
    expect(matmulLaunch('block', 'f32').tile).toEqual({ rows: 32, cols: 32 });
    expect(matmulLaunch('tiled', 'f32').tile).toEqual({ rows: 64, cols: 64 });
    expect(packedMatmulLaunch(2).tile).toEqual({ rows: 16, cols: 24 });
    expect(scalarMatmulLaunch('f32').tile).toEqual({ rows: 8, cols: 8 });
  });
});

describe('flag bits and op codes match the WGSL that reads them', () => {
  const epilogue = buildShader('matmul.wgsl', { W_TYPE: 'f32', X_TYPE: 'f32', Y_TYPE: 'f32' });

  it('matmul epilogue: bias, activation, accumulate', () => {
    const squeeze = (s: string) => s.replace(/\s+/g, '');
    const code = squeeze(epilogue);
    expect(code).toContain(squeeze(`if ((p.flags & ${MATMUL_FLAGS.bias}u) != 0u) { v += bias[col]; }`));
    expect(code).toContain(squeeze(`let act = (p.flags >> ${MATMUL_FLAGS.activationShift}u) & 3u;`));
    expect(code).toContain(
      squeeze(
        `if (act == ${ACTIVATION_CODES.gelu}u) { v = gelu_erf(v); } else if (act == ${ACTIVATION_CODES.quick_gelu}u) { v = quick_gelu(v); }`,
      ),
    );
    expect(code).toContain(squeeze(`if ((p.flags & ${MATMUL_FLAGS.accumulate}u) != 0u) { v += y_before(at); }`));
    expect(matmulFlags({ bias: true, activation: 'quick_gelu', accumulate: true })).toBe(1 | (2 << 1) | 8);
    expect(matmulFlags({})).toBe(0);
  });

  it('elementwise op: 0 is GELU, otherwise QuickGELU', () => {
    expect(buildShader('elementwise.wgsl')).toContain(
      `select(quick_gelu(x), gelu_erf(x), p.op == ${ELEMENTWISE_OPS.gelu}u)`,
    );
    expect(ELEMENTWISE_OPS.quick_gelu).not.toBe(ELEMENTWISE_OPS.gelu);
  });
});

describe('what each kernel reads and writes', () => {
  it('names launcher arguments by access, with matmul reading y when it accumulates', () => {
    for (const kernel of Object.keys(MATMUL_SPECS)) {
      expect(kernelWrites(kernel)).toEqual(['y']);
      expect(kernelReads(kernel)).toEqual(['x', 'w', 'bias']);
      expect(kernelReads(kernel, { accumulate: true })).toEqual(['x', 'w', 'bias', 'y']);
    }
    expect(kernelWrites('attention_tile')).toEqual(['out']);
    expect(kernelReads('embed_tokens')).toEqual(['ids', 'chunks', 'pos']);
    expect(kernelWrites('vision_tokens')).toEqual(['y']);
    expect(() => kernelWrites('no_such_kernel')).toThrow(/no_such_kernel/);
  });
});
