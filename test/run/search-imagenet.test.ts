/**
 * The ImageNet search as a run, in-process on the reference backend, tiny (the bundled
 * 32x32 images through the ImageNet stems): its recipe as defaults, the per-class sample
 * recorded and reused, the warm-up schedule in the log, clipped architecture gradients, and a
 * stopped and resumed run equal to an uninterrupted one.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import '../../src/kernels/ref/backend.js';
import { FirstOrderArchitect } from '../../src/darts/architect.js';
import { SearchNetwork } from '../../src/darts/search-network.js';
import { loadDataset } from '../../src/data/index.js';
import { readCheckpoint } from '../../src/run/checkpoint.js';
import { scheduledLr } from '../../src/nn/schedule.js';
import { RunInputError } from '../../src/run/errors.js';
import { defaultNetworkKind } from '../../src/run/network-kind.js';
import {
  DEFAULT_SEARCH_CONFIG, resolveSearchConfig, type SearchConfig, SearchRun, type SearchStepRecord,
} from '../../src/run/search.js';
import { sampleSearchSubset, SEARCH_SUBSET_FILE, type SearchSubsetRecord } from '../../src/run/search-subset.js';
import { StopRequest } from '../../src/run/signals.js';
import { manualSeed } from '../../src/tensor/random.js';
import { fromArray, tidy } from '../../src/tensor/tensor.js';

process.env.PCDARTS_BACKEND = 'ref';
const root = mkdtempSync(join(tmpdir(), 'pcdarts-search-imagenet-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** The ImageNet network and recipe, shrunk: 400 images, 10 % / 5 % of each class, 3 epochs. */
const TINY: Partial<SearchConfig> = {
  network: 'imagenet', limitTrain: 400, searchSubset: [0.1, 0.05], batchSize: 16, epochs: 3, warmupEpochs: 1, lrWarmupEpochs: 2,
  initChannels: 4, layers: 3, nodes: 2,
};

type LogRecord = { type: string } & Record<string, unknown>;
function readLog(dir: string): LogRecord[] {
  return readFileSync(join(dir, 'log.jsonl'), 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as LogRecord);
}
function comparable(records: LogRecord[]): unknown[] {
  return records.filter((r) => r.type === 'step' || r.type === 'epoch').map((r) => {
    const { images_per_s: _rate, data_wait_ms: _wait, seconds: _seconds, peak_rss_mb: _rss, peak_tensor_mb: _tensor, ...rest } = r;
    return rest;
  });
}
const inputError = (pattern: RegExp) => (e: unknown): boolean =>
  e instanceof RunInputError && pattern.test(e.message) && !e.message.includes('\n');
const readJson = (path: string): Record<string, unknown> => JSON.parse(readFileSync(path, 'utf8'));

