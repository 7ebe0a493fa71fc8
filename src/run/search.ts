/**
 * The PC-DARTS search as a resumable run (spec section 6): settings, the step, the epoch's
 * evaluation and logs. The loop, checkpoints, stop and resume are the run machinery shared
 * with the retraining (epoch-run.ts). Printing is left to the caller's event callbacks (see
 * progress.ts); files go to the run directory (run-dir.ts, checkpoint.ts).
 *
 * A step is exactly the fixture-verified reference (test/fixtures/handlers/search.ts): an
 * architecture step (from the warm-up epoch on) with the architect of `order` (first order, or
 * the unrolled second order, which also uses the step's training batch, learning rate and
 * momentum buffers) on the next batch of the architecture half, then zero the weight gradients, forward + cross-entropy + backward
 * on the next training batch with the architecture frozen, clip the weight gradients' global
 * norm, SGD step. Per step the random draws come in a fixed order (training batch indices
 * when an epoch of that half starts, training augmentation, then the same for the
 * architecture batch), all from one generator seeded with the run's seed, whose state is in
 * every checkpoint with the samplers' states: a resumed run repeats an uninterrupted one.
 *
 * Logged accuracies are fractions in [0, 1]; losses are float32 values written exactly.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { type Architect, ARCHITECT_ORDERS, type ArchitectOrder, withFrozen } from '../darts/architect.js';
import { createArchitect } from '../darts/architects.js';
import { type Genotype, genotypeToJSON } from '../darts/genotype.js';
import { nodeSoftmax, softmaxRows } from '../darts/genotype-derive.js';
import {
  betaSegments, SEARCH_NETWORK_KINDS, SearchNetwork, type SearchNetworkConfig, type SearchNetworkKind, validateSearchConfig,
} from '../darts/search-network.js';
import {
  type Augmentation, type BatchSamplerState, type BatchSource, DATASET_NAMES, type DatasetName, type ImageDataset,
  isImageFolder, type KeyedBatchSamplerState, type ResumableSampler,
} from '../data/index.js';
import { kernels } from '../kernels/registry.js';
import { clipGradNorm, SGD } from '../nn/optim.js';
import type { SafetensorsInput, SafetensorsTensor } from '../nn/safetensors.js';
import { scheduledLr } from '../nn/schedule.js';
import { backward, noGrad } from '../tensor/autograd.js';
import * as ops from '../tensor/ops.js';
import { manualSeed, Random } from '../tensor/random.js';
import { tidy } from '../tensor/tensor.js';
import {
  loadModuleTensors, loadNamedTensors, moduleTensors, namedTensors, optimizerStateFrom, optimizerTensors, readCheckpoint,
} from './checkpoint.js';
import { useBackend } from './backend.js';
import { testPoint } from './test-hooks.js';
import {
  checkDataSettings, DEFAULT_IMAGE_SIZE, datasetLogFacts, evaluationBatches, loadRunDataset, nextBatch, searchSplit, trainingBatches,
  verifyUsedImages,
} from './data.js';
import {
  EpochRun, type LoopOutcome, type ResumeRecord, type RunCheckpointState, type RunEvents, type RunOptions, type RunProgress,
  type StepRecordBase,
} from './epoch-run.js';
import { asInputErrors, RunInputError } from './errors.js';
import { countCorrect, float32ArrayForJson, float32ForJson, roundForLog } from './metrics.js';
import { defaultNetworkKind, givenImageSize } from './network-kind.js';
import {
  checkSubsetFractions, IMAGENET_SEARCH_SUBSET, type LabelledItems, readSubsetRecord, sampleSearchSubset, SEARCH_SUBSET_FILE,
  type SearchSubsetRecord, subsetFromRecord, subsetRecord,
} from './search-subset.js';
import { checkNewRunDirectory, LOG_FILE, readRunConfig, type RunConfigFile, RunDirectory } from './run-dir.js';
import {
  checkResumeSettings, checkRunRuntime, checkSettings, DEFAULT_RUN_RUNTIME, definedEntries, flagName, integerAtLeast, isBoolean,
  numberAtLeast, numberInRange, openUnitInterval, optionalIntegerAtLeast, pipelineOptions, type RunRuntime, type SettingCheck,
} from './settings.js';

/**
 * Settings that determine a search's results. Keys are the camelCase forms of the CLI flags
 * (`--batch-size` -> batchSize, `--no-edge-norm` -> edgeNorm: false), as stored in config.json.
 */
