/**
 * Training a found architecture from scratch (spec section 7) as a resumable run: settings
 * (the authors' train.py flags, CIFAR recipe as defaults), the step, the evaluation of each
 * epoch, the best model, the final test; and the two read-only uses of a genotype and a
 * trained model: `networkInfo` (parameters and mult-adds) and `testModel` (accuracy on the
 * test split). The loop, checkpoints, stop and resume are the run machinery shared with the
 * search (epoch-run.ts).
 *
 * A step: next batch of the training indices (reshuffled every epoch with the run's
 * generator, last partial batch kept), training augmentation (random crop with padding 4,
 * flip, cutout after normalisation), forward in train mode with drop path (masks drawn from
 * the run's generator), loss = CE(logits) + auxiliary_weight * CE(aux logits) (label
 * smoothing on both), backward, clip the global gradient norm, SGD with momentum and weight
 * decay. Per epoch e: lr_e = lr (1 + cos(pi e / epochs)) / 2, drop path p_e = p e / epochs.
 * At the end of each epoch the validation split (when asked for) and the test split are
 * evaluated in eval mode without gradients (no drop path, no auxiliary head, no augmentation).
 *
 *   DIR/config.json        settings (the genotype included) and facts (parameters, mult-adds)
 *   DIR/genotype.json      the genotype trained (so DIR works wherever a genotype is expected)
 *   DIR/log.jsonl          step, epoch, resume and, at the end, test records
 *   DIR/checkpoint/        the last checkpoint (checkpoint.ts)
 *   DIR/best.safetensors   weights of the best epoch by validation accuracy (with --valid-portion)
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

import {
  type Genotype, genotypeSteps, genotypeToJSON, PUBLISHED_GENOTYPE_NAMES, publishedGenotype, validateGenotype,
} from '../darts/genotype.js';
import {
  type Augmentation, BatchSampler, type BatchSamplerState, DATASET_NAMES, type Dataset, type DatasetName, NO_AUGMENTATION,
} from '../data/index.js';
import { evalNetworkComplexity, networkComplexity } from '../eval/complexity.js';
import { type EvalNetwork, type EvalNetworkOptions, NetworkCIFAR } from '../eval/network.js';
import { kernels } from '../kernels/registry.js';
import { disposeModule } from '../nn/layers.js';
import { clipGradNorm, SGD } from '../nn/optim.js';
import { readSafetensors, type SafetensorsInput, type SafetensorsTensor, writeSafetensors } from '../nn/safetensors.js';
import { cosineAnnealingLr } from '../nn/schedule.js';
import { backward, DEFAULT_EVAL_ACTIVATION_BUDGET_BYTES, noGrad } from '../tensor/autograd.js';
import * as ops from '../tensor/ops.js';
import { defaultRandom, manualSeed, Random } from '../tensor/random.js';
import { tidy } from '../tensor/tensor.js';
import { useBackend } from './backend.js';
import { moduleTensors, optimizerStateFrom, optimizerTensors, readCheckpoint } from './checkpoint.js';
import { datasetBatch, loadRunDataset } from './data.js';
import {
  EpochRun, type LoopOutcome, type ResumeRecord, type RunCheckpointState, type RunEvents, type RunOptions, type RunProgress,
  type StepRecordBase,
} from './epoch-run.js';
import { asInputErrors, oneLine, RunInputError } from './errors.js';
import { writeFileAtomic } from './files.js';
import { countTopK, float32ForJson, roundForLog } from './metrics.js';
import { checkNewRunDirectory, isRunDirectory, LOG_FILE, readRunConfig, type RunConfigFile, RunDirectory } from './run-dir.js';
import { GENOTYPE_FILE } from './search.js';
import {
  checkResumeSettings, checkRunRuntime, checkSettings, DEFAULT_RUN_RUNTIME, definedEntries, describeSetting, flagName,
  integerAtLeast, isBoolean, numberAtLeast, numberInRange, optionalIntegerAtLeast, type RunRuntime, type SettingCheck,
} from './settings.js';

/**
 * Settings that determine a training run's results. Keys are the camelCase forms of the CLI
 * flags (`--drop-path-prob` -> dropPathProb, `--no-cutout` -> cutout: false), as stored in
 * config.json.
 */
