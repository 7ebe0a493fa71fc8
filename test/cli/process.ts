/**
 * Running the CLI as a user does, for the command-line tests: spawned processes on the wasm
 * backend (same backend and thread count everywhere, so runs compare bit for bit), the run
 * log as it stands on disk, and the one-line bad-input contract.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const ENV = { ...process.env, PCDARTS_BACKEND: 'wasm' };

export interface Finished { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

export function start(args: string[]): { child: ChildProcess; done: Promise<Finished> } {
  const child = spawn(process.execPath, [MAIN, ...args], { env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk) => { stdout += chunk; });
  child.stderr!.on('data', (chunk) => { stderr += chunk; });
  const done = new Promise<Finished>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done };
}

/** The start of a printed next step: however pcdarts is started where the test runs (see src/cli/common.ts). */
export const INVOCATION = String.raw`(?:npm run pcdarts --|npx pcdarts|pcdarts|node \S+)`;

export const pcdarts = (...args: string[]): Promise<Finished> => start(args).done;

export type LogRecord = { type: string; epoch: number; step: number } & Record<string, unknown>;
export function readLog(dir: string): LogRecord[] {
  const path = join(dir, 'log.jsonl');
  if (!existsSync(path)) return [];
  // A line being written may be incomplete: only whole lines count.
  const text = readFileSync(path, 'utf8');
  return text.slice(0, text.lastIndexOf('\n') + 1).split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as LogRecord);
}

export async function waitFor(condition: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Exit status 2 and exactly one line on stderr matching `pattern`. */
export function assertBadInput(result: Pick<Finished, 'code' | 'stderr'>, pattern: RegExp): void {
  const lines = result.stderr.split('\n').filter((l) => l !== '');
  assert.equal(result.code, 2, `exit status 2 expected, stderr: ${result.stderr}`);
  assert.equal(lines.length, 1, `one line expected, got: ${result.stderr}`);
  assert.match(lines[0], pattern);
}

/**
 * Starts `args` (a run into `dir`), SIGKILLs it once the log shows step `step` of epoch 1 and
 * before epoch 1 ends, then resumes it with --resume (2 threads) and checks that it finished
 * from a mid-epoch checkpoint. The caller compares the result with an uninterrupted run.
 */
export async function killMidEpochAndResume(command: string, args: string[], dir: string, step: number): Promise<void> {
  const { child, done } = start([command, ...args, '--out', dir]);
  await waitFor(() => readLog(dir).some((r) => r.type === 'step' && r.epoch === 1 && r.step >= step), `step ${step} of epoch 1`);
  child.kill('SIGKILL');
  const killed = await done;
  assert.equal(killed.signal, 'SIGKILL');
  assert.ok(!readLog(dir).some((r) => r.type === 'epoch' && r.epoch === 1), 'the run finished its last epoch before it was killed');
  const resumed = await pcdarts(command, '--resume', dir, '--threads', '2');
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, /resuming .* in epoch 2\/\d+ after step \d+ of it/);
}

/**
 * A run log's records of these types without timings and memory: what must not depend on
 * interruptions, thread counts or the machine.
 */
export function comparableRecords(dir: string, types: readonly string[] = ['step', 'epoch']): unknown[] {
  return readLog(dir).filter((r) => types.includes(r.type)).map((r) => {
    const { images_per_s: _rate, data_wait_ms: _wait, seconds: _seconds, peak_rss_mb: _rss, peak_tensor_mb: _tensor, ...rest } = r;
    return rest;
  });
}

/** Every file under dir (path relative to it -> sha256), to prove that nothing changed. */
export function treeHashes(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (sub: string): void => {
    for (const name of readdirSync(join(dir, sub)).sort()) {
      const rel = join(sub, name);
      if (statSync(join(dir, rel)).isDirectory()) walk(rel);
      else out[rel] = createHash('sha256').update(readFileSync(join(dir, rel))).digest('hex');
    }
  };
  walk('');
  return out;
}
