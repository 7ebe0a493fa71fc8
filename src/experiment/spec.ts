/**
 * Experiment specs: a dataset, the search and retrain flags every trial shares, and a grid
 * (methods x K values x edge normalisation x seeds). The file is JSON:
 *
 *   {
 *     "name": "quick",
 *     "dataset": "fashion-mnist-bundled",        // and optionally "data": DIR
 *     "search": { "epochs": 4, "init-channels": 8, "no-search-subset": true },
 *     "train":  { "epochs": 4, "init-channels": 8, "no-auxiliary": true },
 *     "grid": {
 *       "methods": ["pcdarts", "darts-v1", "darts-v2", "random", { "method": "pcdarts", "k": 1 }],
 *       "k": [1, 2, 4, 8],                       // pcdarts entries without their own k
 *       "edgeNorm": [true, false],               // pcdarts entries without their own edgeNorm
 *       "seeds": [0, 1, 2]
 *     }
 *   }
 *
 * Flags are the `pcdarts search` / `pcdarts train` flags without the dashes, with JSON values
 * (`true` for a switch, `false` or null for its --no- form, a list for --search-subset). The
 * runner owns --seed, --k, --edge-norm, --order, --dataset, --data, --genotype, --out,
 * --resume and --threads. Flag names and the structure are checked here; flag values are
 * checked by each trial (a bad value fails that trial, whose error is recorded).
 */
import { readFileSync } from 'node:fs';

import { DATASET_NAMES, type DatasetName } from '../data/index.js';
import { RunInputError } from '../run/errors.js';
import { DEFAULT_SEARCH_CONFIG } from '../run/search.js';
import { DEFAULT_TRAIN_CONFIG } from '../run/train-settings.js';

export const EXPERIMENT_METHODS = ['pcdarts', 'darts-v1', 'darts-v2', 'random'] as const;
export type ExperimentMethod = (typeof EXPERIMENT_METHODS)[number];

/** A flag's value in a spec: a number, a string, a switch, a list (joined by commas), or null (the --no- form). */
export type FlagValue = number | string | boolean | null | (number | string)[];
export type FlagSet = Record<string, FlagValue>;

/** One entry of grid.methods in its full form. */
export interface MethodEntry {
  method: ExperimentMethod;
  /** Shown in reports; default: derived from the settings (e.g. "pcdarts K=4 EN"). */
  label?: string;
  /** Fixes K (else pcdarts: grid.k; darts-v1/v2: 1). */
  k?: number;
  /** Fixes edge normalisation (else pcdarts: grid.edgeNorm; darts-v1/v2: off). */
  edgeNorm?: boolean;
  /** Flags of this entry's searches, over the shared ones. */
  search?: FlagSet;
  /** Flags of this entry's retrainings, over the shared ones. */
  train?: FlagSet;
}

export interface ExperimentGrid {
  methods: MethodEntry[];
  k: number[];
  edgeNorm: boolean[];
  seeds: number[];
}

export interface ExperimentSpec {
  name: string;
  description?: string;
  dataset: DatasetName;
  data: string | null;
  search: FlagSet;
  train: FlagSet;
  grid: ExperimentGrid;
  /** Free-form reference numbers (e.g. the paper's), shown beside the results in reports. */
  reference?: unknown;
  /** The file it was read from, when it was. */
  source?: string;
}

/** Flags the runner sets itself; a spec may not. */
const RUNNER_FLAGS = ['seed', 'k', 'edge-norm', 'no-edge-norm', 'order', 'dataset', 'data', 'genotype', 'out', 'resume', 'threads', 'help'];

/** Runtime flags both commands have. */
const RUNTIME_FLAGS = ['activation-budget', 'checkpoint-every', 'data-workers', 'prefetch'];

const kebab = (key: string): string => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** Flag names (without dashes) a command accepts, with the --no- forms of switches and optional settings. */
function knownFlags(config: Record<string, unknown>, extra: string[], noForms: string[]): Set<string> {
  const names = new Set<string>([...Object.keys(config).map(kebab), ...RUNTIME_FLAGS, ...extra, ...noForms.map((n) => `no-${n}`)]);
  for (const [key, value] of Object.entries(config)) if (typeof value === 'boolean') names.add(`no-${kebab(key)}`);
  for (const name of RUNNER_FLAGS) names.delete(name);
  return names;
}

