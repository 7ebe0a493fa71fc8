/**
 * `pcdarts export` as a library call: the trained network of a train run directory (its best
 * model with a validation split, else its last checkpoint) or of a weights file, written as
 * ONNX (onnx.ts) or as a PyTorch state dict in safetensors (pytorch.ts).
 *
 * Where things come from:
 * - the weights: RUN_DIR/best.safetensors or RUN_DIR/checkpoint (`--last`), or the file;
 * - the genotype: the run's config.json, the file's metadata (a pcdarts export or best
 *   model), or --genotype;
 * - C, layers, classes, image channels, network kind, auxiliary head: the weights' keys and
 *   shapes (given flags must agree);
 * - class names, normalisation and image size: what the run recorded, the file's metadata,
 *   or the dataset (--dataset, the run's).
 * Everything is checked before the output file is written (atomically); bad input is a
 * one-line RunInputError and leaves no file behind.
 */
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

import { type Genotype, validateGenotype } from '../darts/genotype.js';
import type { EvalNetwork } from '../eval/network.js';
import {
  CIFAR10_CLASS_NAMES, CIFAR10_MEAN, CIFAR10_STD, type DatasetName, FASHION_MNIST_CLASS_NAMES, FASHION_MNIST_MEAN,
  FASHION_MNIST_SIZE, FASHION_MNIST_STD,
} from '../data/index.js';
import { CHECKPOINT_DIR, CHECKPOINT_STATE_FILE, readCheckpoint } from '../run/checkpoint.js';
import { loadRunDataset } from '../run/data.js';
import { asInputErrors, oneLine, RunInputError } from '../run/errors.js';
import { loadModelWeights } from '../run/evaluate.js';
import { writeFileAtomic } from '../run/files.js';
import { CONFIG_FILE, isRunDirectory, LOG_FILE, readRunConfig, type RunConfigFile } from '../run/run-dir.js';
import { BEST_MODEL_FILE, genotypeLabel, type TrainConfig, withScratchNetwork } from '../run/train-settings.js';
import type { TrainCheckpointState } from '../run/train.js';
import { readSafetensors, readSafetensorsMetadata, type SafetensorsTensor } from '../nn/safetensors.js';
import {
  buildNetwork, hasDescription, inferArchitecture, type ModelDescription, type NetworkArchitecture, parseDescriptionMetadata,
  pcdartsVersion,
} from './metadata.js';
import { exportOnnx } from './onnx.js';
import { exportPytorch } from './pytorch.js';

