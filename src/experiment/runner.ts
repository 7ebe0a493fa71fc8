/**
 * The local experiment runner: up to `parallel` trials at once, each phase a child process of
 * the hidden entry `pcdarts experiment trial DIR ID --phase P --threads T` (the same entry a
 * queue worker runs, so results do not depend on the mode), with the cores shared
 * (T = cores / parallel). Finished phases are skipped, interrupted ones resume from their
 * checkpoints, and a phase that failed for good (bad input, a non-finite number) is recorded
 * and not run again; other trials go on. Kill the runner at any moment: its children notice
 * (their parent changes), write a checkpoint and stop; running it again continues.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';

import { RunInputError } from '../run/errors.js';
import { DEFAULT_SEARCH_CONFIG } from '../run/search.js';
import { StopRequest } from '../run/signals.js';
import { DEFAULT_TRAIN_CONFIG } from '../run/train-settings.js';
import { initExperimentDir, isPermanentFailure, readPhaseStatus, writePhaseStatus } from './dir.js';
import type { PhaseMessage } from './phase.js';
import { collectResults, type ExperimentResults } from './results.js';
import { loadSpec } from './spec.js';
import { describeTrial, type Trial, type TrialPhase, trialPhases } from './trials.js';

/** The CLI entry children run. */
export const CLI_MAIN = fileURLToPath(new URL('../cli/main.js', import.meta.url));

export type RunnerEvent =
  | { type: 'plan'; trials: Trial[]; totalEpochs: number; doneEpochs: number; threads: number }
  | { type: 'state'; trial: Trial; phase: TrialPhase; state: 'started' | 'resumed' | 'done' | 'failed' | 'skipped' | 'stopped'; error?: string; line: string }
  | { type: 'progress'; trial: Trial; phase: TrialPhase; doneEpochs: number; totalEpochs: number; message: PhaseMessage & { type: 'progress' } };

export interface RunExperimentOptions {
  spec: string;
  out: string;
  parallel?: number;
  /** Cores to share among the trials (default: os.availableParallelism()). */
  cores?: number;
  stop?: StopRequest;
  onEvent?: (event: RunnerEvent) => void;
  /** Extra environment for the children. */
  env?: NodeJS.ProcessEnv;
}

export interface RunExperimentOutcome {
  status: 'finished' | 'stopped';
  results: ExperimentResults;
  failed: number;
}

/** Epochs a phase has, from the trial's flags (else the command's default). */
function phaseEpochs(trial: Trial, phase: TrialPhase): number {
  const args = phase === 'search' ? trial.searchArgs : trial.trainArgs;
  const i = args.lastIndexOf('--epochs');
  const given = i >= 0 ? Number(args[i + 1]) : Number.NaN;
  if (Number.isInteger(given) && given >= 1) return given;
  return phase === 'search' ? DEFAULT_SEARCH_CONFIG.epochs : DEFAULT_TRAIN_CONFIG.epochs;
}

