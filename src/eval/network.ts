/**
 * The networks that retrain a found architecture from scratch (spec section 7): the authors'
 * NetworkCIFAR and NetworkImageNet (their model.py), built from a genotype, with the same
 * module tree so that state-dict keys match theirs (`stem.0.weight`,
 * `cells.0.preprocess0.op.1.weight`, `cells.0._ops.0.op.1.weight`,
 * `auxiliary_head.features.2.weight`, `classifier.bias`, ...).
 */
import { validateGenotype, type Genotype } from '../darts/genotype.js';
import { createOperation, FactorizedReduce, isIdentityOperation, ReLUConvBN, startsWithRelu } from '../darts/operations.js';
import type { Primitive } from '../darts/primitives.js';
import { convOutputSize } from '../kernels/backend.js';
import { AvgPool2d, BatchNorm2d, Conv2d, Linear, ReLU } from '../nn/layers.js';
import { Module, ModuleList, Sequential, type Layer } from '../nn/module.js';
import * as ops from '../tensor/ops.js';
import { checkpoint, DEFAULT_EVAL_ACTIVATION_BUDGET_BYTES } from '../tensor/autograd.js';
import { kernels } from '../kernels/registry.js';
import { defaultRandom, Random } from '../tensor/random.js';
import { shapeToString, type Tensor } from '../tensor/tensor.js';
import { dropPath } from './drop-path.js';

/** The channel multiplier of the stem (3C channels out of the CIFAR stem). */
const STEM_MULTIPLIER = 3;
/** Channels of the auxiliary heads' hidden layers (authors' AuxiliaryHead*). */
const AUX_HIDDEN_CHANNELS = 128;
const AUX_FEATURES = 768;
/** The ImageNet network's final AvgPool2d(7). */
const FINAL_POOL = 7;

export interface EvalNetworkOptions {
  /** The architecture; validated on construction. */
  genotype: Genotype;
  /** C: channels of the first cells (36 for CIFAR, 48 for ImageNet by default). */
  channels?: number;
  /** Number of cells (20 for CIFAR, 14 for ImageNet by default). */
  layers?: number;
  classes?: number;
  /** Build the auxiliary head (used in training mode only). */
  auxiliary?: boolean;
  /** Image channels: 3 for colour images, 1 for Fashion-MNIST. */
  inChannels?: number;
  /** Initial drop-path probability (the trainer sets `dropPathProb` each epoch). */
  dropPathProb?: number;
  /** Generator of the drop-path masks; defaultRandom() (at forward time) when absent. */
  random?: Random;
  /**
   * Recompute each cell during backward instead of keeping its intermediates (default on):
   * the same numbers for a fraction of the memory (the C36 L20 network at batch 96 does not
   * fit the 4 GiB of a wasm32 memory otherwise), at the cost of one more forward.
   */
  recompute?: boolean;
  /**
   * With recompute, cells still keep their intermediates while the backend's live memory is
   * below this many bytes when they start (default DEFAULT_EVAL_ACTIVATION_BUDGET_BYTES; 0
   * recomputes every cell). The numbers do not depend on it.
   */
  activationBudgetBytes?: number;
}

export type EvalNetworkConfig = Required<Omit<EvalNetworkOptions, 'genotype' | 'random' | 'recompute' | 'activationBudgetBytes'>>;

/** Defaults of the CIFAR-10 evaluation (spec section 7). */
export const CIFAR_NETWORK_DEFAULTS: Readonly<EvalNetworkConfig> = Object.freeze({
  channels: 36, layers: 20, classes: 10, auxiliary: true, inChannels: 3, dropPathProb: 0.3,
});

/** Defaults of the ImageNet (mobile setting) evaluation (spec section 7). */
export const IMAGENET_NETWORK_DEFAULTS: Readonly<EvalNetworkConfig> = Object.freeze({
  channels: 48, layers: 14, classes: 1000, auxiliary: true, inChannels: 3, dropPathProb: 0,
});

export interface EvalNetworkOutput {
  logits: Tensor;
  /** The auxiliary head's logits: only in training mode with an auxiliary head, else null. */
  logitsAux: Tensor | null;
}

/** Indices of the reduction cells: floor(layers / 3) and floor(2 * layers / 3). */
export function reductionCellIndices(layers: number): number[] {
  return [...new Set([Math.floor(layers / 3), Math.floor((2 * layers) / 3)])];
}

/** Index of the cell after which the auxiliary head reads: floor(2 * layers / 3). */
export function auxiliaryCellIndex(layers: number): number {
  return Math.floor((2 * layers) / 3);
}