export interface SearchConfig {
  /** The search network (spec sections 4 and 6); 'imagenet' brings the ImageNet recipe as defaults. */
  network: SearchNetworkKind;
  dataset: DatasetName;
  /** Dataset directory; null: the dataset's standard location (none for the bundled subset). */
  data: string | null;
  batchSize: number;
  lr: number;
  lrMin: number;
  momentum: number;
  weightDecay: number;
  archLr: number;
  archWeightDecay: number;
  /** Clip the architecture gradients' global norm before the Adam step (the ImageNet search: 5); null: no clipping. */
  archGradClip: number | null;
  /**
   * The architecture step: 1 first order (PC-DARTS, DARTS v1), 2 the unrolled second-order
   * step of DARTS v2 (src/darts/second-order-architect.ts; about 2.7x a first-order step's time).
   */
  order: ArchitectOrder;
  epochs: number;
  /** Linear learning-rate warm-up: lr (e+1)/W for the first W epochs, then the cosine; 0: none. */
  lrWarmupEpochs: number;
  /** Epochs of weight-only training before architecture steps begin. */
  warmupEpochs: number;
  initChannels: number;
  layers: number;
  /** Intermediate nodes per cell (the authors' `steps`). */
  nodes: number;
  /** Partial channel proportion 1/K. */
  k: number;
  /** Edge normalisation (betas). */
  edgeNorm: boolean;
  /** Without a search subset: the first fraction of the training set trains the weights, the rest the architecture. */
  trainPortion: number;
  /**
   * Per-class fractions [weights, architecture] of the training set, disjoint, drawn with the
   * seed and recorded in search-subset.json (search-subset.ts); null: the trainPortion split.
   */
  searchSubset: [number, number] | null;
  /** Reuse the sample recorded by this run directory (or search-subset.json file); null: draw it. */
  searchSubsetFrom: string | null;
  gradClip: number;
  seed: number;
  /** Use only the first N training images (before the train/architecture split; image folders: class-balanced); null: all. */
  limitTrain: number | null;
  /** Image folders: side of the square crops the network sees. */
  imageSize: number;
  /** Image folders: leave out images that fail to decode (named in the log) instead of stopping. */
  skipBadImages: boolean;
}

/** The paper's CIFAR-10 settings (spec section 6), on the bundled Fashion-MNIST subset. */
export const DEFAULT_SEARCH_CONFIG: Readonly<SearchConfig> = Object.freeze({
  network: 'cifar', dataset: 'fashion-mnist-bundled', data: null, batchSize: 256, lr: 0.1, lrMin: 0, momentum: 0.9,
  weightDecay: 3e-4, archLr: 6e-4, archWeightDecay: 1e-3, archGradClip: null, order: 1, epochs: 50, lrWarmupEpochs: 0,
  warmupEpochs: 15, initChannels: 16, layers: 8, nodes: 4, k: 4, edgeNorm: true, trainPortion: 0.5, searchSubset: null,
  searchSubsetFrom: null, gradClip: 5, seed: 2, limitTrain: null, imageSize: DEFAULT_IMAGE_SIZE, skipBadImages: false,
});

/**
 * The ImageNet search recipe (spec section 6, the authors' train_search_imagenet.py): the
 * defaults of a search with the ImageNet network, each overridable by its flag. The learning
 * rate warms up over 5 epochs when the batch exceeds 256 (their rule), see resolveSearchConfig.
 */
export const IMAGENET_SEARCH_RECIPE: Readonly<Partial<SearchConfig>> = Object.freeze({
  network: 'imagenet', k: 2, batchSize: 1024, lr: 0.5, lrMin: 0, weightDecay: 3e-4, archLr: 6e-3, archWeightDecay: 1e-3,
  archGradClip: 5, epochs: 50, warmupEpochs: 35, searchSubset: [...IMAGENET_SEARCH_SUBSET] as [number, number],
});

/** Learning-rate warm-up epochs of the ImageNet recipes, used when the batch exceeds 256. */
export const IMAGENET_LR_WARMUP_EPOCHS = 5;
export const IMAGENET_LR_WARMUP_MIN_BATCH = 257;

/**
 * A search's full settings from the ones given: the network defaults by the dataset (and
 * image size); with the ImageNet network the ImageNet recipe fills what was not given, else
 * DEFAULT_SEARCH_CONFIG. A --train-portion given without --search-subset means the portion
 * split. What this returns is what config.json records.
 */
export function resolveSearchConfig(given: Partial<SearchConfig>): SearchConfig {
  const defined = definedEntries(given);
  const dataset = defined.dataset ?? DEFAULT_SEARCH_CONFIG.dataset;
  const network = defined.network ?? defaultNetworkKind(dataset, givenImageSize(defined));
  const recipe: Partial<SearchConfig> = network === 'imagenet' ? IMAGENET_SEARCH_RECIPE : {};
  const config: SearchConfig = { ...DEFAULT_SEARCH_CONFIG, ...recipe, ...defined, network };
  if (network === 'imagenet' && defined.lrWarmupEpochs === undefined) {
    config.lrWarmupEpochs = config.batchSize >= IMAGENET_LR_WARMUP_MIN_BATCH ? IMAGENET_LR_WARMUP_EPOCHS : 0;
  }
  if (defined.trainPortion !== undefined && defined.searchSubset === undefined && defined.searchSubsetFrom === undefined) {
    config.searchSubset = null;
  }
  if (config.searchSubset !== null) config.searchSubset = [...config.searchSubset] as [number, number];
  return config;
}

/** Settings that do not change results; a resumed run may use others. */
export type SearchRuntime = RunRuntime;

export const DEFAULT_SEARCH_RUNTIME: Readonly<SearchRuntime> = DEFAULT_RUN_RUNTIME;

/** Adam betas of the architecture optimiser (spec section 6; not a flag in the authors' code either). */
export const ARCH_BETAS: readonly [number, number] = [0.5, 0.999];

