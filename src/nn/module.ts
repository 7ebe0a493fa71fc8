/**
 * Module tree with named parameters and buffers, as torch.nn.Module: state-dict keys are
 * the dotted path of registration names, in pre-order (own parameters, own buffers, then
 * children in registration order), so checkpoints line up with the authors' models.
 */
import { Tensor } from '../tensor/tensor.js';

export type StateDtype = 'F32' | 'I64';

export interface StateEntry {
  readonly name: string;
  readonly tensor: Tensor;
  readonly dtype: StateDtype;
  readonly kind: 'parameter' | 'buffer';
}

export class Module {
  training = true;
  private readonly ownParameters = new Map<string, Tensor | null>();
  private readonly ownBuffers = new Map<string, { tensor: Tensor; dtype: StateDtype }>();
  private readonly children = new Map<string, Module>();

  protected registerParameter(name: string, tensor: Tensor | null): Tensor | null {
    if (tensor) {
      tensor.requiresGrad = true;
      tensor.keep();
    }
    this.ownParameters.set(name, tensor);
    return tensor;
  }

  protected registerBuffer(name: string, tensor: Tensor, dtype: StateDtype = 'F32'): Tensor {
    tensor.keep();
    this.ownBuffers.set(name, { tensor, dtype });
    return tensor;
  }

  protected registerModule<M extends Module>(name: string, module: M): M {
    this.children.set(name, module);
    return module;
  }

  /** Direct children in registration order. */
  namedChildren(): [string, Module][] {
    return [...this.children.entries()];
  }

  /** Every module of the tree in pre-order, with its dotted path ('' for this one). */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [name, child] of this.children) {
      out.push(...child.namedModules(prefix ? `${prefix}.${name}` : name));
    }
    return out;
  }

  namedParameters(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [path, module] of this.namedModules()) {
      for (const [name, t] of module.ownParameters) if (t) out.push([path ? `${path}.${name}` : name, t]);
    }
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /** Parameters and buffers in PyTorch's state_dict order. */
  stateEntries(): StateEntry[] {
    const out: StateEntry[] = [];
    for (const [path, module] of this.namedModules()) {
      const key = (name: string): string => (path ? `${path}.${name}` : name);
      for (const [name, t] of module.ownParameters) {
        if (t) out.push({ name: key(name), tensor: t, dtype: 'F32', kind: 'parameter' });
      }
      for (const [name, b] of module.ownBuffers) {
        out.push({ name: key(name), tensor: b.tensor, dtype: b.dtype, kind: 'buffer' });
      }
    }
    return out;
  }

  /** Sets train mode on the whole tree (eval() is train(false)). */
  train(mode = true): this {
    for (const [, module] of this.namedModules()) module.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Sets every parameter's gradient to zero (PyTorch 1.13's zero_grad(set_to_none=False)). */
  zeroGrad(): void {
    for (const p of this.parameters()) if (p.grad) p.grad.data.fill(0);
  }

  /**
   * Copies values into the tree's tensors. `source` maps keys to float or integer arrays;
   * shapes are checked by element count. With strict, missing and unexpected keys are errors.
   */
  loadState(source: Map<string, ArrayLike<number>>, options: { strict?: boolean; what?: string } = {}): void {
    const strict = options.strict ?? true;
    const what = options.what ?? 'state dict';
    const entries = this.stateEntries();
    const known = new Set(entries.map((e) => e.name));
    if (strict) {
      const missing = entries.filter((e) => !source.has(e.name)).map((e) => e.name);
      const unexpected = [...source.keys()].filter((k) => !known.has(k));
      if (missing.length > 0 || unexpected.length > 0) {
        const parts: string[] = [];
        if (missing.length) parts.push(`missing ${missing.length} key(s), e.g. '${missing[0]}'`);
        if (unexpected.length) parts.push(`unexpected ${unexpected.length} key(s), e.g. '${unexpected[0]}'`);
        throw new Error(`${what}: does not match this model: ${parts.join('; ')}`);
      }
    }
    for (const entry of entries) {
      const values = source.get(entry.name);
      if (!values) continue;
      if (values.length !== entry.tensor.numel) {
        throw new Error(`${what}: '${entry.name}' has ${values.length} values, the model expects ${entry.tensor.numel}`);
      }
      entry.tensor.data.set(values);
    }
  }
}

/** Children named '0', '1', ... applied in order (torch.nn.Sequential). */
export class Sequential extends Module {
  readonly layers: Module[];

  constructor(...layers: Module[]) {
    super();
    this.layers = layers;
    layers.forEach((layer, i) => this.registerModule(String(i), layer));
  }

  forward(x: Tensor): Tensor {
    return this.forwardFrom(0, x);
  }

  /** Applies layers[start..] to x; intermediates are dropped as soon as the next layer ran. */
  forwardFrom(start: number, x: Tensor): Tensor {
    let y = x;
    for (let i = start; i < this.layers.length; i++) {
      const next = (this.layers[i] as unknown as Layer).forward(y);
      if (y !== x && next !== y) y.drop();
      y = next;
    }
    return y;
  }
}

/** Numbered children '0', '1', ... (torch.nn.ModuleList). */
export class ModuleList extends Module {
  private count = 0;

  append<M extends Module>(module: M): M {
    return this.registerModule(String(this.count++), module);
  }
}

/** A module that maps one tensor to one tensor. */
export interface Layer extends Module {
  forward(x: Tensor): Tensor;
}
