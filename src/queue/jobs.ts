/**
 * Trials as BullMQ jobs. One queue (QUEUE_NAME) serves every experiment on a Redis database;
 * a job names its experiment directory, trial and phase. Per trial one FlowProducer flow: the
 * retrain phase is the parent job, the search phase its child (BullMQ starts a parent only
 * once its children completed), random trials are a retrain job alone.
 *
 * Job ids are `<experiment>.<trialId>-<phase>`, where `<experiment>` is a key drawn once when a
 * directory is first enqueued and kept in DIR/queue.json: enqueueing the same spec into the
 * same directory again finds every job and adds nothing, a spec extended by more seeds adds
 * only the new trials, while two directories that share trial settings (or a directory deleted
 * and started afresh) never collide on a finished job of another run.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { FlowProducer, type FlowJob, type JobsOptions, Queue } from 'bullmq';

import { RunInputError } from '../run/errors.js';
import { writeFileAtomic } from '../run/files.js';
import { connectionOptions, type QueueAddress } from './connection.js';

export const QUEUE_NAME = 'pcdarts-trials';
/** Name of the backoff strategy every pcdarts worker registers (see worker.ts). */
export const BACKOFF_TYPE = 'pcdarts';
/**
 * BullMQ's own attempt limit, set high: each worker applies its --attempts itself (it fails the
 * job as unrecoverable on the last attempt), so the limit is the workers' setting, not frozen
 * into the jobs when they were enqueued.
 */
export const JOB_ATTEMPTS_CEILING = 1000;

export type Phase = 'search' | 'retrain';
export const PHASES: readonly Phase[] = ['search', 'retrain'];

/** What a job carries: enough for any worker to run `experiment trial DIR ID --phase P`. */
export interface TrialJobData {
  dir: string;
  trialId: string;
  phase: Phase;
  experiment: string;
}

/** DIR/queue.json: where the directory's jobs live. */
export interface QueueRecord {
  url: string;
  queue: string;
  experiment: string;
  enqueuedAt: string;
}

export const QUEUE_RECORD_FILE = 'queue.json';

export function jobId(experiment: string, trialId: string, phase: Phase): string {
  return `${experiment}.${trialId}-${phase}`;
}

export function readQueueRecord(dir: string): QueueRecord | null {
  const path = join(dir, QUEUE_RECORD_FILE);
  if (!existsSync(path)) return null;
  let record: Partial<QueueRecord>;
  try {
    record = JSON.parse(readFileSync(path, 'utf8')) as Partial<QueueRecord>;
  } catch (error) {
    throw new RunInputError(`${path}: not valid JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  for (const key of ['url', 'queue', 'experiment'] as const) {
    if (typeof record[key] !== 'string' || record[key] === '') throw new RunInputError(`${path}: '${key}' must be a non-empty string`);
  }
  return record as QueueRecord;
}

/** The directory's record, made (with a fresh experiment key) on first use; the URL is updated. */
export function recordQueue(dir: string, address: QueueAddress): QueueRecord {
  const previous = readQueueRecord(dir);
  const record: QueueRecord = {
    url: address.url,
    queue: QUEUE_NAME,
    experiment: previous?.experiment ?? `x${randomBytes(5).toString('hex')}`,
    enqueuedAt: new Date().toISOString(),
  };
  writeFileAtomic(join(dir, QUEUE_RECORD_FILE), `${JSON.stringify(record, null, 2)}\n`);
  return record;
}

export interface TrialToEnqueue {
  id: string;
  /** ['search', 'retrain'], or ['retrain'] for a random trial (the contract's trialPhases). */
  phases: readonly Phase[];
}

export interface EnqueueResult {
  experiment: string;
  /** Job ids added now. */
  added: string[];
  /** Trials whose jobs were already in the queue (nothing added for them). */
  existing: string[];
}

function jobOptions(id: string): JobsOptions {
  return {
    jobId: id,
    attempts: JOB_ATTEMPTS_CEILING,
    backoff: { type: BACKOFF_TYPE },
    // Finished jobs stay: they are what makes a second enqueue a no-op and what status reads.
    removeOnComplete: false,
    removeOnFail: false,
  };
}

/** Connections to the queue for enqueueing (a Queue and a FlowProducer), kept open across calls. */
export class TrialQueue {
  readonly queue: Queue;
  private readonly flows: FlowProducer;

  constructor(address: QueueAddress) {
    const connection = connectionOptions(address);
    this.queue = new Queue(QUEUE_NAME, { connection });
    this.flows = new FlowProducer({ connection });
    // Connection failures are retried; a request that cannot complete surfaces as its own rejection.
    this.queue.on('error', () => {});
    this.flows.on('error', () => {});
  }

  /**
   * Adds the flows of the trials not yet in the queue for `experiment` (the directory is
   * already initialised and recorded; see enqueueTrials).
   */
  async addTrials(dir: string, experiment: string, trials: readonly TrialToEnqueue[]): Promise<EnqueueResult> {
    const absolute = resolve(dir);
    const result: EnqueueResult = { experiment, added: [], existing: [] };
    for (const trial of trials) {
      if (trial.phases.length === 0 || trial.phases.at(-1) !== 'retrain') {
        throw new Error(`trial ${trial.id}: phases ${JSON.stringify(trial.phases)} do not end with retrain`);
      }
    }
    // In chunks: the existence checks of a chunk travel together, its new flows in one addBulk.
    const CHUNK = 200;
    for (let start = 0; start < trials.length; start += CHUNK) {
      const chunk = trials.slice(start, start + CHUNK);
      const ids = chunk.map((trial) => trial.phases.map((phase) => jobId(experiment, trial.id, phase)));
      const found = await Promise.all(ids.map((phaseIds) => this.queue.getJob(phaseIds.at(-1)!)));
      const flows: FlowJob[] = [];
      chunk.forEach((trial, t) => {
        if (found[t] !== undefined) {
          result.existing.push(trial.id);
          return;
        }
        // The flow's tree: the last phase is the root, each earlier phase the child of the next.
        let flow: FlowJob | null = null;
        trial.phases.forEach((phase, index) => {
          const data: TrialJobData = { dir: absolute, trialId: trial.id, phase, experiment };
          flow = {
            name: phase,
            queueName: QUEUE_NAME,
            data,
            opts: { ...jobOptions(ids[t][index]), ...(index < trial.phases.length - 1 ? { failParentOnFailure: true } : {}) },
            ...(flow !== null ? { children: [flow] } : {}),
          };
        });
        flows.push(flow!);
        result.added.push(...ids[t]);
      });
      if (flows.length > 0) await this.flows.addBulk(flows);
    }
    return result;
  }

  async close(): Promise<void> {
    await this.flows.close();
    await this.queue.close();
  }
}

/**
 * Enqueues the trials of the experiment in `dir` (already initialised) on the queue at
 * `address`, recording the queue in DIR/queue.json. Trials whose final job already exists
 * are left alone.
 */
export async function enqueueTrials(address: QueueAddress, dir: string, trials: readonly TrialToEnqueue[]): Promise<EnqueueResult> {
  const record = recordQueue(resolve(dir), address);
  const queue = new TrialQueue(address);
  try {
    return await queue.addTrials(dir, record.experiment, trials);
  } finally {
    await queue.close();
  }
}
