/**
 * `pcdarts search` as a user runs it: spawned processes on the wasm backend with 2 threads
 * (same backend and thread count everywhere, so runs are comparable bit for bit).
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { assertBadInput, comparableRecords, type Finished, INVOCATION, killMidEpochAndResume, pcdarts, readLog, start, treeHashes, waitFor } from './process.js';

const BUNDLED = fileURLToPath(new URL('../../../data/fashion-mnist-subset', import.meta.url));
/** 16 steps per epoch, architecture steps in the second epoch. */
const TINY = [
  '--limit-train', '256', '--batch-size', '8', '--epochs', '2', '--warmup-epochs', '1',
  '--init-channels', '4', '--layers', '3', '--nodes', '2', '--k', '2', '--threads', '2',
];

const root = mkdtempSync(join(tmpdir(), 'pcdarts-cli-'));
after(() => rmSync(root, { recursive: true, force: true }));

describe('pcdarts search --help', () => {
  it('lists every flag with its default', async () => {
    const { code, stdout } = await pcdarts('search', '--help');
    assert.equal(code, 0);
    const help = stdout.replace(/\s+/g, ' ');
    const defaults: [string, string][] = [
      ['--dataset <name>', '"fashion-mnist-bundled"'], ['--batch-size <n>', '256'], ['--lr <x>', '0.1'], ['--lr-min <x>', '0'],
      ['--momentum <x>', '0.9'], ['--weight-decay <x>', '0.0003'], ['--arch-lr <x>', '0.0006'], ['--arch-weight-decay <x>', '0.001'],
      ['--epochs <n>', '50'], ['--warmup-epochs <n>', '15'], ['--init-channels <n>', '16'], ['--layers <n>', '8'],
      ['--nodes <n>', '4'], ['--k <n>', '4'], ['--no-edge-norm', 'on'], ['--train-portion <x>', '0.5'], ['--grad-clip <x>', '5'],
      ['--seed <n>', '2'], ['--limit-train <n>', 'all'], ['--threads <n>', 'all cores'], ['--checkpoint-every <n>', '50'],
      ['--activation-budget <mib>', '768'], ['--data <dir>', 'the dataset\'s standard location'], ['--out <dir>', 'runs/search-<date>-<time>'],
    ];
    for (const [flag, value] of defaults) {
      const at = help.indexOf(` ${flag} `);
      assert.ok(at >= 0, `${flag} missing from the help`);
      const next = help.indexOf(' --', at + flag.length + 2);
      const text = help.slice(at, next < 0 ? undefined : next);
      assert.ok(text.includes(`default: ${value}`), `${flag}: no "default: ${value}" in "${text}"`);
    }
    assert.ok(help.includes('--resume <dir>'));
  });
});

