/**
 * Partial-channel MixedOp (spec section 2): the first C/K channels go through every
 * operation, weighted by the softmaxed alphas; the rest bypass (max-pooled 2x2 on a
 * reducing edge); a channel shuffle with K groups mixes the two.
 */
import { BatchNorm2d } from '../nn/layers.js';
import { Module, ModuleList, Sequential, type Layer } from '../nn/module.js';
import { kernels } from '../kernels/registry.js';
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
   * Recompute this MixedOp's internals in backward instead of keeping them (the operation
   * outputs and everything inside them): one more forward for a fraction of the memory.
   */
  recompute = false;
  /**
   * With `recompute`, the internals are still kept while the backend's live memory is below
   * this many bytes when the forward starts (0: always recompute). Results are bitwise the
   * same either way; only time and memory change.
   */
  keepBelowBytes = 0;

  /**
   * `weights` holds softmaxed alphas; this edge's 8 weights start at `weightOffset` (flat
   * index into weights). The gradient flows into them.
   */
  forward(x: Tensor, weights: Tensor, weightOffset = 0): Tensor {
    if (this.recompute && (this.keepBelowBytes <= 0 || kernels().memoryStats().liveBytes >= this.keepBelowBytes)) {
      return checkpoint(([input, w]) => this.mix(input, w, weightOffset), [x, weights]);
    }
    return this.mix(x, weights, weightOffset);
  }

  private mix(x: Tensor, weights: Tensor, weightOffset: number): Tensor {
    const [, c] = x.shape;
    if (c !== this.channels) throw new Error(`MixedOp: input has ${c} channels, expected ${this.channels}`);
    // K = 1 reads x whole; the alias sums the operations' gradients before they join x's
    // other ones, as the slice does for K > 1, so keeping or recomputing this MixedOp
    // gives the same bits.
    const mixedInput = this.k === 1 ? ops.alias(x) : ops.sliceChannels(x, 0, this.mixedChannels);
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
    if (activated) ops.releaseRelu(activated, mixedInput);
    if (mixedInput !== x) mixedInput.drop();
    if (this.k === 1) return mixed;
    // channel_shuffle(cat([mixed, bypass]), K) as one gather; on a normal edge the bypass
    // channels are read straight from x.
    if (this.stride === 1) {
      const y = ops.gatherChannels([mixed, x], this.joinMap(), 'MixedOp join');
      mixed.drop();
      return y;
    }
    const bypass = ops.sliceChannels(x, this.mixedChannels, c - this.mixedChannels);
    const pooled = ops.maxPool2d(bypass, { kernel: 2, stride: 2 });
    bypass.drop();
    const y = ops.gatherChannels([mixed, pooled], this.joinMap(), 'MixedOp join');
    mixed.drop();
    pooled.drop();
    return y;
  }

  private joinMapCache: Int32Array | null = null;

  /**
   * Output channel j*K + g of channel_shuffle(cat([mixed, bypass]), K): mixed channel j for
   * g = 0, else bypass channel (g-1)*C/K + j, which on a normal edge is x's channel g*C/K + j.
   */
  private joinMap(): Int32Array {
    if (this.joinMapCache) return this.joinMapCache;
    const { channels, k, mixedChannels } = this;
    const map = new Int32Array(2 * channels);
    for (let o = 0; o < channels; o++) {
      const g = o % k;
      const j = (o - g) / k;
      if (g === 0) {
        map[2 * o + 1] = j;
      } else {
        map[2 * o] = 1;
        map[2 * o + 1] = (this.stride === 1 ? g : g - 1) * mixedChannels + j;
      }
    }
    this.joinMapCache = map;
    return map;
  }
}
