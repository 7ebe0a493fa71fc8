/**
 * PyTorch both ways, with real PyTorch (/usr/bin/python3 with Debian's python3-torch; the
 * suite skips these, saying so, where torch is not installed; CI installs it). The networks
 * are bench/pytorch/model_eval.py's, or the authors' own with PCDARTS_AUTHORS_CODE=DIR:
 * - `pcdarts export --format pytorch` of a real train run, and of a NetworkImageNet made
 *   through the library, loads into bench/pytorch/model_eval.py's networks (the authors'
 *   module tree) with strict=True and gives the engine's logits within 1e-4;
 * - `pcdarts train --init-from` starts from a state dict that PyTorch trained and saved as
 *   safetensors: the weights arrive bit for bit and the network computes PyTorch's logits;
 *   an export round-trips bit for bit; a resume without a checkpoint starts from the same
 *   weights; mismatched keys or shapes are one line and exit 2, and no run is created.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';

import { publishedGenotype } from '../../src/darts/genotype.js';
import { NO_AUGMENTATION } from '../../src/data/index.js';
import { NetworkCIFAR, NetworkImageNet } from '../../src/eval/network.js';
import { exportPytorch, networkArchitecture } from '../../src/export/index.js';
import { setBackend } from '../../src/kernels/registry.js';
import { disposeModule } from '../../src/nn/layers.js';
import { readSafetensors, readSafetensorsMetadata, writeSafetensors } from '../../src/nn/safetensors.js';
import { datasetBatch, loadRunDataset } from '../../src/run/data.js';
import { loadModelWeights, readModelFile } from '../../src/run/evaluate.js';
import { TrainRun } from '../../src/run/train.js';
import { manualSeed, Random } from '../../src/tensor/random.js';
import { assertBadInput, pcdarts } from '../cli/process.js';
import { difference, engineLogits, EVERY_OPERATION, pythonWithTorch, pytorchInterop, randomImages, randomizeBatchNorms } from './helpers.js';

const SCRIPT = fileURLToPath(new URL('../../../test/export/pytorch_interop.py', import.meta.url)); // from dist/test/export
const python = pythonWithTorch();
const skip = python === null ? 'PyTorch is not installed (apt-get install python3-torch)' : false;

/** A 1-epoch run with the recipe's auxiliary head and cutout: 144 training images, 48 for validation. */
const TINY = [
  '--limit-train', '192', '--valid-portion', '0.25', '--limit-test', '100', '--batch-size', '16', '--epochs', '1',
  '--init-channels', '4', '--layers', '3', '--threads', '2',
];

const root = mkdtempSync(join(tmpdir(), 'pcdarts-export-pytorch-'));
after(() => rmSync(root, { recursive: true, force: true }));
const run = join(root, 'run');

before(async () => {
  setBackend('wasm', { threads: 2 });
  const result = await pcdarts('train', ...TINY, '--out', run);
  assert.equal(result.code, 0, result.stderr);
});

/** Writes x and the engine's logits for pytorch_interop.py check. */
function writeInputs(path: string, x: Float32Array, shape: [number, number, number, number], logits: Float32Array, classes: number): void {
  writeFileSync(path, writeSafetensors([
    ['x', { dtype: 'F32', shape, values: x }], ['logits', { dtype: 'F32', shape: [shape[0], classes], values: logits }],
  ]));
}

function assertClose(result: Record<string, unknown>, what: string): void {
  const relMax = (result.max_abs_diff as number) / (result.max_abs_ref as number);
  console.log(`# ${what}: PyTorch (${result.definition === 'authors' ? 'the authors\' model.py' : 'model_eval.py'}) vs engine logits: max|diff|/max|ref| ${relMax.toExponential(2)}, rel L2 ${(result.rel_l2 as number).toExponential(2)}, max|diff| ${(result.max_abs_diff as number).toExponential(2)}`);
  assert.ok(relMax <= 1e-4 && (result.rel_l2 as number) <= 1e-4, JSON.stringify(result));
  assert.equal(result.argmax_equal, true);
}