describe('ImageNet search settings', () => {
  it('the ImageNet network by dataset and image size, the CIFAR one otherwise', () => {
    assert.equal(defaultNetworkKind('imagenet'), 'imagenet');
    assert.equal(defaultNetworkKind('cifar10'), 'cifar');
    assert.equal(defaultNetworkKind('imagefolder', 127), 'cifar');
    assert.equal(defaultNetworkKind('imagefolder', 128), 'imagenet');
    assert.equal(defaultNetworkKind('imagefolder', 224), 'imagenet');
    assert.equal(defaultNetworkKind('imagefolder'), 'imagenet', 'an image folder\'s default --image-size is 224');
    assert.equal(defaultNetworkKind('imagefolder', 64), 'cifar');
    // A given --image-size decides (the config key of image-folder runs).
    assert.equal(resolveSearchConfig({ imageSize: 160 } as Partial<SearchConfig>).network, 'imagenet');
    assert.equal(resolveSearchConfig({ imageSize: 160, network: 'cifar' } as Partial<SearchConfig>).k, 4);
  });

  it('the ImageNet network brings the recipe of spec section 6, each setting overridable', () => {
    const config = resolveSearchConfig({ network: 'imagenet' });
    assert.deepEqual(
      [config.k, config.batchSize, config.lr, config.lrMin, config.weightDecay, config.archLr, config.archWeightDecay,
        config.archGradClip, config.epochs, config.warmupEpochs, config.lrWarmupEpochs, config.searchSubset],
      [2, 1024, 0.5, 0, 3e-4, 6e-3, 1e-3, 5, 50, 35, 5, [0.1, 0.025]],
    );
    // Unchanged by the recipe: the CIFAR search's other settings.
    assert.deepEqual([config.initChannels, config.layers, config.nodes, config.momentum, config.gradClip, config.seed], [16, 8, 4, 0.9, 5, 2]);
    assert.deepEqual(resolveSearchConfig({}), { ...DEFAULT_SEARCH_CONFIG });
    // Warm-up only when the batch exceeds 256 (the authors' rule), unless asked for.
    assert.equal(resolveSearchConfig({ network: 'imagenet', batchSize: 256 }).lrWarmupEpochs, 0);
    assert.equal(resolveSearchConfig({ network: 'imagenet', batchSize: 257 }).lrWarmupEpochs, 5);
    assert.equal(resolveSearchConfig({ network: 'imagenet', batchSize: 64, lrWarmupEpochs: 3 }).lrWarmupEpochs, 3);
    const overridden = resolveSearchConfig({ network: 'imagenet', k: 4, archGradClip: null, lr: 0.2 });
    assert.deepEqual([overridden.k, overridden.archGradClip, overridden.lr], [4, null, 0.2]);
    // --train-portion alone means the portion split; both are fine with an explicit subset.
    assert.equal(resolveSearchConfig({ network: 'imagenet', trainPortion: 0.5 }).searchSubset, null);
    assert.deepEqual(resolveSearchConfig({ network: 'imagenet', trainPortion: 0.5, searchSubset: [0.2, 0.1] }).searchSubset, [0.2, 0.1]);
  });

  it('every MixedOp runs once per forward: each batch norm counts one batch (the authors\' network counts two)', () => {
    manualSeed(2);
    const model = new SearchNetwork({ network: 'imagenet', channels: 4, layers: 3, steps: 2, multiplier: 2, k: 2, classes: 3, inChannels: 3 });
    model.train();
    tidy(() => model.forward(fromArray(Float32Array.from({ length: 2 * 3 * 32 * 32 }, (_, i) => Math.cos(i)), [2, 3, 32, 32])));
    const counters = model.stateEntries().filter((e) => e.name.endsWith('num_batches_tracked'));
    assert.ok(counters.some((e) => e.name.includes('._ops.')), 'MixedOp batch norms are counted');
    for (const e of counters) assert.equal(e.tensor.data[0], 1, e.name);
    for (const e of model.stateEntries()) e.tensor.dispose();
    for (const t of model.archParameters()) t.dispose();
  });

  it('clipped architecture gradients: the step sees a gradient of norm at most the limit', () => {
    manualSeed(1);
    const model = new SearchNetwork({ network: 'imagenet', channels: 4, layers: 3, steps: 2, multiplier: 2, k: 2, classes: 3, inChannels: 1 });
    const x = fromArray(Float32Array.from({ length: 2 * 32 * 32 }, (_, i) => Math.sin(i)), [2, 1, 32, 32]);
    const norm = (): number => Math.sqrt(model.archParameters().reduce((s, t) => s + (t.grad?.toArray() ?? []).reduce((a, g) => a + g * g, 0), 0));
    const unclipped = new FirstOrderArchitect(model, { lr: 1e-3, betas: [0.5, 0.999], weightDecay: 0 });
    tidy(() => unclipped.step(x, Int32Array.from([0, 2])));
    const raw = norm();
    const limit = raw / 10;
    const clipped = new FirstOrderArchitect(model, { lr: 1e-3, betas: [0.5, 0.999], weightDecay: 0, gradClip: limit });
    tidy(() => clipped.step(x, Int32Array.from([0, 2])));
    assert.ok(raw > 0);
    assert.ok(norm() <= limit * (1 + 1e-6), `${norm()} > ${limit}`);
    for (const t of [...model.parameters(), ...model.archParameters()]) t.grad?.dispose();
    for (const e of model.stateEntries()) e.tensor.dispose();
    for (const t of model.archParameters()) t.dispose();
    x.dispose();
  });
});

