/**
 * The DARTS operation set (spec section 1) with the authors' module structure, so that
 * state-dict keys (`op.1.weight`, `conv_1.weight`, `bn.running_mean`, ...) match theirs.
 */
import { BatchNorm2d, AvgPool2d, Conv2d, Identity, MaxPool2d, ReLU } from '../nn/layers.js';
import { Module, Sequential, type Layer } from '../nn/module.js';
import * as ops from '../tensor/ops.js';
import type { Tensor } from '../tensor/tensor.js';
import { isPrimitive, PRIMITIVES, type Primitive } from './primitives.js';

/**
 * An operation that is a Sequential under the key `op` whose first layer is a ReLU: the
 * shape of ReLUConvBN, DilConv and SepConv in the authors' code.
 */
abstract class ReluSequence extends Module implements Layer {
  readonly op: Sequential;

  protected constructor(...afterRelu: Module[]) {
    super();
    this.op = this.registerModule('op', new Sequential(new ReLU(), ...afterRelu));
  }

  forward(x: Tensor): Tensor {
    return this.run(0, x);
  }

  /** The same on an input that already went through the leading ReLU (shared by a MixedOp). */
  forwardActivated(activated: Tensor): Tensor {
    return this.run(1, activated);
  }

  /**
   * op.forwardFrom(start, x), except that a ReLU's output is released with ops.releaseRelu
   * once the next layer ran: SepConv's inner ReLU output is recomputed in backward from the
   * batch-norm output that backward keeps anyway, instead of being stored next to it.
   */
  private run(start: number, x: Tensor): Tensor {
    const layers = this.op.layers;
    let y = x;
    let input: Tensor | null = null;
    for (let i = start; i < layers.length; i++) {
      const next = (layers[i] as unknown as Layer).forward(y);
      if (y !== x && next !== y) {
        if (input !== null && layers[i - 1] instanceof ReLU) ops.releaseRelu(y, input);
        else y.drop();
      }
      input = y;
      y = next;
    }
    return y;
  }
}

/** ReLU, conv kxk without bias, BN: keys op.1.weight, op.2.*. */
export class ReLUConvBN extends ReluSequence {
  constructor(cIn: number, cOut: number, kernel: number, stride: number, padding: number, affine: boolean) {
    super(
      new Conv2d(cIn, cOut, kernel, { stride, padding }),
      new BatchNorm2d(cOut, { affine }),
    );
  }
}

/** ReLU, depthwise dilated kxk, pointwise 1x1, BN. */
export class DilConv extends ReluSequence {
  constructor(cIn: number, cOut: number, kernel: number, stride: number, padding: number, dilation: number, affine: boolean) {
    super(
      new Conv2d(cIn, cIn, kernel, { stride, padding, dilation, groups: cIn }),
      new Conv2d(cIn, cOut, 1),
      new BatchNorm2d(cOut, { affine }),
    );
  }
}

/** Two stacked (ReLU, depthwise kxk, pointwise 1x1, BN); only the first depthwise strides. */
export class SepConv extends ReluSequence {
  constructor(cIn: number, cOut: number, kernel: number, stride: number, padding: number, affine: boolean) {
    super(
      new Conv2d(cIn, cIn, kernel, { stride, padding, groups: cIn }),
      new Conv2d(cIn, cIn, 1),
      new BatchNorm2d(cIn, { affine }),
      new ReLU(),
      new Conv2d(cIn, cIn, kernel, { stride: 1, padding, groups: cIn }),
      new Conv2d(cIn, cOut, 1),
      new BatchNorm2d(cOut, { affine }),
    );
  }
}

/**
 * ReLU; two 1x1 stride-2 convs to cOut/2 each, the second on x shifted by one pixel;
 * concat; BN. Odd spatial sizes are an error (the authors' code would crop silently).
 */
export class FactorizedReduce extends Module implements Layer {
  readonly conv1: Conv2d;
  readonly conv2: Conv2d;
  readonly bn: BatchNorm2d;

  constructor(cIn: number, cOut: number, affine: boolean) {
    super();
    if (cOut % 2 !== 0) throw new Error(`FactorizedReduce: output channels must be even, got ${cOut}`);
    this.conv1 = this.registerModule('conv_1', new Conv2d(cIn, cOut / 2, 1, { stride: 2 }));
    this.conv2 = this.registerModule('conv_2', new Conv2d(cIn, cOut / 2, 1, { stride: 2 }));
    this.bn = this.registerModule('bn', new BatchNorm2d(cOut, { affine }));
  }

  forward(x: Tensor): Tensor {
    const [, , h, w] = x.shape;
    if (h % 2 !== 0 || w % 2 !== 0) {
      throw new Error(`FactorizedReduce: spatial size ${h}x${w} is odd; a reduction needs even sizes (choose an input size divisible by 4)`);
    }
    const activated = ops.relu(x);
    const y = this.forwardActivated(activated);
    activated.drop();
    return y;
  }

  /** The same on an input that already went through the leading ReLU (shared by a MixedOp). */
  forwardActivated(activated: Tensor): Tensor {
    const shifted = ops.cropTopLeft(activated, 1);
    const even = this.conv1.forward(activated);
    const odd = this.conv2.forward(shifted);
    shifted.drop();
    const joined = ops.concatChannels([even, odd]);
    even.drop();
    odd.drop();
    const y = this.bn.forward(joined);
    joined.drop();
    return y;
  }
}

/** The `none` operation: zeros of the output shape, contributing no gradient. */
export class Zero extends Module implements Layer {
  constructor(readonly stride: number) {
    super();
  }

  forward(x: Tensor): Tensor {
    return ops.zerosLikeStrided(x, this.stride);
  }
}

/** OPS[name](C, stride, affine) of the authors' operations.py. */
export function createOperation(name: Primitive, channels: number, stride: number, affine: boolean): Layer {
  switch (name) {
    case 'none': return new Zero(stride);
    case 'max_pool_3x3': return new MaxPool2d(3, stride, 1);
    case 'avg_pool_3x3': return new AvgPool2d(3, stride, 1);
    case 'skip_connect': return stride === 1 ? new Identity() : new FactorizedReduce(channels, channels, affine);
    case 'sep_conv_3x3': return new SepConv(channels, channels, 3, stride, 1, affine);
    case 'sep_conv_5x5': return new SepConv(channels, channels, 5, stride, 2, affine);
    case 'dil_conv_3x3': return new DilConv(channels, channels, 3, stride, 2, 2, affine);
    case 'dil_conv_5x5': return new DilConv(channels, channels, 5, stride, 4, 2, affine);
  }
}

export function createOperationByName(name: string, channels: number, stride: number, affine: boolean): Layer {
  if (!isPrimitive(name)) throw new Error(`unknown operation '${name}' (known: ${PRIMITIVES.join(', ')})`);
  return createOperation(name, channels, stride, affine);
}

/** An operation whose first layer is a ReLU, which a MixedOp computes once for all of them. */
export interface ActivatedOperation extends Layer {
  forwardActivated(activated: Tensor): Tensor;
}

export function startsWithRelu(op: Layer): op is ActivatedOperation {
  return op instanceof ReluSequence || op instanceof FactorizedReduce;
}

/** Operations that keep their input untouched (drop path skips them, spec section 7). */
export function isIdentityOperation(op: Layer): boolean {
  return op instanceof Identity;
}
