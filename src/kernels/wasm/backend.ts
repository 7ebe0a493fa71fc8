/**
 * The fast kernel backend: WebAssembly SIMD kernels (AssemblyScript, ./assembly) on one
 * shared wasm memory, run by the calling thread plus (threads - 1) worker threads.
 *
 * Memory: every buffer handed out is a Float32Array view of the shared memory, so kernels
 * get plain byte offsets. Blocks are 64-byte aligned, rounded to 256 bytes and recycled
 * through exact-size free lists (a training step allocates the same sizes every step);
 * the memory grows when the bump pointer reaches its end. Scratch for kernels (padded
 * planes, packed GEMM operands, partial sums) is one block owned by the backend, sliced per
 * thread, and not counted as live memory.
 *
 * Threads: a kernel call is split into "parts" that write disjoint outputs; the main thread
 * publishes the job and works on parts alongside the workers (protocol in worker.ts).
 * Calls estimated below PARALLEL_MIN_NS run on the main thread alone, and below
 * PARALLEL_MIN_NS_PARKED too while a worker is parked. After a job a worker polls for the
 * next one for WORKER_SPIN_US (a step issues jobs microseconds apart, so it stays awake
 * through a step), then parks in Atomics.wait: an idle backend burns no CPU, and the main
 * thread pays the futex wake-up only when someone sleeps. Reductions over the batch
 * (weight gradients, dot) use chunk boundaries that depend only on the shapes and combine
 * chunk partials in order, so results are bitwise identical for any thread count.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import type { BatchNormGeometry, ConvGeometry, KernelBackend, PoolGeometry } from '../backend.js';
import { checkGatherMap } from '../ref/backend.js';
import { registerBackend } from '../registry.js';
import {
  ARGS_BYTE_OFFSET, CLOSED, CONTROL_BYTES, MAX_ARGS, MAX_GEN, MAX_PARTS, PART_BITS,
  SLOT_DONE, SLOT_ERROR, SLOT_FN, SLOT_GEN, SLOT_NARGS, SLOT_NEXT, SLOT_NPARTS, SLOT_READY, SLOT_SLEEPERS, SLOT_STOP,
  runClaimedParts, type KernelFunction, type WorkerInit,
} from './worker.js';

const PAGE_BYTES = 65536;
/** Block alignment (a cache line). */
const ALIGN = 64;
/** Block sizes are rounded to this, which makes exact-size reuse likely. */
const SIZE_CLASS = 256;
/** Bytes always left free at the end of memory: vector loops may read a little past a buffer. */
const TOP_SLACK = 256;
const INITIAL_PAGES = 256; // 16 MiB
/** Largest shared memory tried first (4 GiB), then smaller ones if the engine refuses. */
const MAXIMUM_PAGES = [65536, 32768, 16384, 8192];
/** Work estimated below this (nanoseconds on one thread) runs on the main thread alone. */
const PARALLEL_MIN_NS = 20_000;
/**
 * The same while a worker is parked: waking it costs the main thread a futex syscall and the
 * worker tens of microseconds, so only work that long is worth it (the main thread starts at
 * once either way, so a late worker only takes fewer parts).
 */
const PARALLEL_MIN_NS_PARKED = 100_000;
/** Microseconds a worker polls for the next job before parking (PCDARTS_WORKER_SPIN_US overrides). */
const WORKER_SPIN_US = 100;
/** Microseconds the main thread polls for the workers' last parts before waiting on a futex. */
const MAIN_SPIN_US = 2_000;
/** Floats per chunk of `dot` (fixed, so the float64 partials do not depend on threads). */
const DOT_CHUNK = 4096;
/** Weight-gradient reductions use at most this many batch chunks. */
const MAX_GRAD_CHUNKS = 16;

/** Kernel exports invoked through the job protocol (index = SLOT_FN value). */
const KERNELS = [
  'simdPeak', 'convForward', 'convGradInput', 'convGradWeight', 'reduceChunks',
  'dwForward', 'dwGradInput', 'dwGradWeight',
  'bnPlaneSums', 'bnMean', 'bnPlaneSqDev', 'bnInvStd', 'bnPlaneAffine',
  'bnPlaneGradSums', 'bnGradFinish', 'bnPlaneTrainBackward', 'bnPlaneApplyBackward',
  'relu', 'reluBackward', 'add', 'axpy', 'scale', 'dot', 'gatherChannels', 'scaleSamples', 'scaleMany', 'cropPlanes', 'weightedSum', 'dots',
  'maxPool', 'avgPool', 'maxPoolBackward', 'avgPoolBackward',
  'linear', 'linearGradInput', 'linearGradWeight',
] as const;
type KernelName = (typeof KERNELS)[number];
/**
 * PCDARTS_KERNEL_PROFILE=1: wall time per kernel (dispatch and waiting included), printed to
 * stderr at exit. A diagnostic for profiling; off, it costs one comparison per call.
 */
const kernelProfile: Map<string, KernelProfileEntry> | null =
  process.env.PCDARTS_KERNEL_PROFILE === '1' ? new Map() : null;
if (kernelProfile !== null) {
  process.on('exit', () => process.stderr.write(formatKernelProfile(kernelProfile)));
}

/** Calls, wall time and counted floating-point operations of one kernel (profile). */
export interface KernelProfileEntry {
  calls: number;
  ms: number;
  /**
   * CPU time of the whole process meanwhile (every thread, spinning included). At 1 thread it
   * is the time the kernel really ran, whatever else held the core: the column to read on a
   * busy machine.
   */
  cpuMs: number;
  /** Multiply-adds count 2; only the convolution, depthwise and linear kernels count any. */
  flops: number;
}

/** The PCDARTS_KERNEL_PROFILE table: per kernel wall ms, calls, share, GFLOP/s where counted. */
export function formatKernelProfile(profile: ReadonlyMap<string, KernelProfileEntry>): string {
  const rows = [...profile.entries()].filter(([name]) => name !== 'simdPeak').sort((a, b) => b[1].ms - a[1].ms);
  const total = rows.reduce((sum, [, e]) => sum + e.ms, 0);
  const totalCpu = rows.reduce((sum, [, e]) => sum + e.cpuMs, 0);
  const lines = [
    `kernel profile (${kernelBuildName()} build; wall ms with dispatch and waiting, process CPU ms): total ${total.toFixed(0)} ms wall, ${totalCpu.toFixed(0)} ms CPU`,
    `  ${'kernel'.padEnd(22)} ${'wall ms'.padStart(10)} ${'calls'.padStart(8)} ${'wall %'.padStart(6)} ${'CPU ms'.padStart(10)} ${'GFLOP/s'.padStart(8)} ${'per CPU s'.padStart(9)}`,
  ];
  for (const [name, e] of rows) {
    const rate = e.flops > 0 && e.ms > 0 ? (e.flops / e.ms / 1e6).toFixed(1) : '';
    const cpuRate = e.flops > 0 && e.cpuMs > 0 ? (e.flops / e.cpuMs / 1e6).toFixed(1) : '';
    lines.push(`  ${name.padEnd(22)} ${e.ms.toFixed(1).padStart(10)} ${String(e.calls).padStart(8)} ${(100 * e.ms / total).toFixed(1).padStart(6)} ` +
      `${e.cpuMs.toFixed(1).padStart(10)} ${rate.padStart(8)} ${cpuRate.padStart(9)}`.trimEnd());
  }
  return `${lines.join('\n')}\n`;
}
const KERNEL_INDEX = new Map<string, number>(KERNELS.map((name, i) => [name, i]));

