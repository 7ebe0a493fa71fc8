/**
 * `pcdarts predict` as a user runs it, on a real tiny Fashion-MNIST `pcdarts train` run: test
 * images written as the 28x28 greyscale PNGs the dataset is made of decode to exactly the
 * test split's input tensor (padding and normalisation included); the run directory's
 * prediction is the engine's logits on that tensor, bit for bit; the exported .onnx run by
 * onnxruntime-node gives them within 1e-4 relative and the same classes; the text and JSON
 * outputs; what a colour photo becomes; and every kind of bad input as one line and exit 2
 * with nothing on stdout.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import sharp from 'sharp';

import { evaluationGeometry, FASHION_MNIST_CLASS_NAMES, FASHION_MNIST_MEAN, FASHION_MNIST_STD, NO_AUGMENTATION } from '../../src/data/index.js';
import { NetworkCIFAR } from '../../src/eval/network.js';
import { imageInput, inputTransform, resizeCropGeometry, topClasses } from '../../src/export/index.js';
import { setBackend } from '../../src/kernels/registry.js';
import { disposeModule } from '../../src/nn/layers.js';
import { datasetBatch, loadRunDataset } from '../../src/run/data.js';
import { loadModelWeights, readModelFile } from '../../src/run/evaluate.js';
import { Random } from '../../src/tensor/random.js';
import { assertBadInput, pcdarts } from '../cli/process.js';
import { argmaxRows, difference, engineLogits } from './helpers.js';

const SMALL = [
  '--limit-train', '480', '--valid-portion', '0.2', '--limit-test', '50', '--batch-size', '24', '--epochs', '2', '--lr', '0.1',
  '--no-cutout', '--no-auxiliary', '--init-channels', '4', '--layers', '3', '--threads', '2',
];
const IMAGES = 8;

const root = mkdtempSync(join(tmpdir(), 'pcdarts-predict-'));
after(() => rmSync(root, { recursive: true, force: true }));
const run = join(root, 'run');
const onnx = join(root, 'model.onnx');
const files = Array.from({ length: IMAGES }, (_, i) => join(root, `test-${i}.png`));

interface PredictJson {
  model: string; runtime: string; network: string; dataset: string;
  input: { kind: string; channels: number; size: number; resize: number; crop: number; pad: number };
  images: { file: string; top: { class: string; index: number; probability: number; logit: number }[] }[];
}

let input: Float32Array;
let labels: Int32Array;

before(async () => {
  setBackend('wasm', { threads: 2 });
  const trained = await pcdarts('train', ...SMALL, '--out', run);
  assert.equal(trained.code, 0, trained.stderr);
  const exported = await pcdarts('export', run, '--out', onnx);
  assert.equal(exported.code, 0, exported.stderr);
  // The first test images as the 28x28 greyscale files Fashion-MNIST is made of (the loader pads them to 32x32).
  const test = loadRunDataset({ dataset: 'fashion-mnist-bundled', data: null, split: 'test', limit: null });
  for (const [i, file] of files.entries()) {
    const padded = test.images.subarray(i * 32 * 32, (i + 1) * 32 * 32);
    const raw = Buffer.alloc(28 * 28);
    for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) raw[y * 28 + x] = padded[(y + 2) * 32 + x + 2];
    writeFileSync(file, await sharp(raw, { raw: { width: 28, height: 28, channels: 1 } }).png().toBuffer());
  }
  const batch = datasetBatch(test, Int32Array.from({ length: IMAGES }, (_, i) => i), NO_AUGMENTATION, new Random(0));
  input = batch.x.data.slice(0, batch.x.numel);
  labels = batch.labels;
  batch.x.dispose();
});

function engineOnTestImages(): Float32Array {
  const genotype = JSON.parse(readFileSync(join(run, 'genotype.json'), 'utf8'));
  const network = new NetworkCIFAR({ genotype, channels: 4, layers: 3, classes: 10, inChannels: 1, auxiliary: false });
  try {
    loadModelWeights(network, readModelFile(join(run, 'best.safetensors')), 'best');
    return engineLogits(network, input, [IMAGES, 1, 32, 32]);
  } finally {
    disposeModule(network);
  }
}

function logitsOf(result: PredictJson): Float32Array {
  const out = new Float32Array(result.images.length * 10);
  result.images.forEach((image, i) => image.top.forEach((s) => { out[i * 10 + s.index] = s.logit; }));
  return out;
}

describe('pcdarts predict', () => {
  it('decodes a Fashion-MNIST test image file to exactly the test split\'s input (grey, padded 28 -> 32, normalised)', async () => {
    const transform = inputTransform({ dataset: 'fashion-mnist-bundled', imageSize: [32, 32], inChannels: 1, mean: [...FASHION_MNIST_MEAN], std: [...FASHION_MNIST_STD] });
    assert.deepEqual([transform.kind, transform.resize, transform.crop, transform.pad, transform.size], ['fashion-mnist', 28, 28, 2, 32]);
    for (const [i, file] of files.entries()) {
      const x = await imageInput(new Uint8Array(readFileSync(file)), transform);
      assert.deepEqual(x, input.subarray(i * 1024, (i + 1) * 1024), `image ${i}`);
    }
  });

  it('a run directory gives the engine\'s logits bit for bit; the exported .onnx gives them within 1e-4 and the same classes', async () => {
    const ours = engineOnTestImages();
    const fromRun = await pcdarts('predict', run, ...files, '--top', '10', '--json', '--threads', '2');
    assert.equal(fromRun.code, 0, fromRun.stderr);
    const runJson = JSON.parse(fromRun.stdout) as PredictJson;
    assert.equal(runJson.runtime, 'pcdarts');
    assert.match(runJson.model, /best\.safetensors$/);
    assert.deepEqual(runJson.input, { kind: 'fashion-mnist', channels: 1, size: 32, resize: 28, crop: 28, pad: 2, mean: FASHION_MNIST_MEAN, std: FASHION_MNIST_STD });
    assert.deepEqual(runJson.images.map((image) => image.file), files);
    assert.deepEqual(logitsOf(runJson), ours);

    const fromOnnx = await pcdarts('predict', onnx, ...files, '--top', '10', '--json');
    assert.equal(fromOnnx.code, 0, fromOnnx.stderr);
    const onnxJson = JSON.parse(fromOnnx.stdout) as PredictJson;
    assert.equal(onnxJson.runtime, 'onnxruntime');
    const d = difference(logitsOf(onnxJson), ours);
    console.log(`# predict on ${IMAGES} Fashion-MNIST test files: onnxruntime vs engine logits max|diff| ${d.maxAbs.toExponential(2)}, max|diff|/max|ref| ${d.relMax.toExponential(2)}`);
    assert.ok(d.relMax <= 1e-4, JSON.stringify(d));
    const top1 = argmaxRows(ours, 10);
    assert.deepEqual(onnxJson.images.map((image) => image.top[0].index), top1);
    assert.deepEqual(runJson.images.map((image) => image.top[0].index), top1);
    for (const image of onnxJson.images) {
      const p = image.top.map((s) => s.probability);
      assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-12, 'probabilities of all classes sum to 1');
      assert.ok(p.every((v, k) => k === 0 || v <= p[k - 1]), 'most probable first');
      assert.deepEqual([...image.top.map((s) => s.class)].sort(), [...FASHION_MNIST_CLASS_NAMES].sort());
    }
    const correct = top1.filter((k, i) => k === labels[i]).length;
    console.log(`# predict: ${correct}/${IMAGES} of the files get their test label`);
  });

  it('prints the top 5 (default) as text; --top above the class count shows every class', async () => {
    const result = await pcdarts('predict', onnx, files[0], files[1]);
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 2 * 6);
    assert.equal(lines[0], files[0]);
    assert.equal(lines[6], files[1]);
    const expected = JSON.parse((await pcdarts('predict', onnx, files[0], '--json')).stdout) as PredictJson;
    expected.images[0].top.forEach((s, k) => {
      assert.match(lines[1 + k], new RegExp(`^ +${k + 1}\\. ${s.class.replace(/[/]/g, '\\/')} +${(100 * s.probability).toFixed(s.probability >= 0.9995 || s.probability < 0.0005 ? 1 : 2)} %$`));
    });
    const all = JSON.parse((await pcdarts('predict', onnx, files[0], '--top', '50', '--json')).stdout) as PredictJson;
    assert.equal(all.images[0].top.length, 10);
  });

  it('turns a colour photo of any size into the network\'s input: grey, short side 28, centre crop, padded', async () => {
    const photo = join(root, 'photo.jpg');
    // Left half red, right half white, 120 x 60: the centre 60 x 60 of it becomes 28 x 28.
    const rgb = Buffer.alloc(120 * 60 * 3);
    for (let y = 0; y < 60; y++) for (let x = 0; x < 120; x++) rgb.set(x < 60 ? [255, 0, 0] : [255, 255, 255], 3 * (y * 120 + x));
    writeFileSync(photo, await sharp(rgb, { raw: { width: 120, height: 60, channels: 3 } }).png().toBuffer());
    const transform = inputTransform({ dataset: 'fashion-mnist', imageSize: [32, 32], inChannels: 1, mean: [0], std: [1] });
    const x = await imageInput(new Uint8Array(readFileSync(photo)), transform);
    const at = (row: number, col: number): number => Math.round(x[row * 32 + col] * 255);
    assert.equal(at(0, 0), 0, 'padding is black');
    assert.equal(at(16, 31), 0);
    assert.equal(at(16, 3), 76, 'red becomes its luma (Pillow: 0.299 * 255)');
    assert.equal(at(16, 28), 255, 'white stays white');
    const result = await pcdarts('predict', run, photo, '--json', '--threads', '2');
    assert.equal(result.code, 0, result.stderr);
    assert.equal((JSON.parse(result.stdout) as PredictJson).images[0].top.length, 5);
  });

  it('uses the evaluation geometry of image folders and resizes CIFAR-sized colour input by its short side', () => {
    for (const [w, h] of [[500, 375], [224, 224], [300, 1000], [257, 256]]) {
      const ours = resizeCropGeometry(w, h, 256, 224);
      assert.deepEqual(ours, evaluationGeometry(w, h, 224));
    }
    const folder = inputTransform({ dataset: 'imagenet', imageSize: [224, 224], inChannels: 3, mean: [0, 0, 0], std: [1, 1, 1] });
    assert.deepEqual([folder.kind, folder.resize, folder.crop], ['folder', 256, 224]);
    const cifar = inputTransform({ dataset: 'cifar10', imageSize: [32, 32], inChannels: 3, mean: [0, 0, 0], std: [1, 1, 1] });
    assert.deepEqual([cifar.kind, cifar.resize, cifar.crop, cifar.pad], ['fit', 32, 32, 0]);
    assert.deepEqual(resizeCropGeometry(64, 48, 32, 32), { resizeWidth: 42, resizeHeight: 32, crop: { top: 0, left: 5, height: 32, width: 32 } });
    const scores = topClasses([1, 3, 3, -1], ['a', 'b', 'c', 'd'], 3);
    assert.deepEqual(scores.map((s) => s.name), ['b', 'c', 'a'], 'ties: the lower index first');
  });
});

describe('pcdarts predict: bad input is one line, exit 2, nothing on stdout', () => {
  const bad = async (args: string[], pattern: RegExp): Promise<void> => {
    const result = await pcdarts('predict', ...args);
    assertBadInput(result, pattern);
    assert.equal(result.stdout, '');
  };

  it('a search run, a train run that is not trained, a directory that is not a run', async () => {
    const search = join(root, 'search');
    const searched = await pcdarts('search', '--epochs', '1', '--warmup-epochs', '0', '--limit-train', '64', '--batch-size', '32', '--layers', '2', '--init-channels', '4', '--threads', '2', '--out', search);
    assert.equal(searched.code, 0, searched.stderr);
    await bad([search, files[0]], /^pcdarts predict: .*search is a search run: .*retrain its genotype first/);
    const fresh = join(root, 'fresh');
    mkdirSync(fresh);
    writeFileSync(join(fresh, 'config.json'), readFileSync(join(run, 'config.json')));
    await bad([fresh, files[0]], /^pcdarts predict: .*fresh is not trained yet \(no checkpoint\)/);
    await bad([join(root, 'nope'), files[0]], /nope: no such run directory$/);
  });

  it('a missing or corrupt checkpoint, a missing or corrupt .onnx, an .onnx that is not a pcdarts export', async () => {
    await bad([join(root, 'missing.onnx'), files[0]], /^pcdarts predict: .*missing\.onnx: no such model file$/);
    const garbage = join(root, 'garbage.safetensors');
    writeFileSync(garbage, 'not a safetensors file at all');
    await bad([garbage, files[0]], /garbage\.safetensors: (truncated|not a safetensors file)/);
    const corrupt = join(root, 'corrupt');
    cpSync(run, corrupt, { recursive: true });
    rmSync(join(corrupt, 'best.safetensors'));
    const checkpoint = join(corrupt, 'checkpoint');
    const tensorFile = (await import('node:fs')).readdirSync(checkpoint).filter((name) => name.startsWith('tensors-')).sort().at(-1)!; // the latest checkpoint's
    const bytes = readFileSync(join(checkpoint, tensorFile));
    bytes[bytes.length - 1] ^= 0xff;
    writeFileSync(join(checkpoint, tensorFile), bytes);
    await bad([corrupt, files[0]], /tensors-\d+\.safetensors: corrupt: .* checksum do not match/);
    const cut = join(root, 'cut.onnx');
    const model = readFileSync(onnx);
    writeFileSync(cut, model.subarray(0, Math.floor(model.length / 2)));
    await bad([cut, files[0]], /^pcdarts predict: .*cut\.onnx: not an ONNX model/);
    const foreign = join(root, 'foreign.onnx');
    writeFileSync(foreign, Buffer.from([0x08, 0x07])); // a ModelProto with ir_version 7 and nothing else
    await bad([foreign, files[0]], /foreign\.onnx: not a pcdarts ONNX export/);
  });

  it('an image that cannot be decoded, a truncated one, a missing one, a folder; bad flags', async () => {
    const text = join(root, 'notes.png');
    writeFileSync(text, 'not an image');
    await bad([onnx, files[0], text], /^pcdarts predict: .*notes\.png: cannot decode the image \(.*\): expected a readable \.jpg/);
    await bad([run, text, '--threads', '2'], /notes\.png: cannot decode the image/);
    const jpeg = await sharp({ create: { width: 64, height: 64, channels: 3, background: { r: 9, g: 90, b: 200 } } }).jpeg().toBuffer();
    const truncated = join(root, 'cut.jpg');
    writeFileSync(truncated, jpeg.subarray(0, Math.floor(jpeg.length * 0.6)));
    await bad([onnx, truncated], /cut\.jpg: cannot decode the image/);
    await bad([onnx, join(root, 'absent.png')], /absent\.png: no such image file$/);
    await bad([onnx, root], /is a directory: give image files$/);
    await bad([onnx, files[0], '--top', '0'], /--top: expected an integer >= 1, got 0$/);
    await bad([onnx, files[0], '--genotype', 'DARTS_V2'], /is an ONNX model: it records its own architecture/);
    await bad([onnx], /missing required argument 'images'/);
  });
});
