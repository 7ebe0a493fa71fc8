/**
 * A run directory: what one `pcdarts search` or `pcdarts train` run leaves on disk.
 *
 *   DIR/config.json      the run's settings (written once, atomically; its presence makes DIR a run)
 *   DIR/log.jsonl        one JSON record per line (steps, epochs, resumes)
 *   DIR/*.jsonl          further append-only logs (e.g. genotypes.jsonl)
 *   DIR/*.json           latest-value files (e.g. genotype.json), replaced atomically
 *   DIR/checkpoint/      see checkpoint.ts
 *   DIR/run.lock         the process writing DIR (see lock.ts); held by every open RunDirectory
 *
 * Append-only logs may run ahead of the last checkpoint (a run killed between two
 * checkpoints); each checkpoint records their byte lengths and `truncateLogs` cuts them
 * back on resume, so a resumed run's logs read exactly as an uninterrupted run's.
 */
import { closeSync, existsSync, fstatSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, truncateSync } from 'node:fs';
import { join } from 'node:path';

import { oneLine, RunInputError } from './errors.js';
import { removeTemporaryFiles, writeAll, writeFailure, writeFileAtomic } from './files.js';
import { testPoint } from './test-hooks.js';
import { acquireRunLock, LOCK_FILE, type RunLock } from './lock.js';

export const CONFIG_FILE = 'config.json';
export const LOG_FILE = 'log.jsonl';

/** The content of config.json. */
export interface RunConfigFile<Config = Record<string, unknown>, Runtime = Record<string, unknown>> {
  /** Format marker and version. */
  readonly pcdarts_run: 1;
  /** The command that made the run ('search', 'train'). */
  readonly command: string;
  /** ISO time of creation. */
  readonly created: string;
  /** Settings that determine the results; a resume must not change them. */
  readonly config: Config;
  /** Settings that do not change results (threads, checkpoint interval); a resume may change them. */
  readonly runtime: Runtime;
  /** Facts derived at creation (dataset size, steps per epoch, ...), for readers. */
  readonly info?: Record<string, unknown>;
}

/** True when `dir` holds a config.json (the mark of a run directory). */
export function isRunDirectory(dir: string): boolean {
  return existsSync(join(dir, CONFIG_FILE));
}

/**
 * Checks that a new run may be created in `dir`: it is absent or an empty directory. Touches
 * nothing. A directory that already is a run is refused with a pointer to --resume.
 */
export function checkNewRunDirectory(dir: string): void {
  if (!existsSync(dir)) return;
  if (!statSync(dir).isDirectory()) throw new RunInputError(`${dir} exists and is not a directory: choose another --out`);
  if (isRunDirectory(dir)) {
    throw new RunInputError(`${dir} already holds a run: continue it with --resume ${dir}, or choose another --out (nothing was overwritten)`);
  }
  // A lock alone is what a creation killed before its config.json leaves (a live holder is refused when locking).
  if (readdirSync(dir).some((name) => name !== LOCK_FILE)) throw new RunInputError(`${dir} exists and is not empty: choose another --out`);
}

/** Reads and checks config.json of an existing run. */
export function readRunConfig(dir: string, command?: string): RunConfigFile {
  if (!existsSync(dir)) throw new RunInputError(`${dir}: no such directory, so nothing to resume`);
  if (!statSync(dir).isDirectory()) throw new RunInputError(`${dir} is not a directory, so not a run to resume`);
  const path = join(dir, CONFIG_FILE);
  if (!existsSync(path)) throw new RunInputError(`${dir} is not a run directory (it has no ${CONFIG_FILE})`);
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new RunInputError(`${path}: not valid JSON (${oneLine(error)})`);
  }
  const file = value as Partial<RunConfigFile>;
  if (value === null || typeof value !== 'object' || file.pcdarts_run !== 1 || typeof file.command !== 'string'
    || typeof file.config !== 'object' || file.config === null || typeof file.runtime !== 'object' || file.runtime === null) {
    throw new RunInputError(`${path}: not a pcdarts run configuration (expected pcdarts_run: 1, command, config, runtime)`);
  }
  if (command !== undefined && file.command !== command) {
    throw new RunInputError(`${dir} is a '${file.command}' run, not a '${command}' run`);
  }
  return file as RunConfigFile;
}

export interface OpenRunOptions {
  /** What the lock record says this process does (default: the run's command). */
  readonly purpose?: string;
  /** A lock of this directory the caller already holds; the RunDirectory takes it over (and releases it on close). */
  readonly lock?: RunLock;
}

/** An open run directory: its logs and latest-value files; it holds the run lock until closed. */
export class RunDirectory {
  private readonly logs = new Map<string, number>();

  private constructor(readonly path: string, readonly configFile: RunConfigFile, readonly lock: RunLock | null) {}

