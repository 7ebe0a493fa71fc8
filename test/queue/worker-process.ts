/**
 * A queue worker as its own process for the tests (so one can be SIGKILLed): the library's
 * TrialWorker, started from a JSON argument, with its events as JSON lines on stdout. The
 * real `pcdarts worker` command is the same class behind commander.
 */
import { parseQueueUrl, TrialWorker, type TrialWorkerOptions } from '../../src/queue/index.js';

const options = JSON.parse(process.argv[2]) as Omit<TrialWorkerOptions, 'address' | 'onEvent'> & { url: string };
const worker = new TrialWorker({
  ...options,
  address: parseQueueUrl(options.url),
  onEvent: (event) => process.stdout.write(`${JSON.stringify(event)}\n`),
});
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    void worker.close().then(() => process.exit(signal === 'SIGTERM' ? 143 : 130));
  });
}
await worker.start();
process.stdout.write(`${JSON.stringify({ type: 'ready', name: worker.name })}\n`);
