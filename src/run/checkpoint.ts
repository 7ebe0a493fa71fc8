/**
 * Checkpoints of a run: tensors in one safetensors file, everything else (position, random
 * generator and sampler states, log lengths) in JSON.
 *
 *   DIR/checkpoint/tensors-<serial>.safetensors   weights, buffers, optimiser state, ...
 *   DIR/checkpoint/state.json                     {serial, tensors: {file, bytes, sha256}, state}
 *
 * Commit protocol (a SIGKILL or power cut at any moment leaves the last good checkpoint
 * loadable): write the tensors under a NEW name (temporary file, fsync, rename, fsync the
 * folder), then replace state.json the same way: state.json is the commit marker and names
 * its tensor file. Only after that are older tensor files deleted. A crash before the
 * state.json rename leaves the previous state.json pointing at the previous, intact file.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

import type { Module } from '../nn/module.js';
import type { OptimizerState } from '../nn/optim.js';
import { readSafetensors, type SafetensorsInput, type SafetensorsTensor, writeSafetensors } from '../nn/safetensors.js';
import type { Tensor } from '../tensor/tensor.js';
import { RunInputError } from './errors.js';
import { removeTemporaryFiles, writeFileAtomic } from './files.js';

export const CHECKPOINT_DIR = 'checkpoint';
export const CHECKPOINT_STATE_FILE = 'state.json';

const TENSOR_FILE_PATTERN = /^tensors-(\d+)\.safetensors$/;

export interface CheckpointContent<State> {
  readonly tensors: Iterable<[string, SafetensorsInput]>;
  /** JSON-serialisable state. */
  readonly state: State;
}

export interface LoadedCheckpoint<State> {
  readonly serial: number;
  readonly written: string;
  readonly tensors: Map<string, SafetensorsTensor>;
  readonly state: State;
}

interface StateFile<State> {
  readonly pcdarts_checkpoint: 1;
  readonly serial: number;
  readonly written: string;
  readonly tensors: { readonly file: string; readonly bytes: number; readonly sha256: string };
  readonly state: State;
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function readStateFile<State>(runDir: string): StateFile<State> | null {
  const path = join(runDir, CHECKPOINT_DIR, CHECKPOINT_STATE_FILE);
  if (!existsSync(path)) return null;
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new RunInputError(`${path}: corrupt checkpoint state (${(error as Error).message})`);
  }
  const file = value as Partial<StateFile<State>>;
  if (value === null || typeof value !== 'object' || file.pcdarts_checkpoint !== 1 || !Number.isInteger(file.serial)
    || typeof file.tensors?.file !== 'string' || !TENSOR_FILE_PATTERN.test(file.tensors.file)) {
    throw new RunInputError(`${path}: not a pcdarts checkpoint state`);
  }
  return file as StateFile<State>;
}

/** True when the run has a committed checkpoint. */
export function hasCheckpoint(runDir: string): boolean {
  return existsSync(join(runDir, CHECKPOINT_DIR, CHECKPOINT_STATE_FILE));
}

/** Writes a checkpoint with the commit protocol above; returns its serial number. */
export function writeCheckpoint<State>(runDir: string, content: CheckpointContent<State>): number {
  const dir = join(runDir, CHECKPOINT_DIR);
  mkdirSync(dir, { recursive: true });
  const previous = readStateFile<State>(runDir);
  const serial = (previous?.serial ?? 0) + 1;
  const tensorFile = `tensors-${String(serial).padStart(6, '0')}.safetensors`;
  const bytes = writeSafetensors(content.tensors, { format: 'pcdarts-checkpoint' });
  writeFileAtomic(join(dir, tensorFile), bytes);
  const stateFile: StateFile<State> = {
    pcdarts_checkpoint: 1, serial, written: new Date().toISOString(),
    tensors: { file: tensorFile, bytes: bytes.length, sha256: sha256(bytes) },
    state: content.state,
  };
  writeFileAtomic(join(dir, CHECKPOINT_STATE_FILE), `${JSON.stringify(stateFile)}\n`);
  // Committed: older tensor files and debris of interrupted writes can go.
  for (const name of readdirSync(dir)) {
    if (TENSOR_FILE_PATTERN.test(name) && name !== tensorFile) rmSync(join(dir, name), { force: true });
  }
  removeTemporaryFiles(dir);
  return serial;
}

