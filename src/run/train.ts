/**
 * Training a found architecture from scratch (spec section 7) as a resumable run: the step,
 * the evaluation of each epoch, the best model, the final test. Its settings are in
 * train-settings.ts, evaluation in evaluate.ts; the read-only uses of a genotype and a trained
 * model are network-info.ts (`pcdarts info`) and test-model.ts (`pcdarts test`). The loop,
 * checkpoints, stop and resume are the run machinery shared with the search (epoch-run.ts).
 *
 * A step: next batch of the training indices (reshuffled every epoch with the run's
 * generator, last partial batch kept), training augmentation (random crop with padding 4,
 * flip, cutout after normalisation), forward in train mode with drop path (masks drawn from
 * the run's generator), loss = CE(logits) + auxiliary_weight * CE(aux logits) (label
 * smoothing on both), backward, clip the global gradient norm, SGD with momentum and weight
 * decay. Per epoch e: lr_e = lr (1 + cos(pi e / epochs)) / 2 (CIFAR) or the authors' linear
 * decay (ImageNet), after lrWarmupEpochs of linear warm-up; drop path p_e = p e / epochs.
 * The network is NetworkCIFAR or NetworkImageNet (config.network).
 * At the end of each epoch the validation split (when asked for) and the test split are
 * evaluated in eval mode without gradients (no drop path, no auxiliary head, no augmentation).
 *
 *   DIR/config.json        settings (the genotype included) and facts (parameters, mult-adds)
 *   DIR/genotype.json      the genotype trained (so DIR works wherever a genotype is expected)
 *   DIR/log.jsonl          step, epoch, resume and, at the end, test records
 *   DIR/checkpoint/        the last checkpoint (checkpoint.ts)
 *   DIR/best.safetensors   weights of the best epoch by validation accuracy (with --valid-portion)
 */
import { join, resolve } from 'node:path';

import { genotypeSteps, genotypeToJSON } from '../darts/genotype.js';
import {
  type Augmentation, type BatchSamplerState, type BatchSource, isImageFolder, type KeyedBatchSamplerState, type ResumableSampler,
} from '../data/index.js';
import { type EvalNetwork } from '../eval/network.js';
import { kernels } from '../kernels/registry.js';
import { disposeModule } from '../nn/layers.js';
import { clipGradNorm, SGD } from '../nn/optim.js';
import { type SafetensorsInput, type SafetensorsTensor, writeSafetensors } from '../nn/safetensors.js';
import { scheduledLr } from '../nn/schedule.js';
import { backward } from '../tensor/autograd.js';
import * as ops from '../tensor/ops.js';
import { manualSeed, Random } from '../tensor/random.js';
import { tidy } from '../tensor/tensor.js';
import { useBackend } from './backend.js';
import { moduleTensors, optimizerStateFrom, optimizerTensors, readCheckpoint } from './checkpoint.js';
import { datasetLogFacts, nextBatch, trainingBatches } from './data.js';
import {
  EpochRun, type LoopOutcome, type ResumeRecord, type RunCheckpointState, type RunEvents, type RunOptions, type RunProgress,
  type StepRecordBase,
} from './epoch-run.js';
import { asInputErrors, RunInputError } from './errors.js';
import { writeFileAtomic } from './files.js';
import { testPoint } from './test-hooks.js';
import { countTopK, float32ForJson, roundForLog } from './metrics.js';
import { checkNewRunDirectory, readRunConfig, type RunConfigFile, RunDirectory } from './run-dir.js';
import { GENOTYPE_FILE } from './search.js';
import { evaluateNetwork, type Evaluation, loadModelWeights, readModelFile, roundEvaluation } from './evaluate.js';
import {
  BEST_MODEL_FILE, buildTrainNetwork, checkData, checkGenotypeNodes, checkTrainConfig, checkTrainNetwork, checkTrainResumeSettings,
  DEFAULT_TRAIN_CONFIG, DEFAULT_TRAIN_RUNTIME, genotypeLabel, loadTrainData, readInitWeights, resolveTrainConfig, type TrainConfig, type TrainData,
  trainLrSchedule, type TrainRuntime, trainNetworkOptions, trainValidSplit, TRAIN_CROP_PADDING, TRAIN_LOGS, withScratchNetwork,
} from './train-settings.js';
import { checkRunRuntime, definedEntries, pipelineOptions } from './settings.js';

