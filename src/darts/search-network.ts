/**
 * The PC-DARTS search network (spec sections 3-4): a stem, `layers` search cells with
 * partial-channel MixedOps on every edge and edge normalisation, global pooling and a
 * linear classifier. Architecture parameters (alphas, betas) are plain leaves held beside
 * the module tree, as in the authors' code (not part of the state dict).
 *
 * Two stems: the CIFAR one (model_search.py) and the ImageNet one (model_search_imagenet.py,
 * spec section 6): three stride-2 convolutions in stem0 and stem1, and a first cell that
 * reduces its first input. The ImageNet cells are the CIFAR cells with any K (the authors'
 * hard-code K = 2), and each MixedOp runs once per forward (theirs runs twice, which moves
 * batch-norm statistics twice: not copied, spec section 6).
 */
import { convOutputSize } from '../kernels/backend.js';
import { BatchNorm2d, Conv2d, Linear, ReLU } from '../nn/layers.js';
import { Module, ModuleList, Sequential } from '../nn/module.js';
import { fillNormal } from '../nn/init.js';
import { DEFAULT_ACTIVATION_BUDGET_BYTES } from '../tensor/autograd.js';
import * as ops from '../tensor/ops.js';
import { empty, type Tensor } from '../tensor/tensor.js';
import { edgeCount, type Genotype } from './genotype.js';
import { deriveGenotype } from './genotype-derive.js';
import { MixedOp } from './mixed-op.js';
import { FactorizedReduce, ReLUConvBN } from './operations.js';
import { PRIMITIVES } from './primitives.js';

/** Which search network: the CIFAR stem or the ImageNet stems (spec sections 4 and 6). */
export const SEARCH_NETWORK_KINDS = ['cifar', 'imagenet'] as const;
export type SearchNetworkKind = (typeof SEARCH_NETWORK_KINDS)[number];

export interface SearchNetworkConfig {
  /**
   * 'cifar' (default): stem conv 3x3 -> 3C + BN at full resolution. 'imagenet': stem0
   * (conv 3x3 s2 -> 3C/2, BN, ReLU, conv 3x3 s2 -> 3C, BN) and stem1 (ReLU, conv 3x3 s2, BN),
   * the first cell reducing stem0's output (224 -> 28 before the cells).
   */
  network?: SearchNetworkKind;
  /** Initial channels C (16 in the paper). */
  channels: number;
  /** Number of cells (8). */
  layers: number;
  classes: number;
  /** Input image channels: 3 for CIFAR, 1 for Fashion-MNIST. */
  inChannels: number;
  /** Intermediate nodes per cell (4). */
  steps: number;
  /** Nodes concatenated into the cell output (4). */
  multiplier: number;
  /** Stem output is stemMultiplier * C (3). */
  stemMultiplier: number;
  /** Partial channel proportion 1/K (4); 1 is plain DARTS. */
  k: number;
  /** Edge normalisation (betas); off for the ablation. */
  edgeNormalization: boolean;
  /**
   * Recompute every MixedOp's internals during backward instead of keeping them (default
   * on): about a third of the memory for one more forward pass of the MixedOps; numbers are
   * bitwise unchanged. Without it the paper's batch of 256 does not fit a wasm32 memory.
   */
  recomputeMixedOps?: boolean;
  /**
   * Memory (bytes of the kernel backend's live tensors) that MixedOps may fill with kept
   * internals before they start recomputing: during a forward pass each MixedOp keeps its
   * internals while live memory is below this, so the first cells run without recomputation
   * and memory stays near the budget plus what recomputing MixedOps need. 0 recomputes
   * every MixedOp. Ignored without recomputeMixedOps. Numbers are bitwise the same for any
   * budget.
   */
  activationBudgetBytes?: number;
}

export const DEFAULT_SEARCH_NETWORK: SearchNetworkConfig = {
  network: 'cifar', channels: 16, layers: 8, classes: 10, inChannels: 3, steps: 4, multiplier: 4, stemMultiplier: 3, k: 4, edgeNormalization: true, recomputeMixedOps: true,
};