/** What `pcdarts export --format` writes: a file (exportModel) or, for 'web', a page folder (web.ts exportWeb). */
export const EXPORT_FORMATS = ['onnx', 'pytorch', 'web'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** File name an export gets in a run directory when --out is not given. */
export const DEFAULT_EXPORT_FILES: Readonly<Record<ExportFormat, string>> = { onnx: 'model.onnx', pytorch: 'model.safetensors', web: 'web' };

/** Files of a run directory an export must never replace. */
const RUN_FILES = new Set([CONFIG_FILE, LOG_FILE, BEST_MODEL_FILE, 'genotype.json', 'genotypes.jsonl', 'report.html']);

export interface ExportModelOptions {
  /** A train run directory. */
  run?: string;
  /** A safetensors weights file: a run's best model or checkpoint tensors, a pcdarts export, a PyTorch state dict. */
  checkpoint?: string;
  /** With `run`: the last checkpoint even when a best model exists. */
  last?: boolean;
  /** 'onnx' or 'pytorch' (anything else is a RunInputError). */
  format: string;
  /** The file to write (default: RUN_DIR/model.onnx or model.safetensors; model.<ext> in the working directory for a file). */
  out?: string;
  /** The architecture; required for a bare state dict, else it must equal the recorded one. */
  genotype?: Genotype;
  /** Checked against the weights' shapes when given. */
  initChannels?: number;
  layers?: number;
  /** The dataset the weights were trained on, for class names, normalisation and image size when nothing recorded them. */
  dataset?: DatasetName;
  /** Dataset directory for --dataset (only needed for datasets whose facts are not built in). */
  data?: string | null;
}

export interface ExportModelResult {
  format: ExportFormat;
  /** The file written. */
  out: string;
  bytes: number;
  /** The weights that were exported. */
  weights: string;
  /** The train run they belong to, when known. */
  runDir: string | null;
  description: ModelDescription;
  /** For a run that has not finished: where its weights stand (0-based epoch in progress, of epochs). */
  unfinished: { epoch: number; epochs: number } | null;
}

/** Class names, normalisation and image size of a dataset. */
interface DataFacts {
  classNames: string[];
  mean: number[];
  std: number[];
  channels: number;
  imageSize: [number, number];
}

/** What the built-in datasets are, without reading them. */
function builtInDataFacts(name: string): DataFacts | null {
  switch (name) {
    case 'fashion-mnist':
    case 'fashion-mnist-bundled':
      return {
        classNames: [...FASHION_MNIST_CLASS_NAMES], mean: [...FASHION_MNIST_MEAN], std: [...FASHION_MNIST_STD], channels: 1,
        imageSize: [FASHION_MNIST_SIZE, FASHION_MNIST_SIZE],
      };
    case 'cifar10':
      return { classNames: [...CIFAR10_CLASS_NAMES], mean: [...CIFAR10_MEAN], std: [...CIFAR10_STD], channels: 3, imageSize: [32, 32] };
    default:
      return null;
  }
}

/** The facts of a dataset by name: built in, else read from its test split. */
function dataFacts(name: DatasetName, data: string | null): DataFacts {
  const known = builtInDataFacts(name);
  if (known !== null) return known;
  const test = loadRunDataset({ dataset: name, data, split: 'test', limit: null });
  return {
    classNames: [...test.classNames], mean: [...test.mean], std: [...test.std], channels: test.channels,
    imageSize: [test.height, test.width],
  };
}

/** What a train run recorded about its data at creation (config.json info), when complete. */
function recordedDataFacts(configFile: RunConfigFile): DataFacts | null {
  const info = configFile.info ?? {};
  const { class_names: classNames, mean, std, channels, image_size: imageSize } = info as Record<string, unknown>;
  if (!Array.isArray(classNames) || !Array.isArray(mean) || !Array.isArray(std) || typeof channels !== 'number') return null;
  const size = Array.isArray(imageSize) ? imageSize as number[] : [imageSize as number, imageSize as number];
  if (!size.every((d) => Number.isInteger(d) && d > 0)) return null;
  return { classNames: classNames as string[], mean: mean as number[], std: std as number[], channels, imageSize: [size[0], size[1]] };
}

/**
 * Checks that `out` can be written as a new or replaced file: not a directory, its folder
 * exists (nothing is created) and is writable, and it is not one of a run directory's own
 * files. Touches nothing.
 */
export function checkOutputFile(out: string, flag = '--out'): void {
  if (out === '') throw new RunInputError(`${flag}: expected a file name`);
  if (existsSync(out)) {
    const stat = statSync(out);
    if (stat.isDirectory()) throw new RunInputError(`${flag} ${out} is a directory: give a file name, e.g. ${join(out, 'model.onnx')}`);
    if (!stat.isFile()) throw new RunInputError(`${flag} ${out} exists and is not a regular file`);
  }
  const folder = dirname(resolve(out));
  if (!existsSync(folder)) throw new RunInputError(`${flag} ${out}: the folder ${folder} does not exist (export creates no folders)`);
  if (!statSync(folder).isDirectory()) throw new RunInputError(`${flag} ${out}: ${folder} is not a folder`);
  const name = basename(out);
  if ((isRunDirectory(folder) && RUN_FILES.has(name)) || (basename(folder) === CHECKPOINT_DIR && isRunDirectory(dirname(folder)))) {
    throw new RunInputError(`${flag} ${out} would replace a file of the run directory ${isRunDirectory(folder) ? folder : dirname(folder)}: choose another name`);
  }
  try {
    accessSync(folder, constants.W_OK);
  } catch {
    throw new RunInputError(`${flag} ${out}: the folder ${folder} is not writable`);
  }
}

/** The train run a weights file belongs to: its folder or the folder above (checkpoint/). */
function enclosingTrainRun(file: string): string | null {
  for (const dir of [dirname(file), dirname(dirname(file))]) {
    if (!isRunDirectory(dir)) continue;
    try {
      return readRunConfig(dir).command === 'train' ? dir : null;
    } catch {
      return null;
    }
  }
  return null;
}

export interface WeightsSource {
  weights: string;
  tensors: Map<string, SafetensorsTensor>;
  metadata: Record<string, string> | null;
  runDir: string | null;
  unfinished: { epoch: number; epochs: number } | null;
}

function readWeightsFile(path: string, flag: string): { tensors: Map<string, SafetensorsTensor>; metadata: Record<string, string> | null } {
  if (!existsSync(path)) throw new RunInputError(`${flag} ${path}: no such file`);
  if (statSync(path).isDirectory()) {
    throw new RunInputError(isRunDirectory(path)
      ? `${flag} ${path} is a run directory: give it as the first argument (pcdarts export ${path})`
      : `${flag} ${path} is a directory: give a .safetensors file`);
  }
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(path));
  } catch (error) {
    throw new RunInputError(`${flag} ${path}: cannot read (${oneLine(error)})`);
  }
  return asInputErrors(() => ({ tensors: readSafetensors(bytes, path), metadata: readSafetensorsMetadata(bytes, path) }));
}

