/**
 * Optimisers with PyTorch 1.13 semantics (weight decay is L2 added to the gradient), global
 * gradient-norm clipping, and their state for checkpoints. Updates run in float64 per element
 * and store float32, which is within float32 rounding of PyTorch's fused kernels.
 */
import type { Tensor } from '../tensor/tensor.js';

/** Named state tensors of an optimiser, for checkpoints (float32 values). */
export type OptimizerState = Map<string, Float32Array | Float64Array>;

export interface SgdOptions {
  lr: number;
  momentum?: number;
  weightDecay?: number;
}

export class SGD {
  lr: number;
  readonly momentum: number;
  readonly weightDecay: number;
  private readonly buffers: (Float32Array | null)[];

  constructor(readonly params: readonly Tensor[], options: SgdOptions) {
    this.lr = options.lr;
    this.momentum = options.momentum ?? 0;
    this.weightDecay = options.weightDecay ?? 0;
    this.buffers = params.map(() => null);
  }

  /** d = g + wd * p; buf = d at the first step, else momentum * buf + d; p -= lr * buf. Params without grad are skipped. */
  step(): void {
    const { lr, momentum, weightDecay } = this;
    this.params.forEach((p, index) => {
      if (!p.grad) return;
      const w = p.data;
      const g = p.grad.data;
      const n = p.numel;
      if (momentum === 0) {
        for (let i = 0; i < n; i++) w[i] -= lr * (g[i] + weightDecay * w[i]);
        return;
      }
      let buf = this.buffers[index];
      if (buf === null) {
        buf = new Float32Array(n);
        for (let i = 0; i < n; i++) buf[i] = g[i] + weightDecay * w[i];
        this.buffers[index] = buf;
      } else {
        for (let i = 0; i < n; i++) buf[i] = momentum * buf[i] + (g[i] + weightDecay * w[i]);
      }
      for (let i = 0; i < n; i++) w[i] -= lr * buf[i];
    });
  }

  stateDict(): OptimizerState {
    const state: OptimizerState = new Map();
    this.buffers.forEach((b, i) => { if (b) state.set(`momentum_buffer.${i}`, b); });
    return state;
  }

  loadStateDict(state: OptimizerState): void {
    this.params.forEach((p, i) => {
      const b = state.get(`momentum_buffer.${i}`);
      if (b && b.length !== p.numel) throw new Error(`SGD state: momentum_buffer.${i} has ${b.length} values, parameter has ${p.numel}`);
      this.buffers[i] = b ? Float32Array.from(b) : null;
    });
  }
}

export interface AdamOptions {
  lr: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

export class Adam {
  lr: number;
  readonly betas: [number, number];
  readonly eps: number;
  readonly weightDecay: number;
  private stepCount = 0;
  private readonly firstMoments: Float32Array[];
  private readonly secondMoments: Float32Array[];

  constructor(readonly params: readonly Tensor[], options: AdamOptions) {
    this.lr = options.lr;
    this.betas = options.betas ?? [0.9, 0.999];
    this.eps = options.eps ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0;
    this.firstMoments = params.map((p) => new Float32Array(p.numel));
    this.secondMoments = params.map((p) => new Float32Array(p.numel));
  }

  /** torch.optim.Adam (not AdamW): g += wd * p; bias-corrected moments. */
  step(): void {
    this.stepCount += 1;
    const [beta1, beta2] = this.betas;
    const biasCorrection1 = 1 - beta1 ** this.stepCount;
    const biasCorrection2Sqrt = Math.sqrt(1 - beta2 ** this.stepCount);
    const stepSize = this.lr / biasCorrection1;
    this.params.forEach((p, index) => {
      if (!p.grad) return;
      const w = p.data;
      const g = p.grad.data;
      const m = this.firstMoments[index];
      const v = this.secondMoments[index];
      for (let i = 0; i < p.numel; i++) {
        const grad = g[i] + this.weightDecay * w[i];
        m[i] = beta1 * m[i] + (1 - beta1) * grad;
        v[i] = beta2 * v[i] + (1 - beta2) * grad * grad;
        const denom = Math.sqrt(v[i]) / biasCorrection2Sqrt + this.eps;
        w[i] -= stepSize * (m[i] / denom);
      }
    });
  }

  stateDict(): OptimizerState {
    const state: OptimizerState = new Map();
    state.set('step', Float64Array.of(this.stepCount));
    this.params.forEach((_, i) => {
      state.set(`exp_avg.${i}`, this.firstMoments[i]);
      state.set(`exp_avg_sq.${i}`, this.secondMoments[i]);
    });
    return state;
  }

  loadStateDict(state: OptimizerState): void {
    this.stepCount = Number(state.get('step')?.[0] ?? 0);
    this.params.forEach((p, i) => {
      for (const [key, target] of [[`exp_avg.${i}`, this.firstMoments[i]], [`exp_avg_sq.${i}`, this.secondMoments[i]]] as const) {
        const values = state.get(key);
        if (!values) throw new Error(`Adam state: '${key}' missing`);
        if (values.length !== p.numel) throw new Error(`Adam state: '${key}' has ${values.length} values, parameter has ${p.numel}`);
        target.set(values);
      }
    });
  }
}

/**
 * torch.nn.utils.clip_grad_norm_: total = ||all grads||_2; when total > maxNorm every
 * gradient is scaled by maxNorm / (total + 1e-6). Returns the norm before clipping.
 */
export function clipGradNorm(params: readonly Tensor[], maxNorm: number): number {
  let squares = 0;
  for (const p of params) {
    if (!p.grad) continue;
    const g = p.grad.data;
    let s = 0;
    for (let i = 0; i < p.numel; i++) s += g[i] * g[i];
    squares += s;
  }
  const total = Math.sqrt(squares);
  const coefficient = maxNorm / (total + 1e-6);
  if (coefficient < 1) {
    for (const p of params) {
      if (!p.grad) continue;
      const g = p.grad.data;
      for (let i = 0; i < p.numel; i++) g[i] *= coefficient;
    }
  }
  return total;
}
