/**
 * `pcdarts export` as a user runs it, on a real tiny `pcdarts train` run: the ONNX file that
 * onnxruntime-node runs gives the engine's logits (1e-4 relative) and the same top-1 on the
 * whole test split as `pcdarts test`; and every kind of bad input is one line and exit 2,
 * with nothing written and the run directory untouched.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { loadRunDataset, datasetBatch } from '../../src/run/data.js';
import { NO_AUGMENTATION } from '../../src/data/index.js';
import { NetworkCIFAR } from '../../src/eval/network.js';
import { readModelFile, loadModelWeights } from '../../src/run/evaluate.js';
import { disposeModule } from '../../src/nn/layers.js';
import { setBackend } from '../../src/kernels/registry.js';
import { Random } from '../../src/tensor/random.js';
import { decodeOnnxModel, onnxMetadata, parseDescriptionMetadata } from '../../src/export/index.js';
import { FASHION_MNIST_CLASS_NAMES, FASHION_MNIST_MEAN, FASHION_MNIST_STD } from '../../src/data/index.js';
import { assertBadInput, pcdarts } from '../cli/process.js';
import { argmaxRows, difference, engineLogits, onnxLogits } from './helpers.js';

/**
 * 480 training images, 120 for validation (so a best model exists); 3 epochs reach about 50%
 * top-1 on the 1000 bundled test images, so that "the same top-1" compares real predictions.
 */
const SMALL = [
  '--limit-train', '600', '--valid-portion', '0.2', '--limit-test', '100', '--batch-size', '24', '--epochs', '3', '--lr', '0.1',
  '--no-cutout', '--no-auxiliary', '--init-channels', '4', '--layers', '3', '--threads', '2',
];

const root = mkdtempSync(join(tmpdir(), 'pcdarts-export-cli-'));
after(() => rmSync(root, { recursive: true, force: true }));
const run = join(root, 'run');

