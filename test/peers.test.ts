import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  b8Plan,
  checkAgreement,
  describePlacement,
  MIN_ROW_COSINE,
  matmulProviders,
  parsePlacements,
  rowCosines,
} from '../bench/peers-lib.js';
import {
  figures,
  historyTable,
  latestAndHistory,
  latestTable,
  type PeersResult,
  peersTable,
} from '../scripts/peers-table.mjs';
import { loadNpy, TINY } from './helpers.js';

// open_clip's own outputs for the tiny checkpoint: raw embeddings and the library's L2-normalized ones.
const imageRaw = loadNpy(new URL('expected/image_embeddings_raw.npy', TINY));
const imageUnit = loadNpy(new URL('expected/image_embeddings.npy', TINY));
const textRaw = loadNpy(new URL('expected/text_embeddings_raw.npy', TINY));
const textUnit = loadNpy(new URL('expected/text_embeddings.npy', TINY));
const dim = imageRaw.shape[1] ?? 0;
const rows = imageRaw.shape[0] ?? 0;

describe('bench:peers agreement gate', () => {
  it('row cosines equal the dot products of open_clip’s own normalized embeddings', () => {
    const cosines = rowCosines(imageRaw.data, textRaw.data.subarray(0, rows * dim), dim);
    expect(cosines).toHaveLength(rows);
    cosines.forEach((c, row) => {
      let dot = 0;
      for (let i = 0; i < dim; i++) dot += imageUnit.data[row * dim + i]! * textUnit.data[row * dim + i]!;
      expect(Math.abs(c - dot)).toBeLessThan(1e-6);
    });
  });

  it('accepts an export that computes the same rows (here: the same embeddings, normalized)', () => {
    const agreement = checkAgreement('peer', 'image', imageRaw.data, imageUnit.data, dim);
    expect(agreement.rows).toBe(rows);
    expect(agreement.minCosine).toBeGreaterThan(1 - 1e-6);
  });

  it('refuses a mismatched export before timing, naming the engine, case and worst row', () => {
    // Another tower's output in place of the image tower's: what an export of the wrong model gives.
    expect(() =>
      checkAgreement(
        'ONNX Runtime WebGPU EP',
        'image, batch 1',
        imageRaw.data,
        textRaw.data.subarray(0, rows * dim),
        dim,
      ),
    ).toThrow(/ONNX Runtime WebGPU EP disagrees with whylesion on image, batch 1: row \d+ has cosine .* < 0\.9999/);
    // Right rows in the wrong order (a batch-axis mix-up): every row is someone else's.
    const swapped = new Float32Array(imageRaw.data);
    swapped.set(imageRaw.data.subarray(dim, 2 * dim), 0);
    swapped.set(imageRaw.data.subarray(0, dim), dim);
    expect(() => checkAgreement('peer', 'image', imageRaw.data, swapped, dim)).toThrow(/row [01] has cosine/);
  });

  it('refuses a small but real difference in one row and NaN outputs', () => {
    // Row 2 moved off its direction by ~2 % of its norm: cosine ≈ 0.9998, below the gate.
    const nudged = new Float32Array(imageRaw.data);
    const row2 = imageRaw.data.subarray(2 * dim, 3 * dim);
    const norm = Math.sqrt(row2.reduce((sum, v) => sum + v * v, 0));
    nudged[2 * dim] = (row2[0] ?? 0) + 0.02 * norm;
    expect(rowCosines(imageRaw.data, nudged, dim)[2]).toBeLessThan(MIN_ROW_COSINE);
    expect(() => checkAgreement('peer', 'image', imageRaw.data, nudged, dim)).toThrow(/row 2 has cosine/);
    const nan = new Float32Array(imageRaw.data);
    nan[5] = Number.NaN;
    expect(() => checkAgreement('peer', 'image', imageRaw.data, nan, dim)).toThrow(/row 0 has cosine NaN/);
  });

  it('refuses outputs of different sizes', () => {
    expect(() => rowCosines(imageRaw.data, imageRaw.data.subarray(dim), dim)).toThrow(/cannot compare/);
  });
});