/** Exports that size things (the kernels' scratch layouts live on the AssemblyScript side). */
interface SizeExports {
  heapBase(): number;
  convScratchBytes(desc: number): number;
  dwScratchBytes(desc: number): number;
  poolScratchBytes(desc: number): number;
  linearScratchBytes(reduction: number, perPart: number): number;
}

function roundUp(n: number, multiple: number): number {
  return Math.ceil(n / multiple) * multiple;
}

// ---------------------------------------------------------------- the two builds

/**
 * The kernels are compiled twice from the same sources (package.json build:wasm):
 * - 'relaxed-simd' (kernels-relaxed.wasm): every multiply-add of the convolution, depthwise
 *   and GEMM tiles is one f32x4.relaxed_madd, a fused multiply-add where the CPU has FMA;
 * - 'simd' (kernels.wasm): the same kernels with a multiply and an add (two roundings).
 * The relaxed build is used where the runtime validates it (V8 ships relaxed SIMD enabled
 * from Node 22; Node 20 needs --experimental-wasm-relaxed-simd), else the baseline build.
 * `PCDARTS_WASM_BUILD=simd|relaxed-simd` forces one. Each build gives the same bits for
 * any thread count; the two builds differ from each other by float32 rounding only.
 */
export type KernelBuild = 'simd' | 'relaxed-simd';

const BUILD_FILES: Record<KernelBuild, string> = { simd: './kernels.wasm', 'relaxed-simd': './kernels-relaxed.wasm' };
const compiled = new Map<KernelBuild, WebAssembly.Module | null>();

/** The compiled module of a build, or null when this runtime does not validate it. */
function compiledBuild(build: KernelBuild): WebAssembly.Module | null {
  if (!compiled.has(build)) {
    const bytes = readFileSync(new URL(BUILD_FILES[build], import.meta.url));
    compiled.set(build, WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null);
  }
  return compiled.get(build) as WebAssembly.Module | null;
}

/** Whether this runtime can run the relaxed-SIMD build. */
export function relaxedSimdAvailable(): boolean {
  return compiledBuild('relaxed-simd') !== null;
}

/** The build a backend uses: `requested`, else PCDARTS_WASM_BUILD, else the fastest this runtime runs. */
export function selectKernelBuild(requested?: KernelBuild | 'auto'): KernelBuild {
  const raw = requested ?? process.env.PCDARTS_WASM_BUILD ?? 'auto';
  if (raw === 'auto' || raw === '') return relaxedSimdAvailable() ? 'relaxed-simd' : 'simd';
  if (raw !== 'simd' && raw !== 'relaxed-simd') {
    throw new Error(`PCDARTS_WASM_BUILD: expected simd, relaxed-simd or auto, got '${raw}'`);
  }
  if (raw === 'relaxed-simd' && !relaxedSimdAvailable()) {
    throw new Error(`wasm backend: the relaxed-simd build needs a runtime with WebAssembly relaxed SIMD (Node 22 or newer, or node --experimental-wasm-relaxed-simd); this is Node ${process.version}`);
  }
  return raw;
}

/** Name of the build that a default backend uses in this process (for --version and reports). */
export function kernelBuildName(): KernelBuild {
  return selectKernelBuild();
}

/** One line for `pcdarts --version`: the build, what it means and why it was chosen (never throws). */
export function describeKernelBuild(): string {
  let build: KernelBuild;
  try {
    build = selectKernelBuild();
  } catch (error) {
    return `kernels: unusable (${error instanceof Error ? error.message : String(error)})`;
  }
  const env = process.env.PCDARTS_WASM_BUILD;
  const why = env !== undefined && env !== '' && env !== 'auto' ? 'forced by PCDARTS_WASM_BUILD'
    : build === 'relaxed-simd' ? 'this runtime has WebAssembly relaxed SIMD' : 'this runtime has no WebAssembly relaxed SIMD';
  const what = build === 'relaxed-simd' ? 'fused multiply-add' : 'multiply + add';
  return `kernels: wasm ${build} build (${what}; ${why})`;
}

/**
 * Float32 blocks in a growable shared wasm memory. Handed-out blocks are tracked by offset
 * together with the view given out, so a second free of a recycled block (a different
 * view) is ignored instead of freeing someone else's buffer.
 *
 * Best fit with splitting and coalescing: a request takes the smallest free block that
 * holds it (the rest stays free), a freed block merges with free neighbours, and a free
 * block reaching the bump pointer lowers it. A step allocates tensors of many sizes whose
 * lifetimes interleave; exact-size free lists reserved 1.5x the live peak for that, this
 * keeps reserved memory close to it.
 */
class SharedHeap {
  private buffer: SharedArrayBuffer;
  /** Every buffer object the memory has had (the object changes on grow). */
  private readonly buffers = new WeakSet<ArrayBufferLike>();
  private top: number;
  /** Free blocks: offset -> bytes, end -> offset, bytes -> offsets; `sizes` lists the keys of bySize in order. */
  private readonly freeAt = new Map<number, number>();
  private readonly freeEnding = new Map<number, number>();
  private readonly bySize = new Map<number, Set<number>>();
  private readonly sizes: number[] = [];
  private readonly live = new Map<number, { view: Float32Array; bytes: number }>();
  liveBytes = 0;
  peakBytes = 0;

  constructor(private readonly memory: WebAssembly.Memory, base: number) {
    this.buffer = memory.buffer as unknown as SharedArrayBuffer;
    this.buffers.add(this.buffer);
    this.top = roundUp(Math.max(base, ALIGN), ALIGN);
  }

  get reservedBytes(): number {
    return this.buffer.byteLength;
  }

  /** The current buffer (re-read after growth). */
  get current(): SharedArrayBuffer {
    return this.buffer;
  }

  owns(view: Float32Array): boolean {
    return view.buffer === this.buffer || this.buffers.has(view.buffer);
  }

  /** A block for the user (counted in live/peak). */
  alloc(numel: number): Float32Array {
    if (!Number.isInteger(numel) || numel < 0) throw new Error(`wasm backend: bad alloc size ${numel}`);
    const bytes = Math.max(SIZE_CLASS, roundUp(numel * 4, SIZE_CLASS));
    const offset = this.take(bytes);
    const view = new Float32Array(this.buffer, offset, numel);
    this.live.set(offset, { view, bytes });
    this.liveBytes += bytes;
    if (this.liveBytes > this.peakBytes) this.peakBytes = this.liveBytes;
    return view;
  }

  free(view: Float32Array): void {
    if (!this.owns(view)) return;
    const entry = this.live.get(view.byteOffset);
    if (entry === undefined || entry.view !== view) return; // not ours, or already freed
    this.live.delete(view.byteOffset);
    this.liveBytes -= entry.bytes;
    this.release(view.byteOffset, entry.bytes);
  }

