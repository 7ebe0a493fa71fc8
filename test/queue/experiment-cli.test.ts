/**
 * `pcdarts experiment run --queue` end to end with the real trial entry: three `pcdarts worker`
 * processes on one real redis-server (127.0.0.1, its own port and directory) run a tiny spec;
 * the worker running the search is SIGKILLed mid-search and Redis is killed and restarted
 * while the trials run; the experiment still completes, and results.json (genotypes, losses,
 * accuracies, errors) and every run log equal those of a local `--parallel 2` run of the same
 * spec bit for bit. Enqueueing the same spec again adds nothing; `experiment status` shows
 * each trial's state, worker and attempts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import type { ExperimentResults } from '../../src/index.js';
import { parseQueueUrl, readJobStates, readQueueRecord } from '../../src/queue/index.js';
import { comparableRecords, type Finished, pcdarts, readLog, start, waitFor } from '../cli/process.js';
import { freePort, RedisServer } from './redis-server.js';

const root = mkdtempSync(join(tmpdir(), 'pcdarts-queue-cli-'));

/** 8 search steps per epoch (architecture steps in the second), 4 retraining steps per epoch. */
const SPEC = {
  name: 'tiny-queue',
  dataset: 'fashion-mnist-bundled',
  search: { 'limit-train': 256, 'batch-size': 16, epochs: 2, 'warmup-epochs': 1, 'init-channels': 4, layers: 3, nodes: 2, 'checkpoint-every': 2 },
  train: { 'limit-train': 64, 'limit-test': 64, 'batch-size': 16, epochs: 2, 'init-channels': 4, layers: 3, 'checkpoint-every': 2 },
  grid: { methods: ['pcdarts', 'random', { method: 'darts-v1', label: 'bad lr', search: { lr: -1 } }], k: [2], seeds: [0] },
};

const trialsOf = (dir: string): ExperimentResults['trials'] => (JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as ExperimentResults).trials;

/** results.json without the times (which no two runs share). */
function comparableResults(dir: string): unknown {
  return trialsOf(dir).map(({ searchSeconds: _s, retrainSeconds: _r, ...rest }) => rest);
}

