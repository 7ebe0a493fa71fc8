/**
 * The queue side of `pcdarts experiment`: `experiment run SPEC --out DIR --queue URL
 * [--detach]` (prepare DIR as local mode does, enqueue the trials on Redis, wait while
 * `pcdarts worker`s run them, write results.json) and `experiment status DIR` (every trial:
 * state, worker, attempts, epoch, ETA; from DIR, plus the queue recorded in DIR when it answers).
 */
import { Command, Option } from 'commander';

import {
  collectResults, describeTrial, initExperimentDir, loadSpec, planTrials, readExperimentSpec, readTrial, trialIds,
  trialPhases, trialResult, type Trial, type TrialResult,
} from '../experiment/index.js';
import { formatDuration, oneLine, RunInputError, SIGNAL_EXIT_CODES, type StopSignal } from '../index.js';
import {
  checkReachable, enqueueTrials, parseQueueUrl, type PhaseJobState, type QueueAddress, readJobStates, readQueueRecord,
  type TrialToEnqueue, waitForTrials,
} from '../queue/index.js';

const toEnqueue = (trials: readonly Trial[]): TrialToEnqueue[] => trials.map((trial) => ({ id: trial.id, phases: trialPhases(trial) }));

/** `experiment run`'s queue flags. */
export function addQueueOptions(command: Command): Command {
  return command
    .addOption(new Option('--queue <url>', 'run the trials on `pcdarts worker`s through this Redis queue (redis://HOST:PORT[/DB]) instead of here; DIR must be on storage every worker reaches at the same path'))
    .addOption(new Option('--detach', 'with --queue: enqueue and return at once (follow with `pcdarts experiment status DIR`)'));
}

function progressText(state: PhaseJobState, now = Date.now()): string {
  const p = state.progress;
  if (p?.epoch === undefined) return '';
  const parts = [`epoch ${p.epoch}${p.epochs !== undefined ? `/${p.epochs}` : ''}`];
  if (p.loss !== undefined) parts.push(`loss ${Number.isFinite(p.loss) ? p.loss.toFixed(4) : String(p.loss)}`);
  if (p.accuracy !== undefined) parts.push(`accuracy ${p.accuracy.toFixed(4)}`);
  const eta = etaSeconds(state, now);
  if (eta !== null) parts.push(`ETA ${formatDuration(eta)}`);
  return parts.join(' ');
}

/** Seconds left in the phase, from the worker's last estimate, for a running phase only. */
function etaSeconds(state: PhaseJobState, now = Date.now()): number | null {
  const p = state.progress;
  if (state.state !== 'active' || p?.etaSeconds === undefined) return null;
  return Math.max(0, p.etaSeconds - (now - Date.parse(p.updatedAt)) / 1000);
}

/**
 * Runs `experiment run SPEC --out DIR --queue URL [--detach]`; returns the exit status.
 * Stopping the wait (SIGINT / SIGTERM) leaves the trials running on the workers.
 */
