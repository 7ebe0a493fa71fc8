/**
 * The random-kill soak (npm run soak -- --kills N [--seed S]; a 10-kill version runs in the
 * test suite): a small search and a small retrain of its genotype, each SIGKILLed at N moments
 * drawn with a seeded generator from forward, backward, the optimiser step, checkpoint writing,
 * log writing and report writing, resumed after every kill, then compared bit for bit with an
 * uninterrupted run: every step, epoch and test record of the log (timings aside), the
 * genotype, the final checkpoint's tensors (weights, optimiser state) and, for the retrain,
 * the best model. After every kill the latest checkpoint must load as it is (checksums match,
 * no fallback needed): a checkpoint that does not is a torn checkpoint.
 *
 * Moments are chosen deterministically through the test-only hook PCDARTS_TEST_KILL_AT=POINT:N
 * (src/run/test-hooks.ts): the child kills itself the N-th time it reaches POINT, after noting
 * where (the file being written, the half of the log line, ...). N is drawn so that a life
 * makes on average (steps left) / (kills left) steps of progress; a run that finishes before
 * all its kills are spent starts a new round in a fresh directory.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { readCheckpoint } from '../src/run/checkpoint.js';

const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

/** The kinds of moment, each drawn in turn (shuffled per cycle). */
export const KILL_POINTS = ['forward', 'backward', 'optimizer-step', 'checkpoint-write', 'log-write', 'report-write'] as const;
type KillPoint = (typeof KILL_POINTS)[number];

export interface SoakOptions {
  readonly kills: number;
  readonly seed: number;
  /** Scratch folder (emptied first). */
  readonly workDir: string;
  /** Progress lines (one per kill). */
  readonly log?: (line: string) => void;
  /** Kernel threads of the children (results do not depend on it). */
  readonly threads?: number;
}

export interface KillRecord {
  readonly phase: 'search' | 'train';
  readonly round: number;
  readonly point: KillPoint;
  readonly n: number;
  /** Where it died, as the child noted it. */
  readonly detail: string;
  /** Position of the latest checkpoint after the kill ("none" before the first). */
  readonly checkpoint: string;
}

export interface SoakResult {
  readonly kills: KillRecord[];
  /** Kills per point. */
  readonly byPoint: Record<string, number>;
  readonly tornCheckpoints: number;
  readonly failedResumes: number;
  readonly differences: number;
  /** One line per problem, with the moment of the kill before it. */
  readonly failures: string[];
  readonly rounds: Record<string, number>;
}

/** mulberry32: a small seeded generator, enough to pick moments. */
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Finished { code: number | null; signal: NodeJS.Signals | null; stderr: string }

function runCli(args: string[], env: Record<string, string>): Promise<Finished> {
  const child = spawn(process.execPath, [MAIN, ...args], {
    env: { ...process.env, PCDARTS_BACKEND: 'wasm', ...env }, stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c) => { stderr += c; });
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stderr })));
}

type LogRecord = Record<string, unknown> & { type: string };

function readLog(dir: string): LogRecord[] {
  const path = join(dir, 'log.jsonl');
  if (!existsSync(path)) return [];
  const text = readFileSync(path, 'utf8');
  return text.slice(0, text.lastIndexOf('\n') + 1).split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as LogRecord);
}

/** The log without timings, memory and resume records: what must not depend on interruptions. */
function comparableLog(dir: string): string[] {
  return readLog(dir).filter((r) => r.type !== 'resume').map((r) => {
    const { images_per_s: _a, data_wait_ms: _b, seconds: _c, peak_rss_mb: _d, peak_tensor_mb: _e, time: _f, ...rest } = r;
    return JSON.stringify(rest);
  });
}

function tensorBytes(dir: string): Map<string, string> {
  const checkpoint = readCheckpoint(dir);
  const out = new Map<string, string>();
  if (checkpoint === null) return out;
  for (const [name, t] of checkpoint.tensors) {
    const values = t.values;
    out.set(name, Buffer.from(values.buffer, values.byteOffset, values.byteLength).toString('base64'));
  }
  return out;
}

