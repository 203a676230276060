// The load-time NaN/Inf check alone, over as many bytes as ViT-L/14's f32 checkpoint (1.71 GB), through a
// 64 MB staging buffer: WebAssembly SIMD in place (what loads use) against the plain JavaScript loop.
// Compare with the load time in bench/results/load-f32.json. Run: npm run -s build && node dist/bench/finite-check.js
import { Staging } from '../src/model/staging.js';

const TOTAL_BYTES = 1_710_517_804;
const CHUNK = 16 * 1024 * 1024;

function time(staging: Staging, kind: 'f32' | 'f16'): number {
  const view = kind === 'f32' ? staging.f32(CHUNK) : staging.f16(2 * CHUNK);
  for (let i = 0; i < view.length; i++) view[i] = kind === 'f32' ? Math.sin(i) : i % 0x7c00;
  const started = performance.now();
  for (let done = 0; done < TOTAL_BYTES; done += view.byteLength) {
    const n = Math.min(view.length, (TOTAL_BYTES - done) / view.BYTES_PER_ELEMENT);
    const part = view.subarray(0, n);
    const at =
      part instanceof Float32Array ? staging.firstNonFiniteF32(part) : staging.firstNonFiniteF16(part as Uint16Array);
    if (at !== -1) throw new Error('unexpected non-finite value');
  }
  return (performance.now() - started) / 1000;
}

for (const kind of ['f32', 'f16'] as const) {
  for (const [name, staging] of [
    ['wasm-simd', new Staging(true)],
    ['javascript', new Staging(false)],
  ] as const) {
    const runs = [time(staging, kind), time(staging, kind), time(staging, kind)].sort((a, b) => a - b);
    console.log(
      `${kind} ${name}: median ${(runs[1]! * 1000).toFixed(0)} ms over ${(TOTAL_BYTES / 1e9).toFixed(2)} GB (${(TOTAL_BYTES / runs[1]! / 1e9).toFixed(1)} GB/s)`,
    );
  }
}
