/**
 * `pcdarts experiment run` end to end on a tiny spec: trials run as child processes two at a
 * time; a trial with a bad flag is recorded with its one-line error while the others finish;
 * a runner SIGKILLed in the middle of a search and run again gives the same results, genotypes
 * and losses bit for bit as an uninterrupted run (the orphaned child writes a checkpoint and
 * stops; the rerun resumes it, taking over a run lock that a dead machine left); a spec with an added seed reuses the finished trials untouched.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import type { ExperimentResults } from '../../src/index.js';
import { comparableRecords, type Finished, pcdarts, readLog, start, treeHashes, waitFor } from '../cli/process.js';

const root = mkdtempSync(join(tmpdir(), 'pcdarts-experiment-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** 16 search steps per epoch (architecture steps in the second), 8 retraining steps per epoch. */
const SPEC = {
  name: 'tiny',
  dataset: 'fashion-mnist-bundled',
  search: { 'limit-train': 512, 'batch-size': 16, epochs: 2, 'warmup-epochs': 1, 'init-channels': 4, layers: 3, nodes: 2, 'checkpoint-every': 3 },
  train: { 'limit-train': 128, 'limit-test': 100, 'batch-size': 16, epochs: 2, 'init-channels': 4, layers: 3, 'checkpoint-every': 2 },
  grid: { methods: ['pcdarts', 'random', { method: 'darts-v1', label: 'bad lr', search: { lr: -1 } }], k: [2], seeds: [0] },
};

function writeSpec(name: string, value: unknown): string {
  const path = join(root, `${name}.json`);
  writeFileSync(path, JSON.stringify(value, null, 2));
  return path;
}

/** results.json without the times (which no two runs share). */
function comparableResults(dir: string): unknown {
  const results = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as ExperimentResults;
  return results.trials.map(({ searchSeconds: _s, retrainSeconds: _r, ...rest }) => rest);
}

const trialsOf = (dir: string): ExperimentResults['trials'] => (JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as ExperimentResults).trials;