// ------------------------------------------------------------------------------------------
// Log records

export interface TrainStepRecord extends StepRecordBase {
  /** The loss that was minimised: CE + auxiliary_weight * CE(aux), as the authors log it. */
  loss: number;
  /** Top-1 accuracy of the main logits on the batch (fraction). */
  acc: number;
  /** Milliseconds the step waited for its batch. */
  data_wait_ms: number;
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
  samplers: { train: BatchSamplerState | KeyedBatchSamplerState };
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
  readonly model: EvalNetwork;
  readonly sgd: SGD;
  readonly stepsPerEpoch: number;
  protected readonly random: Random;
  private readonly trainSource: BatchSource;
  private readonly validIndices: Int32Array;
  private best: BestEpoch | null = null;
  private finalTest: TrainTestRecord | null = null;

  private constructor(
    runDir: RunDirectory,
    readonly config: TrainConfig,
    readonly runtime: TrainRuntime,
    readonly data: TrainData,
    initialWeights: Map<string, SafetensorsTensor> | null = null,
  ) {
    super(runDir, 'train', TRAIN_LOGS);
    const { train } = data;
    // The authors' order: seed, then build the model (parameter initialisation).
    manualSeed(config.seed);
    this.random = new Random(config.seed);
    this.model = buildTrainNetwork(config.network, {
      ...trainNetworkOptions(config, train.channels, train.classes), random: this.random,
      activationBudgetBytes: runtime.activationBudgetMiB * 2 ** 20,
    });
    // --init-from replaces the initial weights (after they were drawn, so the generator's
    // stream, and with it data order, augmentation and drop path, stays that of the seed).
    if (initialWeights !== null) loadModelWeights(this.model, initialWeights, `--init-from ${config.initFrom}`);
    this.model.train();
    this.sgd = new SGD(this.model.parameters(), { lr: config.lr, momentum: config.momentum, weightDecay: config.weightDecay });
    const split = trainValidSplit(train, config.validPortion);
    // In-memory sets: random crop with padding + flip + cutout from the run's generator; image
    // folders (the authors' train_imagenet.py): RandomResizedCrop + flip + ColorJitter, keyed
    // per sample (+ cutout when asked for).
    const cutout = config.cutout ? config.cutoutLength : 0;
    const augmentation: Augmentation = { crop: { size: train.height, padding: TRAIN_CROP_PADDING }, flip: true, cutout };
    this.trainSource = trainingBatches(train, split.train, {
      batchSize: config.batchSize, random: this.random, seed: config.seed, stream: 'train', augmentation, colorJitter: true, cutout,
      pipeline: pipelineOptions(runtime),
    });
    this.validIndices = split.valid;
    this.stepsPerEpoch = this.trainSource.batchesPerEpoch;
  }

  /** Appends the 'data' records (both splits: ignored files, left-out images) to the log. */
  private logDatasets(): void {
    this.runDir.append({ type: 'data', ...datasetLogFacts(this.data.train) });
    this.runDir.append({ type: 'data', ...datasetLogFacts(this.data.test) });
  }

