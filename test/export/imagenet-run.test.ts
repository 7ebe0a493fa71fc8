/**
 * Export of a real ImageNet-network training run: `pcdarts train --network imagenet` on an
 * image folder made with sharp (3 classes told apart by colour, JPEG and PNG files of various
 * sizes), 224x224 centre crops at C 8, auxiliary head on. On every validation image, taken
 * through the run's own evaluation pipeline (resize 256, centre crop 224, decode workers):
 * - the ONNX export run by onnxruntime-node gives the engine's logits within 1e-4 relative and
 *   the same top-1, whose accuracy is `pcdarts test`'s;
 * - `pcdarts predict` on the run directory gives the engine's logits bit for bit (its decode is
 *   the pipeline's), and on the .onnx the same classes;
 * - the PyTorch export loads with strict=True into the authors' module tree and gives the
 *   engine's logits within 1e-4 (where python3-torch is installed).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import sharp from 'sharp';

import { closeDecodePool, isImageFolder } from '../../src/data/index.js';
import { NetworkImageNet } from '../../src/eval/network.js';
import { setBackend } from '../../src/kernels/registry.js';
import { disposeModule } from '../../src/nn/layers.js';
import { writeSafetensors } from '../../src/nn/safetensors.js';
import { readCheckpoint } from '../../src/run/checkpoint.js';
import { evaluationBatches, loadRunDataset, nextBatch } from '../../src/run/data.js';
import { loadModelWeights } from '../../src/run/evaluate.js';
import { Random } from '../../src/tensor/random.js';
import { pcdarts } from '../cli/process.js';
import { argmaxRows, difference, engineLogits, onnxLogits, pythonWithTorch, pytorchInterop } from './helpers.js';

const SCRIPT = fileURLToPath(new URL('../../../test/export/pytorch_interop.py', import.meta.url)); // from dist/test/export
const python = pythonWithTorch();

const root = mkdtempSync(join(tmpdir(), 'pcdarts-export-imagenet-'));
after(async () => {
  await closeDecodePool();
  rmSync(root, { recursive: true, force: true });
});
const DATA = join(root, 'photos');
const run = join(root, 'run');
const CLASSES = ['amber', 'moss', 'sky'];
const TRAIN = [
  'train', '--genotype', 'PC_DARTS_image', '--network', 'imagenet', '--dataset', 'imagefolder', '--data', DATA, '--image-size', '224',
  '--init-channels', '8', '--layers', '3', '--epochs', '4', '--lr', '0.1', '--batch-size', '6', '--threads', '2', '--out', run,
];

/**
 * An image of a class: stripes across (amber), stripes down (moss) or flat (sky), each in its
 * own colour with noise, `width` x `height` (orientation and colour survive the training
 * augmentation's crops, flips and jitter well enough to learn in a few steps).
 */
function classImage(c: number, width: number, height: number, seed: number): Buffer {
  const random = new Random(seed);
  const base = [[200, 120, 20], [60, 150, 40], [70, 130, 220]][c];
  const rgb = Buffer.alloc(width * height * 3);
  const period = 20 + random.int(20);
  const phase = random.uniform() * 2 * Math.PI;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const t = c === 0 ? y : c === 1 ? x : 0;
      const shade = c === 2 ? 0 : 90 * Math.sin(phase + (2 * Math.PI * t) / period);
      for (let k = 0; k < 3; k++) rgb[3 * (y * width + x) + k] = Math.max(0, Math.min(255, Math.round(base[k] + shade + 30 * (random.uniform() - 0.5))));
    }
  }
  return rgb;
}

async function makeFolder(): Promise<void> {
  const random = new Random(3);
  for (const [split, count] of [['train', 8], ['val', 4]] as const) {
    for (const [c, name] of CLASSES.entries()) {
      for (let i = 0; i < count; i++) {
        const width = 224 + random.int(120);
        const height = 224 + random.int(120);
        const image = sharp(classImage(c, width, height, 100 * c + i + (split === 'val' ? 50 : 0)), { raw: { width, height, channels: 3 } });
        const file = join(DATA, split, name, `${i}.${i % 2 === 0 ? 'jpg' : 'png'}`);
        mkdirSync(dirname(file), { recursive: true });
        writeFileSync(file, await (i % 2 === 0 ? image.jpeg({ quality: 92 }) : image.png()).toBuffer());
      }
    }
  }
}

let input: Float32Array;
let labels: Int32Array;
let files: string[];
let engine: Float32Array;

