/** Module trees, state dicts in safetensors, default initialisation, optimisers, schedules. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import '../../src/kernels/ref/backend.js';
import { setBackend } from '../../src/kernels/registry.js';
import { ReLUConvBN, SepConv } from '../../src/darts/operations.js';
import { Conv2d, Linear } from '../../src/nn/layers.js';
import { clipGradNorm, SGD } from '../../src/nn/optim.js';
import { readSafetensors, writeSafetensors } from '../../src/nn/safetensors.js';
import { cosineAnnealingLr, linearWarmupDecayLr } from '../../src/nn/schedule.js';
import { manualSeed } from '../../src/tensor/random.js';
import { parameter, fromArray } from '../../src/tensor/tensor.js';

setBackend('ref');

test('state-dict keys follow the authors\' module paths in PyTorch order', () => {
  const m = new SepConv(4, 4, 3, 1, 1, true);
  assert.deepEqual(m.stateEntries().map((e) => e.name), [
    'op.1.weight', 'op.2.weight', 'op.3.weight', 'op.3.bias', 'op.3.running_mean', 'op.3.running_var', 'op.3.num_batches_tracked',
    'op.5.weight', 'op.6.weight', 'op.7.weight', 'op.7.bias', 'op.7.running_mean', 'op.7.running_var', 'op.7.num_batches_tracked',
  ]);
  assert.equal(m.stateEntries().find((e) => e.name.endsWith('num_batches_tracked'))?.dtype, 'I64');
});

test('safetensors round trip of a module state, including int64 counters', () => {
  manualSeed(1);
  const a = new ReLUConvBN(3, 5, 3, 1, 1, true);
  a.stateEntries().find((e) => e.name === 'op.2.num_batches_tracked')!.tensor.data[0] = 7;
  const bytes = writeSafetensors(a.stateEntries().map((e) => [e.name, { dtype: e.dtype, shape: e.tensor.shape, values: e.tensor.data }]));
  const read = readSafetensors(bytes);
  assert.equal(read.get('op.2.num_batches_tracked')?.dtype, 'I64');
  manualSeed(2);
  const b = new ReLUConvBN(3, 5, 3, 1, 1, true);
  b.loadState(new Map([...read].map(([k, v]) => [k, v.values])));
  for (const [ea, eb] of a.stateEntries().map((e, i) => [e, b.stateEntries()[i]] as const)) {
    assert.deepEqual(eb.tensor.toArray(), ea.tensor.toArray(), ea.name);
  }
  assert.throws(() => b.loadState(new Map([['op.1.weight', new Float32Array(3)]])), /missing .* key/);
  assert.throws(() => readSafetensors(bytes.subarray(0, bytes.length - 4), 'model.safetensors'), /model.safetensors: tensor .* truncated/);
});

test('default initialisation is uniform within 1/sqrt(fan_in), as PyTorch\'s kaiming_uniform(a=sqrt(5))', () => {
  manualSeed(3);
  const conv = new Conv2d(8, 16, 3);
  const bound = 1 / Math.sqrt(8 * 9);
  const w = conv.weight.toArray();
  assert.ok(w.every((v) => Math.abs(v) <= bound));
  assert.ok(Math.max(...w.map(Math.abs)) > 0.95 * bound, 'fills the range');
  const linear = new Linear(10, 4);
  assert.ok(linear.bias!.toArray().every((v) => Math.abs(v) <= 1 / Math.sqrt(10)));
});

test('SGD with momentum and weight decay follows PyTorch: buf = g at the first step', () => {
  const p = parameter([1, -1], [2]);
  const sgd = new SGD([p], { lr: 0.1, momentum: 0.9, weightDecay: 0.01 });
  p.grad = fromArray([0.5, 0.5], [2]).keep();
  sgd.step();
  const d1 = [0.5 + 0.01 * 1, 0.5 - 0.01];
  assert.ok(Math.abs(p.data[0] - (1 - 0.1 * d1[0])) < 1e-6);
  sgd.step();
  const w1 = 1 - 0.1 * d1[0];
  const buf2 = 0.9 * d1[0] + (0.5 + 0.01 * w1);
  assert.ok(Math.abs(p.data[0] - (w1 - 0.1 * buf2)) < 1e-6);
});

test('clipGradNorm scales by max / (norm + 1e-6) only above the limit', () => {
  const p = parameter([0, 0], [2]);
  p.grad = fromArray([3, 4], [2]).keep();
  assert.equal(clipGradNorm([p], 10), 5);
  assert.deepEqual(p.grad.toArray(), [3, 4]);
  clipGradNorm([p], 1);
  assert.ok(Math.abs(p.grad.data[0] - 3 / (5 + 1e-6)) < 1e-7);
});

test('schedules: cosine endpoints and the ImageNet warm-up/decay formula of the spec', () => {
  assert.equal(cosineAnnealingLr(0, { lr: 0.1, lrMin: 0.001, epochs: 50 }), 0.1);
  assert.ok(Math.abs(cosineAnnealingLr(25, { lr: 0.1, lrMin: 0, epochs: 50 }) - 0.05) < 1e-15);
  const o = { lr: 0.5, warmupEpochs: 5, epochs: 250 };
  assert.equal(linearWarmupDecayLr(0, o), 0.1);
  assert.equal(linearWarmupDecayLr(4, o), 0.5);
  assert.equal(linearWarmupDecayLr(5, o), 0.5 * 240 / 245);
  assert.equal(linearWarmupDecayLr(245, o), 0.5 * 5 / 1225);
});
