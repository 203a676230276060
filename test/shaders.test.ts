import { execFileSync } from 'node:child_process';
import { expect, it } from 'vitest';
import { buildShader, unroll } from '../src/kernels/shader.js';

it('src/kernels/wgsl.generated.ts matches src/kernels/<kernel>/*.wgsl', () => {
  expect(() => execFileSync('node', ['scripts/embed-shaders.mjs', '--check'], { stdio: 'pipe' })).not.toThrow();
});

it('resolves includes once and fills defines', () => {
  const code = buildShader('matmul.wgsl', { W_TYPE: 'f16', X_TYPE: 'f16', Y_TYPE: 'f32' });
  expect(code.startsWith('enable f16;')).toBe(true);
  expect(code.match(/fn gelu_erf/g)).toHaveLength(1);
  expect(code).toContain('array<vec4<f16>>');
  expect(code).toContain('fn widen_x(x: vec2<u32>)'); // the include named by a define
  expect(() => buildShader('matmul.wgsl', { W_TYPE: 'f16' })).toThrow(/needs the define X_TYPE/);
  expect(() => buildShader('matmul.wgsl', { X_TYPE: 'f32', Y_TYPE: 'f32' })).toThrow(/W_TYPE/);
});

it('spells out //!unroll blocks, nested, with counts from defines', () => {
  const code = unroll(
    ['a', '//!unroll i {{ROWS}}', '  x{{i}}', '//!unroll j 2', '  y{{i}}_{{j}} {{ROWS}}', '//!end', '//!end', 'b'].join(
      '\n',
    ),
    { ROWS: 3 },
  );
  expect(code.split('\n')).toEqual([
    'a',
    '  x0',
    '  y0_0 {{ROWS}}',
    '  y0_1 {{ROWS}}',
    '  x1',
    '  y1_0 {{ROWS}}',
    '  y1_1 {{ROWS}}',
    '  x2',
    '  y2_0 {{ROWS}}',
    '  y2_1 {{ROWS}}',
    'b',
  ]);
  expect(unroll('//!unroll i 0\nx{{i}}\n//!end\nz')).toBe('z');
  expect(() => unroll('//!unroll i {{ROWS}}\n//!end')).toThrow(/unroll count \{\{ROWS\}\} is not a count/);
  expect(() => unroll('//!unroll i 2\nx')).toThrow(/without \/\/!end/);
  expect(() => unroll('x\n//!end')).toThrow(/without \/\/!unroll/);
  // the spelled-out matmul: one accumulator per tile row and lane column, no loop but the one over K
  const matmul = buildShader('matmul_subgroup_unrolled.wgsl', {
    W_TYPE: 'f32',
    X_TYPE: 'f32',
    Y_TYPE: 'f32',
    LANES: 4,
    ROWS: 2,
    COLS: 3,
  });
  expect(new Set(matmul.match(/var acc_\d+_\d+_\d+/g)).size).toBe(2 * 4 * 3);
  expect(matmul.match(/\bfor \(/g)).toHaveLength(1);
  expect(matmul).not.toMatch(/\{\{|^\s*\/\/!/m);
});