/** Random-crop padding of the training augmentation (spec section 6). */
export const CROP_PADDING = 4;

export const GENOTYPE_FILE = 'genotype.json';
export const GENOTYPES_LOG_FILE = 'genotypes.jsonl';
const SEARCH_LOGS = [LOG_FILE, GENOTYPES_LOG_FILE] as const;

const CONFIG_CHECKS: Record<keyof SearchConfig, SettingCheck> = {
  network: (v) => (SEARCH_NETWORK_KINDS as readonly unknown[]).includes(v) ? null : `expected one of ${SEARCH_NETWORK_KINDS.join(', ')}`,
  dataset: (v) => (DATASET_NAMES as readonly unknown[]).includes(v) ? null : `expected one of ${DATASET_NAMES.join(', ')}`,
  data: (v) => v === null || (typeof v === 'string' && v !== '') ? null : 'expected a directory',
  batchSize: integerAtLeast(1),
  lr: numberAtLeast(0, true),
  lrMin: numberAtLeast(0),
  momentum: numberInRange(0, 1),
  weightDecay: numberAtLeast(0),
  archLr: numberAtLeast(0, true),
  archWeightDecay: numberAtLeast(0),
  archGradClip: (v) => v === null ? null : numberAtLeast(0, true)(v),
  order: (v) => (ARCHITECT_ORDERS as readonly unknown[]).includes(v) ? null : `expected ${ARCHITECT_ORDERS.join(' or ')}`,
  epochs: integerAtLeast(1),
  lrWarmupEpochs: integerAtLeast(0),
  warmupEpochs: integerAtLeast(0),
  initChannels: integerAtLeast(1),
  layers: integerAtLeast(1),
  nodes: integerAtLeast(1),
  k: integerAtLeast(1),
  edgeNorm: isBoolean,
  trainPortion: openUnitInterval,
  searchSubset: (v) => {
    if (v === null) return null;
    try {
      checkSubsetFractions(v);
      return null;
    } catch (error) {
      return (error as Error).message.replace(/^--search-subset: /, '').replace(/, got .*$/, '');
    }
  },
  searchSubsetFrom: (v) => v === null || (typeof v === 'string' && v !== '') ? null : 'expected a run directory',
  gradClip: numberAtLeast(0, true),
  seed: integerAtLeast(0),
  limitTrain: optionalIntegerAtLeast(2),
  imageSize: integerAtLeast(8),
  skipBadImages: isBoolean,
};

/** Checks every setting's type and range; the error names the flag. */
export function checkSearchConfig(config: SearchConfig): void {
  checkSettings(config, CONFIG_CHECKS);
  if (config.lrMin > config.lr) throw new RunInputError(`--lr-min ${config.lrMin} is above --lr ${config.lr}`);
  if (config.searchSubsetFrom !== null && config.searchSubset === null) {
    throw new RunInputError(`--search-subset-from ${config.searchSubsetFrom} reuses a per-class sample, which --no-search-subset switches off`);
  }
  checkDataSettings(config);
}

export const checkSearchRuntime: (runtime: SearchRuntime) => void = checkRunRuntime;

/**
 * A new search must take architecture steps: with a warm-up of all its epochs the genotype
 * would be read off the untrained, random alphas. The error says what to pass (the paper's
 * share, 15 of 50 epochs, of the epochs given).
 */
export function checkArchitectureSteps(config: SearchConfig): void {
  if (config.warmupEpochs < config.epochs) return;
  const warmup = Math.floor((config.epochs * 3) / 10);
  throw new RunInputError(`--warmup-epochs ${config.warmupEpochs} is not below --epochs ${config.epochs}, so no architecture step would run and the genotype would come from random alphas: `
    + `pass --warmup-epochs ${warmup} (the paper warms up for 30% of the epochs) or any number below ${config.epochs}, or --epochs ${config.warmupEpochs + 1} or more`);
}

/** The search network's configuration for a dataset with `inChannels` channels and `classes` classes. */
export function searchNetworkConfig(config: SearchConfig, inChannels: number, classes: number): SearchNetworkConfig {
  return {
    network: config.network, channels: config.initChannels, layers: config.layers, classes, inChannels, steps: config.nodes,
    multiplier: config.nodes, stemMultiplier: 3, k: config.k, edgeNormalization: config.edgeNorm,
  };
}

/**
 * The training set a search uses: loaded (errors become RunInputErrors), limited; image
 * folders verified, or, resuming, with the bad images the run recorded left out.
 */
export function loadSearchDataset(
  config: SearchConfig, runtime: SearchRuntime = DEFAULT_SEARCH_RUNTIME, knownBadImages?: readonly string[], verify = true,
): ImageDataset {
  return loadRunDataset({
    dataset: config.dataset, data: config.data, split: 'train', limit: config.limitTrain, imageSize: config.imageSize,
    skipBadImages: config.skipBadImages, knownBadImages, verify, pipeline: pipelineOptions(runtime),
  });
}

/**
 * A new search's dataset and halves with every image the halves use decoded once (image
 * folders): bad ones stop the run, or with --skip-bad-images are left out and the halves
 * drawn again from what is left, until every used image has been verified. A per-class
 * sample of a large folder (ImageNet's 10 % + 2.5 %) thus only decodes what it uses.
 */
