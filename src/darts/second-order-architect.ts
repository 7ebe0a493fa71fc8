/**
 * The second-order (unrolled) architecture step of DARTS (spec section 6; the authors'
 * architect.py with unrolled=True), used as the "DARTS v2" baseline of the PC-DARTS paper.
 * With eta the weights' learning rate of the step and (x, y) / (x', y') the training /
 * validation batches:
 *
 * 1. g = dL_train(w)/dw (train-mode forward: it moves the network's batch-norm statistics);
 *    virtual weights w' = w - eta (momentum * buf + g + weight_decay * w) (buf = the SGD
 *    momentum buffer, 0 before the first weight step);
 * 2. at w', starting from the current batch-norm statistics: L_valid, g_a = dL_valid/da and
 *    v = dL_valid/dw'; the statistics that forward moved are thrown away (the authors run it
 *    on a copy of the network);
 * 3. R = 0.01 / ||v||; at w + R v and at w - R v a train-batch forward (each moves the
 *    statistics) gives dL_train/da; hvp = (those two differences) / (2 R);
 * 4. the architecture gradient g_a - eta hvp (clipped when the architect clips) drives the
 *    usual Adam step. w is restored exactly.
 *
 * No second network is built: the virtual and perturbed weights are written into the
 * network's own parameters in place and w is copied aside (one float32 copy of the weights in
 * backend memory, plus the batch-norm buffers) for the length of the step, then restored bit
 * for bit. Each forward + backward is a
 * complete one, so the activation peak is that of a first-order step and the activation
 * budget (recomputation of MixedOps) applies to all four, with the same bits at any budget.
 * v stays in the weights' .grad tensors between steps 2 and 3 (the two perturbed passes
 * compute no weight gradients); the weight step zeroes them before its own backward.
 */
import { backward } from '../tensor/autograd.js';
import * as ops from '../tensor/ops.js';
import { tidy, type Tensor } from '../tensor/tensor.js';
import { AdamArchitect, type WeightStepContext, withFrozen } from './architect.js';

/** The finite-difference step's numerator: R = HVP_RADIUS / ||v|| (the authors' r = 1e-2). */
export const HVP_RADIUS = 0.01;

const f32 = Math.fround;

export class SecondOrderArchitect extends AdamArchitect {
  readonly order = 2;

  step(x: Tensor, labels: Int32Array, context?: WeightStepContext): number {
    if (context === undefined) throw new Error('second-order architect: step() needs the weight step\'s batch, learning rate and optimiser');
    const weights = this.model.weightParameters();
    // w, aside in backend memory (counted in its live bytes) for the length of the step, and put back however it ends.
    const saved = weights.map((p) => p.clone().keep());
    try {
      return this.unrolledStep(x, labels, context, saved);
    } finally {
      weights.forEach((p, index) => p.data.set(saved[index].data.subarray(0, p.numel)));
      for (const t of saved) t.dispose();
    }
  }

  private unrolledStep(x: Tensor, labels: Int32Array, context: WeightStepContext, saved: readonly Tensor[]): number {
    const { model } = this;
    const { trainX, trainLabels, lr: eta, weightOptimizer: sgd } = context;
    const weights = model.weightParameters();
    const arch = model.archParameters();
    const trainLoss = (): void => tidy(() => { backward(ops.crossEntropy(model.forward(trainX), trainLabels)); });

    // (1) dL_train/dw at w, the architecture frozen; this forward's statistics stay.
    model.zeroGrad();
    withFrozen(arch, trainLoss);
    const buffers = sgd.stateDict();
    const { momentum, weightDecay } = sgd;
    weights.forEach((p, index) => {
      const w = p.data;
      const g = p.grad?.data;
      const buf = buffers.get(`momentum_buffer.${index}`);
      const theta = saved[index].data;
      for (let i = 0; i < p.numel; i++) {
        // In PyTorch's float32 order: moment + (dtheta + wd theta), then theta - eta * that.
        const moment = buf ? f32(momentum * buf[i]) : 0;
        const dtheta = f32((g ? g[i] : 0) + f32(weightDecay * theta[i]));
        w[i] = f32(theta[i] - f32(eta * f32(moment + dtheta)));
      }
    });

    // (2) L_valid at w' from the current statistics, which are put back after.
    const statistics = model.stateEntries().filter((e) => e.kind === 'buffer').map((e) => ({ tensor: e.tensor, values: e.tensor.data.slice(0, e.tensor.numel) }));
    model.zeroGrad();
    for (const a of arch) a.grad?.data.fill(0);
    const validLoss = tidy(() => {
      const l = ops.crossEntropy(model.forward(x), labels);
      backward(l);
      return l.item();
    });
    for (const { tensor, values } of statistics) tensor.data.set(values);
    // An architecture tensor the loss does not use (betas without edge normalisation) has no gradient, as in PyTorch.
    const archGrad = arch.map((a) => (a.grad ? a.grad.data.slice(0, a.numel) : null));
    let squares = 0;
    for (const p of weights) {
      if (!p.grad) continue;
      const v = p.grad.data;
      for (let i = 0; i < p.numel; i++) squares += v[i] * v[i];
    }
    const radius = f32(HVP_RADIUS / f32(Math.sqrt(squares)));

    // (3) dL_train/da at w + R v and at w - R v (the weights frozen, v kept in their .grad).
    const archGradAt = (shift: number): (Float32Array | null)[] => {
      weights.forEach((p, index) => {
        const w = p.data;
        const v = p.grad?.data;
        const base = saved[index].data;
        for (let i = 0; i < p.numel; i++) w[i] = v ? f32(base[i] + f32(shift * v[i])) : base[i];
      });
      for (const a of arch) a.grad?.data.fill(0);
      withFrozen(weights, trainLoss);
      return arch.map((a) => (a.grad ? a.grad.data.slice(0, a.numel) : null));
    };
    const plus = archGradAt(radius);
    const minus = archGradAt(-radius);
    // w itself is written back by step().

    // (4) g_a - eta (plus - minus) / (2 R), then the Adam step.
    const twoR = f32(2 * radius);
    arch.forEach((a, index) => {
      const g = archGrad[index];
      const gp = plus[index];
      const gn = minus[index];
      if (g === null || a.grad === null) {
        a.grad?.dispose();
        a.grad = null;
        return;
      }
      const out = a.grad.data;
      for (let i = 0; i < a.numel; i++) {
        const hvp = gp && gn ? f32(f32(gp[i] - gn[i]) / twoR) : 0;
        out[i] = f32(g[i] - f32(eta * hvp));
      }
    });
    this.update(arch);
    return validLoss;
  }
}