  /** A block for the backend itself (not counted as live); returns its byte offset. */
  allocInternal(bytes: number): { offset: number; bytes: number } {
    const rounded = Math.max(SIZE_CLASS, roundUp(bytes, SIZE_CLASS));
    return { offset: this.take(rounded), bytes: rounded };
  }

  /** Returns [offset, offset + bytes) to the free space, merged with free neighbours. */
  release(offset: number, bytes: number): void {
    const leftStart = this.freeEnding.get(offset);
    if (leftStart !== undefined) {
      const leftBytes = this.freeAt.get(leftStart) as number;
      this.unlink(leftStart, leftBytes);
      offset = leftStart;
      bytes += leftBytes;
    }
    const rightBytes = this.freeAt.get(offset + bytes);
    if (rightBytes !== undefined) {
      this.unlink(offset + bytes, rightBytes);
      bytes += rightBytes;
    }
    if (offset + bytes === this.top) {
      this.top = offset;
      return;
    }
    this.link(offset, bytes);
  }

  private take(bytes: number): number {
    const i = this.firstSizeAtLeast(bytes);
    if (i < this.sizes.length) {
      const size = this.sizes[i];
      const offset = (this.bySize.get(size) as Set<number>).values().next().value as number;
      this.unlink(offset, size);
      // The rest's right neighbour is in use (free blocks are always merged), so no merge.
      if (size > bytes) this.link(offset + bytes, size - bytes);
      return offset;
    }
    if (this.top + bytes + TOP_SLACK <= this.buffer.byteLength || this.grow(this.top + bytes + TOP_SLACK)) {
      const offset = this.top;
      this.top += bytes;
      return offset;
    }
    throw new Error(`wasm backend: out of memory allocating ${bytes} bytes (${this.buffer.byteLength} reserved)`);
  }

  /** Index in `sizes` of the smallest free size >= bytes (sizes.length if none). */
  private firstSizeAtLeast(bytes: number): number {
    let lo = 0;
    let hi = this.sizes.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.sizes[mid] < bytes) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private link(offset: number, bytes: number): void {
    this.freeAt.set(offset, bytes);
    this.freeEnding.set(offset + bytes, offset);
    let set = this.bySize.get(bytes);
    if (set === undefined) {
      set = new Set();
      this.bySize.set(bytes, set);
      this.sizes.splice(this.firstSizeAtLeast(bytes), 0, bytes);
    }
    set.add(offset);
  }

  private unlink(offset: number, bytes: number): void {
    this.freeAt.delete(offset);
    this.freeEnding.delete(offset + bytes);
    const set = this.bySize.get(bytes) as Set<number>;
    set.delete(offset);
    if (set.size === 0) {
      this.bySize.delete(bytes);
      this.sizes.splice(this.firstSizeAtLeast(bytes), 1);
    }
  }

  /** Grows so that `end` bytes fit: at least 1/4 more each time, to keep growth events rare. */
  private grow(end: number): boolean {
    const have = this.buffer.byteLength / PAGE_BYTES;
    const need = Math.ceil(end / PAGE_BYTES);
    const want = Math.max(need, Math.ceil(have * 1.25));
    for (const pages of want > need ? [want, need] : [need]) {
      try {
        this.memory.grow(pages - have);
        this.buffer = this.memory.buffer as unknown as SharedArrayBuffer;
        this.buffers.add(this.buffer);
        return true;
      } catch {
        // maximum reached or address space refused: try the bare minimum, then give up
      }
    }
    return false;
  }
}

export interface WasmBackendOptions {
  /** Threads including the calling one (default: every core). */
  threads?: number;
  /**
   * Work (estimated nanoseconds on one thread) below which a call runs on the calling thread
   * alone. Tests set 0 to push even tiny shapes through the workers.
   */
  parallelThresholdNs?: number;
  /** Kernel build (default: PCDARTS_WASM_BUILD, else relaxed-simd where the runtime has it). */
  build?: KernelBuild | 'auto';
  /**
   * Microseconds a worker keeps polling for the next job before parking (default 100, or
   * PCDARTS_WORKER_SPIN_US; 0 parks at once). Results never depend on it.
   */
  workerSpinUs?: number;
}

function spinFromEnvironment(): number | undefined {
  const raw = process.env.PCDARTS_WORKER_SPIN_US;
  if (raw === undefined || raw === '') return undefined;
  const us = Number(raw);
  if (!Number.isFinite(us) || us < 0) throw new Error(`PCDARTS_WORKER_SPIN_US: expected microseconds >= 0, got '${raw}'`);
  return us;
}

/** Result of WasmBackend.measurePeak: GFLOP/s of the multiply-add loop. */
export interface SimdPeak {
  /** One thread (the calling one). */
  oneThread: number;
  /** Every thread of the backend at once (sum). */
  allThreads: number;
  threads: number;
  build: KernelBuild;
}

export class WasmBackend implements KernelBackend {
  readonly name = 'wasm';
  readonly threads: number;
  /** Which of the two kernel builds this backend runs. */
  readonly build: KernelBuild;
  private readonly parallelThresholdNs: number;
  private readonly parkedThresholdNs: number;
  private readonly workerSpinUs: number;
  /** Floating-point operations of the counted kernels (convolutions, linear) so far. */
  private flops = 0;

  private readonly memory: WebAssembly.Memory;
  private readonly heap: SharedHeap;
  private readonly fns: KernelFunction[];
  private readonly sizes: SizeExports;
  private readonly control: SharedArrayBuffer;
  private readonly ctrl: Int32Array;
  private readonly argv: Float64Array;
  private workers: Worker[] = [];
  private gen = 0;
  /** 64 bytes for the geometry descriptor read by conv/pool kernels. */
  private readonly desc: number;
  private scratch = { offset: 0, bytes: 0 };

  constructor(options: WasmBackendOptions = {}) {
    const threads = options.threads ?? availableParallelism();
    if (!Number.isInteger(threads) || threads < 1) throw new Error(`wasm backend: bad thread count ${threads}`);
    this.threads = threads;
    this.parallelThresholdNs = options.parallelThresholdNs ?? PARALLEL_MIN_NS;
    this.parkedThresholdNs = options.parallelThresholdNs ?? PARALLEL_MIN_NS_PARKED;
    this.workerSpinUs = options.workerSpinUs ?? spinFromEnvironment() ?? WORKER_SPIN_US;

    this.build = selectKernelBuild(options.build);
    const module = compiledBuild(this.build) as WebAssembly.Module;
    this.memory = createSharedMemory();
    const instance = new WebAssembly.Instance(module, { env: { memory: this.memory } });
    const exports = instance.exports as Record<string, unknown>;
    this.fns = KERNELS.map((name) => exports[name] as KernelFunction);
    this.sizes = exports as unknown as SizeExports;
    this.heap = new SharedHeap(this.memory, this.sizes.heapBase());
    this.desc = this.heap.allocInternal(64).offset;

    this.control = new SharedArrayBuffer(CONTROL_BYTES);
    this.ctrl = new Int32Array(this.control, 0, ARGS_BYTE_OFFSET / 4);
    this.argv = new Float64Array(this.control, ARGS_BYTE_OFFSET, MAX_ARGS);
    if (threads > 1) this.startWorkers(module, threads - 1);
  }