describe('pcdarts export --format pytorch', { skip }, () => {
  it('writes the authors\' state dict that PyTorch loads with strict=True, giving the engine\'s logits (a trained run, auxiliary head included)', async () => {
    const out = join(root, 'model.safetensors');
    const result = await pcdarts('export', run, '--format', 'pytorch', '--out', out);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /PyTorch state dict \(safetensors, auxiliary head included/);
    const bytes = new Uint8Array(readFileSync(out));
    const metadata = readSafetensorsMetadata(bytes)!;
    assert.equal(metadata.format, 'pcdarts-pytorch');
    assert.equal(metadata.network, 'NetworkCIFAR');
    assert.equal(metadata.auxiliary, 'true');
    assert.deepEqual(JSON.parse(metadata.genotype), JSON.parse(readFileSync(join(run, 'genotype.json'), 'utf8')));
    const tensors = readSafetensors(bytes);
    assert.ok(tensors.has('auxiliary_head.features.2.weight') && tensors.has('cells.0._ops.0.op.1.weight'));
    assert.equal(tensors.get('stem.1.num_batches_tracked')!.dtype, 'I64');

    // The engine's logits of 16 test images from the same weights.
    const test = loadRunDataset({ dataset: 'fashion-mnist-bundled', data: null, split: 'test', limit: 16 });
    const { x } = datasetBatch(test, Int32Array.from({ length: 16 }, (_, i) => i), NO_AUGMENTATION, new Random(0));
    const input = x.data.slice(0, x.numel);
    x.dispose();
    const network = new NetworkCIFAR({ genotype: JSON.parse(metadata.genotype), channels: 4, layers: 3, classes: 10, inChannels: 1 });
    loadModelWeights(network, tensors, out);
    const logits = engineLogits(network, input, [16, 1, 32, 32]);
    assert.equal(tensors.size, network.stateEntries().length);
    disposeModule(network);
    const inputs = join(root, 'inputs.safetensors');
    writeInputs(inputs, input, [16, 1, 32, 32], logits, 10);
    const checked = pytorchInterop(python!, SCRIPT, 'check', { weights: out, inputs });
    assert.equal(checked.keys, tensors.size);
    assertClose(checked, 'trained NetworkCIFAR C 4, 3 cells');
  });

  it('does the same for a NetworkImageNet at 224x224 (every operation, random batch-norm statistics, auxiliary head)', () => {
    manualSeed(21);
    const network = new NetworkImageNet({ genotype: EVERY_OPERATION, channels: 8, layers: 4, classes: 7, auxiliary: true });
    randomizeBatchNorms(network, 3);
    const out = join(root, 'imagenet.safetensors');
    writeFileSync(out, exportPytorch(network, {
      ...networkArchitecture(network), imageSize: [224, 224], classNames: ['a', 'b', 'c', 'd', 'e', 'f', 'g'],
      mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], dataset: null, pcdartsVersion: 'test',
    }));
    const x = randomImages(2, 3, 224, 224, 8);
    const logits = engineLogits(network, x, [2, 3, 224, 224]);
    disposeModule(network);
    const inputs = join(root, 'imagenet-inputs.safetensors');
    writeInputs(inputs, x, [2, 3, 224, 224], logits, 7);
    const checked = pytorchInterop(python!, SCRIPT, 'check', { weights: out, inputs });
    assert.equal(checked.network, 'NetworkImageNet');
    assertClose(checked, 'NetworkImageNet C 8, 4 cells, 224x224');
  });
});

