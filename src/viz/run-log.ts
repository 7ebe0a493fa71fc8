/**
 * Reading a run directory for reports: config.json, log.jsonl (step, epoch and test records),
 * genotype.json, genotypes.jsonl. Tolerant by design: a run killed mid-write leaves a
 * truncated last line, older or newer writers shape alphas/betas/skip counts a little
 * differently; every line that is skipped or partly ignored is listed in `issues` with its
 * line number, and the report shows them.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { edgeCount, nodeFirstEdge, stepsForEdgeCount, validateGenotype, type Genotype } from '../darts/genotype.js';
import { nodeSoftmax, softmaxRows } from '../darts/genotype-derive.js';
import { loadGenotype } from '../darts/genotype-load.js';
import { PRIMITIVES } from '../darts/primitives.js';
import type { CellType } from './cell-graph.js';

export interface StepRecord {
  epoch: number;
  step: number;
  lr?: number;
  loss?: number;
  acc?: number;
  archLoss?: number;
  imagesPerSecond?: number;
}

/** Per cell type: one row of 8 weights per edge. */
export type CellMatrices = Record<CellType, number[][]>;
/** Per cell type: one weight per edge. */
export type CellVectors = Record<CellType, number[]>;

export interface EpochRecord {
  epoch: number;
  trainLoss?: number;
  trainAcc?: number;
  validLoss?: number;
  validAcc?: number;
  testLoss?: number;
  testAcc?: number;
  lr?: number;
  seconds?: number;
  /** softmax(alpha) per edge row (softmaxed here when the log holds raw alphas). */
  alphaWeights?: CellMatrices;
  /** beta_w, normalised over each node's inputs (softmaxed here when the log holds raw betas). */
  betaWeights?: CellVectors;
  /** W = softmax(alpha) * beta_w (spec section 5); softmax(alpha) alone without betas. */
  edgeWeights?: CellMatrices;
  genotype?: Genotype;
  /** skip_connect count per cell type, or `total`: a number as logged where no genotype explains it. */
  skipConnects?: Partial<Record<CellType, number>> & { total?: number };
}

export interface TestRecord {
  top1?: number;
  top5?: number;
  loss?: number;
}

/** A log line that was skipped (`skipped`), or of which a part was ignored. */
export interface LogIssue {
  file: string;
  /** 1-based line number. */
  line: number;
  message: string;
  skipped: boolean;
}

export interface RunRecord {
  dir: string;
  config?: Record<string, unknown>;
  /** 'search' when epoch records carry architecture weights, else 'train'. */
  kind: 'search' | 'train';
  steps: StepRecord[];
  epochs: EpochRecord[];
  test?: TestRecord;
  /** The final genotype: genotype.json, else the last epoch's, else the config's. */
  genotype?: Genotype;
  genotypeSource?: string;
  issues: LogIssue[];
  /** Number of log.jsonl lines that were read (blank lines excluded). */
  logLines: number;
}

/** The run's settings: config.json's `config` (as src/run writes it), else config.json itself (older or hand-written runs). */
export function runSettings(run: RunRecord): Record<string, unknown> {
  const file = run.config ?? {};
  return isObject(file['config']) ? file['config'] : file;
}

/** config.json's `info` (dataset facts, parameters and mult-adds of a training run); empty when absent. */
export function runInfo(run: RunRecord): Record<string, unknown> {
  const file = run.config ?? {};
  return isObject(file['info']) ? file['info'] : {};
}

/** Thrown for a directory that is missing or holds no run: the CLI turns it into exit code 2. */
export class RunDirectoryError extends Error {}

// ---------------------------------------------------------------------------------------
// small validators

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function finite(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

/** First finite number among the given keys of `record`. */
function pick(record: Json, ...keys: string[]): number | undefined {
  for (const key of keys) {
    const value = finite(record[key]);
    if (value !== undefined) return value;
  }
  return undefined;
}

function isNumberArray(value: unknown): value is number[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'number' && Number.isFinite(v));
}

