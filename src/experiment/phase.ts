/**
 * One phase of one trial, in this process: what the hidden entry `pcdarts experiment trial DIR
 * ID --phase search|retrain` runs (local runner and queue workers alike). Idempotent and
 * resumable: a finished phase returns at once; an interrupted one resumes its run directory
 * from its last checkpoint (bit-identical to an uninterrupted run, the run machinery's
 * guarantee); a new one creates it. Progress goes out as JSON lines; the outcome goes to
 * DIR/trials/<id>/<phase>.status.json. The flags are parsed by the caller (the CLI), which
 * hands over configs, so that a trial's flags mean exactly what they mean to `pcdarts search`
 * and `pcdarts train`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

import { type Genotype, parseGenotypeJSON } from '../darts/genotype.js';
import { NON_FINITE_EXIT_CODE, NonFiniteError, oneLine, RunInputError } from '../run/errors.js';
import { describeHolder, takeOverOtherHostRunLock } from '../run/lock.js';
import { isRunDirectory } from '../run/run-dir.js';
import { GENOTYPE_FILE, type SearchConfig, SearchRun, type SearchRuntime } from '../run/search.js';
import { StopRequest, type StopSignal, SIGNAL_EXIT_CODES } from '../run/signals.js';
import type { TrainConfig, TrainRuntime } from '../run/train-settings.js';
import { TrainRun } from '../run/train.js';
import {
  acquireTrialLock, PHASE_RUN_DIR, readPhaseStatus, readTrial, TEST_FILE, trialDir, writeJsonAtomic, writePhaseStatus,
} from './dir.js';
import type { Trial, TrialPhase } from './trials.js';

/** A line a phase reports to its parent (stdout, one JSON object per line). */
export type PhaseMessage =
  | { type: 'phase'; phase: TrialPhase; trial: string; state: 'started' | 'resumed' | 'done' | 'failed' | 'stopped'; error?: string; epoch?: number }
  | {
    type: 'progress'; phase: TrialPhase; trial: string; epoch: number; epochs: number; done: number; total: number;
    loss: number; accuracy: number; end: boolean; genotype?: Genotype;
  };

export interface PhaseConfigs {
  /** The search's settings from trial.searchArgs (as `pcdarts search` parses them). */
  search?: () => { config: Partial<SearchConfig>; runtime: Partial<SearchRuntime> };
  /** The retraining's settings from trial.trainArgs, without the genotype. */
  train?: () => { config: Partial<TrainConfig>; runtime: Partial<TrainRuntime>; nodes?: number };
}

export interface RunPhaseOptions {
  dir: string;
  id: string;
  phase: TrialPhase;
  /** Turns the trial's flags into settings (throws RunInputError on a bad flag). */
  configs: (trial: Trial) => PhaseConfigs;
  threads?: number | null;
  stop: StopRequest;
  report: (message: PhaseMessage) => void;
  /** How long to wait for another process holding the trial. */
  lockWaitMs?: number;
}

/** The exit status of a phase: 0 done, 2 bad input, 3 non-finite, 130/143 stopped, 1 unexpected. */
export type PhaseExit = number;

function exitCodeOf(error: unknown): number {
  if (error instanceof RunInputError) return 2;
  if (error instanceof NonFiniteError) return NON_FINITE_EXIT_CODE;
  return 1;
}

/** The genotype a trial retrains: the search's result, or the sampled one. */
export function trialGenotype(dir: string, trial: Trial): Genotype {
  if (trial.random) {
    if (trial.genotype === undefined) throw new RunInputError(`${join(trialDir(dir, trial.id), 'trial.json')}: a random trial without its genotype`);
    return trial.genotype;
  }
  const path = join(trialDir(dir, trial.id), PHASE_RUN_DIR.search, GENOTYPE_FILE);
  const status = readPhaseStatus(dir, trial.id, 'search');
  if (status?.state !== 'done' || !existsSync(path)) throw new RunInputError(`trial ${trial.id}: the retrain phase needs a finished search (no ${path} of a done search phase)`);
  return parseGenotypeJSON(readFileSync(path, 'utf8'), path);
}

