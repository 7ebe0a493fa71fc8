/**
 * Checkpoints of a run: tensors in one safetensors file, everything else (position, random
 * generator and sampler states, log lengths) in JSON.
 *
 *   DIR/checkpoint/tensors-<serial>.safetensors   weights, buffers, optimiser state, ...
 *   DIR/checkpoint/state.json                     the latest: {serial, tensors: {file, bytes, sha256}, state, self_sha256}
 *   DIR/checkpoint/previous.json                  the one before, in the same form, with its tensor file kept
 *
 * Commit protocol (a SIGKILL or power cut at any moment leaves the last good checkpoint
 * loadable): write the tensors under a NEW name (temporary file, fsync, rename, fsync the
 * folder), copy the last good state file to previous.json, then replace state.json the same
 * way: state.json is the commit marker and names its tensor file. Only after that are tensor
 * files that neither state file names deleted. A crash before the state.json rename leaves the
 * previous state.json pointing at the previous, intact file.
 *
 * Integrity: each state file records the size and sha256 of its tensor file and the sha256 of
 * its own content (`self_sha256`, over the JSON without that field). A resume that finds the
 * latest checkpoint damaged (a flipped byte, a truncation, a missing file) falls back to
 * previous.json and says so (`fallback`); when both are bad it is a RunInputError and nothing
 * is touched.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

import type { Module } from '../nn/module.js';
import type { OptimizerState } from '../nn/optim.js';
import { readSafetensors, type SafetensorsInput, type SafetensorsTensor, writeSafetensors } from '../nn/safetensors.js';
import type { Tensor } from '../tensor/tensor.js';
import { oneLine, RunInputError } from './errors.js';
import { removeTemporaryFiles, writeFailure, writeFileAtomic } from './files.js';
import { testPoint } from './test-hooks.js';

export const CHECKPOINT_DIR = 'checkpoint';
export const CHECKPOINT_STATE_FILE = 'state.json';
export const CHECKPOINT_PREVIOUS_FILE = 'previous.json';

const TENSOR_FILE_PATTERN = /^tensors-(\d+)\.safetensors$/;

export interface CheckpointContent<State> {
  readonly tensors: Iterable<[string, SafetensorsInput]>;
  /** JSON-serialisable state. */
  readonly state: State;
}

/** A checkpoint known to be complete: what the next write keeps as previous.json. */
export interface CommittedCheckpoint {
  readonly serial: number;
  /** The exact text of its state file. */
  readonly stateText: string;
}

export interface LoadedCheckpoint<State> extends CommittedCheckpoint {
  readonly written: string;
  readonly tensors: Map<string, SafetensorsTensor>;
  readonly state: State;
  /** Set when the latest checkpoint was damaged and this is the previous one. */
  readonly fallback: { readonly file: string; readonly reason: string } | null;
}

interface StateFile<State> {
  readonly pcdarts_checkpoint: 1;
  readonly serial: number;
  readonly written: string;
  readonly tensors: { readonly file: string; readonly bytes: number; readonly sha256: string };
  readonly state: State;
  /** sha256 of this JSON without the field (absent in checkpoints of older versions). */
  readonly self_sha256?: string;
}

function sha256(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** A state file's text with its own checksum as the last field. */
function stateFileText<State>(file: Omit<StateFile<State>, 'self_sha256'>): string {
  const body = JSON.stringify(file);
  return `${body.slice(0, -1)},"self_sha256":"${sha256(body)}"}\n`;
}

/** Parses and checks a state file's text; throws an Error saying what is wrong. */
function parseStateFile<State>(text: string): StateFile<State> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Error(`corrupt checkpoint state (${oneLine(error)})`);
  }
  const file = value as Partial<StateFile<State>>;
  if (value === null || typeof value !== 'object' || file.pcdarts_checkpoint !== 1 || !Number.isInteger(file.serial)
    || typeof file.tensors?.file !== 'string' || !TENSOR_FILE_PATTERN.test(file.tensors.file)
    || !Number.isInteger(file.tensors.bytes) || typeof file.tensors.sha256 !== 'string') {
    throw new Error('not a pcdarts checkpoint state');
  }
  if (file.self_sha256 !== undefined) {
    const { self_sha256: recorded, ...rest } = file;
    if (recorded !== sha256(JSON.stringify(rest))) throw new Error('corrupt checkpoint state (its self_sha256 does not match its content)');
  }
  return file as StateFile<State>;
}