/** A per-cell value given as {normal, reduce}, [normal, reduce], or normal_/reduce_ keys. */
function perCell(record: Json, key: string): Record<CellType, unknown> | undefined {
  const value = record[key];
  if (isObject(value) && 'normal' in value && 'reduce' in value) return { normal: value['normal'], reduce: value['reduce'] };
  // [normal, reduce]: two matrices/vectors, or two counts
  if (Array.isArray(value) && value.length === 2 && (value.every(Array.isArray) || value.every((v) => typeof v === 'number'))) {
    return { normal: value[0], reduce: value[1] };
  }
  const singular = key.replace(/s$/, '');
  for (const prefix of [key, singular]) {
    const normal = record[`${prefix}_normal`];
    const reduce = record[`${prefix}_reduce`];
    if (normal !== undefined && reduce !== undefined) return { normal, reduce };
  }
  return undefined;
}

/** Rows of 8 from a nested (rows) or flat matrix; throws with a short reason otherwise. */
function matrixRows(value: unknown): number[][] {
  if (isNumberArray(value)) {
    if (value.length === 0 || value.length % PRIMITIVES.length !== 0) {
      throw new Error(`${value.length} values is not a whole number of rows of ${PRIMITIVES.length}`);
    }
    const rows: number[][] = [];
    for (let k = 0; k < value.length; k += PRIMITIVES.length) rows.push(value.slice(k, k + PRIMITIVES.length));
    return rows;
  }
  if (Array.isArray(value) && value.length > 0 && value.every((row) => isNumberArray(row) && row.length === PRIMITIVES.length)) {
    return value as number[][];
  }
  throw new Error(`expected one row of ${PRIMITIVES.length} numbers per edge`);
}

/** Betas flat (one per edge) or nested per node ([[b, b], [b, b, b], ...]). */
function betaVector(value: unknown): number[] {
  if (isNumberArray(value)) return value;
  if (Array.isArray(value) && value.every((node) => isNumberArray(node))) return (value as number[][]).flat();
  throw new Error('expected one number per edge');
}

const SUMS_TO_ONE = 1e-3;

function isDistribution(values: readonly number[]): boolean {
  const sum = values.reduce((s, v) => s + v, 0);
  return values.every((v) => v >= 0) && Math.abs(sum - 1) < SUMS_TO_ONE;
}

/**
 * softmax(alpha) rows: the spec has the log hold the softmaxed alphas (section 6), but a raw
 * log (rows not summing to 1) is softmaxed here, as the search does.
 */
function alphaWeightsOf(rows: number[][]): number[][] {
  if (rows.every((row) => isDistribution(row))) return rows;
  return softmaxRows(rows).map((row) => Array.from(row));
}

/** beta_w: already normalised per node, or raw betas normalised here (spec section 3). */
function betaWeightsOf(betas: number[], steps: number): number[] {
  if (betas.length !== edgeCount(steps)) {
    throw new Error(`expected ${edgeCount(steps)} values for ${steps} nodes, got ${betas.length}`);
  }
  const normalised = Array.from({ length: steps }, (_, node) =>
    betas.slice(nodeFirstEdge(node), nodeFirstEdge(node) + node + 2),
  ).every((slice) => isDistribution(slice));
  return normalised ? betas : Array.from(nodeSoftmax(betas, steps));
}

function countSkipConnects(genotype: Genotype, cell: CellType): number {
  return genotype[cell].filter(([op]) => op === 'skip_connect').length;
}

// ---------------------------------------------------------------------------------------
// records

interface Context {
  file: string;
  line: number;
  issues: LogIssue[];
}

function note(context: Context, message: string): void {
  context.issues.push({ file: context.file, line: context.line, message, skipped: false });
}