describe('pcdarts train --init-from', { skip }, () => {
  const genotype = publishedGenotype('PC_DARTS_cifar');
  const fromPytorch = join(root, 'pytorch-trained.safetensors');
  const pytorchInputs = join(root, 'pytorch-inputs.safetensors');
  const small = { genotype, initChannels: 4, layers: 3, limitTrain: 64, limitTest: 32, batchSize: 16, epochs: 1 };

  before(() => {
    const saved = pytorchInterop(python!, SCRIPT, 'save', {
      out: fromPytorch, inputs_out: pytorchInputs, network: 'NetworkCIFAR', C: 4, layers: 3, classes: 10, in_channels: 1,
      auxiliary: true, genotype, hw: 32, n: 6, steps: 3, seed: 4,
    });
    console.log(`# PyTorch saved ${saved.keys} tensors with the ${saved.writer === 'spec' ? 'safetensors format written by its spec (the Python safetensors package is not installed)' : 'safetensors package'}`);
  });

  it('starts from the weights PyTorch trained and saved: bit for bit, and the network gives PyTorch\'s logits', () => {
    const run = TrainRun.create({ config: { ...small, initFrom: fromPytorch }, out: join(root, 'init-lib') });
    try {
      const file = readSafetensors(new Uint8Array(readFileSync(fromPytorch)));
      for (const entry of run.model.stateEntries()) {
        assert.deepEqual(entry.tensor.data.slice(0, entry.tensor.numel), Float32Array.from(file.get(entry.name)!.values), entry.name);
        assert.deepEqual(entry.tensor.shape, file.get(entry.name)!.shape, entry.name);
      }
      const inputs = readSafetensors(new Uint8Array(readFileSync(pytorchInputs)));
      const x = inputs.get('x')!;
      const ours = engineLogits(run.model, x.values as Float32Array, x.shape as [number, number, number, number]);
      const d = difference(ours, inputs.get('logits')!.values);
      console.log(`# --init-from a PyTorch-trained state dict: engine vs PyTorch logits: max|diff|/max|ref| ${d.relMax.toExponential(2)}, rel L2 ${d.relL2.toExponential(2)}`);
      assert.ok(d.relMax <= 1e-4 && d.relL2 <= 1e-4, JSON.stringify(d));
      const config = JSON.parse(readFileSync(join(root, 'init-lib', 'config.json'), 'utf8'));
      assert.equal(config.config.initFrom, fromPytorch);
      assert.match(config.info.init_from_sha256, /^[0-9a-f]{64}$/);
    } finally {
      run.dispose();
    }
    // A resume that finds no checkpoint starts over from the same file, and refuses a changed one.
    const resumed = TrainRun.resume({ dir: join(root, 'init-lib') });
    const file = readSafetensors(new Uint8Array(readFileSync(fromPytorch)));
    const entry = resumed.model.stateEntries().find((e) => e.name === 'cells.1._ops.0.op.1.weight')!;
    assert.deepEqual(entry.tensor.data.slice(0, entry.tensor.numel), Float32Array.from(file.get(entry.name)!.values));
    resumed.dispose();
    const changed = join(root, 'changed.safetensors');
    writeFileSync(changed, readFileSync(fromPytorch));
    const other = TrainRun.create({ config: { ...small, initFrom: changed }, out: join(root, 'init-changed') });
    other.dispose();
    const bytes = readFileSync(changed);
    bytes[bytes.length - 1] ^= 1;
    writeFileSync(changed, bytes);
    assert.throws(() => TrainRun.resume({ dir: join(root, 'init-changed') }), /changed since the run .* started/);
  });

  it('runs from the command line, and an export of a run round-trips bit for bit', async () => {
    const cli = join(root, 'init-cli');
    const result = await pcdarts('train', '--init-from', fromPytorch, '--limit-train', '64', '--limit-test', '32', '--batch-size', '16', '--epochs', '1',
      '--init-channels', '4', '--layers', '3', '--threads', '2', '--out', cli);
    assert.equal(result.code, 0, result.stderr);

    const exported = join(root, 'roundtrip.safetensors');
    assert.equal((await pcdarts('export', run, '--format', 'pytorch', '--out', exported)).code, 0);
    const roundTrip = TrainRun.create({ config: { ...small, genotype: JSON.parse(readFileSync(join(run, 'genotype.json'), 'utf8')), initFrom: exported }, out: join(root, 'roundtrip') });
    try {
      const best = readModelFile(join(run, 'best.safetensors'));
      for (const entry of roundTrip.model.stateEntries()) {
        assert.deepEqual(entry.tensor.data.slice(0, entry.tensor.numel), Float32Array.from(best.get(`model.${entry.name}`)!.values), entry.name);
      }
    } finally {
      roundTrip.dispose();
    }
  });

  it('refuses mismatched shapes and keys in one line with exit 2, creating no run', async () => {
    const flags = ['--limit-train', '64', '--batch-size', '16', '--epochs', '1', '--layers', '3', '--threads', '2'];
    const out = join(root, 'refused');
    assertBadInput(await pcdarts('train', '--init-from', fromPytorch, ...flags, '--init-channels', '6', '--out', out),
      /^pcdarts train: --init-from .*pytorch-trained\.safetensors: 'stem\.0\.weight' has shape \[12, 1, 3, 3\], the model expects \[18, 1, 3, 3\]$/);
    assertBadInput(await pcdarts('train', '--init-from', fromPytorch, ...flags, '--init-channels', '4', '--genotype', 'DARTS_V2', '--out', out),
      /^pcdarts train: --init-from .*: (does not match this model: (missing|unexpected)|'.*' has shape)/);
    // Without the auxiliary head: a hint to train without one.
    const file = readSafetensors(new Uint8Array(readFileSync(fromPytorch)));
    const headless = join(root, 'headless.safetensors');
    writeFileSync(headless, writeSafetensors([...file].filter(([name]) => !name.startsWith('auxiliary_head.'))));
    assertBadInput(await pcdarts('train', '--init-from', headless, ...flags, '--init-channels', '4', '--out', out),
      /missing \d+ key\(s\), e\.g\. 'auxiliary_head\..*' \(the file has no auxiliary head: train with --no-auxiliary\)$/);
    assertBadInput(await pcdarts('train', '--init-from', join(root, 'absent.safetensors'), ...flags, '--out', out), /^pcdarts train: --init-from .*absent\.safetensors: no such file$/);
    assert.ok(!existsSync(out), 'no run directory was created');
    // With --no-auxiliary the head-less file is accepted.
    const ok = await pcdarts('train', '--init-from', headless, ...flags, '--init-channels', '4', '--no-auxiliary', '--limit-test', '16', '--out', out);
    assert.equal(ok.code, 0, ok.stderr);
  });
});
