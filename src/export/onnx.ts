/**
 * ONNX form of a trained evaluation network (NetworkCIFAR, NetworkImageNet) for inference:
 * the protobuf messages come from onnx-proto (the official onnx.proto compiled for
 * protobufjs), opset 13, one input `input` [batch, C, H, W] with a symbolic batch dimension,
 * one output `logits` [batch, classes].
 *
 * The graph is the engine's eval-mode forward pass, node for node:
 * - convolutions as Conv (no bias: DARTS convolutions have none) with the engine's stride,
 *   padding, dilation and groups; batch norm as BatchNormalization with the running
 *   statistics and eps 1e-5 (not folded: the state-dict tensors stay recognisable, and
 *   onnxruntime folds them itself when it optimises the graph);
 * - FactorizedReduce: ReLU, then conv_1 on the activation and conv_2 on the activation
 *   shifted by one pixel, a Slice [1:, 1:] of H and W (what the engine's cropTopLeft
 *   computes and the authors' x[:, :, 1:, 1:]), Concat, BatchNormalization;
 * - 3x3 average pooling with count_include_pad=0 (the engine never counts padding), max
 *   pooling with its padding, identity as the input itself, `none` as exact zeros of the
 *   strided shape (Shape, ConstantOfShape);
 * - operations that start with a ReLU share the ReLU of their input state, as the engine's
 *   cells do (one Relu per state);
 * - no auxiliary head and no drop path (both exist only in training);
 * - CIFAR: GlobalAveragePool, Flatten, Gemm; ImageNet: AveragePool 7x7 stride 7, Flatten, Gemm.
 *
 * Initializers are named by the authors' state-dict keys (`cells.0._ops.1.op.1.weight`), so
 * a model can be checked tensor by tensor against a PyTorch state dict.
 */
import onnxProto from 'onnx-proto';

import { FactorizedReduce, startsWithRelu, Zero } from '../darts/operations.js';
import { type EvalCell, type EvalNetwork, NetworkCIFAR, NetworkImageNet } from '../eval/network.js';
import { AvgPool2d, BatchNorm2d, Conv2d, Identity, Linear, MaxPool2d, ReLU } from '../nn/layers.js';
import { type Layer, type Module, Sequential } from '../nn/module.js';
import type { Tensor } from '../tensor/tensor.js';
import { descriptionMetadata, type ModelDescription } from './metadata.js';

const { onnx } = onnxProto;
type NodeProto = InstanceType<typeof onnx.NodeProto>;
type TensorProto = InstanceType<typeof onnx.TensorProto>;
type ModelProto = InstanceType<typeof onnx.ModelProto>;

/** The operator set the graph is written in. */
export const ONNX_OPSET = 13;
/** IR version 7 is the one that goes with opset 13 (ONNX 1.8); every runtime since reads it. */
export const ONNX_IR_VERSION = 7;
export const ONNX_INPUT_NAME = 'input';
export const ONNX_OUTPUT_NAME = 'logits';
/** The symbolic name of the batch dimension. */
export const ONNX_BATCH_DIMENSION = 'batch';

const INT64_MAX = 2n ** 63n - 1n;

export interface OnnxExportOptions {
  /** Written into metadata_props; its image size fixes the input's H and W. */
  description: ModelDescription;
  /** Graph and model doc string (default: a line naming the network and genotype source). */
  docString?: string;
}

type Attribute = number | number[] | string | TensorProto;

/** Accumulates the nodes and initializers of one graph with unique value names. */
class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  private readonly initializerNames = new Set<string>();
  private counter = 0;

  /** A fresh value name under a module path ('cells.3/_ops.1:out7'). */
  value(hint: string): string {
    this.counter += 1;
    return `${hint}:${this.counter}`;
  }

  node(opType: string, inputs: string[], hint: string, attributes: Record<string, Attribute> = {}, outputName?: string): string {
    const output = outputName ?? this.value(hint);
    this.nodes.push(onnx.NodeProto.create({
      opType, input: inputs, output: [output], name: `${hint}/${opType}:${this.counter}`,
      attribute: Object.entries(attributes).map(([name, value]) => attributeProto(name, value)),
    }));
    return output;
  }

  /** A float32 initializer holding a tensor's values under its state-dict key. */
  weight(name: string, tensor: Tensor): string {
    return this.floatInitializer(name, tensor.shape, tensor.data.subarray(0, tensor.numel));
  }

  floatInitializer(name: string, shape: readonly number[], values: ArrayLike<number>): string {
    if (this.initializerNames.has(name)) return name;
    const copy = Float32Array.from(values); // wasm memory may move: copy now
    this.initializerNames.add(name);
    this.initializers.push(onnx.TensorProto.create({
      name, dims: [...shape], dataType: onnx.TensorProto.DataType.FLOAT, rawData: new Uint8Array(copy.buffer),
    }));
    return name;
  }

  int64Initializer(name: string, values: readonly bigint[]): string {
    if (this.initializerNames.has(name)) return name;
    const data = BigInt64Array.from(values);
    this.initializerNames.add(name);
    this.initializers.push(onnx.TensorProto.create({
      name, dims: [values.length], dataType: onnx.TensorProto.DataType.INT64, rawData: new Uint8Array(data.buffer),
    }));
    return name;
  }
}

