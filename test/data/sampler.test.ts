import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { BatchSampler, type BatchSamplerState, splitTrainValid } from '../../src/data/index.js';
import { Random, type RandomState } from '../../src/tensor/random.js';

describe('splitTrainValid', () => {
  it('puts the first floor(portion * count) indices in train, the rest in valid', () => {
    const even = splitTrainValid(10, 0.5);
    assert.deepEqual(Array.from(even.train), [0, 1, 2, 3, 4]);
    assert.deepEqual(Array.from(even.valid), [5, 6, 7, 8, 9]);
    const odd = splitTrainValid(7, 0.5);
    assert.deepEqual(Array.from(odd.train), [0, 1, 2]);
    assert.deepEqual(Array.from(odd.valid), [3, 4, 5, 6]);
    assert.equal(splitTrainValid(50000, 0.5).train.length, 25000);
    assert.throws(() => splitTrainValid(10, 1.5), /train portion/);
  });
});

describe('BatchSampler', () => {
  const indices = [10, 11, 12, 13, 14, 15, 16, 17, 18, 19];

  it('yields each epoch as a permutation of its indices, keeping the last partial batch', () => {
    const sampler = new BatchSampler(indices, 4, new Random(3));
    assert.equal(sampler.batchesPerEpoch, 3);
    const epochs: number[][] = [];
    for (let e = 0; e < 3; e++) {
      const sizes: number[] = [];
      const seen: number[] = [];
      for (let b = 0; b < 3; b++) {
        const batch = sampler.next();
        sizes.push(batch.length);
        seen.push(...batch);
      }
      assert.deepEqual(sizes, [4, 4, 2]);
      assert.equal(sampler.batchesLeftInEpoch, 0);
      assert.equal(sampler.epoch, e + 1);
      assert.deepEqual(seen.slice().sort((a, b) => a - b), indices);
      epochs.push(seen);
    }
    assert.notDeepEqual(epochs[0], epochs[1], 'reshuffled every epoch');
  });

  it('draws its permutation like SubsetRandomSampler: indices[permutation(n)]', () => {
    const sampler = new BatchSampler(indices, 10, new Random(5));
    const permutation = new Random(5).permutation(10);
    assert.deepEqual(Array.from(sampler.next()), Array.from(permutation, (p) => indices[p]));
  });

  it('is deterministic for a seed', () => {
    const a = new BatchSampler(indices, 3, new Random(42));
    const b = new BatchSampler(indices, 3, new Random(42));
    for (let i = 0; i < 20; i++) assert.deepEqual(a.next(), b.next());
  });

  it('resumes exactly from a JSON round trip of its state and the generator state', () => {
    for (const stopAfter of [0, 2, 4, 5, 9]) { // before start, mid-epoch, at an epoch boundary
      const random = new Random(7);
      const sampler = new BatchSampler(indices, 4, random);
      for (let i = 0; i < stopAfter; i++) sampler.next();
      const saved = JSON.parse(JSON.stringify({ sampler: sampler.getState(), random: random.getState() })) as {
        sampler: BatchSamplerState; random: RandomState;
      };
      const expected = Array.from({ length: 10 }, () => Array.from(sampler.next()));

      const resumedRandom = new Random(999);
      resumedRandom.setState(saved.random);
      const resumed = new BatchSampler(indices, 4, resumedRandom);
      resumed.setState(saved.sampler);
      assert.equal(resumed.epoch, saved.sampler.epoch);
      const actual = Array.from({ length: 10 }, () => Array.from(resumed.next()));
      assert.deepEqual(actual, expected, `stopped after ${stopAfter} batches`);
    }
  });

  it('rejects a state of another sampler', () => {
    const sampler = new BatchSampler(indices, 4, new Random(1));
    sampler.next();
    const state = sampler.getState();
    assert.throws(() => new BatchSampler(indices, 5, new Random(1)).setState(state), /batch size/);
    assert.throws(() => new BatchSampler([1, 2, 3], 4, new Random(1)).setState(state), /order has 10 indices, expected 3/);
    const other = indices.map((i) => i + 1);
    assert.throws(() => new BatchSampler(other, 4, new Random(1)).setState(state), /not a permutation/);
  });

  it('serves a persistent architecture iterator across weight epochs', () => {
    // Weight half: 5 indices in batches of 2 (3 steps per epoch); architecture half: 5
    // indices, one batch per step, restarted when exhausted.
    const random = new Random(11);
    const { train, valid } = splitTrainValid(10, 0.5);
    const weights = new BatchSampler(train, 2, random);
    const architecture = new BatchSampler(valid, 2, random);
    const archBatches: number[][] = [];
    for (let epoch = 0; epoch < 2; epoch++) {
      for (let step = 0; step < weights.batchesPerEpoch; step++) {
        archBatches.push(Array.from(architecture.next()));
        for (const i of weights.next()) assert.ok(i < 5);
      }
    }
    assert.deepEqual(archBatches.map((b) => b.length), [2, 2, 1, 2, 2, 1]);
    assert.equal(architecture.epoch, 2);
    for (const b of archBatches) for (const i of b) assert.ok(i >= 5);
  });
});
