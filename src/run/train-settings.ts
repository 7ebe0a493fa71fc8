/**
 * Settings of a training run (spec section 7; the authors' train.py flags, CIFAR recipe as
 * defaults): their checks, the resume rule, the data a run loads and the network it builds.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

import { type Genotype, PUBLISHED_GENOTYPE_NAMES, publishedGenotype, validateGenotype } from '../darts/genotype.js';
import { DATASET_NAMES, type DatasetName, type ImageDataset, isImageFolder } from '../data/index.js';
import { networkComplexity } from '../eval/complexity.js';
import { type EvalNetwork, type EvalNetworkOptions, NetworkCIFAR, NetworkImageNet } from '../eval/network.js';
import { LR_SCHEDULE_KINDS, type LrSchedule, type LrScheduleKind } from '../nn/schedule.js';
import { disposeModule } from '../nn/layers.js';
import type { PipelineOptions } from '../data/index.js';
import type { SafetensorsTensor } from '../nn/safetensors.js';
import { DEFAULT_EVAL_ACTIVATION_BUDGET_BYTES } from '../tensor/autograd.js';
import { defaultRandom } from '../tensor/random.js';
import { checkDataSettings, DEFAULT_IMAGE_SIZE, loadRunDataset, perClassSplit } from './data.js';
import { asInputErrors, oneLine, RunInputError } from './errors.js';
import { loadModelWeights, readModelFile } from './evaluate.js';
import { defaultNetworkKind, givenImageSize, NETWORK_KINDS, type NetworkKind } from './network-kind.js';
import { isRunDirectory, LOG_FILE, readRunConfig } from './run-dir.js';
import {
  checkResumeSettings, checkSettings, DEFAULT_RUN_RUNTIME, definedEntries, describeSetting, integerAtLeast, isBoolean, numberAtLeast,
  numberInRange, optionalIntegerAtLeast, type RunRuntime, type SettingCheck,
} from './settings.js';

/**
 * Settings that determine a training run's results. Keys are the camelCase forms of the CLI
 * flags (`--drop-path-prob` -> dropPathProb, `--no-cutout` -> cutout: false), as stored in
 * config.json.
 */
export interface TrainConfig {
  /** The architecture (config.json holds the genotype itself, not its name). */
  genotype: Genotype;
  /** The authors' NetworkCIFAR or NetworkImageNet (spec section 7); 'imagenet' brings the ImageNet recipe as defaults. */
  network: NetworkKind;
  dataset: DatasetName;
  /** Dataset directory; null: the dataset's standard location (none for the bundled subset). */
  data: string | null;
  batchSize: number;
  /** Initial learning rate. */
  lr: number;
  /** 'cosine' to 0 (CIFAR) or the authors' 'linear' decay (ImageNet), see nn/schedule.ts. */
  lrSchedule: LrScheduleKind;
  /** Linear learning-rate warm-up: lr (e+1)/W for the first W epochs, then the schedule; 0: none. */
  lrWarmupEpochs: number;
  momentum: number;
  weightDecay: number;
  epochs: number;
  initChannels: number;
  /** Cells. */
  layers: number;
  /** The auxiliary head and its loss. */
  auxiliary: boolean;
  auxiliaryWeight: number;
  cutout: boolean;
  cutoutLength: number;
  /** Final drop-path probability (p_e = dropPathProb * e / epochs). */
  dropPathProb: number;
  gradClip: number;
  /** Label smoothing of the training loss (main and auxiliary); 0: off. */
  labelSmoothing: number;
  seed: number;
  /** The last fraction of the training set held out for validation (and a best checkpoint); 0: none. */
  validPortion: number;
  /** Use only the first N training images (before the validation split); null: all. */
  limitTrain: number | null;
  /** Evaluate only the first N test images; null: all. */
  limitTest: number | null;
  /**
   * Start from the weights of this safetensors file (the authors' state-dict keys, e.g. a
   * `pcdarts export --format pytorch` file or one PyTorch saved) instead of a random
   * initialisation; absolute path; null: random initialisation.
   */
  initFrom: string | null;
  /** Image folders: side of the square crops the network sees. */
  imageSize: number;
  /** Image folders: leave out images that fail to decode (named in the log) instead of stopping. */
  skipBadImages: boolean;
}

