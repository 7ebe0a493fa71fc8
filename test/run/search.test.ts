/**
 * The search loop in-process, on the reference backend with a tiny network: the files it
 * writes, bad settings, and that a stopped and resumed run equals an uninterrupted one.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import '../../src/kernels/ref/backend.js';
import { parseGenotypeJSON } from '../../src/darts/genotype.js';
import type { Dataset } from '../../src/data/index.js';
import { readCheckpoint } from '../../src/run/checkpoint.js';
import { RunInputError } from '../../src/run/errors.js';
import {
  checkSearchConfig, DEFAULT_SEARCH_CONFIG, type SearchCheckpointState, type SearchConfig, type SearchEpochRecord,
  SearchRun, type SearchStepRecord,
} from '../../src/run/search.js';
import { StopRequest } from '../../src/run/signals.js';

process.env.PCDARTS_BACKEND = 'ref';
const root = mkdtempSync(join(tmpdir(), 'pcdarts-search-'));
after(() => rmSync(root, { recursive: true, force: true }));

const TINY: Partial<SearchConfig> = {
  limitTrain: 48, batchSize: 8, epochs: 2, warmupEpochs: 1, initChannels: 4, layers: 3, nodes: 2, k: 2,
};

type LogRecord = { type: string } & Record<string, unknown>;
function readLog(dir: string): LogRecord[] {
  return readFileSync(join(dir, 'log.jsonl'), 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as LogRecord);
}
/** What must not depend on interruptions: everything but timings and memory. */
function comparable(records: LogRecord[]): unknown[] {
  return records.filter((r) => r.type === 'step' || r.type === 'epoch').map((r) => {
    const { images_per_s: _rate, data_wait_ms: _wait, seconds: _seconds, peak_rss_mb: _rss, peak_tensor_mb: _tensor, ...rest } = r;
    return rest;
  });
}
const inputError = (pattern: RegExp) => (e: unknown): boolean =>
  e instanceof RunInputError && pattern.test(e.message) && !e.message.includes('\n');

function syntheticDataset(size: number, count = 16): Dataset {
  return {
    name: 'synthetic', split: 'train', images: new Uint8Array(count * size * size), labels: new Int32Array(count), count,
    channels: 1, height: size, width: size, classes: 10, classNames: Array.from({ length: 10 }, (_, i) => String(i)),
    mean: [0.5], std: [0.25],
  };
}

describe('search settings', () => {
  it('defaults to the paper\'s CIFAR-10 settings on the bundled subset', () => {
    assert.deepEqual({ ...DEFAULT_SEARCH_CONFIG }, {
      network: 'cifar', dataset: 'fashion-mnist-bundled', data: null, batchSize: 256, lr: 0.1, lrMin: 0, momentum: 0.9,
      weightDecay: 3e-4, archLr: 6e-4, archWeightDecay: 1e-3, archGradClip: null, order: 1, epochs: 50, lrWarmupEpochs: 0,
      warmupEpochs: 15, initChannels: 16, layers: 8, nodes: 4, k: 4, edgeNorm: true, trainPortion: 0.5, searchSubset: null,
      searchSubsetFrom: null, gradClip: 5, seed: 2, limitTrain: null, imageSize: 224, skipBadImages: false,
    });
  });

  it('names the flag of a setting out of range', () => {
    const bad = (change: Partial<SearchConfig>): void => checkSearchConfig({ ...DEFAULT_SEARCH_CONFIG, ...change });
    assert.throws(() => bad({ batchSize: 0 }), inputError(/^--batch-size: expected an integer >= 1, got 0$/));
    assert.throws(() => bad({ trainPortion: 1 }), inputError(/^--train-portion: expected a number in \(0, 1\)/));
    assert.throws(() => bad({ lr: Number.NaN }), inputError(/^--lr:/));
    assert.throws(() => bad({ lrMin: 0.5 }), inputError(/--lr-min 0.5 is above --lr 0.1/));
    assert.throws(() => bad({ dataset: 'mnist' as never }), inputError(/^--dataset: expected one of/));
    assert.throws(() => bad({ order: 3 as never }), inputError(/^--order: expected 1 or 2, got 3$/));
  });

  it('refuses a network that cannot be built, before creating the run directory', () => {
    const out = join(root, 'never-created');
    assert.throws(() => SearchRun.create({ out, config: { ...TINY, k: 3 } }), inputError(/K=3 does not divide the initial channel count 4/));
    assert.throws(() => SearchRun.create({ out, config: { ...TINY, limitTrain: null }, dataset: syntheticDataset(34) }),
      inputError(/input size 34: becomes 17 \(odd\) before the reduction at cell 2/));
    assert.throws(() => SearchRun.create({ out, config: { ...TINY, limitTrain: 100000 } }), inputError(/--limit-train 100000: .* has only 6000 training images/));
    assert.throws(() => SearchRun.create({ out, config: { ...TINY, trainPortion: 0.01 } }), inputError(/leaves no training images/));
    assert.throws(() => SearchRun.create({ out, config: { ...TINY, dataset: 'fashion-mnist', data: join(root, 'no-data') } }), inputError(/not found/));
    assert.ok(!existsSync(out));
  });
});

