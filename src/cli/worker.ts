/**
 * `pcdarts worker --queue redis://HOST:PORT[/DB]`: takes experiment trials from the queue and
 * runs each as a child process of `pcdarts experiment trial` (src/queue/worker.ts), until
 * SIGINT / SIGTERM: then it passes SIGTERM to its trials (they checkpoint), puts their jobs
 * back on the queue and exits 130 / 143. Start one per machine; run directories must be on
 * storage every worker reaches at the same path (README, "Many machines").
 */
import { availableParallelism } from 'node:os';

import { Command, InvalidArgumentError, Option } from 'commander';

import { oneLine, RunInputError, SIGNAL_EXIT_CODES, type StopSignal } from '../index.js';
import { cappedThreads, reportFailure } from './common.js';
import {
  checkReachable, DEFAULT_ATTEMPTS, DEFAULT_LOCK_DURATION_MS, DEFAULT_STALLED_INTERVAL_MS, parseQueueUrl, TrialWorker,
  type WorkerEvent,
} from '../queue/index.js';
import { parseInteger } from './search.js';

function positive(value: string): number {
  const n = parseInteger(value);
  if (n < 1) throw new InvalidArgumentError('expected an integer of at least 1.');
  return n;
}

function formatEvent(event: WorkerEvent): string | null {
  switch (event.type) {
    case 'start': return `${event.job}: started (attempt ${event.attempt} of ${event.attempts}${event.starts > event.attempt ? `; start ${event.starts}: a worker running it before died or stopped` : ''})`;
    case 'progress': {
      const p = event.progress;
      // One line per epoch (the entry also reports steps, about once a second).
      if (p.epoch === undefined || !event.epochEnd) return null;
      const parts = [`${event.job}: epoch ${p.epoch}${p.epochs !== undefined ? `/${p.epochs}` : ''}`];
      if (p.loss !== undefined) parts.push(`loss ${p.loss.toFixed(4)}`);
      if (p.accuracy !== undefined) parts.push(`accuracy ${p.accuracy.toFixed(4)}`);
      return parts.join(' ');
    }
    case 'done': return `${event.job}: done in ${event.seconds.toFixed(1)} s`;
    case 'failed': return `${event.job}: ${event.error}${event.permanent ? ' (permanent, not retried)' : event.willRetry ? ' (will retry)' : ' (attempts used up)'}`;
    case 'requeued': return `${event.job}: back to waiting (${event.reason})`;
    case 'stalled': return `${event.job}: its worker stopped renewing the lock; back to waiting`;
    case 'connection': return `queue: ${event.message}`;
    case 'missing-dir': return `${event.job}: ${event.dir}: no such experiment directory on this machine (is the shared storage mounted at the same path?); job handed back to the queue`;
  }
}

export function workerCommand(): Command {
  return new Command('worker')
    .description('run experiment trials from a Redis queue (start one per machine; see README "Many machines")')
    .addOption(new Option('--queue <url>', 'the queue: redis://HOST:PORT[/DB]').makeOptionMandatory())
    .addOption(new Option('--concurrency <n>', 'trials run at once (child processes)').argParser(positive).default(1))
    .addOption(new Option('--threads <n>', 'kernel threads per trial; results do not depend on it (default: cores / concurrency)').argParser(positive))
    .addOption(new Option('--attempts <n>', 'attempts per trial phase before a transient failure (crash, signal) is final; bad input and non-finite numbers are never retried').argParser(positive).default(DEFAULT_ATTEMPTS))
    .action(async (options: { queue: string; concurrency: number; threads?: number; attempts: number }) => {
      process.exitCode = await runWorker(options);
    });
}

async function runWorker(options: { queue: string; concurrency: number; threads?: number; attempts: number }): Promise<number> {
  const err = (line: string): void => { process.stderr.write(`pcdarts worker: ${line}\n`); };
  let worker: TrialWorker;
  const threads = cappedThreads('worker', options.threads) ?? Math.max(1, Math.floor(availableParallelism() / options.concurrency));
  try {
    const address = parseQueueUrl(options.queue);
    await checkReachable(address);
    worker = new TrialWorker({
      address,
      concurrency: options.concurrency,
      threads,
      attempts: options.attempts,
      onEvent: (event) => {
        const line = formatEvent(event);
        if (line !== null) err(line);
      },
    });
    await worker.start();
    err(`${worker.name} on ${address.url}: ${options.concurrency} trial(s) at once, ${threads} thread(s) each, ${options.attempts} attempt(s); job lock ${DEFAULT_LOCK_DURATION_MS / 1000} s, stalled check every ${DEFAULT_STALLED_INTERVAL_MS / 1000} s`);
  } catch (error) {
    return reportFailure('worker', error);
  }
  const signal = await new Promise<StopSignal>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  err(`${signal}: stopping; running trials checkpoint and go back to the queue (send it again to quit at once)`);
  process.once(signal, () => process.exit(SIGNAL_EXIT_CODES[signal]));
  await worker.close();
  return SIGNAL_EXIT_CODES[signal];
}
