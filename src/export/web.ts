/**
 * `pcdarts export --format web --out DIR`: a one-page classifier of a trained network, a
 * static folder that works offline, from file:// as from any static server:
 *
 *   DIR/index.html       the page: pick or drop an image, see the top-5 classes with
 *                        probabilities, and the drawings of the network's two cells
 *   DIR/classifier.js    its script (web-client.ts)
 *   DIR/model.onnx       the ONNX export (the same bytes as --format onnx)
 *   DIR/model.js         the same model as base64, for file:// (where a page cannot fetch)
 *   DIR/ort/             onnxruntime-web's WebAssembly build copied from node_modules
 *                        (ort.wasm.min.js, ort-wasm-simd-threaded.mjs and .wasm, its licence),
 *                        and embedded.js: the last two as script globals, for file://
 *   DIR/pcdarts-web.json what was exported (marks the folder as a pcdarts web export)
 *
 * DIR is created (its parent must exist) or must be empty or an earlier web export, which is
 * replaced; the files are written to a temporary sibling folder and renamed into place.
 */
import { accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';

import { CELL_TYPES, cellTitle, drawCellSvg, prefixSvgIds, svgSize } from '../viz/index.js';
import { CHECKPOINT_DIR } from '../run/checkpoint.js';
import { oneLine, RunInputError } from '../run/errors.js';
import { isRunDirectory } from '../run/run-dir.js';
import { genotypeLabel } from '../run/train-settings.js';
import { type ModelSourceOptions, resolveTrainedModel, withTrainedNetwork } from './export-model.js';
import { inputTransform } from './image-input.js';
import type { ModelDescription } from './metadata.js';
import { exportOnnx } from './onnx.js';
import { classifierPage, type WebModelInfo } from './web-client.js';

/** The folder a web export of a run goes to when --out is not given. */
export const DEFAULT_WEB_DIR = 'web';
const MANIFEST = 'pcdarts-web.json';
/** onnxruntime-web's files the page needs (dist/), and its licence. */
const ORT_FILES = ['ort.wasm.min.js', 'ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm'];

export interface WebExportResult {
  out: string;
  files: string[];
  bytes: number;
  weights: string;
  runDir: string | null;
  description: ModelDescription;
  unfinished: { epoch: number; epochs: number } | null;
  ortVersion: string;
}

/** onnxruntime-web's dist folder and version, or a RunInputError when it is not installed. */
function onnxruntimeWeb(): { dist: string; root: string; version: string } {
  try {
    const require = createRequire(import.meta.url);
    const dist = dirname(require.resolve('onnxruntime-web'));
    const root = dirname(dist);
    const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
    for (const file of ORT_FILES) if (!existsSync(join(dist, file))) throw new Error(`${file} is missing from ${dist}`);
    return { dist, root, version };
  } catch (error) {
    throw new RunInputError(`--format web needs the package onnxruntime-web (npm install onnxruntime-web): ${oneLine(error)}`);
  }
}

/**
 * Checks that `out` can become the page's folder: a new folder in an existing, writable
 * one, an empty folder, or an earlier web export; never a run directory or a folder in one's
 * checkpoint. Touches nothing.
 */
export function checkOutputFolder(out: string, flag = '--out'): void {
  if (out === '') throw new RunInputError(`${flag}: expected a folder name`);
  const path = resolve(out);
  if (existsSync(path)) {
    if (!statSync(path).isDirectory()) throw new RunInputError(`${flag} ${out} is a file: --format web writes a folder (give a new folder name)`);
    if (isRunDirectory(path)) throw new RunInputError(`${flag} ${out} is a run directory: give a folder for the page, e.g. ${join(out, DEFAULT_WEB_DIR)}`);
    const entries = readdirSync(path);
    if (entries.length > 0 && !entries.includes(MANIFEST)) {
      throw new RunInputError(`${flag} ${out} is not empty and not an earlier pcdarts web export: give a new or empty folder`);
    }
  }
  const parent = dirname(path);
  if (!existsSync(parent)) throw new RunInputError(`${flag} ${out}: the folder ${parent} does not exist (export creates only ${basename(path)} itself)`);
  if (!statSync(parent).isDirectory()) throw new RunInputError(`${flag} ${out}: ${parent} is not a folder`);
  if (basename(parent) === CHECKPOINT_DIR && isRunDirectory(dirname(parent))) {
    throw new RunInputError(`${flag} ${out} is inside the checkpoint of the run directory ${dirname(parent)}: choose another folder`);
  }
  try {
    accessSync(parent, constants.W_OK);
  } catch {
    throw new RunInputError(`${flag} ${out}: the folder ${parent} is not writable`);
  }
}

function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function inputSentence(info: WebModelInfo): string {
  const t = info.transform;
  const grey = t.channels === 1 ? 'turned grey, ' : '';
  if (t.kind === 'folder') return `${grey}short side resized to ${t.resize}, centre ${t.crop}x${t.crop} crop (the run's evaluation transform)`;
  const padded = t.pad > 0 ? `, ${t.pad} black pixels added on each side (${t.size}x${t.size})` : '';
  return `${grey}short side resized to ${t.resize}, centre ${t.crop}x${t.crop} crop${padded}; an image of exactly ${t.crop}x${t.crop} is taken as it is`;
}

async function pageHtml(description: ModelDescription, info: WebModelInfo, ortVersion: string): Promise<string> {
  const figures = await Promise.all(CELL_TYPES.map(async (cell) => {
    const drawing = await drawCellSvg(description.genotype, cell, { title: false });
    // Its half of the row, never enlarged past 80 % of its natural size (as the run report draws them).
    const style = `max-width: ${Math.round(svgSize(drawing).width * 0.8)}px`;
    const svg = prefixSvgIds(drawing.replace(/^<svg/, `<svg style="${style}"`), `cell-${cell}`);
    return `<figure class="cell" id="cell-${cell}" data-cell="${cell}">${svg}<figcaption>${escapeHtml(cellTitle(cell))}</figcaption></figure>`;
  }));
  const title = `${description.network} classifier (${description.dataset ?? 'pcdarts'})`;
  const json = JSON.stringify(info).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="pcdarts ${escapeHtml(description.pcdartsVersion)}">
<title>${escapeHtml(title)}</title>
<style>
  body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1100px; padding: 20px; color: #1d232a; }
  h1 { font-size: 22px; margin: 0 0 4px; }
  .note { color: #5a6570; font-size: 13px; margin: 2px 0; }
  .main { display: flex; gap: 24px; flex-wrap: wrap; margin: 16px 0; }
  #drop { flex: 0 0 300px; min-height: 260px; border: 2px dashed #9aa7b4; border-radius: 10px; display: flex; flex-direction: column;
    align-items: center; justify-content: center; gap: 10px; padding: 12px; text-align: center; }
  #drop.over { border-color: #2b6cb0; background: #eef5fc; }
  #preview { max-width: 256px; max-height: 256px; image-rendering: pixelated; background: #f1f3f5; }
  #result { flex: 1 1 420px; }
  #status { font-weight: 600; margin: 0 0 10px; }
  body[data-state="error"] #status { color: #b42318; }
  #top { list-style: none; padding: 0; margin: 0; }
  #top li { display: grid; grid-template-columns: 170px 1fr 80px; gap: 10px; align-items: center; margin: 6px 0; }
  #top .track { background: #e9edf1; border-radius: 4px; height: 14px; overflow: hidden; }
  #top .bar { display: block; height: 100%; background: #2b6cb0; }
  #top li:first-child .name { font-weight: 700; }
  #top .probability { text-align: right; font-variant-numeric: tabular-nums; }
  .cells { display: flex; gap: 20px; flex-wrap: wrap; align-items: flex-start; }
  .cell { margin: 0; flex: 1 1 420px; }
  .cell svg { width: 100%; height: auto; max-height: 520px; }
  figcaption { text-align: center; color: #5a6570; }
</style>
</head>
<body data-state="loading">
<h1>${escapeHtml(title)}</h1>
<p class="note">${escapeHtml(`${description.network}, C ${description.initChannels}, ${description.layers} cells, ${description.classes} classes; genotype ${genotypeLabel(description.genotype)}; exported by pcdarts ${description.pcdartsVersion}; runs in this page with onnxruntime-web ${ortVersion} (WebAssembly, nothing leaves the page).`)}</p>
<p class="note">${escapeHtml(`Input: ${inputSentence(info)}; normalised with mean ${JSON.stringify(info.transform.mean)}, std ${JSON.stringify(info.transform.std)}.`)}</p>
<div class="main">
  <div id="drop">
    <canvas id="preview" width="1" height="1"></canvas>
    <div>Drop an image here, or</div>
    <input id="file" type="file" accept="image/*">
  </div>
  <div id="result">
    <p id="status">Loading the model…</p>
    <ol id="top"></ol>
  </div>
</div>
<h2>The cells</h2>
<div class="cells">
${figures.join('\n')}
</div>
<script type="application/json" id="model-info">${json}</script>
<script src="ort/ort.wasm.min.js"></script>
<script src="classifier.js"></script>
</body>
</html>
`;
}

/** Writes the page of a run's (or weights file's) trained network; see the file comment. */
export async function exportWeb(options: ModelSourceOptions & { out?: string }): Promise<WebExportResult> {
  const out = options.out ?? (options.run !== undefined ? join(options.run, DEFAULT_WEB_DIR) : DEFAULT_WEB_DIR);
  if (options.out !== undefined) checkOutputFolder(out);
  const ortWeb = onnxruntimeWeb();
  const model = resolveTrainedModel({ ...options, checkpointFlag: '--checkpoint' });
  if (options.out === undefined) checkOutputFolder(out);
  const { description } = model;
  const transform = (() => {
    try {
      return inputTransform(description);
    } catch (error) {
      throw new RunInputError(`${model.source.weights}: ${oneLine(error)}`);
    }
  })();
  const onnx = withTrainedNetwork(model.source, model.architecture, description, (network) => exportOnnx(network, { description }));
  const info: WebModelInfo = { network: description.network, dataset: description.dataset, classNames: description.classNames, transform, top: 5 };
  const html = await pageHtml(description, info, ortWeb.version);

  const files = new Map<string, Uint8Array | string>();
  files.set('index.html', html);
  files.set('classifier.js', `// pcdarts one-page classifier (src/export/web-client.ts)\n'use strict';\n(${classifierPage.toString()})();\n`);
  files.set('model.onnx', onnx);
  files.set('model.js', `globalThis.PCDARTS_MODEL_BASE64 = "${Buffer.from(onnx).toString('base64')}";\n`);
  for (const file of ORT_FILES) files.set(`ort/${file}`, new Uint8Array(readFileSync(join(ortWeb.dist, file))));
  const licence = ['LICENSE', 'LICENSE.txt', 'ThirdPartyNotices.txt'].filter((name) => existsSync(join(ortWeb.root, name)));
  for (const name of licence) files.set(`ort/${name}`, new Uint8Array(readFileSync(join(ortWeb.root, name))));
  files.set('ort/embedded.js', [
    `// onnxruntime-web ${ortWeb.version}: ort-wasm-simd-threaded.mjs and .wasm as script globals, for pages opened from file://`,
    `globalThis.PCDARTS_ORT_GLUE = ${JSON.stringify(readFileSync(join(ortWeb.dist, 'ort-wasm-simd-threaded.mjs'), 'utf8'))};`,
    `globalThis.PCDARTS_ORT_WASM = "${readFileSync(join(ortWeb.dist, 'ort-wasm-simd-threaded.wasm')).toString('base64')}";`,
    '',
  ].join('\n'));
  files.set(MANIFEST, `${JSON.stringify({
    format: 'pcdarts-web', pcdarts_version: description.pcdartsVersion, onnxruntime_web: ortWeb.version, weights: model.source.weights,
    network: description.network, dataset: description.dataset, classes: description.classes, input: transform,
  }, null, 2)}\n`);

  // Write beside the target, then swap it in.
  const target = resolve(out);
  const temporary = join(dirname(target), `.${basename(target)}.tmp-${process.pid}`);
  const old = join(dirname(target), `.${basename(target)}.old-${process.pid}`);
  let bytes = 0;
  try {
    rmSync(temporary, { recursive: true, force: true });
    mkdirSync(temporary); // not recursive: the parent exists (checked), and a recursive mkdir can loop on a pseudo filesystem such as /proc
    mkdirSync(join(temporary, 'ort'));
    for (const [name, content] of files) {
      writeFileSync(join(temporary, name), content);
      bytes += typeof content === 'string' ? Buffer.byteLength(content) : content.length;
    }
    if (existsSync(target)) renameSync(target, old);
    renameSync(temporary, target);
    rmSync(old, { recursive: true, force: true });
  } catch (error) {
    rmSync(temporary, { recursive: true, force: true });
    if (existsSync(old) && !existsSync(target)) renameSync(old, target);
    throw new RunInputError(`--out ${out}: cannot write the page: ${oneLine(error)}`);
  }
  return {
    out, files: [...files.keys()], bytes, weights: model.source.weights, runDir: model.source.runDir, description,
    unfinished: model.source.unfinished, ortVersion: ortWeb.version,
  };
}
