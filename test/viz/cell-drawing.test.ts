import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';

import { publishedGenotype } from '../../src/darts/genotype.js';
import {
  cellToDot,
  drawCellSvg,
  drawGenotype,
  drawGenotypeSvg,
  drawingFormatOf,
  genotypeFromSpec,
  prefixSvgIds,
  svgSideBySide,
  svgSize,
} from '../../src/viz/index.js';
import { writeFixtureRun } from './fixture-run.js';

const PC_DARTS_CIFAR = publishedGenotype('PC_DARTS_cifar');

function ids(svg: string): string[] {
  return [...svg.matchAll(/\bid="([^"]+)"/g)].map((m) => m[1]!);
}

/** Width and height from a PNG's IHDR chunk. */
function pngSize(png: Buffer): { width: number; height: number } {
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature');
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

describe('cell graph (DOT)', () => {
  test('has the two inputs, the nodes, the output, and one labelled edge per genotype entry', () => {
    const dot = cellToDot(PC_DARTS_CIFAR, 'normal');
    for (const node of ['c_k_2', 'c_k_1', 'n0', 'n1', 'n2', 'n3', 'c_k']) assert.match(dot, new RegExp(`^  ${node} \\[`, 'm'));
    const operationEdges = [...dot.matchAll(/^ {2}(\w+) -> (n\d) \[label="(\w+)"\];$/gm)].map((m) => [m[3], m[1], m[2]]);
    // node i's pairs in the genotype's order: (op, input) -> edge input -> n<i>
    assert.deepEqual(operationEdges, [
      ['sep_conv_3x3', 'c_k_1', 'n0'], ['skip_connect', 'c_k_2', 'n0'],
      ['sep_conv_3x3', 'c_k_2', 'n1'], ['dil_conv_3x3', 'c_k_1', 'n1'],
      ['sep_conv_5x5', 'c_k_2', 'n2'], ['sep_conv_3x3', 'c_k_1', 'n2'],
      ['avg_pool_3x3', 'c_k_2', 'n3'], ['dil_conv_3x3', 'c_k_1', 'n3'],
    ]);
    assert.deepEqual([...dot.matchAll(/^ {2}(\w+) -> c_k /gm)].map((m) => m[1]), ['n0', 'n1', 'n2', 'n3']);
  });

  test('follows the concat list and node inputs of a reduction cell', () => {
    const genotype = publishedGenotype('PC_DARTS_cifar');
    genotype.reduce_concat = [3, 5];
    const dot = cellToDot(genotype, 'reduce', { title: 'reduction cell' });
    assert.match(dot, /label="reduction cell"/);
    assert.match(dot, /^ {2}n0 -> n1 \[label="sep_conv_5x5"\];$/m); // ('sep_conv_5x5', 2): node 0 feeds node 1
    assert.deepEqual([...dot.matchAll(/^ {2}(\w+) -> c_k /gm)].map((m) => m[1]), ['n1', 'n3']);
  });
});

describe('cell drawings', () => {
  test('SVG of one cell: every operation labelled, subscripts lowered, a size', async () => {
    const svg = await drawCellSvg(PC_DARTS_CIFAR, 'normal');
    assert.ok(svg.startsWith('<svg'));
    assert.equal((svg.match(/>sep_conv_3x3</g) ?? []).length, 3);
    assert.equal((svg.match(/>dil_conv_3x3</g) ?? []).length, 2);
    for (const op of ['skip_connect', 'sep_conv_5x5', 'avg_pool_3x3', 'normal cell']) assert.ok(svg.includes(`>${op}<`), op);
    for (const subscript of ['k&#45;2', 'k&#45;1']) assert.ok(svg.includes(`>${subscript}<`), subscript);
    assert.doesNotMatch(svg, /baseline-shift/);
    const size = svgSize(svg);
    assert.ok(size.width > 100 && size.height > 100, JSON.stringify(size));
  });

  test('both cells side by side in one SVG, ids kept distinct', async () => {
    const normal = svgSize(await drawCellSvg(PC_DARTS_CIFAR, 'normal'));
    const both = await drawGenotypeSvg(PC_DARTS_CIFAR);
    assert.ok(both.includes('>normal cell<') && both.includes('>reduction cell<'));
    assert.ok(svgSize(both).width > normal.width + 100);
    const all = ids(both);
    assert.equal(new Set(all).size, all.length, 'duplicate ids');
  });

  test('PNG of a cell, scaled', async () => {
    const svg = await drawCellSvg(PC_DARTS_CIFAR, 'normal');
    const size = svgSize(svg);
    const png = await drawGenotype(PC_DARTS_CIFAR, 'png', ['normal'], { scale: 2 });
    assert.ok(Buffer.isBuffer(png));
    const pixels = pngSize(png);
    assert.ok(Math.abs(pixels.width - 2 * size.width) <= 2, `${pixels.width} vs ${2 * size.width}`);
    assert.ok(Math.abs(pixels.height - 2 * size.height) <= 2);
  });

  test('output format from the file name', () => {
    assert.equal(drawingFormatOf('cell.svg'), 'svg');
    assert.equal(drawingFormatOf('out/Cell.PNG'), 'png');
    assert.equal(drawingFormatOf('cell.pdf'), undefined);
    assert.equal(drawingFormatOf('cell'), undefined);
  });
});

describe('svg helpers', () => {
  test('prefixSvgIds rewrites ids and references', () => {
    const svg = '<svg><clipPath id="clip1"/><g clip-path="url(#clip1)"><use xlink:href="#clip1" href="#clip1"/></g></svg>';
    assert.equal(
      prefixSvgIds(svg, 'p'),
      '<svg><clipPath id="p-clip1"/><g clip-path="url(#p-clip1)"><use xlink:href="#p-clip1" href="#p-clip1"/></g></svg>',
    );
  });

  test('svgSideBySide adds widths and gaps, keeps the tallest height', () => {
    const a = '<svg xmlns="http://www.w3.org/2000/svg" width="30pt" height="15pt" viewBox="0 0 30 15"><rect id="r" width="30" height="15"/></svg>';
    const b = '<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="50" height="80"><rect id="r"/></svg>';
    const both = svgSideBySide([a, b], 10);
    assert.deepEqual(svgSize(both), { width: 40 + 10 + 50, height: 80 });
    assert.match(both, /<svg x="50.00" y="0" width="50.00" height="80.00"/);
    assert.deepEqual(ids(both), ['part0-r', 'part1-r']);
  });
});

describe('genotype argument', () => {
  test('a name, and a run directory without genotype.json: its log\'s last genotype', () => {
    assert.deepEqual(genotypeFromSpec('PC_DARTS_cifar'), PC_DARTS_CIFAR);
    const dir = mkdtempSync(join(tmpdir(), 'pcdarts-viz-'));
    try {
      writeFixtureRun(dir, { epochs: 3 });
      const fromFile = genotypeFromSpec(dir);
      rmSync(join(dir, 'genotype.json'));
      assert.deepEqual(genotypeFromSpec(dir), fromFile);
      writeFileSync(join(dir, 'log.jsonl'), '');
      assert.deepEqual(genotypeFromSpec(dir), fromFile); // from genotypes.jsonl
      rmSync(join(dir, 'genotypes.jsonl'));
      assert.throws(() => genotypeFromSpec(dir), /genotype\.json/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    assert.throws(() => genotypeFromSpec('/no/such/run'), /no such name, file or directory/);
  });
});
