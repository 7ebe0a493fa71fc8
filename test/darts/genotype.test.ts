import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';

import { PUBLISHED_GENOTYPE_NAMES, edgeCount, genotypeToJSON, parseGenotypeJSON, publishedGenotype, stepsForEdgeCount, validateGenotype, type Genotype } from '../../src/darts/genotype.js';
import { concatRange, deriveGenotype, edgeWeights, expFloat32, nodeSoftmax, softmax32, softmaxRows } from '../../src/darts/genotype-derive.js';
import { formatGenotypePython, parsePythonGenotype } from '../../src/darts/genotype-python.js';
import { loadGenotype } from '../../src/darts/genotype-load.js';
import { PRIMITIVES, isPrimitive, primitiveIndex } from '../../src/darts/primitives.js';

interface FixtureCase {
  steps: number;
  alphas_normal: number[][];
  alphas_reduce: number[][];
  betas_normal: number[];
  betas_reduce: number[];
  expected: Genotype;
}

// dist/test/darts/ -> repository root -> ../shared
const FIXTURE_URL = new URL('../../../../shared/fixtures/pytorch/genotypes.json', import.meta.url);

const fround = Math.fround;

/** A full alphas matrix whose rows are all -200 (exp underflows to exactly 0) but for `rows`. */
function sparseAlphas(steps: number, rows: Record<number, Record<number, number>>): number[][] {
  return Array.from({ length: edgeCount(steps) }, (_, e) =>
    Array.from({ length: PRIMITIVES.length }, (_, o) => rows[e]?.[o] ?? (rows[e] === undefined ? 0 : -200)),
  );
}

function zeros(n: number): number[] {
  return new Array<number>(n).fill(0);
}

function throwsMatching(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof Error);
    assert.ok(!error.message.includes('\n'), `one line: ${error.message}`);
    for (const pattern of patterns) assert.match(error.message, pattern);
    return true;
  });
}

describe('primitives', () => {
  test('order is fixed and names are recognised', () => {
    assert.deepEqual(
      [...PRIMITIVES],
      ['none', 'max_pool_3x3', 'avg_pool_3x3', 'skip_connect', 'sep_conv_3x3', 'sep_conv_5x5', 'dil_conv_3x3', 'dil_conv_5x5'],
    );
    assert.ok(isPrimitive('dil_conv_5x5'));
    assert.ok(!isPrimitive('sep_conv_7x7'));
    assert.ok(!isPrimitive(3));
    assert.equal(primitiveIndex('skip_connect'), 3);
    throwsMatching(() => primitiveIndex('conv_7x1_1x7'), /unknown operation 'conv_7x1_1x7'/);
  });
});

describe('float32 softmax, bit-exact with PyTorch 1.13 (CPU, AVX2)', () => {
  // Produced with torch.softmax / torch.exp on float32 tensors; chosen among values where
  // fround(Math.exp(.)) or a plain float32 softmax differ from PyTorch by one ULP.
  const softmaxRowsFromTorch = [
    { x: [-0.38942462, -0.48305726, -0.446477, 0.5340194, -0.15793209, 1.5542268, -1.1213616, -0.61004573],
      y: [0.06711052, 0.06111201, 0.063388884, 0.16898076, 0.084591486, 0.4687138, 0.032278582, 0.053824015] },
    { x: [-0.46630618, 0.61435324, 0.045674127, -0.95149964, -0.45270792, -0.66612303, 0.7211589, 0.16925691],
      y: [0.075584605, 0.22271927, 0.12611988, 0.046528228, 0.07661945, 0.06189478, 0.24782373, 0.14271015] },
    { x: [-0.16136996, 0.8541691, 0.25970528, -0.054683723, -0.796747, 0.9250194, -0.31934372, 0.97227854],
      y: [0.07219607, 0.19932261, 0.109997846, 0.08032427, 0.03824484, 0.21395698, 0.06164622, 0.22431114] },
    { x: [-0.64923143, -0.7078778, -0.005594777, -1.4159619, -0.9358411],
      y: [0.19755957, 0.18630661, 0.37603295, 0.09177222, 0.14832866] },
    { x: [-0.2074145, 0.21537332, 0.06696614, -0.439191, -0.0670497],
      y: [0.17283866, 0.26378816, 0.2274065, 0.13708237, 0.19888431] },
    { x: [0.95480835, 1.2556622, -0.7181229],
      y: [0.3939012, 0.53216517, 0.073933706] },
  ];
  const expFromTorch: [number, number][] = [
    [-0.32345796, 0.72364235],
    [-10.65428, 2.3599627e-05],
    [-11.547634, 9.658868e-06],
    [-5.1487694, 0.0058065457],
    [-1.7002172, 0.18264383],
    [-6.7269526, 0.0011981789],
    [-7.3674326, 0.00063148735],
    [-0.829736, 0.43616444],
  ];

  test('softmax32 reproduces torch.softmax bit for bit', () => {
    for (const { x, y } of softmaxRowsFromTorch) {
      assert.deepEqual(Array.from(softmax32(x)), y.map(fround));
    }
  });

  test('expFloat32 reproduces torch.exp (SLEEF u10) bit for bit', () => {
    for (const [x, y] of expFromTorch) assert.equal(expFloat32(fround(x)), fround(y));
    assert.equal(expFloat32(0), 1);
    assert.equal(expFloat32(-200), 0);
  });

  test('softmaxRows and nodeSoftmax', () => {
    const rows = softmaxRows(new Float32Array(16));
    assert.equal(rows.length, 2);
    assert.deepEqual(Array.from(rows[1]!), zeros(8).map(() => 0.125));
    const betaWeights = nodeSoftmax(zeros(9), 3);
    assert.deepEqual(Array.from(betaWeights), [0.5, 0.5, 1 / 3, 1 / 3, 1 / 3, 0.25, 0.25, 0.25, 0.25].map(fround));
    throwsMatching(() => nodeSoftmax(zeros(8), 3), /betas: expected 9 values for 3 steps, got 8/);
  });
});