export interface TrainConfig {
  /** The architecture (config.json holds the genotype itself, not its name). */
  genotype: Genotype;
  dataset: DatasetName;
  /** Dataset directory; null: the dataset's standard location (none for the bundled subset). */
  data: string | null;
  batchSize: number;
  /** Initial learning rate, annealed by a cosine to 0 over the epochs. */
  lr: number;
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
}

/** The authors' published CIFAR-10 architecture, their train.py's default. */
export const DEFAULT_TRAIN_GENOTYPE = 'PC_DARTS_cifar';

/** The CIFAR-10 recipe of spec section 7, on the bundled Fashion-MNIST subset. */
export const DEFAULT_TRAIN_CONFIG: Readonly<TrainConfig> = Object.freeze({
  genotype: publishedGenotype(DEFAULT_TRAIN_GENOTYPE), dataset: 'fashion-mnist-bundled', data: null, batchSize: 96, lr: 0.025,
  momentum: 0.9, weightDecay: 3e-4, epochs: 600, initChannels: 36, layers: 20, auxiliary: true, auxiliaryWeight: 0.4,
  cutout: true, cutoutLength: 16, dropPathProb: 0.3, gradClip: 5, labelSmoothing: 0, seed: 0, validPortion: 0,
  limitTrain: null, limitTest: null,
});

/** Settings that do not change results; a resumed run may use others. */
export type TrainRuntime = RunRuntime;
export const DEFAULT_TRAIN_RUNTIME: Readonly<TrainRuntime> = Object.freeze({
  ...DEFAULT_RUN_RUNTIME, activationBudgetMiB: DEFAULT_EVAL_ACTIVATION_BUDGET_BYTES / 2 ** 20,
});

/** Random-crop padding of the training augmentation (spec section 7). */
export const TRAIN_CROP_PADDING = 4;

/** Weights of the best epoch by validation accuracy. */
export const BEST_MODEL_FILE = 'best.safetensors';

const TRAIN_LOGS = [LOG_FILE] as const;

const CONFIG_CHECKS: { [K in keyof TrainConfig]?: SettingCheck } = {
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
};

/** Checks every setting's type and range (the error names the flag) and the genotype. */
export function checkTrainConfig(config: TrainConfig): void {
  checkSettings(config, CONFIG_CHECKS);
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
  readonly train: Dataset;
  readonly test: Dataset;
}