  /** Starts the workers and blocks until each has instantiated the module. */
  private startWorkers(module: WebAssembly.Module, count: number): void {
    const url = new URL('./worker.js', import.meta.url);
    for (let i = 0; i < count; i++) {
      const init: WorkerInit = {
        role: 'pcdarts-wasm-kernels', module, memory: this.memory, control: this.control,
        names: KERNELS, tid: i + 1, spinMicroseconds: this.workerSpinUs,
      };
      const worker = new Worker(url, { workerData: init });
      worker.unref(); // idle workers must not keep the process alive
      worker.on('error', (e) => console.error('pcdarts wasm worker died:', e));
      this.workers.push(worker);
    }
    const deadline = Date.now() + 30_000;
    for (;;) {
      const ready = Atomics.load(this.ctrl, SLOT_READY);
      if (ready >= count) break;
      if (Date.now() > deadline) {
        this.dispose();
        throw new Error(`wasm backend: only ${ready} of ${count} worker threads started`);
      }
      Atomics.wait(this.ctrl, SLOT_READY, ready, 100);
    }
  }

  /** Stops the worker threads; kernels keep working on the calling thread alone. */
  dispose(): void {
    if (this.workers.length === 0) return;
    Atomics.store(this.ctrl, SLOT_STOP, 1);
    Atomics.store(this.ctrl, SLOT_GEN, (this.gen % MAX_GEN) + 1);
    Atomics.notify(this.ctrl, SLOT_GEN);
    for (const worker of this.workers) void worker.terminate();
    this.workers = [];
  }

  // ---------------------------------------------------------------- memory

  alloc(numel: number): Float32Array {
    return this.heap.alloc(numel);
  }

  allocZeros(numel: number): Float32Array {
    const view = this.heap.alloc(numel);
    view.fill(0);
    return view;
  }

  free(buffer: Float32Array): void {
    this.heap.free(buffer);
  }

  memoryStats(): { liveBytes: number; peakBytes: number; reservedBytes: number } {
    return { liveBytes: this.heap.liveBytes, peakBytes: this.heap.peakBytes, reservedBytes: this.heap.reservedBytes };
  }

  resetPeak(): void {
    this.heap.peakBytes = this.heap.liveBytes;
  }

  /** Byte offset of a buffer of ours with at least `numel` elements. */
  private off(buffer: Float32Array, numel: number, what: string): number {
    if (!this.heap.owns(buffer)) throw new Error(`wasm backend: ${what} was not allocated by this backend`);
    if (buffer.length < numel) throw new Error(`wasm backend: ${what} has ${buffer.length} elements, needs ${numel}`);
    return buffer.byteOffset;
  }

  private offOrNull(buffer: Float32Array | null, numel: number, what: string): number {
    return buffer === null ? 0 : this.off(buffer, numel, what);
  }

  /** Scratch of at least `bytes`; returns its offset (valid until the next kernel call). */
  private scratchBlock(bytes: number): number {
    if (bytes > this.scratch.bytes) {
      if (this.scratch.bytes > 0) this.heap.release(this.scratch.offset, this.scratch.bytes);
      this.scratch = this.heap.allocInternal(Math.max(bytes, this.scratch.bytes * 1.25));
    }
    return this.scratch.offset;
  }

  private writeDesc(fields: number[]): number {
    new Int32Array(this.heap.current, this.desc, fields.length).set(fields);
    return this.desc;
  }

  private convDesc(g: ConvGeometry): number {
    return this.writeDesc([
      g.batch, g.inChannels, g.inH, g.inW, g.outChannels, g.kernelH, g.kernelW, g.strideH, g.strideW,
      g.padH, g.padW, g.dilationH, g.dilationW, g.groups, g.outH, g.outW,
    ]);
  }

  private poolDesc(g: PoolGeometry): number {
    return this.writeDesc([
      g.batch, g.channels, g.inH, g.inW, g.kernelH, g.kernelW, g.strideH, g.strideW, g.padH, g.padW, g.outH, g.outW,
    ]);
  }

  // ---------------------------------------------------------------- dispatch

  /**
   * Runs parts 0..nparts-1 of a kernel (arguments `args`, then part and thread index):
   * on the main thread alone when small, else shared with the workers.
   */
  private run(name: KernelName, nparts: number, costNs: number, args: number[], flops = 0): void {
    if (nparts <= 0) return;
    this.flops += flops;
    if (kernelProfile !== null) {
      const cpu = process.cpuUsage();
      const start = performance.now();
      this.dispatch(name, nparts, costNs, args);
      const wall = performance.now() - start;
      const used = process.cpuUsage(cpu);
      const entry = kernelProfile.get(name) ?? { calls: 0, ms: 0, cpuMs: 0, flops: 0 };
      entry.calls++;
      entry.ms += wall;
      entry.cpuMs += (used.user + used.system) / 1000;
      entry.flops += flops;
      kernelProfile.set(name, entry);
      return;
    }
    this.dispatch(name, nparts, costNs, args);
  }

  /**
   * Floating-point operations the counted kernels (dense, grouped and depthwise convolution
   * and their gradients, linear) have done so far, a multiply-add counting 2; the benchmarks
   * divide the difference over a step by its time. Memory-bound kernels count nothing.
   */
  flopCount(): number {
    return this.flops;
  }

  /**
   * The wasm SIMD multiply-add peak of this machine in GFLOP/s, measured now: a loop of 12
   * independent multiply-add chains (assembly/peak.ts, this backend's build) on the calling
   * thread alone, then on every thread at once. Best of `repeats` runs of `ms` each (other
   * load only slows a run down). `threadClockMs`, when given, times the 1-thread runs instead
   * of the wall clock: a clock of the calling thread's CPU time makes that figure immune to
   * time-slicing (the benchmarks pass the process's CPU time).
   */
  measurePeak(ms = 60, repeats = 5, threadClockMs?: () => number): SimdPeak {
    const fn = this.fns[KERNEL_INDEX.get('simdPeak') as number];
    const flopsPerIteration = 96;
    // Calibrate the iteration count to about `ms` on one thread.
    let iterations = 1 << 16;
    for (;;) {
      const t = performance.now();
      fn(iterations, 0.999, 0, 0);
      const dt = performance.now() - t;
      if (dt >= ms / 4 || iterations >= 1 << 30) {
        iterations = Math.max(1, Math.min(2 ** 31 - 1, Math.round(iterations * ms / Math.max(dt, 1e-3))));
        break;
      }
      iterations *= 4;
    }
    let one = 0;
    const clock = threadClockMs ?? (() => performance.now());
    for (let r = 0; r < repeats; r++) {
      const t = clock();
      fn(iterations, 0.999, 0, 0);
      one = Math.max(one, (iterations * flopsPerIteration) / (Math.max(clock() - t, 1e-6) * 1e6));
    }
    let all = one;
    if (this.workers.length > 0) {
      all = 0;
      for (let r = 0; r < repeats; r++) {
        const t = performance.now();
        this.dispatch('simdPeak', this.threads, Number.POSITIVE_INFINITY, [iterations, 0.999]);
        all = Math.max(all, (this.threads * iterations * flopsPerIteration) / ((performance.now() - t) * 1e6));
      }
    }
    return { oneThread: one, allThreads: all, threads: this.threads, build: this.build };
  }

