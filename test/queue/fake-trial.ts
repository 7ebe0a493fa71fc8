/**
 * A stand-in for `pcdarts experiment trial DIR ID --phase P` with the contract's behaviour and
 * none of its cost, for the worker's failure-mode tests (which exit status is retried, which is
 * not) and for the no-overlap check: each "epoch" sleeps, folds the epoch into a running
 * value, checkpoints it and prints a progress line, so an interrupted phase resumes to the same
 * value as an uninterrupted one. Settings per trial come from DIR/trials/ID/fake.json:
 *   { epochs, msPerEpoch, fail?: { phase, exitCode, times } }  (times: fail the first N starts)
 * Every start and end is appended to DIR/trials/ID/PHASE.intervals.jsonl so a test can check
 * that no two processes ever ran a phase at once. Like the real entry it stops at a checkpoint
 * (exit 143) on SIGTERM and when its parent dies.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

import { writeFileAtomic } from '../../src/run/files.js';

interface FakeSettings { epochs: number; msPerEpoch: number; fail?: { phase: string; exitCode: number; times: number } }

const args = process.argv.slice(2);
const [dir, id] = args;
const phase = args[args.indexOf('--phase') + 1];
const trialDir = join(dir, 'trials', id);
const settings = JSON.parse(readFileSync(join(trialDir, 'fake.json'), 'utf8')) as FakeSettings;
const statusFile = join(trialDir, `${phase}.status.json`);
const startedAt = new Date().toISOString();

function writeStatus(state: 'done' | 'failed', exitCode: number, error?: string): void {
  writeFileAtomic(statusFile, JSON.stringify({ state, ...(error ? { error } : {}), exitCode, startedAt, endedAt: new Date().toISOString(), host: hostname(), pid: process.pid }));
}

function interval(event: string): void {
  appendFileSync(join(trialDir, `${phase}.intervals.jsonl`), `${JSON.stringify({ pid: process.pid, event, at: Date.now() })}\n`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

if (existsSync(statusFile) && (JSON.parse(readFileSync(statusFile, 'utf8')) as { state: string }).state === 'done') process.exit(0);

const runDir = join(trialDir, phase);
mkdirSync(runDir, { recursive: true });
const lock = join(runDir, 'lock');
if (existsSync(lock)) {
  const holder = Number(readFileSync(lock, 'utf8'));
  if (isAlive(holder)) {
    process.stderr.write(`${runDir}: run directory busy (pid ${holder})\n`);
    process.exit(75);
  }
}
writeFileSync(lock, String(process.pid));
interval('start');

const startsFile = join(trialDir, `${phase}.starts`);
const starts = (existsSync(startsFile) ? Number(readFileSync(startsFile, 'utf8')) : 0) + 1;
writeFileSync(startsFile, String(starts));

function finish(code: number): never {
  interval(`end ${code}`);
  rmSync(lock, { force: true });
  process.exit(code);
}

if (settings.fail && settings.fail.phase === phase && starts <= settings.fail.times) {
  const message = `fake failure ${settings.fail.exitCode} (start ${starts})`;
  process.stderr.write(`pcdarts: ${message}\n`);
  if (settings.fail.exitCode === 2 || settings.fail.exitCode === 3) writeStatus('failed', settings.fail.exitCode, message);
  finish(settings.fail.exitCode);
}

let stopping = false;
process.on('SIGTERM', () => { stopping = true; });
// As the real entry does: a parent that is gone (a SIGKILLed worker) stops the phase like SIGTERM.
const parent = process.ppid;
setInterval(() => { if (process.ppid !== parent) stopping = true; }, 200).unref();
process.stdout.on('error', () => { stopping = true; });

const checkpointFile = join(runDir, 'checkpoint.json');
let { epoch, value } = existsSync(checkpointFile)
  ? (JSON.parse(readFileSync(checkpointFile, 'utf8')) as { epoch: number; value: number })
  : { epoch: 0, value: phase === 'search' ? 7 : Number(existsSync(join(trialDir, 'search', 'result.json')) ? JSON.parse(readFileSync(join(trialDir, 'search', 'result.json'), 'utf8')).value : 11) };

while (epoch < settings.epochs) {
  if (stopping) finish(143);
  await new Promise((resolve) => setTimeout(resolve, settings.msPerEpoch));
  epoch += 1;
  value = (value * 31 + epoch + id.charCodeAt(0)) % 1_000_003;
  writeFileAtomic(checkpointFile, JSON.stringify({ epoch, value }));
  process.stdout.write(`${JSON.stringify({ type: 'progress', phase, epoch, epochs: settings.epochs, loss: value / 1_000_003, accuracy: epoch / settings.epochs })}\n`);
}
writeFileAtomic(join(runDir, 'result.json'), JSON.stringify({ value }));
writeStatus('done', 0);
finish(0);