function readStep(record: Json): StepRecord | string {
  const epoch = finite(record['epoch']);
  const step = finite(record['step']);
  if (epoch === undefined || step === undefined) return 'a step record without a numeric epoch and step';
  const result: StepRecord = { epoch, step };
  const fields: [keyof StepRecord, string[]][] = [
    ['lr', ['lr']],
    ['loss', ['loss', 'train_loss']],
    ['acc', ['acc', 'train_acc']],
    ['archLoss', ['arch_loss']],
    ['imagesPerSecond', ['images_per_s', 'images_per_second']],
  ];
  for (const [field, keys] of fields) {
    const value = pick(record, ...keys);
    if (value !== undefined) result[field] = value;
  }
  return result;
}

function readArchitecture(record: Json, result: EpochRecord, context: Context): void {
  const alphas = perCell(record, 'alphas');
  if (alphas === undefined) {
    if (record['alphas'] !== undefined) note(context, 'alphas ignored: expected {normal, reduce} or [normal, reduce]');
    return;
  }
  let alphaWeights: CellMatrices;
  let steps: number;
  try {
    alphaWeights = { normal: alphaWeightsOf(matrixRows(alphas.normal)), reduce: alphaWeightsOf(matrixRows(alphas.reduce)) };
    steps = stepsForEdgeCount(alphaWeights.normal.length, 'alphas.normal');
    if (alphaWeights.reduce.length !== alphaWeights.normal.length) {
      throw new Error(`${alphaWeights.normal.length} normal edges but ${alphaWeights.reduce.length} reduce edges`);
    }
  } catch (error) {
    note(context, `alphas ignored: ${(error as Error).message}`);
    return;
  }
  result.alphaWeights = alphaWeights;
  result.edgeWeights = alphaWeights;
  const betas = perCell(record, 'betas');
  if (betas === undefined) return;
  try {
    const betaWeights = {
      normal: betaWeightsOf(betaVector(betas.normal), steps),
      reduce: betaWeightsOf(betaVector(betas.reduce), steps),
    };
    result.betaWeights = betaWeights;
    result.edgeWeights = {
      normal: alphaWeights.normal.map((row, e) => row.map((w) => Math.fround(w * betaWeights.normal[e]!))),
      reduce: alphaWeights.reduce.map((row, e) => row.map((w) => Math.fround(w * betaWeights.reduce[e]!))),
    };
  } catch (error) {
    note(context, `betas ignored: ${(error as Error).message}`);
  }
}

function readEpoch(record: Json, context: Context): EpochRecord | string {
  const epoch = finite(record['epoch']);
  if (epoch === undefined) return 'an epoch record without a numeric epoch';
  const result: EpochRecord = { epoch };
  const fields: [keyof EpochRecord, string[]][] = [
    ['trainLoss', ['train_loss']],
    ['trainAcc', ['train_acc']],
    ['validLoss', ['valid_loss']],
    ['validAcc', ['valid_acc']],
    ['testLoss', ['test_loss']],
    ['testAcc', ['test_acc']],
    ['lr', ['lr']],
    ['seconds', ['seconds']],
  ];
  for (const [field, keys] of fields) {
    const value = pick(record, ...keys);
    if (value !== undefined) (result[field] as number) = value;
  }
  readArchitecture(record, result, context);
  if (record['genotype'] !== undefined) {
    try {
      result.genotype = validateGenotype(record['genotype']);
    } catch (error) {
      note(context, `genotype ignored: ${(error as Error).message}`);
    }
  }
  const skips = record['skip_connects'];
  if (typeof skips === 'number') {
    result.skipConnects = { total: skips };
  } else if (skips !== undefined) {
    const cells = perCell(record, 'skip_connects');
    if (cells !== undefined && typeof cells.normal === 'number' && typeof cells.reduce === 'number') {
      result.skipConnects = { normal: cells.normal, reduce: cells.reduce };
    } else {
      note(context, 'skip_connects ignored: expected a number or {normal, reduce}');
    }
  }
  // Per cell from the genotype where the log gives none or one number that agrees with it
  // (the normal cell's count, as src/run logs it, or both cells' sum).
  const genotype = result.genotype;
  if (genotype !== undefined && (result.skipConnects === undefined || result.skipConnects.normal === undefined)) {
    const counts = { normal: countSkipConnects(genotype, 'normal'), reduce: countSkipConnects(genotype, 'reduce') };
    const logged = result.skipConnects?.total;
    if (logged === undefined || logged === counts.normal || logged === counts.normal + counts.reduce) result.skipConnects = counts;
  }
  return result;
}