/** Both splits of the run's dataset (errors become RunInputErrors), limited as configured. */
export function loadTrainData(config: TrainConfig): TrainData {
  const load = (split: 'train' | 'test', limit: number | null, limitFlag: string): Dataset =>
    loadRunDataset({ dataset: config.dataset, data: config.data, split, limit, limitFlag });
  return { train: load('train', config.limitTrain, '--limit-train'), test: load('test', config.limitTest, '--limit-test') };
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

function checkData(config: TrainConfig, data: TrainData): void {
  const { train, test } = data;
  if (train.channels !== test.channels || train.height !== test.height || train.width !== test.width || train.classes !== test.classes) {
    throw new RunInputError(`${train.name}: the test images (${test.channels}x${test.height}x${test.width}, ${test.classes} classes) do not match the training images (${train.channels}x${train.height}x${train.width}, ${train.classes} classes)`);
  }
  const { train: trainIndices, valid } = trainValidIndices(train.count, config.validPortion);
  if (trainIndices.length === 0) throw new RunInputError(`--valid-portion ${config.validPortion} of ${train.count} images leaves no training images`);
  if (config.validPortion > 0 && valid.length === 0) {
    throw new RunInputError(`--valid-portion ${config.validPortion} of ${train.count} images holds out no validation image: use a larger portion or --valid-portion 0`);
  }
}

/** The options of the training network for a dataset of `inChannels` channels and `classes` classes. */
function trainNetworkOptions(config: TrainConfig, inChannels: number, classes: number): EvalNetworkOptions {
  return {
    genotype: config.genotype, channels: config.initChannels, layers: config.layers, classes, inChannels,
    auxiliary: config.auxiliary, dropPathProb: 0,
  };
}

/**
 * Builds a network without disturbing the process-wide generator (parameter initialisation
 * draws from it, and a run's state includes it).
 */
function withScratchNetwork<T>(build: () => EvalNetwork, use: (network: EvalNetwork) => T): T {
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
 * Checks that the network can be built and take the dataset's images (even sizes before
 * every reduction, the auxiliary head's 8x8 input); returns its parameter count (auxiliary
 * head excluded) and mult-adds per image.
 */
export function checkTrainNetwork(config: TrainConfig, dataset: Dataset): { parameters: number; multAdds: number } {
  return asInputErrors(() => withScratchNetwork(
    () => new NetworkCIFAR(trainNetworkOptions(config, dataset.channels, dataset.classes)),
    (network) => {
      const complexity = networkComplexity(network, dataset.height, dataset.width);
      if (config.auxiliary) {
        // The head reads the output of cell floor(2 layers / 3); it needs an 8x8 feature map there.
        const reductions = network.cells.slice(0, network.auxiliaryIndex + 1).filter((cell) => cell.reduction).length;
        const height = dataset.height / 2 ** reductions;
        const width = dataset.width / 2 ** reductions;
        if (height !== 8 || width !== 8) {
          throw new Error(`the auxiliary head (after cell ${network.auxiliaryIndex}) needs an 8x8 feature map, but ${dataset.height}x${dataset.width} images with ${config.layers} layers give ${height}x${width} there: use --no-auxiliary`);
        }
      }
      return complexity;
    },
  ));
}

// ------------------------------------------------------------------------------------------
// Evaluation

/** Accuracies (fractions) and mean cross-entropy (no label smoothing) over a set of images. */
export interface Evaluation {
  top1: number;
  top5: number;
  loss: number;
  images: number;
}

/**
 * Evaluates `network` on the images `indices` of `dataset` (all when absent): eval mode (no
 * drop path, no auxiliary head, batch-norm running statistics), no gradients, no augmentation.
 */
export function evaluateNetwork(network: EvalNetwork, dataset: Dataset, options: { batchSize: number; indices?: Int32Array }): Evaluation {
  const indices = options.indices ?? Int32Array.from({ length: dataset.count }, (_, i) => i);
  if (indices.length === 0) throw new Error('evaluateNetwork: no images to evaluate');
  const unused = new Random(0); // without augmentation nothing is drawn
  const wasTraining = network.training;
  let top1 = 0;
  let top5 = 0;
  let lossSum = 0;
  network.eval();
  try {
    noGrad(() => {
      for (let start = 0; start < indices.length; start += options.batchSize) {
        tidy(() => {
          const { x, labels } = datasetBatch(dataset, indices.subarray(start, start + options.batchSize), NO_AUGMENTATION, unused);
          const { logits } = network.forward(x);
          top1 += countTopK(logits, labels, 1);
          top5 += countTopK(logits, labels, 5);
          lossSum += ops.crossEntropy(logits, labels).item() * labels.length;
        });
      }
    });
  } finally {
    network.train(wasTraining);
  }
  const n = indices.length;
  return { top1: top1 / n, top5: top5 / n, loss: lossSum / n, images: n };
}

/**
 * Loads a model's weights from checkpoint tensors: the `model.` entries of a run checkpoint,
 * or every entry of a plain state dict. The auxiliary head's weights are skipped when the
 * network has none (evaluation). Every other key must match: a checkpoint of another
 * architecture is a one-line RunInputError naming the first mismatching key.
 */
export function loadModelWeights(network: EvalNetwork, tensors: Map<string, SafetensorsTensor>, source: string): void {
  const prefix = [...tensors.keys()].some((name) => name.startsWith('model.')) ? 'model.' : '';
  const weights = new Map<string, ArrayLike<number>>();
  for (const [name, t] of tensors) {
    if (!name.startsWith(prefix)) continue;
    const key = name.slice(prefix.length);
    if (network.auxiliaryHead === null && key.startsWith('auxiliary_head.')) continue;
    weights.set(key, t.values);
  }
  asInputErrors(() => network.loadState(weights, { strict: true, what: source }));
}

// ------------------------------------------------------------------------------------------
// Log records

export interface TrainStepRecord extends StepRecordBase {
  /** The loss that was minimised: CE + auxiliary_weight * CE(aux), as the authors log it. */
  loss: number;
  /** Top-1 accuracy of the main logits on the batch (fraction). */
  acc: number;
}

export interface TrainEpochRecord {
  type: 'epoch';
  epoch: number;
  lr: number;
  drop_path_prob: number;
  /** Mean of the step losses (auxiliary term included) and accuracy over the epoch. */
  train_loss: number;
  train_acc: number;
  /** On the held-out validation split (only with --valid-portion). */
  valid_loss?: number;
  valid_acc?: number;
  test_loss: number;
  test_acc: number;
  seconds: number;
  /** Peak resident set size of the process so far. */
  peak_rss_mb: number;
  /** Peak bytes of tensor storage held by the kernel backend. */
  peak_tensor_mb: number;
}

/** The final test: the best model by validation accuracy with --valid-portion, else the last. */
export interface TrainTestRecord {
  type: 'test';
  top1: number;
  top5: number;
  loss: number;
  images: number;
  model: 'best' | 'last';
  /** 0-based epoch after which the tested weights were taken. */
  epoch: number;
}

export type TrainResumeRecord = ResumeRecord;

// ------------------------------------------------------------------------------------------
// The run

/** The best epoch by validation accuracy (its weights are in best.safetensors). */
export interface BestEpoch {
  epoch: number;
  valid_acc: number;
  valid_loss: number;
}

/** The JSON half of a training checkpoint. */
export interface TrainCheckpointState extends RunCheckpointState {
  kind: 'train';
  samplers: { train: BatchSamplerState };
  best: BestEpoch | null;
  /** The final test, once done (the run is then finished). */
  final_test: TrainTestRecord | null;
}

export type TrainProgress = RunProgress;
export type TrainEvents = RunEvents<TrainStepRecord, TrainEpochRecord>;

export interface TrainOutcome extends LoopOutcome {
  /** The final test, when finished. */
  readonly test: TrainTestRecord | null;
  readonly best: BestEpoch | null;
}

export interface CreateTrainOptions {
  /** Settings; missing ones take DEFAULT_TRAIN_CONFIG's values. */
  config?: Partial<TrainConfig>;
  runtime?: Partial<TrainRuntime>;
  /** The run directory to create: absent or empty. */
  out: string;
  /** Intermediate nodes the genotype must have (the --nodes flag); absent: not checked. */
  nodes?: number;
  /** How the genotype was given (a name, a file), for config.json. */
  genotypeSource?: string;
  /** Already loaded splits used instead of loading config.dataset (tests, embedding). */
  data?: TrainData;
}

export interface ResumeTrainOptions {
  dir: string;
  /** Settings given again: each must equal the run's (a conflict is a RunInputError). */
  given?: Partial<TrainConfig>;
  nodes?: number;
  /** Runtime settings for this session (absent: those the run was started with). */
  runtime?: Partial<TrainRuntime>;
  data?: TrainData;
}

/** A training run with its model, optimiser, data and run directory; `run()` drives it. */
export class TrainRun extends EpochRun<TrainStepRecord, TrainEpochRecord, TrainCheckpointState> {
  readonly model: NetworkCIFAR;
  readonly sgd: SGD;
  readonly stepsPerEpoch: number;
  protected readonly random: Random;
  private readonly trainSampler: BatchSampler;
  private readonly validIndices: Int32Array;
  private readonly augmentation: Augmentation;
  private best: BestEpoch | null = null;
  private finalTest: TrainTestRecord | null = null;

  private constructor(
    runDir: RunDirectory,
    readonly config: TrainConfig,
    readonly runtime: TrainRuntime,
    readonly data: TrainData,
  ) {
    super(runDir, 'train', TRAIN_LOGS);
    const { train } = data;
    // The authors' order: seed, then build the model (parameter initialisation).
    manualSeed(config.seed);
    this.random = new Random(config.seed);
    this.model = new NetworkCIFAR({
      ...trainNetworkOptions(config, train.channels, train.classes), random: this.random,
      activationBudgetBytes: runtime.activationBudgetMiB * 2 ** 20,
    });
    this.model.train();
    this.sgd = new SGD(this.model.parameters(), { lr: config.lr, momentum: config.momentum, weightDecay: config.weightDecay });
    const split = trainValidIndices(train.count, config.validPortion);
    this.trainSampler = new BatchSampler(split.train, config.batchSize, this.random);
    this.validIndices = split.valid;
    this.stepsPerEpoch = this.trainSampler.batchesPerEpoch;
    this.augmentation = {
      crop: { size: train.height, padding: TRAIN_CROP_PADDING }, flip: true, cutout: config.cutout ? config.cutoutLength : 0,
    };
  }

  /** Checks everything (settings, directory, data, network), then creates the run directory. */
  static create(options: CreateTrainOptions): TrainRun {
    const config: TrainConfig = { ...DEFAULT_TRAIN_CONFIG, ...definedEntries(options.config) };
    if (config.data !== null) config.data = resolve(config.data);
    const runtime: TrainRuntime = { ...DEFAULT_TRAIN_RUNTIME, ...definedEntries(options.runtime) };
    checkTrainConfig(config);
    checkGenotypeNodes(config.genotype, options.nodes);
    checkRunRuntime(runtime);
    checkNewRunDirectory(options.out);
    const data = options.data ?? loadTrainData(config);
    checkData(config, data);
    const backend = useBackend(runtime.threads);
    const complexity = checkTrainNetwork(config, data.train);
    const split = trainValidIndices(data.train.count, config.validPortion);
    const configFile: RunConfigFile<TrainConfig, TrainRuntime> = {
      pcdarts_run: 1, command: 'train', created: new Date().toISOString(), config, runtime,
      info: {
        genotype_source: options.genotypeSource ?? genotypeLabel(config.genotype), nodes: genotypeSteps(config.genotype),
        parameters: complexity.parameters, mult_adds: complexity.multAdds,
        dataset: data.train.name, train_images: split.train.length, valid_images: split.valid.length, test_images: data.test.count,
        channels: data.train.channels, image_size: data.train.height, classes: data.train.classes,
        steps_per_epoch: Math.ceil(split.train.length / config.batchSize), backend: backend.name, threads: backend.threads,
      },
    };
    const runDir = RunDirectory.create(options.out, configFile as unknown as RunConfigFile);
    runDir.writeText(GENOTYPE_FILE, genotypeToJSON(config.genotype));
    return new TrainRun(runDir, config, runtime, data);
  }

  /**
   * Opens a run to continue it from its last checkpoint (from the start when it has none).
   * Everything is checked and loaded before anything in the directory changes.
   */
  static resume(options: ResumeTrainOptions): TrainRun {
    const stored = readRunConfig(options.dir, 'train');
    const config: TrainConfig = { ...DEFAULT_TRAIN_CONFIG, ...(stored.config as Partial<TrainConfig>) };
    asInputErrors(() => checkTrainConfig(config), `${options.dir}/config.json`);
    checkTrainResumeSettings(config, options.given ?? {});
    checkGenotypeNodes(config.genotype, options.nodes);
    const runtime: TrainRuntime = {
      ...DEFAULT_TRAIN_RUNTIME, ...(stored.runtime as Partial<TrainRuntime>), ...definedEntries(options.runtime),
    };
    checkRunRuntime(runtime);
    const data = options.data ?? loadTrainData(config);
    checkData(config, data);
    useBackend(runtime.threads);
    const checkpoint = readCheckpoint<TrainCheckpointState>(options.dir);
    const run = new TrainRun(RunDirectory.open(options.dir, 'train'), config, runtime, data);
    run.continueFrom(checkpoint);
    return run;
  }

  /** True when every epoch and the final test are done. */
  override get finished(): boolean {
    return super.finished && this.finalTest !== null;
  }

  /** The best epoch so far by validation accuracy (null without a validation split). */
  get bestEpoch(): BestEpoch | null {
    return this.best;
  }

  /** The final test, once done. */
  get testResult(): TrainTestRecord | null {
    return this.finalTest;
  }

  protected totalEpochs(): number {
    return this.config.epochs;
  }

  protected checkpointInterval(): number {
    return this.runtime.checkpointEvery;
  }

  protected samplers(): Record<string, BatchSampler> {
    return { train: this.trainSampler };
  }

  protected restoreExtras(state: TrainCheckpointState, tensors: Map<string, SafetensorsTensor>): void {
    loadModelWeights(this.model, tensors, 'model weights');
    this.sgd.loadStateDict(optimizerStateFrom('sgd.', tensors));
    this.best = state.best ?? null;
    this.finalTest = state.final_test ?? null;
  }

  protected checkpointExtras(): Pick<TrainCheckpointState, 'best' | 'final_test'> {
    return { best: this.best, final_test: this.finalTest };
  }

  protected checkpointTensors(): [string, SafetensorsInput][] {
    return [...moduleTensors('model.', this.model), ...optimizerTensors('sgd.', this.sgd.stateDict())];
  }

  /** Drop-path probability of an epoch: p * e / epochs (the authors' train.py). */
  dropPathProbOf(epoch: number): number {
    return (this.config.dropPathProb * epoch) / this.config.epochs;
  }

  protected beginEpoch(): number {
    const lr = cosineAnnealingLr(this.epoch, { lr: this.config.lr, lrMin: 0, epochs: this.config.epochs });
    this.sgd.lr = lr;
    this.model.dropPathProb = this.dropPathProbOf(this.epoch);
    return lr;
  }

  /** One training step (spec section 7); returns its log record. */
  protected trainStep(lr: number): TrainStepRecord {
    const started = performance.now();
    const { auxiliaryWeight, gradClip } = this.config;
    const smoothing = { labelSmoothing: this.config.labelSmoothing };
    const result = tidy(() => {
      const { x, labels } = datasetBatch(this.data.train, this.trainSampler.next(), this.augmentation, this.random);
      this.model.zeroGrad();
      const { logits, logitsAux } = this.model.forward(x);
      const correct = countTopK(logits, labels, 1); // before backward frees the logits
      let loss = ops.crossEntropy(logits, labels, smoothing);
      if (logitsAux !== null && auxiliaryWeight > 0) {
        loss = ops.add(loss, ops.mulScalar(ops.crossEntropy(logitsAux, labels, smoothing), auxiliaryWeight));
      }
      backward(loss);
      clipGradNorm(this.model.parameters(), gradClip);
      this.sgd.step();
      return { loss: loss.item(), correct, images: labels.length };
    });
    const seconds = (performance.now() - started) / 1000;
    this.totals.loss_sum += result.loss * result.images;
    this.totals.correct += result.correct;
    this.totals.images += result.images;
    return {
      type: 'step', epoch: this.epoch, step: this.step, global_step: this.globalStep, lr,
      loss: float32ForJson(result.loss), acc: result.correct / result.images,
      images_per_s: roundForLog(result.images / seconds, 4),
    };
  }

  /** Loss and accuracies on the held-out validation split (null without one). */
  evaluateValid(): Evaluation | null {
    if (this.validIndices.length === 0) return null;
    return evaluateNetwork(this.model, this.data.train, { batchSize: this.config.batchSize, indices: this.validIndices });
  }

  /** Loss and accuracies of the current model on the test split. */
  evaluateTest(): Evaluation {
    return evaluateNetwork(this.model, this.data.test, { batchSize: this.config.batchSize });
  }

  protected endEpoch(lr: number, seconds: () => number): TrainEpochRecord {
    const valid = this.evaluateValid();
    const test = this.evaluateTest();
    if (valid !== null && (this.best === null || valid.top1 > this.best.valid_acc)) {
      this.best = { epoch: this.epoch, valid_acc: valid.top1, valid_loss: valid.loss };
      this.writeBestModel();
    }
    const memory = kernels().memoryStats();
    const record: TrainEpochRecord = {
      type: 'epoch', epoch: this.epoch, lr, drop_path_prob: this.model.dropPathProb,
      train_loss: roundForLog(this.totals.loss_sum / this.totals.images, 8),
      train_acc: roundForLog(this.totals.correct / this.totals.images, 8),
      ...(valid !== null ? { valid_loss: roundForLog(valid.loss, 8), valid_acc: roundForLog(valid.top1, 8) } : {}),
      test_loss: roundForLog(test.loss, 8), test_acc: roundForLog(test.top1, 8),
      seconds: roundForLog(seconds(), 5),
      peak_rss_mb: roundForLog(process.resourceUsage().maxRSS / 1024, 5),
      peak_tensor_mb: roundForLog(memory.peakBytes / 2 ** 20, 5),
    };
    this.runDir.append(record);
    return record;
  }

  /** Writes the current weights as the best model (atomically; the checkpoint that follows records it). */
  private writeBestModel(): void {
    const best = this.best!;
    const bytes = writeSafetensors(moduleTensors('model.', this.model), {
      format: 'pcdarts-model', genotype: JSON.stringify(this.config.genotype), init_channels: String(this.config.initChannels),
      layers: String(this.config.layers), epoch: String(best.epoch), valid_acc: String(best.valid_acc),
    });
    writeFileAtomic(join(this.directory, BEST_MODEL_FILE), bytes);
  }

  /** Tests the best model (with a validation split) or the current one on the test split. */
  private testFinalModel(): TrainTestRecord {
    const batchSize = this.config.batchSize;
    if (this.best === null) {
      const result = evaluateNetwork(this.model, this.data.test, { batchSize });
      return { type: 'test', ...roundEvaluation(result), model: 'last', epoch: this.config.epochs - 1 };
    }
    const path = join(this.directory, BEST_MODEL_FILE);
    const tensors = readModelFile(path);
    const { train, test } = this.data;
    const result = withScratchNetwork(
      () => new NetworkCIFAR({ ...trainNetworkOptions(this.config, train.channels, train.classes), auxiliary: false }),
      (network) => {
        loadModelWeights(network, tensors, path);
        return evaluateNetwork(network, test, { batchSize });
      },
    );
    return { type: 'test', ...roundEvaluation(result), model: 'best', epoch: this.best.epoch };
  }

  /**
   * Runs to the end (the epochs, then the final test), or until `stop` is requested: then
   * the current step finishes, a checkpoint is written and the outcome says where a resume
   * continues.
   */
  async run(options: RunOptions<TrainStepRecord, TrainEpochRecord> = {}): Promise<TrainOutcome> {
    const outcome = await this.runEpochs(options);
    if (outcome.status === 'finished' && this.finalTest === null) {
      const record = this.testFinalModel();
      this.runDir.append(record);
      this.finalTest = record;
      this.checkpoint(options.events);
    }
    return { ...outcome, test: this.finalTest, best: this.best };
  }

  protected disposeTensors(): void {
    disposeModule(this.model);
  }
}

function roundEvaluation(result: Evaluation): Pick<TrainTestRecord, 'top1' | 'top5' | 'loss' | 'images'> {
  return { top1: roundForLog(result.top1, 8), top5: roundForLog(result.top5, 8), loss: roundForLog(result.loss, 8), images: result.images };
}

/** The tensors of a safetensors file; a missing or unreadable file is a RunInputError. */
function readModelFile(path: string): Map<string, SafetensorsTensor> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(path));
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : oneLine(error);
    throw new RunInputError(`${path}: ${reason}`);
  }
  return asInputErrors(() => readSafetensors(bytes, path));
}

