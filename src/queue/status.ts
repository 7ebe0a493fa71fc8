/**
 * What the queue knows of an experiment's trials (state, worker, attempts, progress), and the
 * wait of `experiment run --queue` until every trial's last phase has finished.
 */
import { resolve } from 'node:path';

import { type Job, Queue } from 'bullmq';

import { connectionOptions, type QueueAddress } from './connection.js';
import { enqueueTrials, jobId, type Phase, QUEUE_NAME, type TrialJobData, type TrialToEnqueue } from './jobs.js';
import type { TrialJobProgress } from './worker.js';

/** BullMQ's job states, plus 'missing' for a job the queue does not hold (never enqueued, or lost). */
export type JobState = 'waiting' | 'waiting-children' | 'prioritized' | 'delayed' | 'active' | 'completed' | 'failed' | 'missing' | 'unknown';

export interface PhaseJobState {
  trialId: string;
  phase: Phase;
  jobId: string;
  state: JobState;
  /** Failed attempts so far. */
  attemptsMade: number;
  /** Times a worker started the job (a worker's death counts here, not above). */
  attemptsStarted: number;
  worker?: string;
  progress?: TrialJobProgress;
  failedReason?: string;
}

/**
 * The state is read BEFORE the job's data: a job that finishes between the two reads then shows
 * its old state with its new data (polled again later), never "completed" with the data of
 * before it completed.
 */
async function describe(queue: Queue, trialId: string, phase: Phase, id: string): Promise<PhaseJobState> {
  const state = (await queue.getJobState(id)) as JobState;
  const job: Job | undefined = await queue.getJob(id);
  if (job === undefined || state === 'unknown') return { trialId, phase, jobId: id, state: 'missing', attemptsMade: 0, attemptsStarted: 0 };
  const progress = typeof job.progress === 'object' && job.progress !== null ? (job.progress as unknown as TrialJobProgress) : undefined;
  const worker = progress?.worker ?? job.processedBy;
  return {
    trialId,
    phase,
    jobId: id,
    state,
    attemptsMade: job.attemptsMade,
    attemptsStarted: job.attemptsStarted,
    ...(worker !== undefined ? { worker } : {}),
    ...(progress !== undefined ? { progress } : {}),
    ...(job.failedReason ? { failedReason: job.failedReason } : {}),
  };
}

/** The queue's view of every phase of the trials (one Queue connection, closed again). */
export async function readJobStates(address: QueueAddress, experiment: string, trials: readonly TrialToEnqueue[]): Promise<PhaseJobState[]> {
  const queue = new Queue(QUEUE_NAME, { connection: connectionOptions(address) });
  queue.on('error', () => {});
  try {
    return await readWith(queue, experiment, trials);
  } finally {
    await queue.close();
  }
}

async function readWith(queue: Queue, experiment: string, trials: readonly TrialToEnqueue[]): Promise<PhaseJobState[]> {
  const states: PhaseJobState[] = [];
  for (const trial of trials) {
    for (const phase of trial.phases) {
      const id = jobId(experiment, trial.id, phase);
      states.push(await describe(queue, trial.id, phase, id));
    }
  }
  return states;
}

export interface WaitOptions {
  pollMs?: number;
  /** Called after each poll with the states (for progress display). */
  onPoll?: (states: PhaseJobState[]) => void;
  /** Called when the connection to Redis fails (it is retried until it comes back). */
  onConnectionError?: (error: Error) => void;
  /** Stops the wait: it resolves with null (the jobs go on in the queue). */
  signal?: AbortSignal;
}

/**
 * Waits until the last phase of every trial is completed or failed. A trial whose jobs are
 * missing (a Redis that lost its data) is enqueued again: the trial entry is idempotent, so a
 * phase that finished before exits at once. Resolves with the final states.
 */
export async function waitForTrials(address: QueueAddress, dir: string, experiment: string, trials: readonly TrialToEnqueue[], options: WaitOptions & { signal: AbortSignal }): Promise<PhaseJobState[] | null>;
export async function waitForTrials(address: QueueAddress, dir: string, experiment: string, trials: readonly TrialToEnqueue[], options?: WaitOptions): Promise<PhaseJobState[]>;
export async function waitForTrials(address: QueueAddress, dir: string, experiment: string, trials: readonly TrialToEnqueue[], options: WaitOptions = {}): Promise<PhaseJobState[] | null> {
  const pollMs = options.pollMs ?? 500;
  const queue = new Queue(QUEUE_NAME, { connection: connectionOptions(address) });
  queue.on('error', (error) => options.onConnectionError?.(error));
  try {
    const aborted = new Promise<null>((resolveAbort) => {
      if (options.signal?.aborted) resolveAbort(null);
      options.signal?.addEventListener('abort', () => resolveAbort(null), { once: true });
    });
    for (;;) {
      if (options.signal?.aborted) return null;
      const states = await Promise.race([readWith(queue, experiment, trials), aborted]);
      if (states === null) return null;
      options.onPoll?.(states);
      const last = (trial: TrialToEnqueue): PhaseJobState | undefined => states.find((s) => s.trialId === trial.id && s.phase === trial.phases.at(-1));
      const missing = trials.filter((trial) => last(trial)?.state === 'missing');
      if (missing.length > 0) await enqueueTrials(address, resolve(dir), missing);
      else if (trials.every((trial) => last(trial)?.state === 'completed' || last(trial)?.state === 'failed')) return states;
      await Promise.race([new Promise((resolveTimer) => setTimeout(resolveTimer, pollMs)), aborted]);
    }
  } finally {
    await queue.close();
  }
}
