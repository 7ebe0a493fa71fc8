/** Parameter counts and multiply-adds against the reference table of spec section 7. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import '../../src/kernels/ref/backend.js';
import { setBackend } from '../../src/kernels/registry.js';
import { publishedGenotype } from '../../src/darts/genotype.js';
import { FactorizedReduce, SepConv } from '../../src/darts/operations.js';
import {
  evalNetworkComplexity, layerCost, networkComplexity, searchNetworkComplexity, type EvalNetworkKind,
} from '../../src/eval/complexity.js';
import { NetworkCIFAR } from '../../src/eval/network.js';
import { disposeModule, parameterCount } from '../../src/nn/layers.js';

setBackend('ref');

const TABLE: { genotype: string; kind: EvalNetworkKind; parameters: number; multAdds: number }[] = [
  { genotype: 'PC_DARTS_cifar', kind: 'cifar', parameters: 3_634_678, multAdds: 556_670_592 },
  { genotype: 'PC_DARTS_image', kind: 'cifar', parameters: 3_721_510, multAdds: 570_466_944 },
  { genotype: 'DARTS_V1', kind: 'cifar', parameters: 3_169_414, multAdds: 500_987_520 },
  { genotype: 'DARTS_V2', kind: 'cifar', parameters: 3_349_342, multAdds: 528_359_040 },
  { genotype: 'PC_DARTS_image', kind: 'imagenet', parameters: 5_342_464, multAdds: 581_627_328 },
  { genotype: 'PC_DARTS_cifar', kind: 'imagenet', parameters: 5_270_560, multAdds: 571_137_408 },
];

for (const row of TABLE) {
  const label = row.kind === 'cifar' ? 'CIFAR C36 L20, 32x32' : 'ImageNet C48 L14, 224x224';
  test(`${row.genotype}, ${label}: ${row.parameters} params, ${row.multAdds} mult-adds`, () => {
    // Defaults of each network kind: C36 L20 10 classes / C48 L14 1000 classes, auxiliary on (not counted).
    const report = evalNetworkComplexity(row.kind, { genotype: publishedGenotype(row.genotype) });
    assert.deepEqual(report, { parameters: row.parameters, multAdds: row.multAdds });
  });
}

test('search network C16 L8 K4, 32x32: 299,578 params, 56,596,992 mult-adds', () => {
  assert.deepEqual(searchNetworkComplexity({ channels: 16, layers: 8, k: 4, inputSize: 32 }),
    { parameters: 299_578, multAdds: 56_596_992 });
  assert.deepEqual(searchNetworkComplexity(), { parameters: 299_578, multAdds: 56_596_992 });
});

test('the auxiliary head is built but not counted', () => {
  const genotype = publishedGenotype('DARTS_V2');
  const withHead = new NetworkCIFAR({ genotype, channels: 8, layers: 5, auxiliary: true });
  const without = new NetworkCIFAR({ genotype, channels: 8, layers: 5, auxiliary: false });
  try {
    const a = networkComplexity(withHead, 32);
    const b = networkComplexity(without, 32);
    assert.deepEqual(a, b);
    assert.ok(parameterCount(withHead) > a.parameters);
    assert.equal(parameterCount(without), b.parameters);
  } finally {
    disposeModule(withHead);
    disposeModule(without);
  }
});

test('one input channel (Fashion-MNIST) only changes the stem', () => {
  const genotype = publishedGenotype('PC_DARTS_cifar');
  const rgb = evalNetworkComplexity('cifar', { genotype, channels: 8, layers: 5 });
  const gray = evalNetworkComplexity('cifar', { genotype, channels: 8, layers: 5, inChannels: 1 });
  // stem conv 3x3 -> 24 channels: 2 fewer input channels x 9 weights x 24 outputs, at 32x32.
  assert.equal(rgb.parameters - gray.parameters, 2 * 9 * 24);
  assert.equal(rgb.multAdds - gray.multAdds, 2 * 9 * 24 * 32 * 32);
});

test('layer costs: depthwise-separable conv and FactorizedReduce', () => {
  const sep = new SepConv(4, 4, 3, 2, 1, true);
  const fr = new FactorizedReduce(4, 6, true);
  try {
    const s = layerCost(sep, { channels: 4, height: 8, width: 8 });
    assert.deepEqual(s.output, { channels: 4, height: 4, width: 4 });
    // two (depthwise 3x3 + pointwise 1x1) at 4x4
    assert.equal(s.multAdds, 2 * (4 * 9 * 16 + 4 * 4 * 16));
    const f = layerCost(fr, { channels: 4, height: 8, width: 8 });
    assert.deepEqual(f.output, { channels: 6, height: 4, width: 4 });
    assert.equal(f.multAdds, 2 * (3 * 4 * 16));
    assert.throws(() => layerCost(fr, { channels: 4, height: 7, width: 7 }), /even/);
  } finally {
    disposeModule(sep);
    disposeModule(fr);
  }
});
