/// <reference types="@webgpu/types" />
/**
 * The WebGPU runtime under the kernels: buffer handles and their pool, the parameter arena,
 * the command recorder that batches dispatches into one submission, and the pipeline cache.
 *
 * - Buffers come from a pool of size classes. A freed buffer waits until the device has
 *   finished every submission recorded up to the free (queue.onSubmittedWorkDone), and only
 *   then is handed out again.
 * - Every dispatch reads its scalar parameters (sizes, offsets, factors, gather maps) from a
 *   slice of one storage buffer per batch, written once just before the batch is submitted:
 *   no buffer is written while a recorded command still has to read its old contents.
 * - Dispatches are recorded into one open compute pass and submitted every `batchSize`
 *   dispatches, or when the host needs a result (`read`, `sync`) or writes a buffer (`upload`).
 */
import type { DeviceBuffer } from './handles.js';

// Spec values of GPUBufferUsage and GPUMapMode (Node has no such globals unless the binding installs them).
const USAGE_MAP_READ = 0x1;
const USAGE_COPY_SRC = 0x4;
const USAGE_COPY_DST = 0x8;
const USAGE_STORAGE = 0x80;
const MAP_READ = 0x1;

/** A device buffer of `numel` floats (capacity `bytes`, a pool size class). Opaque to callers. */
export class GpuBuffer implements DeviceBuffer {
  /** Set by free(): using the handle afterwards is an error. */
  freed = false;
  constructor(readonly buffer: GPUBuffer, readonly numel: number, readonly bytes: number) {}

  /** Floats it holds (DeviceBuffer's name for numel, as a Float32Array's). */
  get length(): number {
    return this.numel;
  }
}

/** Pool size class of a request: multiples of 256 bytes up to 4 KiB, then 2^k and 1.5 * 2^k (at most 1/3 wasted). */
export function sizeClass(bytes: number): number {
  const b = Math.max(bytes, 4);
  if (b <= 4096) return Math.ceil(b / 256) * 256;
  const p = 2 ** Math.ceil(Math.log2(b));
  return b <= p * 0.75 ? p * 0.75 : p;
}

/** One compiled kernel: its pipeline and how many storage buffers it binds after the parameters. */
export interface Kernel {
  readonly pipeline: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
  /** Access of bindings 1..n: true = read_write. */
  readonly writes: readonly boolean[];
  readonly label: string;
}

/** Words of a dispatch's parameters: u32 values, with f32 and i32 bit patterns written through helpers. */
export class Params {
  readonly words: number[] = [];
  private static readonly f32 = new Float32Array(1);
  private static readonly u32 = new Uint32Array(Params.f32.buffer);

  u(...values: number[]): this {
    for (const v of values) {
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error(`webgpu backend: parameter ${v} is not a u32`);
      this.words.push(v);
    }
    return this;
  }

  i(...values: number[]): this {
    for (const v of values) this.words.push(v >>> 0);
    return this;
  }

  f(...values: number[]): this {
    for (const v of values) {
      Params.f32[0] = v;
      this.words.push(Params.u32[0]);
    }
    return this;
  }
}

interface Batch {
  buffers: GpuBuffer[];
  staging: GPUBuffer[];
  arena: GPUBuffer | null;
}

export interface RuntimeOptions {
  /** Dispatches per submission (default 256). */
  batchSize?: number;
  /** Bytes of the per-batch parameter buffer (default 256 KiB). */
  arenaBytes?: number;
  /**
   * Storage buffers one kernel may bind, parameters included (default: the device's limit).
   * Lower values make the kernels with many inputs split them over more dispatches, with the
   * same results: how a device with the WebGPU minimum of 8 behaves.
   */
  maxStorageBuffers?: number;
}

export class Runtime {
  readonly limits: GPUSupportedLimits;
  /** Most storage buffers one kernel may bind besides its parameters. */
  readonly maxBuffers: number;
  private readonly batchSize: number;
  private readonly arenaWords: number;
  private readonly align: number;

