/**
 * What the export tests share: a genotype that uses every operation (both strides, `none`
 * included), networks with non-trivial weights and batch-norm statistics, logits of the
 * engine in eval mode, onnxruntime-node sessions, and error measures.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

import ort from 'onnxruntime-node';

import '../../src/index.js'; // registers the kernel backends

import { type Genotype, validateGenotype } from '../../src/darts/genotype.js';
import type { EvalNetwork } from '../../src/eval/network.js';
import { noGrad } from '../../src/tensor/autograd.js';
import { Random } from '../../src/tensor/random.js';
import { fromArray, tidy } from '../../src/tensor/tensor.js';

/**
 * Every primitive at least once in each cell, reductions with `none`, `skip_connect`
 * (FactorizedReduce) and both pools at stride 2, and a normal cell that does not concat all
 * of its nodes.
 */
export const EVERY_OPERATION: Genotype = validateGenotype({
  normal: [
    ['sep_conv_3x3', 0], ['none', 1], ['sep_conv_5x5', 1], ['dil_conv_3x3', 2],
    ['dil_conv_5x5', 0], ['avg_pool_3x3', 3], ['max_pool_3x3', 1], ['skip_connect', 4],
  ],
  normal_concat: [2, 4, 5],
  reduce: [
    ['skip_connect', 0], ['avg_pool_3x3', 1], ['max_pool_3x3', 0], ['none', 1],
    ['sep_conv_3x3', 1], ['dil_conv_5x5', 3], ['dil_conv_3x3', 0], ['sep_conv_5x5', 4],
  ],
  reduce_concat: [2, 3, 4, 5],
});

/**
 * Gives every batch norm random affine parameters and running statistics (a fresh network
 * has gamma 1, beta 0, mean 0, var 1, which would hide a swapped or ignored tensor).
 */
export function randomizeBatchNorms(network: EvalNetwork, seed: number): void {
  const random = new Random(seed);
  for (const entry of network.stateEntries()) {
    const values = entry.tensor.data.subarray(0, entry.tensor.numel);
    const fill = (f: () => number): void => { for (let i = 0; i < values.length; i++) values[i] = f(); };
    if (entry.name.endsWith('running_mean')) fill(() => random.uniformRange(-0.3, 0.3));
    else if (entry.name.endsWith('running_var')) fill(() => random.uniformRange(0.4, 1.6));
    else if (entry.name.endsWith('num_batches_tracked')) fill(() => 7);
    else if (entry.tensor.shape.length === 1 && !entry.name.startsWith('classifier') && !entry.name.includes('.classifier.')) {
      fill(() => (entry.name.endsWith('.bias') ? random.uniformRange(-0.2, 0.2) : random.uniformRange(0.7, 1.3)));
    }
  }
}

/** N(0, 1) images. */
export function randomImages(count: number, channels: number, height: number, width: number, seed: number): Float32Array {
  const random = new Random(seed);
  return Float32Array.from({ length: count * channels * height * width }, () => random.normal());
}

/** The engine's eval-mode logits of a batch [N, C, H, W]. */
export function engineLogits(network: EvalNetwork, x: Float32Array, shape: [number, number, number, number]): Float32Array {
  network.eval();
  return noGrad(() => tidy(() => network.forward(fromArray(x, shape)).logits.data.slice(0, shape[0] * network.config.classes)));
}

/** Logits of an ONNX model (bytes or file) from onnxruntime-node's CPU provider. */
export async function onnxLogits(model: Uint8Array | string, x: Float32Array, shape: readonly number[]): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(model as Uint8Array);
  try {
    const result = await session.run({ input: new ort.Tensor('float32', x, shape) });
    assert.deepEqual(result.logits.dims.slice(0, 1), [shape[0]]);
    return result.logits.data as Float32Array;
  } finally {
    await session.release();
  }
}

export interface Difference {
  /** max |a - b| / max |b| */
  relMax: number;
  /** ||a - b|| / ||b|| */
  relL2: number;
  maxAbs: number;
}

export function difference(actual: ArrayLike<number>, expected: ArrayLike<number>): Difference {
  assert.equal(actual.length, expected.length);
  let maxAbs = 0;
  let maxRef = 0;
  let d2 = 0;
  let r2 = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = actual[i] - expected[i];
    maxAbs = Math.max(maxAbs, Math.abs(d));
    maxRef = Math.max(maxRef, Math.abs(expected[i]));
    d2 += d * d;
    r2 += expected[i] * expected[i];
  }
  return { relMax: maxAbs / maxRef, relL2: Math.sqrt(d2 / r2), maxAbs };
}

/** Index of the largest logit of each row. */
export function argmaxRows(logits: ArrayLike<number>, classes: number): number[] {
  const out: number[] = [];
  for (let row = 0; row * classes < logits.length; row++) {
    let best = 0;
    for (let k = 1; k < classes; k++) if (logits[row * classes + k] > logits[row * classes + best]) best = k;
    out.push(best);
  }
  return out;
}

/** Debian's interpreter with torch (python3-torch), or null when torch is not installed. */
export function pythonWithTorch(): string | null {
  const python = process.env.PCDARTS_PYTHON || (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
  const probe = spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore' });
  return probe.status === 0 ? python : null;
}

/** An interpreter with the official onnx package (Debian's python3-onnx), or null. */
export function pythonWithOnnx(): string | null {
  const python = process.env.PCDARTS_PYTHON || (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
  const probe = spawnSync(python, ['-c', 'import onnx'], { stdio: 'ignore' });
  return probe.status === 0 ? python : null;
}

/**
 * Runs the official ONNX checker on a file (onnx.checker.check_model with full_check: the
 * operator schemas and strict shape inference) and returns the inferred output shape.
 */
export function onnxChecker(python: string, path: string): { version: string; output: (string | number)[] } {
  const script = [
    'import json, sys, onnx',
    'm = onnx.load(sys.argv[1])',
    'onnx.checker.check_model(m, full_check=True)',
    'inferred = onnx.shape_inference.infer_shapes(m, strict_mode=True)',
    'dims = [d.dim_param or d.dim_value for d in inferred.graph.output[0].type.tensor_type.shape.dim]',
    'print(json.dumps({"version": onnx.__version__, "output": dims}))',
  ].join('\n');
  const result = spawnSync(python, ['-c', script, path], { encoding: 'utf8' });
  assert.equal(result.status, 0, `onnx.checker rejected ${path}: ${result.stderr}`);
  return JSON.parse(result.stdout) as { version: string; output: (string | number)[] };
}

/** Runs test/export/pytorch_interop.py; returns its JSON line. */
export function pytorchInterop(python: string, script: string, command: 'check' | 'save', config: unknown): Record<string, unknown> {
  const result = spawnSync(python, [script, command, JSON.stringify(config)], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' } });
  assert.equal(result.status, 0, `pytorch_interop.py ${command} failed: ${result.stderr}`);
  return JSON.parse(result.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
}