  private dispatch(name: KernelName, nparts: number, costNs: number, args: number[]): void {
    const index = KERNEL_INDEX.get(name) as number;
    const fn = this.fns[index];
    const ctrl = this.ctrl;
    if (this.workers.length === 0 || nparts === 1 || nparts > MAX_PARTS || costNs < this.parallelThresholdNs ||
      (costNs < this.parkedThresholdNs && Atomics.load(ctrl, SLOT_SLEEPERS) > 0)) {
      for (let part = 0; part < nparts; part++) fn(...args, part, 0);
      return;
    }
    if (args.length > MAX_ARGS) throw new Error(`wasm backend: ${name} has too many arguments`);
    // Publish: close claiming, write the job, reopen with the new generation, wake parked workers.
    Atomics.store(ctrl, SLOT_NEXT, CLOSED);
    Atomics.store(ctrl, SLOT_FN, index);
    Atomics.store(ctrl, SLOT_NARGS, args.length);
    Atomics.store(ctrl, SLOT_NPARTS, nparts);
    this.argv.set(args);
    Atomics.store(ctrl, SLOT_DONE, 0);
    Atomics.store(ctrl, SLOT_ERROR, 0);
    this.gen = (this.gen % MAX_GEN) + 1;
    const gen = this.gen;
    Atomics.store(ctrl, SLOT_NEXT, gen << PART_BITS);
    Atomics.store(ctrl, SLOT_GEN, gen);
    if (Atomics.load(ctrl, SLOT_SLEEPERS) > 0) Atomics.notify(ctrl, SLOT_GEN);

    // The main thread takes parts like any worker, then waits for the ones still running.
    const error = runClaimedParts(ctrl, gen, nparts, fn, args, 0, false);
    let done = Atomics.load(ctrl, SLOT_DONE);
    if (done < nparts) {
      const deadline = performance.now() + MAIN_SPIN_US / 1000;
      for (let i = 1; done < nparts; i++) {
        done = Atomics.load(ctrl, SLOT_DONE);
        if ((i & 63) === 0 && performance.now() > deadline) {
          Atomics.wait(ctrl, SLOT_DONE, done, 10);
          done = Atomics.load(ctrl, SLOT_DONE);
        }
      }
    }
    if (error !== null) throw error;
    if (Atomics.load(ctrl, SLOT_ERROR) !== 0) throw new Error(`wasm backend: kernel ${name} failed in a worker thread`);
  }

  /** Parts for `items` independent work items: a few per thread, for load balance. */
  private partsFor(items: number): { parts: number; perPart: number } {
    const target = Math.min(items, this.threads * 8, MAX_PARTS);
    const perPart = Math.ceil(items / Math.max(target, 1));
    return { parts: Math.ceil(items / perPart), perPart };
  }

  // ---------------------------------------------------------------- convolution

  private isDepthwise(g: ConvGeometry): boolean {
    return g.inChannels === g.groups && g.outChannels === g.groups;
  }

  private checkConv(g: ConvGeometry): void {
    if (g.groups < 1 || g.inChannels % g.groups !== 0 || g.outChannels % g.groups !== 0) {
      throw new Error(`wasm backend: conv2d channels ${g.inChannels}->${g.outChannels} not divisible by groups ${g.groups}`);
    }
  }

  private convFlops(g: ConvGeometry): number {
    return 2 * g.batch * g.outChannels * (g.inChannels / g.groups) * g.kernelH * g.kernelW * g.outH * g.outW;
  }

  conv2d(x: Float32Array, weight: Float32Array, y: Float32Array, g: ConvGeometry): void {
    this.checkConv(g);
    const xo = this.off(x, g.batch * g.inChannels * g.inH * g.inW, 'conv2d x');
    const wo = this.off(weight, g.outChannels * (g.inChannels / g.groups) * g.kernelH * g.kernelW, 'conv2d weight');
    const yo = this.off(y, g.batch * g.outChannels * g.outH * g.outW, 'conv2d y');
    const desc = this.convDesc(g);
    if (this.isDepthwise(g)) {
      const stride = this.sizes.dwScratchBytes(desc);
      const scratch = this.scratchBlock(stride * this.threads);
      const { parts, perPart } = this.partsFor(g.batch * g.outChannels);
      this.run('dwForward', parts, this.convFlops(g) / 20, [desc, xo, wo, yo, perPart, scratch, stride], this.convFlops(g));
      return;
    }
    const stride = this.sizes.convScratchBytes(desc);
    const scratch = this.scratchBlock(stride * this.threads);
    const { parts, perPart } = this.partsFor(g.batch * g.groups);
    this.run('convForward', parts, this.convFlops(g) / 32, [desc, xo, wo, yo, perPart, scratch, stride], this.convFlops(g));
  }

  conv2dGradInput(gradY: Float32Array, weight: Float32Array, gradX: Float32Array, g: ConvGeometry): void {
    this.checkConv(g);
    const gyo = this.off(gradY, g.batch * g.outChannels * g.outH * g.outW, 'conv2dGradInput gradY');
    const wo = this.off(weight, g.outChannels * (g.inChannels / g.groups) * g.kernelH * g.kernelW, 'conv2dGradInput weight');
    const gxo = this.off(gradX, g.batch * g.inChannels * g.inH * g.inW, 'conv2dGradInput gradX');
    const desc = this.convDesc(g);
    if (this.isDepthwise(g)) {
      const stride = this.sizes.dwScratchBytes(desc);
      const scratch = this.scratchBlock(stride * this.threads);
      const { parts, perPart } = this.partsFor(g.batch * g.inChannels);
      this.run('dwGradInput', parts, this.convFlops(g) / 20, [desc, gyo, wo, gxo, perPart, scratch, stride], this.convFlops(g));
      return;
    }
    const stride = this.sizes.convScratchBytes(desc);
    const scratch = this.scratchBlock(stride * this.threads);
    const { parts, perPart } = this.partsFor(g.batch * g.groups);
    this.run('convGradInput', parts, this.convFlops(g) / 32, [desc, gyo, wo, gxo, perPart, scratch, stride], this.convFlops(g));
  }