  /** Checks everything (settings, directory, data, network), then creates the run directory. */
  static create(options: CreateTrainOptions): TrainRun {
    const config = resolveTrainConfig(definedEntries(options.config));
    if (config.data !== null) config.data = resolve(config.data);
    if (config.initFrom !== null && typeof config.initFrom === 'string') config.initFrom = resolve(config.initFrom);
    const runtime: TrainRuntime = { ...DEFAULT_TRAIN_RUNTIME, ...definedEntries(options.runtime) };
    checkTrainConfig(config);
    checkGenotypeNodes(config.genotype, options.nodes);
    checkRunRuntime(runtime);
    checkNewRunDirectory(options.out);
    const data = options.data ?? loadTrainData(config, pipelineOptions(runtime));
    checkData(config, data);
    const backend = useBackend(runtime.threads);
    const complexity = checkTrainNetwork(config, data.train);
    const init = config.initFrom === null ? null : readInitWeights(config, data.train);
    const split = trainValidSplit(data.train, config.validPortion);
    const configFile: RunConfigFile<TrainConfig, TrainRuntime> = {
      pcdarts_run: 1, command: 'train', created: new Date().toISOString(), config, runtime,
      info: {
        genotype_source: options.genotypeSource ?? genotypeLabel(config.genotype), nodes: genotypeSteps(config.genotype),
        parameters: complexity.parameters, mult_adds: complexity.multAdds,
        dataset: data.train.name, train_images: split.train.length, valid_images: split.valid.length, test_images: data.test.count,
        channels: data.train.channels, image_size: data.train.height, classes: data.train.classes,
        class_names: data.train.classNames, mean: data.train.mean, std: data.train.std,
        ...(init !== null ? { init_from_sha256: init.sha256 } : {}),
        steps_per_epoch: Math.ceil(split.train.length / config.batchSize), backend: backend.name, threads: backend.threads,
        ...(isImageFolder(data.train) && isImageFolder(data.test)
          ? { bad_image_files: { train: data.train.report.badImages, test: data.test.report.badImages } } : {}),
      },
    };
    const runDir = RunDirectory.create(options.out, configFile as unknown as RunConfigFile);
    runDir.writeText(GENOTYPE_FILE, genotypeToJSON(config.genotype));
    const run = new TrainRun(runDir, config, runtime, data, init?.tensors ?? null);
    run.logDatasets();
    return run;
  }

  /**
   * Opens a run to continue it from its last checkpoint (from the start when it has none).
   * Everything is checked and loaded before anything in the directory changes.
   */
  static resume(options: ResumeTrainOptions): TrainRun {
    const stored = readRunConfig(options.dir, 'train');
    const config: TrainConfig = { ...DEFAULT_TRAIN_CONFIG, ...(stored.config as Partial<TrainConfig>) };
    asInputErrors(() => checkTrainConfig(config), `${options.dir}/config.json`);
    const given = { ...options.given };
    if (typeof given.initFrom === 'string') given.initFrom = resolve(given.initFrom);
    checkTrainResumeSettings(config, given);
    checkGenotypeNodes(config.genotype, options.nodes);
    const runtime: TrainRuntime = {
      ...DEFAULT_TRAIN_RUNTIME, ...(stored.runtime as Partial<TrainRuntime>), ...definedEntries(options.runtime),
    };
    checkRunRuntime(runtime);
    const info = (stored.info ?? {}) as { train_images?: number; valid_images?: number; test_images?: number; bad_image_files?: { train: string[]; test: string[] } };
    const data = options.data ?? loadTrainData(config, pipelineOptions(runtime), info.bad_image_files ?? { train: [], test: [] });
    checkData(config, data);
    if (info.train_images !== undefined && info.valid_images !== undefined && info.test_images !== undefined) {
      const split = trainValidSplit(data.train, config.validPortion);
      if (split.train.length !== info.train_images || split.valid.length !== info.valid_images || data.test.count !== info.test_images) {
        throw new RunInputError(`${options.dir}: the run used ${info.train_images + info.valid_images} training and ${info.test_images} test images of ${data.train.name}, ${config.data ?? 'its data'} now gives ${data.train.count} and ${data.test.count}: the dataset changed since the run started`);
      }
    }
    useBackend(runtime.threads);
    // The lock first: a run another process writes is neither read nor touched.
    const runDir = RunDirectory.open(options.dir, 'train');
    let checkpoint: ReturnType<typeof readCheckpoint<TrainCheckpointState>>;
    // Without a checkpoint the run starts over, from the --init-from weights it started from.
    let initialWeights: Map<string, SafetensorsTensor> | null = null;
    try {
      checkpoint = readCheckpoint<TrainCheckpointState>(options.dir, { fallback: true });
      if (checkpoint === null && config.initFrom !== null) {
        const init = readInitWeights(config, data.train);
        const recorded = stored.info?.init_from_sha256;
        if (recorded !== undefined && recorded !== init.sha256) {
          throw new RunInputError(`--init-from ${config.initFrom} changed since the run ${options.dir} started (its sha256 differs from the one in config.json), and the run has no checkpoint to continue from`);
        }
        initialWeights = init.tensors;
      }
    } catch (error) {
      runDir.close();
      throw error;
    }
    const run = new TrainRun(runDir, config, runtime, data, initialWeights);
    run.continueFrom(checkpoint);
    // The creation's 'data' record precedes every checkpoint; without one the log starts over.
    if (!run.finished && checkpoint === null) run.logDatasets();
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

  protected samplers(): Record<string, ResumableSampler> {
    return { train: this.trainSource.sampler! };
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

  /** The learning rate of an epoch (warm-up, then the cosine or linear schedule). */
  lrOf(epoch: number): number {
    return scheduledLr(epoch, trainLrSchedule(this.config));
  }

  protected beginEpoch(): number {
    const lr = this.lrOf(this.epoch);
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
      const { x, labels, waitMs } = nextBatch(this.trainSource);
      this.model.zeroGrad();
      testPoint('forward');
      const { logits, logitsAux } = this.model.forward(x);
      const correct = countTopK(logits, labels, 1); // before backward frees the logits
      let loss = ops.crossEntropy(logits, labels, smoothing);
      if (logitsAux !== null && auxiliaryWeight > 0) {
        loss = ops.add(loss, ops.mulScalar(ops.crossEntropy(logitsAux, labels, smoothing), auxiliaryWeight));
      }
      const lossValue = loss.item();
      this.checkFinite('the loss', lossValue);
      testPoint('backward');
      backward(loss);
      this.checkFinite('the weight gradients\' norm', clipGradNorm(this.model.parameters(), gradClip));
      testPoint('optimizer-step');
      this.sgd.step();
      return { loss: lossValue, correct, images: labels.length, waitMs };
    });
    const seconds = (performance.now() - started) / 1000;
    this.totals.loss_sum += result.loss * result.images;
    this.totals.correct += result.correct;
    this.totals.images += result.images;
    return {
      type: 'step', epoch: this.epoch, step: this.step, global_step: this.globalStep, lr,
      loss: float32ForJson(result.loss), acc: result.correct / result.images,
      images_per_s: roundForLog(result.images / seconds, 4),
      data_wait_ms: roundForLog(result.waitMs, 4),
    };
  }

