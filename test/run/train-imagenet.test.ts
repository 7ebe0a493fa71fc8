/**
 * ImageNet retraining as a run (spec section 7), in-process on the reference backend:
 * NetworkImageNet with its auxiliary head on generated 224x224 images (the head needs the 7x7
 * map of 224x224 inputs) and on 32x32 ones without it, the recipe as defaults, the linear
 * schedule after warm-up in the log, top-1/top-5 from `test`, `info` on the run, and a
 * stopped and resumed run equal to an uninterrupted one.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import '../../src/kernels/ref/backend.js';
import { publishedGenotype } from '../../src/darts/genotype.js';
import type { Dataset } from '../../src/data/index.js';
import { scheduledLr } from '../../src/nn/schedule.js';
import { readCheckpoint } from '../../src/run/checkpoint.js';
import { RunInputError } from '../../src/run/errors.js';
import { networkInfo, runNetworkDefaults } from '../../src/run/network-info.js';
import { StopRequest } from '../../src/run/signals.js';
import { testModel } from '../../src/run/test-model.js';
import { type TrainCheckpointState, type TrainEpochRecord, TrainRun, type TrainStepRecord, type TrainTestRecord } from '../../src/run/train.js';
import { DEFAULT_TRAIN_CONFIG, resolveTrainConfig, type TrainConfig, type TrainData } from '../../src/run/train-settings.js';

process.env.PCDARTS_BACKEND = 'ref';
const root = mkdtempSync(join(tmpdir(), 'pcdarts-train-imagenet-'));
after(() => rmSync(root, { recursive: true, force: true }));

type LogRecord = { type: string } & Record<string, unknown>;
function readLog(dir: string): LogRecord[] {
  return readFileSync(join(dir, 'log.jsonl'), 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as LogRecord);
}
function comparable(records: LogRecord[]): unknown[] {
  return records.filter((r) => r.type !== 'resume').map((r) => {
    const { images_per_s: _rate, data_wait_ms: _wait, seconds: _seconds, peak_rss_mb: _rss, peak_tensor_mb: _tensor, ...rest } = r;
    return rest;
  });
}
const inputError = (pattern: RegExp) => (e: unknown): boolean =>
  e instanceof RunInputError && pattern.test(e.message) && !e.message.includes('\n');

/** RGB images whose colour and stripes depend on the class, so that a few steps learn something. */
function generated(split: 'train' | 'test', count: number, size: number, classes: number, seed: number): Dataset {
  const plane = size * size;
  const images = new Uint8Array(count * 3 * plane);
  const labels = new Int32Array(count);
  for (let n = 0; n < count; n++) {
    const label = (n * 7 + seed) % classes;
    labels[n] = label;
    for (let c = 0; c < 3; c++) {
      for (let p = 0; p < plane; p++) {
        const x = p % size;
        const y = (p - x) / size;
        const stripe = Math.floor((x + label * y) / (4 + label)) % 2;
        images[(n * 3 + c) * plane + p] = (40 * c + 25 * label + 120 * stripe + ((n * 31 + p * 17) % 23)) & 255;
      }
    }
  }
  return {
    name: 'generated', split, images, labels, count, channels: 3, height: size, width: size, classes,
    classNames: Array.from({ length: classes }, (_, i) => `class${i}`), mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25],
  };
}

describe('ImageNet retraining settings', () => {
  it('the ImageNet network brings the recipe of spec section 7, each setting overridable', () => {
    const config = resolveTrainConfig({ network: 'imagenet' });
    assert.deepEqual(config.genotype, publishedGenotype('PC_DARTS_image'));
    assert.deepEqual(
      [config.initChannels, config.layers, config.epochs, config.batchSize, config.lr, config.lrSchedule, config.lrWarmupEpochs,
        config.weightDecay, config.dropPathProb, config.labelSmoothing, config.auxiliary, config.auxiliaryWeight, config.cutout,
        config.gradClip, config.momentum],
      [48, 14, 250, 1024, 0.5, 'linear', 5, 3e-5, 0, 0.1, true, 0.4, false, 5, 0.9],
    );
    assert.deepEqual(resolveTrainConfig({}), { ...DEFAULT_TRAIN_CONFIG });
    assert.equal(resolveTrainConfig({ network: 'imagenet', batchSize: 256 }).lrWarmupEpochs, 0);
    const overridden = resolveTrainConfig({ network: 'imagenet', lrSchedule: 'cosine', labelSmoothing: 0, layers: 8 });
    assert.deepEqual([overridden.lrSchedule, overridden.labelSmoothing, overridden.layers], ['cosine', 0, 8]);
    // The spec's ImageNet schedule: lr_e = 0.5 (e+1)/5 for e < 5, 0.5 (245 - e)/245 for e < 245, then 0.5 (250 - e)/1225.
    const schedule = { kind: 'linear' as const, lr: 0.5, lrMin: 0, epochs: 250, warmupEpochs: 5 };
    for (const [e, lr] of [[0, 0.1], [4, 0.5], [5, 0.5 * 240 / 245], [100, 0.5 * 145 / 245], [244, 0.5 / 245], [245, 0.5 * 5 / 1225], [249, 0.5 / 1225]]) {
      assert.ok(Math.abs(scheduledLr(e, schedule) - lr) < 1e-15, `epoch ${e}`);
    }
  });
});