/** Runs the spec into `out`; returns when every trial ended (done or failed) or after a stop. */
export async function runExperiment(options: RunExperimentOptions): Promise<RunExperimentOutcome> {
  const parallel = options.parallel ?? 1;
  if (!(Number.isInteger(parallel) && parallel >= 1)) throw new RunInputError(`--parallel: expected an integer >= 1, got ${parallel}`);
  const spec = loadSpec(options.spec);
  const trials = initExperimentDir(options.out, spec);
  const dir = options.out;
  const cores = options.cores ?? availableParallelism();
  const threads = Math.max(1, Math.floor(cores / Math.min(parallel, Math.max(1, trials.length))));
  const stop = options.stop ?? new StopRequest();
  const emit = options.onEvent ?? (() => {});

  // Progress in epochs over the whole experiment: ended phases count in full.
  const epochsOf = new Map<string, number>();
  const doneOf = new Map<string, number>();
  const key = (t: Trial, p: TrialPhase): string => `${t.id}/${p}`;
  for (const trial of trials) {
    for (const phase of trialPhases(trial)) {
      const epochs = phaseEpochs(trial, phase);
      epochsOf.set(key(trial, phase), epochs);
      const status = readPhaseStatus(dir, trial.id, phase);
      const ended = status?.state === 'done' || isPermanentFailure(status);
      doneOf.set(key(trial, phase), ended ? epochs : 0);
    }
  }
  // A trial whose search failed for good never retrains: its retraining counts as ended.
  for (const trial of trials) {
    if (!trial.random && isPermanentFailure(readPhaseStatus(dir, trial.id, 'search'))) doneOf.set(key(trial, 'retrain'), epochsOf.get(key(trial, 'retrain'))!);
  }
  const sum = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);
  const totalEpochs = sum(epochsOf);
  emit({ type: 'plan', trials, totalEpochs, doneEpochs: sum(doneOf), threads });

  const children = new Set<ChildProcess>();
  let failed = 0;
  const state = (trial: Trial, phase: TrialPhase, s: Extract<RunnerEvent, { type: 'state' }>['state'], error?: string): void => {
    const what = phase === 'search' ? 'search' : 'retraining';
    const words: Record<typeof s, string> = {
      started: `${what} started`, resumed: `${what} resumed from its checkpoint`, done: `${what} done`,
      failed: `${what} FAILED: ${error ?? 'no error message'}`, skipped: `${what} already ${error === undefined ? 'done' : `failed (${error})`}, skipped`,
      stopped: `${what} stopped (checkpoint written)`,
    };
    emit({ type: 'state', trial, phase, state: s, ...(error !== undefined ? { error } : {}), line: `trial ${describeTrial(trial)}: ${words[s]}` });
  };

  /** Runs one phase in a child; resolves with its exit status (null: killed by a signal). */
  const runChild = (trial: Trial, phase: TrialPhase): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; failure?: string }> => new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, CLI_MAIN, 'experiment', 'trial', dir, trial.id, '--phase', phase, '--threads', String(threads)], {
      stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.env },
    });
    children.add(child);
    let buffer = '';
    let stderr = '';
    let failure: string | undefined;
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      buffer += chunk;
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        let message: PhaseMessage;
        try {
          message = JSON.parse(line) as PhaseMessage;
        } catch {
          continue;
        }
        if (message.type === 'progress') {
          const epochs = epochsOf.get(key(trial, phase)) ?? message.epochs;
          const fraction = message.total > 0 ? message.done / message.total : 0;
          doneOf.set(key(trial, phase), Math.min(epochs, fraction * epochs));
          emit({ type: 'progress', trial, phase, doneEpochs: sum(doneOf), totalEpochs, message });
        } else if (message.type === 'phase') {
          if (message.state === 'failed') failure = message.error;
          if (message.state === 'started' || message.state === 'resumed') state(trial, phase, message.state);
        }
      }
    });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => { stderr = (stderr + chunk).slice(-4000); });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      children.delete(child);
      resolve({ code, signal, stderr, ...(failure !== undefined ? { failure } : {}) });
    });
  });

  const runTrial = async (trial: Trial): Promise<void> => {
    for (const phase of trialPhases(trial)) {
      if (stop.requested) return;
      const status = readPhaseStatus(dir, trial.id, phase);
      if (status?.state === 'done') continue;
      if (isPermanentFailure(status)) {
        failed += 1;
        state(trial, phase, 'skipped', status!.error);
        return;
      }
      const startedAt = new Date().toISOString();
      const result = await runChild(trial, phase);
      doneOf.set(key(trial, phase), result.code === 0 ? epochsOf.get(key(trial, phase))! : doneOf.get(key(trial, phase))!);
      if (result.code === 0) {
        state(trial, phase, 'done');
        continue;
      }
      if (stop.requested && (result.code === 130 || result.code === 143 || result.signal !== null)) {
        state(trial, phase, 'stopped');
        return;
      }
      // Failed: the child recorded why; a child that died without a word is recorded here.
      let recorded = readPhaseStatus(dir, trial.id, phase);
      if (recorded === null || recorded.state !== 'failed') {
        const lastLine = result.stderr.split('\n').map((l) => l.trim()).filter((l) => l !== '').pop();
        const error = result.failure ?? (result.signal !== null ? `killed by ${result.signal}` : `exited with status ${result.code}${lastLine ? `: ${lastLine}` : ''}`);
        recorded = { state: 'failed', error, exitCode: result.code ?? 1, startedAt, endedAt: new Date().toISOString(), host: '', pid: 0 };
        writePhaseStatus(dir, trial.id, phase, recorded);
      }
      failed += 1;
      state(trial, phase, 'failed', recorded.error);
      // Its retraining never runs: count it as ended.
      for (const later of trialPhases(trial).slice(trialPhases(trial).indexOf(phase))) doneOf.set(key(trial, later), epochsOf.get(key(trial, later))!);
      return;
    }
  };

  // A pool of `parallel` workers over the trials in grid order.
  let next = 0;
  const worker = async (): Promise<void> => {
    while (!stop.requested && next < trials.length) {
      const trial = trials[next++];
      await runTrial(trial);
      collectResults(dir);
    }
  };
  const forward = setInterval(() => {
    if (!stop.requested) return;
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill(stop.signal ?? 'SIGTERM');
    clearInterval(forward);
  }, 100);
  try {
    await Promise.all(Array.from({ length: Math.min(parallel, trials.length) }, worker));
  } finally {
    clearInterval(forward);
  }
  const results = collectResults(dir);
  return { status: stop.requested ? 'stopped' : 'finished', results, failed };
}
