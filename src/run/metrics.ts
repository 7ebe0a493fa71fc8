/** Small pure helpers for the numbers that loops log. */
import type { Tensor } from '../tensor/tensor.js';

/** Rows of `logits` [N, classes] whose largest value (first on ties) is at the label. */
export function countCorrect(logits: Tensor, labels: ArrayLike<number>): number {
  const [rows, classes] = logits.shape;
  if (rows !== labels.length) throw new Error(`countCorrect: ${rows} rows of logits but ${labels.length} labels`);
  const values = logits.data;
  let correct = 0;
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (values[r * classes + c] > values[r * classes + best]) best = c;
    if (best === labels[r]) correct++;
  }
  return correct;
}

/**
 * Rows of `logits` [N, classes] whose label is among the k largest values. Ties rank by
 * class index (the first of equal values ranks higher), so k = 1 agrees with countCorrect.
 */
export function countTopK(logits: Tensor, labels: ArrayLike<number>, k: number): number {
  const [rows, classes] = logits.shape;
  if (rows !== labels.length) throw new Error(`countTopK: ${rows} rows of logits but ${labels.length} labels`);
  const values = logits.data;
  let correct = 0;
  for (let r = 0; r < rows; r++) {
    const label = labels[r];
    const target = values[r * classes + label];
    let rank = 0;
    for (let c = 0; c < classes && rank < k; c++) {
      const v = values[r * classes + c];
      if (v > target || (v === target && c < label)) rank++;
    }
    if (rank < k) correct++;
  }
  return correct;
}

/**
 * The shortest decimal that reads back as the same float32 (a float32 printed as a float64
 * would show 17 digits of noise), for JSON logs of float32 values.
 */
export function float32ForJson(value: number): number {
  const target = Math.fround(value);
  if (!Number.isFinite(target) || target === 0) return target;
  for (let digits = 6; digits < 9; digits++) {
    const candidate = Number(target.toPrecision(digits));
    if (Math.fround(candidate) === target) return candidate;
  }
  return Number(target.toPrecision(9));
}

/** float32ForJson over an array. */
export function float32ArrayForJson(values: ArrayLike<number>): number[] {
  return Array.from(values, float32ForJson);
}

/** A float64 rounded to `digits` significant digits for logs (timings, rates). */
export function roundForLog(value: number, digits = 6): number {
  return Number.isFinite(value) ? Number(value.toPrecision(digits)) : value;
}