/** Every file under a directory with its sha256: what "untouched" compares. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path);
      else out[path] = createHash('sha256').update(readFileSync(path)).digest('hex');
    }
  };
  walk(dir);
  return out;
}

before(async () => {
  setBackend('wasm', { threads: 2 });
  const result = await pcdarts('train', ...SMALL, '--out', run);
  assert.equal(result.code, 0, result.stderr);
});

describe('pcdarts export RUN_DIR --format onnx', () => {
  it('writes an ONNX model whose onnxruntime-node logits match the engine on the whole test split, with the same top-1 as pcdarts test', async () => {
    const out = join(root, 'model.onnx');
    const result = await pcdarts('export', run, '--format', 'onnx', '--out', out);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, '');
    assert.match(result.stdout, /^export: wrote .*model\.onnx \(ONNX opset 13, [\d.]+ MB\): NetworkCIFAR C 4, 3 cells, 10 classes, from .*best\.safetensors\n/);

    const metadata = onnxMetadata(decodeOnnxModel(new Uint8Array(readFileSync(out))));
    const description = parseDescriptionMetadata(metadata, out);
    assert.deepEqual(description.genotype, JSON.parse(readFileSync(join(run, 'genotype.json'), 'utf8')));
    assert.deepEqual(description.classNames, FASHION_MNIST_CLASS_NAMES);
    assert.deepEqual(description.mean, FASHION_MNIST_MEAN);
    assert.deepEqual(description.std, FASHION_MNIST_STD);
    assert.deepEqual(description.imageSize, [32, 32]);
    assert.equal(description.dataset, 'fashion-mnist-bundled');
    assert.equal(description.auxiliary, false);

    // The engine's logits from the same weights, batch by batch over the test split.
    const test = loadRunDataset({ dataset: 'fashion-mnist-bundled', data: null, split: 'test', limit: null });
    const network = new NetworkCIFAR({ genotype: description.genotype, channels: 4, layers: 3, classes: 10, inChannels: 1, auxiliary: false });
    loadModelWeights(network, readModelFile(join(run, 'best.safetensors')), 'best');
    let worst = { relMax: 0, relL2: 0, maxAbs: 0 };
    let correct = 0;
    const batch = 250;
    for (let start = 0; start < test.count; start += batch) {
      const indices = Int32Array.from({ length: Math.min(batch, test.count - start) }, (_, i) => start + i);
      const { x, labels } = datasetBatch(test, indices, NO_AUGMENTATION, new Random(0));
      const input = x.data.slice(0, x.numel);
      x.dispose();
      const shape: [number, number, number, number] = [indices.length, 1, 32, 32];
      const ours = engineLogits(network, input, shape);
      const theirs = await onnxLogits(out, input, shape);
      const d = difference(theirs, ours);
      worst = { relMax: Math.max(worst.relMax, d.relMax), relL2: Math.max(worst.relL2, d.relL2), maxAbs: Math.max(worst.maxAbs, d.maxAbs) };
      const top1 = argmaxRows(theirs, 10);
      assert.deepEqual(top1, argmaxRows(ours, 10), `top-1 differs in images ${start}..`);
      top1.forEach((k, i) => { if (k === labels[i]) correct += 1; });
    }
    disposeModule(network);
    console.log(`# trained run, ${test.count} test images: onnxruntime vs engine logits: worst batch max|diff|/max|ref| ${worst.relMax.toExponential(2)}, rel L2 ${worst.relL2.toExponential(2)}, max|diff| ${worst.maxAbs.toExponential(2)}; top-1 ${correct}/${test.count}`);
    assert.ok(worst.relMax <= 1e-4 && worst.relL2 <= 1e-4, JSON.stringify(worst));
    assert.ok(correct > 0.3 * test.count, `a trained network predicts more than one class (top-1 ${correct}/${test.count})`);

    const tested = await pcdarts('test', '--run', run, '--limit-test', String(test.count), '--json');
    assert.equal(tested.code, 0, tested.stderr);
    assert.equal(JSON.parse(tested.stdout).top1, correct / test.count, 'top-1 of the ONNX model equals pcdarts test');
  });

  it('defaults to ONNX in the run directory and exports the last checkpoint with --last', async () => {
    const copy = join(root, 'run-copy');
    cpSync(run, copy, { recursive: true });
    const result = await pcdarts('export', copy);
    assert.equal(result.code, 0, result.stderr);
    assert.ok(existsSync(join(copy, 'model.onnx')));
    const last = await pcdarts('export', '--run', copy, '--last', '--out', join(root, 'last.onnx'));
    assert.equal(last.code, 0, last.stderr);
    assert.match(last.stdout, /from .*run-copy\/checkpoint\n/);
  });

  it('exports a weights file given with --checkpoint (a run\'s best model) using the run it lies in, or on its own', async () => {
    const out = join(root, 'from-file.onnx');
    const result = await pcdarts('export', '--checkpoint', join(run, 'best.safetensors'), '--out', out);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(readFileSync(out), readFileSync(join(root, 'model.onnx')), 'the same bytes as the export of the run');
    // Outside its run, a best model still records its genotype and dataset.
    const copied = join(root, 'copied-best.safetensors');
    cpSync(join(run, 'best.safetensors'), copied);
    const alone = await pcdarts('export', copied, '--out', join(root, 'alone.onnx'));
    assert.equal(alone.code, 0, alone.stderr);
    assert.deepEqual(readFileSync(join(root, 'alone.onnx')), readFileSync(join(root, 'model.onnx')));
  });
});

describe('pcdarts export: bad input is one line, exit 2, nothing written, the run untouched', () => {
  let before_: Record<string, string>;
  const outputs = join(root, 'outputs');

  before(() => {
    mkdirSync(outputs);
    before_ = snapshot(run);
  });
  after(() => {
    assert.deepEqual(snapshot(run), before_, 'the run directory is untouched');
    assert.deepEqual(readdirSync(outputs), [], 'no output was written');
  });

  it('a search run: says to retrain first', async () => {
    const search = join(root, 'search');
    const searched = await pcdarts('search', '--epochs', '1', '--warmup-epochs', '0', '--limit-train', '64', '--batch-size', '32', '--layers', '2', '--init-channels', '4', '--threads', '2', '--out', search);
    assert.equal(searched.code, 0, searched.stderr);
    const snap = snapshot(search);
    assertBadInput(await pcdarts('export', search, '--out', join(outputs, 'm.onnx')), /^pcdarts export: .*search is a search run: .*retrain its genotype first \(pcdarts train --genotype .*search --out RUN_DIR\), then export RUN_DIR$/);
    assert.deepEqual(snapshot(search), snap);
  });

  it('a train run that is not trained yet (no checkpoint)', async () => {
    const fresh = join(root, 'fresh');
    mkdirSync(fresh);
    writeFileSync(join(fresh, 'config.json'), readFileSync(join(run, 'config.json')));
    assertBadInput(await pcdarts('export', fresh, '--out', join(outputs, 'm.onnx')), /^pcdarts export: .*fresh is not trained yet \(no checkpoint\): nothing to export; train it first \(pcdarts train --resume .*fresh\)$/);
    assert.deepEqual(readdirSync(fresh), ['config.json']);
  });

  it('a directory that is not a run, and a missing one', async () => {
    assertBadInput(await pcdarts('export', outputs, '--out', join(root, 'x.onnx')), /is not a run directory \(it has no config\.json\)$/);
    assertBadInput(await pcdarts('export', join(root, 'nope'), '--out', join(outputs, 'm.onnx')), /nope: no such run directory$/);
  });

  it('a missing checkpoint file', async () => {
    assertBadInput(await pcdarts('export', '--checkpoint', join(root, 'missing.safetensors'), '--out', join(outputs, 'm.onnx')), /^pcdarts export: --checkpoint .*missing\.safetensors: no such file$/);
  });

  it('a corrupt checkpoint: a truncated weights file, and a run checkpoint that fails its checksum', async () => {
    const truncated = join(root, 'truncated.safetensors');
    const best = readFileSync(join(run, 'best.safetensors'));
    writeFileSync(truncated, best.subarray(0, 8 + Number(best.readBigUInt64LE(0)) + 5000));
    assertBadInput(await pcdarts('export', '--checkpoint', truncated, '--out', join(outputs, 'm.onnx')), /truncated\.safetensors: tensor '.*' data .* is truncated/);
    const garbage = join(root, 'garbage.safetensors');
    writeFileSync(garbage, 'not a safetensors file at all');
    assertBadInput(await pcdarts('export', '--checkpoint', garbage, '--out', join(outputs, 'm.onnx')), /garbage\.safetensors: (truncated|not a safetensors file)/);

    const corrupt = join(root, 'corrupt');
    cpSync(run, corrupt, { recursive: true });
    // The latest checkpoint's tensor file (the previous one is kept too).
    const tensorFile = readdirSync(join(corrupt, 'checkpoint')).filter((name) => name.startsWith('tensors-')).sort().at(-1)!;
    const bytes = readFileSync(join(corrupt, 'checkpoint', tensorFile));
    bytes[bytes.length - 1] ^= 0xff;
    writeFileSync(join(corrupt, 'checkpoint', tensorFile), bytes);
    const snap = snapshot(corrupt);
    assertBadInput(await pcdarts('export', corrupt, '--last', '--out', join(outputs, 'm.onnx')), /tensors-\d+\.safetensors: corrupt: .* checksum do not match/);
    assert.deepEqual(snapshot(corrupt), snap);
  });

  it('an unknown format', async () => {
    assertBadInput(await pcdarts('export', run, '--format', 'tflite', '--out', join(outputs, 'm.tflite')), /^pcdarts export: --format tflite: unknown format, expected one of onnx, pytorch, web$/);
  });

  it('an output path that cannot be written: a missing folder, a directory, a file as folder, a run\'s own file', async () => {
    assertBadInput(await pcdarts('export', run, '--out', join(root, 'no-such-folder', 'm.onnx')), /--out .*no-such-folder\/m\.onnx: the folder .*no-such-folder does not exist \(export creates no folders\)$/);
    assert.ok(!existsSync(join(root, 'no-such-folder')));
    assertBadInput(await pcdarts('export', run, '--out', outputs), /--out .*outputs is a directory: give a file name/);
    assertBadInput(await pcdarts('export', run, '--out', join(run, 'config.json', 'm.onnx')), /config\.json is not a folder$/);
    assertBadInput(await pcdarts('export', run, '--out', join(run, 'config.json')), /would replace a file of the run directory/);
    assertBadInput(await pcdarts('export', run, '--out', join(run, 'checkpoint', 'state.json')), /would replace a file of the run directory/);
  });

  it('a weights file without a genotype, and one of another architecture than --genotype says', async () => {
    const bare = join(root, 'bare.safetensors');
    // A plain state dict: the model. entries of a run checkpoint without the prefix or metadata.
    const convert = await pcdarts('export', run, '--format', 'pytorch', '--out', join(root, 'with-meta.safetensors'));
    assert.equal(convert.code, 0, convert.stderr);
    const withMeta = readFileSync(join(root, 'with-meta.safetensors'));
    const headerLength = Number(withMeta.readBigUInt64LE(0));
    const header = JSON.parse(withMeta.subarray(8, 8 + headerLength).toString('utf8'));
    delete header.__metadata__;
    let text = JSON.stringify(header);
    while ((8 + Buffer.byteLength(text)) % 8 !== 0) text += ' ';
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(Buffer.byteLength(text)));
    writeFileSync(bare, Buffer.concat([length, Buffer.from(text), withMeta.subarray(8 + headerLength)]));
    assertBadInput(await pcdarts('export', '--checkpoint', bare, '--out', join(outputs, 'm.onnx')), /bare\.safetensors records no genotype: give the architecture with --genotype/);
    assertBadInput(await pcdarts('export', '--checkpoint', bare, '--genotype', run, '--out', join(outputs, 'm.onnx')), /bare\.safetensors records no dataset: say which one it was trained on with --dataset/);
    assertBadInput(await pcdarts('export', '--checkpoint', bare, '--genotype', 'DARTS_V2', '--dataset', 'fashion-mnist-bundled', '--out', join(outputs, 'm.onnx')), /does not match this model|has shape/);
    assertBadInput(await pcdarts('export', '--checkpoint', bare, '--genotype', run, '--dataset', 'cifar10', '--out', join(outputs, 'm.onnx')), /takes 1-channel images, cifar10 has 3 channels$/);
    // With everything given it exports, and to the same bytes as the run's export.
    const ok = await pcdarts('export', '--checkpoint', bare, '--genotype', run, '--dataset', 'fashion-mnist-bundled', '--out', join(root, 'bare.onnx'));
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(readFileSync(join(root, 'bare.onnx')), readFileSync(join(root, 'model.onnx')));
  });
});
