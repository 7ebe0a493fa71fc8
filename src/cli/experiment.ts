/**
 * `pcdarts experiment run SPEC --out DIR [--parallel N]`, `pcdarts experiment report DIR`, and
 * the hidden `pcdarts experiment trial DIR ID --phase search|retrain [--threads N]` that runs
 * one phase of one trial (the runner's and the queue workers' children). Exit statuses: 0
 * done (run: every trial ended, failed ones recorded), 2 bad input, 130/143 stopped by
 * SIGINT/SIGTERM (the children wrote checkpoints), 1 unexpected; trial: also 3 non-finite.
 */
import cliProgress from 'cli-progress';
import { Command, CommanderError, Option } from 'commander';

import { DEFAULT_SEARCH_CONFIG, DEFAULT_TRAIN_CONFIG, formatDuration, installStopHandlers, oneLine, RunInputError, SIGNAL_EXIT_CODES, StopRequest } from '../index.js';
import { errorLine, exitStatusOf } from './common.js';
import type { SearchConfig, SearchRuntime, TrainConfig, TrainRuntime } from '../index.js';
import {
  type PhaseConfigs, runExperiment, type RunnerEvent, runTrialPhase, type Trial, TRIAL_BUSY_EXIT_CODE, TrialBusyError,
} from '../experiment/index.js';
import { addQueueOptions, runQueuedExperiment, statusCommand } from './experiment-queue.js';
import { parseInteger, searchCommand } from './search.js';
import { trainCommand } from './train.js';

