/**
 * The report reads right (issue 10): epochs numbered from 1 as in the terminal, the operation
 * heatmaps show softmax(alpha) per edge (each edge's operations sum to 1) with beta on its
 * own, the warm-up marked, an unfinished run says so with its resume command, and a training
 * run has its own captions and its parameters and mult-adds in the summary.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, test } from 'node:test';

import { readRunDirectory, runCharts, writeRunReport } from '../../src/viz/index.js';
import { writeFixtureRun } from './fixture-run.js';

const scratch = mkdtempSync(join(tmpdir(), 'pcdarts-report-right-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
let runs = 0;

/** A fixture run with config.json in the layout src/run writes (command, config, info). */
function fixture(options: { kind: 'search' | 'train'; epochs: number; logged?: number; warmupEpochs?: number; test?: boolean }): string {
  const dir = join(scratch, `run${runs++}`);
  writeFixtureRun(dir, { epochs: options.logged ?? options.epochs, stepsPerEpoch: 3, kind: options.kind });
  const config = { epochs: options.epochs, initChannels: 8, layers: 5, network: 'cifar', ...(options.warmupEpochs !== undefined ? { warmupEpochs: options.warmupEpochs } : {}) };
  const info = options.kind === 'train' ? { parameters: 123456, mult_adds: 7890000 } : {};
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ pcdarts_run: 1, command: options.kind, config, info }));
  return dir;
}

function chart(dir: string, id: string): { caption: string; spec: any } {
  const found = runCharts(readRunDirectory(dir)).find((c) => c.id === id);
  assert.ok(found, `no chart ${id}`);
  return found as { caption: string; spec: any };
}

describe('the report reads right', () => {
  test('epochs are numbered from 1: charts, genotype table and summary', async () => {
    const dir = fixture({ kind: 'search', epochs: 4, warmupEpochs: 1 });
    const loss = chart(dir, 'loss-epoch').spec;
    const line = loss.layer ? loss.layer[loss.layer.length - 1] : loss;
    assert.deepEqual([...new Set(line.data.values.map((p: { x: number }) => p.x))], [1, 2, 3, 4]);
    const steps = chart(dir, 'loss-step').spec;
    const stepX = (steps.layer ? steps.layer[steps.layer.length - 1] : steps).data.values.map((p: { x: number }) => p.x);
    assert.ok(Math.min(...stepX) > 0 && Math.max(...stepX) === 4, 'steps of epoch n lie in (n - 1, n]');
    const html = readFileSync((await writeRunReport(dir)).path, 'utf8');
    const rows = [...html.matchAll(/<tr[^>]*><th>(\d+)/g)].map((m) => Number(m[1]));
    assert.deepEqual(rows, [1, 2, 3, 4]);
    assert.match(html, /<dt>train accuracy \(epoch 4\)<\/dt>/);
  });

  test('the heatmaps show softmax(alpha) per edge, summing to 1 over its operations, and beta on its own', () => {
    const dir = fixture({ kind: 'search', epochs: 3 });
    const run = readRunDirectory(dir);
    const heat = chart(dir, 'edge-weights-normal');
    assert.match(heat.spec.title, /softmax\(α\) per edge and operation$/);
    assert.doesNotMatch(heat.spec.title, /β/);
    const sums = new Map<string, number>();
    for (const row of heat.spec.data.values as { epoch: number; node: number; input: number; w: number }[]) {
      const key = `${row.epoch}/${row.node}/${row.input}`;
      sums.set(key, (sums.get(key) ?? 0) + row.w);
    }
    for (const [key, sum] of sums) assert.ok(Math.abs(sum - 1) < 1e-6, `edge ${key} sums to ${sum}`);
    // The same numbers as softmax(alpha), not W = softmax(alpha) * beta.
    const first = (heat.spec.data.values as { epoch: number; w: number }[]).filter((r) => r.epoch === 1).slice(0, 8).map((r) => r.w);
    assert.deepEqual(first, run.epochs[0]!.alphaWeights!.normal[0]);
    assert.ok(chart(dir, 'betas'));
  });

  test('warm-up epochs are marked: a band on the curves, tags in the genotype table, a summary card', async () => {
    const dir = fixture({ kind: 'search', epochs: 4, warmupEpochs: 2 });
    const spec = chart(dir, 'accuracy-epoch').spec;
    assert.ok(Array.isArray(spec.layer));
    assert.deepEqual(spec.layer[0].data.values, [{ from: 0, to: 2, label: 'warm-up' }]);
    assert.match(chart(dir, 'accuracy-epoch').caption, /Grey: the warm-up epochs/);
    assert.match(chart(dir, 'edge-weights-normal').caption, /Epochs 1-2 are the warm-up/);
    const html = readFileSync((await writeRunReport(dir)).path, 'utf8');
    assert.equal([...html.matchAll(/<span class="tag">warm-up<\/span>/g)].length, 2);
    assert.match(html, /<dt>warm-up \(weights only\)<\/dt><dd>epochs 1-2<\/dd>/);
  });

  test('an interrupted run says so, and how to resume it', async () => {
    const dir = fixture({ kind: 'search', epochs: 10, logged: 3, warmupEpochs: 1 });
    const html = readFileSync((await writeRunReport(dir, undefined, { invocation: 'npm run pcdarts --' })).path, 'utf8');
    assert.match(html, /<section id="unfinished" class="warning"><h2>Not finished<\/h2><p>This run has not finished: 3 of 10 epochs are logged/);
    assert.ok(html.includes(`<code>npm run pcdarts -- search --resume ${resolve(dir)}</code>`));
    assert.match(html, /<dt>epochs<\/dt><dd>3 of 10 \(not finished\)<\/dd>/);
    const finished = fixture({ kind: 'search', epochs: 3, warmupEpochs: 1 });
    assert.doesNotMatch(readFileSync((await writeRunReport(finished)).path, 'utf8'), /id="unfinished"/);
  });

  test('a training run has its own captions, and its parameters and mult-adds in the summary', async () => {
    const dir = fixture({ kind: 'train', epochs: 3 });
    for (const id of ['loss-epoch', 'loss-step', 'accuracy-epoch']) {
      assert.doesNotMatch(chart(dir, id).caption, /half|architecture/, id);
    }
    assert.match(chart(dir, 'loss-step').caption, /^Training batch losses/);
    const search = fixture({ kind: 'search', epochs: 3 });
    assert.match(chart(search, 'loss-step').caption, /architecture steps/);
    const html = readFileSync((await writeRunReport(dir)).path, 'utf8');
    assert.match(html, /<dt>parameters<\/dt><dd>123,456 \(0\.12 M\)<\/dd>/);
    assert.match(html, /<dt>mult-adds per image<\/dt><dd>7,890,000 \(7\.9 M\)<\/dd>/);
    assert.match(html, /<dt>network<\/dt><dd>C8, 5 cells \(cifar\)<\/dd>/);
  });
});
