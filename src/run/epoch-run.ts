/**
 * The run machinery that the search (search.ts) and the retraining (train.ts) share: epochs
 * of steps, one seeded generator, step records in the run directory's log, atomic checkpoints
 * every N steps and at every epoch end, a graceful stop between two steps, and an exact
 * resume. A subclass supplies what differs: the model's tensors, the step, the end of an
 * epoch and the extra checkpoint state.
 *
 * Exact resume: a checkpoint holds the position (epoch, step), the run's generator and the
 * process-wide one, every batch sampler's state, the running epoch totals and the byte
 * lengths of the append-only logs. A resumed run restores them, cuts the logs back to those
 * lengths (records written after the checkpoint are replayed) and goes on: its logs then read
 * as an uninterrupted run's, a 'resume' record aside.
 */
import type { BatchSamplerState, KeyedBatchSamplerState, ResumableSampler } from '../data/index.js';
import type { SafetensorsInput, SafetensorsTensor } from '../nn/safetensors.js';
import { defaultRandom, type Random, type RandomState } from '../tensor/random.js';
import { commitCheckpoint, type CommittedCheckpoint, type LoadedCheckpoint } from './checkpoint.js';
import { asInputErrors, firstNonFinite, NonFiniteError } from './errors.js';
import type { RunDirectory } from './run-dir.js';
import { type StopRequest, type StopSignal, yieldToEventLoop } from './signals.js';

/** The fields every step record of log.jsonl has (search and training add their own). */
export interface StepRecordBase {
  type: 'step';
  /** 0-based epoch. */
  epoch: number;
  /** 0-based step within the epoch. */
  step: number;
  /** 0-based step counted over the whole run. */
  global_step: number;
  lr: number;
  /** Training images per second of this step. */
  images_per_s: number;
}

/** Running sums over the steps of the current epoch. */
export interface EpochTotals {
  loss_sum: number;
  correct: number;
  images: number;
  /** Seconds spent in the epoch so far (over interruptions). */
  seconds: number;
}

export function emptyEpochTotals(): EpochTotals {
  return { loss_sum: 0, correct: 0, images: 0, seconds: 0 };
}

/** The JSON half of every run checkpoint (the tensors are in its safetensors file). */
export interface RunCheckpointState {
  /** 'search' or 'train'. */
  kind: string;
  /** Epoch in progress (epochs when the run is finished). */
  epoch: number;
  /** Steps of that epoch already done. */
  step: number;
  global_step: number;
  /** Data order, augmentation and drop-path generator. */
  random: RandomState;
  /** The process-wide generator (parameter initialisation). */
  default_random: RandomState;
  samplers: { [name: string]: BatchSamplerState | KeyedBatchSamplerState };
  epoch_totals: EpochTotals;
  /** Byte lengths of the append-only logs when the checkpoint was written. */
  logs: Record<string, number>;
}

export interface RunProgress {
  /** Steps done over the whole run. */
  readonly done: number;
  readonly total: number;
  readonly epoch: number;
  readonly epochs: number;
}

export interface RunEvents<StepRecord, EpochRecord> {
  onStart?(info: { total: number; done: number; stepsPerEpoch: number; resumed: boolean }): void;
  onStep?(record: StepRecord, progress: RunProgress): void;
  onEpoch?(record: EpochRecord, progress: RunProgress): void;
  onCheckpoint?(info: { epoch: number; step: number; serial: number }): void;
}

/** Written to log.jsonl when a run continues from a checkpoint. */
export interface ResumeRecord {
  type: 'resume';
  epoch: number;
  step: number;
  time: string;
  /** The latest checkpoint was damaged: which file and why; the run continues from the previous one. */
  checkpoint_fallback?: { file: string; reason: string };
  /** The run lock was left by a process that died (e.g. SIGKILLed): whose it was. */
  took_over_lock?: { host: string; pid: number; started: string; purpose: string };
}