/** Parses `args` with `pcdarts <name>`'s own flag definitions; returns the options given and how to tell which were given. */
function parseFlags(make: () => Command, args: string[]): { options: Record<string, unknown>; given: (key: string) => boolean } {
  const command = make();
  let parsed: { options: Record<string, unknown>; given: (key: string) => boolean } | null = null;
  command.exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
  // The command is the action's last argument (train takes a positional genotype before its options).
  command.action((...args: unknown[]) => {
    const self = args[args.length - 1] as Command;
    parsed = { options: self.opts<Record<string, unknown>>(), given: (key) => self.getOptionValueSource(key) === 'cli' };
  });
  try {
    command.parse(args, { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) throw new RunInputError(`pcdarts ${command.name()} ${args.join(' ')}: ${oneLine(error).replace(/^error: /, '')}`);
    throw error;
  }
  if (parsed === null) throw new Error('the flags were not parsed');
  return parsed;
}

function runtimeOf(options: Record<string, unknown>, given: (key: string) => boolean): Partial<SearchRuntime> {
  const runtime: Partial<SearchRuntime> = {};
  if (options.activationBudget !== undefined) runtime.activationBudgetMiB = options.activationBudget as number;
  if (given('checkpointEvery')) runtime.checkpointEvery = options.checkpointEvery as number;
  if (options.dataWorkers !== undefined) runtime.dataWorkers = options.dataWorkers as number;
  if (options.prefetch !== undefined) runtime.prefetch = options.prefetch as number;
  return runtime;
}

/** A trial's settings, as `pcdarts search` and `pcdarts train` would take its flags. */
export function trialConfigs(trial: Trial): PhaseConfigs {
  return {
    search: () => {
      const { options, given } = parseFlags(searchCommand, trial.searchArgs);
      for (const key of ['archGradClip', 'searchSubset'] as const) if (options[key] === false) options[key] = null;
      const config: Partial<SearchConfig> = {};
      for (const key of Object.keys(DEFAULT_SEARCH_CONFIG)) if (given(key)) (config as Record<string, unknown>)[key] = options[key];
      return { config, runtime: runtimeOf(options, given) };
    },
    train: () => {
      const { options, given } = parseFlags(trainCommand, trial.trainArgs);
      const config: Partial<TrainConfig> = {};
      for (const key of Object.keys(DEFAULT_TRAIN_CONFIG)) if (key !== 'genotype' && given(key)) (config as Record<string, unknown>)[key] = options[key];
      return { config, runtime: runtimeOf(options, given) as Partial<TrainRuntime>, nodes: options.nodes as number | undefined };
    },
  };
}

function trialCommand(): Command {
  return new Command('trial')
    .description('(internal) run one phase of one trial of an experiment directory: what experiment run and queue workers start')
    .argument('<dir>', 'experiment directory')
    .argument('<id>', 'trial id (a folder of DIR/trials)')
    .addOption(new Option('--phase <phase>', 'the phase').choices(['search', 'retrain']).makeOptionMandatory())
    .addOption(new Option('--threads <n>', 'kernel threads (results do not depend on it)').argParser(parseInteger))
    .action(async (dir: string, id: string, options: { phase: 'search' | 'retrain'; threads?: number }) => {
      // A parent that is gone (a killed runner or worker) stops the phase like SIGTERM: checkpoint, exit.
      const stop = installStopHandlers();
      const parent = process.ppid;
      const watch = setInterval(() => { if (process.ppid !== parent) stop.request.request('SIGTERM'); }, 250);
      watch.unref();
      process.stdout.on('error', () => { /* the parent is gone: nobody reads the progress */ });
      try {
        process.exitCode = await runTrialPhase({
          dir, id, phase: options.phase, threads: options.threads ?? null, stop: stop.request, configs: trialConfigs,
          report: (message) => { process.stdout.write(`${JSON.stringify(message)}\n`); },
        });
      } catch (error) {
        process.stderr.write(`pcdarts experiment trial: ${errorLine(error)}\n`);
        process.exitCode = error instanceof TrialBusyError ? TRIAL_BUSY_EXIT_CODE : exitStatusOf(error);
      } finally {
        clearInterval(watch);
        stop.dispose();
      }
    });
}

/** Terminal: a bar with an ETA over the whole experiment and the state lines above it; else timestamped lines. */
class ExperimentProgress {
  private readonly bars: cliProgress.MultiBar | null;
  private bar: cliProgress.SingleBar | null = null;
  private readonly started = Date.now();
  private lastLine = 0;
  private startDone = 0;
  private total = 0;

  constructor(private readonly stream: NodeJS.WriteStream) {
    this.bars = stream.isTTY ? new cliProgress.MultiBar({
      stream, format: '{bar} {percentage}% | {value}/{total} epochs | ETA {eta_formatted} | {status}',
      etaBuffer: 20, hideCursor: true, clearOnComplete: false, autopadding: true, fps: 2,
    }, cliProgress.Presets.shades_classic) : null;
  }

  start(total: number, done: number, status: string): void {
    this.total = total;
    this.startDone = done;
    if (this.bars) this.bar = this.bars.create(total, round(done), { status });
    else this.line(done, status, true);
  }

  update(done: number, status: string): void {
    if (this.bar) this.bar.update(round(done), { status });
    else this.line(done, status, false);
  }

  note(text: string): void {
    if (this.bars) this.bars.log(`${text}\n`);
    else this.stream.write(`[${formatDuration((Date.now() - this.started) / 1000)}] ${text}\n`);
  }

  stop(): void {
    this.bars?.stop();
  }

  private line(done: number, status: string, force: boolean): void {
    const now = Date.now();
    if (!force && now - this.lastLine < 30_000) return;
    this.lastLine = now;
    const rate = (done - this.startDone) / ((now - this.started) / 1000);
    const eta = rate > 0 ? formatDuration((this.total - done) / rate) : '?';
    this.stream.write(`[${formatDuration((now - this.started) / 1000)}] ${round(done)}/${this.total} epochs (${this.total > 0 ? Math.floor((100 * done) / this.total) : 100}%), ETA ${eta} | ${status}\n`);
  }
}

const round = (v: number): number => Math.round(v * 10) / 10;

function runCommand(): Command {
  return addQueueOptions(new Command('run'))
    .description('run every trial of an experiment spec (search, then retraining of its genotype); rerun the same command to continue')
    .argument('<spec>', 'experiment spec (JSON), e.g. experiments/quick.json')
    .addOption(new Option('-o, --out <dir>', 'experiment directory (created, or continued when it holds this spec\'s trials)').makeOptionMandatory())
    .addOption(new Option('--parallel <n>', 'trials at once, as child processes sharing the cores (threads = cores / N)').argParser(parseInteger).default(1))
    .action(async (spec: string, options: { out: string; parallel: number; queue?: string; detach?: boolean }, self: Command) => {
      if (options.queue !== undefined) {
        process.exitCode = await runQueuedExperiment(spec, { ...options, queue: options.queue, parallelGiven: self.getOptionValueSource('parallel') === 'cli' });
        return;
      }
      if (options.detach) {
        process.stderr.write('pcdarts experiment run: --detach needs --queue (a local run stops with this process)\n');
        process.exitCode = 2;
        return;
      }
      const progress = new ExperimentProgress(process.stderr);
      const stopRequest = new StopRequest();
      const handlers = installStopHandlers({
        onFirst: (signal) => progress.note(`${signal}: stopping the running trials after their current step (they write checkpoints); send it again to quit at once`),
      });
      // The handlers' own request is what signals fill; mirror it into the runner's.
      const mirror = setInterval(() => { if (handlers.request.requested) stopRequest.request(handlers.request.signal!); }, 50);
      let status = '';
      const onEvent = (event: RunnerEvent): void => {
        if (event.type === 'plan') {
          const done = event.trials.length;
          progress.note(`pcdarts experiment: ${done} trials in ${options.out}, ${options.parallel} at a time, ${event.threads} thread${event.threads === 1 ? '' : 's'} each`);
          progress.start(event.totalEpochs, event.doneEpochs, 'starting');
        } else if (event.type === 'state') {
          progress.note(event.line);
        } else {
          const m = event.message;
          status = `${event.trial.label} seed ${event.trial.seed} ${event.phase} epoch ${m.epoch}/${m.epochs} loss ${Number.isFinite(m.loss) ? m.loss.toFixed(4) : m.loss}`;
          progress.update(event.doneEpochs, status);
        }
      };
      try {
        const outcome = await runExperiment({ spec, out: options.out, parallel: options.parallel, stop: stopRequest, onEvent });
        progress.stop();
        const t = outcome.results.trials;
        const done = t.filter((r) => r.state === 'done').length;
        const failed = t.filter((r) => r.state === 'failed').length;
        if (outcome.status === 'stopped') {
          process.stderr.write(`stopped: ${done} of ${t.length} trials done; run the same command again to continue\n`);
          process.exitCode = SIGNAL_EXIT_CODES[stopRequest.signal ?? 'SIGTERM'];
          return;
        }
        process.stdout.write(`experiment finished: ${done} of ${t.length} trials done${failed > 0 ? `, ${failed} failed (errors in ${options.out}/results.json)` : ''}\nresults: ${options.out}/results.json\n`);
        try {
          const written = await writeReport(options.out);
          process.stdout.write(`report: ${written.markdown}\nreport: ${written.html}\n`);
        } catch (error) {
          process.stderr.write(`warning: the report was not written: ${oneLine(error)}\n`);
        }
        process.exitCode = 0;
      } catch (error) {
        progress.stop();
        process.stderr.write(`pcdarts experiment run: ${errorLine(error)}\n`);
        process.exitCode = exitStatusOf(error);
        if (!(error instanceof RunInputError)) process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
      } finally {
        clearInterval(mirror);
        handlers.dispose();
      }
    });
}

/** Writes DIR/report.md and DIR/report.html; returns their paths. */
async function writeReport(dir: string): Promise<{ markdown: string; html: string }> {
  const { writeExperimentReport } = await import('../experiment/report-html.js');
  return writeExperimentReport(dir);
}

function reportCommand(): Command {
  return new Command('report')
    .description('write DIR/report.md and DIR/report.html: tables shaped like the paper\'s Tables 3 and 4 (mean ± std over seeds, every run), accuracy against search cost per K, the cells found, operation frequencies')
    .argument('<dir>', 'experiment directory (experiment run --out)')
    .action(async (dir: string) => {
      try {
        const { readExperimentSpec } = await import('../experiment/index.js');
        readExperimentSpec(dir);
        const written = await writeReport(dir);
        process.stdout.write(`report: ${written.markdown}\nreport: ${written.html}\n`);
        process.exitCode = 0;
      } catch (error) {
        process.stderr.write(`pcdarts experiment report: ${oneLine(error)}\n`);
        process.exitCode = error instanceof RunInputError ? 2 : 1;
      }
    });
}

export function experimentCommand(): Command {
  const command = new Command('experiment')
    .description('experiments: a grid of searches and retrainings (methods, K, edge normalisation, seeds) with results tables');
  // Errors of the subcommands as one line on stderr and exceptions (main.ts decides the status), as for the others.
  const configure = (sub: Command): Command => sub.exitOverride().showSuggestionAfterError(true).configureOutput({
    outputError: (text, write) => {
      const line = text.split('\n').map((l) => l.trim()).filter((l) => l !== '').join(' ').replace(/^error: /, '');
      write(`pcdarts experiment ${sub.name()}: ${line}\n`);
    },
  });
  command.addCommand(configure(runCommand()));
  command.addCommand(configure(statusCommand()));
  command.addCommand(configure(reportCommand()));
  command.addCommand(configure(trialCommand()), { hidden: true });
  return command;
}
