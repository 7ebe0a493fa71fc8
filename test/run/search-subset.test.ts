/**
 * Per-class search samples (search-subset.ts): disjoint, per-class counts as documented,
 * deterministic in the seed, recorded and matched back onto a dataset by name or by index,
 * with one-line errors for records that do not fit.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { RunInputError } from '../../src/run/errors.js';
import {
  checkSubsetFractions, classSampleCounts, type LabelledItems, parseSubsetFractions, readSubsetRecord, sampleSearchSubset,
  SEARCH_SUBSET_FILE, subsetFromRecord, subsetRecord,
} from '../../src/run/search-subset.js';

const root = mkdtempSync(join(tmpdir(), 'pcdarts-subset-'));
after(() => rmSync(root, { recursive: true, force: true }));

const inputError = (pattern: RegExp) => (e: unknown): boolean =>
  e instanceof RunInputError && pattern.test(e.message) && !e.message.includes('\n');

/** Class sizes 200, 41, 7, 2, 1, in a scrambled (not class-sorted) order, with file names. */
function items(named: boolean): LabelledItems {
  const sizes = [200, 41, 7, 2, 1];
  const labels: number[] = [];
  sizes.forEach((n, c) => { for (let i = 0; i < n; i++) labels.push(c); });
  // A fixed scramble: index i takes label (i * 97) mod count's position.
  const count = labels.length;
  const scrambled = Array.from({ length: count }, (_, i) => labels[(i * 97) % count]);
  const names = scrambled.map((c, i) => `class${c}/img${String(i).padStart(4, '0')}.png`);
  return { name: 'synthetic', count, labels: Int32Array.from(scrambled), classes: sizes.length, ...(named ? { itemNames: names } : {}) };
}