function verifiedSearchData(
  config: SearchConfig, runtime: SearchRuntime, loaded: ImageDataset, reused: { record: SearchSubsetRecord; file: string } | null,
): { dataset: ImageDataset; halves: SearchHalves } {
  let dataset = loaded;
  checkSearchNetwork(config, dataset);
  const verified = new Set<string>();
  for (;;) {
    const halves = searchHalves(config, dataset, reused);
    if (!isImageFolder(dataset)) return { dataset, halves };
    const used = [...halves.train, ...halves.valid];
    const checked = verifyUsedImages(dataset, used, verified, { skipBadImages: config.skipBadImages, pipeline: pipelineOptions(runtime) });
    if (checked === dataset) return { dataset, halves };
    dataset = checked;
  }
}

/** Checks that the network can be built for the dataset: K divides C, even sizes before reductions, ... */
export function checkSearchNetwork(config: SearchConfig, dataset?: ImageDataset): void {
  asInputErrors(() => {
    validateSearchConfig(searchNetworkConfig(config, dataset?.channels ?? 1, dataset?.classes ?? 10));
    if (dataset === undefined) return;
    if (dataset.height !== dataset.width) throw new Error(`${dataset.name}: images are ${dataset.height}x${dataset.width}, the search needs square images`);
    validateSearchConfig(searchNetworkConfig(config, dataset.channels, dataset.classes), dataset.height);
  });
}

// ------------------------------------------------------------------------------------------
// Log records

export interface SearchStepRecord extends StepRecordBase {
  /** Cross-entropy of the weight step's batch. */
  loss: number;
  /** Accuracy of the weight step's batch (fraction). */
  acc: number;
  /** Cross-entropy of the architecture step's batch; absent during warm-up. */
  arch_loss?: number;
  /** Training images per second of this step (architecture step included in the time). */
  images_per_s: number;
  /** Milliseconds the step waited for its batches (both halves). */
  data_wait_ms: number;
}

export interface SearchEpochRecord {
  type: 'epoch';
  epoch: number;
  lr: number;
  train_loss: number;
  train_acc: number;
  /** On the architecture half, eval mode, no augmentation. */
  valid_loss: number;
  valid_acc: number;
  /** softmax(alpha) per edge row, one row of 8 per edge (operation order of spec section 1). */
  alphas: { normal: number[][]; reduce: number[][] };
  /** softmax(beta) per node: one array per node over its input edges; null without edge normalisation. */
  betas: { normal: number[][]; reduce: number[][] } | null;
  genotype: Genotype;
  /** skip_connect operations in the normal cell (the sign of DARTS' collapse). */
  skip_connects: number;
  seconds: number;
  /** Peak resident set size of the process so far. */
  peak_rss_mb: number;
  /** Peak bytes of tensor storage held by the kernel backend. */
  peak_tensor_mb: number;
}

export type SearchResumeRecord = ResumeRecord;

// ------------------------------------------------------------------------------------------
// The run

/** The JSON half of a search checkpoint (the tensors are in its safetensors file). */
export interface SearchCheckpointState extends RunCheckpointState {
  kind: 'search';
  samplers: { train: BatchSamplerState | KeyedBatchSamplerState; valid: BatchSamplerState | KeyedBatchSamplerState };
  /** The last epoch's genotype (null before the first epoch ended). */
  genotype: Genotype | null;
}

export type SearchProgress = RunProgress;

export type SearchEvents = RunEvents<SearchStepRecord, SearchEpochRecord>;

export interface SearchOutcome extends LoopOutcome {
  /** Genotype after the last finished epoch (null if none finished). */
  readonly genotype: Genotype | null;
}

export interface CreateSearchOptions {
  /** Settings; missing ones take DEFAULT_SEARCH_CONFIG's values. */
  config?: Partial<SearchConfig>;
  runtime?: Partial<SearchRuntime>;
  /** The run directory to create: absent or empty. */
  out: string;
  /** An already loaded training set used instead of loading config.dataset (tests, embedding). */
  dataset?: ImageDataset;
}

export interface ResumeSearchOptions {
  dir: string;
  /** Settings given again: each must equal the run's (a conflict is a RunInputError). */
  given?: Partial<SearchConfig>;
  /** Runtime settings for this session (absent: those the run was started with). */
  runtime?: Partial<SearchRuntime>;
  dataset?: ImageDataset;
}

function describeSearchSetting(key: keyof SearchConfig, value: unknown): string {
  if (key === 'edgeNorm') return value ? 'edge normalisation on' : '--no-edge-norm';
  if (key === 'searchSubset') return value === null ? '--no-search-subset' : `--search-subset ${(value as number[]).join(',')}`;
  if (value === null) return `no ${flagName(key)}`;
  return `${flagName(key)} ${String(value)}`;
}

/** Error when a setting given with --resume differs from the run's. */
export function checkSearchResumeSettings(stored: SearchConfig, given: Partial<SearchConfig>): void {
  checkResumeSettings(stored, given, describeSearchSetting);
}

