#!/usr/bin/env node
// Writes the benchmark tables of README.md and bench/README.md from bench/results/*.json, between
// `<!-- generated:NAME -->` and `<!-- /generated:NAME -->` markers, so no figure is typed by hand.
//   node scripts/render-tables.mjs           rewrite the tables
//   node scripts/render-tables.mjs --check   fail (exit 1) when a table differs from its results (npm test runs this)
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BROWSER_RESULT, figures, historyTable, latestAndHistory, latestTable, peersTable } from './peers-table.mjs';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const RESULTS = join(REPO, 'bench', 'results');
const read = (name) => JSON.parse(readFileSync(join(RESULTS, name), 'utf8'));
const has = (name) => existsSync(join(RESULTS, name));
const day = (iso) => iso.slice(0, 10);
const fixed = (v, digits = 2) => (v === undefined || v === null ? '–' : v.toFixed(digits));
const exp = (v) => v.toExponential(1).replace('e-', 'e-');
const bold = (text, when) => (when ? `**${text}**` : text);
const table = (head, rows) =>
  [
    `| ${head.join(' | ')} |`,
    `| ${head.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');

function source(files) {
  return `<sub>From ${files.map((f) => `\`bench/results/${f}\``).join(', ')}.</sub>`;
}

/** Whether a result's engine passed f16 activations between the kernels of a block (recorded since the sixth pass). */
const halfActivations = (r) => r.activations?.vision === 'f16' || r.activations?.text === 'f16';

function e2eRuns() {
  return ['f32', 'f16']
    .filter((d) => has(`e2e-ViT-L-14-${d}.json`))
    .map((d) => ({ dtype: d, file: `e2e-ViT-L-14-${d}.json`, ...read(`e2e-ViT-L-14-${d}.json`) }));
}

function e2eTable() {
  const runs = e2eRuns();
  const cases = runs[0].rows.map((r) => r.case);
  const head = [
    'case',
    ...runs.flatMap((r) => [
      `engine ${r.dtype} warm s`,
      `engine ${r.dtype} cold s`,
      `PyTorch s (${r.dtype} run)`,
      'ratio',
    ]),
  ];
  const rows = cases.map((name) => [
    name,
    ...runs.flatMap((run) => {
      const row = run.rows.find((r) => r.case === name);
      const ratio = row.engine / row.torch;
      return [fixed(row.engine), fixed(row.engineCold), fixed(row.torch), bold(fixed(ratio), ratio <= 1)];
    }),
  ]);
  const notes = runs.map(
    (r) =>
      `${r.dtype}${halfActivations(r) ? ' (f16 block activations)' : ''}: ${day(r.date)}, median of ${r.runs} warm runs, ${r.machine}${r.cpuFlags ? `; CPU flags ${r.cpuFlags}` : ''}${r.lpNativeVectorWidth ? `; LP_NATIVE_VECTOR_WIDTH=${r.lpNativeVectorWidth}` : ''}, load average ${r.loadAverage?.map((l) => l.toFixed(1)).join(' → ') ?? '?'}.`,
  );
  return `${table(head, rows)}\n\n${notes.map((n) => `- ${n}`).join('\n')}\n\n${source(runs.map((r) => r.file))}`;
}

function parityTable() {
  const files = readdirSync(RESULTS)
    .filter((f) => /^parity-ViT-L-14-b\d+-(f32|f16)\.json$/.test(f))
    .sort();
  const rows = [];
  for (const file of files) {
    const r = read(file);
    for (const tower of ['image', 'text']) {
      if (!r[tower] || (tower === 'text' && r.batch !== 1)) continue;
      const prefix = tower === 'image' ? 'vision.' : 'text.';
      const steps = r.steps.filter((s) => s.step.startsWith(prefix));
      const worst = steps.reduce((a, s) => (s.maxAbs > a.maxAbs ? s : a), steps[0]);
      rows.push([
        `${r.dtype}${halfActivations(r) ? ', f16 activations' : ''}${r.batch > 1 ? `, batch ${r.batch}` : ''}`,
        tower,
        `${exp(worst.maxAbs)} (${exp(worst.relative)})`,
        exp(r[tower].maxAbsNormalized),
        r[tower].minCosine.toFixed(r.dtype === 'f32' ? 7 : 8),
      ]);
    }
  }
  const dates = [...new Set(files.map((f) => day(read(f).date)))].join(', ');
  return `${table(['weights on the GPU', 'tower', 'worst block max abs (relative to max)', 'final max abs diff, normalized', 'min cosine'], rows)}\n\nRun ${dates}.\n\n${source(files)}`;
}

/** `whylesion parity --json` outputs: the acceptance runs (same checkpoint; reference copy with one block's MLP ×1.01). */
function parityCliTable() {
  const files = readdirSync(RESULTS)
    .filter((f) => /^parity-cli-.*\.json$/.test(f))
    .sort();
  const rows = files.map((file) => {
    const r = read(file);
    const failing = r.first_failing;
    const cut = failing
      ? r.steps.findIndex((s) => s.tower === failing.tower && s.step === failing.step)
      : r.steps.length;
    const worstBefore = (tower) => {
      const steps = r.steps.slice(0, cut).filter((s) => s.tower === tower);
      const w = steps.reduce((a, s) => (s.relative > a.relative ? s : a), steps[0]);
      return w ? `${tower} ${w.step} ${exp(w.maxAbs)} (${exp(w.relative)})` : '–';
    };
    const named = failing ? r.steps[cut] : undefined;
    const embedding = (tower) => r.steps.find((s) => s.tower === tower && s.step === 'embedding');
    return [
      `\`${file}\``,
      r.pass ? '0' : '1',
      failing ? `\`{"tower": "${failing.tower}", "block": ${failing.block}}\`` : 'null',
      `${r.cosine.image.toFixed(7)} / ${r.cosine.text.toFixed(7)}`,
      [worstBefore('image'), failing?.tower === 'image' ? '' : worstBefore('text')].filter(Boolean).join('; '),
      named ? `${named.tower} ${named.step} ${exp(named.maxAbs)} (${exp(named.relative)})` : '–',
      `${exp(embedding('image').maxAbs)} / ${exp(embedding('text').maxAbs)}`,
    ];
  });
  return `${table(['run', 'exit', '`first_failing`', '`cosine` image / text', 'worst step before it, max abs (relative)', 'first step over 1e-4, max abs (relative)', 'final embedding max abs, image / text'], rows)}\n\n${source(files)}`;
}