function readTest(record: Json): TestRecord {
  const result: TestRecord = {};
  const top1 = pick(record, 'top1', 'test_acc', 'acc');
  const top5 = pick(record, 'top5');
  const loss = pick(record, 'loss', 'test_loss');
  if (top1 !== undefined) result.top1 = top1;
  if (top5 !== undefined) result.top5 = top5;
  if (loss !== undefined) result.loss = loss;
  return result;
}

/** Splits a JSON-lines text into parsed objects and issues for the lines that are not. */
function readJsonLines(text: string, file: string, issues: LogIssue[]): { line: number; record: Json }[] {
  const lines = text.split('\n');
  const records: { line: number; record: Json }[] = [];
  lines.forEach((raw, k) => {
    if (raw.trim() === '') return;
    const line = k + 1;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (error) {
      const last = k === lines.length - 1 || lines.slice(k + 1).every((rest) => rest.trim() === '');
      const reason = last && !text.endsWith('\n') ? 'truncated (the run was probably stopped mid-write)' : 'invalid JSON';
      issues.push({ file, line, message: `${reason}: ${(error as Error).message}`, skipped: true });
      return;
    }
    if (!isObject(value)) {
      issues.push({ file, line, message: 'not a JSON object', skipped: true });
      return;
    }
    records.push({ line, record: value });
  });
  return records;
}

function readJsonFile(path: string, issues: LogIssue[]): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    issues.push({ file: path, line: 0, message: `not read: ${(error as Error).message}`, skipped: true });
    return undefined;
  }
}

/**
 * Reads a run directory. Throws RunDirectoryError when `dir` is missing or holds none of
 * log.jsonl and genotype.json; anything else that is wrong becomes an entry of `issues`.
 */
