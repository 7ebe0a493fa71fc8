/**
 * Worker thread of the wasm kernel backend, and the job protocol it shares with the main
 * thread (backend.ts imports the constants and `runClaimedParts` from here; the worker loop
 * only starts when this file is a worker entry).
 *
 * A job is "call kernel FN with ARGS for parts 0..NPARTS-1"; every part writes outputs no
 * other part writes. Control words live in a small SharedArrayBuffer:
 * - GEN: job generation, bumped after the job is fully written; workers sleep on it.
 * - NEXT: (generation << PART_BITS) | next unclaimed part, or CLOSED while the main thread
 *   writes a job. Parts are claimed by compare-exchange on this word, so a worker that
 *   wakes late (or read a job that has since been replaced) can never claim a part of a job
 *   it did not read: the generation in NEXT would not match.
 * - DONE: parts finished; the main thread returns when DONE reaches NPARTS. The main thread
 *   works on parts too, so a sleeping worker only adds its wake-up latency if the main
 *   thread could not finish alone first.
 */
import { isMainThread, workerData } from 'node:worker_threads';

export const SLOT_GEN = 0;
export const SLOT_NEXT = 1;
export const SLOT_DONE = 2;
export const SLOT_FN = 3;
export const SLOT_NARGS = 4;
export const SLOT_NPARTS = 5;
export const SLOT_STOP = 6;
export const SLOT_READY = 7;
export const SLOT_ERROR = 8;
/** Workers parked in Atomics.wait on GEN (the main thread notifies only when this is > 0). */
export const SLOT_SLEEPERS = 9;

/** NEXT while a job is being written. (-1 >>> PART_BITS is never a valid generation.) */
export const CLOSED = -1;
export const PART_BITS = 12;
const PART_MASK = (1 << PART_BITS) - 1;
/** Most parts one parallel job may have. */
export const MAX_PARTS = PART_MASK;
/** Generations cycle through 1..MAX_GEN (20 bits, never all ones). */
export const MAX_GEN = (1 << (32 - PART_BITS)) - 2;

export const ARGS_BYTE_OFFSET = 64;
export const MAX_ARGS = 32;
export const CONTROL_BYTES = ARGS_BYTE_OFFSET + MAX_ARGS * 8;

/** What the main thread hands each worker. */
export interface WorkerInit {
  readonly role: 'pcdarts-wasm-kernels';
  readonly module: WebAssembly.Module;
  readonly memory: WebAssembly.Memory;
  readonly control: SharedArrayBuffer;
  /** Export names, indexed by SLOT_FN. */
  readonly names: readonly string[];
  /** Thread index (the main thread is 0): selects the scratch slice. */
  readonly tid: number;
  /**
   * Microseconds a worker polls GEN after a job before parking in Atomics.wait: back-to-back
   * jobs (a training step issues one every few microseconds) then skip the futex wake-up,
   * while a pause (JS work, I/O, the end of a step) leaves the core idle instead of burning it.
   */
  readonly spinMicroseconds: number;
}

export type KernelFunction = (...args: number[]) => unknown;

/**
 * Claims and runs parts of job `gen` until none is left. Returns the first error thrown by a
 * part (the part still counts as done, so the job always completes).
 */
export function runClaimedParts(
  ctrl: Int32Array, gen: number, nparts: number, fn: KernelFunction, args: number[], tid: number,
  notify: boolean,
): unknown {
  let error: unknown = null;
  for (;;) {
    const word = Atomics.load(ctrl, SLOT_NEXT);
    if (word === CLOSED || word >>> PART_BITS !== gen) break;
    const part = word & PART_MASK;
    if (part >= nparts) break;
    if (Atomics.compareExchange(ctrl, SLOT_NEXT, word, word + 1) !== word) continue;
    try {
      fn(...args, part, tid);
    } catch (e) {
      if (error === null) error = e;
      Atomics.store(ctrl, SLOT_ERROR, 1);
    }
    Atomics.add(ctrl, SLOT_DONE, 1);
    if (notify) Atomics.notify(ctrl, SLOT_DONE);
  }
  return error;
}

function workerLoop(init: WorkerInit): void {
  const instance = new WebAssembly.Instance(init.module, { env: { memory: init.memory } });
  const fns = init.names.map((name) => instance.exports[name] as KernelFunction);
  const ctrl = new Int32Array(init.control, 0, ARGS_BYTE_OFFSET / 4);
  const argv = new Float64Array(init.control, ARGS_BYTE_OFFSET, MAX_ARGS);
  let seen = Atomics.load(ctrl, SLOT_GEN);
  Atomics.add(ctrl, SLOT_READY, 1);
  Atomics.notify(ctrl, SLOT_READY);
  for (;;) {
    let gen = Atomics.load(ctrl, SLOT_GEN);
    if (gen === seen && init.spinMicroseconds > 0) {
      // Poll, checking the clock every 64 polls (a poll is a few nanoseconds, the clock ~30).
      const deadline = performance.now() + init.spinMicroseconds / 1000;
      for (let i = 1; gen === seen; i++) {
        gen = Atomics.load(ctrl, SLOT_GEN);
        if ((i & 63) === 0 && performance.now() > deadline) break;
      }
    }
    if (gen === seen) {
      // Park. The main thread stores GEN before reading SLEEPERS, so either it sees this
      // increment and notifies, or GEN has changed already and the wait returns at once.
      Atomics.add(ctrl, SLOT_SLEEPERS, 1);
      Atomics.wait(ctrl, SLOT_GEN, seen);
      Atomics.sub(ctrl, SLOT_SLEEPERS, 1);
      continue;
    }
    seen = gen;
    if (Atomics.load(ctrl, SLOT_STOP) !== 0) return;
    // May be a newer job's fields if the main thread has moved on; then no claim succeeds.
    const fn = fns[Atomics.load(ctrl, SLOT_FN)];
    const nargs = Atomics.load(ctrl, SLOT_NARGS);
    const nparts = Atomics.load(ctrl, SLOT_NPARTS);
    const args = Array.from(argv.subarray(0, nargs));
    const error = runClaimedParts(ctrl, gen, nparts, fn, args, init.tid, true);
    if (error !== null) console.error('pcdarts wasm worker: kernel failed:', error);
  }
}

if (!isMainThread && (workerData as WorkerInit | null)?.role === 'pcdarts-wasm-kernels') {
  workerLoop(workerData as WorkerInit);
}
