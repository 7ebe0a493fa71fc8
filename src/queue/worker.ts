/**
 * The queue worker: takes trial jobs from Redis and runs each one as a CHILD PROCESS of the
 * trial entry (`pcdarts experiment trial DIR ID --phase P`), never on its own event loop, so a
 * CPU-bound trial cannot starve the job-lock renewal (BullMQ would then hand the job to a
 * second worker while the first still runs it).
 *
 * Outcomes, by the child's exit status (the trial contract): 0 done; 2 bad input and 3
 * non-finite are permanent (UnrecoverableError, no retry); anything else (a crash, a signal,
 * the run directory busy) is retried with backoff until the worker's --attempts are used up.
 * A permanent or final failure is written into the phase's status file if the child could not
 * write it itself, so the error reaches results.json.
 *
 * Fault tolerance, in numbers (DEFAULT_LOCK_DURATION_MS, DEFAULT_STALLED_INTERVAL_MS): a
 * worker renews each job's lock every 3 s (half the 6 s lock); every worker checks for stalled
 * jobs every 2 s; so the job of a worker that died is back in "wait" and taken by another
 * worker 6-8 s after the death. The dead worker's child notices it has been orphaned (the
 * trial entry watches its parent id, contract) and stops at its next checkpoint; the next
 * worker's child waits for the trial lock the orphan holds until then, and resumes from that
 * checkpoint, bit-identical to an uninterrupted run.
 * On SIGTERM / SIGINT the worker passes SIGTERM to its children (they checkpoint) and puts
 * their jobs back to waiting without using up an attempt.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { DelayedError, type Job, UnrecoverableError, WaitingError, Worker, type WorkerOptions } from 'bullmq';

import { writeFileAtomic } from '../run/files.js';
import { connectionOptions, type QueueAddress } from './connection.js';
import { PHASES, type Phase, QUEUE_NAME, type TrialJobData } from './jobs.js';

export const DEFAULT_LOCK_DURATION_MS = 6000;
export const DEFAULT_STALLED_INTERVAL_MS = 2000;
/** A job whose worker died this many times in a row is failed (BullMQ's maxStalledCount). */
export const DEFAULT_MAX_STALLED = 5;
export const DEFAULT_ATTEMPTS = 3;
/** A job whose experiment directory this machine cannot see goes back to the queue for this long. */
export const MISSING_DIR_DELAY_MS = 10_000;
/** Retry delays: 2 s, 4 s, 8 s, ... at most one minute. */
export const BACKOFF_BASE_MS = 2000;
export const BACKOFF_MAX_MS = 60_000;

/** Exit statuses of the trial entry that no retry can change (contract: bad input, non-finite). */
export const PERMANENT_EXIT_CODES: ReadonlySet<number> = new Set([2, 3]);

const MAIN = fileURLToPath(new URL('../cli/main.js', import.meta.url));

/** The trial entry of this installation: `main.js experiment trial` (what follows `node` and its flags). */
export function defaultTrialEntry(): string[] {
  return [MAIN, 'experiment', 'trial'];
}

/** What a job's progress holds (job.updateProgress), read by `experiment status`. */
export interface TrialJobProgress {
  phase: Phase;
  worker: string;
  /** 1-based number of this attempt. */
  attempt: number;
  startedAt: string;
  updatedAt: string;
  epoch?: number;
  epochs?: number;
  loss?: number;
  accuracy?: number;
  genotype?: unknown;
  /** Seconds left in this phase, from the epoch rate of this attempt (at updatedAt). */
  etaSeconds?: number;
}

export type WorkerEvent =
  | { type: 'start'; job: string; trialId: string; phase: Phase; attempt: number; attempts: number; starts: number }
  | { type: 'progress'; job: string; progress: TrialJobProgress; epochEnd: boolean }
  | { type: 'done'; job: string; seconds: number }
  | { type: 'failed'; job: string; error: string; exitCode: number; permanent: boolean; willRetry: boolean }
  | { type: 'requeued'; job: string; reason: string }
  | { type: 'stalled'; job: string }
  | { type: 'connection'; message: string }
  | { type: 'missing-dir'; job: string; dir: string };