/** "epoch 3/600 | train loss 1.2345 acc 55.1% | valid ... | test loss 1.3 acc 50.2% | drop path 0.001 | 41s" */
export function formatTrainEpochLine(record: TrainEpochRecord, epochs: number): string {
  const percent = (v: number): string => `${(100 * v).toFixed(2)}%`;
  const valid = record.valid_acc !== undefined ? ` | valid loss ${record.valid_loss!.toFixed(4)} acc ${percent(record.valid_acc)}` : '';
  return `epoch ${record.epoch + 1}/${epochs} | lr ${record.lr.toPrecision(4)} | train loss ${record.train_loss.toFixed(4)} acc ${percent(record.train_acc)}`
    + `${valid} | test loss ${record.test_loss.toFixed(4)} acc ${percent(record.test_acc)}`
    + ` | ${Math.round(record.seconds)}s | peak RSS ${Math.round(record.peak_rss_mb)} MB`;
}

/** "epoch 3/600 loss 1.2345 acc 55.1% 812 img/s" */
export function formatTrainStepStatus(record: TrainStepRecord, epochs: number): string {
  return `epoch ${record.epoch + 1}/${epochs} loss ${record.loss.toFixed(4)} acc ${(100 * record.acc).toFixed(1)}% ${Math.round(record.images_per_s)} img/s`;
}