export interface LoopOutcome {
  readonly status: 'finished' | 'stopped';
  /** The signal that stopped it, when stopped. */
  readonly signal: StopSignal | null;
  /** Position where a resume continues (epoch === epochs when finished). */
  readonly epoch: number;
  readonly step: number;
  readonly dir: string;
}

export interface RunOptions<StepRecord, EpochRecord> {
  events?: RunEvents<StepRecord, EpochRecord>;
  stop?: StopRequest;
}

/**
 * A resumable run of epochs of steps. Per step: `trainStep` (which returns the step record
 * that is logged); at the end of each epoch: `endEpoch` (which logs its own records), then a
 * checkpoint. Subclasses build everything in their constructors and call `continueFrom` when
 * they resume.
 */
export abstract class EpochRun<StepRecord, EpochRecord, State extends RunCheckpointState> {
  protected epoch = 0;
  protected step = 0;
  protected globalStep = 0;
  protected totals: EpochTotals = emptyEpochTotals();
  /** Position of the last checkpoint written or loaded. */
  protected lastCheckpoint: { epoch: number; step: number } | null = null;
  /** The last checkpoint written or loaded intact: the next write keeps it as the previous one. */
  private committed: CommittedCheckpoint | null = null;
  /** One-line warnings of the resume (a damaged latest checkpoint, a stale lock taken over), for the caller to show. */
  readonly warnings: string[] = [];
  private disposed = false;

  /** Batches (steps) in one epoch. */
  abstract readonly stepsPerEpoch: number;
  /** The generator of data order, augmentation and the like (checkpointed). */
  protected abstract readonly random: Random;

  /**
   * @param kind the checkpoint kind ('search', 'train'); a checkpoint of another kind is refused
   * @param logNames the append-only logs of the run directory that checkpoints track
   */
  protected constructor(readonly runDir: RunDirectory, private readonly kind: State['kind'], private readonly logNames: readonly string[]) {}

  protected abstract totalEpochs(): number;
  protected abstract checkpointInterval(): number;
  /** The batch samplers whose state goes into checkpoints, by name. */
  protected abstract samplers(): Record<string, ResumableSampler>;
  /** Prepares the epoch `this.epoch` (learning rate, ...); returns its learning rate. */
  protected abstract beginEpoch(): number;
  /** One step; adds to `this.totals`; returns the record to log. */
  protected abstract trainStep(lr: number): StepRecord;
  /** Evaluates and logs the epoch that just ended; `seconds()` is the time spent in it so far. */
  protected abstract endEpoch(lr: number, seconds: () => number): EpochRecord;
  /** The tensors of a checkpoint (model, optimiser state, ...). */
  protected abstract checkpointTensors(): [string, SafetensorsInput][];
  /** The subclass's own fields of the checkpoint state. */
  protected abstract checkpointExtras(): Omit<State, keyof RunCheckpointState>;
  /** Loads the tensors and the subclass's own fields of a checkpoint. */
  protected abstract restoreExtras(state: State, tensors: Map<string, SafetensorsTensor>): void;
  /** Frees the model's tensors. */
  protected abstract disposeTensors(): void;

  get directory(): string {
    return this.runDir.path;
  }

  get position(): { epoch: number; step: number; globalStep: number } {
    return { epoch: this.epoch, step: this.step, globalStep: this.globalStep };
  }

  /** True when nothing is left to do. */
  get finished(): boolean {
    return this.epoch >= this.totalEpochs();
  }

  protected progress(): RunProgress {
    return { done: this.globalStep, total: this.totalEpochs() * this.stepsPerEpoch, epoch: this.epoch, epochs: this.totalEpochs() };
  }

  /** Stops the run (NonFiniteError) when `value` is a NaN or an infinity; `what` names it ("the loss"). */
  protected checkFinite(what: string, value: number): void {
    if (!Number.isFinite(value)) throw new NonFiniteError(what, value, this.epoch, this.step, this.lastCheckpoint, this.directory);
  }

