import { execFileSync } from 'node:child_process';
import { expect, it } from 'vitest';
import { buildShader } from '../src/kernels/shader.js';

it('src/kernels/wgsl.generated.ts matches src/kernels/<kernel>/*.wgsl', () => {
  expect(() => execFileSync('node', ['scripts/embed-shaders.mjs', '--check'], { stdio: 'pipe' })).not.toThrow();
});

it('resolves includes once and fills defines', () => {
  const code = buildShader('matmul.wgsl', { W_TYPE: 'f16' });
  expect(code.startsWith('enable f16;')).toBe(true);
  expect(code.match(/fn gelu_erf/g)).toHaveLength(1);
  expect(code).toContain('array<vec4<f16>>');
  expect(() => buildShader('matmul.wgsl')).toThrow(/W_TYPE/);
});