/** The authors' published CIFAR-10 architecture, their train.py's default. */
export const DEFAULT_TRAIN_GENOTYPE = 'PC_DARTS_cifar';

/** The CIFAR-10 recipe of spec section 7, on the bundled Fashion-MNIST subset. */
export const DEFAULT_TRAIN_CONFIG: Readonly<TrainConfig> = Object.freeze({
  genotype: publishedGenotype(DEFAULT_TRAIN_GENOTYPE), network: 'cifar', dataset: 'fashion-mnist-bundled', data: null, batchSize: 96,
  lr: 0.025, lrSchedule: 'cosine', lrWarmupEpochs: 0, momentum: 0.9, weightDecay: 3e-4, epochs: 600, initChannels: 36, layers: 20, auxiliary: true, auxiliaryWeight: 0.4,
  cutout: true, cutoutLength: 16, dropPathProb: 0.3, gradClip: 5, labelSmoothing: 0, seed: 0, validPortion: 0,
  limitTrain: null, limitTest: null, initFrom: null, imageSize: DEFAULT_IMAGE_SIZE, skipBadImages: false,
});

/** The authors' ImageNet architecture (found by the direct ImageNet search), the default genotype of an ImageNet retraining. */
export const DEFAULT_IMAGENET_TRAIN_GENOTYPE = 'PC_DARTS_image';

/**
 * The ImageNet retraining recipe (spec section 7, the authors' train_imagenet.py): the
 * defaults of a training run with the ImageNet network, each overridable by its flag. The
 * learning rate warms up over 5 epochs when the batch exceeds 256 (their rule), see
 * resolveTrainConfig. The augmentation (random resized crop, flip, colour jitter) is the
 * dataset's training augmentation; cutout is off.
 */
export const IMAGENET_TRAIN_RECIPE: Readonly<Partial<TrainConfig>> = Object.freeze({
  network: 'imagenet', genotype: publishedGenotype(DEFAULT_IMAGENET_TRAIN_GENOTYPE), initChannels: 48, layers: 14, epochs: 250,
  batchSize: 1024, lr: 0.5, lrSchedule: 'linear', momentum: 0.9, weightDecay: 3e-5, dropPathProb: 0, labelSmoothing: 0.1,
  auxiliary: true, auxiliaryWeight: 0.4, cutout: false, gradClip: 5,
});

/** Learning-rate warm-up of the ImageNet recipes: 5 epochs, when the batch exceeds 256. */
const IMAGENET_LR_WARMUP_EPOCHS = 5;
const IMAGENET_LR_WARMUP_MIN_BATCH = 257;

/**
 * A training run's full settings from the ones given: the network defaults by the dataset
 * (and image size); with the ImageNet network the ImageNet recipe fills what was not given,
 * else DEFAULT_TRAIN_CONFIG. What this returns is what config.json records.
 */
export function resolveTrainConfig(given: Partial<TrainConfig>): TrainConfig {
  const defined = definedEntries(given);
  const dataset = defined.dataset ?? DEFAULT_TRAIN_CONFIG.dataset;
  const network = defined.network ?? defaultNetworkKind(dataset, givenImageSize(defined));
  const recipe: Partial<TrainConfig> = network === 'imagenet' ? IMAGENET_TRAIN_RECIPE : {};
  const config: TrainConfig = { ...DEFAULT_TRAIN_CONFIG, ...recipe, ...defined, network };
  if (network === 'imagenet' && defined.lrWarmupEpochs === undefined) {
    config.lrWarmupEpochs = config.batchSize >= IMAGENET_LR_WARMUP_MIN_BATCH ? IMAGENET_LR_WARMUP_EPOCHS : 0;
  }
  return config;
}

/** The learning-rate schedule of a training run. */
export function trainLrSchedule(config: TrainConfig): LrSchedule {
  return { kind: config.lrSchedule, lr: config.lr, lrMin: 0, epochs: config.epochs, warmupEpochs: config.lrWarmupEpochs };
}

