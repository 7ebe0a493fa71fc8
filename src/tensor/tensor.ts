/**
 * Float32 NCHW tensors whose storage belongs to the active kernel backend.
 *
 * Lifetime is explicit, because the storage lives outside the JS heap (wasm memory):
 * - `tidy(fn)` disposes every tensor created inside fn except what fn returns and what
 *   was `keep()`-ed (parameters, buffers, gradients of leaves);
 * - `backward()` disposes each intermediate as soon as no pending gradient step needs it
 *   (PyTorch's retain_graph=False), unless the tensor was `retain()`-ed;
 * - a FinalizationRegistry returns the storage of a forgotten tensor as a last resort.
 */
import { kernels } from '../kernels/registry.js';
import type { GradNode } from './autograd.js';

const finalizer = new FinalizationRegistry<Float32Array>((buffer) => {
  try {
    kernels().free(buffer);
  } catch {
    // The backend may be gone at process exit; nothing to return the buffer to.
  }
});

/** Scopes opened by `tidy`; each records the tensors created while it is innermost. */
const scopeStack: Set<Tensor>[] = [];

let nextTensorId = 1;

export type Shape = readonly number[];

export function shapeSize(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function shapeToString(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

export class Tensor {
  readonly id = nextTensorId++;
  readonly shape: Shape;
  readonly numel: number;
  requiresGrad: boolean;
  /** Gradient accumulated by backward() on leaves (PyTorch semantics: added to). */
  grad: Tensor | null = null;
  /** The node that produced this tensor, when it was recorded for autograd. */
  gradFn: GradNode | null = null;
  /** Survives backward's freeing of intermediates. */
  retained = false;
  /** Survives tidy scopes (parameters, buffers, leaf gradients). */
  kept = false;
  /** Recorded nodes that hold this tensor for their backward (see autograd.record). */
  saveRefs = 0;
  /** The forward code no longer needs it: freed as soon as no node holds it. */
  dropped = false;
  private storage: Float32Array | null;
  /** Set while evicted: how to recompute the values, and the tensors that needs (held). */
  private recipe: { fill: (out: Float32Array) => void; inputs: readonly Tensor[] } | null = null;
  /** A view of another tensor's storage: disposing it frees nothing. */
  private readonly borrowed: boolean;

  /** Wraps a buffer obtained from the active backend; takes ownership of it unless `borrowed`. */
  constructor(storage: Float32Array, shape: Shape, requiresGrad = false, borrowed = false) {
    const numel = shapeSize(shape);
    if (storage.length < numel) {
      throw new Error(`tensor storage of ${storage.length} floats is too small for shape ${shapeToString(shape)}`);
    }
    this.storage = storage;
    this.shape = Object.freeze([...shape]);
    this.numel = numel;
    this.requiresGrad = requiresGrad;
    this.borrowed = borrowed;
    if (!borrowed) finalizer.register(this, storage, this);
    const scope = scopeStack[scopeStack.length - 1];
    if (scope) scope.add(this);
  }

  /** The values, NCHW row-major (recomputed first when evicted). Throws once the tensor is disposed. */
  get data(): Float32Array {
    if (this.storage === null && this.recipe !== null) this.restore();
    if (this.storage === null) {
      throw new Error(`tensor #${this.id} ${shapeToString(this.shape)} was freed` +
        ' (by backward or dispose); call retain() on tensors read after backward');
    }
    return this.storage;
  }

  get isDisposed(): boolean {
    return this.storage === null && this.recipe === null;
  }

  /** Evicted: the storage is freed until the next read of `data` recomputes it. */
  get isEvicted(): boolean {
    return this.storage === null && this.recipe !== null;
  }

  /**
   * Frees the storage of an intermediate that backward nodes still hold, keeping a way to
   * recompute it: `fill(out)` writes the values again from `inputs`, which stay alive until
   * then. The first read of `data` (in practice the first backward node that needs it)
   * restores it. Worth it when the inputs are held anyway and `fill` is cheap (a ReLU of a
   * tensor some node saved): one slice of memory for one elementwise pass. Also marks the
   * tensor dropped (the forward code is done with it).
   */
  evict(fill: (out: Float32Array) => void, inputs: readonly Tensor[]): void {
    if (this.storage === null || this.borrowed || this.kept || this.retained) return;
    for (const t of inputs) t.saveRefs++;
    this.recipe = { fill, inputs };
    finalizer.unregister(this);
    kernels().free(this.storage);
    this.storage = null;
    this.dropped = true;
  }

  private restore(): void {
    const recipe = this.recipe as NonNullable<Tensor['recipe']>;
    const storage = kernels().alloc(this.numel);
    recipe.fill(storage);
    this.storage = storage;
    finalizer.register(this, storage, this);
    this.releaseRecipe();
  }

  private releaseRecipe(): void {
    const recipe = this.recipe;
    this.recipe = null;
    if (recipe === null) return;
    for (const t of recipe.inputs) {
      t.saveRefs--;
      if (t.saveRefs <= 0 && t.dropped) t.dispose();
    }
  }

  get isLeaf(): boolean {
    return this.gradFn === null;
  }

  /** Returns the storage to the backend. Safe to call twice. */
  dispose(): void {
    this.releaseRecipe();
    if (this.storage === null) return;
    if (!this.borrowed) {
      finalizer.unregister(this);
      kernels().free(this.storage);
    }
    this.storage = null;
    // gradFn stays: a freed intermediate still links its consumers to its producer.
  }

  /** Exempts this tensor from the enclosing tidy scopes. */
  keep(): this {
    this.kept = true;
    for (const scope of scopeStack) scope.delete(this);
    return this;
  }

  /**
   * Declares that the code that created this intermediate is done with it: it is freed now,
   * or when the last backward node holding it has run. Model code calls this on every
   * intermediate it does not return, so a forward pass keeps only what backward needs.
   */
  drop(): void {
    if (this.kept || this.retained || this.storage === null) return;
    this.dropped = true;
    if (this.saveRefs === 0) this.dispose();
  }

  /** Keeps this intermediate alive through backward(). */
  retain(): this {
    this.retained = true;
    return this;
  }

  /** The single value of a one-element tensor. */
  item(): number {
    if (this.numel !== 1) throw new Error(`item(): tensor has shape ${shapeToString(this.shape)}, expected one element`);
    return this.data[0];
  }

  toArray(): number[] {
    return Array.from(this.data.subarray(0, this.numel));
  }

  /** A detached copy (no grad history). */
  clone(): Tensor {
    const t = new Tensor(kernels().alloc(this.numel), this.shape);
    t.data.set(this.data.subarray(0, this.numel));
    return t;
  }

  /**
   * A new leaf over the same storage (no copy, no history), valid while this tensor lives:
   * how a recomputed segment starts from saved values.
   */
  detachedView(requiresGrad = false): Tensor {
    return new Tensor(this.data, this.shape, requiresGrad, true);
  }

  describe(): string {
    return `Tensor#${this.id}${shapeToString(this.shape)}${this.requiresGrad ? ' requiresGrad' : ''}`;
  }
}

/** A tensor with uninitialised contents. */
export function empty(shape: Shape): Tensor {
  return new Tensor(kernels().alloc(shapeSize(shape)), shape);
}

export function zeros(shape: Shape): Tensor {
  return new Tensor(kernels().allocZeros(shapeSize(shape)), shape);
}

export function full(shape: Shape, value: number): Tensor {
  const t = empty(shape);
  t.data.fill(value);
  return t;
}

export function fromArray(values: ArrayLike<number>, shape: Shape, requiresGrad = false): Tensor {
  const n = shapeSize(shape);
  if (values.length !== n) {
    throw new Error(`fromArray: ${values.length} values do not fill shape ${shapeToString(shape)} (${n})`);
  }
  const t = empty(shape);
  t.data.set(values);
  t.requiresGrad = requiresGrad;
  return t;
}

/** A leaf that requires grad and survives every scope: what optimisers update. */
export function parameter(values: ArrayLike<number> | Tensor, shape?: Shape): Tensor {
  let t: Tensor;
  if (values instanceof Tensor) {
    t = values;
  } else {
    if (!shape) throw new Error('parameter: shape required with plain values');
    t = fromArray(values, shape);
  }
  t.requiresGrad = true;
  return t.keep();
}

function collectTensors(value: unknown, out: Set<Tensor>, depth = 0): void {
  if (depth > 4 || value === null || typeof value !== 'object') return;
  if (value instanceof Tensor) {
    out.add(value);
    return;
  }
  if (Array.isArray(value)) {
    for (const v of value) collectTensors(v, out, depth + 1);
    return;
  }
  if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collectTensors(v, out, depth + 1);
  }
}

/**
 * Runs fn and frees every tensor it created, except those reachable from its return value
 * (a tensor, an array of tensors or a plain object of them) and kept tensors. Returned
 * tensors move to the enclosing scope.
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopeStack.push(scope);
  let result: T;
  try {
    result = fn();
  } finally {
    scopeStack.pop();
  }
  const survivors = new Set<Tensor>();
  collectTensors(result, survivors);
  for (const t of scope) {
    if (!t.kept && !survivors.has(t)) t.dispose();
  }
  const parent = scopeStack[scopeStack.length - 1];
  if (parent) for (const t of survivors) if (!t.kept) parent.add(t);
  return result;
}

/** Disposes tensors (arrays or nested arrays of them); null entries are ignored. */
export function dispose(...tensors: (Tensor | null | undefined | (Tensor | null | undefined)[])[]): void {
  for (const t of tensors) {
    if (Array.isArray(t)) for (const u of t) u?.dispose();
    else t?.dispose();
  }
}
