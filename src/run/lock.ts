/**
 * One writer per run directory: DIR/run.lock names the process that writes DIR (host, pid,
 * start time, what it does). Every process that writes a run directory (search, train, their
 * resumes, a report of an unfinished run, experiment and queue workers) holds it; read-only
 * commands never need it.
 *
 * Taking the lock is atomic: the holder's record is written to a temporary file and hard-linked
 * to run.lock, which fails when run.lock exists (link(2) never replaces), so of two processes
 * exactly one wins. A lock whose holder is dead (same host, no such pid) is taken over: the
 * taker first creates `run.lock.takeover-<token>` exclusively (token: the stale lock's random
 * id), so exactly one process may remove that stale lock; it checks that run.lock still holds
 * that token, removes it and then competes for run.lock like anyone else. A taker killed in
 * the middle leaves a takeover file of a dead pid, which is itself broken the same way.
 * A lock held by a live pid, or by another host (whose pids cannot be checked), is never taken.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

import { peekCheckpointState } from './checkpoint.js';
import { RunInputError } from './errors.js';
import { TEMPORARY_MARKER } from './files.js';

export const LOCK_FILE = 'run.lock';

/** What run.lock holds. */
export interface RunLockRecord {
  readonly host: string;
  readonly pid: number;
  /** ISO time the lock was taken. */
  readonly started: string;
  /** What the holder does ('search', 'train', 'report', 'experiment trial', ...). */
  readonly purpose: string;
  /** Random id of this holding (tells two holdings by one pid apart). */
  readonly token: string;
}

/** Another live process holds the lock: bad input for the second process (exit status 2). */
export class RunLockedError extends RunInputError {
  constructor(message: string, readonly holder: RunLockRecord) {
    super(message);
  }
}

export interface RunLock {
  readonly dir: string;
  readonly path: string;
  readonly record: RunLockRecord;
  /** The stale lock this one replaced (its holder had died), if any. */
  readonly tookOver: RunLockRecord | null;
  /** Removes run.lock if it is still this holding's (idempotent). */
  release(): void;
}

/** True when a process with this pid exists on this host (EPERM: it exists, owned by another user). */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function errno(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException).code;
}

/** Creates `path` holding `text`, failing with EEXIST when it exists; complete content or nothing. */
function createExclusive(path: string, text: string): void {
  const temporary = `${path}${TEMPORARY_MARKER}${process.pid}-${randomBytes(4).toString('hex')}`;
  const fd = openSync(temporary, 'wx', 0o644);
  try {
    const bytes = Buffer.from(text, 'utf8');
    let offset = 0;
    while (offset < bytes.length) offset += writeSync(fd, bytes, offset, bytes.length - offset);
    fsyncSync(fd);
    closeSync(fd);
    linkSync(temporary, path);
  } finally {
    rmSync(temporary, { force: true });
  }
}

interface ReadLock {
  readonly record: RunLockRecord | null;
  /** The record's token, or a name derived from unreadable content. */
  readonly token: string;
}

const TOKEN_PATTERN = /^[0-9a-f]{8,64}$/;

function readLock(path: string): ReadLock | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if (errno(error) === 'ENOENT') return null;
    throw error;
  }
  try {
    const value = JSON.parse(text) as Partial<RunLockRecord>;
    if (typeof value.host === 'string' && Number.isInteger(value.pid) && typeof value.token === 'string' && TOKEN_PATTERN.test(value.token)) {
      return { record: value as RunLockRecord, token: value.token };
    }
  } catch {
    // below
  }
  // Only a power cut can leave run.lock unreadable (it is linked complete): nobody holds it.
  return { record: null, token: `unreadable${Buffer.from(text).length.toString(16)}` };
}

function isStale(lock: ReadLock): boolean {
  return lock.record === null || (lock.record.host === hostname() && !processAlive(lock.record.pid));
}

/** One line naming the holder. */
export function describeHolder(record: RunLockRecord): string {
  return `pcdarts ${record.purpose} (pid ${record.pid} on ${record.host}, since ${record.started})`;
}

/**
 * Removes the stale lock file `path` whose token is `token`, if this process wins the right to
 * (see the file comment). Returns false when another process is doing it right now.
 */
function breakStale(path: string, token: string, me: RunLockRecord, depth = 0): boolean {
  const marker = `${path}.takeover-${token}`;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      createExclusive(marker, JSON.stringify(me));
    } catch (error) {
      if (errno(error) !== 'EEXIST') throw error;
      const other = readLock(marker);
      if (other === null) continue; // just removed: try again
      if (!isStale(other) || depth > 4) return false;
      breakStale(marker, other.token, me, depth + 1);
      continue;
    }
    try {
      const current = readLock(path);
      if (current !== null && current.token === token) rmSync(path, { force: true });
    } finally {
      rmSync(marker, { force: true });
    }
    return true;
  }
  return false;
}

