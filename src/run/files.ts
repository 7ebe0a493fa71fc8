/**
 * Crash-safe file writing for run directories: every file that must never be seen half
 * written goes to a temporary name in the same folder, is fsync'ed, renamed over the final
 * name (atomic on POSIX), and the folder is fsync'ed so the rename itself is durable.
 */
import { closeSync, fsyncSync, openSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

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
export function writeFileAtomic(path: string, data: Uint8Array | string, options: { syncDirectory?: boolean } = {}): void {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const temporary = temporaryName(path);
  const fd = openSync(temporary, 'w', 0o644);
  try {
    let offset = 0;
    while (offset < bytes.length) offset += writeSync(fd, bytes, offset, bytes.length - offset);
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(temporary, { force: true });
    throw error;
  }
  closeSync(fd);
  renameSync(temporary, path);
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