  /**
   * Creates the directory, takes its lock and writes its config.json (call
   * `checkNewRunDirectory` first, before any slow work). A second process creating the same
   * directory at the same moment gets the lock error (RunLockedError) or the 'already holds a
   * run' one.
   */
  static create(dir: string, configFile: RunConfigFile, options: OpenRunOptions = {}): RunDirectory {
    checkNewRunDirectory(dir);
    // A failed mkdir stays the filesystem's own error (path, syscall, code): the CLI says it in
    // words ("cannot create the directory: ...", exit 2), as for every other filesystem error.
    mkdirSync(dir, { recursive: true });
    const lock = options.lock ?? acquireRunLock(dir, options.purpose ?? configFile.command);
    try {
      checkNewRunDirectory(dir); // again: another process may have filled it since the check above
      writeFileAtomic(join(dir, CONFIG_FILE), `${JSON.stringify(configFile, null, 2)}\n`);
    } catch (error) {
      lock.release();
      throw error;
    }
    return new RunDirectory(dir, configFile, lock);
  }

  /** Opens an existing run and takes its lock (nothing else is modified until a log is appended or truncated). */
  static open(dir: string, command?: string, options: OpenRunOptions = {}): RunDirectory {
    const configFile = readRunConfig(dir, command);
    const lock = options.lock ?? acquireRunLock(dir, options.purpose ?? configFile.command);
    return new RunDirectory(dir, configFile, lock);
  }

  /** Writes a new config.json (e.g. changed runtime settings), atomically. */
  updateConfig(configFile: RunConfigFile): RunDirectory {
    writeFileAtomic(join(this.path, CONFIG_FILE), `${JSON.stringify(configFile, null, 2)}\n`);
    const updated = new RunDirectory(this.path, configFile, this.lock);
    for (const [name, fd] of this.logs) updated.logs.set(name, fd);
    this.logs.clear();
    return updated;
  }

  private logDescriptor(name: string): number {
    let fd = this.logs.get(name);
    if (fd === undefined) {
      try {
        fd = openSync(join(this.path, name), 'a');
      } catch (error) {
        throw writeFailure(join(this.path, name), error);
      }
      this.logs.set(name, fd);
    }
    return fd;
  }

  /**
   * Appends one JSON record as a line to `name` (default log.jsonl). A failed write (no space,
   * an I/O error) cuts the log back to where it was, so it never holds a torn line, and is a
   * FileWriteError.
   */
  append(record: unknown, name = LOG_FILE): void {
    const line = Buffer.from(`${JSON.stringify(record)}\n`, 'utf8');
    const fd = this.logDescriptor(name);
    const path = join(this.path, name);
    let size: number | null = null;
    try {
      size = fstatSync(fd).size;
      writeAll(fd, line.subarray(0, line.length >> 1), path);
      testPoint('log-write', `${name}: half a line written`);
      writeAll(fd, line.subarray(line.length >> 1), path);
    } catch (error) {
      if (size !== null) {
        try {
          ftruncateSync(fd, size);
        } catch {
          // the resume cuts the log back to its checkpoint's length anyway
        }
      }
      throw writeFailure(path, error);
    }
  }

  /** Byte lengths of the given logs (0 for an absent one), after making them durable: what a checkpoint records. */
  syncLogs(names: readonly string[]): Record<string, number> {
    const sizes: Record<string, number> = {};
    for (const name of names) {
      const fd = this.logs.get(name);
      if (fd !== undefined) {
        try {
          fsyncSync(fd);
        } catch (error) {
          throw writeFailure(join(this.path, name), error);
        }
        sizes[name] = fstatSync(fd).size;
      } else {
        const path = join(this.path, name);
        sizes[name] = existsSync(path) ? statSync(path).size : 0;
      }
    }
    return sizes;
  }

  /**
   * Cuts logs back to the lengths a checkpoint recorded (records written after it are
   * replayed by the resumed run). A log shorter than recorded is left as it is.
   */
  truncateLogs(sizes: Record<string, number>): void {
    for (const [name, size] of Object.entries(sizes)) {
      const path = join(this.path, name);
      if (!existsSync(path)) continue;
      if (statSync(path).size > size) {
        try {
          truncateSync(path, size);
        } catch (error) {
          throw writeFailure(path, error);
        }
      }
    }
  }

  /** Replaces `name` with the text, atomically. */
  writeText(name: string, text: string): void {
    writeFileAtomic(join(this.path, name), text);
  }

  writeJson(name: string, value: unknown): void {
    this.writeText(name, `${JSON.stringify(value, null, 2)}\n`);
  }

  /** Removes debris of interrupted atomic writes. */
  cleanTemporaryFiles(): void {
    removeTemporaryFiles(this.path);
  }

  /** Closes the logs and releases the lock. */
  close(): void {
    for (const fd of this.logs.values()) closeSync(fd);
    this.logs.clear();
    this.lock?.release();
  }
}