export interface TrialWorkerOptions {
  address: QueueAddress;
  /** Jobs this worker runs at once (child processes). */
  concurrency?: number;
  /** Passed on as `--threads N` to each trial child. */
  threads?: number;
  /** Attempts per job before it is failed for good (transient failures only). */
  attempts?: number;
  lockDurationMs?: number;
  stalledIntervalMs?: number;
  maxStalledCount?: number;
  /**
   * The script and arguments that run a trial (DIR ID --phase P are appended); the worker runs
   * it as `node [this process's node flags] ENTRY...`.
   */
  entry?: string[];
  /** Worker id recorded in jobs and status files; default host:pid. */
  name?: string;
  onEvent?: (event: WorkerEvent) => void;
}

/**
 * BullMQ Worker settings of every pcdarts worker (also what `npm run bench -- queue` runs
 * its no-op workers with): connection, concurrency, lock and stalled-check timing, backoff.
 */
export function workerOptions(options: Pick<TrialWorkerOptions, 'address' | 'concurrency' | 'lockDurationMs' | 'stalledIntervalMs' | 'maxStalledCount'>): WorkerOptions {
  return {
    connection: connectionOptions(options.address),
    concurrency: options.concurrency ?? 1,
    lockDuration: options.lockDurationMs ?? DEFAULT_LOCK_DURATION_MS,
    stalledInterval: options.stalledIntervalMs ?? DEFAULT_STALLED_INTERVAL_MS,
    maxStalledCount: options.maxStalledCount ?? DEFAULT_MAX_STALLED,
    settings: {
      backoffStrategy: (attemptsMade: number) => Math.min(BACKOFF_BASE_MS * 2 ** Math.max(0, attemptsMade - 1), BACKOFF_MAX_MS),
    },
  };
}

interface RunningChild {
  child: ChildProcess;
  lockLost: boolean;
}

function statusPath(data: TrialJobData): string {
  return join(data.dir, 'trials', data.trialId, `${data.phase}.status.json`);
}

function validData(data: unknown): data is TrialJobData {
  const d = data as Partial<TrialJobData> | null;
  return d !== null && typeof d === 'object' && typeof d.dir === 'string' && typeof d.trialId === 'string'
    && /^[0-9A-Za-z_-]+$/.test(d.trialId) && PHASES.includes(d.phase as Phase) && typeof d.experiment === 'string';
}

function exitStatus(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  const number = signal !== null ? (osConstants.signals as Record<string, number>)[signal] : undefined;
  return 128 + (number ?? 0);
}

export class TrialWorker {
  readonly name: string;
  private readonly worker: Worker<TrialJobData>;
  private readonly children = new Map<string, RunningChild>();
  private readonly attempts: number;
  private readonly threads: number | undefined;
  private readonly entry: string[];
  private readonly emit: (event: WorkerEvent) => void;
  private closing: Promise<void> | null = null;
  private lastConnectionMessageAt = 0;

  constructor(options: TrialWorkerOptions) {
    this.name = options.name ?? `${hostname()}:${process.pid}`;
    this.attempts = options.attempts ?? DEFAULT_ATTEMPTS;
    this.threads = options.threads;
    this.entry = options.entry ?? defaultTrialEntry();
    this.emit = options.onEvent ?? (() => {});
    this.worker = new Worker<TrialJobData>(QUEUE_NAME, (job, token) => this.process(job, token), { ...workerOptions(options), name: this.name, autorun: false });
    this.worker.on('error', (error) => this.connectionMessage(error));
    this.worker.on('stalled', (id) => this.emit({ type: 'stalled', job: id }));
    this.worker.on('lockRenewalFailed', (ids) => {
      // Another worker may own the job by now: stop our child at its next checkpoint.
      for (const id of ids) {
        const running = this.children.get(id);
        if (running) {
          running.lockLost = true;
          running.child.kill('SIGTERM');
        }
      }
    });
  }