function runWeights(run: string, last: boolean): WeightsSource {
  if (!existsSync(run)) throw new RunInputError(`${run}: no such run directory`);
  if (!statSync(run).isDirectory()) {
    throw new RunInputError(`${run} is a file, not a run directory: export a weights file with --checkpoint ${run}`);
  }
  if (!isRunDirectory(run)) throw new RunInputError(`${run} is not a run directory (it has no ${CONFIG_FILE})`);
  const configFile = readRunConfig(run);
  if (configFile.command === 'search') {
    throw new RunInputError(`${run} is a search run: its weights belong to the search network, not to a trained one; retrain its genotype first (pcdarts train --genotype ${run} --out RUN_DIR), then export RUN_DIR`);
  }
  if (configFile.command !== 'train') throw new RunInputError(`${run} is a '${configFile.command}' run, not a train run: nothing to export`);
  const epochs = (configFile.config as Partial<TrainConfig>).epochs ?? 0;
  const best = join(run, BEST_MODEL_FILE);
  if (!last && existsSync(best)) {
    const { tensors, metadata } = readWeightsFile(best, 'best model');
    const progress = checkpointProgress(run);
    return { weights: best, tensors, metadata, runDir: run, unfinished: progress === null || progress.finished ? null : { epoch: progress.epoch, epochs } };
  }
  const checkpoint = readCheckpoint<TrainCheckpointState>(run);
  if (checkpoint === null) {
    throw new RunInputError(`${run} is not trained yet (no checkpoint): nothing to export; train it first (pcdarts train --resume ${run})`);
  }
  const finished = checkpoint.state.final_test != null;
  return {
    weights: join(run, CHECKPOINT_DIR), tensors: checkpoint.tensors, metadata: null, runDir: run,
    unfinished: finished ? null : { epoch: checkpoint.state.epoch, epochs },
  };
}

/**
 * Where a run's last checkpoint stands, from its state.json alone (its tensors are not
 * needed when the best model is exported); null when that cannot be read.
 */
function checkpointProgress(run: string): { epoch: number; finished: boolean } | null {
  try {
    const file = JSON.parse(readFileSync(join(run, CHECKPOINT_DIR, CHECKPOINT_STATE_FILE), 'utf8')) as { state?: Partial<TrainCheckpointState> };
    const epoch = file.state?.epoch;
    return typeof epoch === 'number' ? { epoch, finished: file.state?.final_test != null } : null;
  } catch {
    return null;
  }
}

/** Strips a run checkpoint's `model.` prefix (other entries, e.g. optimiser state, are dropped). */
function modelTensors(tensors: Map<string, SafetensorsTensor>): Map<string, SafetensorsTensor> {
  if (![...tensors.keys()].some((name) => name.startsWith('model.'))) return tensors;
  const out = new Map<string, SafetensorsTensor>();
  for (const [name, t] of tensors) if (name.startsWith('model.')) out.set(name.slice('model.'.length), t);
  return out;
}