function attributeProto(name: string, value: Attribute): InstanceType<typeof onnx.AttributeProto> {
  const { AttributeType } = onnx.AttributeProto;
  if (typeof value === 'number') {
    return Number.isInteger(value)
      ? onnx.AttributeProto.create({ name, type: AttributeType.INT, i: value })
      : onnx.AttributeProto.create({ name, type: AttributeType.FLOAT, f: value });
  }
  if (typeof value === 'string') return onnx.AttributeProto.create({ name, type: AttributeType.STRING, s: new TextEncoder().encode(value) });
  if (Array.isArray(value)) return onnx.AttributeProto.create({ name, type: AttributeType.INTS, ints: value });
  return onnx.AttributeProto.create({ name, type: AttributeType.TENSOR, t: value });
}

/** A FLOAT attribute whatever its value (attributeProto would write an integral value as INT). */
function floatAttribute(name: string, value: number): InstanceType<typeof onnx.AttributeProto> {
  return onnx.AttributeProto.create({ name, type: onnx.AttributeProto.AttributeType.FLOAT, f: value });
}

/** Writes the ONNX nodes of a module tree, naming initializers by their state-dict keys. */
class NetworkWriter {
  private readonly paths = new Map<Module, string>();

  constructor(readonly graph: GraphBuilder, network: EvalNetwork) {
    for (const [path, module] of network.namedModules()) this.paths.set(module, path);
  }

  private path(module: Module): string {
    const path = this.paths.get(module);
    if (path === undefined) throw new Error('ONNX export: a module outside the network');
    return path;
  }

  private key(module: Module, name: string): string {
    const path = this.path(module);
    return path === '' ? name : `${path}.${name}`;
  }

  /** One layer (or a Sequential of them) applied to `input`; returns the output value. */
  layer(module: Module, input: string): string {
    const g = this.graph;
    const hint = this.path(module);
    if (module instanceof Sequential) return this.sequence(module.layers, input);
    if (module instanceof ReLU) return g.node('Relu', [input], hint);
    if (module instanceof Identity) return input;
    if (module instanceof Conv2d) {
      const { stride, padding, dilation, groups } = module.options;
      if (module.bias !== null) throw new Error('ONNX export: convolutions with a bias are not used by DARTS networks');
      return g.node('Conv', [input, g.weight(this.key(module, 'weight'), module.weight)], hint, {
        kernel_shape: [module.kernelSize, module.kernelSize], strides: [stride, stride],
        pads: [padding, padding, padding, padding], dilations: [dilation, dilation], group: groups,
      });
    }
    if (module instanceof BatchNorm2d) return this.batchNorm(module, input);
    if (module instanceof MaxPool2d) {
      return g.node('MaxPool', [input], hint, {
        kernel_shape: [module.kernel, module.kernel], strides: [module.stride, module.stride],
        pads: [module.padding, module.padding, module.padding, module.padding],
      });
    }
    if (module instanceof AvgPool2d) {
      // The engine divides by the cells inside the image only (PyTorch's count_include_pad=False).
      return g.node('AveragePool', [input], hint, {
        kernel_shape: [module.kernel, module.kernel], strides: [module.stride, module.stride],
        pads: [module.padding, module.padding, module.padding, module.padding], count_include_pad: 0,
      });
    }
    if (module instanceof Zero) return this.zero(module, input);
    if (module instanceof FactorizedReduce) return this.factorizedReduceActivated(module, g.node('Relu', [input], hint));
    if (startsWithRelu(module as Layer) && 'op' in module && module.op instanceof Sequential) return this.layer(module.op, input);
    throw new Error(`ONNX export: no ONNX form for ${module.constructor.name} (at '${hint}')`);
  }