describe('pcdarts experiment run --queue', () => {
  const spec = join(root, 'tiny.json');
  writeFileSync(spec, JSON.stringify(SPEC, null, 2));
  const local = join(root, 'local');
  const queued = join(root, 'queued');
  let redis: RedisServer;
  const workers: ReturnType<typeof start>[] = [];
  let run: Finished;
  let killedWorker = '';

  before(async () => {
    const reference = await pcdarts('experiment', 'run', spec, '--out', local, '--parallel', '2');
    assert.equal(reference.code, 0, reference.stderr);

    redis = await RedisServer.start();
    for (let i = 0; i < 3; i += 1) workers.push(start(['worker', '--queue', redis.url, '--threads', '1']));
    const experiment = start(['experiment', 'run', spec, '--out', queued, '--queue', redis.url]);
    const pcId = trialsOf(local)[0].id;
    const searchDir = join(queued, 'trials', pcId, 'search');
    await waitFor(() => readLog(searchDir).some((r) => r.type === 'step' && r.epoch === 0 && r.step >= 3), 'step 3 of the search', 120_000);
    // The worker that runs the search, by its job's progress (worker id host:pid).
    const record = readQueueRecord(queued)!;
    const [search] = await readJobStates(parseQueueUrl(redis.url), record.experiment, [{ id: pcId, phases: ['search'] }]);
    killedWorker = search.worker!;
    const victim = workers.find((w) => killedWorker.endsWith(`:${w.child.pid}`))!;
    assert.ok(victim, `no worker process ${killedWorker}`);
    victim.child.kill('SIGKILL');
    await victim.done;
    await new Promise((resolve) => setTimeout(resolve, 500));
    await redis.restart('SIGKILL', 300);
    run = await experiment.done;
  });

  after(async () => {
    for (const w of workers) w.child.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.done));
    await redis?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('completes despite a SIGKILLed worker and a Redis restart, with the results of a local --parallel run bit for bit', () => {
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /experiment finished: 2 of 3 trials done, 1 failed/);
    assert.deepEqual(comparableResults(queued), comparableResults(local));
    const [pc, random, bad] = trialsOf(queued);
    assert.equal(bad.failedPhase, 'search');
    assert.equal(bad.error, '--lr: expected a number > 0, got -1');
    for (const t of [pc, random]) {
      for (const phase of t.random ? ['train'] : ['search', 'train']) {
        assert.deepEqual(comparableRecords(join(queued, 'trials', t.id, phase), ['step', 'epoch', 'test']), comparableRecords(join(local, 'trials', t.id, phase), ['step', 'epoch', 'test']), `${t.label} ${phase}`);
      }
      assert.equal(readFileSync(join(queued, 'trials', t.id, 'test.json'), 'utf8'), readFileSync(join(local, 'trials', t.id, 'test.json'), 'utf8'));
    }
    // The killed worker's search was resumed from its checkpoint by another worker.
    assert.ok(readLog(join(queued, 'trials', pc.id, 'search')).some((r) => r.type === 'resume'), 'the search resumed from a checkpoint');
    const searchStatus = JSON.parse(readFileSync(join(queued, 'trials', pc.id, 'search.status.json'), 'utf8')) as { pid: number };
    assert.ok(!killedWorker.endsWith(`:${searchStatus.pid}`));
  });

  it('enqueueing the same spec again adds nothing', async () => {
    const again = await pcdarts('experiment', 'run', spec, '--out', queued, '--queue', redis.url, '--detach');
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /3 trials in .* 0 jobs added, 3 trials already queued/);
  });

  it('experiment status lists each trial with its state, worker and attempts; experiment report works unchanged', async () => {
    const status = await pcdarts('experiment', 'status', queued, '--json');
    assert.equal(status.code, 0, status.stderr);
    const rows = status.stdout.trim().split('\n').map((l) => JSON.parse(l) as { id: string; state: string; worker: string | null; attempts: number | null; epoch: string | null; error: string | null });
    const results = trialsOf(queued);
    assert.deepEqual(rows.map((r) => [r.id, r.state]), results.map((t) => [t.id, t.state]));
    for (const row of rows) assert.match(row.worker ?? '', /^[^:]+:\d+$/);
    assert.equal(rows[0].epoch, '2/2', 'the last progress of the retraining');
    assert.equal(rows[2].error, '--lr: expected a number > 0, got -1');
    // The report of a queued experiment is made as for a local one.
    const report = await pcdarts('experiment', 'report', queued);
    assert.equal(report.code, 0, report.stderr);
    assert.match(readFileSync(join(queued, 'report.md'), 'utf8'), /pcdarts K=2 EN/);
    const table = await pcdarts('experiment', 'status', queued);
    assert.match(table.stdout, /3 trials \(2 done, 1 failed\); queue redis:\/\/127\.0\.0\.1:\d+/);
  });

  it('bad input: an unreachable queue and --detach without --queue are one-line errors, nothing created; status without its queue reads the directory', async () => {
    const port = await freePort();
    const fresh = join(root, 'never');
    const unreachable = await pcdarts('experiment', 'run', spec, '--out', fresh, '--queue', `redis://127.0.0.1:${port}`);
    assert.equal(unreachable.code, 2);
    assert.match(unreachable.stderr.trim(), /^pcdarts experiment run: --queue redis:\/\/127\.0\.0\.1:\d+: cannot reach Redis \(connection refused[^\n]*$/);
    const detached = await pcdarts('experiment', 'run', spec, '--out', fresh, '--detach');
    assert.equal(detached.code, 2);
    assert.match(detached.stderr.trim(), /^pcdarts experiment run: --detach needs --queue/);
    assert.throws(() => readFileSync(join(fresh, 'spec.json')), /ENOENT/);
    // With its queue down, status still reads the directory, and says so.
    await redis.stop();
    const offline = await pcdarts('experiment', 'status', queued);
    assert.equal(offline.code, 0, offline.stderr);
    assert.match(offline.stdout, /3 trials \(2 done, 1 failed\); queue \(.*queue\.json\) redis:\/\/127\.0\.0\.1:\d+: cannot reach Redis \(connection refused.*\); states from the directory only/);
    const worker = await pcdarts('worker', '--queue', 'localhost:6379');
    assert.equal(worker.code, 2);
    assert.match(worker.stderr.trim(), /^pcdarts worker: --queue 'localhost:6379': .*expected redis:\/\/HOST:PORT\[\/DB\]$/);
  });
});
