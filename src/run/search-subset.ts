/**
 * Per-class samples of a search's training set (spec section 6, the ImageNet search: 10 % of
 * every class trains the weights, 2.5 % the architecture). The authors never released their
 * sample; this one is disjoint, drawn from a generator seeded with the run's seed, and written
 * to the run directory (search-subset.json) with every chosen item, so that it can be audited
 * and reused by another run (`--search-subset-from RUN_DIR`). Works on any labelled dataset:
 * items are named by their file (relative to train/) when the dataset has names, by their
 * index otherwise.
 *
 * Per class c with n images (in dataset order): a generator permutation of them; the first
 * w = round(f_w n) train the weights, the next a = round(f_a n) the architecture, with at
 * least one in each when the class has two or more images (w + a never exceeds n). Each
 * sample is then listed in dataset order.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { Random } from '../tensor/random.js';
import { RunInputError } from './errors.js';

/** The file a search run directory records its sample in. */
export const SEARCH_SUBSET_FILE = 'search-subset.json';

/** Fractions of every class: [weights, architecture]. */
export type SearchSubsetFractions = readonly [number, number];

/** The ImageNet search's sample (spec section 6). */
export const IMAGENET_SEARCH_SUBSET: SearchSubsetFractions = Object.freeze([0.1, 0.025]) as SearchSubsetFractions;

/** What sampling needs of a dataset: labels, and item names where the dataset has them. */
export interface LabelledItems {
  readonly name: string;
  readonly count: number;
  readonly labels: ArrayLike<number>;
  readonly classes: number;
  /** A stable name per item (a file path relative to the split's folder), for file-backed datasets. */
  readonly itemNames?: readonly string[];
}

/** The two samples, each as ascending dataset indices. */
export interface SearchSubset {
  readonly weights: Int32Array;
  readonly arch: Int32Array;
}

/** One sample as written to search-subset.json: indices, their labels, and names when the dataset has them. */
export interface SubsetItems {
  indices: number[];
  labels: number[];
  names?: string[];
}

/** search-subset.json. */
export interface SearchSubsetRecord {
  pcdarts_search_subset: 1;
  dataset: string;
  /** Training images the sample was drawn from. */
  train_images: number;
  classes: number;
  fractions: [number, number];
  /** The seed of the generator that drew it. */
  seed: number;
  /** Where it was reused from (a search-subset.json path), or null when drawn by this run. */
  reused_from: string | null;
  /** Per class: [weights, architecture] counts. */
  per_class: [number, number][];
  weights: SubsetItems;
  arch: SubsetItems;
}

/** Checks `--search-subset`: two fractions in (0, 1] that sum to at most 1. */
export function checkSubsetFractions(value: unknown, flag = '--search-subset'): SearchSubsetFractions {
  const ok = Array.isArray(value) && value.length === 2 && value.every((v) => typeof v === 'number' && Number.isFinite(v) && v > 0 && v <= 1);
  if (!ok) throw new RunInputError(`${flag}: expected two fractions in (0, 1] as WEIGHTS,ARCH (e.g. 0.1,0.025), got ${JSON.stringify(value)}`);
  const [w, a] = value as [number, number];
  if (w + a > 1 + 1e-12) throw new RunInputError(`${flag}: the fractions ${w} and ${a} sum to more than 1 (the two samples are disjoint)`);
  return [w, a];
}

/** "0.1,0.025" -> [0.1, 0.025] (what the CLI passes on). */
export function parseSubsetFractions(text: string): [number, number] {
  const parts = text.split(',').map((p) => p.trim());
  const values = parts.map(Number);
  if (parts.length !== 2 || parts.some((p) => p === '') || values.some((v) => !Number.isFinite(v))) {
    throw new RunInputError(`--search-subset: expected WEIGHTS,ARCH fractions (e.g. 0.1,0.025), got ${JSON.stringify(text)}`);
  }
  return [values[0], values[1]];
}

/** Images of each class, in dataset order. */
function indicesByClass(items: LabelledItems): Int32Array[] {
  const counts = new Int32Array(items.classes);
  for (let i = 0; i < items.count; i++) {
    const label = items.labels[i];
    if (!(Number.isInteger(label) && label >= 0 && label < items.classes)) {
      throw new RunInputError(`${items.name}: item ${i} has label ${label}, expected 0..${items.classes - 1}`);
    }
    counts[label]++;
  }
  const byClass = Array.from(counts, (n) => new Int32Array(n));
  const filled = new Int32Array(items.classes);
  for (let i = 0; i < items.count; i++) {
    const label = items.labels[i];
    byClass[label][filled[label]++] = i;
  }
  return byClass;
}

/** [weights, architecture] counts of a class of n images. */
export function classSampleCounts(n: number, fractions: SearchSubsetFractions): [number, number] {
  let w = Math.round(fractions[0] * n);
  let a = Math.round(fractions[1] * n);
  if (n >= 2) {
    w = Math.max(w, 1);
    a = Math.max(a, 1);
  }
  w = Math.min(w, n);
  a = Math.min(a, n - w);
  return [w, a];
}

