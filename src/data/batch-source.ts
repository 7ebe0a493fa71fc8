/**
 * Batches for the run loops, from any `ImageDataset`: the one way a search, a retraining, an
 * evaluation or `pcdarts test` gets its normalised float32 NCHW images.
 *
 * - In-memory sets (Fashion-MNIST, CIFAR): `BatchSampler` + `fillBatch` on the main thread,
 *   drawing from the run's generator exactly as before this interface existed (same bits).
 * - Image folders: a `KeyedBatchSampler` (its order depends only on seed, stream and epoch) and
 *   the decode pipeline (pipeline.ts): worker threads decode and augment the next batches
 *   while the engine computes, each sample's random parameters drawn from a generator keyed by
 *   (seed, stream, epoch, position), so the bits never depend on thread count, prefetch depth
 *   or a resume.
 *
 * A source with a sampler is resumable: `sampler.getState()` goes into checkpoints and
 * `sampler.setState()` restores the position (the pipeline refills itself from there).
 */
import type { Random } from '../tensor/random.js';
import { type Augmentation, batchImageShape, fillBatch, fillLabels } from './batch.js';
import type { Dataset } from './dataset.js';
import { BatchSampler } from './sampler.js';

/** A batch sampler whose position goes into checkpoints. */
export interface ResumableSampler<State = unknown> {
  readonly batchSize: number;
  /** Batches of one epoch, the last one possibly partial. */
  readonly batchesPerEpoch: number;
  /** The next batch of dataset indices (a fresh array). */
  next(): Int32Array;
  /** JSON-serialisable position. */
  getState(): State;
  setState(state: State): void;
}

/** What `BatchSource.next` wrote, besides the pixels. */
export interface BatchInfo {
  /** The dataset items of the batch, in batch order. */
  readonly indices: Int32Array;
  readonly labels: Int32Array;
  /** Milliseconds the caller was blocked until the batch was ready (in-memory sets: the time spent assembling it). */
  readonly waitMs: number;
}

export interface BatchSource {
  readonly batchSize: number;
  /** [channels, height, width] of one image of a batch. */
  readonly imageShape: readonly [number, number, number];
  /** Batches of one pass (epoch) over the source's items. */
  readonly batchesPerEpoch: number;
  /** The sampler of a training source (checkpointed), null for a fixed-order evaluation pass. */
  readonly sampler: ResumableSampler | null;
  /**
   * Writes the next batch into `allocate(count)` (a buffer of exactly count x C x H x W
   * float32 values: a tensor's data) and returns its items, labels and wait. A fixed-order
   * source starts over after its last batch.
   */
  next(allocate: (count: number) => Float32Array): BatchInfo;
  /** Frees what the source holds (prefetched batches); it cannot be used afterwards. */
  close(): void;
}

/** Fixed-order batches of `indices` (evaluation): consecutive slices, the last one possibly partial, then again. */
export class FixedOrder {
  private batch = 0;
  private passes = 0;

  constructor(readonly indices: Int32Array, readonly batchSize: number) {
    if (!Number.isInteger(batchSize) || batchSize <= 0) throw new Error(`FixedOrder: batch size must be a positive integer, got ${batchSize}`);
    if (indices.length === 0) throw new Error('FixedOrder: no indices');
  }

  get batchesPerEpoch(): number { return Math.ceil(this.indices.length / this.batchSize); }

  /** The batch that `next()` returns after `ahead` more calls (0: the next one), with its pass and position. */
  peekPosition(ahead: number): { indices: Int32Array; epoch: number; position: number } {
    const batches = this.batchesPerEpoch;
    const k = this.batch + ahead;
    const position = (k % batches) * this.batchSize;
    return {
      indices: this.indices.subarray(position, Math.min(position + this.batchSize, this.indices.length)),
      epoch: this.passes + Math.floor(k / batches), position,
    };
  }

  next(): Int32Array {
    const batch = this.peekPosition(0).indices.slice();
    this.batch += 1;
    if (this.batch === this.batchesPerEpoch) {
      this.batch = 0;
      this.passes += 1;
    }
    return batch;
  }
}

/**
 * An in-memory set's batches: each `next()` draws from `random` in the order of
 * `BatchSampler.next` then `fillBatch` (a run's draw order depends on it).
 */
export class InMemoryBatchSource implements BatchSource {
  readonly imageShape: readonly [number, number, number];
  private readonly fixed: FixedOrder | null;

  constructor(
    private readonly dataset: Dataset,
    readonly sampler: BatchSampler | null,
    fixed: FixedOrder | null,
    private readonly augmentation: Augmentation,
    private readonly random: Random,
  ) {
    if ((sampler === null) === (fixed === null)) throw new Error('InMemoryBatchSource: give a sampler or a fixed order');
    this.fixed = fixed;
    this.imageShape = batchImageShape(dataset, augmentation);
  }

  get batchSize(): number { return this.sampler?.batchSize ?? this.fixed!.batchSize; }

  get batchesPerEpoch(): number { return this.sampler?.batchesPerEpoch ?? this.fixed!.batchesPerEpoch; }

  next(allocate: (count: number) => Float32Array): BatchInfo {
    const started = performance.now();
    const indices = this.sampler !== null ? this.sampler.next() : this.fixed!.next();
    fillBatch(this.dataset, indices, allocate(indices.length), this.augmentation, this.random);
    const labels = new Int32Array(indices.length);
    fillLabels(this.dataset, indices, labels);
    return { indices, labels, waitMs: performance.now() - started };
  }

  close(): void {}
}
