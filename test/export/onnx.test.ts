/**
 * The ONNX builder on networks made through the library (a real train run is
 * export-cli.test.ts): NetworkImageNet at 224x224 and NetworkCIFAR at small C with a genotype
 * that uses every operation and random batch-norm statistics, run by onnxruntime-node and
 * compared with the engine's eval-mode logits; and the structure the issue asks for (opset,
 * dynamic batch, Slice for the FactorizedReduce shift, count_include_pad=0, no auxiliary head,
 * metadata), checked by the official ONNX checker where Debian's python3-onnx is installed
 * (CI installs it).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import onnxProto from 'onnx-proto';

import { NetworkCIFAR, NetworkImageNet, type EvalNetwork } from '../../src/eval/network.js';
import { FactorizedReduce } from '../../src/darts/operations.js';
import { AvgPool2d } from '../../src/nn/layers.js';
import { disposeModule } from '../../src/nn/layers.js';
import { setBackend } from '../../src/kernels/registry.js';
import { manualSeed } from '../../src/tensor/random.js';
import {
  buildOnnxModel, decodeOnnxModel, encodeOnnxModel, type ModelDescription, networkArchitecture, ONNX_OPSET,
  onnxMetadata, parseDescriptionMetadata,
} from '../../src/export/index.js';
type GraphProto = InstanceType<typeof onnxProto.onnx.GraphProto>;

import {
  argmaxRows, difference, engineLogits, EVERY_OPERATION, onnxChecker, onnxLogits, pythonWithOnnx, randomImages, randomizeBatchNorms,
} from './helpers.js';

function describeFor(network: EvalNetwork, size: number): ModelDescription {
  const { inChannels, classes } = network.config;
  return {
    ...networkArchitecture(network), auxiliary: false, imageSize: [size, size],
    classNames: Array.from({ length: classes }, (_, k) => `class ${k}`),
    mean: Array.from({ length: inChannels }, (_, c) => 0.4 + 0.01 * c), std: Array.from({ length: inChannels }, (_, c) => 0.25 + 0.01 * c),
    dataset: null, pcdartsVersion: '0.0.0-test',
  };
}

const onnxPython = pythonWithOnnx();
const checkerSkip = onnxPython === null ? 'the onnx Python package is not installed (apt-get install python3-onnx)' : false;
const root = mkdtempSync(join(tmpdir(), 'pcdarts-export-onnx-'));
after(() => rmSync(root, { recursive: true, force: true }));

interface Case {
  name: string;
  build: () => EvalNetwork;
  size: number;
  batch: number;
}

const CASES: Case[] = [
  {
    name: 'NetworkImageNet C 8, 4 cells, 224x224, 3 channels, 11 classes',
    build: () => new NetworkImageNet({ genotype: EVERY_OPERATION, channels: 8, layers: 4, classes: 11, auxiliary: true }),
    size: 224, batch: 3,
  },
  {
    name: 'NetworkCIFAR C 6, 5 cells, 32x32, 1 channel, 10 classes',
    build: () => new NetworkCIFAR({ genotype: EVERY_OPERATION, channels: 6, layers: 5, classes: 10, inChannels: 1, auxiliary: true }),
    size: 32, batch: 8,
  },
];

for (const testCase of CASES) {
  describe(`ONNX export of ${testCase.name}`, () => {
    let network: EvalNetwork;
    let bytes: Uint8Array;
    let description: ModelDescription;

    before(() => {
      setBackend('wasm', { threads: 2 });
      manualSeed(13);
      network = testCase.build();
      randomizeBatchNorms(network, 5);
      network.eval();
      description = describeFor(network, testCase.size);
      bytes = encodeOnnxModel(buildOnnxModel(network, { description }));
    });
    after(() => disposeModule(network));

    it('gives onnxruntime-node logits within 1e-4 relative of the engine, the same top-1, at any batch size', async () => {
      const { inChannels, classes } = network.config;
      for (const batch of [testCase.batch, 1]) {
        const shape: [number, number, number, number] = [batch, inChannels, testCase.size, testCase.size];
        const x = randomImages(batch, inChannels, testCase.size, testCase.size, 100 + batch);
        const ours = engineLogits(network, x, shape);
        const theirs = await onnxLogits(bytes, x, shape);
        const d = difference(theirs, ours);
        console.log(`# ${testCase.name}, batch ${batch}: onnxruntime vs engine logits: max|diff|/max|ref| ${d.relMax.toExponential(2)}, rel L2 ${d.relL2.toExponential(2)}, max|diff| ${d.maxAbs.toExponential(2)}`);
        assert.ok(d.relMax <= 1e-4 && d.relL2 <= 1e-4, `logits differ: ${JSON.stringify(d)}`);
        assert.deepEqual(argmaxRows(theirs, classes), argmaxRows(ours, classes));
      }
    });

    it('has opset 13, a dynamic batch dimension, one Slice per FactorizedReduce, count_include_pad=0 pools and no auxiliary head', () => {
      const model = decodeOnnxModel(bytes);
      assert.deepEqual(model.opsetImport.map((o) => [o.domain, Number(o.version)]), [['', ONNX_OPSET]]);
      assert.ok(ONNX_OPSET >= 13);
      const graph = model.graph as GraphProto;
      const dims = (value: GraphProto['input'][number]): (string | number)[] =>
        value.type!.tensorType!.shape!.dim!.map((d) => (d.dimParam ? d.dimParam : Number(d.dimValue)));
      assert.deepEqual(graph.input.map((v) => v.name), ['input']);
      assert.deepEqual(dims(graph.input[0]), ['batch', network.config.inChannels, testCase.size, testCase.size]);
      assert.deepEqual(graph.output.map((v) => v.name), ['logits']);
      assert.deepEqual(dims(graph.output[0]), ['batch', network.config.classes]);

      // Initializers are the state dict minus the auxiliary head and the batch counters.
      const expected = network.stateEntries().map((e) => e.name)
        .filter((name) => !name.startsWith('auxiliary_head.') && !name.endsWith('num_batches_tracked'));
      const weights = graph.initializer.map((t) => t.name ?? '').filter((name) => !name.startsWith('const:'));
      assert.deepEqual([...weights].sort(), [...expected].sort());

      const count = (op: string): number => graph.node.filter((n) => n.opType === op).length;
      const modules = network.namedModules().map(([, m]) => m);
      const reduces = modules.filter((m) => m instanceof FactorizedReduce).length;
      assert.ok(reduces > 0);
      // none at stride 2 adds a strided Slice (with steps); the FactorizedReduce shifts have none.
      const shifts = graph.node.filter((n) => n.opType === 'Slice' && n.input?.length === 4);
      assert.equal(shifts.length, reduces);
      const pools = graph.node.filter((n) => n.opType === 'AveragePool' && (n.name ?? '').includes('_ops'));
      assert.equal(pools.length, modules.filter((m) => m instanceof AvgPool2d).length - (network.auxiliaryHead ? 1 : 0));
      for (const pool of pools) assert.deepEqual((pool.attribute ?? []).filter((a) => a.name === 'count_include_pad').map((a) => Number(a.i)), [0]);
      assert.equal(count('BatchNormalization'), modules.filter((m) => m.constructor.name === 'BatchNorm2d').length - (network.auxiliaryHead ? (network instanceof NetworkCIFAR ? 2 : 1) : 0));
      assert.ok(count('ConstantOfShape') > 0, 'the none operations are exact zeros');
      assert.ok(!graph.node.some((n) => (n.name ?? '').startsWith('auxiliary_head')), 'no auxiliary head');
      assert.ok(!graph.node.some((n) => /Dropout|Random|Bernoulli/.test(n.opType ?? '')), 'no drop path');
    });

    it('passes the official ONNX checker (full check: operator schemas, strict shape inference)', { skip: checkerSkip }, () => {
      const path = join(root, `${testCase.size}.onnx`);
      writeFileSync(path, bytes);
      const checked = onnxChecker(onnxPython!, path);
      console.log(`# ${testCase.name}: onnx ${checked.version} checker passed, inferred output shape ${JSON.stringify(checked.output)}`);
      assert.deepEqual(checked.output, ['batch', network.config.classes]);
    });

    it('carries the genotype, class names, image size, mean/std, network and version in metadata_props', () => {
      const model = decodeOnnxModel(bytes);
      const metadata = onnxMetadata(model);
      assert.equal(metadata.format, 'pcdarts-onnx');
      assert.equal(metadata.pcdarts_version, '0.0.0-test');
      assert.deepEqual(parseDescriptionMetadata(metadata, 'model.onnx'), description);
      assert.deepEqual(JSON.parse(metadata.genotype), EVERY_OPERATION);
      assert.match(metadata.genotype_python, /^Genotype\(normal=\[\('sep_conv_3x3', 0\)/);
      assert.equal(model.producerName, 'pcdarts');
    });
  });
}
