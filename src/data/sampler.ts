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
