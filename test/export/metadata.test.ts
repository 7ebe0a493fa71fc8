/**
 * The self-description both exports carry, and the architecture read back from a state
 * dict's keys and shapes: what lets a bare state dict be exported with only its genotype.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import '../../src/kernels/ref/backend.js';
import { setBackend } from '../../src/kernels/registry.js';
import { type EvalNetwork, NetworkCIFAR, NetworkImageNet } from '../../src/eval/network.js';
import {
  buildNetwork, descriptionMetadata, inferArchitecture, type ModelDescription, networkArchitecture, parseDescriptionMetadata,
} from '../../src/export/index.js';
import { disposeModule } from '../../src/nn/layers.js';
import { EVERY_OPERATION } from './helpers.js';

setBackend('ref');

function stateShapes(network: EvalNetwork): Map<string, { shape: readonly number[] }> {
  return new Map(network.stateEntries().map((e) => [e.name, { shape: e.tensor.shape }]));
}

describe('inferArchitecture', () => {
  for (const [name, build] of [
    ['NetworkCIFAR C 6, 5 cells, 1 channel, auxiliary head', () => new NetworkCIFAR({ genotype: EVERY_OPERATION, channels: 6, layers: 5, classes: 10, inChannels: 1 })],
    ['NetworkCIFAR C 4, 2 cells, 3 channels, no auxiliary head', () => new NetworkCIFAR({ genotype: EVERY_OPERATION, channels: 4, layers: 2, classes: 3, auxiliary: false })],
    ['NetworkImageNet C 10, 4 cells, auxiliary head', () => new NetworkImageNet({ genotype: EVERY_OPERATION, channels: 10, layers: 4, classes: 12 })],
  ] as const) {
    it(`reads back ${name} from its state dict`, () => {
      const network = build();
      const { genotype: _genotype, ...expected } = networkArchitecture(network);
      assert.deepEqual(inferArchitecture(stateShapes(network), 'file'), expected);
      const rebuilt = buildNetwork({ ...expected, genotype: EVERY_OPERATION });
      assert.deepEqual([...stateShapes(rebuilt)], [...stateShapes(network)], 'the same keys and shapes');
      disposeModule(network);
      disposeModule(rebuilt);
    });
  }

  it('says what is missing from something that is not such a state dict', () => {
    assert.throws(() => inferArchitecture(new Map([['weight', { shape: [3] }]]), 'x.safetensors'),
      /^Error: x\.safetensors: no tensor 'stem\.0\.weight': not a state dict of the authors' NetworkCIFAR or NetworkImageNet$/);
    assert.throws(() => inferArchitecture(new Map([['stem.0.weight', { shape: [12, 1, 3, 3] }]]), 'x.safetensors'), /no 'cells\.<i>\.' tensors/);
  });
});

describe('description metadata', () => {
  const description: ModelDescription = {
    network: 'NetworkImageNet', genotype: EVERY_OPERATION, initChannels: 48, layers: 14, classes: 3, inChannels: 3,
    auxiliary: true, imageSize: [224, 224], classNames: ['cat', 'dog', 'a "quoted", name'], mean: [0.485, 0.456, 0.406],
    std: [0.229, 0.224, 0.225], dataset: 'imagenet', pcdartsVersion: '1.2.3',
  };

  it('round-trips through string key/values', () => {
    const metadata = descriptionMetadata(description, 'pcdarts-onnx');
    assert.ok(Object.values(metadata).every((v) => typeof v === 'string'));
    assert.equal(metadata.format, 'pcdarts-onnx');
    assert.deepEqual(parseDescriptionMetadata(metadata, 'm'), description);
  });

  it('names the key of a bad entry in one line', () => {
    const metadata = descriptionMetadata(description, 'pcdarts-onnx');
    for (const [key, value, pattern] of [
      ['network', 'ResNet', /metadata 'network' should be NetworkCIFAR or NetworkImageNet/],
      ['class_names', '["a"]', /metadata 'class_names' should be a list of 3 strings/],
      ['mean', '[0.5]', /metadata 'mean' should be a list of 3 numbers/],
      ['layers', 'many', /metadata 'layers' should be a positive integer/],
      ['genotype', '{"normal": []}', /genotype/],
      ['image_size', 'not json', /metadata 'image_size' is not JSON/],
    ] as const) {
      assert.throws(() => parseDescriptionMetadata({ ...metadata, [key]: value }, 'm.onnx'), (error: Error) => pattern.test(error.message) && !error.message.includes('\n'), key);
    }
  });
});