interface Candidate<State> {
  readonly name: string;
  readonly path: string;
  readonly text: string | null;
}

function candidate<State>(runDir: string, name: string): Candidate<State> {
  const path = join(runDir, CHECKPOINT_DIR, name);
  let text: string | null = null;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new RunInputError(`${path}: cannot be read (${(error as NodeJS.ErrnoException).code ?? oneLine(error)})`);
  }
  return { name, path, text };
}

/** True when the run has a committed checkpoint (intact or not). */
export function hasCheckpoint(runDir: string): boolean {
  return existsSync(join(runDir, CHECKPOINT_DIR, CHECKPOINT_STATE_FILE)) || existsSync(join(runDir, CHECKPOINT_DIR, CHECKPOINT_PREVIOUS_FILE));
}

/** The state file that writeCheckpoint keeps as previous when the caller names none: the latest one that parses. */
function lastCommitted(runDir: string): CommittedCheckpoint | null {
  for (const name of [CHECKPOINT_STATE_FILE, CHECKPOINT_PREVIOUS_FILE]) {
    const { text } = candidate(runDir, name);
    if (text === null) continue;
    try {
      return { serial: parseStateFile(text).serial, stateText: text };
    } catch {
      // damaged: try the other one
    }
  }
  return null;
}

export interface WriteCheckpointOptions {
  /**
   * The last checkpoint known to be complete, kept as previous.json (a run passes the one it
   * wrote or loaded last); default: the state file on disk that parses.
   */
  readonly previous?: CommittedCheckpoint | null;
}

/** Writes a checkpoint with the commit protocol above; returns it (serial and state text). */
export function commitCheckpoint<State>(runDir: string, content: CheckpointContent<State>, options: WriteCheckpointOptions = {}): CommittedCheckpoint {
  const dir = join(runDir, CHECKPOINT_DIR);
  try {
    mkdirSync(dir, { recursive: true });
  } catch (error) {
    throw writeFailure(dir, error);
  }
  const previous = options.previous === undefined ? lastCommitted(runDir) : options.previous;
  // Above every serial in the folder, so a damaged state.json's tensor file is never reused.
  let serial = (previous?.serial ?? 0) + 1;
  for (const name of readdirSync(dir)) {
    const match = TENSOR_FILE_PATTERN.exec(name);
    if (match) serial = Math.max(serial, Number(match[1]) + 1);
  }
  const tensorFile = `tensors-${String(serial).padStart(6, '0')}.safetensors`;
  const bytes = writeSafetensors(content.tensors, { format: 'pcdarts-checkpoint' });
  const point = { point: 'checkpoint-write' } as const;
  writeFileAtomic(join(dir, tensorFile), bytes, point);
  testPoint('checkpoint-write', `${tensorFile} written, before ${CHECKPOINT_PREVIOUS_FILE}`);
  const stateText = stateFileText<State>({
    pcdarts_checkpoint: 1, serial, written: new Date().toISOString(),
    tensors: { file: tensorFile, bytes: bytes.length, sha256: sha256(bytes) },
    state: content.state,
  });
  let keep: string | null = null;
  if (previous !== null) {
    writeFileAtomic(join(dir, CHECKPOINT_PREVIOUS_FILE), previous.stateText, point);
    keep = parseStateFile(previous.stateText).tensors.file;
  }
  testPoint('checkpoint-write', `before ${CHECKPOINT_STATE_FILE} of serial ${serial}`);
  writeFileAtomic(join(dir, CHECKPOINT_STATE_FILE), stateText, point);
  testPoint('checkpoint-write', `serial ${serial} committed, before removing old files`);
  // Committed: tensor files neither state file names, and debris of interrupted writes, can go.
  for (const name of readdirSync(dir)) {
    if (TENSOR_FILE_PATTERN.test(name) && name !== tensorFile && name !== keep) rmSync(join(dir, name), { force: true });
  }
  removeTemporaryFiles(dir);
  return { serial, stateText };
}