describe('a tiny ImageNet search', () => {
  const reference = join(root, 'reference');
  let referenceLog: LogRecord[];

  before(async () => {
    const run = SearchRun.create({ out: reference, config: TINY, runtime: { checkpointEvery: 2 } });
    const outcome = await run.run();
    run.dispose();
    assert.equal(outcome.status, 'finished');
    referenceLog = readLog(reference);
  });

  it('records the recipe it used, and the ImageNet search network\'s state dict', () => {
    const { config, info } = readJson(join(reference, 'config.json')) as { config: SearchConfig; info: Record<string, number> };
    assert.equal(config.network, 'imagenet');
    assert.deepEqual([config.k, config.lr, config.archLr, config.archGradClip, config.weightDecay], [2, 0.5, 6e-3, 5, 3e-4]);
    assert.deepEqual(config.searchSubset, [0.1, 0.05]);
    assert.equal(config.searchSubsetFrom, null);
    const record = readJson(join(reference, SEARCH_SUBSET_FILE)) as unknown as SearchSubsetRecord;
    assert.deepEqual([info.weight_images, info.arch_images], [record.weights.indices.length, record.arch.indices.length]);
    assert.equal(info.steps_per_epoch, Math.ceil(info.weight_images / 16));
    const keys = [...readCheckpoint(reference)!.tensors.keys()];
    for (const key of ['model.stem0.0.weight', 'model.stem0.4.running_var', 'model.stem1.1.weight', 'model.cells.0.preprocess0.conv_1.weight']) {
      assert.ok(keys.includes(key), key);
    }
    assert.ok(!keys.some((k) => k.startsWith('model.stem.')));
  });

  it('records a disjoint per-class sample, the one the seed draws', () => {
    const record = readJson(join(reference, SEARCH_SUBSET_FILE)) as unknown as SearchSubsetRecord;
    const dataset = loadDataset({ dataset: 'fashion-mnist-bundled', split: 'train' });
    const first400 = { name: dataset.name, count: 400, labels: dataset.labels.subarray(0, 400), classes: dataset.classes };
    const expected = sampleSearchSubset(first400, [0.1, 0.05], DEFAULT_SEARCH_CONFIG.seed);
    assert.deepEqual(record.weights.indices, Array.from(expected.weights));
    assert.deepEqual(record.arch.indices, Array.from(expected.arch));
    assert.deepEqual(record.weights.labels, record.weights.indices.map((i) => dataset.labels[i]));
    assert.ok(record.weights.indices.every((i) => !record.arch.indices.includes(i)));
    assert.deepEqual([record.train_images, record.classes, record.seed, record.reused_from], [400, 10, 2, null]);
    assert.equal(record.per_class.reduce((s, [w]) => s + w, 0), 40);
    // Bundled Fashion-MNIST is indexed, not file-backed: no names.
    assert.equal(record.weights.names, undefined);
  });

  it('logs the warm-up then the cosine, and architecture steps after the frozen epoch', () => {
    const steps = referenceLog.filter((r) => r.type === 'step') as unknown as SearchStepRecord[];
    const { info } = readJson(join(reference, 'config.json')) as { info: Record<string, number> };
    assert.equal(steps.length, 3 * info.steps_per_epoch);
    const schedule = { kind: 'cosine' as const, lr: 0.5, lrMin: 0, epochs: 3, warmupEpochs: 2 };
    for (const s of steps) {
      assert.equal(s.lr, scheduledLr(s.epoch, schedule));
      assert.equal(s.arch_loss !== undefined, s.epoch >= 1);
    }
    assert.deepEqual([0, 1, 2].map((e) => steps.find((s) => s.epoch === e)!.lr), [0.25, 0.5, 0.5 * (1 + Math.cos((2 * Math.PI) / 3)) / 2]);
  });

  it('stops, resumes to the same numbers, and keeps its own sample', async () => {
    const dir = join(root, 'stopped');
    const stop = new StopRequest();
    const run = SearchRun.create({ out: dir, config: TINY, runtime: { checkpointEvery: 1000 } });
    const outcome = await run.run({ stop, events: { onStep: (_record, p) => { if (p.done === 4) stop.request('SIGTERM'); } } });
    run.dispose();
    assert.deepEqual([outcome.status, outcome.epoch, outcome.step], ['stopped', 1, 1]);
    assert.throws(() => SearchRun.resume({ dir, given: { searchSubset: [0.2, 0.05] } }), inputError(/--search-subset 0.2,0.05 conflicts with the run, which has --search-subset 0.1,0.05/));
    assert.throws(() => SearchRun.resume({ dir, given: { network: 'cifar' } }), inputError(/--network cifar conflicts/));
    const resumed = SearchRun.resume({ dir, given: { network: 'imagenet' } });
    assert.equal((await resumed.run()).status, 'finished');
    resumed.dispose();
    assert.deepEqual(comparable(readLog(dir)), comparable(referenceLog));
    assert.equal(readFileSync(join(dir, 'genotype.json'), 'utf8'), readFileSync(join(reference, 'genotype.json'), 'utf8'));
    assert.equal(readFileSync(join(dir, SEARCH_SUBSET_FILE), 'utf8'), readFileSync(join(reference, SEARCH_SUBSET_FILE), 'utf8'));
  });

  it('reuses a recorded sample under another seed, and records where from', () => {
    const dir = join(root, 'reused');
    const run = SearchRun.create({ out: dir, config: { ...TINY, seed: 5, searchSubset: undefined, searchSubsetFrom: reference } });
    const own = readJson(join(reference, SEARCH_SUBSET_FILE)) as unknown as SearchSubsetRecord;
    assert.deepEqual(Array.from(run.halves.train), own.weights.indices);
    assert.deepEqual(Array.from(run.halves.valid), own.arch.indices);
    run.dispose();
    const record = readJson(join(dir, SEARCH_SUBSET_FILE)) as unknown as SearchSubsetRecord;
    assert.equal(record.reused_from, join(reference, SEARCH_SUBSET_FILE));
    assert.deepEqual([record.seed, record.fractions], [2, [0.1, 0.05]]);
    const { config } = readJson(join(dir, 'config.json')) as { config: SearchConfig };
    assert.deepEqual([config.seed, config.searchSubset, config.searchSubsetFrom], [5, [0.1, 0.05], reference]);
    // Without reuse, seed 5 draws another sample.
    const fresh = SearchRun.create({ out: join(root, 'fresh'), config: { ...TINY, seed: 5 } });
    assert.notDeepEqual(Array.from(fresh.halves.train), own.weights.indices);
    fresh.dispose();
  });

  it('refuses a sample that does not fit, before creating the run directory', () => {
    const out = join(root, 'never');
    assert.throws(() => SearchRun.create({ out, config: { ...TINY, searchSubsetFrom: join(root, 'absent') } }), inputError(/^--search-subset-from .*absent: no such run directory or file/));
    assert.throws(() => SearchRun.create({ out, config: { ...TINY, searchSubsetFrom: reference, searchSubset: [0.2, 0.05] } }),
      inputError(/--search-subset 0.2,0.05 conflicts with the sample of --search-subset-from/));
    assert.throws(() => SearchRun.create({ out, config: { ...TINY, searchSubsetFrom: reference, searchSubset: null } }), inputError(/--no-search-subset/));
    assert.throws(() => SearchRun.create({ out, config: { ...TINY, searchSubsetFrom: reference, limitTrain: 300 } }),
      inputError(/drawn from 400 training images, fashion-mnist-bundled has 300/));
    assert.throws(() => SearchRun.create({ out, config: { ...TINY, searchSubset: [0.9, 0.2] } }), inputError(/^--search-subset: .*sum to more than 1/));
    assert.throws(() => SearchRun.create({ out, config: { ...TINY, searchSubset: [0.1, 0.1], limitTrain: 2 } }), inputError(/^--search-subset 0.1,0.1 of 2 images in 10 classes leaves no training images/));
    assert.throws(() => SearchRun.create({ out, config: { ...TINY, initChannels: 3, k: 1 } }), inputError(/C must be even/));
    assert.throws(() => SearchRun.create({ out, config: { ...TINY, network: 'resnet' as never } }), inputError(/^--network: expected one of cifar, imagenet/));
    assert.ok(!existsSync(out));
  });
});
