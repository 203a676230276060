// npm run bench:classify-scale -- [--counts 100,10000] [--size 64] [--batch 16]
// Peak RSS of `whylesion classify DIR --labels a,b --format jsonl` with the tiny open_clip checkpoint on
// folders of N random SIZE×SIZE PNGs (written to the system temp folder, not the repository): memory must
// not grow with the folder. Also counts the progress lines a redirected stderr received.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Jimp } from 'jimp';
import { flag, machine, REPO, simdFlags, writeResult } from './common.js';

const argv = process.argv.slice(2);
const counts = flag(argv, 'counts', '100,10000').split(',').map(Number);
const size = Number(flag(argv, 'size', '64'));
const batch = flag(argv, 'batch', '16');
const CLI = join(REPO, 'dist/src/cli/main.js');
const MODEL = join(REPO, 'test/fixtures/openclip-tiny/model');
const env = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' };
if (!existsSync('/usr/bin/time'))
  throw new Error('this benchmark needs GNU time at /usr/bin/time (apt-get install time)');

/** A folder of `n` PNGs of seeded noise, made once and reused by later runs. */
async function imageFolder(n: number): Promise<string> {
  const dir = join(tmpdir(), `whylesion-scale-${size}px-${n}`);
  if (existsSync(dir) && readdirSync(dir).length === n) return dir;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  let s = 12345;
  for (let i = 0; i < n; i++) {
    const image = new Jimp({ width: size, height: size });
    for (let k = 0; k < image.bitmap.data.length; k++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      image.bitmap.data[k] = k % 4 === 3 ? 255 : s >>> 24;
    }
    writeFileSync(join(dir, `img${String(i).padStart(6, '0')}.png`), await image.getBuffer('image/png'));
  }
  return dir;
}

const adapter = (
  JSON.parse(execFileSync('node', [CLI, 'info', '--json'], { env, encoding: 'utf8' })) as {
    adapter: Parameters<typeof machine>[0];
  }
).adapter;
const cpuFlags = simdFlags().join(' ');
const runs = [];
for (const n of counts) {
  const dir = await imageFolder(n);
  const out = join(tmpdir(), `whylesion-scale-${n}.jsonl`),
    err = join(tmpdir(), `whylesion-scale-${n}.stderr`);
  const args = ['classify', dir, '--labels', 'a,b', '--format', 'jsonl', '--batch', batch, '--model', MODEL];
  const [stdout, stderr] = [openSync(out, 'w'), openSync(err, 'w')];
  // stderr is a file, as in a batch job: the progress lines must reach it
  const result = spawnSync('/usr/bin/time', ['-f', 'time: %M KB peak RSS, %e s wall', 'node', CLI, ...args], {
    env,
    stdio: ['ignore', stdout, stderr],
  });
  closeSync(stdout);
  closeSync(stderr);
  const log = readFileSync(err, 'utf8');
  const [, rssKB, wall] = /time: (\d+) KB peak RSS, ([\d.]+) s wall/.exec(log) ?? [];
  if (result.status !== 0 || !rssKB) throw new Error(`classify on ${n} images failed (exit ${result.status}):\n${log}`);
  runs.push({
    images: n,
    rows: readFileSync(out, 'utf8').split('\n').filter(Boolean).length,
    peakRssMB: Number(rssKB) / 1024,
    wallSeconds: Number(wall),
    progressLines: log.split('\n').filter((l) => /^classified [\d,]+\/[\d,]+ images/.test(l)).length,
  });
  rmSync(out);
}

const base = runs[0]!;
console.log(`whylesion classify DIR --labels a,b --format jsonl --batch ${batch} (tiny model, ${size}x${size} PNGs)\n`);
console.log('| images | rows out | peak RSS | × first | wall | progress lines |');
console.log('|---:|---:|---:|---:|---:|---:|');
for (const r of runs) {
  console.log(
    `| ${r.images.toLocaleString('en-US')} | ${r.rows.toLocaleString('en-US')} | ${r.peakRssMB.toFixed(0)} MiB | ${(r.peakRssMB / base.peakRssMB).toFixed(2)} | ${r.wallSeconds.toFixed(0)} s | ${r.progressLines} |`,
  );
}
const file = writeResult(`classify-scale-${size}px`, {
  date: new Date().toISOString(),
  machine: machine(adapter),
  cpuFlags,
  loadAverage: loadavg(), // 1, 5 and 15 min, at the end of the runs
  command: `whylesion classify DIR --labels a,b --format jsonl --batch ${batch} --model test/fixtures/openclip-tiny/model`,
  imageSize: size,
  runs,
});
console.log(`\nwrote ${file}`);
