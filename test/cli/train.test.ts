/**
 * `pcdarts train` and `pcdarts test` as a user runs them: spawned processes on the wasm
 * backend with 2 threads (same backend and thread count everywhere, so runs are comparable
 * bit for bit). The resume tests kill a tiny run mid-epoch (SIGKILL, SIGTERM) and compare the
 * resumed run's step losses, epochs, best model and final test with an uninterrupted run.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { assertBadInput, INVOCATION, killMidEpochAndResume, type LogRecord, pcdarts, readLog, start, waitFor } from './process.js';

/** 144 training images (9 steps of 16 per epoch), 48 for validation, 100 test images. */
const TINY = [
  '--limit-train', '192', '--valid-portion', '0.25', '--limit-test', '100', '--batch-size', '16', '--epochs', '2',
  '--init-channels', '4', '--layers', '3', '--threads', '2',
];

const root = mkdtempSync(join(tmpdir(), 'pcdarts-train-cli-'));
after(() => rmSync(root, { recursive: true, force: true }));


/** Step, epoch and test records without timings and memory: what must not depend on interruptions. */
function comparable(dir: string): unknown[] {
  return readLog(dir).filter((r) => r.type !== 'resume').map((r) => {
    const { images_per_s: _rate, data_wait_ms: _wait, seconds: _seconds, peak_rss_mb: _rss, peak_tensor_mb: _tensor, ...rest } = r;
    return rest;
  });
}

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}



const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('pcdarts train --help', () => {
  it('lists the authors\' flags with the CIFAR recipe as defaults', async () => {
    const { code, stdout } = await pcdarts('train', '--help');
    assert.equal(code, 0);
    const help = stdout.replace(/\s+/g, ' ');
    const defaults: [string, string][] = [
      ['--genotype <spec>', '"PC_DARTS_cifar"'], ['--dataset <name>', '"fashion-mnist-bundled"'], ['--batch-size <n>', '96'],
      ['--lr <x>', '0.025'], ['--momentum <x>', '0.9'], ['--weight-decay <x>', '0.0003'], ['--epochs <n>', '600'],
      ['--init-channels <n>', '36'], ['--layers <n>', '20'], ['--auxiliary', 'on'], ['--auxiliary-weight <x>', '0.4'],
      ['--cutout', 'on'], ['--cutout-length <n>', '16'], ['--drop-path-prob <x>', '0.3'], ['--grad-clip <x>', '5'],
      ['--label-smoothing <x>', '0'], ['--seed <n>', '0'], ['--valid-portion <x>', '0'], ['--limit-train <n>', 'all'],
      ['--threads <n>', 'all cores'], ['--checkpoint-every <n>', '50'], ['--activation-budget <mib>', '1536'], ['--out <dir>', 'runs/train-<date>-<time>'],
    ];
    for (const [flag, value] of defaults) {
      const at = help.indexOf(` ${flag} `);
      assert.ok(at >= 0, `${flag} missing from the help`);
      const next = help.indexOf(' --', at + flag.length + 2);
      const text = help.slice(at, next < 0 ? undefined : next);
      assert.ok(text.includes(`default: ${value}`), `${flag}: no "default: ${value}" in "${text}"`);
    }
    for (const flag of ['--no-auxiliary', '--no-cutout', '--resume <dir>', '--data <dir>', '--nodes <n>']) assert.ok(help.includes(flag), flag);
  });
});

