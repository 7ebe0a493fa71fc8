/**
 * What every command shares: the one-line error contract (exit 2 for bad input, including
 * filesystem errors and bad environment variables; 1 for a bug), the thread cap, and the
 * form in which a printed next step works from where the user stands.
 */
import { accessSync, constants, existsSync, realpathSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { delimiter, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { oneLine, RunInputError } from '../index.js';

// ------------------------------------------------------------------------------------------
// Errors

/** What a filesystem error code means, in words (the errno alone says little to a newcomer). */
const ERRNO_TEXT: Readonly<Record<string, string>> = {
  ENOENT: 'no such file or directory',
  ENOTDIR: 'a part of the path is not a directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'is a directory, expected a file',
  EEXIST: 'already exists',
  ENOTEMPTY: 'directory not empty',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EIO: 'input/output error',
  ENAMETOOLONG: 'file name too long',
  ELOOP: 'too many levels of symbolic links',
  EMFILE: 'too many open files',
  EBUSY: 'resource busy',
  EXDEV: 'cannot move across file systems',
};

const SYSCALL_VERB: Readonly<Record<string, string>> = {
  open: 'cannot open', mkdir: 'cannot create the directory', write: 'cannot write', read: 'cannot read', rename: 'cannot rename',
  unlink: 'cannot remove', rmdir: 'cannot remove', scandir: 'cannot list', stat: 'cannot read', lstat: 'cannot read',
  copyfile: 'cannot copy', access: 'cannot access', fsync: 'cannot write', symlink: 'cannot link', link: 'cannot link',
  mkdtemp: 'cannot create a directory in', opendir: 'cannot list',
};

/** The one-line description of a Node filesystem error, or null for anything else. */
export function fileSystemErrorLine(error: unknown): string | null {
  if (!(error instanceof Error)) return null;
  const { code, path, syscall } = error as NodeJS.ErrnoException;
  if (code === undefined || ERRNO_TEXT[code] === undefined) return null;
  const verb = (syscall !== undefined ? SYSCALL_VERB[syscall] : undefined) ?? 'cannot use';
  if (code === 'ENOENT' && path !== undefined && (syscall === 'open' || syscall === 'mkdir') && !existsSync(dirname(path))) {
    // Writing: the folder it goes into is missing (pcdarts creates no directory it was not asked for).
    return `${path}: ${verb}: the directory ${dirname(path)} does not exist (create it first, or choose another path)`;
  }
  return path !== undefined ? `${path}: ${verb}: ${ERRNO_TEXT[code]} (${code})` : `${ERRNO_TEXT[code]} (${code})`;
}

/** Exit status of an error a command caught: 2 for bad input (flags, files, the filesystem), 1 for a bug. */
export function exitStatusOf(error: unknown): number {
  return error instanceof RunInputError || fileSystemErrorLine(error) !== null ? 2 : 1;
}

/** The line a command prints for an error: the filesystem's in words, else the message's one line. */
export function errorLine(error: unknown): string {
  return fileSystemErrorLine(error) ?? oneLine(error);
}

/** Prints `pcdarts NAME: <one line>` on stderr and returns the exit status. */
export function reportFailure(command: string, error: unknown): number {
  process.stderr.write(`pcdarts ${command}: ${errorLine(error)}\n`);
  return exitStatusOf(error);
}

// ------------------------------------------------------------------------------------------
// Environment variables

const WASM_BUILDS = ['simd', 'relaxed-simd', 'auto'];
const BACKENDS = ['wasm', 'ref'];

/**
 * Checks the environment variables pcdarts reads before any command runs; a bad one is a
 * RunInputError naming it and what it expects.
 */
export function checkEnvironment(env: NodeJS.ProcessEnv = process.env): void {
  const threads = env.PCDARTS_THREADS;
  if (threads !== undefined && threads !== '' && !(/^\s*\d+\s*$/.test(threads) && Number(threads) >= 1)) {
    throw new RunInputError(`PCDARTS_THREADS: expected a whole number of threads >= 1 (or unset for all cores), got '${threads}'`);
  }
  const build = env.PCDARTS_WASM_BUILD;
  if (build !== undefined && build !== '' && !WASM_BUILDS.includes(build)) {
    throw new RunInputError(`PCDARTS_WASM_BUILD: expected ${WASM_BUILDS.join(', ')} (or unset), got '${build}'`);
  }
  const spin = env.PCDARTS_WORKER_SPIN_US;
  if (spin !== undefined && spin !== '' && !(spin.trim() !== '' && Number.isFinite(Number(spin)) && Number(spin) >= 0)) {
    throw new RunInputError(`PCDARTS_WORKER_SPIN_US: expected microseconds >= 0 (or unset for 100), got '${spin}'`);
  }
  const profile = env.PCDARTS_KERNEL_PROFILE;
  if (profile !== undefined && profile !== '' && profile !== '0' && profile !== '1') {
    throw new RunInputError(`PCDARTS_KERNEL_PROFILE: expected 1 (print the kernel profile at exit), 0 or unset, got '${profile}'`);
  }
  const backend = env.PCDARTS_BACKEND;
  if (backend !== undefined && backend !== '' && !BACKENDS.includes(backend)) {
    throw new RunInputError(`PCDARTS_BACKEND: expected ${BACKENDS.join(' or ')} (or unset for wasm), got '${backend}'`);
  }
}

// ------------------------------------------------------------------------------------------
// Thread counts

const warned = new Set<string>();

/** Prints a warning once per process. */
export function warnOnce(command: string, line: string): void {
  if (warned.has(line)) return;
  warned.add(line);
  process.stderr.write(`pcdarts ${command}: warning: ${line}\n`);
}

/**
 * The kernel threads to use: --threads, else PCDARTS_THREADS, capped at the machine's cores
 * with one warning (more threads than cores only add workers that wait for each other and
 * memory for each); undefined: all cores. Values below 1 are left for the library to refuse.
 */
export function cappedThreads(command: string, flag: number | undefined, flagName = '--threads', cores = availableParallelism()): number | undefined {
  const env = process.env.PCDARTS_THREADS;
  const fromEnv = flag === undefined && flagName === '--threads' && env !== undefined && env.trim() !== '' ? Number(env) : undefined;
  const value = flag ?? fromEnv;
  if (value === undefined || !(value > cores)) return flag;
  const source = flag !== undefined ? `${flagName} ${flag}` : `PCDARTS_THREADS=${env}`;
  warnOnce(command, `${source} is more than this machine's ${cores} cores: using ${cores}`);
  return cores;
}

// ------------------------------------------------------------------------------------------
// Printed next steps

/** The package's root (where package.json is), from this file's place in dist/src/cli. */
function packageRoot(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
}

function realpathOrSelf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/** Whether an executable `pcdarts` on PATH is this very CLI. */
function onPath(main: string, env: NodeJS.ProcessEnv): boolean {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, 'pcdarts');
    try {
      accessSync(candidate, constants.X_OK);
      if (realpathOrSelf(candidate) === main) return true;
    } catch {
      // not there
    }
  }
  return false;
}