/** Settings that do not change results; a resumed run may use others. */
export type TrainRuntime = RunRuntime;
export const DEFAULT_TRAIN_RUNTIME: Readonly<TrainRuntime> = Object.freeze({
  ...DEFAULT_RUN_RUNTIME, activationBudgetMiB: DEFAULT_EVAL_ACTIVATION_BUDGET_BYTES / 2 ** 20,
});

/** Random-crop padding of the training augmentation (spec section 7). */
export const TRAIN_CROP_PADDING = 4;

/** Weights of the best epoch by validation accuracy. */
export const BEST_MODEL_FILE = 'best.safetensors';

/** The append-only logs of a train run directory that checkpoints track. */
export const TRAIN_LOGS = [LOG_FILE] as const;

const CONFIG_CHECKS: { [K in keyof TrainConfig]?: SettingCheck } = {
  network: (v) => (NETWORK_KINDS as readonly unknown[]).includes(v) ? null : `expected one of ${NETWORK_KINDS.join(', ')}`,
  lrSchedule: (v) => (LR_SCHEDULE_KINDS as readonly unknown[]).includes(v) ? null : `expected one of ${LR_SCHEDULE_KINDS.join(', ')}`,
  lrWarmupEpochs: integerAtLeast(0),
  dataset: (v) => (DATASET_NAMES as readonly unknown[]).includes(v) ? null : `expected one of ${DATASET_NAMES.join(', ')}`,
  data: (v) => v === null || (typeof v === 'string' && v !== '') ? null : 'expected a directory',
  batchSize: integerAtLeast(1),
  lr: numberAtLeast(0, true),
  momentum: numberInRange(0, 1),
  weightDecay: numberAtLeast(0),
  epochs: integerAtLeast(1),
  initChannels: integerAtLeast(1),
  layers: integerAtLeast(1),
  auxiliary: isBoolean,
  auxiliaryWeight: numberAtLeast(0),
  cutout: isBoolean,
  cutoutLength: integerAtLeast(1),
  dropPathProb: numberInRange(0, 1),
  gradClip: numberAtLeast(0, true),
  labelSmoothing: numberInRange(0, 1),
  seed: integerAtLeast(0),
  validPortion: numberInRange(0, 1),
  limitTrain: optionalIntegerAtLeast(1),
  limitTest: optionalIntegerAtLeast(1),
  initFrom: (v) => v === null || (typeof v === 'string' && v !== '') ? null : 'expected a .safetensors file',
  imageSize: integerAtLeast(8),
  skipBadImages: isBoolean,
};

/** Checks every setting's type and range (the error names the flag) and the genotype. */
export function checkTrainConfig(config: TrainConfig): void {
  checkSettings(config, CONFIG_CHECKS);
  checkDataSettings(config);
  asInputErrors(() => validateGenotype(config.genotype));
}

/** With `nodes` (the --nodes flag): both cells of the genotype must have that many intermediate nodes. */
export function checkGenotypeNodes(genotype: Genotype, nodes: number | undefined): void {
  if (nodes === undefined) return;
  if (!(Number.isInteger(nodes) && nodes >= 1)) throw new RunInputError(`--nodes: expected an integer >= 1, got ${nodes}`);
  asInputErrors(() => validateGenotype(genotype, { steps: nodes }), `--nodes ${nodes}`);
}

/** The published name of a genotype equal to `genotype`, else its JSON on one line. */
export function genotypeLabel(genotype: Genotype): string {
  const text = JSON.stringify(genotype);
  const name = PUBLISHED_GENOTYPE_NAMES.find((n) => JSON.stringify(publishedGenotype(n)) === text);
  return name ?? text;
}

function describeTrainSetting(key: keyof TrainConfig, value: unknown): string {
  if (key === 'genotype') return `--genotype ${genotypeLabel(value as Genotype)}`;
  if (key === 'auxiliary') return value ? 'the auxiliary head on' : '--no-auxiliary';
  if (key === 'cutout') return value ? 'cutout on' : '--no-cutout';
  return describeSetting(key, value);
}