describe('deriveGenotype', () => {
  const fixture = JSON.parse(readFileSync(FIXTURE_URL, 'utf8')) as { primitives: string[]; cases: FixtureCase[] };

  test('fixture uses the same operation order', () => {
    assert.deepEqual(fixture.primitives, [...PRIMITIVES]);
    assert.ok(fixture.cases.length >= 20);
  });

  fixture.cases.forEach((c, index) => {
    test(`pytorch fixture case ${index} (${c.steps} steps) derives exactly`, () => {
      const genotype = deriveGenotype(
        { alphasNormal: c.alphas_normal, alphasReduce: c.alphas_reduce, betasNormal: c.betas_normal, betasReduce: c.betas_reduce },
        c.steps,
      );
      assert.deepEqual(genotype, c.expected);
      // steps inferred from the edge count; flat Float32Array inputs as a tensor gives them
      const flat = deriveGenotype({
        alphasNormal: Float32Array.from(c.alphas_normal.flat()),
        alphasReduce: Float32Array.from(c.alphas_reduce.flat()),
        betasNormal: Float32Array.from(c.betas_normal),
        betasReduce: Float32Array.from(c.betas_reduce),
      });
      assert.deepEqual(flat, c.expected);
    });
  });

  // Near-ties computed by the authors' genotype() (torch.softmax + numpy float32 products) in
  // PyTorch 1.13 (Debian's python3-torch, /usr/bin/python3): 2-step cells whose edge rows are
  // one base row perturbed by a few ULPs. Of 20,000 such cases softmax32 matched all, a float32
  // softmax with fround(Math.exp) 84%, float64 arithmetic 71%. The first three below come out
  // differently with fround(Math.exp), the last three with float64.
  const nearTies: { alphas: number[][]; betas: number[]; expected: [string, number][] }[] = [
    { alphas: [[0.08242467, -0.9930195, 0.2228311, 0.35607895, -0.99601126, -0.6371517, 0.35607895, -0.169278], [0.08242468, -0.9930195, 0.2228311, 0.35607892, -0.99601114, -0.6371518, 0.35607895, -0.16927798], [0.082424685, -0.99301964, 0.22283109, 0.3560789, -0.99601126, -0.63715166, 0.35607895, -0.16927797], [0.08242468, -0.9930195, 0.2228311, 0.3560789, -0.99601114, -0.63715166, 0.3560789, -0.16927797], [0.08242467, -0.99301964, 0.22283107, 0.35607892, -0.9960112, -0.63715166, 0.35607892, -0.169278]],
      betas: [-0.00049938745, -0.0009276026, 0.00032323788, 0.0016771139, -2.7962755e-05],
      expected: [["skip_connect", 0], ["skip_connect", 1], ["skip_connect", 1], ["skip_connect", 0]] },
    { alphas: [[0.10848917, -0.54446805, 0.41488916, -0.8784552, -0.07666353, -0.14421831, -0.08001654, 0.41488916], [0.10848918, -0.5444679, 0.41488922, -0.8784552, -0.07666354, -0.1442183, -0.08001652, 0.4148892], [0.10848917, -0.54446805, 0.41488916, -0.8784553, -0.07666354, -0.1442183, -0.08001652, 0.41488922], [0.108489186, -0.54446805, 0.41488922, -0.87845516, -0.076663524, -0.14421828, -0.08001654, 0.41488922], [0.108489186, -0.54446805, 0.4148892, -0.8784552, -0.07666354, -0.14421831, -0.08001653, 0.41488922]],
      betas: [-0.00086242537, -0.0017653533, -0.0010178569, -0.0014840994, -0.0009799117],
      expected: [["avg_pool_3x3", 0], ["avg_pool_3x3", 1], ["avg_pool_3x3", 2], ["dil_conv_5x5", 0]] },
    { alphas: [[-0.2026512, -0.15991311, -0.088266626, -0.4223356, -0.15991311, -0.4751998, 0.0032574928, -0.56193304], [-0.20265117, -0.15991311, -0.088266626, -0.42233554, -0.15991314, -0.47519985, 0.0032574933, -0.5619331], [-0.20265119, -0.15991311, -0.08826663, -0.42233557, -0.15991311, -0.4751998, 0.0032574928, -0.56193304], [-0.20265117, -0.15991311, -0.08826663, -0.42233554, -0.15991312, -0.4751998, 0.0032574928, -0.56193316], [-0.20265117, -0.15991312, -0.088266626, -0.42233554, -0.15991311, -0.47519985, 0.003257493, -0.56193304]],
      betas: [0, 0, 0, 0, 0],
      expected: [["dil_conv_3x3", 1], ["dil_conv_3x3", 0], ["dil_conv_3x3", 1], ["dil_conv_3x3", 2]] },
    { alphas: [[0.90750104, -0.0025195475, 0.28293437, 0.47324857, -0.28584194, 0.47324863, 0.074855, 0.0023967202], [0.90750116, -0.0025195472, 0.28293434, 0.47324863, -0.28584197, 0.4732486, 0.074855, 0.00239672], [0.90750104, -0.0025195472, 0.28293437, 0.47324857, -0.285842, 0.4732486, 0.07485501, 0.00239672], [0.9075011, -0.002519547, 0.2829343, 0.47324857, -0.28584194, 0.4732486, 0.07485501, 0.00239672], [0.90750116, -0.0025195472, 0.28293434, 0.4732486, -0.285842, 0.47324863, 0.07485501, 0.0023967205]],
      betas: [-0.0015226473, 0.00091593916, 0.0003597542, 0.0019017305, 0.00068108103],
      expected: [["skip_connect", 1], ["skip_connect", 0], ["skip_connect", 1], ["skip_connect", 2]] },
    { alphas: [[0.11185167, 0.059749436, -1.204119, 0.41006202, 0.13872623, 0.08571411, 0.32235005, 0.41006204], [0.11185166, 0.05974943, -1.204119, 0.41006204, 0.13872623, 0.085714094, 0.32235, 0.41006202], [0.111851655, 0.059749432, -1.2041187, 0.41006202, 0.13872623, 0.08571411, 0.32235, 0.41006202], [0.11185166, 0.059749432, -1.2041188, 0.41006202, 0.13872626, 0.08571411, 0.32235003, 0.41006207], [0.11185167, 0.059749436, -1.204119, 0.41006207, 0.13872626, 0.08571411, 0.32235003, 0.41006202]],
      betas: [-0.0012722355, 0.00056588656, 0.0011320205, -0.0003503811, -0.0014425961],
      expected: [["skip_connect", 1], ["skip_connect", 0], ["skip_connect", 0], ["dil_conv_5x5", 1]] },
    { alphas: [[-0.5560103, -0.18880253, 1.0213859, 0.32335153, 0.33153164, -0.25700322, -0.82403755, 0.08373238], [-0.55601037, -0.1888025, 1.0213858, 0.32335153, 0.3315317, -0.25700322, -0.8240377, 0.083732374], [-0.5560103, -0.18880253, 1.0213859, 0.32335153, 0.3315317, -0.25700316, -0.8240377, 0.083732374], [-0.5560103, -0.18880253, 1.0213857, 0.3233515, 0.33153164, -0.25700322, -0.82403755, 0.08373238], [-0.5560103, -0.1888025, 1.0213859, 0.32335147, 0.33153167, -0.25700316, -0.8240377, 0.08373238]],
      betas: [0, 0, 0, 0, 0],
      expected: [["avg_pool_3x3", 0], ["avg_pool_3x3", 1], ["avg_pool_3x3", 0], ["avg_pool_3x3", 2]] },
  ];
  nearTies.forEach((c, index) => {
    test(`near-tie case ${index} comes out as PyTorch's`, () => {
      const genotype = deriveGenotype({ alphasNormal: c.alphas, alphasReduce: c.alphas, betasNormal: c.betas, betasReduce: c.betas }, 2);
      assert.deepEqual(genotype.normal, c.expected);
      assert.deepEqual(genotype.normal_concat, [2, 3]);
    });
  });

  test('all-equal weights: lower edge index first, lower operation index (none excluded)', () => {
    const genotype = deriveGenotype({ alphasNormal: zeros(14 * 8), alphasReduce: zeros(14 * 8), betasNormal: zeros(14), betasReduce: zeros(14) });
    const expected = [0, 1, 2, 3].flatMap(() => [['max_pool_3x3', 0], ['max_pool_3x3', 1]]);
    assert.deepEqual(genotype.normal, expected);
    assert.deepEqual(genotype.reduce, expected);
    assert.deepEqual(genotype.normal_concat, [2, 3, 4, 5]);
  });

  test('equal edge strength: the lower edge index is ranked first', () => {
    // node 0: edge 0 best op sep_conv_5x5, edge 1 best op sep_conv_3x3, both weight exactly 1
    // node 1 (edges 2, 3, 4): edges 3 and 4 tie at 1, edge 2 is uniform (1/8)
    const alphas = sparseAlphas(4, { 0: { 5: 0 }, 1: { 4: 0 }, 3: { 7: 0 }, 4: { 1: 0 } });
    const genotype = deriveGenotype({ alphasNormal: alphas, alphasReduce: alphas, betasNormal: zeros(14), betasReduce: zeros(14) });
    assert.deepEqual(genotype.normal.slice(0, 4), [['sep_conv_5x5', 0], ['sep_conv_3x3', 1], ['dil_conv_5x5', 1], ['max_pool_3x3', 2]]);
  });

  test('equal operation weights within an edge: the lower operation index wins', () => {
    const alphas = sparseAlphas(4, { 0: { 6: 0, 2: 0 }, 1: { 7: 0, 3: 0, 5: 0 } });
    const genotype = deriveGenotype({ alphasNormal: alphas, alphasReduce: alphas });
    assert.deepEqual(genotype.normal.slice(0, 2), [['avg_pool_3x3', 0], ['skip_connect', 1]]);
  });

  test('none is never chosen, even when it is the largest weight', () => {
    // edge 0: none dominates (its other ops ~0.036 each); edge 1: uniform 0.125 per op
    const alphas = sparseAlphas(4, { 0: { 0: 0, 1: -3, 2: -3, 3: -3, 4: -3, 5: -3, 6: -3, 7: -2.9 }, 1: {} });
    const genotype = deriveGenotype({ alphasNormal: alphas, alphasReduce: alphas });
    // edge 1 outranks edge 0 because none does not count in the edge strength
    assert.deepEqual(genotype.normal.slice(0, 2), [['max_pool_3x3', 1], ['dil_conv_5x5', 0]]);
    // only none alive on an edge: the weights of the other ops are all 0, the lower index wins
    const onlyNone = sparseAlphas(4, { 0: { 0: 0 }, 1: { 0: 0 } });
    const g2 = deriveGenotype({ alphasNormal: onlyNone, alphasReduce: onlyNone });
    for (const [op] of g2.normal) assert.notEqual(op, 'none');
    assert.deepEqual(g2.normal.slice(0, 2), [['max_pool_3x3', 0], ['max_pool_3x3', 1]]);
  });

  test('betas scale edges per node (edge normalisation)', () => {
    const alphas = zeros(14 * 8);
    const betas = zeros(14);
    betas[1] = 1; // node 0 prefers input 1
    betas[4] = 2; // node 1 prefers input 2, then (tie) 0 before 1
    const genotype = deriveGenotype({ alphasNormal: alphas, alphasReduce: alphas, betasNormal: betas, betasReduce: zeros(14) });
    assert.deepEqual(genotype.normal.slice(0, 4), [['max_pool_3x3', 1], ['max_pool_3x3', 0], ['max_pool_3x3', 2], ['max_pool_3x3', 0]]);
    assert.deepEqual(genotype.reduce.slice(0, 2), [['max_pool_3x3', 0], ['max_pool_3x3', 1]]);
  });

  test('3 steps: 9 edges, concat [2, 3, 4], multiplier', () => {
    const alphas = sparseAlphas(3, { 7: { 4: 0 }, 8: { 6: 0 } });
    const genotype = deriveGenotype({ alphasNormal: alphas, alphasReduce: alphas, betasNormal: zeros(9), betasReduce: zeros(9) });
    assert.equal(genotype.normal.length, 6);
    // node 2 takes edges 5..8 from states 0..3: edges 7 and 8 are states 2 and 3
    assert.deepEqual(genotype.normal.slice(4), [['sep_conv_3x3', 2], ['dil_conv_3x3', 3]]);
    assert.deepEqual(genotype.normal_concat, [2, 3, 4]);
    assert.deepEqual(validateGenotype(genotype, { steps: 3 }), genotype);
    assert.deepEqual(deriveGenotype({ alphasNormal: alphas, alphasReduce: alphas }, 3, 2).reduce_concat, [3, 4]);
    assert.deepEqual(concatRange(4, 2), [4, 5]);
    throwsMatching(() => concatRange(4, 5), /multiplier: expected an integer in 1\.\.4/);
  });

  test('edge counts and input errors', () => {
    assert.equal(edgeCount(4), 14);
    assert.equal(edgeCount(3), 9);
    assert.equal(stepsForEdgeCount(20), 5);
    throwsMatching(() => stepsForEdgeCount(13), /13 edges is not a cell size/);
    throwsMatching(() => deriveGenotype({ alphasNormal: zeros(13 * 8), alphasReduce: zeros(13 * 8) }), /alphasNormal: 13 edges/);
    throwsMatching(() => deriveGenotype({ alphasNormal: zeros(14 * 8 - 1), alphasReduce: zeros(14 * 8) }), /not a whole number of rows of 8/);
    throwsMatching(
      () => deriveGenotype({ alphasNormal: zeros(14 * 8), alphasReduce: zeros(14 * 8), betasNormal: zeros(9) }),
      /betasNormal: expected 14 values for 4 steps, got 9/,
    );
    const nan = zeros(14 * 8);
    nan[17] = Number.NaN;
    throwsMatching(() => deriveGenotype({ alphasNormal: zeros(14 * 8), alphasReduce: nan }), /alphasReduce\[2\]\[1\]: expected a finite number, got NaN/);
    throwsMatching(() => deriveGenotype({ alphasNormal: [[1, 2, 3]], alphasReduce: [[1, 2, 3]] }), /alphasNormal\[0\]: expected 8 values/);
  });

  test('edgeWeights gives softmax(alpha) * softmax-per-node(beta)', () => {
    const alphas = sparseAlphas(4, { 0: { 5: 0 } });
    const betas = zeros(14);
    const weights = edgeWeights({ alphasNormal: alphas, alphasReduce: alphas, betasNormal: betas, betasReduce: betas });
    assert.equal(weights.normal.length, 14);
    assert.deepEqual(weights.normal[0], [0, 0, 0, 0, 0, 0.5, 0, 0]);
    assert.deepEqual(weights.normal[2], zeros(8).map(() => fround(fround(0.125) * fround(1 / 3))));
    assert.deepEqual(edgeWeights({ alphasNormal: alphas, alphasReduce: alphas }).reduce[0], [0, 0, 0, 0, 0, 1, 0, 0]);
  });
});

