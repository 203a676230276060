// What both halves of bench:peers share (bench/peers.ts in Node, bench/peers-chromium.ts in Chromium): the cache
// folder that ONNX Runtime packages are installed into on demand (never package dependencies), the ONNX export
// of the reference per checkpoint identity, and the machine facts every result records.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { homedir, loadavg } from 'node:os';
import { join } from 'node:path';
import { PYTHON, REPO } from './common.js';

export const OPSET = 17;
export const cacheRoot = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'whylesion', 'peers');

export function loads(): number[] {
  return loadavg().map((l) => Math.round(l * 100) / 100);
}

/** `lscpu`'s Flags line (every flag: the SIMD subset alone is in simdFlags()). */
export function lscpuFlags(): string {
  try {
    const line = execFileSync('lscpu', { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } })
      .split('\n')
      .find((l) => l.startsWith('Flags:'));
    return line ? line.slice('Flags:'.length).trim() : '';
  } catch {
    return '';
  }
}

/** Installs `name@version` into the cache folder unless that exact version is there; returns its folder. */
export function ensurePackage(name: string, version: string): string {
  const dir = join(cacheRoot, 'node_modules', name);
  const manifest = join(dir, 'package.json');
  if (existsSync(manifest) && JSON.parse(readFileSync(manifest, 'utf8')).version === version) return dir;
  console.error(`installing ${name}@${version} into ${cacheRoot} (--ignore-scripts) ...`);
  mkdirSync(cacheRoot, { recursive: true });
  execFileSync(
    'npm',
    [
      'install',
      '--prefix',
      cacheRoot,
      '--ignore-scripts',
      '--no-audit',
      '--no-fund',
      '--save-exact',
      `${name}@${version}`,
    ],
    { stdio: 'inherit' },
  );
  return dir;
}

/** image.onnx and text.onnx of this checkpoint, exported once per checkpoint identity (whole folder or nothing). */
export function ensureExport(modelDir: string, weightsHash: string, configHash: string): string {
  const key = `${weightsHash.replace(/^sha256:/, '').slice(0, 16)}-${configHash.replace(/^sha256:/, '').slice(0, 8)}-opset${OPSET}`;
  const dir = join(cacheRoot, 'onnx', key);
  if (existsSync(join(dir, 'export.json'))) return dir;
  const partial = `${dir}.partial-${process.pid}`;
  rmSync(partial, { recursive: true, force: true });
  console.error(`exporting the reference to ONNX (torch ${PYTHON}) into ${dir} ...`);
  execFileSync(
    PYTHON,
    [join(REPO, 'reference', 'export_onnx.py'), '--model', modelDir, '--out', partial, '--opset', String(OPSET)],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  renameSync(partial, dir);
  return dir;
}
