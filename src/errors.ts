/**
 * An error the user caused and can fix (bad file, missing model, odd input).
 * The CLI prints its message as one sentence and exits non-zero, without a stack trace.
 */
export class UserError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UserError';
  }
}

const DENO_REFUSAL = /Requires (\w+) access to "?(.*?)"?, run again with the (--allow-[\w-]+) flag/;

/**
 * Deno's refusal of a permission (NotCapable / PermissionDenied) anywhere in an error's cause chain, as one
 * sentence naming the flag to add; undefined for any other error.
 */
export function permissionError(error: unknown): UserError | undefined {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    const refusal = DENO_REFUSAL.exec(e.message);
    if (refusal) {
      const [, kind, target, flag] = refusal;
      // Environment variables are read by several names (WHYLESION_*, HF_*, and jimp's `debug` lists them all).
      const scoped = target && kind !== 'env' ? `${flag}=${target}` : flag;
      return new UserError(
        `Deno did not allow ${kind} access${target ? ` to ${target}` : ''}; run again with ${scoped}${scoped === flag ? '' : ` (or ${flag} for any)`}.`,
        { cause: error },
      );
    }
    if (e.name === 'NotCapable' || e.name === 'PermissionDenied') {
      return new UserError(`Deno refused a permission (${e.message}); run again with the --allow-… flag it names.`, {
        cause: error,
      });
    }
  }
  return undefined;
}

/** Runs `work`, turning a Deno permission refusal into the one-sentence error above. */
export async function withPermissionHints<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw permissionError(error) ?? error;
  }
}

/** `value`, which the code around it has already bounded or checked; a miss is a bug (an Error, not a UserError). */
export function present<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`Bug: ${what} is missing.`);
  return value;
}
