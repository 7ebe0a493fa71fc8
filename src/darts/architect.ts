/**
 * The architecture update, kept apart from the model as in the authors' code (architect.py),
 * so that a search method plugs in here and not into the network. Two methods:
 * - first order (spec section 6, PC-DARTS and DARTS v1): Adam on the validation loss at the
 *   current weights, L2 weight decay added to the gradient;
 * - second order (DARTS v2, "unrolled"; second-order-architect.ts): the validation loss after
 *   one virtual weight step, with the finite-difference Hessian-vector product.
 */
import { Adam, clipGradNorm, type SGD } from '../nn/optim.js';
import { backward } from '../tensor/autograd.js';
import * as ops from '../tensor/ops.js';
import { tidy, type Tensor } from '../tensor/tensor.js';
import type { SearchNetwork } from './search-network.js';

export interface ArchitectOptions {
  lr: number;
  betas: [number, number];
  weightDecay: number;
  /**
   * Clip the global L2 norm of the architecture gradients to this before the Adam step (the
   * authors' ImageNet search: 5; weight decay is added after, inside Adam). Absent or null: no clipping.
   */
  gradClip?: number | null;
}

export const DEFAULT_ARCHITECT: ArchitectOptions = { lr: 6e-4, betas: [0.5, 0.999], weightDecay: 1e-3 };

/** The architecture step's order: 1 (first order) or 2 (unrolled, DARTS second order). */
export type ArchitectOrder = 1 | 2;
export const ARCHITECT_ORDERS: readonly ArchitectOrder[] = [1, 2];

/**
 * What a second-order step needs of the weight step it precedes: that step's training batch,
 * its learning rate (eta of the virtual step) and the weight optimiser (its momentum buffers,
 * momentum and weight decay). A first-order architect ignores it.
 */
export interface WeightStepContext {
  trainX: Tensor;
  trainLabels: Int32Array;
  lr: number;
  weightOptimizer: SGD;
}

export interface Architect {
  readonly order: ArchitectOrder;
  readonly optimizer: Adam;
  /**
   * One architecture step on a validation batch; returns its loss (for the second order:
   * at the virtual weights). `context` is required by the second order.
   */
  step(x: Tensor, labels: Int32Array, context?: WeightStepContext): number;
}

/**
 * What every architect shares: Adam over the architecture parameters, and the update that
 * clips their gradients' global norm (when asked) before the Adam step.
 */
export abstract class AdamArchitect implements Architect {
  abstract readonly order: ArchitectOrder;
  readonly optimizer: Adam;
  private readonly gradClip: number | null;

  constructor(readonly model: SearchNetwork, options: ArchitectOptions = DEFAULT_ARCHITECT) {
    this.optimizer = new Adam(model.archParameters(), { lr: options.lr, betas: options.betas, weightDecay: options.weightDecay });
    this.gradClip = options.gradClip ?? null;
  }

  abstract step(x: Tensor, labels: Int32Array, context?: WeightStepContext): number;

  /** Clips the gradients of `arch` (the architecture parameters) if asked, then steps Adam. */
  protected update(arch: readonly Tensor[]): void {
    if (this.gradClip !== null) clipGradNorm(arch, this.gradClip);
    this.optimizer.step();
  }
}

/**
 * First-order architect. Weight gradients are not computed in its backward pass: the
 * weight step zeroes them before use anyway, so skipping them changes no number (the
 * authors' code computes and discards them).
 */
export class FirstOrderArchitect extends AdamArchitect {
  readonly order = 1;

  step(x: Tensor, labels: Int32Array): number {
    const arch = this.model.archParameters();
    for (const a of arch) a.grad?.data.fill(0);
    const loss = withFrozen(this.model.weightParameters(), () => tidy(() => {
      const l = ops.crossEntropy(this.model.forward(x), labels);
      backward(l);
      return l.item();
    }));
    this.update(arch);
    return loss;
  }
}

/** Runs fn with requiresGrad off on `frozen` (their gradients are neither computed nor touched). */
export function withFrozen<T>(frozen: readonly Tensor[], fn: () => T): T {
  for (const t of frozen) t.requiresGrad = false;
  try {
    return fn();
  } finally {
    for (const t of frozen) t.requiresGrad = true;
  }
}