  /**
   * Stops the run when any value of the named tensors is a NaN or an infinity; `at` is the
   * step to name (default: the current one).
   */
  protected checkFiniteTensors(
    what: string, entries: Iterable<readonly [string, { values: ArrayLike<number> } | ArrayLike<number>]>,
    at: { epoch: number; step: number } = { epoch: this.epoch, step: this.step },
  ): void {
    for (const [name, tensor] of entries) {
      const values = 'values' in tensor ? tensor.values : tensor;
      const bad = firstNonFinite(values as ArrayLike<number>);
      if (bad !== null) throw new NonFiniteError(`${what} (${name})`, bad, at.epoch, at.step, this.lastCheckpoint, this.directory);
    }
  }

  /**
   * Writes a checkpoint of the current position (after syncing the logs it records); returns
   * its serial. A non-finite value in its tensors stops the run instead (never checkpointed).
   */
  checkpoint(events?: RunEvents<StepRecord, EpochRecord>, epochSecondsSoFar = this.totals.seconds): number {
    const tensors = this.checkpointTensors();
    // The step that made this state: the last one done.
    const made = this.step > 0 ? { epoch: this.epoch, step: this.step - 1 } : { epoch: this.epoch - 1, step: this.stepsPerEpoch - 1 };
    this.checkFiniteTensors('a tensor to checkpoint', tensors.filter(([, t]) => t.dtype !== 'I64') as [string, { values: ArrayLike<number> }][], made);
    const samplers: Record<string, BatchSamplerState | KeyedBatchSamplerState> = {};
    for (const [name, sampler] of Object.entries(this.samplers())) samplers[name] = sampler.getState() as BatchSamplerState | KeyedBatchSamplerState;
    const common: RunCheckpointState = {
      kind: this.kind, epoch: this.epoch, step: this.step, global_step: this.globalStep,
      random: this.random.getState(), default_random: defaultRandom().getState(),
      samplers, epoch_totals: { ...this.totals, seconds: epochSecondsSoFar },
      logs: this.runDir.syncLogs(this.logNames),
    };
    const state = { ...common, ...this.checkpointExtras() } as State;
    this.committed = commitCheckpoint(this.runDir.path, { tensors, state }, this.committed === null ? {} : { previous: this.committed });
    const serial = this.committed.serial;
    this.lastCheckpoint = { epoch: this.epoch, step: this.step };
    events?.onCheckpoint?.({ epoch: this.epoch, step: this.step, serial });
    return serial;
  }

  private restore(state: State, tensors: Map<string, SafetensorsTensor>): void {
    if (state.kind !== this.kind) throw new Error(`not a ${this.kind} checkpoint (kind '${String(state.kind)}')`);
    const epochs = this.totalEpochs();
    if (!(Number.isInteger(state.epoch) && state.epoch >= 0 && state.epoch <= epochs
      && Number.isInteger(state.step) && state.step >= 0 && state.step <= this.stepsPerEpoch)) {
      throw new Error(`position epoch ${state.epoch} step ${state.step} does not fit ${epochs} epochs of ${this.stepsPerEpoch} steps`);
    }
    this.restoreExtras(state, tensors);
    this.random.setState(state.random);
    defaultRandom().setState(state.default_random);
    for (const [name, sampler] of Object.entries(this.samplers())) {
      const saved = state.samplers?.[name];
      if (saved === undefined) throw new Error(`no state of the '${name}' batch sampler`);
      sampler.setState(saved);
    }
    this.epoch = state.epoch;
    this.step = state.step;
    this.globalStep = state.global_step;
    this.totals = { ...state.epoch_totals };
    this.lastCheckpoint = { epoch: state.epoch, step: state.step };
  }