  private sequence(layers: readonly Module[], input: string): string {
    return layers.reduce((value, layer) => this.layer(layer, value), input);
  }

  /** An operation that starts with a ReLU, applied to an input that already went through it. */
  activated(op: Module, activated: string): string {
    if (op instanceof FactorizedReduce) return this.factorizedReduceActivated(op, activated);
    if ('op' in op && op.op instanceof Sequential) return this.sequence(op.op.layers.slice(1), activated);
    throw new Error(`ONNX export: ${op.constructor.name} does not start with a ReLU`);
  }

  private batchNorm(bn: BatchNorm2d, input: string): string {
    const g = this.graph;
    const c = bn.channels;
    const scale = bn.weight !== null ? g.weight(this.key(bn, 'weight'), bn.weight) : g.floatInitializer(`${this.key(bn, 'weight')}:ones`, [c], new Float32Array(c).fill(1));
    const bias = bn.bias !== null ? g.weight(this.key(bn, 'bias'), bn.bias) : g.floatInitializer(`${this.key(bn, 'bias')}:zeros`, [c], new Float32Array(c));
    const mean = g.weight(this.key(bn, 'running_mean'), bn.runningMean);
    const variance = g.weight(this.key(bn, 'running_var'), bn.runningVar);
    const output = g.node('BatchNormalization', [input, scale, bias, mean, variance], this.path(bn));
    // epsilon is a float attribute (1e-5); set it explicitly rather than relying on the default.
    g.nodes.at(-1)!.attribute.push(floatAttribute('epsilon', bn.eps));
    return output;
  }

  /** ReLU'd input -> conv_1(x) ++ conv_2(x[:, :, 1:, 1:]) -> BN (the engine's FactorizedReduce.forwardActivated). */
  private factorizedReduceActivated(module: FactorizedReduce, activated: string): string {
    const g = this.graph;
    const hint = this.path(module);
    const even = this.layer(module.conv1, activated);
    const starts = g.int64Initializer('const:shift_starts', [1n, 1n]);
    const ends = g.int64Initializer('const:shift_ends', [INT64_MAX, INT64_MAX]);
    const axes = g.int64Initializer('const:spatial_axes', [2n, 3n]);
    const shifted = g.node('Slice', [activated, starts, ends, axes], `${hint}/shift`);
    const odd = this.layer(module.conv2, shifted);
    const joined = g.node('Concat', [even, odd], hint, { axis: 1 });
    return this.layer(module.bn, joined);
  }

  /** Exact zeros of the shape x[:, :, ::stride, ::stride] (the engine's zerosLikeStrided). */
  private zero(module: Zero, input: string): string {
    const g = this.graph;
    const hint = this.path(module);
    let shaped = input;
    if (module.stride !== 1) {
      const starts = g.int64Initializer('const:zero_starts', [0n, 0n]);
      const ends = g.int64Initializer('const:shift_ends', [INT64_MAX, INT64_MAX]);
      const axes = g.int64Initializer('const:spatial_axes', [2n, 3n]);
      const steps = g.int64Initializer(`const:steps_${module.stride}`, [BigInt(module.stride), BigInt(module.stride)]);
      shaped = g.node('Slice', [input, starts, ends, axes, steps], `${hint}/stride`);
    }
    const shape = g.node('Shape', [shaped], hint);
    const zero = onnx.TensorProto.create({
      name: 'zero', dims: [1], dataType: onnx.TensorProto.DataType.FLOAT, rawData: new Uint8Array(new Float32Array([0]).buffer),
    });
    return g.node('ConstantOfShape', [shape], hint, { value: zero });
  }

  /** One cell in eval mode (no drop path), as EvalCell.forward. */
  cell(cell: EvalCell, s0: string, s1: string): string {
    const g = this.graph;
    const hint = this.path(cell);
    const states = [this.layer(cell.preprocess0, s0), this.layer(cell.preprocess1, s1)];
    const activated = new Map<number, string>();
    for (let i = 0; i < cell.steps; i++) {
      const [a, b] = [2 * i, 2 * i + 1].map((k) => {
        const op = cell.operations[k];
        const index = cell.indices[k];
        if (!startsWithRelu(op)) return this.layer(op, states[index]);
        let relu = activated.get(index);
        if (relu === undefined) {
          relu = g.node('Relu', [states[index]], `${hint}/state${index}`);
          activated.set(index, relu);
        }
        return this.activated(op, relu);
      });
      states.push(g.node('Add', [a, b], `${hint}/node${i}`));
    }
    return g.node('Concat', cell.concat.map((j) => states[j]), hint, { axis: 1 });
  }

