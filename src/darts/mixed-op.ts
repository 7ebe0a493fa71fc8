/**
 * Partial-channel MixedOp (spec section 2): the first C/K channels go through every
 * operation, weighted by the softmaxed alphas; the rest bypass (max-pooled 2x2 on a
 * reducing edge); a channel shuffle with K groups mixes the two.
 */
import { BatchNorm2d } from '../nn/layers.js';
import { Module, ModuleList, Sequential, type Layer } from '../nn/module.js';
import { checkpoint } from '../tensor/autograd.js';
import * as ops from '../tensor/ops.js';
import type { Tensor } from '../tensor/tensor.js';
import { createOperation, startsWithRelu, Zero } from './operations.js';
import { PRIMITIVES } from './primitives.js';

export class MixedOp extends Module {
  readonly operations: Layer[];
  readonly mixedChannels: number;

  constructor(readonly channels: number, readonly stride: number, readonly k: number) {
    super();
    if (!Number.isInteger(k) || k < 1 || channels % k !== 0) {
      throw new Error(`MixedOp: K=${k} must divide the channel count ${channels}`);
    }
    this.mixedChannels = channels / k;
    if (stride === 2 && this.mixedChannels % 2 !== 0) {
      throw new Error(`MixedOp: C/K = ${this.mixedChannels} must be even on a reducing edge (the stride-2 skip_connect halves it twice)`);
    }
    // `_ops.<index>` as the authors' ModuleList; pools are followed by a non-affine BN.
    const list = this.registerModule('_ops', new ModuleList());
    this.operations = PRIMITIVES.map((name) => {
      let op: Layer = createOperation(name, this.mixedChannels, stride, false);
      if (name.includes('pool')) op = new Sequential(op, new BatchNorm2d(this.mixedChannels, { affine: false }));
      return list.append(op);
    });
  }

  /**
   * `weights` holds softmaxed alphas; this edge's 8 weights start at `weightOffset`
   * (flat index into weights). The gradient flows into them.
   */
  /**
   * Recompute this MixedOp's internals in backward instead of keeping them (the operation
   * outputs and everything inside them): one more forward for a fraction of the memory.
   */
  recompute = false;

  forward(x: Tensor, weights: Tensor, weightOffset = 0): Tensor {
    if (this.recompute) return checkpoint(([input, w]) => this.mix(input, w, weightOffset), [x, weights]);
    return this.mix(x, weights, weightOffset);
  }

  private mix(x: Tensor, weights: Tensor, weightOffset: number): Tensor {
    const [, c] = x.shape;
    if (c !== this.channels) throw new Error(`MixedOp: input has ${c} channels, expected ${this.channels}`);
    const mixedInput = this.k === 1 ? x : ops.sliceChannels(x, 0, this.mixedChannels);
    // The convolutions and FactorizedReduce all start with the same ReLU: compute it once
    // (the authors' code computes it four or five times; the values are identical).
    let activated: Tensor | null = null;
    const outputs: Tensor[] = [];
    const indices: number[] = [];
    this.operations.forEach((op, index) => {
      // `none` outputs zeros: it adds nothing to the sum and nothing to any gradient.
      if (op instanceof Zero) return;
      if (startsWithRelu(op)) {
        activated ??= ops.relu(mixedInput);
        outputs.push(op.forwardActivated(activated));
      } else {
        outputs.push(op.forward(mixedInput));
      }
      indices.push(weightOffset + index);
    });
    const mixed = ops.weightedSum(outputs, weights, indices);
    for (const o of outputs) if (o !== mixedInput) o.drop();
    (activated as Tensor | null)?.drop();
    if (this.k === 1) return mixed;
    mixedInput.drop();
    let bypass = ops.sliceChannels(x, this.mixedChannels, c - this.mixedChannels);
    if (this.stride === 2) {
      const pooled = ops.maxPool2d(bypass, { kernel: 2, stride: 2 });
      bypass.drop();
      bypass = pooled;
    }
    const joined = ops.concatChannels([mixed, bypass]);
    mixed.drop();
    bypass.drop();
    const y = ops.channelShuffle(joined, this.k);
    joined.drop();
    return y;
  }
}
