/**
 * `pcdarts search --order 2` (the unrolled DARTS step) as a user runs it: recorded in
 * config.json, exact after SIGKILL and resume, bitwise the same at any --activation-budget,
 * and checked like every other setting.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { assertBadInput, killMidEpochAndResume, pcdarts, readLog } from './process.js';

/** 16 steps per epoch, second-order architecture steps in the second epoch. */
const TINY = [
  '--limit-train', '256', '--batch-size', '8', '--epochs', '2', '--warmup-epochs', '1',
  '--init-channels', '4', '--layers', '3', '--nodes', '2', '--k', '2', '--threads', '2',
];

const root = mkdtempSync(join(tmpdir(), 'pcdarts-cli-order2-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** Step and epoch records without timings and memory. */
function comparable(dir: string): unknown[] {
  return readLog(dir).filter((r) => r.type === 'step' || r.type === 'epoch').map((r) => {
    const { images_per_s: _rate, data_wait_ms: _wait, seconds: _seconds, peak_rss_mb: _rss, peak_tensor_mb: _tensor, ...rest } = r;
    return rest;
  });
}

describe('pcdarts search --order 2', () => {
  const reference = join(root, 'reference');
  const firstOrder = join(root, 'first-order');

  before(async () => {
    // The reference recomputes every MixedOp (budget 0); the runs below keep the default budget.
    const result = await pcdarts('search', ...TINY, '--order', '2', '--activation-budget', '0', '--checkpoint-every', '1', '--out', reference);
    assert.equal(result.code, 0, result.stderr);
    const first = await pcdarts('search', ...TINY, '--out', firstOrder);
    assert.equal(first.code, 0, first.stderr);
  });

  it('records order 2 in config.json and takes other architecture steps than the first order', () => {
    assert.equal(JSON.parse(readFileSync(join(reference, 'config.json'), 'utf8')).config.order, 2);
    assert.equal(JSON.parse(readFileSync(join(firstOrder, 'config.json'), 'utf8')).config.order, 1);
    const archLosses = (dir: string): number[] => readLog(dir).filter((r) => r.type === 'step' && r.epoch === 1).map((r) => r.arch_loss as number);
    const second = archLosses(reference);
    assert.equal(second.length, 16);
    assert.ok(second.every(Number.isFinite));
    // The warm-up epoch is the same; the architecture epoch is not.
    const epochs = (dir: string): Record<string, unknown>[] => readLog(dir).filter((r) => r.type === 'epoch');
    assert.equal(epochs(reference)[0].train_loss, epochs(firstOrder)[0].train_loss);
    assert.notDeepEqual(epochs(reference)[1].alphas, epochs(firstOrder)[1].alphas);
    assert.notDeepEqual(second, archLosses(firstOrder));
  });

  it('resumes a run killed (SIGKILL) mid-epoch to the same bits as the uninterrupted run with another activation budget', async () => {
    const dir = join(root, 'killed');
    await killMidEpochAndResume('search', [...TINY, '--order', '2', '--checkpoint-every', '1'], dir, 2);
    assert.deepEqual(comparable(dir), comparable(reference));
    for (const file of ['genotype.json', 'genotypes.jsonl']) {
      assert.equal(readFileSync(join(dir, file), 'utf8'), readFileSync(join(reference, file), 'utf8'), file);
    }
  });

  it('refuses an order other than 1 or 2, and another order on --resume', async () => {
    assertBadInput(await pcdarts('search', ...TINY, '--order', '3', '--out', join(root, 'never')), /--order: expected 1 or 2, got 3/);
    assert.ok(!existsSync(join(root, 'never')));
    assertBadInput(await pcdarts('search', '--resume', reference, '--order', '1'), /--order 1 conflicts with the run, which has --order 2/);
  });
});