export function readRunDirectory(dir: string): RunRecord {
  let isDirectory = false;
  try {
    isDirectory = statSync(dir).isDirectory();
  } catch {
    throw new RunDirectoryError(`run directory '${dir}': no such directory`);
  }
  if (!isDirectory) throw new RunDirectoryError(`run directory '${dir}': not a directory`);
  const logPath = join(dir, 'log.jsonl');
  const genotypePath = join(dir, 'genotype.json');
  if (!existsSync(logPath) && !existsSync(genotypePath)) {
    throw new RunDirectoryError(`run directory '${dir}': neither log.jsonl nor genotype.json found: not a run directory`);
  }
  const issues: LogIssue[] = [];
  const run: RunRecord = { dir, kind: 'train', steps: [], epochs: [], issues, logLines: 0 };

  const configPath = join(dir, 'config.json');
  if (existsSync(configPath)) {
    const config = readJsonFile(configPath, issues);
    if (isObject(config)) run.config = config;
    else if (config !== undefined) issues.push({ file: configPath, line: 0, message: 'not a JSON object', skipped: true });
  }

  if (existsSync(logPath)) {
    const records = readJsonLines(readFileSync(logPath, 'utf8'), 'log.jsonl', issues);
    run.logLines = records.length + issues.filter((i) => i.file === 'log.jsonl').length;
    for (const { line, record } of records) {
      const context: Context = { file: 'log.jsonl', line, issues };
      const type = record['type'];
      if (type === 'step') {
        const step = readStep(record);
        if (typeof step === 'string') issues.push({ file: 'log.jsonl', line, message: step, skipped: true });
        else run.steps.push(step);
      } else if (type === 'epoch') {
        const epoch = readEpoch(record, context);
        if (typeof epoch === 'string') issues.push({ file: 'log.jsonl', line, message: epoch, skipped: true });
        else run.epochs.push(epoch);
      } else if (type === 'test') {
        run.test = readTest(record);
      }
      // other record types (a writer's start/end markers, say) carry nothing to draw
    }
  }
  if (run.epochs.some((epoch) => epoch.alphaWeights !== undefined)) run.kind = 'search';

  // genotypes per epoch from genotypes.jsonl where the epoch records carry none
  const genotypesPath = join(dir, 'genotypes.jsonl');
  if (existsSync(genotypesPath) && !run.epochs.some((epoch) => epoch.genotype !== undefined)) {
    readGenotypeHistory(readFileSync(genotypesPath, 'utf8'), run, issues);
  }

  if (existsSync(genotypePath)) {
    const value = readJsonFile(genotypePath, issues);
    if (value !== undefined) {
      try {
        const genotype = isObject(value) && !('normal' in value) && 'genotype' in value ? value['genotype'] : value;
        run.genotype = validateGenotype(genotype, { source: 'genotype.json' });
        run.genotypeSource = 'genotype.json';
      } catch (error) {
        issues.push({ file: 'genotype.json', line: 0, message: (error as Error).message, skipped: true });
      }
    }
  }
  if (run.genotype === undefined) {
    const last = [...run.epochs].reverse().find((epoch) => epoch.genotype !== undefined);
    if (last !== undefined) {
      run.genotype = last.genotype!;
      run.genotypeSource = `log.jsonl, epoch ${last.epoch}`;
    }
  }
  if (run.genotype === undefined && run.config !== undefined && isObject(run.config['genotype'])) {
    try {
      run.genotype = validateGenotype(run.config['genotype'], { source: 'config.json' });
      run.genotypeSource = 'config.json';
    } catch {
      // a config's genotype in another form (a name, a path) is shown as config text only
    }
  }
  return run;
}

function readGenotypeHistory(text: string, run: RunRecord, issues: LogIssue[]): void {
  const byEpoch = new Map(run.epochs.map((epoch) => [epoch.epoch, epoch]));
  readJsonLines(text, 'genotypes.jsonl', issues).forEach(({ line, record }, k) => {
    const epochNumber = finite(record['epoch']) ?? k;
    try {
      const genotype = validateGenotype('normal' in record ? record : record['genotype']);
      const epoch = byEpoch.get(epochNumber);
      if (epoch !== undefined) {
        epoch.genotype = genotype;
      } else {
        const added: EpochRecord = { epoch: epochNumber, genotype };
        run.epochs.push(added);
        byEpoch.set(epochNumber, added);
      }
      const target = byEpoch.get(epochNumber)!;
      target.skipConnects ??= { normal: countSkipConnects(genotype, 'normal'), reduce: countSkipConnects(genotype, 'reduce') };
    } catch (error) {
      issues.push({ file: 'genotypes.jsonl', line, message: (error as Error).message, skipped: true });
    }
  });
  run.epochs.sort((a, b) => a.epoch - b.epoch);
}

/**
 * The genotype named by a command-line argument: what `loadGenotype` accepts (a published
 * name, a genotype file, a run directory with genotype.json), and also a run directory
 * without genotype.json whose log holds epoch genotypes (a run stopped early): its last one.
 */
export function genotypeFromSpec(spec: string): Genotype {
  try {
    return loadGenotype(spec);
  } catch (error) {
    let isDirectory = false;
    try {
      isDirectory = statSync(spec).isDirectory();
    } catch {
      // not a path: loadGenotype's message says what was expected
    }
    if (isDirectory && existsSync(join(spec, 'log.jsonl')) && !existsSync(join(spec, 'genotype.json'))) {
      const run = readRunDirectory(spec);
      if (run.genotype !== undefined) return run.genotype;
    }
    throw error;
  }
}
