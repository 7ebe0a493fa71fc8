/** PyTorch's default initialisation of conv and linear layers (kaiming_uniform_ with a = sqrt(5)). */
import { defaultRandom, type Random } from '../tensor/random.js';

/**
 * kaiming_uniform_(a=sqrt(5)): gain = sqrt(2 / (1 + a^2)) = sqrt(1/3), std = gain / sqrt(fanIn),
 * bound = sqrt(3) * std = 1 / sqrt(fanIn). The bias uses the same bound.
 */
export function defaultInitBound(fanIn: number): number {
  return fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
}

export function fillUniform(values: Float32Array, bound: number, random: Random = defaultRandom()): void {
  for (let i = 0; i < values.length; i++) values[i] = random.uniformRange(-bound, bound);
}

export function fillNormal(values: Float32Array, std: number, random: Random = defaultRandom()): void {
  for (let i = 0; i < values.length; i++) values[i] = std * random.normal();
}