function sameGenotype(a: Genotype, b: Genotype): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Resolves everything, checks it, builds the network, loads the weights and writes the export. */
export function exportModel(options: ExportModelOptions): ExportModelResult {
  const format = options.format as ExportFormat;
  if (!(EXPORT_FORMATS as readonly string[]).includes(format)) {
    throw new RunInputError(`--format ${options.format}: unknown format, expected one of ${EXPORT_FORMATS.join(', ')}`);
  }
  if (format === 'web') throw new Error('exportModel: --format web writes a folder: call exportWeb');
  if ((options.run === undefined) === (options.checkpoint === undefined)) {
    throw new RunInputError('give either a train run directory (pcdarts export RUN_DIR) or a weights file (--checkpoint FILE)');
  }
  if (options.last && options.run === undefined) throw new RunInputError('--last goes with a run directory');
  const out = options.out ?? (options.run !== undefined ? join(options.run, DEFAULT_EXPORT_FILES[format]) : DEFAULT_EXPORT_FILES[format]);
  if (options.out !== undefined) checkOutputFile(out);

  // The weights and where they came from.
  let source: WeightsSource;
  if (options.run !== undefined) {
    source = runWeights(options.run, options.last ?? false);
  } else {
    const { tensors, metadata } = readWeightsFile(options.checkpoint!, '--checkpoint');
    source = { weights: options.checkpoint!, tensors, metadata, runDir: enclosingTrainRun(options.checkpoint!), unfinished: null };
  }
  if (options.out === undefined) checkOutputFile(out);
  if (resolve(out) === resolve(source.weights)) throw new RunInputError(`--out ${out} is the weights file being exported: choose another name`);
  const { architecture, description } = describeWeights(source, options, format === 'pytorch');

  // Build, load, encode.
  const bytes = withTrainedNetwork(source, architecture, description, (network) => (format === 'onnx' ? exportOnnx(network, { description }) : exportPytorch(network, description)));
  try {
    writeFileAtomic(out, bytes);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new RunInputError(`--out ${out}: cannot write${code ? ` (${code})` : ''}: ${oneLine(error)}`);
  }
  return { format, out, bytes: bytes.length, weights: source.weights, runDir: source.runDir, description, unfinished: source.unfinished };
}

/** Where a model to run comes from (pcdarts predict, the web page): a train run directory or a weights file. */
export type ModelSourceOptions = Omit<ExportModelOptions, 'format' | 'out'> & {
  /** How messages name a weights file (default 'weights file'; export says '--checkpoint'). */
  checkpointFlag?: string;
};

/** A trained network's weights, architecture and description, resolved and checked. */
export interface TrainedModel {
  source: WeightsSource;
  architecture: NetworkArchitecture;
  /** Without the auxiliary head. */
  description: ModelDescription;
}

/** The weights, architecture and description of a run or a weights file, as `pcdarts export` resolves them (the same errors). */
export function resolveTrainedModel(options: ModelSourceOptions): TrainedModel {
  if ((options.run === undefined) === (options.checkpoint === undefined)) {
    throw new RunInputError('give either a train run directory or a weights file');
  }
  if (options.last && options.run === undefined) throw new RunInputError('--last goes with a run directory');
  let source: WeightsSource;
  if (options.run !== undefined) {
    source = runWeights(options.run, options.last ?? false);
  } else {
    const { tensors, metadata } = readWeightsFile(options.checkpoint!, options.checkpointFlag ?? 'weights file');
    source = { weights: options.checkpoint!, tensors, metadata, runDir: enclosingTrainRun(options.checkpoint!), unfinished: null };
  }
  return { source, ...describeWeights(source, options, false) };
}

/** Builds the network of `architecture`, loads the weights, switches to eval mode and runs `use` (disposed after). */
export function withTrainedNetwork<T>(
  source: WeightsSource, architecture: NetworkArchitecture, description: ModelDescription, use: (network: EvalNetwork) => T,
): T {
  return asInputErrors(() => withScratchNetwork(
    () => buildNetwork(architecture, { auxiliary: description.auxiliary }),
    (network) => {
      network.checkInputSize(description.imageSize[0], description.imageSize[1]);
      loadModelWeights(network, source.tensors, source.weights);
      network.eval();
      return use(network);
    },
  ));
}

