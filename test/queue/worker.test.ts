/**
 * The BullMQ layer against a real redis-server (127.0.0.1, its own port and directory): flows
 * of search -> retrain, duplicate enqueues, the worker's exit-status rules, a SIGKILLed worker,
 * a worker stopped with SIGTERM, and Redis restarted mid-run. The trials are the fake trial
 * entry (fake-trial.ts), which keeps to the contract at a few milliseconds an epoch; the
 * real entry runs in experiment-cli.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';

import { Queue } from 'bullmq';

import {
  checkReachable, connectionOptions, enqueueTrials, parseQueueUrl, QUEUE_NAME, readJobStates, readQueueRecord,
  type TrialToEnqueue, waitForTrials,
} from '../../src/queue/index.js';
import { RunInputError } from '../../src/run/errors.js';
import {
  expectedRetrainValue, FAKE_TRIAL, type FakeTrial, fakeValue, intervals, neverOverlapped, readJson, startWorkerProcess,
  stopWorkers, waitFor, type WorkerProcess, writeFakeTrials,
} from './helpers.js';
import { freePort, RedisServer } from './redis-server.js';

const ENTRY = [FAKE_TRIAL];
const toEnqueue = (trials: readonly FakeTrial[]): TrialToEnqueue[] => trials.map((t) => ({ id: t.id, phases: t.random ? ['retrain'] : ['search', 'retrain'] }));

describe('queue: addresses', () => {
  test('redis URLs parse, anything else is bad input naming the flag', () => {
    assert.deepEqual(parseQueueUrl('redis://127.0.0.1:6390/2'), { url: 'redis://127.0.0.1:6390/2', host: '127.0.0.1', port: 6390, db: 2, tls: false });
    assert.equal(parseQueueUrl('redis://h').port, 6379);
    const secret = parseQueueUrl('rediss://me:pw@h:1/0');
    assert.equal(secret.password, 'pw');
    assert.equal(secret.url, 'rediss://me@h:1/0', 'the password never reaches what is printed or recorded');
    for (const bad of ['localhost:6379', 'http://h:1', 'redis://h:1/x', 'redis://h:1/0?a=1']) {
      assert.throws(() => parseQueueUrl(bad), (e: unknown) => e instanceof RunInputError && e.message.startsWith(`--queue '${bad}'`));
    }
  });

  test('an address nobody answers on is a prompt bad-input error', async () => {
    const port = await freePort();
    const started = Date.now();
    await assert.rejects(checkReachable(parseQueueUrl(`redis://127.0.0.1:${port}`)), (e: unknown) => e instanceof RunInputError && /cannot reach Redis \(connection refused/.test(e.message));
    assert.ok(Date.now() - started < 3000);
  });
});

describe('queue: workers on a real redis-server', { concurrency: false }, () => {
  let redis: RedisServer;
  let root: string;
  const workers: WorkerProcess[] = [];

  before(async () => {
    redis = await RedisServer.start();
    root = mkdtempSync(join(tmpdir(), 'pcdarts-queue-'));
  });
  // Each test's workers go with it (a worker left running would take the next test's jobs).
  afterEach(async () => {
    await stopWorkers(workers);
    workers.length = 0;
  });
  after(async () => {
    await redis?.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  function worker(options: Parameters<typeof startWorkerProcess>[1] = {}): WorkerProcess {
    const started = startWorkerProcess(redis.url, { entry: ENTRY, ...options });
    workers.push(started);
    return started;
  }

  test('three workers run every phase once, search before retrain; enqueueing the same trials again adds nothing', async () => {
    const dir = join(root, 'three');
    const trials: FakeTrial[] = [
      ...['a1', 'b2', 'c3', 'd4'].map((id) => ({ id, epochs: 4, msPerEpoch: 20 })),
      ...['e5', 'f6'].map((id) => ({ id, epochs: 3, msPerEpoch: 20, random: true })),
    ];
    writeFakeTrials(dir, trials);
    const address = parseQueueUrl(redis.url);
    const first = await enqueueTrials(address, dir, toEnqueue(trials));
    assert.equal(first.added.length, 10);
    const again = await enqueueTrials(address, dir, toEnqueue(trials));
    assert.deepEqual(again, { experiment: first.experiment, added: [], existing: trials.map((t) => t.id) });
    assert.equal(readQueueRecord(dir)?.experiment, first.experiment);

    const three = [worker(), worker(), worker()];
    await Promise.all(three.map((w) => w.name));
    const states = await waitForTrials(address, dir, first.experiment, toEnqueue(trials), { pollMs: 100 });
    assert.ok(states.every((s) => s.state === 'completed'), JSON.stringify(states));
    for (const trial of trials) {
      const retrain = readJson<{ value: number }>(join(dir, 'trials', trial.id, 'retrain', 'result.json'));
      assert.equal(retrain.value, expectedRetrainValue(trial), `trial ${trial.id}`);
      assert.equal(intervals(dir, trial.id, 'retrain').filter((r) => r.event === 'start').length, 1);
      if (!trial.random) {
        const searchEnd = intervals(dir, trial.id, 'search').find((r) => r.event === 'end 0')!;
        assert.ok(intervals(dir, trial.id, 'retrain')[0].at >= searchEnd.at, 'retrain started after its search ended');
      }
    }
    const progress = states.find((s) => s.phase === 'retrain')!.progress!;
    assert.equal(progress.epoch, progress.epochs, 'the job keeps the last progress line');
    assert.ok(typeof progress.loss === 'number' && typeof progress.worker === 'string');
    const queue = new Queue(QUEUE_NAME, { connection: connectionOptions(address) });
    const counts = await queue.getJobCounts();
    const second = await enqueueTrials(address, dir, toEnqueue(trials));
    assert.deepEqual(second.added, [], 'a finished experiment enqueued again adds nothing');
    assert.deepEqual(await queue.getJobCounts(), counts);
    await queue.close();
    // The work was shared.
    const ran = new Set(three.map((w, i) => (w.events.some((e) => e.type === 'done') ? i : -1)).filter((i) => i >= 0));
    assert.ok(ran.size >= 2, `only ${ran.size} worker(s) ran jobs`);
  });

  test('exit status 2 fails at once (no retry, parent failed, error in the status file); other statuses are retried up to --attempts', async () => {
    const dir = join(root, 'failures');
    const trials: FakeTrial[] = [
      { id: 'bad', epochs: 2, msPerEpoch: 10, fail: { phase: 'search', exitCode: 2, times: 99 } },
      { id: 'flaky', epochs: 2, msPerEpoch: 10, fail: { phase: 'retrain', exitCode: 1, times: 1 } },
      { id: 'broken', epochs: 2, msPerEpoch: 10, random: true, fail: { phase: 'retrain', exitCode: 1, times: 99 } },
    ];
    writeFakeTrials(dir, trials);
    const address = parseQueueUrl(redis.url);
    const { experiment } = await enqueueTrials(address, dir, toEnqueue(trials));
    worker({ attempts: 2, concurrency: 2 });
    const states = await waitForTrials(address, dir, experiment, toEnqueue(trials), { pollMs: 100 });
    const state = (id: string, phase: string) => states.find((s) => s.trialId === id && s.phase === phase)!;

    assert.equal(state('bad', 'search').state, 'failed');
    assert.equal(state('bad', 'search').attemptsMade, 1, 'a permanent failure is not retried');
    assert.equal(state('bad', 'retrain').state, 'failed', 'the retrain of a failed search fails with it');
    const badStatus = readJson<{ state: string; error: string; exitCode: number }>(join(dir, 'trials', 'bad', 'search.status.json'));
    assert.deepEqual([badStatus.state, badStatus.exitCode], ['failed', 2]);
    assert.match(badStatus.error, /fake failure 2/);

    assert.equal(state('flaky', 'retrain').state, 'completed');
    assert.equal(state('flaky', 'retrain').attemptsMade, 2, 'one failed attempt, then success (BullMQ counts both)');
    assert.equal(readJson<{ value: number }>(join(dir, 'trials', 'flaky', 'retrain', 'result.json')).value, expectedRetrainValue(trials[1]));

    assert.equal(state('broken', 'retrain').state, 'failed');
    assert.equal(state('broken', 'retrain').attemptsMade, 2);
    const brokenStatus = readJson<{ state: string; error: string; exitCode: number; attempts: number }>(join(dir, 'trials', 'broken', 'retrain.status.json'));
    assert.deepEqual([brokenStatus.state, brokenStatus.exitCode, brokenStatus.attempts], ['failed', 1, 2]);
    assert.match(brokenStatus.error, /retrain of trial broken exited with status 1: pcdarts: fake failure 1 \(start 2\)/);
    assert.match(state('broken', 'retrain').failedReason!, /attempt 2 of 2/);
  });

  test('a worker that cannot see the experiment directory hands the job back without using an attempt', async () => {
    const dir = join(root, 'elsewhere');
    const trial: FakeTrial = { id: 'm1', epochs: 2, msPerEpoch: 10, random: true };
    const address = parseQueueUrl(redis.url);
    mkdirSync(dir, { recursive: true });
    const { experiment } = await enqueueTrials(address, dir, toEnqueue([trial]));
    const blind = worker();
    await waitFor(() => blind.events.some((e) => e.type === 'missing-dir'), 'the missing directory');
    const [handedBack] = await readJobStates(address, experiment, toEnqueue([trial]));
    assert.deepEqual([handedBack.state, handedBack.attemptsMade], ['delayed', 0]);
    await stopWorkers([blind]);
    // Once the directory is there (the storage mounted), the trial runs.
    writeFakeTrials(dir, [trial]);
    const queue = new Queue(QUEUE_NAME, { connection: connectionOptions(address) });
    await (await queue.getJob(handedBack.jobId))!.promote();
    await queue.close();
    worker();
    const [done] = await waitForTrials(address, dir, experiment, toEnqueue([trial]), { pollMs: 100 });
    assert.equal(done.state, 'completed');
  });

  test('a SIGKILLed worker: its child stops at a checkpoint, another worker resumes the trial to the same result, never two at once', async () => {
    const dir = join(root, 'killed');
    const trial: FakeTrial = { id: 'k1', epochs: 100, msPerEpoch: 50, random: true };
    writeFakeTrials(dir, [trial]);
    const address = parseQueueUrl(redis.url);
    const { experiment } = await enqueueTrials(address, dir, toEnqueue([trial]));
    const victim = worker();
    await victim.name;
    await waitFor(() => victim.events.some((e) => e.type === 'progress' && (e.progress.epoch ?? 0) >= 5), 'epoch 5 on the first worker');
    const rescuer = worker();
    await rescuer.name;
    const lastEpoch = (w: WorkerProcess): number => Math.max(0, ...w.events.map((e) => (e.type === 'progress' ? e.progress.epoch ?? 0 : 0)));
    await waitFor(() => lastEpoch(victim) >= 10, 'epoch 10 on the first worker');
    assert.ok(lastEpoch(victim) < 90, 'the victim is still mid-trial when it is killed');
    victim.child.kill('SIGKILL');
    const killedAt = Date.now();
    await victim.exited;
    const states = await waitForTrials(address, dir, experiment, toEnqueue([trial]), { pollMs: 100 });
    assert.equal(states[0].state, 'completed');
    assert.equal(states[0].attemptsMade, 1, 'a dead worker does not use up an attempt (the one counted is the success)');
    assert.equal(readJson<{ value: number }>(join(dir, 'trials', 'k1', 'retrain', 'result.json')).value, expectedRetrainValue(trial));
    const records = intervals(dir, 'k1', 'retrain');
    assert.ok(neverOverlapped(records), JSON.stringify(records));
    assert.deepEqual(records.map((r) => r.event), ['start', 'end 143', 'start', 'end 0'], 'the orphan stopped at a checkpoint when its worker died, the rescuer resumed');
    const pickedUp = records[2].at - killedAt;
    // 6 s lock + 2 s stalled check, and slack for a loaded machine.
    assert.ok(pickedUp < 12_000, `picked up again ${pickedUp} ms after the kill`);
    const restart = rescuer.events.find((e) => e.type === 'start')!;
    assert.ok(restart.type === 'start' && restart.attempt === 1 && restart.starts === 2, JSON.stringify(restart));
    const resumedAt = rescuer.events.find((e) => e.type === 'progress')!;
    assert.ok(resumedAt.type === 'progress' && (resumedAt.progress.epoch ?? 0) > 5, 'the rescuer resumed from the checkpoint, not from epoch 1');
  });

  test('a worker stopped with SIGTERM puts its job back without using an attempt', async () => {
    const dir = join(root, 'stopped');
    const trial: FakeTrial = { id: 's1', epochs: 30, msPerEpoch: 30, random: true };
    writeFakeTrials(dir, [trial]);
    const address = parseQueueUrl(redis.url);
    const { experiment } = await enqueueTrials(address, dir, toEnqueue([trial]));
    const first = worker();
    await first.name;
    await waitFor(() => first.events.some((e) => e.type === 'progress' && (e.progress.epoch ?? 0) >= 3), 'epoch 3');
    first.child.kill('SIGTERM');
    assert.equal((await first.exited).code, 143);
    const [waiting] = await readJobStates(address, experiment, toEnqueue([trial]));
    assert.deepEqual([waiting.state, waiting.attemptsMade], ['waiting', 0]);
    worker();
    const [done] = await waitForTrials(address, dir, experiment, toEnqueue([trial]), { pollMs: 100 });
    assert.deepEqual([done.state, done.attemptsMade], ['completed', 1]);
    assert.equal(readJson<{ value: number }>(join(dir, 'trials', 's1', 'retrain', 'result.json')).value, expectedRetrainValue(trial));
    assert.deepEqual(intervals(dir, 's1', 'retrain').map((r) => r.event), ['start', 'end 143', 'start', 'end 0']);
  });

  test('Redis killed and restarted mid-run: workers and the waiting client reconnect, every trial completes, nothing finished is lost', async () => {
    const dir = join(root, 'restart');
    const trials: FakeTrial[] = ['r1', 'r2', 'r3', 'r4'].map((id) => ({ id, epochs: 12, msPerEpoch: 40 }));
    writeFakeTrials(dir, trials);
    const address = parseQueueUrl(redis.url);
    const { experiment } = await enqueueTrials(address, dir, toEnqueue(trials));
    const two = [worker(), worker()];
    await Promise.all(two.map((w) => w.name));
    const waiting = waitForTrials(address, dir, experiment, toEnqueue(trials), { pollMs: 100 });
    await waitFor(() => two.some((w) => w.events.some((e) => e.type === 'done')), 'a first finished phase');
    await redis.restart('SIGKILL', 300);
    const states = await waiting;
    assert.ok(states.every((s) => s.state === 'completed'), JSON.stringify(states.map((s) => [s.jobId, s.state])));
    for (const trial of trials) {
      assert.equal(readJson<{ value: number }>(join(dir, 'trials', trial.id, 'retrain', 'result.json')).value, expectedRetrainValue(trial));
      for (const phase of ['search', 'retrain']) assert.ok(neverOverlapped(intervals(dir, trial.id, phase)), `${trial.id} ${phase}`);
    }
    assert.equal(fakeValue(trials[0], 7), readJson<{ value: number }>(join(dir, 'trials', 'r1', 'search', 'result.json')).value);
  });
});