export const SEARCH_FLAGS: ReadonlySet<string> = knownFlags(DEFAULT_SEARCH_CONFIG as unknown as Record<string, unknown>, [], ['arch-grad-clip', 'search-subset']);
export const TRAIN_FLAGS: ReadonlySet<string> = knownFlags(
  Object.fromEntries(Object.entries(DEFAULT_TRAIN_CONFIG).filter(([key]) => key !== 'genotype')), ['nodes'], [],
);

function fail(file: string, key: string, problem: string): never {
  throw new RunInputError(`${file}: ${key}: ${problem}`);
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

function checkKeys(file: string, where: string, value: Record<string, unknown>, allowed: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) fail(file, where === '' ? key : `${where}.${key}`, `unknown key (expected ${allowed.join(', ')})`);
  }
}

function checkFlags(file: string, where: string, value: unknown, known: ReadonlySet<string>, command: string): FlagSet {
  if (value === undefined) return {};
  if (!isObject(value)) fail(file, where, `expected an object of ${command} flags, e.g. {"epochs": 4}`);
  const out: FlagSet = {};
  for (const [rawName, flag] of Object.entries(value)) {
    const name = rawName.replace(/^--/, '');
    const key = `${where}.${rawName}`;
    if (RUNNER_FLAGS.includes(name)) fail(file, key, `set by the experiment runner for every trial (use the grid for seeds, K, edge normalisation and methods, the top-level "dataset" and "data" for the data)`);
    if (!known.has(name)) fail(file, key, `not a flag of pcdarts ${command}`);
    const ok = flag === null || typeof flag === 'boolean' || typeof flag === 'string' || (typeof flag === 'number' && Number.isFinite(flag))
      || (Array.isArray(flag) && flag.length > 0 && flag.every((v) => typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v))));
    if (!ok) fail(file, key, `expected a number, a string, true/false, null or a list, got ${JSON.stringify(flag)}`);
    if (name.startsWith('no-') && flag !== true) fail(file, key, `a --no- switch takes true, got ${JSON.stringify(flag)}`);
    out[name] = flag as FlagValue;
  }
  return out;
}

function integerList(file: string, key: string, value: unknown, min: number, fallback: number[]): number[] {
  if (value === undefined) return fallback;
  if (!Array.isArray(value) || value.length === 0 || !value.every((v) => Number.isInteger(v) && v >= min)) {
    fail(file, key, `expected a non-empty list of integers >= ${min}, got ${JSON.stringify(value)}`);
  }
  if (new Set(value).size !== value.length) fail(file, key, `lists a value twice: ${JSON.stringify(value)}`);
  return value as number[];
}

function methodEntry(file: string, key: string, value: unknown): MethodEntry {
  const known = (m: unknown): m is ExperimentMethod => (EXPERIMENT_METHODS as readonly unknown[]).includes(m);
  if (typeof value === 'string') {
    if (!known(value)) fail(file, key, `unknown method ${JSON.stringify(value)} (expected ${EXPERIMENT_METHODS.join(', ')})`);
    return { method: value };
  }
  if (!isObject(value)) fail(file, key, `expected a method name (${EXPERIMENT_METHODS.join(', ')}) or an object {"method": ..., "k"?, "edgeNorm"?, "label"?, "search"?, "train"?}`);
  checkKeys(file, key, value, ['method', 'label', 'k', 'edgeNorm', 'search', 'train']);
  if (!known(value.method)) fail(file, `${key}.method`, `expected one of ${EXPERIMENT_METHODS.join(', ')}, got ${JSON.stringify(value.method)}`);
  const entry: MethodEntry = { method: value.method };
  if (value.label !== undefined) {
    if (typeof value.label !== 'string' || value.label === '') fail(file, `${key}.label`, 'expected a non-empty string');
    entry.label = value.label;
  }
  if (value.k !== undefined) {
    if (!(Number.isInteger(value.k) && (value.k as number) >= 1)) fail(file, `${key}.k`, `expected an integer >= 1, got ${JSON.stringify(value.k)}`);
    entry.k = value.k as number;
  }
  if (value.edgeNorm !== undefined) {
    if (typeof value.edgeNorm !== 'boolean') fail(file, `${key}.edgeNorm`, `expected true or false, got ${JSON.stringify(value.edgeNorm)}`);
    entry.edgeNorm = value.edgeNorm;
  }
  if (entry.method === 'random' && (entry.k !== undefined || entry.edgeNorm !== undefined)) {
    fail(file, key, 'a random method has no search, so no k or edgeNorm');
  }
  if (value.search !== undefined) {
    if (entry.method === 'random') fail(file, `${key}.search`, 'a random method has no search');
    entry.search = checkFlags(file, `${key}.search`, value.search, SEARCH_FLAGS, 'search');
  }
  if (value.train !== undefined) entry.train = checkFlags(file, `${key}.train`, value.train, TRAIN_FLAGS, 'train');
  return entry;
}

