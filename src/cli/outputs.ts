import { lstat } from 'node:fs/promises';
import { UserError } from '../errors.js';

/**
 * Refuses, in one sentence, to replace an output file that already exists unless the user said so with
 * --force (or, for commands that resume, --resume). Call it before any slow work, so that a run never ends
 * with its results unwritable. `flag` names the option that gave the path (`--out`, `--report`).
 */
export async function refuseToOverwrite(
  path: string,
  values: { force?: boolean; resume?: boolean },
  flag: string,
): Promise<void> {
  if (values.force || values.resume) return;
  const existing = await lstat(path).catch(() => undefined);
  if (!existing) return;
  const resumable = 'resume' in values ? ', --resume to continue it' : '';
  throw new UserError(
    `${flag} ${path} already exists; pass --force to overwrite it${resumable}, or choose another path.`,
  );
}
