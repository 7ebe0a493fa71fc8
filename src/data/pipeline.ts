/**
 * The image-folder pipeline: decoding and augmentation in worker threads (decode-worker.ts,
 * each running sharp with one libvips thread), the next batches prefetched into shared memory
 * while the engine computes, memory bounded by the prefetch depth (batches of float32 pixels).
 *
 * The main thread stays synchronous: it posts a job per batch and, when it needs the batch,
 * waits on the job's shared counter with Atomics.wait (the wait is what the step log records).
 * Nothing here draws from a shared generator: the batch order is a `KeyedBatchSampler`'s and
 * every item's augmentation is keyed by (seed, stream, epoch, position), so the bits do not
 * depend on the number of workers, the prefetch depth, or where a run was resumed.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

import type { BatchInfo, BatchSource } from './batch-source.js';
import { FixedOrder } from './batch-source.js';
import type { ImageFolderDataset } from './dataset.js';
import { streamKey } from './keyed-random.js';
import { CONTROL_BYTES, CONTROL_MESSAGE_OFFSET, type DecodeJob } from './pipeline-protocol.js';
import type { KeyedBatchSampler } from './sampler.js';

// sharp runs on libuv's thread pool (4 threads unless set before its first use): give every
// decode worker one, whatever the core count.
if (process.env.UV_THREADPOOL_SIZE === undefined) process.env.UV_THREADPOOL_SIZE = String(Math.max(4, availableParallelism() + 2));

/** Settings of the pipeline that do not change results. */
export interface PipelineOptions {
  /** Decode worker threads (default: every core). */
  readonly workers?: number;
  /** Batches decoded ahead of the one in use (default 2). */
  readonly prefetch?: number;
}

export const DEFAULT_PREFETCH = 2;

/** A decode pipeline stops waiting after this long without progress (a dead worker). */
const STALL_MS = 300_000;

class DecodePool {
  private readonly workers: Worker[] = [];

  constructor(readonly size: number) {
    for (let i = 0; i < size; i++) {
      const worker = new Worker(new URL('./decode-worker.js', import.meta.url));
      worker.unref(); // never keeps a process alive
      this.workers.push(worker);
    }
  }

  submit(job: DecodeJob): void {
    for (const worker of this.workers) worker.postMessage(job);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((worker) => worker.terminate()));
  }
}

let sharedPool: DecodePool | null = null;

/** The process's decode workers, (re)started with `workers` threads when that differs. */
function decodePool(workers: number): DecodePool {
  if (!Number.isInteger(workers) || workers < 1) throw new Error(`decode workers must be an integer >= 1, got ${workers}`);
  if (sharedPool !== null && sharedPool.size !== workers) {
    void sharedPool.close();
    sharedPool = null;
  }
  sharedPool ??= new DecodePool(workers);
  return sharedPool;
}

/** Stops the decode workers (they never keep a process alive, but tests and embedders may want them gone). */
export async function closeDecodePool(): Promise<void> {
  const pool = sharedPool;
  sharedPool = null;
  await pool?.close();
}

export function defaultDecodeWorkers(): number {
  return availableParallelism();
}

/** A job's failure as an Error naming the file. */
function jobError(control: Int32Array, dataset: ImageFolderDataset, files: readonly string[]): Error {
  const length = control[4];
  const message = new TextDecoder().decode(new Uint8Array(control.buffer, CONTROL_MESSAGE_OFFSET, length).slice());
  return new Error(`${dataset.root}/${files[control[3]]}: cannot decode: ${message}: ${BAD_IMAGE_HINT}`);
}

/** Blocks until `count` items of the job are finished or it failed; returns false on failure. */
function waitForJob(control: Int32Array, count: number): boolean {
  let last = Atomics.load(control, 1);
  let lastProgress = performance.now();
  while (last < count) {
    if (Atomics.load(control, 2) === 2) return false;
    Atomics.wait(control, 1, last, 1000);
    const now = Atomics.load(control, 1);
    if (now !== last) {
      last = now;
      lastProgress = performance.now();
    } else if (performance.now() - lastProgress > STALL_MS) {
      throw new Error(`the image decode pipeline made no progress for ${STALL_MS / 1000} s (a decode worker died?)`);
    }
  }
  return Atomics.load(control, 2) !== 2;
}

/** What `verifyImages` found. */
export interface VerifyResult {
  /** Items that failed to decode, ascending. */
  readonly bad: number[];
  /** The first failure's message, naming the file. */
  readonly firstError: string | null;
}

/**
 * Runs a per-file job ('verify' or 'prepare') over `files` (relative to `root`) in the decode
 * workers and waits for every file (a failure does not stop the others); synchronous.
 * Returns each file's status (0 ok, 1 failed, prepare's codes otherwise) and the first failure.
 */
