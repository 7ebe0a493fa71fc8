/**
 * `pcdarts predict` as a library call: the top classes, with softmax probabilities, of image
 * files under a trained network. The network is either
 * - a train run directory or a weights file (.safetensors), run by pcdarts's own engine
 *   (resolved exactly as `pcdarts export` resolves it), or
 * - an exported .onnx model, run by onnxruntime-node (an optional dependency, loaded only
 *   here) with everything else (class names, image size, mean/std, dataset) read from its
 *   metadata_props.
 * Images go through the evaluation transform of the model's dataset (image-input.ts). Every
 * image is decoded before anything runs, so an undecodable one is a one-line RunInputError
 * naming it, and nothing is printed.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';

import { asInputErrors, oneLine, RunInputError } from '../run/errors.js';
import { noGrad } from '../tensor/autograd.js';
import { fromArray, tidy } from '../tensor/tensor.js';
import { type ModelSourceOptions, resolveTrainedModel, withTrainedNetwork } from './export-model.js';
import { imageInput, type InputTransform, inputTransform } from './image-input.js';
import { type ModelDescription, parseDescriptionMetadata } from './metadata.js';
import { decodeOnnxModel, ONNX_INPUT_NAME, ONNX_OUTPUT_NAME, onnxMetadata } from './onnx.js';

export interface ClassScore {
  /** Class index (the network's output). */
  index: number;
  name: string;
  probability: number;
  logit: number;
}

export interface ImagePrediction {
  file: string;
  /** The best `top` classes, most probable first (ties: the lower index first). */
  top: ClassScore[];
}

export interface PredictResult {
  /** What ran: 'pcdarts' (the engine, on a run's or file's weights) or 'onnxruntime' (a .onnx file). */
  runtime: 'pcdarts' | 'onnxruntime';
  /** The weights or model file. */
  model: string;
  description: ModelDescription;
  transform: InputTransform;
  predictions: ImagePrediction[];
  /** The logits of every image, image after image (classes each). */
  logits: Float32Array;
}

export interface PredictOptions extends ModelSourceOptions {
  /** An exported .onnx model instead of a run or weights file. */
  onnx?: string;
  images: string[];
  /** Classes per image (default 5, at most the number of classes). */
  top?: number;
  /** Images per forward pass of the engine (default 16). */
  batchSize?: number;
}

/** Softmax of one row (float64), highest first, the `top` best. */
export function topClasses(logits: ArrayLike<number>, classNames: readonly string[], top: number): ClassScore[] {
  let max = -Infinity;
  for (let k = 0; k < logits.length; k++) max = Math.max(max, logits[k]);
  let sum = 0;
  const exps = Array.from({ length: logits.length }, (_, k) => {
    const e = Math.exp(logits[k] - max);
    sum += e;
    return e;
  });
  const scores = exps.map((e, index) => ({ index, name: classNames[index], probability: e / sum, logit: logits[index] }));
  scores.sort((a, b) => b.logit - a.logit || a.index - b.index);
  return scores.slice(0, top);
}

/** Reads and decodes every image (the model's input transform), in order; a bad file is a RunInputError naming it. */
export async function readImageInputs(files: readonly string[], transform: InputTransform): Promise<Float32Array> {
  const per = transform.channels * transform.size * transform.size;
  const out = new Float32Array(files.length * per);
  for (const [i, file] of files.entries()) {
    if (!existsSync(file)) throw new RunInputError(`${file}: no such image file`);
    if (statSync(file).isDirectory()) throw new RunInputError(`${file} is a directory: give image files`);
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(readFileSync(file));
    } catch (error) {
      throw new RunInputError(`${file}: cannot read (${oneLine(error)})`);
    }
    try {
      out.set(await imageInput(bytes, transform), i * per);
    } catch (error) {
      throw new RunInputError(`${file}: cannot decode the image (${oneLine(error)}): expected a readable .jpg .jpeg .png .webp .bmp .tif image`);
    }
  }
  return out;
}

type OnnxRuntime = typeof import('onnxruntime-node');

