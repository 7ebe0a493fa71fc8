/**
 * Drop path (spec section 7): during training each sample's output of an operation is kept
 * with probability 1 - p and then scaled by 1 / (1 - p), or zeroed. The authors' drop_path
 * draws one Bernoulli(1 - p) per sample from the run's generator.
 */
import { mulPerSample } from '../tensor/ops.js';
import type { Random } from '../tensor/random.js';
import type { Tensor } from '../tensor/tensor.js';

/** The per-sample factors of one drop-path mask: 1 / (1 - p) for kept samples, 0 otherwise. */
export function dropPathFactors(batch: number, dropProb: number, random: Random): Float32Array {
  if (!(dropProb >= 0 && dropProb < 1)) {
    throw new Error(`drop path probability must be in [0, 1), got ${dropProb}`);
  }
  const keepProb = 1 - dropProb;
  const factors = new Float32Array(batch);
  for (let i = 0; i < batch; i++) factors[i] = random.uniform() < keepProb ? 1 / keepProb : 0;
  return factors;
}

/** x with whole samples dropped (p = 0 returns x itself and draws nothing). */
export function dropPath(x: Tensor, dropProb: number, random: Random): Tensor {
  if (dropProb === 0) return x;
  return mulPerSample(x, dropPathFactors(x.shape[0], dropProb, random));
}
