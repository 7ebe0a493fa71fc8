/**
 * Batches of dataset indices, reshuffled every epoch (spec section 6). One class serves
 * both halves of the search:
 * - the weight loop calls `next()` `batchesPerEpoch` times per epoch;
 * - the architecture loop calls `next()` once per step across weight epochs: a persistent
 *   iterator that starts a new, reshuffled epoch whenever the current one is exhausted.
 * The reshuffle is lazy (drawn by the first `next()` after exhaustion), so the random draws
 * interleave with the other draws of the run in a fixed order. The last partial batch of an
 * epoch is kept. `getState()` / `setState()` (with the generator's own state) resume a run
 * exactly.
 */
import type { Random } from '../tensor/random.js';
import { keyedRandom, streamKey } from './keyed-random.js';

/** JSON-serialisable position of a `BatchSampler`. */
export interface BatchSamplerState {
  readonly batchSize: number;
  /** Epochs started so far (0 before the first `next()`). */
  readonly epoch: number;
  /** The current epoch's order of dataset indices (empty before the first `next()`). */
  readonly order: number[];
  /** Position in `order` of the next batch's first index. */
  readonly cursor: number;
}

export class BatchSampler {
  private readonly indices: Int32Array;
  private order: Int32Array;
  private cursor = 0;
  private epochCount = 0;

  constructor(indices: ArrayLike<number>, readonly batchSize: number, private readonly random: Random) {
    if (!Number.isInteger(batchSize) || batchSize <= 0) throw new Error(`BatchSampler: batch size must be a positive integer, got ${batchSize}`);
    if (indices.length === 0) throw new Error('BatchSampler: no indices to sample from');
    this.indices = Int32Array.from(indices);
    this.order = new Int32Array(0);
  }

  /** Number of indices sampled from. */
  get size(): number { return this.indices.length; }

  /** Batches in one epoch, the last one possibly partial. */
  get batchesPerEpoch(): number { return Math.ceil(this.indices.length / this.batchSize); }

  /** Epochs started so far (the current epoch is `epoch - 1`, 0-based). */
  get epoch(): number { return this.epochCount; }

  /** Batches left before the next call to `next()` reshuffles. */
  get batchesLeftInEpoch(): number { return Math.ceil((this.order.length - this.cursor) / this.batchSize); }

  /**
   * The next batch of dataset indices (a fresh array the caller may keep). Starts a new
   * epoch, drawing one permutation from the generator, when the current one is exhausted.
   */
  next(): Int32Array {
    if (this.cursor >= this.order.length) {
      // As torch's SubsetRandomSampler: indices[randperm(n)].
      const permutation = this.random.permutation(this.indices.length);
      const order = new Int32Array(this.indices.length);
      for (let i = 0; i < order.length; i++) order[i] = this.indices[permutation[i]];
      this.order = order;
      this.cursor = 0;
      this.epochCount++;
    }
    const end = Math.min(this.cursor + this.batchSize, this.order.length);
    const batch = this.order.slice(this.cursor, end);
    this.cursor = end;
    return batch;
  }

  getState(): BatchSamplerState {
    return { batchSize: this.batchSize, epoch: this.epochCount, order: Array.from(this.order), cursor: this.cursor };
  }

  /** Restores a position saved by `getState()` of a sampler over the same indices. */
  setState(state: BatchSamplerState): void {
    if (state.batchSize !== this.batchSize) {
      throw new Error(`BatchSampler state: batch size ${state.batchSize} does not match this sampler's ${this.batchSize}`);
    }
    const n = this.indices.length;
    if (state.order.length !== 0 && state.order.length !== n) {
      throw new Error(`BatchSampler state: order has ${state.order.length} indices, expected ${n}`);
    }
    if (!Number.isInteger(state.cursor) || state.cursor < 0 || state.cursor > state.order.length) {
      throw new Error(`BatchSampler state: cursor ${state.cursor} outside 0..${state.order.length}`);
    }
    if (!Number.isInteger(state.epoch) || state.epoch < 0 || (state.epoch === 0) !== (state.order.length === 0)) {
      throw new Error(`BatchSampler state: epoch ${state.epoch} inconsistent with an order of ${state.order.length} indices`);
    }
    const order = Int32Array.from(state.order);
    const sortedOrder = order.slice().sort();
    const sortedIndices = this.indices.slice().sort();
    if (order.length !== 0 && !sortedOrder.every((v, i) => v === sortedIndices[i])) {
      throw new Error('BatchSampler state: order is not a permutation of this sampler\'s indices');
    }
    this.order = order;
    this.cursor = state.cursor;
    this.epochCount = state.epoch;
  }
}

/** JSON-serialisable position of a `KeyedBatchSampler` (its orders are recomputed, not stored). */
export interface KeyedBatchSamplerState {
  readonly keyed: true;
  readonly batchSize: number;
  /** Number of indices sampled from (a resume must see the same). */
  readonly size: number;
  /** Epochs started so far (0 before the first `next()`). */
  readonly epoch: number;
  /** Position in the current epoch's order of the next batch's first index. */
  readonly cursor: number;
}

