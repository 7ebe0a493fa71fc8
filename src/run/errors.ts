/**
 * Errors that mean "the request cannot run as given" (a bad flag value, a missing or corrupt
 * dataset file, a run directory that does not fit): the CLI prints their one-line message and
 * exits with status 2. Anything else that escapes a run is a bug or an I/O failure (status 1).
 */
export class RunInputError extends Error {
  override readonly name = 'RunInputError';
}

/** The first line of an error's message (every message of the project is meant to be one line). */
export function oneLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n').map((line) => line.trim()).filter((line) => line !== '').join(' ');
}

/** Runs fn, turning any error it throws into a RunInputError with the same one-line message. */
export function asInputErrors<T>(fn: () => T, prefix?: string): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof RunInputError && prefix === undefined) throw error;
    throw new RunInputError(prefix ? `${prefix}: ${oneLine(error)}` : oneLine(error));
  }
}

/** Exit status of a run stopped by a non-finite number (distinct from bad input's 2). */
export const NON_FINITE_EXIT_CODE = 3;

/**
 * A NaN or infinity in a loss, a gradient norm, the architecture parameters or the weights
 * about to be checkpointed: the run stops at that step and nothing non-finite is saved, so
 * its last good checkpoint stays the one a resume (with other settings) would start from.
 */
export class NonFiniteError extends Error {
  override readonly name = 'NonFiniteError';
  constructor(
    /** What became non-finite ("the loss", "the architecture parameters (alphas_normal)", ...). */
    readonly what: string,
    readonly value: number,
    readonly epoch: number,
    readonly step: number,
    /** Position of the last checkpoint written or loaded; null when there is none. */
    readonly lastCheckpoint: { readonly epoch: number; readonly step: number } | null,
    readonly dir: string,
  ) {
    super(`${what} became ${String(value)} at epoch ${epoch} step ${step} (0-based); stopped without saving it: `
      + (lastCheckpoint === null
        ? `the run has no checkpoint yet (${dir})`
        : `the last good checkpoint, epoch ${lastCheckpoint.epoch} step ${lastCheckpoint.step}, is intact in ${dir}/checkpoint`)
      + ' (smaller learning rates may help)');
  }
}

/** The first non-finite value of `values` (a NaN or an infinity), or null. */
export function firstNonFinite(values: ArrayLike<number>): number | null {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v - v !== 0) return v; // NaN - NaN and Inf - Inf are NaN
  }
  return null;
}
