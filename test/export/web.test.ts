/**
 * `pcdarts export --format web` of a real tiny Fashion-MNIST train run, opened in headless
 * Chromium (playwright-core, /usr/bin/chromium) both from file:// and from a static server
 * on 127.0.0.1: a test image picked in the file input (file://) or dropped on the page
 * (server) shows the top-5 classes, whose first equals `pcdarts predict` on that image (the
 * run's engine and the .onnx), with probabilities within 1e-5; the page loads nothing from
 * anywhere else and draws both cells. The file:// screenshot is kept as a test artefact,
 * artifacts/web-classifier.png under the repository root. Also: what the folder holds, a
 * re-export over an earlier one, and bad output folders as one line and exit 2.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';

import { type Browser, chromium, type Page } from 'playwright-core';
import sharp from 'sharp';

import { IMAGENET_MEAN, IMAGENET_STD } from '../../src/data/index.js';
import { NetworkImageNet } from '../../src/eval/network.js';
import { decodeOnnxModel, exportPytorch, imageInput, inputTransform, networkArchitecture, onnxMetadata } from '../../src/export/index.js';
import { setBackend } from '../../src/kernels/registry.js';
import { disposeModule } from '../../src/nn/layers.js';
import { manualSeed } from '../../src/tensor/random.js';
import { pattern, storedWithOrientation } from '../data/image-fixture.js';
import { EVERY_OPERATION, randomizeBatchNorms } from './helpers.js';
import { loadRunDataset } from '../../src/run/data.js';
import { assertBadInput, pcdarts } from '../cli/process.js';

const CHROMIUM = process.env['PCDARTS_CHROMIUM'] ?? '/usr/bin/chromium';
const REPOSITORY = fileURLToPath(new URL('../../../', import.meta.url)); // from dist/test/export
const ARTIFACTS = join(REPOSITORY, 'artifacts');
const skip = !existsSync(CHROMIUM) && process.env['CI'] === undefined ? `no Chromium at ${CHROMIUM} (.ci/run installs it)` : false;

const SMALL = [
  '--limit-train', '480', '--valid-portion', '0.2', '--limit-test', '50', '--batch-size', '24', '--epochs', '2', '--lr', '0.1',
  '--no-cutout', '--no-auxiliary', '--init-channels', '4', '--layers', '3', '--threads', '2',
];

const root = mkdtempSync(join(tmpdir(), 'pcdarts-web-'));
const run = join(root, 'run');
const page = join(root, 'page');
const images: string[] = [];

interface Shown { state: string; status: string; file: string | null; top: { index: number; name: string; probability: number; text: string }[] }
interface PredictJson { images: { top: { class: string; index: number; probability: number }[] }[] }

before(async () => {
  const trained = await pcdarts('train', ...SMALL, '--out', run);
  assert.equal(trained.code, 0, trained.stderr);
  // Test images 0 and 1 as the 28x28 greyscale PNGs of the dataset.
  const test = loadRunDataset({ dataset: 'fashion-mnist-bundled', data: null, split: 'test', limit: null });
  for (let i = 0; i < 2; i++) {
    const raw = Buffer.alloc(28 * 28);
    for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) raw[y * 28 + x] = test.images[i * 1024 + (y + 2) * 32 + x + 2];
    const file = join(root, `test-${i}.png`);
    writeFileSync(file, await sharp(raw, { raw: { width: 28, height: 28, channels: 1 } }).png().toBuffer());
    images.push(file);
  }
});
after(() => rmSync(root, { recursive: true, force: true }));

async function predicted(model: string, image: string): Promise<PredictJson['images'][number]['top']> {
  const result = await pcdarts('predict', model, image, '--json', '--threads', '2');
  assert.equal(result.code, 0, result.stderr);
  return (JSON.parse(result.stdout) as PredictJson).images[0].top;
}

async function shown(p: Page): Promise<Shown> {
  await p.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state ?? ''), null, { timeout: 120_000 });
  return p.evaluate(() => ({
    state: document.body.dataset.state ?? '',
    status: document.getElementById('status')!.textContent ?? '',
    file: document.getElementById('result')!.dataset.file ?? null,
    top: [...document.querySelectorAll<HTMLLIElement>('#top li')].map((li) => ({
      index: Number(li.dataset.index), name: li.querySelector('.name')!.textContent ?? '', probability: Number(li.dataset.probability),
      text: li.querySelector('.probability')!.textContent ?? '',
    })),
  }));
}

async function assertMatchesPredict(result: Shown, image: string): Promise<void> {
  assert.equal(result.state, 'done', result.status);
  assert.equal(result.top.length, 5);
  for (const model of [run, join(page, 'model.onnx')]) {
    const expected = await predicted(model, image);
    assert.equal(result.top[0].index, expected[0].index, `the page's top class is pcdarts predict's (${model})`);
    assert.deepEqual(result.top.map((s) => s.name), expected.map((s) => s.class));
    const worst = Math.max(...result.top.map((s, k) => Math.abs(s.probability - expected[k].probability)));
    console.log(`# web page vs pcdarts predict ${model === run ? 'RUN_DIR (engine)' : 'model.onnx (onnxruntime-node)'} on ${image}: top ${result.top[0].name} ${(100 * result.top[0].probability).toFixed(2)} %, max |probability diff| ${worst.toExponential(2)}`);
    assert.ok(worst < 1e-5, `probabilities differ by ${worst}`);
  }
  result.top.forEach((s) => assert.equal(s.text, `${(100 * s.probability).toFixed(2)} %`));
}

/** A static server of `dir` on a free 127.0.0.1 port (what any static server does: files, MIME types). */
function serve(dir: string): Promise<{ server: Server; url: string }> {
  const types: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json' };
  const server = createServer((request, response) => {
    const path = normalize(decodeURIComponent(new URL(request.url ?? '/', 'http://x').pathname)).replace(/^(\.\.[/\\])+/, '');
    const file = join(dir, path.endsWith('/') ? `${path}index.html` : path);
    if (!file.startsWith(dir) || !existsSync(file)) {
      response.statusCode = 404;
      response.end();
      return;
    }
    response.setHeader('content-type', types[extname(file)] ?? 'application/octet-stream');
    response.end(readFileSync(file));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    resolve({ server, url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/` });
  }));
}

describe('pcdarts export --format web', () => {
  it('writes the page, the ONNX model (the bytes of --format onnx), onnxruntime-web\'s files and their file:// forms', async () => {
    const result = await pcdarts('export', run, '--format', 'web', '--out', page);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^export: wrote .*page\/ \(one-page classifier, \d+ files, [\d.]+ MB\): NetworkCIFAR C 4, 3 cells, 10 classes, .*onnxruntime-web 1\.\d+/);
    assert.deepEqual(readdirSync(page).sort(), ['classifier.js', 'index.html', 'model.js', 'model.onnx', 'ort', 'pcdarts-web.json']);
    assert.deepEqual(readdirSync(join(page, 'ort')).sort(), ['embedded.js', 'ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm', 'ort.wasm.min.js']);
    const onnx = join(root, 'model.onnx');
    assert.equal((await pcdarts('export', run, '--out', onnx)).code, 0);
    assert.deepEqual(readFileSync(join(page, 'model.onnx')), readFileSync(onnx));
    assert.equal(onnxMetadata(decodeOnnxModel(new Uint8Array(readFileSync(join(page, 'model.onnx'))))).dataset, 'fashion-mnist-bundled');
    const html = readFileSync(join(page, 'index.html'), 'utf8');
    assert.ok(!/https?:\/\//.test(html.replace(/xmlns(:xlink)?="http:\/\/www\.w3\.org\/[^"]*"/g, '')), 'no outside URL in the page');
    const manifest = JSON.parse(readFileSync(join(page, 'pcdarts-web.json'), 'utf8'));
    assert.equal(manifest.format, 'pcdarts-web');
    assert.deepEqual([manifest.input.kind, manifest.input.size], ['fashion-mnist', 32]);
  });

  describe('in headless Chromium', { skip, timeout: 600_000 }, () => {
    let browser: Browser;
    before(async () => {
      if (!existsSync(join(page, 'index.html'))) assert.equal((await pcdarts('export', run, '--format', 'web', '--out', page)).code, 0);
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      });
    });
    after(async () => { await browser?.close(); });

    it('from file://: a picked test image shows pcdarts predict\'s top class and probabilities; nothing loads from elsewhere; screenshot', async () => {
      const p = await browser.newPage({ viewport: { width: 1200, height: 900 } });
      const outside: string[] = [];
      const errors: string[] = [];
      p.on('request', (request) => { if (!/^(file|blob|data):/.test(request.url())) outside.push(request.url()); });
      p.on('pageerror', (error) => errors.push(error.message));
      await p.goto(pathToFileURL(join(page, 'index.html')).href);
      await p.waitForFunction(() => document.body.dataset.state !== 'loading', null, { timeout: 120_000 });
      assert.equal(await p.evaluate(() => document.body.dataset.state), 'ready', await p.locator('#status').textContent() ?? '');
      await p.setInputFiles('#file', images[0]);
      const result = await shown(p);
      assert.equal(result.file, 'test-0.png');
      await assertMatchesPredict(result, images[0]);
      const cells = await p.$$eval('figure.cell svg', (svgs) => svgs.map((svg) => svg.getBoundingClientRect()).map((b) => [b.width, b.height]));
      assert.equal(cells.length, 2);
      for (const [w, h] of cells) assert.ok(w > 50 && h > 50, `a cell drawn at ${w} x ${h}`);
      assert.ok((await p.locator('#cell-normal svg text').count()) > 4);
      assert.deepEqual(outside, []);
      assert.deepEqual(errors, []);
      mkdirSync(ARTIFACTS, { recursive: true });
      const screenshot = join(ARTIFACTS, 'web-classifier.png');
      await p.screenshot({ path: screenshot, fullPage: true });
      console.log(`# screenshot: ${screenshot} (file:// page, ${result.file}: ${result.top.map((s) => `${s.name} ${s.text}`).join(', ')})`);
      await p.close();
    });

    it('from a static server: a dropped image, the same; a file that is not an image is an error on the page', async () => {
      const { server, url } = await serve(page);
      try {
        const p = await browser.newPage();
        const outside: string[] = [];
        p.on('request', (request) => { if (!request.url().startsWith(url) && !/^(blob|data):/.test(request.url())) outside.push(request.url()); });
        await p.goto(url);
        await p.waitForFunction(() => document.body.dataset.state === 'ready', null, { timeout: 120_000 });
        const drop = async (name: string, bytes: Buffer, type: string): Promise<void> => {
          const data = await p.evaluateHandle(({ name, base64, type }) => {
            const binary = atob(base64);
            const array = Uint8Array.from(binary, (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([array], name, { type }));
            return transfer;
          }, { name, base64: bytes.toString('base64'), type });
          await p.dispatchEvent('#drop', 'drop', { dataTransfer: data });
        };
        await drop('test-1.png', readFileSync(images[1]), 'image/png');
        const result = await shown(p);
        assert.equal(result.file, 'test-1.png');
        await assertMatchesPredict(result, images[1]);
        await p.evaluate(() => { document.body.dataset.state = 'ready'; });
        await drop('notes.png', Buffer.from('not an image'), 'image/png');
        const failed = await shown(p);
        assert.equal(failed.state, 'error');
        assert.match(failed.status, /^notes\.png: cannot classify it/);
        assert.deepEqual(outside, []);
        await p.close();
      } finally {
        server.close();
      }
    });

    it('a colour model at 224 (the image-folder transform): resized and EXIF-rotated photos, resized by the browser, stay close to pcdarts predict', async () => {
      // A NetworkImageNet with random weights and batch-norm statistics, as a weights file that describes itself.
      setBackend('wasm', { threads: 2 });
      manualSeed(31);
      const network = new NetworkImageNet({ genotype: EVERY_OPERATION, channels: 8, layers: 4, classes: 5, auxiliary: false });
      randomizeBatchNorms(network, 9);
      const weights = join(root, 'imagenet.safetensors');
      writeFileSync(weights, exportPytorch(network, {
        ...networkArchitecture(network), imageSize: [224, 224], classNames: ['ant', 'bee', 'cow', 'dog', 'eel'],
        mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD], dataset: 'imagenet', pcdartsVersion: 'test',
      }));
      disposeModule(network);
      const colourPage = join(root, 'page-imagenet');
      const exported = await pcdarts('export', weights, '--format', 'web', '--out', colourPage);
      assert.equal(exported.code, 0, exported.stderr);
      const photos = [join(root, 'wide.jpg'), join(root, 'rotated.jpg')];
      writeFileSync(photos[0], await sharp(Buffer.from(pattern(300, 250, 7)), { raw: { width: 300, height: 250, channels: 3 } }).jpeg({ quality: 95 }).toBuffer());
      writeFileSync(photos[1], await storedWithOrientation(pattern(240, 330, 8), 240, 330, 6, 'jpeg'));
      const p = await browser.newPage();
      await p.goto(pathToFileURL(join(colourPage, 'index.html')).href);
      await p.waitForFunction(() => document.body.dataset.state === 'ready', null, { timeout: 120_000 });
      for (const photo of photos) {
        await p.evaluate(() => { document.body.dataset.state = 'ready'; });
        await p.setInputFiles('#file', photo);
        const result = await shown(p);
        assert.equal(result.state, 'done', result.status);
        // The browser's input against predict's (sharp): the same geometry and orientation, resampling a level or two apart.
        const ours = await imageInput(new Uint8Array(readFileSync(photo)), inputTransform({ dataset: 'imagenet', imageSize: [224, 224], inChannels: 3, mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD] }));
        const theirs = await p.evaluate(() => Array.from((globalThis as unknown as { pcdartsLastInput: Float32Array }).pcdartsLastInput));
        assert.equal(theirs.length, ours.length);
        let levels = 0;
        for (let i = 0; i < ours.length; i++) levels += Math.abs(theirs[i] - ours[i]) * IMAGENET_STD[Math.floor(i / (224 * 224))] * 255;
        levels /= ours.length;
        console.log(`# web page input vs pcdarts predict input on ${photo}: mean |diff| ${levels.toFixed(2)} of 255 levels`);
        assert.ok(levels < 3, `the page's input differs by ${levels.toFixed(2)} levels on average`);
        const expected = await predicted(weights, photo);
        const worst = Math.max(...result.top.map((s) => Math.abs(s.probability - expected.find((e) => e.index === s.index)!.probability)));
        const margin = expected[0].probability - expected[1].probability;
        console.log(`# web page (browser resize) vs pcdarts predict (sharp) on ${photo}: top ${result.top[0].name} / ${expected[0].class}, max |probability diff| ${worst.toExponential(2)} (predict's top-2 margin ${margin.toFixed(3)})`);
        assert.ok(worst < 0.02, `probabilities differ by ${worst}`);
        if (margin > 0.04) assert.equal(result.top[0].index, expected[0].index);
      }
      await p.close();
    });
  });

  it('replaces an earlier web export; bad output folders and sources are one line, exit 2, nothing written', async () => {
    const again = await pcdarts('export', run, '--format', 'web', '--out', page);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(readdirSync(root).filter((name) => name.startsWith('.page.')), [], 'no temporary folder left');
    const taken = join(root, 'taken');
    mkdirSync(taken);
    writeFileSync(join(taken, 'notes.txt'), 'mine');
    assertBadInput(await pcdarts('export', run, '--format', 'web', '--out', taken), /--out .*taken is not empty and not an earlier pcdarts web export: give a new or empty folder$/);
    assert.deepEqual(readdirSync(taken), ['notes.txt']);
    assertBadInput(await pcdarts('export', run, '--format', 'web', '--out', images[0]), /--out .*test-0\.png is a file: --format web writes a folder/);
    assertBadInput(await pcdarts('export', run, '--format', 'web', '--out', join(root, 'no-such', 'page')), /the folder .*no-such does not exist \(export creates only page itself\)$/);
    assert.ok(!existsSync(join(root, 'no-such')));
    assertBadInput(await pcdarts('export', run, '--format', 'web', '--out', run), /--out .*run is a run directory: give a folder for the page/);
    assertBadInput(await pcdarts('export', run, '--format', 'web', '--out', '/proc/pcdarts-page'), /^pcdarts export: --out \/proc\/pcdarts-page: (the folder \/proc is not writable|cannot write the page)/);
    const fresh = join(root, 'fresh');
    mkdirSync(fresh);
    writeFileSync(join(fresh, 'config.json'), readFileSync(join(run, 'config.json')));
    assertBadInput(await pcdarts('export', fresh, '--format', 'web', '--out', join(root, 'never')), /fresh is not trained yet \(no checkpoint\)/);
    assert.ok(!existsSync(join(root, 'never')));
  });
});