/** Reads the committed checkpoint, or null when there is none; corruption is a RunInputError. */
export function readCheckpoint<State>(runDir: string): LoadedCheckpoint<State> | null {
  const stateFile = readStateFile<State>(runDir);
  if (stateFile === null) return null;
  const path = join(runDir, CHECKPOINT_DIR, stateFile.tensors.file);
  if (!existsSync(path)) throw new RunInputError(`${path}: missing (named by ${CHECKPOINT_DIR}/${CHECKPOINT_STATE_FILE})`);
  const bytes = new Uint8Array(readFileSync(path));
  if (bytes.length !== stateFile.tensors.bytes || sha256(bytes) !== stateFile.tensors.sha256) {
    throw new RunInputError(`${path}: corrupt: ${bytes.length} bytes / checksum do not match the ${stateFile.tensors.bytes} bytes recorded in ${CHECKPOINT_STATE_FILE}`);
  }
  let tensors: Map<string, SafetensorsTensor>;
  try {
    tensors = readSafetensors(bytes, path);
  } catch (error) {
    throw new RunInputError((error as Error).message);
  }
  return { serial: stateFile.serial, written: stateFile.written, tensors, state: stateFile.state };
}

// ------------------------------------------------------------------------------------------
// Converting the pieces of a training state to and from named tensors.

/** Parameters and buffers of a module (batch-norm statistics included), keys prefixed. */
export function moduleTensors(prefix: string, module: Module): [string, SafetensorsInput][] {
  return module.stateEntries().map((e) => [`${prefix}${e.name}`, {
    dtype: e.dtype, shape: e.tensor.shape, values: e.tensor.data.subarray(0, e.tensor.numel),
  }]);
}

/** Loads what `moduleTensors(prefix, module)` saved; every key must be present. */
export function loadModuleTensors(prefix: string, module: Module, tensors: Map<string, SafetensorsTensor>): void {
  const source = new Map<string, ArrayLike<number>>();
  for (const [name, t] of tensors) if (name.startsWith(prefix)) source.set(name.slice(prefix.length), t.values);
  module.loadState(source, { strict: true, what: 'checkpoint' });
}

/** Named free-standing tensors (e.g. architecture parameters). */
export function namedTensors(prefix: string, entries: readonly [string, Tensor][]): [string, SafetensorsInput][] {
  return entries.map(([name, t]) => [`${prefix}${name}`, { dtype: 'F32', shape: t.shape, values: t.data.subarray(0, t.numel) }]);
}

export function loadNamedTensors(prefix: string, entries: readonly [string, Tensor][], tensors: Map<string, SafetensorsTensor>): void {
  for (const [name, t] of entries) {
    const saved = tensors.get(`${prefix}${name}`);
    if (!saved) throw new RunInputError(`checkpoint: tensor '${prefix}${name}' missing`);
    if (saved.values.length !== t.numel) throw new RunInputError(`checkpoint: '${prefix}${name}' has ${saved.values.length} values, expected ${t.numel}`);
    t.data.set(saved.values);
  }
}

/** An optimiser's state dict as tensors (Float64 entries stay F64, e.g. Adam's step count). */
export function optimizerTensors(prefix: string, state: OptimizerState): [string, SafetensorsInput][] {
  return [...state].map(([name, values]) => [`${prefix}${name}`, {
    dtype: values instanceof Float64Array ? 'F64' : 'F32', shape: [values.length], values,
  }]);
}

export function optimizerStateFrom(prefix: string, tensors: Map<string, SafetensorsTensor>): OptimizerState {
  const state: OptimizerState = new Map();
  for (const [name, t] of tensors) {
    if (!name.startsWith(prefix)) continue;
    state.set(name.slice(prefix.length), t.values instanceof Float64Array ? t.values : Float32Array.from(t.values));
  }
  return state;
}