/** Cell indices that reduce: floor(layers/3) and floor(2 layers/3). */
export function isReductionLayer(index: number, layers: number): boolean {
  return index === Math.floor(layers / 3) || index === Math.floor((2 * layers) / 3);
}

/** Lengths of the betas' per-node softmax segments: 2, 3, ..., steps + 1. */
export function betaSegments(steps: number): number[] {
  return Array.from({ length: steps }, (_, i) => i + 2);
}

export class SearchCell extends Module {
  readonly preprocess0: Module & { forward(x: Tensor): Tensor };
  readonly preprocess1: ReLUConvBN;
  readonly edges: MixedOp[];

  constructor(
    readonly steps: number, readonly multiplier: number, cPrevPrev: number, cPrev: number, readonly channels: number,
    readonly reduction: boolean, reductionPrev: boolean, k: number,
  ) {
    super();
    this.preprocess0 = this.registerModule('preprocess0', reductionPrev
      ? new FactorizedReduce(cPrevPrev, channels, false)
      : new ReLUConvBN(cPrevPrev, channels, 1, 1, 0, false));
    this.preprocess1 = this.registerModule('preprocess1', new ReLUConvBN(cPrev, channels, 1, 1, 0, false));
    const list = this.registerModule('_ops', new ModuleList());
    this.edges = [];
    for (let node = 0; node < steps; node++) {
      for (let input = 0; input < node + 2; input++) {
        const stride = reduction && input < 2 ? 2 : 1;
        this.edges.push(list.append(new MixedOp(channels, stride, k)));
      }
    }
  }

  /**
   * alphaWeights: softmaxed alphas [edges, 8]; betaWeights: per-node softmaxed betas
   * [edges], or null when edge normalisation is off (every beta weight 1).
   */
  forward(s0: Tensor, s1: Tensor, alphaWeights: Tensor, betaWeights: Tensor | null): Tensor {
    const states = [this.preprocess0.forward(s0), this.preprocess1.forward(s1)];
    let edge = 0;
    for (let node = 0; node < this.steps; node++) {
      const outputs: Tensor[] = [];
      const edgeIndices: number[] = [];
      states.forEach((state) => {
        outputs.push(this.edges[edge].forward(state, alphaWeights, edge * PRIMITIVES.length));
        edgeIndices.push(edge);
        edge++;
      });
      states.push(betaWeights ? ops.weightedSum(outputs, betaWeights, edgeIndices) : ops.sum(outputs));
      for (const o of outputs) o.drop();
    }
    const y = ops.concatChannels(states.slice(-this.multiplier));
    for (const state of states) state.drop();
    return y;
  }
}

export class SearchNetwork extends Module {
  readonly config: SearchNetworkConfig;
  /** The CIFAR stem (null in the ImageNet network). */
  readonly stem: Sequential | null = null;
  /** The ImageNet stems (null in the CIFAR network): s0 = stem0(x), s1 = stem1(s0). */
  readonly stem0: Sequential | null = null;
  readonly stem1: Sequential | null = null;
  readonly cells: SearchCell[];
  readonly classifier: Linear;
  readonly alphasNormal: Tensor;
  readonly alphasReduce: Tensor;
  readonly betasNormal: Tensor;
  readonly betasReduce: Tensor;

