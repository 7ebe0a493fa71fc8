/**
 * Preloaded into every trial child a queue worker starts (`node --import orphan-guard.js ...`).
 * When the worker dies without a word (SIGKILL, a machine's OOM killer), the child is
 * re-parented and its stdout/stderr pipes lose their reader. The guard notices either (the
 * parent id changes; a write fails with EPIPE) and sends the child SIGTERM, so the trial
 * checkpoints and exits as on any SIGTERM, instead of crashing on the broken pipe or writing
 * its run directory on while BullMQ gives the job to another worker. Polling the parent id is
 * the portable way: Node has no PR_SET_PDEATHSIG.
 */
const parentPid = process.ppid;
const POLL_MS = 200;
let orphaned = false;

function stop(): void {
  if (orphaned) return;
  orphaned = true;
  clearInterval(timer);
  process.kill(process.pid, 'SIGTERM');
}

const timer = setInterval(() => {
  if (process.ppid !== parentPid) stop();
}, POLL_MS);
timer.unref();

for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    // Nobody reads our output any more: go quiet and stop at the next checkpoint.
    if (error.code === 'EPIPE' || error.code === 'ERR_STREAM_DESTROYED') stop();
    else throw error;
  });
}

export {};