describe('a tiny ImageNet retraining at 224x224 with the auxiliary head', () => {
  const reference = join(root, 'reference');
  const data: TrainData = { train: generated('train', 10, 224, 10, 0), test: generated('test', 5, 224, 10, 3) };
  /** The ImageNet recipe (label smoothing 0.1 on both losses, auxiliary weight 0.4, linear decay), shrunk. */
  const TINY: Partial<TrainConfig> = { network: 'imagenet', initChannels: 8, layers: 3, batchSize: 5, epochs: 3, lr: 0.1, lrWarmupEpochs: 1 };
  let referenceLog: LogRecord[];

  before(async () => {
    const run = TrainRun.create({ out: reference, config: TINY, data, runtime: { checkpointEvery: 1000 } });
    assert.equal(run.model.constructor.name, 'NetworkImageNet');
    assert.ok(run.model.auxiliaryHead !== null);
    const outcome = await run.run();
    run.dispose();
    assert.equal(outcome.status, 'finished');
    referenceLog = readLog(reference);
  });

  it('records the recipe it used and logs the warm-up, then the linear decay', () => {
    const { config, info } = JSON.parse(readFileSync(join(reference, 'config.json'), 'utf8')) as { config: TrainConfig; info: Record<string, unknown> };
    assert.deepEqual(
      [config.network, config.lrSchedule, config.lrWarmupEpochs, config.labelSmoothing, config.auxiliaryWeight, config.weightDecay,
        config.dropPathProb, config.cutout],
      ['imagenet', 'linear', 1, 0.1, 0.4, 3e-5, 0, false],
    );
    assert.deepEqual(config.genotype, publishedGenotype('PC_DARTS_image'));
    assert.deepEqual([info.image_size, info.classes, info.steps_per_epoch], [224, 10, 2]);
    const steps = referenceLog.filter((r) => r.type === 'step') as unknown as TrainStepRecord[];
    assert.equal(steps.length, 6);
    // Warm-up epoch 0: 0.1 * 1/1; then (3 epochs, no tail) 0.1 (3 - e)/3.
    assert.deepEqual([0, 1, 2].map((e) => steps.find((s) => s.epoch === e)!.lr), [0.1, 0.1 * 2 / 3, 0.1 / 3]);
    for (const s of steps) assert.ok(Number.isFinite(s.loss) && s.loss > 0);
    const epochs = referenceLog.filter((r) => r.type === 'epoch') as unknown as TrainEpochRecord[];
    assert.deepEqual(epochs.map((e) => e.drop_path_prob), [0, 0, 0]);
  });

  it('reports top-1 and top-5, and `test` and `info` read the run as it was trained', () => {
    const test = referenceLog.at(-1) as unknown as TrainTestRecord;
    assert.equal(test.type, 'test');
    assert.ok(Number.isInteger(test.top1 * 5) && Number.isInteger(test.top5 * 5) && test.top5 >= test.top1);
    const result = testModel({ run: reference, testData: data.test });
    assert.deepEqual([result.network, result.top1, result.top5, result.images], ['imagenet', test.top1, test.top5, 5]);
    assert.throws(() => testModel({ run: reference, network: 'cifar', testData: data.test }), inputError(/--network cifar is not the network the run .* trained \(imagenet\)/));
    const fromRun = runNetworkDefaults(reference)!;
    assert.deepEqual(fromRun, { network: 'imagenet', classes: 10, inChannels: 3, inputSize: 224, datasetName: 'fashion-mnist-bundled', initChannels: 8, layers: 3 });
    const info = networkInfo({ ...fromRun, genotype: publishedGenotype('PC_DARTS_image') });
    const { info: recorded } = JSON.parse(readFileSync(join(reference, 'config.json'), 'utf8')) as { info: Record<string, number> };
    assert.deepEqual([info.network, info.parameters, info.mult_adds], ['imagenet', recorded.parameters, recorded.mult_adds]);
    const keys = [...readCheckpoint<TrainCheckpointState>(reference)!.tensors.keys()];
    assert.ok(keys.includes('model.stem0.0.weight') && keys.includes('model.auxiliary_head.features.5.weight'));
  });

  it('stops, and resumes to the same numbers', async () => {
    const dir = join(root, 'stopped');
    const stop = new StopRequest();
    const run = TrainRun.create({ out: dir, config: TINY, data, runtime: { checkpointEvery: 1000 } });
    const outcome = await run.run({ stop, events: { onStep: (_record, p) => { if (p.done === 3) stop.request('SIGINT'); } } });
    run.dispose();
    assert.deepEqual([outcome.status, outcome.epoch, outcome.step], ['stopped', 1, 1]);
    assert.throws(() => TrainRun.resume({ dir, data, given: { lrSchedule: 'cosine' } }), inputError(/--lr-schedule cosine conflicts with the run, which has --lr-schedule linear/));
    const resumed = TrainRun.resume({ dir, data, given: { network: 'imagenet' } });
    assert.equal((await resumed.run()).status, 'finished');
    resumed.dispose();
    assert.deepEqual(comparable(readLog(dir)), comparable(referenceLog));
  });
});

describe('ImageNet retraining of small images', () => {
  const train = generated('train', 8, 32, 4, 1);
  const test = generated('test', 4, 32, 4, 2);

  it('runs at 32x32 without the auxiliary head, and says so when the head is asked for', async () => {
    const out = join(root, 'small');
    const config: Partial<TrainConfig> = { network: 'imagenet', initChannels: 8, layers: 3, batchSize: 4, epochs: 1, lr: 0.05 };
    assert.throws(() => TrainRun.create({ out, config, data: { train, test } }),
      inputError(/the auxiliary head \(after cell 2\) needs a 7x7 feature map \(224x224 images\), but 32x32 images with 3 layers give 1x1 there: use --no-auxiliary/));
    assert.ok(!existsSync(out));
    const run = TrainRun.create({ out, config: { ...config, auxiliary: false }, data: { train, test } });
    assert.equal((await run.run()).status, 'finished');
    run.dispose();
    const last = readLog(out).at(-1)!;
    assert.deepEqual([last.type, last.images], ['test', 4]);
  });
});