function positiveInteger(value: number, what: string): number {
  if (!Number.isInteger(value) || value < 1) throw new Error(`evaluation network: ${what} must be a positive integer, got ${value}`);
  return value;
}

function resolveConfig(options: EvalNetworkOptions, defaults: Readonly<EvalNetworkConfig>): EvalNetworkConfig {
  const config: EvalNetworkConfig = {
    channels: options.channels ?? defaults.channels,
    layers: options.layers ?? defaults.layers,
    classes: options.classes ?? defaults.classes,
    auxiliary: options.auxiliary ?? defaults.auxiliary,
    inChannels: options.inChannels ?? defaults.inChannels,
    dropPathProb: options.dropPathProb ?? defaults.dropPathProb,
  };
  positiveInteger(config.channels, 'channels (C)');
  positiveInteger(config.layers, 'layers');
  positiveInteger(config.classes, 'classes');
  positiveInteger(config.inChannels, 'inChannels');
  if (!(config.dropPathProb >= 0 && config.dropPathProb < 1)) {
    throw new Error(`evaluation network: dropPathProb must be in [0, 1), got ${config.dropPathProb}`);
  }
  return config;
}

/**
 * One cell of the evaluation network (the authors' model.Cell): both inputs preprocessed to
 * C channels, then each intermediate node i = op[2i](state[index[2i]]) + op[2i+1](state[index[2i+1]]);
 * output = concat of the `concat` states.
 */
export class EvalCell extends Module {
  readonly preprocess0: Layer;
  readonly preprocess1: ReLUConvBN;
  readonly operations: Layer[];
  readonly operationNames: Primitive[];
  /** The state each operation reads (0, 1: the cell inputs; j >= 2: node j - 2). */
  readonly indices: number[];
  readonly concat: number[];
  readonly steps: number;
  /** Output channels = concat.length * C. */
  readonly outChannels: number;

  constructor(
    genotype: Genotype,
    cPrevPrev: number,
    cPrev: number,
    readonly channels: number,
    readonly reduction: boolean,
    readonly reductionPrev: boolean,
  ) {
    super();
    this.preprocess0 = this.registerModule('preprocess0', reductionPrev
      ? new FactorizedReduce(cPrevPrev, channels, true)
      : new ReLUConvBN(cPrevPrev, channels, 1, 1, 0, true));
    this.preprocess1 = this.registerModule('preprocess1', new ReLUConvBN(cPrev, channels, 1, 1, 0, true));
    const pairs = reduction ? genotype.reduce : genotype.normal;
    this.concat = [...(reduction ? genotype.reduce_concat : genotype.normal_concat)];
    this.steps = pairs.length / 2;
    this.outChannels = this.concat.length * channels;
    this.operationNames = pairs.map(([name]) => name);
    this.indices = pairs.map(([, index]) => index);
    const list = this.registerModule('_ops', new ModuleList());
    this.operations = pairs.map(([name, index]) => {
      const stride = reduction && index < 2 ? 2 : 1;
      return list.append(createOperation(name, channels, stride, true));
    });
  }

  forward(s0: Tensor, s1: Tensor, dropProb: number, random: () => Random): Tensor {
    const states: Tensor[] = [this.preprocess0.forward(s0), this.preprocess1.forward(s1)];
    const dropping = this.training && dropProb > 0;
    // Operations that start with a ReLU share the ReLU of their input state (the authors'
    // code computes it once per operation; the values are identical).
    const activated = new Map<number, Tensor>();
    for (let i = 0; i < this.steps; i++) {
      const branches = [2 * i, 2 * i + 1].map((k) => {
        const op = this.operations[k];
        const index = this.indices[k];
        const input = states[index];
        let h: Tensor;
        if (startsWithRelu(op)) {
          let a = activated.get(index);
          if (a === undefined) {
            a = ops.relu(input);
            activated.set(index, a);
          }
          h = op.forwardActivated(a);
        } else {
          h = op.forward(input);
        }
        // Drop path never touches identity operations (spec section 7).
        if (dropping && !isIdentityOperation(op)) {
          const dropped = dropPath(h, dropProb, random());
          if (dropped !== h) h.drop();
          h = dropped;
        }
        return h;
      });
      states.push(ops.add(branches[0], branches[1]));
      // Identity branches are states themselves; everything else is an intermediate.
      for (const b of branches) if (!states.includes(b)) b.drop();
    }
    for (const [index, a] of activated) ops.releaseRelu(a, states[index]);
    const y = ops.concatChannels(this.concat.map((j) => states[j]));
    for (const state of states) state.drop();
    return y;
  }
}