/** Writes a checkpoint with the commit protocol above; returns its serial number. */
export function writeCheckpoint<State>(runDir: string, content: CheckpointContent<State>, options: WriteCheckpointOptions = {}): number {
  return commitCheckpoint(runDir, content, options).serial;
}

/** What is wrong with one checkpoint, and which of its files is bad. */
class DamagedCheckpoint extends Error {
  constructor(readonly file: string, message: string) {
    super(`${file}: ${message}`);
  }
}

/** Loads one state file and its tensors, checking every size and checksum; throws a DamagedCheckpoint. */
function loadCandidate<State>(runDir: string, c: Candidate<State>): Omit<LoadedCheckpoint<State>, 'fallback'> {
  if (c.text === null) throw new DamagedCheckpoint(c.path, 'missing');
  let file: StateFile<State>;
  try {
    file = parseStateFile<State>(c.text);
  } catch (error) {
    throw new DamagedCheckpoint(c.path, (error as Error).message);
  }
  const path = join(runDir, CHECKPOINT_DIR, file.tensors.file);
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(path));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new DamagedCheckpoint(path, code === 'ENOENT' ? `missing (named by ${CHECKPOINT_DIR}/${c.name})` : `cannot be read (${code ?? oneLine(error)})`);
  }
  if (bytes.length !== file.tensors.bytes || sha256(bytes) !== file.tensors.sha256) {
    throw new DamagedCheckpoint(path, `corrupt: ${bytes.length} bytes / checksum do not match the ${file.tensors.bytes} bytes recorded in ${c.name}`);
  }
  let tensors: Map<string, SafetensorsTensor>;
  try {
    tensors = readSafetensors(bytes, path);
  } catch (error) {
    throw new DamagedCheckpoint(path, oneLine(error).replace(`${path}: `, ''));
  }
  return { serial: file.serial, written: file.written, tensors, state: file.state, stateText: c.text };
}

export interface ReadCheckpointOptions {
  /**
   * Resume: when the latest checkpoint is damaged, load the previous one (and say so in
   * `fallback`). Without it (test, export) a damaged latest checkpoint is an error.
   */
  readonly fallback?: boolean;
}

/**
 * Reads the committed checkpoint, or null when there is none. A damaged one is a
 * RunInputError (one line naming the file), unless `fallback` finds the previous one intact.
 * Reads only: nothing in the directory changes.
 */
export function readCheckpoint<State>(runDir: string, options: ReadCheckpointOptions = {}): LoadedCheckpoint<State> | null {
  const latest = candidate<State>(runDir, CHECKPOINT_STATE_FILE);
  const previous = candidate<State>(runDir, CHECKPOINT_PREVIOUS_FILE);
  if (latest.text === null && previous.text === null) return null;
  let latestError: string;
  let latestFile: string;
  try {
    return { ...loadCandidate(runDir, latest), fallback: null };
  } catch (error) {
    if (!(error instanceof DamagedCheckpoint)) throw error;
    latestError = oneLine(error);
    latestFile = error.file;
  }
  if (!options.fallback || previous.text === null) {
    throw new RunInputError(previous.text === null || options.fallback ? latestError : `${latestError} (a resume falls back to ${CHECKPOINT_DIR}/${CHECKPOINT_PREVIOUS_FILE})`);
  }
  try {
    const loaded = loadCandidate(runDir, previous);
    return { ...loaded, fallback: { file: latestFile, reason: latestError } };
  } catch (error) {
    if (!(error instanceof DamagedCheckpoint)) throw error;
    throw new RunInputError(`${join(runDir, CHECKPOINT_DIR)}: no intact checkpoint to resume from: ${latestError}; previous: ${oneLine(error)} (nothing was changed)`);
  }
}

/** The JSON state of the latest checkpoint that parses, without reading its tensors (null: none). */
export function peekCheckpointState<State>(runDir: string): State | null {
  const committed = lastCommitted(runDir);
  return committed === null ? null : parseStateFile<State>(committed.stateText).state;
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