function loadTable() {
  const files = ['load-f32.json', 'load-f16.json'].filter(has);
  const runs = files.map(read);
  if (runs.length === 0) return 'No run recorded yet: `npm run bench:load` writes `bench/results/load-f32.json`.';
  const mb = (bytes) => bytes / 1e6;
  const rows = [
    [
      '`cat file > /dev/null`',
      fixed(runs[0].cat.seconds),
      `${(mb(runs[0].bytes) / runs[0].cat.seconds / 1000).toFixed(1)} GB/s`,
      `${fixed(runs[0].cat.peakRssMB, 1)} MB`,
      '',
    ],
  ];
  for (const r of runs) {
    const weightsMB = mb(r.bytes) / (r.dtype === 'f16' ? 2 : 1);
    rows.push([
      `load, ${r.dtype} on the GPU`,
      fixed(r.seconds, 1),
      `${r.mbPerSecond.toFixed(0)} MB/s`,
      `${r.peakRssMB.toFixed(0)} MB`,
      `${r.dtype === 'f16' ? `f16 copy: ${weightsMB.toFixed(0)} MB, ` : ''}+${(r.peakRssMB - weightsMB).toFixed(0)} MB`,
    ]);
  }
  return `${table(['what', 'wall s', 'throughput', 'peak RSS', 'RSS − weights'], rows)}\n\nRun ${runs.map((r) => day(r.date)).join(', ')} on ${runs[0].machine}${runs[0].cpuFlags ? ` (CPU flags ${runs[0].cpuFlags})` : ''}.\n\n${source(files)}`;
}