export async function runQueuedExperiment(specFile: string, options: { out: string; queue: string; detach?: boolean; parallel?: number; parallelGiven?: boolean }): Promise<number> {
  const err = (line: string): void => { process.stderr.write(`${line}\n`); };
  const dir = options.out;
  let address: QueueAddress;
  let trials: Trial[];
  let experiment: string;
  try {
    if (options.parallelGiven) throw new RunInputError('--parallel and --queue exclude each other: with --queue, each worker\'s --concurrency decides');
    address = parseQueueUrl(options.queue);
    const spec = loadSpec(specFile);
    await checkReachable(address);
    trials = initExperimentDir(dir, spec);
    const enqueued = await enqueueTrials(address, dir, toEnqueue(trials));
    experiment = enqueued.experiment;
    err(`pcdarts experiment: ${trials.length} trials in ${dir} on ${address.url}: ${enqueued.added.length} jobs added${enqueued.existing.length > 0 ? `, ${enqueued.existing.length} trials already queued` : ''}`);
  } catch (error) {
    err(`pcdarts experiment run: ${oneLine(error)}`);
    return error instanceof RunInputError ? 2 : 1;
  }
  if (options.detach) {
    process.stdout.write(`enqueued; follow with: pcdarts experiment status ${dir}\n`);
    return 0;
  }

  const stop = new AbortController();
  let stoppedBy: StopSignal | null = null;
  const handlers = (['SIGINT', 'SIGTERM'] as const).map((signal) => {
    const handler = (): void => {
      if (stoppedBy !== null) process.exit(SIGNAL_EXIT_CODES[signal]);
      stoppedBy = signal;
      stop.abort();
    };
    process.on(signal, handler);
    return [signal, handler] as const;
  });
  const byId = new Map(trials.map((t) => [t.id, t]));
  const seen = new Map<string, string>();
  let lastConnectionError = 0;
  try {
    const states = await waitForTrials(address, dir, experiment, toEnqueue(trials), {
      signal: stop.signal,
      pollMs: 1000,
      onConnectionError: (error) => {
        if (Date.now() - lastConnectionError < 10_000) return;
        lastConnectionError = Date.now();
        err(`queue ${address.url}: ${oneLine(error)} (reconnecting)`);
      },
      onPoll: (polled) => {
        for (const state of polled) {
          const words = state.state === 'active'
            ? `${state.phase} running on ${state.worker ?? '?'} (start ${state.attemptsStarted})${state.progress?.epoch !== undefined ? ` epoch ${state.progress.epoch}` : ''}`
            : state.state === 'failed' ? (/^child .* failed$/.test(state.failedReason ?? '') ? `${state.phase} not run (an earlier phase failed)` : `${state.phase} FAILED: ${state.failedReason ?? 'no reason recorded'}`)
              : state.state === 'completed' ? `${state.phase} done` : state.state === 'delayed' ? `${state.phase} to be retried` : null;
          if (words === null || seen.get(state.jobId) === words) continue;
          seen.set(state.jobId, words);
          const detail = state.state === 'active' ? progressText(state).replace(/^epoch \S+ ?/, '') : '';
          err(`trial ${describeTrial(byId.get(state.trialId)!)}: ${words}${detail ? ` ${detail}` : ''}`);
        }
      },
    });
    if (states === null) {
      err(`${stoppedBy}: stopped waiting; the trials go on in the queue (pcdarts experiment status ${dir}; run the same command again to wait and write results.json)`);
      return SIGNAL_EXIT_CODES[stoppedBy ?? 'SIGTERM'];
    }
    const results = collectResults(dir);
    const done = results.trials.filter((r) => r.state === 'done').length;
    const failed = results.trials.filter((r) => r.state === 'failed').length;
    process.stdout.write(`experiment finished: ${done} of ${results.trials.length} trials done${failed > 0 ? `, ${failed} failed (errors in ${dir}/results.json)` : ''}\nresults: ${dir}/results.json\n`);
    return 0;
  } catch (error) {
    err(`pcdarts experiment run: ${oneLine(error)}`);
    return error instanceof RunInputError ? 2 : 1;
  } finally {
    for (const [signal, handler] of handlers) process.off(signal, handler);
  }
}

// ------------------------------------------------------------------------------------------
// experiment status DIR

/** One trial as `experiment status` shows it. */
export interface TrialStatusRow {
  id: string;
  trial: string;
  /** done, failed, running, waiting, retrying, pending (not queued, not running). */
  state: string;
  phase: string | null;
  worker: string | null;
  attempts: number | null;
  epoch: string | null;
  etaSeconds: number | null;
  error: string | null;
}

function statusRow(trial: Trial, result: TrialResult, jobs: PhaseJobState[] | null): TrialStatusRow {
  const row: TrialStatusRow = { id: trial.id, trial: `${trial.label} seed ${trial.seed}`, state: result.state, phase: null, worker: null, attempts: null, epoch: null, etaSeconds: null, error: result.error ?? null };
  if (result.state === 'failed') row.phase = result.failedPhase ?? null;
  const mine = jobs?.filter((j) => j.trialId === trial.id) ?? [];
  // The phase that matters: the first that has not completed (else the last).
  const current = mine.find((j) => j.state !== 'completed') ?? mine.at(-1);
  if (current !== undefined) {
    row.worker = current.worker ?? null;
    row.attempts = current.attemptsStarted > 0 ? current.attemptsStarted : null;
    if (current.progress?.epoch !== undefined) row.epoch = `${current.progress.epoch}${current.progress.epochs !== undefined ? `/${current.progress.epochs}` : ''}`;
    if (result.state === 'pending') {
      row.phase = current.phase;
      row.state = { active: 'running', delayed: 'retrying', failed: 'failed', completed: 'done', missing: 'pending' }[current.state as string] ?? 'waiting';
      row.etaSeconds = etaSeconds(current);
      if (current.state === 'failed') row.error = current.failedReason ?? null;
    }
  }
  return row;
}