/** A search run with its model, optimisers, data and run directory; `run()` drives it. */
export class SearchRun extends EpochRun<SearchStepRecord, SearchEpochRecord, SearchCheckpointState> {
  readonly model: SearchNetwork;
  readonly architect: Architect;
  readonly sgd: SGD;
  readonly stepsPerEpoch: number;
  protected readonly random: Random;
  private readonly trainSource: BatchSource;
  private readonly validSource: BatchSource;
  private readonly trainIndices: Int32Array;
  private readonly validIndices: Int32Array;
  private genotype: Genotype | null = null;

  private constructor(
    runDir: RunDirectory,
    readonly config: SearchConfig,
    readonly runtime: SearchRuntime,
    readonly dataset: ImageDataset,
    split: SearchHalves,
  ) {
    super(runDir, 'search', SEARCH_LOGS);
    // Spec section 4 / the authors' order: seed, then build (weights, then alphas and betas).
    manualSeed(config.seed);
    this.model = new SearchNetwork({
      ...searchNetworkConfig(config, dataset.channels, dataset.classes), activationBudgetBytes: runtime.activationBudgetMiB * 2 ** 20,
    });
    this.model.train();
    this.architect = createArchitect(config.order, this.model, {
      lr: config.archLr, betas: [...ARCH_BETAS], weightDecay: config.archWeightDecay, gradClip: config.archGradClip,
    });
    this.sgd = new SGD(this.model.weightParameters(), { lr: config.lr, momentum: config.momentum, weightDecay: config.weightDecay });
    this.random = new Random(config.seed);
    // In-memory sets: random crop with padding + flip from the run's generator; image folders
    // (the authors' train_search_imagenet.py): RandomResizedCrop + flip, keyed per sample.
    const augmentation: Augmentation = { crop: { size: dataset.height, padding: CROP_PADDING }, flip: true, cutout: 0 };
    const batches = (indices: Int32Array, stream: string): BatchSource => trainingBatches(dataset, indices, {
      batchSize: config.batchSize, random: this.random, seed: config.seed, stream, augmentation, colorJitter: false,
      pipeline: pipelineOptions(runtime),
    });
    this.trainSource = batches(split.train, 'train');
    this.validSource = batches(split.valid, 'valid');
    this.trainIndices = split.train;
    this.validIndices = split.valid;
    this.stepsPerEpoch = this.trainSource.batchesPerEpoch;
  }

  /** Checks everything (settings, directory, dataset, network), then creates the run directory. */
  static create(options: CreateSearchOptions): SearchRun {
    const given = definedEntries(options.config);
    // A reused sample brings its fractions (given ones must agree).
    let reused: { record: SearchSubsetRecord; file: string } | null = null;
    if (given.searchSubsetFrom !== undefined && given.searchSubsetFrom !== null) {
      given.searchSubsetFrom = resolve(given.searchSubsetFrom);
      reused = readSubsetRecord(given.searchSubsetFrom);
      const recorded = reused.record.fractions;
      if (given.searchSubset === null) throw new RunInputError(`--search-subset-from ${given.searchSubsetFrom} reuses a per-class sample, which --no-search-subset switches off`);
      if (given.searchSubset !== undefined && JSON.stringify(given.searchSubset) !== JSON.stringify(recorded)) {
        throw new RunInputError(`--search-subset ${given.searchSubset.join(',')} conflicts with the sample of --search-subset-from ${given.searchSubsetFrom}, drawn with ${recorded.join(',')}: leave --search-subset out`);
      }
      given.searchSubset = [...recorded] as [number, number];
    }
    const config = resolveSearchConfig(given);
    if (config.data !== null) config.data = resolve(config.data);
    const runtime: SearchRuntime = { ...DEFAULT_SEARCH_RUNTIME, ...definedEntries(options.runtime) };
    checkSearchConfig(config);
    checkArchitectureSteps(config);
    checkSearchRuntime(runtime);
    checkNewRunDirectory(options.out);
    checkSearchNetwork(config);
    const { dataset, halves } = verifiedSearchData(config, runtime, options.dataset ?? loadSearchDataset(config, runtime, undefined, false), reused);
    checkSearchNetwork(config, dataset);
    const backend = useBackend(runtime.threads);
    const configFile: RunConfigFile<SearchConfig, SearchRuntime> = {
      pcdarts_run: 1, command: 'search', created: new Date().toISOString(), config, runtime,
      info: {
        dataset: dataset.name, train_images: dataset.count, channels: dataset.channels, image_size: dataset.height,
        classes: dataset.classes, weight_images: halves.train.length, arch_images: halves.valid.length,
        steps_per_epoch: Math.ceil(halves.train.length / config.batchSize),
        backend: backend.name, threads: backend.threads,
        ...(isImageFolder(dataset) ? { bad_image_files: dataset.report.badImages } : {}),
      },
    };
    const runDir = RunDirectory.create(options.out, configFile as unknown as RunConfigFile);
    if (halves.record !== null) runDir.writeText(SEARCH_SUBSET_FILE, formatSubsetRecord(halves.record));
    const run = new SearchRun(runDir, config, runtime, dataset, halves);
    run.logDataset();
    return run;
  }

