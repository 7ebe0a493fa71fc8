/**
 * The report of a tiny real search run (the synthetic fixture where this checkout has no
 * search command yet), opened in headless Chromium: the cell drawings and every chart must
 * render with a non-empty size, and the page must load nothing from outside. The screenshot
 * is kept as a test artefact: artifacts/report.png under the repository root.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { test } from 'node:test';

import { chromium } from 'playwright-core';

import { writeRunReport } from '../../src/viz/index.js';
import { writeFixtureRun } from './fixture-run.js';

const CHROMIUM = process.env['PCDARTS_CHROMIUM'] ?? '/usr/bin/chromium';
// dist/test/viz/ -> the repository root
const REPOSITORY = fileURLToPath(new URL('../../../', import.meta.url));
const MAIN = join(REPOSITORY, 'dist', 'src', 'cli', 'main.js');
const ARTIFACTS = join(REPOSITORY, 'artifacts');

/** A tiny real search when the CLI has one (a few seconds on 2 cores), else the fixture. */
function makeRun(dir: string): string {
  const help = existsSync(MAIN) ? spawnSync(process.execPath, [MAIN, 'search', '--help'], { encoding: 'utf8' }) : undefined;
  if (help?.status === 0) {
    const args = [
      MAIN, 'search', '--limit-train', '64', '--batch-size', '16', '--epochs', '2', '--warmup-epochs', '1',
      '--init-channels', '4', '--layers', '3', '--nodes', '2', '--k', '2', '--out', dir,
    ];
    const search = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 300_000 });
    assert.equal(search.status, 0, `pcdarts search failed:\n${search.stderr}`);
    return 'a tiny real search run';
  }
  writeFixtureRun(dir, { epochs: 4, stepsPerEpoch: 5 });
  return 'the synthetic run (no search command in this build)';
}

const skip = !existsSync(CHROMIUM) && process.env['CI'] === undefined ? `no Chromium at ${CHROMIUM} (.ci/run installs it)` : false;

test('report.html renders in headless Chromium', { skip, timeout: 600_000 }, async (t) => {
  const scratch = mkdtempSync(join(tmpdir(), 'pcdarts-browser-'));
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const dir = join(scratch, 'run');
    t.diagnostic(`report of ${makeRun(dir)}`);
    const report = await writeRunReport(dir);
    assert.deepEqual(report.skipped, []);

    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const outside: string[] = [];
    page.on('request', (request) => {
      if (!/^(file|data|about):/.test(request.url())) outside.push(request.url());
    });
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(pathToFileURL(report.path).href, { waitUntil: 'load' });

    const boxes = await page.$$eval('figure.cell-drawing, figure.chart', (figures) =>
      figures.map((figure) => {
        const svg = figure.querySelector('svg');
        const box = svg?.getBoundingClientRect();
        return { id: figure.id, width: box?.width ?? 0, height: box?.height ?? 0 };
      }),
    );
    assert.deepEqual(
      boxes.map((b) => b.id),
      ['cell-normal', 'cell-reduce', ...report.charts.map((id) => `chart-${id}`)],
    );
    assert.ok(report.charts.includes('edge-weights-normal') && report.charts.includes('betas'), report.charts.join(', '));
    for (const box of boxes) assert.ok(box.width > 50 && box.height > 50, `${box.id} rendered at ${box.width} x ${box.height}`);
    // the drawings carry their marks: text in the cells, plotted marks in the charts
    const marks = await page.$$eval('figure.chart svg', (svgs) => svgs.map((svg) => svg.querySelectorAll('path, line').length));
    assert.ok(marks.every((count) => count > 0), String(marks));
    assert.ok((await page.locator('#cell-normal svg text').count()) > 4);
    assert.deepEqual(outside, []);
    assert.deepEqual(errors, []);

    mkdirSync(ARTIFACTS, { recursive: true });
    const screenshot = join(ARTIFACTS, 'report.png');
    await page.screenshot({ path: screenshot, fullPage: true });
    t.diagnostic(`screenshot: ${screenshot}`);
  } finally {
    await browser.close();
    rmSync(scratch, { recursive: true, force: true });
  }
});