/** "top-1 91.20% top-5 99.80% loss 0.2534 (1000 images)" */
export function formatTestResult(result: { top1: number; top5: number; loss: number; images: number }): string {
  return `top-1 ${(100 * result.top1).toFixed(2)}% top-5 ${(100 * result.top5).toFixed(2)}% loss ${result.loss.toFixed(4)} (${result.images} test images)`;
}

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
  initChannels?: number;
  layers?: number;
  dataset?: DatasetName;
  data?: string | null;
  /** Evaluate only the first N test images (default: the run's --limit-test, else all). */
  limitTest?: number | null;
  /** Default: the run's batch size. */
  batchSize?: number;
  threads?: number | null;
  /** An already loaded test split (tests, embedding). */
  testData?: Dataset;
}

export interface TestModelResult extends Evaluation {
  /** The weights file that was tested. */
  checkpoint: string;
  dataset: string;
  genotype: Genotype;
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
  const config: TrainConfig = {
    ...DEFAULT_TRAIN_CONFIG, ...stored,
    ...definedEntries<TrainConfig>({
      genotype: options.genotype, initChannels: options.initChannels, layers: options.layers, dataset: options.dataset,
      data: options.data, limitTest: options.limitTest, batchSize: options.batchSize,
    }),
  };
  if (options.data !== undefined && config.data !== null) config.data = resolve(config.data);
  asInputErrors(() => checkTrainConfig(config), runDir === null ? undefined : `${runDir}/config.json`);
  checkGenotypeNodes(config.genotype, options.nodes);
  const test = options.testData ?? loadRunDataset({ dataset: config.dataset, data: config.data, split: 'test', limit: config.limitTest, limitFlag: '--limit-test' });
  useBackend(options.threads ?? null);
  const result = asInputErrors(() => withScratchNetwork(
    () => new NetworkCIFAR({ ...trainNetworkOptions(config, test.channels, test.classes), auxiliary: false }),
    (network) => {
      network.checkInputSize(test.height, test.width);
      loadModelWeights(network, tensors, weightsPath);
      return evaluateNetwork(network, test, { batchSize: config.batchSize });
    },
  ));
  return {
    ...result, checkpoint: weightsPath, dataset: test.name, genotype: config.genotype,
    initChannels: config.initChannels, layers: config.layers,
  };
}