  private readonly pipelines = new Map<string, Kernel>();
  private readonly pool = new Map<number, GPUBuffer[]>();
  private readonly stagingPool = new Map<number, GPUBuffer[]>();
  private readonly arenaPool: GPUBuffer[] = [];

  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private dispatches = 0;
  private arena: GPUBuffer | null = null;
  private readonly host: Uint32Array<ArrayBuffer>;
  private used = 0;
  /** Freed since the last submission (they wait for it to complete). */
  private retiring: GpuBuffer[] = [];
  private retiringStaging: GPUBuffer[] = [];
  private inFlight = new Set<Promise<void>>();
  private errors: string[] = [];
  private destroyed = false;

  private live = 0;
  private peak = 0;
  private reserved = 0;
  /** Dispatches recorded and submissions made (for the benchmarks). */
  dispatchCount = 0;
  submitCount = 0;

  constructor(readonly device: GPUDevice, options: RuntimeOptions = {}) {
    this.limits = device.limits;
    this.batchSize = options.batchSize ?? 256;
    const arenaBytes = options.arenaBytes ?? 256 * 1024;
    this.arenaWords = arenaBytes / 4;
    this.host = new Uint32Array(this.arenaWords);
    this.align = Math.max(16, device.limits.minStorageBufferOffsetAlignment) / 4;
    const storage = Math.min(options.maxStorageBuffers ?? Infinity, device.limits.maxStorageBuffersPerShaderStage);
    if (!(storage >= 4)) throw new Error(`webgpu backend: maxStorageBuffers ${options.maxStorageBuffers} is below the 4 the kernels need`);
    this.maxBuffers = storage - 1;
    device.addEventListener('uncapturederror', (event) => {
      this.errors.push((event as GPUUncapturedErrorEvent).error.message);
    });
    // A lost device (driver reset, out of memory, unplugged) fails every later read and sync.
    void device.lost.then((info) => {
      if (!this.destroyed) this.errors.push(`device lost (${info.reason}): ${info.message}`);
    });
  }

  // ------------------------------------------------------------------ pipelines

