/**
 * The training loop in-process, on the reference backend with a tiny two-node network: the
 * files it writes, bad settings, the best model, testing a trained model, and that a stopped
 * (or crashed) and resumed run equals an uninterrupted one.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import '../../src/kernels/ref/backend.js';
import { type Genotype, parseGenotypeJSON, publishedGenotype } from '../../src/darts/genotype.js';
import { readCheckpoint } from '../../src/run/checkpoint.js';
import { RunInputError } from '../../src/run/errors.js';
import { countCorrect, countTopK } from '../../src/run/metrics.js';
import { StopRequest } from '../../src/run/signals.js';
import { networkInfo } from '../../src/run/network-info.js';
import { testModel } from '../../src/run/test-model.js';
import {
  type TrainCheckpointState, type TrainEpochRecord, TrainRun, type TrainStepRecord, type TrainTestRecord,
} from '../../src/run/train.js';
import {
  BEST_MODEL_FILE, checkTrainConfig, DEFAULT_TRAIN_CONFIG, type TrainConfig, trainValidIndices,
} from '../../src/run/train-settings.js';
import { fromArray } from '../../src/tensor/tensor.js';

process.env.PCDARTS_BACKEND = 'ref';
const root = mkdtempSync(join(tmpdir(), 'pcdarts-train-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** Two intermediate nodes per cell: small and quick, yet every kind of operation. */
const TWO_NODES: Genotype = {
  normal: [['sep_conv_3x3', 0], ['skip_connect', 1], ['dil_conv_3x3', 2], ['max_pool_3x3', 0]],
  normal_concat: [2, 3],
  reduce: [['avg_pool_3x3', 0], ['sep_conv_5x5', 1], ['skip_connect', 2], ['dil_conv_5x5', 1]],
  reduce_concat: [2, 3],
};

/** 3 steps per epoch; drop path, cutout and the auxiliary head all active. */
const TINY: Partial<TrainConfig> = {
  genotype: TWO_NODES, limitTrain: 48, limitTest: 40, batchSize: 16, epochs: 2, initChannels: 4, layers: 3,
  dropPathProb: 0.2, cutoutLength: 8, lr: 0.05,
};

type LogRecord = { type: string } & Record<string, unknown>;
function readLog(dir: string): LogRecord[] {
  return readFileSync(join(dir, 'log.jsonl'), 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as LogRecord);
}
/** What must not depend on interruptions: everything but timings and memory. */
function comparable(records: LogRecord[]): unknown[] {
  return records.filter((r) => r.type !== 'resume').map((r) => {
    const { images_per_s: _rate, data_wait_ms: _wait, seconds: _seconds, peak_rss_mb: _rss, peak_tensor_mb: _tensor, ...rest } = r;
    return rest;
  });
}
const inputError = (pattern: RegExp) => (e: unknown): boolean =>
  e instanceof RunInputError && pattern.test(e.message) && !e.message.includes('\n');

async function runToEnd(out: string, config: Partial<TrainConfig>, checkpointEvery = 1000): Promise<LogRecord[]> {
  const run = TrainRun.create({ out, config, runtime: { checkpointEvery } });
  const outcome = await run.run();
  run.dispose();
  assert.equal(outcome.status, 'finished');
  return readLog(out);
}

