/**
 * An experiment directory:
 *
 *   DIR/spec.json                      the spec (as checked), rewritten when a spec extends it
 *   DIR/trials/<id>/trial.json         the trial's settings (trials.ts)
 *   DIR/trials/<id>/search/            a search run directory (not for random trials)
 *   DIR/trials/<id>/train/             a train run directory of the trial's genotype
 *   DIR/trials/<id>/<phase>.status.json  {state, error?, exitCode, startedAt, endedAt, host, pid}
 *   DIR/trials/<id>/test.json          the retrained model's test result (top-1, top-5, loss)
 *   DIR/trials/<id>/lock               held by the process running a phase of the trial
 *   DIR/results.json                   every trial's settings and outcome (results.ts)
 *
 * Every file is written atomically. A phase's status is written only when the phase ended
 * (done, or failed for good); an interrupted phase has none and resumes from its checkpoints.
 */
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

import { RunInputError } from '../run/errors.js';
import { writeFileAtomic } from '../run/files.js';
import type { ExperimentSpec } from './spec.js';
import { planTrials, type Trial, type TrialPhase } from './trials.js';

export const SPEC_FILE = 'spec.json';
export const TRIALS_DIR = 'trials';
export const TRIAL_FILE = 'trial.json';
export const TEST_FILE = 'test.json';
export const RESULTS_FILE = 'results.json';
export const TRIAL_LOCK_FILE = 'lock';

/** The run directory of a phase. */
export const PHASE_RUN_DIR: Readonly<Record<TrialPhase, string>> = { search: 'search', retrain: 'train' };

export interface PhaseStatus {
  state: 'done' | 'failed';
  /** One line: why the phase failed. */
  error?: string;
  exitCode: number;
  startedAt: string;
  endedAt: string;
  host: string;
  pid: number;
}

export function trialDir(dir: string, id: string): string {
  return join(dir, TRIALS_DIR, id);
}

export function statusFile(dir: string, id: string, phase: TrialPhase): string {
  return join(trialDir(dir, id), `${phase}.status.json`);
}

/**
 * JSON indented by 2, with arrays that hold no objects on one line (flag lists, a genotype's
 * [operation, input] pairs), so that files read at a glance.
 */
export function formatJson(value: unknown, indent = ''): string {
  if (Array.isArray(value)) {
    if (value.every((v) => v === null || typeof v !== 'object' || (Array.isArray(v) && v.every((w) => w === null || typeof w !== 'object')))) {
      const flat = (v: unknown): string => Array.isArray(v) ? `[${v.map(flat).join(', ')}]` : JSON.stringify(v) ?? 'null';
      return flat(value);
    }
    const inner = `${indent}  `;
    return `[\n${value.map((v) => `${inner}${formatJson(v, inner)}`).join(',\n')}\n${indent}]`;
  }
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    if (entries.length === 0) return '{}';
    const inner = `${indent}  `;
    return `{\n${entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${formatJson(v, inner)}`).join(',\n')}\n${indent}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, `${formatJson(value)}\n`);
}

function readJson(path: string): unknown {
  return JSON.parse(readFileSync(path, 'utf8'));
}

/** The status of a phase, or null when it has not ended (never run, running, or interrupted). */
export function readPhaseStatus(dir: string, id: string, phase: TrialPhase): PhaseStatus | null {
  const path = statusFile(dir, id, phase);
  if (!existsSync(path)) return null;
  try {
    return readJson(path) as PhaseStatus;
  } catch (error) {
    throw new RunInputError(`${path}: not valid JSON (${(error as Error).message})`);
  }
}

export function writePhaseStatus(dir: string, id: string, phase: TrialPhase, status: PhaseStatus): void {
  writeJsonAtomic(statusFile(dir, id, phase), status);
}

/** Exit statuses of a phase that a retry cannot change: 2 bad input, 3 a non-finite number. */
export function isPermanentFailure(status: PhaseStatus | null): boolean {
  return status !== null && status.state === 'failed' && (status.exitCode === 2 || status.exitCode === 3);
}

/** The trial as DIR/trials/<id>/trial.json holds it. */
export function readTrial(dir: string, id: string): Trial {
  const path = join(trialDir(dir, id), TRIAL_FILE);
  if (!existsSync(join(dir, SPEC_FILE))) throw new RunInputError(`${dir}: not an experiment directory (it has no ${SPEC_FILE})`);
  if (!existsSync(path)) throw new RunInputError(`${dir}: no trial ${id} (no ${path})`);
  try {
    return readJson(path) as Trial;
  } catch (error) {
    throw new RunInputError(`${path}: not valid JSON (${(error as Error).message})`);
  }
}

/** The spec DIR/spec.json holds. */
export function readExperimentSpec(dir: string): ExperimentSpec {
  const path = join(dir, SPEC_FILE);
  if (!existsSync(dir)) throw new RunInputError(`${dir}: no such directory`);
  if (!existsSync(path)) throw new RunInputError(`${dir}: not an experiment directory (it has no ${SPEC_FILE})`);
  try {
    return readJson(path) as ExperimentSpec;
  } catch (error) {
    throw new RunInputError(`${path}: not valid JSON (${(error as Error).message})`);
  }
}