  /** Appends the 'data' record (what the dataset is, ignored files, left-out images) to the log. */
  private logDataset(): void {
    this.runDir.append({ type: 'data', ...datasetLogFacts(this.dataset) });
  }

  /**
   * Opens a run to continue it from its last checkpoint (from the start when it has none).
   * Everything is checked and loaded before anything in the directory changes.
   */
  static resume(options: ResumeSearchOptions): SearchRun {
    const stored = readRunConfig(options.dir, 'search');
    const config: SearchConfig = { ...DEFAULT_SEARCH_CONFIG, ...(stored.config as Partial<SearchConfig>) };
    asInputErrors(() => checkSearchConfig(config), `${options.dir}/config.json`);
    const given = { ...options.given };
    if (typeof given.searchSubsetFrom === 'string') given.searchSubsetFrom = resolve(given.searchSubsetFrom);
    checkSearchResumeSettings(config, given);
    const runtime: SearchRuntime = {
      ...DEFAULT_SEARCH_RUNTIME, ...(stored.runtime as Partial<SearchRuntime>), ...definedEntries(options.runtime),
    };
    checkSearchRuntime(runtime);
    const info = (stored.info ?? {}) as { train_images?: number; bad_image_files?: string[] };
    const dataset = options.dataset ?? loadSearchDataset(config, runtime, info.bad_image_files ?? []);
    if (info.train_images !== undefined && dataset.count !== info.train_images) {
      throw new RunInputError(`${options.dir}: the run trained on ${info.train_images} images of ${dataset.name}, ${config.data ?? 'its data'} now gives ${dataset.count}: the dataset changed since the run started`);
    }
    checkSearchNetwork(config, dataset);
    const halves = resumedSearchHalves(options.dir, config, dataset);
    useBackend(runtime.threads);
    // The lock first: a run another process writes is neither read nor touched.
    const runDir = RunDirectory.open(options.dir, 'search');
    let checkpoint: ReturnType<typeof readCheckpoint<SearchCheckpointState>>;
    try {
      checkpoint = readCheckpoint<SearchCheckpointState>(options.dir, { fallback: true });
    } catch (error) {
      runDir.close();
      throw error;
    }
    // A run that stopped between creating its directory and writing its sample: written now (the same sample).
    if (halves.record !== null) runDir.writeText(SEARCH_SUBSET_FILE, formatSubsetRecord(halves.record));
    const run = new SearchRun(runDir, config, runtime, dataset, halves);
    run.continueFrom(checkpoint);
    // The creation's 'data' record precedes every checkpoint; without one the log starts over.
    if (!run.finished && checkpoint === null) run.logDataset();
    return run;
  }

  protected totalEpochs(): number {
    return this.config.epochs;
  }

  protected checkpointInterval(): number {
    return this.runtime.checkpointEvery;
  }

  protected samplers(): Record<string, ResumableSampler> {
    return { train: this.trainSource.sampler!, valid: this.validSource.sampler! };
  }

  protected restoreExtras(state: SearchCheckpointState, tensors: Map<string, SafetensorsTensor>): void {
    loadModuleTensors('model.', this.model, tensors);
    loadNamedTensors('arch.', this.model.namedArchParameters(), tensors);
    this.sgd.loadStateDict(optimizerStateFrom('sgd.', tensors));
    this.architect.optimizer.loadStateDict(optimizerStateFrom('adam.', tensors));
    this.genotype = state.genotype;
  }

  protected checkpointExtras(): Pick<SearchCheckpointState, 'genotype'> {
    return { genotype: this.genotype };
  }

  protected checkpointTensors(): [string, SafetensorsInput][] {
    return [
      ...moduleTensors('model.', this.model),
      ...namedTensors('arch.', this.model.namedArchParameters()),
      ...optimizerTensors('sgd.', this.sgd.stateDict()),
      ...optimizerTensors('adam.', this.architect.optimizer.stateDict()),
    ];
  }

  /** The weights' learning rate of an epoch: warm-up (lrWarmupEpochs), then the cosine of spec section 6. */
  lrOf(epoch: number): number {
    const { lr, lrMin, epochs, lrWarmupEpochs } = this.config;
    return scheduledLr(epoch, { kind: 'cosine', lr, lrMin, epochs, warmupEpochs: lrWarmupEpochs });
  }

  /** The dataset indices of the two halves: weights (train) and architecture (valid). */
  get halves(): { train: Int32Array; valid: Int32Array } {
    return { train: this.trainIndices.slice(), valid: this.validIndices.slice() };
  }

  protected beginEpoch(): number {
    const lr = this.lrOf(this.epoch);
    this.sgd.lr = lr;
    return lr;
  }

