/**
 * Parameter counts and multiply-adds (spec section 7): parameters of the main network
 * (auxiliary head excluded; for the search network its weights, no alphas / betas);
 * multiply-adds of one image's forward pass in eval mode (no auxiliary head), counting
 * convolutions (out_channels x out_H x out_W x in_channels/groups x kH x kW) and linear
 * layers (in x out) only: BN, ReLU, pooling and additions are free. Counted by walking the
 * real module tree over shapes; no tensors are computed.
 *
 * These conventions reproduce every row of the spec's reference table exactly:
 * FactorizedReduce counts both 1x1 convolutions (the one on the shifted input too, whose
 * output has the same size for even inputs); ImageNet networks have 1000 classes; in the
 * search network every one of the 8 operations of every MixedOp is counted on its C/K
 * channels.
 */
import { MixedOp } from '../darts/mixed-op.js';
import { DilConv, FactorizedReduce, ReLUConvBN, SepConv, Zero } from '../darts/operations.js';
import { convOutputSize } from '../kernels/backend.js';
import {
  AvgPool2d, BatchNorm2d, Conv2d, Identity, Linear, MaxPool2d, ReLU, disposeModule, parameterCount,
} from '../nn/layers.js';
import { Module, Sequential } from '../nn/module.js';
import {
  EvalNetwork, NetworkCIFAR, NetworkImageNet, reductionCellIndices, type EvalCell, type EvalNetworkOptions,
} from './network.js';

/** Channels and spatial size of one sample's feature map. */
export interface FeatureShape {
  channels: number;
  height: number;
  width: number;
}

export interface LayerCost {
  output: FeatureShape;
  multAdds: number;
}

export interface ComplexityReport {
  /** Parameters of the main network (auxiliary head and architecture parameters excluded). */
  parameters: number;
  /** Multiply-adds of one image's forward pass (convolutions and linear layers). */
  multAdds: number;
}

function shapeText(s: FeatureShape): string {
  return `[${s.channels}, ${s.height}, ${s.width}]`;
}

function expectChannels(what: string, input: FeatureShape, channels: number): void {
  if (input.channels !== channels) {
    throw new Error(`complexity: ${what} expects ${channels} input channels, got ${shapeText(input)}`);
  }
}

/** Output shape and multiply-adds of one module applied to a feature map of `input` shape. */
export function layerCost(module: Module, input: FeatureShape): LayerCost {
  if (module instanceof Conv2d) {
    expectChannels('Conv2d', input, module.inChannels);
    const { stride, padding, dilation, groups } = module.options;
    const k = module.kernelSize;
    const height = convOutputSize(input.height, k, stride, padding, dilation);
    const width = convOutputSize(input.width, k, stride, padding, dilation);
    if (height <= 0 || width <= 0) throw new Error(`complexity: input ${shapeText(input)} too small for a ${k}x${k} convolution`);
    const output = { channels: module.outChannels, height, width };
    return { output, multAdds: module.outChannels * height * width * (module.inChannels / groups) * k * k };
  }
  if (module instanceof Linear) {
    const features = input.channels * input.height * input.width;
    if (features !== module.inFeatures) {
      throw new Error(`complexity: Linear expects ${module.inFeatures} features, got ${shapeText(input)}`);
    }
    return { output: { channels: module.outFeatures, height: 1, width: 1 }, multAdds: module.inFeatures * module.outFeatures };
  }
  if (module instanceof BatchNorm2d || module instanceof ReLU || module instanceof Identity) {
    return { output: input, multAdds: 0 };
  }
  if (module instanceof MaxPool2d || module instanceof AvgPool2d) {
    const height = convOutputSize(input.height, module.kernel, module.stride, module.padding);
    const width = convOutputSize(input.width, module.kernel, module.stride, module.padding);
    return { output: { channels: input.channels, height, width }, multAdds: 0 };
  }
  if (module instanceof Zero) {
    const s = module.stride;
    return { output: { channels: input.channels, height: Math.ceil(input.height / s), width: Math.ceil(input.width / s) }, multAdds: 0 };
  }
  if (module instanceof Sequential) {
    let shape = input;
    let multAdds = 0;
    for (const layer of module.layers) {
      const cost = layerCost(layer, shape);
      shape = cost.output;
      multAdds += cost.multAdds;
    }
    return { output: shape, multAdds };
  }
  if (module instanceof ReLUConvBN || module instanceof SepConv || module instanceof DilConv) {
    return layerCost(module.op, input);
  }
  if (module instanceof FactorizedReduce) {
    if (input.height % 2 !== 0 || input.width % 2 !== 0) {
      throw new Error(`complexity: FactorizedReduce needs even spatial sizes, got ${shapeText(input)}`);
    }
    const first = layerCost(module.conv1, input);
    // The second conv reads x[:, :, 1:, 1:]; with even sizes its output has the same size.
    const second = layerCost(module.conv2, { ...input, height: input.height - 1, width: input.width - 1 });
    const output = { ...first.output, channels: first.output.channels + second.output.channels };
    return { output, multAdds: first.multAdds + second.multAdds };
  }
  if (module instanceof MixedOp) {
    expectChannels('MixedOp', input, module.channels);
    const mixedInput = { ...input, channels: module.mixedChannels };
    let multAdds = 0;
    let output: FeatureShape | null = null;
    for (const op of module.operations) {
      const cost = layerCost(op, mixedInput);
      multAdds += cost.multAdds;
      output = cost.output;
    }
    const reduced = output as FeatureShape;
    return { output: { ...reduced, channels: module.channels }, multAdds };
  }
  throw new Error(`complexity: cannot count a ${module.constructor.name} module`);
}

