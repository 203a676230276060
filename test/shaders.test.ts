import { execFileSync } from 'node:child_process';
import { expect, it } from 'vitest';
import { buildShader } from '../src/kernels/shader.js';

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
