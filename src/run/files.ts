/**
 * Crash-safe file writing for run directories: every file that must never be seen half
 * written goes to a temporary name in the same folder, is fsync'ed, renamed over the final
 * name (atomic on POSIX), and the folder is fsync'ed so the rename itself is durable.
 */
import { closeSync, fsyncSync, openSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

import { oneLine, RunInputError } from './errors.js';
import { testPoint, testWriteFault } from './test-hooks.js';

/**
 * A file could not be written (no space, an I/O error, no permission, a read-only file
 * system, ...): a RunInputError (exit status 2: the environment, not the program, is at fault),
 * one line naming the file, with the errno code kept in `code`.
 */
export class FileWriteError extends RunInputError {
  constructor(readonly path: string, readonly code: string | undefined, cause: unknown) {
    const detail = code !== undefined ? oneLine(cause).replace(/^(\w+): ([^,]*).*$/, '$1: $2') : oneLine(cause);
    super(`${path}: cannot write (${detail})`);
  }
}

/** `error` (from writing `path`) as a FileWriteError; errors that are not filesystem errors pass unchanged. */
export function writeFailure(path: string, error: unknown): Error {
  if (error instanceof RunInputError) return error;
  const code = (error as NodeJS.ErrnoException).code;
  if (typeof code !== 'string' || !/^E[A-Z]+$/.test(code)) return error as Error;
  return new FileWriteError(path, code, error);
}

/** writeSync of all of `bytes`, through the test-only fault hook (inert unless PCDARTS_TEST_WRITE_FAULT is set). */
export function writeAll(fd: number, bytes: Uint8Array, path: string): void {
  let offset = 0;
  while (offset < bytes.length) {
    const fault = testWriteFault(path, bytes.length - offset);
    if (fault !== null) {
      // A real full disk writes what fits, then fails: so does the fault.
      if (fault.bytes > 0) offset += writeSync(fd, bytes, offset, Math.min(fault.bytes, bytes.length - offset));
      throw fault.error;
    }
    offset += writeSync(fd, bytes, offset, bytes.length - offset);
  }
}

/** Marker in temporary file names; anything containing it is debris of an interrupted write. */
export const TEMPORARY_MARKER = '.tmp-';

let temporaryCounter = 0;

function temporaryName(path: string): string {
  temporaryCounter += 1;
  return `${path}${TEMPORARY_MARKER}${process.pid}-${temporaryCounter}`;
}

/** Makes the directory entry changes in `dir` (renames, creations) durable. */
export function fsyncDirectory(dir: string): void {
  let fd: number | null = null;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Some file systems refuse fsync on directories; the rename is still atomic there.
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

/** Writes the bytes to `path` through a temporary file, fsync and rename (never half written). */
export function writeFileAtomic(
  path: string, data: Uint8Array | string, options: { syncDirectory?: boolean; point?: 'checkpoint-write' | 'file-write' | 'report-write' } = {},
): void {
  const point = options.point ?? 'file-write';
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const temporary = temporaryName(path);
  let fd: number;
  try {
    fd = openSync(temporary, 'w', 0o644);
  } catch (error) {
    throw writeFailure(path, error);
  }
  try {
    testPoint(point, `${path}: before writing`);
    writeAll(fd, bytes.subarray(0, bytes.length >> 1), temporary);
    testPoint(point, `${path}: half written`);
    writeAll(fd, bytes.subarray(bytes.length >> 1), temporary);
    fsyncSync(fd);
    closeSync(fd);
    testPoint(point, `${path}: written, before the rename`);
    renameSync(temporary, path);
  } catch (error) {
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
    rmSync(temporary, { force: true });
    throw writeFailure(path, error);
  }
  if (options.syncDirectory ?? true) fsyncDirectory(dirname(path));
}

/** Removes temporary files left in `dir` by interrupted atomic writes. */
export function removeTemporaryFiles(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (basename(name).includes(TEMPORARY_MARKER)) rmSync(join(dir, name), { force: true, recursive: true });
  }
}
