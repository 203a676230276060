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
