/**
 * Shared pieces of the queue tests: worker processes (killable), the fake trial entry's
 * files, and waiting on conditions.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { TrialWorkerOptions, WorkerEvent } from '../../src/queue/index.js';

const WORKER_PROCESS = fileURLToPath(new URL('./worker-process.js', import.meta.url));
export const FAKE_TRIAL = fileURLToPath(new URL('./fake-trial.js', import.meta.url));

export type Event = WorkerEvent | { type: 'ready'; name: string };

export interface WorkerProcess {
  child: ChildProcess;
  events: Event[];
  name: Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

/** Starts test/queue/worker-process.js (a TrialWorker in its own process); resolves `name` once it is connected. */
export function startWorkerProcess(url: string, options: Omit<TrialWorkerOptions, 'address' | 'onEvent'> = {}): WorkerProcess {
  const child = spawn(process.execPath, [WORKER_PROCESS, JSON.stringify({ url, ...options })], { stdio: ['ignore', 'pipe', 'pipe'] });
  const events: Event[] = [];
  let buffer = '';
  let stderr = '';
  let readyResolve: (name: string) => void = () => {};
  let readyReject: (error: Error) => void = () => {};
  const name = new Promise<string>((resolve, reject) => { readyResolve = resolve; readyReject = reject; });
  child.stdout!.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('utf8');
    let newline: number;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const event = JSON.parse(buffer.slice(0, newline)) as Event;
      buffer = buffer.slice(newline + 1);
      events.push(event);
      if (event.type === 'ready') readyResolve(event.name);
    }
  });
  child.stderr!.on('data', (chunk) => { stderr += chunk; });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => {
    child.on('close', (code, signal) => {
      readyReject(new Error(`worker exited (${code ?? signal}) before it was ready: ${stderr}`));
      resolve({ code, signal, stderr });
    });
  });
  return { child, events, name, exited };
}

export async function stopWorkers(workers: readonly WorkerProcess[]): Promise<void> {
  for (const worker of workers) {
    if (worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill('SIGKILL');
  }
  await Promise.all(workers.map((w) => w.exited));
}

export interface FakeTrial { id: string; epochs: number; msPerEpoch: number; random?: boolean; fail?: { phase: string; exitCode: number; times: number } }

/** Writes DIR/trials/ID/fake.json for each trial (what the fake trial entry reads). */
export function writeFakeTrials(dir: string, trials: readonly FakeTrial[]): void {
  for (const trial of trials) {
    mkdirSync(join(dir, 'trials', trial.id), { recursive: true });
    writeFileSync(join(dir, 'trials', trial.id, 'fake.json'), JSON.stringify(trial));
  }
}

/** The value the fake entry computes for a phase run start to end (what any resume must also reach). */
export function fakeValue(trial: FakeTrial, start: number): number {
  let value = start;
  for (let epoch = 1; epoch <= trial.epochs; epoch += 1) value = (value * 31 + epoch + trial.id.charCodeAt(0)) % 1_000_003;
  return value;
}

export function expectedRetrainValue(trial: FakeTrial): number {
  return fakeValue(trial, trial.random ? 11 : fakeValue(trial, 7));
}

export function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

export interface Interval { pid: number; event: string; at: number }
export function intervals(dir: string, id: string, phase: string): Interval[] {
  const path = join(dir, 'trials', id, `${phase}.intervals.jsonl`);
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Interval);
}

/** True when the phase's processes never overlapped: each start follows the previous end. */
export function neverOverlapped(records: readonly Interval[]): boolean {
  let open: number | null = null;
  for (const record of records) {
    if (record.event === 'start') {
      if (open !== null) return false;
      open = record.pid;
    } else {
      if (open !== record.pid) return false;
      open = null;
    }
  }
  return open === null;
}

export async function waitFor(condition: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