/** Differences between a finished run and the uninterrupted reference, one line each (empty: identical). */
function compareRuns(dir: string, reference: string, files: readonly string[]): string[] {
  const problems: string[] = [];
  const a = comparableLog(dir);
  const b = comparableLog(reference);
  if (a.length !== b.length) problems.push(`log: ${a.length} records, the uninterrupted run has ${b.length}`);
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) {
      problems.push(`log record ${i} differs: ${a[i]!.slice(0, 160)} vs ${b[i]!.slice(0, 160)}`);
      break;
    }
  }
  for (const file of files) {
    const pa = join(dir, file);
    const pb = join(reference, file);
    if (!existsSync(pb)) continue;
    if (!existsSync(pa)) problems.push(`${file}: missing`);
    else if (!readFileSync(pa).equals(readFileSync(pb))) problems.push(`${file}: differs`);
  }
  const ta = tensorBytes(dir);
  const tb = tensorBytes(reference);
  if (ta.size !== tb.size) problems.push(`final checkpoint: ${ta.size} tensors, the uninterrupted run has ${tb.size}`);
  for (const [name, bytes] of tb) if (ta.get(name) !== bytes) { problems.push(`final checkpoint: tensor ${name} differs`); break; }
  const report = join(dir, 'report.html');
  if (!existsSync(report) || !readFileSync(report, 'utf8').trimEnd().endsWith('</html>')) problems.push('report.html: missing or incomplete');
  return problems;
}

/** Counts of every point in one uninterrupted run (PCDARTS_TEST_COUNT_POINTS). */
function readCounts(file: string): Record<string, number> {
  return existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) as Record<string, number> : {};
}

function checkpointPosition(dir: string): { text: string; globalStep: number } {
  const state = readCheckpoint<{ epoch: number; step: number; global_step: number }>(dir)?.state;
  return state === undefined ? { text: 'none', globalStep: 0 } : { text: `epoch ${state.epoch} step ${state.step}`, globalStep: state.global_step };
}

interface Phase {
  readonly name: 'search' | 'train';
  readonly args: string[];
  /** Files compared byte for byte with the reference. */
  readonly files: readonly string[];
}