describe('pcdarts experiment run', () => {
  const spec = writeSpec('tiny', SPEC);
  const whole = join(root, 'whole');
  let first: Finished;

  before(async () => {
    first = await pcdarts('experiment', 'run', spec, '--out', whole, '--parallel', '2');
  });

  it('runs every trial, records the failing one with its error, and reports each state change', () => {
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /experiment finished: 2 of 3 trials done, 1 failed/);
    const trials = trialsOf(whole);
    assert.deepEqual(trials.map((t) => [t.label, t.state]), [['pcdarts K=2 EN', 'done'], ['random', 'done'], ['bad lr', 'failed']]);
    const [pc, random, bad] = trials;
    assert.equal(bad.failedPhase, 'search');
    assert.equal(bad.error, '--lr: expected a number > 0, got -1');
    for (const t of [pc, random]) {
      assert.ok(t.top1! >= 0 && t.top1! <= 1 && t.top5! >= t.top1!, JSON.stringify(t));
      assert.ok(t.params! > 0 && t.multAdds! > 0);
      assert.ok(t.retrainSeconds! > 0);
      assert.equal(t.skipConnects, t.genotype!.normal.filter(([op]) => op === 'skip_connect').length);
    }
    assert.ok(pc.searchSeconds! > 0);
    assert.equal(random.searchSeconds, null);
    // The genotype retrained is the one the search found.
    const trainConfig = JSON.parse(readFileSync(join(whole, 'trials', pc.id, 'train', 'config.json'), 'utf8'));
    assert.deepEqual(trainConfig.config.genotype, pc.genotype);
    assert.deepEqual(JSON.parse(readFileSync(join(whole, 'trials', pc.id, 'search', 'genotype.json'), 'utf8')), pc.genotype);
    for (const line of [
      `trial pcdarts K=2 EN seed 0 (${pc.id}): search started`, `trial pcdarts K=2 EN seed 0 (${pc.id}): search done`,
      `trial pcdarts K=2 EN seed 0 (${pc.id}): retraining done`, `trial random seed 0 (${random.id}): retraining done`,
      `trial bad lr seed 0 (${bad.id}): search FAILED: --lr: expected a number > 0, got -1`,
    ]) assert.ok(first.stderr.includes(line), `missing "${line}" in:\n${first.stderr}`);
    assert.match(first.stderr, /\d+(\.\d)?\/10 epochs \(\d+%\), ETA/);
  });

  it('writes report.md and report.html at the end (experiment report DIR writes them again)', async () => {
    assert.match(first.stdout, /report: .*report\.md\nreport: .*report\.html/);
    const md = readFileSync(join(whole, 'report.md'), 'utf8');
    const [pc] = trialsOf(whole);
    assert.ok(md.includes(`| pcdarts K=2 EN | yes (K=2) | yes | 1 | 1/1 | ${(100 * (1 - pc.top1!)).toFixed(2)} (1 seed) |`), md);
    assert.match(md, /- pcdarts K=2 EN: only 1 finished seed, so no standard deviation/);
    assert.match(md, /- bad lr seed 0 \(\w+\) failed in its search: --lr: expected a number > 0, got -1/);
    rmSync(join(whole, 'report.html'));
    const again = await pcdarts('experiment', 'report', whole);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(readFileSync(join(whole, 'report.md'), 'utf8'), md);
    const html = readFileSync(join(whole, 'report.html'), 'utf8');
    assert.match(html, /Figure 3\)<\/h2>\n<figure><svg/);
    assert.equal((html.match(/<figcaption>seed 0/g) ?? []).length, 2, 'one cell drawing per genotype (pcdarts and random)');
    const missing = await pcdarts('experiment', 'report', join(root, 'absent'));
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^pcdarts experiment report: .*absent: no such directory\n$/);
  });

  it('killed with SIGKILL mid-search and run again: the same results, genotypes and losses bit for bit', async () => {
    const dir = join(root, 'killed');
    const { child, done } = start(['experiment', 'run', spec, '--out', dir, '--parallel', '2']);
    const pcId = trialsOf(whole)[0].id;
    const searchDir = join(dir, 'trials', pcId, 'search');
    await waitFor(() => readLog(searchDir).some((r) => r.type === 'step' && r.epoch === 0 && r.step >= 2), 'step 2 of the search', 120_000);
    child.kill('SIGKILL');
    assert.equal((await done).signal, 'SIGKILL');
    // The orphaned children notice, write a checkpoint and stop (their locks go).
    await waitFor(() => readdirSync(join(dir, 'trials')).every((id) => !existsSync(join(dir, 'trials', id, 'lock'))), 'the orphaned trials to stop', 60_000);
    assert.equal(existsSync(join(dir, 'trials', pcId, 'search.status.json')), false, 'the search finished before the runner was killed');
    // As if the search had been running on a machine that died: its run lock names another host,
    // whose pid cannot be checked. The rerun holds the trial lock, so it takes that lock over.
    writeFileSync(join(searchDir, 'run.lock'), `${JSON.stringify({ host: 'dead-machine.example', pid: 4242, started: '2026-12-01T00:00:00.000Z', purpose: 'search', token: 'abcdefabcdefabcd' })}\n`);
    const again = await pcdarts('experiment', 'run', spec, '--out', dir, '--parallel', '2');
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, new RegExp(`trial pcdarts K=2 EN seed 0 \\(${pcId}\\): search resumed from its checkpoint`));
    assert.ok(readLog(searchDir).some((r) => r.type === 'resume'));
    assert.deepEqual(comparableResults(dir), comparableResults(whole));
    for (const t of trialsOf(whole)) {
      if (t.state !== 'done') continue;
      for (const phase of t.random ? ['train'] : ['search', 'train']) {
        assert.deepEqual(comparableRecords(join(dir, 'trials', t.id, phase), ['step', 'epoch', 'test']), comparableRecords(join(whole, 'trials', t.id, phase), ['step', 'epoch', 'test']), `${t.label} ${phase}`);
      }
      if (!t.random) {
        assert.equal(readFileSync(join(dir, 'trials', t.id, 'search', 'genotypes.jsonl'), 'utf8'), readFileSync(join(whole, 'trials', t.id, 'search', 'genotypes.jsonl'), 'utf8'));
      }
      assert.equal(readFileSync(join(dir, 'trials', t.id, 'test.json'), 'utf8'), readFileSync(join(whole, 'trials', t.id, 'test.json'), 'utf8'));
    }
  });

  it('a spec with an added seed reuses the finished trials untouched and runs the new ones', async () => {
    const before = Object.fromEntries(trialsOf(whole).map((t) => [t.id, treeHashes(join(whole, 'trials', t.id))]));
    const more = writeSpec('tiny-more', { ...SPEC, grid: { ...SPEC.grid, methods: ['pcdarts', 'random'], seeds: [0, 1] } });
    // Methods removed: another spec's trials, refused.
    const refused = await pcdarts('experiment', 'run', more, '--out', whole);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /holds trial bad lr seed 0/);
    const extended = writeSpec('tiny-extended', { ...SPEC, grid: { ...SPEC.grid, seeds: [0, 1] } });
    const result = await pcdarts('experiment', 'run', extended, '--out', whole, '--parallel', '2');
    assert.equal(result.code, 0, result.stderr);
    const trials = trialsOf(whole);
    assert.deepEqual(trials.map((t) => [t.label, t.seed, t.state]), [
      ['pcdarts K=2 EN', 0, 'done'], ['pcdarts K=2 EN', 1, 'done'], ['random', 0, 'done'], ['random', 1, 'done'], ['bad lr', 0, 'failed'], ['bad lr', 1, 'failed'],
    ]);
    for (const [id, files] of Object.entries(before)) assert.deepEqual(treeHashes(join(whole, 'trials', id)), files, `trial ${id} changed`);
    assert.ok(!/seed 0 .*started/.test(result.stderr), result.stderr);
    assert.notDeepEqual(trials[0].genotype === null ? null : trials[2].genotype, trials[3].genotype);
  });
});