describe('validateGenotype', () => {
  const valid = (): Genotype => publishedGenotype('PC_DARTS_cifar');

  test('accepts every published genotype', () => {
    for (const name of PUBLISHED_GENOTYPE_NAMES) assert.deepEqual(validateGenotype(publishedGenotype(name), { steps: 4 }), publishedGenotype(name));
  });

  test('unknown operation', () => {
    const g = valid() as unknown as { normal: [string, number][] };
    g.normal[3] = ['sep_conv_7x7', 1];
    throwsMatching(() => validateGenotype(g), /^genotype: normal\[3\]: unknown operation 'sep_conv_7x7' \(known: none, max_pool_3x3, /);
  });

  test('input index out of range', () => {
    const g = valid();
    g.reduce[2] = ['sep_conv_3x3', 3]; // node 1 may use 0..2
    throwsMatching(() => validateGenotype(g), /reduce\[2\]: input 3 out of range: node 1 may use inputs 0\.\.2/);
    const h = valid();
    h.normal[0] = ['sep_conv_3x3', -1];
    throwsMatching(() => validateGenotype(h), /normal\[0\]: input -1 out of range/);
    const k = valid() as unknown as { normal: [string, unknown][] };
    k.normal[1] = ['sep_conv_3x3', 0.5];
    throwsMatching(() => validateGenotype(k), /normal\[1\]: input 0.5 out of range/);
  });

  test('odd number of entries, steps mismatch', () => {
    const g = valid();
    g.normal.pop();
    throwsMatching(() => validateGenotype(g), /normal: expected an even, non-zero number of entries \(2 per node\), got 7/);
    throwsMatching(() => validateGenotype(valid(), { steps: 3 }), /normal: 8 entries make 4 nodes, expected 3/);
  });

  test('concat out of range, repeated, empty', () => {
    const g = valid();
    g.normal_concat = [2, 3, 4, 6];
    throwsMatching(() => validateGenotype(g), /normal_concat\[3\]: state 6 out of range 0\.\.5 \(4 nodes\)/);
    const h = valid();
    h.reduce_concat = [2, 2];
    throwsMatching(() => validateGenotype(h), /reduce_concat\[1\]: state 2 listed twice/);
    const k = valid();
    k.reduce_concat = [];
    throwsMatching(() => validateGenotype(k), /reduce_concat: expected a non-empty list/);
  });

  test('wrong shapes', () => {
    throwsMatching(() => validateGenotype(null), /genotype: expected an object/);
    throwsMatching(() => validateGenotype({ normal: [] }), /normal: expected an even, non-zero number/);
    throwsMatching(() => validateGenotype({ ...valid(), reduce: 'x' }), /reduce: expected a list of \[operation, input\] pairs, got 'x'/);
    throwsMatching(() => validateGenotype({ ...valid(), normal: [['sep_conv_3x3', 0, 1], ...valid().normal.slice(1)] }), /normal\[0\]: expected an \[operation, input\] pair/);
    const g = valid();
    g.normal_concat = [9];
    throwsMatching(() => validateGenotype(g, { source: 'runs/a/genotype.json' }), /^genotype from runs\/a\/genotype\.json: normal_concat\[0\]: state 9/);
  });
});

describe('JSON form', () => {
  test('round trip and file layout', () => {
    for (const name of PUBLISHED_GENOTYPE_NAMES) {
      const g = publishedGenotype(name);
      const text = genotypeToJSON(g);
      assert.ok(text.endsWith('}\n'));
      assert.deepEqual(JSON.parse(text), g);
      assert.deepEqual(parseGenotypeJSON(text, 'x.json'), g);
    }
    assert.match(genotypeToJSON(publishedGenotype('DARTS_V2')), /"normal": \[\n    \["sep_conv_3x3", 0\], \["sep_conv_3x3", 1\],\n/);
  });

  test('object with a genotype field; errors', () => {
    const g = publishedGenotype('DARTS_V1');
    assert.deepEqual(parseGenotypeJSON(JSON.stringify({ epoch: 3, genotype: g })), g);
    throwsMatching(() => parseGenotypeJSON('{"normal": [', 'a.json'), /^genotype from a\.json: invalid JSON: /);
    throwsMatching(() => parseGenotypeJSON('[1, 2]', 'a.json'), /^genotype from a\.json: expected an object/);
  });
});

describe('Python form', () => {
  test('round trip of every published genotype', () => {
    for (const name of PUBLISHED_GENOTYPE_NAMES) {
      const g = publishedGenotype(name);
      const text = formatGenotypePython(g);
      assert.match(text, /^Genotype\(normal=\[\('[a-z_0-9]+', \d\), /);
      assert.match(text, /normal_concat=range\(2, 6\), reduce=\[/);
      assert.deepEqual(parsePythonGenotype(text), g);
    }
  });

  test("the authors' text, list concat, double quotes, newlines, comments, names", () => {
    const authors =
      "Genotype(normal=[('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 0), ('dil_conv_3x3', 1), ('sep_conv_5x5', 0), ('sep_conv_3x3', 1), ('avg_pool_3x3', 0), ('dil_conv_3x3', 1)], normal_concat=range(2, 6), reduce=[('sep_conv_5x5', 1), ('max_pool_3x3', 0), ('sep_conv_5x5', 1), ('sep_conv_5x5', 2), ('sep_conv_3x3', 0), ('sep_conv_3x3', 3), ('sep_conv_3x3', 1), ('sep_conv_3x3', 2)], reduce_concat=range(2, 6))";
    assert.deepEqual(parsePythonGenotype(authors), publishedGenotype('PC_DARTS_cifar'));
    const spaced = `PC_DARTS = Genotype(
      normal = [ ("sep_conv_3x3", 1), ("skip_connect", 0),   # node 0
                 ("sep_conv_3x3", 0), ("dil_conv_3x3", 1),
                 ("sep_conv_5x5", 0), ("sep_conv_3x3", 1),
                 ("avg_pool_3x3", 0), ("dil_conv_3x3", 1), ],
      normal_concat = [2, 3, 4, 5],
      reduce = [('sep_conv_5x5', 1), ('max_pool_3x3', 0), ('sep_conv_5x5', 1), ('sep_conv_5x5', 2),
                ('sep_conv_3x3', 0), ('sep_conv_3x3', 3), ('sep_conv_3x3', 1), ('sep_conv_3x3', 2)],
      reduce_concat = (2, 3, 4, 5),
    )
    `;
    assert.deepEqual(parsePythonGenotype(spaced), publishedGenotype('PC_DARTS_cifar'));
    const positional = formatGenotypePython(publishedGenotype('DARTS_V2')).replace(/(normal|reduce)(_concat)?=/g, '');
    assert.deepEqual(parsePythonGenotype(positional), publishedGenotype('DARTS_V2'));
  });

  test('3-step genotype and non-contiguous concat', () => {
    const g: Genotype = {
      normal: [['sep_conv_3x3', 0], ['skip_connect', 1], ['dil_conv_5x5', 2], ['max_pool_3x3', 0], ['avg_pool_3x3', 3], ['sep_conv_5x5', 1]],
      normal_concat: [2, 3, 4],
      reduce: [['max_pool_3x3', 0], ['max_pool_3x3', 1], ['skip_connect', 2], ['max_pool_3x3', 1], ['dil_conv_3x3', 3], ['skip_connect', 2]],
      reduce_concat: [2, 4],
    };
    const text = formatGenotypePython(g);
    assert.match(text, /normal_concat=range\(2, 5\)/);
    assert.match(text, /reduce_concat=\[2, 4\]\)$/);
    assert.deepEqual(parsePythonGenotype(text), g);
    assert.deepEqual(parseGenotypeJSON(genotypeToJSON(g)), g);
  });

  test('malformed input gives a one-line error with the position', () => {
    const good = formatGenotypePython(publishedGenotype('DARTS_V2'));
    throwsMatching(() => parsePythonGenotype(good.slice(0, -1)), /line 1, column \d+: missing '\)' closing 'Genotype\(' opened at line 1, column 9/);
    throwsMatching(() => parsePythonGenotype("Genotype(normal=[('skip_connect', 0),\n"), /line 2, column 1: missing '\]' closing the list of 'normal' opened at line 1, column 17/);
    throwsMatching(() => parsePythonGenotype(good.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 2")), /expected '\)' closing the pair \('dil_conv_3x3', 2\)/);
    throwsMatching(
      () => parsePythonGenotype(good.replace("'dil_conv_3x3'", "'sep_conv_7x7'")),
      /line 1, column \d+: unknown operation 'sep_conv_7x7' \(known: none, max_pool_3x3/,
    );
    throwsMatching(() => parsePythonGenotype(good.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 7)")), /normal\[7\]: input 7 out of range: node 3 may use inputs 0\.\.4/);
    throwsMatching(() => parsePythonGenotype('hello world'), /^genotype: line 1, column 1: expected 'Genotype\(', found 'hello'/);
    throwsMatching(() => parsePythonGenotype(''), /line 1, column 1: expected 'Genotype\(', found end of input/);
    throwsMatching(() => parsePythonGenotype('Genotype(normal=[(\'skip_connect\', 0)] % 3)'), /line 1, column 39: unexpected character '%'/);
    throwsMatching(() => parsePythonGenotype("Genotype(normal=[('skip_connect, 0)])"), /unterminated string/);
    throwsMatching(() => parsePythonGenotype(good + ' extra'), /unexpected 'extra' after the closing '\)'/);
    throwsMatching(() => parsePythonGenotype(good.replace(/, reduce_concat=range\(2, 6\)/, '')), /missing field reduce_concat/);
    throwsMatching(() => parsePythonGenotype(good.replace('reduce_concat', 'normal_concat')), /field 'normal_concat' given twice/);
    throwsMatching(() => parsePythonGenotype(good.replace('reduce_concat', 'reduce_cat')), /unknown field 'reduce_cat'/);
    throwsMatching(() => parsePythonGenotype(good.replace('range(2, 6)', 'range(6, 2)')), /range\(6, 2\) of 'normal_concat' is empty/);
    throwsMatching(() => parsePythonGenotype(good.replace('range(2, 6)', 'range(2, 6, 1)')), /expected '\)' closing the range/);
    throwsMatching(() => parsePythonGenotype(good.replace("('sep_conv_3x3', 0)", "('sep_conv_3x3', 0.5)")), /unexpected character '\.' after a number/);
    throwsMatching(() => parsePythonGenotype(good.replace('range(2, 6)', '__import__("os")')), /expected range\(a, b\) or a list of integers for 'normal_concat', found '__import__'/);
    throwsMatching(() => parsePythonGenotype('Genotype(\n  normal=[\n    (sep_conv_3x3, 0)]'), /line 3, column 6: expected a quoted operation name, found 'sep_conv_3x3'/);
    throwsMatching(() => parsePythonGenotype("Genotype(normal=[('skip_connect', 0)], normal_concat=[2], reduce=[('skip_connect', 0)], reduce_concat=[2])"), /normal: expected an even, non-zero number of entries/);
    throwsMatching(() => parsePythonGenotype(good.slice(0, -1), 'cell.txt'), /^genotype from cell\.txt: line 1, column /);
  });
});

describe('published genotypes and loadGenotype', () => {
  test('by name, as copies', () => {
    assert.deepEqual([...PUBLISHED_GENOTYPE_NAMES], ['PC_DARTS_cifar', 'PC_DARTS_image', 'DARTS_V1', 'DARTS_V2']);
    const g = publishedGenotype('DARTS_V2');
    assert.deepEqual(g.normal[7], ['dil_conv_3x3', 2]);
    g.normal[7]![0] = 'none';
    assert.deepEqual(publishedGenotype('DARTS_V2').normal[7], ['dil_conv_3x3', 2]);
    throwsMatching(() => publishedGenotype('PC_DARTS'), /unknown published genotype 'PC_DARTS' \(known: PC_DARTS_cifar, PC_DARTS_image, DARTS_V1, DARTS_V2\)/);
  });

  test('matches the spec copy in shared/', () => {
    const spec = JSON.parse(readFileSync(new URL('../../../../shared/spec/genotypes.json', import.meta.url), 'utf8')) as { genotypes: Record<string, Genotype> };
    assert.deepEqual(Object.keys(spec.genotypes), [...PUBLISHED_GENOTYPE_NAMES]);
    for (const name of PUBLISHED_GENOTYPE_NAMES) assert.deepEqual(publishedGenotype(name), spec.genotypes[name]);
  });

  test('from names, files, run directories and inline text', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'pcdarts-genotype-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const g = publishedGenotype('PC_DARTS_image');
    assert.deepEqual(loadGenotype('PC_DARTS_image'), g);

    const jsonPath = join(dir, 'cell.json');
    writeFileSync(jsonPath, genotypeToJSON(g));
    assert.deepEqual(loadGenotype(jsonPath), g);

    const summaryPath = join(dir, 'summary.json');
    writeFileSync(summaryPath, JSON.stringify({ best: 97.1, genotype: g }));
    assert.deepEqual(loadGenotype(summaryPath), g);

    const pythonPath = join(dir, 'cell.txt');
    writeFileSync(pythonPath, formatGenotypePython(g) + '\n');
    assert.deepEqual(loadGenotype(pythonPath), g);

    const runDir = join(dir, 'run');
    mkdirSync(runDir);
    writeFileSync(join(runDir, 'genotype.json'), genotypeToJSON(g));
    assert.deepEqual(loadGenotype(runDir), g);

    assert.deepEqual(loadGenotype(formatGenotypePython(g)), g);
    assert.deepEqual(loadGenotype(JSON.stringify(g)), g);

    throwsMatching(() => loadGenotype(join(dir, 'missing.json')), /missing\.json': expected a published name \(PC_DARTS_cifar, .*\), a genotype file .* or a run directory containing genotype\.json/);
    throwsMatching(() => loadGenotype(dir), /a directory, so expected a run directory containing genotype\.json; .*genotype\.json: not found/);
    writeFileSync(join(dir, 'bad.json'), '{"normal": [["sep_conv_9x9", 0]]}');
    throwsMatching(() => loadGenotype(join(dir, 'bad.json')), /genotype from .*bad\.json: normal: expected an even/);
    writeFileSync(join(dir, 'bad.txt'), 'Genotype(normal=[("sep_conv_9x9", 0)])');
    throwsMatching(() => loadGenotype(join(dir, 'bad.txt')), /genotype from .*bad\.txt: line 1, column 19: unknown operation 'sep_conv_9x9'/);
  });
});