/** Error when a setting given with --resume differs from the run's. */
export function checkTrainResumeSettings(stored: TrainConfig, given: Partial<TrainConfig>): void {
  checkResumeSettings(stored, given, describeTrainSetting);
}

/** The training and test splits a run uses. */
export interface TrainData {
  readonly train: ImageDataset;
  readonly test: ImageDataset;
}

/**
 * Both splits of the run's dataset (errors become RunInputErrors), limited as configured;
 * image folders verified, or (`knownBadImages`, a resumed run's record per split) with the
 * recorded bad images left out.
 */
export function loadTrainData(
  config: TrainConfig, pipeline?: PipelineOptions, knownBadImages?: { train: readonly string[]; test: readonly string[] },
): TrainData {
  const load = (split: 'train' | 'test', limit: number | null, limitFlag: string): ImageDataset => loadRunDataset({
    dataset: config.dataset, data: config.data, split, limit, limitFlag, imageSize: config.imageSize,
    skipBadImages: config.skipBadImages, knownBadImages: knownBadImages?.[split], pipeline,
  });
  return { train: load('train', config.limitTrain, '--limit-train'), test: load('test', config.limitTest, '--limit-test') };
}

/**
 * Training indices (the first images) and validation indices (the last `validPortion` of
 * them); for an image folder (stored grouped by class) the same within every class.
 */
export function trainValidSplit(dataset: ImageDataset, validPortion: number): { train: Int32Array; valid: Int32Array } {
  if (isImageFolder(dataset)) return perClassSplit(dataset.labels, dataset.classes, (n) => n - Math.floor(validPortion * n));
  return trainValidIndices(dataset.count, validPortion);
}

/** Training indices (the first images) and validation indices (the last `validPortion` of them). */
export function trainValidIndices(count: number, validPortion: number): { train: Int32Array; valid: Int32Array } {
  const validCount = Math.floor(validPortion * count);
  const trainCount = count - validCount;
  return {
    train: Int32Array.from({ length: trainCount }, (_, i) => i),
    valid: Int32Array.from({ length: validCount }, (_, i) => trainCount + i),
  };
}

export function checkData(config: TrainConfig, data: TrainData): void {
  const { train, test } = data;
  if (train.channels !== test.channels || train.height !== test.height || train.width !== test.width || train.classes !== test.classes) {
    throw new RunInputError(`${train.name}: the test images (${test.channels}x${test.height}x${test.width}, ${test.classes} classes) do not match the training images (${train.channels}x${train.height}x${train.width}, ${train.classes} classes)`);
  }
  const { train: trainIndices, valid } = trainValidSplit(train, config.validPortion);
  if (trainIndices.length === 0) throw new RunInputError(`--valid-portion ${config.validPortion} of ${train.count} images leaves no training images`);
  if (config.validPortion > 0 && valid.length === 0) {
    throw new RunInputError(`--valid-portion ${config.validPortion} of ${train.count} images holds out no validation image: use a larger portion or --valid-portion 0`);
  }
}

/** The options of the training network for a dataset of `inChannels` channels and `classes` classes. */
export function trainNetworkOptions(config: TrainConfig, inChannels: number, classes: number): EvalNetworkOptions {
  return {
    genotype: config.genotype, channels: config.initChannels, layers: config.layers, classes, inChannels,
    auxiliary: config.auxiliary, dropPathProb: 0,
  };
}

/** The run's network (NetworkCIFAR or NetworkImageNet) with the given options. */
export function buildTrainNetwork(network: NetworkKind, options: EvalNetworkOptions): EvalNetwork {
  return network === 'imagenet' ? new NetworkImageNet(options) : new NetworkCIFAR(options);
}

/**
 * Builds a network without disturbing the process-wide generator (parameter initialisation
 * draws from it, and a run's state includes it).
 */
export function withScratchNetwork<T>(build: () => EvalNetwork, use: (network: EvalNetwork) => T): T {
  const saved = defaultRandom().getState();
  let network: EvalNetwork | null = null;
  try {
    network = build();
    return use(network);
  } finally {
    if (network !== null) disposeModule(network);
    defaultRandom().setState(saved);
  }
}

