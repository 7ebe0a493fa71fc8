/**
 * `pcdarts sample` and sampleGenotypes: every genotype is in the search space (2 distinct
 * inputs per node among the earlier states, 7 operations without none, concat of all nodes),
 * the draws are uniform (frequencies within a few standard errors), and the same seed gives the
 * same list on the command line and in the library.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { genotypeToJSONLine, parseGenotypeJSON, PRIMITIVES, sampleGenotypes, SAMPLED_OPERATIONS, validateGenotype } from '../../src/index.js';
import { assertBadInput, pcdarts } from '../cli/process.js';

describe('sampleGenotypes', () => {
  it('draws genotypes of the search space: 2 distinct earlier inputs per node, no none', () => {
    for (const nodes of [1, 2, 4, 5]) {
      for (const genotype of sampleGenotypes(7, 200, nodes)) {
        validateGenotype(genotype, { steps: nodes });
        for (const cell of [genotype.normal, genotype.reduce]) {
          assert.equal(cell.length, 2 * nodes);
          for (let node = 0; node < nodes; node++) {
            const [[opA, a], [opB, b]] = [cell[2 * node], cell[2 * node + 1]];
            assert.ok(a < b, `node ${node}: inputs ${a}, ${b} must be distinct (listed in increasing order)`);
            assert.ok(a >= 0 && b < node + 2, `node ${node}: inputs ${a}, ${b} must be earlier states`);
            for (const op of [opA, opB]) assert.ok(op !== 'none' && (PRIMITIVES as readonly string[]).includes(op));
          }
        }
        const concat = Array.from({ length: nodes }, (_, i) => i + 2);
        assert.deepEqual(genotype.normal_concat, concat);
        assert.deepEqual(genotype.reduce_concat, concat);
      }
    }
  });

  it('is uniform over operations and over input pairs', () => {
    const n = 3000;
    const genotypes = sampleGenotypes(11, n, 4);
    // Operations: 7 choices per edge, 8 edges per cell, both cells.
    const ops = new Map<string, number>();
    for (const g of genotypes) for (const [op] of [...g.normal, ...g.reduce]) ops.set(op, (ops.get(op) ?? 0) + 1);
    const edges = n * 16;
    assert.deepEqual([...ops.keys()].sort(), [...SAMPLED_OPERATIONS].sort());
    const sdOp = Math.sqrt(edges * (1 / 7) * (6 / 7));
    for (const [op, count] of ops) assert.ok(Math.abs(count - edges / 7) < 5 * sdOp, `${op}: ${count} of ${edges}`);
    // Input pairs of node 3 (inputs 0..4): 10 pairs, each 1/10, in both cells.
    const pairs = new Map<string, number>();
    for (const g of genotypes) {
      for (const cell of [g.normal, g.reduce]) {
        const key = `${cell[6][1]},${cell[7][1]}`;
        pairs.set(key, (pairs.get(key) ?? 0) + 1);
      }
    }
    assert.equal(pairs.size, 10);
    const draws = 2 * n;
    const sdPair = Math.sqrt(draws * 0.1 * 0.9);
    for (const [pair, count] of pairs) assert.ok(Math.abs(count - draws / 10) < 5 * sdPair, `pair ${pair}: ${count} of ${draws}`);
    // The normal and the reduction cell are not the same draw.
    assert.ok(genotypes.filter((g) => JSON.stringify(g.normal) === JSON.stringify(g.reduce)).length < 3);
  });

  it('is reproducible, and a longer list starts with the shorter one', () => {
    assert.deepEqual(sampleGenotypes(3, 5), sampleGenotypes(3, 5));
    assert.deepEqual(sampleGenotypes(3, 8).slice(0, 5), sampleGenotypes(3, 5));
    assert.notDeepEqual(sampleGenotypes(3, 5), sampleGenotypes(4, 5));
  });
});

describe('pcdarts sample', () => {
  it('prints the library\'s genotypes as JSON lines of the genotype file format', async () => {
    const { code, stdout, stderr } = await pcdarts('sample', '--seed', '5', '--count', '4', '--nodes', '3');
    assert.equal(code, 0, stderr);
    const lines = stdout.split('\n').filter((l) => l !== '');
    assert.equal(lines.length, 4);
    const expected = sampleGenotypes(5, 4, 3);
    lines.forEach((line, i) => {
      assert.deepEqual(parseGenotypeJSON(line), expected[i]);
      assert.equal(`${line}\n`, genotypeToJSONLine(expected[i]));
    });
    const again = await pcdarts('sample', '--seed', '5', '--count', '4', '--nodes', '3');
    assert.equal(again.stdout, stdout);
  });

  it('refuses bad flags with one line and status 2', async () => {
    assertBadInput(await pcdarts('sample', '--seed', '1', '--count', '0'), /^pcdarts sample: --count: expected an integer >= 1, got 0$/);
    assertBadInput(await pcdarts('sample', '--seed', 'x'), /^pcdarts sample: .*--seed.*integer/);
    assertBadInput(await pcdarts('sample'), /^pcdarts sample: .*--seed/);
  });
});
