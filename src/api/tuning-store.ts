// Kernel choices measured by the autotuner, kept per device in one JSON file so that later processes
// start with them: $WHYLESION_TUNING_FILE, else $XDG_CACHE_HOME/whylesion/kernel-tuning.json
// (~/.cache when unset). Node only.
import {
  accessSync,
  closeSync,
  constants,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
} from 'node:fs';
import { fsyncFolder, isDiskFull, writeAllSync } from '../io/durable.js';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { UserError } from '../errors.js';
import type { KernelPolicy } from '../kernels/policy.js';
import type { ShapeResult } from '../kernels/autotune.js';
import { applyTuningRecord, tuningKey, type TuningRecord } from '../kernels/tuning.js';

interface TuningFile {
  format: 1;
  devices: Record<string, TuningRecord>;
}

export function tuningFilePath(): string {
  return (
    process.env.WHYLESION_TUNING_FILE ||
    join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'whylesion', 'kernel-tuning.json')
  );
}

/** The file's contents, or an empty one when it is missing or unreadable (it is a cache: the tuner rewrites it). */
function readTuningFile(path: string): TuningFile {
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<TuningFile>;
    if (parsed.format === 1 && parsed.devices && typeof parsed.devices === 'object')
      return { format: 1, devices: parsed.devices };
  } catch {
    // missing or damaged: start empty
  }
  return { format: 1, devices: {} };
}

/**
 * Applies the choices saved for this device (same adapter, driver and matmul kernels) to `policy`; returns how many.
 * The cache is optional: where it cannot be located or read (e.g. Deno without read access), none apply.
 */
export function applyCachedTuning(policy: KernelPolicy, path?: string): number {
  let file: TuningFile;
  try {
    file = readTuningFile(path ?? tuningFilePath());
  } catch {
    return 0;
  }
  const record = file.devices[tuningKey(policy)];
  return record && typeof record === 'object' ? applyTuningRecord(policy, record) : 0;
}

/**
 * Applies the cached choices unless `mode` (default $WHYLESION_KERNEL_TUNING, else 'cached') is 'rules';
 * returns how many applied.
 */
export function applyKernelTuning(
  policy: KernelPolicy,
  mode: string = process.env.WHYLESION_KERNEL_TUNING ?? 'cached',
): number {
  if (mode !== 'cached' && mode !== 'rules') {
    throw new UserError(
      `Kernel tuning '${mode}' is not 'cached' or 'rules'; fix kernelTuning or WHYLESION_KERNEL_TUNING.`,
    );
  }
  // A forced kernel family means its rules: measured choices (made under 'auto') would mix families.
  return mode === 'cached' && !policy.forced ? applyCachedTuning(policy) : 0;
}

/** Fails (with the file-system error) unless the tuning file's folder exists or can be made, and is writable. */
export function checkTuningFileWritable(path = tuningFilePath()): void {
  mkdirSync(dirname(path), { recursive: true });
  accessSync(dirname(path), constants.W_OK);
}

/** Merges the tuner's results into this device's record and writes the file atomically; returns its path. */
export function saveTuning(policy: KernelPolicy, results: readonly ShapeResult[], path = tuningFilePath()): string {
  const file = readTuningFile(path);
  const key = tuningKey(policy);
  const saved: Partial<TuningRecord> = file.devices[key] ?? {};
  const record: TuningRecord = {
    choices: { ...saved.choices },
    measured: { ...saved.measured },
    date: new Date().toISOString(),
  };
  for (const r of results) {
    if (!r.choice) continue;
    record.choices[r.key] = r.choice;
    record.measured[r.key] = Object.fromEntries(
      r.candidates.filter((c) => c.ms !== undefined).map((c) => [c.variant, Number(c.ms!.toFixed(3))]),
    );
  }
  file.devices[key] = record;
  mkdirSync(dirname(path), { recursive: true });
  // Atomic: readers see the old file or the new one. (Two tuners finishing at once keep the later's file.)
  const temporary = `${path}.${process.pid}.tmp`;
  try {
    const fd = openSync(temporary, 'w');
    try {
      writeAllSync(fd, new TextEncoder().encode(`${JSON.stringify(file, null, 2)}\n`));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, path);
    fsyncFolder(dirname(path));
  } catch (error) {
    if (isDiskFull(error))
      throw new UserError(
        `The disk holding ${path} is full, so the kernel choices were not saved (the old file is kept); free some space and tune again.`,
        { cause: error },
      );
    throw error;
  } finally {
    rmSync(temporary, { force: true });
  }
  return path;
}