async function readStatus(dir: string): Promise<{ rows: TrialStatusRow[]; queueNote: string | null; ended: boolean }> {
  const spec = readExperimentSpec(dir);
  const planned = planTrials(spec);
  const present = new Set(trialIds(dir));
  const known = new Set(planned.map((t) => t.id));
  const trials = [...planned.filter((t) => present.has(t.id)), ...[...present].filter((id) => !known.has(id)).map((id) => readTrial(dir, id))];
  const results = trials.map((trial) => trialResult(dir, trial));
  let jobs: PhaseJobState[] | null = null;
  let queueNote: string | null = null;
  const record = readQueueRecord(dir);
  if (record !== null) {
    const address = parseQueueUrl(record.url, `${dir}/queue.json`);
    try {
      await checkReachable(address, `queue (${dir}/queue.json)`, 2000);
      jobs = await readJobStates(address, record.experiment, toEnqueue(trials));
      queueNote = `queue ${address.url}`;
    } catch (error) {
      queueNote = `${oneLine(error)}; states from the directory only`;
    }
  }
  const rows = trials.map((trial, i) => statusRow(trial, results[i], jobs));
  return { rows, queueNote, ended: rows.every((r) => r.state === 'done' || r.state === 'failed') };
}

function formatRows(rows: readonly TrialStatusRow[]): string {
  const headers = ['trial', 'id', 'state', 'phase', 'worker', 'attempts', 'epoch', 'ETA'];
  const cells = rows.map((r) => [r.trial, r.id, r.state, r.phase ?? '-', r.worker ?? '-', r.attempts === null ? '-' : String(r.attempts), r.epoch ?? '-', r.etaSeconds === null ? '-' : formatDuration(r.etaSeconds)]);
  const widths = headers.map((h, c) => Math.max(h.length, ...cells.map((row) => row[c].length)));
  const line = (row: readonly string[]): string => row.map((cell, c) => cell.padEnd(widths[c])).join('  ').trimEnd();
  const errors = rows.filter((r) => r.error !== null).map((r) => `  ${r.trial} (${r.id}): ${r.error}`);
  return [line(headers), ...cells.map(line), ...(errors.length > 0 ? ['errors:', ...errors] : [])].join('\n');
}

export function statusCommand(): Command {
  return new Command('status')
    .description('each trial of an experiment directory: state, phase, worker, attempts, epoch, ETA (from the directory, and from its queue when it answers); once every trial has ended, (re)writes DIR/results.json')
    .argument('<dir>', 'experiment directory')
    .addOption(new Option('--json', 'one JSON object per trial instead of the table'))
    .action(async (dir: string, options: { json?: boolean }) => {
      try {
        const { rows, queueNote, ended } = await readStatus(dir);
        if (options.json) {
          for (const row of rows) process.stdout.write(`${JSON.stringify(row)}\n`);
        } else {
          const counts = ['done', 'failed', 'running', 'waiting', 'retrying', 'pending'].map((s) => [s, rows.filter((r) => r.state === s).length] as const).filter(([, n]) => n > 0);
          process.stdout.write(`${dir}: ${rows.length} trials (${counts.map(([s, n]) => `${n} ${s}`).join(', ')})${queueNote ? `; ${queueNote}` : ''}\n${formatRows(rows)}\n`);
        }
        if (ended && rows.length > 0) {
          collectResults(dir);
          if (!options.json) process.stdout.write(`results: ${dir}/results.json\n`);
        }
        process.exitCode = 0;
      } catch (error) {
        process.stderr.write(`pcdarts experiment status: ${oneLine(error)}\n`);
        process.exitCode = error instanceof RunInputError ? 2 : 1;
      }
    });
}
