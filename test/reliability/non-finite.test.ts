/**
 * Non-finite numbers stop a run at the step they appear: exit status 3, one line saying what
 * became non-finite, where, and the last good checkpoint, which stays intact and finite.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { readCheckpoint } from '../../src/run/checkpoint.js';
import { firstNonFinite } from '../../src/run/errors.js';
import { pcdarts, readLog } from '../cli/process.js';

const root = mkdtempSync(join(tmpdir(), 'pcdarts-nonfinite-'));
after(() => rmSync(root, { recursive: true, force: true }));

const SEARCH = ['--limit-train', '128', '--batch-size', '8', '--epochs', '2', '--warmup-epochs', '0', '--init-channels', '4',
  '--layers', '3', '--nodes', '2', '--k', '2', '--threads', '2', '--checkpoint-every', '2'];
const TRAIN = ['--limit-train', '192', '--valid-portion', '0.25', '--limit-test', '100', '--batch-size', '16', '--epochs', '2',
  '--init-channels', '4', '--layers', '3', '--threads', '2', '--checkpoint-every', '2'];

function assertStopped(result: { code: number | null; stderr: string }, dir: string): void {
  assert.equal(result.code, 3, result.stderr);
  assert.ok(!/\n\s+at /.test(result.stderr), `no stack trace: ${result.stderr}`);
  const lines = result.stderr.split('\n').filter((l) => /became/.test(l));
  assert.equal(lines.length, 1, result.stderr);
  const match = /became (NaN|-?Infinity) at epoch (\d+) step (\d+) \(0-based\); stopped without saving it: (?:the last good checkpoint, epoch (\d+) step (\d+), is intact|the run has no checkpoint yet)/.exec(lines[0]!);
  assert.ok(match, lines[0]);
  const checkpoint = readCheckpoint<{ epoch: number; step: number }>(dir);
  if (match[4] === undefined) {
    assert.equal(checkpoint, null);
    return;
  }
  assert.ok(checkpoint, 'the last good checkpoint loads (checksums match)');
  assert.deepEqual([checkpoint.state.epoch, checkpoint.state.step], [Number(match[4]), Number(match[5])]);
  for (const [name, t] of checkpoint.tensors) assert.equal(firstNonFinite(t.values), null, `${name} is finite`);
  // The log is whole JSON lines.
  for (const line of readFileSync(join(dir, 'log.jsonl'), 'utf8').split('\n').filter((l) => l !== '')) JSON.parse(line);
  assert.ok(readLog(dir).every((r) => r.type !== 'step' || Number.isFinite(r.loss as number) || r.loss === null));
}

describe('non-finite numbers', () => {
  for (const lr of ['1e6', '1e12']) {
    it(`search --lr ${lr} stops with exit 3 and one line; the last checkpoint is intact`, async () => {
      const dir = join(root, `search-${lr}`);
      assertStopped(await pcdarts('search', ...SEARCH, '--lr', lr, '--out', dir), dir);
    });
  }

  it('search --arch-lr 1e30 stops in the architecture parameters', async () => {
    const dir = join(root, 'search-arch');
    const result = await pcdarts('search', ...SEARCH, '--arch-lr', '1e30', '--out', dir);
    assertStopped(result, dir);
    assert.match(result.stderr, /the architecture (parameters|loss)|a tensor to checkpoint \((arch|adam)\./);
  });

  it('train --lr 1e6 stops with exit 3 and one line; the last checkpoint is intact', async () => {
    const dir = join(root, 'train');
    assertStopped(await pcdarts('train', ...TRAIN, '--lr', '1e6', '--out', dir), dir);
  });
});