// ------------------------------------------------------------------------------------------
// Network facts (pcdarts info)

/** Datasets whose network `networkInfo` can describe: the training datasets and ImageNet (mobile setting). */
export const INFO_DATASET_NAMES = ['cifar10', 'imagenet', 'fashion-mnist', 'fashion-mnist-bundled'] as const;
export type InfoDatasetName = (typeof INFO_DATASET_NAMES)[number];

export interface NetworkInfoOptions {
  genotype: Genotype;
  /** Default cifar10. */
  dataset?: InfoDatasetName;
  /** Default 36 (48 for imagenet). */
  initChannels?: number;
  /** Default 20 (14 for imagenet). */
  layers?: number;
  /** Intermediate nodes the genotype must have; absent: not checked. */
  nodes?: number;
}

export interface NetworkInfo {
  /** The authors' NetworkCIFAR or NetworkImageNet. */
  network: 'cifar' | 'imagenet';
  dataset: InfoDatasetName;
  init_channels: number;
  layers: number;
  nodes: number;
  classes: number;
  in_channels: number;
  input_size: number;
  /** Parameters of the main network (auxiliary head excluded). */
  parameters: number;
  /** Multiply-adds of one image's forward pass (spec section 7). */
  mult_adds: number;
}

const INFO_NETWORKS: Record<InfoDatasetName, { network: 'cifar' | 'imagenet'; classes: number; inChannels: number; inputSize: number; channels: number; layers: number }> = {
  'cifar10': { network: 'cifar', classes: 10, inChannels: 3, inputSize: 32, channels: 36, layers: 20 },
  'fashion-mnist': { network: 'cifar', classes: 10, inChannels: 1, inputSize: 32, channels: 36, layers: 20 },
  'fashion-mnist-bundled': { network: 'cifar', classes: 10, inChannels: 1, inputSize: 32, channels: 36, layers: 20 },
  'imagenet': { network: 'imagenet', classes: 1000, inChannels: 3, inputSize: 224, channels: 48, layers: 14 },
};