/** ReLU, avg pool 5 (stride 3 for CIFAR's 8x8 input, 2 for ImageNet's 7x7), 1x1 conv, BN, ReLU, 2x2 conv, [BN], ReLU, linear. */
export class AuxiliaryHead extends Module {
  readonly features: Sequential;
  readonly classifier: Linear;

  constructor(channels: number, classes: number, readonly kind: 'cifar' | 'imagenet') {
    super();
    const layers: Module[] = [
      new ReLU(),
      new AvgPool2d(5, kind === 'cifar' ? 3 : 2, 0),
      new Conv2d(channels, AUX_HIDDEN_CHANNELS, 1),
      new BatchNorm2d(AUX_HIDDEN_CHANNELS),
      new ReLU(),
      new Conv2d(AUX_HIDDEN_CHANNELS, AUX_FEATURES, 2),
    ];
    // The authors' ImageNet head has no BN after the 2x2 conv (a typo kept for their results).
    if (kind === 'cifar') layers.push(new BatchNorm2d(AUX_FEATURES));
    layers.push(new ReLU());
    this.features = this.registerModule('features', new Sequential(...layers));
    this.classifier = this.registerModule('classifier', new Linear(AUX_FEATURES, classes));
  }

  /** Whether a feature map of height x width pools to the 2x2 its 2x2 convolution needs. */
  accepts(height: number, width: number): boolean {
    const stride = this.kind === 'cifar' ? 3 : 2;
    return convOutputSize(height, 5, stride, 0) === 2 && convOutputSize(width, 5, stride, 0) === 2;
  }

  /** The feature map it is made for and the images that give it: ['8x8', '32x32'] or ['7x7', '224x224']. */
  get expectedInput(): [string, string] {
    return this.kind === 'cifar' ? ['8x8', '32x32'] : ['7x7', '224x224'];
  }

  forward(x: Tensor): Tensor {
    const [, , h, w] = x.shape;
    if (!this.accepts(h, w)) {
      const [map, images] = this.expectedInput;
      throw new Error(`auxiliary head: expected a feature map of ${map} (${images} images), got ${h}x${w}; build the network with auxiliary: false for other input sizes`);
    }
    return this.classifier.forward(this.features.forward(x));
  }
}

/**
 * A cell under a recompute checkpoint. Drop path draws random masks, so the recomputation
 * replays the generator from the state the first pass started with, and the generator
 * continues from where the first pass left it.
 */
function recomputedCell(cell: EvalCell, s0: Tensor, s1: Tensor, dropProb: number, random: Random): Tensor {
  const start = random.getState();
  let end = start;
  const output = checkpoint(([a, b]) => {
    const replay = new Random(0);
    replay.setState(start);
    const y = cell.forward(a, b, dropProb, () => replay);
    end = replay.getState();
    return y;
  }, [s0, s1]);
  random.setState(end);
  return output;
}

/** What the CIFAR and ImageNet networks share: cells, auxiliary head, drop path, forward. */
export abstract class EvalNetwork extends Module {
  readonly config: EvalNetworkConfig;
  readonly genotype: Genotype;
  readonly cells: EvalCell[] = [];
  /** Built by buildCells (subclass constructors), after the stems: state-dict order. */
  readonly auxiliaryHead: AuxiliaryHead | null = null;
  readonly auxiliaryIndex: number;
  readonly classifier!: Linear;
  /** Drop-path probability of the current epoch (set by the trainer; training mode only). */
  dropPathProb: number;
  /** Generator of the drop-path masks; null means defaultRandom() at each forward. */
  random: Random | null;
  /** Recompute cells in backward (see EvalNetworkOptions.recompute). */
  recompute: boolean;
  /** See EvalNetworkOptions.activationBudgetBytes. */
  activationBudgetBytes: number;

  protected constructor(options: EvalNetworkOptions, defaults: Readonly<EvalNetworkConfig>, private readonly kind: 'cifar' | 'imagenet') {
    super();
    this.config = resolveConfig(options, defaults);
    this.genotype = validateGenotype(options.genotype);
    this.dropPathProb = this.config.dropPathProb;
    this.random = options.random ?? null;
    this.recompute = options.recompute ?? true;
    this.activationBudgetBytes = options.activationBudgetBytes ?? DEFAULT_EVAL_ACTIVATION_BUDGET_BYTES;
    this.auxiliaryIndex = auxiliaryCellIndex(this.config.layers);
  }

