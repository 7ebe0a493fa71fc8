/**
 * `pcdarts test` as a library call: accuracy (top-1, top-5) and loss of a trained model on
 * the test split.
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

import { type Genotype } from '../darts/genotype.js';
import type { DatasetName, ImageDataset, PipelineOptions } from '../data/index.js';
import { type SafetensorsTensor } from '../nn/safetensors.js';
import { useBackend } from './backend.js';
import { readCheckpoint } from './checkpoint.js';
import { loadRunDataset } from './data.js';
import { asInputErrors, RunInputError } from './errors.js';
import { isRunDirectory, readRunConfig } from './run-dir.js';
import { evaluateNetwork, type Evaluation, loadModelWeights, readModelFile } from './evaluate.js';
import type { TrainCheckpointState } from './train.js';
import {
  BEST_MODEL_FILE, buildTrainNetwork, checkGenotypeNodes, checkTrainConfig, DEFAULT_TRAIN_CONFIG, genotypeLabel, type TrainConfig,
  resolveTrainConfig, trainNetworkOptions, withScratchNetwork,
} from './train-settings.js';
import { definedEntries } from './settings.js';
import type { NetworkKind } from './network-kind.js';

// ------------------------------------------------------------------------------------------
// Testing a trained model (pcdarts test)

export interface TestModelOptions {
  /** A train run directory: its best model (with a validation split) or its last checkpoint. */
  run?: string;
  /** A safetensors file of weights: a run's checkpoint or best model, or a plain state dict. */
  checkpoint?: string;
  /** With `run`: the last checkpoint even when a best model exists. */
  last?: boolean;
  /** The architecture; required with a checkpoint outside a train run directory, else it must equal the run's. */
  genotype?: Genotype;
  nodes?: number;
  /** The network (default: the run's; outside a run, the dataset's default network). */
  network?: NetworkKind;
  initChannels?: number;
  layers?: number;
  dataset?: DatasetName;
  data?: string | null;
  /** Evaluate only the first N test images (default: the run's --limit-test, else all). */
  limitTest?: number | null;
  /** Default: the run's batch size. */
  batchSize?: number;
  threads?: number | null;
  /** Image folders: the side of the crops (default: the run's). */
  imageSize?: number;
  /** Image folders: the decode pipeline (workers). */
  pipeline?: PipelineOptions;
  /** Image folders: leave out images that fail to decode (default: the run's setting). */
  skipBadImages?: boolean;
  /** An already loaded test split (tests, embedding). */
  testData?: ImageDataset;
  /** Called after every batch with the images evaluated so far and in all (a progress display). */
  onBatch?: (imagesDone: number, images: number) => void;
}

export interface TestModelResult extends Evaluation {
  /** The weights file that was tested. */
  checkpoint: string;
  dataset: string;
  genotype: Genotype;
  network: NetworkKind;
  initChannels: number;
  layers: number;
}

/** The train run a weights file belongs to: its folder or the folder above (checkpoint/). */
function enclosingTrainRun(file: string): string | null {
  for (const dir of [dirname(file), dirname(dirname(file))]) {
    if (!isRunDirectory(dir)) continue;
    try {
      if (readRunConfig(dir).command === 'train') return dir;
    } catch {
      // not a readable run: look no further up
    }
    return null;
  }
  return null;
}

/**
 * Accuracy (top-1, top-5) and loss of a trained model on the test split, in eval mode. The
 * architecture comes from the run's config.json; settings given in the options must agree
 * with it (outside a run they define it). Any bad input is a one-line RunInputError.
 */
