import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';

import { edgeCount, nodeFirstEdge } from '../../src/darts/genotype.js';
import { edgeWeights } from '../../src/darts/genotype-derive.js';
import { RunDirectoryError, readRunDirectory, writeRunReport } from '../../src/viz/index.js';
import { writeFixtureRun } from './fixture-run.js';

const scratch = mkdtempSync(join(tmpdir(), 'pcdarts-report-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
let runs = 0;
function runDir(): string {
  return join(scratch, `run${runs++}`);
}

describe('reading a run directory', () => {
  test('a search run: steps, epochs, architecture weights, genotypes', () => {
    const dir = runDir();
    writeFixtureRun(dir, { epochs: 4, stepsPerEpoch: 5 });
    const run = readRunDirectory(dir);
    assert.equal(run.kind, 'search');
    assert.equal(run.steps.length, 20);
    assert.deepEqual(run.epochs.map((e) => e.epoch), [0, 1, 2, 3]);
    assert.deepEqual(run.issues, []);
    assert.equal(run.genotypeSource, 'genotype.json');
    assert.deepEqual(run.genotype, run.epochs[3]!.genotype);
    assert.equal(run.config?.['command'], 'search');
    // W = softmax(alpha) * beta_w: over a node's edges and all operations it sums to 1
    for (const epoch of run.epochs) {
      for (const cell of ['normal', 'reduce'] as const) {
        const w = epoch.edgeWeights![cell];
        assert.equal(w.length, edgeCount(4));
        for (let node = 0; node < 4; node++) {
          const rows = w.slice(nodeFirstEdge(node), nodeFirstEdge(node) + node + 2);
          const sum = rows.flat().reduce((s, v) => s + v, 0);
          assert.ok(Math.abs(sum - 1) < 1e-5, `${cell} node ${node}: ${sum}`);
        }
      }
      assert.ok(epoch.skipConnects?.normal !== undefined && epoch.skipConnects.reduce !== undefined);
    }
  });

  test('raw alphas and betas in other shapes are normalised as edgeWeights does', () => {
    const dir = runDir();
    writeFixtureRun(dir, { epochs: 1 });
    const rows = (seed: number): number[][] =>
      Array.from({ length: 5 }, (_, e) => Array.from({ length: 8 }, (_, o) => Math.sin(seed + 3 * e + o)));
    const alphasNormal = rows(1);
    const alphasReduce = rows(2);
    const betasNormal = [0.3, -0.2, 0.1, 0.5, -0.4];
    const betasReduce = [-0.1, 0.2, 0.0, 0.3, 0.6];
    writeFileSync(
      join(dir, 'log.jsonl'),
      JSON.stringify({
        type: 'epoch', epoch: 0,
        alphas: [alphasNormal, alphasReduce.flat()], // [normal, reduce], the second one flat
        betas: { normal: [betasNormal.slice(0, 2), betasNormal.slice(2)], reduce: betasReduce }, // per node or flat
        skip_connects: 3,
      }) + '\n',
    );
    const run = readRunDirectory(dir);
    assert.deepEqual(run.issues, []);
    const expected = edgeWeights({ alphasNormal, alphasReduce, betasNormal, betasReduce });
    assert.deepEqual(run.epochs[0]!.edgeWeights, expected);
    assert.deepEqual(run.epochs[0]!.skipConnects, { total: 3 });
  });

  test('a truncated last line is skipped and reported with its line number', () => {
    const dir = runDir();
    writeFixtureRun(dir, { epochs: 2, stepsPerEpoch: 3, truncated: true });
    const run = readRunDirectory(dir);
    assert.equal(run.epochs.length, 2);
    assert.equal(run.issues.length, 1);
    assert.equal(run.issues[0]!.line, 9); // 2 x (3 steps + 1 epoch) lines, then the partial one
    assert.ok(run.issues[0]!.skipped);
    assert.match(run.issues[0]!.message, /^truncated/);
  });

  test('bad lines in the middle and bad fields: skipped or ignored, the rest kept', () => {
    const dir = runDir();
    writeFixtureRun(dir, { epochs: 2, stepsPerEpoch: 2 });
    const lines = readFileSync(join(dir, 'log.jsonl'), 'utf8').trimEnd().split('\n');
    lines.splice(1, 0, '{"type": "step", "epoch": 0, "st');
    lines.push(JSON.stringify({ type: 'epoch', epoch: 2, train_loss: 1, alphas: { normal: [[1, 2]], reduce: [[1, 2]] } }));
    writeFileSync(join(dir, 'log.jsonl'), lines.join('\n') + '\n');
    const run = readRunDirectory(dir);
    assert.equal(run.epochs.length, 3);
    assert.equal(run.epochs[2]!.alphaWeights, undefined);
    assert.deepEqual(
      run.issues.map((issue) => [issue.line, issue.skipped, issue.message.split(':')[0]]),
      [[2, true, 'invalid JSON'], [8, false, 'alphas ignored']],
    );
  });

  test('a missing directory or one without a run is a RunDirectoryError', () => {
    assert.throws(() => readRunDirectory(join(scratch, 'nope')), (e) => e instanceof RunDirectoryError && /no such directory/.test(e.message));
    assert.throws(() => readRunDirectory(scratch), (e) => e instanceof RunDirectoryError && /not a run directory/.test(e.message));
  });
});

describe('report.html', () => {
  test('a search run: self-contained, cells, every chart, genotype changes, config', async () => {
    const dir = runDir();
    writeFixtureRun(dir, { epochs: 5, stepsPerEpoch: 4 });
    const result = await writeRunReport(dir);
    assert.equal(result.path, join(dir, 'report.html'));
    const html = readFileSync(result.path, 'utf8');
    assert.deepEqual(result.charts, [
      'loss-epoch', 'accuracy-epoch', 'loss-step', 'learning-rate', 'throughput', 'skip-connects',
      'edge-weights-normal', 'edge-weights-reduce', 'betas',
    ]);
    for (const id of result.charts) assert.match(html, new RegExp(`<figure class="chart" id="chart-${id}" data-chart="${id}"><svg`));
    assert.match(html, /<figure class="cell-drawing" id="cell-normal" data-cell="normal"><svg/);
    assert.match(html, /<figure class="cell-drawing" id="cell-reduce" data-cell="reduce"><svg/);
    // opens offline: no script, no stylesheet link, nothing fetched
    assert.doesNotMatch(html, /<script|<link|<img|<iframe|@import|\bsrc=/i);
    assert.doesNotMatch(html, /(?:href|src)="(?:https?:)?\/\//i);
    const ids = [...html.matchAll(/\bid="([^"]+)"/g)].map((m) => m[1]!);
    assert.equal(new Set(ids).size, ids.length, 'duplicate ids');
    assert.match(html, /<section id="genotypes">/);
    assert.match(html, /<mark>/); // the fixture's genotype changes between epochs
    assert.match(html, /<th>command<\/th><td><code>search<\/code>/);
    assert.match(html, /<th>learning\.lr<\/th><td><code>0\.1<\/code>/);
    assert.doesNotMatch(html, /id="log-issues"/);
  });

  test('a training run: curves with test accuracy, the final test accuracy, no heatmaps', async () => {
    const dir = runDir();
    writeFixtureRun(dir, { epochs: 3, kind: 'train' });
    const result = await writeRunReport(dir);
    assert.equal(result.run.kind, 'train');
    assert.ok(!result.charts.some((id) => id.startsWith('edge-weights') || id === 'betas'));
    assert.ok(result.charts.includes('accuracy-epoch'));
    const html = readFileSync(result.path, 'utf8');
    assert.match(html, /<dt>test accuracy top-1<\/dt><dd>57\.12 %<\/dd>/);
    assert.match(html, /<dt>test accuracy top-5<\/dt><dd>94\.31 %<\/dd>/);
    assert.match(html, /Training run /);
  });

  test('a truncated log still renders and says which line it skipped', async () => {
    const dir = runDir();
    writeFixtureRun(dir, { epochs: 2, stepsPerEpoch: 3, truncated: true });
    const result = await writeRunReport(dir);
    assert.deepEqual(result.skipped.map((issue) => issue.line), [9]);
    const html = readFileSync(result.path, 'utf8');
    assert.match(html, /<section id="log-issues"/);
    assert.match(html, /Skipped 1 line/);
    assert.match(html, /<code>log\.jsonl:9<\/code> truncated/);
    assert.equal(result.charts.length, 9);
  });
});

// The commands, through a throwaway entry point (src/cli/main.ts is another file's business).
const entry = join(scratch, 'entry.mjs');
writeFileSync(
  entry,
  [
    `import { Command } from ${JSON.stringify(import.meta.resolve('commander'))};`,
    `import { registerVisualizeCommand } from ${JSON.stringify(new URL('../../src/cli/visualize.js', import.meta.url).href)};`,
    `import { registerReportCommand } from ${JSON.stringify(new URL('../../src/cli/report.js', import.meta.url).href)};`,
    "const program = new Command('pcdarts');",
    'registerVisualizeCommand(program);',
    'registerReportCommand(program);',
    'await program.parseAsync();',
  ].join('\n'),
);

function pcdarts(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [entry, ...args], { encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('commands', () => {
  test('visualize: SVG of both cells, PNG of one', () => {
    const svg = join(scratch, 'out', 'cells.svg');
    // The folder must exist: visualize creates no directory it was not asked for.
    const missing = pcdarts('visualize', 'PC_DARTS_cifar', '--out', svg);
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /cells\.svg: cannot open: the directory .*out does not exist/);
    mkdirSync(join(scratch, 'out'));
    const both = pcdarts('visualize', 'PC_DARTS_cifar', '--out', svg);
    assert.equal(both.status, 0, both.stderr);
    assert.match(both.stdout, /normal and reduction cells/);
    const text = readFileSync(svg, 'utf8');
    assert.ok(text.includes('>normal cell<') && text.includes('>reduction cell<'));
    const png = join(scratch, 'out', 'reduce.png');
    const one = pcdarts('visualize', 'DARTS_V2', '--out', png, '--cell', 'reduce');
    assert.equal(one.status, 0, one.stderr);
    assert.equal(readFileSync(png).subarray(1, 4).toString('latin1'), 'PNG');
  });

  test('visualize and report: a missing genotype or run directory is one line and exit code 2', () => {
    const cases = [
      pcdarts('visualize', 'NO_SUCH_GENOTYPE', '--out', join(scratch, 'x.svg')),
      pcdarts('visualize', join(scratch, 'no-such-run'), '--out', join(scratch, 'x.svg')),
      pcdarts('visualize', 'PC_DARTS_cifar', '--out', join(scratch, 'x.pdf')),
      pcdarts('report', join(scratch, 'no-such-run')),
      pcdarts('report', scratch),
    ];
    for (const result of cases) {
      assert.equal(result.status, 2, result.stderr);
      assert.equal(result.stderr.trimEnd().split('\n').length, 1, result.stderr);
      assert.match(result.stderr, /^error: /);
    }
    assert.ok(!existsSync(join(scratch, 'x.svg')));
  });

  test('report: writes RUN_DIR/report.html, warns about skipped lines', () => {
    const dir = runDir();
    writeFixtureRun(dir, { epochs: 2, stepsPerEpoch: 2, truncated: true });
    const result = pcdarts('report', dir);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /report\.html \(9 charts\)/);
    assert.match(result.stderr, /^warning: log\.jsonl:7 skipped: truncated/);
    assert.ok(existsSync(join(dir, 'report.html')));
  });
});