  constructor(config: Partial<SearchNetworkConfig> = {}) {
    super();
    const c = { ...DEFAULT_SEARCH_NETWORK, ...config };
    this.config = c;
    validateSearchConfig(c);
    const stemChannels = c.stemMultiplier * c.channels;
    if (c.network === 'imagenet') {
      const half = Math.floor(stemChannels / 2);
      this.stem0 = this.registerModule('stem0', new Sequential(
        new Conv2d(c.inChannels, half, 3, { stride: 2, padding: 1 }),
        new BatchNorm2d(half),
        new ReLU(),
        new Conv2d(half, stemChannels, 3, { stride: 2, padding: 1 }),
        new BatchNorm2d(stemChannels),
      ));
      this.stem1 = this.registerModule('stem1', new Sequential(
        new ReLU(),
        new Conv2d(stemChannels, stemChannels, 3, { stride: 2, padding: 1 }),
        new BatchNorm2d(stemChannels),
      ));
    } else {
      this.stem = this.registerModule('stem', new Sequential(
        new Conv2d(c.inChannels, stemChannels, 3, { padding: 1 }),
        new BatchNorm2d(stemChannels),
      ));
    }
    let cPrevPrev = stemChannels;
    let cPrev = stemChannels;
    let cCurrent = c.channels;
    // The ImageNet network's first cell treats stem0's output as an unreduced input (twice
    // stem1's size) and reduces it with a FactorizedReduce.
    let reductionPrev = c.network === 'imagenet';
    const list = this.registerModule('cells', new ModuleList());
    this.cells = [];
    for (let i = 0; i < c.layers; i++) {
      const reduction = isReductionLayer(i, c.layers);
      if (reduction) cCurrent *= 2;
      const cell = list.append(new SearchCell(c.steps, c.multiplier, cPrevPrev, cPrev, cCurrent, reduction, reductionPrev, c.k));
      for (const edge of cell.edges) {
        edge.recompute = c.recomputeMixedOps ?? true;
        edge.keepBelowBytes = c.activationBudgetBytes ?? DEFAULT_ACTIVATION_BUDGET_BYTES;
      }
      this.cells.push(cell);
      reductionPrev = reduction;
      cPrevPrev = cPrev;
      cPrev = c.multiplier * cCurrent;
    }
    this.classifier = this.registerModule('classifier', new Linear(cPrev, c.classes));
    // Spec section 4: 1e-3 * N(0, 1), after the weights (as the authors' _initialize_alphas).
    const edges = edgeCount(c.steps);
    const arch = (shape: number[]): Tensor => {
      const t = empty(shape);
      fillNormal(t.data, 1e-3);
      t.requiresGrad = true;
      return t.keep();
    };
    this.alphasNormal = arch([edges, PRIMITIVES.length]);
    this.alphasReduce = arch([edges, PRIMITIVES.length]);
    this.betasNormal = arch([edges]);
    this.betasReduce = arch([edges]);
  }

  /** The four architecture tensors, by the authors' names. */
  namedArchParameters(): [string, Tensor][] {
    return [
      ['alphas_normal', this.alphasNormal], ['alphas_reduce', this.alphasReduce],
      ['betas_normal', this.betasNormal], ['betas_reduce', this.betasReduce],
    ];
  }

  archParameters(): Tensor[] {
    return this.namedArchParameters().map(([, t]) => t);
  }

  /** Weights only (what SGD trains); architecture tensors are not module parameters. */
  weightParameters(): Tensor[] {
    return this.parameters();
  }

  forward(x: Tensor): Tensor {
    const { steps, edgeNormalization } = this.config;
    const edges = edgeCount(steps);
    const rows = new Array<number>(edges).fill(PRIMITIVES.length);
    const alphaNormal = ops.softmaxSegments(this.alphasNormal, rows);
    const alphaReduce = ops.softmaxSegments(this.alphasReduce, rows);
    const betaNormal = edgeNormalization ? ops.softmaxSegments(this.betasNormal, betaSegments(steps)) : null;
    const betaReduce = edgeNormalization ? ops.softmaxSegments(this.betasReduce, betaSegments(steps)) : null;
    let [s0, s1] = this.stems(x);
    for (const cell of this.cells) {
      const output = cell.reduction
        ? cell.forward(s0, s1, alphaReduce, betaReduce)
        : cell.forward(s0, s1, alphaNormal, betaNormal);
      if (s0 !== s1) s0.drop();
      s0 = s1;
      s1 = output;
    }
    s0.drop();
    const pooled = ops.globalAvgPool(s1);
    s1.drop();
    const logits = this.classifier.forward(pooled);
    pooled.drop();
    for (const w of [alphaNormal, alphaReduce, betaNormal, betaReduce]) w?.drop();
    return logits;
  }

