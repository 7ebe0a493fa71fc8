/**
 * What `pcdarts search` and `pcdarts train` do around a run, in one place: the progress bar
 * and its lines, SIGINT/SIGTERM handling with the resume hint, and the report at the end.
 */
import {
  createProgress, installStopHandlers, NON_FINITE_EXIT_CODE, NonFiniteError, oneLine, RunInputError, SIGNAL_EXIT_CODES,
  type LoopOutcome, type RunOptions,
} from '../index.js';
import { commandLine, invocation } from './common.js';

export interface DrivenRun<StepRecord, EpochRecord, Outcome extends LoopOutcome> {
  readonly directory: string;
  readonly position: { epoch: number; step: number };
  readonly config: { epochs: number };
  run(options: RunOptions<StepRecord, EpochRecord>): Promise<Outcome>;
  dispose(): void;
}

export interface SessionFormat<StepRecord, EpochRecord> {
  step(record: StepRecord, epochs: number): string;
  epoch(record: EpochRecord, epochs: number): string;
}

function err(line: string): void {
  process.stderr.write(`${line}\n`);
}

/**
 * Runs to the end or to a stop signal with a progress display. Returns the outcome of a
 * finished run, or the exit code of one that did not finish, after printing one line: 130/143
 * stopped by a signal (with how to resume), 3 a non-finite number, 2 a failed write.
 * Disposes the run either way.
 */
export async function driveRun<StepRecord, EpochRecord, Outcome extends LoopOutcome>(
  command: 'search' | 'train',
  run: DrivenRun<StepRecord, EpochRecord, Outcome>,
  format: SessionFormat<StepRecord, EpochRecord>,
): Promise<Outcome | number> {
  const dir = run.directory;
  const progress = createProgress(process.stderr);
  const stop = installStopHandlers({
    onFirst: (signal) => progress.note(`${signal}: finishing the current step, then writing a checkpoint (send it again to quit at once)`),
  });
  try {
    const { epoch, step } = run.position;
    progress.note(epoch === 0 && step === 0
      ? `pcdarts ${command}: run directory ${dir}`
      : `pcdarts ${command}: resuming ${dir} in epoch ${epoch + 1}/${run.config.epochs} after step ${step} of it`);
    const epochs = run.config.epochs;
    let outcome: Outcome;
    try {
      outcome = await run.run({
        stop: stop.request,
        events: {
          onStart: ({ total, done }) => progress.start(total, done, `epoch ${epoch + 1}/${epochs}`),
          onStep: (record, p) => progress.update(p.done, format.step(record, epochs)),
          onEpoch: (record) => progress.note(format.epoch(record, epochs)),
        },
      });
    } catch (error) {
      // A non-finite number (exit 3) or a failed write (exit 2): one line, the last checkpoint intact.
      if (!(error instanceof NonFiniteError || error instanceof RunInputError)) throw error;
      progress.stop();
      err(`pcdarts ${command}: ${oneLine(error)}`);
      return error instanceof NonFiniteError ? NON_FINITE_EXIT_CODE : 2;
    }
    progress.stop();
    if (outcome.status === 'stopped' && outcome.signal !== null) {
      err(`stopped by ${outcome.signal} in epoch ${outcome.epoch + 1}/${epochs} after step ${outcome.step} of it; checkpoint written; resume with: ${commandLine([command, '--resume', dir])}`);
      return SIGNAL_EXIT_CODES[outcome.signal];
    }
    return outcome;
  } finally {
    progress.stop();
    stop.dispose();
    run.dispose();
  }
}

/** Writes DIR/report.html; a failure only warns (the run itself succeeded). */
export async function writeReportAfterRun(dir: string): Promise<void> {
  try {
    // Loaded on demand: Vega, Graphviz and resvg are not needed before the run ends.
    const { writeRunReport } = await import('../viz/index.js');
    const report = await writeRunReport(dir, undefined, { invocation: invocation() });
    process.stdout.write(`report: ${report.path}\n`);
  } catch (error) {
    err(`warning: the HTML report was not written: ${oneLine(error)}`);
  }
}
