/**
 * Evaluating a trained network (eval mode, no gradients, no augmentation) and loading its
 * weights from safetensors: what the training loop, `pcdarts test` and exports share.
 */
import { readFileSync } from 'node:fs';

import type { ImageDataset, PipelineOptions } from '../data/index.js';
import { type EvalNetwork } from '../eval/network.js';
import { readSafetensors, type SafetensorsTensor } from '../nn/safetensors.js';
import { noGrad } from '../tensor/autograd.js';
import * as ops from '../tensor/ops.js';
import { tidy } from '../tensor/tensor.js';
import { evaluationBatches, nextBatch } from './data.js';
import { asInputErrors, oneLine, RunInputError } from './errors.js';
import { countTopK, roundForLog } from './metrics.js';

// ------------------------------------------------------------------------------------------
// Evaluation

/** Accuracies (fractions) and mean cross-entropy (no label smoothing) over a set of images. */
export interface Evaluation {
  top1: number;
  top5: number;
  loss: number;
  images: number;
}

/**
 * Evaluates `network` on the images `indices` of `dataset` (all when absent): eval mode (no
 * drop path, no auxiliary head, batch-norm running statistics), no gradients, no augmentation.
 */
export function evaluateNetwork(
  network: EvalNetwork, dataset: ImageDataset,
  options: { batchSize: number; indices?: Int32Array; pipeline?: PipelineOptions; onBatch?: (imagesDone: number, images: number) => void },
): Evaluation {
  const indices = options.indices ?? Int32Array.from({ length: dataset.count }, (_, i) => i);
  if (indices.length === 0) throw new Error('evaluateNetwork: no images to evaluate');
  const source = evaluationBatches(dataset, indices, options.batchSize, options.pipeline);
  const wasTraining = network.training;
  let top1 = 0;
  let top5 = 0;
  let lossSum = 0;
  network.eval();
  try {
    noGrad(() => {
      for (let b = 0; b < source.batchesPerEpoch; b++) {
        tidy(() => {
          const { x, labels } = nextBatch(source);
          const { logits } = network.forward(x);
          top1 += countTopK(logits, labels, 1);
          top5 += countTopK(logits, labels, 5);
          lossSum += ops.crossEntropy(logits, labels).item() * labels.length;
        });
        options.onBatch?.(Math.min(indices.length, (b + 1) * options.batchSize), indices.length);
      }
    });
  } finally {
    source.close();
    network.train(wasTraining);
  }
  const n = indices.length;
  return { top1: top1 / n, top5: top5 / n, loss: lossSum / n, images: n };
}

/**
 * Loads a model's weights from checkpoint tensors: the `model.` entries of a run checkpoint,
 * or every entry of a plain state dict. The auxiliary head's weights are skipped when the
 * network has none (evaluation). Every other key must match, with the same shape: a
 * checkpoint of another architecture is a one-line RunInputError naming the first
 * mismatching key.
 */
export function loadModelWeights(network: EvalNetwork, tensors: Map<string, SafetensorsTensor>, source: string): void {
  const prefix = [...tensors.keys()].some((name) => name.startsWith('model.')) ? 'model.' : '';
  const expected = new Map(network.stateEntries().map((entry) => [entry.name, entry.tensor.shape]));
  const weights = new Map<string, ArrayLike<number>>();
  const shapes = new Map<string, readonly number[]>();
  for (const [name, t] of tensors) {
    if (!name.startsWith(prefix)) continue;
    const key = name.slice(prefix.length);
    if (network.auxiliaryHead === null && key.startsWith('auxiliary_head.')) continue;
    weights.set(key, t.values);
    shapes.set(key, t.shape);
  }
  // Keys first (missing, unexpected: loadState's message), then shapes, then the values.
  const sameKeys = weights.size === expected.size && [...weights.keys()].every((key) => expected.has(key));
  if (sameKeys) {
    for (const [key, shape] of expected) {
      const actual = shapes.get(key)!;
      if (shape.length !== actual.length || shape.some((d, i) => d !== actual[i])) {
        throw new RunInputError(`${source}: '${key}' has shape [${actual.join(', ')}], the model expects [${shape.join(', ')}]`);
      }
    }
  }
  asInputErrors(() => network.loadState(weights, { strict: true, what: source }));
}


/** An evaluation with its values rounded as the logs write them. */
export function roundEvaluation(result: Evaluation): Evaluation {
  return { top1: roundForLog(result.top1, 8), top5: roundForLog(result.top5, 8), loss: roundForLog(result.loss, 8), images: result.images };
}

/** The tensors of a safetensors file; a missing or unreadable file is a RunInputError. */
export function readModelFile(path: string, flag?: string): Map<string, SafetensorsTensor> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(path));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory, expected a .safetensors file' : oneLine(error);
    throw new RunInputError(`${flag === undefined ? '' : `${flag} `}${path}: ${reason}`);
  }
  return asInputErrors(() => readSafetensors(bytes, path));
}