function kernelsTable() {
  const files = readdirSync(RESULTS).filter((f) => /^kernels-.*\.json$/.test(f));
  const file = files.sort((a, b) => read(a).date.localeCompare(read(b).date)).at(-1);
  const r = read(file);
  const matmul = r.results.filter((x) => x.kernel === 'openblas' || x.kernel.startsWith('matmul.'));
  const kernels = [...new Set(matmul.map((x) => x.kernel))];
  const shapes = [...new Set(matmul.map((x) => x.shape))];
  const cell = (shape, kernel) => {
    const x = matmul.find((m) => m.shape === shape && m.kernel === kernel);
    return x ? `${x.gflops.toFixed(1)} (${x.ms.toFixed(x.ms < 10 ? 1 : 0)})` : '–';
  };
  const rows = shapes.map((shape) => {
    const blas = matmul.find((m) => m.shape === shape && m.kernel === 'openblas');
    const best = matmul
      .filter((m) => m.shape === shape && m.kernel !== 'openblas')
      .reduce((a, m) => (m.gflops > a.gflops ? m : a));
    return [
      shape,
      ...kernels.map((k) => cell(shape, k)),
      `${best.kernel.replace('matmul.', '')}: ${((100 * best.gflops) / blas.gflops).toFixed(0)} %`,
    ];
  });
  const head = ['shape', ...kernels.map((k) => k.replace('matmul.', '')), 'best vs OpenBLAS'];
  return `GFLOP/s (ms). ${day(r.date)}, ${r.cpu}${r.cpuFlags ? ` (flags: ${r.cpuFlags})` : ''}, ${r.adapter.description}, LP_NUM_THREADS=${r.lpNumThreads ?? 'unset'}${r.lpNativeVectorWidth ? `, LP_NATIVE_VECTOR_WIDTH=${r.lpNativeVectorWidth}` : ''}; load average ${r.loadAverage.map((l) => l.toFixed(1)).join(' → ')}.\n\n${table(head, rows)}\n\n${source([file])}`;
}

function classifyScaleTable() {
  const files = readdirSync(RESULTS)
    .filter((f) => /^classify-scale-\d+px\.json$/.test(f))
    .sort();
  if (files.length === 0)
    return 'No run recorded yet: `npm run bench:classify-scale` writes `bench/results/classify-scale-64px.json`.';
  return files
    .map((file) => {
      const r = read(file);
      const base = r.runs[0];
      const rows = r.runs.map((x) => [
        x.images.toLocaleString('en-US'),
        x.rows.toLocaleString('en-US'),
        `${x.peakRssMB.toFixed(0)} MiB`,
        `${(x.peakRssMB / base.peakRssMB).toFixed(2)}×`,
        `${x.wallSeconds.toFixed(0)} s`,
        String(x.progressLines),
      ]);
      const head = [
        'images',
        'rows out',
        'peak RSS',
        `× ${base.images.toLocaleString('en-US')} images`,
        'wall',
        'progress lines in the redirected stderr',
      ];
      return `\`${r.command}\`, ${r.imageSize}×${r.imageSize} PNGs. ${day(r.date)}, ${r.machine}; load average ${r.loadAverage.map((l) => l.toFixed(1)).join(', ')} (1, 5, 15 min).\n\n${table(head, rows)}\n\n${source([file])}`;
    })
    .join('\n\n');
}

/** Every results file the speed tables draw on (peers runs, bench:e2e f32, bench:browser, history.json), parsed. */
function speedFiles() {
  const names = readdirSync(RESULTS).filter(
    (f) =>
      /^peers-.*\.json$/.test(f) || BROWSER_RESULT.test(f) || ['e2e-ViT-L-14-f32.json', 'history.json'].includes(f),
  );
  return Object.fromEntries(names.sort().map((f) => [f, read(f)]));
}

/** The latest figure per system and case; older ones go to historyBlock. */
function latestBlock() {
  const files = speedFiles();
  const { latest } = latestAndHistory(figures(files));
  return `${latestTable(latest)}\n\n${source([...new Set(latest.map((f) => f.file))])}`;
}

function historyBlock() {
  const { history } = latestAndHistory(figures(speedFiles()));
  return historyTable(history);
}

/** bench:peers runs, one per host (peers-node.json; peers-chromium.json when the browser side writes one). */
function peersBlock() {
  const files = readdirSync(RESULTS)
    .filter((f) => /^peers-.*\.json$/.test(f))
    .sort();
  if (files.length === 0) return 'No run recorded yet: `npm run bench:peers` writes `bench/results/peers-node.json`.';
  return files.map((f) => peersTable(read(f), f)).join('\n\n');
}