  /** Starts taking jobs; resolves once the worker is connected. */
  async start(): Promise<void> {
    void this.worker.run().catch((error: unknown) => this.connectionMessage(error));
    await this.worker.waitUntilReady();
  }

  /**
   * Stops taking jobs, sends SIGTERM to the running children and waits until they exited and
   * their jobs went back to waiting.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const running of this.children.values()) running.child.kill('SIGTERM');
      await this.worker.close();
    })();
    return this.closing;
  }

  get running(): number {
    return this.children.size;
  }

  private connectionMessage(error: unknown): void {
    const now = Date.now();
    if (now - this.lastConnectionMessageAt < 10_000) return;
    this.lastConnectionMessageAt = now;
    const code = (error as { code?: unknown } | null)?.code;
    const message = error instanceof Error ? error.message : String(error);
    this.emit({ type: 'connection', message: `${typeof code === 'string' ? `${code}: ` : ''}${message.split('\n')[0]} (retrying)` });
  }

  private async process(job: Job<TrialJobData>, token: string | undefined): Promise<{ exitCode: 0; worker: string }> {
    const id = job.id!;
    if (!validData(job.data)) throw new UnrecoverableError(`job ${id}: data is not a pcdarts trial job`);
    const data = job.data;
    if (!existsSync(join(data.dir, 'trials', data.trialId)) && token !== undefined) {
      // This machine does not see the experiment directory (shared storage not mounted, or at
      // another path): the job is fine, this worker is not. Hand it back for another worker,
      // without using an attempt, instead of failing the trial.
      await job.moveToDelayed(Date.now() + MISSING_DIR_DELAY_MS, token);
      this.emit({ type: 'missing-dir', job: id, dir: data.dir });
      throw new DelayedError();
    }
    const attempt = job.attemptsMade + 1;
    const startedAt = new Date();
    const base: TrialJobProgress = { phase: data.phase, worker: this.name, attempt, startedAt: startedAt.toISOString(), updatedAt: startedAt.toISOString() };
    await job.updateProgress(base as unknown as object);
    this.emit({ type: 'start', job: id, trialId: data.trialId, phase: data.phase, attempt, attempts: this.attempts, starts: Math.max(attempt, job.attemptsStarted) });

    const args = [...process.execArgv, ...this.entry, data.dir, data.trialId, '--phase', data.phase, ...(this.threads !== undefined ? ['--threads', String(this.threads)] : [])];
    // Its own process group: a Ctrl-C at the worker's terminal reaches the worker only, which
    // passes one SIGTERM on (a trial that got both would take the second as "quit at once").
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: process.env, detached: true });
    const running: RunningChild = { child, lockLost: false };
    this.children.set(id, running);

    const stderrTail: string[] = [];
    createInterface({ input: child.stderr! }).on('line', (line) => {
      stderrTail.push(line);
      if (stderrTail.length > 20) stderrTail.shift();
    });
    // Progress lines go into the job, one update at a time, the newest winning.
    let first: { at: number; done: number } | null = null;
    let reportedError: string | null = null;
    let pending: TrialJobProgress | null = null;
    let updating: Promise<void> = Promise.resolve();
    const flush = (): void => {
      updating = updating.then(async () => {
        if (pending === null) return;
        const progress = pending;
        pending = null;
        try {
          await job.updateProgress(progress as unknown as object);
        } catch {
          // Redis away or the lock lost: progress is best effort, the outcome is not.
        }
      });
    };
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let message: Record<string, unknown>;
      try {
        message = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      if (message === null || typeof message !== 'object') return;
      if (message.type === 'phase' && message.state === 'failed' && typeof message.error === 'string') reportedError = message.error;
      if (message.type !== 'progress') return;
      const now = Date.now();
      const progress: TrialJobProgress = { ...base, updatedAt: new Date(now).toISOString() };
      for (const key of ['epoch', 'epochs', 'loss', 'accuracy'] as const) {
        if (typeof message[key] === 'number') progress[key] = message[key] as number;
      }
      if (message.genotype !== undefined) progress.genotype = message.genotype;
      // ETA from this attempt's own pace: in steps (done/total) where the entry reports them, else in epochs.
      const position = typeof message.done === 'number' && typeof message.total === 'number'
        ? { done: message.done, total: message.total }
        : progress.epoch !== undefined && progress.epochs !== undefined ? { done: progress.epoch, total: progress.epochs } : null;
      if (position !== null) {
        if (first === null) first = { at: now, done: position.done };
        else if (position.done > first.done) {
          progress.etaSeconds = ((now - first.at) / 1000 / (position.done - first.done)) * Math.max(0, position.total - position.done);
        }
      }
      pending = progress;
      this.emit({ type: 'progress', job: id, progress, epochEnd: message.end !== false });
      flush();
    });

    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => {
      child.once('error', (error) => {
        stderrTail.push(`cannot start the trial entry: ${error.message}`);
        resolve([127, null]);
      });
      child.once('close', (exitCode, exitSignal) => resolve([exitCode, exitSignal]));
    });
    this.children.delete(id);
    await updating;
    const status = exitStatus(code, signal);
    const seconds = (Date.now() - startedAt.getTime()) / 1000;
    if (status === 0) {
      this.emit({ type: 'done', job: id, seconds });
      return { exitCode: 0, worker: this.name };
    }

    const stoppedBySignal = status === 130 || status === 143 || signal === 'SIGTERM' || signal === 'SIGINT';
    if (this.closing !== null && stoppedBySignal && token !== undefined) {
      // Our own shutdown: the child checkpointed; the job waits for the next worker, attempt unused.
      await job.moveToWait(token);
      this.emit({ type: 'requeued', job: id, reason: 'worker stopping' });
      throw new WaitingError();
    }
    if (running.lockLost) {
      this.emit({ type: 'requeued', job: id, reason: 'job lock lost (another worker may run it)' });
      throw new Error(`job ${id}: lock lost while running; the trial stopped at a checkpoint`);
    }

    const lastLine = reportedError ?? stderrTail.filter((l) => l.trim() !== '').at(-1)?.trim();
    const error = `${data.phase} of trial ${data.trialId} exited with status ${status}${signal ? ` (${signal})` : ''}${lastLine ? `: ${lastLine}` : ''}`;
    const permanent = PERMANENT_EXIT_CODES.has(status);
    const final = permanent || attempt >= this.attempts;
    this.emit({ type: 'failed', job: id, error, exitCode: status, permanent, willRetry: !final });
    if (!final) throw new Error(error);
    this.recordFailure(data, child.pid, status, error, startedAt, attempt);
    throw new UnrecoverableError(permanent ? error : `${error} (attempt ${attempt} of ${this.attempts})`);
  }

  /** Writes the phase's failed status unless the child wrote its own for this attempt. */
  private recordFailure(data: TrialJobData, pid: number | undefined, exitCode: number, error: string, startedAt: Date, attempt: number): void {
    const path = statusPath(data);
    if (!existsSync(join(data.dir, 'trials', data.trialId))) return;
    try {
      const written = JSON.parse(readFileSync(path, 'utf8')) as { state?: unknown; pid?: unknown };
      if (written.state === 'failed' && written.pid === pid) return;
    } catch {
      // No status (the child died before writing one) or a torn one: ours replaces it.
    }
    const status = {
      state: 'failed',
      error,
      exitCode,
      startedAt: startedAt.toISOString(),
      endedAt: new Date().toISOString(),
      host: hostname(),
      pid: pid ?? null,
      worker: this.name,
      attempts: attempt,
    };
    writeFileAtomic(path, `${JSON.stringify(status, null, 2)}\n`);
  }
}