  /** One search step (spec section 6); returns its log record. */
  protected trainStep(lr: number): SearchStepRecord {
    const started = performance.now();
    const archStep = this.epoch >= this.config.warmupEpochs;
    const weights = this.model.weightParameters();
    const result = tidy(() => {
      const train = nextBatch(this.trainSource);
      let waitMs = train.waitMs;
      let archLoss: number | null = null;
      if (archStep) {
        const valid = nextBatch(this.validSource);
        waitMs += valid.waitMs;
        // The second order's virtual step uses this step's training batch, learning rate and momentum.
        archLoss = this.architect.step(valid.x, valid.labels, { trainX: train.x, trainLabels: train.labels, lr, weightOptimizer: this.sgd });
        this.checkFinite('the architecture loss', archLoss);
        this.checkFiniteTensors('the architecture parameters', this.model.namedArchParameters().map(([name, t]) => [name, t.data.subarray(0, t.numel)] as const));
      }
      this.model.zeroGrad();
      const { loss, correct } = withFrozen(this.model.archParameters(), () => tidy(() => {
        testPoint('forward');
        const logits = this.model.forward(train.x);
        const correctCount = countCorrect(logits, train.labels);
        const l = ops.crossEntropy(logits, train.labels);
        testPoint('backward');
        backward(l);
        return { loss: l.item(), correct: correctCount };
      }));
      this.checkFinite('the loss', loss);
      this.checkFinite('the weight gradients\' norm', clipGradNorm(weights, this.config.gradClip));
      testPoint('optimizer-step');
      this.sgd.step();
      return { loss, correct, archLoss, images: train.labels.length, waitMs };
    });
    const seconds = (performance.now() - started) / 1000;
    this.totals.loss_sum += result.loss * result.images;
    this.totals.correct += result.correct;
    this.totals.images += result.images;
    return {
      type: 'step', epoch: this.epoch, step: this.step, global_step: this.globalStep, lr,
      loss: float32ForJson(result.loss), acc: result.correct / result.images,
      ...(result.archLoss !== null ? { arch_loss: float32ForJson(result.archLoss) } : {}),
      images_per_s: roundForLog(result.images / seconds, 4),
      data_wait_ms: roundForLog(result.waitMs, 4),
    };
  }

  /** Loss and accuracy on the architecture half: eval mode, no grad, no augmentation. */
  evaluateValid(): { loss: number; acc: number } {
    let lossSum = 0;
    let correct = 0;
    this.model.eval();
    const source = evaluationBatches(this.dataset, this.validIndices, this.config.batchSize, pipelineOptions(this.runtime));
    try {
      noGrad(() => {
        for (let b = 0; b < source.batchesPerEpoch; b++) {
          tidy(() => {
            const { x, labels } = nextBatch(source);
            const logits = this.model.forward(x);
            correct += countCorrect(logits, labels);
            lossSum += ops.crossEntropy(logits, labels).item() * labels.length;
          });
        }
      });
    } finally {
      source.close();
      this.model.train();
    }
    const n = this.validIndices.length;
    return { loss: lossSum / n, acc: correct / n };
  }

  /** Softmaxed architecture weights as logged (alphas per edge; betas per node). */
  architectureWeights(): Pick<SearchEpochRecord, 'alphas' | 'betas'> {
    const { nodes, edgeNorm } = this.config;
    const flat = (t: { data: Float32Array; numel: number }): Float32Array => t.data.subarray(0, t.numel);
    const alphas = (t: typeof this.model.alphasNormal): number[][] => softmaxRows(flat(t)).map(float32ArrayForJson);
    const betas = (t: typeof this.model.betasNormal): number[][] => {
      const weights = nodeSoftmax(flat(t), nodes);
      let start = 0;
      return betaSegments(nodes).map((length) => {
        const segment = float32ArrayForJson(weights.subarray(start, start + length));
        start += length;
        return segment;
      });
    };
    return {
      alphas: { normal: alphas(this.model.alphasNormal), reduce: alphas(this.model.alphasReduce) },
      betas: edgeNorm ? { normal: betas(this.model.betasNormal), reduce: betas(this.model.betasReduce) } : null,
    };
  }

  protected endEpoch(lr: number, seconds: () => number): SearchEpochRecord {
    const valid = this.evaluateValid();
    const genotype = this.model.genotype();
    this.genotype = genotype;
    const memory = kernels().memoryStats();
    const record: SearchEpochRecord = {
      type: 'epoch', epoch: this.epoch, lr,
      train_loss: roundForLog(this.totals.loss_sum / this.totals.images, 8),
      train_acc: roundForLog(this.totals.correct / this.totals.images, 8),
      valid_loss: roundForLog(valid.loss, 8), valid_acc: roundForLog(valid.acc, 8),
      ...this.architectureWeights(),
      genotype,
      skip_connects: genotype.normal.filter(([op]) => op === 'skip_connect').length,
      seconds: roundForLog(seconds(), 5),
      peak_rss_mb: roundForLog(process.resourceUsage().maxRSS / 1024, 5),
      peak_tensor_mb: roundForLog(memory.peakBytes / 2 ** 20, 5),
    };
    this.runDir.append({ epoch: this.epoch, genotype }, GENOTYPES_LOG_FILE);
    this.runDir.writeText(GENOTYPE_FILE, genotypeToJSON(genotype));
    this.runDir.append(record);
    return record;
  }

  /**
   * Runs to the end, or until `stop` is requested: then the current step finishes, a
   * checkpoint is written and the outcome says where a resume continues.
   */
  async run(options: RunOptions<SearchStepRecord, SearchEpochRecord> = {}): Promise<SearchOutcome> {
    const outcome = await this.runEpochs(options);
    return { ...outcome, genotype: this.genotype };
  }