describe('per-class search samples', () => {
  it('draws disjoint samples with the documented counts per class, in dataset order', () => {
    const data = items(true);
    const { weights, arch, perClass } = sampleSearchSubset(data, [0.1, 0.025], 2);
    // round(f n) per class, at least one from two images up; a lone image stays out (round(0.1) = 0).
    assert.deepEqual(perClass, [[20, 5], [4, 1], [1, 1], [1, 1], [0, 0]]);
    const w = new Set(weights);
    assert.equal(w.size, weights.length);
    assert.ok(arch.every((i) => !w.has(i)), 'the two samples share no image');
    for (const sample of [weights, arch]) {
      for (let i = 1; i < sample.length; i++) assert.ok(sample[i] > sample[i - 1], 'ascending dataset order');
    }
    // Each sample's per-class counts are what perClass says.
    const counted = perClass.map(() => [0, 0]);
    for (const i of weights) counted[data.labels[i]][0]++;
    for (const i of arch) counted[data.labels[i]][1]++;
    assert.deepEqual(counted, perClass);
  });

  it('is deterministic in the seed and differs across seeds', () => {
    const data = items(false);
    const a = sampleSearchSubset(data, [0.1, 0.025], 7);
    const b = sampleSearchSubset(data, [0.1, 0.025], 7);
    const c = sampleSearchSubset(data, [0.1, 0.025], 8);
    assert.deepEqual([a.weights, a.arch], [b.weights, b.arch]);
    assert.notDeepEqual(a.weights, c.weights);
  });

  it('rounds per class, keeps one of each class in each sample from two images, never exceeds the class', () => {
    assert.deepEqual(classSampleCounts(1300, [0.1, 0.025]), [130, 33]);
    assert.deepEqual(classSampleCounts(10, [0.5, 0.5]), [5, 5]);
    assert.deepEqual(classSampleCounts(3, [0.5, 0.5]), [2, 1]);
    assert.deepEqual(classSampleCounts(2, [0.01, 0.01]), [1, 1]);
    assert.deepEqual(classSampleCounts(1, [0.9, 0.1]), [1, 0]);
    assert.deepEqual(classSampleCounts(0, [0.5, 0.5]), [0, 0]);
  });

  it('checks and parses the fractions', () => {
    assert.deepEqual(parseSubsetFractions('0.1,0.025'), [0.1, 0.025]);
    assert.throws(() => parseSubsetFractions('0.1'), inputError(/^--search-subset: expected WEIGHTS,ARCH fractions/));
    assert.throws(() => parseSubsetFractions('0.1,x'), inputError(/^--search-subset:/));
    assert.throws(() => checkSubsetFractions([0.8, 0.3]), inputError(/sum to more than 1/));
    assert.throws(() => checkSubsetFractions([0, 0.3]), inputError(/two fractions in \(0, 1\]/));
  });

  it('a record maps back by name (the folder may change around it) and by index', () => {
    const named = items(true);
    const subset = sampleSearchSubset(named, [0.2, 0.1], 3);
    const record = subsetRecord(named, subset, [0.2, 0.1], 3, null);
    assert.equal(record.weights.names?.length, subset.weights.length);
    assert.deepEqual(subsetFromRecord(named, record, 'r.json'), { weights: subset.weights, arch: subset.arch });
    // The same files in another order, with one more file: matched by name.
    const order = Array.from({ length: named.count }, (_, i) => named.count - 1 - i);
    const moved: LabelledItems = {
      ...named, count: named.count + 1,
      labels: Int32Array.from([...order.map((i) => named.labels[i]), 0]),
      itemNames: [...order.map((i) => named.itemNames![i]), 'class0/new.png'],
    };
    const mapped = subsetFromRecord(moved, record, 'r.json');
    assert.deepEqual(Array.from(mapped.weights, (i) => moved.itemNames![i]).sort(), [...record.weights.names!].sort());
    // By index: same size required, labels checked.
    const plain = items(false);
    const plainRecord = subsetRecord(plain, subset, [0.2, 0.1], 3, null);
    assert.equal(plainRecord.weights.names, undefined);
    assert.deepEqual(subsetFromRecord(plain, plainRecord, 'r.json').arch, subset.arch);
    assert.throws(() => subsetFromRecord({ ...plain, count: plain.count - 1, labels: Int32Array.from(plain.labels).subarray(1) }, plainRecord, 'r.json'),
      inputError(/^r\.json: drawn from 251 training images, synthetic has 250/));
    const relabelled = Int32Array.from(plain.labels);
    relabelled[subset.arch[0]] = (relabelled[subset.arch[0]] + 1) % 5;
    assert.throws(() => subsetFromRecord({ ...plain, labels: relabelled }, plainRecord, 'r.json'), inputError(/has label .* the sample recorded/));
    const missing = { ...named, itemNames: named.itemNames!.map((n, i) => i === subset.weights[0] ? 'elsewhere.png' : n) };
    assert.throws(() => subsetFromRecord(missing, record, 'r.json'), inputError(/is not in synthetic's training images/));
  });

  it('reads a record from a run directory or a file, with one-line errors', () => {
    const data = items(true);
    const subset = sampleSearchSubset(data, [0.2, 0.1], 3);
    const record = subsetRecord(data, subset, [0.2, 0.1], 3, null);
    assert.throws(() => readSubsetRecord(join(root, 'absent')), inputError(/no such run directory or file/));
    const empty = mkdtempSync(join(root, 'empty-'));
    assert.throws(() => readSubsetRecord(empty), inputError(/no search-subset\.json: expected a search run directory made with --search-subset/));
    writeFileSync(join(empty, SEARCH_SUBSET_FILE), JSON.stringify(record));
    assert.deepEqual(readSubsetRecord(empty).record.weights, record.weights);
    assert.deepEqual(readSubsetRecord(join(empty, SEARCH_SUBSET_FILE)).record.arch, record.arch);
    writeFileSync(join(empty, SEARCH_SUBSET_FILE), '{"pcdarts_search_subset": 1');
    assert.throws(() => readSubsetRecord(empty), inputError(/not valid JSON/));
    writeFileSync(join(empty, SEARCH_SUBSET_FILE), JSON.stringify({ ...record, arch: { indices: [1], labels: [] } }));
    assert.throws(() => readSubsetRecord(empty), inputError(/"arch" must hold "indices" and "labels"/));
  });
});