before(async () => {
  setBackend('wasm', { threads: 2 });
  await makeFolder();
  const trained = await pcdarts(...TRAIN);
  assert.equal(trained.code, 0, trained.stderr);

  // The validation split through the run's evaluation pipeline, and the engine's logits on it.
  const test = loadRunDataset({ dataset: 'imagefolder', data: DATA, split: 'test', limit: null, imageSize: 224 });
  assert.ok(isImageFolder(test));
  files = test.files.map((file) => join(test.root, file));
  const source = evaluationBatches(test, Int32Array.from({ length: test.count }, (_, i) => i), test.count, { workers: 2 });
  const batch = nextBatch(source);
  source.close();
  input = batch.x.data.slice(0, batch.x.numel);
  labels = batch.labels;
  batch.x.dispose();
  const checkpoint = readCheckpoint<unknown>(run)!;
  const genotype = JSON.parse(readFileSync(join(run, 'genotype.json'), 'utf8'));
  const network = new NetworkImageNet({ genotype, channels: 8, layers: 3, classes: 3, auxiliary: false });
  try {
    loadModelWeights(network, checkpoint.tensors, 'checkpoint');
    engine = engineLogits(network, input, [files.length, 3, 224, 224]);
  } finally {
    disposeModule(network);
  }
});

describe('export of a trained NetworkImageNet run (224x224 image folder)', () => {
  it('ONNX: onnxruntime-node logits within 1e-4 relative of the engine, the same top-1 on every validation image, pcdarts test\'s accuracy', async () => {
    const out = join(root, 'model.onnx');
    const exported = await pcdarts('export', run, '--out', out);
    assert.equal(exported.code, 0, exported.stderr);
    assert.match(exported.stdout, /NetworkImageNet C 8, 3 cells, 3 classes/);
    const theirs = await onnxLogits(out, input, [files.length, 3, 224, 224]);
    const d = difference(theirs, engine);
    console.log(`# trained NetworkImageNet run (C 8, 3 cells, 224x224), ${files.length} validation images: onnxruntime vs engine logits max|diff| ${d.maxAbs.toExponential(2)}, max|diff|/max|ref| ${d.relMax.toExponential(2)}, rel L2 ${d.relL2.toExponential(2)}`);
    assert.ok(d.relMax <= 1e-4 && d.relL2 <= 1e-4, JSON.stringify(d));
    const top1 = argmaxRows(engine, 3);
    assert.deepEqual(argmaxRows(theirs, 3), top1);
    const correct = top1.filter((k, i) => k === labels[i]).length;
    const tested = await pcdarts('test', '--run', run, '--json', '--threads', '2');
    assert.equal(tested.code, 0, tested.stderr);
    assert.equal(JSON.parse(tested.stdout).top1, correct / files.length, 'top-1 of the ONNX model equals pcdarts test');
    console.log(`# trained NetworkImageNet run: top-1 ${correct}/${files.length}`);
    assert.ok(new Set(top1).size > 1, 'the trained network predicts more than one class');
  });

  it('predict: the run directory gives the pipeline\'s logits bit for bit, the .onnx the same classes', async () => {
    const fromRun = await pcdarts('predict', run, ...files, '--top', '3', '--json', '--threads', '2');
    assert.equal(fromRun.code, 0, fromRun.stderr);
    const runJson = JSON.parse(fromRun.stdout) as { input: { kind: string; resize: number; crop: number }; images: { top: { index: number; logit: number }[] }[] };
    assert.deepEqual([runJson.input.kind, runJson.input.resize, runJson.input.crop], ['folder', 256, 224]);
    const logits = new Float32Array(files.length * 3);
    runJson.images.forEach((image, i) => image.top.forEach((s) => { logits[3 * i + s.index] = s.logit; }));
    assert.deepEqual(logits, engine);
    const fromOnnx = await pcdarts('predict', join(root, 'model.onnx'), ...files, '--json');
    assert.equal(fromOnnx.code, 0, fromOnnx.stderr);
    const onnxJson = JSON.parse(fromOnnx.stdout) as { images: { top: { index: number }[] }[] };
    assert.deepEqual(onnxJson.images.map((image) => image.top[0].index), argmaxRows(engine, 3));
  });

  it('PyTorch: the export (auxiliary head included) loads with strict=True and gives the engine\'s logits within 1e-4', { skip: python === null ? 'PyTorch is not installed (apt-get install python3-torch)' : false }, async () => {
    const out = join(root, 'model.safetensors');
    const exported = await pcdarts('export', run, '--format', 'pytorch', '--out', out);
    assert.equal(exported.code, 0, exported.stderr);
    assert.match(exported.stdout, /auxiliary head included/);
    const inputs = join(root, 'inputs.safetensors');
    writeFileSync(inputs, writeSafetensors([
      ['x', { dtype: 'F32', shape: [files.length, 3, 224, 224], values: input }], ['logits', { dtype: 'F32', shape: [files.length, 3], values: engine }],
    ]));
    const checked = pytorchInterop(python!, SCRIPT, 'check', { weights: out, inputs });
    const relMax = (checked.max_abs_diff as number) / (checked.max_abs_ref as number);
    console.log(`# trained NetworkImageNet run: PyTorch vs engine logits max|diff| ${(checked.max_abs_diff as number).toExponential(2)}, max|diff|/max|ref| ${relMax.toExponential(2)}`);
    assert.equal(checked.network, 'NetworkImageNet');
    assert.ok(relMax <= 1e-4 && (checked.rel_l2 as number) <= 1e-4, JSON.stringify(checked));
    assert.equal(checked.argmax_equal, true);
  });
});