function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Takes DIR/run.lock for `purpose`, or throws RunLockedError (a RunInputError: exit status 2)
 * naming the live holder. A stale lock (its pid dead on this host) is taken over; `tookOver`
 * says whose, for the caller to log. DIR must exist. Filesystem errors are RunInputErrors too.
 */
export function acquireRunLock(dir: string, purpose: string): RunLock {
  const path = join(dir, LOCK_FILE);
  const record: RunLockRecord = {
    host: hostname(), pid: process.pid, started: new Date().toISOString(), purpose, token: randomBytes(8).toString('hex'),
  };
  const text = `${JSON.stringify(record)}\n`;
  let tookOver: RunLockRecord | null = null;
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      createExclusive(path, text);
      return makeLock(dir, path, record, tookOver);
    } catch (error) {
      const code = errno(error);
      if (code !== 'EEXIST') {
        if (code === 'ENOENT' || code === 'ENOTDIR') throw new RunInputError(`${dir}: no such run directory, so no lock can be taken there`);
        throw new RunInputError(`${path}: cannot create the run lock (${code ?? (error as Error).message})`);
      }
    }
    const held = readLock(path);
    if (held === null) continue;
    if (!isStale(held)) {
      throw new RunLockedError(`${dir} is in use by ${describeHolder(held.record!)}; wait for it to end or stop it (${LOCK_FILE})`, held.record!);
    }
    if (breakStale(path, held.token, record)) {
      tookOver = held.record ?? { host: '?', pid: 0, started: '?', purpose: 'unknown (unreadable lock)', token: held.token };
    } else {
      sleepMs(10);
    }
  }
  throw new RunInputError(`${path}: could not take the run lock (other processes keep competing for it)`);
}

/**
 * Removes DIR's run lock when it is held by a process on ANOTHER host, for a caller that has
 * already proved that no live process can be writing DIR (the experiment trial entry, once it
 * holds the trial's own heartbeat lock, which a live holder on any host keeps fresh). A machine
 * that died mid-trial leaves such a lock behind; without this, its trial could never resume.
 * Same-host locks are left to acquireRunLock (a live pid keeps its lock, a dead one is taken
 * over there). Returns the record that was removed, or null when there was nothing to remove.
 */
export function takeOverOtherHostRunLock(dir: string, purpose: string): RunLockRecord | null {
  const path = join(dir, LOCK_FILE);
  const held = readLockQuietly(path);
  if (held === null || held.record === null || held.record.host === hostname()) return null;
  const me: RunLockRecord = {
    host: hostname(), pid: process.pid, started: new Date().toISOString(), purpose, token: randomBytes(8).toString('hex'),
  };
  return breakStale(path, held.token, me) ? held.record : null;
}

const heldLocks = new Set<RunLock>();
let exitHookInstalled = false;

function makeLock(dir: string, path: string, record: RunLockRecord, tookOver: RunLockRecord | null): RunLock {
  let released = false;
  const lock: RunLock = {
    dir, path, record, tookOver,
    release: () => {
      if (released) return;
      released = true;
      heldLocks.delete(lock);
      const current = readLockQuietly(path);
      if (current?.token === record.token) rmSync(path, { force: true });
    },
  };
  heldLocks.add(lock);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // A process that exits without releasing (process.exit after a signal) still frees its locks.
    process.on('exit', () => { for (const held of [...heldLocks]) held.release(); });
  }
  return lock;
}

function readLockQuietly(path: string): ReadLock | null {
  try {
    return readLock(path);
  } catch {
    return null;
  }
}

/** The live holder of DIR's lock, or null when nobody (or only a dead process) holds it. */
export function runLockHolder(dir: string): RunLockRecord | null {
  const held = readLockQuietly(join(dir, LOCK_FILE));
  return held === null || isStale(held) ? null : held.record;
}

/**
 * True when the run in DIR has done all its work (its latest checkpoint is at the end; a
 * train run's final test is done), so readers need no lock; false for a run that has none yet.
 */
export function runFinished(dir: string, config: { command: string; config: Record<string, unknown> }): boolean {
  let state: { epoch?: unknown; final_test?: unknown } | null;
  try {
    state = peekCheckpointState<{ epoch?: unknown; final_test?: unknown }>(dir);
  } catch {
    return false;
  }
  if (state === null || typeof state.epoch !== 'number') return false;
  const epochs = config.config.epochs;
  if (typeof epochs !== 'number' || state.epoch < epochs) return false;
  return config.command !== 'train' || (state.final_test !== undefined && state.final_test !== null);
}

/** Runs fn holding DIR's lock when `needed`, releasing it afterwards whatever happens. */
export async function withRunLock<T>(dir: string, purpose: string, needed: boolean, fn: () => Promise<T>): Promise<T> {
  const lock = needed ? acquireRunLock(dir, purpose) : null;
  try {
    return await fn();
  } finally {
    lock?.release();
  }
}