  classifier(linear: Linear, features: string, output: string): string {
    const g = this.graph;
    const inputs = [features, g.weight(this.key(linear, 'weight'), linear.weight)];
    if (linear.bias !== null) inputs.push(g.weight(this.key(linear, 'bias'), linear.bias));
    return g.node('Gemm', inputs, this.path(linear), { transB: 1 }, output);
  }
}

function tensorType(shape: (number | string)[]): InstanceType<typeof onnx.TypeProto> {
  return onnx.TypeProto.create({
    tensorType: {
      elemType: onnx.TensorProto.DataType.FLOAT,
      shape: { dim: shape.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) },
    },
  });
}

/**
 * The ONNX model of `network` in eval mode (see the file comment). The network must be able
 * to take the description's image size; its weights are copied.
 */
export function buildOnnxModel(network: EvalNetwork, options: OnnxExportOptions): ModelProto {
  const { description } = options;
  const [height, width] = description.imageSize;
  network.checkInputSize(height, width);
  const { inChannels, classes } = network.config;
  if (description.inChannels !== inChannels || description.classes !== classes) {
    throw new Error(`ONNX export: the description (${description.inChannels} channels, ${description.classes} classes) does not match the network (${inChannels}, ${classes})`);
  }
  const graph = new GraphBuilder();
  const writer = new NetworkWriter(graph, network);
  let s0: string;
  let s1: string;
  if (network instanceof NetworkCIFAR) {
    s0 = s1 = writer.layer(network.stem, ONNX_INPUT_NAME);
  } else if (network instanceof NetworkImageNet) {
    s0 = writer.layer(network.stem0, ONNX_INPUT_NAME);
    s1 = writer.layer(network.stem1, s0);
  } else {
    throw new Error(`ONNX export: unknown network ${network.constructor.name}`);
  }
  for (const cell of network.cells) [s0, s1] = [s1, writer.cell(cell, s0, s1)];
  const pooled = network instanceof NetworkImageNet
    ? graph.node('AveragePool', [s1], 'global_pooling', { kernel_shape: [7, 7], strides: [7, 7] })
    : graph.node('GlobalAveragePool', [s1], 'global_pooling');
  const features = graph.node('Flatten', [pooled], 'global_pooling', { axis: 1 });
  writer.classifier(network.classifier, features, ONNX_OUTPUT_NAME);

  const docString = options.docString ?? `${description.network} (C ${description.initChannels}, ${description.layers} cells, ${description.classes} classes) from pcdarts ${description.pcdartsVersion}`;
  return onnx.ModelProto.create({
    irVersion: ONNX_IR_VERSION,
    opsetImport: [{ domain: '', version: ONNX_OPSET }],
    producerName: 'pcdarts',
    producerVersion: description.pcdartsVersion,
    docString,
    graph: {
      name: description.network,
      docString,
      node: graph.nodes,
      initializer: graph.initializers,
      input: [{ name: ONNX_INPUT_NAME, type: tensorType([ONNX_BATCH_DIMENSION, inChannels, height, width]) }],
      output: [{ name: ONNX_OUTPUT_NAME, type: tensorType([ONNX_BATCH_DIMENSION, classes]) }],
    },
    metadataProps: Object.entries(descriptionMetadata(description, 'pcdarts-onnx')).map(([key, value]) => ({ key, value })),
  });
}

/** The serialised model (protobuf bytes of a .onnx file). */
export function encodeOnnxModel(model: ModelProto): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}

/** buildOnnxModel + encodeOnnxModel. */
export function exportOnnx(network: EvalNetwork, options: OnnxExportOptions): Uint8Array {
  return encodeOnnxModel(buildOnnxModel(network, options));
}

/** Decodes a .onnx file (for readers and tests); a bad file is a one-line error. */
export function decodeOnnxModel(bytes: Uint8Array, source = 'model.onnx'): ModelProto {
  try {
    return onnx.ModelProto.decode(bytes);
  } catch (error) {
    throw new Error(`${source}: not an ONNX model (${(error as Error).message})`);
  }
}

/** metadata_props of a model as a record. */
export function onnxMetadata(model: ModelProto): Record<string, string> {
  return Object.fromEntries(model.metadataProps.map((p) => [p.key, p.value]));
}