/** Runs the phase; returns its exit status. */
export async function runTrialPhase(options: RunPhaseOptions): Promise<PhaseExit> {
  const { dir, id, phase, stop, report } = options;
  const trial = readTrial(dir, id);
  if (phase === 'search' && trial.random) throw new RunInputError(`trial ${id} is a random trial: it has no search phase`);
  const done = readPhaseStatus(dir, id, phase);
  if (done?.state === 'done') return 0;
  const lock = await acquireTrialLock(dir, id, options.lockWaitMs);
  const startedAt = new Date().toISOString();
  const status = (state: 'done' | 'failed', exitCode: number, error?: string): void => {
    writePhaseStatus(dir, id, phase, {
      state, ...(error !== undefined ? { error } : {}), exitCode, startedAt, endedAt: new Date().toISOString(), host: hostname(), pid: process.pid,
    });
  };
  /** Records a failure (1: unexpected, its stack on stderr; 2 bad input; 3 non-finite) and returns its status. */
  const failed = (error: unknown): number => {
    const code = exitCodeOf(error);
    if (code === 1) process.stderr.write(`${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
    status('failed', code, oneLine(error));
    report({ type: 'phase', phase, trial: id, state: 'failed', error: oneLine(error) });
    return code;
  };
  try {
    // Another process may have finished it while this one waited for the lock.
    if (readPhaseStatus(dir, id, phase)?.state === 'done') return 0;
    const runDir = join(trialDir(dir, id), PHASE_RUN_DIR[phase]);
    // Holding the trial lock proves that no live trial entry, on any host, writes runDir; a run
    // lock left by another host is then a dead machine's, and is taken over (logged).
    if (existsSync(runDir)) {
      const orphan = takeOverOtherHostRunLock(runDir, `experiment trial ${id} --phase ${phase}`);
      if (orphan !== null) process.stderr.write(`pcdarts experiment trial: took over ${join(runDir, 'run.lock')} of ${describeHolder(orphan)}, whose machine no longer holds the trial\n`);
    }
    let nonFinite: string | null = null;
    let lastStepReport = 0;
    const configs = options.configs(trial);
    const runtimeThreads = options.threads === undefined ? {} : { threads: options.threads };
    let run: SearchRun | TrainRun;
    try {
      if (phase === 'search') {
        const { config, runtime } = configs.search!();
        run = isRunDirectory(runDir)
          ? SearchRun.resume({ dir: runDir, runtime: { ...runtimeThreads } })
          : SearchRun.create({ config, runtime: { ...runtime, ...runtimeThreads }, out: runDir });
      } else {
        const { config, runtime, nodes } = configs.train!();
        const genotype = trialGenotype(dir, trial);
        run = isRunDirectory(runDir)
          ? TrainRun.resume({ dir: runDir, runtime: { ...runtimeThreads } })
          : TrainRun.create({
            config: { ...config, genotype }, nodes, runtime: { ...runtime, ...runtimeThreads }, out: runDir,
            genotypeSource: trial.random ? `pcdarts sample --seed ${trial.seed}` : `${PHASE_RUN_DIR.search}/${GENOTYPE_FILE}`,
          });
      }
    } catch (error) {
      return failed(error);
    }
    try {
      const position = run.position;
      const epochs = run.config.epochs;
      report({ type: 'phase', phase, trial: id, state: position.epoch === 0 && position.step === 0 ? 'started' : 'resumed', epoch: position.epoch });
      let outcome: { status: 'finished' | 'stopped'; signal: StopSignal | null; epoch: number } = { status: 'finished', signal: null, epoch: epochs };
      if (!run.finished) {
        let total = 0;
        const stepsPerEpoch = run.stepsPerEpoch;
        const events = {
          onStart: (p: { total: number }) => { total = p.total; },
          onStep: (record: { loss: number; acc: number; epoch: number; step: number; global_step: number }) => {
            if (!Number.isFinite(record.loss) && nonFinite === null) {
              nonFinite = `non-finite loss (${record.loss}) at epoch ${record.epoch} step ${record.step} (0-based) of the ${phase === 'search' ? 'search' : 'retraining'}`;
              stop.request('SIGTERM');
            }
            const now = Date.now();
            if (now - lastStepReport < 1000) return;
            lastStepReport = now;
            report({
              type: 'progress', phase, trial: id, epoch: record.epoch + 1, epochs, done: record.global_step + 1, total,
              loss: record.loss, accuracy: record.acc, end: false,
            });
          },
          onEpoch: (record: { epoch: number; train_loss: number; train_acc: number; valid_acc?: number; test_acc?: number; genotype?: Genotype }) => {
            report({
              type: 'progress', phase, trial: id, epoch: record.epoch + 1, epochs, done: (record.epoch + 1) * stepsPerEpoch, total,
              loss: record.train_loss, accuracy: record.valid_acc ?? record.test_acc ?? record.train_acc, end: true,
              ...(record.genotype ? { genotype: record.genotype } : {}),
            });
          },
        };
        outcome = await (run as SearchRun).run({ stop, events: events as never });
      }
      if (nonFinite !== null) {
        status('failed', 3, nonFinite);
        report({ type: 'phase', phase, trial: id, state: 'failed', error: nonFinite });
        return 3;
      }
      if (outcome.status === 'stopped') {
        report({ type: 'phase', phase, trial: id, state: 'stopped', epoch: outcome.epoch });
        return SIGNAL_EXIT_CODES[(outcome.signal ?? 'SIGTERM') as StopSignal];
      }
      if (run instanceof TrainRun) {
        const test = run.testResult;
        if (test === null) throw new Error(`${runDir}: finished without its final test`);
        writeJsonAtomic(join(trialDir(dir, id), TEST_FILE), test);
      }
      status('done', 0);
      report({ type: 'phase', phase, trial: id, state: 'done' });
      return 0;
    } catch (error) {
      return failed(error);
    } finally {
      run.dispose();
    }
  } finally {
    lock.release();
  }
}