describe('pcdarts train runs', () => {
  const reference = join(root, 'reference');
  let referenceTest: LogRecord;

  before(async () => {
    const result = await pcdarts('train', ...TINY, '--checkpoint-every', '1', '--out', reference);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /train finished: .*\ntest \(best model \(epoch \d of 2 by validation accuracy\)\): top-1 [\d.]+% top-5 [\d.]+% loss [\d.]+ \(100 test images\)/);
    assert.ok(existsSync(join(reference, 'report.html')), 'the HTML report is written at the end');
    referenceTest = readLog(reference).at(-1)!;
    assert.equal(referenceTest.type, 'test');
  });

  it('resumes a run killed (SIGKILL) in the middle of an epoch to the same losses, best model and test accuracy', async () => {
    const dir = join(root, 'killed');
    await killMidEpochAndResume('train', [...TINY, '--checkpoint-every', '2'], dir, 3);
    assert.deepEqual(comparable(dir), comparable(reference));
    assert.equal(sha256(join(dir, 'best.safetensors')), sha256(join(reference, 'best.safetensors')));

    const tested = await pcdarts('test', '--run', dir, '--json');
    assert.equal(tested.code, 0, tested.stderr);
    const result = JSON.parse(tested.stdout);
    assert.equal(result.top1, referenceTest.top1);
    assert.equal(result.top5, referenceTest.top5);
    assert.equal(result.images, 100);
  });

  it('on SIGTERM finishes the step, writes a checkpoint, exits 143 saying how to resume; the resumed run matches', async () => {
    const dir = join(root, 'terminated');
    const { child, done } = start(['train', ...TINY, '--checkpoint-every', '1000', '--out', dir]);
    await waitFor(() => readLog(dir).some((r) => r.type === 'step' && r.epoch === 0 && r.step >= 2), 'step 2 of epoch 0');
    child.kill('SIGTERM');
    const stopped = await done;
    assert.equal(stopped.code, 143, stopped.stderr);
    assert.match(stopped.stderr, new RegExp(`resume with: ${INVOCATION} train --resume ${escape(dir)}`));
    const state = JSON.parse(readFileSync(join(dir, 'checkpoint', 'state.json'), 'utf8')).state;
    assert.equal(state.global_step, readLog(dir).filter((r) => r.type === 'step').length, 'the checkpoint is at the last logged step');

    const resumed = await pcdarts('train', '--resume', dir, '--threads', '2', '--genotype', 'PC_DARTS_cifar', '--epochs', '2');
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.deepEqual(comparable(dir), comparable(reference));
  });

  it('pcdarts test prints top-1, top-5 and loss as text, and as JSON', async () => {
    const text = await pcdarts('test', '--run', reference);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^top-1 [\d.]+% top-5 [\d.]+% loss [\d.]+ \(100 test images\) \| fashion-mnist-bundled \| .*best\.safetensors\n$/);
    const last = await pcdarts('test', '--run', reference, '--last', '--json');
    assert.equal(last.code, 0, last.stderr);
    const lastEpoch = readLog(reference).filter((r) => r.type === 'epoch').at(-1)!;
    assert.equal(JSON.parse(last.stdout).top1, lastEpoch.test_acc);
  });

  it('refuses bad genotypes, node counts, settings and checkpoints of another architecture: one line, exit 2', async () => {
    const out = join(root, 'never');
    const unknown = join(root, 'unknown-op.json');
    writeFileSync(unknown, JSON.stringify({
      normal: [['sep_conv_3x3', 0], ['conv_9x9', 1]], normal_concat: [2], reduce: [['max_pool_3x3', 0], ['skip_connect', 1]], reduce_concat: [2],
    }));
    assertBadInput(await pcdarts('train', '--genotype', unknown, '--out', out), /normal\[1\]: unknown operation 'conv_9x9'/);
    assertBadInput(await pcdarts('train', '--genotype', '{"normal":[["sep_conv_3x3",0],["skip_connect",2]],"normal_concat":[2],"reduce":[["max_pool_3x3",0],["skip_connect",1]],"reduce_concat":[2]}', '--out', out),
      /normal\[1\]: input 2 out of range: node 0 may use inputs 0\.\.1/);
    assertBadInput(await pcdarts('train', '--genotype', 'DARTS_V2', '--nodes', '5', '--out', out), /--nodes 5: .*8 entries make 4 nodes, expected 5/);
    assertBadInput(await pcdarts('train', '--valid-portion', '1', '--out', out), /--valid-portion: expected a number in \[0, 1\), got 1/);
    assertBadInput(await pcdarts('train', '--drop-path-prob', 'x'), /--drop-path-prob <x>.*'x' is invalid/);
    assert.ok(!existsSync(out));

    assertBadInput(await pcdarts('train', '--resume', reference, '--genotype', 'DARTS_V2'),
      /--genotype DARTS_V2 conflicts with the run, which has --genotype PC_DARTS_cifar/);
    assertBadInput(await pcdarts('train', '--resume', reference, '--no-auxiliary'), /--no-auxiliary conflicts with the run/);
    assertBadInput(await pcdarts('train', ...TINY, '--out', reference), /already holds a run: continue it with --resume/);

    assertBadInput(await pcdarts('test', '--run', reference, '--genotype', 'DARTS_V2'), /--genotype DARTS_V2 is not the genotype the run .* trained/);
    const elsewhere = join(root, 'weights');
    mkdirSync(elsewhere);
    const weights = join(elsewhere, 'model.safetensors');
    copyFileSync(join(reference, 'best.safetensors'), weights);
    assertBadInput(await pcdarts('test', '--checkpoint', weights), /is not in a train run directory: give its architecture with --genotype/);
    assertBadInput(await pcdarts('test', '--checkpoint', weights, '--genotype', 'DARTS_V2', '--init-channels', '4', '--layers', '3'),
      /model\.safetensors: does not match this model: (missing|unexpected) \d+ key/);
    assertBadInput(await pcdarts('test', '--checkpoint', weights, '--genotype', 'PC_DARTS_cifar', '--init-channels', '8', '--layers', '3'),
      /model\.safetensors: '[^']+' has shape \[[\d, ]+\], the model expects \[[\d, ]+\]/);
    const same = await pcdarts('test', '--checkpoint', weights, '--genotype', 'PC_DARTS_cifar', '--init-channels', '4', '--layers', '3', '--limit-test', '100', '--json');
    assert.equal(same.code, 0, same.stderr);
    assert.equal(JSON.parse(same.stdout).top1, referenceTest.top1);
    assertBadInput(await pcdarts('test'), /give a train run directory \(pcdarts test RUN_DIR\) or a weights file \(--checkpoint FILE\)/);
    assertBadInput(await pcdarts('test', '--run', join(root, 'absent')), /no such directory/);
    assert.deepEqual(readdirSync(elsewhere), ['model.safetensors']);
  });
});
