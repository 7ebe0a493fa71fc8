/**
 * The second-order (unrolled) architect's properties beyond the fixtures: with eta = 0 it is
 * the first-order step; it leaves the weights bit for bit as they were; its numbers do not
 * depend on the activation budget or the thread count; its memory peak stays within 2x of a
 * first-order step's (the virtual weights live in the network, only w is copied aside).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import '../../src/kernels/ref/backend.js';
import '../../src/kernels/wasm/backend.js';
import { type Architect, FirstOrderArchitect, withFrozen } from '../../src/darts/architect.js';
import { createArchitect } from '../../src/darts/architects.js';
import { SecondOrderArchitect } from '../../src/darts/second-order-architect.js';
import { SearchNetwork, type SearchNetworkConfig } from '../../src/darts/search-network.js';
import { kernels, setBackend } from '../../src/kernels/registry.js';
import { clipGradNorm, SGD } from '../../src/nn/optim.js';
import { backward } from '../../src/tensor/autograd.js';
import * as ops from '../../src/tensor/ops.js';
import { manualSeed, Random } from '../../src/tensor/random.js';
import { fromArray, tidy } from '../../src/tensor/tensor.js';

const SHAPE = [6, 3, 16, 16];

function batch(seed: number): { x: Float32Array; labels: Int32Array } {
  const random = new Random(seed);
  const x = Float32Array.from({ length: SHAPE.reduce((a, b) => a * b) }, () => random.normal());
  return { x, labels: Int32Array.from({ length: SHAPE[0] }, (_, i) => (i * 7 + seed) % 10) };
}

interface Outcome {
  arch: Float32Array[];
  weights: Float32Array[];
  buffers: Float32Array[];
  archLosses: number[];
  /** Largest backend live bytes during the steps, above what was live before them. */
  peakAboveStartBytes: number;
}

const copy = (t: { data: Float32Array; numel: number }): Float32Array => Float32Array.from(t.data.subarray(0, t.numel));

/** `steps` search steps (architecture step of `order`, then the weight step) from a seeded network. */
function search(order: 1 | 2, steps: number, network: Partial<SearchNetworkConfig> = {}, lr = 0.1,
  architectFor: (model: SearchNetwork) => Architect = (model) => createArchitect(order, model)): Outcome {
  manualSeed(3);
  const model = new SearchNetwork({ channels: 8, layers: 4, k: 2, steps: 3, multiplier: 3, inChannels: 3, classes: 10, ...network });
  model.train();
  const architect = architectFor(model);
  const weights = model.weightParameters();
  const sgd = new SGD(weights, { lr, momentum: 0.9, weightDecay: 3e-4 });
  const archLosses: number[] = [];
  kernels().resetPeak();
  const startBytes = kernels().memoryStats().liveBytes;
  for (let step = 0; step < steps; step++) {
    tidy(() => {
      const train = batch(100 + step);
      const valid = batch(200 + step);
      const trainX = fromArray(train.x, SHAPE);
      archLosses.push(architect.step(fromArray(valid.x, SHAPE), valid.labels, { trainX, trainLabels: train.labels, lr, weightOptimizer: sgd }));
      model.zeroGrad();
      withFrozen(model.archParameters(), () => tidy(() => backward(ops.crossEntropy(model.forward(trainX), train.labels))));
      clipGradNorm(weights, 5);
      sgd.step();
    });
  }
  const peakAboveStartBytes = kernels().memoryStats().peakBytes - startBytes;
  return {
    arch: model.archParameters().map(copy), weights: weights.map(copy),
    buffers: model.stateEntries().filter((e) => e.kind === 'buffer').map((e) => copy(e.tensor)),
    archLosses, peakAboveStartBytes,
  };
}

function assertSameBits(a: Outcome, b: Outcome, what: string): void {
  assert.deepEqual(a.archLosses, b.archLosses, `${what}: architecture losses`);
  a.arch.forEach((t, i) => assert.deepEqual(b.arch[i], t, `${what}: architecture tensor ${i}`));
  a.weights.forEach((t, i) => assert.deepEqual(b.weights[i], t, `${what}: weight ${i}`));
  a.buffers.forEach((t, i) => assert.deepEqual(b.buffers[i], t, `${what}: buffer ${i}`));
}