/** Draws the two disjoint per-class samples (deterministic in the seed; see the module comment). */
export function sampleSearchSubset(items: LabelledItems, fractions: SearchSubsetFractions, seed: number): SearchSubset & { perClass: [number, number][] } {
  const random = new Random(seed);
  const weights: number[] = [];
  const arch: number[] = [];
  const perClass: [number, number][] = [];
  for (const members of indicesByClass(items)) {
    const order = Int32Array.from(members);
    random.shuffle(order);
    const [w, a] = classSampleCounts(order.length, fractions);
    for (let i = 0; i < w; i++) weights.push(order[i]);
    for (let i = w; i < w + a; i++) arch.push(order[i]);
    perClass.push([w, a]);
  }
  const ascending = (values: number[]): Int32Array => Int32Array.from(values).sort();
  return { weights: ascending(weights), arch: ascending(arch), perClass };
}

function describeItems(items: LabelledItems, indices: Int32Array): SubsetItems {
  const out: SubsetItems = { indices: Array.from(indices), labels: Array.from(indices, (i) => items.labels[i]) };
  if (items.itemNames !== undefined) out.names = Array.from(indices, (i) => items.itemNames![i]);
  return out;
}

/** The record of a sample, as search-subset.json holds it. */
export function subsetRecord(
  items: LabelledItems, subset: SearchSubset, fractions: SearchSubsetFractions, seed: number, reusedFrom: string | null,
): SearchSubsetRecord {
  const perClass = Array.from({ length: items.classes }, () => [0, 0] as [number, number]);
  for (const i of subset.weights) perClass[items.labels[i]][0]++;
  for (const i of subset.arch) perClass[items.labels[i]][1]++;
  return {
    pcdarts_search_subset: 1, dataset: items.name, train_images: items.count, classes: items.classes,
    fractions: [fractions[0], fractions[1]], seed, reused_from: reusedFrom, per_class: perClass,
    weights: describeItems(items, subset.weights), arch: describeItems(items, subset.arch),
  };
}

/** The search-subset.json of a run directory (or the file itself); every problem is a one-line RunInputError. */
export function readSubsetRecord(path: string, flag = '--search-subset-from'): { record: SearchSubsetRecord; file: string } {
  if (!existsSync(path)) throw new RunInputError(`${flag} ${path}: no such run directory or file`);
  const file = statSync(path).isDirectory() ? join(path, SEARCH_SUBSET_FILE) : path;
  if (!existsSync(file)) throw new RunInputError(`${flag} ${path}: no ${SEARCH_SUBSET_FILE}: expected a search run directory made with --search-subset`);
  let record: SearchSubsetRecord;
  try {
    record = JSON.parse(readFileSync(file, 'utf8')) as SearchSubsetRecord;
  } catch (error) {
    throw new RunInputError(`${file}: not valid JSON (${(error as Error).message.split('\n')[0]})`);
  }
  const bad = (what: string): never => { throw new RunInputError(`${file}: ${what}`); };
  if (record === null || typeof record !== 'object' || record.pcdarts_search_subset !== 1) bad('not a pcdarts search-subset record (expected "pcdarts_search_subset": 1)');
  checkSubsetFractions(record.fractions, `${file}: fractions`);
  for (const half of ['weights', 'arch'] as const) {
    const items = record[half];
    const n = items?.indices?.length;
    if (!Array.isArray(items?.indices) || !Array.isArray(items?.labels) || items.labels.length !== n
      || (items.names !== undefined && (!Array.isArray(items.names) || items.names.length !== n))) {
      bad(`"${half}" must hold "indices" and "labels" (and optionally "names") of equal length`);
    }
    if (!items.indices.every((i) => Number.isInteger(i) && i >= 0)) bad(`"${half}.indices" must be non-negative integers`);
    if (n === 0) bad(`the "${half}" sample is empty`);
  }
  return { record, file };
}

/**
 * The record's sample in `items`: by name when both have names (the folder may have gained
 * or reordered files), else by index (the dataset must have the same size). Every item must
 * still be there with the same label, and the two samples must stay disjoint.
 */
export function subsetFromRecord(items: LabelledItems, record: SearchSubsetRecord, file: string): SearchSubset {
  const byName = record.weights.names !== undefined && record.arch.names !== undefined && items.itemNames !== undefined;
  let position: ((half: SubsetItems, k: number) => number);
  if (byName) {
    const index = new Map<string, number>();
    items.itemNames!.forEach((name, i) => index.set(name, i));
    position = (half, k) => {
      const found = index.get(half.names![k]);
      if (found === undefined) throw new RunInputError(`${file}: '${half.names![k]}' is not in ${items.name}'s training images`);
      return found;
    };
  } else {
    if (record.train_images !== items.count) {
      throw new RunInputError(`${file}: drawn from ${record.train_images} training images, ${items.name} has ${items.count} (a sample without file names is matched by index)`);
    }
    position = (half, k) => {
      const i = half.indices[k];
      if (i >= items.count) throw new RunInputError(`${file}: index ${i} is beyond ${items.name}'s ${items.count} training images`);
      return i;
    };
  }
  const seen = new Set<number>();
  const resolveHalf = (half: SubsetItems): Int32Array => {
    const out = new Int32Array(half.indices.length);
    for (let k = 0; k < out.length; k++) {
      const i = position(half, k);
      const what = byName ? `'${half.names![k]}'` : `item ${i}`;
      if (items.labels[i] !== half.labels[k]) {
        throw new RunInputError(`${file}: ${what} has label ${items.labels[i]} in ${items.name}, the sample recorded ${half.labels[k]}`);
      }
      if (seen.has(i)) throw new RunInputError(`${file}: ${what} is listed twice (the samples must be disjoint)`);
      seen.add(i);
      out[k] = i;
    }
    return out.sort();
  };
  return { weights: resolveHalf(record.weights), arch: resolveHalf(record.arch) };
}
