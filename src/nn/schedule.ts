/** Learning-rate schedules, evaluated per epoch (0-based). */

/** CosineAnnealingLR stepped once per epoch (spec section 6): lrMin + (lr - lrMin)(1 + cos(pi e / T)) / 2. */
export function cosineAnnealingLr(epoch: number, options: { lr: number; lrMin: number; epochs: number }): number {
  const { lr, lrMin, epochs } = options;
  return lrMin + (lr - lrMin) * (1 + Math.cos((Math.PI * epoch) / epochs)) / 2;
}

/**
 * Epochs of the gentler final slope of the authors' linear decay (train_imagenet.py's
 * adjust_lr: "smaller slope for the last 5 epochs because lr * 1/250 is relatively large").
 */
export const LINEAR_DECAY_TAIL_EPOCHS = 5;

/**
 * The authors' linear decay (train_imagenet.py adjust_lr, spec section 7), with the tail
 * t = 5: lr (T - t - e)/(T - t) for e < T - t, then lr (T - e)/((T - t) t), so the rate
 * never reaches 0. Runs of at most 5 epochs (where their formula divides by zero or goes
 * negative) decay as lr (T - e)/T.
 */
export function linearDecayLr(epoch: number, options: { lr: number; epochs: number }): number {
  const { lr, epochs: t } = options;
  const tail = t > LINEAR_DECAY_TAIL_EPOCHS ? LINEAR_DECAY_TAIL_EPOCHS : 0;
  if (epoch < t - tail) return (lr * (t - tail - epoch)) / (t - tail);
  return (lr * (t - epoch)) / ((t - tail) * tail);
}

/** How a run's learning rate moves over the epochs. */
export type LrScheduleKind = 'cosine' | 'linear';
export const LR_SCHEDULE_KINDS: readonly LrScheduleKind[] = ['cosine', 'linear'];

export interface LrSchedule {
  /** 'cosine': cosineAnnealingLr to lrMin; 'linear': linearDecayLr (lrMin unused). */
  kind: LrScheduleKind;
  lr: number;
  lrMin: number;
  epochs: number;
  /**
   * Linear warm-up epochs W: lr (e + 1) / W for e < W, overriding the schedule (the authors'
   * ImageNet scripts, which do it when the batch exceeds 256). 0: none.
   */
  warmupEpochs: number;
}

/** The learning rate of an epoch under a schedule (spec sections 6 and 7). */
export function scheduledLr(epoch: number, schedule: LrSchedule): number {
  const { kind, lr, lrMin, epochs, warmupEpochs } = schedule;
  if (epoch < warmupEpochs) return (lr * (epoch + 1)) / warmupEpochs;
  return kind === 'linear' ? linearDecayLr(epoch, { lr, epochs }) : cosineAnnealingLr(epoch, { lr, lrMin, epochs });
}

/**
 * The ImageNet retraining schedule of spec section 7 (T = epochs, W = warmupEpochs = 5):
 * lr (e+1)/W for e < W, then the authors' linear decay.
 */
export function linearWarmupDecayLr(epoch: number, options: { lr: number; warmupEpochs: number; epochs: number }): number {
  return scheduledLr(epoch, { kind: 'linear', lr: options.lr, lrMin: 0, epochs: options.epochs, warmupEpochs: options.warmupEpochs });
}