/** Runs the soak; never throws for a failure of the run under test (those are in `failures`). */
export async function soak(options: SoakOptions): Promise<SoakResult> {
  const log = options.log ?? (() => {});
  const random = generator(options.seed);
  const threads = String(options.threads ?? 1);
  rmSync(options.workDir, { recursive: true, force: true });
  mkdirSync(options.workDir, { recursive: true });
  const kills: KillRecord[] = [];
  const failures: string[] = [];
  let torn = 0;
  let failedResumes = 0;
  let differences = 0;
  const rounds: Record<string, number> = {};

  const searchReference = join(options.workDir, 'search-reference');
  const phases: Phase[] = [
    {
      name: 'search', files: ['genotype.json', 'genotypes.jsonl'],
      args: ['--limit-train', '64', '--batch-size', '8', '--epochs', '4', '--warmup-epochs', '2', '--init-channels', '4', '--layers', '3',
        '--nodes', '2', '--k', '2', '--threads', threads, '--checkpoint-every', '1'],
    },
    {
      name: 'train', files: ['genotype.json', 'best.safetensors'],
      args: ['--genotype', searchReference, '--limit-train', '192', '--valid-portion', '0.25', '--limit-test', '64', '--batch-size', '16',
        '--epochs', '2', '--init-channels', '4', '--layers', '3', '--threads', threads, '--checkpoint-every', '1'],
    },
  ];

  for (const phase of phases) {
    const reference = join(options.workDir, `${phase.name}-reference`);
    const countsFile = join(options.workDir, `${phase.name}-counts.json`);
    const ref = await runCli([phase.name, ...phase.args, '--out', reference], { PCDARTS_TEST_COUNT_POINTS: countsFile });
    if (ref.code !== 0) throw new Error(`the uninterrupted ${phase.name} failed (exit ${ref.code}): ${ref.stderr.trim().split('\n').at(-1)}`);
    const counts = readCounts(countsFile);
    const killLog = join(options.workDir, `${phase.name}-kills.jsonl`);
    let round = 0;
    let dir = '';
    let fresh = true;
    let order: KillPoint[] = [];
    let pendingReports = 0;
    let done = 0;
    let lives = 0;
    const totalSteps = readLog(reference).filter((r) => r.type === 'step').length;
    let lastMoment = 'none yet';
    while (done < options.kills || !fresh) {
      if (fresh) {
        round += 1;
        dir = join(options.workDir, `${phase.name}-round${round}`);
      }
      const killsLeft = options.kills - done;
      let position = 0;
      try {
        position = fresh ? 0 : checkpointPosition(dir).globalStep;
      } catch {
        // torn: counted after the kill that tore it
      }
      const stepsLeft = totalSteps - position;
      let env: Record<string, string> = {};
      let planned: { point: KillPoint; n: number } | null = null;
      if (killsLeft > 0) {
        let point: KillPoint | null = null;
        if (stepsLeft <= 0 || killsLeft <= pendingReports || (stepsLeft <= 2 && pendingReports > 0)) {
          // Report writing happens once a run ends: its kills are spent there (and on the resumes that write it again).
          point = 'report-write';
          pendingReports = Math.max(0, pendingReports - 1);
        } else {
          while (point === null) {
            if (order.length === 0) order = [...KILL_POINTS].sort(() => random() - 0.5);
            const drawn = order.shift()!;
            if (drawn === 'report-write') pendingReports += 1;
            else point = drawn;
          }
        }
        if (point !== null) {
          const perStep = (counts[point] ?? 0) / totalSteps;
          const span = point === 'report-write'
            ? Math.max(1, counts[point] ?? 1)
            : Math.max(1, Math.round((2 * perStep * Math.max(1, stepsLeft)) / Math.max(1, killsLeft - pendingReports)));
          planned = { point, n: 1 + Math.floor(random() * span) };
          env = { PCDARTS_TEST_KILL_AT: `${planned.point}:${planned.n}`, PCDARTS_TEST_KILL_LOG: killLog };
        }
      }
      const args = fresh ? [phase.name, ...phase.args, '--out', dir] : [phase.name, '--resume', dir, '--threads', threads];
      const before = existsSync(killLog) ? readFileSync(killLog, 'utf8').split('\n').filter((l) => l !== '').length : 0;
      const result = await runCli(args, env);
      fresh = false;
      lives += 1;
      if (lives > 4 * options.kills + 20) {
        failures.push(`${phase.name}: gave up after ${lives} lives (the run does not end)`);
        break;
      }
      if (result.signal === 'SIGKILL') {
        const noted = readFileSync(killLog, 'utf8').split('\n').filter((l) => l !== '');
        const detail = noted.length > before ? (JSON.parse(noted.at(-1)!) as { detail: string }).detail : '?';
        let position = '?';
        try {
          position = checkpointPosition(dir).text;
        } catch (error) {
          torn += 1;
          failures.push(`${phase.name} round ${round}: torn checkpoint after the kill at ${planned?.point} #${planned?.n} (${detail}): ${(error as Error).message}`);
        }
        const record: KillRecord = { phase: phase.name, round, point: planned!.point, n: planned!.n, detail, checkpoint: position };
        kills.push(record);
        done += 1;
        lastMoment = `${record.point} #${record.n} (${record.detail}; checkpoint ${record.checkpoint})`;
        log(`kill ${done}/${options.kills} ${phase.name} round ${round}: ${lastMoment}`);
        continue;
      }
      if (result.code !== 0) {
        failedResumes += 1;
        failures.push(`${phase.name} round ${round}: exit ${result.code} after the kill at ${lastMoment}: ${result.stderr.trim().split('\n').at(-1)}`);
        fresh = true; // give up on this directory
        if (killsLeft === 0) break;
        continue;
      }
      // Finished (its report written, or no kill due): compare; an unkilled life ends the round.
      if (!existsSync(join(dir, 'report.html')) && planned !== null) continue; // killed in its report: the next resume writes it
      const problems = compareRuns(dir, reference, phase.files);
      differences += problems.length;
      for (const p of problems) failures.push(`${phase.name} round ${round} (last kill at ${lastMoment}): ${p}`);
      log(`${phase.name} round ${round}: finished, ${problems.length === 0 ? 'identical to the uninterrupted run' : `${problems.length} differences`}`);
      fresh = true;
      if (done >= options.kills) break;
    }
    rounds[phase.name] = round;
  }
  const byPoint: Record<string, number> = {};
  for (const k of kills) byPoint[`${k.phase} ${k.point}`] = (byPoint[`${k.phase} ${k.point}`] ?? 0) + 1;
  return { kills, byPoint, tornCheckpoints: torn, failedResumes, differences, failures, rounds };
}