  /** Loss and accuracies on the held-out validation split (null without one). */
  evaluateValid(): Evaluation | null {
    if (this.validIndices.length === 0) return null;
    return evaluateNetwork(this.model, this.data.train, { batchSize: this.config.batchSize, indices: this.validIndices, pipeline: pipelineOptions(this.runtime) });
  }

  /** Loss and accuracies of the current model on the test split. */
  evaluateTest(): Evaluation {
    return evaluateNetwork(this.model, this.data.test, { batchSize: this.config.batchSize, pipeline: pipelineOptions(this.runtime) });
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
      format: 'pcdarts-model', genotype: JSON.stringify(this.config.genotype), dataset: this.config.dataset,
      network: this.config.network === 'imagenet' ? 'NetworkImageNet' : 'NetworkCIFAR',
      init_channels: String(this.config.initChannels),
      layers: String(this.config.layers), epoch: String(best.epoch), valid_acc: String(best.valid_acc),
    });
    writeFileAtomic(join(this.directory, BEST_MODEL_FILE), bytes);
  }

  /** Tests the best model (with a validation split) or the current one on the test split. */
  private testFinalModel(): TrainTestRecord {
    const batchSize = this.config.batchSize;
    if (this.best === null) {
      const result = evaluateNetwork(this.model, this.data.test, { batchSize, pipeline: pipelineOptions(this.runtime) });
      return { type: 'test', ...roundEvaluation(result), model: 'last', epoch: this.config.epochs - 1 };
    }
    const path = join(this.directory, BEST_MODEL_FILE);
    const tensors = readModelFile(path);
    const { train, test } = this.data;
    const result = withScratchNetwork(
      () => buildTrainNetwork(this.config.network, { ...trainNetworkOptions(this.config, train.channels, train.classes), auxiliary: false }),
      (network) => {
        loadModelWeights(network, tensors, path);
        return evaluateNetwork(network, test, { batchSize, pipeline: pipelineOptions(this.runtime) });
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

  /** Frees the model's tensors, closes the logs and the batch source. */
  override dispose(): void {
    super.dispose();
    this.trainSource.close();
  }

  protected disposeTensors(): void {
    disposeModule(this.model);
  }
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
