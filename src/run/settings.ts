/**
 * Settings of a run (search or train): the checks that name the CLI flag of a bad value, the
 * runtime settings every run has, and the rule for --resume (a setting given again must equal
 * the run's). Keys are the camelCase forms of the flags (`--batch-size` -> batchSize), as
 * stored in config.json.
 */
import { resolve } from 'node:path';

import type { PipelineOptions } from '../data/index.js';
import { DEFAULT_ACTIVATION_BUDGET_BYTES } from '../tensor/autograd.js';
import { RunInputError } from './errors.js';

/** `batchSize` -> `--batch-size`. */
export function flagName(key: string): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/** A check of one setting's value: null when fine, else what was expected. */
export type SettingCheck = (value: unknown) => string | null;

export const integerAtLeast = (min: number): SettingCheck => (v) =>
  typeof v === 'number' && Number.isInteger(v) && v >= min ? null : `expected an integer >= ${min}`;

export const numberAtLeast = (min: number, exclusive = false): SettingCheck => (v) =>
  typeof v === 'number' && Number.isFinite(v) && (exclusive ? v > min : v >= min) ? null : `expected a number ${exclusive ? '>' : '>='} ${min}`;

/** A number in [min, max) (or [min, max] with `maxInclusive`). */
export const numberInRange = (min: number, max: number, maxInclusive = false): SettingCheck => (v) =>
  typeof v === 'number' && v >= min && (maxInclusive ? v <= max : v < max) ? null : `expected a number in [${min}, ${max}${maxInclusive ? ']' : ')'}`;

/** A number strictly between 0 and 1. */
export const openUnitInterval: SettingCheck = (v) =>
  typeof v === 'number' && v > 0 && v < 1 ? null : 'expected a number in (0, 1)';

export const isBoolean: SettingCheck = (v) => typeof v === 'boolean' ? null : 'expected true or false';

/** null, or an integer >= min (an optional limit such as --limit-train). */
export const optionalIntegerAtLeast = (min: number): SettingCheck => (v) => v === null ? null : integerAtLeast(min)(v);

/** Checks every setting's type and range; the error names the flag. */
export function checkSettings<Config extends object>(config: Config, checks: { readonly [K in keyof Config]?: SettingCheck }): void {
  for (const [key, check] of Object.entries(checks) as [keyof Config & string, SettingCheck][]) {
    const problem = check(config[key]);
    if (problem !== null) throw new RunInputError(`${flagName(key)}: ${problem}, got ${JSON.stringify(config[key])}`);
  }
}

/** The entries of a partial settings object whose value is not undefined. */
export function definedEntries<T extends object>(partial: Partial<T> | undefined): Partial<T> {
  const out: Partial<T> = {};
  if (partial) for (const [k, v] of Object.entries(partial)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

/** "--lr 0.1", "no --limit-train", "--edge-norm true"; `describe` may say it better for some keys. */
export function describeSetting(key: string, value: unknown): string {
  if (value === null) return `no ${flagName(key)}`;
  return `${flagName(key)} ${typeof value === 'object' ? JSON.stringify(value) : String(value)}`;
}

function sameSetting(key: string, given: unknown, stored: unknown): boolean {
  if (key === 'data' && typeof given === 'string' && typeof stored === 'string') return resolve(given) === resolve(stored);
  if (typeof given === 'object' && given !== null) return JSON.stringify(given) === JSON.stringify(stored);
  return given === stored;
}

/** Error when a setting given with --resume differs from the run's. */
export function checkResumeSettings<Config extends object>(
  stored: Config,
  given: Partial<Config>,
  describe: (key: keyof Config & string, value: unknown) => string = describeSetting,
): void {
  for (const [key, value] of Object.entries(definedEntries(given)) as [keyof Config & string, unknown][]) {
    if (!sameSetting(key, value, stored[key])) {
      throw new RunInputError(`${describe(key, value)} conflicts with the run, which has ${describe(key, stored[key])}: flags given with --resume must match the run's config.json or be left out`);
    }
  }
}

/** Settings that do not change results; a resumed run may use others. */
export interface RunRuntime {
  /** Kernel threads; null: the backend's default (every core, or PCDARTS_THREADS). */
  threads: number | null;
  /** Write a checkpoint every N steps (and at every epoch end). */
  checkpointEvery: number;
  /**
   * MiB of activations the network keeps before it recomputes them in backward (MixedOps in
   * a search, cells in training): more is faster and uses more memory; 0 recomputes all.
   */
  activationBudgetMiB: number;
  /** Image folders: decode worker threads; null: every core. */
  dataWorkers?: number | null;
  /** Image folders: batches decoded ahead of the one in use (memory: that many batches of float32 pixels). */
  prefetch?: number;
}

export const DEFAULT_RUN_RUNTIME: Readonly<RunRuntime> = Object.freeze({
  threads: null, checkpointEvery: 50, activationBudgetMiB: DEFAULT_ACTIVATION_BUDGET_BYTES / 2 ** 20, dataWorkers: null, prefetch: 2,
});

export function checkRunRuntime(runtime: RunRuntime): void {
  if (runtime.threads !== null && !(Number.isInteger(runtime.threads) && runtime.threads >= 1)) {
    throw new RunInputError(`--threads: expected an integer >= 1, got ${runtime.threads}`);
  }
  if (!(Number.isInteger(runtime.checkpointEvery) && runtime.checkpointEvery >= 1)) {
    throw new RunInputError(`--checkpoint-every: expected an integer >= 1, got ${runtime.checkpointEvery}`);
  }
  if (!(Number.isInteger(runtime.activationBudgetMiB) && runtime.activationBudgetMiB >= 0)) {
    throw new RunInputError(`--activation-budget: expected a whole number of MiB >= 0, got ${runtime.activationBudgetMiB}`);
  }
  if (runtime.dataWorkers !== undefined && runtime.dataWorkers !== null && !(Number.isInteger(runtime.dataWorkers) && runtime.dataWorkers >= 1)) {
    throw new RunInputError(`--data-workers: expected an integer >= 1, got ${runtime.dataWorkers}`);
  }
  if (runtime.prefetch !== undefined && !(Number.isInteger(runtime.prefetch) && runtime.prefetch >= 1)) {
    throw new RunInputError(`--prefetch: expected an integer >= 1 (batches), got ${runtime.prefetch}`);
  }
}

/** The decode pipeline's settings of a run. */
export function pipelineOptions(runtime: RunRuntime): PipelineOptions {
  return { workers: runtime.dataWorkers ?? undefined, prefetch: runtime.prefetch };
}