  /** The two inputs of the first cell: the stem output twice (CIFAR), or stem0's and stem1's outputs (ImageNet). */
  private stems(x: Tensor): [Tensor, Tensor] {
    if (this.stem !== null) {
      const s = this.stem.forward(x);
      return [s, s];
    }
    const s0 = this.stem0!.forward(x);
    return [s0, this.stem1!.forward(s0)];
  }

  /** The genotype the current architecture derives to (spec section 5). */
  genotype(): Genotype {
    const { steps, multiplier, edgeNormalization } = this.config;
    return deriveGenotype({
      alphasNormal: this.alphasNormal.data, alphasReduce: this.alphasReduce.data,
      betasNormal: edgeNormalization ? this.betasNormal.data : undefined,
      betasReduce: edgeNormalization ? this.betasReduce.data : undefined,
    }, steps, multiplier);
  }
}

/** Checks the configuration; every problem is a one-line error naming the setting. */
export function validateSearchConfig(c: SearchNetworkConfig, inputSize?: number): void {
  const positive = (value: number, name: string): void => {
    if (!Number.isInteger(value) || value < 1) throw new Error(`${name}: expected a positive integer, got ${value}`);
  };
  positive(c.channels, 'init channels');
  positive(c.layers, 'layers');
  positive(c.steps, 'nodes');
  positive(c.classes, 'classes');
  positive(c.inChannels, 'input channels');
  positive(c.k, 'k');
  if (c.multiplier < 1 || c.multiplier > c.steps) throw new Error(`multiplier: expected 1..${c.steps} (nodes), got ${c.multiplier}`);
  if (c.channels % c.k !== 0) throw new Error(`k: K=${c.k} does not divide the initial channel count ${c.channels}`);
  const reductions = Array.from({ length: c.layers }, (_, i) => i).filter((i) => isReductionLayer(i, c.layers)).length;
  const reducedChannels = c.channels * 2;
  if (reductions > 0 && (reducedChannels / c.k) % 2 !== 0) {
    throw new Error(`k: C/K = ${reducedChannels / c.k} in reduction cells must be even (stride-2 skip_connect is a FactorizedReduce)`);
  }
  const imagenet = c.network === 'imagenet';
  if (c.network !== undefined && !(SEARCH_NETWORK_KINDS as readonly string[]).includes(c.network)) {
    throw new Error(`network: expected one of ${SEARCH_NETWORK_KINDS.join(', ')}, got ${JSON.stringify(c.network)}`);
  }
  if (imagenet && c.channels % 2 !== 0) {
    throw new Error(`init channels: the ImageNet search network's first cell reduces its input with a FactorizedReduce to C channels, so C must be even, got ${c.channels}`);
  }
  if (inputSize !== undefined) {
    let size = inputSize;
    if (imagenet) {
      // stem0: two stride-2 convolutions; the first cell's FactorizedReduce halves that again.
      const s0 = convOutputSize(convOutputSize(inputSize, 3, 2, 1), 3, 2, 1);
      if (s0 % 2 !== 0) throw new Error(`input size ${inputSize}: the ImageNet stems give the first cell a ${s0}x${s0} input to reduce (odd); use a size divisible by ${8 * 2 ** searchReductions(c.layers)}`);
      size = s0 / 2;
    }
    const divisor = (imagenet ? 8 : 1) * 2 ** searchReductions(c.layers);
    for (let i = 0; i < c.layers; i++) {
      if (!isReductionLayer(i, c.layers)) continue;
      if (size % 2 !== 0) throw new Error(`input size ${inputSize}: becomes ${size} (odd) before the reduction at cell ${i}; use a size divisible by ${divisor}`);
      size /= 2;
    }
  }
}

/** How many cells reduce (2, or fewer for very short networks). */
function searchReductions(layers: number): number {
  return new Set([Math.floor(layers / 3), Math.floor((2 * layers) / 3)].filter((i) => i < layers)).size;
}