describe('bench:peers node placements from ONNX Runtime’s verbose log', () => {
  // Verbatim from onnxruntime-node 1.31.1 (tiny checkpoint's image tower: a CPU EP session, then a WebGPU EP one).
  const log = readFileSync(new URL('fixtures/peers/ort-1.31.1-verbose-log.txt', import.meta.url), 'utf8');
  const [cpu, webgpu] = parsePlacements(log);

  it('reads one placement per session, with the counts the log states', () => {
    expect(parsePlacements(log)).toHaveLength(2);
    const stated = [...log.matchAll(/placed on \[(\w+)\]\. Number of nodes: (\d+)/g)].map((m) => [m[1], Number(m[2])]);
    expect(stated).toEqual([
      ['CPUExecutionProvider', cpu?.CPUExecutionProvider?.nodes],
      ['CPUExecutionProvider', webgpu?.CPUExecutionProvider?.nodes],
      ['WebGpuExecutionProvider', webgpu?.WebGpuExecutionProvider?.nodes],
    ]);
    // Every listed node is counted under its provider: the op counts add up to the stated totals.
    for (const entry of Object.values(webgpu ?? {}))
      expect(Object.values(entry.ops).reduce((a, b) => a + b, 0)).toBe(entry.nodes);
  });

  it('finds where the MatMuls ran', () => {
    expect(matmulProviders(cpu ?? {})).toEqual(['CPUExecutionProvider']);
    expect(matmulProviders(webgpu ?? {})).toEqual(['WebGpuExecutionProvider']);
    const matmulLines = log.split('\n').filter((l) => /VerifyEachNodeIsAssignedToAnEp\] {3}MatMul \(/.test(l)).length;
    expect(webgpu?.WebGpuExecutionProvider?.ops.MatMul).toBe(matmulLines);
    expect(describePlacement(webgpu ?? {})).toMatch(
      /^CPUExecutionProvider \d+ nodes .*; WebGpuExecutionProvider \d+ nodes \(MatMul \d+,/,
    );
  });

  it('reads nothing from a log without a placement block', () => {
    expect(parsePlacements(log.replace(/Node placements/g, 'something else'))).toEqual([]);
  });
});

describe('speed tables from results', () => {
  const run = (date: string, load: number, ours: number[], webgpu: number[], note?: string): PeersResult => ({
    kind: 'peers',
    host: 'node',
    date,
    rounds: 2,
    machine: { cpu: 'AMD EPYC', cores: 2, cpuFlags: 'avx2 avx512f' },
    loadAverage: { start: [load, 0, 0], end: [load + 1, 0, 0] },
    cases: [
      { id: 'image-b1', label: 'image, batch 1', batch: 1 },
      { id: 'image-b8', label: 'image, batch 8', batch: 8 },
    ],
    engines: [
      { id: 'whylesion', label: 'whylesion (WebGPU)', adapter: 'lavapipe' },
      {
        id: 'ort-webgpu',
        label: 'ONNX Runtime WebGPU EP',
        version: '1.31.1',
        matmulProviders: ['WebGpuExecutionProvider'],
      },
    ],
    timings: [
      { engine: 'whylesion', case: 'image-b1', warmupS: 9, runsS: ours, medianS: ours[0] ?? null },
      { engine: 'ort-webgpu', case: 'image-b1', warmupS: 90, runsS: webgpu, medianS: webgpu[0] ?? null },
      { engine: 'whylesion', case: 'image-b8', warmupS: 50, runsS: [40], medianS: 40 },
      { engine: 'ort-webgpu', case: 'image-b8', warmupS: null, runsS: [], medianS: null, note },
    ],
    agreement: [{ engine: 'ONNX Runtime WebGPU EP', case: 'image, batch 1', rows: 1, minCosine: 0.99999993 }],
  });

  it('puts ours beside theirs per case, per image at batch 8, with ours over theirs and why a case was skipped', () => {
    const text = peersTable(run('2026-12-06T20:00:00Z', 5, [4], [25], 'skipped: over budget'), 'peers-node.json');
    const row = (label: string) => text.split('\n').find((l) => l.startsWith(`| ${label} |`));
    // 4 s against 25 s: ours is 0.16 of theirs (bold: faster); batch 8 per image is 40 / 8.
    expect(row('image, batch 1')).toBe('| image, batch 1 | 4.00 | 25.0 | **0.16** |');
    expect(row('image, batch 8 (per image)')).toBe('| image, batch 8 (per image) | 5.00 | skipped¹ | – |');
    expect(text).toContain('¹ ONNX Runtime WebGPU EP, image, batch 8: skipped: over budget.');
    expect(text).toContain('load average 5.0 → 6.0');
    expect(text).toContain('lowest row cosine 0.9999999');
    expect(text).toContain('MatMul/Gemm on WebGpuExecutionProvider');
  });

  it('shows the latest run per system and case and moves older figures to the history', () => {
    const older = run('2026-12-01T10:00:00Z', 12, [6], [70]);
    const newer = run('2026-12-06T20:00:00Z', 3, [4], [25]);
    const all = figures({
      'peers-node.json': newer,
      'peers-older.json': older,
      'history.json': {
        figures: [
          { system: 'whylesion (WebGPU), node', case: 'image, batch 1', seconds: 3, date: null, source: 'by hand' },
        ],
      },
    });
    const { latest, history } = latestAndHistory(all);
    const b1 = latest.filter((f) => f.case === 'image, batch 1');
    expect(b1.map((f) => [f.system, f.seconds, f.file])).toEqual([
      ['whylesion (WebGPU), node', 4, 'peers-node.json'],
      ['ONNX Runtime WebGPU EP, node', 25, 'peers-node.json'],
    ]);
    // The older run's figures and the undated one are history, dated first.
    expect(history.map((f) => [f.seconds, f.file])).toEqual([
      [70, 'peers-older.json'],
      [6, 'peers-older.json'],
      [40 / 8, 'peers-older.json'],
      [3, 'history.json'],
    ]);
    const table = latestTable(latest);
    expect(table).toContain('| image, batch 1 | 4.00 s (a) | 25.0 s (a) | **0.16** |');
    expect(table).toContain(
      '(a) `bench/results/peers-node.json`, 2026-12-06, load average 3.0 → 4.0; CPU flags avx2 avx512f.',
    );
    expect(historyTable(history)).toContain(
      '| undated | whylesion (WebGPU), node | image, batch 1 | 3.00 | ? | by hand |',
    );
  });

  it('names a reduced model in the run’s first line and in its systems, so it never stands for ViT-L/14', () => {
    const chromium: PeersResult = {
      ...run('2026-12-06T21:00:00Z', 20, [10], [45]),
      host: 'chromium, SwiftShader',
      model: { config: 'ViT-L-14-2blocks', description: 'ViT-L/14 with 2 of its 24 image blocks' },
    };
    expect(peersTable(chromium, 'peers-chromium.json')).toContain(
      '**chromium, SwiftShader**: 2026-12-06, ViT-L/14 with 2 of its 24 image blocks, median of 2',
    );
    const systems = new Set(
      figures({ 'peers-chromium.json': chromium, 'peers-node.json': run('2026-12-06T20:00:00Z', 3, [4], [25]) }).map(
        (f) => f.system,
      ),
    );
    expect([...systems].sort()).toEqual([
      'ONNX Runtime WebGPU EP, chromium, SwiftShader, ViT-L-14-2blocks',
      'ONNX Runtime WebGPU EP, node',
      'whylesion (WebGPU), chromium, SwiftShader, ViT-L-14-2blocks',
      'whylesion (WebGPU), node',
    ]);
  });
});

describe('bench:peers batch-8 budget', () => {
  it('runs batch 8 when 8 × the summed batch-1 medians × (warm-up + rounds) fits the budget', () => {
    // 8 × (2 + 3) s × 3 calls = 120 s.
    expect(b8Plan([2, 3], 2, 120)).toEqual({
      run: true,
      note: 'run: 8 × the batch-1 medians (2.0 + 3.0 s) × 3 calls = 120 s within the 120 s budget',
    });
    expect(b8Plan([2, 3], 2, 119)).toEqual({
      run: false,
      note: 'skipped: 8 × the batch-1 medians (2.0 + 3.0 s) × 3 calls = 120 s exceeds the 119 s budget of this run',
    });
  });

  it('skips batch 8 when a batch-1 median is missing', () => {
    expect(b8Plan([2, Number.NaN], 2, 1e9).run).toBe(false);
  });
});
