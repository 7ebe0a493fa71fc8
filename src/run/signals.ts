/**
 * Graceful stop on SIGINT / SIGTERM: the first signal only sets a flag that the loop reads
 * between steps (finish the step, write a checkpoint, return); a second one of the same kind
 * calls `onRepeat` (by default: exit at once with the signal's status). The loops yield to the
 * event loop between steps (`yieldToEventLoop`) so that the handlers get to run.
 */

export type StopSignal = 'SIGINT' | 'SIGTERM';

/** Shell convention: 128 + signal number. */
export const SIGNAL_EXIT_CODES: Readonly<Record<StopSignal, number>> = { SIGINT: 130, SIGTERM: 143 };

/** What a loop polls; tests and library users can request a stop without a real signal. */
export class StopRequest {
  signal: StopSignal | null = null;

  get requested(): boolean {
    return this.signal !== null;
  }

  request(signal: StopSignal): void {
    if (this.signal === null) this.signal = signal;
  }
}

export interface StopHandlers {
  readonly request: StopRequest;
  /** Removes the handlers (restoring Node's default behaviour). */
  dispose(): void;
}

/** Installs SIGINT and SIGTERM handlers that fill a StopRequest. */
export function installStopHandlers(options: {
  onFirst?: (signal: StopSignal) => void;
  onRepeat?: (signal: StopSignal) => void;
} = {}): StopHandlers {
  const request = new StopRequest();
  const onRepeat = options.onRepeat ?? ((signal: StopSignal) => process.exit(SIGNAL_EXIT_CODES[signal]));
  const handlers = (['SIGINT', 'SIGTERM'] as const).map((signal) => {
    const handler = (): void => {
      if (request.requested) {
        onRepeat(signal);
        return;
      }
      request.request(signal);
      options.onFirst?.(signal);
    };
    process.on(signal, handler);
    return [signal, handler] as const;
  });
  return {
    request,
    dispose: () => { for (const [signal, handler] of handlers) process.off(signal, handler); },
  };
}

/** Lets pending I/O and signal handlers run (a synchronous loop would never see them). */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
