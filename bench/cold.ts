// npm run bench:cold: the model card's example as a fresh process, ours against open_clip's, alternating.
//   whylesion classify IMG --labels "dark brown,bleeding,irregular shape" --model DIR     (node dist/src/cli/main.js)
//   python3 reference/openclip_cold.py --model DIR-openclip-bin --image IMG --labels ...  (real open_clip 2.24)
// Options: --model DIR (default: the synthetic ViT-L/14 f32 checkpoint in weights/), --image FILE, --runs N (3),
// --label NAME (result file bench/results/cold-NAME.json; default the date), --cli PATH (another build's
// dist/src/cli/main.js, e.g. a baseline checkout, timed as a third side), --fresh-shader-cache (every one of
// our runs gets an empty Mesa shader cache: a first run on a new machine; no warm-up run then).
// open_clip is not a dependency: put its src/ (v2.24.0) and ftfy + wcwidth on WHYLESION_OPENCLIP_PATH (a
// PYTHONPATH); the bench writes DIR-openclip-bin/open_clip_pytorch_model.bin (open_clip 2.24 reads only torch
// pickles) once, untimed. Before timing, one untimed run of each side warms the page cache, the weights' hash
// memo (src/io/file-hash.ts) and Mesa's shader cache; every timed run of ours gets a fresh text-embedding
// cache, so both sides encode the labels.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { flag, PYTHON, REPO, simdFlags, syntheticCheckpoint, writeResult } from './common.js';

const LABELS = 'dark brown,bleeding,irregular shape';

interface Run {
  side: string;
  round: number;
  wallS: number;
  loadBefore: number;
  phases: Record<string, number>;
  pipelines?: number;
  compileS?: number;
  stdout: string;
}

/** Phases of one of our runs from its WHYLESION_TRACE lines (epoch ms), relative to the spawn at `t0`. */
function ourPhases(
  stderr: string,
  t0: number,
  end: number,
): { phases: Record<string, number>; pipelines: number; compileS: number } {
  const marks: { at: number; phase: string }[] = [];
  let pipelines = 0;
  let compileS = 0;
  for (const line of stderr.split('\n')) {
    const m = /^whylesion trace: \+[\d.]+ ms \[t=([\d.]+)\] (.*)$/.exec(line);
    if (!m) continue;
    marks.push({ at: Number(m[1]), phase: m[2]! });
    const plan = /\((\d+) new pipelines, ([\d.]+) s summed/.exec(m[2]!);
    if (plan?.[1]) {
      pipelines += Number(plan[1]);
      compileS += Number(plan[2]);
    }
  }
  if (marks.length === 0) return { phases: {}, pipelines: 0, compileS: 0 }; // a build without WHYLESION_TRACE
  const at = (prefix: string): number | undefined => marks.filter((m) => m.phase.startsWith(prefix)).pop()?.at;
  // Each phase ends at its mark and starts at the one before in time (the tokenizer loads while the weights do).
  const steps: [string, string][] = [
    ['start (2 node processes, CLI modules)', 'load start'],
    ['open checkpoint (header, identity hash)', 'checkpoint opened'],
    ['WebGPU device', 'device ready'],
    ['tokenizer', 'tokenizer loaded'],
    ['weights: read + check + upload', 'weights uploaded'],
    ['text: bind plan (pipelines)', 'plan bound text'],
    ['text: forward (incl. shader compile at first dispatch)', 'forward done text'],
    ['image: decode + preprocess', 'images preprocessed'],
    ['image: bind plan (pipelines)', 'plan bound vision'],
    ['image: forward (incl. shader compile at first dispatch)', 'forward done vision'],
  ];
  const found = steps
    .flatMap(([name, mark]) => {
      const t = at(mark);
      return t === undefined ? [] : [{ name, t }];
    })
    .sort((a, b) => a.t - b.t);
  found.push({ name: 'print, dispose, exit', t: end });
  const phases: Record<string, number> = {};
  let last = t0;
  for (const { name, t } of found) {
    phases[name] = (t - last) / 1000;
    last = t;
  }
  const read = /weights uploaded \(\d+ tensors; (\d+) ms of it reading/.exec(stderr);
  if (read) phases['weights: of which waiting for reads'] = Number(read[1]) / 1000;
  return { phases, pipelines, compileS };
}

function timed(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ t0: number; end: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.timeOrigin + performance.now();
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const end = performance.timeOrigin + performance.now();
      if (code !== 0) reject(new Error(`${command} ${args.join(' ')} exited ${code}:\n${stderr}`));
      else resolve({ t0, end, stdout, stderr });
    });
  });
}

