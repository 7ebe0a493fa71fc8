/**
 * The trials of a spec: every grid point x seed, with the exact flags of its search and
 * retraining, and an id that is a hash of those settings (not of the trial's place in the
 * grid), so that a spec with more seeds, K values or methods keeps the ids, and with them the
 * finished work, of the trials it already had.
 */
import { createHash } from 'node:crypto';

import type { Genotype } from '../darts/genotype.js';
import { sampleGenotypes } from '../darts/sample.js';
import { RunInputError } from '../run/errors.js';
import { DEFAULT_SEARCH_CONFIG } from '../run/search.js';
import type { ExperimentMethod, ExperimentSpec, FlagSet, MethodEntry } from './spec.js';

export interface Trial {
  /** Stable hash (16 hex digits) of the settings below. */
  id: string;
  method: ExperimentMethod;
  /** Partial channel proportion 1/K of the search; 0 for a random trial (no search). */
  k: number;
  /** Edge normalisation in the search (false for a random trial). */
  edgeNorm: boolean;
  /** 1: first-order architecture step; 2: the unrolled (second-order) one. */
  order: 1 | 2;
  seed: number;
  /** A sampled genotype instead of a search. */
  random: boolean;
  /** `pcdarts search` flags (without --out / --resume / --threads); empty for a random trial. */
  searchArgs: string[];
  /** `pcdarts train` flags (without --genotype / --out / --resume / --threads). */
  trainArgs: string[];
  /** Configuration label for reports: "pcdarts K=4 EN", "darts-v2", "random", or the spec's own label. */
  label: string;
  /** Random trials: the genotype drawn with `pcdarts sample --seed SEED --nodes N`. */
  genotype?: Genotype;
}

export const TRIAL_ID_LENGTH = 16;

/** `pcdarts` flags from a spec's flag object, keys in sorted order (so ids do not depend on how the JSON was written). */
export function flagArgs(flags: FlagSet): string[] {
  const args: string[] = [];
  for (const name of Object.keys(flags).sort()) {
    const value = flags[name];
    if (value === true) args.push(`--${name}`);
    else if (value === false || value === null) args.push(`--no-${name.replace(/^no-/, '')}`);
    else if (Array.isArray(value)) args.push(`--${name}`, value.join(','));
    else args.push(`--${name}`, String(value));
  }
  return args;
}

/** Both flags sets merged: an entry's flags over the shared ones (a --no-x replaces an x and the other way round). */
function mergeFlags(shared: FlagSet, own: FlagSet | undefined): FlagSet {
  const merged: FlagSet = { ...shared };
  for (const [name, value] of Object.entries(own ?? {})) {
    const base = name.replace(/^no-/, '');
    delete merged[base];
    delete merged[`no-${base}`];
    merged[name] = value;
  }
  return merged;
}

function hashId(settings: unknown): string {
  return createHash('sha256').update(JSON.stringify(settings)).digest('hex').slice(0, TRIAL_ID_LENGTH);
}

/** Intermediate nodes of the spec's cells (the search's --nodes), for sampled genotypes. */
function specNodes(search: FlagSet): number {
  return typeof search.nodes === 'number' ? search.nodes : DEFAULT_SEARCH_CONFIG.nodes;
}

function defaultLabel(method: ExperimentMethod, k: number, edgeNorm: boolean, fixed: MethodEntry): string {
  if (method === 'random') return 'random';
  if (method === 'pcdarts') return `pcdarts K=${k}${edgeNorm ? ' EN' : ''}`;
  const standard = k === 1 && !edgeNorm;
  return standard && fixed.k === undefined && fixed.edgeNorm === undefined ? method : `${method} K=${k}${edgeNorm ? ' EN' : ''}`;
}

/** Every grid point x seed of the spec, in grid order (methods, then K, then edge norm, then seeds). */
export function planTrials(spec: ExperimentSpec): Trial[] {
  const trials: Trial[] = [];
  const data = spec.data === null ? [] : ['--data', spec.data];
  for (const entry of spec.grid.methods) {
    const method = entry.method;
    const searchFlags = mergeFlags(spec.search, entry.search);
    const trainFlags = mergeFlags(spec.train, entry.train);
    const points: { k: number; edgeNorm: boolean }[] = [];
    if (method === 'random') points.push({ k: 0, edgeNorm: false });
    else {
      const ks = entry.k !== undefined ? [entry.k] : method === 'pcdarts' ? spec.grid.k : [1];
      const norms = entry.edgeNorm !== undefined ? [entry.edgeNorm] : method === 'pcdarts' ? spec.grid.edgeNorm : [false];
      for (const k of ks) for (const edgeNorm of norms) points.push({ k, edgeNorm });
    }
    for (const { k, edgeNorm } of points) {
      for (const seed of spec.grid.seeds) {
        const order: 1 | 2 = method === 'darts-v2' ? 2 : 1;
        const random = method === 'random';
        const searchArgs = random ? [] : [
          '--dataset', spec.dataset, ...data, ...flagArgs(searchFlags),
          '--k', String(k), ...(edgeNorm ? [] : ['--no-edge-norm']), ...(order === 2 ? ['--order', '2'] : []), '--seed', String(seed),
        ];
        const trainArgs = ['--dataset', spec.dataset, ...data, ...flagArgs(trainFlags), '--seed', String(seed)];
        const genotype = random ? sampleGenotypes(seed, 1, specNodes(searchFlags))[0] : undefined;
        // The id hashes what determines the results; the label is only a name.
        const id = hashId({ v: 1, method, k, edgeNorm, order, seed, random, searchArgs, trainArgs, ...(genotype ? { genotype } : {}) });
        const label = entry.label ?? defaultLabel(method, k, edgeNorm, entry);
        trials.push({ id, method, k, edgeNorm, order, seed, random, searchArgs, trainArgs, label, ...(genotype ? { genotype } : {}) });
      }
    }
  }
  const seen = new Map<string, Trial>();
  for (const trial of trials) {
    const other = seen.get(trial.id);
    if (other !== undefined) {
      throw new RunInputError(`${spec.source ?? 'spec'}: grid.methods: the grid lists the same trial twice (${other.label} seed ${other.seed} and ${trial.label} seed ${trial.seed}): remove one of the method entries`);
    }
    seen.set(trial.id, trial);
  }
  return trials;
}

export type TrialPhase = 'search' | 'retrain';

/** The phases of a trial, in order: a random trial has no search. */
export function trialPhases(trial: Pick<Trial, 'random'>): TrialPhase[] {
  return trial.random ? ['retrain'] : ['search', 'retrain'];
}

/** "pcdarts K=4 EN seed 1 (3f2a...)" */
export function describeTrial(trial: Pick<Trial, 'label' | 'seed' | 'id'>): string {
  return `${trial.label} seed ${trial.seed} (${trial.id})`;
}