  /**
   * Builds the cells, the auxiliary head and the classifier (the authors' loop), starting
   * from stem outputs of `cPrevPrev`, `cPrev` channels.
   */
  protected buildCells(cPrevPrev: number, cPrev: number, cCurrent: number, reductionPrevFirst: boolean): void {
    const { layers, classes, auxiliary } = this.config;
    const reductions = new Set(reductionCellIndices(layers));
    const list = this.registerModule('cells', new ModuleList());
    let reductionPrev = reductionPrevFirst;
    let auxChannels = 0;
    for (let i = 0; i < layers; i++) {
      const reduction = reductions.has(i);
      if (reduction) cCurrent *= 2;
      const cell = list.append(new EvalCell(this.genotype, cPrevPrev, cPrev, cCurrent, reduction, reductionPrev));
      this.cells.push(cell);
      reductionPrev = reduction;
      [cPrevPrev, cPrev] = [cPrev, cell.outChannels];
      if (i === this.auxiliaryIndex) auxChannels = cPrev;
    }
    if (auxiliary) {
      (this as { auxiliaryHead: AuxiliaryHead | null }).auxiliaryHead =
        this.registerModule('auxiliary_head', new AuxiliaryHead(auxChannels, classes, this.kind));
    }
    (this as { classifier: Linear }).classifier = this.registerModule('classifier', new Linear(cPrev, classes));
  }

  /** The two stem outputs (s0, s1) fed to the first cell. */
  protected abstract stems(x: Tensor): [Tensor, Tensor];

  /** Final pooling to [N, C]. */
  protected abstract pool(x: Tensor): Tensor;

  /**
   * Throws a one-line error when an input of height x width cannot go through the network:
   * a reduction would receive an odd size (FactorizedReduce needs even sizes), or the final
   * pooling does not fit.
   */
  abstract checkInputSize(height: number, width: number): void;

  /** Height and width of the second input (s1) of the first cell, for an image of height x width. */
  protected abstract stemOutputSize(height: number, width: number): [number, number];

  /** Height and width of cell `index`'s output for an image of height x width (sizes assumed valid). */
  featureSize(index: number, height: number, width: number): [number, number] {
    let [h, w] = this.stemOutputSize(height, width);
    for (const cell of this.cells.slice(0, index + 1)) {
      if (cell.reduction) [h, w] = [h / 2, w / 2];
    }
    return [h, w];
  }

  /** Walks the reductions from the first cell's input size; returns the last cell's output size. */
  protected checkReductions(stemHeight: number, stemWidth: number, input: string): [number, number] {
    let h = stemHeight;
    let w = stemWidth;
    this.cells.forEach((cell, i) => {
      if (cell.reduction) {
        if (h % 2 !== 0 || w % 2 !== 0) {
          throw new Error(`evaluation network: input ${input} gives cell ${i} (a reduction) an odd size ${h}x${w}; reductions need even sizes (use an input size divisible by 4, e.g. pad 28x28 to 32x32)`);
        }
        h /= 2;
        w /= 2;
      }
    });
    return [h, w];
  }

  forward(x: Tensor): EvalNetworkOutput {
    if (x.shape.length !== 4 || x.shape[1] !== this.config.inChannels) {
      throw new Error(`evaluation network: expected input [N, ${this.config.inChannels}, H, W], got ${shapeToString(x.shape)}`);
    }
    this.checkInputSize(x.shape[2], x.shape[3]);
    const random = (): Random => this.random ?? defaultRandom();
    let logitsAux: Tensor | null = null;
    let [s0, s1] = this.stems(x);
    this.cells.forEach((cell, i) => {
      const recompute = this.recompute && this.training &&
        (this.activationBudgetBytes <= 0 || kernels().memoryStats().liveBytes >= this.activationBudgetBytes);
      const output = recompute
        ? recomputedCell(cell, s0, s1, this.dropPathProb, random())
        : cell.forward(s0, s1, this.dropPathProb, random);
      if (s0 !== s1) s0.drop();
      [s0, s1] = [s1, output];
      if (i === this.auxiliaryIndex && this.auxiliaryHead && this.training) {
        logitsAux = this.auxiliaryHead.forward(s1);
        // The authors' head starts with an in-place ReLU, so whatever reads s1 after it sees
        // relu(s1). Every later cell starts with a ReLU anyway (no difference), but when the
        // head reads the last cell (layers <= 3) the final pooling does too.
        if (i === this.cells.length - 1) {
          const rectified = ops.relu(s1);
          s1.drop();
          s1 = rectified;
        }
      }
    });
    s0.drop();
    const pooled = this.pool(s1);
    s1.drop();
    const logits = this.classifier.forward(pooled);
    pooled.drop();
    return { logits, logitsAux };
  }
}