describe('pcdarts search runs', () => {
  const reference = join(root, 'reference');

  before(async () => {
    const result = await pcdarts('search', ...TINY, '--checkpoint-every', '1', '--out', reference);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /search finished: .*genotype\.json/);
  });

  it('resumes a run killed (SIGKILL) in the middle of an epoch to the same losses and genotype', async () => {
    const dir = join(root, 'killed');
    await killMidEpochAndResume('search', [...TINY, '--checkpoint-every', '1'], dir, 2);
    assert.deepEqual(comparableRecords(dir), comparableRecords(reference));
    assert.equal(readFileSync(join(dir, 'genotype.json'), 'utf8'), readFileSync(join(reference, 'genotype.json'), 'utf8'));
    assert.equal(readFileSync(join(dir, 'genotypes.jsonl'), 'utf8'), readFileSync(join(reference, 'genotypes.jsonl'), 'utf8'));
  });

  it('on SIGTERM finishes the step, writes a checkpoint, exits 143 saying how to resume; the resumed run matches', async () => {
    const dir = join(root, 'terminated');
    const { child, done } = start(['search', ...TINY, '--checkpoint-every', '1000', '--out', dir]);
    await waitFor(() => readLog(dir).some((r) => r.type === 'step' && r.epoch === 0 && r.step >= 3), 'step 3 of epoch 0');
    child.kill('SIGTERM');
    const stopped = await done;
    assert.equal(stopped.code, 143, stopped.stderr);
    assert.match(stopped.stderr, new RegExp(`resume with: ${INVOCATION} search --resume ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    const state = JSON.parse(readFileSync(join(dir, 'checkpoint', 'state.json'), 'utf8')).state;
    const steps = readLog(dir).filter((r) => r.type === 'step');
    assert.equal(state.global_step, steps.length, 'the checkpoint is at the last logged step');
    assert.equal(state.logs['log.jsonl'], statSync(join(dir, 'log.jsonl')).size);

    const resumed = await pcdarts('search', '--resume', dir, '--threads', '2', '--k', '2', '--epochs', '2');
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.deepEqual(comparableRecords(dir), comparableRecords(reference));
    assert.equal(readFileSync(join(dir, 'genotype.json'), 'utf8'), readFileSync(join(reference, 'genotype.json'), 'utf8'));
  });

  it('refuses --resume with a conflicting setting, leaving the run untouched', async () => {
    const before = treeHashes(reference);
    assertBadInput(await pcdarts('search', '--resume', reference, '--k', '4'),
      /--k 4 conflicts with the run, which has --k 2: flags given with --resume must match/);
    assertBadInput(await pcdarts('search', '--resume', reference, '--no-edge-norm'), /--no-edge-norm conflicts with the run/);
    assertBadInput(await pcdarts('search', '--resume', reference, '--out', join(root, 'other')), /--out and --resume exclude each other/);
    assert.deepEqual(treeHashes(reference), before);
  });

  it('refuses --out on an existing run (pointing to --resume) and on a non-empty folder', async () => {
    const before = treeHashes(reference);
    assertBadInput(await pcdarts('search', ...TINY, '--out', reference), /already holds a run: continue it with --resume/);
    assert.deepEqual(treeHashes(reference), before);
    const full = join(root, 'full');
    mkdirSync(full);
    writeFileSync(join(full, 'notes.txt'), 'keep me');
    assertBadInput(await pcdarts('search', ...TINY, '--out', full), /exists and is not empty/);
    assert.deepEqual(readdirSync(full), ['notes.txt']);
  });

  it('says a finished run has nothing left to do', async () => {
    const before = treeHashes(reference);
    const result = await pcdarts('search', '--resume', reference);
    assert.equal(result.code, 0);
    assert.match(result.stderr, /already finished all 2 epochs/);
    assert.deepEqual(treeHashes(reference), before);
  });
});

describe('pcdarts search bad input', () => {
  const out = (): string => join(root, `bad-${Math.random().toString(36).slice(2)}`);

  it('rejects unknown flags and non-numeric values', async () => {
    assertBadInput(await pcdarts('search', '--bogus'), /unknown option '--bogus'/);
    assertBadInput(await pcdarts('search', '--lr', 'abc'), /--lr <x>.*'abc' is invalid.*expected a number/);
    assertBadInput(await pcdarts('search', '--epochs', '1.5'), /--epochs <n>.*'1.5' is invalid.*expected an integer/);
    assertBadInput(await pcdarts('search', '--dataset', 'mnist'), /'mnist' is invalid.*fashion-mnist-bundled/);
    assertBadInput(await pcdarts('search', '--batch-size', '0', '--out', out()), /--batch-size: expected an integer >= 1, got 0/);
    const dir = out();
    assertBadInput(await pcdarts('search', '--activation-budget', '-5', '--out', dir), /--activation-budget: expected a whole number of MiB >= 0, got -5/);
    assert.ok(!existsSync(dir));
  });

  it('rejects K that does not divide C', async () => {
    const dir = out();
    assertBadInput(await pcdarts('search', '--k', '3', '--out', dir), /K=3 does not divide the initial channel count 16/);
    assert.ok(!existsSync(dir));
  });

  it('rejects missing, corrupt and truncated dataset files', async () => {
    const dataset = (name: string, files: Record<string, Uint8Array | string>): string => {
      const dir = join(root, name);
      mkdirSync(dir);
      for (const [file, content] of Object.entries(files)) writeFileSync(join(dir, file), content);
      copyFileSync(join(BUNDLED, 'train-labels-idx1-ubyte.gz'), join(dir, 'train-labels-idx1-ubyte.gz'));
      return dir;
    };
    const images = readFileSync(join(BUNDLED, 'train-images-idx3-ubyte.gz'));
    const run = (dir: string): Promise<Finished> => pcdarts('search', '--dataset', 'fashion-mnist', '--data', dir, '--out', out());
    assertBadInput(await run(dataset('missing', {})), /train-images-idx3-ubyte\[\.gz\] not found/);
    assertBadInput(await run(join(root, 'no-such-dir')), /not found/);
    assertBadInput(await run(dataset('corrupt', { 'train-images-idx3-ubyte.gz': 'this is not gzip data' })),
      /train-images-idx3-ubyte\.gz: not gzip data/);
    assertBadInput(await run(dataset('cut-gzip', { 'train-images-idx3-ubyte.gz': images.subarray(0, images.length >> 1) })),
      /train-images-idx3-ubyte\.gz: corrupt gzip data/);
    assertBadInput(await run(dataset('cut-idx', { 'train-images-idx3-ubyte': gunzipSync(images).subarray(0, 5000) })),
      /train-images-idx3-ubyte: truncated: expected \d+ bytes, got 5000/);
  });

  it('rejects --resume on a folder that is not a run', async () => {
    const folder = join(root, 'not-a-run');
    mkdirSync(folder);
    writeFileSync(join(folder, 'data.txt'), 'x');
    assertBadInput(await pcdarts('search', '--resume', folder), /is not a run directory \(it has no config\.json\)/);
    assertBadInput(await pcdarts('search', '--resume', join(root, 'nothing-here')), /no such directory/);
    assert.deepEqual(readdirSync(folder), ['data.txt']);
  });
});