function readmeNumbers() {
  const parity = read('parity-ViT-L-14-b1-f32.json');
  const loads = ['load-f32.json', 'load-f16.json'].filter(has).map(read);
  const lines = [
    latestBlock(),
    '',
    `- Parity at full ViT-L/14 (synthetic weights, fp32): normalized embeddings within ${exp(Math.max(parity.image.maxAbsNormalized, parity.text.maxAbsNormalized))} of the PyTorch reference, ` +
      `cosine ${Math.min(parity.image.minCosine, parity.text.minCosine).toFixed(7)}; on open_clip's own tiny checkpoint within 1e-5 in CI.`,
    ...loads.map(
      (l) =>
        `- Loading ViT-L/14 with ${l.dtype} weights on the GPU: ${fixed(l.seconds, 1)} s, peak RSS ${l.peakRssMB.toFixed(0)} MB.`,
    ),
    '',
    `${source(['parity-ViT-L-14-b1-f32.json', ...['load-f32.json', 'load-f16.json'].filter(has)])} Older figures, the peers' node placements and versions: \`bench/README.md\`.`,
  ];
  return lines.join('\n');
}

function evalReferenceTable() {
  const r = read('eval-reference.json');
  const rows = r.rows.map((row) => [
    row.mode,
    row.solver,
    ...row.ours.map((v) => fixed(v, 1)),
    ...row.reference.map((v) => fixed(v, 1)),
    row.loss === undefined
      ? '–'
      : `${row.loss.toFixed(6)} vs ${row.referenceLoss.toFixed(6)} (${exp(Math.abs(row.relativeLossDifference))})`,
  ]);
  const worst = Math.max(...r.rows.flatMap((row) => row.ours.map((v, i) => Math.abs(v - row.reference[i]))));
  return (
    `${table(['mode', 'solver', 'ours val', 'ours test', 'reference val', 'reference test', 'L-BFGS objective, ours vs scikit-learn (relative)'], rows)}\n\n` +
    `- ${day(r.date)}; torch ${r.versions.torch}, scikit-learn ${r.versions.sklearn}. Largest accuracy difference: ${worst.toFixed(1)} points.\n\n${source(['eval-reference.json'])}`
  );
}

function probeTrainTable() {
  const r = read('probe-train.json');
  const t = r.typescript,
    p = r.reference;
  const rows = [
    [
      `Adam, batch 64, ${r.n} × ${r.dim}, ${r.classes} classes (+ val 2000 each epoch)`,
      `${fixed(t.adamSeconds, 1)} (${r.epochs} epochs)`,
      `${fixed(p.adam_seconds, 1)} (${p.epochs} epochs, torch, ${p.threads} threads)`,
    ],
    [
      'L-BFGS to convergence, C = 1',
      `${fixed(t.lbfgsSeconds, 1)} (${t.lbfgsIterations} iterations, loss ${t.lbfgsLoss.toFixed(4)})`,
      `${fixed(p.lbfgs_seconds, 1)} (${p.lbfgs_iterations} iterations, loss ${p.lbfgs_loss.toFixed(4)})`,
    ],
  ];
  return (
    `${table(['task', 'TypeScript s', 'PyTorch / scikit-learn s'], rows)}\n\n- ${day(r.date)}, ${r.machine['Model name'] ?? '?'} (${r.machine['CPU(s)'] ?? '?'} CPUs), Node ${r.node}, ` +
    `load average at the end ${r.loadAverageAtEnd.map((l) => l.toFixed(1)).join(' ')}; CPU flags ${r.machine.Flags ?? '?'}.\n\n${source(['probe-train.json'])}`
  );
}

