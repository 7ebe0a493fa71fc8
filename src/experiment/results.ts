/**
 * DIR/results.json: every trial of the experiment with its settings and outcome, read from
 * the trial folders (so it is the same whoever ran them: the local runner or queue workers).
 * Trials are in the spec's grid order. Times are the sums of the epochs' own times in the run
 * logs (work lost to an interruption and redone is counted once).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import type { Genotype } from '../darts/genotype.js';
import { parseGenotypeJSON } from '../darts/genotype.js';
import { LOG_FILE, readRunConfig } from '../run/run-dir.js';
import { GENOTYPE_FILE } from '../run/search.js';
import {
  PHASE_RUN_DIR, readExperimentSpec, readPhaseStatus, readTrial, RESULTS_FILE, TEST_FILE, trialDir, trialIds, writeJsonAtomic,
} from './dir.js';
import { planTrials, type Trial, type TrialPhase, trialPhases } from './trials.js';

export type TrialState = 'done' | 'failed' | 'pending';

/** A trial's settings (as in trial.json, less the sampled genotype) and what became of it. */
export interface TrialResult extends Pick<Trial, 'id' | 'label' | 'method' | 'k' | 'edgeNorm' | 'order' | 'seed' | 'random' | 'searchArgs' | 'trainArgs'> {
  /** done: retrained and tested; failed: a phase failed (see error); pending: not (yet) run to the end. */
  state: TrialState;
  /** The phase that failed and its one-line error. */
  failedPhase?: TrialPhase;
  error?: string;
  /** The searched (or sampled) genotype, once known. */
  genotype: Genotype | null;
  /** skip_connect operations in the normal cell of the genotype (DARTS' collapse). */
  skipConnects: number | null;
  /** Of the retrained network (config.json's info). */
  params: number | null;
  multAdds: number | null;
  /** Seconds of the search's epochs (null for random trials or before it ran). */
  searchSeconds: number | null;
  retrainSeconds: number | null;
  /** Test accuracy (fraction) of the retrained model. */
  top1: number | null;
  top5: number | null;
  testLoss: number | null;
  /** Epochs done in each phase (for pending trials). */
  searchEpochs: number | null;
  retrainEpochs: number | null;
}

export interface ExperimentResults {
  pcdarts_experiment: 1;
  name: string;
  dataset: string;
  trials: TrialResult[];
}

function logRecords(dir: string): Record<string, unknown>[] {
  const path = join(dir, LOG_FILE);
  if (!existsSync(path)) return [];
  const text = readFileSync(path, 'utf8');
  const out: Record<string, unknown>[] = [];
  for (const line of text.slice(0, text.lastIndexOf('\n') + 1).split('\n')) {
    if (line === '') continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch { /* a torn line: ignored */ }
  }
  return out;
}

function epochTotals(dir: string): { seconds: number | null; epochs: number | null } {
  if (!existsSync(dir)) return { seconds: null, epochs: null };
  const epochs = logRecords(dir).filter((r) => r.type === 'epoch');
  return { seconds: epochs.reduce((s, r) => s + (typeof r.seconds === 'number' ? r.seconds : 0), 0), epochs: epochs.length };
}

/** Builds one trial's result from its folder. */
export function trialResult(dir: string, trial: Trial): TrialResult {
  const folder = trialDir(dir, trial.id);
  const searchDir = join(folder, PHASE_RUN_DIR.search);
  const trainDir = join(folder, PHASE_RUN_DIR.retrain);
  let state: TrialState = 'done';
  let failedPhase: TrialPhase | undefined;
  let error: string | undefined;
  for (const phase of trialPhases(trial)) {
    const status = readPhaseStatus(dir, trial.id, phase);
    if (status?.state === 'failed') {
      state = 'failed';
      failedPhase = phase;
      error = status.error ?? `exit status ${status.exitCode}`;
      break;
    }
    if (status?.state !== 'done') {
      state = 'pending';
      break;
    }
  }
  let genotype: Genotype | null = trial.genotype ?? null;
  if (!trial.random && existsSync(join(searchDir, GENOTYPE_FILE)) && readPhaseStatus(dir, trial.id, 'search')?.state === 'done') {
    genotype = parseGenotypeJSON(readFileSync(join(searchDir, GENOTYPE_FILE), 'utf8'), join(searchDir, GENOTYPE_FILE));
  }
  let params: number | null = null;
  let multAdds: number | null = null;
  if (existsSync(join(trainDir, 'config.json'))) {
    const info = (readRunConfig(trainDir, 'train').info ?? {}) as { parameters?: number; mult_adds?: number };
    params = info.parameters ?? null;
    multAdds = info.mult_adds ?? null;
  }
  const test = existsSync(join(folder, TEST_FILE))
    ? JSON.parse(readFileSync(join(folder, TEST_FILE), 'utf8')) as { top1: number; top5: number; loss: number } : null;
  const search = trial.random ? { seconds: null, epochs: null } : epochTotals(searchDir);
  const retrain = epochTotals(trainDir);
  return {
    id: trial.id, label: trial.label, method: trial.method, k: trial.k, edgeNorm: trial.edgeNorm, order: trial.order, seed: trial.seed,
    random: trial.random, searchArgs: trial.searchArgs, trainArgs: trial.trainArgs,
    state, ...(failedPhase !== undefined ? { failedPhase, error } : {}),
    genotype, skipConnects: genotype === null ? null : genotype.normal.filter(([op]) => op === 'skip_connect').length,
    params, multAdds, searchSeconds: search.seconds, retrainSeconds: retrain.seconds,
    top1: test?.top1 ?? null, top5: test?.top5 ?? null, testLoss: test?.loss ?? null,
    searchEpochs: search.epochs, retrainEpochs: retrain.epochs,
  };
}

/**
 * Reads every DIR/trials/<id>/ and (re)writes DIR/results.json atomically: the spec's trials
 * in grid order, then any other trial folder (ids in order).
 */
export function collectResults(dir: string): ExperimentResults {
  const spec = readExperimentSpec(dir);
  const planned = planTrials(spec);
  const known = new Set(planned.map((t) => t.id));
  const present = new Set(trialIds(dir));
  const trials = [
    ...planned.filter((t) => present.has(t.id)),
    ...[...present].filter((id) => !known.has(id)).map((id) => readTrial(dir, id)),
  ];
  const results: ExperimentResults = {
    pcdarts_experiment: 1, name: spec.name, dataset: spec.dataset, trials: trials.map((t) => trialResult(dir, t)),
  };
  writeJsonAtomic(join(dir, RESULTS_FILE), results);
  return results;
}
