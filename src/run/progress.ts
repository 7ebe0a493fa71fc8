/**
 * Progress sinks: the only place where the run machinery's progress reaches a terminal.
 * Loops report (done, total, a short status text) and one-line notes; a sink renders them
 * as a cli-progress bar with ETA on a terminal, as plain timestamped lines otherwise (logs,
 * pipes, CI), or not at all.
 */
import cliProgress from 'cli-progress';

export interface ProgressReporter {
  /** Begins a phase of `total` units of which `done` are done already (a resumed run). */
  start(total: number, done: number, status?: string): void;
  update(done: number, status?: string): void;
  /** A line of its own (an epoch summary), shown without breaking the bar. */
  note(line: string): void;
  stop(): void;
}

/** "12s", "3m05s", "2h07m". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** Seconds left at the average rate since `start` (NaN before any progress). */
export function estimateSecondsLeft(startDone: number, startMs: number, done: number, total: number, nowMs: number): number {
  const progressed = done - startDone;
  if (progressed <= 0) return Number.NaN;
  return ((nowMs - startMs) / 1000 / progressed) * (total - done);
}

export const SILENT_PROGRESS: ProgressReporter = { start() {}, update() {}, note() {}, stop() {} };

/**
 * Plain lines: "[12s] 40/400 steps (10%), ETA 1m48s | status", at most one per `intervalMs`
 * (and always the last one), and every note.
 */
export class LineProgress implements ProgressReporter {
  private total = 0;
  private startDone = 0;
  private startMs = 0;
  private lastLineMs = -Infinity;

  constructor(private readonly write: (line: string) => void, private readonly intervalMs = 10_000, private readonly now = () => Date.now(), private readonly unit = 'steps') {}

  start(total: number, done: number, status?: string): void {
    this.total = total;
    this.startDone = done;
    this.startMs = this.now();
    this.lastLineMs = -Infinity;
    this.line(done, status);
  }

  update(done: number, status?: string): void {
    const now = this.now();
    if (done < this.total && now - this.lastLineMs < this.intervalMs) return;
    this.line(done, status);
  }

  note(line: string): void {
    this.write(line);
  }

  stop(): void {}

  private line(done: number, status?: string): void {
    const now = this.now();
    this.lastLineMs = now;
    const percent = this.total > 0 ? Math.floor((100 * done) / this.total) : 100;
    const eta = estimateSecondsLeft(this.startDone, this.startMs, done, this.total, now);
    const elapsed = formatDuration((now - this.startMs) / 1000);
    this.write(`[${elapsed}] ${done}/${this.total} ${this.unit} (${percent}%), ETA ${formatDuration(eta)}${status ? ` | ${status}` : ''}`);
  }
}

/** A cli-progress bar on a terminal stream. */
export class TerminalProgress implements ProgressReporter {
  private readonly bars: cliProgress.MultiBar;
  private bar: cliProgress.SingleBar | null = null;

  constructor(stream: NodeJS.WriteStream, unit = 'steps') {
    this.bars = new cliProgress.MultiBar({
      stream,
      format: `{bar} {percentage}% | {value}/{total} ${unit} | ETA {eta_formatted} | {status}`,
      etaBuffer: 50,
      hideCursor: true,
      clearOnComplete: false,
      autopadding: true,
    }, cliProgress.Presets.shades_classic);
  }

  start(total: number, done: number, status = ''): void {
    this.bar?.stop();
    this.bar = this.bars.create(total, done, { status });
  }

  update(done: number, status?: string): void {
    this.bar?.update(done, status === undefined ? undefined : { status });
  }

  note(line: string): void {
    this.bars.log(`${line}\n`);
  }

  stop(): void {
    this.bars.stop();
    this.bar = null;
  }
}

/** A bar on a terminal, plain lines otherwise. */
export function createProgress(stream: NodeJS.WriteStream, options: { intervalMs?: number; unit?: string } = {}): ProgressReporter {
  return stream.isTTY
    ? new TerminalProgress(stream, options.unit)
    : new LineProgress((line) => { stream.write(`${line}\n`); }, options.intervalMs, undefined, options.unit);
}
