import { closeSync, linkSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { UserError } from '../errors.js';
import { isDiskFull } from './durable.js';

/** Who holds a lock: enough to tell a live writer from a dead one whose PID was reused. */
interface LockHolder { pid: number; start: string | null; host: string; since: string }

/** A process's start time in clock ticks since boot (/proc/PID/stat field 22), or null where /proc is absent. */
function processStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (the command) may hold spaces and parentheses: count fields from after its last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

function isRunning(holder: LockHolder): boolean {
  try {
    process.kill(holder.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  // A PID that now belongs to a process started at another time is a reused PID: the holder is gone.
  const start = processStart(holder.pid);
  return holder.start === null || start === null || start === holder.start;
}

const held = new Set<string>();
process.on('exit', () => {
  for (const path of held) {
    try { unlinkSync(path); } catch { /* already gone */ }
  }
});

/** A held lock; `release` removes its file (also done at exit; after a kill -9 the next writer finds it stale). */
export interface Lock { path: string; release(): void }

/**
 * Takes the exclusive right to write `target` by creating `target.lock` (exclusively) with this process's PID, start
 * time and host. A lock whose process no longer runs (same host; PID gone or reused) is taken over with a notice
 * on stderr; a live one is a UserError naming it. `what` names the output in messages.
 */
export function acquireLock(target: string, what = target): Lock {
  const path = `${target}.lock`;
  const me: LockHolder = { pid: process.pid, start: processStart(process.pid), host: hostname(), since: new Date().toISOString() };
  // The lock appears whole or not at all: written to a file of our own, then linked into place, which (as an
  // O_EXCL create) fails when the name exists, so a reader never sees a half-written lock.
  const mine = `${path}.${process.pid}.tmp`;
  try {
    const fd = openSync(mine, 'w');
    try { writeSync(fd, `${JSON.stringify(me)}\n`); } finally { closeSync(fd); }
  } catch (e) {
    try { unlinkSync(mine); } catch { /* not created */ }
    throw new UserError(isDiskFull(e)
      ? `The disk holding ${target} is full (its lock file ${path} could not be written); free some space and run again.`
      : `Cannot create the lock file ${path} (${(e as NodeJS.ErrnoException).code ?? e}); check that its folder exists and is writable.`, { cause: e });
  }
  try {
    for (let attempt = 0; attempt < 4; attempt++) {
      try {
        linkSync(mine, path);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'EEXIST') throw new UserError(`Cannot create the lock file ${path} (${code ?? e}); check that its folder is writable.`, { cause: e });
        const holder = readHolder(path);
        if (holder === undefined) continue; // released between our link and read
        if (holder && (holder.host !== me.host || isRunning(holder))) {
          const started = new Date(holder.since).toTimeString().slice(0, 8);
          const where = holder.host !== me.host ? ` on ${holder.host}` : '';
          throw new UserError(`${what} is being written by whylesion PID ${holder.pid}${where} (started ${started}); wait for it or stop it.`);
        }
        process.stderr.write(`Taking over the stale lock ${path}${holder ? ` of PID ${holder.pid}, which no longer runs` : ' (damaged)'}.\n`);
        try { unlinkSync(path); } catch { /* another process took it over first; the next link decides */ }
        continue;
      }
      held.add(path);
      return {
        path,
        release: () => {
          if (!held.delete(path)) return;
          try { unlinkSync(path); } catch { /* already gone */ }
        },
      };
    }
    throw new UserError(`Cannot take the lock ${path}: other processes keep taking it; try again.`);
  } finally {
    try { unlinkSync(mine); } catch { /* not created */ }
  }
}

function readHolder(path: string): LockHolder | null | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const v = JSON.parse(text) as Partial<LockHolder>;
    if (Number.isInteger(v.pid) && typeof v.host === 'string' && typeof v.since === 'string') {
      return { pid: v.pid!, start: typeof v.start === 'string' ? v.start : null, host: v.host, since: v.since };
    }
  } catch { /* fall through */ }
  return null; // damaged (e.g. a crash between create and write)
}