/** Parameters and mult-adds of the evaluation network of a genotype (spec section 7's table). */
export function networkInfo(options: NetworkInfoOptions): NetworkInfo {
  const dataset = options.dataset ?? 'cifar10';
  const shape = INFO_NETWORKS[dataset];
  if (shape === undefined) throw new RunInputError(`--dataset: expected one of ${INFO_DATASET_NAMES.join(', ')}, got ${JSON.stringify(dataset)}`);
  const initChannels = options.initChannels ?? shape.channels;
  const layers = options.layers ?? shape.layers;
  for (const [key, value] of [['initChannels', initChannels], ['layers', layers]] as const) {
    if (!(Number.isInteger(value) && value >= 1)) throw new RunInputError(`${flagName(key)}: expected an integer >= 1, got ${value}`);
  }
  const genotype = asInputErrors(() => validateGenotype(options.genotype));
  checkGenotypeNodes(genotype, options.nodes);
  const saved = defaultRandom().getState();
  const report = asInputErrors(() => {
    try {
      return evalNetworkComplexity(shape.network, {
        genotype, channels: initChannels, layers, classes: shape.classes, inChannels: shape.inChannels, auxiliary: false,
      }, shape.inputSize);
    } finally {
      defaultRandom().setState(saved);
    }
  });
  return {
    network: shape.network, dataset, init_channels: initChannels, layers, nodes: genotypeSteps(genotype), classes: shape.classes,
    in_channels: shape.inChannels, input_size: shape.inputSize, parameters: report.parameters, mult_adds: report.multAdds,
  };
}