/** onnxruntime-node, or a RunInputError saying how to install it. */
export async function loadOnnxRuntime(): Promise<OnnxRuntime> {
  try {
    const module = await import('onnxruntime-node');
    return ((module as { default?: OnnxRuntime }).default ?? module) as OnnxRuntime;
  } catch (error) {
    throw new RunInputError(`running a .onnx model needs the optional package onnxruntime-node, which is not installed or does not load here (${oneLine(error)}): npm install onnxruntime-node, or give the train run directory instead`);
  }
}

/** The description an exported model carries; a file that is not a pcdarts ONNX export is a RunInputError. */
export function readOnnxDescription(path: string): { bytes: Uint8Array; description: ModelDescription } {
  if (!existsSync(path)) throw new RunInputError(`${path}: no such model file`);
  if (statSync(path).isDirectory()) throw new RunInputError(`${path} is a directory, not a .onnx file`);
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(path));
  } catch (error) {
    throw new RunInputError(`${path}: cannot read (${oneLine(error)})`);
  }
  const model = asInputErrors(() => decodeOnnxModel(bytes, path));
  const metadata = onnxMetadata(model);
  if (metadata.format !== 'pcdarts-onnx' || metadata.class_names === undefined) {
    throw new RunInputError(`${path}: not a pcdarts ONNX export (its metadata_props have no class names, image size and normalisation): export it with pcdarts export RUN_DIR --format onnx`);
  }
  return { bytes, description: asInputErrors(() => parseDescriptionMetadata(metadata, path)) };
}

function predictions(files: readonly string[], logits: Float32Array, description: ModelDescription, top: number): ImagePrediction[] {
  const classes = description.classes;
  return files.map((file, i) => ({ file, top: topClasses(logits.subarray(i * classes, (i + 1) * classes), description.classNames, top) }));
}

function checkTop(top: number | undefined, classes: number): number {
  const value = top ?? 5;
  if (!Number.isInteger(value) || value < 1) throw new RunInputError(`--top: expected an integer >= 1, got ${value}`);
  return Math.min(value, classes);
}

/** Runs the model on the images; see the file comment. */
export async function predictImages(options: PredictOptions): Promise<PredictResult> {
  if (options.images.length === 0) throw new RunInputError('give at least one image file');
  if (options.onnx !== undefined) {
    const { bytes, description } = readOnnxDescription(options.onnx);
    const top = checkTop(options.top, description.classes);
    const transform = asInputErrors(() => inputTransform(description), options.onnx);
    const x = await readImageInputs(options.images, transform);
    const ort = await loadOnnxRuntime();
    let session: Awaited<ReturnType<OnnxRuntime['InferenceSession']['create']>>;
    try {
      session = await ort.InferenceSession.create(bytes);
    } catch (error) {
      throw new RunInputError(`${options.onnx}: onnxruntime cannot load it (${oneLine(error)})`);
    }
    try {
      const shape = [options.images.length, transform.channels, transform.size, transform.size];
      const result = await session.run({ [ONNX_INPUT_NAME]: new ort.Tensor('float32', x, shape) });
      const logits = Float32Array.from(result[ONNX_OUTPUT_NAME].data as Float32Array);
      return { runtime: 'onnxruntime', model: options.onnx, description, transform, predictions: predictions(options.images, logits, description, top), logits };
    } finally {
      await session.release();
    }
  }

  const model = resolveTrainedModel(options);
  const { description } = model;
  const top = checkTop(options.top, description.classes);
  const transform = asInputErrors(() => inputTransform(description), model.source.weights);
  const x = await readImageInputs(options.images, transform);
  const batchSize = options.batchSize ?? 16;
  const per = transform.channels * transform.size * transform.size;
  const count = options.images.length;
  const logits = new Float32Array(count * description.classes);
  withTrainedNetwork(model.source, model.architecture, description, (network) => {
    for (let start = 0; start < count; start += batchSize) {
      const n = Math.min(batchSize, count - start);
      const batch = x.subarray(start * per, (start + n) * per);
      const out = noGrad(() => tidy(() => network.forward(fromArray(batch, [n, transform.channels, transform.size, transform.size])).logits.data.slice(0, n * description.classes)));
      logits.set(out, start * description.classes);
    }
  });
  return { runtime: 'pcdarts', model: model.source.weights, description, transform, predictions: predictions(options.images, logits, description, top), logits };
}