export function runFileJob(
  mode: 'verify' | 'prepare', root: string, files: readonly string[], options: PipelineOptions & { outRoot?: string; size?: number; quality?: number } = {},
): { status: Int32Array; firstError: { file: string; message: string } | null } {
  const status = new Int32Array(new SharedArrayBuffer(4 * Math.max(1, files.length))).subarray(0, files.length);
  if (files.length === 0) return { status, firstError: null };
  const pool = decodePool(options.workers ?? defaultDecodeWorkers());
  const control = new Int32Array(new SharedArrayBuffer(CONTROL_BYTES));
  pool.submit({
    mode, root, files, size: options.size ?? 0, mean: [], std: [], seed: 0, stream: 0, flip: false, jitter: null, cutout: 0,
    control: control.buffer as SharedArrayBuffer, status: status.buffer as SharedArrayBuffer, outRoot: options.outRoot, quality: options.quality,
  });
  let last = Atomics.load(control, 1);
  let lastProgress = performance.now();
  while (last < files.length) {
    Atomics.wait(control, 1, last, 1000);
    const now = Atomics.load(control, 1);
    if (now !== last) {
      last = now;
      lastProgress = performance.now();
    } else if (performance.now() - lastProgress > STALL_MS) {
      throw new Error(`the image decode pipeline made no progress for ${STALL_MS / 1000} s (a decode worker died?)`);
    }
  }
  if (Atomics.load(control, 2) !== 2) return { status, firstError: null };
  const message = new TextDecoder().decode(new Uint8Array(control.buffer, CONTROL_MESSAGE_OFFSET, control[4]).slice());
  return { status, firstError: { file: files[control[3]], message } };
}

/** Decodes every item of `indices` (default: all) in the decode workers; synchronous. */
export function verifyImages(dataset: ImageFolderDataset, options: PipelineOptions = {}, indices?: ArrayLike<number>): VerifyResult {
  const items = indices === undefined ? dataset.files : Array.from(indices, (i) => dataset.files[i]);
  const { status, firstError } = runFileJob('verify', dataset.root, items, options);
  const bad: number[] = [];
  for (let i = 0; i < items.length; i++) if (status[i] !== 0) bad.push(indices === undefined ? i : indices[i]);
  return {
    bad,
    firstError: firstError === null ? null : `${dataset.root}/${firstError.file}: cannot decode: ${firstError.message}: ${BAD_IMAGE_HINT}`,
  };
}

const BAD_IMAGE_HINT = 'expected a readable .jpg .jpeg .png .webp .bmp .tif image (--skip-bad-images leaves such files out)';

/** How a folder source transforms its items. */
export type FolderTransform =
  | {
    readonly kind: 'train'; readonly flip: boolean; readonly jitter: readonly [number, number, number, number] | null;
    /** Cutout side after normalisation (0: off), the authors' Cutout drawn after everything else. */
    readonly cutout: number;
  }
  | { readonly kind: 'eval' };

interface InFlight {
  readonly indices: Int32Array;
  readonly epoch: number;
  readonly position: number;
  readonly control: Int32Array;
  readonly slot: Float32Array;
}

/** The order of a folder source: a keyed sampler (training) or a fixed pass (evaluation). */
type Order =
  | { readonly kind: 'sampler'; readonly sampler: KeyedBatchSampler }
  | { readonly kind: 'fixed'; readonly fixed: FixedOrder };

/**
 * Batches of an image folder, decoded ahead by the worker pool. Prefetched batches are
 * matched to the sampler's position on every `next()`: after a `sampler.setState()` (a
 * resume) the stale ones are drained and the pipeline refills from the new position.
 */
export class FolderBatchSource implements BatchSource {
  readonly imageShape: readonly [number, number, number];
  private readonly pool: DecodePool;
  private readonly prefetch: number;
  private readonly inFlight: InFlight[] = [];
  private readonly freeSlots: Float32Array[] = [];
  private readonly imageValues: number;
  private readonly streamWord: number;
  private closed = false;

  private constructor(
    private readonly dataset: ImageFolderDataset,
    private readonly order: Order,
    private readonly transform: FolderTransform,
    private readonly seed: number,
    stream: string,
    options: PipelineOptions,
  ) {
    const size = dataset.height;
    if (dataset.width !== size) throw new Error(`FolderBatchSource: ${dataset.name} images must be square, got ${dataset.height}x${dataset.width}`);
    this.imageShape = [3, size, size];
    this.imageValues = 3 * size * size;
    this.prefetch = options.prefetch ?? DEFAULT_PREFETCH;
    if (!Number.isInteger(this.prefetch) || this.prefetch < 1) throw new Error(`prefetch depth must be an integer >= 1, got ${this.prefetch}`);
    this.pool = decodePool(options.workers ?? defaultDecodeWorkers());
    this.streamWord = streamKey(stream);
  }