test('with eta = 0 the unrolled step is the first-order step (w\' = w and no Hessian term)', () => {
  setBackend('wasm', { threads: 2 });
  const first = search(1, 2, {}, 0);
  const second = search(2, 2, {}, 0);
  assert.deepEqual(second.archLosses, first.archLosses);
  first.arch.forEach((t, i) => assert.deepEqual(second.arch[i], t, `architecture tensor ${i}`));
  // With a real learning rate the two differ.
  const moving = search(2, 2);
  assert.notDeepEqual(moving.arch[0], search(1, 2).arch[0]);
});

test('the unrolled step gives the weights back bit for bit and moves only the architecture and the statistics', () => {
  setBackend('wasm', { threads: 2 });
  manualSeed(3);
  const model = new SearchNetwork({ channels: 8, layers: 4, k: 2, steps: 3, multiplier: 3, inChannels: 3, classes: 10 });
  model.train();
  const architect = new SecondOrderArchitect(model);
  const sgd = new SGD(model.weightParameters(), { lr: 0.1, momentum: 0.9, weightDecay: 3e-4 });
  const before = model.weightParameters().map(copy);
  const archBefore = model.archParameters().map(copy);
  const tracked = model.stateEntries().filter((e) => e.name.endsWith('num_batches_tracked'));
  tidy(() => {
    const train = batch(1);
    const valid = batch(2);
    architect.step(fromArray(valid.x, SHAPE), valid.labels, { trainX: fromArray(train.x, SHAPE), trainLabels: train.labels, lr: 0.1, weightOptimizer: sgd });
  });
  model.weightParameters().forEach((p, i) => assert.deepEqual(copy(p), before[i], `weight ${i}`));
  model.archParameters().forEach((a, i) => assert.notDeepEqual(copy(a), archBefore[i], `architecture tensor ${i} moved`));
  // Three of the four forwards count (at w, w + R v, w - R v); the one at w' is thrown away.
  for (const e of tracked) assert.equal(e.tensor.data[0], 3, e.name);
  assert.throws(() => architect.step(fromArray(batch(3).x, SHAPE), batch(3).labels), /needs the weight step/);
});

for (const edgeNormalization of [true, false]) {
  test(`the same bits at any activation budget and thread count (${edgeNormalization ? 'edge normalisation' : 'no edge normalisation'})`, () => {
    setBackend('wasm', { threads: 2 });
    const kept = search(2, 2, { edgeNormalization, recomputeMixedOps: false });
    const recomputed = search(2, 2, { edgeNormalization, activationBudgetBytes: 0 });
    assertSameBits(kept, recomputed, 'recompute all vs keep all');
    setBackend('wasm', { threads: 1 });
    assertSameBits(kept, search(2, 2, { edgeNormalization, activationBudgetBytes: 0 }), '1 thread vs 2');
    if (!edgeNormalization) {
      // Betas are unused without edge normalisation: no gradient, never stepped (as in PyTorch).
      manualSeed(3);
      const fresh = new SearchNetwork({ channels: 8, layers: 4, k: 2, steps: 3, multiplier: 3, inChannels: 3, classes: 10, edgeNormalization });
      assert.deepEqual(kept.arch[2], copy(fresh.betasNormal));
      assert.deepEqual(kept.arch[3], copy(fresh.betasReduce));
    }
  });
}

test('peak backend memory of a second-order search step stays within 2x of a first-order step', () => {
  setBackend('wasm', { threads: 2 });
  for (const network of [{ activationBudgetBytes: 0 }, { recomputeMixedOps: false }]) {
    const first = search(1, 2, network, 0.1, (model) => new FirstOrderArchitect(model));
    const second = search(2, 2, network);
    const ratio = second.peakAboveStartBytes / first.peakAboveStartBytes;
    assert.ok(ratio <= 2, `${JSON.stringify(network)}: peak ${second.peakAboveStartBytes} B against ${first.peakAboveStartBytes} B (x${ratio.toFixed(2)})`);
  }
});