export function testModel(options: TestModelOptions): TestModelResult {
  if ((options.run === undefined) === (options.checkpoint === undefined)) {
    throw new RunInputError('give either a train run directory (--run DIR) or a weights file (--checkpoint FILE)');
  }
  let runDir: string | null;
  let weightsPath: string;
  let tensors: Map<string, SafetensorsTensor>;
  if (options.run !== undefined) {
    runDir = options.run;
    if (!existsSync(runDir)) throw new RunInputError(`--run ${runDir}: no such directory`);
    readRunConfig(runDir, 'train');
    const best = join(runDir, BEST_MODEL_FILE);
    if (!options.last && existsSync(best)) {
      weightsPath = best;
      tensors = readModelFile(best);
    } else {
      const checkpoint = readCheckpoint<TrainCheckpointState>(runDir);
      if (checkpoint === null) throw new RunInputError(`${runDir}: no checkpoint yet, so no trained weights to test`);
      weightsPath = join(runDir, 'checkpoint');
      tensors = checkpoint.tensors;
    }
  } else {
    weightsPath = options.checkpoint!;
    if (existsSync(weightsPath) && statSync(weightsPath).isDirectory()) {
      throw new RunInputError(`--checkpoint ${weightsPath} is a directory: give a .safetensors file, or the run directory with --run`);
    }
    tensors = readModelFile(weightsPath);
    runDir = enclosingTrainRun(weightsPath);
  }

  const stored: Partial<TrainConfig> = runDir === null ? {} : readRunConfig(runDir, 'train').config as Partial<TrainConfig>;
  if (runDir === null && options.genotype === undefined) {
    throw new RunInputError(`${weightsPath} is not in a train run directory: give its architecture with --genotype (and --init-channels, --layers, --dataset as trained)`);
  }
  if (runDir !== null && options.genotype !== undefined && stored.genotype !== undefined
    && JSON.stringify(options.genotype) !== JSON.stringify(stored.genotype)) {
    throw new RunInputError(`--genotype ${genotypeLabel(options.genotype)} is not the genotype the run ${runDir} trained (${genotypeLabel(stored.genotype)})`);
  }
  const flags = definedEntries<TrainConfig>({
    genotype: options.genotype, network: options.network, initChannels: options.initChannels, layers: options.layers,
    dataset: options.dataset, data: options.data, limitTest: options.limitTest, batchSize: options.batchSize,
    skipBadImages: options.skipBadImages, imageSize: options.imageSize,
  });
  if (runDir !== null && flags.network !== undefined && flags.network !== (stored.network ?? DEFAULT_TRAIN_CONFIG.network)) {
    throw new RunInputError(`--network ${flags.network} is not the network the run ${runDir} trained (${stored.network ?? DEFAULT_TRAIN_CONFIG.network})`);
  }
  // A run's settings (a run from before --network has the CIFAR network); outside a run, the defaults of the network asked for.
  const config: TrainConfig = runDir !== null
    ? { ...DEFAULT_TRAIN_CONFIG, ...stored, ...flags }
    : resolveTrainConfig(flags);
  if (options.data !== undefined && config.data !== null) config.data = resolve(config.data);
  asInputErrors(() => checkTrainConfig(config), runDir === null ? undefined : `${runDir}/config.json`);
  checkGenotypeNodes(config.genotype, options.nodes);
  const test = options.testData ?? loadRunDataset({
    dataset: config.dataset, data: config.data, split: 'test', limit: config.limitTest, limitFlag: '--limit-test',
    imageSize: config.imageSize, skipBadImages: config.skipBadImages, pipeline: options.pipeline,
  });
  useBackend(options.threads ?? null);
  const result = asInputErrors(() => withScratchNetwork(
    () => buildTrainNetwork(config.network, { ...trainNetworkOptions(config, test.channels, test.classes), auxiliary: false }),
    (network) => {
      network.checkInputSize(test.height, test.width);
      loadModelWeights(network, tensors, weightsPath);
      return evaluateNetwork(network, test, { batchSize: config.batchSize, pipeline: options.pipeline, onBatch: options.onBatch });
    },
  ));
  return {
    ...result, checkpoint: weightsPath, dataset: test.name, genotype: config.genotype,
    network: config.network, initChannels: config.initChannels, layers: config.layers,
  };
}