  /** Training batches in the order of `sampler`, augmented with keys (seed, stream, epoch, position). */
  static training(
    dataset: ImageFolderDataset, sampler: KeyedBatchSampler, transform: FolderTransform, options: PipelineOptions = {},
  ): FolderBatchSource {
    return new FolderBatchSource(dataset, { kind: 'sampler', sampler }, transform, sampler.seed, sampler.stream, options);
  }

  /** Consecutive batches of `indices` with the evaluation transform, starting over after the last. */
  static evaluation(dataset: ImageFolderDataset, indices: Int32Array, batchSize: number, options: PipelineOptions = {}): FolderBatchSource {
    return new FolderBatchSource(dataset, { kind: 'fixed', fixed: new FixedOrder(indices, batchSize) }, { kind: 'eval' }, 0, 'eval', options);
  }

  get sampler(): KeyedBatchSampler | null {
    return this.order.kind === 'sampler' ? this.order.sampler : null;
  }

  get batchSize(): number {
    return this.order.kind === 'sampler' ? this.order.sampler.batchSize : this.order.fixed.batchSize;
  }

  get batchesPerEpoch(): number {
    return this.order.kind === 'sampler' ? this.order.sampler.batchesPerEpoch : this.order.fixed.batchesPerEpoch;
  }

  private peek(ahead: number): { indices: Int32Array; epoch: number; position: number } {
    if (this.order.kind === 'sampler') return this.order.sampler.peek(ahead);
    return this.order.fixed.peekPosition(ahead);
  }

  private advance(): Int32Array {
    return this.order.kind === 'sampler' ? this.order.sampler.next() : this.order.fixed.next();
  }

  /** Starts decoding batches until `prefetch` are in flight. */
  private fill(): void {
    while (this.inFlight.length < this.prefetch) {
      const { indices, epoch, position } = this.peek(this.inFlight.length);
      const slot = this.freeSlots.pop() ?? new Float32Array(new SharedArrayBuffer(4 * this.batchSize * this.imageValues));
      const control = new Int32Array(new SharedArrayBuffer(CONTROL_BYTES));
      const files = Array.from(indices, (i) => this.dataset.files[i]);
      const train = this.transform.kind === 'train' ? this.transform : null;
      this.pool.submit({
        mode: train !== null ? 'train' : 'eval', root: this.dataset.root, files, size: this.dataset.height,
        mean: this.dataset.mean, std: this.dataset.std, seed: this.seed, stream: this.streamWord,
        keys: train !== null ? Array.from(indices, (_, b) => [epoch, position + b] as const) : undefined,
        flip: train?.flip ?? false, jitter: train?.jitter ?? null, cutout: train?.cutout ?? 0,
        control: control.buffer as SharedArrayBuffer, pixels: slot.buffer as SharedArrayBuffer,
      });
      this.inFlight.push({ indices, epoch, position, control, slot });
    }
  }

  /** Waits for every batch in flight (their workers write into the slots) and forgets them. */
  private drain(): void {
    for (const batch of this.inFlight.splice(0)) {
      waitForJob(batch.control, batch.indices.length);
      this.freeSlots.push(batch.slot);
    }
  }

  next(allocate: (count: number) => Float32Array): BatchInfo {
    if (this.closed) throw new Error('FolderBatchSource: used after close()');
    const started = performance.now();
    const expected = this.peek(0);
    const head = this.inFlight[0];
    if (head !== undefined && (head.epoch !== expected.epoch || head.position !== expected.position || head.indices.length !== expected.indices.length)) {
      this.drain(); // the sampler was moved (a resume): what is in flight is not what comes next
    }
    this.fill();
    const batch = this.inFlight.shift()!;
    const count = batch.indices.length;
    if (!waitForJob(batch.control, count)) {
      const files = Array.from(batch.indices, (i) => this.dataset.files[i]);
      const error = jobError(batch.control, this.dataset, files);
      this.drain();
      this.freeSlots.push(batch.slot);
      throw error;
    }
    const out = allocate(count);
    out.set(batch.slot.subarray(0, count * this.imageValues));
    const indices = this.advance();
    this.freeSlots.push(batch.slot);
    this.fill(); // keep the workers busy while the engine computes this batch
    const labels = new Int32Array(count);
    for (let b = 0; b < count; b++) labels[b] = this.dataset.labels[indices[b]];
    return { indices, labels, waitMs: performance.now() - started };
  }

  close(): void {
    if (this.closed) return;
    this.drain();
    this.freeSlots.length = 0;
    this.closed = true;
  }
}