export interface InvocationContext {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** The CLI's entry file (default: dist/src/cli/main.js of this package). */
  main?: string;
}

/**
 * How to start pcdarts from where the user stands, for the commands printed as next steps:
 * `npm run pcdarts --` inside a clone (npm runs scripts in the package root, where the run
 * directories of such a run are), `npx pcdarts` in a project that has it installed, `pcdarts`
 * when it is on PATH (a global install or npm link), else `node PATH/TO/main.js`.
 */
export function invocation(context: InvocationContext = {}): string {
  const env = context.env ?? process.env;
  const cwd = context.cwd ?? process.cwd();
  const main = realpathOrSelf(context.main ?? join(packageRoot(), 'dist/src/cli/main.js'));
  const root = resolve(dirname(main), '../../..');
  if (env.npm_lifecycle_event === 'pcdarts' && realpathOrSelf(cwd) === realpathOrSelf(root)) return 'npm run pcdarts --';
  if (env.npm_command === 'exec' || env.npm_lifecycle_event === 'npx') return 'npx pcdarts';
  if (onPath(main, env)) return 'pcdarts';
  if (root.split(/[\\/]/).includes('node_modules')) return 'npx pcdarts';
  if (realpathOrSelf(cwd) === realpathOrSelf(root)) return 'npm run pcdarts --';
  const rel = relative(cwd, main);
  return `node ${shellQuote(rel.startsWith('..') ? main : rel)}`;
}

/** A word as a POSIX shell reads it back unchanged. */
export function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** `npm run pcdarts -- train runs/x --epochs 20`: a next step, in the form that works here. */
export function commandLine(args: readonly (string | number)[], context?: InvocationContext): string {
  return [invocation(context), ...args.map((a) => shellQuote(String(a)))].join(' ');
}