function describeWeights(
  source: WeightsSource, options: ModelSourceOptions, keepAuxiliary: boolean,
): { architecture: NetworkArchitecture; description: ModelDescription } {
  const runConfig = source.runDir === null ? null : readRunConfig(source.runDir, 'train');
  const stored = (runConfig?.config ?? {}) as Partial<TrainConfig>;
  const described = hasDescription(source.metadata) ? asInputErrors(() => parseDescriptionMetadata(source.metadata!, source.weights)) : null;

  // The architecture: genotype from the record, the rest from the weights.
  const tensors = modelTensors(source.tensors);
  const inferred = asInputErrors(() => inferArchitecture(tensors, source.weights));
  let recordedGenotype: Genotype | null = stored.genotype ?? described?.genotype ?? null;
  if (recordedGenotype === null && source.metadata?.genotype !== undefined) {
    recordedGenotype = asInputErrors(() => validateGenotype(JSON.parse(source.metadata!.genotype), { source: `${source.weights} (metadata 'genotype')` }));
  }
  if (options.genotype !== undefined && recordedGenotype !== null && !sameGenotype(options.genotype, recordedGenotype)) {
    throw new RunInputError(`--genotype ${genotypeLabel(options.genotype)} is not the genotype ${source.weights} was trained with (${genotypeLabel(recordedGenotype)})`);
  }
  const genotype = options.genotype ?? recordedGenotype;
  if (genotype === null) {
    throw new RunInputError(`${source.weights} records no genotype: give the architecture with --genotype (a name, a genotype file or a search run directory)`);
  }
  for (const [flag, given, actual] of [
    ['--init-channels', options.initChannels, inferred.initChannels], ['--layers', options.layers, inferred.layers],
    ['the run\'s initChannels', stored.initChannels, inferred.initChannels], ['the run\'s layers', stored.layers, inferred.layers],
  ] as const) {
    if (given !== undefined && given !== actual) {
      throw new RunInputError(`${flag} ${given} does not match the weights in ${source.weights} (${flag.includes('layers') ? `${actual} cells` : `C ${actual}`})`);
    }
  }
  const architecture: NetworkArchitecture = { ...inferred, genotype };

  // The data the network expects and the names of its outputs.
  const datasetName = options.dataset ?? stored.dataset ?? (described?.dataset as DatasetName | null | undefined)
    ?? (source.metadata?.dataset ? source.metadata.dataset as DatasetName : null);
  let facts: DataFacts | null = null;
  if (options.dataset === undefined) facts = runConfig !== null ? recordedDataFacts(runConfig) : null;
  if (facts === null && options.dataset === undefined && described !== null) {
    facts = { classNames: described.classNames, mean: described.mean, std: described.std, channels: described.inChannels, imageSize: described.imageSize };
  }
  if (facts === null && datasetName !== null) {
    facts = asInputErrors(() => dataFacts(datasetName, options.data ?? (options.dataset === undefined ? stored.data ?? null : null)));
  }
  if (facts === null) {
    throw new RunInputError(`${source.weights} records no dataset: say which one it was trained on with --dataset (class names, image size and normalisation come from it)`);
  }
  const datasetLabel = datasetName ?? 'the recorded dataset';
  if (facts.channels !== architecture.inChannels) {
    throw new RunInputError(`${source.weights} takes ${architecture.inChannels}-channel images, ${datasetLabel} has ${facts.channels} channels`);
  }
  if (facts.classNames.length !== architecture.classes) {
    throw new RunInputError(`${source.weights} has ${architecture.classes} classes, ${datasetLabel} has ${facts.classNames.length}`);
  }
  const description: ModelDescription = {
    ...architecture,
    auxiliary: keepAuxiliary && architecture.auxiliary,
    imageSize: facts.imageSize,
    classNames: facts.classNames, mean: facts.mean, std: facts.std, dataset: datasetName, pcdartsVersion: pcdartsVersion(),
  };
  return { architecture, description };
}