  conv2dGradWeight(x: Float32Array, gradY: Float32Array, gradW: Float32Array, g: ConvGeometry): void {
    this.checkConv(g);
    const xo = this.off(x, g.batch * g.inChannels * g.inH * g.inW, 'conv2dGradWeight x');
    const gyo = this.off(gradY, g.batch * g.outChannels * g.outH * g.outW, 'conv2dGradWeight gradY');
    const weightCount = g.outChannels * (g.inChannels / g.groups) * g.kernelH * g.kernelW;
    const gwo = this.off(gradW, weightCount, 'conv2dGradWeight gradW');
    if (g.batch === 0) {
      gradW.fill(0, 0, weightCount);
      return;
    }
    const desc = this.convDesc(g);
    if (this.isDepthwise(g)) {
      // Partials per (sample, channel) plane, then summed over samples in order.
      const stride = this.sizes.dwScratchBytes(desc);
      const planes = g.batch * g.outChannels;
      const partialBytes = roundUp(planes * g.kernelH * g.kernelW * 8, ALIGN);
      const base = this.scratchBlock(partialBytes + stride * this.threads);
      const { parts, perPart } = this.partsFor(planes);
      this.run('dwGradWeight', parts, this.convFlops(g) / 20, [desc, xo, gyo, base, perPart, base + partialBytes, stride], this.convFlops(g));
      this.reduce(base, g.batch, weightCount, gwo);
      return;
    }
    // Chunks of consecutive samples (count from the batch size only), each a float64 partial.
    const chunk = Math.ceil(g.batch / MAX_GRAD_CHUNKS);
    const chunks = Math.ceil(g.batch / chunk);
    const stride = this.sizes.convScratchBytes(desc);
    const partialBytes = roundUp(chunks * weightCount * 8, ALIGN);
    const base = this.scratchBlock(partialBytes + stride * this.threads);
    this.run('convGradWeight', chunks, this.convFlops(g) / 32, [desc, xo, gyo, base, chunk, base + partialBytes, stride], this.convFlops(g));
    this.reduce(base, chunks, weightCount, gwo);
  }

  /** out[i] = sum over chunks (in order) of the float64 partials. */
  private reduce(partials: number, chunks: number, count: number, out: number): void {
    const { parts, perPart } = this.partsFor(count);
    this.run('reduceChunks', parts, chunks * count / 2, [partials, chunks, count, out, perPart]);
  }

  // ---------------------------------------------------------------- batch norm
  // Passes over planes in memory order; per-plane float64 partials are combined per channel
  // in sample order by single-part steps (see assembly/batchnorm.ts).

  private bnCheck(g: BatchNormGeometry, what: string, x: Float32Array, mean: Float32Array, invStd: Float32Array) {
    const numel = g.batch * g.channels * g.spatial;
    return {
      numel, planes: g.batch * g.channels,
      xo: this.off(x, numel, `${what} x`),
      mo: this.off(mean, g.channels, `${what} mean`),
      io: this.off(invStd, g.channels, `${what} invStd`),
    };
  }

  batchNormTrain(
    x: Float32Array, gamma: Float32Array | null, beta: Float32Array | null, eps: number,
    y: Float32Array, mean: Float32Array, invStd: Float32Array, g: BatchNormGeometry,
  ): void {
    const { numel, planes, xo, mo, io } = this.bnCheck(g, 'batchNormTrain', x, mean, invStd);
    const yo = this.off(y, numel, 'batchNormTrain y');
    const go = this.offOrNull(gamma, g.channels, 'batchNormTrain gamma');
    const bo = this.offOrNull(beta, g.channels, 'batchNormTrain beta');
    if (planes === 0) return;
    // Scratch: [two float64 partials per plane][float64 (mean, invStd) per channel, unrounded].
    const partialBytes = roundUp(planes * 16, ALIGN);
    const partials = this.scratchBlock(partialBytes + g.channels * 16);
    const stats64 = partials + partialBytes;
    const { parts, perPart } = this.partsFor(planes);
    const S = g.spatial;
    this.run('bnPlaneSums', parts, numel / 10, [xo, S, planes, partials, perPart]);
    this.run('bnMean', 1, 0, [partials, g.batch, g.channels, S, mo]);
    this.run('bnPlaneSqDev', parts, numel / 8, [xo, mo, g.channels, S, planes, partials, perPart]);
    this.run('bnInvStd', 1, 0, [partials, g.batch, g.channels, S, eps, mo, io, stats64]);
    this.run('bnPlaneAffine', parts, numel / 8, [xo, mo, io, stats64, go, bo, yo, g.channels, S, planes, perPart]);
  }

  batchNormApply(
    x: Float32Array, mean: Float32Array, invStd: Float32Array,
    gamma: Float32Array | null, beta: Float32Array | null, y: Float32Array, g: BatchNormGeometry,
  ): void {
    const { numel, planes, xo, mo, io } = this.bnCheck(g, 'batchNormApply', x, mean, invStd);
    const yo = this.off(y, numel, 'batchNormApply y');
    const go = this.offOrNull(gamma, g.channels, 'batchNormApply gamma');
    const bo = this.offOrNull(beta, g.channels, 'batchNormApply beta');
    const { parts, perPart } = this.partsFor(planes);
    this.run('bnPlaneAffine', parts, numel / 8, [xo, mo, io, 0, go, bo, yo, g.channels, g.spatial, planes, perPart]);
  }

  batchNormTrainBackward(
    gradY: Float32Array, x: Float32Array, mean: Float32Array, invStd: Float32Array,
    gamma: Float32Array | null, gradX: Float32Array,
    gradGamma: Float32Array | null, gradBeta: Float32Array | null, g: BatchNormGeometry,
  ): void {
    const { numel, planes, xo, mo, io } = this.bnCheck(g, 'batchNormTrainBackward', x, mean, invStd);
    const gyo = this.off(gradY, numel, 'batchNormTrainBackward gradY');
    const gxo = this.off(gradX, numel, 'batchNormTrainBackward gradX');
    const go = this.offOrNull(gamma, g.channels, 'batchNormTrainBackward gamma');
    const ggo = this.offOrNull(gradGamma, g.channels, 'batchNormTrainBackward gradGamma');
    const gbo = this.offOrNull(gradBeta, g.channels, 'batchNormTrainBackward gradBeta');
    if (planes === 0) return;
    const partialBytes = roundUp(planes * 16, ALIGN);
    const partials = this.scratchBlock(partialBytes + g.channels * 8);
    const coef = partials + partialBytes;
    const { parts, perPart } = this.partsFor(planes);
    const C = g.channels;
    const S = g.spatial;
    this.run('bnPlaneGradSums', parts, numel / 8, [gyo, xo, mo, C, S, planes, partials, perPart]);
    this.run('bnGradFinish', 1, 0, [partials, g.batch, C, S, io, ggo, gbo, coef]);
    this.run('bnPlaneTrainBackward', parts, numel / 6, [gyo, xo, mo, io, go, coef, gxo, C, S, planes, perPart]);
  }

  batchNormApplyBackward(
    gradY: Float32Array, x: Float32Array, mean: Float32Array, invStd: Float32Array,
    gamma: Float32Array | null, gradX: Float32Array,
    gradGamma: Float32Array | null, gradBeta: Float32Array | null, g: BatchNormGeometry,
  ): void {
    const { numel, planes, xo, mo, io } = this.bnCheck(g, 'batchNormApplyBackward', x, mean, invStd);
    const gyo = this.off(gradY, numel, 'batchNormApplyBackward gradY');
    const gxo = this.off(gradX, numel, 'batchNormApplyBackward gradX');
    const go = this.offOrNull(gamma, g.channels, 'batchNormApplyBackward gamma');
    const ggo = this.offOrNull(gradGamma, g.channels, 'batchNormApplyBackward gradGamma');
    const gbo = this.offOrNull(gradBeta, g.channels, 'batchNormApplyBackward gradBeta');
    if (planes === 0) return;
    const { parts, perPart } = this.partsFor(planes);
    const C = g.channels;
    const S = g.spatial;
    // Sums first: gradX may alias gradY.
    if (ggo !== 0 || gbo !== 0) {
      const partials = this.scratchBlock(planes * 16);
      this.run('bnPlaneGradSums', parts, numel / 8, [gyo, xo, mo, C, S, planes, partials, perPart]);
      this.run('bnGradFinish', 1, 0, [partials, g.batch, C, S, io, ggo, gbo, 0]);
    }
    this.run('bnPlaneApplyBackward', parts, numel / 8, [gyo, io, go, gxo, C, S, planes, perPart]);
  }