  /**
   * Continues from `checkpoint` (null: from the start). On a bad checkpoint the run is
   * disposed and a RunInputError thrown, the directory untouched. Unless the run is finished,
   * the directory is then prepared: debris of interrupted writes removed, logs cut back to the
   * checkpoint, a resume record appended.
   */
  protected continueFrom(checkpoint: LoadedCheckpoint<State> | null): void {
    try {
      if (checkpoint !== null) asInputErrors(() => this.restore(checkpoint.state, checkpoint.tensors), `${this.directory}: checkpoint`);
    } catch (error) {
      this.dispose();
      throw error;
    }
    if (checkpoint !== null) this.committed = { serial: checkpoint.serial, stateText: checkpoint.stateText };
    const fallback = checkpoint?.fallback ?? null;
    if (fallback !== null) {
      this.warnings.push(`${fallback.reason}; resuming from the previous checkpoint (epoch ${this.epoch} step ${this.step}) instead`);
    }
    const tookOver = this.runDir.lock?.tookOver ?? null;
    if (tookOver !== null) {
      this.warnings.push(`took over the run lock of pcdarts ${tookOver.purpose} (pid ${tookOver.pid} on ${tookOver.host}, since ${tookOver.started}), which is no longer running`);
    }
    if (this.finished) return; // nothing to continue: leave the directory as it is
    this.runDir.cleanTemporaryFiles();
    this.runDir.truncateLogs(checkpoint?.state.logs ?? Object.fromEntries(this.logNames.map((name) => [name, 0])));
    const record: ResumeRecord = {
      type: 'resume', epoch: this.epoch, step: this.step, time: new Date().toISOString(),
      ...(fallback !== null ? { checkpoint_fallback: { ...fallback } } : {}),
      ...(tookOver !== null ? { took_over_lock: { host: tookOver.host, pid: tookOver.pid, started: tookOver.started, purpose: tookOver.purpose } } : {}),
    };
    this.runDir.append(record);
  }

  /**
   * Runs the remaining epochs, or until `stop` is requested: then the current step finishes,
   * a checkpoint is written and the outcome says where a resume continues.
   */
  protected async runEpochs(options: RunOptions<StepRecord, EpochRecord> = {}): Promise<LoopOutcome> {
    const { events, stop } = options;
    const epochs = this.totalEpochs();
    const checkpointEvery = this.checkpointInterval();
    events?.onStart?.({ total: epochs * this.stepsPerEpoch, done: this.globalStep, stepsPerEpoch: this.stepsPerEpoch, resumed: this.lastCheckpoint !== null });
    let segmentStart = performance.now();
    const epochSeconds = (): number => this.totals.seconds + (performance.now() - segmentStart) / 1000;
    const stopped = (signal: StopSignal): LoopOutcome => {
      if (this.lastCheckpoint?.epoch !== this.epoch || this.lastCheckpoint.step !== this.step) this.checkpoint(events, epochSeconds());
      return { status: 'stopped', signal, epoch: this.epoch, step: this.step, dir: this.directory };
    };
    while (this.epoch < epochs) {
      const lr = this.beginEpoch();
      while (this.step < this.stepsPerEpoch) {
        if (stop?.signal) return stopped(stop.signal);
        const record = this.trainStep(lr);
        this.runDir.append(record);
        this.step += 1;
        this.globalStep += 1;
        events?.onStep?.(record, this.progress());
        if (this.globalStep % checkpointEvery === 0) this.checkpoint(events, epochSeconds());
        await yieldToEventLoop();
      }
      if (stop?.signal) return stopped(stop.signal);
      const record = this.endEpoch(lr, epochSeconds);
      this.epoch += 1;
      this.step = 0;
      this.totals = emptyEpochTotals();
      this.checkpoint(events, 0);
      segmentStart = performance.now();
      events?.onEpoch?.(record, this.progress());
      await yieldToEventLoop();
    }
    return { status: 'finished', signal: null, epoch: this.epoch, step: this.step, dir: this.directory };
  }

  /** Frees the model's tensors and closes the logs. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.runDir.close();
    this.disposeTensors();
  }
}
