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