  // ---------------------------------------------------------------- elementwise

  /** Chunking of n elements for elementwise kernels (multiples of 16 floats). */
  private elementParts(n: number): { parts: number; chunk: number } {
    const chunk = roundUp(Math.max(16384, Math.ceil(n / (this.threads * 4))), 16);
    return { parts: Math.ceil(n / chunk), chunk };
  }

  relu(x: Float32Array, y: Float32Array, n: number): void {
    const args = [this.off(x, n, 'relu x'), this.off(y, n, 'relu y'), n];
    const { parts, chunk } = this.elementParts(n);
    this.run('relu', parts, n / 10, [...args, chunk]);
  }

  reluBackward(gradY: Float32Array, x: Float32Array, gradX: Float32Array, n: number): void {
    const args = [this.off(gradY, n, 'reluBackward gradY'), this.off(x, n, 'reluBackward x'), this.off(gradX, n, 'reluBackward gradX'), n];
    const { parts, chunk } = this.elementParts(n);
    this.run('reluBackward', parts, n / 7, [...args, chunk]);
  }

  add(a: Float32Array, b: Float32Array, out: Float32Array, n: number): void {
    const args = [this.off(a, n, 'add a'), this.off(b, n, 'add b'), this.off(out, n, 'add out'), n];
    const { parts, chunk } = this.elementParts(n);
    this.run('add', parts, n / 7, [...args, chunk]);
  }

  axpy(alpha: number, x: Float32Array, y: Float32Array, n: number): void {
    const args = [alpha, this.off(x, n, 'axpy x'), this.off(y, n, 'axpy y'), n];
    const { parts, chunk } = this.elementParts(n);
    this.run('axpy', parts, n / 7, [...args, chunk]);
  }

  scale(x: Float32Array, alpha: number, out: Float32Array, n: number): void {
    const args = [this.off(x, n, 'scale x'), alpha, this.off(out, n, 'scale out'), n];
    const { parts, chunk } = this.elementParts(n);
    this.run('scale', parts, n / 10, [...args, chunk]);
  }

  dot(a: Float32Array, b: Float32Array, n: number): number {
    const ao = this.off(a, n, 'dot a');
    const bo = this.off(b, n, 'dot b');
    if (n <= 0) return 0;
    // Chunk size from n only, so the float64 partials and their sum do not depend on threads.
    const chunk = DOT_CHUNK * Math.max(1, Math.ceil(n / (DOT_CHUNK * 2048)));
    const parts = Math.ceil(n / chunk);
    const partials = this.scratchBlock(parts * 8);
    this.run('dot', parts, n / 8, [ao, bo, n, chunk, partials]);
    const values = new Float64Array(this.heap.current, partials, parts);
    let total = 0;
    for (let i = 0; i < parts; i++) total += values[i];
    return total;
  }

  // ---------------------------------------------------------------- pooling

  private pool(
    name: 'maxPool' | 'avgPool' | 'maxPoolBackward' | 'avgPoolBackward', g: PoolGeometry, buffers: number[],
  ): void {
    const desc = this.poolDesc(g);
    const stride = this.sizes.poolScratchBytes(desc);
    const scratch = this.scratchBlock(stride * this.threads);
    const { parts, perPart } = this.partsFor(g.batch * g.channels);
    const cost = g.batch * g.channels * Math.max(g.outH * g.outW, g.inH * g.inW) * g.kernelH * g.kernelW / 8;
    this.run(name, parts, cost, [desc, ...buffers, perPart, scratch, stride]);
  }

  maxPool2d(x: Float32Array, y: Float32Array, g: PoolGeometry): void {
    const planes = g.batch * g.channels;
    this.pool('maxPool', g, [this.off(x, planes * g.inH * g.inW, 'maxPool2d x'), this.off(y, planes * g.outH * g.outW, 'maxPool2d y')]);
  }

  maxPool2dBackward(x: Float32Array, gradY: Float32Array, gradX: Float32Array, g: PoolGeometry): void {
    const planes = g.batch * g.channels;
    this.pool('maxPoolBackward', g, [
      this.off(x, planes * g.inH * g.inW, 'maxPool2dBackward x'),
      this.off(gradY, planes * g.outH * g.outW, 'maxPool2dBackward gradY'),
      this.off(gradX, planes * g.inH * g.inW, 'maxPool2dBackward gradX'),
    ]);
  }

  avgPool2d(x: Float32Array, y: Float32Array, g: PoolGeometry): void {
    const planes = g.batch * g.channels;
    this.pool('avgPool', g, [this.off(x, planes * g.inH * g.inW, 'avgPool2d x'), this.off(y, planes * g.outH * g.outW, 'avgPool2d y')]);
  }

  avgPool2dBackward(gradY: Float32Array, gradX: Float32Array, g: PoolGeometry): void {
    const planes = g.batch * g.channels;
    this.pool('avgPoolBackward', g, [
      this.off(gradY, planes * g.outH * g.outW, 'avgPool2dBackward gradY'),
      this.off(gradX, planes * g.inH * g.inW, 'avgPool2dBackward gradX'),
    ]);
  }

  // ---------------------------------------------------------------- dense

  linear(x: Float32Array, weight: Float32Array, bias: Float32Array | null, y: Float32Array,
    rows: number, inFeatures: number, outFeatures: number): void {
    const args = [
      this.off(x, rows * inFeatures, 'linear x'), this.off(weight, outFeatures * inFeatures, 'linear weight'),
      this.offOrNull(bias, outFeatures, 'linear bias'), this.off(y, rows * outFeatures, 'linear y'),
      rows, inFeatures, outFeatures,
    ];
    const { parts, perPart } = this.partsFor(rows);
    this.run('linear', parts, (2 * rows * inFeatures * outFeatures) / 32, [...args, perPart], 2 * rows * inFeatures * outFeatures);
  }

  linearGradInput(gradY: Float32Array, weight: Float32Array, gradX: Float32Array,
    rows: number, inFeatures: number, outFeatures: number): void {
    const args = [
      this.off(gradY, rows * outFeatures, 'linearGradInput gradY'), this.off(weight, outFeatures * inFeatures, 'linearGradInput weight'),
      this.off(gradX, rows * inFeatures, 'linearGradInput gradX'), rows, inFeatures, outFeatures,
    ];
    const { parts, perPart } = this.partsFor(rows);
    const stride = roundUp(this.sizes.linearScratchBytes(outFeatures, perPart), ALIGN);
    const scratch = this.scratchBlock(stride * this.threads);
    this.run('linearGradInput', parts, (2 * rows * inFeatures * outFeatures) / 32, [...args, perPart, scratch, stride], 2 * rows * inFeatures * outFeatures);
  }