describe('train settings', () => {
  it('defaults to the CIFAR-10 recipe of spec section 7, on the bundled subset', () => {
    const { genotype, ...rest } = DEFAULT_TRAIN_CONFIG;
    assert.deepEqual(genotype, publishedGenotype('PC_DARTS_cifar'));
    assert.deepEqual(rest, {
      network: 'cifar', dataset: 'fashion-mnist-bundled', data: null, batchSize: 96, lr: 0.025, lrSchedule: 'cosine',
      lrWarmupEpochs: 0, momentum: 0.9, weightDecay: 3e-4, epochs: 600,
      initChannels: 36, layers: 20, auxiliary: true, auxiliaryWeight: 0.4, cutout: true, cutoutLength: 16, dropPathProb: 0.3,
      gradClip: 5, labelSmoothing: 0, seed: 0, validPortion: 0, limitTrain: null, limitTest: null, initFrom: null,
      imageSize: 224, skipBadImages: false,
    });
  });

  it('names the flag of a setting out of range, and the entry of a bad genotype', () => {
    const bad = (change: Partial<TrainConfig>): void => checkTrainConfig({ ...DEFAULT_TRAIN_CONFIG, ...change });
    assert.throws(() => bad({ batchSize: 0 }), inputError(/^--batch-size: expected an integer >= 1, got 0$/));
    assert.throws(() => bad({ validPortion: 1 }), inputError(/^--valid-portion: expected a number in \[0, 1\)/));
    assert.throws(() => bad({ dropPathProb: 1 }), inputError(/^--drop-path-prob:/));
    assert.throws(() => bad({ labelSmoothing: -0.1 }), inputError(/^--label-smoothing:/));
    assert.throws(() => bad({ cutoutLength: 0 }), inputError(/^--cutout-length:/));
    const unknownOp = { ...TWO_NODES, normal: [['sep_conv_9x9', 0], ...TWO_NODES.normal.slice(1)] } as unknown as Genotype;
    assert.throws(() => bad({ genotype: unknownOp }), inputError(/normal\[0\]: unknown operation 'sep_conv_9x9'/));
    const outOfRange = { ...TWO_NODES, reduce: [...TWO_NODES.reduce.slice(0, 2), ['skip_connect', 4], TWO_NODES.reduce[3]] } as Genotype;
    assert.throws(() => bad({ genotype: outOfRange }), inputError(/reduce\[2\]: input 4 out of range: node 1 may use inputs 0\.\.2/));
  });

  it('holds out the last portion of the training set for validation', () => {
    const { train, valid } = trainValidIndices(10, 0.3);
    assert.deepEqual([...train], [0, 1, 2, 3, 4, 5, 6]);
    assert.deepEqual([...valid], [7, 8, 9]);
    assert.equal(trainValidIndices(10, 0).valid.length, 0);
  });

  it('refuses what cannot run before creating the run directory', () => {
    const out = join(root, 'never-created');
    assert.throws(() => TrainRun.create({ out, config: TINY, nodes: 3 }),
      inputError(/^--nodes 3: genotype: normal: 4 entries make 2 nodes, expected 3/));
    assert.throws(() => TrainRun.create({ out, config: { ...TINY, limitTrain: 100000 } }), inputError(/--limit-train 100000: .* has only 6000 training images/));
    assert.throws(() => TrainRun.create({ out, config: { ...TINY, limitTest: 5000 } }), inputError(/--limit-test 5000: .* has only 1000 test images/));
    assert.throws(() => TrainRun.create({ out, config: { ...TINY, validPortion: 0.01 } }), inputError(/holds out no validation image/));
    assert.throws(() => TrainRun.create({ out, config: { ...TINY, layers: 1 } }), inputError(/auxiliary head .* needs an 8x8 feature map.*--no-auxiliary/));
    assert.throws(() => TrainRun.create({ out, config: { ...TINY, dataset: 'fashion-mnist', data: join(root, 'no-data') } }), inputError(/not found/));
    assert.ok(!existsSync(out));
  });
});