function cellCost(cell: EvalCell, s0: FeatureShape, s1: FeatureShape): LayerCost {
  const p0 = layerCost(cell.preprocess0, s0);
  const p1 = layerCost(cell.preprocess1, s1);
  let multAdds = p0.multAdds + p1.multAdds;
  const states: FeatureShape[] = [p0.output, p1.output];
  for (let i = 0; i < cell.steps; i++) {
    let node: FeatureShape | null = null;
    for (const k of [2 * i, 2 * i + 1]) {
      const input = states[cell.indices[k]];
      const cost = layerCost(cell.operations[k], input);
      multAdds += cost.multAdds;
      if (node && (node.height !== cost.output.height || node.width !== cost.output.width || node.channels !== cost.output.channels)) {
        throw new Error(`complexity: node ${i + 2} adds ${shapeText(node)} and ${shapeText(cost.output)}`);
      }
      node = cost.output;
    }
    states.push(node as FeatureShape);
  }
  const last = states[cell.concat[0]];
  const channels = cell.concat.reduce((sum, j) => sum + states[j].channels, 0);
  return { output: { channels, height: last.height, width: last.width }, multAdds };
}

function mainParameterCount(network: Module): number {
  return network.namedParameters()
    .filter(([name]) => !name.startsWith('auxiliary_head.'))
    .reduce((sum, [, t]) => sum + t.numel, 0);
}

/**
 * Complexity of a built evaluation network for one image of height x width (eval mode: no
 * auxiliary head).
 */
export function networkComplexity(network: EvalNetwork, height: number, width: number = height): ComplexityReport {
  network.checkInputSize(height, width);
  const image: FeatureShape = { channels: network.config.inChannels, height, width };
  let s0: FeatureShape;
  let s1: FeatureShape;
  let multAdds = 0;
  if (network instanceof NetworkCIFAR) {
    const stem = layerCost(network.stem, image);
    multAdds += stem.multAdds;
    s0 = s1 = stem.output;
  } else if (network instanceof NetworkImageNet) {
    const stem0 = layerCost(network.stem0, image);
    const stem1 = layerCost(network.stem1, stem0.output);
    multAdds += stem0.multAdds + stem1.multAdds;
    s0 = stem0.output;
    s1 = stem1.output;
  } else {
    throw new Error(`complexity: unknown network ${network.constructor.name}`);
  }
  for (const cell of network.cells) {
    const cost = cellCost(cell, s0, s1);
    multAdds += cost.multAdds;
    [s0, s1] = [s1, cost.output];
  }
  // Global (CIFAR) or 7x7 (ImageNet) average pooling to one value per channel, then linear.
  const classifier = layerCost(network.classifier, { channels: s1.channels, height: 1, width: 1 }).multAdds;
  return { parameters: mainParameterCount(network), multAdds: multAdds + classifier };
}