async function main(argv: string[]): Promise<void> {
  const model = flag(argv, 'model', '') || (await syntheticCheckpoint('ViT-L-14', 0, 'f32'));
  const image = flag(argv, 'image', join(REPO, 'test/fixtures/openclip-tiny/images/lesion_q90.jpg'));
  const runs = Number(flag(argv, 'runs', '3'));
  const label = flag(argv, 'label', new Date().toISOString().slice(0, 10));
  const baselineCli = flag(argv, 'cli', '');
  const freshShaderCache = argv.includes('--fresh-shader-cache');
  const openclipPath = process.env.WHYLESION_OPENCLIP_PATH;

  const sides: { side: string; run: () => Promise<Omit<Run, 'side' | 'round' | 'loadBefore'>> }[] = [];
  const ours = (_side: string, cli: string) => async (): Promise<Omit<Run, 'side' | 'round' | 'loadBefore'>> => {
    const textCache = mkdtempSync(join(tmpdir(), 'whylesion-cold-texts-'));
    const shaderCache = freshShaderCache ? mkdtempSync(join(tmpdir(), 'whylesion-cold-mesa-')) : undefined;
    try {
      const env = {
        ...process.env,
        WHYLESION_TRACE: '1',
        WHYLESION_TEXT_CACHE: textCache,
        ...(shaderCache ? { MESA_SHADER_CACHE_DIR: shaderCache } : {}),
      };
      const r = await timed(process.execPath, [cli, 'classify', image, '--labels', LABELS, '--model', model], env);
      const { phases, pipelines, compileS } = ourPhases(r.stderr, r.t0, r.end);
      return { wallS: (r.end - r.t0) / 1000, phases, pipelines, compileS, stdout: r.stdout };
    } finally {
      rmSync(textCache, { recursive: true, force: true });
      if (shaderCache) rmSync(shaderCache, { recursive: true, force: true });
    }
  };
  sides.push({ side: 'whylesion', run: ours('whylesion', join(REPO, 'dist/src/cli/main.js')) });
  if (baselineCli) sides.push({ side: 'whylesion baseline', run: ours('whylesion baseline', baselineCli) });
  if (openclipPath) {
    const binDir = `${model.replace(/\/$/, '')}-openclip-bin`;
    if (!existsSync(join(binDir, 'open_clip_pytorch_model.bin'))) {
      console.error(`writing ${binDir}/open_clip_pytorch_model.bin for open_clip ...`);
      execFileSync(
        PYTHON,
        [
          join(REPO, 'reference/openclip_cold.py'),
          '--prepare-from',
          model,
          '--model',
          binDir,
          '--image',
          '-',
          '--labels',
          '-',
        ],
        { stdio: 'inherit' },
      );
    }
    sides.push({
      side: 'open_clip',
      run: async () => {
        const env = { ...process.env, PYTHONPATH: openclipPath };
        const r = await timed(
          PYTHON,
          [
            join(REPO, 'reference/openclip_cold.py'),
            '--model',
            binDir,
            '--image',
            image,
            '--labels',
            LABELS,
            '--threads',
            String(cpus().length),
          ],
          env,
        );
        const report = JSON.parse(r.stderr.trim().split('\n').pop()!) as { phases: Record<string, number> };
        const inScript = report.phases.total_in_script ?? 0;
        const phases = Object.fromEntries(Object.entries(report.phases).filter(([k]) => k !== 'total_in_script'));
        phases['interpreter start + exit'] = (r.end - r.t0) / 1000 - inScript;
        delete phases.interpreter;
        return { wallS: (r.end - r.t0) / 1000, phases, stdout: r.stdout };
      },
    });
  } else {
    console.error(
      'WHYLESION_OPENCLIP_PATH is not set: timing whylesion only (see bench/cold.ts for how to get open_clip).',
    );
  }

  const loadStart = loadavg()[0]!;
  if (!freshShaderCache) console.error('warm-up: one untimed run of each side ...');
  const warmup: Run[] = [];
  for (const s of freshShaderCache ? [] : sides) {
    const loadBefore = loadavg()[0]!; // os.loadavg() always has three
    warmup.push({ side: s.side, round: 0, loadBefore, ...(await s.run()) });
  }
  const results: Run[] = [];
  for (let round = 1; round <= runs; round++) {
    // Alternate the order each round, so neither side always follows the same one.
    const order = round % 2 === 1 ? sides : [...sides].reverse();
    for (const s of order) {
      const loadBefore = loadavg()[0]!;
      const r = { side: s.side, round, loadBefore, ...(await s.run()) };
      results.push(r);
      console.error(`round ${round} ${s.side}: ${r.wallS.toFixed(2)} s (load ${loadBefore.toFixed(1)})`);
    }
  }
  const loadEnd = loadavg()[0]!;

  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const summary = sides.map(({ side }) => {
    const mine = results.filter((r) => r.side === side);
    const phases: Record<string, number> = {};
    for (const key of Object.keys(mine[0]!.phases)) phases[key] = median(mine.map((r) => r.phases[key] ?? 0));
    return {
      side,
      medianWallS: median(mine.map((r) => r.wallS)),
      wallS: mine.map((r) => r.wallS),
      phases,
      pipelines: mine[0]!.pipelines,
      medianCompileS: mine[0]!.compileS === undefined ? undefined : median(mine.map((r) => r.compileS!)),
    };
  });
  const theirs = summary.find((s) => s.side === 'open_clip');
  console.log(
    `\ncold \`classify\` of one image, ViT-L/14 f32, ${runs} alternating runs per side (load ${loadStart.toFixed(1)} → ${loadEnd.toFixed(1)})\n`,
  );
  console.log('| side | runs (s) | median s | vs open_clip |');
  console.log('| --- | --- | --- | --- |');
  for (const s of summary)
    console.log(
      `| ${s.side} | ${s.wallS.map((w) => w.toFixed(2)).join(', ')} | ${s.medianWallS.toFixed(2)} | ${theirs ? (s.medianWallS / theirs.medianWallS).toFixed(2) : '–'} |`,
    );
  for (const s of summary) {
    console.log(
      `\n${s.side}, median per phase:${s.pipelines !== undefined ? ` (${s.pipelines} pipelines, ${s.medianCompileS?.toFixed(1)} s summed pipeline creation)` : ''}`,
    );
    for (const [k, v] of Object.entries(s.phases)) console.log(`  ${k.padEnd(58)} ${v.toFixed(2)} s`);
  }
  const path = writeResult(`cold-${label}`, {
    date: new Date().toISOString(),
    model,
    image,
    labels: LABELS,
    runs,
    freshShaderCache,
    cpu: cpus()[0]?.model,
    cores: cpus().length,
    cpuFlags: simdFlags().join(' '),
    loadAverage: [loadStart, loadEnd],
    lpNumThreads: process.env.LP_NUM_THREADS ?? '16 (the CLI default)',
    torchThreads: cpus().length,
    summary,
    warmup: warmup.map(({ stdout: _, ...r }) => r),
    results: results.map(({ stdout: _, ...r }) => r),
    answers: Object.fromEntries(sides.map(({ side }) => [side, results.find((r) => r.side === side)?.stdout])),
  });
  console.error(`wrote ${path}`);
}

await main(process.argv.slice(2));