describe('a tiny training run', () => {
  const reference = join(root, 'reference');
  let referenceLog: LogRecord[];

  before(async () => {
    referenceLog = await runToEnd(reference, TINY, 2);
  });

  it('writes config, genotype, step, epoch and test records and a final checkpoint', () => {
    const config = JSON.parse(readFileSync(join(reference, 'config.json'), 'utf8'));
    assert.equal(config.command, 'train');
    assert.deepEqual(config.config.genotype, TWO_NODES);
    assert.equal(config.info.steps_per_epoch, 3);
    assert.equal(config.info.nodes, 2);
    assert.ok(config.info.parameters > 0 && config.info.mult_adds > 0);
    assert.deepEqual(parseGenotypeJSON(readFileSync(join(reference, 'genotype.json'), 'utf8')), TWO_NODES);

    const steps = referenceLog.filter((r) => r.type === 'step') as unknown as TrainStepRecord[];
    assert.deepEqual(steps.map((s) => [s.epoch, s.step, s.global_step]), [[0, 0, 0], [0, 1, 1], [0, 2, 2], [1, 0, 3], [1, 1, 4], [1, 2, 5]]);
    // Cosine from 0.05 over 2 epochs: 0.05, then 0.025.
    for (const s of steps) assert.ok(Math.abs(s.lr - (s.epoch === 0 ? 0.05 : 0.025)) < 1e-12, `lr ${s.lr}`);
    for (const s of steps) for (const key of ['loss', 'acc', 'images_per_s'] as const) assert.ok(Number.isFinite(s[key]), key);

    const epochs = referenceLog.filter((r) => r.type === 'epoch') as unknown as TrainEpochRecord[];
    assert.deepEqual(epochs.map((e) => e.drop_path_prob), [0, 0.1]);
    for (const e of epochs) {
      for (const key of ['train_loss', 'train_acc', 'test_loss', 'test_acc', 'seconds', 'peak_rss_mb'] as const) {
        assert.ok(Number.isFinite(e[key]), key);
      }
      assert.ok(!('valid_acc' in e) && !('valid_loss' in e), 'no validation split was asked for');
      assert.ok(Number.isInteger(e.test_acc * 40), 'accuracy over the 40 test images');
    }
    const tests = referenceLog.filter((r) => r.type === 'test') as unknown as TrainTestRecord[];
    assert.equal(tests.length, 1);
    assert.equal(referenceLog.at(-1)?.type, 'test');
    const [test] = tests;
    assert.deepEqual([test.model, test.epoch, test.images], ['last', 1, 40]);
    // The last epoch's evaluation and the final test see the same weights, in eval mode.
    assert.equal(test.top1, epochs[1].test_acc);
    assert.equal(test.loss, epochs[1].test_loss);
    assert.ok(test.top5 >= test.top1);

    const checkpoint = readCheckpoint<TrainCheckpointState>(reference);
    assert.deepEqual([checkpoint?.state.epoch, checkpoint?.state.step], [2, 0]);
    assert.deepEqual(checkpoint?.state.final_test, test);
    assert.ok(!existsSync(join(reference, BEST_MODEL_FILE)));
  });

  it('tests the trained model as the run did, and refuses weights of another architecture', () => {
    const test = referenceLog.at(-1) as unknown as TrainTestRecord;
    const result = testModel({ run: reference });
    assert.deepEqual([result.top1, result.top5, result.images], [test.top1, test.top5, test.images]);
    assert.ok(Math.abs(result.loss - test.loss) < 1e-6);

    const elsewhere = join(root, 'weights');
    mkdirSync(elsewhere);
    // The last checkpoint's tensors (the previous checkpoint's are kept too).
    const tensorFile = readdirSync(join(reference, 'checkpoint')).filter((name) => name.endsWith('.safetensors')).sort().at(-1)!;
    const weights = join(elsewhere, 'model.safetensors');
    copyFileSync(join(reference, 'checkpoint', tensorFile), weights);
    assert.throws(() => testModel({ checkpoint: weights }), inputError(/is not in a train run directory: give its architecture with --genotype/));
    const same = testModel({ checkpoint: weights, genotype: TWO_NODES, initChannels: 4, layers: 3, limitTest: 40 });
    assert.equal(same.top1, test.top1);
    assert.throws(() => testModel({ checkpoint: weights, genotype: publishedGenotype('PC_DARTS_cifar'), initChannels: 4, layers: 3 }),
      inputError(/model\.safetensors: does not match this model: (missing|unexpected) \d+ key/));
    assert.throws(() => testModel({ checkpoint: weights, genotype: TWO_NODES, initChannels: 8, layers: 3 }),
      inputError(/model\.safetensors: '[^']+' has shape \[[\d, ]+\], the model expects \[[\d, ]+\]/));
    assert.throws(() => testModel({ run: reference, genotype: publishedGenotype('DARTS_V2') }),
      inputError(/--genotype DARTS_V2 is not the genotype the run .* trained/));
    assert.throws(() => testModel({ checkpoint: join(root, 'absent.safetensors'), genotype: TWO_NODES }), inputError(/absent\.safetensors: no such file/));
    assert.throws(() => testModel({ run: root }), inputError(/is not a run directory/));
  });

  it('stops on request after the current step with a checkpoint, and resumes to the same numbers', async () => {
    const dir = join(root, 'stopped');
    const stop = new StopRequest();
    const run = TrainRun.create({ out: dir, config: TINY, runtime: { checkpointEvery: 1000 } });
    const outcome = await run.run({ stop, events: { onStep: (_record, p) => { if (p.done === 4) stop.request('SIGTERM'); } } });
    run.dispose();
    assert.deepEqual([outcome.status, outcome.signal, outcome.epoch, outcome.step, outcome.test], ['stopped', 'SIGTERM', 1, 1, null]);

    assert.throws(() => TrainRun.resume({ dir, given: { genotype: publishedGenotype('DARTS_V2') } }),
      inputError(/^--genotype DARTS_V2 conflicts with the run, which has --genotype \{"normal"/));
    assert.throws(() => TrainRun.resume({ dir, given: { cutout: false } }), inputError(/^--no-cutout conflicts with the run, which has cutout on/));
    assert.throws(() => TrainRun.resume({ dir, nodes: 4 }), inputError(/^--nodes 4:/));
    const resumed = TrainRun.resume({ dir, given: { genotype: TWO_NODES, layers: 3, epochs: 2 }, nodes: 2 });
    assert.deepEqual(resumed.position, { epoch: 1, step: 1, globalStep: 4 });
    const final = await resumed.run();
    resumed.dispose();
    assert.equal(final.status, 'finished');
    assert.deepEqual(comparable(readLog(dir)), comparable(referenceLog));
    assert.deepEqual(readLog(dir).filter((r) => r.type === 'resume').map((r) => [r.epoch, r.step]), [[1, 1]]);

    const again = TrainRun.resume({ dir });
    assert.ok(again.finished);
    assert.deepEqual(again.testResult, referenceLog.at(-1));
    again.dispose();
  });

  it('resumes a run that crashed after its last epoch, before the final test', async () => {
    const dir = join(root, 'crashed');
    const run = TrainRun.create({ out: dir, config: TINY });
    (run as unknown as { testFinalModel(): never }).testFinalModel = () => { throw new Error('simulated crash'); };
    await assert.rejects(run.run(), /simulated crash/);
    run.dispose();
    const resumed = TrainRun.resume({ dir });
    assert.ok(!resumed.finished);
    assert.deepEqual(resumed.position, { epoch: 2, step: 0, globalStep: 6 });
    const outcome = await resumed.run();
    resumed.dispose();
    assert.deepEqual(outcome.test, referenceLog.at(-1));
    assert.deepEqual(comparable(readLog(dir)), comparable(referenceLog));
  });
});

describe('a tiny training run with a validation split', () => {
  const dir = join(root, 'validated');
  let log: LogRecord[];

  before(async () => {
    log = await runToEnd(dir, { ...TINY, validPortion: 0.25, epochs: 3, cutout: false, auxiliary: false });
  });

  it('trains on the first 3/4, validates on the last 1/4, keeps the best model and tests it', () => {
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    assert.deepEqual([config.info.train_images, config.info.valid_images, config.info.steps_per_epoch], [36, 12, 3]);
    const epochs = log.filter((r) => r.type === 'epoch') as unknown as TrainEpochRecord[];
    for (const e of epochs) assert.ok(Number.isFinite(e.valid_acc) && Number.isFinite(e.valid_loss));
    const bestEpoch = epochs.reduce((best, e) => (e.valid_acc! > best.valid_acc! ? e : best));
    const test = log.at(-1) as unknown as TrainTestRecord;
    assert.deepEqual([test.type, test.model, test.epoch], ['test', 'best', bestEpoch.epoch]);
    // The best model is tested exactly as its epoch evaluated it.
    assert.equal(test.top1, bestEpoch.test_acc);
    assert.equal(test.loss, bestEpoch.test_loss);
    assert.ok(existsSync(join(dir, BEST_MODEL_FILE)));
    const state = readCheckpoint<TrainCheckpointState>(dir)!.state;
    assert.equal(state.best?.epoch, bestEpoch.epoch);

    const best = testModel({ run: dir });
    assert.equal(best.checkpoint, join(dir, BEST_MODEL_FILE));
    assert.equal(best.top1, test.top1);
    const last = testModel({ run: dir, last: true });
    assert.equal(last.top1, epochs.at(-1)!.test_acc);
    const viaFile = testModel({ checkpoint: join(dir, BEST_MODEL_FILE) });
    assert.equal(viaFile.top1, test.top1);
  });
});

describe('network facts and metrics', () => {
  it('counts parameters and mult-adds as the spec table (CIFAR and ImageNet rows)', () => {
    const cifar = networkInfo({ genotype: publishedGenotype('PC_DARTS_cifar') });
    assert.deepEqual([cifar.network, cifar.init_channels, cifar.layers, cifar.parameters, cifar.mult_adds], ['cifar', 36, 20, 3_634_678, 556_670_592]);
    const imagenet = networkInfo({ genotype: publishedGenotype('PC_DARTS_image'), dataset: 'imagenet' });
    assert.deepEqual([imagenet.init_channels, imagenet.layers, imagenet.classes, imagenet.parameters, imagenet.mult_adds],
      [48, 14, 1000, 5_342_464, 581_627_328]);
    // One input channel changes the stem only: 2 fewer input channels x 9 weights x 108 outputs.
    const gray = networkInfo({ genotype: publishedGenotype('PC_DARTS_cifar'), dataset: 'fashion-mnist' });
    assert.equal(cifar.parameters - gray.parameters, 2 * 9 * 108);
    assert.throws(() => networkInfo({ genotype: TWO_NODES, nodes: 4 }), inputError(/^--nodes 4: .*2 nodes, expected 4/));
    assert.throws(() => networkInfo({ genotype: TWO_NODES, layers: 0 }), inputError(/^--layers: expected an integer >= 1/));
  });

  it('counts top-k hits with ties ranked by class index, agreeing with countCorrect at k = 1', () => {
    const logits = fromArray([
      0.1, 0.9, 0.5, 0.2, // label 2 is 2nd
      0.3, 0.3, 0.3, 0.1, // label 1 ties with class 0: 2nd
      1.0, 0.0, 0.0, 0.0, // label 0 is 1st
    ], [3, 4]);
    const labels = [2, 1, 0];
    assert.equal(countTopK(logits, labels, 1), 1);
    assert.equal(countTopK(logits, labels, 1), countCorrect(logits, labels));
    assert.equal(countTopK(logits, labels, 2), 3);
    assert.equal(countTopK(logits, [3, 3, 3], 4), 3);
  });
});