/** The newest memory bench per label prefix ("before", "graph-arena"), rounds side by side. */
function memoryTable() {
  const files = ['memory-ViT-L-14-f32-before.json', 'memory-ViT-L-14-f32-graph-arena.json'].filter(has);
  const runs = files.map((file) => ({ file, ...read(file) }));
  const batches = runs[0].batches;
  const head = ['batch', ...runs.flatMap((r) => [`${r.label} s/image`, `${r.label} peak RSS MB`])];
  const rows = batches.map((b) => [
    String(b),
    ...runs.flatMap((r) => {
      const row = r.rows.find((x) => x.batch === b);
      return [fixed(row.perImage), row.rssPeakMB.toFixed(0)];
    }),
  ]);
  const notes = runs.map((r) => {
    const arena = r.rows.filter((x) => x.arenaMB !== undefined).map((x) => `${x.batch}: ${x.arenaMB.toFixed(0)}`);
    const b = runs.find((x) => x.boundMB !== undefined)?.boundMB;
    const bound =
      b === undefined
        ? ''
        : `; against the bound (weights + the largest forward's arena + 300 MB = ${b.toFixed(0)} MB): ${r.rssPeakMB <= b ? 'within by' : 'over by'} ${Math.abs(b - r.rssPeakMB).toFixed(0)} MB`;
    return (
      `${r.label}: RSS after load ${r.rssAfterLoadMB.toFixed(0)} MB (weights ${r.weightMB.toFixed(0)} MB), peak over the four batches ${r.rssPeakMB.toFixed(0)} MB = ` +
      `**+${r.peakOverLoadMB.toFixed(0)} MB** over the loaded model${arena.length ? `; activation arena after each batch (MB) ${arena.join(', ')}` : ''}; ${day(r.date)}, load average at the end ${r.loadAverage.toFixed(1)}${bound}.`
    );
  });
  const m = runs[0];
  return (
    `${table(head, rows)}\n\n${notes.map((n) => `- ${n}`).join('\n')}\n- All runs: ${m.machine}; ${m.imagesPerForward} images per forward at most; ` +
    `LP_NATIVE_VECTOR_WIDTH=${m.lpNativeVectorWidth ?? 'unset'}, LP_NUM_THREADS=${m.lpNumThreads}; CPU flags ${m.cpuFlags}.\n\n${source(files)}`
  );
}

/** Speed A/B: before and graph-arena alternating, rounds of batch 1 (cold) then batch 8, in one session. */
function memorySpeedTable() {
  const files = readdirSync(RESULTS)
    .filter((f) => /^memory-ViT-L-14-f32-ab\d+-.*\.json$/.test(f))
    .sort();
  const runs = files.map((file) => read(file));
  const rounds = [...new Set(runs.map((r) => r.label.split('-')[0]))];
  const cell = (round, side, batch) => {
    const run = runs.find((r) => r.label === `${round}-${side}`);
    return run ? fixed(run.rows.find((x) => x.batch === batch).perImage) : '–';
  };
  const rows = rounds.map((round) => [
    round,
    cell(round, 'before', 1),
    cell(round, 'graph-arena', 1),
    cell(round, 'before', 8),
    cell(round, 'graph-arena', 8),
  ]);
  const median = (side, batch) => {
    const v = runs
      .filter((r) => r.label.endsWith(`-${side}`))
      .map((r) => r.rows.find((x) => x.batch === batch).perImage)
      .sort((a, b) => a - b);
    return v.length ? fixed(v[Math.floor(v.length / 2)]) : '–';
  };
  rows.push(['median', median('before', 1), median('graph-arena', 1), median('before', 8), median('graph-arena', 8)]);
  return (
    `${table(['round', 'before b1 s (cold)', 'graph-arena b1 s (cold)', 'before b8 s/image', 'graph-arena b8 s/image'], rows)}\n\n` +
    `- ${runs.length ? `${day(runs[0].date)}, ${runs[0].machine}` : ''}.\n\n${source(files)}`
  );
}

function searchTable() {
  const files = ['search-100000.json', 'search-1000000.json'].filter(has);
  const results = files.map((f) => read(f));
  const rows = results.flatMap((r) =>
    r.runs.map((run) => [
      run.rows.toLocaleString('en-US'),
      String(run.threads),
      fixed(run.medianSeconds, 3),
      fixed(run.medianCpuSeconds, 2),
      `${fixed(run.minSeconds, 3)}–${fixed(run.maxSeconds, 3)}`,
      fixed(run.gbPerSecond, 1),
      String(run.peakAboveMB),
      run.loadAverage.map((l) => l.toFixed(1)).join(' → '),
    ]),
  );
  const notes = results.map(
    (r, i) =>
      `${files[i]}: ${day(r.date)}, ${r.cpu} (${r.cpus} cores; CPU flags ${r.cpuFlags}), Node ${r.node}; ${r.note}.`,
  );
  return `${table(['rows × 768', 'threads', 'median s', 'CPU s', 'min–max s', 'GB/s', 'peak MB above', 'load average'], rows)}\n\n${notes.map((n) => `- ${n}`).join('\n')}\n\n${source(files)}`;
}