  linearGradWeight(x: Float32Array, gradY: Float32Array, gradW: Float32Array, gradB: Float32Array | null,
    rows: number, inFeatures: number, outFeatures: number): void {
    const args = [
      this.off(x, rows * inFeatures, 'linearGradWeight x'), this.off(gradY, rows * outFeatures, 'linearGradWeight gradY'),
      this.off(gradW, outFeatures * inFeatures, 'linearGradWeight gradW'), this.offOrNull(gradB, outFeatures, 'linearGradWeight gradB'),
      rows, inFeatures, outFeatures,
    ];
    const { parts, perPart } = this.partsFor(outFeatures);
    const stride = roundUp(this.sizes.linearScratchBytes(rows, perPart), ALIGN);
    const scratch = this.scratchBlock(stride * this.threads);
    this.run('linearGradWeight', parts, (2 * rows * inFeatures * outFeatures) / 32, [...args, perPart, scratch, stride], 2 * rows * inFeatures * outFeatures);
  }

  // ---------------------------------------------------------------- channel plumbing

  cropPlanes(src: Float32Array, dst: Float32Array, planes: number, h: number, w: number, offset: number, backward: boolean): void {
    if (!(offset > 0 && offset < h && offset < w)) throw new Error(`wasm backend: cropPlanes offset ${offset} outside ${h}x${w}`);
    const cropped = planes * (h - offset) * (w - offset);
    const so = this.off(src, backward ? cropped : planes * h * w, 'cropPlanes src');
    const dO = this.off(dst, backward ? planes * h * w : cropped, 'cropPlanes dst');
    const { parts, perPart } = this.partsFor(planes);
    this.run('cropPlanes', parts, (planes * h * w) / 8, [so, dO, planes, h, w, offset, backward ? 1 : 0, perPart]);
  }

  scaleMany(x: Float32Array, alphas: readonly number[], outs: readonly Float32Array[], n: number): void {
    if (alphas.length !== outs.length) throw new Error(`wasm backend: scaleMany with ${alphas.length} factors and ${outs.length} outputs`);
    const xo = this.off(x, n, 'scaleMany x');
    const offsets = outs.map((out, k) => this.off(out, n, `scaleMany out ${k}`));
    const count = outs.length;
    if (count === 0 || n === 0) return;
    const table = this.scratchBlock(count * 8);
    new Uint32Array(this.heap.current, table, count).set(offsets);
    new Float32Array(this.heap.current, table + count * 4, count).set(alphas);
    const { parts, chunk } = this.elementParts(n);
    this.run('scaleMany', parts, (n * (count + 1)) / 10, [xo, table, count, n, chunk]);
  }

  scaleSamples(x: Float32Array, factors: Float32Array, out: Float32Array, per: number): void {
    const batch = factors.length;
    const xo = this.off(x, batch * per, 'scaleSamples x');
    const oo = this.off(out, batch * per, 'scaleSamples out');
    if (batch === 0 || per === 0) return;
    const table = this.scratchBlock(batch * 4);
    new Float32Array(this.heap.current, table, batch).set(factors);
    const { parts, perPart } = this.partsFor(batch);
    this.run('scaleSamples', parts, (batch * per) / 10, [xo, table, oo, per, batch, perPart]);
  }

  gatherChannels(sources: readonly Float32Array[], sourceChannels: readonly number[],
    dst: Float32Array, dstChannels: number, map: Int32Array, batch: number, plane: number, accumulate = false): void {
    checkGatherMap(sources, sourceChannels, dstChannels, map, 'wasm');
    const offsets = sources.map((src, s) => this.off(src, batch * sourceChannels[s] * plane, `gatherChannels source ${s}`));
    const dO = this.off(dst, batch * dstChannels * plane, 'gatherChannels dst');
    if (batch === 0 || dstChannels === 0 || plane === 0) return;
    const table = this.scratchBlock(dstChannels * 8);
    const entries = new Uint32Array(this.heap.current, table, dstChannels * 2);
    for (let d = 0; d < dstChannels; d++) {
      const s = map[2 * d];
      if (s < 0) {
        entries[2 * d] = 0;
        entries[2 * d + 1] = 0;
      } else {
        entries[2 * d] = offsets[s] + map[2 * d + 1] * plane * 4;
        entries[2 * d + 1] = sourceChannels[s] * plane * 4;
      }
    }
    const units = batch * dstChannels;
    const { parts, perPart } = this.partsFor(units);
    this.run('gatherChannels', parts, (units * plane) / 8, [table, dO, dstChannels, plane, units, perPart, accumulate ? 1 : 0]);
  }

  weightedSum(xs: readonly Float32Array[], weights: readonly number[], out: Float32Array, n: number): void {
    if (xs.length === 0 || xs.length !== weights.length) throw new Error(`wasm backend: weightedSum of ${xs.length} inputs with ${weights.length} weights`);
    const offsets = xs.map((x, i) => this.off(x, n, `weightedSum input ${i}`));
    const oo = this.off(out, n, 'weightedSum out');
    const count = xs.length;
    const table = this.scratchBlock(count * 8);
    new Uint32Array(this.heap.current, table, count).set(offsets);
    new Float32Array(this.heap.current, table + count * 4, count).set(weights);
    const { parts, chunk } = this.elementParts(n);
    this.run('weightedSum', parts, (n * (count + 1)) / 8, [table, count, oo, n, chunk]);
  }

  dots(a: Float32Array, bs: readonly Float32Array[], n: number): number[] {
    const ao = this.off(a, n, 'dots a');
    const offsets = bs.map((b, i) => this.off(b, n, `dots b${i}`));
    if (n <= 0) return bs.map(() => 0);
    const count = bs.length;
    const chunk = DOT_CHUNK * Math.max(1, Math.ceil(n / (DOT_CHUNK * 2048)));
    const parts = Math.ceil(n / chunk);
    const partialBytes = roundUp(parts * count * 8, ALIGN);
    const partials = this.scratchBlock(partialBytes + count * 4);
    const table = partials + partialBytes;
    new Uint32Array(this.heap.current, table, count).set(offsets);
    this.run('dots', parts, (n * (count + 1)) / 8, [ao, table, count, n, chunk, partials]);
    const values = new Float64Array(this.heap.current, partials, parts * count);
    const totals = new Array<number>(count).fill(0);
    for (let p = 0; p < parts; p++) for (let k = 0; k < count; k++) totals[k] += values[p * count + k];
    return totals;
  }
}

/** One shared memory, with the largest maximum the engine accepts. */
function createSharedMemory(): WebAssembly.Memory {
  let lastError: unknown = null;
  for (const maximum of MAXIMUM_PAGES) {
    try {
      return new WebAssembly.Memory({ initial: INITIAL_PAGES, maximum, shared: true });
    } catch (e) {
      lastError = e;
    }
  }
  throw new Error(`wasm backend: cannot create a shared WebAssembly.Memory: ${String(lastError)}`);
}

export function createWasmBackend(options: { threads?: number } = {}): KernelBackend {
  return new WasmBackend(options);
}

registerBackend('wasm', (o) => createWasmBackend(o));
