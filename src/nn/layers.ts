/** The layers DARTS networks are made of, with torch.nn's parameter names and defaults. */
import { isRecomputing } from '../tensor/autograd.js';
import * as ops from '../tensor/ops.js';
import { Tensor, empty, full, zeros } from '../tensor/tensor.js';
import { defaultInitBound, fillUniform } from './init.js';
import { Module, type Layer } from './module.js';

export interface Conv2dOptions {
  stride?: number;
  padding?: number;
  dilation?: number;
  groups?: number;
  bias?: boolean;
}

export class Conv2d extends Module implements Layer {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly options: Required<Omit<Conv2dOptions, 'bias'>>;

  constructor(readonly inChannels: number, readonly outChannels: number, readonly kernelSize: number, options: Conv2dOptions = {}) {
    super();
    this.options = {
      stride: options.stride ?? 1, padding: options.padding ?? 0,
      dilation: options.dilation ?? 1, groups: options.groups ?? 1,
    };
    const { groups } = this.options;
    if (inChannels % groups !== 0 || outChannels % groups !== 0) {
      throw new Error(`Conv2d: channels ${inChannels}->${outChannels} not divisible by groups ${groups}`);
    }
    const fanIn = (inChannels / groups) * kernelSize * kernelSize;
    const bound = defaultInitBound(fanIn);
    this.weight = empty([outChannels, inChannels / groups, kernelSize, kernelSize]);
    fillUniform(this.weight.data, bound);
    this.registerParameter('weight', this.weight);
    this.bias = null;
    if (options.bias) {
      this.bias = empty([outChannels]);
      fillUniform(this.bias.data, bound);
      this.registerParameter('bias', this.bias);
    }
  }

  forward(x: Tensor): Tensor {
    const y = ops.conv2d(x, this.weight, this.options);
    if (!this.bias) return y;
    throw new Error('Conv2d: bias is not used by DARTS networks and not implemented');
  }
}

export interface BatchNormOptions {
  affine?: boolean;
  momentum?: number;
  eps?: number;
}

export class BatchNorm2d extends Module implements Layer {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  readonly runningMean: Tensor;
  readonly runningVar: Tensor;
  /** num_batches_tracked, an int64 scalar in the state dict. */
  readonly numBatchesTracked: Tensor;
  readonly momentum: number;
  readonly eps: number;

  constructor(readonly channels: number, options: BatchNormOptions = {}) {
    super();
    const affine = options.affine ?? true;
    this.momentum = options.momentum ?? 0.1;
    this.eps = options.eps ?? 1e-5;
    this.weight = affine ? full([channels], 1) : null;
    this.bias = affine ? zeros([channels]) : null;
    if (affine) {
      this.registerParameter('weight', this.weight);
      this.registerParameter('bias', this.bias);
    }
    this.runningMean = this.registerBuffer('running_mean', zeros([channels]));
    this.runningVar = this.registerBuffer('running_var', full([channels], 1));
    this.numBatchesTracked = this.registerBuffer('num_batches_tracked', zeros([]), 'I64');
  }

  forward(x: Tensor): Tensor {
    // A recomputed checkpoint replays the same batch: its statistics were already counted.
    const updateRunningStats = this.training && !isRecomputing();
    if (updateRunningStats) this.numBatchesTracked.data[0] += 1;
    return ops.batchNorm2d(x, {
      weight: this.weight, bias: this.bias, runningMean: this.runningMean, runningVar: this.runningVar,
      training: this.training, momentum: this.momentum, eps: this.eps, updateRunningStats,
    });
  }
}

export class Linear extends Module implements Layer {
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(readonly inFeatures: number, readonly outFeatures: number, options: { bias?: boolean } = {}) {
    super();
    const bound = defaultInitBound(inFeatures);
    this.weight = empty([outFeatures, inFeatures]);
    fillUniform(this.weight.data, bound);
    this.registerParameter('weight', this.weight);
    this.bias = null;
    if (options.bias ?? true) {
      this.bias = empty([outFeatures]);
      fillUniform(this.bias.data, bound);
      this.registerParameter('bias', this.bias);
    }
  }

  forward(x: Tensor): Tensor {
    return ops.linear(x, this.weight, this.bias);
  }
}

export class ReLU extends Module implements Layer {
  forward(x: Tensor): Tensor {
    return ops.relu(x);
  }
}

export class MaxPool2d extends Module implements Layer {
  constructor(readonly kernel: number, readonly stride: number, readonly padding = 0) {
    super();
  }

  forward(x: Tensor): Tensor {
    return ops.maxPool2d(x, { kernel: this.kernel, stride: this.stride, padding: this.padding });
  }
}

/** Average pool with count_include_pad=False (the only variant DARTS uses). */
export class AvgPool2d extends Module implements Layer {
  constructor(readonly kernel: number, readonly stride: number, readonly padding = 0) {
    super();
  }

  forward(x: Tensor): Tensor {
    return ops.avgPool2d(x, { kernel: this.kernel, stride: this.stride, padding: this.padding });
  }
}

export class Identity extends Module implements Layer {
  forward(x: Tensor): Tensor {
    return x;
  }
}

/** Frees every parameter, buffer and gradient of a module tree. */
export function disposeModule(module: Module): void {
  for (const entry of module.stateEntries()) {
    entry.tensor.grad?.dispose();
    entry.tensor.dispose();
  }
}

/** Number of parameter elements of a module tree. */
export function parameterCount(module: Module): number {
  return module.parameters().reduce((s, p) => s + p.numel, 0);
}
