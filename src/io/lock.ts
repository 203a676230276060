import { closeSync, linkSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { UserError } from '../errors.js';
import { isDiskFull } from './durable.js';

/** Who holds a lock: enough to tell a live writer from a dead one whose PID was reused. */
interface LockHolder {
  pid: number;
  start: string | null;
  host: string;
  since: string;
}

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

/** The lock files this process holds, with what it wrote in each. */
const held = new Map<string, string>();
/** Removes a lock file if it is still the one this process wrote. */
function removeOwn(path: string, text: string): void {
  if (readLockText(path) !== text) return;
  try {
    unlinkSync(path);
  } catch {
    /* already gone */
  }
}
process.on('exit', () => {
  for (const [path, text] of held) removeOwn(path, text);
});

/** A held lock; `release` removes its file (also done at exit; after a kill -9 the next writer finds it stale). */
export interface Lock {
  path: string;
  release(): void;
}

/**
 * Takes the exclusive right to write `target` by creating `target.lock` (exclusively) with this process's PID, start
 * time and host. A lock whose process no longer runs (same host; PID gone or reused) is taken over with a notice
 * on stderr; a live one is a UserError naming it. `what` names the output in messages.
 */
export function acquireLock(target: string, what = target): Lock {
  const path = `${target}.lock`;
  const me: LockHolder = {
    pid: process.pid,
    start: processStart(process.pid),
    host: hostname(),
    since: new Date().toISOString(),
  };
  // The lock appears whole or not at all: written to a file of our own, then linked into place, which (as an
  // O_EXCL create) fails when the name exists, so a reader never sees a half-written lock.
  const mine = `${path}.${process.pid}.tmp`,
    myText = `${JSON.stringify(me)}\n`;
  try {
    const fd = openSync(mine, 'w');
    try {
      writeSync(fd, myText);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    try {
      unlinkSync(mine);
    } catch {
      /* not created */
    }
    throw new UserError(
      isDiskFull(e)
        ? `The disk holding ${target} is full (its lock file ${path} could not be written); free some space and run again.`
        : `Cannot create the lock file ${path} (${(e as NodeJS.ErrnoException).code ?? e}); check that its folder exists and is writable.`,
      { cause: e },
    );
  }
  try {
    for (let attempt = 0; attempt < 4; attempt++) {
      try {
        linkSync(mine, path);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'EEXIST')
          throw new UserError(
            `Cannot create the lock file ${path} (${code ?? e}); check that its folder is writable.`,
            { cause: e },
          );
        const seen = readLockText(path);
        if (seen === undefined) continue; // released between our link and read
        const holder = parseHolder(seen);
        if (holder && (holder.host !== me.host || isRunning(holder))) {
          const started = new Date(holder.since).toTimeString().slice(0, 8);
          const where = holder.host !== me.host ? ` on ${holder.host}` : '';
          throw new UserError(
            `${what} is being written by whylesion PID ${holder.pid}${where} (started ${started}); wait for it or stop it.`,
          );
        }
        // Moved aside, not deleted: if another process took the stale lock over first, what we moved is its fresh
        // lock, which goes back into place.
        const aside = `${path}.${process.pid}.stale`;
        try {
          renameSync(path, aside);
        } catch {
          continue; // someone else moved it first; the next link decides
        }
        if (readLockText(aside) === seen) {
          process.stderr.write(
            `Taking over the stale lock ${path}${holder ? ` of PID ${holder.pid}, which no longer runs` : ' (damaged)'}.\n`,
          );
        } else {
          try {
            linkSync(aside, path);
          } catch {
            /* its owner still holds it by its open run; the next link decides */
          }
        }
        try {
          unlinkSync(aside);
        } catch {
          /* gone */
        }
        continue;
      }
      held.set(path, myText);
      return {
        path,
        release: () => {
          if (held.delete(path)) removeOwn(path, myText);
        },
      };
    }
    throw new UserError(`Cannot take the lock ${path}: other processes keep taking it; try again.`);
  } finally {
    try {
      unlinkSync(mine);
    } catch {
      /* not created */
    }
  }
}

function readLockText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** The holder a lock file names, or null when it is damaged. */
function parseHolder(text: string): LockHolder | null {
  try {
    const v = JSON.parse(text) as Partial<LockHolder>;
    if (Number.isInteger(v.pid) && typeof v.host === 'string' && typeof v.since === 'string') {
      return { pid: v.pid!, start: typeof v.start === 'string' ? v.start : null, host: v.host, since: v.since };
    }
  } catch {
    /* fall through */
  }
  return null;
}