/** bench:cold runs: fresh processes of the model card's classify, ours (and a baseline build) against open_clip. */
function coldTable() {
  const files = readdirSync(RESULTS)
    .filter((f) => /^cold-.*\.json$/.test(f))
    .sort();
  return files
    .map((file) => {
      const r = read(file);
      const theirs = r.summary.find((s) => s.side === 'open_clip');
      const rows = r.summary.map((s) => [
        s.side,
        s.wallS.map((w) => fixed(w)).join(', '),
        fixed(s.medianWallS),
        theirs ? bold(fixed(s.medianWallS / theirs.medianWallS), s.medianWallS <= 0.5 * theirs.medianWallS) : '–',
      ]);
      const phaseSides = r.summary.filter((s) => Object.keys(s.phases).length > 0);
      const phaseNames = [...new Set(phaseSides.flatMap((s) => Object.keys(s.phases)))];
      const phases = table(
        ['phase (median s)', ...phaseSides.map((s) => s.side)],
        phaseNames.map((k) => [k.trim(), ...phaseSides.map((s) => fixed(s.phases[k]))]),
      );
      const compiles = r.summary
        .filter((s) => s.pipelines !== undefined && s.pipelines > 0)
        .map((s) => `${s.side}: ${s.pipelines} pipelines, ${fixed(s.medianCompileS, 1)} s summed creation`)
        .join('; ');
      return (
        `**${file.replace(/^cold-|\.json$/g, '')}**: ${day(r.date)}, ${r.runs} alternating runs per side${r.freshShaderCache ? ', every run of ours with an empty Mesa shader cache (a first run on a new machine)' : ', after one untimed warm-up run of each (Mesa shader cache, page cache and hash memo warm)'}; ${r.cpu} (${r.cores} cores), CPU flags ${r.cpuFlags}; load average ${r.loadAverage.map((l) => l.toFixed(1)).join(' → ')}; torch threads ${r.torchThreads}.\n\n` +
        `${table(['side', 'runs (s)', 'median s', 'vs open_clip'], rows)}\n\n${phases}\n\n${compiles ? `Pipelines: ${compiles}.\n\n` : ''}${source([file])}`
      );
    })
    .join('\n\n');
}

const TABLES = {
  'README.md': { numbers: readmeNumbers, search: searchTable },
  'bench/README.md': {
    e2e: e2eTable,
    parity: parityTable,
    'parity-cli': parityCliTable,
    load: loadTable,
    kernels: kernelsTable,
    evalReference: evalReferenceTable,
    probeTrain: probeTrainTable,
    'classify-scale': classifyScaleTable,
    memory: memoryTable,
    'memory-speed': memorySpeedTable,
    cold: coldTable,
    peers: peersBlock,
    latest: latestBlock,
    history: historyBlock,
  },
};

const check = process.argv.includes('--check');
let stale = 0;
for (const [file, tables] of Object.entries(TABLES)) {
  const path = join(REPO, file);
  const before = readFileSync(path, 'utf8');
  let after = before;
  for (const [name, render] of Object.entries(tables)) {
    const open = `<!-- generated:${name} (scripts/render-tables.mjs) -->`;
    const close = `<!-- /generated:${name} -->`;
    const start = after.indexOf(open);
    const end = after.indexOf(close);
    if (start < 0 || end < start) throw new Error(`${file} lacks the markers ${open} … ${close}`);
    after = `${after.slice(0, start + open.length)}\n${render()}\n${after.slice(end)}`;
  }
  if (after === before) continue;
  stale++;
  if (check)
    console.error(`render-tables: ${file} differs from bench/results; run node scripts/render-tables.mjs and commit.`);
  else writeFileSync(path, after);
}
if (check && stale > 0) process.exit(1);