/**
 * The weights of --init-from, checked against the network the run trains (keys and shapes,
 * before anything is created); a file without the auxiliary head for a run with one gets a
 * hint. Returns the tensors and the file's sha256 (recorded, so that a resume that starts
 * over can tell whether the file changed).
 */
export function readInitWeights(config: TrainConfig, dataset: ImageDataset): { tensors: Map<string, SafetensorsTensor>; sha256: string } {
  const path = config.initFrom!;
  const tensors = readModelFile(path, '--init-from');
  withScratchNetwork(
    () => buildTrainNetwork(config.network, trainNetworkOptions(config, dataset.channels, dataset.classes)),
    (network) => {
      try {
        loadModelWeights(network, tensors, `--init-from ${path}`);
      } catch (error) {
        const headless = ![...tensors.keys()].some((key) => key.startsWith('auxiliary_head.') || key.startsWith('model.auxiliary_head.'));
        if (config.auxiliary && headless) throw new RunInputError(`${oneLine(error)} (the file has no auxiliary head: train with --no-auxiliary)`);
        throw error;
      }
    },
  );
  return { tensors, sha256: createHash('sha256').update(readFileSync(path)).digest('hex') };
}

/**
 * Checks that the network can be built and take the dataset's images (even sizes before
 * every reduction, the auxiliary head's input: 8x8 in the CIFAR network, 7x7 in the ImageNet
 * one); returns its parameter count (auxiliary head excluded) and mult-adds per image.
 */
export function checkTrainNetwork(config: TrainConfig, dataset: ImageDataset): { parameters: number; multAdds: number } {
  return asInputErrors(() => withScratchNetwork(
    () => buildTrainNetwork(config.network, trainNetworkOptions(config, dataset.channels, dataset.classes)),
    (network) => {
      const complexity = networkComplexity(network, dataset.height, dataset.width);
      if (config.auxiliary) {
        // The head reads the output of cell floor(2 layers / 3).
        const [height, width] = network.featureSize(network.auxiliaryIndex, dataset.height, dataset.width);
        if (!network.auxiliaryHead!.accepts(height, width)) {
          const [map, images] = network.auxiliaryHead!.expectedInput;
          throw new Error(`the auxiliary head (after cell ${network.auxiliaryIndex}) needs ${map === '8x8' ? 'an' : 'a'} ${map} feature map (${images} images), but ${dataset.height}x${dataset.width} images with ${config.layers} layers give ${height}x${width} there: use --no-auxiliary`);
        }
      }
      return complexity;
    },
  ));
}

/** Settings a training run takes from the run directory its genotype came from, unless given. */
export const INHERITED_TRAIN_SETTINGS = ['network', 'dataset', 'data', 'initChannels', 'layers', 'imageSize'] as const;
export type InheritedTrainSetting = (typeof INHERITED_TRAIN_SETTINGS)[number];

/**
 * The defaults a genotype's own run directory gives a training run (a search's or a train
 * run's dataset, data directory, network kind, channels, cells and, for image folders, the
 * crop size): the network `train RUN_DIR` trains is the one that run searched or trained, at
 * its size. Null when `spec` is not a run directory.
 */
export function trainDefaultsFromRun(spec: string): Pick<Partial<TrainConfig>, InheritedTrainSetting> | null {
  if (!isRunDirectory(spec)) return null;
  const config = readRunConfig(spec).config as Record<string, unknown>;
  const out: Pick<Partial<TrainConfig>, InheritedTrainSetting> = {};
  if (typeof config.network === 'string' && (NETWORK_KINDS as readonly string[]).includes(config.network)) out.network = config.network as NetworkKind;
  if (typeof config.dataset === 'string' && (DATASET_NAMES as readonly string[]).includes(config.dataset)) out.dataset = config.dataset as DatasetName;
  if (typeof config.data === 'string') out.data = config.data;
  if (typeof config.initChannels === 'number') out.initChannels = config.initChannels;
  if (typeof config.layers === 'number') out.layers = config.layers;
  if ((out.dataset === 'imagefolder' || out.dataset === 'imagenet') && typeof config.imageSize === 'number') out.imageSize = config.imageSize;
  return out;
}