/** Checks a parsed spec; `file` names it in errors. */
export function validateSpec(value: unknown, file = 'spec'): ExperimentSpec {
  if (!isObject(value)) fail(file, '(top level)', 'expected a JSON object with name, dataset, search, train and grid');
  checkKeys(file, '', value, ['name', 'description', 'dataset', 'data', 'search', 'train', 'grid', 'reference', '$comment']);
  if (typeof value.name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(value.name)) {
    fail(file, 'name', `expected a name of letters, digits, '.', '_' or '-', got ${JSON.stringify(value.name)}`);
  }
  if (value.description !== undefined && typeof value.description !== 'string') fail(file, 'description', 'expected a string');
  if (!(DATASET_NAMES as readonly unknown[]).includes(value.dataset)) {
    fail(file, 'dataset', `expected one of ${DATASET_NAMES.join(', ')}, got ${JSON.stringify(value.dataset)}`);
  }
  if (value.data !== undefined && value.data !== null && (typeof value.data !== 'string' || value.data === '')) fail(file, 'data', 'expected a directory (a string) or null');
  const search = checkFlags(file, 'search', value.search, SEARCH_FLAGS, 'search');
  const train = checkFlags(file, 'train', value.train, TRAIN_FLAGS, 'train');
  if (!isObject(value.grid)) fail(file, 'grid', 'expected an object {"methods": [...], "k"?: [...], "edgeNorm"?: [...], "seeds": [...]}');
  const grid = value.grid;
  checkKeys(file, 'grid', grid, ['methods', 'k', 'edgeNorm', 'seeds']);
  if (!Array.isArray(grid.methods) || grid.methods.length === 0) fail(file, 'grid.methods', `expected a non-empty list of methods (${EXPERIMENT_METHODS.join(', ')})`);
  const methods = grid.methods.map((m, i) => methodEntry(file, `grid.methods[${i}]`, m));
  const k = integerList(file, 'grid.k', grid.k, 1, [DEFAULT_SEARCH_CONFIG.k]);
  let edgeNorm = [true];
  if (grid.edgeNorm !== undefined) {
    if (!Array.isArray(grid.edgeNorm) || grid.edgeNorm.length === 0 || !grid.edgeNorm.every((v) => typeof v === 'boolean') || new Set(grid.edgeNorm).size !== grid.edgeNorm.length) {
      fail(file, 'grid.edgeNorm', `expected a list of distinct true/false values, got ${JSON.stringify(grid.edgeNorm)}`);
    }
    edgeNorm = grid.edgeNorm as boolean[];
  }
  if (grid.seeds === undefined) fail(file, 'grid.seeds', 'missing: expected a non-empty list of integers >= 0');
  const seeds = integerList(file, 'grid.seeds', grid.seeds, 0, []);
  const spec: ExperimentSpec = {
    name: value.name, dataset: value.dataset as DatasetName, data: (value.data as string | null | undefined) ?? null, search, train,
    grid: { methods, k, edgeNorm, seeds },
  };
  if (value.description !== undefined) spec.description = value.description as string;
  if (value.reference !== undefined) spec.reference = value.reference;
  spec.source = file;
  return spec;
}

/** Reads and checks a spec file; a bad one is a RunInputError naming the file and the key. */
export function loadSpec(file: string): ExperimentSpec {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new RunInputError(`${file}: ${code === 'ENOENT' ? 'no such spec file' : code === 'EISDIR' ? 'is a directory, expected a spec file (JSON)' : `cannot be read (${code ?? (error as Error).message})`}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new RunInputError(`${file}: not valid JSON (${(error as Error).message})`);
  }
  return validateSpec(value, file);
}