  /** Compiles (once per source) a kernel whose binding 0 is the parameters and 1..n are storage buffers. */
  kernel(label: string, code: string, writes: readonly boolean[]): Kernel {
    const cached = this.pipelines.get(code);
    if (cached) return cached;
    const entries: GPUBindGroupLayoutEntry[] = [
      { binding: 0, visibility: 4 /* COMPUTE */, buffer: { type: 'read-only-storage' } },
      ...writes.map((w, i): GPUBindGroupLayoutEntry => ({
        binding: i + 1, visibility: 4, buffer: { type: w ? 'storage' : 'read-only-storage' },
      })),
    ];
    const layout = this.device.createBindGroupLayout({ label, entries });
    const module = this.device.createShaderModule({ label, code });
    const pipeline = this.device.createComputePipeline({
      label, layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: 'main' },
    });
    const kernel: Kernel = { pipeline, layout, writes, label };
    this.pipelines.set(code, kernel);
    return kernel;
  }

  get pipelineCount(): number {
    return this.pipelines.size;
  }

  // ------------------------------------------------------------------ buffers

  alloc(numel: number): GpuBuffer {
    if (!Number.isInteger(numel) || numel < 0) throw new Error(`webgpu backend: bad alloc size ${numel}`);
    const bytes = sizeClass(numel * 4);
    if (bytes > this.limits.maxStorageBufferBindingSize) {
      throw new Error(`webgpu backend: a buffer of ${numel} floats exceeds the device's largest storage binding (${this.limits.maxStorageBufferBindingSize} bytes)`);
    }
    const free = this.pool.get(bytes);
    let buffer = free?.pop();
    if (!buffer) {
      buffer = this.device.createBuffer({ size: bytes, usage: USAGE_STORAGE | USAGE_COPY_SRC | USAGE_COPY_DST });
      this.reserved += bytes;
    }
    this.live += bytes;
    if (this.live > this.peak) this.peak = this.live;
    return new GpuBuffer(buffer, numel, bytes);
  }

  free(handle: GpuBuffer): void {
    if (handle.freed) return;
    handle.freed = true;
    this.live -= handle.bytes;
    this.retiring.push(handle);
  }

  check(handle: GpuBuffer, numel: number, what: string): void {
    if (!(handle instanceof GpuBuffer)) throw new Error(`webgpu backend: ${what} is not a buffer of this backend`);
    if (handle.freed) throw new Error(`webgpu backend: ${what} was freed`);
    if (handle.numel < numel) throw new Error(`webgpu backend: ${what} has ${handle.numel} elements, needs ${numel}`);
  }

  memoryStats(): { liveBytes: number; peakBytes: number; reservedBytes: number } {
    return { liveBytes: this.live, peakBytes: this.peak, reservedBytes: this.reserved };
  }

  resetPeak(): void {
    this.peak = this.live;
  }

  // ------------------------------------------------------------------ recording

  /**
   * Records one dispatch of `kernel` with `params` over `buffers` (bindings 1..n) and a grid of
   * `groups` workgroups (x, y, z).
   */
  dispatch(kernel: Kernel, params: Params, buffers: readonly GpuBuffer[], groups: readonly [number, number, number]): void {
    if (buffers.length !== kernel.writes.length) {
      throw new Error(`webgpu backend: ${kernel.label} binds ${kernel.writes.length} buffers, got ${buffers.length}`);
    }
    for (let i = 0; i < buffers.length; i++) {
      if (buffers[i].freed) throw new Error(`webgpu backend: ${kernel.label} binding ${i + 1} was freed`);
      if (!kernel.writes[i]) continue;
      for (let j = 0; j < buffers.length; j++) {
        if (j !== i && buffers[j].buffer === buffers[i].buffer) {
          throw new Error(`webgpu backend: ${kernel.label} writes binding ${i + 1} that binding ${j + 1} also binds`);
        }
      }
    }
    if (groups[0] === 0 || groups[1] === 0 || groups[2] === 0) return;
    const words = params.words.length || 1;
    if (words > this.arenaWords) throw new Error(`webgpu backend: ${kernel.label} has ${words} parameter words, more than the arena holds`);
    const start = Math.ceil(this.used / this.align) * this.align;
    if (start + words > this.arenaWords || this.dispatches >= this.batchSize) {
      this.flush();
      return this.dispatch(kernel, params, buffers, groups);
    }
    if (this.arena === null) this.arena = this.arenaPool.pop() ?? this.newArena();
    this.host.set(params.words, start);
    this.used = start + words;
    const bindGroup = this.device.createBindGroup({
      layout: kernel.layout,
      entries: [
        { binding: 0, resource: { buffer: this.arena, offset: start * 4, size: Math.ceil(words / 4) * 16 } },
        ...buffers.map((b, i) => ({ binding: i + 1, resource: { buffer: b.buffer, offset: 0, size: b.bytes } })),
      ],
    });
    const pass = this.openPass();
    pass.setPipeline(kernel.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(groups[0], groups[1], groups[2]);
    this.dispatches++;
    this.dispatchCount++;
  }

  private newArena(): GPUBuffer {
    this.reserved += this.arenaWords * 4;
    return this.device.createBuffer({ size: this.arenaWords * 4 + 64, usage: USAGE_STORAGE | USAGE_COPY_DST });
  }

  private openPass(): GPUComputePassEncoder {
    if (this.encoder === null) this.encoder = this.device.createCommandEncoder();
    if (this.pass === null) this.pass = this.encoder.beginComputePass();
    return this.pass;
  }

  /** Submits what is recorded; what was freed until now returns to the pool once the device is done with it. */
  flush(): void {
    const batch: Batch = { buffers: this.retiring, staging: this.retiringStaging, arena: null };
    this.retiring = [];
    this.retiringStaging = [];
    if (this.encoder !== null) {
      this.pass?.end();
      this.pass = null;
      if (this.arena !== null) {
        this.device.queue.writeBuffer(this.arena, 0, this.host, 0, Math.ceil(this.used / 4) * 4);
        batch.arena = this.arena;
        this.arena = null;
      }
      this.used = 0;
      this.dispatches = 0;
      this.device.queue.submit([this.encoder.finish()]);
      this.encoder = null;
      this.submitCount++;
    }
    if (batch.buffers.length === 0 && batch.staging.length === 0 && batch.arena === null) return;
    const done = this.device.queue.onSubmittedWorkDone().then(() => {
      for (const b of batch.buffers) this.pooled(this.pool, b.bytes).push(b.buffer);
      for (const s of batch.staging) this.pooled(this.stagingPool, s.size).push(s);
      if (batch.arena) this.arenaPool.push(batch.arena);
      this.inFlight.delete(done);
    });
    this.inFlight.add(done);
  }

  private pooled(pool: Map<number, GPUBuffer[]>, bytes: number): GPUBuffer[] {
    let list = pool.get(bytes);
    if (!list) {
      list = [];
      pool.set(bytes, list);
    }
    return list;
  }

  /** Writes host data into a buffer after every kernel recorded so far. */
  upload(handle: GpuBuffer, data: Float32Array, offset: number): void {
    if (this.encoder !== null) this.flush();
    this.device.queue.writeBuffer(handle.buffer, offset * 4, data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
  }

  /** Resolves once everything submitted so far is done (and the pool has its buffers back). */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    await Promise.all([...this.inFlight]);
    this.throwErrors();
  }

  async read(handle: GpuBuffer, numel: number, offset: number): Promise<Float32Array> {
    const bytes = Math.max(4, numel * 4);
    const size = sizeClass(bytes);
    let staging = this.stagingPool.get(size)?.pop();
    if (!staging) {
      staging = this.device.createBuffer({ size, usage: USAGE_MAP_READ | USAGE_COPY_DST });
      this.reserved += size;
    }
    // the copy goes after everything recorded so far, outside the compute pass
    this.pass?.end();
    this.pass = null;
    this.encoder ??= this.device.createCommandEncoder();
    if (numel > 0) this.encoder.copyBufferToBuffer(handle.buffer, offset * 4, staging, 0, numel * 4);
    this.flush();
    try {
      await staging.mapAsync(MAP_READ, 0, bytes);
    } catch (error) {
      this.throwErrors();
      throw error;
    }
    const out = new Float32Array(staging.getMappedRange(0, bytes).slice(0, numel * 4));
    staging.unmap();
    this.pooled(this.stagingPool, size).push(staging);
    this.throwErrors();
    return out;
  }

  private throwErrors(): void {
    if (this.errors.length === 0) return;
    const errors = this.errors;
    this.errors = [];
    throw new Error(`webgpu backend: device error: ${errors.join(' | ')}`);
  }

  /** Drops the pooled buffers and pipelines and destroys the device. */
  destroy(): void {
    this.destroyed = true;
    this.pass?.end();
    this.pass = null;
    this.encoder = null;
    for (const list of [...this.pool.values(), ...this.stagingPool.values()]) for (const b of list) b.destroy();
    for (const b of this.arenaPool) b.destroy();
    this.pool.clear();
    this.stagingPool.clear();
    this.pipelines.clear();
    this.device.destroy();
  }
}

/** Workgroups for `count` items of `perGroup` each, as an (x, y) grid within the per-dimension limit. */
export function grid(count: number, perGroup: number, maxPerDimension: number): [number, number, number] {
  const groups = Math.ceil(count / perGroup);
  if (groups <= maxPerDimension) return [groups, 1, 1];
  const y = Math.ceil(groups / maxPerDimension);
  if (y > maxPerDimension) throw new Error(`webgpu backend: ${count} items need more workgroups than a dispatch holds`);
  return [maxPerDimension, y, 1];
}
