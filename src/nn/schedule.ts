/** Learning-rate schedules, evaluated per epoch (0-based). */

/** CosineAnnealingLR stepped once per epoch (spec section 6): lrMin + (lr - lrMin)(1 + cos(pi e / T)) / 2. */
export function cosineAnnealingLr(epoch: number, options: { lr: number; lrMin: number; epochs: number }): number {
  const { lr, lrMin, epochs } = options;
  return lrMin + (lr - lrMin) * (1 + Math.cos((Math.PI * epoch) / epochs)) / 2;
}

/**
 * Linear warm-up then linear decay, as the authors' ImageNet script (spec section 7, with
 * T = epochs, W = warmupEpochs): lr (e+1)/W for e < W; lr (T-W-e)/(T-W) for e < T-W;
 * then lr (T-e)/((T-W) W).
 */
export function linearWarmupDecayLr(epoch: number, options: { lr: number; warmupEpochs: number; epochs: number }): number {
  const { lr, warmupEpochs: w, epochs: t } = options;
  if (epoch < w) return (lr * (epoch + 1)) / w;
  if (epoch < t - w) return (lr * (t - w - epoch)) / (t - w);
  return (lr * (t - epoch)) / ((t - w) * w);
}
