/**
 * The architecture update, kept apart from the model as in the authors' code so that a
 * second-order variant can plug in. First order (spec section 6): Adam on the validation
 * loss with L2 weight decay added to the gradient.
 */
import { Adam, clipGradNorm } from '../nn/optim.js';
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

export interface Architect {
  readonly optimizer: Adam;
  /** One architecture step on a validation batch; returns its loss. */
  step(x: Tensor, labels: Int32Array): number;
}

/**
 * First-order architect. Weight gradients are not computed in its backward pass: the
 * weight step zeroes them before use anyway, so skipping them changes no number (the
 * authors' code computes and discards them).
 */
export class FirstOrderArchitect implements Architect {
  readonly optimizer: Adam;
  private readonly gradClip: number | null;

  constructor(readonly model: SearchNetwork, options: ArchitectOptions = DEFAULT_ARCHITECT) {
    this.optimizer = new Adam(model.archParameters(), { lr: options.lr, betas: options.betas, weightDecay: options.weightDecay });
    this.gradClip = options.gradClip ?? null;
  }

  step(x: Tensor, labels: Int32Array): number {
    const arch = this.model.archParameters();
    for (const a of arch) a.grad?.data.fill(0);
    const loss = withFrozen(this.model.weightParameters(), () => tidy(() => {
      const l = ops.crossEntropy(this.model.forward(x), labels);
      backward(l);
      return l.item();
    }));
    if (this.gradClip !== null) clipGradNorm(arch, this.gradClip);
    this.optimizer.step();
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