describe('a tiny search', () => {
  const reference = join(root, 'reference');
  let referenceLog: LogRecord[];

  before(async () => {
    const run = SearchRun.create({ out: reference, config: TINY, runtime: { checkpointEvery: 2 } });
    const outcome = await run.run();
    run.dispose();
    assert.equal(outcome.status, 'finished');
    referenceLog = readLog(reference);
  });

  it('writes config, step and epoch records, genotypes and a final checkpoint', () => {
    const config = JSON.parse(readFileSync(join(reference, 'config.json'), 'utf8'));
    assert.equal(config.command, 'search');
    assert.equal(config.config.k, 2);
    assert.equal(config.info.steps_per_epoch, 3);
    const steps = referenceLog.filter((r) => r.type === 'step') as unknown as SearchStepRecord[];
    assert.deepEqual(steps.map((s) => [s.epoch, s.step]), [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]]);
    for (const s of steps) {
      for (const key of ['lr', 'loss', 'acc', 'images_per_s'] as const) assert.equal(typeof s[key], 'number', key);
      // Architecture steps only after the warm-up epoch.
      assert.equal(s.arch_loss !== undefined, s.epoch >= 1);
    }
    assert.equal(steps[0].lr, 0.1);
    assert.ok(Math.abs(steps[3].lr - 0.05) < 1e-12);
    const epochs = referenceLog.filter((r) => r.type === 'epoch') as unknown as SearchEpochRecord[];
    assert.equal(epochs.length, 2);
    for (const e of epochs) {
      for (const key of ['train_loss', 'train_acc', 'valid_loss', 'valid_acc', 'seconds', 'skip_connects', 'peak_rss_mb'] as const) {
        assert.equal(typeof e[key], 'number', key);
      }
      assert.equal(e.alphas.normal.length, 5);
      for (const row of [...e.alphas.normal, ...e.alphas.reduce]) assert.ok(Math.abs(row.reduce((a, b) => a + b) - 1) < 1e-5);
      assert.deepEqual(e.betas?.normal.map((node) => node.length), [2, 3]);
      for (const node of [...e.betas!.normal, ...e.betas!.reduce]) assert.ok(Math.abs(node.reduce((a, b) => a + b) - 1) < 1e-5);
    }
    const genotypes = readFileSync(join(reference, 'genotypes.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(genotypes.map((g) => g.epoch), [0, 1]);
    assert.deepEqual(genotypes[1].genotype, epochs[1].genotype);
    assert.deepEqual(parseGenotypeJSON(readFileSync(join(reference, 'genotype.json'), 'utf8')), epochs[1].genotype);
    const checkpoint = readCheckpoint<SearchCheckpointState>(reference);
    assert.equal(checkpoint?.state.epoch, 2);
    assert.equal(checkpoint?.state.step, 0);
    // The last checkpoint and the one before it (kept until the next one is committed).
    assert.deepEqual(readdirSync(join(reference, 'checkpoint')).filter((n) => !n.endsWith('.safetensors')).sort(), ['previous.json', 'state.json']);
    assert.equal(readdirSync(join(reference, 'checkpoint')).filter((n) => n.endsWith('.safetensors')).length, 2);
  });

  it('stops on request after the current step with a checkpoint, and resumes to the same numbers', async () => {
    const dir = join(root, 'stopped');
    const stop = new StopRequest();
    const run = SearchRun.create({ out: dir, config: TINY, runtime: { checkpointEvery: 1000 } });
    const outcome = await run.run({ stop, events: { onStep: (_record, p) => { if (p.done === 4) stop.request('SIGINT'); } } });
    run.dispose();
    assert.deepEqual([outcome.status, outcome.signal, outcome.epoch, outcome.step], ['stopped', 'SIGINT', 1, 1]);
    const checkpoint = readCheckpoint<SearchCheckpointState>(dir);
    assert.deepEqual([checkpoint?.state.epoch, checkpoint?.state.step, checkpoint?.state.global_step], [1, 1, 4]);

    assert.throws(() => SearchRun.resume({ dir, given: { k: 4 } }), inputError(/--k 4 conflicts with the run, which has --k 2/));
    assert.throws(() => SearchRun.resume({ dir, given: { edgeNorm: false } }), inputError(/--no-edge-norm conflicts/));
    const resumed = SearchRun.resume({ dir, given: { k: 2, layers: 3, dataset: 'fashion-mnist-bundled' } });
    assert.deepEqual(resumed.position, { epoch: 1, step: 1, globalStep: 4 });
    const final = await resumed.run();
    resumed.dispose();
    assert.equal(final.status, 'finished');
    assert.deepEqual(comparable(readLog(dir)), comparable(referenceLog));
    assert.equal(readFileSync(join(dir, 'genotype.json'), 'utf8'), readFileSync(join(reference, 'genotype.json'), 'utf8'));
    assert.deepEqual(readLog(dir).filter((r) => r.type === 'resume').map((r) => [r.epoch, r.step]), [[1, 1]]);

    const again = SearchRun.resume({ dir });
    assert.ok(again.finished);
    again.dispose();
  });

  it('refuses to resume a folder that is not a run', () => {
    assert.throws(() => SearchRun.resume({ dir: root }), inputError(/is not a run directory/));
    assert.throws(() => SearchRun.resume({ dir: join(root, 'absent') }), inputError(/no such directory/));
  });
});
