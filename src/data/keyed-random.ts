/**
 * Counter-based randomness for file-backed data: a generator whose state is a hash of a key
 * (seed, stream, epoch, position, ...), so that what an item of a batch gets never depends on
 * which thread computes it, how far ahead batches are prefetched, or where a run was resumed.
 * Pure: usable in worker threads.
 */
import { Random } from '../tensor/random.js';

/** FNV-1a of a stream's name ('train', 'valid'), a 32-bit key word. */
export function streamKey(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * A generator seeded from the key words (each an integer in [0, 2^32)): four MurmurHash3-style
 * lanes over the words give the 128-bit xoshiro state, so distinct keys give unrelated streams.
 */
export function keyedRandom(...key: number[]): Random {
  const lanes = [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344];
  for (const word of key) {
    if (!Number.isInteger(word) || word < 0 || word >= 2 ** 32) throw new Error(`keyedRandom: key words must be integers in [0, 2^32), got ${word}`);
    for (let l = 0; l < 4; l++) {
      let k = Math.imul(word ^ Math.imul(l + 1, 0x9e3779b9), 0xcc9e2d51) >>> 0;
      k = ((k << 15) | (k >>> 17)) >>> 0;
      k = Math.imul(k, 0x1b873593) >>> 0;
      let h = (lanes[l] ^ k) >>> 0;
      h = ((h << 13) | (h >>> 19)) >>> 0;
      lanes[l] = (Math.imul(h, 5) + 0xe6546b64) >>> 0;
    }
  }
  const s = lanes.map((h, l) => fmix32((h ^ Math.imul(key.length, 0x27d4eb2f) ^ l) >>> 0)) as [number, number, number, number];
  if ((s[0] | s[1] | s[2] | s[3]) === 0) s[0] = 1;
  const random = new Random(0);
  random.setState({ s, spareNormal: null });
  return random;
}