  /** Frees the model's tensors, closes the logs and the batch sources. */
  override dispose(): void {
    super.dispose();
    this.trainSource.close();
    this.validSource.close();
  }

  protected disposeTensors(): void {
    for (const t of [...this.model.parameters(), ...this.model.archParameters()]) t.grad?.dispose();
    for (const e of this.model.stateEntries()) e.tensor.dispose();
    for (const t of this.model.archParameters()) t.dispose();
  }
}

/** The dataset indices that train the weights and the architecture, and the sample's record when there is one. */
interface SearchHalves {
  readonly train: Int32Array;
  readonly valid: Int32Array;
  readonly record: SearchSubsetRecord | null;
}

/**
 * What sampling reads of a dataset: labels, and for a file-backed dataset (an image folder,
 * whose `files[i]` is item i's path relative to its split folder) the file names.
 */
function labelledItems(dataset: ImageDataset): LabelledItems {
  const names = (dataset as { files?: readonly string[] }).files;
  return { name: dataset.name, count: dataset.count, labels: dataset.labels, classes: dataset.classes, ...(names ? { itemNames: names } : {}) };
}

function checkHalfSizes(config: SearchConfig, dataset: ImageDataset, train: number, valid: number): void {
  if (train > 0 && valid > 0) return;
  const what = train === 0 ? 'no training images' : 'no images for the architecture half';
  if (config.searchSubset === null) throw new RunInputError(`--train-portion ${config.trainPortion} of ${dataset.count} images${isImageFolder(dataset) ? ' (per class)' : ''} leaves ${what}`);
  throw new RunInputError(`--search-subset ${config.searchSubset.join(',')} of ${dataset.count} images in ${dataset.classes} classes leaves ${what}`);
}

/** The halves of a new run: the trainPortion split, a fresh per-class sample, or a reused one. */
function searchHalves(config: SearchConfig, dataset: ImageDataset, reused: { record: SearchSubsetRecord; file: string } | null): SearchHalves {
  if (config.searchSubset === null) {
    // The first portion in storage order; within every class for an image folder (stored grouped by class).
    const split = searchSplit(dataset, config.trainPortion);
    checkHalfSizes(config, dataset, split.train.length, split.valid.length);
    return { ...split, record: null };
  }
  const items = labelledItems(dataset);
  const subset = reused !== null
    ? subsetFromRecord(items, reused.record, reused.file)
    : sampleSearchSubset(items, config.searchSubset, config.seed);
  checkHalfSizes(config, dataset, subset.weights.length, subset.arch.length);
  const record = subsetRecord(items, subset, config.searchSubset, reused?.record.seed ?? config.seed, reused?.file ?? null);
  return { train: subset.weights, valid: subset.arch, record };
}

/**
 * The halves of a resumed run: its own search-subset.json when it has one (matched to the
 * dataset as loaded now); a run stopped before writing it draws the same sample again.
 */
function resumedSearchHalves(dir: string, config: SearchConfig, dataset: ImageDataset): SearchHalves {
  if (config.searchSubset === null || !existsSync(join(dir, SEARCH_SUBSET_FILE))) {
    const reused = config.searchSubset !== null && config.searchSubsetFrom !== null ? readSubsetRecord(config.searchSubsetFrom) : null;
    return searchHalves(config, dataset, reused);
  }
  const own = readSubsetRecord(dir, `${dir}:`);
  const subset = subsetFromRecord(labelledItems(dataset), own.record, own.file);
  checkHalfSizes(config, dataset, subset.weights.length, subset.arch.length);
  return { train: subset.weights, valid: subset.arch, record: null };
}

/** search-subset.json: one line per field, so that the counts read at a glance above the long item lists. */
export function formatSubsetRecord(record: SearchSubsetRecord): string {
  const lines = Object.entries(record).map(([key, value]) => `  ${JSON.stringify(key)}: ${JSON.stringify(value)}`);
  return `{\n${lines.join(',\n')}\n}\n`;
}

/** "epoch 3/50 | train loss 1.2345 acc 55.1% | valid loss 1.3 acc 50.2% | skip 2 | 41s" */
export function formatEpochLine(record: SearchEpochRecord, epochs: number): string {
  const percent = (v: number): string => `${(100 * v).toFixed(1)}%`;
  return `epoch ${record.epoch + 1}/${epochs} | train loss ${record.train_loss.toFixed(4)} acc ${percent(record.train_acc)}`
    + ` | valid loss ${record.valid_loss.toFixed(4)} acc ${percent(record.valid_acc)} | skip_connects ${record.skip_connects}`
    + ` | ${Math.round(record.seconds)}s | peak RSS ${Math.round(record.peak_rss_mb)} MB`;
}

/** "epoch 3/50 loss 1.2345 acc 55.1% 812 img/s" */
export function formatStepStatus(record: SearchStepRecord, epochs: number): string {
  return `epoch ${record.epoch + 1}/${epochs} loss ${record.loss.toFixed(4)} acc ${(100 * record.acc).toFixed(1)}%`
    + `${record.arch_loss !== undefined ? ` arch ${record.arch_loss.toFixed(4)}` : ''} ${Math.round(record.images_per_s)} img/s`;
}