export type EvalNetworkKind = 'cifar' | 'imagenet';

/**
 * Builds the network for `genotype`, counts it and frees it. The input size defaults to
 * 32x32 (CIFAR) or 224x224 (ImageNet).
 */
export function evalNetworkComplexity(
  kind: EvalNetworkKind,
  options: EvalNetworkOptions,
  inputSize: number = kind === 'cifar' ? 32 : 224,
): ComplexityReport {
  const network = kind === 'cifar' ? new NetworkCIFAR(options) : new NetworkImageNet(options);
  try {
    return networkComplexity(network, inputSize, inputSize);
  } finally {
    disposeModule(network);
  }
}

export interface SearchNetworkShape {
  /** C (16). */
  channels?: number;
  /** Cells (8). */
  layers?: number;
  /** Channel proportion 1/K (4). */
  k?: number;
  steps?: number;
  multiplier?: number;
  classes?: number;
  inChannels?: number;
  /** Square input side (32). */
  inputSize?: number;
}

/**
 * Complexity of the (CIFAR) search network of spec section 4: stem, per cell the two
 * preprocessing modules and one partial-channel MixedOp per edge, global pool, classifier.
 * Parameters are the weights only (no alphas / betas). Built piece by piece from the real
 * modules, one cell at a time, and freed again.
 */
export function searchNetworkComplexity(shape: SearchNetworkShape = {}): ComplexityReport {
  const channels = shape.channels ?? 16;
  const layers = shape.layers ?? 8;
  const k = shape.k ?? 4;
  const steps = shape.steps ?? 4;
  const multiplier = shape.multiplier ?? steps;
  const classes = shape.classes ?? 10;
  const inChannels = shape.inChannels ?? 3;
  const inputSize = shape.inputSize ?? 32;
  const stemChannels = 3 * channels;
  let parameters = 0;
  let multAdds = 0;
  const count = (module: Module, input: FeatureShape): FeatureShape => {
    try {
      const cost = layerCost(module, input);
      parameters += parameterCount(module);
      multAdds += cost.multAdds;
      return cost.output;
    } finally {
      disposeModule(module);
    }
  };
  const stem = new Sequential(new Conv2d(inChannels, stemChannels, 3, { padding: 1 }), new BatchNorm2d(stemChannels));
  let s1 = count(stem, { channels: inChannels, height: inputSize, width: inputSize });
  let s0 = s1;
  const reductions = new Set(reductionCellIndices(layers));
  let cell = channels;
  let reductionPrev = false;
  for (let i = 0; i < layers; i++) {
    const reduction = reductions.has(i);
    if (reduction) {
      cell *= 2;
      if (s1.height % 2 !== 0 || s1.width % 2 !== 0) {
        throw new Error(`complexity: search network cell ${i} (a reduction) would receive an odd size ${shapeText(s1)}`);
      }
    }
    const states: FeatureShape[] = [
      count(reductionPrev ? new FactorizedReduce(s0.channels, cell, false) : new ReLUConvBN(s0.channels, cell, 1, 1, 0, false), s0),
      count(new ReLUConvBN(s1.channels, cell, 1, 1, 0, false), s1),
    ];
    for (let node = 0; node < steps; node++) {
      let out: FeatureShape | null = null;
      for (let j = 0; j < node + 2; j++) {
        const stride = reduction && j < 2 ? 2 : 1;
        out = count(new MixedOp(cell, stride, k), states[j]);
      }
      states.push(out as FeatureShape);
    }
    [s0, s1] = [s1, { ...states[states.length - 1], channels: multiplier * cell }];
    reductionPrev = reduction;
  }
  count(new Linear(s1.channels, classes), { channels: s1.channels, height: 1, width: 1 });
  return { parameters, multAdds };
}