/** Where a batch item sits in its sampler's stream: the key of its random augmentation. */
export interface SamplePosition {
  /** 0-based epoch of the sampler. */
  readonly epoch: number;
  /** Position in that epoch's order. */
  readonly position: number;
}

/**
 * `BatchSampler`'s semantics (reshuffled every epoch, lazily; last partial batch kept) with
 * each epoch's order a pure function of (seed, stream, epoch): the permutation is drawn from
 * `keyedRandom(seed, streamKey(stream), epoch)`. Nothing else draws from it, so batches can be
 * read ahead (`peek`) for prefetching without changing anything, and a checkpoint only needs
 * the position. Used for file-backed datasets; in-memory ones keep `BatchSampler` and the
 * run's generator (their bits predate this class).
 */
export class KeyedBatchSampler {
  private readonly indices: Int32Array;
  private readonly streamWord: number;
  private cursor = 0;
  private epochCount = 0;
  private cachedEpoch = -1;
  private cachedOrder: Int32Array = new Int32Array(0);

  constructor(indices: ArrayLike<number>, readonly batchSize: number, readonly seed: number, readonly stream: string) {
    if (!Number.isInteger(batchSize) || batchSize <= 0) throw new Error(`KeyedBatchSampler: batch size must be a positive integer, got ${batchSize}`);
    if (indices.length === 0) throw new Error('KeyedBatchSampler: no indices to sample from');
    if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) throw new Error(`KeyedBatchSampler: seed must be an integer in [0, 2^32), got ${seed}`);
    this.indices = Int32Array.from(indices);
    this.streamWord = streamKey(stream);
  }

  get size(): number { return this.indices.length; }

  get batchesPerEpoch(): number { return Math.ceil(this.indices.length / this.batchSize); }

  get epoch(): number { return this.epochCount; }

  /** The order of dataset indices of a 0-based epoch. */
  orderOf(epoch: number): Int32Array {
    if (epoch !== this.cachedEpoch) {
      const permutation = keyedRandom(this.seed, this.streamWord, epoch).permutation(this.indices.length);
      const order = new Int32Array(this.indices.length);
      for (let i = 0; i < order.length; i++) order[i] = this.indices[permutation[i]];
      this.cachedOrder = order;
      this.cachedEpoch = epoch;
    }
    return this.cachedOrder;
  }

  /**
   * The batch that `next()` returns after `ahead` more calls (0: the very next one), with the
   * epoch and the position in that epoch's order of its first item. Changes nothing.
   */
  peek(ahead: number): { indices: Int32Array; epoch: number; position: number } {
    const n = this.indices.length;
    const perEpoch = this.batchesPerEpoch;
    // Batches left in the current epoch (0 before the first next()).
    const left = this.epochCount === 0 ? 0 : Math.ceil((n - this.cursor) / this.batchSize);
    let epoch: number;
    let position: number;
    if (ahead < left) {
      epoch = this.epochCount - 1;
      position = this.cursor + ahead * this.batchSize;
    } else {
      const beyond = ahead - left;
      epoch = this.epochCount + Math.floor(beyond / perEpoch);
      position = (beyond % perEpoch) * this.batchSize;
    }
    const order = this.orderOf(epoch);
    return { indices: order.slice(position, Math.min(position + this.batchSize, n)), epoch, position };
  }

  next(): Int32Array {
    const { indices, epoch, position } = this.peek(0);
    this.epochCount = epoch + 1;
    this.cursor = position + indices.length;
    return indices;
  }

  getState(): KeyedBatchSamplerState {
    return { keyed: true, batchSize: this.batchSize, size: this.indices.length, epoch: this.epochCount, cursor: this.cursor };
  }

  setState(state: KeyedBatchSamplerState): void {
    if (state === null || typeof state !== 'object' || state.keyed !== true) throw new Error('KeyedBatchSampler state: not the state of a keyed sampler');
    if (state.batchSize !== this.batchSize) throw new Error(`KeyedBatchSampler state: batch size ${state.batchSize} does not match this sampler's ${this.batchSize}`);
    if (state.size !== this.indices.length) throw new Error(`KeyedBatchSampler state: ${state.size} indices, this sampler has ${this.indices.length}`);
    if (!Number.isInteger(state.epoch) || state.epoch < 0 || !Number.isInteger(state.cursor) || state.cursor < 0
      || state.cursor > this.indices.length || (state.epoch === 0 && state.cursor !== 0)) {
      throw new Error(`KeyedBatchSampler state: epoch ${state.epoch} cursor ${state.cursor} is not a position of ${this.indices.length} indices`);
    }
    this.epochCount = state.epoch;
    this.cursor = state.cursor;
  }
}