/** Ids of the trial folders in DIR/trials. */
export function trialIds(dir: string): string[] {
  const trials = join(dir, TRIALS_DIR);
  if (!existsSync(trials)) return [];
  return readdirSync(trials).filter((name) => existsSync(join(trials, name, TRIAL_FILE))).sort();
}

/**
 * Prepares DIR for the spec: creates it (and its parents) when absent, writes spec.json and a
 * trial.json per trial. A DIR that holds trials the spec does not have (another spec's, or a
 * spec with fewer seeds or other flags) is refused without changing anything; one whose trials
 * are all trials of the spec (the spec adds seeds, K values, methods) is extended, and its
 * finished trials are reused. A non-empty DIR that is not an experiment directory is refused.
 */
export function initExperimentDir(dir: string, spec: ExperimentSpec): Trial[] {
  const trials = planTrials(spec);
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw new RunInputError(`--out ${dir}: exists and is not a directory`);
    const isExperiment = existsSync(join(dir, SPEC_FILE));
    if (!isExperiment && readdirSync(dir).length > 0) throw new RunInputError(`--out ${dir}: exists, is not empty and is not an experiment directory (no ${SPEC_FILE}): choose another --out`);
    const planned = new Set(trials.map((t) => t.id));
    for (const id of trialIds(dir)) {
      if (!planned.has(id)) {
        const other = readTrial(dir, id);
        throw new RunInputError(`--out ${dir}: holds trial ${other.label} seed ${other.seed} (${id}) that ${spec.source ?? 'the spec'} does not have (other flags, dataset or grid): use another --out, or a spec that only adds to this one (nothing was changed)`);
      }
    }
  }
  mkdirSync(join(dir, TRIALS_DIR), { recursive: true });
  const { source: _source, ...stored } = spec;
  writeJsonAtomic(join(dir, SPEC_FILE), stored);
  for (const trial of trials) {
    const folder = trialDir(dir, trial.id);
    const path = join(folder, TRIAL_FILE);
    if (existsSync(path)) continue;
    mkdirSync(folder, { recursive: true });
    writeJsonAtomic(path, trial);
  }
  return trials;
}

// ------------------------------------------------------------------------------------------
// The trial lock: one process per trial at a time.

interface LockContent { host: string; pid: number; since: string }

/** A lock whose holder has not touched it for this long is taken over (a holder on another host that died). */
export const LOCK_STALE_MS = 10 * 60_000;
const LOCK_HEARTBEAT_MS = 30_000;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function lockIsStale(path: string): boolean {
  let content: LockContent;
  try {
    content = readJson(path) as LockContent;
  } catch {
    // Half written (its writer died between open and write) or gone: stale once it is old enough to not be in progress.
    try {
      return Date.now() - statSync(path).mtimeMs > 5_000;
    } catch {
      return true;
    }
  }
  if (content.host === hostname()) return content.pid !== process.pid && !alive(content.pid);
  try {
    return Date.now() - statSync(path).mtimeMs > LOCK_STALE_MS;
  } catch {
    return true;
  }
}

export interface TrialLock { release(): void }

/** Another live process held the trial for longer than the wait: try again later (exit status 75, EX_TEMPFAIL). */
export class TrialBusyError extends Error {
  override readonly name = 'TrialBusyError';
}

/** The exit status of `experiment trial` when the trial stayed busy: transient, retried. */
export const TRIAL_BUSY_EXIT_CODE = 75;

/**
 * Takes DIR/trials/<id>/lock, waiting (up to `waitMs`) while another live process holds it
 * (e.g. the child of a killed runner that is still writing its checkpoint). A lock of a dead
 * process on this host, or one untouched for LOCK_STALE_MS, is taken over.
 */
export async function acquireTrialLock(dir: string, id: string, waitMs = 10 * 60_000): Promise<TrialLock> {
  const path = join(trialDir(dir, id), TRIAL_LOCK_FILE);
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      const fd = openSync(path, 'wx', 0o644);
      const content: LockContent = { host: hostname(), pid: process.pid, since: new Date().toISOString() };
      writeSync(fd, JSON.stringify(content));
      closeSync(fd);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      if (lockIsStale(path)) {
        rmSync(path, { force: true });
        continue;
      }
      if (Date.now() > deadline) {
        let holder = 'another process';
        try {
          const c = readJson(path) as LockContent;
          holder = `process ${c.pid} on ${c.host}`;
        } catch { /* unreadable: say so generically */ }
        throw new TrialBusyError(`${path}: trial ${id} is being run by ${holder}; try again once it has stopped`);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  const heartbeat = setInterval(() => {
    const now = new Date();
    try { utimesSync(path, now, now); } catch { /* removed by a takeover: nothing to do */ }
  }, LOCK_HEARTBEAT_MS);
  heartbeat.unref();
  return {
    release: () => {
      clearInterval(heartbeat);
      try {
        const content = readJson(path) as LockContent;
        if (content.pid === process.pid && content.host === hostname()) rmSync(path, { force: true });
      } catch { /* already gone */ }
    },
  };
}