/** The authors' NetworkCIFAR: stem conv 3x3 -> 3C + BN, cells, global average pool, linear. */
export class NetworkCIFAR extends EvalNetwork {
  readonly stem: Sequential;

  constructor(options: EvalNetworkOptions) {
    super(options, CIFAR_NETWORK_DEFAULTS, 'cifar');
    const { channels, inChannels } = this.config;
    const stemChannels = STEM_MULTIPLIER * channels;
    this.stem = this.registerModule('stem', new Sequential(
      new Conv2d(inChannels, stemChannels, 3, { padding: 1 }),
      new BatchNorm2d(stemChannels),
    ));
    this.buildCells(stemChannels, stemChannels, channels, false);
  }

  protected stems(x: Tensor): [Tensor, Tensor] {
    const s = this.stem.forward(x);
    return [s, s];
  }

  protected pool(x: Tensor): Tensor {
    return ops.globalAvgPool(x);
  }

  protected stemOutputSize(height: number, width: number): [number, number] {
    return [height, width];
  }

  checkInputSize(height: number, width: number): void {
    this.checkReductions(height, width, `${height}x${width}`);
  }
}

/**
 * The authors' NetworkImageNet: stem0 (conv 3x3 s2 -> C/2, BN, ReLU, conv 3x3 s2 -> C, BN),
 * stem1 (ReLU, conv 3x3 s2, BN); the first cell treats its input as reduced; their
 * AvgPool2d(7) and a linear classifier. AvgPool2d(7) classifies only final maps of 7 to 13
 * pixels (one window: the whole 7x7 map of 224x224 images, the top-left 7x7 of larger ones);
 * for the maps theirs cannot classify (smaller images, e.g. 64x64 -> 2x2, or 448 and more)
 * the pool is a global average.
 */
export class NetworkImageNet extends EvalNetwork {
  readonly stem0: Sequential;
  readonly stem1: Sequential;

  constructor(options: EvalNetworkOptions) {
    super(options, IMAGENET_NETWORK_DEFAULTS, 'imagenet');
    const { channels, inChannels } = this.config;
    const half = Math.floor(channels / 2);
    this.stem0 = this.registerModule('stem0', new Sequential(
      new Conv2d(inChannels, half, 3, { stride: 2, padding: 1 }),
      new BatchNorm2d(half),
      new ReLU(),
      new Conv2d(half, channels, 3, { stride: 2, padding: 1 }),
      new BatchNorm2d(channels),
    ));
    this.stem1 = this.registerModule('stem1', new Sequential(
      new ReLU(),
      new Conv2d(channels, channels, 3, { stride: 2, padding: 1 }),
      new BatchNorm2d(channels),
    ));
    this.buildCells(channels, channels, channels, true);
  }

  protected stems(x: Tensor): [Tensor, Tensor] {
    const s0 = this.stem0.forward(x);
    return [s0, this.stem1.forward(s0)];
  }

  protected pool(x: Tensor): Tensor {
    const [, , h, w] = x.shape;
    const oneWindow = (n: number): boolean => n >= FINAL_POOL && n < 2 * FINAL_POOL;
    if (oneWindow(h) && oneWindow(w)) return ops.avgPool2d(x, { kernel: FINAL_POOL, stride: FINAL_POOL });
    return ops.globalAvgPool(x);
  }

  protected stemOutputSize(height: number, width: number): [number, number] {
    const down = (n: number): number => convOutputSize(n, 3, 2, 1);
    return [down(down(down(height))), down(down(down(width)))];
  }

  checkInputSize(height: number, width: number): void {
    const input = `${height}x${width}`;
    const down = (n: number): number => convOutputSize(n, 3, 2, 1);
    const s0h = down(down(height));
    const s0w = down(down(width));
    if (s0h % 2 !== 0 || s0w % 2 !== 0) {
      throw new Error(`evaluation network: input ${input} gives the first cell's FactorizedReduce an odd size ${s0h}x${s0w}; use an input size divisible by 32 (224x224, 64x64, ...)`);
    }
    this.checkReductions(down(s0h), down(s0w), input);
  }
}
