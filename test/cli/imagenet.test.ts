/**
 * `--network imagenet` as a user runs it (spawned processes, wasm backend, 2 threads): a small
 * ImageNet search on the bundled 32x32 images with a per-class sample, a second search
 * reusing that sample, a retrain of the found genotype with NetworkImageNet, `test` and `info`
 * on the result, the recipe in --help, and bad input (exit 2, nothing created).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertBadInput, pcdarts, readLog } from './process.js';

const root = mkdtempSync(join(tmpdir(), 'pcdarts-cli-imagenet-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** The ImageNet recipe shrunk: 5 % / 2 % of each class of 1000 images, 2 epochs of a few steps. */
const SEARCH = [
  'search', '--network', 'imagenet', '--limit-train', '1000', '--search-subset', '0.05,0.02', '--batch-size', '16',
  '--epochs', '2', '--warmup-epochs', '1', '--init-channels', '4', '--layers', '3', '--nodes', '2', '--threads', '2',
];
const readJson = (path: string): Record<string, unknown> => JSON.parse(readFileSync(path, 'utf8'));

describe('pcdarts search --network imagenet', () => {
  const first = join(root, 'first');

  before(async () => {
    const result = await pcdarts(...SEARCH, '--out', first);
    assert.equal(result.code, 0, result.stderr);
  });

  it('records the recipe and the per-class sample', () => {
    const { config } = readJson(join(first, 'config.json')) as { config: Record<string, unknown> };
    assert.deepEqual([config.network, config.k, config.lr, config.archLr, config.archGradClip, config.searchSubset],
      ['imagenet', 2, 0.5, 0.006, 5, [0.05, 0.02]]);
    const sample = readJson(join(first, 'search-subset.json')) as { weights: { indices: number[] }; arch: { indices: number[] }; per_class: number[][] };
    assert.equal(sample.per_class.length, 10);
    assert.ok(sample.weights.indices.every((i) => !sample.arch.indices.includes(i)));
    assert.ok(readLog(first).some((r) => r.type === 'epoch' && r.epoch === 1));
  });

  it('--search-subset-from reuses the sample under another seed', async () => {
    const second = join(root, 'second');
    const result = await pcdarts(...SEARCH.filter((a, i) => a !== '--search-subset' && SEARCH[i - 1] !== '--search-subset'),
      '--epochs', '1', '--warmup-epochs', '0', '--seed', '9', '--search-subset-from', first, '--out', second);
    assert.equal(result.code, 0, result.stderr);
    const a = readJson(join(first, 'search-subset.json'));
    const b = readJson(join(second, 'search-subset.json'));
    assert.deepEqual([b.weights, b.arch, b.fractions], [a.weights, a.arch, a.fractions]);
    assert.equal(b.reused_from, join(first, 'search-subset.json'));
  });

  it('retrains the genotype with NetworkImageNet; test and info read the run', async () => {
    const trained = join(root, 'trained');
    const noHead = ['train', '--genotype', first, '--network', 'imagenet', '--init-channels', '8', '--layers', '3', '--epochs', '1',
      '--batch-size', '32', '--limit-train', '64', '--limit-test', '32', '--threads', '2', '--out', trained];
    // At 32x32 the ImageNet head's 7x7 input does not exist: one line, nothing created.
    assertBadInput(await pcdarts(...noHead), /^pcdarts train: the auxiliary head .* needs a 7x7 feature map .*: use --no-auxiliary$/);
    assert.ok(!existsSync(trained));
    const result = await pcdarts(...noHead, '--no-auxiliary');
    assert.equal(result.code, 0, result.stderr);
    const { config } = readJson(join(trained, 'config.json')) as { config: Record<string, unknown> };
    assert.deepEqual([config.network, config.lrSchedule, config.labelSmoothing, config.weightDecay, config.cutout], ['imagenet', 'linear', 0.1, 3e-5, false]);
    const logged = readLog(trained).at(-1)!;
    const test = await pcdarts('test', '--run', trained, '--json');
    assert.equal(test.code, 0, test.stderr);
    const tested = JSON.parse(test.stdout) as Record<string, unknown>;
    assert.deepEqual([tested.network, tested.top1, tested.top5, tested.images], ['imagenet', logged.top1, logged.top5, 32]);
    const info = await pcdarts('info', '--genotype', trained, '--json');
    assert.equal(info.code, 0, info.stderr);
    const facts = JSON.parse(info.stdout) as Record<string, unknown>;
    const { info: recorded } = readJson(join(trained, 'config.json')) as { info: Record<string, unknown> };
    assert.deepEqual([facts.network, facts.init_channels, facts.layers, facts.input_size, facts.in_channels, facts.parameters, facts.mult_adds],
      ['imagenet', 8, 3, 32, 1, recorded.parameters, recorded.mult_adds]);
  });

  it('shows the ImageNet recipe in --help', async () => {
    const search = (await pcdarts('search', '--help')).stdout.replace(/\s+/g, ' ');
    for (const text of ['--network <kind>', '1024 with the ImageNet network', '0.006 with the ImageNet network', '--search-subset <w,a>', '0.1,0.025 with the ImageNet network', '--search-subset-from <dir>', '--arch-grad-clip <x>']) {
      assert.ok(search.includes(text), text);
    }
    const train = (await pcdarts('train', '--help')).stdout.replace(/\s+/g, ' ');
    for (const text of ['"linear" with the ImageNet network', '"PC_DARTS_image" with the ImageNet network', '250 with the ImageNet network', '--lr-warmup-epochs <n>']) {
      assert.ok(train.includes(text), text);
    }
  });

  it('refuses bad samples with one line and exit 2, creating nothing', async () => {
    const out = join(root, 'never');
    const base = SEARCH.filter((a, i) => a !== '--search-subset' && SEARCH[i - 1] !== '--search-subset');
    assertBadInput(await pcdarts(...base, '--search-subset', '0.9,0.2', '--out', out), /^pcdarts search: --search-subset: the fractions 0.9 and 0.2 sum to more than 1/);
    assertBadInput(await pcdarts(...base, '--search-subset', '0.1', '--out', out), /^pcdarts search: .*--search-subset.*expected WEIGHTS,ARCH fractions/);
    assertBadInput(await pcdarts(...base, '--search-subset-from', join(root, 'absent'), '--out', out), /^pcdarts search: --search-subset-from .*absent: no such run directory or file$/);
    assertBadInput(await pcdarts(...base, '--network', 'resnet', '--out', out), /^pcdarts search: .*'resnet' is invalid/);
    assertBadInput(await pcdarts(...base, '--init-channels', '5', '--k', '1', '--out', out), /^pcdarts search: .*C must be even, got 5$/);
    assert.ok(!existsSync(out));
  });
});
